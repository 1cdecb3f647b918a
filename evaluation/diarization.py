"""`callqa eval diarization`: DER and role accuracy against reference RTTM files.

DER is pyannote.metrics' DiarizationErrorRate with a 0.25 s collar and overlapped speech scored
(skip_overlap=False). Role accuracy needs references whose speaker labels are roles ("agent",
"customer"): then the whole pipeline (diarization or channels, ASR, roles) runs, and every ASR
word is checked against the reference speaker at its midpoint.

The labelled synthetic set comes from `synth_eval_calls`: the demo call scripts of
callqa.synth (inbound service calls, two distinct voices, an interruption, dead air, a hold)
rendered as 8 kHz telephone audio, mono or stereo, with an RTTM written from the exact turn
times of the synthesis.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pyannote.core import Annotation, Segment

from callqa.pipeline.types import CallQAError, ConfigError, Utterance

COLLAR = 0.25
ROLE_LABELS = {"agent", "customer"}


# --------------------------------------------------------------------------- references


def load_rttm(path: str | Path) -> dict[str, Annotation]:
    """uri -> Annotation from an RTTM file (SPEAKER lines); errors name the file and line."""
    path = Path(path)
    out: dict[str, Annotation] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise ConfigError(path, f"cannot read RTTM: {e}") from e
    for n, line in enumerate(lines, 1):
        f = line.split()
        if not f or f[0].startswith(";") or f[0] != "SPEAKER":
            continue
        if len(f) < 8:
            raise ConfigError(path, f"line {n}: an RTTM SPEAKER line has at least 8 fields")
        try:
            start, dur = float(f[3]), float(f[4])
        except ValueError as e:
            raise ConfigError(path, f"line {n}: onset/duration are not numbers") from e
        ann = out.setdefault(f[1], Annotation(uri=f[1]))
        ann[Segment(start, start + dur), len(ann)] = f[7]
    return out


def write_rttm(annotation: Annotation, path: str | Path, uri: str) -> Path:
    path = Path(path)
    with open(path, "w", encoding="utf-8") as fh:
        for seg, _, lab in annotation.itertracks(yield_label=True):
            fh.write(f"SPEAKER {uri} 1 {seg.start:.3f} {seg.duration:.3f} <NA> <NA> {lab} <NA> <NA>\n")
    return path


def truth_annotation(truth, uri: str) -> Annotation:
    """A synthesised call's truth (callqa.synth.truth.CallTruth) as an Annotation labelled by role."""
    ann = Annotation(uri=uri)
    for t in truth.turns:
        ann[Segment(t.start_s, t.end_s), t.index] = t.role
    return ann


def synth_eval_calls(
    out_dir: str | Path,
    *,
    stereo: bool = False,
    agent_channel: int = 0,
    only: Iterable[str] | None = None,
    seed: int = 11,
    sample_rate: int = 8000,
) -> list[Path]:
    """Render the demo scripts as labelled calls: <stem>.wav, <stem>.rttm (role labels),
    <stem>.json (sidecar: direction) and <stem>.truth.json. Returns the audio paths."""
    from callqa.synth.demo import demo_scripts
    from callqa.synth.mix import render_call

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    wanted = set(only) if only is not None else None
    paths = []
    for k, (stem, script, meta) in enumerate(demo_scripts()):
        if wanted is not None and stem not in wanted:
            continue
        name = f"{stem}_{'stereo' if stereo else 'mono'}"
        audio = out_dir / f"{name}.wav"
        truth = render_call(
            script,
            audio,
            sample_rate=sample_rate,
            stereo=stereo,
            agent_channel=agent_channel,
            codec="pcm_s16le",
            telephone=True,
            noise_floor_dbfs=-60.0,
            seed=seed + k,
        )
        write_rttm(truth_annotation(truth, name), out_dir / f"{name}.rttm", name)
        (out_dir / f"{name}.json").write_text(
            json.dumps({"direction": meta.get("direction", "inbound"), "language": script.language}) + "\n",
            encoding="utf-8",
        )
        paths.append(audio)
    return paths


