"""Fixtures of the job tests: the test notebooks' folder (the workspace whose services are never
called, ``offline_workspace``, is in tests/conftest.py: the store tests use it too)."""

from __future__ import annotations

from pathlib import Path

import pytest

TEST_NOTEBOOKS = Path(__file__).parent / "notebooks"


@pytest.fixture
def test_notebooks() -> Path:
    return TEST_NOTEBOOKS
