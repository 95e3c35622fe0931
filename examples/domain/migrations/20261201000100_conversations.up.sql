-- SPDX-License-Identifier: MIT
-- Conversations between a user and an agent, and their messages.

CREATE TYPE message_role AS ENUM ('system', 'user', 'assistant', 'tool');

CREATE TABLE conversations (
  id         bigserial PRIMARY KEY,
  agent_id   uuid NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
  user_id    bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  title      text,
  started_at timestamptz NOT NULL DEFAULT now(),
  ended_at   timestamptz
);

CREATE TABLE messages (
  id              bigserial PRIMARY KEY,
  conversation_id bigint NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
  role            message_role NOT NULL,
  content         text NOT NULL,
  tokens          integer,
  metadata        json,
  created_at      timestamptz NOT NULL DEFAULT now(),
  author_id       bigint REFERENCES users (id) ON DELETE SET NULL,
  editor_id       bigint REFERENCES users (id) ON DELETE SET NULL
);

CREATE INDEX ON conversations (user_id, id);
CREATE INDEX ON messages (conversation_id, id);
