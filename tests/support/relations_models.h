/* SPDX-License-Identifier: MIT */
/* What the relations tests share (test_relations*.c): the test-local
 * models, the fixture, seeds and checks. Define SCHEMA (the test's own
 * schema) before including it; each test executable has its own copy. */
#ifndef ORM_TEST_RELATIONS_MODELS_H
#define ORM_TEST_RELATIONS_MODELS_H

#include "fixture.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "domain.h"

#ifndef SCHEMA
#error "define SCHEMA before including relations_models.h"
#endif

/* ---- test-local models ------------------------------------------------------
 * int4 keys: teams and players (players.team_id has no foreign key, so a
 * player may name a team that does not exist). "first_player" is a has-one
 * over the same key: the first player by name. */
#define TEAM_FIELDS(X)                                                         \
  X(id, ORM_T_INT4, int32_t, ORM_F_PK)                                         \
  X(name, ORM_T_TEXT, const char *, 0)
#define TEAM_RELATIONS(R)                                                      \
  R(players, ORM_HAS_MANY, player, team_id, "name")                            \
  R(first_player, ORM_HAS_ONE, player, team_id, "name")
ORM_MODEL_DECLARE_REL(team, TEAM_FIELDS, TEAM_RELATIONS);

#define PLAYER_FIELDS(X)                                                       \
  X(id, ORM_T_INT4, int32_t, ORM_F_PK)                                         \
  X(team_id, ORM_T_INT4, int32_t, ORM_F_NULLABLE)                              \
  X(name, ORM_T_TEXT, const char *, 0)
#define PLAYER_RELATIONS(R) R(team, ORM_BELONGS_TO, team, team_id, NULL)
ORM_MODEL_DECLARE_REL(player, PLAYER_FIELDS, PLAYER_RELATIONS);

/* text keys: countries by code, cities naming one (no foreign key). */
#define COUNTRY_FIELDS(X)                                                      \
  X(code, ORM_T_TEXT, const char *, ORM_F_PK)                                  \
  X(name, ORM_T_TEXT, const char *, 0)
#define COUNTRY_RELATIONS(R) R(cities, ORM_HAS_MANY, city, country_code, "name")
ORM_MODEL_DECLARE_REL(country, COUNTRY_FIELDS, COUNTRY_RELATIONS);

#define CITY_FIELDS(X)                                                         \
  X(id, ORM_T_INT8, int64_t, ORM_F_PK)                                         \
  X(country_code, ORM_T_TEXT, const char *, ORM_F_NULLABLE)                    \
  X(name, ORM_T_TEXT, const char *, 0)
#define CITY_RELATIONS(R)                                                      \
  R(country, ORM_BELONGS_TO, country, country_code, NULL)
ORM_MODEL_DECLARE_REL(city, CITY_FIELDS, CITY_RELATIONS);

/* Many-to-many through a join table with a model of its own, from an int8
 * key to a text key. */
#define STUDENT_FIELDS(X)                                                      \
  X(id, ORM_T_INT8, int64_t, ORM_F_PK)                                         \
  X(name, ORM_T_TEXT, const char *, 0)
#define STUDENT_RELATIONS(R)                                                   \
  R(courses, ORM_MANY_TO_MANY, course,                                         \
    ORM_THROUGH_MODEL(enrollment, student_id, course_code), "title")           \
  R(enrollments, ORM_HAS_MANY, enrollment, student_id, NULL)
ORM_MODEL_DECLARE_REL(student, STUDENT_FIELDS, STUDENT_RELATIONS);

#define COURSE_FIELDS(X)                                                       \
  X(code, ORM_T_TEXT, const char *, ORM_F_PK)                                  \
  X(title, ORM_T_TEXT, const char *, 0)
#define COURSE_RELATIONS(R)                                                    \
  R(students, ORM_MANY_TO_MANY, student,                                       \
    ORM_THROUGH_MODEL(enrollment, course_code, student_id), "name")
