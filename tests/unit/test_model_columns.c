/* SPDX-License-Identifier: MIT */
/* ORM_COLUMN(member, "column"): a column whose name is no C identifier
 * (a keyword, a space, capitals) gets a member of another name; the
 * descriptor keeps the column's own, and SQL quotes it. */
#include "harness.h"

#include <stdbool.h>
#include <string.h>

#include <uvorm.h>

#include "base/alloc.h"
#include "model/sql.h"

#define ODD_NAMES_FIELDS(X)                                                    \
  X(id, ORM_T_INT8, int64_t, ORM_F_PK | ORM_F_GENERATED)                       \
  X(ORM_COLUMN(default_, "default"), ORM_T_TEXT, const char *, 0)              \
  X(ORM_COLUMN(first_name, "First Name"), ORM_T_TEXT, const char *,           \
    ORM_F_NULLABLE)                                                            \
  X(plain, ORM_T_INT4, int32_t, 0)
ORM_MODEL_DECLARE(odd_names, ODD_NAMES_FIELDS);
ORM_MODEL_DEFINE(odd_names, "odd names", ODD_NAMES_FIELDS);

static void test_renamed_columns(void **state) {
  (void)state;
  const orm_model_t *m = odd_names_model();
  assert_int_equal(orm_model_check(m), 0);
  assert_int_equal(m->nfields, 4);
  assert_string_equal(m->fields[1].column, "default");
  assert_string_equal(m->fields[2].column, "First Name");
  assert_string_equal(m->fields[3].column, "plain");
  assert_int_equal(m->fields[1].offset, offsetof(odd_names_t, default_));
  assert_int_equal(m->fields[2].offset, offsetof(odd_names_t, first_name));
  assert_int_equal(m->fields[2].flags, ORM_F_NULLABLE);
  assert_int_equal(ORM_FIELD(odd_names, first_name), 2);
  assert_int_equal(orm_model_field(m, "First Name"), 2);
  assert_int_equal(orm_model_field(m, "first_name"), ORM_ENOCOLUMN);
  odd_names_t row = {.default_ = "x", .first_name = "Ada", .plain = 1};
  ORM_SET_NULL(&row, odd_names, first_name);
  assert_true(orm_row_is_null(m, &row, 2));
  assert_false(orm_row_is_null(m, &row, 1));
  /* Quoted as an identifier wherever SQL names it. */
  orm__sql_text_t t = {0};
  orm__sql_columns(&t, m, ~UINT64_C(0));
  int err = 0;
  char *cols = orm__sql_take(&t, &err);
  assert_non_null(cols);
  assert_non_null(strstr(cols, "\"default\""));
  assert_non_null(strstr(cols, "\"First Name\""));
  orm__free(cols);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_renamed_columns),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
