"""A batch report as one self-contained HTML file: inline SVG plots, no script, no network.

Sections: headline figures, the funnel (candidates entering each stage, rejections by
reason), median time per stage, every task's threshold ladder, diversity counts and the task
table. The report is kept in the batch's store, beside the bundles (`write_report`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sandforge.tiers import REFERENCE_SUBMISSIONS, TIERS

if TYPE_CHECKING:
    from sandforge.storage.store import Store

REPORTS = "_reports"  # a store-object folder: never a task id the stores list
BAR_WIDTH, ROW_HEIGHT, LABEL_WIDTH, NOTE_WIDTH = 360, 22, 200, 160
LADDER_WIDTH, LABEL_GAP = 520, 16
TIER_COLORS = {"median": "#4c78a8", "bronze": "#cd7f32", "silver": "#7f8c99", "gold": "#d4a017"}
STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#222;max-width:1100px}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.85rem}td,th{border:1px solid #ddd;padding:.25rem .5rem}
th{background:#f4f4f4;text-align:left}.num{text-align:right;font-variant-numeric:tabular-nums}
.figures span{display:inline-block;margin-right:1.5rem}.figures b{font-size:1.3rem}
svg text{font-size:12px;font-family:system-ui,sans-serif}.grid{display:flex;flex-wrap:wrap;gap:2rem}
"""


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def bar_chart(rows: list[tuple[str, float, str]], color: str = "#4c78a8") -> str:
    """Horizontal bars: (label, value, note shown after the bar)."""
    return stacked_bars([(label, value, 0, note) for label, value, note in rows], color)


