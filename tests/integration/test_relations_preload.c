/* SPDX-License-Identifier: MIT */
/* Preloads of rows in hand: nothing sent when there is nothing to load,
 * errors, 100,000 parents in chunks, loads on a transaction's executor, and
 * out-of-memory sweeps over an include and a preload. */
#define SCHEMA "test_relations_preload"
#include "relations_load.h"

/* ---- 4. preload ---------------------------------------------------------- */

#define A1 "00000000-0000-0000-0000-0000000000a1"

/* Users 1..3; user 1 with conversations 10 (2 messages) and 11 (none),
 * user 2 with 12 (1 message), user 3 with nothing. Message 101 has no
 * author. */
static void seed_domain(void) {
  orm_fx_sql(&fx,
             "INSERT INTO users (id, email) VALUES (1, 'a@x'), (2, 'b@x'), "
             "(3, 'c@x');"
             "INSERT INTO agents (id, owner_id, name, model, status, "
             "temperature, config, tags) VALUES ('" A1 "', 1, 'A1', 'm', "
             "'active', 0.5, '{}', '{}');"
             "INSERT INTO conversations (id, agent_id, user_id, title, "
             "started_at) VALUES (10, '" A1 "', 1, 'c10', '2024-01-02+00'), "
             "(11, '" A1 "', 1, 'c11', '2024-01-01+00'), "
             "(12, '" A1 "', 2, 'c12', '2024-01-03+00');"
             "INSERT INTO messages (id, conversation_id, role, content, "
             "author_id) VALUES (100, 10, 'user', 'x', 2), "
             "(101, 10, 'assistant', 'y', NULL), (102, 12, 'user', 'z', 1)");
}

static orm_rows_t *all_users(int64_t only) {
  orm_query_t *q = query_inc(user_model(), NULL, "id");
  if (only != 0)
    assert_int_equal(orm_query_where(q, "id", ORM_OP_EQ, ORM_INT8(only)), 0);
  return fetch(q);
}

static void test_preload(void **state) {
  seed_domain();
  orm_rows_t *users = all_users(0);
  assert_int_equal(orm_rows_count(users), 3);
  user_t *u = orm_rows_array(users);
  assert_false(ORM_REL_LOADED(&u[0], conversations));
  wait_idle();
  orm_pool_stats_t before = stats_now();
  preload_ok(orm_pool_exec(fx.pool), users, "conversations.messages");
  wait_idle();
  orm_pool_stats_t after = stats_now();
  /* one statement per relation, in one read-only transaction */
  assert_int_equal(after.queries - before.queries, 1 + 2 + 1);
  conversation_t *cs = NULL;
  size_t n = 0;
  assert_int_equal(ORM_REL_MANY(&u[0], conversations, &cs, &n), 0);
  assert_int_equal(n, 2);
  assert_int_equal(cs[0].id, 10); /* started_at DESC */
  assert_int_equal(cs[1].id, 11);
  message_t *m = NULL;
  assert_int_equal(ORM_REL_MANY(&cs[0], messages, &m, &n), 0);
  assert_int_equal(n, 2);
  assert_int_equal(m[0].id, 100);
  assert_int_equal(m[1].id, 101);
  assert_int_equal(ORM_REL_MANY(&cs[1], messages, &m, &n), 0);
  assert_int_equal(n, 0);
  assert_int_equal(ORM_REL_MANY(&u[1], conversations, &cs, &n), 0);
  assert_int_equal(n, 1);
  assert_int_equal(cs[0].messages.len, 1);
  assert_int_equal(ORM_REL_MANY(&u[2], conversations, &cs, &n), 0);
  assert_int_equal(n, 0);
  assert_false(ORM_REL_LOADED(&u[0], agents));

  /* loaded again: sees what changed since */
  orm_fx_sql(&fx, "INSERT INTO conversations (id, agent_id, user_id, title) "
                  "VALUES (13, '" A1 "', 3, 'c13')");
  preload_ok(orm_pool_exec(fx.pool), users, "conversations");
  assert_int_equal(ORM_REL_MANY(&u[2], conversations, &cs, &n), 0);
  assert_int_equal(n, 1);
  assert_int_equal(cs[0].id, 13);
  orm_rows_free(users);

  /* rows in hand with nothing to load: no statement at all */
  users = all_users(-1);
  assert_int_equal(orm_rows_count(users), 0);
  wait_idle();
  before = stats_now();
  preload_ok(orm_pool_exec(fx.pool), users, "conversations.messages");
  orm_fx_run_ms(&fx, 20);
  after = stats_now();
  assert_int_equal(after.queries, before.queries);
  assert_int_equal(after.in_flight, 0);
  orm_rows_free(users);

  /* a to-one whose keys are all NULL: no statement, loaded as none */
  orm_query_t *q = query_inc(message_model(), NULL, "id");
  assert_int_equal(orm_query_where_null(q, "author_id"), 0);
  orm_rows_t *msgs = fetch(q);
  assert_int_equal(orm_rows_count(msgs), 1);
  wait_idle();
  before = stats_now();
  preload_ok(orm_pool_exec(fx.pool), msgs, "author");
  preload_ok(orm_pool_exec(fx.pool), msgs, "author.conversations");
  orm_fx_run_ms(&fx, 20);
  after = stats_now();
  assert_int_equal(after.queries, before.queries);
  m = orm_rows_array(msgs);
  user_t *a = (user_t *)(uintptr_t)1;
  assert_int_equal(ORM_REL_ONE(&m[0], author, &a), 0);
  assert_null(a);
  orm_rows_free(msgs);

  /* a to-one with keys: one statement, so no transaction of its own */
  msgs = fetch(query_inc(message_model(), NULL, "id"));
  wait_idle();
  before = stats_now();
  preload_ok(orm_pool_exec(fx.pool), msgs, "author");
  wait_idle();
  after = stats_now();
  assert_int_equal(after.queries - before.queries, 1);
  m = orm_rows_array(msgs);
  static const int64_t authors[] = {2, 0, 1};
  for (size_t i = 0; i < 3; i++) {
    a = NULL;
    assert_int_equal(ORM_REL_ONE(&m[i], author, &a), 0);
    if (authors[i] == 0)
      assert_null(a);
    else
      assert_int_equal(a->id, authors[i]);
  }
  orm_rows_free(msgs);
}

