"""End-to-end throughput of the nightly batch: where the time goes, what it costs over bare
faster-whisper, how much memory a worker needs, how fast DuckDB loads, and how it scales.

Sections (all by default; pick with --sections):

  stages   per call: real-time factor of every pipeline stage (decode, bleed, hold scan, ASR,
           speakers, roles, detectors, scoring, redaction) and of the whole call, next to bare
           faster-whisper on the same file with the same model and options (faster-whisper's own
           decode, each channel transcribed, every segment consumed). overhead = callqa / bare.
  flow     the real nightly flow (Prefect, thread pool, DuckDB writer) over the bench folder, for
           each workers x threads layout (--layouts 1x2 2x1): end-to-end real-time factor and the
           worker process's peak RSS. Each run in a fresh subprocess and a fresh database.
  scaling  the flow on a local Dask cluster with 1 then 2 worker processes (1 thread each):
           throughput, scaling efficiency = (RTF with 2) / (2 x RTF with 1), peak RSS per worker.
  db       DuckDB load rate: real CallResults (from `stages`) re-keyed N times, written one
           transaction per call (the default writer) and staged as Parquet + bulk-loaded.
  long     a 60-minute stereo call (the bench calls joined end to end) through process_call in a
           fresh process: peak RSS against a 10-minute call, and its real-time factor.

    .venv/bin/python bench/e2e_throughput.py [--calls DIR] [--sections stages,flow,...] [--repeat 3]

Bench calls (made once, cached in --calls): synthesised 3-10 minute stereo 8 kHz µ-law calls
(bench/bench_calls.py) and the two real AWS LCA agent/caller pairs joined into stereo.
Targets on a 2-core CPU with the default model: end-to-end >= 8x real time, overhead <= 1.10,
peak RSS <= 3 GB per worker, the 60-minute call included.

GPU (device and compute type are chosen automatically; `callqa models` shows them):
    .venv/bin/python bench/e2e_throughput.py --model large-v3-turbo --sections stages,flow --layouts 1x8
where large-v3-turbo resolves from a local CTranslate2 directory (pass its path) or the hub.
Wall times are only comparable on a quiet machine: the load average is printed with each section.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from bench_calls import aws_stereo_calls, synth_calls  # noqa: E402

TARGET_RTF = 8.0
TARGET_OVERHEAD = 1.10
TARGET_RSS_MB = 3072
STAGE_ORDER = [
    "decode",
    "bleed",
    "hold_scan",
    "transcribe",
    "speakers",
    "roles",
    "detect_text",
    "detect",
    "score",
    "redact",
]


def load() -> str:
    a = os.getloadavg()
    return f"load average {a[0]:.2f} {a[1]:.2f} {a[2]:.2f} on {os.cpu_count()} CPUs"


def peak_rss_mb() -> float:
    """This process's own peak RSS. Linux's ru_maxrss survives exec: a child started by a parent
    holding 2.6 GB of models reported 2.6 GB before loading anything. VmHWM belongs to the
    process's current address space, so it starts from zero at exec."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def settings_for(args, overrides: dict[str, Any] | None = None):
    from callqa.config.settings import load_settings

    asr: dict[str, Any] = {}
    if args.model:
        asr["model"] = args.model
    if args.device:
        asr["device"] = args.device
    if args.compute_type:
        asr["compute_type"] = args.compute_type
    if args.beam_size is not None:
        asr["beam_size"] = args.beam_size
    if args.batch_size is not None:
        asr["batch_size"] = args.batch_size
    over: dict[str, Any] = {"models": {"asr": asr}} if asr else {}
    if overrides:
        from callqa.config.settings import _deep_merge

        over = _deep_merge(over, overrides)
    return load_settings(args.config, overrides=over or None)


def write_config(args, path: Path, overrides: dict[str, Any]) -> Path:
    """A settings YAML for child processes: the bench's model options plus `overrides`."""
    import yaml

    s = settings_for(args, overrides)
    data = {
        "models": {"asr": s.models.asr.model_dump(mode="json"), "cache_dir": str(s.models.cache_dir)},
        "batch": {k: v for k, v in s.batch.model_dump(mode="json").items() if v is not None},
    }
    path.write_text(yaml.safe_dump(data))
    return path


