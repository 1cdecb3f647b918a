-- v13: the customer repeating themselves as a component of the customer effort score (issue 19: "repeated
-- explanations"). The event is `customer_repeat` (callqa.pipeline.detectors.restate: a customer sentence
-- restating one the customer said in an earlier turn of the same call, the agent having spoken in between).
--
-- kpi_call_effort and kpi_effort keep every column of 0011 in the same order and add `customer_repeats`
-- last; kpi_call_events, on which the complaint and escalation macros stand, is not redefined.
--   effort_score = 2 x repeat_mentions + 2 x transfers + 1 x long_holds + 1 per full 30 s of dead air
--                + 1 x customer_repeats, at most 2 of them,   capped at 10
-- A restatement weighs less than calling again or being passed on (2 each): the customer explains once
-- more inside the same call. At most 2 count, so one long call with a customer who keeps coming back to
-- the same point (or a detector misfire over many near-identical turns) cannot make the score alone.

CREATE OR REPLACE MACRO kpi_call_effort(since, until, long_hold_s := 60, grain := 'agent', period := 'day') AS TABLE
WITH d AS (
    -- call_facts.dead_air_total_s is max(value) of the call's dead_air_total_s metric (migration 0012),
    -- what this read from the 22 M rows of call_metrics at 1 M calls (kpi_effort 30 days: 560 ms; NULL
    -- where the metric is missing, as the missing row was: coalesce(..., 0) below)
    SELECT k.call_id, f.dead_air_total_s AS dead_air_s
    FROM kpi_calls(since, until) k
    JOIN call_facts f ON f.call_id = k.call_id
    WHERE k.scorable_status IS DISTINCT FROM 'partial'
),
r AS (
    SELECT k.call_id, count(*) AS customer_repeats
    FROM kpi_calls(since, until) k
    JOIN events ev ON ev.call_id = k.call_id AND ev.type = 'customer_repeat'
    GROUP BY k.call_id
)
SELECT e.call_id, e.period_start, e.group_key, e.repeat_mentions, e.transfers, e.long_holds,
       coalesce(d.dead_air_s, 0) AS dead_air_s,
       least(10, 2 * e.repeat_mentions + 2 * e.transfers + e.long_holds
                 + CAST(floor(coalesce(d.dead_air_s, 0) / 30) AS BIGINT)
                 + least(2, coalesce(r.customer_repeats, 0))) AS effort_score,
       coalesce(r.customer_repeats, 0) AS customer_repeats
FROM kpi_call_events(since, until, long_hold_s := long_hold_s, grain := grain, period := period) e
LEFT JOIN d ON d.call_id = e.call_id
LEFT JOIN r ON r.call_id = e.call_id;

CREATE OR REPLACE MACRO kpi_effort(since, until, grain := 'agent', period := 'day', long_hold_s := 60) AS TABLE
SELECT f.period_start, f.group_key,
       count(*) AS calls,
       avg(f.effort_score) AS avg_effort_score,
       count(*) FILTER (WHERE f.effort_score >= 3) AS high_effort_calls,
       sum(f.repeat_mentions) AS repeat_mentions,
       sum(f.transfers) AS transfers,
       sum(f.long_holds) AS long_holds,
       sum(f.dead_air_s) AS dead_air_s,
       sum(f.customer_repeats) AS customer_repeats
FROM kpi_call_effort(since, until, long_hold_s := long_hold_s, grain := grain, period := period) f
GROUP BY ALL;
