-- v11: centre KPIs (issue 19): repeat contact / first-contact resolution, complaint rate, the escalation
-- funnel, customer effort, handle/talk/hold/dead-air time against per-queue targets, and satisfaction.
--
-- Every KPI is a table macro over a date range, because DuckDB views take no parameters and the KPIs have
-- some (the repeat window, the long-hold threshold): the range is applied to `calls` first, so a 30-day
-- window reads only its own calls' events and metrics. All macros take
--   since, until   first and last day (inclusive) of the calls counted; a call's day is started_at, else
--                  processed_at, as in every other view
--   grain          'agent' | 'team' | 'queue' | 'centre' (one group); a missing value is '(unknown)'
--   period         'day' | 'week' (ISO, from Monday) | 'month'
-- and return one row per (period_start, group_key) that has calls: a period without calls has no row
-- (callqa.workspace.kpis fills such periods in as zero-call records). Unscorable recordings (a test
-- tone, a silent line: migration 0007) are not calls and are counted nowhere.
--
--   SELECT * FROM kpi_repeat_contacts(DATE '2026-10-01', DATE '2026-10-31', grain := 'team', period := 'week');

-- Survey and routing fields of the sidecar / manifest (callqa.pipeline.discover validates them):
-- team: the agent's team; tier: the support tier that handled the call (1 first line, 2 second tier,
-- 3 complaints handling); csat: post-call satisfaction survey, 1-5; nps: likelihood to recommend, 0-10.
ALTER TABLE calls ADD COLUMN IF NOT EXISTS team VARCHAR;
ALTER TABLE calls ADD COLUMN IF NOT EXISTS tier INTEGER;
ALTER TABLE calls ADD COLUMN IF NOT EXISTS csat DOUBLE;
ALTER TABLE calls ADD COLUMN IF NOT EXISTS nps INTEGER;

-- Per-queue targets (seconds per call) from settings `kpi.targets`, written by
-- callqa.workspace.kpis.sync_targets; the 'default' row applies to every queue without its own row.
CREATE TABLE IF NOT EXISTS kpi_targets (
    queue      VARCHAR PRIMARY KEY,
    handle_s   DOUBLE NOT NULL,
    talk_s     DOUBLE NOT NULL,
    hold_s     DOUBLE NOT NULL,
    dead_air_s DOUBLE NOT NULL
);
INSERT INTO kpi_targets VALUES ('default', 480, 360, 60, 20) ON CONFLICT DO NOTHING;

-- The calls of a range with their grouping keys (the base of every KPI macro).
CREATE OR REPLACE MACRO kpi_calls(since, until, grain := 'agent', period := 'day') AS TABLE
SELECT c.call_id, c.customer_id, c.queue, c.tier, c.csat, c.nps, c.duration_s, c.scorable_status,
       coalesce(c.started_at, c.processed_at) AS at,
       CAST(coalesce(c.started_at, c.processed_at) AS DATE) AS day,
       CAST(date_trunc(CASE WHEN period IN ('day', 'week', 'month') THEN period
                            ELSE error('period must be day, week or month, not ' || period) END,
                       CAST(coalesce(c.started_at, c.processed_at) AS DATE)) AS DATE) AS period_start,
       CASE grain WHEN 'agent' THEN coalesce(c.agent_id, '(unknown)')
                  WHEN 'team' THEN coalesce(c.team, '(unknown)')
                  WHEN 'queue' THEN coalesce(c.queue, '(unknown)')
                  WHEN 'centre' THEN 'centre'
                  ELSE error('grain must be agent, team, queue or centre, not ' || grain) END AS group_key
FROM calls c
WHERE coalesce(c.started_at, c.processed_at) >= CAST(since AS TIMESTAMP)
  AND coalesce(c.started_at, c.processed_at) < CAST(until AS TIMESTAMP) + INTERVAL 1 DAY
  AND c.scorable_status IS DISTINCT FROM 'unscorable';

-- Per call, the detected events the KPIs count (pipeline/detectors: complaint and escalation_request from
-- the customer, transfer by the agent, repeat_contact_mention by the customer, hold spans from the audio).
CREATE OR REPLACE MACRO kpi_call_events(since, until, long_hold_s := 60, grain := 'agent', period := 'day') AS TABLE
SELECT k.call_id, k.period_start, k.group_key, k.tier,
       count(e.call_id) FILTER (WHERE e.type = 'complaint') AS complaints,
       count(e.call_id) FILTER (WHERE e.type = 'escalation_request') AS escalation_requests,
       count(e.call_id) FILTER (WHERE e.type = 'transfer') AS transfers,
       count(e.call_id) FILTER (WHERE e.type = 'repeat_contact_mention') AS repeat_mentions,
       count(e.call_id) FILTER (WHERE e.type = 'hold' AND e.end_s - e.start_s >= long_hold_s) AS long_holds
