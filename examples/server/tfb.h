/* SPDX-License-Identifier: MIT */
/* tfb.h: the TechEmpower Framework Benchmarks tables the bench loads and
 * queries, as uvorm models, and the data they are loaded with.
 *
 * bench_load creates them in the schema BENCH_SCHEMA, next to a copy of the
 * sample domain's `users` table (examples/domain/migrations/). The models
 * name no schema: a driver reaches the tables through its connections'
 * search_path (see bench/README.md).
 */
#ifndef UVORM_EXAMPLE_TFB_H
#define UVORM_EXAMPLE_TFB_H

#include <stdint.h>

#include <uvorm/model.h>

/* The schema bench_load drops and re-creates. */
#define BENCH_SCHEMA "bench"

/* world: WORLD_ROWS rows, ids 1..WORLD_ROWS, randomnumber in
 * 1..WORLD_ROWS. */
#define WORLD_ROWS 10000
#define WORLD_FIELDS(X)                                                        \
  X(id, ORM_T_INT4, int32_t, ORM_F_PK)                                         \
  X(randomnumber, ORM_T_INT4, int32_t, 0)
ORM_MODEL_DECLARE(world, WORLD_FIELDS);

/* fortune: the TFB_FORTUNES standard fortunes, ids 1..TFB_FORTUNES. */
#define FORTUNE_FIELDS(X)                                                      \
  X(id, ORM_T_INT4, int32_t, ORM_F_PK)                                         \
  X(message, ORM_T_TEXT, const char *, 0)
ORM_MODEL_DECLARE(fortune, FORTUNE_FIELDS);

#define TFB_FORTUNES 12

/* The message of fortune id i + 1 (UTF-8). */
extern const char *const tfb_fortune_messages[TFB_FORTUNES];

/* The fortune a request adds in memory before sorting (its id is 0). */
#define TFB_FORTUNE_ADDED "Additional fortune added at request time."

/* Rows bench_load puts in users (ids 1..BENCH_USERS on a fresh table). */
#define BENCH_USERS 100000

#endif /* UVORM_EXAMPLE_TFB_H */
