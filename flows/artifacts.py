"""The nightly run's summary, published as a Prefect markdown artifact by flows/nightly.py."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from callqa.workspace.report import build_report
from callqa.workspace.report.queries import run_flagged


def _md_cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, (list, tuple)):
        v = "; ".join(str(x) for x in v)
    elif isinstance(v, float):
        v = f"{v:.1f}"
    return str(v).replace("|", "\\|").replace("\n", " ")


def run_markdown(
    summary: dict[str, Any],
    flagged_total: int,
    flagged: Sequence[dict],
    report: str | None,
    report_note: str | None = None,
) -> str:
    """Markdown for one nightly run: its counts, the calls it flagged, and where the report is."""
    wall, audio = summary.get("wall_s") or 0, summary.get("audio_s") or 0
    lines = [
        f"# callqa nightly run `{summary.get('run_id', '')}`",
        "",
        f"Database: `{summary.get('db_path', '')}`",
        "",
        "| discovered | skipped | processed | failed | flagged | audio | wall | speed |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
        "| {d} | {s} | {p} | {f} | {fl} | {a:.1f} min | {w:.1f} s | {x} |".format(
            d=summary.get("discovered", 0),
            s=summary.get("skipped", 0),
            p=summary.get("processed", 0),
            f=summary.get("failed", 0),
            fl=summary.get("flagged", 0),
            a=audio / 60,
            w=wall,
            x=f"{audio / wall:.1f}× real time" if wall and audio else "—",
        ),
        "",
        f"## Flagged calls ({flagged_total})",
        "",
    ]
    if flagged:
        lines += ["| call | agent | queue | score | grade | reasons | call_id |", "|---|---|---|---:|---|---|---|"]
        lines += [
            f"| {_md_cell(r['file_name'])} | {_md_cell(r['agent_id'])} | {_md_cell(r['queue'])} "
            f"| {_md_cell(r['percent'])} | {_md_cell(r['grade'])} | {_md_cell(r['flag_reasons'])} "
            f"| `{str(r['call_id'])[:12]}` |"
            for r in flagged
        ]
        if flagged_total > len(flagged):
            more = flagged_total - len(flagged)
            lines.append(f"\n… and {more} more: `callqa flagged --db {summary.get('db_path', '')}`")
    else:
        lines.append("No call in this run was flagged.")
    lines += ["", "## Report", ""]
    if report:
        lines.append(f"[{report}]({Path(report).resolve().as_uri()})")
    if report_note:
        lines.append(report_note)
    lines += _chain_lines(summary)
    return "\n".join(lines) + "\n"


def _chain_lines(summary: dict[str, Any]) -> list[str]:
    """The review chain's head as this run left it: an anchor outside the database for `callqa audit`."""
    head = summary.get("audit_head")
    out = ["", "## Review chain", ""]
    if summary.get("purged"):
        out.append(f"Retention forgot {summary['purged']} call(s) (tombstone in the chain).\n")
    if not head:
        return out + ["No reviews or erasures yet."]
    anchor = f"{head['seq']}:{str(head['mac'])[:16]}"
    return out + [
        f"Head `{anchor}` ({head['reviews']} reviews). Check that history still holds it:",
        "",
        f"`callqa audit --db {summary.get('db_path', '')} --expect-head {anchor}`",
    ]


def publish_run(summary: dict[str, Any], settings: Any, logger: Any) -> str | None:
    """Build the HTML report when configured, and publish the run as a Prefect markdown artifact.

    Neither may fail a batch whose calls are already stored: problems are logged and named in the artifact.
    """
    from prefect.artifacts import create_markdown_artifact

    report, note = None, None
    if settings.report.out_dir is not None:
        try:
            built = build_report(
                summary["db_path"],
                settings.report.out_dir,
                audio=settings.report.audio,
                max_call_pages=settings.report.max_call_pages,
                kpi=settings.kpi,  # the KPI panels' targets
            )
            report = str(built.index)
        except Exception as e:  # noqa: BLE001 - the calls are stored; a report problem must not fail the run
            note = f"the report could not be built: {e}"
            logger.warning(note)
    else:
        note = f"build it with `callqa report --db {summary['db_path']} --out DIR` (or set report.out_dir)"
    try:
        total, flagged = run_flagged(summary["db_path"], summary["run_id"])
        create_markdown_artifact(
            key="callqa-nightly-run",
            markdown=run_markdown(summary, total, flagged, report, note),
            description=f"callqa nightly run {summary['run_id']}",
        )
    except Exception as e:  # noqa: BLE001
        logger.warning("could not publish the run artifact: %s", e)
    return report
