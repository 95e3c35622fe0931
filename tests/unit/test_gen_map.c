/* SPDX-License-Identifier: MIT */
/* uvorm gen without a server: C identifiers from any name, singular model
 * names, relation names from key columns, and the type mapping. */
#include "harness.h"

#include <string.h>

#include <uvorm/model.h>

#include "gen.h"

static void expect_ident(const char *in, const char *out, int renamed) {
  char buf[64];
  int rc = gen_c_ident(in, buf, sizeof buf);
  if (rc != renamed || strcmp(buf, out) != 0)
    fail_msg("gen_c_ident(\"%s\"): \"%s\" (%d), not \"%s\" (%d)", in, buf, rc,
             out, renamed);
}

static void test_c_ident(void **state) {
  (void)state;
  expect_ident("email", "email", 0);
  expect_ident("created_at", "created_at", 0);
  expect_ident("CamelCase", "CamelCase", 0); /* C is case-sensitive too */
  expect_ident("default", "default_", 1);
  expect_ident("int", "int_", 1);
  expect_ident("_Bool", "_Bool_", 1);
  expect_ident("bool", "bool_", 1);
  expect_ident("true", "true_", 1);
  expect_ident("NULL", "NULL_", 1);
  expect_ident("orm_nulls", "orm_nulls_", 1); /* the struct's own member */
  expect_ident("Order Total", "Order_Total", 1);
  expect_ident("user-id", "user_id", 1);
  expect_ident("a.b", "a_b", 1);
  expect_ident("2fa", "c_2fa", 1);
  expect_ident("", "c_", 1);
  expect_ident("caf\xc3\xa9", "caf__", 1); /* UTF-8 bytes: one '_' each */
  expect_ident("X", "X_", 1); /* the parameter of FIELDS(X) */
  expect_ident("R", "R_", 1); /* and of RELATIONS(R) */
  expect_ident("errno", "errno_", 1);
  expect_ident("stdout", "stdout_", 1);
  char tiny[4];
  assert_int_equal(gen_c_ident("longer", tiny, sizeof tiny), -1);
  assert_true(gen_is_c_keyword("while"));
  assert_true(gen_is_c_keyword("_Static_assert"));
  assert_false(gen_is_c_keyword("order"));
  assert_false(gen_is_c_keyword("While"));
}

static void test_reserved_types(void **state) {
  (void)state;
  /* NAME_t would redefine a type the headers have. */
  assert_true(gen_reserved_type("size"));
  assert_true(gen_reserved_type("time"));
  assert_true(gen_reserved_type("mode"));
  assert_true(gen_reserved_type("int64"));
  assert_true(gen_reserved_type("orm_model"));
  assert_true(gen_reserved_type("uv_loop"));
  assert_true(gen_reserved_type("pthread_mutex"));
  assert_false(gen_reserved_type("user"));
  assert_false(gen_reserved_type("sizes"));
  assert_false(gen_reserved_type("app_size"));
}

static void expect_singular(const char *in, const char *out) {
  char buf[64];
  gen_singular(in, buf, sizeof buf);
  if (strcmp(buf, out) != 0)
    fail_msg("gen_singular(\"%s\"): \"%s\", not \"%s\"", in, buf, out);
}

static void test_singular(void **state) {
  (void)state;
  expect_singular("users", "user");
  expect_singular("usage_records", "usage_record");
  expect_singular("knowledge_bases", "knowledge_base");
  expect_singular("categories", "category");
  expect_singular("addresses", "address");
  expect_singular("boxes", "box");
  expect_singular("matches", "match");
  expect_singular("wishes", "wish");
  expect_singular("statuses", "status");
  expect_singular("houses", "house");
  expect_singular("caches", "cache");
  expect_singular("responses", "response");
  expect_singular("status", "status");
  expect_singular("business", "business");
  expect_singular("analysis", "analysis");
  expect_singular("news", "news");
  expect_singular("data", "data");
  expect_singular("user", "user");
  expect_singular("bus", "bus"); /* too short to tell */
  expect_singular("user_data", "user_data");
}

