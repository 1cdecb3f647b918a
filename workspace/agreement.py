"""Agreement between raters on categorical verdicts: percent agreement, Cohen's kappa, Fleiss' kappa.

Pure functions over verdict lists, for calibration sessions (callqa.workspace.calibration_sessions).
Kappa is undefined when chance agreement is certain (every verdict on both sides is one class, e.g. all
'pass'): the functions then return value None with a note saying so, never 0, 1 or NaN.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Kappa:
    value: float | None  # None: undefined (see note)
    n: int  # items (calls) it was computed over
    note: str | None = None

    def text(self) -> str:
        return f"{self.value:.3f}" if self.value is not None else f"undefined ({self.note})"


def _one_class_note(labels: set[str]) -> str:
    if not labels:
        return "no verdicts"
    return f"every verdict is {next(iter(labels))!r}: chance agreement is certain"


def percent_agreement(a: Sequence[str], b: Sequence[str]) -> float | None:
    if len(a) != len(b):
        raise ValueError("two raters' verdict lists must pair up item by item")
    return None if not a else sum(x == y for x, y in zip(a, b)) / len(a)


def cohen(a: Sequence[str], b: Sequence[str]) -> Kappa:
    """Cohen's kappa of two raters over the same items (sklearn's cohen_kappa_score)."""
    if len(a) != len(b):
        raise ValueError("two raters' verdict lists must pair up item by item")
    labels = set(a) | set(b)
    if not a:
        return Kappa(None, 0, "no items scored by both")
    if len(labels) < 2:
        return Kappa(None, len(a), _one_class_note(labels))
    from sklearn.metrics import cohen_kappa_score

    k = float(cohen_kappa_score(list(a), list(b), labels=sorted(labels)))
    if math.isnan(k):  # cannot happen with two labels present; kept so NaN never reaches a page
        return Kappa(None, len(a), "undefined")
    return Kappa(round(k, 4), len(a))


def fleiss(items: Sequence[Sequence[str]]) -> Kappa:
    """Fleiss' kappa: each item's verdicts from the same number (≥ 2) of raters.

    P_i = (Σ_j n_ij² − m) / (m(m − 1)), P̄ the mean over items, p_j = Σ_i n_ij / (N m),
    P_e = Σ_j p_j², kappa = (P̄ − P_e) / (1 − P_e)."""
    if not items:
        return Kappa(None, 0, "no item was scored by every reviewer")
    m = len(items[0])
    if m < 2 or any(len(v) != m for v in items):
        raise ValueError("Fleiss' kappa needs the same number (at least two) of verdicts on every item")
    counts = [Counter(v) for v in items]
    labels = set().union(*counts)
    if len(labels) < 2:
        return Kappa(None, len(items), _one_class_note(labels))
    n = len(items)
    p_bar = sum((sum(c * c for c in cnt.values()) - m) / (m * (m - 1)) for cnt in counts) / n
    p_e = sum((sum(cnt[j] for cnt in counts) / (n * m)) ** 2 for j in labels)
    return Kappa(round((p_bar - p_e) / (1 - p_e), 4), n)


def mean_pairwise_agreement(items: Sequence[Sequence[str]]) -> float | None:
    """The share of agreeing rater pairs per item, averaged over items (Fleiss' P̄); any number of raters ≥ 2."""
    shares = []
    for v in items:
        m = len(v)
        if m < 2:
            continue
        cnt = Counter(v)
        shares.append(sum(c * (c - 1) for c in cnt.values()) / (m * (m - 1)))
    return sum(shares) / len(shares) if shares else None
