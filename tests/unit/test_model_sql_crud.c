/* SPDX-License-Identifier: MIT */
/* Models without a server (support/odd_model.h): descriptor checks, the
 * exact SQL of every CRUD statement, and out-of-memory sweeps over building
 * it. */
#include "alloc_fault.h"
#include "harness.h"
#include "odd_model.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uvorm.h>
#include <uvorm/model.h>

#include "base/alloc.h"
#include "model/params.h"
#include "model/sql.h"

/* The sample domain's models, compiled into this test. */
#include "domain.h"

/* ---- descriptors -------------------------------------------------------- */

static void test_declared_models(void **state) {
  const orm_model_t *models[] = {user_model(),         agent_model(),
                                 conversation_model(), message_model(),
                                 knowledge_base_model(), usage_record_model(),
                                 &odd_model};
  for (size_t i = 0; i < sizeof models / sizeof models[0]; i++)
    assert_int_equal(orm_model_check(models[i]), 0);
  assert_ptr_equal(user_model(), user_model());

  const orm_model_t *u = user_model();
  assert_string_equal(u->table, "users");
  assert_null(u->schema);
  assert_int_equal(u->nfields, 4);
  assert_int_equal(u->struct_size, sizeof(user_t));
  assert_int_equal(u->nulls_offset, offsetof(user_t, orm_nulls));
  assert_string_equal(u->fields[1].column, "email");
  assert_int_equal(u->fields[1].type, ORM_T_TEXT);
  assert_int_equal(u->fields[1].offset, offsetof(user_t, email));
  assert_int_equal(u->fields[1].size, sizeof(char *));
  assert_int_equal(u->fields[1].flags, ORM_F_UNIQUE);
  assert_int_equal(u->fields[0].flags, ORM_F_PK | ORM_F_GENERATED);
  assert_int_equal(orm_model_pk(u), 0);
  assert_int_equal(orm_model_field(u, "name"), 2);
  assert_int_equal(orm_model_field(u, "Name"), ORM_ENOCOLUMN);
  assert_int_equal(orm_model_field(u, NULL), ORM_EINVAL);

  /* Field indexes are constants; the null bitmap works by name and by
   * index alike. */
  _Static_assert(ORM_FIELD(user, created_at) == 3, "field index");
  _Static_assert(ORM_FIELD(agent, tags) == 7, "field index");
  user_t row = {0};
  assert_false(ORM_IS_NULL(&row, user, name));
  ORM_SET_NULL(&row, user, name);
  assert_true(ORM_IS_NULL(&row, user, name));
  assert_true(orm_row_is_null(u, &row, 2));
  assert_false(orm_row_is_null(u, &row, 1));
  orm_row_set_null(u, &row, 3, true);
  assert_true(ORM_IS_NULL(&row, user, created_at));
  ORM_SET_NOT_NULL(&row, user, name);
  assert_false(orm_row_is_null(u, &row, 2));
  assert_int_equal(row.orm_nulls, ORM_FIELD_BIT(user, created_at));
}

/* Each defect, applied to a copy of a good descriptor. */
typedef struct {
  const char *what;
  orm_model_t model;
  orm_field_t fields[4];
} broken_t;

static void start_broken(broken_t *b, const char *what) {
  b->what = what;
  b->model = odd_model;
  memcpy(b->fields, odd_fields, sizeof odd_fields);
  b->model.fields = b->fields;
}

static void expect_rejected(broken_t *b) {
  orm_model_error_t err;
  int rc = orm_model_check_detail(&b->model, &err);
  if (rc != ORM_EMODEL)
    fail_msg("%s: accepted (%d)", b->what, rc);
  assert_int_equal(err.code, ORM_EMODEL);
  assert_true(strlen(err.message) > 0);
  assert_int_equal(orm_model_check(&b->model), ORM_EMODEL);
  /* Every entry point that takes a model checks it. */
  orm_query_t *q = (orm_query_t *)&b; /* poisoned: must be reset to NULL */
  assert_int_equal(orm_query_new(&q, &b->model), ORM_EMODEL);
  assert_null(q);
  orm__model_sql_t *sql = (orm__model_sql_t *)&b;
  assert_int_equal(orm__model_sql_new(&sql, &b->model, NULL), ORM_EMODEL);
  assert_null(sql);
}