ORM_MODEL_DECLARE_REL(course, COURSE_FIELDS, COURSE_RELATIONS);

#define ENROLLMENT_FIELDS(X)                                                   \
  X(id, ORM_T_INT8, int64_t, ORM_F_PK)                                         \
  X(student_id, ORM_T_INT8, int64_t, 0)                                        \
  X(course_code, ORM_T_TEXT, const char *, 0)                                  \
  X(grade, ORM_T_INT2, int16_t, ORM_F_NULLABLE)
#define ENROLLMENT_RELATIONS(R)                                                \
  R(student, ORM_BELONGS_TO, student, student_id, NULL)                        \
  R(course, ORM_BELONGS_TO, course, course_code, NULL)
ORM_MODEL_DECLARE_REL(enrollment, ENROLLMENT_FIELDS, ENROLLMENT_RELATIONS);

/* A model with more relations than one query may include. */
#define LEAF_FIELDS(X)                                                         \
  X(id, ORM_T_INT8, int64_t, ORM_F_PK)                                         \
  X(label, ORM_T_TEXT, const char *, 0)
ORM_MODEL_DECLARE(leaf, LEAF_FIELDS);

#define HUB_K(X, n) X(k##n, ORM_T_INT8, int64_t, ORM_F_NULLABLE)
#define HUB_FIELDS(X)                                                          \
  X(id, ORM_T_INT8, int64_t, ORM_F_PK)                                         \
  HUB_K(X, 1) HUB_K(X, 2) HUB_K(X, 3) HUB_K(X, 4) HUB_K(X, 5) HUB_K(X, 6)      \
  HUB_K(X, 7) HUB_K(X, 8) HUB_K(X, 9) HUB_K(X, 10) HUB_K(X, 11)                \
  HUB_K(X, 12) HUB_K(X, 13) HUB_K(X, 14) HUB_K(X, 15) HUB_K(X, 16)             \
  HUB_K(X, 17)
#define HUB_R(R, n) R(r##n, ORM_BELONGS_TO, leaf, k##n, NULL)
#define HUB_RELATIONS(R)                                                       \
  HUB_R(R, 1) HUB_R(R, 2) HUB_R(R, 3) HUB_R(R, 4) HUB_R(R, 5) HUB_R(R, 6)      \
  HUB_R(R, 7) HUB_R(R, 8) HUB_R(R, 9) HUB_R(R, 10) HUB_R(R, 11)                \
  HUB_R(R, 12) HUB_R(R, 13) HUB_R(R, 14) HUB_R(R, 15) HUB_R(R, 16)             \
  HUB_R(R, 17)
ORM_MODEL_DECLARE_REL(hub, HUB_FIELDS, HUB_RELATIONS);

/* A parent whose child table the tests drop or alter under it. */
#define EPARENT_FIELDS(X) X(id, ORM_T_INT8, int64_t, ORM_F_PK)
#define EPARENT_RELATIONS(R) R(kids, ORM_HAS_MANY, echild, parent_id, NULL)
ORM_MODEL_DECLARE_REL(eparent, EPARENT_FIELDS, EPARENT_RELATIONS);

#define ECHILD_FIELDS(X)                                                       \
  X(id, ORM_T_INT8, int64_t, ORM_F_PK)                                         \
  X(parent_id, ORM_T_INT8, int64_t, 0)                                         \
  X(note, ORM_T_TEXT, const char *, ORM_F_NULLABLE)
ORM_MODEL_DECLARE(echild, ECHILD_FIELDS);

/* Self-referential, and with its schema named in the descriptor. */
#define NODE_FIELDS(X)                                                         \
  X(id, ORM_T_INT8, int64_t, ORM_F_PK)                                         \
  X(parent_id, ORM_T_INT8, int64_t, ORM_F_NULLABLE)                            \
  X(label, ORM_T_TEXT, const char *, 0)