# --------------------------------------------------------------------------- scoring


@dataclass
class FileResult:
    path: str
    duration_s: float
    der: float | None
    missed: float
    false_alarm: float
    confusion: float
    total: float
    speakers_found: int
    diarization_s: float
    role_accuracy: float | None = None
    roles_correct: bool | None = None
    role_method: str | None = None
    role_confidence: float | None = None
    error: str | None = None


@dataclass
class EvalReport:
    files: list[FileResult] = field(default_factory=list)
    diarizer: str = ""

    @property
    def der(self) -> float | None:
        tot = sum(f.total for f in self.files if f.der is not None)
        if not tot:
            return None
        return sum(f.missed + f.false_alarm + f.confusion for f in self.files if f.der is not None) / tot

    @property
    def role_accuracy(self) -> float | None:
        xs = [f.role_accuracy for f in self.files if f.role_accuracy is not None]
        return float(np.mean(xs)) if xs else None

    @property
    def rtf(self) -> float | None:
        t = sum(f.diarization_s for f in self.files)
        return sum(f.duration_s for f in self.files) / t if t > 0 else None


def der_components(reference: Annotation, hypothesis: Annotation, collar: float = COLLAR) -> dict[str, float]:
    from pyannote.metrics.diarization import DiarizationErrorRate

    metric = DiarizationErrorRate(collar=collar, skip_overlap=False)
    uem = (
        reference.get_timeline().extent() | hypothesis.get_timeline().extent()
        if len(hypothesis)
        else reference.get_timeline().extent()
    )
    from pyannote.core import Timeline

    d = metric(reference, hypothesis, uem=Timeline([uem]), detailed=True)
    return {
        "der": d["diarization error rate"],
        "missed": d["missed detection"],
        "false_alarm": d["false alarm"],
        "confusion": d["confusion"],
        "total": d["total"],
    }


def word_role_counts(
    utterances: list[Utterance], reference: Annotation
) -> tuple[int, int, dict[str, dict[str, float]]]:
    """(words checked, words whose role is the reference speaker's at the word's midpoint, per
    hypothesis speaker the reference labels of its checked words). Words in silence or overlapped
    speech of the reference (0.15 s slack) have no single right answer and are not checked."""
    checked = right = 0
    votes: dict[str, dict[str, float]] = {}
    for u in utterances:
        for w in u.words:
            mid = (w.start + w.end) / 2
            labs = {
                str(lab)
                for seg, _, lab in reference.itertracks(yield_label=True)
                if seg.start - 0.15 <= mid <= seg.end + 0.15
            }
            if len(labs) != 1:
                continue
            ref = labs.pop()
            checked += 1
            right += int(u.role == ref)
            votes.setdefault(u.speaker, {}).setdefault(ref, 0.0)
            votes[u.speaker][ref] += 1
    return checked, right, votes


def word_role_accuracy(utterances: list[Utterance], reference: Annotation) -> tuple[float | None, bool | None]:
    """(share of ASR words whose role matches the reference speaker at the word's midpoint,
    whether the speaker→role mapping matches the reference majority for every speaker)."""
    checked, right, votes = word_role_counts(utterances, reference)
    if not checked:
        return None, None
    roles_of = {u.speaker: u.role for u in utterances}
    ok = all(roles_of.get(spk) == max(v, key=v.get) for spk, v in votes.items())
    return right / checked, ok


def _source(path: Path):
    """A CallSource for one file, with its `<stem>.json` sidecar when there is one."""
    from callqa.pipeline.discover import sha256_file
    from callqa.pipeline.types import CallSource

    meta = {}
    side = path.with_suffix(".json")
    if side.is_file():
        try:
            meta = json.loads(side.read_text(encoding="utf-8"))
        except ValueError as e:
            raise ConfigError(side, f"sidecar is not valid JSON: {e}") from e
    return CallSource(str(path), sha256_file(path), path.stat().st_size, meta)


