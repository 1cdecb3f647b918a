"""`callqa eval`: callqa measured against labelled data (prints metrics)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from callqa.cli.common import CONFIG_OPTION, _fail, _table, console
from callqa.pipeline.types import CallQAError

eval_app = typer.Typer(no_args_is_help=True, help="Evaluate callqa against labelled data (prints metrics).")


@eval_app.command("scoring")
def scoring(
    n: int = typer.Option(30, "--n", help="labelled calls to generate (reused when already there)"),
    out: Path = typer.Option(Path("eval_calls"), "--out", help="folder for the generated calls"),
    seed: int = typer.Option(0, "--seed"),
    scorecard: str = typer.Option("inbound_service_en", "--scorecard"),
    config: Path | None = typer.Option(None, "--config", "-c"),
) -> None:
    """Criterion verdicts and grades of the automatic scoring vs the truth on labelled synthesised calls."""
    from callqa.evaluation.scoring import run

    try:
        ev = run(out, n, seed, scorecard, config, progress=lambda m: console.print(f"[dim]{escape(m)}[/]"))
    except CallQAError as e:
        _fail(e)
    rows = [(crit, a, t, f"{a / t:.0%}") for crit, (a, t) in sorted(ev.per_criterion.items())]
    console.print(
        _table(["criterion", "agree", "decisions", "agreement"], rows, title=f"scoring vs truth: {ev.scorecard}")
    )
    for d in ev.disagreements:
        console.print(
            f"[yellow]≠[/] {d['call']} {d['criterion']}: auto {d['auto']}, truth {'/'.join(d['truth'])} "
            f"— {escape(d['rationale'])}"
        )
    for g in ev.grade_mismatches:
        console.print(
            f"[red]grade ≠[/] {g['call']}: auto {g['auto']} ({g['auto_percent']}%), "
            f"truth {'/'.join(g['truth'])} ({g['truth_percent']})"
        )
    console.print(
        f"criterion decisions agreeing with the truth: {ev.agree}/{ev.decisions} = {ev.agreement:.1%} "
        f"(target ≥ 95%); "
        f"grades matching the expected band: {ev.grades_match}/{ev.calls} calls (target: all)"
    )


@eval_app.command("detectors")
def detectors(
    n: int = typer.Option(
        30, "--n", help="labelled calls per language to synthesise and run (any prefix covers every feature)"
    ),
    lang: str = typer.Option(
        "all", "--lang", help="en, zh (Mandarin calls with ASR, then transcripts; needs the zh-tts extra) or all"
    ),
    out: Path = typer.Option(
        Path("eval_detectors"), "--out", help="where the calls, labels and JSON report go (calls are reused)"
    ),
    real: Path | None = typer.Option(
        None, "--real", help="also run the recordings under this folder and list what each detector found"
    ),
    seed: int = typer.Option(0, "--seed"),
    config: Path | None = CONFIG_OPTION,
) -> None:
    """Precision/recall per detector and language, hold duration error, Mandarin CER, detector time share."""
    from callqa.evaluation.detectors import main as eval_main

    try:
        eval_main(n=n, out=out, real=real, seed=seed, config=config, console=console, lang=lang)
    except CallQAError as e:
        _fail(e)


@eval_app.command("diarization")
def diarization(
    audio: list[Path] = typer.Argument(None, help="recordings; each needs <stem>.rttm in --rttm-dir"),
    rttm_dir: Path | None = typer.Option(None, "--rttm-dir", help="folder of reference RTTM files"),
    config: Path | None = CONFIG_OPTION,
    roles: bool = typer.Option(
        True, "--roles/--no-roles", help="also run ASR + roles where RTTM labels are agent/customer"
    ),
    synth: Path | None = typer.Option(None, "--synth", help="first synthesise the labelled call set into this folder"),
    stereo: bool = typer.Option(False, "--stereo", help="with --synth: stereo calls instead of mono"),
    no_channel_map: bool = typer.Option(
        False, "--no-channel-map", help="stereo roles from evidence, not the channel map"
    ),
) -> None:
    """DER (pyannote.metrics, collar 0.25 s, overlap scored) and role accuracy against RTTM references."""
    from callqa.evaluation.diarization import run_cli

    try:
        run_cli(
            audio or [], rttm_dir, config, roles, console, synth_dir=synth, stereo=stereo, no_channel_map=no_channel_map
        )
    except CallQAError as e:
        _fail(e)


@eval_app.command("real")
def real(
    truth: Path = typer.Argument(..., help="truth file in the format of QA_TRUTH.yaml (paths relative to it)"),
    config: Path | None = CONFIG_OPTION,
    json_out: Path | None = typer.Option(None, "--json", help="also write the full report as JSON"),
    markdown_out: Path | None = typer.Option(None, "--markdown", help="also write the report as Markdown"),
    cache_dir: Path | None = typer.Option(
        None, "--cache-dir", help="ASR results of audio items (default: <models.cache_dir>/eval-real-asr)"
    ),
    kind: list[str] = typer.Option(
        ["audio", "transcript"], "--kind", help="which items to run: audio (whole pipeline) and/or transcript"
    ),
    only: list[str] = typer.Option(None, "--only", help="run only these item ids (repeatable)"),
) -> None:
    """Precision/recall per event type, roles and criterion agreement (Cohen's kappa) on human-labelled calls."""
    from callqa.evaluation.real import main as real_main

    if not truth.is_file():
        _fail(CallQAError(str(truth), "no such truth file"))
    try:
        real_main(
            truth,
            config=config,
            json_out=json_out,
            markdown_out=markdown_out,
            cache_dir=cache_dir,
            kinds=tuple(kind),
            only=only or None,
            console=console,
        )
    except CallQAError as e:
        _fail(e)