static void test_bad_descriptors(void **state) {
  broken_t b;
  assert_int_equal(orm_model_check(NULL), ORM_EMODEL);

  start_broken(&b, "no table");
  b.model.table = NULL;
  expect_rejected(&b);
  start_broken(&b, "empty table");
  b.model.table = "";
  expect_rejected(&b);
  start_broken(&b, "table name too long");
  b.model.table = "a_table_name_that_is_much_longer_than_the_servers_limit_of_"
                  "63_bytes";
  expect_rejected(&b);
  start_broken(&b, "empty schema");
  b.model.schema = "";
  expect_rejected(&b);
  start_broken(&b, "no fields array");
  b.model.fields = NULL;
  expect_rejected(&b);
  start_broken(&b, "zero fields");
  b.model.nfields = 0;
  expect_rejected(&b);
  start_broken(&b, "too many fields");
  b.model.nfields = ORM_MODEL_MAX_FIELDS + 1;
  expect_rejected(&b);
  start_broken(&b, "NULL column name");
  b.fields[2].column = NULL;
  expect_rejected(&b);
  start_broken(&b, "empty column name");
  b.fields[2].column = "";
  expect_rejected(&b);
  start_broken(&b, "type 0");
  b.fields[3].type = (orm_type_t)0;
  expect_rejected(&b);
  start_broken(&b, "type past the end");
  b.fields[3].type = ORM_T_COUNT_;
  expect_rejected(&b);
  start_broken(&b, "size does not match type");
  b.fields[0].size = 4;
  expect_rejected(&b);
  start_broken(&b, "type does not match size");
  b.fields[0].type = ORM_T_INT4;
  expect_rejected(&b);
  start_broken(&b, "field outside the struct");
  b.fields[0].offset = sizeof(odd_t);
  expect_rejected(&b);
  start_broken(&b, "huge offset");
  b.fields[0].offset = SIZE_MAX - 2;
  expect_rejected(&b);
  start_broken(&b, "misaligned field");
  b.fields[2].offset = offsetof(odd_t, small) + 1;
  expect_rejected(&b);
  start_broken(&b, "overlapping fields");
  b.fields[3].offset = offsetof(odd_t, small);
  b.fields[3].type = ORM_T_BOOL;
  expect_rejected(&b);
  start_broken(&b, "field over the null bitmap");
  b.fields[0].offset = offsetof(odd_t, nulls);
  expect_rejected(&b);
  start_broken(&b, "null bitmap outside the struct");
  b.model.nulls_offset = sizeof(odd_t);
  expect_rejected(&b);
  start_broken(&b, "misaligned null bitmap");
  b.model.nulls_offset = offsetof(odd_t, nulls) - 4;
  expect_rejected(&b);
  start_broken(&b, "struct too small");
  b.model.struct_size = 8;
  expect_rejected(&b);
  start_broken(&b, "duplicate column");
  b.fields[3].column = "small one";
  expect_rejected(&b);
  start_broken(&b, "unknown flag");
  b.fields[3].flags = 0x100;
  expect_rejected(&b);
  start_broken(&b, "no primary key");
  b.fields[0].flags = 0;
  expect_rejected(&b);
  start_broken(&b, "two primary keys");
  b.fields[2].flags = ORM_F_PK;
  expect_rejected(&b);
  start_broken(&b, "nullable primary key");
  b.fields[0].flags = ORM_F_PK | ORM_F_NULLABLE;
  expect_rejected(&b);

  /* The message names what is wrong. */
  orm_model_error_t err;
  start_broken(&b, "duplicate");
  b.fields[3].column = "Key";
  assert_int_equal(orm_model_check_detail(&b.model, &err), ORM_EMODEL);
  assert_non_null(strstr(err.message, "\"Key\" appears twice"));
  assert_int_equal(err.field, 3);
}

