"""Post-processes the protobuf generator's .pyi stubs (run by `make generate`).

protoc's pyi generator writes a nested message named after a Python keyword (the IDL's
PersistenceChoice.None) as `class None(...)` and refers to it as
`getattr(PersistenceChoice, 'None')`: neither is valid in a stub, so mypy rejects the
whole file. This renames such classes to `<name>_` in the stubs only (at run time the
class is reached with getattr(PersistenceChoice, "None")). Deterministic; the drift
check covers its output like the rest of the generated code.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

KEYWORDS = ("None", "True", "False")


def fix(text: str) -> str:
    for kw in KEYWORDS:
        text = re.sub(rf"\bclass {kw}\(", f"class {kw}_(", text)
        text = re.sub(rf"getattr\(([A-Za-z_][\w.]*), '{kw}'\)", rf"\1.{kw}_", text)
    return text


def main(argv: list[str]) -> int:
    for d in argv[1:]:
        for p in sorted(Path(d).glob("*.pyi")):
            old = p.read_text(encoding="utf-8")
            new = fix(old)
            if new != old:
                p.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