static void test_preload_errors(void **state) {
  seed_domain();
  orm_rows_t *users = all_users(0);
  wait_idle();
  orm_pool_stats_t before = stats_now();
  orm_step_t s = {0};
  orm_future_t *f = (orm_future_t *)(uintptr_t)1;
  assert_int_equal(orm_preload_async(fx.pool, NULL, "conversations",
                                     orm_fx_on_step, &s, &f),
                   ORM_EINVAL);
  assert_null(f);
  assert_int_equal(
      orm_preload_async(fx.pool, users, NULL, orm_fx_on_step, &s, NULL),
      ORM_EINVAL);
  assert_int_equal(
      orm_preload_async(fx.pool, users, "", orm_fx_on_step, &s, NULL),
      ORM_EINVAL);
  assert_int_equal(orm_preload_async(fx.pool, users, "conversations..messages",
                                     orm_fx_on_step, &s, NULL),
                   ORM_EINVAL);
  assert_int_equal(
      orm_preload_async(fx.pool, users, "nope", orm_fx_on_step, &s, NULL),
      ORM_ENORELATION);
  assert_int_equal(orm_preload_async(fx.pool, users,
                                     "conversations.messages.conversation."
                                     "messages",
                                     orm_fx_on_step, &s, NULL),
                   ORM_EINVAL);
  assert_int_equal((orm_preload_async)(NULL, users, "conversations",
                                       orm_fx_on_step, &s, NULL),
                   ORM_EINVAL);
  orm_fx_run_ms(&fx, 20);
  orm_pool_stats_t after = stats_now();
  assert_int_equal(after.queries, before.queries);
  assert_int_equal(s.done, 0);
  user_t *u = orm_rows_array(users);
  for (size_t i = 0; i < 3; i++)
    assert_false(ORM_REL_LOADED(&u[i], conversations));

  /* a server error: reported as it is, and nothing half-loaded */
  orm_fx_sql(&fx, "ALTER TABLE messages RENAME TO messages_gone");
  preload_on(orm_pool_exec(fx.pool), users, "conversations.messages", &s);
  if (s.status != ORM_ESERVER || strcmp(s.sqlstate, "42P01") != 0)
    fail_msg("preload: %s %s %s, expected ORM_ESERVER 42P01",
             orm_err_name(s.status), s.sqlstate, s.message);
  for (size_t i = 0; i < 3; i++)
    assert_false(ORM_REL_LOADED(&u[i], conversations));
  orm_fx_sql(&fx, "ALTER TABLE messages_gone RENAME TO messages");
  wait_idle();
  preload_ok(orm_pool_exec(fx.pool), users, "conversations.messages");
  assert_int_equal(u[0].conversations.len, 2);
  orm_rows_free(users);
}

