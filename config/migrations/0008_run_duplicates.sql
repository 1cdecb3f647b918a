-- Recordings found under several names with identical bytes (one call): which file was kept and
-- which were the same audio, per run: [{"call_id": ..., "kept": path, "same_audio": [path, ...]}].
ALTER TABLE runs ADD COLUMN IF NOT EXISTS duplicates JSON;
