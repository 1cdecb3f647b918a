"""Diagnosis hints and scorecard validation: where failures concentrate, and whether scores predict outcomes.

Concentration test (documented in the report): for a failure kind (a criterion's fails, or calls over the
hold target) and a dimension (queue, hour of day), take the group with the most failures. Its share of the
failures is compared with its share of the calls: `lift` = failure share / call share, and a one-sided
binomial test asks whether that many failures would fall in the group if failures were spread like calls
(p = P[X >= failures in group], X ~ Binomial(all failures, call share)). A hint is reported when there are
at least `min_failures` failures, lift >= `min_lift` and p < `alpha`.

Correlation (issue 19 item 2): per call, the auto-score (percent) and each criterion (pass = 1, fail = 0)
against satisfaction (csat, nps) and against repeat contact (1 when the same customer called again within
`kpi.repeat_window_days`, as kpi_repeat_contacts counts it). Spearman's rho with a 95 % confidence interval
from Fisher's z (standard error 1.06 / sqrt(n - 3), Fieller et al. 1957, for Spearman's rho); fewer than
`min_n` pairs give no estimate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import duckdb
from scipy import stats as sps

from callqa.workspace.audit.data import rows
from callqa.workspace.audit.periods import Span


@dataclass(frozen=True)
class Concentration:
    failure: str  # criterion id or "hold_over_target"
    dimension: str  # "queue" | "hour"
    group: str
    failures_in_group: int
    failures: int
    calls_in_group: int
    calls: int
    failure_share: float
    call_share: float
    lift: float
    p_value: float


_DIMENSIONS = {
    "queue": "coalesce(c.queue, '(unknown)')",
    "hour": "lpad(CAST(hour(coalesce(c.started_at, c.processed_at)) AS VARCHAR), 2, '0') || ':00'",
}

# per call of the span: failure kind -> failed (criteria of the current scorecard version; hold over target)
_FAILURES_SQL = """
SELECT r.call_id, r.criterion_id AS failure, r.result = 'fail' AS failed
FROM criterion_results r JOIN current_scores s USING (call_id, scorecard_id, scorecard_version)
JOIN calls c USING (call_id)
WHERE r.result <> 'na' AND CAST(coalesce(c.started_at, c.processed_at) AS DATE) BETWEEN ? AND ?
UNION ALL
SELECT t.call_id, 'hold_over_target', t.hold_s > coalesce(q.hold_s, d.hold_s)
FROM kpi_call_times(?, ?) t LEFT JOIN kpi_targets q ON q.queue = t.queue
LEFT JOIN kpi_targets d ON d.queue = 'default' WHERE t.hold_s IS NOT NULL
"""


def concentrations(
    con: duckdb.DuckDBPyConnection,
    span: Span,
    *,
    min_failures: int = 10,
    min_lift: float = 1.5,
    alpha: float = 0.01,
) -> list[Concentration]:
    """The failure kinds concentrated in one queue or hour of the span, strongest (lowest p) first."""
    out: list[Concentration] = []
    for dim, expr in _DIMENSIONS.items():
        sql = f"""
        WITH f AS ({_FAILURES_SQL}),
        g AS (SELECT f.failure, {expr} AS grp, count(*) AS calls, count(*) FILTER (WHERE f.failed) AS fails
              FROM f JOIN calls c USING (call_id) GROUP BY ALL),
        tot AS (SELECT failure, sum(calls) AS calls, sum(fails) AS fails FROM g GROUP BY 1)
        SELECT g.failure, arg_max(g.grp, (g.fails, g.calls)) AS grp, max(g.fails) AS fails_in_group,
               arg_max(g.calls, (g.fails, g.calls)) AS calls_in_group, any_value(tot.fails) AS fails,
               any_value(tot.calls) AS calls
        FROM g JOIN tot USING (failure)
        GROUP BY g.failure"""
        for r in rows(con, sql, [span.since, span.until, span.since, span.until]):
            fails, calls = int(r["fails"]), int(r["calls"])
            if fails < min_failures or calls == 0:
                continue
            fshare, cshare = r["fails_in_group"] / fails, r["calls_in_group"] / calls
            lift = fshare / cshare if cshare else math.inf
            p = float(sps.binomtest(int(r["fails_in_group"]), fails, cshare, alternative="greater").pvalue)
            if lift >= min_lift and p < alpha:
                out.append(
                    Concentration(
                        r["failure"],
                        dim,
                        str(r["grp"]),
                        int(r["fails_in_group"]),
                        fails,
                        int(r["calls_in_group"]),
                        calls,
                        fshare,
                        cshare,
                        lift,
                        p,
                    )
                )
    return sorted(out, key=lambda c: (c.p_value, -c.lift, c.failure, c.dimension))


@dataclass(frozen=True)
class Correlation:
    predictor: str  # "auto_score" or a criterion id
    outcome: str  # "csat" | "nps" | "repeat_contact"
    n: int
    rho: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None


def spearman_ci(
    x: list[float], y: list[float], min_n: int = 10
) -> tuple[float | None, float | None, float | None, float | None]:
    """Spearman's rho, its 95 % CI (Fisher z, SE 1.06/sqrt(n-3)) and p; all None below min_n or for a constant."""
    n = len(x)
    if n < max(min_n, 4) or len(set(x)) < 2 or len(set(y)) < 2:
        return None, None, None, None
    res = sps.spearmanr(x, y)
    rho, p = float(res.statistic), float(res.pvalue)
    if math.isnan(rho):
        return None, None, None, None
    z = math.atanh(max(min(rho, 0.999999), -0.999999))
    half = 1.959964 * 1.06 / math.sqrt(n - 3)
    return rho, math.tanh(z - half), math.tanh(z + half), p