# ------------------------------------------------------------------------------------ stages


def run_bare(asr, path: Path, settings, n_channels: int) -> tuple[float, float, int]:
    """faster-whisper on its own: its decoder, each channel, the same loaded model and options."""
    from faster_whisper import BatchedInferencePipeline, decode_audio

    c0, t0 = time.process_time(), time.perf_counter()
    chans = decode_audio(str(path), split_stereo=True) if n_channels == 2 else (decode_audio(str(path)),)
    opts = asr._options(settings.language, settings)
    if settings.batch_size > 0:
        pipe = BatchedInferencePipeline(asr.model)
        runs = [pipe.transcribe(x, batch_size=settings.batch_size, **opts) for x in chans]
    else:
        runs = [asr.model.transcribe(x, **opts) for x in chans]
    n_words = sum(len(s.words or ()) for segs, _ in runs for s in segs)
    return time.perf_counter() - t0, time.process_time() - c0, n_words


def section_stages(args, paths: list[Path]) -> list:
    from callqa.flows.worker import toolkit_for
    from callqa.pipeline.call import process_call
    from callqa.pipeline.discover import discover

    settings = settings_for(args)
    kit = toolkit_for(settings, 1)
    asr = kit.asr
    print(
        f"\n== stages: {asr.description}, cpu_threads={asr.cpu_threads}, beam={settings.models.asr.beam_size}, "
        f"batch_size={settings.models.asr.batch_size}; median of {args.repeat}; {load()}"
    )
    results = []
    rows = []
    for path in paths:
        src = next(s for s in discover(path.parent, [path.suffix], False) if s.path == str(path))
        res = process_call(src, kit)  # warm-up (page cache, VAD session, allocator)
        if not hasattr(res, "timings"):
            print(f"  {path.name}: FAILED {res}")
            continue
        walls, cpus, bare_w, bare_c, stage_runs = [], [], [], [], []
        for _ in range(args.repeat):
            c0, t0 = time.process_time(), time.perf_counter()
            res = process_call(src, kit)
            walls.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
            stage_runs.append(res.timings)
            w, c, n_bare = run_bare(asr, path, settings.models.asr, res.channels)
            bare_w.append(w)
            bare_c.append(c)
        results.append(res)
        stages = {k: statistics.median(t.get(k, 0.0) for t in stage_runs) for k in stage_runs[0]}
        n_words = sum(len(u.words) for u in res.utterances)
        rows.append(
            (
                path.name,
                res.duration_s,
                res.channels,
                statistics.median(walls),
                statistics.median(cpus),
                statistics.median(bare_w),
                statistics.median(bare_c),
                stages,
                n_words,
                n_bare,
            )
        )
        print(f"  done {path.name}: callqa {walls} bare {bare_w}", file=sys.stderr)

    names = [k for k in STAGE_ORDER if any(k in r[7] for r in rows)] + sorted(
        {k for r in rows for k in r[7]} - set(STAGE_ORDER)
    )
    head = (
        f"{'file':<32} {'audio s':>7} "
        + " ".join(f"{n[:10]:>10}" for n in names)
        + f" {'total':>8} {'bare':>8} {'overhead':>8} {'cpu ovh':>7} {'words c/b':>10}"
    )
    print("real-time factor per stage (x real time; higher is faster):")
    print(head)
    print("-" * len(head))
    tot_audio = tot_wall = tot_bare = tot_cpu = tot_bare_cpu = 0.0
    for name, dur, _ch, wall, cpu, bw, bc, stages, nw, nb in rows:
        cells = " ".join(f"{(dur / stages[n] if stages.get(n) else float('inf')):>9.0f}x" for n in names)
        print(
            f"{name[-32:]:<32} {dur:7.1f} {cells} {dur / wall:7.2f}x {dur / bw:7.2f}x {wall / bw:8.3f} "
            f"{cpu / bc:7.3f} {nw:5d}/{nb:<4d}"
        )
        tot_audio, tot_wall, tot_bare, tot_cpu, tot_bare_cpu = (
            tot_audio + dur,
            tot_wall + wall,
            tot_bare + bw,
            tot_cpu + cpu,
            tot_bare_cpu + bc,
        )
    print("-" * len(head))
    share = {n: sum(r[7].get(n, 0.0) for r in rows) / tot_wall for n in names}
    print("share of callqa wall time: " + ", ".join(f"{n} {100 * v:.1f}%" for n, v in share.items()))
    ovh = tot_wall / tot_bare
    print(
        f"all files: callqa {tot_audio / tot_wall:.2f}x real time per call (one call at a time), bare faster-whisper "
        f"{tot_audio / tot_bare:.2f}x; overhead ratio {ovh:.3f} (target <= {TARGET_OVERHEAD}: "
        f"{'OK' if ovh <= TARGET_OVERHEAD else 'OVER'}), CPU-time ratio {tot_cpu / tot_bare_cpu:.3f}; {load()}"
    )
    return results


