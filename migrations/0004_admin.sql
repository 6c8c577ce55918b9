-- Admin page and LINE touches.

-- Bumped when an agent's password is reset: a session remembers the epoch it was signed in
-- at, and one from an older epoch is refused, so a reset ends every other session at once
-- (deleting session rows alone could race a request that saves its session back).
ALTER TABLE agents ADD COLUMN session_epoch INTEGER NOT NULL DEFAULT 0;

-- When the loading animation was last asked for in this (1:1) conversation (epoch ms); the
-- typing endpoint calls LINE at most once per throttle window per conversation, whichever
-- process or browser tab asks.
ALTER TABLE conversations ADD COLUMN loading_started_at INTEGER;