static void test_upper_and_rel_names(void **state) {
  (void)state;
  char buf[64];
  gen_upper("agent_status", buf, sizeof buf);
  assert_string_equal(buf, "AGENT_STATUS");
  gen_upper("in-progress", buf, sizeof buf);
  assert_string_equal(buf, "IN_PROGRESS");
  gen_upper("Done!", buf, sizeof buf);
  assert_string_equal(buf, "DONE_");
  gen_rel_name("author_id", buf, sizeof buf);
  assert_string_equal(buf, "author");
  gen_rel_name("owner", buf, sizeof buf);
  assert_string_equal(buf, "owner");
  gen_rel_name("_id", buf, sizeof buf);
  assert_string_equal(buf, "_id");
  gen_rel_name("parent_uuid", buf, sizeof buf);
  assert_string_equal(buf, "parent_uuid");
}

static void expect_type(const char *name, char typtype, const char *elem,
                        int type, const char *ctype) {
  const char *c = "unset";
  int t = gen_map_type(name, typtype, elem, &c);
  if (t != type || (ctype == NULL ? c != NULL : c == NULL || strcmp(c, ctype) != 0))
    fail_msg("gen_map_type(%s, %c, %s): %s %s, not %s %s", name, typtype,
             elem != NULL ? elem : "-", gen_type_name(t), c != NULL ? c : "NULL",
             gen_type_name(type), ctype != NULL ? ctype : "NULL");
}

static void test_types(void **state) {
  (void)state;
  expect_type("int2", 'b', NULL, ORM_T_INT2, "int16_t");
  expect_type("int4", 'b', NULL, ORM_T_INT4, "int32_t");
  expect_type("int8", 'b', NULL, ORM_T_INT8, "int64_t");
  expect_type("float4", 'b', NULL, ORM_T_FLOAT4, "float");
  expect_type("float8", 'b', NULL, ORM_T_FLOAT8, "double");
  expect_type("bool", 'b', NULL, ORM_T_BOOL, "bool");
  expect_type("text", 'b', NULL, ORM_T_TEXT, "const char *");
  expect_type("varchar", 'b', NULL, ORM_T_TEXT, "const char *");
  expect_type("bpchar", 'b', NULL, ORM_T_TEXT, "const char *");
  expect_type("name", 'b', NULL, ORM_T_TEXT, "const char *");
  expect_type("json", 'b', NULL, ORM_T_JSON, "const char *");
  expect_type("jsonb", 'b', NULL, ORM_T_JSONB, "const char *");
  expect_type("bytea", 'b', NULL, ORM_T_BYTEA, "orm_bytes_t");
  expect_type("timestamp", 'b', NULL, ORM_T_TIMESTAMP, "int64_t");
  expect_type("timestamptz", 'b', NULL, ORM_T_TIMESTAMPTZ, "int64_t");
  expect_type("date", 'b', NULL, ORM_T_DATE, "int32_t");
  expect_type("uuid", 'b', NULL, ORM_T_UUID, "orm_uuid_t");
  expect_type("numeric", 'b', NULL, ORM_T_NUMERIC, "const char *");
  expect_type("agent_status", 'e', NULL, ORM_T_ENUM, "const char *");
  expect_type("", 'b', "int2", ORM_T_INT_ARRAY, "orm_int_array_t");
  expect_type("", 'b', "int4", ORM_T_INT_ARRAY, "orm_int_array_t");
  expect_type("", 'b', "int8", ORM_T_INT_ARRAY, "orm_int_array_t");
  expect_type("", 'b', "text", ORM_T_TEXT_ARRAY, "orm_text_array_t");
  expect_type("", 'b', "varchar", ORM_T_TEXT_ARRAY, "orm_text_array_t");
  /* What the model layer has no type for. */
  expect_type("tsvector", 'b', NULL, 0, NULL);
  expect_type("point", 'b', NULL, 0, NULL);
  expect_type("interval", 'b', NULL, 0, NULL);
  expect_type("", 'b', "float8", 0, NULL);
  expect_type("", 'b', "uuid", 0, NULL);
  expect_type("mood_range", 'r', NULL, 0, NULL); /* a range type */
  expect_type("int4", 'c', NULL, 0, NULL);       /* a composite named oddly */
  assert_string_equal(gen_type_name(ORM_T_UUID), "ORM_T_UUID");
  assert_string_equal(gen_type_name(0), "?");
  assert_string_equal(gen_type_name(ORM_T_COUNT_), "?");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_c_ident),
      cmocka_unit_test(test_reserved_types),
      cmocka_unit_test(test_singular),
      cmocka_unit_test(test_upper_and_rel_names),
      cmocka_unit_test(test_types),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
