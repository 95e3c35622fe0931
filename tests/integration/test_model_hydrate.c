/* SPDX-License-Identifier: MIT */
/* Models against a real server, with plain blocking libpq: the sample
 * domain's tables (examples/domain/migrations/) in a schema of this test's
 * own; rows written with the generated INSERT SQL and encoded parameters,
 * read back with the generated SELECT SQL and hydrated, then compared field
 * by field with what a plain text-format query sees. Hostile strings,
 * extremes, NULLs, type mismatches and builder queries. (What hydration
 * costs is measured in bench/hydrate.c.) */
#include "fixture.h"

#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uvorm/model.h>

#include "model/arena.h"
#include "model/hydrate.h"
#include "model/params.h"
#include "model/sql.h"

#include "domain.h"

/* The admin connection and the schema only: no pool. */
static orm_fx_t fx;

/* ---- plumbing ----------------------------------------------------------- */

/* Runs `sql` with uvorm's parameters, asking for binary (format 1) or text
 * (0) results. */
static PGresult *run(const char *sql, const orm_param_t *params, size_t n,
                     int format) {
  Oid *types = calloc(n + 1, sizeof *types);
  const char **values = calloc(n + 1, sizeof *values);
  int *lengths = calloc(n + 1, sizeof *lengths);
  int *formats = calloc(n + 1, sizeof *formats);
  char **copies = calloc(n + 1, sizeof *copies);
  assert_true(types && values && lengths && formats && copies);
  for (size_t i = 0; i < n; i++) {
    const orm_param_t *p = &params[i];
    switch (p->kind) {
    case ORM_PARAM_NULL:
      break;
    case ORM_PARAM_BINARY:
      types[i] = p->oid;
      values[i] = p->v.s.ptr;
      lengths[i] = (int)p->v.s.len;
      formats[i] = 1;
      break;
    case ORM_PARAM_UNTYPED: /* text the server parses: NUL-terminated */
      copies[i] = calloc(1, p->v.s.len + 1);
      memcpy(copies[i], p->v.s.ptr, p->v.s.len);
      values[i] = copies[i];
      break;
    default:
      fail_msg("unexpected parameter kind %d", (int)p->kind);
    }
  }
  PGresult *res = PQexecParams(fx.admin, sql, (int)n, types, values, lengths,
                               formats, format);
  for (size_t i = 0; i < n; i++)
    free(copies[i]);
  free(types), free(values), free(lengths), free(formats), free(copies);
  return res;
}

static PGresult *run_ok(const char *sql, const orm_param_t *params, size_t n,
                        int format) {
  PGresult *res = run(sql, params, n, format);
  ExecStatusType st = PQresultStatus(res);
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
    fail_msg("%.300s: %s", sql, PQerrorMessage(fx.admin));
  return res;
}

static orm__model_sql_t *sql_of(const orm_model_t *model) {
  orm__model_sql_t *s;
  orm_model_error_t err;
  if (orm__model_sql_new(&s, model, &err) != 0)
    fail_msg("model: %s", err.message);
  return s;
}

/* Inserts one row with the model's INSERT and writes the generated columns
 * back into it (their strings into `arena`). */
static void insert_row(const orm__model_sql_t *s, void *row,
                       orm__arena_t *arena) {
  orm__params_t p = {0};
  assert_int_equal(orm__params_bind_row(&p, s->model, &s->insert, row), 0);
  PGresult *res = run_ok(s->insert.sql, orm__params_finish(&p), p.len, 1);
  orm__params_free(&p);
  assert_int_equal(PQntuples(res), 1);
  orm_model_error_t err;
  if (orm__hydrate_into(s->model, res, 0, row, s->generated, arena, &err) != 0)
    fail_msg("write-back: %s", err.message);
  PQclear(res);
}

/* Inserts `n` rows in one statement; returns what RETURNING gave. */
static orm_rows_t *insert_rows(const orm__model_sql_t *s, const void *rows,
                               size_t n) {
  orm__params_t p = {0};
  assert_int_equal(
      orm__params_bind_rows(&p, s->model, &s->insert_many, rows, n), 0);
  PGresult *res = run_ok(s->insert_many.sql, orm__params_finish(&p), p.len, 1);
  orm__params_free(&p);
  orm_rows_t *out;
  orm_model_error_t err;
  if (orm__hydrate(&out, s->model, res, &err) != 0)
    fail_msg("hydrate: %s", err.message);
  PQclear(res);
  assert_int_equal(orm_rows_count(out), n);
  return out;
}

/* Every row of the model's table, by its find_all SQL. */
static orm_rows_t *select_all(const orm__model_sql_t *s) {
  PGresult *res = run_ok(s->find_all.sql, NULL, 0, 1);
  orm_rows_t *out;
  orm_model_error_t err;
  if (orm__hydrate(&out, s->model, res, &err) != 0)
    fail_msg("hydrate: %s", err.message);
  PQclear(res);
  return out;
}

