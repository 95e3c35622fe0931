-- SPDX-License-Identifier: MIT
-- The sample domain: people who own AI agents, their conversations and
-- messages, the knowledge bases the agents draw on, and metered usage.
-- Plain DDL without a schema name: run it with the search_path you want.
-- examples/domain/domain.h declares one uvorm model per table.

CREATE TYPE agent_status AS ENUM ('active', 'paused', 'retired');
CREATE TYPE message_role AS ENUM ('system', 'user', 'assistant', 'tool');

CREATE TABLE users (
  id         bigserial PRIMARY KEY,
  email      text NOT NULL UNIQUE,
  name       text,
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE agents (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  owner_id    bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  name        text NOT NULL,
  model       varchar(100) NOT NULL,
  status      agent_status NOT NULL,
  temperature double precision NOT NULL,
  config      jsonb NOT NULL,
  tags        text[] NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);

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

CREATE TABLE knowledge_bases (
  id            bigserial PRIMARY KEY,
  agent_id      uuid NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
  name          text NOT NULL,
  description   text,
  embedding_dim smallint NOT NULL,
  document_ids  bigint[] NOT NULL,
  is_public     boolean NOT NULL,
  refreshed_at  timestamp,  -- wall-clock time of the last refresh
  UNIQUE (agent_id, name)
);

CREATE TABLE usage_records (
  id                bigserial PRIMARY KEY,
  user_id           bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  agent_id          uuid REFERENCES agents (id) ON DELETE SET NULL,
  day               date NOT NULL,
  prompt_tokens     integer NOT NULL,
  completion_tokens integer NOT NULL,
  cost              numeric(30, 12) NOT NULL,  -- in US dollars
  latency_ms        real,
  request_digest    bytea,
  recorded_at       timestamptz NOT NULL DEFAULT now(),
  message_id        bigint UNIQUE REFERENCES messages (id) ON DELETE SET NULL
);

-- Which knowledge bases an agent draws on (each base is owned by one agent,
-- knowledge_bases.agent_id, and may be shared with others).
CREATE TABLE agent_knowledge_bases (
  agent_id          uuid NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
  knowledge_base_id bigint NOT NULL REFERENCES knowledge_bases (id) ON DELETE CASCADE,
  PRIMARY KEY (agent_id, knowledge_base_id)
);

CREATE INDEX ON messages (conversation_id, id);
CREATE INDEX ON usage_records (user_id, day);
CREATE INDEX ON conversations (user_id, id);
CREATE INDEX ON agents (owner_id);
CREATE INDEX ON agent_knowledge_bases (knowledge_base_id);
