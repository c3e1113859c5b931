"""The Python runner of the language-neutral conformance scenarios (idl/conformance): the
same files as the Go runner (sdk-go/conformance_test.go), through the SDK's public API
only — ReliabilityManager with a config, the shared ManualClock, an event recorder, a
retrieval-hint function and the Python MemoryPersistence as host backend. The format is
documented in idl/conformance/README.md."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sdskit
from sdskit import Err, ErrorCode, Ok, SdsError
from sdskit.backends import PERSISTENCE_METHOD_NAMES, MemoryPersistence
from sdskit.testing import bloom, bloom_contains
from sdskit.v1 import api_pb2, events_pb2, state_pb2, wire_pb2

SCENARIO_DIR = Path(__file__).resolve().parents[2] / "idl" / "conformance" / "scenarios"
DEFAULT_START = 1_700_000_000_000
DEFAULT_CHANNEL = "testChannel"

J = dict[str, Any]


class Fatal(Exception):
    """A failure that stops the scenario at once."""


class Mismatch(Exception):
    """The expectations of a step that failed (all of them)."""


def scenario_names() -> list[str]:
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.json"))


def load(name: str) -> J:
    data: J = json.loads((SCENARIO_DIR / f"{name}.json").read_text(encoding="utf-8"))
    if data.get("name") != name:
        raise Fatal(f"{name}.json: name {data.get('name')!r} differs from the file name")
    return data


@dataclass
class Participant:
    name: str
    id: str
    config: api_pb2.Config
    persistence: str
    mp: MemoryPersistence | None
    hint_prefix: str | None
    m: sdskit.ReliabilityManager | None = None
    events: list[events_pb2.Event] = field(default_factory=list)


@dataclass
class StepResult:
    err: SdsError | None = None
    received: api_pb2.UnwrapReceivedMessageResponse | None = None
    out: bytes | None = None


def _b64(s: str) -> bytes:
    try:
        return base64.b64decode(s, validate=True)
    except ValueError as exc:
        raise Fatal(f"bad base64 {s!r}: {exc}") from exc


def _err_of(res: sdskit.Result[Any]) -> SdsError | None:
    return res.error if isinstance(res, Err) else None


class Runner:
    def __init__(self, sc: J) -> None:
        self.sc = sc
        self.clock = sdskit.ManualClock(int(sc.get("start_unix_ms", DEFAULT_START)))
        self.ps: dict[str, Participant] = {}
        self.bytes: dict[str, bytes] = {}
        self.nums: dict[str, int] = {}
        self.snaps: dict[str, state_pb2.ChannelSnapshot] = {}
        self.errors: list[str] = []

    def close(self) -> None:
        for p in self.ps.values():
            if p.m is not None:
                p.m.close()
        self.clock.close()

    def run(self) -> None:
        try:
            for i, step in enumerate(self.sc["steps"]):
                desc = f"step {i} ({step['op']}{' ' + step['participant'] if step.get('participant') else ''})"
                if step.get("comment"):
                    desc += f" «{step['comment']}»"
                self.errors = []
                try:
                    self.step(step)
                except Fatal as exc:
                    raise Mismatch(f"{desc}: {exc}") from None
                if self.errors:
                    raise Mismatch(f"{desc}: " + "; ".join(self.errors))
        finally:
            self.close()

    # -- helpers

    def errorf(self, msg: str) -> None:
        self.errors.append(msg)

    def channel(self, s: J) -> str:
        if "channel" in s:
            return str(s["channel"])
        return str(self.sc.get("channel") or DEFAULT_CHANNEL)

    def participant(self, name: str) -> Participant:
        p = self.ps.get(name)
        if p is None:
            raise Fatal(f"unknown participant {name!r}")
        return p

    def saved(self, name: str) -> bytes:
        if name not in self.bytes:
            raise Fatal(f"no bytes saved as {name!r}")
        return self.bytes[name]

    def content(self, s: J) -> bytes:
        if "content" in s:
            return str(s["content"]).encode()
        if "content_base64" in s:
            return _b64(s["content_base64"])
        if "content_size" in s:
            return b"x" * int(s["content_size"])
        raise Fatal("needs content, content_base64 or content_size")

    def config(self, raw: J | None) -> api_pb2.Config:
        cfg = api_pb2.Config()
        if raw:
            from google.protobuf import json_format

            try:
                json_format.ParseDict(raw, cfg)
            except json_format.ParseError as exc:
                raise Fatal(f"config is not protojson of sdskit.v1.Config: {exc}") from exc
        return cfg

    def start(self, p: Participant) -> SdsError | None:
        cfg = api_pb2.Config()
        cfg.CopyFrom(p.config)
        hints = None
        if p.hint_prefix is not None:
            prefix = p.hint_prefix

            def hints(ch: str, mid: str) -> bytes:
                return (prefix + mid).encode()

        try:
            p.m = sdskit.ReliabilityManager(
                p.id,
                config=cfg,
                clock=self.clock,
                events=lambda ev: p.events.append(_to_proto(ev)),
                persistence=p.mp if p.persistence == "memory" else None,
                hints=hints,
            )
        except SdsError as exc:
            return exc
        return None

    def manager(self, p: Participant) -> sdskit.ReliabilityManager:
        if p.m is None:
            raise Fatal(f"participant {p.name} has no manager")
        return p.m

    # -- steps

    def step(self, s: J) -> None:
        op = s["op"]
        p = self.participant(s["participant"]) if s.get("participant") and op != "create" else None
        ev_before = len(p.events) if p else 0
        calls_before = {n: p.mp.calls(n) for n in PERSISTENCE_METHOD_NAMES} if p and p.mp else {}
        res = self.exec(s, p)
        if op == "create":
            p = self.ps.get(s["participant"])
        e: J = s.get("expect") or {}
        self.check_error(e, res.err)
        if res.out is not None and s.get("save_as") and (res.err is None or op == "deliver"):
            self.bytes[s["save_as"]] = res.out
        if "result" in e:
            if res.received is None:
                raise Fatal("expect.result needs a successful deliver step")
            self.check_result(e["result"], res.received)
        if "message" in e:
            if res.out is None:
                raise Fatal("expect.message needs bytes")
            self.check_message("message", e["message"], res.out)
        if "events" in e or e.get("events_excluded"):
            if p is None:
                raise Fatal("event expectations need a participant step")
            self.check_events(e, p.events[ev_before:])
        if "persistence_calls" in e:
            if p is None or p.mp is None:
                raise Fatal("expect.persistence_calls needs memory persistence")
            for name, want in sorted(e["persistence_calls"].items()):
                if name not in PERSISTENCE_METHOD_NAMES:
                    raise Fatal(f"unknown persistence method {name!r}")
                got = p.mp.calls(name) - calls_before.get(name, 0)
                if got != want:
                    self.errorf(f"persistence calls of {name} = {got}, want {want}")
        if "channels" in e:
            if p is None:
                raise Fatal("expect.channels needs a participant")
            got_ch = list(self.manager(p).list_channels().unwrap().channel_ids)
            if got_ch != e["channels"]:
                self.errorf(f"channels = {got_ch}, want {e['channels']}")
        if "persisted_channels" in e:
            if p is None or p.mp is None:
                raise Fatal("expect.persisted_channels needs memory persistence")
            if p.mp.channels() != e["persisted_channels"]:
                self.errorf(f"persisted channels = {p.mp.channels()}, want {e['persisted_channels']}")
        if "state" in e:
            if p is None:
                raise Fatal("expect.state needs a participant")
            snap_res = self.manager(p).get_snapshot(self.channel(s))
            snap: state_pb2.ChannelSnapshot | None
            if isinstance(snap_res, Ok):
                snap = snap_res.value.snapshot
            elif snap_res.error.code == ErrorCode.NOT_FOUND:
                snap = None
            else:
                raise Fatal(f"Snapshot({self.channel(s)}): {snap_res.error}")
            self.check_state("state", e["state"], snap)
        if "persisted" in e:
            if p is None or p.mp is None:
                raise Fatal("expect.persisted needs memory persistence")
            ch = self.channel(s)
            self.check_state("persisted", e["persisted"], p.mp.snapshot(ch) if ch in p.mp.channels() else None)

    def exec(self, s: J, p: Participant | None) -> StepResult:
        op = s["op"]
        if op == "create":
            name = s["participant"]
            if name in self.ps:
                raise Fatal(f"participant {name!r} already exists")
            persistence = s.get("persistence", "none")
            if persistence not in ("none", "memory"):
                raise Fatal(f"unknown persistence {persistence!r}")
            np = Participant(
                name=name,
                id=str(s.get("participant_id", name)),
                config=self.config(s.get("config")),
                persistence=persistence,
                mp=MemoryPersistence() if persistence == "memory" else None,
                hint_prefix=s.get("retrieval_hint_prefix"),
            )
            err = self.start(np)
            if err is None:
                self.ps[name] = np
            return StepResult(err=err)
        if op == "advance_clock":
            self.clock.advance(int(s["ms"]))
            return StepResult()
        if op == "check":
            return StepResult(out=self.saved(s["bytes"]) if s.get("bytes") else None)
        if p is None:
            raise Fatal(f"{op} needs a participant")
        if op in ("fail_persistence", "heal_persistence"):
            if p.mp is None:
                raise Fatal(f"{op} needs memory persistence")
            if op == "heal_persistence":
                if s.get("operation"):
                    p.mp.heal(s["operation"])
                else:
                    p.mp.heal()
            elif "nth" in s:
                p.mp.fail_nth(s["operation"], int(s["nth"]))
            else:
                p.mp.fail_op(s["operation"])
            return StepResult()
        m = self.manager(p)
        ch = self.channel(s)
        if op == "restart":
            if isinstance(m.close(), Err):
                raise Fatal("Close before restart failed")
            if s.get("config"):
                p.config = self.config(s["config"])
            return StepResult(err=self.start(p))
        if op == "close":
            return StepResult(err=_err_of(m.close()))
        if op == "wrap":
            w = m.wrap_outgoing_message(ch, s.get("message_id", ""), self.content(s))
            return StepResult(err=_err_of(w), out=w.value.wire_bytes if isinstance(w, Ok) else None)
        if op == "wrap_ephemeral":
            we = m.wrap_ephemeral(ch, s.get("message_id", ""), self.content(s))
            return StepResult(err=_err_of(we), out=we.value.wire_bytes if isinstance(we, Ok) else None)
        if op == "build_sync":
            b = m.build_sync_message(ch)
            return StepResult(err=_err_of(b), out=b.value.wire_bytes if isinstance(b, Ok) else None)
        if op == "deliver":
            if s.get("bytes"):
                data = self.saved(s["bytes"])
            elif "bytes_base64" in s:
                data = _b64(s["bytes_base64"])
            elif "message" in s:
                data = self.encode_spec(s["message"])
            else:
                raise Fatal("deliver needs bytes, bytes_base64 or message")
            hint = s["retrieval_hint"].encode() if "retrieval_hint" in s else b""
            r = m.unwrap_received_message(data=data, retrieval_hint=hint)
            return StepResult(err=_err_of(r), received=r.value if isinstance(r, Ok) else None, out=data)
        if op == "mark_dependencies_met":
            return StepResult(err=_err_of(m.mark_dependencies_met(ch, s["message_ids"])))
        if op == "ensure_channel":
            return StepResult(err=_err_of(m.ensure_channel(ch)))
        if op == "remove_channel":
            return StepResult(err=_err_of(m.remove_channel(ch)))
        if op == "reset":
            return StepResult(err=_err_of(m.reset()))
        if op == "run_sweeps":
            return StepResult(err=_err_of(m.run_sweeps()))
        raise Fatal(f"unknown op {op!r}")

    def encode_spec(self, ms: J) -> bytes:
        msg = wire_pb2.SdsMessage(
            sender_id=ms.get("sender_id", ""),
            message_id=ms["message_id"],
            channel_id=ms.get("channel_id", self.sc.get("channel") or DEFAULT_CHANNEL),
        )
        if "lamport" in ms:
            msg.lamport_timestamp = int(ms["lamport"])
        for e in ms.get("causal_history", []):
            msg.causal_history.append(self.entry(e))
        for e in ms.get("repair_request", []):
            msg.repair_request.append(self.entry(e))
        if "bloom_of" in ms:
            for i in ms["bloom_of"]:
                _ascii(i)
            msg.bloom_filter = bloom(ms["bloom_of"], int(ms.get("bloom_capacity", 0)), float(ms.get("bloom_error_rate", 0.0)))
        elif "bloom_base64" in ms:
            msg.bloom_filter = _b64(ms["bloom_base64"])
        if "content" in ms:
            msg.content = str(ms["content"]).encode()
        elif "content_base64" in ms:
            msg.content = _b64(ms["content_base64"])
        elif "content_size" in ms:
            msg.content = b"x" * int(ms["content_size"])
        return msg.SerializeToString(deterministic=True)

    def entry(self, e: str | J) -> wire_pb2.HistoryEntry:
        if isinstance(e, str):
            return wire_pb2.HistoryEntry(message_id=e)
        h = wire_pb2.HistoryEntry(message_id=e["message_id"])
        if "sender_id" in e:
            h.sender_id = e["sender_id"]
        if "retrieval_hint" in e:
            h.retrieval_hint = str(e["retrieval_hint"]).encode()
        elif "retrieval_hint_base64" in e:
            h.retrieval_hint = _b64(e["retrieval_hint_base64"])
        return h

    # -- expectations

    def check_error(self, e: J, err: SdsError | None) -> None:
        if "error" not in e:
            if err is not None:
                raise Fatal(f"unexpected error: {err}")
            return
        if err is None:
            raise Fatal(f"succeeded, want error {e['error']}")
        if err.code.name != e["error"]:
            raise Fatal(f"error code {err.code.name} ({err}), want {e['error']}")
        if "error_contains" in e and e["error_contains"] not in str(err):
            self.errorf(f"error {str(err)!r} does not contain {e['error_contains']!r}")

    def num(self, matcher: Any, got: int, what: str, errs: list[str] | None = None) -> None:
        out = self.errors if errs is None else errs
        cmp = matcher if isinstance(matcher, dict) else {"eq": matcher}
        for op in sorted(cmp):
            ref = cmp[op]
            if isinstance(ref, str):
                if ref not in self.nums:
                    raise Fatal(f"{what}: no number saved as {ref!r}")
                want = self.nums[ref]
            else:
                want = int(ref)
            ok = {
                "eq": got == want,
                "ne": got != want,
                "gt": got > want,
                "ge": got >= want,
                "lt": got < want,
                "le": got <= want,
            }.get(op)
            if ok is None:
                raise Fatal(f"{what}: unknown comparison {op!r}")
            if not ok:
                out.append(f"{what} = {got}, want {op} {want}")

    def str_(self, w: J, key: str, got: str, what: str, errs: list[str] | None = None) -> None:
        if key in w and w[key] != got:
            (self.errors if errs is None else errs).append(f"{what} = {got!r}, want {w[key]!r}")

    def ids(self, w: J, key: str, got: list[str], what: str, errs: list[str] | None = None) -> None:
        if key in w and list(w[key]) != got:
            (self.errors if errs is None else errs).append(f"{what} = {got}, want {w[key]}")

    def entries(self, want: list[J] | None, got: Any, what: str, errs: list[str] | None = None) -> None:
        out = self.errors if errs is None else errs
        if want is None:
            return
        got = list(got)
        if len(got) != len(want):
            out.append(f"{what} = {[g.message_id for g in got]}, want {len(want)} entries")
            return
        for i, (w, g) in enumerate(zip(want, got)):
            where = f"{what}[{i}]"
            self.str_(w, "message_id", g.message_id, where + ".message_id", out)
            self.str_(w, "sender_id", g.sender_id, where + ".sender_id", out)
            if "retrieval_hint" in w and w["retrieval_hint"].encode() != g.retrieval_hint:
                out.append(f"{where}.retrieval_hint = {g.retrieval_hint!r}, want {w['retrieval_hint']!r}")

    def check_result(self, w: J, got: api_pb2.UnwrapReceivedMessageResponse) -> None:
        kind = api_pb2.MessageKind.Name(got.kind).removeprefix("MESSAGE_KIND_")
        self.str_(w, "kind", kind, "result.kind")
        if "delivered" in w and w["delivered"] != got.delivered:
            self.errorf(f"result.delivered = {got.delivered}, want {w['delivered']}")
        self.str_(w, "message_id", got.message_id, "result.message_id")
        self.str_(w, "channel_id", got.channel_id, "result.channel_id")
        self.str_(w, "sender_id", got.sender_id, "result.sender_id")
        if "content" in w and w["content"].encode() != got.content:
            self.errorf(f"result.content = {got.content!r}, want {w['content']!r}")
        if "lamport" in w:
            self.num(w["lamport"], got.lamport_timestamp, "result.lamport")
        self.ids(w, "missing", [e.message_id for e in got.missing], "result.missing")
        self.entries(w.get("missing_entries"), got.missing, "result.missing_entries")

    def check_message(self, what: str, w: J, data: bytes, errs: list[str] | None = None) -> None:
        out = self.errors if errs is None else errs
        try:
            m = wire_pb2.SdsMessage.FromString(data)
        except Exception as exc:  # noqa: BLE001
            raise Fatal(f"{what}: the bytes do not decode as an SdsMessage: {exc}") from exc
        has_l = m.HasField("lamport_timestamp")
        kind = "EPHEMERAL" if not has_l else ("CONTENT" if m.content else "SYNC")
        self.str_(w, "kind", kind, what + ".kind", out)
        self.str_(w, "message_id", m.message_id, what + ".message_id", out)
        self.str_(w, "sender_id", m.sender_id, what + ".sender_id", out)
        self.str_(w, "channel_id", m.channel_id, what + ".channel_id", out)
        if "has_lamport" in w and w["has_lamport"] != has_l:
            out.append(f"{what} has lamport = {has_l}, want {w['has_lamport']}")
        if "lamport" in w:
            if not has_l:
                out.append(f"{what} has no lamport timestamp")
            else:
                self.num(w["lamport"], m.lamport_timestamp, what + ".lamport", out)
        if "save_lamport_as" in w:
            self.nums[w["save_lamport_as"]] = m.lamport_timestamp
        if "content" in w and w["content"].encode() != m.content:
            out.append(f"{what}.content = {m.content!r}, want {w['content']!r}")
        self.ids(w, "causal_history", [e.message_id for e in m.causal_history], what + ".causal_history", out)
        self.entries(w.get("causal_history_entries"), m.causal_history, what + ".causal_history_entries", out)
        self.ids(w, "repair_request", [e.message_id for e in m.repair_request], what + ".repair_request", out)
        self.entries(w.get("repair_request_entries"), m.repair_request, what + ".repair_request_entries", out)
        if "has_bloom" in w and w["has_bloom"] != bool(m.bloom_filter):
            out.append(f"{what} has bloom filter = {bool(m.bloom_filter)}, want {w['has_bloom']}")
        if w.get("bloom_contains") or w.get("bloom_lacks"):
            cap, rate = int(w.get("bloom_capacity", 0)), float(w.get("bloom_error_rate", 0.0))
            for i in list(w.get("bloom_contains", [])) + list(w.get("bloom_lacks", [])):
                _ascii(i)
            try:
                for i in w.get("bloom_contains", []):
                    if not bloom_contains(m.bloom_filter, i, cap, rate):
                        out.append(f"{what}: bloom filter lacks {i!r}")
                for i in w.get("bloom_lacks", []):
                    if bloom_contains(m.bloom_filter, i, cap, rate):
                        out.append(f"{what}: bloom filter contains {i!r}")
            except SdsError as exc:
                raise Fatal(f"{what}: bloom filter ({len(m.bloom_filter)} bytes) does not decode: {exc}") from exc

    def mismatch(self, w: J, ev: events_pb2.Event) -> list[str]:
        kind = ev.WhichOneof("event")
        if kind != w["type"]:
            return [f"type {kind}, want {w['type']}"]
        allowed = EVENT_FIELDS.get(w["type"])
        if allowed is None:
            raise Fatal(f"unknown event type {w['type']!r}")
        for f in w:
            if f != "type" and f not in allowed:
                raise Fatal(f"event matcher field {f!r} does not apply to {w['type']}")
        x = getattr(ev, kind)
        errs: list[str] = []
        for f in ("channel_id", "message_id", "sender_id", "operation"):
            if f in w:
                self.str_(w, f, getattr(x, f), f, errs)
        if "content" in w and w["content"].encode() != x.content:
            errs.append(f"content {x.content!r}, want {w['content']!r}")
        if "lamport" in w:
            self.num(w["lamport"], x.lamport_timestamp, "lamport", errs)
        for f in ("count", "attempt", "resend_attempts"):
            if f in w and getattr(x, f) != w[f]:
                errs.append(f"{f} {getattr(x, f)}, want {w[f]}")
        if "missing" in w and [e.message_id for e in x.missing] != list(w["missing"]):
            errs.append(f"missing {[e.message_id for e in x.missing]}, want {w['missing']}")
        self.entries(w.get("missing_entries"), x.missing if "missing_entries" in w else [], "missing", errs)
        if "delivered" in w and x.delivered != w["delivered"]:
            errs.append(f"delivered {x.delivered}, want {w['delivered']}")
        if "detail_contains" in w and w["detail_contains"] not in x.detail:
            errs.append(f"detail {x.detail!r} does not contain {w['detail_contains']!r}")
        if "wire_bytes" in w:
            if w["wire_bytes"] not in self.bytes:
                errs.append(f"no bytes saved as {w['wire_bytes']!r}")
            elif self.bytes[w["wire_bytes"]] != x.wire_bytes:
                errs.append(f"wire bytes differ from those saved as {w['wire_bytes']!r}")
        if "wire_message" in w:
            try:
                self.check_message("wire_message", w["wire_message"], x.wire_bytes, errs)
            except Fatal as exc:
                errs.append(str(exc))
        return errs

    def apply_saves(self, w: J, ev: events_pb2.Event) -> None:
        if "save_wire_bytes_as" in w:
            kind = ev.WhichOneof("event")
            if kind in ("resend_requested", "repair_ready"):
                self.bytes[w["save_wire_bytes_as"]] = getattr(ev, kind).wire_bytes

    def check_events(self, e: J, got: list[events_pb2.Event]) -> None:
        desc = "[" + ", ".join(f"{ev.WhichOneof('event')}({getattr(getattr(ev, ev.WhichOneof('event') or ''), 'message_id', '')})" for ev in got) + "]"
        for w in e.get("events_excluded", []):
            for ev in got:
                if not self.mismatch(w, ev):
                    self.errorf(f"excluded event {w['type']} was emitted; events {desc}")
        if "events" not in e:
            return
        want: list[J] = e["events"]
        mode = e.get("events_mode", "exact")
        if mode == "exact":
            if len(got) != len(want):
                self.errorf(f"events {desc}, want {len(want)} events")
                return
            for i, (w, ev) in enumerate(zip(want, got)):
                msg = self.mismatch(w, ev)
                if msg:
                    self.errorf(f"event {i}: {'; '.join(msg)}; events {desc}")
                    continue
                self.apply_saves(w, ev)
        elif mode == "contains":
            j = 0
            for w in want:
                found = False
                while j < len(got):
                    if not self.mismatch(w, got[j]):
                        self.apply_saves(w, got[j])
                        found = True
                        j += 1
                        break
                    j += 1
                if not found:
                    self.errorf(f"events {desc} do not contain {w['type']}({w.get('message_id', '')}) in order")
                    return
        else:
            raise Fatal(f"unknown events_mode {mode!r}")

    def check_state(self, what: str, w: J, snap: state_pb2.ChannelSnapshot | None) -> None:
        exists = snap is not None
        if "exists" in w and w["exists"] != exists:
            raise Fatal(f"{what} exists = {exists}, want {w['exists']}")
        if snap is None:
            if w.get("exists", True):
                raise Fatal(f"{what}: the channel has no state (not loaded / nothing stored)")
            return
        snap = _normalize(snap)
        if "lamport" in w:
            self.num(w["lamport"], snap.lamport_timestamp, what + ".lamport")
        if "save_lamport_as" in w:
            self.nums[w["save_lamport_as"]] = snap.lamport_timestamp
        log_ids = [m.message_id for m in snap.log]
        self.ids(w, "log", log_ids, what + ".log")
        if "log_entries" in w:
            if len(w["log_entries"]) != len(snap.log):
                self.errorf(f"{what}.log = {log_ids}, want {len(w['log_entries'])} entries")
            else:
                for i, (le, m) in enumerate(zip(w["log_entries"], snap.log)):
                    where = f"{what}.log[{i}]"
                    self.str_(le, "message_id", m.message_id, where + ".message_id")
                    self.str_(le, "sender_id", m.sender_id, where + ".sender_id")
                    if "content" in le and le["content"].encode() != m.content:
                        self.errorf(f"{where}.content = {m.content!r}, want {le['content']!r}")
                    if "lamport" in le:
                        self.num(le["lamport"], m.lamport_timestamp, where + ".lamport")
        for i in w.get("log_contains", []):
            if i not in log_ids:
                self.errorf(f"{what}.log {log_ids} lacks {i!r}")
        for i in w.get("log_lacks", []):
            if i in log_ids:
                self.errorf(f"{what}.log {log_ids} contains {i!r}")
        out_ids = [u.message.message_id for u in snap.outgoing]
        self.ids(w, "outgoing", out_ids, what + ".outgoing")
        if "outgoing_entries" in w:
            if len(w["outgoing_entries"]) != len(snap.outgoing):
                self.errorf(f"{what}.outgoing = {out_ids}, want {len(w['outgoing_entries'])} entries")
            else:
                for i, (oe, u) in enumerate(zip(w["outgoing_entries"], snap.outgoing)):
                    where = f"{what}.outgoing[{i}]"
                    self.str_(oe, "message_id", u.message.message_id, where + ".message_id")
                    if "resend_attempts" in oe and oe["resend_attempts"] != u.resend_attempts:
                        self.errorf(f"{where}.resend_attempts = {u.resend_attempts}, want {oe['resend_attempts']}")
                    self.ids(oe, "possible_ack_senders", list(u.possible_ack_senders), where + ".possible_ack_senders")
        in_ids = [im.message.message_id for im in snap.incoming]
        self.ids(w, "incoming", in_ids, what + ".incoming")
        if "incoming_entries" in w:
            if len(w["incoming_entries"]) != len(snap.incoming):
                self.errorf(f"{what}.incoming = {in_ids}, want {len(w['incoming_entries'])} entries")
            else:
                for i, (ie, im) in enumerate(zip(w["incoming_entries"], snap.incoming)):
                    where = f"{what}.incoming[{i}]"
                    self.str_(ie, "message_id", im.message.message_id, where + ".message_id")
                    self.ids(ie, "missing", list(im.missing_dependencies), where + ".missing")
        now = self.clock.now_ms()
        orep = [(r.entry, r.attempts, r.request_at_unix_ms <= now) for r in snap.outgoing_repair]
        self.repairs(what + ".outgoing_repair", w.get("outgoing_repair"), w.get("outgoing_repair_entries"), orep)
        irep = [(q.entry, 0, q.respond_at_unix_ms <= now) for q in snap.incoming_repair]
        self.repairs(what + ".incoming_repair", w.get("incoming_repair"), w.get("incoming_repair_entries"), irep)
        if "retrieval_hints" in w:
            got_h = {h.message_id: h.retrieval_hint.decode("utf-8", "replace") for h in snap.retrieval_hints}
            if got_h != w["retrieval_hints"]:
                self.errorf(f"{what}.retrieval_hints = {got_h}, want {w['retrieval_hints']}")
        if "equals" in w:
            prev = self.snaps.get(w["equals"])
            if prev is None:
                raise Fatal(f"{what}: no state saved as {w['equals']!r}")
            if prev != snap:
                self.errorf(f"{what} differs from the state saved as {w['equals']!r}:\nsaved {prev}\nnow   {snap}")
        if "save_as" in w:
            self.snaps[w["save_as"]] = snap

    def repairs(self, what: str, ids: list[str] | None, want: list[J] | None, got: list[tuple[Any, int, bool]]) -> None:
        got_ids = [g[0].message_id for g in got]
        if ids is not None and list(ids) != got_ids:
            self.errorf(f"{what} = {got_ids}, want {ids}")
        if want is None:
            return
        if len(want) != len(got):
            self.errorf(f"{what} = {got_ids}, want {len(want)} entries")
            return
        for i, (w, (entry, attempts, due)) in enumerate(zip(want, got)):
            where = f"{what}[{i}]"
            self.str_(w, "message_id", entry.message_id, where + ".message_id")
            self.str_(w, "sender_id", entry.sender_id, where + ".sender_id")
            if "attempts" in w and w["attempts"] != attempts:
                self.errorf(f"{where}.attempts = {attempts}, want {w['attempts']}")
            if "due" in w and w["due"] != due:
                self.errorf(f"{where}.due = {due}, want {w['due']}")


EVENT_FIELDS: dict[str, tuple[str, ...]] = {
    "message_ready": ("channel_id", "message_id", "sender_id", "content", "lamport"),
    "message_acknowledged": ("channel_id", "message_id"),
    "message_possibly_acknowledged": ("channel_id", "message_id", "count"),
    "message_unacknowledged": ("channel_id", "message_id", "resend_attempts"),
    "resend_requested": ("channel_id", "message_id", "attempt", "wire_bytes", "wire_message", "save_wire_bytes_as"),
    "missing_dependencies": ("channel_id", "message_id", "missing", "missing_entries"),
    "message_lost": ("channel_id", "message_id", "missing", "missing_entries", "delivered"),
    "sync_due": ("channel_id",),
    "repair_ready": ("channel_id", "message_id", "wire_bytes", "wire_message", "save_wire_bytes_as"),
    "persistence_failed": ("channel_id", "operation", "detail_contains"),
}


def _ascii(i: str) -> None:
    if not i.isascii():
        raise Fatal(f"bloom filter id {i!r} is not ASCII")


def _normalize(s: state_pb2.ChannelSnapshot) -> state_pb2.ChannelSnapshot:
    out = state_pb2.ChannelSnapshot()
    out.CopyFrom(s)
    inc = sorted(out.incoming, key=lambda x: x.message.message_id)
    orep = sorted(out.outgoing_repair, key=lambda x: x.entry.message_id)
    irep = sorted(out.incoming_repair, key=lambda x: x.entry.message_id)
    hints = sorted(out.retrieval_hints, key=lambda x: x.message_id)
    res = state_pb2.ChannelSnapshot(
        channel_id=out.channel_id,
        lamport_timestamp=out.lamport_timestamp,
        log=list(out.log),
        outgoing=list(out.outgoing),
        incoming=inc,
        outgoing_repair=orep,
        incoming_repair=irep,
        retrieval_hints=hints,
    )
    return res


def _to_proto(ev: sdskit.Event) -> events_pb2.Event:
    """The IDL Event of a typed event (the recorder keeps the wire form the matchers read)."""
    out = events_pb2.Event()
    name = _EVENT_FIELD[type(ev).__name__]
    target = getattr(out, name)
    for f in type(ev).__dataclass_fields__:
        v = getattr(ev, f)
        if isinstance(v, tuple):
            getattr(target, f).extend(v)
        elif v is not None:
            setattr(target, f, v)
    target.SetInParent()
    return out


_EVENT_FIELD = {
    "MessageReady": "message_ready",
    "MessageAcknowledged": "message_acknowledged",
    "MessagePossiblyAcknowledged": "message_possibly_acknowledged",
    "MessageUnacknowledged": "message_unacknowledged",
    "ResendRequested": "resend_requested",
    "MissingDependencies": "missing_dependencies",
    "MessageLost": "message_lost",
    "SyncDue": "sync_due",
    "RepairReady": "repair_ready",
    "PersistenceFailed": "persistence_failed",
}
