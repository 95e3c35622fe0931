/* SPDX-License-Identifier: MIT */
/* For the migration tests: sets built from texts, a run driven to its
 * report, and the report kept after its callback. */
#ifndef ORM_TEST_MIGRATE_FX_H
#define ORM_TEST_MIGRATE_FX_H

#include "fixture.h"

#define MFX_MAX 16

/* A report, copied out of its callback. */
typedef struct {
  int done;
  int code;
  char message[1024];
  char sqlstate[6];
  char file[256]; /* "" for none */
  unsigned line;
  char failed[24]; /* the failed migration's version, "" for none */
  size_t nsteps;
  char steps[MFX_MAX][24]; /* versions applied or reverted, in order */
  int step_down[MFX_MAX];
  int step_dry[MFX_MAX];
  size_t on_step_calls;
  size_t nstatus;
  char versions[MFX_MAX][24];
  orm_migration_state_t states[MFX_MAX];
  int applied_at_set[MFX_MAX];
} mfx_report_t;

/* A set from `n` {version, name, up, down} quadruples of texts (down may
 * be NULL). Fails the test if it does not load. */
orm_migrations_t *mfx_set(size_t n, const char *const (*m)[4]);

/* Starts `opt` on `pool`; the report lands in `r`. */
void mfx_start(orm_pool_t *pool, const orm_migrations_t *set,
               orm_migrate_options_t opt, mfx_report_t *r);

/* Runs `opt` on the fixture's pool to its report (10 s at most). */
mfx_report_t mfx_run(orm_fx_t *fx, const orm_migrations_t *set,
                     orm_migrate_options_t opt);

/* Runs the loop until `r` is done (10 s at most). */
void mfx_wait(orm_fx_t *fx, mfx_report_t *r);

/* Fails the test with the report's message unless it succeeded. */
void mfx_expect_ok(const mfx_report_t *r);

/* The state the report gives `version`; fails if it lists no such one. */
orm_migration_state_t mfx_state(const mfx_report_t *r, const char *version);

#endif /* ORM_TEST_MIGRATE_FX_H */