/* ---- CRUD SQL ----------------------------------------------------------- */

static void test_crud_sql_users(void **state) {
  orm__model_sql_t *s;
  assert_int_equal(orm__model_sql_new(&s, user_model(), NULL), 0);
  assert_int_equal(s->pk, 0);
  assert_string_equal(s->columns, USER_COLS);
  assert_string_equal(s->find.sql,
                      "SELECT " USER_COLS " FROM \"users\" WHERE \"id\" = $1");
  assert_int_equal(s->find.fields, 0);
  assert_int_equal(s->find.key, 0);
  assert_string_equal(s->find_all.sql,
                      "SELECT " USER_COLS " FROM \"users\" ORDER BY \"id\"");
  assert_int_equal(s->find_all.key, -1);
  assert_string_equal(s->count.sql, "SELECT count(*) FROM \"users\"");
  assert_string_equal(s->exists.sql,
                      "SELECT EXISTS (SELECT 1 FROM \"users\")");
  assert_int_equal(s->exists.key, -1);
  assert_string_equal(s->insert.sql,
                      "INSERT INTO \"users\" (\"email\", \"name\") VALUES "
                      "($1, $2) RETURNING " USER_COLS);
  assert_int_equal(s->insert.fields, ORM_FIELD_BIT(user, email) |
                                         ORM_FIELD_BIT(user, name));
  assert_int_equal(s->insert.key, -1);
  assert_string_equal(
      s->insert_many.sql,
      "INSERT INTO \"users\" (\"email\", \"name\") SELECT u.\"email\", "
      "u.\"name\" FROM unnest($1::text[], $2::text[]) AS u(\"email\", "
      "\"name\") RETURNING " USER_COLS);
  assert_int_equal(s->insert_many.fields, s->insert.fields);
  assert_string_equal(s->update.sql,
                      "UPDATE \"users\" SET \"email\" = $1, \"name\" = $2 "
                      "WHERE \"id\" = $3 RETURNING " USER_COLS);
  assert_int_equal(s->update.fields, s->insert.fields);
  assert_int_equal(s->update.key, 0);
  assert_string_equal(s->remove.sql, "DELETE FROM \"users\" WHERE \"id\" = $1");
  assert_int_equal(s->remove.key, 0);
  assert_string_equal(s->find_by[1].sql, "SELECT " USER_COLS
                                         " FROM \"users\" WHERE \"email\" = $1");
  assert_int_equal(s->find_by[1].key, 1);
  assert_string_equal(s->find_by[3].sql,
                      "SELECT " USER_COLS
                      " FROM \"users\" WHERE \"created_at\" = $1");
  assert_string_equal(
      s->upsert[0].sql,
      "INSERT INTO \"users\" (\"id\", \"email\", \"name\") VALUES ($1, $2, "
      "$3) ON CONFLICT (\"id\") DO UPDATE SET \"email\" = EXCLUDED.\"email\", "
      "\"name\" = EXCLUDED.\"name\" RETURNING " USER_COLS);
  assert_int_equal(s->upsert[0].fields, 0x7);
  assert_string_equal(
      s->upsert[1].sql,
      "INSERT INTO \"users\" (\"email\", \"name\") VALUES ($1, $2) ON "
      "CONFLICT (\"email\") DO UPDATE SET \"name\" = EXCLUDED.\"name\" "
      "RETURNING " USER_COLS);
  assert_null(s->upsert[2].sql); /* not a key */
  assert_null(s->upsert[3].sql);

  orm__sql_stmt_t st;
  assert_int_equal(orm__model_sql_update_fields(
                       s, ORM_FIELD_BIT(user, name), &st),
                   0);
  assert_string_equal(st.sql, "UPDATE \"users\" SET \"name\" = $1 WHERE "
                              "\"id\" = $2 RETURNING " USER_COLS);
  assert_int_equal(st.fields, ORM_FIELD_BIT(user, name));
  assert_int_equal(st.key, 0);
  orm__free(st.sql);
  assert_int_equal(orm__model_sql_update_fields(
                       s, ORM_FIELD_BIT(user, name) | ORM_FIELD_BIT(user, id),
                       &st),
                   ORM_EINVAL);
  assert_int_equal(orm__model_sql_update_fields(s, 0, &st), ORM_EINVAL);
  assert_int_equal(orm__model_sql_update_fields(s, UINT64_C(1) << 4, &st),
                   ORM_EINVAL);
  orm__model_sql_free(s);
}

