-- v12: speed at a million calls (issues 17 and 19).
--
-- 1. Point lookups by call_id. The child tables' primary keys start with call_id, but DuckDB answers
--    `call_id = ?` from an ART index only when the index is on call_id alone: without these, a call page
--    scans every utterance (24 M rows at 1 M calls). Measured on the bench's 1 M-call database: the call
--    page's queries went from seconds to milliseconds; the nightly writer's cost per call is in the README.
CREATE INDEX IF NOT EXISTS utterances_call_id ON utterances (call_id);
CREATE INDEX IF NOT EXISTS events_call_id ON events (call_id);
CREATE INDEX IF NOT EXISTS call_metrics_call_id ON call_metrics (call_id);
CREATE INDEX IF NOT EXISTS criterion_results_call_id ON criterion_results (call_id);
CREATE INDEX IF NOT EXISTS call_scores_call_id ON call_scores (call_id);
CREATE INDEX IF NOT EXISTS reviews_call_id ON reviews (call_id);

-- 2. One row per call of what call_summary, hold_stats and agent_daily_kpis read from the child tables:
--    utterance and event counts, the call metrics they show and the hold/dead-air events. Call ids are
--    content hashes, so a day's calls are spread over the whole of each child table and no date filter
--    can narrow a scan of it: call_summary for one day read all 24 M utterances, 22 M metrics and 7 M
--    events (1,089 ms at 1 M calls), hold_stats for 30 days 29 M rows (378 ms). The writer stores a call's
--    row in the call's own transaction (callqa.pipeline.store.write_call) from call_facts_computed, so the
--    two can never disagree; a loader that writes the child tables itself calls store.refresh_call_facts.
--    `callqa forget` erases the row with the call (every table with a call_id column).
CREATE TABLE IF NOT EXISTS call_facts (
    call_id                VARCHAR PRIMARY KEY,
    n_utterances           BIGINT NOT NULL,
    n_events               BIGINT NOT NULL,
    hold_count             DOUBLE,   -- call metrics (NULL where no detector produced the metric)
    hold_total_s           DOUBLE,
    hold_max_s             DOUBLE,
    dead_air_count         DOUBLE,
    dead_air_total_s       DOUBLE,
    overtalk_total_s       DOUBLE,
    talk_ratio_agent       DOUBLE,
    rate_agent             DOUBLE,
    customer_emotion_start DOUBLE,
    customer_emotion_end   DOUBLE,
    negative_emotion_count DOUBLE,
    holds                  BIGINT NOT NULL,   -- `hold` events (spans measured from the audio)
    hold_event_s           DOUBLE,
    longest_hold_s         DOUBLE,
    holds_announced        BIGINT NOT NULL,
    holds_thanked          BIGINT NOT NULL,
    holds_unannounced      BIGINT NOT NULL,
    hold_announcements     BIGINT NOT NULL,
    hold_thanks            BIGINT NOT NULL,
    dead_air_spans         BIGINT NOT NULL,
    dead_air_event_s       DOUBLE
);