/* ---- 5. a preload of many parents, in chunks ----------------------------- */

static int64_t expected_children(int64_t id) {
  return (id % 7 != 0) + (id % 5 == 0);
}

static void test_preload_chunks(void **state) {
  int nparents = quick() ? 12000 : 100000;
  char sql[1024];
  snprintf(sql, sizeof sql,
           "CREATE TABLE ldb_parent (id bigint PRIMARY KEY, label integer "
           "NOT NULL);"
           "CREATE TABLE ldb_child (id bigserial PRIMARY KEY, parent_id "
           "bigint NOT NULL, seq integer NOT NULL);"
           "INSERT INTO ldb_parent SELECT g, g %% 1000 FROM "
           "generate_series(1, %d) g;"
           "INSERT INTO ldb_child (parent_id, seq) SELECT g, 1 FROM "
           "generate_series(1, %d) g WHERE g %% 7 <> 0;"
           "INSERT INTO ldb_child (parent_id, seq) SELECT g, 2 FROM "
           "generate_series(1, %d) g WHERE g %% 5 = 0;"
           "CREATE INDEX ON ldb_child (parent_id, id);"
           /* a grandchild for every third child */
           "CREATE TABLE ldb_grand (id bigserial PRIMARY KEY, child_id "
           "bigint NOT NULL);"
           "INSERT INTO ldb_grand (child_id) SELECT id FROM ldb_child "
           "WHERE id %% 3 = 0;"
           "CREATE INDEX ON ldb_grand (child_id, id);"
           "ANALYZE ldb_parent; ANALYZE ldb_child; ANALYZE ldb_grand",
           nparents, nparents, nparents);
  orm_fx_sql(&fx, sql);
  orm_step_t s = TAKE;
  assert_int_equal(orm_find_all_async(fx.pool, bparent_model(), NULL,
                                      orm_fx_on_step, &s, NULL),
                   0);
  wait_step(&s, 60000);
  expect_ok(&s, "find_all parents");
  orm_rows_t *parents = s.taken;
  assert_int_equal(orm_rows_count(parents), nparents);

  int have = have_pss();
  int64_t dealloc = have ? pss_dealloc() : 0;
  const char *pattern = "%FROM \"ldb\\_child\" WHERE%";
  int64_t calls = have ? pss_sum("calls", pattern) : 0;
  int64_t rows_before = have ? pss_sum("rows", pattern) : 0;
  wait_idle();
  orm_pool_stats_t before = stats_now();
  preload_ok(orm_pool_exec(fx.pool), parents, "children");
  wait_idle();
  orm_pool_stats_t after = stats_now();

  size_t chunks =
      ((size_t)nparents + ORM_PRELOAD_CHUNK - 1) / ORM_PRELOAD_CHUNK;
  assert_int_equal(after.queries - before.queries,
                   chunks + (chunks > 1 ? 2 : 0));
  int64_t total = 0;
  const bparent_t *p = orm_rows_array(parents);
  for (size_t i = 0; i < (size_t)nparents; i++) {
    bchild_t *c = NULL;
    size_t n = 0;
    assert_int_equal(ORM_REL_MANY(&p[i], children, &c, &n), 0);
    if ((int64_t)n != expected_children(p[i].id))
      fail_msg("parent %lld: %zu children, expected %lld",
               (long long)p[i].id, n, (long long)expected_children(p[i].id));
    for (size_t k = 0; k < n; k++) {
      assert_int_equal(c[k].parent_id, p[i].id);
      assert_int_equal(c[k].seq, (int32_t)k + ((p[i].id % 7 == 0) ? 2 : 1));
    }
    if (n == 0)
      assert_null(c);
    total += (int64_t)n;
  }
  assert_int_equal(total, orm_fx_int(&fx, "SELECT count(*) FROM ldb_child"));
  if (have && pss_unchanged_since(dealloc)) {
    assert_int_equal(pss_sum("calls", pattern) - calls, (int64_t)chunks);
    assert_int_equal(pss_sum("rows", pattern) - rows_before, total);
  }

  /* Two levels: each chunk's grandchildren keyed by that chunk's
   * children, two statements a chunk in one transaction. */
  const char *gpattern = "%FROM \"ldb\\_grand\" WHERE%";
  int64_t gcalls = have ? pss_sum("calls", gpattern) : 0;
  dealloc = have ? pss_dealloc() : 0;
  before = stats_now();
  preload_ok(orm_pool_exec(fx.pool), parents, "children.grand");
  wait_idle();
  after = stats_now();
  assert_int_equal(after.queries - before.queries, 2 * chunks + 2);
  if (have && pss_unchanged_since(dealloc))
    assert_int_equal(pss_sum("calls", gpattern) - gcalls, (int64_t)chunks);
  int64_t grand = 0;
  for (size_t i = 0; i < (size_t)nparents; i++) {
    bchild_t *c = NULL;
    size_t n = 0;
    assert_int_equal(ORM_REL_MANY(&p[i], children, &c, &n), 0);
    assert_int_equal((int64_t)n, expected_children(p[i].id));
    for (size_t k = 0; k < n; k++) {
      bgrand_t *g = NULL;
      size_t ng = 0;
      assert_int_equal(ORM_REL_MANY(&c[k], grand, &g, &ng), 0);
      if (ng != (c[k].id % 3 == 0 ? 1u : 0u))
        fail_msg("child %lld: %zu grandchildren", (long long)c[k].id, ng);
      if (ng == 1)
        assert_int_equal(g[0].child_id, c[k].id);
      grand += (int64_t)ng;
    }
  }
  assert_int_equal(grand, orm_fx_int(&fx, "SELECT count(*) FROM ldb_grand"));
  orm_rows_free(parents);

  /* the same as an include: every parent's keys carried to the children's
   * statement, theirs to the grandchildren's */
  parents = fetch(query_inc(bparent_model(), "children.grand", "id"));
  assert_int_equal(orm_rows_count(parents), nparents);
  p = orm_rows_array(parents);
  int64_t children = 0;
  grand = 0;
  for (size_t i = 0; i < (size_t)nparents; i++) {
    assert_int_equal(p[i].id, (int64_t)i + 1);
    bchild_t *c = NULL;
    size_t n = 0;
    assert_int_equal(ORM_REL_MANY(&p[i], children, &c, &n), 0);
    assert_int_equal((int64_t)n, expected_children(p[i].id));
    children += (int64_t)n;
    for (size_t k = 0; k < n; k++) {
      assert_int_equal(c[k].parent_id, p[i].id);
      assert_true(c[k].grand.loaded);
      assert_int_equal(c[k].grand.len, c[k].id % 3 == 0 ? 1u : 0u);
      grand += (int64_t)c[k].grand.len;
    }
  }
  assert_int_equal(children, total);
  assert_int_equal(grand, orm_fx_int(&fx, "SELECT count(*) FROM ldb_grand"));
  orm_rows_free(parents);
}

