"""Tables, markdown and the console view of a `callqa eval real` report (callqa.evaluation.real)."""

from __future__ import annotations

from typing import Any

from callqa.evaluation.real import RealEvalReport
from callqa.pipeline.evidence import quote


def _f(v: float | None, digits: int = 2) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def report_rows(report: RealEvalReport) -> dict[str, tuple[list[str], list[list[str]]]]:
    """The report's tables as (header, rows), shared by the markdown and the rich renderings."""
    ev, cr = report.event_table(), report.criterion_table()
    events = (
        ["event", "labelled yes", "labelled no", "TP", "FN", "FP", "precision", "recall"],
        [
            [
                t,
                str(v["tp"] + v["fn"]),
                str(v["fp"] + v["tn"]),
                str(v["tp"]),
                str(v["fn"]),
                str(v["fp"]),
                _f(v["precision"]),
                _f(v["recall"]),
            ]
            for t, v in ev.items()
        ],
    )
    calls = (
        ["recording", "roles", "roles right", "word role acc.", "grade", "events right"],
        [
            [
                r.label,
                r.error or f"{quote(str(r.roles.get('method')), 48)} ({_f(r.roles.get('confidence'))})",
                "–" if r.roles_correct is None else ("yes" if r.roles_correct else "NO"),
                _f(r.word_role_accuracy, 3) + (f" ({r.words_checked} words)" if r.words_checked else ""),
                f"{r.grade} ({_f(r.percent, 1)} %)" if r.grade else "–",
                f"{sum(o in ('tp', 'tn') for o in r.outcomes.values())}/{len(r.outcomes)}",
            ]
            for r in report.recordings
        ],
    )
    crit = (
        ["criterion", "pairs", "agree", "agreement", "kappa"],
        [[c, str(v["n"]), str(v["agree"]), _f(v["agreement"]), _f(v["kappa"])] for c, v in cr.items()],
    )
    return {"events": events, "recordings": calls, "criteria": crit}


def report_findings(report: RealEvalReport) -> list[str]:
    """One line per miss, false alarm and criterion disagreement, with the quotes behind it."""
    lines = []
    for typ, v in report.event_table().items():
        for m in v["misses"]:
            found = "; ".join(m["found_elsewhere"]) or "nothing found"
            lines.append(f"MISS {typ} in {m['call']}: {found}")
        for fa in v["false_alarms"]:
            lines.append(f"FALSE ALARM {typ} in {fa['call']}: " + "; ".join(fa["quotes"]))
    for crit, v in report.criterion_table().items():
        for d in v["disagreements"]:
            lines.append(
                f"CRITERION {crit} in {d['call']}: expected {d['expected']}, got {d['actual']} ({d['rationale']})"
            )
    return lines


def render_markdown(report: RealEvalReport) -> str:
    s = report.summary()
    out = [
        f"# callqa eval real: {report.truth}",
        "",
        f"Events: precision {_f(s['precision'])}, recall {_f(s['recall'])} over {s['event_pairs']} labelled pairs "
        f"(lowest per type: P {_f(s['min_precision'])}, R {_f(s['min_recall'])}); criteria: agreement "
        f"{_f(s['criterion_agreement'])}, kappa {_f(s['criterion_kappa'])} over {s['criterion_pairs']} pairs; roles "
        f"right {s['roles_correct'] or '–'}, word role accuracy {_f(s['word_role_accuracy'], 3)}; "
        f"{s['recordings'] - s['failed']}/{s['recordings']} recordings scored.",
        "",
    ]
    for name, (head, rows) in report_rows(report).items():
        out += [f"## {name}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        out += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
        out.append("")
    findings = report_findings(report)
    out += ["## misses, false alarms, disagreements", ""] + [f"- {x}" for x in findings or ["none"]]
    return "\n".join(out) + "\n"


def print_report(report: RealEvalReport, console: Any) -> None:
    from rich.table import Table

    s = report.summary()
    for name, (head, rows) in report_rows(report).items():
        table = Table(title=name)
        for h in head:
            table.add_column(h)
        for row in rows:
            table.add_row(*row)
        console.print(table)
    for line in report_findings(report):
        console.print(line, markup=False, highlight=False)
    for r in report.recordings:
        if r.error:  # a recording that failed scores nothing: say so, not just a smaller count
            console.print(f"FAILED {r.label}: {r.error}", markup=False, style="red")
    console.print(
        f"events P {_f(s['precision'])} R {_f(s['recall'])} (lowest P {_f(s['min_precision'])}, "
        f"R {_f(s['min_recall'])}); criterion agreement {_f(s['criterion_agreement'])}, kappa "
        f"{_f(s['criterion_kappa'])}; roles right {s['roles_correct'] or '–'}; "
        f"{s['recordings'] - s['failed']}/{s['recordings']} recordings scored",
        markup=False,
    )
