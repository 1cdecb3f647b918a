"""Time spans: (start, end) seconds from the start of the recording, and the few operations on them
that several stages share (speech timelines, quiet stretches, holds, overtalk, talk time)."""

from __future__ import annotations

import numpy as np

Span = tuple[float, float]
Spans = list[Span]


def merge_spans(spans: Spans, max_gap_s: float = 0.0) -> Spans:
    """Sorted spans with overlapping ones (and ones at most `max_gap_s` apart) joined."""
    merged: list[list[float]] = []
    for s, e in sorted(spans):
        if merged and s - merged[-1][1] <= max_gap_s:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    return [(s, e) for s, e in merged]


def subtract_spans(spans: Spans, cut: Spans) -> Spans:
    """What is left of `spans` outside every span of `cut`."""
    out: Spans = []
    cut = merge_spans(cut)
    for s, e in spans:
        cur = s
        for a, b in cut:
            if b <= cur or a >= e:
                continue
            if a > cur:
                out.append((cur, a))
            cur = max(cur, b)
        if cur < e:
            out.append((cur, e))
    return out


def total_length(spans: Spans) -> float:
    """Seconds covered by at least one span (overlaps counted once)."""
    return sum((e - s for s, e in merge_spans(spans)), 0.0)


def overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    """Seconds that [a0, a1] and [b0, b1] share."""
    return max(0.0, min(a1, b1) - max(a0, b0))


def midpoint_inside(t0: float, t1: float, spans: Spans, tol: float = 0.1) -> bool:
    """Whether the middle of [t0, t1] lies in one of `spans` (widened by `tol` on each side)."""
    mid = 0.5 * (t0 + t1)
    return any(s - tol <= mid <= e + tol for s, e in spans)


def runs(mask: np.ndarray, hop_s: float) -> Spans:
    """(start, end) seconds of each run of True frames."""
    if mask.size == 0:
        return []
    m = np.concatenate([[False], mask.astype(bool), [False]])
    d = np.flatnonzero(np.diff(m.astype(np.int8)))
    return [(round(float(a) * hop_s, 3), round(float(b) * hop_s, 3)) for a, b in zip(d[::2], d[1::2])]