def stacked_bars(rows: list[tuple[str, float, float, str]], color: str = "#4c78a8") -> str:
    """Bars of (label, total, red part at the bar's end, note): the funnel's shape."""
    top = max((total for _, total, _, _ in rows), default=0) or 1
    height = ROW_HEIGHT * len(rows) + 4
    parts = [f'<svg width="{LABEL_WIDTH + BAR_WIDTH + NOTE_WIDTH}" height="{height}" role="img">']
    for i, (label, total, red, note) in enumerate(rows):
        y, width, cut = i * ROW_HEIGHT + 2, BAR_WIDTH * total / top, BAR_WIDTH * red / top
        parts.append(
            f'<text x="{LABEL_WIDTH - 6}" y="{y + 15}" text-anchor="end">{escape(label)}</text>'
            f'<rect x="{LABEL_WIDTH}" y="{y + 3}" width="{width - cut:.1f}" '
            f'height="{ROW_HEIGHT - 6}" fill="{color}"><title>{escape(label)}: {escape(note)}'
            "</title></rect>"
        )
        if red:
            parts.append(
                f'<rect x="{LABEL_WIDTH + width - cut:.1f}" y="{y + 3}" width="{cut:.1f}" '
                f'height="{ROW_HEIGHT - 6}" fill="#e15759"><title>{escape(note)}</title></rect>'
            )
        parts.append(f'<text x="{LABEL_WIDTH + width + 6:.1f}" y="{y + 15}">{escape(note)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _rows_for(xs: list[float]) -> list[int]:
    """Label rows (for labels sorted by x) that keep neighbours from overlapping."""
    ends: list[float] = []  # x of the last label placed in each row
    rows = []
    for x in xs:
        row = next((r for r, end in enumerate(ends) if x - end > LABEL_GAP), len(ends))
        if row == len(ends):
            ends.append(x)
        else:
            ends[row] = x
        rows.append(row)
    return rows


def ladder(task: dict[str, Any]) -> str:
    """Thresholds (ticks, labelled above) and baselines (dots, below), better to the right."""
    sign = -1 if task["is_lower_better"] else 1
    baselines = {k: v for k, v in task["scores"].items() if k in REFERENCE_SUBMISSIONS}
    values = [*baselines.values(), *task["thresholds"].values()]
    lo, hi = min(sign * v for v in values), max(sign * v for v in values)
    span = (hi - lo) or 1.0

    def x(value: float) -> float:
        return 20 + (LADDER_WIDTH - 40) * (sign * value - lo) / span

    mid = 34
    parts = [
        f'<svg width="{LADDER_WIDTH}" height="{2 * mid}" role="img">',
        f'<line x1="10" y1="{mid}" x2="{LADDER_WIDTH - 10}" y2="{mid}" stroke="#bbb"/>',
    ]
    ticks = sorted(task["thresholds"].items(), key=lambda item: x(item[1]))
    for (tier, value), row in zip(ticks, _rows_for([x(v) for _, v in ticks]), strict=True):
        color, px = TIER_COLORS[tier], x(value)
        parts.append(
            f'<line x1="{px:.1f}" y1="{mid - 9}" x2="{px:.1f}" y2="{mid + 9}" stroke="{color}" '
            f'stroke-width="3"><title>{tier} threshold {_fmt(value)}</title></line>'
            f'<text x="{px:.1f}" y="{mid - 13 - 12 * row}" text-anchor="middle" fill="{color}">'
            f"{tier[0].upper()}</text>"
        )
    dots = sorted(baselines.items(), key=lambda item: x(item[1]))
    for (name, value), row in zip(dots, _rows_for([x(v) for _, v in dots]), strict=True):
        px = x(value)
        parts.append(
            f'<circle cx="{px:.1f}" cy="{mid}" r="4" fill="#333"><title>{name} {_fmt(value)}'
            f'</title></circle><text x="{px:.1f}" y="{mid + 22 + 12 * row}" '
            f'text-anchor="middle">{name[:2]}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _funnel_section(summary: dict[str, Any]) -> str:
    rows = [
        (
            row["stage"],
            row["entered"],
            row["rejected"],
            f"{row['entered']} in, {row['rejected']} out",
        )
        for row in summary["funnel"]
    ]
    reasons = [
        [escape(stage), escape(reason), f'<span class="num">{count}</span>']
        for stage, by_reason in summary["rejections_by_stage"].items()
        for reason, count in by_reason.items()
    ]
    rejected = _table(["stage", "reason", "count"], reasons) if reasons else "<p>none</p>"
    return f"<h2>Funnel</h2>{stacked_bars(rows)}<h3>Rejections by stage and reason</h3>{rejected}"


def _timing_section(summary: dict[str, Any]) -> str:
    """Most stages are not task runs of their own, so this is where their time shows."""
    medians = summary["median_stage_seconds"]
    rows = [
        (row["stage"], medians[row["stage"]], f"{medians[row['stage']]:.2f} s")
        for row in summary["funnel"]
        if row["stage"] in medians
    ]
    chart = bar_chart(rows, color="#9c755f") if rows else "<p>none</p>"
    return f"<h2>Stage times</h2><p>Median seconds per candidate that ran the stage.</p>{chart}"


def _ladder_section(tasks: list[dict[str, Any]]) -> str:
    legend = ", ".join(
        f'<span style="color:{color}">&#9646;</span> {tier}' for tier, color in TIER_COLORS.items()
    )
    label = "{}@{}<br><small>{}</small>"
    rows = [
        [label.format(escape(t["task_id"]), t["version"], escape(t["metric"])), ladder(t)]
        for t in tasks
    ]
    return (
        "<h2>Threshold ladders</h2><p>Better to the right. Dots: baselines (sa sample, tr "
        f"trivial, si simple, st strong, or oracle); ticks: {legend}.</p>"
        + _table(["task", "ladder"], rows)
    )


def _diversity_section(summary: dict[str, Any]) -> str:
    charts = "".join(
        f"<div><h3>{escape(field.replace('_', ' '))}</h3>"
        + bar_chart([(k, v, str(v)) for k, v in counts.items()], color="#59a14f")
        + "</div>"
        for field, counts in summary["diversity"].items()
    )
    return f'<h2>Diversity</h2><div class="grid">{charts}</div>'


def _task_table(tasks: list[dict[str, Any]]) -> str:
    rows = [
        [
            f"{escape(t['task_id'])}@{t['version']}",
            escape(t["seed_id"]),
            escape(t["domain"]),
            escape(f"{t['task_type']}, {t['metric']}"),
            *(f'<span class="num">{_fmt(t["thresholds"][k])}</span>' for k in TIERS),
            "yes" if t["reused"] else "",
            f"<code>{escape(str(t['path']))}</code>",
        ]
        for t in tasks
    ]
    header = ["task", "seed", "domain", "type, metric", *TIERS, "reused", "bundle"]
    return "<h2>Tasks</h2>" + _table(header, rows)


def render_report(summary: dict[str, Any], title: str, parameters: dict[str, Any]) -> str:
    """The whole report; `parameters` are the batch's flow parameters, shown as given."""
    figures = "".join(
        f"<span><b>{value}</b> {label}</span>"
        for label, value in (
            ("candidates", summary["candidates"]),
            ("accepted", summary["accepted"]),
            ("acceptance", f"{summary['acceptance_rate']:.0%}"),
            ("rejected", summary["rejected"]),
            ("reused from cache", summary["reused"]),
            ("sandbox", escape(", ".join(summary.get("sandbox") or ["none"]))),
        )
    )
    params = ", ".join(f"{escape(k)}={escape(repr(v))}" for k, v in parameters.items())
    short = summary.get("short_of_quota") or {}
    warning = f"<p><b>Short of quota:</b> {escape(str(short))}</p>" if short else ""
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}'
        f"</title><style>{STYLE}</style></head><body><h1>{escape(title)}</h1>"
        f'<p><small>{params}</small></p><p class="figures">{figures}</p>{warning}'
        + _funnel_section(summary)
        + _timing_section(summary)
        + _ladder_section(summary["tasks"])
        + _diversity_section(summary)
        + _task_table(summary["tasks"])
        + "</body></html>\n"
    )


def report_name(run_name: str, now: datetime | None = None) -> str:
    """`<UTC time>-<run name>`: sorts by time, names the run the Prefect UI shows."""
    return f"{now or datetime.now(UTC):%Y%m%dT%H%M%SZ}-{Path(run_name).name}"


def write_report(store: Store, name: str, html: str) -> str:
    """Store the HTML report as `<store>/_reports/<name>.html`; returns its URL."""
    object_name = f"{REPORTS}/{name}.html"
    store.put_object(object_name, html.encode())
    return store.object_url(object_name)
