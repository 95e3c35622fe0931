-- SPDX-License-Identifier: MIT
-- select: one round trip, SELECT $1::int4, as bench_workloads and
-- bench_raw_workloads run it. bench/README.md, "The select workload"; run with
-- pgbench -n -M prepared (the parameter goes as text).
\set v random(1, 1000000)
SELECT :v::int4;
