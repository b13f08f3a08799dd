"""Client data reaches an operator's terminal through the CLI: its control characters and escape sequences are
shown escaped, never interpreted; the CLI's own colours still work."""

from __future__ import annotations

from flask_app import create_app
from tests.cli.cli import Cli
from zart.cli.render import printable

HOSTILE = "stop\x1b[2J\x1b]0;owned\x07\u202eevil\x9b31m\r\nforged line"


def test_printable_escapes_every_control_and_keeps_ordinary_text():
    assert printable("plain ünïcode ✓ text") == "plain ünïcode ✓ text"
    shown = printable(HOSTILE)
    assert shown.isprintable()
    assert "\\x1b[2J" in shown and "\\u202e" in shown and "\\x9b" in shown and "\\r\\n" in shown


def test_a_hostile_pause_reason_is_printed_escaped(env, tmp_path):
    client = create_app(settings=env.settings()).test_client()
    created = client.post("/zart/admin/v1/pause", json={"task": "t.no-such-task", "reason": HOSTILE})
    assert created.status_code == 201, created.get_json()
    zart = Cli(env, tmp_path)
    try:
        listed = zart("admin", "pause", "list")
        assert listed.returncode == 0, listed.stderr
        assert "\\x1b[2J" in listed.stdout and "forged line" in listed.stdout
        assert "\x1b" not in listed.stdout and "\u202e" not in listed.stdout and "\x9b" not in listed.stdout
        assert not any(line.startswith("forged line") for line in listed.lines)

        on_terminal = zart.on_terminal("admin", "pause", "list")
        assert "\x1b[1m" in on_terminal  # our bold titles
        assert "\x1b[2J" not in on_terminal and "\x1b]0;" not in on_terminal
    finally:
        client.delete(f"/zart/admin/v1/pause/{created.get_json()['rule_id']}")
