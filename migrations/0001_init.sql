-- linechat's first schema.
--
-- Portability rules (SQLite today, PostgreSQL later without a rewrite):
--   * times are INTEGER milliseconds since the Unix epoch (BIGINT on PostgreSQL);
--   * flags and states are TEXT with CHECK constraints, never SQLite-only types;
--   * ids are INTEGER PRIMARY KEY (BIGSERIAL/IDENTITY on PostgreSQL).

-- People who answer customers. Passwords are argon2id PHC strings; role decides who may
-- manage agents and settings.
CREATE TABLE agents (
    id            INTEGER PRIMARY KEY,
    username      TEXT    NOT NULL UNIQUE,
    display_name  TEXT    NOT NULL,
    password_hash TEXT    NOT NULL,
    role          TEXT    NOT NULL CHECK (role IN ('agent', 'admin')),
    active        INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    language      TEXT,
    created_at    INTEGER NOT NULL
);

-- Every LINE id we have seen: a user (U…), a group (C…) or a room (R…). Group members are
-- users too, so a member's name can be shown beside what they wrote in the group.
CREATE TABLE contacts (
    id                 INTEGER PRIMARY KEY,
    line_id            TEXT    NOT NULL UNIQUE,
    kind               TEXT    NOT NULL CHECK (kind IN ('user', 'group', 'room')),
    display_name       TEXT,
    picture_url        TEXT,
    status_message     TEXT,
    language           TEXT,
    -- user: following/unfollowed (blocked us); group/room: joined/left (the bot's membership).
    follow_state       TEXT    NOT NULL DEFAULT 'unknown'
        CHECK (follow_state IN ('unknown', 'following', 'unfollowed', 'joined', 'left')),
    first_seen_at      INTEGER NOT NULL,
    last_seen_at       INTEGER NOT NULL,
    profile_fetched_at INTEGER
);

-- One conversation per LINE chat (1:1 user, group or room): the unit agents assign and resolve.
CREATE TABLE conversations (
    id               INTEGER PRIMARY KEY,
    contact_id       INTEGER NOT NULL UNIQUE REFERENCES contacts (id),
    status           TEXT    NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'pending', 'resolved')),
    assignee_id      INTEGER REFERENCES agents (id),
    last_activity_at INTEGER NOT NULL,
    last_message_id  INTEGER,
    created_at       INTEGER NOT NULL
);
CREATE INDEX conversations_by_activity ON conversations (last_activity_at DESC, id DESC);

-- Who is in a group or room conversation (from messages, memberJoined and memberLeft).
CREATE TABLE conversation_members (
    conversation_id INTEGER NOT NULL REFERENCES conversations (id),
    contact_id      INTEGER NOT NULL REFERENCES contacts (id),
    joined_at       INTEGER NOT NULL,
    left_at         INTEGER,
    PRIMARY KEY (conversation_id, contact_id)
);

-- The durable inbox: each webhook event is written here, byte for byte, BEFORE LINE gets its
-- 2xx (promise 1). The UNIQUE webhook_event_id is what makes a redelivery a no-op (promise 2).
-- The ingest worker turns a pending row into contacts/messages/events and marks it done in the
-- same transaction, so a crash at any point leaves the row pending and it is simply redone.
CREATE TABLE webhook_inbox (
    id               INTEGER PRIMARY KEY,
    webhook_event_id TEXT    NOT NULL UNIQUE,
    event_type       TEXT    NOT NULL,
    event_timestamp  INTEGER NOT NULL,
    payload          TEXT    NOT NULL,
    received_at      INTEGER NOT NULL,
    state            TEXT    NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'failed')),
    -- Failed processing attempts; after a few the row is parked as 'failed' so one poison
    -- event cannot hold up the rest, and stays here for inspection.
    attempts         INTEGER NOT NULL DEFAULT 0,
    last_error       TEXT,
    processed_at     INTEGER
);
-- The sweeper looks for pending rows that the queue lost (Redis restarted empty, a crash).
CREATE INDEX webhook_inbox_pending ON webhook_inbox (received_at) WHERE state = 'pending';

