-- SPDX-License-Identifier: MIT
-- find: one World row by a random id. bench/README.md, "Workloads: raw libpq
-- and pgbench"; run with pgbench -n -M prepared.
\set id random(1, 10000)
SELECT id, randomnumber FROM bench.world WHERE id = :id;