/* One row by primary key, by the model's find SQL. */
static orm_rows_t *find(const orm__model_sql_t *s, orm_param_t key) {
  orm__params_t p = {0};
  assert_int_equal(orm__params_add_value(&p, s->model, (size_t)s->pk, &key), 0);
  PGresult *res = run_ok(s->find.sql, orm__params_finish(&p), p.len, 1);
  orm__params_free(&p);
  orm_rows_t *out;
  orm_model_error_t err;
  if (orm__hydrate(&out, s->model, res, &err) != 0)
    fail_msg("hydrate: %s", err.message);
  PQclear(res);
  return out;
}

/* ---- field-by-field comparison with a text-format query ----------------- */

static void hex(char *out, const uint8_t *bytes, size_t len) {
  for (size_t i = 0; i < len; i++)
    sprintf(out + 2 * i, "%02x", bytes[i]);
  out[2 * len] = '\0';
}

static void format_uuid(char *out, const orm_uuid_t *u) {
  char h[33];
  hex(h, u->bytes, 16);
  sprintf(out, "%.8s-%.4s-%.4s-%.4s-%.12s", h, h + 8, h + 12, h + 16, h + 20);
}

/* The SQL expression that renders column `c` as text the way `ours` below
 * renders the hydrated field. */
static void text_expr(char *out, size_t size, const orm_field_t *f) {
  char c[80];
  snprintf(c, sizeof c, "\"%s\"", f->column);
  switch (f->type) {
  case ORM_T_BYTEA:
    snprintf(out, size, "encode(%s, 'hex')", c);
    break;
  case ORM_T_TIMESTAMP:
  case ORM_T_TIMESTAMPTZ:
    snprintf(out, size,
             "CASE WHEN isfinite(%s) THEN (extract(epoch FROM %s) * "
             "1000000)::int8::text ELSE %s::text END",
             c, c, c);
    break;
  case ORM_T_DATE:
    snprintf(out, size,
             "CASE WHEN isfinite(%s) THEN (%s - DATE '1970-01-01')::text "
             "ELSE %s::text END",
             c, c, c);
    break;
  default:
    snprintf(out, size, "%s::text", c);
    break;
  }
}

/* The hydrated field as text; NULL for a text array (compared apart). */
static char *ours(const orm_field_t *f, const char *row) {
  const void *v = row + f->offset;
  char buf[128];
  switch (f->type) {
  case ORM_T_INT2:
    snprintf(buf, sizeof buf, "%d", *(const int16_t *)v);
    break;
  case ORM_T_INT4:
    snprintf(buf, sizeof buf, "%" PRId32, *(const int32_t *)v);
    break;
  case ORM_T_INT8:
    snprintf(buf, sizeof buf, "%" PRId64, *(const int64_t *)v);
    break;
  case ORM_T_BOOL:
    snprintf(buf, sizeof buf, "%s", *(const bool *)v ? "true" : "false");
    break;
  case ORM_T_TIMESTAMP:
  case ORM_T_TIMESTAMPTZ: {
    int64_t t = *(const int64_t *)v;
    if (t == INT64_MAX || t == INT64_MIN)
      snprintf(buf, sizeof buf, "%s", t > 0 ? "infinity" : "-infinity");
    else
      snprintf(buf, sizeof buf, "%" PRId64, t);
    break;
  }
  case ORM_T_DATE: {
    int32_t d = *(const int32_t *)v;
    if (d == INT32_MAX || d == INT32_MIN)
      snprintf(buf, sizeof buf, "%s", d > 0 ? "infinity" : "-infinity");
    else
      snprintf(buf, sizeof buf, "%" PRId32, d);
    break;
  }
  case ORM_T_UUID:
    format_uuid(buf, v);
    break;
  case ORM_T_BYTEA: {
    const orm_bytes_t *b = v;
    char *s = malloc(2 * b->len + 1);
    hex(s, b->data, b->len);
    return s;
  }
  case ORM_T_INT_ARRAY: {
    const orm_int_array_t *a = v;
    char *s = malloc(24 * a->len + 3);
    size_t n = (size_t)sprintf(s, "{");
    for (size_t i = 0; i < a->len; i++)
      n += orm_int_array_is_null(a, i)
               ? (size_t)sprintf(s + n, "%sNULL", i ? "," : "")
               : (size_t)sprintf(s + n, "%s%" PRId64, i ? "," : "",
                                 a->items[i]);
    sprintf(s + n, "}");
    return s;
  }
  case ORM_T_TEXT_ARRAY:
  case ORM_T_FLOAT4:
  case ORM_T_FLOAT8:
    return NULL;
  default: /* strings */
    return strdup(*(char *const *)v);
  }
  return strdup(buf);
}

static bool same_double(double a, double b) {
  return (isnan(a) && isnan(b)) || a == b;
}

