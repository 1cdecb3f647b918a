-- v7: scorability. A call the pipeline could not grade (truncated, too short, no speech, one party only, no
-- service call; callqa.pipeline.scorability) is stored with scorable_status = 'unscorable' and its reasons and
-- gets no scores: it is absent from current_scores, and so from flagged_queue, flagged_page(),
-- flagged_reasons, criterion_pass_rates and exemplar_calls, without a predicate that would cost the queue's
-- pages their constant time (rescoring skips these calls too). 'partial' calls (the agent's side alone) are
-- graded on the criteria that side shows. The views below that read `calls` directly leave unscorable calls
-- out, and `recordings_to_check` lists them (and the partial ones) apart.
-- Calls stored before v7 were all graded: they are 'scorable'.
ALTER TABLE calls ADD COLUMN IF NOT EXISTS scorable_status VARCHAR DEFAULT 'scorable';  -- scorable | partial | unscorable
ALTER TABLE calls ADD COLUMN IF NOT EXISTS scorable_reasons VARCHAR[];

-- The recordings a person should listen to: not graded (unscorable) first, then graded on the agent's
-- side only (partial), newest first; `reasons` say why.
CREATE OR REPLACE VIEW recordings_to_check AS
SELECT c.call_id, c.file_name, c.agent_id, c.queue, c.started_at,
       CAST(coalesce(c.started_at, c.processed_at) AS DATE) AS day,
       c.duration_s, c.channels, c.language, c.scorable_status, c.scorable_reasons, c.warnings,
       c.processed_at, c.source_path
FROM calls c
WHERE c.scorable_status IN ('unscorable', 'partial')
ORDER BY c.scorable_status = 'partial', c.processed_at DESC, c.call_id;

-- As in v4, with scorable_status: a partial call in the queue was graded on the agent's side only.
CREATE OR REPLACE VIEW flagged_queue AS
SELECT c.call_id, c.file_name, c.agent_id, c.queue, c.started_at, c.duration_s, c.language,
       s.scorecard_id, s.scorecard_version, s.score, s.max_score, s.percent, s.grade,
       s.auto_fail, s.flag_reasons, c.processed_at, c.source_path,
       CAST(coalesce(c.started_at, c.processed_at) AS DATE) AS day,
       rv.call_id IS NOT NULL AS reviewed, s.scored_at, c.scorable_status
FROM current_scores s
JOIN calls c USING (call_id)
LEFT JOIN (SELECT DISTINCT call_id FROM reviews) rv ON rv.call_id = s.call_id
WHERE s.flagged
ORDER BY s.auto_fail DESC, s.percent ASC NULLS FIRST, s.scored_at DESC, s.call_id;

CREATE OR REPLACE MACRO flagged_page(n, start := 0) AS TABLE
SELECT c.call_id, c.file_name, c.agent_id, c.queue, c.started_at, c.duration_s, c.language,
       s.scorecard_id, s.scorecard_version, s.score, s.max_score, s.percent, s.grade,
       s.auto_fail, s.flag_reasons, c.processed_at, c.source_path,
       CAST(coalesce(c.started_at, c.processed_at) AS DATE) AS day,
       EXISTS (SELECT 1 FROM reviews r WHERE r.call_id = s.call_id) AS reviewed, s.scored_at, c.scorable_status
FROM (SELECT * FROM current_scores WHERE flagged
      ORDER BY auto_fail DESC, percent ASC NULLS FIRST, scored_at DESC, call_id LIMIT n OFFSET start) s
JOIN calls c ON c.call_id = s.call_id
ORDER BY s.auto_fail DESC, s.percent ASC NULLS FIRST, s.scored_at DESC, s.call_id;

-- As in v4, graded calls only (an unscorable call has no score to summarise; recordings_to_check lists
-- it), with scorable_status and scorable_reasons.
CREATE OR REPLACE VIEW call_summary AS
WITH m AS (
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
    WHERE name IN ('hold_count', 'hold_total_s', 'hold_max_s', 'dead_air_count', 'dead_air_total_s',
                   'overtalk_total_s', 'talk_ratio_agent', 'rate_agent', 'customer_emotion_start',
                   'customer_emotion_end', 'negative_emotion_count')
    GROUP BY call_id
),
u AS (SELECT call_id, count(*) AS n_utterances FROM utterances GROUP BY call_id),
e AS (SELECT call_id, count(*) AS n_events FROM events GROUP BY call_id)
SELECT c.call_id, c.file_name, c.agent_id, c.queue, c.customer_id, c.direction, c.started_at,
       CAST(coalesce(c.started_at, c.processed_at) AS DATE) AS day,
       c.duration_s, c.channels, c.sample_rate, c.codec, c.language, c.role_method, c.processed_at,
       c.source_path, c.run_id,
       coalesce(u.n_utterances, 0) AS n_utterances, coalesce(e.n_events, 0) AS n_events,
       s.scorecard_id, s.scorecard_version, s.score, s.max_score, s.percent, s.grade, s.auto_fail,
       coalesce(s.flagged, false) AS flagged, s.flag_reasons,
       m.hold_count, m.hold_total_s, m.hold_max_s, m.dead_air_count, m.dead_air_total_s,
       m.overtalk_total_s, m.talk_ratio_agent, m.rate_agent, m.customer_emotion_start,
       m.customer_emotion_end, m.negative_emotion_count,
       c.scorable_status, c.scorable_reasons
FROM calls c
LEFT JOIN current_scores s USING (call_id)
LEFT JOIN m USING (call_id)
LEFT JOIN u USING (call_id)
LEFT JOIN e USING (call_id)
WHERE c.scorable_status IS DISTINCT FROM 'unscorable';

-- As in v4, graded calls only: an unscorable recording says nothing about the agent's day.
CREATE OR REPLACE VIEW agent_daily AS
SELECT CAST(coalesce(c.started_at, c.processed_at) AS DATE) AS day,
       coalesce(c.agent_id, '(unknown)') AS agent_id,
       s.scorecard_id,
       count(*) AS calls,
       round(sum(c.duration_s) / 60.0, 2) AS audio_min,
       avg(c.duration_s) AS avg_duration_s,
       avg(s.percent) AS avg_percent,
       min(s.percent) AS min_percent,
       count(*) FILTER (WHERE s.flagged) AS flagged,
       count(*) FILTER (WHERE s.auto_fail) AS auto_failed,
       count(*) FILTER (WHERE s.flagged) / count(*) AS flagged_rate
FROM calls c
LEFT JOIN current_scores s ON s.call_id = c.call_id
WHERE c.scorable_status IS DISTINCT FROM 'unscorable'
GROUP BY ALL;

-- As in v4, over the calls whose line can be measured: not unscorable ones, nor partial ones (on one party's
-- leg, dead air, holds and talk ratio are the other party talking).
CREATE OR REPLACE VIEW agent_daily_kpis AS
WITH m AS (
    SELECT call_id,
           max(value) FILTER (WHERE name = 'hold_total_s')         AS hold_total_s,
           max(value) FILTER (WHERE name = 'dead_air_total_s')     AS dead_air_total_s,
           max(value) FILTER (WHERE name = 'overtalk_total_s')     AS overtalk_total_s,
           max(value) FILTER (WHERE name = 'talk_ratio_agent')     AS talk_ratio_agent,
           max(value) FILTER (WHERE name = 'customer_emotion_end') AS customer_emotion_end
    FROM call_metrics
    WHERE name IN ('hold_total_s', 'dead_air_total_s', 'overtalk_total_s', 'talk_ratio_agent', 'customer_emotion_end')
    GROUP BY call_id
)
SELECT CAST(coalesce(c.started_at, c.processed_at) AS DATE) AS day,
       coalesce(c.agent_id, '(unknown)') AS agent_id,
       count(*) AS calls,
       avg(m.hold_total_s) AS avg_hold_s,
       sum(m.hold_total_s) AS hold_total_s,
       avg(m.dead_air_total_s) AS avg_dead_air_s,
       avg(m.overtalk_total_s) AS avg_overtalk_s,
       avg(m.talk_ratio_agent) AS avg_talk_ratio_agent,
       avg(m.customer_emotion_end) AS avg_customer_emotion_end
FROM calls c
LEFT JOIN m ON m.call_id = c.call_id
WHERE coalesce(c.scorable_status, 'scorable') = 'scorable'
GROUP BY ALL;

-- As in v4, over the calls whose line can be measured: a test tone is no hold, and on one party's leg (partial)
-- the silences are the other party talking.
CREATE OR REPLACE VIEW hold_stats AS
WITH h AS (
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
    WHERE type IN ('hold', 'hold_unannounced', 'hold_announced', 'hold_thanked', 'dead_air')
    GROUP BY call_id
),
m AS (
    SELECT call_id,
           max(value) FILTER (WHERE name = 'hold_count') AS hold_count,
           max(value) FILTER (WHERE name = 'hold_total_s') AS hold_total_s,
           max(value) FILTER (WHERE name = 'hold_max_s') AS hold_max_s,
           max(value) FILTER (WHERE name = 'dead_air_total_s') AS dead_air_total_s
    FROM call_metrics
    WHERE name IN ('hold_count', 'hold_total_s', 'hold_max_s', 'dead_air_total_s')
    GROUP BY call_id
)
SELECT c.call_id, c.file_name, c.agent_id, c.queue,
       CAST(coalesce(c.started_at, c.processed_at) AS DATE) AS day, c.duration_s,
       coalesce(m.hold_count, h.holds, 0) AS hold_count,
       coalesce(m.hold_total_s, h.hold_event_s, 0) AS hold_total_s,
       coalesce(m.hold_max_s, h.longest_hold_s, 0) AS hold_max_s,
       coalesce(h.holds_announced, 0) AS holds_announced,
       coalesce(h.holds_thanked, 0) AS holds_thanked,
       coalesce(h.holds_unannounced, 0) AS holds_unannounced,
       coalesce(h.announcements, 0) AS hold_announcements,
       coalesce(h.thanks, 0) AS hold_thanks,
       coalesce(h.dead_air_spans, 0) AS dead_air_spans,
       coalesce(m.dead_air_total_s, h.dead_air_event_s, 0) AS dead_air_total_s,
       coalesce(m.hold_total_s, h.hold_event_s, 0) / nullif(c.duration_s, 0) AS hold_share
FROM calls c
LEFT JOIN h USING (call_id)
LEFT JOIN m USING (call_id)
WHERE coalesce(c.scorable_status, 'scorable') = 'scorable';
