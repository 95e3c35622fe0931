/* SPDX-License-Identifier: MIT */
/* orm_model_verify_async: a descriptor against the live table. */
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "async/future.h"
#include "pool/submit.h"

#include "model/codec.h"
#include "model/sql.h"

/* Every column of the table, with its type (a domain's base type, through
 * domains over domains: what results carry) and whether that is an enum. */
static const char verify_sql[] =
    "SELECT a.attname::text, t.oid::int8, (t.typtype = 'e'), "
    "format_type(a.atttypid, a.atttypmod) "
    "FROM pg_catalog.pg_attribute a "
    "CROSS JOIN LATERAL ("
    "WITH RECURSIVE d(oid, lvl) AS (SELECT a.atttypid, 0 UNION ALL "
    "SELECT b.typbasetype, d.lvl + 1 FROM d "
    "JOIN pg_catalog.pg_type b ON b.oid = d.oid WHERE b.typtype = 'd') "
    "SELECT oid FROM d ORDER BY lvl DESC LIMIT 1) base "
    "JOIN pg_catalog.pg_type t ON t.oid = base.oid "
    "WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 "
    "AND NOT a.attisdropped";

void orm_schema_report_free(orm_schema_report_t *report) { orm__free(report); }

/* ctx: model */
static int to_report(PGresult *res, void *const *ctx, orm_future_t *f) {
  const orm_model_t *model = ctx[0];
  orm_schema_report_t *r =
      orm__calloc(1, sizeof *r + model->nfields * sizeof r->problems[0]);
  if (r == NULL) {
    PQclear(res);
    return ORM_ENOMEM;
  }
  r->model = model;
  r->table_exists = PQntuples(res) > 0;
  for (size_t i = 0; i < model->nfields; i++) {
    const orm_field_t *field = &model->fields[i];
    int row = -1;
    for (int k = 0; k < PQntuples(res); k++)
      if (strcmp(PQgetvalue(res, k, 0), field->column) == 0)
        row = k;
    orm_schema_problem_t *p = &r->problems[r->nproblems];
    p->field = (int)i;
    p->column = field->column;
    if (row < 0) {
      p->code = ORM_ENOCOLUMN;
      snprintf(p->message, sizeof p->message,
               r->table_exists ? "column \"%s\" is missing from the table"
                               : "column \"%s\": the table does not exist",
               field->column);
      r->nproblems++;
      continue;
    }
    uint32_t oid =
        (uint32_t)orm__load_u64(PQgetvalue(res, row, 1));
    int is_enum = PQgetvalue(res, row, 2)[0] != 0;
    int fits = is_enum ? field->type == ORM_T_ENUM
                       : orm__codec_accepts(field->type, oid);
    if (!fits) {
      p->code = ORM_ETYPE;
      snprintf(p->message, sizeof p->message,
               "column \"%s\" is %s in the table, which does not fit the "
               "model's %s field",
               field->column, PQgetvalue(res, row, 3),
               orm__codec_type_name(field->type));
      r->nproblems++;
    }
  }
  PQclear(res);
  orm__future_set_value(f, r, (void (*)(void *))orm_schema_report_free);
  return 0;
}

int (orm_model_verify_async)(orm_exec_t *exec, const orm_model_t *model,
                             orm_future_cb cb, void *data, orm_future_t **out) {
  if (out != NULL)
    *out = NULL;
  if (exec == NULL || model == NULL)
    return ORM_EINVAL;
  int rc = orm_model_check(model);
  if (rc != 0)
    return rc;
  /* The table's name as a quoted identifier, given as a parameter: it is
   * parsed by to_regclass on the server, never spliced into SQL. */
  orm__sql_text_t name = {0};
  orm__buf_init(&name.buf);
  orm__sql_table(&name, model);
  orm__sql_putn(&name, "", 1);
  if (name.error != 0) {
    orm__sql_discard(&name);
    return name.error;
  }
  orm_param_t param = ORM_TEXT((const char *)name.buf.data);
  void *ctx[ORM__SUBMIT_CTX] = {(void *)(uintptr_t)model};
  orm__params_in_t in = {.values = &param, .n = 1, .op = "verify",
                         .table = model->table};
  rc = orm__exec_submit(orm__exec_route(exec, ORM__READ), verify_sql, NULL,
                        &in, to_report, ctx, cb, data, out);
  orm__sql_discard(&name);
  return rc;
}
