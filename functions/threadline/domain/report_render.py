"""A team report as mail: a plain-text part and an HTML part with one small chart per project.

The HTML keeps to what mail clients render: tables, inline styles, and charts as PNG parts referenced
by `cid:` (Gmail and Outlook block `data:` images and SVG). Every question text is escaped.
"""

from __future__ import annotations

from html import escape

from threadline.domain.chart import bar_chart
from threadline.domain.reports import CategoryLine, InlineImage, OutgoingMail, ProjectReport, TeamReport
from threadline.domain.usage import ExchangeFigures

# A team with many projects still gets every figure in text; charts stop here to keep the mail small.
MAX_CHARTS = 20
SETTINGS_LINE = "Manage these reports with PUT /query/v1/team/report-settings/."


def change(current: int, previous: int) -> str:
    """ "+12 (+40.0%)", "-3 (-10.0%)", "0 (0.0%)" or "new" when there was nothing before."""
    if previous == 0:
        return "0 (0.0%)" if current == 0 else "new"
    delta = current - previous
    return f"{delta:+d} ({delta / previous * 100:+.1f}%)"


def _ms(value: float | int | None) -> str:
    return "n/a" if value is None else f"{value:.0f} ms" if isinstance(value, float) else f"{value} ms"


def _rate(part: int, whole: int) -> str:
    return f"{part / whole * 100:.1f}%" if whole else "0.0%"


def _quality_lines(f: ExchangeFigures, previous: ExchangeFigures) -> list[tuple[str, str]]:
    return [
        ("Questions", f"{f.questions} (previous {previous.questions}, {change(f.questions, previous.questions)})"),
        ("Incomplete answers", f"{f.incomplete} ({_rate(f.incomplete, f.questions)} of questions)"),
        ("Failed answers", str(f.failed)),
        (
            "Unanswered (not covered by the documents)",
            f"{f.unanswered} ({_rate(f.unanswered, f.questions)} of questions)",
        ),
        ("Answer latency avg", _ms(f.latency_avg_ms)),
        ("Answer latency p50", _ms(f.latency_p50_ms)),
        ("Answer latency p95", _ms(f.latency_p95_ms)),
        ("First token p95", _ms(f.first_token_p95_ms)),
        ("Prompt tokens", str(f.prompt_tokens)),
        ("Completion tokens", str(f.completion_tokens)),
    ]


def _ratings_line(p: ProjectReport) -> tuple[str, str]:
    now, before = p.feedback, p.previous_feedback
    rate = "no ratings" if now.down_rate is None else f"{now.down_rate * 100:.1f}% down"
    return (
        "Answer ratings",
        f"{now.up} up, {now.down} down ({rate}; previous {before.up} up, {before.down} down)",
    )


def _category_rows(project: ProjectReport) -> list[CategoryLine]:
    return [*project.categories, project.unlabelled]


def render_text(report: TeamReport) -> str:
    """The plain-text part: every figure, one `Name: value` per line."""
    out = [f"Threadline {report.period.cadence} report for {report.team_name}", f"Period: {report.period.label}"]
    out.append(f"Timezone: {report.period.timezone}")
    if not report.projects:
        out.append("\nThis team has no projects yet.")
    for p in report.projects:
        out += ["", f"== Project: {p.project.name}", ""]
        out.append(f"Threads: {p.threads} (previous {p.previous_threads}, {change(p.threads, p.previous_threads)})")
        out += [f"{name}: {value}" for name, value in _quality_lines(p.figures, p.previous_figures)]
        out.append("{}: {}".format(*_ratings_line(p)))
        out += ["", "Categories (this period, previous, change):"]
        out += [f"  {c.name}: {c.threads}, {c.previous}, {change(c.threads, c.previous)}" for c in _category_rows(p)]
        out += ["", "Top unlabelled questions:"]
        out += [f"  {n} x {q}" for q, n in p.top_unlabelled] or ["  (none)"]
        series = ", ".join(f"{label}: {v}" for label, v in zip(p.series_labels, p.series, strict=True))
        out += ["", f"Threads per {report.period.bucket_unit}: {series}"]
    out += ["", SETTINGS_LINE]
    return "\n".join(out) + "\n"