/* UPDATEs of named fields are built once per mask and kept for the last
 * ORM__UPDATE_MASKS masks used. */
static void test_update_masks_cached(void **state) {
  orm__model_sql_t *s;
  assert_int_equal(orm__model_sql_new(&s, agent_model(), NULL), 0);
  orm__sql_stmt_t *a, *b, *again;
  assert_int_equal(orm__model_sql_update_cached(s, UINT64_C(1) << 2, &a), 0);
  assert_string_equal(a->sql, "UPDATE \"agents\" SET \"name\" = $1 WHERE "
                              "\"id\" = $2 RETURNING " AGENT_COLS);
  assert_int_equal(orm__model_sql_update_cached(s, UINT64_C(1) << 2, &again), 0);
  assert_ptr_equal(again, a); /* built once */
  assert_int_equal(orm__model_sql_update_cached(s, 0, &b), ORM_EINVAL);
  assert_int_equal(orm__model_sql_update_cached(s, 1, &b), ORM_EINVAL); /* pk */
  /* Seven more masks fill the cache; the eighth evicts the oldest. */
  for (int f = 1; f <= 8; f++)
    if (f != 2)
      assert_int_equal(orm__model_sql_update_cached(s, UINT64_C(1) << f, &b), 0);
  assert_int_equal(orm__model_sql_update_cached(s, 0x6, &b), 0);
  assert_ptr_equal(b, a); /* the slot of the oldest, now another mask */
  assert_int_equal(b->fields, 0x6);
  assert_int_equal(orm__model_sql_update_cached(s, UINT64_C(1) << 2, &b), 0);
  assert_string_equal(b->sql, "UPDATE \"agents\" SET \"name\" = $1 WHERE "
                              "\"id\" = $2 RETURNING " AGENT_COLS);
  orm__model_sql_free(s);
}

/* Many rows' UPDATE: the fields and the key as arrays, an enum through the
 * row type, an array column from its literal; cached per mask. */
static void test_update_many_sql(void **state) {
  orm__model_sql_t *s;
  assert_int_equal(orm__model_sql_new(&s, agent_model(), NULL), 0);
  orm__sql_stmt_t *a, *again;
  uint64_t mask = ORM_FIELD_BIT(agent, name) | ORM_FIELD_BIT(agent, status) |
                  ORM_FIELD_BIT(agent, tags);
  assert_int_equal(orm__model_sql_update_many_cached(s, mask, &a), 0);
  assert_string_equal(
      a->sql,
      "UPDATE \"agents\" AS t SET \"name\" = u.\"name\", \"status\" = "
      "(json_populate_record(NULL::\"agents\", json_build_object(E'status', "
      "u.\"status\"))).\"status\", \"tags\" = u.\"tags\"::text[] FROM "
      "unnest($1::uuid[], $2::text[], $3::text[], $4::text[]) AS u(\"id\", "
      "\"name\", \"status\", \"tags\") WHERE t.\"id\" = u.\"id\" RETURNING "
      "t.\"id\", t.\"owner_id\", t.\"name\", t.\"model\", t.\"status\", "
      "t.\"temperature\", t.\"config\", t.\"tags\", t.\"created_at\"");
  assert_int_equal(a->fields, mask | ORM_FIELD_BIT(agent, id));
  assert_int_equal(a->key, -1);
  assert_int_equal(orm__model_sql_update_many_cached(s, mask, &again), 0);
  assert_ptr_equal(again, a);
  assert_int_equal(orm__model_sql_update_many_cached(s, 0, &again), ORM_EINVAL);
  assert_int_equal(orm__model_sql_update_many_cached(
                       s, ORM_FIELD_BIT(agent, id), &again),
                   ORM_EINVAL);
  orm__model_sql_free(s);
}

