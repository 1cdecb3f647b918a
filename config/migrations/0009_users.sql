-- v9: the web workspace's users (callqa serve; callqa users add/disable/reset-password/list).
-- password_hash is argon2id over an HMAC of the password with the server secret, which lives outside
-- the database (callqa.workspace.web.auth): a hash read through SQL cannot be cracked offline alone.
CREATE TABLE IF NOT EXISTS users (
    username      VARCHAR PRIMARY KEY,
    display_name  VARCHAR,
    role          VARCHAR NOT NULL CHECK (role IN ('admin', 'supervisor', 'reviewer', 'agent', 'analyst')),
    agent_id      VARCHAR,  -- an agent's own calls are those with this calls.agent_id
    password_hash VARCHAR NOT NULL,
    disabled      BOOLEAN NOT NULL DEFAULT false,
    created_at    TIMESTAMP NOT NULL,
    created_by    VARCHAR NOT NULL,
    updated_at    TIMESTAMP NOT NULL,
    updated_by    VARCHAR NOT NULL
);