# -------------------------------------------------------------------------------------- flow


def _child(argv: list[str]) -> int:
    """Run in a fresh process: the flow (local or Dask) or one call; prints a JSON line."""
    kind, payload = argv[0], json.loads(argv[1])
    if kind == "flow":
        from callqa.flows.nightly import run_nightly

        t0 = time.perf_counter()
        s = run_nightly(
            payload["calls"],
            payload["db"],
            payload["config"],
            workers=payload.get("workers"),
            dask_address=payload.get("dask_address"),
            parquet_dir=payload.get("parquet_dir"),
        )
        out = {k: v for k, v in s.items() if isinstance(v, (int, float, str))}
        out["outer_wall_s"] = time.perf_counter() - t0
    else:  # one call through process_call
        from callqa.config.settings import load_settings
        from callqa.flows.worker import toolkit_for
        from callqa.pipeline.call import process_call
        from callqa.pipeline.discover import discover

        settings = load_settings(payload["config"])
        kit = toolkit_for(settings, 1)
        rss_loaded = peak_rss_mb()
        path = Path(payload["path"])
        src = next(s for s in discover(path.parent, [path.suffix], False) if s.path == str(path))
        t0 = time.perf_counter()
        res = process_call(src, kit)
        out = {
            "wall_s": time.perf_counter() - t0,
            "duration_s": getattr(res, "duration_s", None),
            "timings": getattr(res, "timings", None),
            "error": getattr(res, "error", None),
            "rss_after_load_mb": rss_loaded,
        }
    out["peak_rss_mb"] = peak_rss_mb()
    print("CHILD " + json.dumps(out, default=str), flush=True)
    return 0


