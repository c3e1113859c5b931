"""Runs every language-neutral conformance scenario of idl/conformance through the Python
SDK (the same files as sdk-go's TestConformance)."""

from __future__ import annotations

import pytest

from conformance import Mismatch, Runner, load, scenario_names

NAMES = scenario_names()


def test_scenarios_found() -> None:
    assert NAMES, "no scenario files under idl/conformance/scenarios"


@pytest.mark.parametrize("name", NAMES)
def test_scenario(name: str) -> None:
    try:
        Runner(load(name)).run()
    except Mismatch as exc:
        pytest.fail(f"{name}: {exc}", pytrace=False)
