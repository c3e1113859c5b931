"""Shared fixtures of the sdk-python tests."""

from __future__ import annotations

import pytest

import sdskit


@pytest.fixture
def clock() -> sdskit.ManualClock:
    return sdskit.ManualClock(1_700_000_000_000)