-- Every line of every conversation: customer messages (in), agent and automatic messages (out)
-- and quiet system lines (follow, unsend notices, members joining...).
CREATE TABLE messages (
    id                 INTEGER PRIMARY KEY,
    conversation_id    INTEGER NOT NULL REFERENCES conversations (id),
    direction          TEXT    NOT NULL CHECK (direction IN ('in', 'out', 'system')),
    -- text, sticker, image, video, audio, file, location, postback, follow, unfollow, join,
    -- leave, member_joined, member_left, or the LINE type name we do not know yet.
    kind               TEXT    NOT NULL,
    -- Normalized JSON of the content (see src/domain/message.rs); never shown unescaped.
    body               TEXT    NOT NULL,
    -- Plain text for previews and search.
    text               TEXT,
    sender_contact_id  INTEGER REFERENCES contacts (id),
    agent_id           INTEGER REFERENCES agents (id),
    line_message_id    TEXT,
    webhook_event_id   TEXT UNIQUE,
    -- An outgoing message's idempotency key inside linechat (e.g. 'welcome:<eventId>'), so a
    -- redone ingest or a double-clicked send never queues it twice.
    client_key         TEXT UNIQUE,
    quote_token        TEXT,
    quoted_message_id  TEXT,
    mark_as_read_token TEXT,
    -- The event's reply token while it may still be used once (LINE: one use, within 1 minute).
    reply_token        TEXT,
    reply_token_state  TEXT CHECK (reply_token_state IN ('fresh', 'used')),
    -- in: received | unsent; out: queued | sending | sent | failed; system: info.
    status             TEXT    NOT NULL,
    -- The X-Line-Retry-Key for a push: generated once, before the first attempt, kept forever.
    retry_key          TEXT UNIQUE,
    via                TEXT CHECK (via IN ('push', 'reply')),
    attempts           INTEGER NOT NULL DEFAULT 0,
    next_attempt_at    INTEGER,
    claimed_until      INTEGER,
    last_error         TEXT,
    -- Downloaded content: pending | ready | failed | external (LINE holds no binary).
    media_state        TEXT CHECK (media_state IN ('pending', 'ready', 'failed', 'external')),
    media_path         TEXT,
    media_mime         TEXT,
    media_size         INTEGER,
    media_attempts     INTEGER NOT NULL DEFAULT 0,
    line_timestamp     INTEGER,
    created_at         INTEGER NOT NULL,
    sent_at            INTEGER,
    unsent_at          INTEGER,
    edited_at          INTEGER
);
CREATE INDEX messages_by_conversation ON messages (conversation_id, id);
CREATE INDEX messages_by_line_id ON messages (line_message_id) WHERE line_message_id IS NOT NULL;
CREATE INDEX messages_outbox ON messages (next_attempt_at) WHERE status IN ('queued', 'sending');
CREATE INDEX messages_media_pending ON messages (id) WHERE media_state = 'pending';
CREATE INDEX messages_fresh_reply_tokens ON messages (conversation_id, id) WHERE reply_token_state = 'fresh';

-- The event log behind live updates: one row per change an agent must see, written in the same
-- transaction as the change. AUTOINCREMENT so ids only grow and are never reused: a browser's
-- cursor (SSE Last-Event-ID, long-poll ?after=) stays meaningful across restarts.
CREATE TABLE events (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    kind            TEXT    NOT NULL,
    conversation_id INTEGER,
    message_id      INTEGER,
    data            TEXT,
    created_at      INTEGER NOT NULL
);
CREATE INDEX events_by_conversation ON events (conversation_id, id);

-- Runtime settings edited by admins (welcome message, switches). Missing key = default.
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