static void compare_field(const orm__model_sql_t *s, const char *row,
                          size_t fi) {
  const orm_model_t *model = s->model;
  const orm_field_t *f = &model->fields[fi];
  orm__params_t p = {0};
  assert_int_equal(orm__params_add_field(&p, model, row, (size_t)s->pk), 0);
  const orm_param_t *key = orm__params_finish(&p);
  char expr[512], sql[1024];
  bool is_null = orm_row_is_null(model, row, fi);

  if (f->type == ORM_T_TEXT_ARRAY) {
    snprintf(sql, sizeof sql,
             "SELECT u.x FROM \"%s\" t, unnest(t.\"%s\") WITH ORDINALITY "
             "AS u(x, n) WHERE t.\"%s\" = $1 ORDER BY u.n",
             model->table, f->column, model->fields[s->pk].column);
    PGresult *res = run_ok(sql, key, 1, 0);
    const orm_text_array_t *a = (const void *)(row + f->offset);
    assert_false(is_null);
    assert_int_equal((size_t)PQntuples(res), a->len);
    for (size_t i = 0; i < a->len; i++) {
      if (PQgetisnull(res, (int)i, 0))
        assert_null(a->items[i]);
      else
        assert_string_equal(a->items[i], PQgetvalue(res, (int)i, 0));
    }
    PQclear(res);
    orm__params_free(&p);
    return;
  }

  text_expr(expr, sizeof expr, f);
  snprintf(sql, sizeof sql, "SELECT %s FROM \"%s\" WHERE \"%s\" = $1", expr,
           model->table, model->fields[s->pk].column);
  PGresult *res = run_ok(sql, key, 1, 0);
  assert_int_equal(PQntuples(res), 1);
  if (PQgetisnull(res, 0, 0) != is_null)
    fail_msg("%s.%s: the server says %s, the struct says %s", model->table,
             f->column, PQgetisnull(res, 0, 0) ? "NULL" : "not NULL",
             is_null ? "NULL" : "not NULL");
  if (!is_null) {
    const char *theirs = PQgetvalue(res, 0, 0);
    if (f->type == ORM_T_FLOAT4) {
      float mine = *(const float *)(const void *)(row + f->offset);
      if (!same_double(mine, strtof(theirs, NULL)))
        fail_msg("%s: %g vs %s", f->column, (double)mine, theirs);
    } else if (f->type == ORM_T_FLOAT8) {
      double mine = *(const double *)(const void *)(row + f->offset);
      if (!same_double(mine, strtod(theirs, NULL)))
        fail_msg("%s: %.17g vs %s", f->column, mine, theirs);
    } else {
      char *mine = ours(f, row);
      if (strcmp(mine, theirs) != 0)
        fail_msg("%s.%s: ours \"%.80s\", the server's \"%.80s\"",
                 model->table, f->column, mine, theirs);
      free(mine);
    }
  }
  PQclear(res);
  orm__params_free(&p);
}

/* Every field of every row, against the server's own rendering. */
static void compare_rows(const orm__model_sql_t *s, const orm_rows_t *rows) {
  for (size_t r = 0; r < orm_rows_count(rows); r++)
    for (size_t f = 0; f < s->model->nfields; f++)
      compare_field(s, orm_rows_at(rows, r), f);
}

static int64_t count_rows(const char *table) {
  char sql[128];
  snprintf(sql, sizeof sql, "SELECT count(*) FROM \"%s\"", table);
  PGresult *res = run_ok(sql, NULL, 0, 0);
  int64_t n = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
  PQclear(res);
  return n;
}

/* ---- fixtures ----------------------------------------------------------- */

static int group_setup(void **state) {
  /* The sample domain in a schema of this process's own. */
  char schema[64];
  snprintf(schema, sizeof schema, "uvorm_model_test_%ld", (long)getpid());
  orm_fx_open_admin(&fx, schema, 1);
  orm_fx_sql(&fx, "SET client_encoding = 'UTF8'");
  orm_fx_sql(&fx, "SET TimeZone = 'UTC'");
  orm_fx_sql(&fx, "SET extra_float_digits = 1");
  orm_fx_sql(&fx, "SET client_min_messages = 'warning'");
  return 0;
}

static int group_teardown(void **state) {
  orm_fx_close_admin(&fx);
  return 0;
}

/* ---- tests -------------------------------------------------------------- */

static const char *const hostile[] = {
    "'; DROP TABLE users; --",
    "Robert'); DROP TABLE users;--",
    "\"double\" 'single' `back`",
    "back\\slash \\\\ \\x41 \\'",
    "Zoë Ångström — 日本語テキスト — 🚀🐘",
    "$1 $$ dollar $tag$ quoting $tag$",
    "line1\nline2\r\n\ttab",
    "",
    "\x01\x02\x7f control",
};

static int64_t user_ids[sizeof hostile / sizeof hostile[0]];

