"""Keep third-party progress bars out of callqa's own output while a model loads.

transformers 5 draws a "Loading weights: 100%|...| 103/103" bar on stderr for every
from_pretrained (the MiniLM sentence embedder at each worker start, an emotion classifier),
which lands in the middle of `callqa demo` and every run's log. The switch is the library's own
(transformers.utils.logging), turned off only while callqa loads and put back as it was, so the
user's other code keeps its bars.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator


@contextlib.contextmanager
def no_progress_bars() -> Iterator[None]:
    try:
        from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars
        from transformers.utils import logging as hf_logging
    except ImportError:  # pragma: no cover - both are callqa dependencies
        yield
        return
    if not hf_logging.is_progress_bar_enabled():  # already off (HF_HUB_DISABLE_PROGRESS_BARS=1, or the user)
        yield
        return
    hub_off = are_progress_bars_disabled()
    with warnings.catch_warnings():  # HF_HUB_DISABLE_PROGRESS_BARS=0 makes the hub warn that it keeps its bars
        warnings.simplefilter("ignore")
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            hf_logging.enable_progress_bar()  # this switches the hub's bars back on too...
            if hub_off:
                disable_progress_bars()  # ...so turn them off again where they were off before