static void test_crud_sql_agents(void **state) {
  orm__model_sql_t *s;
  assert_int_equal(orm__model_sql_new(&s, agent_model(), NULL), 0);
  assert_string_equal(s->insert.sql,
                      "INSERT INTO \"agents\" (\"owner_id\", \"name\", "
                      "\"model\", \"status\", \"temperature\", \"config\", "
                      "\"tags\") VALUES ($1, $2, $3, $4, $5, $6, $7) "
                      "RETURNING " AGENT_COLS);
  /* Enums convert through the table's row type, arrays through literals. */
  assert_string_equal(
      s->insert_many.sql,
      "INSERT INTO \"agents\" (\"owner_id\", \"name\", \"model\", \"status\", "
      "\"temperature\", \"config\", \"tags\") SELECT u.\"owner_id\", "
      "u.\"name\", u.\"model\", (json_populate_record(NULL::\"agents\", "
      "json_build_object(E'status', u.\"status\"))).\"status\", "
      "u.\"temperature\", u.\"config\", u.\"tags\"::text[] FROM "
      "unnest($1::int8[], $2::text[], $3::text[], $4::text[], $5::float8[], "
      "$6::jsonb[], $7::text[]) AS u(\"owner_id\", \"name\", \"model\", "
      "\"status\", \"temperature\", \"config\", \"tags\") RETURNING " AGENT_COLS);
  assert_string_equal(
      s->update.sql,
      "UPDATE \"agents\" SET \"owner_id\" = $1, \"name\" = $2, \"model\" = "
      "$3, \"status\" = $4, \"temperature\" = $5, \"config\" = $6, \"tags\" = "
      "$7 WHERE \"id\" = $8 RETURNING " AGENT_COLS);
  orm__model_sql_free(s);

  /* A json column has no equality operator: no find_by for it. */
  assert_int_equal(orm__model_sql_new(&s, message_model(), NULL), 0);
  assert_null(s->find_by[ORM_FIELD(message, metadata)].sql);
  assert_non_null(s->find_by[ORM_FIELD(message, role)].sql);
  orm__model_sql_free(s);

  /* int[] columns travel as literals cast back to int8[]. */
  assert_int_equal(orm__model_sql_new(&s, knowledge_base_model(), NULL), 0);
  assert_non_null(strstr(s->insert_many.sql, "u.\"document_ids\"::int8[]"));
  assert_non_null(strstr(s->insert_many.sql,
                         "unnest($1::uuid[], $2::text[], $3::text[], "
                         "$4::int2[], $5::text[], $6::bool[], "
                         "$7::timestamp[])"));
  orm__model_sql_free(s);
  assert_int_equal(orm__model_sql_new(&s, usage_record_model(), NULL), 0);
  assert_non_null(strstr(s->insert_many.sql,
                         "unnest($1::int8[], $2::uuid[], $3::date[], "
                         "$4::int4[], $5::int4[], $6::numeric[], "
                         "$7::float4[], $8::bytea[], $9::int8[])"));
  orm__model_sql_free(s);
}

