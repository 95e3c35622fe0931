/* SPDX-License-Identifier: MIT */
/* Relations: call errors caught before any SQL is sent, a path through a
 * NULL to-one, cancellation, the pool closing under loads, and a server
 * error inside a relation's statement. */
#define SCHEMA "test_relations_errors"
#include "relations_models.h"

/* ---- 11. call errors, before any SQL ------------------------------------- */

static void test_error_unknown_relation(void **state) {
  orm_pool_stats_t before = stats_now();
  orm_query_t *q = query_of(conversation_model());
  assert_int_equal(orm_query_include(q, "nope"), ORM_ENORELATION);
  assert_int_equal(orm_query_error(q), ORM_ENORELATION);
  /* sticky: later calls and the find return it, nothing is sent */
  assert_int_equal(orm_query_include(q, "messages"), ORM_ENORELATION);
  assert_int_equal(orm_query_limit(q, 1), ORM_ENORELATION);
  assert_int_equal(orm_find_all_async(fx.pool, NULL, q, orm_fx_on_step, &never,
                                      NULL),
                   ORM_ENORELATION);
  orm_query_free(q);
  /* a known relation, then an unknown one further down the path */
  q = query_of(conversation_model());
  assert_int_equal(orm_query_include(q, "messages.nope"), ORM_ENORELATION);
  assert_int_equal(orm_query_error(q), ORM_ENORELATION);
  orm_query_free(q);
  /* one bad path among several */
  q = query_of(conversation_model());
  assert_int_equal(orm_query_include(q, "messages, nope"), ORM_ENORELATION);
  orm_query_free(q);
  /* a relation name of another model */
  q = query_of(conversation_model());
  assert_int_equal(orm_query_include(q, "knowledge_bases"), ORM_ENORELATION);
  orm_query_free(q);
  expect_nothing_sent(&before);
  assert_int_equal(never.done, 0);
}

static void test_error_path_through_to_one(void **state) {
  orm_pool_stats_t before = stats_now();
  orm_query_t *q = query_of(message_model());
  /* a user has no knowledge bases, and no messages */
  assert_int_equal(orm_query_include(q, "author.knowledge_bases"),
                   ORM_ENORELATION);
  assert_int_equal(orm_query_error(q), ORM_ENORELATION);
  orm_query_free(q);
  q = query_of(message_model());
  assert_int_equal(orm_query_include(q, "editor.messages"), ORM_ENORELATION);
  orm_query_free(q);
  q = query_of(message_model());
  assert_int_equal(orm_query_include(q, "usage.conversation"),
                   ORM_ENORELATION);
  orm_query_free(q);
  expect_nothing_sent(&before);
}

static void test_error_malformed_paths(void **state) {
  orm_pool_stats_t before = stats_now();
  static const char *bad[] = {"",          "a..b",       ".a",
                              "messages.", "messages..usage",
                              ".messages", "messages,",  ",messages",
                              "messages,,user",          " "};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    orm_query_t *q = query_of(conversation_model());
    int rc = orm_query_include(q, bad[i]);
    if (rc != ORM_EINVAL)
      fail_msg("include \"%s\": %s, expected ORM_EINVAL", bad[i],
               orm_err_name(rc));
    assert_int_equal(orm_query_error(q), ORM_EINVAL);
    assert_int_equal(
        orm_find_all_async(fx.pool, NULL, q, orm_fx_on_step, &never, NULL),
        ORM_EINVAL);
    orm_query_free(q);
  }
  orm_query_t *q = query_of(conversation_model());
  assert_int_equal(orm_query_include(q, NULL), ORM_EINVAL);
  assert_int_equal(orm_query_error(q), ORM_EINVAL);
  orm_query_free(q);
  assert_int_equal(orm_query_include(NULL, "messages"), ORM_EINVAL);
  expect_nothing_sent(&before);
}

static void test_error_cycle(void **state) {
  orm_pool_stats_t before = stats_now();
  orm_query_t *q = query_of(conversation_model());
  assert_int_equal(orm_query_include(q, "messages.conversation.messages"),
                   ORM_EINVAL);
  assert_int_equal(orm_query_error(q), ORM_EINVAL);
  orm_query_free(q);
  q = query_of(message_model());
  assert_int_equal(orm_query_include(q, "conversation.messages.conversation"),
                   ORM_EINVAL);
  orm_query_free(q);
  /* going back over another relation is no cycle */
  q = query_of(conversation_model());
  assert_int_equal(orm_query_include(q, "messages.conversation"), 0);
  orm_query_free(q);
  expect_nothing_sent(&before);
}

