/* SPDX-License-Identifier: MIT */
/* The `samples` table of the test_model_types_* tests: a model with a
 * field of every uvorm type, rows with each type's extremes (what is sent,
 * what must come back, and how the server renders each column as text),
 * and the checks of what the model reads against what the server stored.
 * What the server stored is checked with plain SQL in text format on the
 * fixture's admin connection, so a codec that is wrong both ways cannot
 * pass by decoding its own mistake. The admin connection's search_path is
 * the fixture's schema: the plain SQL here names the table alone. */
#ifndef ORM_TEST_SAMPLE_MODEL_H
#define ORM_TEST_SAMPLE_MODEL_H

#include "fixture.h"

#include <stdbool.h>
#include <stdint.h>

/* One field of every type, in the table's column order. */
#define SAMPLE_FIELDS(X)                                                       \
  X(id, ORM_T_INT8, int64_t, ORM_F_PK | ORM_F_GENERATED)                       \
  X(i2, ORM_T_INT2, int16_t, ORM_F_NULLABLE)                                   \
  X(i4, ORM_T_INT4, int32_t, ORM_F_NULLABLE)                                   \
  X(i8, ORM_T_INT8, int64_t, ORM_F_NULLABLE)                                   \
  X(f4, ORM_T_FLOAT4, float, ORM_F_NULLABLE)                                   \
  X(f8, ORM_T_FLOAT8, double, ORM_F_NULLABLE)                                  \
  X(flag, ORM_T_BOOL, bool, ORM_F_NULLABLE)                                    \
  X(label, ORM_T_TEXT, const char *, ORM_F_NULLABLE)                           \
  X(mood, ORM_T_ENUM, const char *, ORM_F_NULLABLE)                            \
  X(doc, ORM_T_JSON, const char *, ORM_F_NULLABLE)                             \
  X(docb, ORM_T_JSONB, const char *, ORM_F_NULLABLE)                           \
  X(blob, ORM_T_BYTEA, orm_bytes_t, ORM_F_NULLABLE)                            \
  X(ts, ORM_T_TIMESTAMP, int64_t, ORM_F_NULLABLE)                              \
  X(tstz, ORM_T_TIMESTAMPTZ, int64_t, ORM_F_NULLABLE)                          \
  X(day, ORM_T_DATE, int32_t, ORM_F_NULLABLE)                                  \
  X(uid, ORM_T_UUID, orm_uuid_t, ORM_F_NULLABLE)                               \
  X(amount, ORM_T_NUMERIC, const char *, ORM_F_NULLABLE)                       \
  X(ints, ORM_T_INT_ARRAY, orm_int_array_t, ORM_F_NULLABLE)                    \
  X(texts, ORM_T_TEXT_ARRAY, orm_text_array_t, ORM_F_NULLABLE)
ORM_MODEL_DECLARE(sample, SAMPLE_FIELDS);

#define NFIELDS 19

#define BIT(name) ORM_FIELD_BIT(sample, name)
/* Every field but the generated key. */
#define ALL_NULLS ((((UINT64_C(1) << NFIELDS) - 1)) & ~BIT(id))
#define USECS_PER_DAY INT64_C(86400000000)

/* ---- the rows ----------------------------------------------------------- */

typedef struct {
  const char *name;
  sample_t in;  /* what is sent */
  sample_t out; /* what must come back (id aside) */
  /* The server's text rendering of each non-NULL column, by field index.
   * Left NULL for string types (the expected C string is the rendering)
   * and bytea (rendered from the expected bytes in hex). */
  const char *text[NFIELDS];
  /* An extra plain-SQL check: a query with the key as $1, and its answer. */
  const char *extra_sql;
  char extra_expect[64];
} row_case_t;

#define T(name) [ORM_FIELD(sample, name)]

enum {
  CASE_ALL_NULL,
  CASE_ZEROS,
  CASE_MAXIMA,
  CASE_MINIMA,
  CASE_TINY,
  CASE_NEG_ZERO,
  CASE_NAN,
  CASE_PLUS_INF,
  CASE_MINUS_INF,
  CASE_BIG_TEXT,
  CASE_NUMERIC_GROUPS,
  CASE_NUMERIC_EXPONENT,
  NCASES
};

extern row_case_t sample_cases[NCASES];

/* Group setup: opens `fx` with the samples table in `schema` (a pool of
 * two connections) and builds the cases. */
void sample_open(orm_fx_t *fx, const char *schema);
/* Group teardown: closes `fx` and checks that its schema is gone. */
void sample_close(orm_fx_t *fx);

/* ---- waiting for a future -------------------------------------------------
 * One wait at a time, in static storage: a future that outlives a failed
 * test can never write into a dead stack frame. */
typedef struct {
  orm_step_t step; /* the value taken */
  void *first_row; /* orm_future_row() before the value was taken */
} wait_t;

/* The wait, reset for a request whose value is to be taken. */
wait_t *sample_begin_wait(void);
/* A callback for any request; `data` is the wait. */
void sample_on_done(orm_future_t *f, void *data);
void sample_wait_for(wait_t *w);
/* Waits and fails the test unless the future resolved. */
void sample_wait_ok(wait_t *w, const char *what);

/* ---- checks ------------------------------------------------------------- */

/* Rows in the table, by plain SQL. */
int64_t sample_count_rows(void);
/* `got` must hold exactly `want`: the same NULL bits, NULL fields zeroed,
 * the same values (NaN as NaN, -0.0 as -0.0). */
void sample_compare_row(const char *what, const sample_t *want,
                        const sample_t *got);
/* What plain SQL sees in the row `id`: NULL exactly where `want` says
 * (`col IS NULL` for each column), and each other column rendered in text
 * format as `text` (or the expected string / bytea) gives. If `got` is
 * given, its strings must also equal the server's rendering (jsonb after
 * the server's normalisation, numeric with its scale). */
void sample_check_server(const char *what, int64_t id, const sample_t *want,
                         const char *const text[NFIELDS], const sample_t *got);
/* The case's extra plain-SQL check, if it has one. */
void sample_check_extra(const row_case_t *c, int64_t id);

/* ---- model calls -------------------------------------------------------- */

/* The row `id`, found through the model: exactly one. */
orm_rows_t *sample_find_one(int64_t id);
/* The caller's struct after a write: the generated id written back and set
 * not NULL, every other field exactly as the caller left it. */
void sample_check_written_back(const char *what, const sample_t *before,
                               const sample_t *after);
/* insert, then find; both answers and plain SQL checked. Returns the id. */
int64_t sample_round_trip(const row_case_t *c);

#endif /* ORM_TEST_SAMPLE_MODEL_H */
