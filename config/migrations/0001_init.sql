-- callqa schema v1: the audit model of DESIGN §3.
-- One row per call in `calls`; everything else hangs off call_id (the SHA-256 of the recording's bytes).

CREATE TABLE IF NOT EXISTS runs (
    run_id        VARCHAR PRIMARY KEY,
    flow          VARCHAR NOT NULL,
    input_dir     VARCHAR,
    started_at    TIMESTAMP NOT NULL,
    finished_at   TIMESTAMP,
    status        VARCHAR NOT NULL,          -- running | completed | crashed
    n_discovered  INTEGER DEFAULT 0,
    n_skipped     INTEGER DEFAULT 0,
    n_processed   INTEGER DEFAULT 0,
    n_failed      INTEGER DEFAULT 0,
    n_flagged     INTEGER DEFAULT 0,
    audio_s       DOUBLE DEFAULT 0,
    wall_s        DOUBLE,
    pipeline_version VARCHAR,
    settings      JSON
);

CREATE TABLE IF NOT EXISTS calls (
    call_id            VARCHAR PRIMARY KEY,
    source_path        VARCHAR NOT NULL,
    file_name          VARCHAR NOT NULL,
    size_bytes         BIGINT,
    agent_id           VARCHAR,
    queue              VARCHAR,
    customer_id        VARCHAR,
    direction          VARCHAR,
    started_at         TIMESTAMP,
    duration_s         DOUBLE NOT NULL,
    channels           INTEGER NOT NULL,
    sample_rate        INTEGER NOT NULL,      -- the source recording's rate (8000 for telephone audio)
    codec              VARCHAR,
    language           VARCHAR,
    language_probability DOUBLE,
    role_method        VARCHAR,
    role_confidence    DOUBLE,
    roles              JSON,                   -- speaker -> role
    processed_at       TIMESTAMP NOT NULL,
    pipeline_version   VARCHAR NOT NULL,
    models             JSON,
    timings            JSON,                   -- seconds per stage
    metadata           JSON,                   -- the sidecar as read
    warnings           JSON,                   -- e.g. a truncated recording that still decoded
    status             VARCHAR NOT NULL,
    run_id             VARCHAR
);

CREATE TABLE IF NOT EXISTS utterances (
    call_id         VARCHAR NOT NULL,
    seq             INTEGER NOT NULL,
    speaker         VARCHAR NOT NULL,
    role            VARCHAR NOT NULL,
    role_confidence DOUBLE,
    channel         INTEGER,
    start_s         DOUBLE NOT NULL,
    end_s           DOUBLE NOT NULL,
    text            VARCHAR NOT NULL,
    asr_confidence  DOUBLE,
    emotion         VARCHAR,
    emotion_score   DOUBLE,
    emotion_method  VARCHAR,
    sentiment       DOUBLE,
    PRIMARY KEY (call_id, seq)
);

CREATE TABLE IF NOT EXISTS words (
    call_id     VARCHAR NOT NULL,
    utt_seq     INTEGER NOT NULL,
    seq         INTEGER NOT NULL,
    start_s     DOUBLE NOT NULL,
    end_s       DOUBLE NOT NULL,
    word        VARCHAR NOT NULL,
    probability DOUBLE,
    speaker     VARCHAR,
    channel     INTEGER,
    PRIMARY KEY (call_id, utt_seq, seq)
);

CREATE TABLE IF NOT EXISTS events (
    event_id         VARCHAR NOT NULL,
    call_id          VARCHAR NOT NULL,
    type             VARCHAR NOT NULL,
    start_s          DOUBLE NOT NULL,
    end_s            DOUBLE NOT NULL,
    speaker          VARCHAR,
    role             VARCHAR,
    evidence         VARCHAR NOT NULL,
    confidence       DOUBLE,
    detector_version VARCHAR NOT NULL,
    data             JSON,
    PRIMARY KEY (call_id, event_id)
);

-- Call-level measurements (talk ratio, hold total, ...) in long form so new metrics need no migration.
CREATE TABLE IF NOT EXISTS call_metrics (
    call_id VARCHAR NOT NULL,
    name    VARCHAR NOT NULL,
    value   DOUBLE,
    PRIMARY KEY (call_id, name)
);

CREATE TABLE IF NOT EXISTS criterion_results (
    call_id            VARCHAR NOT NULL,
    scorecard_id       VARCHAR NOT NULL,
    scorecard_version  INTEGER NOT NULL,
    section_id         VARCHAR NOT NULL,
    criterion_id       VARCHAR NOT NULL,
    result             VARCHAR NOT NULL CHECK (result IN ('pass', 'fail', 'na')),
    points             DOUBLE NOT NULL,
    max_points         DOUBLE NOT NULL,
    auto_fail          BOOLEAN NOT NULL,
    evidence_event_ids VARCHAR[],
    rationale          VARCHAR NOT NULL,
    scored_at          TIMESTAMP NOT NULL,
    PRIMARY KEY (call_id, scorecard_id, scorecard_version, criterion_id)
);

CREATE TABLE IF NOT EXISTS call_scores (
    call_id           VARCHAR NOT NULL,
    scorecard_id      VARCHAR NOT NULL,
    scorecard_version INTEGER NOT NULL,
    score             DOUBLE NOT NULL,
    max_score         DOUBLE NOT NULL,
    percent           DOUBLE,
    grade             VARCHAR NOT NULL,
    auto_fail         BOOLEAN NOT NULL,
    flagged           BOOLEAN NOT NULL,
    flag_reasons      VARCHAR[],
    scored_at         TIMESTAMP NOT NULL,
    PRIMARY KEY (call_id, scorecard_id, scorecard_version)
);

-- Human verdicts. Append-only: callqa only ever INSERTs here.
CREATE TABLE IF NOT EXISTS reviews (
    review_id         VARCHAR PRIMARY KEY,
    call_id           VARCHAR NOT NULL,
    scorecard_id      VARCHAR,
    scorecard_version INTEGER,
    criterion_id      VARCHAR,
    reviewer          VARCHAR NOT NULL,
    verdict           VARCHAR NOT NULL,
    comment           VARCHAR,
    created_at        TIMESTAMP NOT NULL
);

CREATE TABLE IF NOT EXISTS failures (
    failure_id  VARCHAR PRIMARY KEY,
    run_id      VARCHAR,
    path        VARCHAR NOT NULL,
    call_id     VARCHAR,
    stage       VARCHAR NOT NULL,
    error       VARCHAR NOT NULL,
    permanent   BOOLEAN NOT NULL,
    created_at  TIMESTAMP NOT NULL
);

-- The queue QA works from: every flagged (call, scorecard version), newest first.
CREATE OR REPLACE VIEW flagged_queue AS
SELECT c.call_id, c.file_name, c.agent_id, c.queue, c.started_at, c.duration_s, c.language,
       s.scorecard_id, s.scorecard_version, s.score, s.max_score, s.percent, s.grade,
       s.auto_fail, s.flag_reasons, c.processed_at, c.source_path
FROM call_scores s JOIN calls c USING (call_id)
WHERE s.flagged
ORDER BY s.auto_fail DESC, s.percent ASC NULLS FIRST, c.processed_at DESC;

CREATE OR REPLACE VIEW call_summary AS
SELECT c.call_id, c.file_name, c.agent_id, c.queue, c.started_at, c.duration_s, c.channels,
       c.sample_rate, c.language, c.role_method,
       (SELECT count(*) FROM utterances u WHERE u.call_id = c.call_id) AS n_utterances,
       (SELECT count(*) FROM events e WHERE e.call_id = c.call_id) AS n_events,
       s.scorecard_id, s.scorecard_version, s.percent, s.grade, s.flagged, s.flag_reasons
FROM calls c LEFT JOIN call_scores s USING (call_id);
