-- callqa schema v4: the views QA reviewers and analysts use directly (DESIGN §3).
--
-- Views only: they hold no data, so this migration is safe on any older file and every later
-- migration may replace them. They name their columns explicitly (never `*`) so a column added to a
-- table by a later migration does not silently change a view's shape.
--
-- "Current" score: a call can be rescored with a newer scorecard version without being
-- re-transcribed; every view below reads only the newest version per (call, scorecard).
-- The anti-join that finds superseded rows costs a full pass over call_scores' keys, so it only runs
-- when some row is newer than the oldest version in the database: a database with one version per
-- scorecard (the usual case between rescorings) answers without it, which keeps the queue fast at a
-- million calls.
CREATE OR REPLACE VIEW current_scores AS
SELECT s.call_id, s.scorecard_id, s.scorecard_version, s.score, s.max_score, s.percent, s.grade,
       s.auto_fail, s.flagged, s.flag_reasons, s.scored_at
FROM call_scores s
WHERE (SELECT count(*) FROM call_scores g WHERE g.scorecard_version > (SELECT min(scorecard_version) FROM call_scores)) = 0
UNION ALL
SELECT s.call_id, s.scorecard_id, s.scorecard_version, s.score, s.max_score, s.percent, s.grade,
       s.auto_fail, s.flagged, s.flag_reasons, s.scored_at
FROM call_scores s
WHERE (SELECT count(*) FROM call_scores g WHERE g.scorecard_version > (SELECT min(scorecard_version) FROM call_scores)) > 0
  AND NOT EXISTS (
    SELECT 1 FROM call_scores n
    WHERE n.call_id = s.call_id AND n.scorecard_id = s.scorecard_id AND n.scorecard_version > s.scorecard_version
);

-- The queue QA works from: every flagged call (current scorecard version), worst first: auto-fails,
-- then lowest score, then most recently scored. For pages of a long queue use flagged_page() below. `day` is the call's date (started_at from the sidecar, else when
-- it was processed); `reviewed`: a human has given at least one verdict on the call.
CREATE OR REPLACE VIEW flagged_queue AS
SELECT c.call_id, c.file_name, c.agent_id, c.queue, c.started_at, c.duration_s, c.language,
       s.scorecard_id, s.scorecard_version, s.score, s.max_score, s.percent, s.grade,
       s.auto_fail, s.flag_reasons, c.processed_at, c.source_path,
       CAST(coalesce(c.started_at, c.processed_at) AS DATE) AS day,
       rv.call_id IS NOT NULL AS reviewed, s.scored_at
FROM current_scores s
JOIN calls c USING (call_id)
LEFT JOIN (SELECT DISTINCT call_id FROM reviews) rv ON rv.call_id = s.call_id
WHERE s.flagged
ORDER BY s.auto_fail DESC, s.percent ASC NULLS FIRST, s.scored_at DESC, s.call_id;

-- The queue's pages, worst first: the ordering runs on the scores alone and only the page's calls
-- are joined (by the calls primary key), so a page costs the same at any queue length.
--   SELECT * FROM flagged_page(50);            -- first page
--   SELECT * FROM flagged_page(50, 100);       -- third page
CREATE OR REPLACE MACRO flagged_page(n, start := 0) AS TABLE
SELECT c.call_id, c.file_name, c.agent_id, c.queue, c.started_at, c.duration_s, c.language,
       s.scorecard_id, s.scorecard_version, s.score, s.max_score, s.percent, s.grade,
       s.auto_fail, s.flag_reasons, c.processed_at, c.source_path,
       CAST(coalesce(c.started_at, c.processed_at) AS DATE) AS day,
       EXISTS (SELECT 1 FROM reviews r WHERE r.call_id = s.call_id) AS reviewed, s.scored_at
FROM (SELECT * FROM current_scores WHERE flagged
      ORDER BY auto_fail DESC, percent ASC NULLS FIRST, scored_at DESC, call_id LIMIT n OFFSET start) s
JOIN calls c ON c.call_id = s.call_id
ORDER BY s.auto_fail DESC, s.percent ASC NULLS FIRST, s.scored_at DESC, s.call_id;

-- Flag reasons without their per-call details, for counting why calls are flagged:
-- "grade poor (41%) below fair; failed: greeting" -> "grade poor below fair".
CREATE OR REPLACE VIEW flagged_reasons AS
SELECT q.call_id, q.file_name, q.agent_id, q.queue, q.day, q.scorecard_id, q.scorecard_version, r.reason,
       trim(regexp_replace(regexp_replace(r.reason, ';.*$', ''), '\s*\([^)]*\)', '', 'g')) AS label
FROM flagged_queue q, unnest(q.flag_reasons) AS r(reason);

-- One row per call and current scorecard: identity, size, score and the call-level metrics QA reads
-- most (pivoted from the long call_metrics table; NULL where no detector produced the metric).
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
       m.customer_emotion_end, m.negative_emotion_count
