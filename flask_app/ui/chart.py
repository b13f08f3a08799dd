"""A small bar chart of executions finished per minute, drawn as inline SVG on the server (no script needed).

Failures are drawn hatched as well as red, so the chart reads without colour; the caption says the totals
in words for screen readers.
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

WIDTH, HEIGHT, GAP = 600, 120, 1


def _bar(x: float, y: float, width: float, height: float, css: str, label: str) -> str:
    return (
        f'<rect class="{css}" x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" height="{height:.1f}">'
        f"<title>{escape(label)}</title></rect>"
    )


def throughput_svg(buckets: Sequence[dict[str, int]]) -> Markup:
    """One stacked bar per minute (oldest on the left): completed below, failed and cancelled on top."""
    count = max(len(buckets), 1)
    peak = max((sum(b.values()) for b in buckets), default=0) or 1
    slot = WIDTH / count
    bars: list[str] = []
    for index, bucket in enumerate(buckets):
        minutes_ago = count - 1 - index
        x, base = index * slot, float(HEIGHT)
        when = "this minute" if minutes_ago == 0 else f"{minutes_ago} min ago"
        for status, css in (("completed", "ok"), ("failed", "bad"), ("cancelled", "off")):
            n = bucket.get(status, 0)
            if not n:
                continue
            height = HEIGHT * n / peak
            base -= height
            bars.append(_bar(x, base, max(slot - GAP, 1), height, css, f"{when}: {n} {status}"))
    totals = {s: sum(b.get(s, 0) for b in buckets) for s in ("completed", "failed", "cancelled")}
    summary = (
        f"In the last {len(buckets)} minutes: {totals['completed']} completed, {totals['failed']} failed, "
        f"{totals['cancelled']} cancelled; busiest minute {peak if any(totals.values()) else 0}."
    )
    return Markup(
        f'<figure class="chart"><svg viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" role="img" '
        f'aria-label="{escape(summary)}" preserveAspectRatio="none">'
        '<defs><pattern id="hatch" width="4" height="4" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><rect width="2" height="4" class="hatch"/></pattern></defs>'
        f'<line x1="0" y1="{HEIGHT}" x2="{WIDTH}" y2="{HEIGHT}" class="axis"/>'
        + "".join(bars)
        + f"</svg><figcaption>{escape(summary)} Left edge: {len(buckets)} minutes ago; right edge: now.</figcaption>"
        "</figure>"
    )