static void create_hub(void) {
  char sql[2048];
  size_t off = (size_t)snprintf(
      sql, sizeof sql,
      "CREATE TABLE rl_leaves (id bigint PRIMARY KEY, label text NOT NULL);"
      "INSERT INTO rl_leaves SELECT g, 'leaf' || g FROM "
      "generate_series(1, 17) g;"
      "CREATE TABLE rl_hubs (id bigint PRIMARY KEY");
  for (int i = 1; i <= 17; i++)
    off += (size_t)snprintf(sql + off, sizeof sql - off, ", k%d bigint", i);
  off += (size_t)snprintf(sql + off, sizeof sql - off,
                          "); INSERT INTO rl_hubs VALUES (1");
  for (int i = 1; i <= 17; i++) {
    if (i % 5 == 0)
      off += (size_t)snprintf(sql + off, sizeof sql - off, ", NULL");
    else
      off += (size_t)snprintf(sql + off, sizeof sql - off, ", %d", i);
  }
  snprintf(sql + off, sizeof sql - off, ")");
  orm_fx_sql(&fx, sql);
}

static void test_error_too_many_includes(void **state) {
  create_hub();
  char paths[256];
  size_t off = 0;
  for (int i = 1; i <= ORM_QUERY_MAX_INCLUDES; i++)
    off += (size_t)snprintf(paths + off, sizeof paths - off, "%sr%d",
                            i > 1 ? ", " : "", i);
  /* exactly the most: loads, every relation right */
  orm_query_t *q = query_of(hub_model());
  assert_int_equal(orm_query_include(q, paths), 0);
  assert_int_equal(orm_query_include(q, "r1, r2"), 0); /* no new ones */
  orm_rows_t *rows = fetch(q);
  assert_int_equal(orm_rows_count(rows), 1);
  hub_t *h = orm_rows_array(rows);
  const orm_model_t *hm = hub_model();
  for (int i = 1; i <= ORM_QUERY_MAX_INCLUDES; i++) {
    const orm_relation_t *rel = &hm->relations[i - 1];
    assert_true(slot_loaded(rel, h));
    leaf_t *item = NULL;
    memcpy(&item, (char *)h + rel->offset, sizeof item);
    if (i % 5 == 0) {
      assert_null(item);
    } else {
      assert_non_null(item);
      assert_int_equal(item->id, i);
    }
  }
  assert_false(ORM_REL_LOADED(h, r17));
  orm_rows_free(rows);

  orm_pool_stats_t before = stats_now();
  /* one more, in the same call */
  q = query_of(hub_model());
  char more[300];
  snprintf(more, sizeof more, "%s, r17", paths);
  assert_int_equal(orm_query_include(q, more), ORM_E2BIG);
  assert_int_equal(orm_query_error(q), ORM_E2BIG);
  assert_int_equal(orm_find_all_async(fx.pool, NULL, q, orm_fx_on_step, &never,
                                      NULL),
                   ORM_E2BIG);
  orm_query_free(q);
  /* or in a later one */
  q = query_of(hub_model());
  assert_int_equal(orm_query_include(q, paths), 0);
  assert_int_equal(orm_query_include(q, "r17"), ORM_E2BIG);
  assert_int_equal(orm_query_error(q), ORM_E2BIG);
  orm_query_free(q);
  /* preload counts the same way */
  q = query_of(hub_model());
  rows = fetch(q);
  before = stats_now();
  assert_int_equal(
      orm_preload_async(fx.pool, rows, more, orm_fx_on_step, &never, NULL),
      ORM_E2BIG);
  orm_rows_free(rows);
  expect_nothing_sent(&before);
  assert_int_equal(never.done, 0);
}

/* Hand-written descriptors whose relation names a key column that does
 * not exist, or keys of two types. */
typedef struct {
  int64_t id;
  int32_t small_ref;
  uint64_t orm_nulls;
  ORM_MANY_SLOT(echild_t) kids;
} hw_parent_t;

