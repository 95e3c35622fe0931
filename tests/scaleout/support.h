/* SPDX-License-Identifier: MIT */
/* What the scale-out tests share (tests/scaleout/test_*.c, failover_test.c):
 * the loop, the topology's actions, waiting on it, one request's outcome,
 * and plain libpq checks. Their environment comes from
 * `scripts/pg-test-cluster exec`. */
#ifndef ORM_TEST_SCALEOUT_SUPPORT_H
#define ORM_TEST_SCALEOUT_SUPPORT_H

#include "fixture.h"

#include <stdint.h>

#include <libpq-fe.h>

#include <uvorm.h>

/* The one loop of a test executable. */
extern uv_loop_t loop;

/* `scripts/pg-test-cluster ACTION STATE NODE`, e.g. ("restart", "bouncer");
 * fails the test if it fails. */
void topology(const char *action, const char *node);
/* The same on libuv's thread pool, the loop running meanwhile: `*done` is
 * set (on the loop) when it has succeeded; fails the test if it fails. */
void topology_async(const char *action, const char *node, int *done);

/* Runs the loop until `done(arg)` or `ms` pass; fails the test naming `what`
 * on timeout. */
void run_until(int (*done)(void *), void *arg, uint64_t ms, const char *what);
/* Runs the loop for `ms`. */
void run_ms(uint64_t ms);

/* Until the step (orm_fx_on_step's, fixture.h) is done (15 s). */
void wait_step(orm_step_t *s);
/* Runs `q` on `ex` and returns its first value; fails the test on error. */
int64_t raw_int(orm_exec_t *ex, const char *q);

/* A libpq connection to `dsn`; fails the test if it cannot connect. */
PGconn *pg_connect(const char *dsn);
/* Runs `q`; fails the test if it fails. */
void pg_sql(PGconn *pg, const char *q);
/* The first value of `q` as an integer, -1 for NULL. */
int64_t pg_int(PGconn *pg, const char *q);

#endif
