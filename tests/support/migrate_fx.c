/* SPDX-License-Identifier: MIT */
#include "migrate_fx.h"

#include <stdio.h>
#include <string.h>

orm_migrations_t *mfx_set(size_t n, const char *const (*m)[4]) {
  orm_migration_source_t src[MFX_MAX];
  assert_true(n <= MFX_MAX);
  for (size_t i = 0; i < n; i++)
    src[i] = (orm_migration_source_t){
        .version = m[i][0],
        .name = m[i][1],
        .up = m[i][2],
        .up_len = strlen(m[i][2]),
        .down = m[i][3],
        .down_len = m[i][3] != NULL ? strlen(m[i][3]) : 0};
  orm_migrations_t *set = NULL;
  char err[512];
  if (orm_migrations_load_embedded(src, n, &set, err, sizeof err) != 0)
    fail_msg("the set does not load: %s", err);
  return set;
}

static void on_step(const orm_migrate_step_t *s, void *data) {
  mfx_report_t *r = data;
  r->on_step_calls++;
  (void)s;
}

static void on_report(const orm_migrate_report_t *rep, void *data) {
  mfx_report_t *r = data;
  assert_int_equal(r->done, 0); /* once */
  r->done = 1;
  r->code = rep->code;
  if (rep->code != 0) {
    assert_non_null(rep->message);
    snprintf(r->message, sizeof r->message, "%s", rep->message);
  } else {
    assert_null(rep->message);
  }
  assert_non_null(rep->sqlstate);
  snprintf(r->sqlstate, sizeof r->sqlstate, "%s", rep->sqlstate);
  snprintf(r->file, sizeof r->file, "%s", rep->file != NULL ? rep->file : "");
  r->line = rep->line;
  snprintf(r->failed, sizeof r->failed, "%s",
           rep->migration != NULL ? rep->migration->version : "");
  assert_true(rep->nsteps <= MFX_MAX && rep->nstatus <= MFX_MAX);
  r->nsteps = rep->nsteps;
  for (size_t i = 0; i < rep->nsteps; i++) {
    snprintf(r->steps[i], sizeof r->steps[i], "%s",
             rep->steps[i].migration->version);
    r->step_down[i] = rep->steps[i].down;
    r->step_dry[i] = rep->steps[i].dry_run;
  }
  r->nstatus = rep->nstatus;
  for (size_t i = 0; i < rep->nstatus; i++) {
    snprintf(r->versions[i], sizeof r->versions[i], "%s",
             rep->status[i].version);
    r->states[i] = rep->status[i].state;
    r->applied_at_set[i] = rep->status[i].applied_at != NULL;
    if (i > 0) /* by version */
      assert_true(strlen(r->versions[i - 1]) < strlen(r->versions[i]) ||
                  (strlen(r->versions[i - 1]) == strlen(r->versions[i]) &&
                   strcmp(r->versions[i - 1], r->versions[i]) < 0));
  }
}

void mfx_start(orm_pool_t *pool, const orm_migrations_t *set,
               orm_migrate_options_t opt, mfx_report_t *r) {
  memset(r, 0, sizeof *r);
  opt.on_step = on_step;
  int rc = orm_migrate_async(pool, set, &opt, on_report, r);
  if (rc != 0)
    fail_msg("orm_migrate_async: %s", orm_err_name(rc));
}

void mfx_wait(orm_fx_t *fx, mfx_report_t *r) {
  uv_update_time(&fx->loop);
  uint64_t end = uv_now(&fx->loop) + 10000;
  while (!r->done) {
    uv_run(&fx->loop, UV_RUN_ONCE);
    if (uv_now(&fx->loop) > end)
      fail_msg("the migration run did not report within 10 s");
  }
  assert_int_equal(r->on_step_calls, r->nsteps);
}

mfx_report_t mfx_run(orm_fx_t *fx, const orm_migrations_t *set,
                     orm_migrate_options_t opt) {
  mfx_report_t r;
  mfx_start(fx->pool, set, opt, &r);
  mfx_wait(fx, &r);
  return r;
}

void mfx_expect_ok(const mfx_report_t *r) {
  if (r->code != 0)
    fail_msg("the run failed: %s %s: %s (%s:%u)", orm_err_name(r->code),
             r->sqlstate, r->message, r->file, r->line);
}

orm_migration_state_t mfx_state(const mfx_report_t *r, const char *version) {
  for (size_t i = 0; i < r->nstatus; i++)
    if (strcmp(r->versions[i], version) == 0)
      return r->states[i];
  fail_msg("no status for version %s", version);
  return ORM_MIGRATION_PENDING;
}