static const orm_field_t hw_fields[] = {
    {.column = "id",
     .type = ORM_T_INT8,
     .offset = offsetof(hw_parent_t, id),
     .size = sizeof(int64_t),
     .flags = ORM_F_PK},
    {.column = "small_ref",
     .type = ORM_T_INT4,
     .offset = offsetof(hw_parent_t, small_ref),
     .size = sizeof(int32_t),
     .flags = ORM_F_NULLABLE},
};

static const orm_relation_t hw_missing_key[] = {
    {.name = "kids",
     .kind = ORM_HAS_MANY,
     .target = echild_model,
     .key = "no_such_parent_col",
     .offset = offsetof(hw_parent_t, kids)},
};

static const orm_relation_t hw_missing_own_key[] = {
    {.name = "kids",
     .kind = ORM_BELONGS_TO,
     .target = echild_model,
     .key = "no_such_own_col",
     .offset = offsetof(hw_parent_t, kids)},
};

static const orm_relation_t hw_type_mismatch[] = {
    {.name = "kids",
     .kind = ORM_BELONGS_TO,
     .target = echild_model,
     .key = "small_ref", /* int4, echild's key is int8 */
     .offset = offsetof(hw_parent_t, kids)},
};

static orm_model_t hw_model(const orm_relation_t *rels) {
  return (orm_model_t){.table = "rl_eparents",
                       .fields = hw_fields,
                       .nfields = 2,
                       .struct_size = sizeof(hw_parent_t),
                       .nulls_offset = offsetof(hw_parent_t, orm_nulls),
                       .relations = rels,
                       .nrelations = 1};
}

static void expect_model_defect(const orm_model_t *m, const char *needle) {
  orm_pool_stats_t before = stats_now();
  assert_int_equal(orm_model_check(m), ORM_EMODEL);
  orm_model_error_t err;
  assert_int_equal(orm_model_check_detail(m, &err), ORM_EMODEL);
  assert_int_equal(err.code, ORM_EMODEL);
  if (strstr(err.message, needle) == NULL)
    fail_msg("message \"%s\" does not name \"%s\"", err.message, needle);
  orm_query_t *q = NULL;
  assert_int_equal(orm_query_new(&q, m), ORM_EMODEL);
  assert_null(q);
  assert_int_equal(orm_find_all_async(fx.pool, m, NULL, orm_fx_on_step, &never,
                                      NULL),
                   ORM_EMODEL);
  assert_int_equal(
      orm_find_async(fx.pool, m, ORM_INT8(1), orm_fx_on_step, &never, NULL),
      ORM_EMODEL);
  expect_nothing_sent(&before);
  assert_int_equal(never.done, 0);
}

static void test_error_model_key_missing(void **state) {
  orm_model_t m = hw_model(hw_missing_key);
  expect_model_defect(&m, "no_such_parent_col");
  m = hw_model(hw_missing_own_key);
  expect_model_defect(&m, "no_such_own_col");
  m = hw_model(hw_type_mismatch);
  expect_model_defect(&m, "small_ref");
  /* without its relations the same descriptor is fine */
  m = hw_model(NULL);
  m.nrelations = 0;
  assert_int_equal(orm_model_check(&m), 0);
}

static void test_error_for_update(void **state) {
  seed_history();
  orm_pool_stats_t before = stats_now();
  for (int order = 0; order < 2; order++) {
    orm_query_t *q = query_of(conversation_model());
    if (order == 0) {
      assert_int_equal(orm_query_for_update(q), 0);
      assert_int_equal(orm_query_include(q, "messages"), 0);
    } else {
      assert_int_equal(orm_query_include(q, "messages"), 0);
      assert_int_equal(orm_query_for_update(q), 0);
    }
    assert_int_equal(
        orm_find_all_async(fx.pool, NULL, q, orm_fx_on_step, &never, NULL),
        ORM_ENOTSUP);
    orm_query_free(q);
  }
  expect_nothing_sent(&before);

  /* in a transaction: loads, and locks the parents */
  orm_tx_t *tx = NULL;
  assert_int_equal(orm_tx_begin(fx.pool, &tx), 0);
  orm_query_t *q = query_inc(conversation_model(), "messages", "id");
  assert_int_equal(orm_query_where(q, "id", ORM_OP_EQ, ORM_INT8(20)), 0);
  assert_int_equal(orm_query_for_update(q), 0);
  orm_rows_t *rows = fetch_on(orm_tx_exec(tx), q);
  assert_int_equal(orm_rows_count(rows), 1);
  expect_message_ids(orm_rows_at(rows, 0), "400,401");
  orm_rows_free(rows);
  /* the row is locked: another session cannot lock it */
  assert_int_equal(
      orm_fx_int(&fx, "SELECT count(*) FROM (SELECT id FROM conversations "
                      "WHERE id = 20 FOR UPDATE SKIP LOCKED) s"),
      0);
  orm_step_t s = {0};
  assert_int_equal(orm_tx_commit_async(tx, orm_fx_on_step, &s, NULL), 0);
  orm_fx_wait(&fx, &s, 1);
  expect_ok(&s, "commit");
}

