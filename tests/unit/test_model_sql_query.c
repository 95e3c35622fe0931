/* SPDX-License-Identifier: MIT */
/* Models without a server (support/odd_model.h): parameter encoding, the
 * exact SQL of builder queries, and out-of-memory sweeps over both. */
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

/* ---- parameters --------------------------------------------------------- */

static uint32_t be32(const char *p) {
  const unsigned char *u = (const unsigned char *)p;
  return (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 |
         u[3];
}

static void assert_bytes(const orm_param_t *p, const void *bytes, size_t len) {
  assert_int_equal(p->v.s.len, len);
  assert_memory_equal(p->v.s.ptr, bytes, len);
}

static void test_params_row(void **state) {
  orm__model_sql_t *s;
  assert_int_equal(orm__model_sql_new(&s, user_model(), NULL), 0);
  orm__params_t p = {0};

  /* NULL by its bit, and a NULL string pointer is NULL too. */
  user_t u = {.id = 7, .email = "a@b.c", .name = "ignored"};
  ORM_SET_NULL(&u, user, name);
  assert_int_equal(orm__params_bind_row(&p, user_model(), &s->update, &u), 0);
  assert_int_equal(p.len, 3);
  const orm_param_t *v = orm__params_finish(&p);
  assert_int_equal(v[0].kind, ORM_PARAM_BINARY);
  assert_int_equal(v[0].oid, 0); /* text: the server infers the column's type */
  assert_bytes(&v[0], "a@b.c", 5);
  assert_int_equal(v[1].kind, ORM_PARAM_NULL);
  assert_int_equal(v[2].kind, ORM_PARAM_BINARY);
  assert_int_equal(v[2].oid, 20);
  assert_bytes(&v[2], "\0\0\0\0\0\0\0\7", 8);

  orm__params_reset(&p);
  user_t blank = {.email = NULL, .name = ""};
  assert_int_equal(orm__params_bind_row(&p, user_model(), &s->insert, &blank),
                   0);
  v = orm__params_finish(&p);
  assert_int_equal(v[0].kind, ORM_PARAM_NULL);
  assert_int_equal(v[1].kind, ORM_PARAM_BINARY); /* "" stays "" */
  assert_int_equal(v[1].v.s.len, 0);
  assert_non_null(v[1].v.s.ptr);

  /* insert_many: one array per column. */
  orm__params_reset(&p);
  user_t rows[3] = {{.email = "x"}, {.email = "y\"z", .name = "N"},
                    {.email = "w"}};
  ORM_SET_NULL(&rows[0], user, name);
  assert_int_equal(orm__params_bind_rows(&p, user_model(), &s->insert_many,
                                         rows, 3),
                   0);
  assert_int_equal(p.len, 2);
  v = orm__params_finish(&p);
  assert_int_equal(v[0].kind, ORM_PARAM_BINARY);
  assert_int_equal(v[0].oid, 1009); /* text[] */
  const char *a = v[0].v.s.ptr;
  assert_int_equal(be32(a), 1);      /* ndim */
  assert_int_equal(be32(a + 4), 0);  /* no NULL */
  assert_int_equal(be32(a + 8), 25); /* text elements */
  assert_int_equal(be32(a + 12), 3); /* three of them */
  assert_int_equal(be32(a + 16), 1); /* from subscript 1 */
  assert_int_equal(be32(a + 20), 1);
  assert_memory_equal(a + 24, "x", 1);
  assert_int_equal(be32(a + 25), 3);
  assert_memory_equal(a + 29, "y\"z", 3);
  assert_int_equal(v[0].v.s.len, 20 + 3 * 4 + 5);
  a = v[1].v.s.ptr;
  assert_int_equal(be32(a + 4), 1);          /* has NULL */
  assert_int_equal(be32(a + 20), UINT32_MAX); /* row 0: NULL */
  assert_int_equal(be32(a + 24), 1);
  assert_memory_equal(a + 28, "N", 1);
  assert_int_equal(be32(a + 29), UINT32_MAX); /* NULL pointer */

  /* No rows: empty arrays (no dimensions). */
  orm__params_reset(&p);
  assert_int_equal(orm__params_bind_rows(&p, user_model(), &s->insert_many,
                                         NULL, 0),
                   0);
  v = orm__params_finish(&p);
  assert_int_equal(v[0].v.s.len, 12);
  assert_int_equal(be32(v[0].v.s.ptr), 0);
  orm__params_free(&p);
  orm__model_sql_free(s);
}

static void test_params_agents(void **state) {
  orm__model_sql_t *s;
  assert_int_equal(orm__model_sql_new(&s, agent_model(), NULL), 0);
  orm__params_t p = {0};
  char t0[] = "a", t1[] = "b\"c\\d";
  char *tags[] = {t0, t1, NULL};
  agent_t ag = {.owner_id = 1,
                .name = "n",
                .model = "m",
                .status = "active",
                .temperature = 0.5,
                .config = "{}",
                .tags = {tags, 3}};
  assert_int_equal(orm__params_bind_row(&p, agent_model(), &s->insert, &ag), 0);
  const orm_param_t *v = orm__params_finish(&p);
  uint32_t oids[] = {20, 0, 0, 0, 701, 3802, 1009};
  assert_int_equal(p.len, 7);
  for (size_t i = 0; i < 7; i++) {
    assert_int_equal(v[i].kind, ORM_PARAM_BINARY);
    assert_int_equal(v[i].oid, oids[i]);
  }
  assert_bytes(&v[5], "\1{}", 3); /* jsonb version 1 */

  /* An array column in insert_many is an array literal per row. */
  orm__params_reset(&p);
  assert_int_equal(orm__params_bind_rows(&p, agent_model(), &s->insert_many,
                                         &ag, 1),
                   0);
  v = orm__params_finish(&p);
  const char *a = v[6].v.s.ptr;
  const char lit[] = "{\"a\",\"b\\\"c\\\\d\",NULL}";
  assert_int_equal(be32(a + 20), sizeof lit - 1);
  assert_memory_equal(a + 24, lit, sizeof lit - 1);

  /* A bad value leaves the params as they were. */
  orm__params_reset(&p);
  ag.config = "{}";
  ag.tags.items = NULL; /* len 3 with no items */
  assert_int_equal(orm__params_bind_row(&p, agent_model(), &s->insert, &ag),
                   ORM_EINVAL);
  assert_int_equal(p.len, 0);
  assert_int_equal(p.buf.len, 0);
  orm__params_free(&p);
  orm__model_sql_free(s);
}

static void test_params_values(void **state) {
  orm__params_t p = {0};
  const orm_model_t *kb = knowledge_base_model();
  const orm_model_t *ur = usage_record_model();
  size_t dim = ORM_FIELD(knowledge_base, embedding_dim);
  assert_int_equal(orm__params_add_value(&p, kb, dim, &ORM_INT8(300)), 0);
  assert_int_equal(orm__params_add_value(&p, kb, dim, &ORM_INT8(40000)),
                   ORM_ERANGE);
  assert_int_equal(orm__params_add_value(&p, kb, dim, &ORM_BOOL(true)),
                   ORM_ETYPE);
  assert_int_equal(orm__params_add_value(&p, kb, dim, &ORM_FLOAT8(1.5)),
                   ORM_ETYPE);
  assert_int_equal(orm__params_add_value(&p, kb, dim, &ORM_NULL), ORM_EINVAL);
  size_t cost = ORM_FIELD(usage_record, cost);
  assert_int_equal(orm__params_add_value(&p, ur, cost, &ORM_INT8(-12)), 0);
  assert_int_equal(orm__params_add_value(&p, ur, cost, &ORM_FLOAT8(0.25)), 0);
  assert_int_equal(
      orm__params_add_value(&p, ur, cost, &ORM_TEXT("123456789012.123456")),
      0);
  assert_int_equal(orm__params_add_value(&p, ur, ORM_FIELD(usage_record, day),
                                         &ORM_INT4(19000)),
                   0);
  assert_int_equal(
      orm__params_add_value(&p, ur, ORM_FIELD(usage_record, request_digest),
                            &ORM_BYTEA("\0\1", 2)),
      0);
  assert_int_equal(orm__params_add_value(&p, ur, ORM_FIELD(usage_record, day),
                                         &ORM_TEXT_N("a\0b", 3)),
                   ORM_EINVAL);
  assert_int_equal(p.len, 6);
  const orm_param_t *v = orm__params_finish(&p);
  assert_int_equal(v[0].oid, 21);
  assert_bytes(&v[0], "\x01\x2c", 2);
  assert_int_equal(v[1].oid, 1700);
  assert_int_equal(v[2].oid, 1700);
  assert_int_equal(v[3].kind, ORM_PARAM_UNTYPED);
  assert_bytes(&v[3], "123456789012.123456", 19);
  assert_int_equal(v[4].oid, 1082);
  assert_int_equal(v[5].oid, 17);
  assert_bytes(&v[5], "\0\1", 2);

  /* IN lists: a binary array of the column's type, or an untyped literal. */
  orm__params_reset(&p);
  orm_param_t ids[] = {ORM_INT8(1), ORM_NULL, ORM_INT4(3)};
  assert_int_equal(orm__params_add_value_array(&p, kb, dim, ids, 3), 0);
  orm_param_t names[] = {ORM_TEXT("a"), ORM_TEXT("b\"c"), ORM_NULL,
                         ORM_UNTYPED("d\\e")};
  assert_int_equal(orm__params_add_value_array(
                       &p, kb, ORM_FIELD(knowledge_base, name), names, 4),
                   0);
  assert_int_equal(orm__params_add_value_array(
                       &p, kb, ORM_FIELD(knowledge_base, name), ids, 1),
                   ORM_ETYPE);
  assert_int_equal(orm__params_add_value_array(
                       &p, kb, ORM_FIELD(knowledge_base, document_ids), ids, 1),
                   ORM_ETYPE);
  v = orm__params_finish(&p);
  assert_int_equal(p.len, 2);
  assert_int_equal(v[0].oid, 1005); /* int2[] */
  const char *a = v[0].v.s.ptr;
  assert_int_equal(be32(a + 4), 1);
  assert_int_equal(be32(a + 8), 21);
  assert_int_equal(be32(a + 12), 3);
  assert_int_equal(be32(a + 20), 2);
  assert_int_equal(be32(a + 26), UINT32_MAX);
  assert_int_equal(v[1].kind, ORM_PARAM_UNTYPED);
  const char lit[] = "{\"a\",\"b\\\"c\",NULL,\"d\\\\e\"}";
  assert_bytes(&v[1], lit, sizeof lit - 1);
  orm__params_free(&p);
}

/* ---- the query builder -------------------------------------------------- */

typedef struct {
  const char *sql;
  const orm_param_t *params;
  size_t n;
} rendered_t;

static rendered_t render(orm_query_t *q, orm_query_kind_t kind) {
  rendered_t r = {0};
  assert_int_equal(orm_query_sql(q, kind, &r.sql, &r.params, &r.n), 0);
  return r;
}

static void test_query_simple(void **state) {
  orm_query_t *q;
  assert_int_equal(orm_query_new(&q, user_model()), 0);
  assert_ptr_equal(orm_query_model(q), user_model());
  rendered_t r = render(q, ORM_QUERY_SELECT);
  assert_string_equal(r.sql, "SELECT " USER_COLS " FROM \"users\"");
  assert_int_equal(r.n, 0);
  assert_null(r.params);

  char email[16];
  strcpy(email, "a@b.c");
  assert_int_equal(orm_query_where(q, "email", ORM_OP_EQ, ORM_TEXT(email)), 0);
  memset(email, 'X', sizeof email); /* the query keeps its own copy */
  assert_int_equal(orm_query_order_by(q, "created_at", ORM_DESC), 0);
  assert_int_equal(orm_query_order_by(q, "name", ORM_ASC), 0);
  assert_int_equal(orm_query_limit(q, 10), 0);
  assert_int_equal(orm_query_offset(q, 20), 0);
  r = render(q, ORM_QUERY_SELECT);
  assert_string_equal(r.sql,
                      "SELECT " USER_COLS " FROM \"users\" WHERE \"email\" = "
                      "$1 ORDER BY \"created_at\" DESC, \"name\" LIMIT $2 "
                      "OFFSET $3");
  assert_int_equal(r.n, 3);
  assert_int_equal(r.params[0].kind, ORM_PARAM_UNTYPED);
  assert_bytes(&r.params[0], "a@b.c", 5);
  assert_int_equal(r.params[1].kind, ORM_PARAM_BINARY);
  assert_int_equal(r.params[1].oid, 20);
  assert_bytes(&r.params[1], "\0\0\0\0\0\0\0\x0a", 8);
  assert_bytes(&r.params[2], "\0\0\0\0\0\0\0\x14", 8);

  /* The same query renders to the same text, again and again. */
  rendered_t again = render(q, ORM_QUERY_SELECT);
  assert_ptr_equal(again.sql, r.sql);
  assert_ptr_equal(again.params, r.params);

  r = render(q, ORM_QUERY_COUNT);
  assert_string_equal(r.sql, "SELECT count(*) FROM (SELECT 1 FROM \"users\" "
                             "WHERE \"email\" = $1 ORDER BY \"created_at\" "
                             "DESC, \"name\" LIMIT $2 OFFSET $3) AS s");
  assert_int_equal(r.n, 3);
  r = render(q, ORM_QUERY_EXISTS);
  assert_string_equal(r.sql, "SELECT EXISTS (SELECT 1 FROM \"users\" WHERE "
                             "\"email\" = $1 ORDER BY \"created_at\" DESC, "
                             "\"name\" LIMIT $2 OFFSET $3)");
  orm_query_free(q);

  assert_int_equal(orm_query_new(&q, user_model()), 0);
  assert_int_equal(orm_query_where(q, "id", ORM_OP_GE, ORM_INT8(5)), 0);
  assert_int_equal(orm_query_order_by(q, "id", ORM_ASC), 0);
  assert_int_equal(orm_query_for_update(q), 0);
  r = render(q, ORM_QUERY_SELECT);
  assert_string_equal(r.sql, "SELECT " USER_COLS " FROM \"users\" WHERE "
                             "\"id\" >= $1 ORDER BY \"id\" FOR UPDATE");
  /* count and exists of an unpaged query leave out ORDER BY and locking. */
  r = render(q, ORM_QUERY_COUNT);
  assert_string_equal(r.sql,
                      "SELECT count(*) FROM \"users\" WHERE \"id\" >= $1");
  r = render(q, ORM_QUERY_EXISTS);
  assert_string_equal(
      r.sql, "SELECT EXISTS (SELECT 1 FROM \"users\" WHERE \"id\" >= $1)");
  orm_query_free(q);
}

static void test_query_conditions(void **state) {
  orm_query_t *q;
  assert_int_equal(orm_query_new(&q, user_model()), 0);
  orm_param_t ids[] = {ORM_INT8(1), ORM_INT8(2), ORM_INT8(3)};
  assert_int_equal(orm_query_where(q, "id", ORM_OP_GT, ORM_INT8(5)), 0);
  assert_int_equal(orm_query_or(q), 0);
  assert_int_equal(orm_query_where(q, "name", ORM_OP_LIKE, ORM_TEXT("A%")), 0);
  assert_int_equal(orm_query_where(q, "name", ORM_OP_ILIKE, ORM_TEXT("b%")),
                   0);
  assert_int_equal(orm_query_and(q), 0);
  assert_int_equal(orm_query_where(q, "email", ORM_OP_NE, ORM_TEXT("x")), 0);
  assert_int_equal(orm_query_where_null(q, "name"), 0);
  assert_int_equal(orm_query_end(q), 0);
  assert_int_equal(orm_query_end(q), 0);
  assert_int_equal(orm_query_where_not_null(q, "created_at"), 0);
  assert_int_equal(orm_query_where_in(q, "id", ids, 3), 0);
  assert_int_equal(orm_query_where(q, "id", ORM_OP_LT, ORM_INT8(100)), 0);
  assert_int_equal(orm_query_where(q, "id", ORM_OP_LE, ORM_INT8(99)), 0);
  assert_int_equal(
      orm_query_where(q, "created_at", ORM_OP_EQ,
                      ORM_UNTYPED("2024-05-01 12:00:00+00")),
      0);
  assert_int_equal(orm_query_where(q, "created_at", ORM_OP_LT,
                                   ORM_INT8(1714564800000000)),
                   0);
  rendered_t r = render(q, ORM_QUERY_SELECT);
  assert_string_equal(
      r.sql, "SELECT " USER_COLS " FROM \"users\" WHERE \"id\" > $1 AND "
             "(\"name\" LIKE $2 OR \"name\" ILIKE $3 OR (\"email\" <> $4 AND "
             "\"name\" IS NULL)) AND \"created_at\" IS NOT NULL AND \"id\" = "
             "ANY($5) AND \"id\" < $6 AND \"id\" <= $7 AND \"created_at\" = $8 "
             "AND \"created_at\" < $9");
  assert_int_equal(r.n, 9);
  assert_int_equal(r.params[4].oid, 1016); /* int8[] */
  assert_int_equal(r.params[7].kind, ORM_PARAM_UNTYPED);
  assert_int_equal(r.params[8].oid, 1184); /* timestamptz from microseconds */
  orm_query_free(q);

  /* Empty groups: AND is true, OR is false. */
  assert_int_equal(orm_query_new(&q, user_model()), 0);
  assert_int_equal(orm_query_or(q), 0);
  assert_int_equal(orm_query_end(q), 0);
  assert_int_equal(orm_query_and(q), 0);
  assert_int_equal(orm_query_end(q), 0);
  assert_int_equal(orm_query_where_in(q, "email", NULL, 0), 0);
  r = render(q, ORM_QUERY_SELECT);
  assert_string_equal(r.sql, "SELECT " USER_COLS " FROM \"users\" WHERE "
                             "(FALSE) AND (TRUE) AND \"email\" = ANY($1)");
  assert_bytes(&r.params[0], "{}", 2);
  orm_query_free(q);

  /* Hostile identifiers are quoted in the builder too. */
  assert_int_equal(orm_query_new(&q, &odd_model), 0);
  assert_int_equal(orm_query_where(q, "la\"bel", ORM_OP_EQ,
                                   ORM_TEXT("'; DROP TABLE users; --")),
                   0);
  assert_int_equal(orm_query_order_by(q, "small one", ORM_DESC), 0);
  r = render(q, ORM_QUERY_SELECT);
  assert_string_equal(r.sql, "SELECT " ODD_COLS " FROM " ODD_TABLE
                             " WHERE \"la\"\"bel\" = $1 ORDER BY \"small "
                             "one\" DESC");
  assert_bytes(&r.params[0], "'; DROP TABLE users; --", 23);
  orm_query_free(q);
}

static void test_query_keyset(void **state) {
  orm_query_t *q;
  assert_int_equal(orm_query_new(&q, user_model()), 0);
  assert_int_equal(orm_query_after(q, (orm_param_t[]){ORM_INT8(100)}, 1), 0);
  assert_int_equal(orm_query_limit(q, 50), 0);
  rendered_t r = render(q, ORM_QUERY_SELECT);
  assert_string_equal(r.sql, "SELECT " USER_COLS " FROM \"users\" WHERE "
                             "\"id\" > $1 ORDER BY \"id\" LIMIT $2");
  assert_int_equal(r.n, 2);
  orm_query_free(q);

  /* Conditions, then the sort key (ORDER BY columns and the primary key,
   * one direction), then LIMIT: placeholders in order whatever the order of
   * the calls. */
  assert_int_equal(orm_query_new(&q, user_model()), 0);
  assert_int_equal(orm_query_limit(q, 20), 0);
  assert_int_equal(orm_query_order_by(q, "created_at", ORM_DESC), 0);
  orm_param_t key[] = {ORM_INT8(1714564800000000), ORM_INT8(42)};
  assert_int_equal(orm_query_after(q, key, 2), 0);
  assert_int_equal(orm_query_where_not_null(q, "name"), 0);
  assert_int_equal(orm_query_where(q, "email", ORM_OP_LIKE, ORM_TEXT("%@x")),
                   0);
  r = render(q, ORM_QUERY_SELECT);
  assert_string_equal(r.sql,
                      "SELECT " USER_COLS " FROM \"users\" WHERE \"name\" IS "
                      "NOT NULL AND \"email\" LIKE $1 AND (\"created_at\", "
                      "\"id\") < ($2, $3) ORDER BY \"created_at\" DESC, "
                      "\"id\" DESC LIMIT $4");
  assert_int_equal(r.n, 4);
  assert_int_equal(r.params[1].oid, 1184);
  assert_int_equal(r.params[2].oid, 20);
  /* Ordering is fixed once the key is given. */
  assert_int_equal(orm_query_order_by(q, "email", ORM_ASC), ORM_ESTATE);
  orm_query_free(q);

  /* The primary key among the ORDER BY columns is not added again. */
  assert_int_equal(orm_query_new(&q, user_model()), 0);
  assert_int_equal(orm_query_order_by(q, "id", ORM_DESC), 0);
  assert_int_equal(orm_query_after(q, (orm_param_t[]){ORM_INT8(9)}, 1), 0);
  r = render(q, ORM_QUERY_SELECT);
  assert_string_equal(r.sql, "SELECT " USER_COLS " FROM \"users\" WHERE "
                             "\"id\" < $1 ORDER BY \"id\" DESC");
  orm_query_free(q);

  /* Wrong key length; mixed directions. */
  assert_int_equal(orm_query_new(&q, user_model()), 0);
  assert_int_equal(orm_query_order_by(q, "name", ORM_ASC), 0);
  assert_int_equal(orm_query_after(q, (orm_param_t[]){ORM_TEXT("x")}, 1),
                   ORM_EINVAL);
  orm_query_free(q);
  assert_int_equal(orm_query_new(&q, user_model()), 0);
  assert_int_equal(orm_query_order_by(q, "name", ORM_ASC), 0);
  assert_int_equal(orm_query_order_by(q, "email", ORM_DESC), 0);
  assert_int_equal(
      orm_query_after(q, (orm_param_t[]){ORM_TEXT("x"), ORM_TEXT("y"),
                                         ORM_INT8(1)},
                      3),
      ORM_ENOTSUP);
  orm_query_free(q);
}

static void expect_sticky(orm_query_t *q, int code) {
  const char *sql = "unchanged";
  const orm_param_t *params;
  size_t n;
  assert_int_equal(orm_query_error(q), code);
  assert_int_equal(orm_query_where(q, "id", ORM_OP_EQ, ORM_INT8(1)), code);
  assert_int_equal(orm_query_where_null(q, "name"), code);
  assert_int_equal(orm_query_order_by(q, "id", ORM_ASC), code);
  assert_int_equal(orm_query_limit(q, 1), code);
  assert_int_equal(orm_query_sql(q, ORM_QUERY_SELECT, &sql, &params, &n),
                   code);
  assert_string_equal(sql, "unchanged");
  orm_query_free(q);
}

static void test_query_errors(void **state) {
  orm_query_t *q;
  assert_int_equal(orm_query_new(NULL, user_model()), ORM_EINVAL);
  assert_int_equal(orm_query_new(&q, NULL), ORM_EMODEL);
  assert_null(orm_query_model(NULL));

  /* Unknown columns, in every call that takes one. */
  const char *bad[] = {"nope", "ID", "\"id\"", "id; DROP TABLE users", ""};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    assert_int_equal(orm_query_new(&q, user_model()), 0);
    assert_int_equal(orm_query_where(q, bad[i], ORM_OP_EQ, ORM_INT8(1)),
                     ORM_ENOCOLUMN);
    expect_sticky(q, ORM_ENOCOLUMN);
  }
  assert_int_equal(orm_query_new(&q, user_model()), 0);
  assert_int_equal(orm_query_where_in(q, "nope", NULL, 0), ORM_ENOCOLUMN);
  expect_sticky(q, ORM_ENOCOLUMN);
  assert_int_equal(orm_query_new(&q, user_model()), 0);
  assert_int_equal(orm_query_where_null(q, "nope"), ORM_ENOCOLUMN);
  expect_sticky(q, ORM_ENOCOLUMN);
  assert_int_equal(orm_query_new(&q, user_model()), 0);
  assert_int_equal(orm_query_where_not_null(q, "nope"), ORM_ENOCOLUMN);
  expect_sticky(q, ORM_ENOCOLUMN);
  assert_int_equal(orm_query_new(&q, user_model()), 0);
  assert_int_equal(orm_query_order_by(q, "nope", ORM_ASC), ORM_ENOCOLUMN);
  expect_sticky(q, ORM_ENOCOLUMN);
  /* A good start does not save a query that later fails. */
  assert_int_equal(orm_query_new(&q, user_model()), 0);
  assert_int_equal(orm_query_where(q, "id", ORM_OP_EQ, ORM_INT8(1)), 0);
  assert_int_equal(orm_query_where(q, NULL, ORM_OP_EQ, ORM_INT8(1)),
                   ORM_EINVAL);
  expect_sticky(q, ORM_EINVAL);

  /* Values that do not fit their column. */
  struct {
    const char *column;
    orm_op_t op;
    orm_param_t value;
    int code;
  } cases[] = {
      {"id", ORM_OP_EQ, ORM_BOOL(true), ORM_ETYPE},
      {"id", ORM_OP_EQ, ORM_FLOAT8(1.5), ORM_ETYPE},
      {"id", ORM_OP_LIKE, ORM_TEXT("1%"), ORM_ETYPE},
      {"created_at", ORM_OP_ILIKE, ORM_TEXT("1%"), ORM_ETYPE},
      {"email", ORM_OP_EQ, ORM_INT8(3), ORM_ETYPE},
      {"email", ORM_OP_EQ, ORM_NULL, ORM_EINVAL},
      {"email", (orm_op_t)0, ORM_TEXT("x"), ORM_EINVAL},
      {"email", (orm_op_t)99, ORM_TEXT("x"), ORM_EINVAL},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    assert_int_equal(orm_query_new(&q, user_model()), 0);
    assert_int_equal(
        orm_query_where(q, cases[i].column, cases[i].op, cases[i].value),
        cases[i].code);
    expect_sticky(q, cases[i].code);
  }
  assert_int_equal(orm_query_new(&q, knowledge_base_model()), 0);
  assert_int_equal(
      orm_query_where(q, "embedding_dim", ORM_OP_EQ, ORM_INT4(70000)),
      ORM_ERANGE);
  expect_sticky(q, ORM_ERANGE);
  assert_int_equal(orm_query_new(&q, message_model()), 0);
  assert_int_equal(orm_query_order_by(q, "metadata", ORM_ASC), ORM_ETYPE);
  expect_sticky(q, ORM_ETYPE);
  assert_int_equal(orm_query_new(&q, user_model()), 0);
  assert_int_equal(orm_query_limit(q, -1), ORM_ERANGE);
  expect_sticky(q, ORM_ERANGE);
  assert_int_equal(orm_query_new(&q, user_model()), 0);
  assert_int_equal(orm_query_order_by(q, "id", ORM_ASC), 0);
  assert_int_equal(orm_query_order_by(q, "id", ORM_DESC), ORM_EINVAL);
  expect_sticky(q, ORM_EINVAL);

  /* Groups out of order. */
  assert_int_equal(orm_query_new(&q, user_model()), 0);
  assert_int_equal(orm_query_end(q), ORM_ESTATE);
  expect_sticky(q, ORM_ESTATE);
  assert_int_equal(orm_query_new(&q, user_model()), 0);
  for (int i = 0; i < 32; i++)
    assert_int_equal(orm_query_or(q), 0);
  assert_int_equal(orm_query_or(q), ORM_E2BIG);
  expect_sticky(q, ORM_E2BIG);
  /* An open group only delays the SQL. */
  assert_int_equal(orm_query_new(&q, user_model()), 0);
  assert_int_equal(orm_query_or(q), 0);
  const char *sql;
  const orm_param_t *params;
  size_t n;
  assert_int_equal(orm_query_sql(q, ORM_QUERY_SELECT, &sql, &params, &n),
                   ORM_ESTATE);
  assert_int_equal(orm_query_end(q), 0);
  assert_int_equal(orm_query_sql(q, ORM_QUERY_SELECT, &sql, &params, &n), 0);
  assert_int_equal(orm_query_sql(q, (orm_query_kind_t)7, &sql, &params, &n),
                   ORM_EINVAL);
  orm_query_free(q);
  orm_query_free(NULL);
}