#define NODE_RELATIONS(R)                                                      \
  R(parent, ORM_BELONGS_TO, node, parent_id, NULL)                             \
  R(children, ORM_HAS_MANY, node, parent_id, "label DESC")
ORM_MODEL_DECLARE_REL(node, NODE_FIELDS, NODE_RELATIONS);

ORM_MODEL_DEFINE_REL(team, "rl_teams", TEAM_FIELDS, TEAM_RELATIONS);
ORM_MODEL_DEFINE_REL_IN(node, SCHEMA, "rl_nodes", NODE_FIELDS,
                        NODE_RELATIONS);
ORM_MODEL_DEFINE_REL(player, "rl_players", PLAYER_FIELDS, PLAYER_RELATIONS);
ORM_MODEL_DEFINE_REL(country, "rl_countries", COUNTRY_FIELDS,
                     COUNTRY_RELATIONS);
ORM_MODEL_DEFINE_REL(city, "rl_cities", CITY_FIELDS, CITY_RELATIONS);
ORM_MODEL_DEFINE_REL(student, "rl_students", STUDENT_FIELDS,
                     STUDENT_RELATIONS);
ORM_MODEL_DEFINE_REL(course, "rl_courses", COURSE_FIELDS, COURSE_RELATIONS);
ORM_MODEL_DEFINE_REL(enrollment, "rl_enrollments", ENROLLMENT_FIELDS,
                     ENROLLMENT_RELATIONS);
ORM_MODEL_DEFINE(leaf, "rl_leaves", LEAF_FIELDS);
ORM_MODEL_DEFINE_REL(hub, "rl_hubs", HUB_FIELDS, HUB_RELATIONS);
ORM_MODEL_DEFINE_REL(eparent, "rl_eparents", EPARENT_FIELDS,
                     EPARENT_RELATIONS);
ORM_MODEL_DEFINE(echild, "rl_echildren", ECHILD_FIELDS);

/* ---- fixture and helpers ------------------------------------------------- */

/* Each test gets a fresh schema with the sample domain's tables. */
static orm_fx_t fx;

#define TAKE ((orm_step_t){.take = 1})

/* The step of calls that must fail: never called back (static, so that a
 * wrong callback cannot write into a dead stack frame). */
static orm_step_t never;

static inline int setup(void **state) {
  never = (orm_step_t){0};
  orm_fx_open(&fx, SCHEMA, 1, NULL);
  return 0;
}

static inline int teardown(void **state) {
  orm_fx_close(&fx);
  return 0;
}

#define A1 "00000000-0000-0000-0000-0000000000a1"
#define A2 "00000000-0000-0000-0000-0000000000a2"
#define A3 "00000000-0000-0000-0000-0000000000a3"

static inline orm_uuid_t uuid_of(const char *text) {
  orm_uuid_t u;
  size_t n = 0;
  for (const char *p = text; *p != '\0' && n < 16; p++) {
    if (*p == '-')
      continue;
    unsigned v;
    assert_int_equal(sscanf(p, "%2x", &v), 1);
    u.bytes[n++] = (uint8_t)v;
    p++;
  }
  assert_int_equal(n, 16);
  return u;
}

static inline int uuid_eq(orm_uuid_t a, const char *text) {
  orm_uuid_t b = uuid_of(text);
  return memcmp(a.bytes, b.bytes, 16) == 0;
}

/* Users 1..3; agents A1 and A2 of user 1 (A2 created first), A3 of user 2. */
static inline void seed_people(void) {
  orm_fx_sql(&fx,
             "INSERT INTO users (id, email, name) VALUES "
             "(1, 'u1@example.com', 'U1'), (2, 'u2@example.com', 'U2'), "
             "(3, 'u3@example.com', 'U3');"
             "INSERT INTO agents (id, owner_id, name, model, status, "
             "temperature, config, tags, created_at) VALUES "
             "('" A1 "', 1, 'A1', 'm', 'active', 0.5, '{}', '{}', "
             "'2024-01-02 00:00+00'), "
             "('" A2 "', 1, 'A2', 'm', 'paused', 0.5, '{}', '{}', "
             "'2024-01-01 00:00+00'), "
             "('" A3 "', 2, 'A3', 'm', 'active', 0.5, '{}', '{}', "
             "'2024-01-03 00:00+00')");
}

