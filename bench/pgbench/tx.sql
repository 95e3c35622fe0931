-- SPDX-License-Identifier: MIT
-- tx: an explicit transaction that reads one World row and gives another a
-- new random number. Run with pgbench -n -M prepared.
\set id random(1, 10000)
\set id2 random(1, 10000)
\set v random(1, 10000)
BEGIN;
SELECT id, randomnumber FROM bench.world WHERE id = :id;
UPDATE bench.world SET randomnumber = :v WHERE id = :id2;
END;