/* ---- out of memory ------------------------------------------------------ */

#define OOM_SQL                                                                \
  "SELECT " USER_COLS " FROM \"users\" WHERE \"email\" LIKE $1 AND "           \
  "(\"name\" IS NULL OR \"id\" = ANY($2) OR \"name\" = ANY($3)) AND "          \
  "(\"created_at\", \"id\") < ($4, $5) ORDER BY \"created_at\" DESC, \"id\" "  \
  "DESC LIMIT $6 OFFSET $7 FOR UPDATE"

/* Builds the query under the current budget: 0 when everything succeeded,
 * ORM_ENOMEM when something failed (and nothing else may fail). */
static int build_oom_query(void) {
  orm_query_t *q;
  int rc = orm_query_new(&q, user_model());
  if (rc != 0) {
    assert_int_equal(rc, ORM_ENOMEM);
    return rc;
  }
  orm_param_t ids[] = {ORM_INT8(1), ORM_INT8(2)};
  orm_param_t names[] = {ORM_TEXT("a"), ORM_TEXT("b")};
  orm_param_t key[] = {ORM_INT8(5), ORM_INT8(6)};
  int rcs[] = {
      orm_query_where(q, "email", ORM_OP_LIKE, ORM_TEXT("%@example.com")),
      orm_query_or(q),
      orm_query_where_null(q, "name"),
      orm_query_where_in(q, "id", ids, 2),
      orm_query_where_in(q, "name", names, 2),
      orm_query_end(q),
      orm_query_order_by(q, "created_at", ORM_DESC),
      orm_query_after(q, key, 2),
      orm_query_limit(q, 10),
      orm_query_offset(q, 30),
      orm_query_for_update(q),
  };
  for (size_t i = 0; i < sizeof rcs / sizeof rcs[0]; i++)
    if (rcs[i] != 0)
      assert_int_equal(rcs[i], ORM_ENOMEM);
  const char *sql;
  const orm_param_t *params;
  size_t n;
  rc = orm_query_sql(q, ORM_QUERY_SELECT, &sql, &params, &n);
  if (rc == 0) {
    assert_string_equal(sql, OOM_SQL);
    assert_int_equal(n, 7);
  } else {
    assert_int_equal(rc, ORM_ENOMEM);
  }
  orm_query_free(q);
  return rc;
}

