-- v5: scorecard registry, tamper-evident reviews, audited QA samples, exemplar calls.

-- Every scorecard version ever applied, with a hash of its rules: one (id, version) can never
-- mean two different rule sets, so results stored per version stay comparable.
CREATE TABLE IF NOT EXISTS scorecards (
    scorecard_id  VARCHAR NOT NULL,
    version       INTEGER NOT NULL,
    content_hash  VARCHAR NOT NULL,
    name          VARCHAR,
    language      VARCHAR[],
    definition    JSON NOT NULL,
    source_path   VARCHAR,
    registered_at TIMESTAMP NOT NULL,
    PRIMARY KEY (scorecard_id, version)
);

-- Each review row carries the hash of the previous one: editing or deleting history outside
-- callqa breaks the chain, and `callqa audit` says where.
ALTER TABLE reviews ADD COLUMN IF NOT EXISTS seq BIGINT;
ALTER TABLE reviews ADD COLUMN IF NOT EXISTS prev_hash VARCHAR;
ALTER TABLE reviews ADD COLUMN IF NOT EXISTS row_hash VARCHAR;
ALTER TABLE reviews ADD COLUMN IF NOT EXISTS auto_result VARCHAR;   -- the machine's verdict when the human gave theirs

CREATE TABLE IF NOT EXISTS samples (
    sample_id       VARCHAR PRIMARY KEY,
    created_at      TIMESTAMP NOT NULL,
    created_by      VARCHAR,
    stratify_by     VARCHAR NOT NULL,
    n_requested     INTEGER NOT NULL,
    n_drawn         INTEGER NOT NULL,
    seed            BIGINT NOT NULL,
    include_flagged BOOLEAN NOT NULL,
    filters         JSON
);

CREATE TABLE IF NOT EXISTS sample_calls (
    sample_id VARCHAR NOT NULL,
    call_id   VARCHAR NOT NULL,
    stratum   VARCHAR,
    draw      INTEGER NOT NULL,
    PRIMARY KEY (sample_id, call_id)
);

-- The latest human verdict per call × criterion (history stays in `reviews`).
CREATE OR REPLACE VIEW latest_reviews AS
SELECT * EXCLUDE (rn) FROM (
    SELECT r.*, row_number() OVER (PARTITION BY call_id, scorecard_id, scorecard_version, criterion_id
                                   ORDER BY created_at DESC, seq DESC) AS rn
    FROM reviews r
) WHERE rn = 1;

-- Training material: per agent and criterion, the best-scoring calls that passed it.
CREATE OR REPLACE VIEW exemplar_calls AS
SELECT * FROM (
    SELECT c.agent_id, r.scorecard_id, r.scorecard_version, r.criterion_id, r.call_id, c.file_name,
           c.started_at, s.percent, s.grade, r.rationale,
           row_number() OVER (PARTITION BY c.agent_id, r.scorecard_id, r.scorecard_version, r.criterion_id
                              ORDER BY s.percent DESC, c.started_at DESC, r.call_id) AS rank
    FROM criterion_results r
    JOIN call_scores s USING (call_id, scorecard_id, scorecard_version)
    JOIN calls c USING (call_id)
    WHERE r.result = 'pass' AND NOT s.auto_fail
) WHERE rank <= 3;