/* ---- 12. a path through a NULL to-one ------------------------------------ */

static void test_path_through_null_to_one(void **state) {
  seed_history();
  orm_rows_t *rows = fetch(query_inc(message_model(), "author.conversations",
                                     "id"));
  assert_int_equal(orm_rows_count(rows), 3);
  message_t *m = orm_rows_array(rows); /* 400 by 2, 401 by nobody, 402 by 1 */
  user_t *a = (user_t *)(uintptr_t)1;
  assert_int_equal(ORM_REL_ONE(&m[1], author, &a), 0);
  assert_null(a);
  assert_true(ORM_REL_LOADED(&m[1], author));
  conversation_t *cs = NULL;
  size_t n = 0;
  assert_int_equal(ORM_REL_ONE(&m[0], author, &a), 0);
  assert_int_equal(a->id, 2);
  assert_int_equal(ORM_REL_MANY(a, conversations, &cs, &n), 0);
  assert_int_equal(n, 1);
  assert_int_equal(cs[0].id, 22);
  assert_false(ORM_REL_LOADED(&cs[0], messages));
  assert_int_equal(ORM_REL_ONE(&m[2], author, &a), 0);
  assert_int_equal(a->id, 1);
  assert_int_equal(ORM_REL_MANY(a, conversations, &cs, &n), 0);
  assert_int_equal(n, 2);
  assert_int_equal(cs[0].id, 21);
  assert_int_equal(cs[1].id, 20);
  orm_rows_free(rows);

  /* every author NULL: the nested relation has no parents at all */
  orm_query_t *q = query_inc(message_model(), "author.conversations", "id");
  assert_int_equal(orm_query_where_null(q, "author_id"), 0);
  rows = fetch(q);
  assert_int_equal(orm_rows_count(rows), 1);
  m = orm_rows_array(rows);
  a = (user_t *)(uintptr_t)1;
  assert_int_equal(ORM_REL_ONE(&m[0], author, &a), 0);
  assert_null(a);
  orm_rows_free(rows);
}

/* ---- 13. cancel ---------------------------------------------------------- */

static void wait_idle(void) {
  for (int i = 0; i < 500; i++) {
    orm_pool_stats_t st = stats_now();
    if (st.in_flight == 0 && st.queued == 0 && st.conns_in_tx == 0)
      return;
    orm_fx_run_ms(&fx, 10);
  }
  fail_msg("the pool did not become idle");
}

