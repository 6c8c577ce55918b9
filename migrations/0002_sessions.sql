-- Agent sign-in sessions (tower-sessions records), kept in the store so they survive a
-- restart. `id` is the session id from the cookie; `data` the session's key/value map as JSON;
-- `expires_at` epoch ms, moved forward on every request (idle expiry). An expired row is
-- treated as absent and deleted lazily.
CREATE TABLE sessions (
    id         TEXT    PRIMARY KEY,
    data       TEXT    NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);
