-- Nothing reads the event log by conversation (the live hub and the resuming transports read
-- it by id), yet every event paid for this index: a row in a random place of it, by
-- conversation, one more page written per event at full ingest speed.
DROP INDEX events_by_conversation;

-- The same for fresh reply tokens: every incoming message got an entry in a random place of
-- this index (by conversation), and entries stayed long after their token had expired. The
-- delivery worker now looks at the conversation's newest few messages instead
-- (store::messages::take_reply_token), through messages_by_conversation.
DROP INDEX messages_fresh_reply_tokens;