-- The facts as computed from the child tables (the definition of call_facts' rows). Every child is a
-- LEFT JOIN on call_id (no correlated subquery), so `WHERE call_id = ?` is pushed into each child's scan
-- and answered from its call_id index; the metric names and event types are picked by the FILTER clauses
-- alone, because a second predicate on a scan (name IN (...)) makes DuckDB scan the table instead of using
-- the index (the writer's lookup took 700 ms at 1 M calls with one, a few ms without).
CREATE OR REPLACE VIEW call_facts_computed AS
SELECT c.call_id, coalesce(u.n, 0) AS n_utterances, coalesce(e.n, 0) AS n_events,
       m.hold_count, m.hold_total_s, m.hold_max_s, m.dead_air_count, m.dead_air_total_s, m.overtalk_total_s,
       m.talk_ratio_agent, m.rate_agent, m.customer_emotion_start, m.customer_emotion_end, m.negative_emotion_count,
       coalesce(h.holds, 0) AS holds, h.hold_event_s, h.longest_hold_s,
       coalesce(h.holds_announced, 0) AS holds_announced, coalesce(h.holds_thanked, 0) AS holds_thanked,
       coalesce(h.holds_unannounced, 0) AS holds_unannounced, coalesce(h.announcements, 0) AS hold_announcements,
       coalesce(h.thanks, 0) AS hold_thanks, coalesce(h.dead_air_spans, 0) AS dead_air_spans, h.dead_air_event_s
FROM calls c
LEFT JOIN (
    SELECT call_id,
           max(value) FILTER (WHERE name = 'hold_count')             AS hold_count,
           max(value) FILTER (WHERE name = 'hold_total_s')           AS hold_total_s,
           max(value) FILTER (WHERE name = 'hold_max_s')             AS hold_max_s,
           max(value) FILTER (WHERE name = 'dead_air_count')         AS dead_air_count,
           max(value) FILTER (WHERE name = 'dead_air_total_s')       AS dead_air_total_s,
           max(value) FILTER (WHERE name = 'overtalk_total_s')       AS overtalk_total_s,
           max(value) FILTER (WHERE name = 'talk_ratio_agent')       AS talk_ratio_agent,
           max(value) FILTER (WHERE name = 'rate_agent')             AS rate_agent,
           max(value) FILTER (WHERE name = 'customer_emotion_start') AS customer_emotion_start,
           max(value) FILTER (WHERE name = 'customer_emotion_end')   AS customer_emotion_end,
           max(value) FILTER (WHERE name = 'negative_emotion_count') AS negative_emotion_count
    FROM call_metrics
    GROUP BY call_id
) m ON m.call_id = c.call_id
LEFT JOIN (
    SELECT call_id,
           count(*) FILTER (WHERE type = 'hold') AS holds,
           sum(end_s - start_s) FILTER (WHERE type = 'hold') AS hold_event_s,
           max(end_s - start_s) FILTER (WHERE type = 'hold') AS longest_hold_s,
           count(*) FILTER (WHERE type = 'hold' AND TRY_CAST(json_extract_string(data, '$.announced') AS BOOLEAN)) AS holds_announced,
           count(*) FILTER (WHERE type = 'hold' AND TRY_CAST(json_extract_string(data, '$.thanked') AS BOOLEAN)) AS holds_thanked,
           count(*) FILTER (WHERE type = 'hold_unannounced') AS holds_unannounced,
           count(*) FILTER (WHERE type = 'hold_announced') AS announcements,
           count(*) FILTER (WHERE type = 'hold_thanked') AS thanks,
           count(*) FILTER (WHERE type = 'dead_air') AS dead_air_spans,
           sum(end_s - start_s) FILTER (WHERE type = 'dead_air') AS dead_air_event_s
    FROM events
    GROUP BY call_id
) h ON h.call_id = c.call_id
LEFT JOIN (SELECT call_id, count(*) AS n FROM utterances GROUP BY call_id) u ON u.call_id = c.call_id
LEFT JOIN (SELECT call_id, count(*) AS n FROM events GROUP BY call_id) e ON e.call_id = c.call_id;

-- Calls stored before v12.
INSERT INTO call_facts SELECT * FROM call_facts_computed WHERE call_id NOT IN (SELECT call_id FROM call_facts);

-- Each call with its `day` (the date of started_at, else of processed_at), split by whether started_at is
-- set so that each branch's day is a single column: DuckDB pushes `day = ?` / `day >= ?` into the scan of
-- `calls` as a filter on started_at (or processed_at) and reads the other columns only for the rows that
-- pass; CAST(coalesce(started_at, processed_at) AS DATE) names two columns, so the whole table was read
-- and filtered afterwards. At 1 M calls, `SELECT * ... WHERE day = <one day>`: 180 ms CPU against 35
-- (load 3); call_summary for one day 261 against 144.
CREATE OR REPLACE VIEW calls_dated AS
SELECT *, CAST(started_at AS DATE) AS day FROM calls WHERE started_at IS NOT NULL
UNION ALL
SELECT *, CAST(processed_at AS DATE) AS day FROM calls WHERE started_at IS NULL;

-- As in 0007 (same columns, same rows), the child tables' counts and metrics read from call_facts: a
-- filter on `day` or call_id narrows `calls` and the join reads one 1 M-row table, not three large ones.
CREATE OR REPLACE VIEW call_summary AS
SELECT c.call_id, c.file_name, c.agent_id, c.queue, c.customer_id, c.direction, c.started_at,
       c.day,
       c.duration_s, c.channels, c.sample_rate, c.codec, c.language, c.role_method, c.processed_at,
       c.source_path, c.run_id,
       coalesce(f.n_utterances, 0) AS n_utterances, coalesce(f.n_events, 0) AS n_events,
       s.scorecard_id, s.scorecard_version, s.score, s.max_score, s.percent, s.grade, s.auto_fail,
       coalesce(s.flagged, false) AS flagged, s.flag_reasons,
       f.hold_count, f.hold_total_s, f.hold_max_s, f.dead_air_count, f.dead_air_total_s,
       f.overtalk_total_s, f.talk_ratio_agent, f.rate_agent, f.customer_emotion_start,
       f.customer_emotion_end, f.negative_emotion_count,
       c.scorable_status, c.scorable_reasons
FROM calls_dated c
LEFT JOIN current_scores s USING (call_id)
LEFT JOIN call_facts f USING (call_id)
WHERE c.scorable_status IS DISTINCT FROM 'unscorable';

-- As in 0007/0011 (same columns, same rows), per call from call_facts.
CREATE OR REPLACE VIEW agent_daily_kpis AS
SELECT c.day,
       coalesce(c.agent_id, '(unknown)') AS agent_id,
       count(*) AS calls,
       avg(f.hold_total_s) AS avg_hold_s,
       sum(f.hold_total_s) AS hold_total_s,
       avg(f.dead_air_total_s) AS avg_dead_air_s,
       avg(f.overtalk_total_s) AS avg_overtalk_s,
       avg(f.talk_ratio_agent) AS avg_talk_ratio_agent,
       avg(f.customer_emotion_end) AS avg_customer_emotion_end
FROM calls_dated c
LEFT JOIN call_facts f ON f.call_id = c.call_id
WHERE coalesce(c.scorable_status, 'scorable') = 'scorable'
GROUP BY ALL;

-- As in 0007/0011 (same columns, same rows), per call from call_facts.
CREATE OR REPLACE VIEW hold_stats AS
SELECT c.call_id, c.file_name, c.agent_id, c.queue,
       c.day, c.duration_s,
       coalesce(f.hold_count, f.holds, 0) AS hold_count,
       coalesce(f.hold_total_s, f.hold_event_s, 0) AS hold_total_s,
       coalesce(f.hold_max_s, f.longest_hold_s, 0) AS hold_max_s,
       coalesce(f.holds_announced, 0) AS holds_announced,
       coalesce(f.holds_thanked, 0) AS holds_thanked,
       coalesce(f.holds_unannounced, 0) AS holds_unannounced,
       coalesce(f.hold_announcements, 0) AS hold_announcements,
       coalesce(f.hold_thanks, 0) AS hold_thanks,
       coalesce(f.dead_air_spans, 0) AS dead_air_spans,
       coalesce(f.dead_air_total_s, f.dead_air_event_s, 0) AS dead_air_total_s,
       coalesce(f.hold_total_s, f.hold_event_s, 0) / nullif(c.duration_s, 0) AS hold_share
FROM calls_dated c
LEFT JOIN call_facts f USING (call_id)
WHERE coalesce(c.scorable_status, 'scorable') = 'scorable';

-- 3. The queue. flagged_queue's ORDER BY sorts every flagged call with all its columns before a filter's
--    own ORDER BY ... LIMIT runs (at 1 M calls, 218 k flagged: half the time of a filtered queue page).
--    flagged_calls is the same rows unordered, for queries that sort for themselves (callqa.workspace.queue
--    filters, sorts and counts over it); flagged_queue keeps its columns and its order.
CREATE OR REPLACE VIEW flagged_calls AS
SELECT c.call_id, c.file_name, c.agent_id, c.queue, c.started_at, c.duration_s, c.language,
       s.scorecard_id, s.scorecard_version, s.score, s.max_score, s.percent, s.grade,
       s.auto_fail, s.flag_reasons, c.processed_at, c.source_path,
       c.day,
       rv.call_id IS NOT NULL AS reviewed, s.scored_at, c.scorable_status
FROM current_scores s
JOIN calls_dated c USING (call_id)
LEFT JOIN (SELECT DISTINCT call_id FROM reviews) rv ON rv.call_id = s.call_id
WHERE s.flagged;

CREATE OR REPLACE VIEW flagged_queue AS
SELECT call_id, file_name, agent_id, queue, started_at, duration_s, language, scorecard_id, scorecard_version, score,
       max_score, percent, grade, auto_fail, flag_reasons, processed_at, source_path, day, reviewed, scored_at,
       scorable_status
FROM flagged_calls
ORDER BY auto_fail DESC, percent ASC NULLS FIRST, scored_at DESC, call_id;

-- 4. As in 0011 (same columns, same rows): the period filter names one column per branch, as calls_dated
--    does for `day`, so it reaches the scan of `calls` (a range on started_at, or on processed_at where
--    started_at is missing) instead of reading every call and filtering coalesce(started_at, processed_at)
--    afterwards. Every KPI macro reads kpi_calls, kpi_effort three times.
CREATE OR REPLACE MACRO kpi_calls(since, until, grain := 'agent', period := 'day') AS TABLE
SELECT c.call_id, c.customer_id, c.queue, c.tier, c.csat, c.nps, c.duration_s, c.scorable_status,
       c.at,
       CAST(c.at AS DATE) AS day,
       CAST(date_trunc(CASE WHEN period IN ('day', 'week', 'month') THEN period
                            ELSE error('period must be day, week or month, not ' || period) END,
                       CAST(c.at AS DATE)) AS DATE) AS period_start,
       CASE grain WHEN 'agent' THEN coalesce(c.agent_id, '(unknown)')
                  WHEN 'team' THEN coalesce(c.team, '(unknown)')
                  WHEN 'queue' THEN coalesce(c.queue, '(unknown)')
                  WHEN 'centre' THEN 'centre'
                  ELSE error('grain must be agent, team, queue or centre, not ' || grain) END AS group_key
FROM (
    SELECT call_id, customer_id, queue, tier, csat, nps, duration_s, scorable_status, agent_id, team,
           started_at AS at
    FROM calls
    WHERE started_at IS NOT NULL
      AND started_at >= CAST(since AS TIMESTAMP) AND started_at < CAST(until AS TIMESTAMP) + INTERVAL 1 DAY
    UNION ALL
    SELECT call_id, customer_id, queue, tier, csat, nps, duration_s, scorable_status, agent_id, team,
           processed_at AS at
    FROM calls
    WHERE started_at IS NULL
      AND processed_at >= CAST(since AS TIMESTAMP) AND processed_at < CAST(until AS TIMESTAMP) + INTERVAL 1 DAY
) c
WHERE c.scorable_status IS DISTINCT FROM 'unscorable';
