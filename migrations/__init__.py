"""Alembic environment and revisions: the only way the schema changes."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType


def load_revision(filename: str) -> ModuleType:
    """An earlier revision's module, for a revision that amends what it installed (revision files, named by
    number, are not importable as modules)."""
    path = Path(__file__).with_name("versions") / filename
    spec = importlib.util.spec_from_file_location(f"zart_migration_{filename.split('_', 1)[0]}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