static void test_users(void **state) {
  orm__model_sql_t *s = sql_of(user_model());
  orm__arena_t arena;
  orm__arena_init(&arena);
  size_t n = sizeof hostile / sizeof hostile[0];
  for (size_t i = 0; i < n; i++) {
    char email[64];
    snprintf(email, sizeof email, "user%zu@example.com", i);
    user_t u = {.email = email, .name = hostile[i], .id = -1};
    ORM_SET_NULL(&u, user, created_at);
    insert_row(s, &u, &arena);
    /* RETURNING wrote the generated columns back. */
    assert_true(u.id > 0);
    assert_false(ORM_IS_NULL(&u, user, created_at));
    assert_true(u.created_at > INT64_C(1600000000000000));
    assert_string_equal(u.name, hostile[i]); /* untouched */
    user_ids[i] = u.id;
  }
  /* Hostile strings as e-mail addresses too, and a NULL name. */
  user_t h = {.email = "'; DROP TABLE users; --"};
  ORM_SET_NULL(&h, user, name);
  insert_row(s, &h, &arena);

  /* Read back by key: verbatim. */
  for (size_t i = 0; i < n; i++) {
    orm_rows_t *rows = find(s, ORM_INT8(user_ids[i]));
    assert_int_equal(orm_rows_count(rows), 1);
    const user_t *u = orm_rows_array(rows);
    assert_int_equal(u->id, user_ids[i]);
    assert_string_equal(u->name, hostile[i]);
    compare_rows(s, rows);
    orm_rows_free(rows);
  }
  orm_rows_t *rows = find(s, ORM_INT8(h.id));
  const user_t *u = orm_rows_array(rows);
  assert_string_equal(u->email, "'; DROP TABLE users; --");
  assert_true(ORM_IS_NULL(u, user, name));
  assert_null(u->name);
  orm_rows_free(rows);

  /* The whole table, and it is intact. */
  rows = select_all(s);
  assert_int_equal(orm_rows_count(rows), n + 1);
  compare_rows(s, rows);
  orm_rows_free(rows);
  assert_int_equal(count_rows("users"), (int64_t)n + 1);
  orm__arena_free(&arena);
  orm__model_sql_free(s);
}

static void test_crud(void **state) {
  orm__model_sql_t *s = sql_of(user_model());
  orm__arena_t arena;
  orm__arena_init(&arena);
  orm__params_t p = {0};

  user_t u = {.email = "crud@example.com", .name = "before"};
  insert_row(s, &u, &arena);

  /* update all columns */
  u.name = "after";
  assert_int_equal(orm__params_bind_row(&p, s->model, &s->update, &u), 0);
  PGresult *res = run_ok(s->update.sql, orm__params_finish(&p), p.len, 1);
  assert_int_equal(PQntuples(res), 1);
  PQclear(res);

  /* update one named column: NULL */
  orm__sql_stmt_t only_name;
  assert_int_equal(orm__model_sql_update_fields(s, ORM_FIELD_BIT(user, name),
                                                &only_name),
                   0);
  ORM_SET_NULL(&u, user, name);
  u.email = "not sent";
  orm__params_reset(&p);
  assert_int_equal(orm__params_bind_row(&p, s->model, &only_name, &u), 0);
  res = run_ok(only_name.sql, orm__params_finish(&p), p.len, 1);
  orm_rows_t *rows;
  assert_int_equal(orm__hydrate(&rows, s->model, res, NULL), 0);
  PQclear(res);
  const user_t *got = orm_rows_array(rows);
  assert_string_equal(got->email, "crud@example.com");
  assert_true(ORM_IS_NULL(got, user, name));
  compare_rows(s, rows);
  orm_rows_free(rows);
  free(only_name.sql);

  /* exists, count */
  orm__params_reset(&p);
  assert_int_equal(orm__params_add_value(&p, s->model, 0, &ORM_INT8(u.id)), 0);
  res = run_ok(s->exists.sql, orm__params_finish(&p), p.len, 0);
  assert_string_equal(PQgetvalue(res, 0, 0), "t");
  PQclear(res);
  res = run_ok(s->count.sql, NULL, 0, 0);
  int64_t before = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
  PQclear(res);

  /* upsert on the unique e-mail: the existing row is updated */
  user_t again = {.email = "crud@example.com", .name = "upserted"};
  orm__params_reset(&p);
  size_t email = ORM_FIELD(user, email);
  assert_int_equal(
      orm__params_bind_row(&p, s->model, &s->upsert[email], &again), 0);
  res = run_ok(s->upsert[email].sql, orm__params_finish(&p), p.len, 1);
  assert_int_equal(orm__hydrate(&rows, s->model, res, NULL), 0);
  PQclear(res);
  got = orm_rows_array(rows);
  assert_int_equal(got->id, u.id);
  assert_string_equal(got->name, "upserted");
  orm_rows_free(rows);
  assert_int_equal(count_rows("users"), before);

  /* upsert on the key with explicit extremes of int8 */
  int64_t extremes[] = {INT64_MIN, INT64_MAX};
  for (size_t i = 0; i < 2; i++) {
    char mail[32];
    snprintf(mail, sizeof mail, "extreme%zu@example.com", i);
    user_t x = {.id = extremes[i], .email = mail, .name = "x"};
    orm__params_reset(&p);
    assert_int_equal(orm__params_bind_row(&p, s->model, &s->upsert[0], &x), 0);
    res = run_ok(s->upsert[0].sql, orm__params_finish(&p), p.len, 1);
    assert_int_equal(orm__hydrate(&rows, s->model, res, NULL), 0);
    PQclear(res);
    assert_int_equal(((const user_t *)orm_rows_array(rows))->id, extremes[i]);
    compare_rows(s, rows);
    orm_rows_free(rows);
  }

  /* find by a column */
  orm__params_reset(&p);
  assert_int_equal(orm__params_add_value(&p, s->model, email,
                                         &ORM_TEXT("crud@example.com")),
                   0);
  res = run_ok(s->find_by[email].sql, orm__params_finish(&p), p.len, 1);
  assert_int_equal(PQntuples(res), 1);
  PQclear(res);

  /* delete */
  orm__params_reset(&p);
  assert_int_equal(orm__params_bind_row(&p, s->model, &s->remove, &u), 0);
  res = run_ok(s->remove.sql, orm__params_finish(&p), p.len, 0);
  assert_string_equal(PQcmdTuples(res), "1");
  PQclear(res);
  rows = find(s, ORM_INT8(u.id));
  assert_int_equal(orm_rows_count(rows), 0);
  orm_rows_free(rows);

  orm__params_free(&p);
  orm__arena_free(&arena);
  orm__model_sql_free(s);
}

