-- v10: the review workflow, calibration sessions and assignment (callqa.workspace.workflow,
-- callqa.workspace.calibration_sessions, callqa.workspace.assignment).
--
-- Workflow transitions and calibration verdicts are entries of the existing keyed chain (audit_log, kinds
-- 'workflow' and 'calibration'): their facts (action, states, decision, verdict, who, when) are in the
-- MACed entry, so `callqa audit` catches an edit. Free text (a dispute's reason, a decision's comment) is
-- content that can name a person, and audit_log survives erasure, so it goes to audit_notes, keyed by
-- the entry's seq and carrying call_id (so `callqa forget` removes it like any call row); the entry keeps
-- an HMAC of the text (detail.note_mac), so a note edited in place is caught by
-- callqa.workspace.audited.note_problems.
CREATE TABLE IF NOT EXISTS audit_notes (
    seq     BIGINT PRIMARY KEY,   -- the audit_log entry the note belongs to
    call_id VARCHAR NOT NULL,
    note    VARCHAR NOT NULL
);

-- Every transition, oldest first (what the agent, the reviewer and the supervisor did, and when).
CREATE OR REPLACE VIEW workflow_transitions AS
SELECT a.seq, a.created_at, a.actor,
       json_extract_string(a.detail, '$.role') AS actor_role,
       a.call_ids[1] AS call_id,
       json_extract_string(a.detail, '$.scorecard_id') AS scorecard_id,
       json_extract_string(a.detail, '$.action') AS action,
       json_extract_string(a.detail, '$.from_state') AS from_state,
       json_extract_string(a.detail, '$.to_state') AS to_state,
       json_extract_string(a.detail, '$.decision') AS decision,
       CAST(json_extract_string(a.detail, '$.respond_by') AS TIMESTAMP) AS respond_by,
       n.note AS comment
FROM audit_log a
LEFT JOIN audit_notes n ON n.seq = a.seq
WHERE a.kind = 'workflow';

-- The newest transition per (call, scorecard): small (human actions only), cheap to join to a queue page.
-- respond_by: the end of the agent's window, fixed when the call was shared.
CREATE OR REPLACE VIEW workflow_latest AS
SELECT t.call_id, t.scorecard_id, t.to_state AS state, t.seq, t.created_at AS since, t.actor,
       s.respond_by, s.created_at AS shared_at
FROM workflow_transitions t
LEFT JOIN (SELECT call_id, scorecard_id, respond_by, created_at FROM workflow_transitions WHERE action = 'share'
           QUALIFY row_number() OVER (PARTITION BY call_id, scorecard_id ORDER BY seq DESC) = 1) s
  ON s.call_id = t.call_id AND s.scorecard_id = t.scorecard_id
WHERE t.call_id IN (SELECT call_id FROM calls)
QUALIFY row_number() OVER (PARTITION BY t.call_id, t.scorecard_id ORDER BY t.seq DESC) = 1;

-- Every graded (call, current scorecard) with its state: 'machine_scored' until a person acts.
CREATE OR REPLACE VIEW workflow_state AS
SELECT s.call_id, s.scorecard_id, s.scorecard_version, c.agent_id, c.queue,
       coalesce(w.state, 'machine_scored') AS state, w.since, w.actor AS last_actor, w.seq AS last_seq,
       w.shared_at, w.respond_by
FROM current_scores s
JOIN calls c ON c.call_id = s.call_id
LEFT JOIN workflow_latest w ON w.call_id = s.call_id AND w.scorecard_id = s.scorecard_id;

-- Calibration: a supervisor's set of calls scored blind by a set of reviewers. These verdicts are not the
-- calls' official reviews (they never enter `reviews`, latest_reviews or review_agreement).
CREATE TABLE IF NOT EXISTS calibration_sessions (
    session_id   VARCHAR PRIMARY KEY,
    name         VARCHAR NOT NULL,
    created_at   TIMESTAMP NOT NULL,
    created_by   VARCHAR NOT NULL,
    hide_machine BOOLEAN NOT NULL,   -- reviewers see the machine's verdict only after submitting the call
    seq          BIGINT              -- the chain entry that recorded the session's creation
);

CREATE TABLE IF NOT EXISTS calibration_session_calls (
    session_id        VARCHAR NOT NULL,
    call_id           VARCHAR NOT NULL,
    scorecard_id      VARCHAR NOT NULL,
    scorecard_version INTEGER NOT NULL,
    position          INTEGER NOT NULL,
    PRIMARY KEY (session_id, call_id)
);

CREATE TABLE IF NOT EXISTS calibration_session_reviewers (
    session_id VARCHAR NOT NULL,
    reviewer   VARCHAR NOT NULL,
    PRIMARY KEY (session_id, reviewer)
);

-- One row per reviewer × call × criterion verdict given in a session (chain entries of kind 'calibration').
CREATE OR REPLACE VIEW calibration_scores AS
SELECT a.seq, a.created_at, a.actor AS reviewer,
       json_extract_string(a.detail, '$.session_id') AS session_id,
       a.call_ids[1] AS call_id,
       json_extract_string(a.detail, '$.scorecard_id') AS scorecard_id,
       CAST(json_extract_string(a.detail, '$.scorecard_version') AS INTEGER) AS scorecard_version,
       json_extract_string(a.detail, '$.criterion_id') AS criterion_id,
       json_extract_string(a.detail, '$.verdict') AS verdict,
       n.note AS comment
FROM audit_log a
LEFT JOIN audit_notes n ON n.seq = a.seq
WHERE a.kind = 'calibration' AND json_extract_string(a.detail, '$.action') = 'score'
  AND a.call_ids[1] IN (SELECT call_id FROM calls);

-- Assignment: a sample or a day's queue split between reviewers. A later batch that assigns a call again
-- supersedes the earlier row (history stays); current_assignments is who has each call now.
CREATE TABLE IF NOT EXISTS assignment_batches (
    batch_id    VARCHAR PRIMARY KEY,
    created_at  TIMESTAMP NOT NULL,
    created_by  VARCHAR NOT NULL,
    source      VARCHAR NOT NULL,    -- sample:<sample_id> | queue:<day> | calls
    method      VARCHAR NOT NULL,    -- round_robin | by_queue
    reviewers   VARCHAR[] NOT NULL,
    n_assigned  INTEGER NOT NULL,
    n_skipped   INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS assignments (
    batch_id    VARCHAR NOT NULL,
    call_id     VARCHAR NOT NULL,
    reviewer    VARCHAR NOT NULL,
    position    INTEGER NOT NULL,
    assigned_at TIMESTAMP NOT NULL,
    PRIMARY KEY (batch_id, call_id)
);

CREATE OR REPLACE VIEW current_assignments AS
SELECT a.call_id, a.reviewer, a.assigned_at, a.batch_id, b.created_by AS assigned_by, b.source, b.method
FROM assignments a JOIN assignment_batches b USING (batch_id)
QUALIFY row_number() OVER (PARTITION BY a.call_id ORDER BY a.assigned_at DESC, a.batch_id DESC) = 1;