FROM kpi_calls(since, until, grain, period) k
LEFT JOIN events e ON e.call_id = k.call_id
 AND e.type IN ('complaint', 'escalation_request', 'transfer', 'repeat_contact_mention', 'hold')
GROUP BY k.call_id, k.period_start, k.group_key, k.tier;

-- Per call, the time metrics (call_metrics). Talk, hold and dead air are NULL on a partial call (one
-- party's leg: its silences are the other party talking).
CREATE OR REPLACE MACRO kpi_call_times(since, until, grain := 'agent', period := 'day') AS TABLE
SELECT k.call_id, k.period_start, k.group_key, k.queue, k.duration_s AS handle_s,
       CASE WHEN k.scorable_status IS DISTINCT FROM 'partial' THEN max(m.value) FILTER (WHERE m.name = 'talk_s') END AS talk_s,
       CASE WHEN k.scorable_status IS DISTINCT FROM 'partial' THEN coalesce(max(m.value) FILTER (WHERE m.name = 'hold_total_s'), 0) END AS hold_s,
       CASE WHEN k.scorable_status IS DISTINCT FROM 'partial' THEN coalesce(max(m.value) FILTER (WHERE m.name = 'dead_air_total_s'), 0) END AS dead_air_s
FROM kpi_calls(since, until, grain, period) k
LEFT JOIN call_metrics m ON m.call_id = k.call_id AND m.name IN ('talk_s', 'hold_total_s', 'dead_air_total_s')
GROUP BY k.call_id, k.period_start, k.group_key, k.queue, k.duration_s, k.scorable_status;

-- Repeat contact / first-contact resolution. A call with a customer_id is a repeat contact when the same
-- customer calls again (a later call, any agent or queue) within `window_days` days of its start; it is
-- counted on the first call's agent/team/queue, as the contact that did not resolve the matter. Later calls
-- up to `window_days` after `until` are read to judge the last days of the range. Calls without a
-- customer_id cannot be judged: excluded from the rates and counted in calls_without_customer.
--   repeat_rate = repeat_contacts / calls_with_customer;   fcr_rate = 1 - repeat_rate
CREATE OR REPLACE MACRO kpi_repeat_contacts(since, until, grain := 'agent', period := 'day', window_days := 7) AS TABLE
WITH nxt AS (
    SELECT c.call_id,
           lead(coalesce(c.started_at, c.processed_at)) OVER (
               PARTITION BY c.customer_id ORDER BY coalesce(c.started_at, c.processed_at), c.call_id) AS next_at
    FROM calls c
    WHERE c.customer_id IS NOT NULL AND c.customer_id <> ''
      AND c.scorable_status IS DISTINCT FROM 'unscorable'
      AND coalesce(c.started_at, c.processed_at) >= CAST(since AS TIMESTAMP)
      AND coalesce(c.started_at, c.processed_at) < CAST(until AS TIMESTAMP) + to_days(CAST(1 + window_days AS INTEGER))
)
SELECT k.period_start, k.group_key,
       count(*) AS calls,
       count(*) FILTER (WHERE k.customer_id IS NULL OR k.customer_id = '') AS calls_without_customer,
       count(n.call_id) AS calls_with_customer,
       count(*) FILTER (WHERE n.next_at <= k.at + to_days(CAST(window_days AS INTEGER))) AS repeat_contacts,
       count(*) FILTER (WHERE n.next_at <= k.at + to_days(CAST(window_days AS INTEGER))) / nullif(count(n.call_id), 0) AS repeat_rate,
       1 - count(*) FILTER (WHERE n.next_at <= k.at + to_days(CAST(window_days AS INTEGER))) / nullif(count(n.call_id), 0) AS fcr_rate
FROM kpi_calls(since, until, grain, period) k
LEFT JOIN nxt n ON n.call_id = k.call_id
GROUP BY ALL;

-- Complaint rate: calls where the customer complained or asked to escalate (a manager, a formal complaint)
-- / calls. complaint_calls and escalation_request_calls each count calls with at least one such event.
CREATE OR REPLACE MACRO kpi_complaints(since, until, grain := 'agent', period := 'day') AS TABLE
SELECT e.period_start, e.group_key,
       count(*) AS calls,
       count(*) FILTER (WHERE e.complaints > 0) AS complaint_calls,
       count(*) FILTER (WHERE e.escalation_requests > 0) AS escalation_request_calls,
       count(*) FILTER (WHERE e.complaints > 0 OR e.escalation_requests > 0) AS complaint_or_escalation_calls,
       count(*) FILTER (WHERE e.complaints > 0 OR e.escalation_requests > 0) / count(*) AS complaint_rate
FROM kpi_call_events(since, until, grain := grain, period := period) e
GROUP BY ALL;

-- The escalation funnel: first line (every call) -> escalation wanted (the customer asked, or the agent
-- transferred the call) -> handled at tier 2 or above -> at tier 3 (complaints handling). The tier stages
-- count only calls whose sidecar/manifest has `tier`; calls_with_tier says how many.
CREATE OR REPLACE MACRO kpi_escalations(since, until, grain := 'agent', period := 'day') AS TABLE
SELECT e.period_start, e.group_key,
       count(*) AS calls,
       count(*) FILTER (WHERE e.escalation_requests > 0) AS escalation_requested,
       count(*) FILTER (WHERE e.transfers > 0) AS transferred,
       count(*) FILTER (WHERE e.escalation_requests > 0 OR e.transfers > 0) AS escalated,
       count(*) FILTER (WHERE e.escalation_requests > 0 OR e.transfers > 0) / count(*) AS escalation_rate,
       count(e.tier) AS calls_with_tier,
       count(*) FILTER (WHERE e.tier >= 2) AS tier_2_or_above,
       count(*) FILTER (WHERE e.tier >= 3) AS tier_3
FROM kpi_call_events(since, until, grain := grain, period := period) e
GROUP BY ALL;

-- Customer effort per call: how hard the customer had to work, from detected cues, each component kept:
--   effort_score = 2 x repeat_mentions ("this is the third time I call", 我已经打了三次)
--                + 2 x transfers + 1 x long_holds (holds of at least long_hold_s, default 60 s)
--                + 1 per full 30 s of dead air,   capped at 10 (0 = no effort cue)
-- Dead air is NULL-safe: a partial call's silences are not dead air.
CREATE OR REPLACE MACRO kpi_call_effort(since, until, long_hold_s := 60, grain := 'agent', period := 'day') AS TABLE
WITH d AS (
    SELECT k.call_id, max(m.value) AS dead_air_s
    FROM kpi_calls(since, until) k
    JOIN call_metrics m ON m.call_id = k.call_id AND m.name = 'dead_air_total_s'
    WHERE k.scorable_status IS DISTINCT FROM 'partial'
    GROUP BY k.call_id
)
SELECT e.call_id, e.period_start, e.group_key, e.repeat_mentions, e.transfers, e.long_holds,
       coalesce(d.dead_air_s, 0) AS dead_air_s,
       least(10, 2 * e.repeat_mentions + 2 * e.transfers + e.long_holds
                 + CAST(floor(coalesce(d.dead_air_s, 0) / 30) AS BIGINT)) AS effort_score
FROM kpi_call_events(since, until, long_hold_s := long_hold_s, grain := grain, period := period) e
LEFT JOIN d ON d.call_id = e.call_id;

CREATE OR REPLACE MACRO kpi_effort(since, until, grain := 'agent', period := 'day', long_hold_s := 60) AS TABLE
SELECT f.period_start, f.group_key,
       count(*) AS calls,
       avg(f.effort_score) AS avg_effort_score,
       count(*) FILTER (WHERE f.effort_score >= 3) AS high_effort_calls,
       sum(f.repeat_mentions) AS repeat_mentions,
       sum(f.transfers) AS transfers,
       sum(f.long_holds) AS long_holds,
       sum(f.dead_air_s) AS dead_air_s
FROM kpi_call_effort(since, until, long_hold_s := long_hold_s, grain := grain, period := period) f
GROUP BY ALL;

-- Handle time (the recording's length), talk, hold and dead-air time per call, averaged, against the
-- targets of each call's queue (kpi_targets, 'default' for queues without a row). over_*_target: calls
-- above their queue's target; *_vs_target: average / average target (1.0 = on target).
CREATE OR REPLACE MACRO kpi_times(since, until, grain := 'agent', period := 'day') AS TABLE
WITH tg AS (
    SELECT t.call_id, t.period_start, t.group_key, t.handle_s, t.talk_s, t.hold_s, t.dead_air_s,
           coalesce(q.handle_s, d.handle_s) AS target_handle_s, coalesce(q.talk_s, d.talk_s) AS target_talk_s,
           coalesce(q.hold_s, d.hold_s) AS target_hold_s, coalesce(q.dead_air_s, d.dead_air_s) AS target_dead_air_s
    FROM kpi_call_times(since, until, grain := grain, period := period) t
    LEFT JOIN kpi_targets q ON q.queue = t.queue
    LEFT JOIN kpi_targets d ON d.queue = 'default'
)
SELECT t.period_start, t.group_key,
       count(*) AS calls,
       avg(t.handle_s) AS avg_handle_s, avg(t.talk_s) AS avg_talk_s,
       avg(t.hold_s) AS avg_hold_s, avg(t.dead_air_s) AS avg_dead_air_s,
       count(*) FILTER (WHERE t.handle_s > t.target_handle_s) AS over_handle_target,
       count(*) FILTER (WHERE t.talk_s > t.target_talk_s) AS over_talk_target,
       count(*) FILTER (WHERE t.hold_s > t.target_hold_s) AS over_hold_target,
       count(*) FILTER (WHERE t.dead_air_s > t.target_dead_air_s) AS over_dead_air_target,
       avg(t.handle_s) / nullif(avg(t.target_handle_s), 0) AS handle_vs_target,
       avg(t.hold_s) / nullif(avg(t.target_hold_s) FILTER (WHERE t.hold_s IS NOT NULL), 0) AS hold_vs_target
FROM tg t
GROUP BY ALL;

-- Satisfaction from the post-call survey (sidecar / manifest csat, nps; NULL where no survey):
-- avg_csat over the surveyed calls; NPS = 100 x (promoters 9-10 - detractors 0-6) / responses.
CREATE OR REPLACE MACRO kpi_satisfaction(since, until, grain := 'agent', period := 'day') AS TABLE
SELECT k.period_start, k.group_key,
       count(*) AS calls,
       count(k.csat) AS csat_responses,
       avg(k.csat) AS avg_csat,
       count(k.nps) AS nps_responses,
       count(*) FILTER (WHERE k.nps >= 9) AS promoters,
       count(*) FILTER (WHERE k.nps <= 6) AS detractors,
       100.0 * (count(*) FILTER (WHERE k.nps >= 9) - count(*) FILTER (WHERE k.nps <= 6)) / nullif(count(k.nps), 0) AS nps
FROM kpi_calls(since, until, grain, period) k
GROUP BY ALL;
-- As in 0007, with the same columns and results, but the call-level join runs before the aggregation, so
-- a filter on `day` (a grouping key) reaches `calls` first: 30 days read only their own calls' metrics
-- (0007 aggregated the whole call_metrics table, ~22 rows per call, before joining: 500 ms at 1 M calls).
CREATE OR REPLACE VIEW agent_daily_kpis AS
WITH per_call AS (
    SELECT c.call_id,
           CAST(coalesce(c.started_at, c.processed_at) AS DATE) AS day,
           coalesce(c.agent_id, '(unknown)') AS agent_id,
           max(m.value) FILTER (WHERE m.name = 'hold_total_s')         AS hold_total_s,
           max(m.value) FILTER (WHERE m.name = 'dead_air_total_s')     AS dead_air_total_s,
           max(m.value) FILTER (WHERE m.name = 'overtalk_total_s')     AS overtalk_total_s,
           max(m.value) FILTER (WHERE m.name = 'talk_ratio_agent')     AS talk_ratio_agent,
           max(m.value) FILTER (WHERE m.name = 'customer_emotion_end') AS customer_emotion_end
    FROM calls c
    LEFT JOIN call_metrics m ON m.call_id = c.call_id
     AND m.name IN ('hold_total_s', 'dead_air_total_s', 'overtalk_total_s', 'talk_ratio_agent', 'customer_emotion_end')
    WHERE coalesce(c.scorable_status, 'scorable') = 'scorable'
    GROUP BY c.call_id, CAST(coalesce(c.started_at, c.processed_at) AS DATE), coalesce(c.agent_id, '(unknown)')
)
SELECT day, agent_id,
       count(*) AS calls,
       avg(hold_total_s) AS avg_hold_s,
       sum(hold_total_s) AS hold_total_s,
       avg(dead_air_total_s) AS avg_dead_air_s,
       avg(overtalk_total_s) AS avg_overtalk_s,
       avg(talk_ratio_agent) AS avg_talk_ratio_agent,
       avg(customer_emotion_end) AS avg_customer_emotion_end
FROM per_call
GROUP BY day, agent_id;

-- As in 0007 (same columns and results), joined per call before aggregating, as agent_daily_kpis above.
CREATE OR REPLACE VIEW hold_stats AS
WITH h AS (
    SELECT c.call_id, c.file_name, c.agent_id, c.queue,
           CAST(coalesce(c.started_at, c.processed_at) AS DATE) AS day, c.duration_s,
           count(e.call_id) FILTER (WHERE e.type = 'hold') AS holds,
           sum(e.end_s - e.start_s) FILTER (WHERE e.type = 'hold') AS hold_event_s,
           max(e.end_s - e.start_s) FILTER (WHERE e.type = 'hold') AS longest_hold_s,
           count(e.call_id) FILTER (WHERE e.type = 'hold' AND TRY_CAST(json_extract_string(e.data, '$.announced') AS BOOLEAN)) AS holds_announced,
           count(e.call_id) FILTER (WHERE e.type = 'hold' AND TRY_CAST(json_extract_string(e.data, '$.thanked') AS BOOLEAN)) AS holds_thanked,
           count(e.call_id) FILTER (WHERE e.type = 'hold_unannounced') AS holds_unannounced,
           count(e.call_id) FILTER (WHERE e.type = 'hold_announced') AS announcements,
           count(e.call_id) FILTER (WHERE e.type = 'hold_thanked') AS thanks,
           count(e.call_id) FILTER (WHERE e.type = 'dead_air') AS dead_air_spans,
           sum(e.end_s - e.start_s) FILTER (WHERE e.type = 'dead_air') AS dead_air_event_s
    FROM calls c
    LEFT JOIN events e ON e.call_id = c.call_id
     AND e.type IN ('hold', 'hold_unannounced', 'hold_announced', 'hold_thanked', 'dead_air')
    WHERE coalesce(c.scorable_status, 'scorable') = 'scorable'
    GROUP BY c.call_id, c.file_name, c.agent_id, c.queue, CAST(coalesce(c.started_at, c.processed_at) AS DATE), c.duration_s
),
hm AS (
    SELECT h.call_id, h.file_name, h.agent_id, h.queue, h.day, h.duration_s, h.holds, h.hold_event_s, h.longest_hold_s,
           h.holds_announced, h.holds_thanked, h.holds_unannounced, h.announcements, h.thanks, h.dead_air_spans,
           h.dead_air_event_s,
           max(m.value) FILTER (WHERE m.name = 'hold_count') AS hold_count,
           max(m.value) FILTER (WHERE m.name = 'hold_total_s') AS hold_total_s,
           max(m.value) FILTER (WHERE m.name = 'hold_max_s') AS hold_max_s,
           max(m.value) FILTER (WHERE m.name = 'dead_air_total_s') AS dead_air_total_s
    FROM h
    LEFT JOIN call_metrics m ON m.call_id = h.call_id
     AND m.name IN ('hold_count', 'hold_total_s', 'hold_max_s', 'dead_air_total_s')
    GROUP BY ALL
)
SELECT call_id, file_name, agent_id, queue, day, duration_s,
       coalesce(hold_count, holds, 0) AS hold_count,
       coalesce(hold_total_s, hold_event_s, 0) AS hold_total_s,
       coalesce(hold_max_s, longest_hold_s, 0) AS hold_max_s,
       coalesce(holds_announced, 0) AS holds_announced,
       coalesce(holds_thanked, 0) AS holds_thanked,
       coalesce(holds_unannounced, 0) AS holds_unannounced,
       coalesce(announcements, 0) AS hold_announcements,
       coalesce(thanks, 0) AS hold_thanks,
       coalesce(dead_air_spans, 0) AS dead_air_spans,
       coalesce(dead_air_total_s, dead_air_event_s, 0) AS dead_air_total_s,
       coalesce(hold_total_s, hold_event_s, 0) / nullif(duration_s, 0) AS hold_share
FROM hm;