def evaluate(
    audio_paths: list[Path], rttm_dir: Path, settings, *, roles: bool = True, kit=None, progress=None
) -> EvalReport:
    """Diarize every file (mono mix; stereo: channels as speakers from the ASR words) and score it."""
    import time

    from callqa.models.diarization import load_diarizer
    from callqa.pipeline.bleed import suppress_bleed
    from callqa.pipeline.decode import decode
    from callqa.pipeline.diarize import run_diarization, timelines_from_utterances

    diarizer = (
        kit.diarizer
        if kit is not None and getattr(kit, "diarizer", None) is not None
        else load_diarizer(settings.models)
    )
    report = EvalReport(diarizer=diarizer.description)
    want_roles = roles
    if want_roles and kit is None:
        from callqa.pipeline.toolkit import load_toolkit

        kit = load_toolkit(settings)
        kit.diarizer = diarizer
    for path in audio_paths:
        path = Path(path)
        rttm = rttm_dir / f"{path.stem}.rttm"
        if not rttm.is_file():
            raise ConfigError(rttm, f"no reference RTTM for {path.name} (expected {rttm.name} in {rttm_dir})")
        refs = load_rttm(rttm)
        ref = refs.get(path.stem) or (next(iter(refs.values())) if len(refs) == 1 else None)
        if ref is None:
            raise ConfigError(rttm, f"no SPEAKER lines for uri {path.stem!r}")
        try:
            audio = decode(path)
        except CallQAError as e:
            report.files.append(FileResult(str(path), 0.0, None, 0, 0, 0, 0, 0, 0.0, error=str(e)))
            continue
        if audio.n_channels > 1:
            audio, _ = suppress_bleed(audio, settings.models.diarization.identical_channels_corr)
        labels_are_roles = set(ref.labels()) <= ROLE_LABELS
        result = None
        hyp: Annotation | None = None
        t = time.perf_counter()
        if audio.n_channels == 1:
            hyp = run_diarization(diarizer, audio.channels[0], settings.models.diarization, uri=path.stem).annotation
        dia_s = time.perf_counter() - t if hyp is not None else 0.0
        if want_roles and labels_are_roles:
            from callqa.pipeline.call import process_call

            result = process_call(_source(path), kit)
            if not hasattr(result, "utterances"):
                report.files.append(
                    FileResult(str(path), audio.duration_s, None, 0, 0, 0, 0, 0, dia_s, error=result.error)
                )
                continue
        if hyp is None:  # stereo: each channel's words are its speaker's timeline
            hyp = Annotation(uri=path.stem)
            if result is not None:
                for spk, spans in timelines_from_utterances(result.utterances).items():
                    for s, e in spans:
                        hyp[Segment(s, e), len(hyp)] = spk
        comp = der_components(ref, hyp)
        fr = FileResult(
            str(path),
            audio.duration_s,
            comp["der"],
            comp["missed"],
            comp["false_alarm"],
            comp["confusion"],
            comp["total"],
            len(hyp.labels()),
            dia_s,
        )
        if result is not None:
            fr.role_accuracy, fr.roles_correct = word_role_accuracy(result.utterances, ref)
            if result.roles is not None:
                fr.role_method, fr.role_confidence = result.roles.method, result.roles.confidence
        report.files.append(fr)
        if progress:
            progress(fr)
    return report