/* ---- 6. on a transaction's executor -------------------------------------- */

static void test_on_transaction(void **state) {
  seed_domain();
  orm_tx_t *tx;
  assert_int_equal(orm_tx_begin(fx.pool, &tx), 0);
  orm_step_t s = {0};
  assert_int_equal(
      orm_query_async(tx,
                      "INSERT INTO messages (id, conversation_id, role, "
                      "content, author_id) VALUES (110, 11, 'user', 'new', 3)",
                      NULL, 0, orm_fx_on_step, &s, NULL),
      0);
  orm_fx_wait(&fx, &s, 1);
  expect_ok(&s, "insert");

  /* an include, with the transaction passed directly */
  orm_query_t *q = query_inc(conversation_model(), "messages.author", "id");
  s = TAKE;
  assert_int_equal(
      orm_find_all_async(tx, NULL, q, orm_fx_on_step, &s, NULL), 0);
  orm_query_free(q);
  wait_step(&s, 10000);
  expect_ok(&s, "find_all in tx");
  conversation_t *c = orm_rows_array(s.taken);
  assert_int_equal(orm_rows_count(s.taken), 3);
  assert_int_equal(c[1].id, 11);
  message_t *m = NULL;
  size_t n = 0;
  assert_int_equal(ORM_REL_MANY(&c[1], messages, &m, &n), 0);
  assert_int_equal(n, 1); /* the uncommitted message */
  assert_int_equal(m[0].id, 110);
  user_t *a = NULL;
  assert_int_equal(ORM_REL_ONE(&m[0], author, &a), 0);
  assert_int_equal(a->id, 3);
  orm_rows_free(s.taken);

  /* a preload on the transaction's executor, several statements */
  orm_rows_t *users = all_users(0);
  preload_ok(orm_tx_exec(tx), users, "conversations.messages.author");
  user_t *u = orm_rows_array(users);
  conversation_t *cs = NULL;
  assert_int_equal(ORM_REL_MANY(&u[0], conversations, &cs, &n), 0);
  assert_int_equal(n, 2);
  assert_int_equal(cs[1].id, 11);
  assert_int_equal(cs[1].messages.len, 1);
  assert_int_equal(cs[1].messages.items[0].author.item->id, 3);
  /* and passing the transaction directly */
  s = TAKE;
  assert_int_equal(
      orm_preload_async(tx, users, "agents", orm_fx_on_step, &s, NULL), 0);
  wait_step(&s, 10000);
  expect_ok(&s, "preload agents in tx");
  assert_int_equal(u[0].agents.len, 1);
  orm_rows_free(users);

  /* nothing of it outside, and nothing once rolled back */
  assert_int_equal(
      orm_fx_int(&fx, "SELECT count(*) FROM messages WHERE id = 110"), 0);
  s = (orm_step_t){0};
  assert_int_equal(orm_tx_rollback_async(tx, orm_fx_on_step, &s, NULL), 0);
  orm_fx_wait(&fx, &s, 1);
  expect_ok(&s, "rollback");
  assert_int_equal(
      orm_fx_int(&fx, "SELECT count(*) FROM messages WHERE id = 110"), 0);
  wait_idle();
}

