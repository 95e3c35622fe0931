-- SPDX-License-Identifier: MIT
-- The knowledge bases agents draw on, and metered usage.

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

CREATE INDEX ON usage_records (user_id, day);
CREATE INDEX ON agent_knowledge_bases (knowledge_base_id);
