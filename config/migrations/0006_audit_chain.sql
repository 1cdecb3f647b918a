-- v6: a keyed review chain, and erasure tombstones (callqa.workspace.chain, callqa.workspace.forget).
--
-- Each review now carries an HMAC-SHA256 of its canonical row and the previous entry's HMAC, made with a
-- key kept outside the database (CALLQA_AUDIT_KEY or a 0600 key file): recomputing the chain after an edit
-- needs the key, and the newest entry is anchored outside the database too (`<db>.audit-head`), so deleting
-- the newest reviews is caught as well. Reviews written before v6 keep their unkeyed SHA-256 chain in
-- prev_hash/row_hash; the first keyed write checks that chain and seals it (their macs are filled in and a
-- 'seal' entry records the old head), so old history stays verifiable.
ALTER TABLE reviews ADD COLUMN IF NOT EXISTS prev_mac VARCHAR;
ALTER TABLE reviews ADD COLUMN IF NOT EXISTS mac VARCHAR;

-- Chain entries that are not reviews, on the same seq as the reviews: 'seal' (unkeyed history sealed
-- with the key) and 'erasure' (a tombstone: who, when, why and which call ids were forgotten, never their
-- content; detail lists the rows removed per table and the seq/mac of each review removed with them, so
-- the chain verifies across the gap).
CREATE TABLE IF NOT EXISTS audit_log (
    seq        BIGINT PRIMARY KEY,
    kind       VARCHAR NOT NULL,
    created_at TIMESTAMP NOT NULL,
    actor      VARCHAR NOT NULL,
    reason     VARCHAR,
    call_ids   VARCHAR[],
    detail     JSON,
    prev_mac   VARCHAR NOT NULL,
    mac        VARCHAR NOT NULL
);

CREATE OR REPLACE VIEW tombstones AS
SELECT seq, created_at AS erased_at, actor AS erased_by, reason, call_ids, len(call_ids) AS calls, detail
FROM audit_log
WHERE kind = 'erasure';
