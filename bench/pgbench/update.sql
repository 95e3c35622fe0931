-- SPDX-License-Identifier: MIT
-- update: 20 World rows read by random ids, then each written back with a new
-- random number, every statement its own transaction (as TechEmpower's
-- updates test). Run with pgbench -n -M prepared.
\set id1 random(1, 10000)
\set id2 random(1, 10000)
\set id3 random(1, 10000)
\set id4 random(1, 10000)
\set id5 random(1, 10000)
\set id6 random(1, 10000)
\set id7 random(1, 10000)
\set id8 random(1, 10000)
\set id9 random(1, 10000)
\set id10 random(1, 10000)
\set id11 random(1, 10000)
\set id12 random(1, 10000)
\set id13 random(1, 10000)
\set id14 random(1, 10000)
\set id15 random(1, 10000)
\set id16 random(1, 10000)
\set id17 random(1, 10000)
\set id18 random(1, 10000)
\set id19 random(1, 10000)
\set id20 random(1, 10000)
\set v1 random(1, 10000)
\set v2 random(1, 10000)
\set v3 random(1, 10000)
\set v4 random(1, 10000)
\set v5 random(1, 10000)
\set v6 random(1, 10000)
\set v7 random(1, 10000)
\set v8 random(1, 10000)
\set v9 random(1, 10000)
\set v10 random(1, 10000)
\set v11 random(1, 10000)
\set v12 random(1, 10000)
\set v13 random(1, 10000)
\set v14 random(1, 10000)
\set v15 random(1, 10000)
\set v16 random(1, 10000)
\set v17 random(1, 10000)
\set v18 random(1, 10000)
\set v19 random(1, 10000)
\set v20 random(1, 10000)
SELECT id, randomnumber FROM bench.world WHERE id = :id1;
SELECT id, randomnumber FROM bench.world WHERE id = :id2;
SELECT id, randomnumber FROM bench.world WHERE id = :id3;
SELECT id, randomnumber FROM bench.world WHERE id = :id4;
SELECT id, randomnumber FROM bench.world WHERE id = :id5;
SELECT id, randomnumber FROM bench.world WHERE id = :id6;
SELECT id, randomnumber FROM bench.world WHERE id = :id7;
SELECT id, randomnumber FROM bench.world WHERE id = :id8;
SELECT id, randomnumber FROM bench.world WHERE id = :id9;
SELECT id, randomnumber FROM bench.world WHERE id = :id10;
SELECT id, randomnumber FROM bench.world WHERE id = :id11;
SELECT id, randomnumber FROM bench.world WHERE id = :id12;
SELECT id, randomnumber FROM bench.world WHERE id = :id13;
SELECT id, randomnumber FROM bench.world WHERE id = :id14;
SELECT id, randomnumber FROM bench.world WHERE id = :id15;
SELECT id, randomnumber FROM bench.world WHERE id = :id16;
SELECT id, randomnumber FROM bench.world WHERE id = :id17;
SELECT id, randomnumber FROM bench.world WHERE id = :id18;
SELECT id, randomnumber FROM bench.world WHERE id = :id19;
SELECT id, randomnumber FROM bench.world WHERE id = :id20;
UPDATE bench.world SET randomnumber = :v1 WHERE id = :id1;
UPDATE bench.world SET randomnumber = :v2 WHERE id = :id2;
UPDATE bench.world SET randomnumber = :v3 WHERE id = :id3;
UPDATE bench.world SET randomnumber = :v4 WHERE id = :id4;
UPDATE bench.world SET randomnumber = :v5 WHERE id = :id5;
UPDATE bench.world SET randomnumber = :v6 WHERE id = :id6;
UPDATE bench.world SET randomnumber = :v7 WHERE id = :id7;
UPDATE bench.world SET randomnumber = :v8 WHERE id = :id8;
UPDATE bench.world SET randomnumber = :v9 WHERE id = :id9;
UPDATE bench.world SET randomnumber = :v10 WHERE id = :id10;
UPDATE bench.world SET randomnumber = :v11 WHERE id = :id11;
UPDATE bench.world SET randomnumber = :v12 WHERE id = :id12;
UPDATE bench.world SET randomnumber = :v13 WHERE id = :id13;
UPDATE bench.world SET randomnumber = :v14 WHERE id = :id14;
UPDATE bench.world SET randomnumber = :v15 WHERE id = :id15;
UPDATE bench.world SET randomnumber = :v16 WHERE id = :id16;
UPDATE bench.world SET randomnumber = :v17 WHERE id = :id17;
UPDATE bench.world SET randomnumber = :v18 WHERE id = :id18;
UPDATE bench.world SET randomnumber = :v19 WHERE id = :id19;
UPDATE bench.world SET randomnumber = :v20 WHERE id = :id20;
