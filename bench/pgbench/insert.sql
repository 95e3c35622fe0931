-- SPDX-License-Identifier: MIT
-- insert: one user with an email made of the client's number and a random
-- number. A repeat of both is possible but rare; ON CONFLICT DO NOTHING
-- absorbs it (that transaction then inserts nothing). The emails end in
-- @pgbench.bench: delete them after the run (bench/README.md). Run with
-- pgbench -n -M prepared.
\set r random(1, 2000000000)
INSERT INTO bench.users (email, name)
  VALUES ('pg' || :client_id || '-' || :r || '@pgbench.bench', 'pgbench user')
  ON CONFLICT DO NOTHING
  RETURNING id, created_at;