def run_child(kind: str, payload: dict[str, Any]) -> dict[str, Any]:
    env = dict(os.environ)
    env.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    env.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--_child", kind, json.dumps(payload)],
        capture_output=True,
        text=True,
        env=env,
    )
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("CHILD ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"child {kind} failed ({proc.returncode}): {proc.stderr[-3000:]}")
    return json.loads(line[len("CHILD ") :])


def section_flow(args, calls_dir: Path, work: Path) -> None:
    print(f"\n== flow: the nightly flow over {calls_dir} (local thread pool), fresh database per run; {load()}")
    print(f"{'layout':>10} {'calls':>5} {'audio s':>8} {'wall s':>7} {'RTF':>7} {'peak RSS MB':>11}  load")
    for layout in args.layouts:
        workers, threads = (int(x) for x in layout.lower().split("x"))
        rtfs, rss, last = [], [], {}
        for i in range(args.repeat):
            cfg = write_config(
                args,
                work / f"flow-{layout}.yaml",
                {"models": {"asr": {"cpu_threads": threads}}, "batch": {"workers": workers}},
            )
            db = work / f"flow-{layout}-{i}.duckdb"
            last = run_child("flow", {"calls": str(calls_dir), "db": str(db), "config": str(cfg), "workers": workers})
            rtfs.append(last["audio_s"] / last["outer_wall_s"])
            rss.append(last["peak_rss_mb"])
        rtf = statistics.median(rtfs)
        print(
            f"{workers}x{threads:<8} {last['processed']:5d} {last['audio_s']:8.1f} "
            f"{last['audio_s'] / rtf:7.1f} {rtf:6.2f}x "
            f"{max(rss):11.0f}  {os.getloadavg()[0]:.2f}   (runs: {', '.join(f'{r:.2f}x' for r in rtfs)})"
        )
    print(
        f"target: >= {TARGET_RTF}x real time end to end (wall includes Prefect start-up and model loading), "
        f"peak RSS <= {TARGET_RSS_MB} MB per worker"
    )


def section_scaling(args, calls_dir: Path, work: Path) -> None:
    from distributed import Client, LocalCluster

    print(f"\n== scaling: the flow on a local Dask cluster, N worker processes x 1 thread; {load()}")
    cfg = write_config(args, work / "dask.yaml", {"models": {"asr": {"cpu_threads": 1}}})
    rtf: dict[int, float] = {}
    for n in (1, 2):
        with LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
            db = work / f"dask-{n}.duckdb"
            out = run_child(
                "flow",
                {"calls": str(calls_dir), "db": str(db), "config": str(cfg), "dask_address": cluster.scheduler_address},
            )
            with Client(cluster) as client:
                per_worker = client.run(peak_rss_mb)
        rtf[n] = out["audio_s"] / out["outer_wall_s"]
        print(
            f"  {n} worker(s): {out['processed']} calls, {out['audio_s']:.0f} s audio in {out['outer_wall_s']:.1f} s "
            f"= {rtf[n]:.2f}x real time; peak RSS per worker: "
            + ", ".join(f"{v:.0f} MB" for v in per_worker.values())
            + f"; {load()}"
        )
    eff = rtf[2] / (2 * rtf[1])
    print(
        f"scaling 1 -> 2 workers: speed-up {rtf[2] / rtf[1]:.2f}x, efficiency {eff:.2f} "
        f"(on a {os.cpu_count()}-core machine; 1.0 = perfectly linear)"
    )


# ---------------------------------------------------------------------------------------- db


def section_db(args, results: list, work: Path) -> None:
    import duckdb

    from callqa import PIPELINE_VERSION
    from callqa.pipeline import store
    from callqa.pipeline.staging import bulk_load, stage_call

    if not results:
        print("\n== db: needs CallResults from the stages section")
        return
    n = args.db_calls
    # real results, re-keyed: each copy is a distinct call with the real number of rows
    copies = []
    for i in range(n):
        r = results[i % len(results)]
        src = dataclasses.replace(r.source, call_id=f"{i:064x}", path=f"{r.source.path}#{i}")
        copies.append(dataclasses.replace(r, source=src))
    rows = sum(len(c.utterances) + sum(len(u.words) for u in c.utterances) + len(c.events) for c in copies)
    print(f"\n== db: {n} calls ({rows} utterance+word+event rows); {load()}")
    con = store.connect(work / "load-direct.duckdb")
    t0 = time.perf_counter()
    for c in copies:
        store.write_call(con, c, "bench", PIPELINE_VERSION)
    direct = time.perf_counter() - t0
    con.close()
    print(f"  one transaction per call (default writer): {n / direct:7.1f} calls/s ({direct:.1f} s)")
    staging = work / "staging"
    t0 = time.perf_counter()
    for c in copies:
        stage_call(c, staging, "bench", PIPELINE_VERSION)
    stage_s = time.perf_counter() - t0
    con = store.connect(work / "load-parquet.duckdb")
    files = sorted(staging.glob("*.parquet"))
    t0 = time.perf_counter()
    loaded = 0
    for i in range(0, len(files), args.load_every):
        loaded += len(bulk_load(con, files[i : i + args.load_every]))
    bulk = time.perf_counter() - t0
    check = con.execute("SELECT count(*) FROM calls").fetchone()[0]
    con.close()
    assert loaded == check == n, (loaded, check, n)
    print(
        f"  Parquet: staging {n / stage_s:7.1f} calls/s per worker; bulk load {n / bulk:7.1f} calls/s "
        f"({args.load_every} calls per transaction, {bulk:.1f} s)"
    )
    del duckdb


# -------------------------------------------------------------------------------------- long


def make_long_call(paths: list[Path], minutes: float, dest: Path) -> Path:
    """Join the bench calls (decoded at 8 kHz, both channels) end to end until `minutes` long."""
    import numpy as np

    from callqa.pipeline.decode import decode
    from callqa.synth.audio import write_audio

    if dest.is_file():
        return dest
    target = int(minutes * 60 * 8000)
    parts, n = [], 0
    while n < target:
        for p in paths:
            a = decode(p, target_sr=8000)
            if a.n_channels != 2:
                continue
            x = np.stack(a.channels)
            parts.append(x)
            n += x.shape[1]
            if n >= target:
                break
    audio = np.concatenate(parts, axis=1)[:, :target]
    write_audio(dest, audio, 8000, "pcm_mulaw")
    return dest


def section_long(args, paths: list[Path], work: Path) -> None:
    print(
        f"\n== long: one {args.long_minutes:g}-minute stereo call vs a 10-minute one, each in a fresh process; {load()}"
    )
    cfg = write_config(args, work / "long.yaml", {})
    for minutes in (10, args.long_minutes):
        path = make_long_call(paths, minutes, args.calls / f"long_{minutes:g}min.wav")
        out = run_child("call", {"config": str(cfg), "path": str(path)})
        if out.get("error"):
            print(f"  {minutes:g} min: FAILED {out['error']}")
            continue
        stages = ", ".join(f"{k} {v:.1f}s" for k, v in (out["timings"] or {}).items())
        print(
            f"  {minutes:4g} min: {out['duration_s']:.0f} s audio in {out['wall_s']:.0f} s "
            f"= {out['duration_s'] / out['wall_s']:.2f}x; "
            f"RSS after model load {out['rss_after_load_mb']:.0f} MB, peak {out['peak_rss_mb']:.0f} MB "
            f"(target <= {TARGET_RSS_MB}); {stages}; {load()}"
        )


# -------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--_child":
        return _child(argv[1:])
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=Path, default=Path(tempfile.gettempdir()) / "callqa-bench-calls")
    ap.add_argument("--minutes", type=float, nargs="+", default=[3, 5, 10], help="synthesised call lengths")
    ap.add_argument("--no-aws", action="store_true", help="leave out the real AWS LCA calls")
    ap.add_argument("--sections", default="stages,flow,scaling,db,long")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--layouts", nargs="+", default=["1x2", "2x1"], help="workers x CTranslate2 threads")
    ap.add_argument("--config", type=Path, default=None, help="settings YAML layered under the bench options")
    ap.add_argument("--model", default=None, help="models.asr.model (size, local dir or hub id)")
    ap.add_argument("--device", default=None, choices=["auto", "cpu", "cuda"])
    ap.add_argument("--compute-type", default=None)
    ap.add_argument("--beam-size", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--db-calls", type=int, default=500)
    ap.add_argument("--load-every", type=int, default=200)
    ap.add_argument("--long-minutes", type=float, default=60)
    ap.add_argument("--work", type=Path, default=None, help="scratch folder (databases, configs)")
    args = ap.parse_args(argv)
    sections = set(args.sections.split(","))

    paths = synth_calls(args.calls, args.minutes) + ([] if args.no_aws else aws_stereo_calls(args.calls))
    batch_dir = args.calls / "batch"
    batch_dir.mkdir(exist_ok=True)
    for p in paths:  # the flow's folder: the bench calls only (not the long ones)
        link = batch_dir / p.name
        if not link.exists():
            link.symlink_to(p)
    work = args.work or Path(tempfile.mkdtemp(prefix="callqa-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"bench calls: {', '.join(p.name for p in paths)}; scratch: {work}")

    results = section_stages(args, paths) if "stages" in sections or "db" in sections else []
    if "flow" in sections:
        section_flow(args, batch_dir, work)
    if "scaling" in sections:
        section_scaling(args, batch_dir, work)
    if "db" in sections:
        section_db(args, results, work)
    if "long" in sections:
        section_long(args, paths, work)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
