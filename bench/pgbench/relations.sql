-- SPDX-License-Identifier: MIT
-- relations: the statements uvorm's eager loading sends for 20 conversations
-- from a random first id with their messages and each message's usage
-- (bench/relations.h; src/model/load.c): the tables schema-qualified, the
-- LIMIT a parameter as uvorm binds it (that decides which plans the server
-- caches), each statement leaving its rows' keys for the next in a
-- transaction-local setting, one statement at a time, results as text and
-- not decoded. Run with pgbench -n -M prepared.
\set start random(1, 9981)
\set lim 20
BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY;
WITH r AS (SELECT "id", "user_id", "title", "started_at" FROM bench."conversations" WHERE "id" >= :start ORDER BY "id" LIMIT :lim), k AS (SELECT set_config('uvorm.k0', coalesce(array_agg(r."id")::text, '{}'), true) FROM r) SELECT r.* FROM k LEFT JOIN r ON true;
WITH r AS (SELECT "id", "conversation_id", "role", "content", "tokens", "created_at" FROM bench."messages" WHERE "conversation_id" = ANY(current_setting('uvorm.k0')::int8[]) ORDER BY "conversation_id", "id"), k AS (SELECT set_config('uvorm.k1', coalesce(array_agg(r."id")::text, '{}'), true) FROM r) SELECT r.* FROM k LEFT JOIN r ON true;
SELECT "id", "message_id", "prompt_tokens", "completion_tokens", "cost" FROM bench."usage_records" WHERE "message_id" = ANY(current_setting('uvorm.k1')::int8[]) ORDER BY "message_id", "id";
COMMIT;
