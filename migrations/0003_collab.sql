-- Working together: unread counts per agent, and the list filtered by assignee.
--
-- `in_count` counts a conversation's customer messages, only ever growing; an agent's unread
-- count is `in_count - read_in_count` from `agent_reads`. The live list rows carry `in_count`
-- (the same bytes for every agent) and the browser subtracts its agent's own read count.
ALTER TABLE conversations ADD COLUMN in_count INTEGER NOT NULL DEFAULT 0;
UPDATE conversations SET in_count =
    (SELECT COUNT(*) FROM messages WHERE messages.conversation_id = conversations.id AND messages.direction = 'in');

-- How far each agent has read each conversation (the conversation's in_count when they last
-- had it open). No row = nothing read.
CREATE TABLE agent_reads (
    agent_id        INTEGER NOT NULL REFERENCES agents (id),
    conversation_id INTEGER NOT NULL REFERENCES conversations (id),
    read_in_count   INTEGER NOT NULL,
    read_at         INTEGER NOT NULL,
    PRIMARY KEY (agent_id, conversation_id)
);

-- "Mine" and "Unassigned", newest activity first.
CREATE INDEX conversations_by_assignee ON conversations (assignee_id, last_activity_at DESC, id DESC);