static inline orm_query_t *query_of(const orm_model_t *model) {
  orm_query_t *q = NULL;
  assert_int_equal(orm_query_new(&q, model), 0);
  return q;
}

/* A query over `model` including `path` (NULL: nothing), ordered by
 * `order` ascending (NULL: unordered). */
static inline orm_query_t *query_inc(const orm_model_t *model, const char *path,
                              const char *order) {
  orm_query_t *q = query_of(model);
  if (path != NULL)
    assert_int_equal(orm_query_include(q, path), 0);
  if (order != NULL)
    assert_int_equal(orm_query_order_by(q, order, ORM_ASC), 0);
  return q;
}

static inline void expect_ok(const orm_step_t *s, const char *what) {
  if (s->status != 0)
    fail_msg("%s: %s %s %s", what, orm_err_name(s->status), s->sqlstate,
             s->message);
}

/* Runs `q` on `exec` and gives its rows; frees the query right after the
 * call (the call copies what it needs). */
static inline orm_rows_t *fetch_on(orm_exec_t *exec, orm_query_t *q) {
  static orm_step_t s; /* outlives a failed wait: the teardown may run it */
  s = TAKE;
  int rc = orm_find_all_async(exec, NULL, q, orm_fx_on_step, &s, NULL);
  orm_query_free(q);
  if (rc != 0)
    fail_msg("orm_find_all_async: %s", orm_err_name(rc));
  orm_fx_wait(&fx, &s, 1);
  expect_ok(&s, "find_all");
  assert_int_equal(s.done, 1);
  assert_non_null(s.taken);
  return s.taken;
}

static inline orm_rows_t *fetch(orm_query_t *q) {
  return fetch_on(orm_pool_exec(fx.pool), q);
}

static inline orm_pool_stats_t stats_now(void) {
  orm_pool_stats_t st;
  assert_int_equal(orm_pool_stats(fx.pool, &st), 0);
  return st;
}

/* Nothing was sent since `before`: no request completed, none in flight or
 * queued, also after the loop has had a chance to run. */
static inline void expect_nothing_sent(const orm_pool_stats_t *before) {
  orm_fx_run_ms(&fx, 20);
  orm_pool_stats_t after = stats_now();
  assert_int_equal(after.queries, before->queries);
  assert_int_equal(after.in_flight, 0);
  assert_int_equal(after.queued, 0);
  assert_int_equal(never.done, 0);
}

typedef ORM_MANY_SLOT(void) many_slot_t;
typedef ORM_ONE_SLOT(void) one_slot_t;

/* Whether relation member `rel` of a row says loaded (for any model, as
 * its descriptor describes it). */
static inline bool slot_loaded(const orm_relation_t *rel, const void *row) {
  const char *slot = (const char *)row + rel->offset;
  bool loaded;
  if (rel->kind == ORM_HAS_MANY || rel->kind == ORM_MANY_TO_MANY)
    memcpy(&loaded, slot + offsetof(many_slot_t, loaded), sizeof loaded);
  else
    memcpy(&loaded, slot + offsetof(one_slot_t, loaded), sizeof loaded);
  return loaded;
}

/* Every relation of every row of `rows` is not loaded (and zeroed). */
static inline void expect_none_loaded(const orm_rows_t *rows) {
  const orm_model_t *m = orm_rows_model(rows);
  for (size_t i = 0; i < orm_rows_count(rows); i++) {
    const char *row = orm_rows_at(rows, i);
    for (size_t r = 0; r < m->nrelations; r++) {
      const orm_relation_t *rel = &m->relations[r];
      if (slot_loaded(rel, row))
        fail_msg("row %zu: relation \"%s\" is loaded", i, rel->name);
      void *p;
      memcpy(&p, row + rel->offset, sizeof p);
      assert_null(p);
    }
  }
}