def run_cli(
    audio: list[Path],
    rttm_dir: Path | None,
    config: Path | None,
    roles: bool,
    console,
    synth_dir: Path | None = None,
    stereo: bool = False,
    no_channel_map: bool = False,
) -> EvalReport:
    """The body of `callqa eval diarization` (printing with rich)."""
    from rich.table import Table

    from callqa.config.settings import load_settings

    settings = load_settings(config, overrides={"channel_map": None} if no_channel_map else None)
    audio = list(audio)
    if synth_dir is not None:
        console.print(f"synthesising the labelled {'stereo' if stereo else 'mono'} call set into {synth_dir}/")
        audio += synth_eval_calls(synth_dir, stereo=stereo, agent_channel=1 if (stereo and no_channel_map) else 0)
        rttm_dir = rttm_dir or synth_dir
    if not audio:
        raise ConfigError(None, "no audio files given (pass AUDIO... or --synth DIR)")
    if rttm_dir is None:
        raise ConfigError(None, "--rttm-dir is required")
    for p in audio:
        if not Path(p).is_file():
            raise ConfigError(p, "audio file not found")

    table = Table(title="diarization", header_style="bold")
    for c in (
        "file",
        "dur s",
        "DER",
        "miss",
        "false al.",
        "confusion",
        "spk",
        "RTF",
        "role acc.",
        "roles",
        "role method",
        "conf.",
    ):
        table.add_column(c, overflow="fold")

    def row(f: FileResult) -> None:
        if f.error:
            table.add_row(Path(f.path).name, "", "error", f.error, *[""] * 8)
            return
        tot = f.total or 1.0
        table.add_row(
            Path(f.path).name,
            f"{f.duration_s:.1f}",
            f"{f.der:.3f}",
            f"{f.missed / tot:.3f}",
            f"{f.false_alarm / tot:.3f}",
            f"{f.confusion / tot:.3f}",
            str(f.speakers_found),
            f"{f.duration_s / f.diarization_s:.1f}x" if f.diarization_s else "",
            "" if f.role_accuracy is None else f"{f.role_accuracy:.3f}",
            "" if f.roles_correct is None else ("correct" if f.roles_correct else "WRONG"),
            f.role_method or "",
            "" if f.role_confidence is None else f"{f.role_confidence:.2f}",
        )

    report = evaluate([Path(p) for p in audio], Path(rttm_dir), settings, roles=roles)
    for f in report.files:
        row(f)
    console.print(table)
    console.print(f"diarizer: {report.diarizer}")
    if any(f.diarization_s == 0 and f.der is not None for f in report.files):
        console.print(
            "stereo files: channel = speaker; their DER compares the ASR words' spans with the reference turns"
        )
    parts = [
        f"DER (collar {COLLAR} s, overlap scored) over {len(report.files)} files: "
        + ("n/a" if report.der is None else f"{report.der:.4f}")
    ]
    if report.role_accuracy is not None:
        parts.append(f"role accuracy (words): {report.role_accuracy:.4f}")
        parts.append(
            f"calls with correct roles: {sum(bool(f.roles_correct) for f in report.files)}/"
            f"{sum(f.roles_correct is not None for f in report.files)}"
        )
    if report.rtf:
        parts.append(f"diarization speed: {report.rtf:.1f}x real time")
    console.print("; ".join(parts))
    return report


def pair_reference(
    agent_path: str | Path, customer_path: str | Path, out_dir: str | Path, stem: str, diarizer=None
) -> list[Path]:
    """Two time-aligned one-party recordings (e.g. aws-lca's *_agent.wav / *_caller.wav) turned
    into labelled calls: `<stem>_mono.wav` (the mix), `<stem>_stereo_agent1.wav` (customer on the
    left, agent on the right, to test roles by evidence) and an RTTM for each, whose turns are
    Silero VAD's speech on each party's own recording, labelled agent/customer."""
    from callqa.pipeline.decode import decode
    from callqa.synth.audio import write_audio

    if diarizer is None:
        from callqa.models.offline_diarizer import OfflineDiarizer

        diarizer = OfflineDiarizer.load()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    a, c = decode(agent_path).channels[0], decode(customer_path).channels[0]
    n = min(len(a), len(c))
    a, c = a[:n], c[:n]
    ref = Annotation()
    for role, x in (("agent", a), ("customer", c)):
        for s, e in diarizer.speech(x):
            ref[Segment(s, e), len(ref)] = role
    paths = []
    for name, audio in ((f"{stem}_mono", (0.5 * (a + c))[None, :]), (f"{stem}_stereo_agent1", np.stack([c, a]))):
        p = out_dir / f"{name}.wav"
        write_audio(p, audio, 16000, "pcm_s16le")
        write_rttm(ref, out_dir / f"{name}.rttm", name)
        paths.append(p)
    return paths