/* ---- out of memory ----------------------------------------------------------
 * One allocation refused at a time (the n-th from the call on), for
 * n = 0, 1, ... until a load needs no refusal: the call returns 0 or
 * ORM_ENOMEM and calls back only in the first case, once, with the rows
 * or ORM_ENOMEM; a caller's transaction is unharmed whatever the outcome;
 * nothing leaks; the pool loads correctly afterwards. */
typedef enum { OOM_INCLUDE, OOM_PRELOAD, OOM_TX_INCLUDE } oom_kind_t;

static unsigned oom_outcomes[-ORM_ERRNO_MAX_ + 1];

static int oom_setup(void **state) {
  assert_int_equal(orm_test_alloc_install(), 0);
  return setup(state);
}

static int oom_teardown(void **state) {
  teardown(state);
  orm_test_alloc_fail_none();
  long live = orm_test_alloc_live();
  assert_int_equal(orm_test_alloc_restore(), 0);
  if (live != 0)
    fail_msg("%ld block(s) of the library leaked", live);
  return 0;
}

/* A statement on the caller's transaction; false when it fails. */
static bool tx_statement_ok(orm_tx_t *tx, char *why, size_t len) {
  orm_step_t s = {.result = 1};
  assert_int_equal(orm_query_async(tx, "SELECT 7", NULL, 0, orm_fx_on_step,
                                   &s, NULL),
                   0);
  wait_step(&s, 10000);
  if (s.status == 0 && s.value == 7)
    return true;
  snprintf(why, len, "the caller's transaction was harmed: %s %s %s",
           orm_err_name(s.status), s.sqlstate, s.message);
  return false;
}

/* One step; returns whether an allocation was refused. What went wrong,
 * if anything, goes to `why` (the step cleans up first, so that the sweep
 * can go on and a leak check stays meaningful). */