static void test_oom_query(void **state) {
  for (long budget = 0;; budget++) {
    assert_true(budget < 1000);
    orm_test_alloc_fail(ORM_TEST_ALLOC_FAIL_FROM_N, budget);
    int rc = build_oom_query();
    orm_test_alloc_fail_none();
    assert_int_equal(orm_test_alloc_live(), 0);
    if (rc == 0) {
      assert_true(budget > 0);
      break;
    }
  }
}

static void test_oom_params(void **state) {
  orm__model_sql_t *s;
  assert_int_equal(orm__model_sql_new(&s, agent_model(), NULL), 0);
  char t0[] = "x", t1[] = "y";
  char *tags[] = {t0, t1};
  agent_t rows[40];
  for (size_t i = 0; i < 40; i++)
    rows[i] = (agent_t){.owner_id = (int64_t)i,
                        .name = "an agent with a longish name",
                        .model = "m",
                        .status = "paused",
                        .config = "{\"k\": [1, 2, 3]}",
                        .tags = {tags, 2}};
  for (long budget = 0;; budget++) {
    assert_true(budget < 1000);
    orm__params_t p = {0};
    orm_test_alloc_fail(ORM_TEST_ALLOC_FAIL_FROM_N, budget);
    int rc = orm__params_bind_rows(&p, agent_model(), &s->insert_many, rows,
                                   40);
    orm_test_alloc_fail_none();
    if (rc == 0) {
      assert_int_equal(p.len, 7);
    } else {
      assert_int_equal(rc, ORM_ENOMEM);
      assert_int_equal(p.len, 0);
    }
    orm__params_free(&p);
    if (rc == 0)
      break;
  }
  orm__model_sql_free(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
/* The library's memory goes through the test allocator (alloc_fault.h). */
#define C(fn)                                                                  \
  cmocka_unit_test_setup_teardown(fn, orm_test_alloc_setup,                    \
                                  orm_test_alloc_teardown)
      C(test_params_row),
      C(test_params_agents),
      C(test_params_values),
      C(test_query_simple),
      C(test_query_conditions),
      C(test_query_keyset),
      C(test_query_errors),
      C(test_oom_query),
      C(test_oom_params),
#undef C
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
