"""`callqa audit-report`: the periodic QA audit as printable HTML (audit.html) and Markdown (audit.md).

The database is opened in the analyst sandbox (read-only, no files or network), every number is one of
the queries of `data.py` / `stats.py` with the dates bound as parameters, and the HTML is rendered with
Jinja2 autoescape (agent, queue and file names are untrusted). Files go through `OutputFolder` (never
through a link, never over a file callqa did not write unless forced).
"""

from __future__ import annotations

import html
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import jinja2

from callqa import __version__
from callqa.config.settings import KpiSettings
from callqa.workspace.audit import data, findings, stats
from callqa.workspace.audit.labels import labels
from callqa.workspace.audit.periods import AuditError, Span, resolve
from callqa.workspace.files import OutputFolder
from callqa.workspace.sandbox import connect_analyst, first_line

TEMPLATES = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class AuditSummary:
    html: Path
    markdown: Path
    span: Span
    compared: Span | None
    calls: int
    seconds: float


def _md(v: Any) -> str:
    """A table-cell-safe Markdown string: no pipes, newlines or raw HTML from user data."""
    if v is None:
        return ""
    return html.escape(str(v)).replace("|", "\\|").replace("\n", " ").replace("`", "'")


def _num(v: float | None, nd: int = 1) -> str:
    """A rounded number; "-0.000" (a tiny negative rounded) reads as 0.000."""
    if v is None:
        return "–"
    text = f"{v:.{nd}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def _env(autoescape: bool, lang: str = "en") -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=autoescape,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["md"] = _md
    env.filters["val"] = lambda v, unit: findings.fmt_value(unit, v)
    pts = labels(lang)["pts"]
    env.filters["chg"] = lambda c, unit="rate": findings.fmt_change(c, unit, pts)
    env.filters["pct"] = lambda v: "–" if v is None else f"{100 * v:.1f} %"
    env.filters["num"] = _num
    env.filters["link"] = lambda cid, tpl: tpl.format(call_id=cid)
    return env


def collect(
    con: duckdb.DuckDBPyConnection, span: Span, compared: Span | None, kpi: KpiSettings, lang: str
) -> dict[str, Any]:
    """Everything the templates show, as plain data (a test compares it with SQL over the views)."""
    lab = labels(lang)
    current = data.headline(con, span, kpi)
    previous = data.headline(con, compared, kpi) if compared else None
    found = findings.findings(current, previous, kpi)
    criteria = data.criteria_failed(con, span)
    return {
        "lab": lab,
        "lang": lang,
        "span": span,
        "compared": compared,
        "current": current,
        "previous": previous,
        "findings": found,
        "sentences": [findings.sentence(f, lab[f.kpi.key], lab) for f in found if f.value is not None],
        "trends": data.trends(con, span, kpi),
        "teams": data.group_table(con, span, "team", kpi),
        "agents": data.group_table(con, span, "agent", kpi),
        "criteria": criteria,
        "concentrations": [
            asdict(c)
            for c in stats.concentrations(
                con,
                span,
                min_failures=kpi.diagnosis.min_failures,
                min_lift=kpi.diagnosis.min_lift,
                alpha=kpi.diagnosis.alpha,
            )
        ],
        "correlations": [asdict(c) for c in stats.correlations(con, span, kpi.repeat_window_days)],
        "actions": findings.actions(found, criteria, lab),
        "samples": data.sample_calls(con, span),
        "exemplars": data.exemplars(con, span),
    }


def build_audit_report(
    db_path: str | Path,
    out_dir: str | Path,
    *,
    since: str | None = None,
    until: str | None = None,
    compare: str | None = "previous",
    lang: str = "en",
    kpi: KpiSettings | None = None,
    call_link: str = "calls/{call_id}.html",
    force: bool = False,
) -> AuditSummary:
    """Write audit.html and audit.md into out_dir for [since, until] compared with `compare`.

    `call_link` makes each call id a link (default: the call pages of `callqa report` in the same folder).
    """
    t0 = time.perf_counter()
    labels(lang)  # a bad --lang fails before the database is opened
    kpi = kpi or KpiSettings()
    out_dir = Path(out_dir)
    con = connect_analyst(db_path)
    try:
        try:
            con.execute("SELECT 1 FROM kpi_calls(DATE '2000-01-01', DATE '2000-01-01') LIMIT 0")
        except duckdb.Error as e:
            raise AuditError(
                Path(db_path),
                f"not a callqa database with the KPI views (open it once with `callqa run`): {first_line(e)}",
            ) from e
        span, compared = resolve(since, until, compare, data.latest_day(con))
        ctx = collect(con, span, compared, kpi, lang)
    except duckdb.PermissionException as e:
        raise AuditError(Path(db_path), f"refused: a view of this database reads outside it ({first_line(e)})") from e
    finally:
        con.close()
    common = {
        "version": __version__,
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "db_name": Path(db_path).name,
        "call_link": call_link,
        "targets": findings.targets(kpi),
    }
    page = _env(True, lang).get_template("audit.html.j2").render(**common, **ctx)
    md = _env(False, lang).get_template("audit.md.j2").render(**common, **ctx)
    folder = OutputFolder.open(out_dir, force)
    try:
        folder.write_bytes(out_dir / "audit.html", page.encode("utf-8"))
        folder.write_bytes(out_dir / "audit.md", md.encode("utf-8"))
    finally:
        folder.save()
    return AuditSummary(
        out_dir / "audit.html",
        out_dir / "audit.md",
        span,
        compared,
        int(ctx["current"]["calls"] or 0),
        time.perf_counter() - t0,
    )