static int oom_step(oom_kind_t kind, long n, char *why, size_t len) {
  orm_rows_t *in_hand = NULL;
  orm_tx_t *tx = NULL;
  orm_query_t *q = NULL;
  why[0] = '\0';
  if (kind == OOM_PRELOAD)
    in_hand = fetch(query_inc(lconv_model(), NULL, "id"));
  else
    q = query_inc(lconv_model(), "messages.usage", "id");
  if (kind == OOM_TX_INCLUDE) {
    assert_int_equal(orm_tx_begin(fx.pool, &tx), 0);
    assert_true(tx_statement_ok(tx, why, len));
  }
  static orm_step_t s; /* see test_one_round_trip */
  s = TAKE;
  orm_test_alloc_fail(ORM_TEST_ALLOC_FAIL_ONLY_N, n);
  int rc = kind == OOM_PRELOAD
               ? orm_preload_async(fx.pool, in_hand, "messages.usage",
                                   orm_fx_on_step, &s, NULL)
               : orm_find_all_async(kind == OOM_TX_INCLUDE
                                        ? orm_tx_exec(tx)
                                        : orm_pool_exec(fx.pool),
                                    NULL, q, orm_fx_on_step, &s, NULL);
  if (rc != 0) {
    if (rc != ORM_ENOMEM)
      snprintf(why, len, "the call returned %s", orm_err_name(rc));
    orm_fx_run_ms(&fx, 5);
    assert_int_equal(s.done, 0);
    oom_outcomes[-rc]++;
  } else {
    wait_step(&s, 20000);
    orm_fx_run_ms(&fx, 1);
    assert_int_equal(s.done, 1);
    if (s.status != 0 && s.status != ORM_ENOMEM)
      snprintf(why, len, "the load failed with %s %s \"%s\"",
               orm_err_name(s.status), s.sqlstate, s.message);
    oom_outcomes[-s.status]++;
  }
  int refused = orm_test_alloc_refusals() > 0;
  orm_test_alloc_fail_none();
  orm_query_free(q);
  if (rc == 0 && s.status == 0) {
    if (kind == OOM_PRELOAD) {
      assert_null(s.taken);
      check_ldc(in_hand, 2, 1);
    } else {
      assert_int_equal(check_ldc(s.taken, 2, 1), 3);
    }
  }
  orm_rows_free(s.taken);
  s.taken = NULL;
  orm_rows_free(in_hand);
  if (tx != NULL) {
    bool ok = why[0] != '\0' || tx_statement_ok(tx, why, len);
    orm_step_t end = {0};
    assert_int_equal(ok ? orm_tx_commit_async(tx, orm_fx_on_step, &end, NULL)
                        : orm_tx_rollback_async(tx, orm_fx_on_step, &end,
                                                NULL),
                     0);
    wait_step(&end, 10000);
    if (end.status != 0 && why[0] == '\0')
      snprintf(why, len, "COMMIT: %s %s %s", orm_err_name(end.status),
               end.sqlstate, end.message);
  }
  wait_idle();
  orm_rows_t *rows = fetch(query_inc(lconv_model(), "messages.usage", "id"));
  assert_int_equal(check_ldc(rows, 2, 1), 3);
  orm_rows_free(rows);
  return refused;
}

static void oom_sweep(oom_kind_t kind) {
  seed_ldc(3, 2, 1);
  memset(oom_outcomes, 0, sizeof oom_outcomes);
  char first[700] = "", why[600];
  long n = 0, bad = 0;
  while (oom_step(kind, n, why, sizeof why)) {
    if (why[0] != '\0') {
      if (bad++ == 0)
        snprintf(first, sizeof first, "step %ld: %s", n, why);
      print_message("step %ld: %s\n", n, why);
    }
    n++;
    assert_true(n < 5000);
  }
  print_message("%ld steps:", n + 1);
  for (int i = 0; i <= -ORM_ERRNO_MAX_; i++)
    if (oom_outcomes[i] > 0)
      print_message(" %s=%u", i == 0 ? "ok" : orm_err_name(-i),
                    oom_outcomes[i]);
  print_message("\n");
  assert_true(n > 10); /* the load really allocated through us */
  if (bad > 0)
    fail_msg("%ld step(s) went wrong; the first: %s", bad, first);
}

static void test_oom_include(void **state) { oom_sweep(OOM_INCLUDE); }
static void test_oom_preload(void **state) { oom_sweep(OOM_PRELOAD); }
static void test_oom_tx_include(void **state) { oom_sweep(OOM_TX_INCLUDE); }

int main(void) {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
#define OOM(name) cmocka_unit_test_setup_teardown(name, oom_setup, oom_teardown)
  const struct CMUnitTest tests[] = {
      T(test_preload),
      T(test_preload_errors),
      T(test_preload_chunks),
      T(test_on_transaction),
      OOM(test_oom_include),
      OOM(test_oom_preload),
      OOM(test_oom_tx_include),
  };
#undef OOM
#undef T
  return orm_run_group_tests(tests, NULL, NULL);
}
