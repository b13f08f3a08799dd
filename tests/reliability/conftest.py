"""Every test here ends by checking the liveness invariant: none of its executions is left stranded."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _ends_with_nothing_stranded(nothing_stranded: None) -> None:
    """See `nothing_stranded` in tests/conftest.py."""