FROM calls c
LEFT JOIN current_scores s USING (call_id)
LEFT JOIN m USING (call_id)
LEFT JOIN u USING (call_id)
LEFT JOIN e USING (call_id);

-- Per agent, day (and scorecard, when a centre runs several): volume, score and flags.
-- Filter on `day` (e.g. WHERE day >= current_date - 30). Hold, dead air, talk ratio and mood per
-- agent and day are in agent_daily_kpis (they come from call_metrics, which is ~20x larger).
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
GROUP BY ALL;

-- Per agent and day: the conversation KPIs QA reports beside the score.
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
GROUP BY ALL;

-- Pass/fail/n.a. per criterion of each scorecard version (pass_rate over applicable results).
CREATE OR REPLACE VIEW criterion_pass_rates AS
SELECT r.scorecard_id, r.scorecard_version, r.section_id, r.criterion_id,
       count(*) AS n,
       count(*) FILTER (WHERE r.result = 'pass') AS passed,
       count(*) FILTER (WHERE r.result = 'fail') AS failed,
       count(*) FILTER (WHERE r.result = 'na') AS not_applicable,
       count(*) FILTER (WHERE r.result = 'pass') / nullif(count(*) FILTER (WHERE r.result <> 'na'), 0) AS pass_rate,
       bool_or(r.auto_fail) AS auto_fail
FROM criterion_results r
GROUP BY ALL;

-- One row per call: the holds measured from audio (`hold` events; data carries announced/thanked),
-- the announcement and thank-you events, and the call-level totals the hold detector stored.
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
LEFT JOIN m USING (call_id);

-- Auto vs human per criterion. A reviewer's verdict is 'pass' / 'fail' / 'na' (case-insensitive;
-- 'agree' / 'disagree' mean the same as / the opposite of the automatic result). Reviews are
-- append-only, so only each reviewer's latest verdict on a (call, criterion) counts.
-- kappa: Cohen's kappa over the pass/fail decisions (NULL when undefined).
CREATE OR REPLACE VIEW review_agreement AS
WITH latest AS (
    SELECT call_id, scorecard_id, scorecard_version, criterion_id, reviewer, lower(trim(verdict)) AS verdict
    FROM reviews
    WHERE criterion_id IS NOT NULL
    QUALIFY row_number() OVER (PARTITION BY call_id, criterion_id, reviewer, scorecard_id, scorecard_version
                               ORDER BY created_at DESC, review_id DESC) = 1
),
pairs AS (
    SELECT r.scorecard_id, r.scorecard_version, r.criterion_id, r.result AS auto,
           CASE l.verdict
               WHEN 'agree' THEN r.result
               WHEN 'disagree' THEN CASE r.result WHEN 'pass' THEN 'fail' WHEN 'fail' THEN 'pass' ELSE NULL END
               ELSE l.verdict END AS human
    FROM latest l
    JOIN criterion_results r
      ON r.call_id = l.call_id AND r.criterion_id = l.criterion_id
     AND (l.scorecard_id IS NULL OR r.scorecard_id = l.scorecard_id)
     AND (l.scorecard_version IS NULL OR r.scorecard_version = l.scorecard_version)
),
agg AS (
    SELECT scorecard_id, scorecard_version, criterion_id,
           count(*) AS reviews,
           count(*) FILTER (WHERE auto = human) AS agree,
           count(*) FILTER (WHERE auto = 'pass' AND human = 'fail') AS auto_pass_human_fail,
           count(*) FILTER (WHERE auto = 'fail' AND human = 'pass') AS auto_fail_human_pass,
           count(*) FILTER (WHERE auto IN ('pass', 'fail') AND human IN ('pass', 'fail')) AS n_pf,
           count(*) FILTER (WHERE auto = 'pass' AND human IN ('pass', 'fail')) AS auto_pass,
           count(*) FILTER (WHERE human = 'pass' AND auto IN ('pass', 'fail')) AS human_pass,
           count(*) FILTER (WHERE auto = human AND auto IN ('pass', 'fail')) AS agree_pf
    FROM pairs
    WHERE human IN ('pass', 'fail', 'na')
    GROUP BY ALL
)
SELECT scorecard_id, scorecard_version, criterion_id, reviews, agree,
       agree / reviews AS agreement,
       auto_pass_human_fail, auto_fail_human_pass,
       CASE WHEN n_pf = 0 THEN NULL ELSE (
           (agree_pf / n_pf) - ((auto_pass / n_pf) * (human_pass / n_pf) + (1 - auto_pass / n_pf) * (1 - human_pass / n_pf))
       ) / nullif(1 - ((auto_pass / n_pf) * (human_pass / n_pf) + (1 - auto_pass / n_pf) * (1 - human_pass / n_pf)), 0)
       END AS kappa
FROM agg;
