"""The `zart` command: a Click group whose commands parse, call the service and render."""

from __future__ import annotations

from zart.cli.app import cli, main

__all__ = ["cli", "main"]
