"""One Toolkit (loaded models) per worker process, whatever runs the tasks.

Tasks receive only the Settings (small, picklable); the models are loaded the first time a process
needs them and reused for every later call, so a Dask worker loads Whisper once, never per call, and
the model is never pickled or shipped over the network. On the local thread pool all threads of the
flow's process share the one Toolkit (faster-whisper's `num_workers` lets them transcribe at once).

The cache is per process by necessity (a Dask worker has no other place to keep a loaded model
between tasks); it is keyed by a hash of the settings, so a worker that serves two flows with
different settings holds one Toolkit for each.
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
from dataclasses import dataclass

from callqa.config.settings import Settings
from callqa.pipeline.toolkit import Toolkit, load_toolkit

_lock = threading.Lock()
_kits: dict[str, Toolkit] = {}


@dataclass(frozen=True)
class Layout:
    """How the cores of this host are shared: calls in flight here, and CTranslate2 threads per call."""

    slots_in_process: int  # calls this process runs at once (thread-pool size, or Dask worker nthreads)
    slots_on_host: int  # calls running at once on this machine, all worker processes together
    cores: int

    @property
    def threads_per_call(self) -> int:
        return max(1, self.cores // max(1, self.slots_on_host))


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def settings_key(settings: Settings) -> str:
    return hashlib.sha256(settings.model_dump_json().encode()).hexdigest()


def current_layout(local_slots: int = 1) -> Layout:
    """On a Dask worker: its nthreads, and the nthreads of every worker on the same host (asked of
    the scheduler once), so that two worker processes on one machine split its cores instead of
    each starting a thread per core. Elsewhere: `local_slots` threads in this one process."""
    cores = available_cores()
    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):
        return Layout(local_slots, local_slots, cores)
    mine = worker.state.nthreads
    host = worker.address.rsplit(":", 1)[0]
    try:
        from distributed import worker_client

        with worker_client(separate_thread=False) as client:
            infos = client.scheduler_info(n_workers=-1)["workers"].values()
        on_host = sum(w.get("nthreads", 1) for w in infos if str(w.get("host", "")) == host.split("://")[-1])
    except Exception:  # noqa: BLE001 - a scheduler that will not say: assume this worker is alone
        on_host = mine
    return Layout(mine, max(mine, on_host), cores)


def toolkit_for(settings: Settings, local_slots: int = 1) -> Toolkit:
    """The process's Toolkit for these settings, loading it on first use (thread-safe)."""
    key = settings_key(settings)
    kit = _kits.get(key)
    if kit is not None:
        return kit
    with _lock:
        kit = _kits.get(key)
        if kit is None:
            layout = current_layout(local_slots)
            effective = settings
            if settings.models.asr.cpu_threads == 0:
                asr = settings.models.asr.model_copy(update={"cpu_threads": layout.threads_per_call})
                effective = settings.model_copy(update={"models": settings.models.model_copy(update={"asr": asr})})
            kit = load_toolkit(effective, workers=layout.slots_in_process)
            _match_torch_threads(effective.models.asr.cpu_threads)
            _kits[key] = kit
    return kit


def _match_torch_threads(threads: int) -> None:
    """The text/emotion models run on torch, whose default of one thread per core would fight the
    other workers for the same cores; give it the same share as CTranslate2."""
    torch = sys.modules.get("torch")
    if torch is not None and threads > 0:
        torch.set_num_threads(threads)


def loaded_toolkits() -> int:
    """How many Toolkits this process holds (tests check that a worker loads its models once)."""
    return len(_kits)
