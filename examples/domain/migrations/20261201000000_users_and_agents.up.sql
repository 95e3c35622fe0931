-- SPDX-License-Identifier: MIT
-- The sample domain: people who own AI agents. Plain DDL without a schema
-- name: the tables go to the first schema of the search_path, as does the
-- history table. examples/domain/domain.h declares one model per table.

CREATE TYPE agent_status AS ENUM ('active', 'paused', 'retired');

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

CREATE INDEX ON agents (owner_id);
