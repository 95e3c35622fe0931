/* SPDX-License-Identifier: MIT */
/* The fixture of the test_pool_config_* tests (pool settings and less
 * travelled paths), one test at a time: an orm_fx_t on the heap, so that a
 * test that fails half-way abandons it (never runs its loop again, so no
 * callback reaches a dead stack frame) and the next test starts on a fresh
 * one; a ticker that wakes the loop every few milliseconds; probes that
 * record when a request completed and on which backend.
 *
 * Every pool connection carries application_name = the fixture's schema, so
 * that the server's own view (pg_stat_activity) can be checked from the
 * admin connection, which is not counted. */
#ifndef ORM_TEST_CFG_FIXTURE_H
#define ORM_TEST_CFG_FIXTURE_H

#include "fixture.h"

#include <stdint.h>

/* The test's fixture, NULL between tests. */
extern orm_fx_t *cfg_fx;

/* Run by the ticker while set: lets a test sample the pool while work
 * runs. Cleared when the fixture opens and closes. */
extern void (*cfg_tick_hook)(void);

/* Opens the fixture: orm_fx_open() with `schema`, then the ticker. */
void cfg_open(const char *schema, orm_pool_config_t cfg);
/* The same in two steps, for a test that needs the server before its
 * pool: cfg_open_admin() opens the admin connection and the schema only,
 * cfg_open_pool() the loop, the pool (cfg.conninfo is kept when set) and
 * the ticker. cfg_close_admin() closes a fixture that has no pool. */
void cfg_open_admin(const char *schema);
void cfg_open_pool(orm_pool_config_t cfg);
void cfg_close_admin(void);
/* Stops the ticker, closes the fixture (orm_fx_close()) and frees it. */
void cfg_close(void);
/* A test's teardown: after a failure, leaves the loop, its pool and
 * handles as they are, and closes the admin connection. */
int cfg_abandon(void **state);

/* uv_close() callback for a handle on the heap. */
void cfg_free_handle(uv_handle_t *h);

/* Runs the loop for `ms`, blocking in it and woken by the ticker. Not
 * orm_fx_run_ms(), which polls with 1 ms sleeps: the timing differs enough
 * that test_max_lifetime_retires then sometimes saw its one connection
 * never replaced. */
void cfg_run_ms(uint64_t ms);
/* Runs the loop until `*count` reaches `target`, failing the test after
 * `timeout_ms`. */
void cfg_run_until_count(const int *count, int target, uint64_t timeout_ms);
void cfg_run_until(const int *flag, uint64_t timeout_ms);
/* Runs the loop until `pred` holds, checking every few milliseconds;
 * returns 0 if it did not within `timeout_ms`. */
int cfg_wait_for(int (*pred)(void), uint64_t timeout_ms);

orm_pool_stats_t cfg_stats(void);
unsigned cfg_total_conns(const orm_pool_stats_t *st);

/* ---- one statement ------------------------------------------------------ */

typedef struct {
  int done;
  int status;
  char sqlstate[6];
  char message[160];
  int64_t value; /* column 0 of row 0, when it is an integer */
  int64_t pid;   /* column 1 of row 0, when there is one */
  uint64_t completed_at;
} probe_t;

/* A callback for a query or transaction step; `data` is the probe. */
void cfg_on_probe(orm_future_t *f, void *data);
/* Runs one statement on the pool to completion. */
probe_t cfg_run_sql(const char *sql, const orm_param_t *params, size_t n);
/* Its first value; fails the test if it fails. */
int64_t cfg_scalar(const char *sql);
int64_t cfg_backend_pid(void);

/* ---- the server's view, from the admin connection ----------------------- */

/* The first value of a one-row answer to the formatted SQL, as an integer,
 * -1 for NULL; fails the test unless there is exactly one row. */
int64_t cfg_admin_int(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
/* Terminates the backend and waits until it is gone. */
void cfg_admin_terminate(int64_t pid);
/* The pool's connections as the server counts them. */
int64_t cfg_server_conns(void);
int64_t cfg_server_idle_in_tx(void);

#endif /* ORM_TEST_CFG_FIXTURE_H */