_PER_CALL_SQL = """
WITH k AS (SELECT call_id, customer_id, "at", csat, nps FROM kpi_calls(?, ?)),
nxt AS (
    SELECT c.call_id,
           lead(coalesce(c.started_at, c.processed_at)) OVER (
               PARTITION BY c.customer_id ORDER BY coalesce(c.started_at, c.processed_at), c.call_id) AS next_at
    FROM calls c
    WHERE c.customer_id IS NOT NULL AND c.customer_id <> '' AND c.scorable_status IS DISTINCT FROM 'unscorable'
      AND coalesce(c.started_at, c.processed_at) >= CAST(? AS TIMESTAMP)
      AND coalesce(c.started_at, c.processed_at) < CAST(? AS TIMESTAMP) + to_days(CAST(1 + ? AS INTEGER))
)
SELECT k.call_id, s.percent, k.csat, k.nps,
       CASE WHEN n.call_id IS NULL THEN NULL
            WHEN n.next_at <= k."at" + to_days(CAST(? AS INTEGER)) THEN 1 ELSE 0 END AS repeat_contact
FROM k JOIN current_scores s ON s.call_id = k.call_id
LEFT JOIN nxt n ON n.call_id = k.call_id
"""


def per_call_outcomes(con: duckdb.DuckDBPyConnection, span: Span, window_days: int) -> list[dict[str, Any]]:
    """Per graded call of the span: percent, csat, nps and repeat_contact (None without a customer id)."""
    a, b = span.since, span.until
    return rows(con, _PER_CALL_SQL, [a, b, a, b, window_days, window_days])


def correlations(
    con: duckdb.DuckDBPyConnection, span: Span, window_days: int = 7, min_n: int = 10
) -> list[Correlation]:
    """The auto-score and every criterion against csat, nps and repeat contact (pairs where both exist)."""
    calls = per_call_outcomes(con, span, window_days)
    crit = rows(
        con,
        """SELECT r.call_id, r.criterion_id, CASE r.result WHEN 'pass' THEN 1.0 ELSE 0.0 END AS passed
           FROM criterion_results r JOIN current_scores s USING (call_id, scorecard_id, scorecard_version)
           JOIN kpi_calls(?, ?) k ON k.call_id = r.call_id WHERE r.result <> 'na'""",
        [span.since, span.until],
    )
    predictors: dict[str, dict[str, float]] = {
        "auto_score": {c["call_id"]: c["percent"] for c in calls if c["percent"] is not None}
    }
    for r in crit:
        predictors.setdefault(r["criterion_id"], {})[r["call_id"]] = r["passed"]
    out: list[Correlation] = []
    for outcome in ("csat", "nps", "repeat_contact"):
        ys = {c["call_id"]: float(c[outcome]) for c in calls if c[outcome] is not None}
        if not ys:
            continue
        found = []
        for name in ["auto_score", *sorted(k for k in predictors if k != "auto_score")]:
            pairs = [(v, ys[cid]) for cid, v in predictors[name].items() if cid in ys]
            rho, lo, hi, p = spearman_ci([p[0] for p in pairs], [p[1] for p in pairs], min_n)
            found.append(Correlation(name, outcome, len(pairs), rho, lo, hi, p))
        # per outcome: the auto-score, then the criteria that go with it most strongly (a QA lead reads the
        # top of the list; in criterion-id order the few that matter were lost among ~16 that do not)
        out += sorted(found, key=lambda c: (c.predictor != "auto_score", c.rho is None, -abs(c.rho or 0), c.predictor))
    return out