/* The rest of the domain, with the extremes. Returns one agent's
 * id for later tests. */
static orm_uuid_t first_agent;

static void test_domain(void **state) {
  orm__model_sql_t *us = sql_of(user_model());
  orm__model_sql_t *as = sql_of(agent_model());
  orm__model_sql_t *cs = sql_of(conversation_model());
  orm__model_sql_t *ms = sql_of(message_model());
  orm__model_sql_t *ks = sql_of(knowledge_base_model());
  orm__model_sql_t *rs = sql_of(usage_record_model());
  orm__arena_t arena;
  orm__arena_init(&arena);

  user_t owner = {.email = "owner@example.com", .name = "Owner"};
  insert_row(us, &owner, &arena);

  /* Agents in one statement: enum, jsonb, text[], NaN and infinities. */
  char t0[] = "support", t1[] = "with \"quotes\", commas {braces}",
       t2[] = "日本", t3[] = "NULL", t4[] = "";
  char *tags_a[] = {t0, t1, NULL, t2, t3, t4};
  agent_t agents[4] = {
      {.owner_id = owner.id, .name = "helper", .model = "gpt-4o",
       .status = "active", .temperature = 0.7,
       .config = "{\"tools\": [\"search\"], \"quote\": \"'\\\"\"}",
       .tags = {tags_a, 6}},
      {.owner_id = owner.id, .name = "'; DROP TABLE agents; --",
       .model = "m", .status = "paused", .temperature = NAN,
       .config = "{}", .tags = {NULL, 0}},
      {.owner_id = owner.id, .name = "hot", .model = "m",
       .status = "retired", .temperature = INFINITY,
       .config = "[1, 2.50, null, true]", .tags = {tags_a, 1}},
      {.owner_id = owner.id, .name = "cold", .model = "m",
       .status = "active", .temperature = -INFINITY,
       .config = "\"just a string\"", .tags = {NULL, 0}},
  };
  orm_rows_t *inserted = insert_rows(as, agents, 4);
  /* RETURNING keeps the order of the arrays. */
  for (size_t i = 0; i < 4; i++) {
    const agent_t *a = orm_rows_at(inserted, i);
    assert_string_equal(a->name, agents[i].name);
    assert_string_equal(a->status, agents[i].status);
    assert_true(a->created_at > 0);
  }
  first_agent = ((const agent_t *)orm_rows_array(inserted))->id;
  compare_rows(as, inserted);
  orm_rows_free(inserted);
  /* One more through the single-row INSERT. */
  agent_t single = {.owner_id = owner.id, .name = "single", .model = "x",
                    .status = "paused", .temperature = -0.0,
                    .config = "{\"nested\": {\"a\": [1, {}]}}",
                    .tags = {tags_a + 3, 3}};
  insert_row(as, &single, &arena);
  orm_rows_t *agents_read = select_all(as);
  assert_int_equal(orm_rows_count(agents_read), 5);
  compare_rows(as, agents_read);
  orm_rows_free(agents_read);

  conversation_t conv[2] = {
      {.agent_id = first_agent, .user_id = owner.id, .title = "hello"},
      {.agent_id = first_agent, .user_id = owner.id,
       .ended_at = INT64_C(4102444800000000)}, /* 2100-01-01 */
  };
  ORM_SET_NULL(&conv[0], conversation, ended_at);
  ORM_SET_NULL(&conv[1], conversation, title);
  orm_rows_t *convs = insert_rows(cs, conv, 2);
  compare_rows(cs, convs);
  int64_t conv_id = ((const conversation_t *)orm_rows_array(convs))->id;
  orm_rows_free(convs);

  /* Messages: enum roles, json kept as stored, NULL tokens, a 1 MiB text. */
  size_t big_len = 1024 * 1024;
  char *big = malloc(big_len + 1);
  for (size_t i = 0; i < big_len; i++)
    big[i] = "abcdefghijklmnopqrstuvwxyz0123456789 ,.;'\"\\"[i % 43];
  big[big_len] = '\0';
  message_t msgs[4] = {
      {.conversation_id = conv_id, .role = "system", .content = "Be brief.",
       .tokens = 3, .metadata = "{\"a\" :  1,  \"a\": 2}"},
      {.conversation_id = conv_id, .role = "user", .content = hostile[4]},
      {.conversation_id = conv_id, .role = "assistant", .content = big,
       .tokens = INT32_MAX, .metadata = "[]"},
      {.conversation_id = conv_id, .role = "tool", .content = "",
       .tokens = INT32_MIN, .metadata = "null"},
  };
  ORM_SET_NULL(&msgs[1], message, tokens);
  ORM_SET_NULL(&msgs[1], message, metadata);
  for (int i = 0; i < 4; i++) { /* a human wrote the user's message */
    msgs[i].author_id = owner.id;
    if (i != 1)
      ORM_SET_NULL(&msgs[i], message, author_id);
    ORM_SET_NULL(&msgs[i], message, editor_id);
  }
  orm_rows_t *mrows = insert_rows(ms, msgs, 4);
  const message_t *m2 = orm_rows_at(mrows, 2);
  assert_int_equal(strlen(m2->content), big_len);
  assert_string_equal(m2->content, big);
  /* json keeps its text exactly (duplicate keys, spacing). */
  assert_string_equal(((const message_t *)orm_rows_array(mrows))->metadata,
                      "{\"a\" :  1,  \"a\": 2}");
  compare_rows(ms, mrows);
  orm_rows_free(mrows);
  free(big);

  /* Knowledge bases: int2 extremes, int8[] with NULLs, timestamps far out. */
  int64_t ids_a[] = {INT64_MIN, 0, INT64_MAX};
  bool nulls_a[] = {false, true, false};
  knowledge_base_t kbs[3] = {
      {.agent_id = first_agent, .name = "docs", .description = "all docs",
       .embedding_dim = INT16_MAX, .document_ids = {ids_a, nulls_a, 3},
       .is_public = true, .refreshed_at = -INT64_C(30610224000000000)},
      {.agent_id = first_agent, .name = "empty", .embedding_dim = INT16_MIN,
       .document_ids = {NULL, NULL, 0}, .is_public = false,
       .refreshed_at = INT64_MAX},
      {.agent_id = first_agent, .name = "future", .embedding_dim = 0,
       .document_ids = {ids_a, NULL, 2}, .is_public = false,
       .refreshed_at = INT64_C(253402300799999999)}, /* 9999-12-31 */
  };
  ORM_SET_NULL(&kbs[1], knowledge_base, description);
  orm_rows_t *krows = insert_rows(ks, kbs, 3);
  compare_rows(ks, krows);
  orm_rows_free(krows);
  knowledge_base_t kb_null = {.agent_id = first_agent, .name = "nulls",
                              .embedding_dim = 1, .document_ids = {0}};
  ORM_SET_NULL(&kb_null, knowledge_base, description);
  ORM_SET_NULL(&kb_null, knowledge_base, refreshed_at);
  insert_row(ks, &kb_null, &arena);

  /* Usage: dates before 2000 and far ahead, numeric of 30 digits, float4
   * NaN and infinity, bytea with zero bytes, a NULL foreign key. */
  uint8_t digest[] = {0, 1, 0, 0xff, 0, 'x', 0};
  usage_record_t recs[4] = {
      {.user_id = owner.id, .agent_id = first_agent, .day = -25567,
       .prompt_tokens = 1, .completion_tokens = 2,
       .cost = "123456789012345678.123456789012", .latency_ms = 12.5f,
       .request_digest = {digest, sizeof digest}},
      {.user_id = owner.id, .day = 2932896, /* 9999-12-31 */
       .prompt_tokens = 0, .completion_tokens = 0, .cost = "-0.000000000001",
       .latency_ms = NAN, .request_digest = {NULL, 0}},
      {.user_id = owner.id, .agent_id = first_agent, .day = INT32_MAX,
       .prompt_tokens = INT32_MAX, .completion_tokens = INT32_MIN,
       .cost = "0", .latency_ms = INFINITY},
      {.user_id = owner.id, .agent_id = first_agent, .day = 10957,
       .prompt_tokens = 7, .completion_tokens = 7, .cost = "1e-3"},
  };
  ORM_SET_NULL(&recs[1], usage_record, agent_id);
  ORM_SET_NULL(&recs[2], usage_record, request_digest);
  ORM_SET_NULL(&recs[3], usage_record, latency_ms);
  ORM_SET_NULL(&recs[3], usage_record, request_digest);
  for (int i = 0; i < 4; i++)
    ORM_SET_NULL(&recs[i], usage_record, message_id);
  orm_rows_t *rrows = insert_rows(rs, recs, 4);
  const usage_record_t *r0 = orm_rows_array(rrows);
  assert_string_equal(r0->cost, "123456789012345678.123456789012");
  assert_int_equal(r0->request_digest.len, sizeof digest);
  assert_memory_equal(r0->request_digest.data, digest, sizeof digest);
  /* numeric(30, 12) pads the scale. */
  assert_string_equal(((const usage_record_t *)orm_rows_at(rrows, 3))->cost,
                      "0.001000000000");
  const usage_record_t *r1 = orm_rows_at(rrows, 1);
  assert_int_equal(r1->request_digest.len, 0);
  assert_non_null(r1->request_digest.data);
  assert_false(ORM_IS_NULL(r1, usage_record, request_digest));
  assert_true(ORM_IS_NULL(r1, usage_record, agent_id));
  compare_rows(rs, rrows);
  orm_rows_free(rrows);

  /* Every table is intact after all the hostile text. */
  assert_int_equal(count_rows("agents"), 5);
  assert_int_equal(count_rows("messages"), 4);
  assert_int_equal(count_rows("knowledge_bases"), 4);
  assert_int_equal(count_rows("usage_records"), 4);

  orm__arena_free(&arena);
  orm__model_sql_t *all[] = {us, as, cs, ms, ks, rs};
  for (size_t i = 0; i < 6; i++)
    orm__model_sql_free(all[i]);
}

