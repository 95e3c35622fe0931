/* SPDX-License-Identifier: MIT */
/* One fixture for integration tests: a loop, a pool, a plain libpq
 * connection for checking what the server sees, and optionally a schema
 * of the test's own (created fresh, dropped at the end). Plus a step: one
 * request's outcome, captured by orm_fx_on_step. */
#ifndef ORM_TEST_FIXTURE_H
#define ORM_TEST_FIXTURE_H

#include "harness.h"

#include <stdint.h>

#include <libpq-fe.h>

#include <uvorm.h>

typedef struct {
  uv_loop_t loop;
  orm_pool_t *pool;
  PGconn *admin;   /* search_path set to `schema`, when there is one */
  char schema[64]; /* "" for none */
  int closed;      /* close callbacks run */
  void *user;      /* the test's own: the pool's data is the fixture */
} orm_fx_t;

/* Opens the fixture: `schema` (may be NULL) is dropped if it exists and
 * created; with `domain`, the sample domain's tables are created in it.
 * `cfg` may be NULL; its conninfo is replaced by the test server's, with
 * search_path and application_name set to the schema, and its data by
 * `fx`. */
void orm_fx_open(orm_fx_t *fx, const char *schema, int domain,
                 const orm_pool_config_t *cfg);
/* Closes the pool (asserting its callback runs once and no handle is
 * left), drops the schema, closes the admin connection. */
void orm_fx_close(orm_fx_t *fx);

/* orm_fx_open() in two steps, for a test that needs the server before its
 * pool exists, a pool with a conninfo of its own, or no pool at all.
 * orm_fx_open_admin() opens the admin connection and the schema as
 * orm_fx_open() does, and no loop or pool. */
void orm_fx_open_admin(orm_fx_t *fx, const char *schema, int domain);
/* Opens the loop and the pool, on a fixture from orm_fx_open_admin() or on a
 * zeroed one, which then has no admin connection (for a server that is
 * down, or a test that needs none). `cfg` may be NULL; its conninfo is kept
 * when it is set, else it is the one orm_fx_open() gives; its data is `fx`.
 * orm_fx_close() closes it all. */
void orm_fx_open_pool(orm_fx_t *fx, const orm_pool_config_t *cfg);
/* Closes a fixture that has no pool: drops the schema, closes the admin
 * connection. */
void orm_fx_close_admin(orm_fx_t *fx);

/* Runs SQL on the admin connection (notices are dropped); fails the test
 * if it fails. */
void orm_fx_sql(orm_fx_t *fx, const char *sql);
/* The first column of the first row as an integer, -1 if there is no row. */
int64_t orm_fx_int(orm_fx_t *fx, const char *sql);
/* The first column of the only row as text, "<null>" for NULL; fails the
 * test unless there is exactly one row. Free it with free(). */
char *orm_fx_text(orm_fx_t *fx, const char *sql);

/* Runs the loop until `ms` have passed. */
void orm_fx_run_ms(orm_fx_t *fx, uint64_t ms);

typedef struct {
  int done;
  int status;
  char sqlstate[6];
  char message[256];
  int applied;   /* the error's `applied` */
  int64_t value; /* with `result`: the first int of its first row (a bool
                    as 0 or 1), or -1 */
  void *taken;   /* the value, with `take` */
  int result;    /* set before issuing: the value is an orm_result_t */
  int take;      /* set before issuing: take the value */
} orm_step_t;

/* A callback for any request: records status and error; reads a raw
 * result's first integer (step->result) or takes the value (step->take).
 * `data` is the step. */
void orm_fx_on_step(orm_future_t *f, void *data);
/* Runs the loop until every step of `steps` is done (10 s at most). */
void orm_fx_wait(orm_fx_t *fx, orm_step_t *steps, size_t n);

#endif /* ORM_TEST_FIXTURE_H */