static void test_crud_sql_quoting(void **state) {
  orm__model_sql_t *s;
  assert_int_equal(orm__model_sql_new(&s, &odd_model, NULL), 0);
  assert_string_equal(s->find.sql, "SELECT " ODD_COLS " FROM " ODD_TABLE
                                   " WHERE \"Key\" = $1");
  assert_string_equal(s->insert.sql, "INSERT INTO " ODD_TABLE " (" ODD_COLS
                                     ") VALUES ($1, $2, $3, $4) RETURNING "
                                     ODD_COLS);
  assert_string_equal(s->upsert[1].sql,
                      "INSERT INTO " ODD_TABLE " (" ODD_COLS
                      ") VALUES ($1, $2, $3, $4) ON CONFLICT (\"la\"\"bel\") "
                      "DO UPDATE SET \"small one\" = EXCLUDED.\"small one\", "
                      "\"flag\" = EXCLUDED.\"flag\" RETURNING " ODD_COLS);
  assert_string_equal(s->remove.sql,
                      "DELETE FROM " ODD_TABLE " WHERE \"Key\" = $1");
  orm__model_sql_free(s);
}

/* A model whose every column is generated: no INSERT column list. */
typedef struct {
  int64_t id;
  int64_t at;
  uint64_t nulls;
} stamp_t;

static void test_crud_sql_all_generated(void **state) {
  static const orm_field_t fields[] = {
      {"id", ORM_T_INT8, offsetof(stamp_t, id), 8, ORM_F_PK | ORM_F_GENERATED},
      {"at", ORM_T_TIMESTAMPTZ, offsetof(stamp_t, at), 8, ORM_F_GENERATED},
  };
  static const orm_model_t model = {NULL, "stamps", fields, 2, sizeof(stamp_t),
                                    offsetof(stamp_t, nulls), NULL, 0, false, NULL};
  orm__model_sql_t *s;
  assert_int_equal(orm__model_sql_new(&s, &model, NULL), 0);
  assert_string_equal(s->insert.sql, "INSERT INTO \"stamps\" DEFAULT VALUES "
                                     "RETURNING \"id\", \"at\"");
  assert_null(s->insert_many.sql);
  assert_null(s->update.sql);
  /* An upsert on the key inserts the key even though it is generated. */
  assert_string_equal(s->upsert[0].sql,
                      "INSERT INTO \"stamps\" (\"id\") VALUES ($1) ON CONFLICT "
                      "(\"id\") DO UPDATE SET \"id\" = EXCLUDED.\"id\" "
                      "RETURNING \"id\", \"at\"");
  orm__model_sql_free(s);
}


/* ---- out of memory ------------------------------------------------------ */

static void test_oom_model_sql(void **state) {
  const orm_model_t *models[] = {user_model(), agent_model(), &odd_model};
  for (size_t m = 0; m < sizeof models / sizeof models[0]; m++) {
    for (long budget = 0;; budget++) {
      assert_true(budget < 1000);
      orm_test_alloc_fail(ORM_TEST_ALLOC_FAIL_FROM_N, budget);
      orm__model_sql_t *s;
      int rc = orm__model_sql_new(&s, models[m], NULL);
      orm_test_alloc_fail_none();
      if (rc == 0) {
        assert_non_null(s->upsert[orm_model_pk(models[m])].sql);
        orm__model_sql_free(s);
        assert_int_equal(orm_test_alloc_live(), 0);
        break;
      }
      assert_int_equal(rc, ORM_ENOMEM);
      assert_null(s);
      assert_int_equal(orm_test_alloc_live(), 0);
    }
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
/* The library's memory goes through the test allocator (alloc_fault.h). */
#define C(fn)                                                                  \
  cmocka_unit_test_setup_teardown(fn, orm_test_alloc_setup,                    \
                                  orm_test_alloc_teardown)
      C(test_declared_models),
      C(test_bad_descriptors),
      C(test_crud_sql_users),
      C(test_update_masks_cached),
      C(test_update_many_sql),
      C(test_crud_sql_agents),
      C(test_crud_sql_quoting),
      C(test_crud_sql_all_generated),
      C(test_oom_model_sql),
#undef C
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