/* A descriptor that disagrees with its table. */
typedef struct {
  int64_t id;
  int64_t email; /* text in the table */
  uint64_t nulls;
} wrong_user_t;

static void test_type_mismatch(void **state) {
  static const orm_field_t fields[] = {
      {"id", ORM_T_INT8, offsetof(wrong_user_t, id), 8, ORM_F_PK},
      {"email", ORM_T_INT8, offsetof(wrong_user_t, email), 8, 0},
  };
  static const orm_model_t wrong = {NULL, "users", fields, 2,
                                    sizeof(wrong_user_t),
                                    offsetof(wrong_user_t, nulls), NULL, 0, false, NULL};
  orm__model_sql_t *s = sql_of(&wrong);
  PGresult *res = run_ok(s->find_all.sql, NULL, 0, 1);
  orm_rows_t *rows;
  orm_model_error_t err;
  assert_int_equal(orm__hydrate(&rows, &wrong, res, &err), ORM_ETYPE);
  assert_null(rows);
  assert_int_equal(err.column, 1);
  assert_int_equal(err.field, 1);
  if (strstr(err.message, "column \"email\"") == NULL ||
      strstr(err.message, "text") == NULL)
    fail_msg("message does not name the column and type: %s", err.message);
  PQclear(res);
  /* A text-format result is refused too. */
  res = run_ok(s->find_all.sql, NULL, 0, 0);
  assert_int_equal(orm__hydrate(&rows, &wrong, res, &err), ORM_ETYPE);
  PQclear(res);
  orm__model_sql_free(s);

  /* timestamptz declared, timestamp in the table. */
  static const orm_field_t kb_fields[] = {
      {"id", ORM_T_INT8, offsetof(wrong_user_t, id), 8, ORM_F_PK},
      {"refreshed_at", ORM_T_TIMESTAMPTZ, offsetof(wrong_user_t, email), 8,
       0},
  };
  static const orm_model_t wrong_kb = {NULL, "knowledge_bases", kb_fields, 2,
                                       sizeof(wrong_user_t),
                                       offsetof(wrong_user_t, nulls), NULL, 0, false, NULL};
  s = sql_of(&wrong_kb);
  res = run_ok(s->find_all.sql, NULL, 0, 1);
  assert_int_equal(orm__hydrate(&rows, &wrong_kb, res, &err), ORM_ETYPE);
  assert_non_null(strstr(err.message, "\"refreshed_at\""));
  PQclear(res);
  orm__model_sql_free(s);
}