/* Checks a has-many member against the server: `len` rows, each with
 * `fk` == parent id, in the order given by `ids` (a comma-separated list,
 * "" for none). */
static inline void expect_message_ids(const conversation_t *c, const char *ids) {
  message_t *items = (message_t *)(uintptr_t)1;
  size_t len = 99;
  assert_int_equal(ORM_REL_MANY(c, messages, &items, &len), 0);
  assert_true(ORM_REL_LOADED(c, messages));
  char got[512] = "";
  size_t off = 0;
  for (size_t i = 0; i < len; i++) {
    assert_int_equal(items[i].conversation_id, c->id);
    off += (size_t)snprintf(got + off, sizeof got - off, "%s%lld",
                            i ? "," : "", (long long)items[i].id);
  }
  if (len == 0)
    assert_null(items);
  if (strcmp(got, ids) != 0)
    fail_msg("conversation %lld: messages [%s], expected [%s]",
             (long long)c->id, got, ids);
}


static inline void seed_conversations(void) {
  seed_people();
  orm_fx_sql(
      &fx,
      "INSERT INTO conversations (id, agent_id, user_id, title, started_at) "
      "VALUES (10, '" A1 "', 1, 'c10', '2024-02-01+00'), "
      "(11, '" A1 "', 1, 'c11 empty', '2024-02-02+00'), "
      "(12, '" A3 "', 2, 'c12', '2024-02-03+00');"
      /* conversation 10, in declared order (created_at, id): 101, 102,
       * 105 (a tie on created_at broken by id), 100, 103 */
      "INSERT INTO messages (id, conversation_id, role, content, created_at) "
      "VALUES (100, 10, 'user', 'm4', '2024-03-01 00:00:03+00'), "
      "(101, 10, 'user', 'm1', '2024-03-01 00:00:01+00'), "
      "(105, 10, 'assistant', 'm3', '2024-03-01 00:00:02+00'), "
      "(102, 10, 'assistant', 'm2', '2024-03-01 00:00:02+00'), "
      "(103, 10, 'user', 'm5', '2024-03-01 00:00:04+00'), "
      "(104, 12, 'user', 'n1', '2024-03-01 00:00:00+00'), "
      "(106, 12, 'tool', 'n2', '2024-03-01 00:00:05+00')");
}

static inline void seed_history(void) {
  seed_people();
  orm_fx_sql(
      &fx,
      /* user 1: 20 (older) and 21 (newer: first, started_at DESC);
       * user 2: 22 without messages; user 3: nothing */
      "INSERT INTO conversations (id, agent_id, user_id, title, started_at) "
      "VALUES (20, '" A1 "', 1, 'old', '2024-01-01+00'), "
      "(21, '" A2 "', 1, 'new', '2024-02-01+00'), "
      "(22, '" A3 "', 2, 'quiet', '2024-03-01+00');"
      "INSERT INTO messages (id, conversation_id, role, content, created_at, "
      "author_id, editor_id) VALUES "
      "(400, 20, 'user', 'q', '2024-01-01 00:01+00', 2, NULL), "
      "(401, 20, 'assistant', 'a', '2024-01-01 00:02+00', NULL, 1), "
      "(402, 21, 'user', 'q2', '2024-02-01 00:01+00', 1, NULL);"
      "INSERT INTO usage_records (id, user_id, day, prompt_tokens, "
      "completion_tokens, cost, message_id) VALUES "
      "(1, 1, '2024-01-01', 3, 4, 0.1, 400), "
      "(2, 1, '2024-02-01', 5, 6, 0.2, 402)");
}

#endif /* ORM_TEST_RELATIONS_MODELS_H */
