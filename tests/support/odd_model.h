/* SPDX-License-Identifier: MIT */
/* For the test_model_sql_* tests: a hand-written model with hostile
 * identifiers, and how SQL spells the tables and columns of it and of the
 * sample domain's users and agents. */
#ifndef ORM_TEST_ODD_MODEL_H
#define ORM_TEST_ODD_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include <uvorm/model.h>

typedef struct {
  int64_t key;
  char *label;
  int16_t small;
  bool flag;
  uint64_t nulls;
} odd_t;

/* Schema "my\"schema", table "we\"ird table"; "Key" is the key, "la\"bel"
 * is unique. */
extern const orm_field_t odd_fields[4];
extern const orm_model_t odd_model;

#define USER_COLS "\"id\", \"email\", \"name\", \"created_at\""
#define AGENT_COLS                                                             \
  "\"id\", \"owner_id\", \"name\", \"model\", \"status\", \"temperature\", "   \
  "\"config\", \"tags\", \"created_at\""
#define ODD_TABLE "\"my\"\"schema\".\"we\"\"ird table\""
#define ODD_COLS "\"Key\", \"la\"\"bel\", \"small one\", \"flag\""

#endif /* ORM_TEST_ODD_MODEL_H */