/* Builder queries run on the server. */
static orm_rows_t *run_query(orm_query_t *q, const orm_model_t *model) {
  const char *sql;
  const orm_param_t *params;
  size_t n;
  assert_int_equal(orm_query_sql(q, ORM_QUERY_SELECT, &sql, &params, &n), 0);
  PGresult *res = run_ok(sql, params, n, 1);
  orm_rows_t *rows;
  orm_model_error_t err;
  if (orm__hydrate(&rows, model, res, &err) != 0)
    fail_msg("hydrate: %s", err.message);
  PQclear(res);
  return rows;
}

static int64_t run_scalar(orm_query_t *q, orm_query_kind_t kind) {
  const char *sql;
  const orm_param_t *params;
  size_t n;
  assert_int_equal(orm_query_sql(q, kind, &sql, &params, &n), 0);
  PGresult *res = run_ok(sql, params, n, 0);
  const char *v = PQgetvalue(res, 0, 0);
  int64_t out = kind == ORM_QUERY_EXISTS ? v[0] == 't' : strtoll(v, NULL, 10);
  PQclear(res);
  return out;
}

static void test_builder(void **state) {
  /* The hostile name, found through the builder. */
  orm_query_t *q;
  assert_int_equal(orm_query_new(&q, user_model()), 0);
  assert_int_equal(
      orm_query_where(q, "name", ORM_OP_EQ, ORM_TEXT(hostile[0])), 0);
  orm_rows_t *rows = run_query(q, user_model());
  assert_int_equal(orm_rows_count(rows), 1);
  assert_int_equal(((const user_t *)orm_rows_array(rows))->id, user_ids[0]);
  orm_rows_free(rows);
  orm_query_free(q);

  /* Keyset pagination over the users, two at a time, newest id first. */
  assert_int_equal(orm_query_new(&q, user_model()), 0);
  assert_int_equal(orm_query_where(q, "email", ORM_OP_LIKE,
                                   ORM_TEXT("user%@example.com")),
                   0);
  assert_int_equal(orm_query_order_by(q, "id", ORM_DESC), 0);
  assert_int_equal(orm_query_limit(q, 2), 0);
  assert_int_equal(run_scalar(q, ORM_QUERY_COUNT), 2);
  assert_int_equal(run_scalar(q, ORM_QUERY_EXISTS), 1);
  rows = run_query(q, user_model());
  orm_query_free(q);
  size_t seen = orm_rows_count(rows);
  int64_t last = ((const user_t *)orm_rows_at(rows, seen - 1))->id;
  orm_rows_free(rows);
  while (true) {
    assert_int_equal(orm_query_new(&q, user_model()), 0);
    assert_int_equal(orm_query_where(q, "email", ORM_OP_LIKE,
                                     ORM_TEXT("user%@example.com")),
                     0);
    assert_int_equal(orm_query_order_by(q, "id", ORM_DESC), 0);
    assert_int_equal(orm_query_after(q, &ORM_INT8(last), 1), 0);
    assert_int_equal(orm_query_limit(q, 2), 0);
    rows = run_query(q, user_model());
    orm_query_free(q);
    size_t n = orm_rows_count(rows);
    for (size_t i = 0; i < n; i++) {
      int64_t id = ((const user_t *)orm_rows_at(rows, i))->id;
      assert_true(id < last);
      last = id;
    }
    orm_rows_free(rows);
    seen += n;
    if (n < 2)
      break;
  }
  assert_int_equal(seen, sizeof hostile / sizeof hostile[0]);

  /* IN over an enum (untyped array literal), groups, IS NULL. */
  assert_int_equal(orm_query_new(&q, message_model()), 0);
  orm_param_t roles[] = {ORM_TEXT("user"), ORM_TEXT("tool")};
  assert_int_equal(orm_query_where_in(q, "role", roles, 2), 0);
  assert_int_equal(orm_query_or(q), 0);
  assert_int_equal(orm_query_where_null(q, "tokens"), 0);
  assert_int_equal(orm_query_where(q, "tokens", ORM_OP_LT, ORM_INT4(0)), 0);
  assert_int_equal(orm_query_end(q), 0);
  assert_int_equal(orm_query_order_by(q, "id", ORM_ASC), 0);
  rows = run_query(q, message_model());
  assert_int_equal(orm_rows_count(rows), 2);
  assert_string_equal(((const message_t *)orm_rows_at(rows, 0))->role, "user");
  assert_string_equal(((const message_t *)orm_rows_at(rows, 1))->role, "tool");
  orm_rows_free(rows);
  orm_query_free(q);

  /* uuid keys as text and as binary, enum equality, float comparisons,
   * FOR UPDATE in a transaction. */
  char uuid_text[40];
  format_uuid(uuid_text, &first_agent);
  assert_int_equal(orm_query_new(&q, agent_model()), 0);
  orm_param_t keys[] = {ORM_TEXT(uuid_text),
                        ORM_TEXT("00000000-0000-0000-0000-000000000000")};
  assert_int_equal(orm_query_where_in(q, "id", keys, 2), 0);
  assert_int_equal(orm_query_where(q, "status", ORM_OP_EQ, ORM_TEXT("active")),
                   0);
  assert_int_equal(orm_query_where(q, "temperature", ORM_OP_LT,
                                   ORM_FLOAT8(1.0)),
                   0);
  assert_int_equal(orm_query_for_update(q), 0);
  orm_fx_sql(&fx, "BEGIN");
  rows = run_query(q, agent_model());
  orm_fx_sql(&fx, "COMMIT");
  assert_int_equal(orm_rows_count(rows), 1);
  assert_memory_equal(((const agent_t *)orm_rows_array(rows))->id.bytes,
                      first_agent.bytes, 16);
  orm_rows_free(rows);
  orm_query_free(q);
  assert_int_equal(orm_query_new(&q, agent_model()), 0);
  assert_int_equal(
      orm_query_where(q, "id", ORM_OP_EQ,
                      ORM_BINARY(2950, first_agent.bytes, 16)),
      0);
  rows = run_query(q, agent_model());
  assert_int_equal(orm_rows_count(rows), 1);
  orm_rows_free(rows);
  orm_query_free(q);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_users),
      cmocka_unit_test(test_crud),
      cmocka_unit_test(test_domain),
      cmocka_unit_test(test_type_mismatch),
      cmocka_unit_test(test_builder),
  };
  return orm_run_group_tests(tests, group_setup, group_teardown);
}