_CELL = 'style="padding:4px 10px;border-bottom:1px solid #e2e8f0;text-align:{align}"'
_TABLE = 'style="border-collapse:collapse;font-size:14px;margin:8px 0"'


def _row(*cells: str, head: bool = False) -> str:
    tag = "th" if head else "td"
    aligned = [(_CELL.format(align="left" if i == 0 else "right"), c) for i, c in enumerate(cells)]
    return "<tr>" + "".join(f"<{tag} {style}>{escape(c)}</{tag}>" for style, c in aligned) + "</tr>"


def _project_html(p: ProjectReport, chart_cid: str | None, unit: str) -> str:
    rows = [_row("Threads", f"{p.threads} ({change(p.threads, p.previous_threads)})")]
    rows += [_row(name, value) for name, value in _quality_lines(p.figures, p.previous_figures)]
    rows.append(_row(*_ratings_line(p)))
    cats = [_row("Category", "This period", "Previous", "Change", head=True)]
    cats += [_row(c.name, str(c.threads), str(c.previous), change(c.threads, c.previous)) for c in _category_rows(p)]
    questions = "".join(f'<li>{escape(q)} <span style="color:#64748b">({n})</span></li>' for q, n in p.top_unlabelled)
    peak = max(p.series, default=0)
    chart = ""
    if chart_cid:
        alt = f"Threads per {unit} over {len(p.series)} {unit}s, peak {peak}"
        chart = (
            f'<img src="cid:{chart_cid}" width="560" height="180" alt="{escape(alt)}" style="display:block;border:0">'
            f'<div style="color:#64748b;font-size:12px">Threads per {unit} (peak {peak})</div>'
        )
    return (
        f'<h2 style="font-size:18px;margin:24px 0 4px">{escape(p.project.name)}</h2>{chart}'
        f"<table {_TABLE}>{''.join(rows)}</table>"
        f"<table {_TABLE}>{''.join(cats)}</table>"
        f'<div style="font-weight:bold;margin-top:8px">Top unlabelled questions</div>'
        f"<ol>{questions or '<li>(none)</li>'}</ol>"
    )


def render_mail(report: TeamReport, sender: str, recipients: tuple[str, ...]) -> OutgoingMail:
    """The whole mail: subject, text, HTML and the chart images."""
    images: list[InlineImage] = []
    sections: list[str] = []
    for index, p in enumerate(report.projects):
        cid = None
        if index < MAX_CHARTS:
            cid = f"chart-{index}@threadline"
            chart = bar_chart(p.series, p.series_labels, legend=f"threads per {report.period.bucket_unit}")
            images.append(InlineImage(cid, chart, f"chart-{index}.png"))
        sections.append(_project_html(p, cid, report.period.bucket_unit))
    title = f"Threadline {report.period.cadence} report for {report.team_name}"
    html = (
        '<!DOCTYPE html><html><body style="font-family:Arial,Helvetica,sans-serif;color:#0f172a;margin:0;padding:16px">'
        f'<h1 style="font-size:22px;margin:0">{escape(title)}</h1>'
        f'<div style="color:#475569">{escape(report.period.label)} ({escape(report.period.timezone)})</div>'
        + ("".join(sections) or "<p>This team has no projects yet.</p>")
        + f'<p style="color:#64748b;font-size:12px;margin-top:24px">{escape(SETTINGS_LINE)}</p>'
        + "</body></html>"
    )
    return OutgoingMail(
        sender=sender,
        recipients=recipients,
        # Short, so that the header stays on one line (folded subjects show a stray space in some readers).
        subject=f"{report.team_name}: {report.period.cadence} report, {report.period.label.removeprefix('week of ')}",
        text=render_text(report),
        html=html,
        images=tuple(images),
    )
