"""The dashboard's pure parts: the chart, form parsing, the session cookie codec and the memo."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from flask_app.auth import Token
from flask_app.ui import forms
from flask_app.ui.chart import throughput_svg
from flask_app.ui.format import attempts_table, when
from flask_app.ui.memo import Memo
from flask_app.ui.session import SessionCodec, same_csrf
from zart.errors import InvalidData


def test_the_chart_says_its_totals_in_words_and_marks_failures_apart_from_colour():
    buckets = [{"completed": 0, "failed": 0, "cancelled": 0}] * 58 + [
        {"completed": 3, "failed": 1, "cancelled": 0},
        {"completed": 1, "failed": 0, "cancelled": 2},
    ]
    svg = str(throughput_svg(buckets))
    assert "4 completed, 1 failed, 2 cancelled" in svg
    assert svg.count('class="bad"') == 1 and "url(#hatch)" not in svg  # the hatch is applied by the stylesheet
    assert "<title>1 min ago: 1 failed</title>" in svg and "<title>this minute: 2 cancelled</title>" in svg


def test_an_empty_hour_draws_no_bars():
    svg = str(throughput_svg([{"completed": 0, "failed": 0, "cancelled": 0}] * 60))
    assert "<rect class=" not in svg and "0 completed, 0 failed, 0 cancelled" in svg


def test_times_are_shown_in_utc_whatever_their_zone():
    from zoneinfo import ZoneInfo

    moment = datetime(2026, 4, 4, 12, 23, 11, 250000, tzinfo=ZoneInfo("Europe/Paris"))
    assert str(when(moment)) == '<time datetime="2026-04-04T10:23:11.250Z">2026-04-04 10:23:11\u00a0UTC</time>'
    assert "—" in str(when(None))


def test_attempt_rows_escape_what_the_workflow_wrote():
    html = str(
        attempts_table(
            [
                {
                    "attempt": 1,
                    "started_at": datetime(2026, 1, 1, tzinfo=UTC),
                    "ended_at": None,
                    "outcome": "failed",
                    "error": {"type": "ValueError", "message": "<script>alert(1)</script>"},
                }
            ]
        )
    )
    assert "<script>" not in html and "&lt;script&gt;" in html and "✗" in html
    assert str(attempts_table([])) == ""


def test_form_json_is_parsed_or_refused_with_the_reason():
    assert forms.json_object({"d": ' {"a": 1} '}, "d", "The input") == {"a": 1}
    assert forms.json_object({"d": "  "}, "d", "The input") is None
    with pytest.raises(InvalidData, match="must be a JSON object"):
        forms.json_object({"d": "[1]"}, "d", "The input")
    with pytest.raises(InvalidData, match="not valid JSON"):
        forms.json_value({"d": "{"}, "d", "The payload")
    assert forms.utc_time({"t": "2026-04-04T10:23"}, "t", "t") == datetime(2026, 4, 4, 10, 23, tzinfo=UTC)
    with pytest.raises(InvalidData):
        forms.run_index({"run": "-1"})


def test_a_session_cookie_survives_only_untouched_and_only_for_a_configured_token():
    tokens = (Token("ops", b"s3cret", "admin"), Token("viewer", b"look", "read"))
    codec = SessionCodec(tokens, "postgresql://db/zart")
    session = codec.fresh(tokens[1])
    value = codec.dumps(session)
    loaded = codec.loads(value)
    assert loaded == session and codec.token_of(loaded, tokens) == tokens[1]
    assert codec.loads(value[:-2] + "xx") is None and codec.loads("") is None
    assert SessionCodec((tokens[0],), "postgresql://db/zart").loads(value) is None  # another token set, another key
    open_codec = SessionCodec((), "postgresql://db/zart")
    shown = open_codec.dumps(open_codec.fresh())
    assert SessionCodec((), "postgresql://db/zart").loads(shown) is not None  # any process of the deployment
    assert SessionCodec((), "postgresql://other/zart").loads(shown) is None
    assert same_csrf(loaded, session.csrf) and not same_csrf(loaded, "forged") and not same_csrf(None, session.csrf)


def test_the_memo_recomputes_only_after_its_time():
    calls = []
    memo = Memo(60)
    assert memo.get("k", lambda: calls.append(1) or len(calls)) == 1
    assert memo.get("k", lambda: calls.append(1) or len(calls)) == 1
    expired = Memo(0)
    expired.get("k", lambda: calls.append(1))
    expired.get("k", lambda: calls.append(1))
    assert len(calls) == 3