static void test_cancel_right_away(void **state) {
  seed_history();
  for (int round = 0; round < 3; round++) {
    orm_query_t *q = query_inc(user_model(),
                               "conversations.messages.usage, agents", "id");
    orm_step_t s = TAKE;
    orm_future_t *f = NULL;
    assert_int_equal(orm_find_all_async(fx.pool, NULL, q, orm_fx_on_step, &s,
                                        &f),
                     0);
    orm_query_free(q);
    assert_non_null(f);
    if (round == 1)
      uv_run(&fx.loop, UV_RUN_NOWAIT); /* one turn: the statements go out */
    int rc = orm_future_cancel(f);
    if (round == 1 && rc == ORM_ESTATE) {
      /* a quick server answered within that turn: the load stands */
      orm_fx_wait(&fx, &s, 1);
      assert_int_equal(s.status, 0);
      orm_rows_free(s.taken);
      orm_future_release(f);
      wait_idle();
      continue;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(orm_future_cancel(f), ORM_ESTATE);
    orm_fx_wait(&fx, &s, 1);
    assert_int_equal(s.status, ORM_ECANCELED);
    assert_int_equal(orm_future_status(f), ORM_ECANCELED);
    assert_null(s.taken);
    orm_fx_run_ms(&fx, 50);
    assert_int_equal(s.done, 1);
    orm_future_release(f);
    wait_idle();
    if (round == 2) {
      /* released before the callback ran */
      q = query_inc(user_model(), "conversations", "id");
      s = (orm_step_t){0};
      assert_int_equal(orm_find_all_async(fx.pool, NULL, q, orm_fx_on_step,
                                          &s, &f),
                       0);
      orm_query_free(q);
      assert_int_equal(orm_future_cancel(f), 0);
      orm_future_release(f);
      orm_fx_wait(&fx, &s, 1);
      assert_int_equal(s.status, ORM_ECANCELED);
      wait_idle();
    }
  }
  /* the pool still works, relations and all */
  orm_rows_t *rows =
      fetch(query_inc(user_model(), "conversations.messages.usage", "id"));
  conversation_t *cs = NULL;
  size_t n = 0;
  assert_int_equal(ORM_REL_MANY((user_t *)orm_rows_at(rows, 0), conversations,
                                &cs, &n),
                   0);
  assert_int_equal(n, 2);
  orm_rows_free(rows);
}

/* A preload cancelled right away: the rows in hand stay as they were. */
static void test_cancel_preload(void **state) {
  seed_history();
  orm_rows_t *users = fetch(query_inc(user_model(), NULL, "id"));
  for (int round = 0; round < 2; round++) {
    static orm_step_t s; /* outlives a failed assertion */
    s = (orm_step_t){.take = 1};
    orm_future_t *f = NULL;
    assert_int_equal(orm_preload_async(fx.pool, users,
                                       "conversations.messages, agents",
                                       orm_fx_on_step, &s, &f),
                     0);
    if (round == 1)
      uv_run(&fx.loop, UV_RUN_NOWAIT);
    /* Once sent, the answer may already be in (a quick server): then the
     * cancel is refused and the preload stands. */
    int rc = orm_future_cancel(f);
    orm_future_release(f);
    orm_fx_wait(&fx, &s, 1);
    wait_idle();
    assert_int_equal(s.done, 1);
    if (round == 1 && rc == ORM_ESTATE) {
      assert_int_equal(s.status, 0);
      break;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(s.status, ORM_ECANCELED);
    expect_none_loaded(users);
  }
  orm_rows_free(users);
}

/* The pool closed under loads and preloads, sent or not: each calls back
 * once with ORM_ECANCELED, nothing leaks, the rows in hand are as they
 * were; a load asked for while the pool closes is refused. */
static void test_pool_closes_under_loads(void **state) {
  seed_history();
  orm_rows_t *users = fetch(query_inc(user_model(), NULL, "id"));
  static orm_step_t s[4];
  for (int i = 0; i < 4; i++) {
    s[i] = (orm_step_t){.take = 1};
    if (i % 2 == 0) {
      orm_query_t *q = query_inc(user_model(), "conversations.messages", "id");
      assert_int_equal(orm_find_all_async(fx.pool, NULL, q, orm_fx_on_step,
                                          &s[i], NULL),
                       0);
      orm_query_free(q);
    } else {
      assert_int_equal(orm_preload_async(fx.pool, users,
                                         i == 1 ? "conversations" : "agents",
                                         orm_fx_on_step, &s[i], NULL),
                       0);
    }
    if (i == 1)
      orm_fx_run_ms(&fx, 5); /* the first two may be out by now */
  }
  assert_int_equal(orm_pool_close(fx.pool, NULL), 0);
  orm_query_t *q = query_inc(user_model(), "conversations", NULL);
  assert_int_equal(orm_find_all_async(fx.pool, NULL, q, orm_fx_on_step,
                                      &never, NULL),
                   ORM_ECLOSED);
  orm_query_free(q);
  assert_int_equal(orm_preload_async(fx.pool, users, "agents", orm_fx_on_step,
                                     &never, NULL),
                   ORM_ECLOSED);
  fx.pool = NULL;
  fx.closed = 1; /* closed without a callback */
  orm_test_run(&fx.loop, 10000);
  for (int i = 0; i < 4; i++) {
    assert_int_equal(s[i].done, 1);
    /* sent ones may have been answered before the close */
    if (s[i].status != 0)
      assert_int_equal(s[i].status, ORM_ECANCELED);
    if (i % 2 == 0)
      orm_rows_free(s[i].taken);
  }
  user_t *u = orm_rows_array(users);
  for (size_t i = 0; i < 3; i++) {
    assert_false(ORM_REL_LOADED(&u[i], agents) && s[3].status != 0);
    assert_false(ORM_REL_LOADED(&u[i], conversations) && s[1].status != 0);
  }
  orm_rows_free(users);
  assert_int_equal(never.done, 0);
}

/* ---- 14. a server error in a child statement ----------------------------- */

static void expect_load_fails(const orm_model_t *model, const char *path,
                              const char *sqlstate) {
  orm_query_t *q = query_inc(model, path, NULL);
  orm_step_t s = TAKE;
  assert_int_equal(orm_find_all_async(fx.pool, NULL, q, orm_fx_on_step, &s,
                                      NULL),
                   0);
  orm_query_free(q);
  orm_fx_wait(&fx, &s, 1);
  if (s.status != ORM_ESERVER || strcmp(s.sqlstate, sqlstate) != 0)
    fail_msg("%s: %s %s \"%s\", expected ORM_ESERVER %s", path,
             orm_err_name(s.status), s.sqlstate, s.message, sqlstate);
  assert_null(s.taken);
}

static void expect_pool_works(void) {
  orm_step_t s = {.result = 1};
  assert_int_equal(orm_query_async(fx.pool, "SELECT 41 + 1", NULL, 0,
                                   orm_fx_on_step, &s, NULL),
                   0);
  orm_fx_wait(&fx, &s, 1);
  expect_ok(&s, "SELECT");
  assert_int_equal(s.value, 42);
}

static void test_server_error_in_child(void **state) {
  orm_fx_sql(&fx, "CREATE TABLE rl_eparents (id bigint PRIMARY KEY);"
                  "CREATE TABLE rl_echildren (id bigint PRIMARY KEY, "
                  "parent_id bigint NOT NULL, note text);"
                  "INSERT INTO rl_eparents VALUES (1), (2);"
                  "INSERT INTO rl_echildren VALUES (1, 1, 'a'), (2, 1, 'b')");
  /* it works first */
  orm_rows_t *rows = fetch(query_inc(eparent_model(), "kids", "id"));
  assert_int_equal(((eparent_t *)orm_rows_at(rows, 0))->kids.len, 2);
  orm_rows_free(rows);

  /* the child table is gone: 42P01 from the child statement, not the
   * 25P02 of the statements behind it */
  orm_fx_sql(&fx, "DROP TABLE rl_echildren");
  expect_load_fails(eparent_model(), "kids", "42P01");
  expect_pool_works();
  /* a column the child model needs is gone: 42703 */
  orm_fx_sql(&fx, "CREATE TABLE rl_echildren (id bigint PRIMARY KEY, "
                  "parent_id bigint NOT NULL);"
                  "INSERT INTO rl_echildren VALUES (1, 1)");
  expect_load_fails(eparent_model(), "kids", "42703");
  expect_pool_works();
  /* the parent's table is gone: its own error, the same way */
  orm_fx_sql(&fx, "DROP TABLE rl_eparents");
  expect_load_fails(eparent_model(), "kids", "42P01");
  expect_pool_works();
  wait_idle();
  /* repaired, loads again on the same pool */
  orm_fx_sql(&fx, "CREATE TABLE rl_eparents (id bigint PRIMARY KEY);"
                  "ALTER TABLE rl_echildren ADD COLUMN note text;"
                  "INSERT INTO rl_eparents VALUES (1), (2)");
  rows = fetch(query_inc(eparent_model(), "kids", "id"));
  assert_int_equal(orm_rows_count(rows), 2);
  eparent_t *p = orm_rows_array(rows);
  assert_int_equal(p[0].kids.len, 1);
  assert_true(p[1].kids.loaded);
  assert_int_equal(p[1].kids.len, 0);
  orm_rows_free(rows);
}

int main(void) {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_error_unknown_relation),
      T(test_error_path_through_to_one),
      T(test_error_malformed_paths),
      T(test_error_cycle),
      T(test_error_too_many_includes),
      T(test_error_model_key_missing),
      T(test_error_for_update),
      T(test_path_through_null_to_one),
      T(test_cancel_right_away),
      T(test_cancel_preload),
      T(test_pool_closes_under_loads),
      T(test_server_error_in_child),
  };
#undef T
  return orm_run_group_tests(tests, NULL, NULL);
}
