/* SPDX-License-Identifier: MIT */
/* Relations: nesting three deep, several paths at once, a self-referential
 * model, paged and keyset parents, strict loading, no rows at either end,
 * and loading inside a transaction. */
#define SCHEMA "test_relations_nesting"
#include "relations_models.h"

/* ---- 6. nesting ---------------------------------------------------------- */


static void test_nested_three_deep(void **state) {
  seed_history();
  orm_rows_t *rows =
      fetch(query_inc(user_model(), "conversations.messages.usage", "id"));
  assert_int_equal(orm_rows_count(rows), 3);
  user_t *u = orm_rows_array(rows);
  conversation_t *cs = NULL;
  size_t nc = 0;
  assert_int_equal(ORM_REL_MANY(&u[0], conversations, &cs, &nc), 0);
  assert_int_equal(nc, 2);
  assert_int_equal(cs[0].id, 21); /* started_at DESC */
  assert_int_equal(cs[1].id, 20);
  expect_message_ids(&cs[0], "402");
  expect_message_ids(&cs[1], "400,401");
  usage_record_t *ur = NULL;
  assert_int_equal(ORM_REL_ONE(&cs[0].messages.items[0], usage, &ur), 0);
  assert_non_null(ur);
  assert_int_equal(ur->id, 2);
  assert_int_equal(ORM_REL_ONE(&cs[1].messages.items[0], usage, &ur), 0);
  assert_int_equal(ur->id, 1);
  assert_int_equal(ORM_REL_ONE(&cs[1].messages.items[1], usage, &ur), 0);
  assert_null(ur);
  assert_false(ORM_REL_LOADED(&cs[1].messages.items[0], author));
  assert_false(ORM_REL_LOADED(&cs[0], agent));
  assert_int_equal(ORM_REL_MANY(&u[1], conversations, &cs, &nc), 0);
  assert_int_equal(nc, 1);
  expect_message_ids(&cs[0], "");
  assert_int_equal(ORM_REL_MANY(&u[2], conversations, &cs, &nc), 0);
  assert_int_equal(nc, 0);
  assert_false(ORM_REL_LOADED(&u[0], agents));
  assert_false(ORM_REL_LOADED(&u[0], usage));
  orm_rows_free(rows);
}

static void test_several_paths(void **state) {
  seed_history();
  orm_rows_t *rows = fetch(
      query_inc(user_model(), "conversations.messages.author, agents", "id"));
  user_t *u = orm_rows_array(rows);
  /* agents ordered by created_at: A2 before A1 */
  agent_t *ag = NULL;
  size_t n = 0;
  assert_int_equal(ORM_REL_MANY(&u[0], agents, &ag, &n), 0);
  assert_int_equal(n, 2);
  assert_string_equal(ag[0].name, "A2");
  assert_string_equal(ag[1].name, "A1");
  assert_int_equal(ORM_REL_MANY(&u[1], agents, &ag, &n), 0);
  assert_int_equal(n, 1);
  assert_int_equal(ORM_REL_MANY(&u[2], agents, &ag, &n), 0);
  assert_int_equal(n, 0);
  conversation_t *cs = NULL;
  assert_int_equal(ORM_REL_MANY(&u[0], conversations, &cs, &n), 0);
  message_t *m = cs[1].messages.items; /* 400 by user 2, 401 by nobody */
  user_t *a = NULL;
  assert_int_equal(ORM_REL_ONE(&m[0], author, &a), 0);
  assert_int_equal(a->id, 2);
  assert_int_equal(ORM_REL_ONE(&m[1], author, &a), 0);
  assert_null(a);
  /* not on any path: not loaded, outputs untouched */
  usage_record_t *ur = (usage_record_t *)(uintptr_t)1;
  assert_int_equal(ORM_REL_ONE(&m[0], usage, &ur), ORM_ENOTLOADED);
  assert_ptr_equal(ur, (usage_record_t *)(uintptr_t)1);
  assert_false(ORM_REL_LOADED(&m[1], editor));
  orm_rows_free(rows);

  /* the same relation under two parents, and paths given in two calls
   * that share a prefix */
  orm_query_t *q = query_inc(message_model(), "author.conversations", "id");
  assert_int_equal(orm_query_include(q, "editor.conversations"), 0);
  assert_int_equal(orm_query_include(q, "author"), 0); /* already there */
  rows = fetch(q);
  assert_int_equal(orm_rows_count(rows), 3);
  m = orm_rows_array(rows);
  /* 401 edited by user 1, whose conversations are 21, 20 */
  user_t *e = NULL;
  assert_int_equal(ORM_REL_ONE(&m[1], editor, &e), 0);
  assert_int_equal(e->id, 1);
  assert_int_equal(ORM_REL_MANY(e, conversations, &cs, &n), 0);
  assert_int_equal(n, 2);
  assert_int_equal(cs[0].id, 21);
  /* 402 written by user 1 */
  assert_int_equal(ORM_REL_ONE(&m[2], author, &a), 0);
  assert_int_equal(ORM_REL_MANY(a, conversations, &cs, &n), 0);
  assert_int_equal(n, 2);
  assert_int_equal(cs[1].id, 20);
  orm_rows_free(rows);
}

/* Back to the parent and down again: every message's conversation with all
 * of its messages, the message itself among them; a json column on the
 * way. */
static void test_back_and_forth(void **state) {
  seed_conversations();
  orm_fx_sql(&fx, "UPDATE messages SET metadata = '{\"k\": [1, 2]}' "
                  "WHERE id = 102");
  orm_query_t *q = query_inc(message_model(), "conversation.messages", "id");
  assert_int_equal(orm_query_where(q, "conversation_id", ORM_OP_EQ,
                                   ORM_INT8(10)),
                   0);
  orm_rows_t *rows = fetch(q);
  assert_int_equal(orm_rows_count(rows), 5);
  message_t *m = orm_rows_array(rows);
  for (size_t i = 0; i < 5; i++) {
    conversation_t *c = NULL;
    assert_int_equal(ORM_REL_ONE(&m[i], conversation, &c), 0);
    assert_non_null(c);
    assert_int_equal(c->id, 10);
    expect_message_ids(c, "101,102,105,100,103");
    assert_string_equal(c->messages.items[1].metadata, "{\"k\": [1, 2]}");
    assert_true(ORM_IS_NULL(&c->messages.items[0], message, metadata));
    assert_false(ORM_REL_LOADED(&c->messages.items[0], conversation));
  }
  assert_string_equal(m[2].metadata, "{\"k\": [1, 2]}");
  orm_rows_free(rows);
}

static void test_self_referential(void **state) {
  orm_fx_sql(&fx, "CREATE TABLE rl_nodes (id bigint PRIMARY KEY, parent_id "
                  "bigint REFERENCES rl_nodes, label text NOT NULL);"
                  "INSERT INTO rl_nodes VALUES (1, NULL, 'root'), "
                  "(2, 1, 'b'), (3, 1, 'a'), (4, 2, 'x'), (5, 2, 'y')");
  orm_rows_t *rows = fetch(
      query_inc(node_model(), "children.parent, parent.children", "id"));
  assert_int_equal(orm_rows_count(rows), 5);
  node_t *nd = orm_rows_array(rows);
  /* children by label DESC, each with its parent: the node itself */
  static const char *kids[] = {"2,3", "5,4", "", "", ""};
  /* the parent's children: the node and its siblings */
  static const char *siblings[] = {NULL, "2,3", "2,3", "5,4", "5,4"};
  for (size_t i = 0; i < 5; i++) {
    char got[32] = "";
    size_t off = 0;
    node_t *c = NULL;
    size_t n = 0;
    assert_int_equal(ORM_REL_MANY(&nd[i], children, &c, &n), 0);
    for (size_t k = 0; k < n; k++) {
      node_t *back = NULL;
      assert_int_equal(ORM_REL_ONE(&c[k], parent, &back), 0);
      assert_non_null(back);
      assert_int_equal(back->id, nd[i].id);
      assert_false(ORM_REL_LOADED(&c[k], children));
      off += (size_t)snprintf(got + off, sizeof got - off, "%s%lld",
                              k ? "," : "", (long long)c[k].id);
    }
    assert_string_equal(got, kids[i]);
    node_t *p = (node_t *)(uintptr_t)1;
    assert_int_equal(ORM_REL_ONE(&nd[i], parent, &p), 0);
    if (siblings[i] == NULL) {
      assert_null(p);
      continue;
    }
    assert_non_null(p);
    assert_int_equal(p->id, nd[i].parent_id);
    assert_int_equal(ORM_REL_MANY(p, children, &c, &n), 0);
    got[0] = '\0';
    off = 0;
    for (size_t k = 0; k < n; k++)
      off += (size_t)snprintf(got + off, sizeof got - off, "%s%lld",
                              k ? "," : "", (long long)c[k].id);
    assert_string_equal(got, siblings[i]);
    assert_false(ORM_REL_LOADED(p, parent));
  }
  orm_rows_free(rows);
  /* the same relation twice on one path is refused, even down a tree */
  orm_query_t *q = query_of(node_model());
  assert_int_equal(orm_query_include(q, "children.children"), ORM_EINVAL);
  orm_query_free(q);
}

/* ---- 7. paged parents ---------------------------------------------------- */

/* Conversations 501..510 titled t00..t09 (t00 for 501), each with two
 * messages id*10+1 and id*10+2; then 511..520 all titled "same", each with
 * two messages too. */
static void seed_pages(void) {
  seed_people();
  orm_fx_sql(&fx,
             "INSERT INTO conversations (id, agent_id, user_id, title) "
             "SELECT g, '" A1 "', 1, 't' || lpad((g - 501)::text, 2, '0') "
             "FROM generate_series(501, 510) g;"
             "INSERT INTO conversations (id, agent_id, user_id, title) "
             "SELECT g, '" A2 "', 2, 'same' FROM generate_series(511, 520) g;"
             "INSERT INTO messages (id, conversation_id, role, content) "
             "SELECT c * 10 + k, c, 'user', 'x' FROM "
             "generate_series(501, 520) c, generate_series(1, 2) k");
}

static void expect_page(const orm_rows_t *rows, const int64_t *ids,
                        size_t n) {
  assert_int_equal(orm_rows_count(rows), n);
  const conversation_t *c = orm_rows_array(rows);
  for (size_t i = 0; i < n; i++) {
    if (ids != NULL)
      assert_int_equal(c[i].id, ids[i]);
    char expect[64];
    snprintf(expect, sizeof expect, "%lld,%lld", (long long)c[i].id * 10 + 1,
             (long long)c[i].id * 10 + 2);
    expect_message_ids(&c[i], expect);
  }
}

static void test_paged_parents(void **state) {
  seed_pages();
  /* limit 3 offset 2 by title desc: t07, t06, t05 */
  orm_query_t *q = query_of(conversation_model());
  assert_int_equal(orm_query_include(q, "messages"), 0);
  assert_int_equal(orm_query_where(q, "user_id", ORM_OP_EQ, ORM_INT8(1)), 0);
  assert_int_equal(orm_query_order_by(q, "title", ORM_DESC), 0);
  assert_int_equal(orm_query_limit(q, 3), 0);
  assert_int_equal(orm_query_offset(q, 2), 0);
  orm_rows_t *rows = fetch(q);
  expect_page(rows, (const int64_t[]){508, 507, 506}, 3);
  orm_rows_free(rows);

  /* keyset: after t05 (506) by title desc: t04, t03, t02 */
  q = query_of(conversation_model());
  assert_int_equal(orm_query_include(q, "messages"), 0);
  assert_int_equal(orm_query_where(q, "user_id", ORM_OP_EQ, ORM_INT8(1)), 0);
  assert_int_equal(orm_query_order_by(q, "title", ORM_DESC), 0);
  orm_param_t key[2] = {ORM_TEXT("t05"), ORM_INT8(506)};
  assert_int_equal(orm_query_after(q, key, 2), 0);
  assert_int_equal(orm_query_limit(q, 3), 0);
  rows = fetch(q);
  expect_page(rows, (const int64_t[]){505, 504, 503}, 3);
  orm_rows_free(rows);

  /* Ties on the sort column: pages by offset, then by key, each parent
   * with exactly its own messages, and together every parent once. */
  for (int by_key = 0; by_key < 2; by_key++) {
    int seen[10] = {0};
    const char *last_title = NULL;
    int64_t last_id = 0;
    char title_buf[16];
    for (int page = 0; page < 5; page++) {
      q = query_of(conversation_model());
      assert_int_equal(orm_query_include(q, "messages"), 0);
      assert_int_equal(orm_query_where(q, "user_id", ORM_OP_EQ, ORM_INT8(2)),
                       0);
      assert_int_equal(orm_query_order_by(q, "title", ORM_ASC), 0);
      if (by_key && last_title != NULL) {
        orm_param_t k[2] = {ORM_TEXT(last_title), ORM_INT8(last_id)};
        assert_int_equal(orm_query_after(q, k, 2), 0);
      }
      assert_int_equal(orm_query_limit(q, 3), 0);
      if (!by_key)
        assert_int_equal(orm_query_offset(q, page * 3), 0);
      rows = fetch(q);
      size_t n = orm_rows_count(rows);
      assert_int_equal(n, page < 3 ? 3 : page == 3 ? 1 : 0);
      expect_page(rows, NULL, n);
      const conversation_t *c = orm_rows_array(rows);
      for (size_t i = 0; i < n; i++) {
        assert_true(c[i].id >= 511 && c[i].id <= 520);
        assert_int_equal(seen[c[i].id - 511]++, 0);
      }
      if (n > 0) {
        snprintf(title_buf, sizeof title_buf, "%s", c[n - 1].title);
        last_title = title_buf;
        last_id = c[n - 1].id;
      }
      orm_rows_free(rows);
    }
    for (int i = 0; i < 10; i++)
      assert_int_equal(seen[i], 1);
  }

  /* a limit and no order */
  q = query_of(conversation_model());
  assert_int_equal(orm_query_include(q, "messages"), 0);
  assert_int_equal(orm_query_limit(q, 4), 0);
  rows = fetch(q);
  expect_page(rows, NULL, 4);
  orm_rows_free(rows);
}

/* ---- 8. strict loading --------------------------------------------------- */

static void test_strict_loading(void **state) {
  seed_history();
  orm_rows_t *rows = fetch(query_inc(conversation_model(), "messages", "id"));
  conversation_t *c = orm_rows_array(rows);
  user_t sentinel_user;
  user_t *u = &sentinel_user;
  assert_false(ORM_REL_LOADED(&c[0], user));
  assert_int_equal(ORM_REL_ONE(&c[0], user, &u), ORM_ENOTLOADED);
  assert_ptr_equal(u, &sentinel_user);
  message_t *m = NULL;
  size_t n = 0;
  assert_int_equal(ORM_REL_MANY(&c[0], messages, &m, &n), 0);
  assert_int_equal(n, 2);
  usage_record_t sentinel_usage;
  usage_record_t *ur = &sentinel_usage;
  assert_int_equal(ORM_REL_ONE(&m[0], usage, &ur), ORM_ENOTLOADED);
  assert_ptr_equal(ur, &sentinel_usage);
  orm_rows_free(rows);

  /* rows read without includes: nothing loaded, to-many outputs untouched */
  orm_step_t s = TAKE;
  assert_int_equal(orm_find_all_async(fx.pool, user_model(), NULL,
                                      orm_fx_on_step, &s, NULL),
                   0);
  orm_fx_wait(&fx, &s, 1);
  expect_ok(&s, "find_all users");
  assert_int_equal(orm_rows_count(s.taken), 3);
  expect_none_loaded(s.taken);
  u = orm_rows_array(s.taken);
  conversation_t sentinel_conv;
  conversation_t *cs = &sentinel_conv;
  size_t len = 42;
  assert_int_equal(ORM_REL_MANY(&u[0], conversations, &cs, &len),
                   ORM_ENOTLOADED);
  assert_ptr_equal(cs, &sentinel_conv);
  assert_int_equal(len, 42);
  orm_rows_free(s.taken);

  /* the same for a query without includes, and for find by key */
  rows = fetch(query_inc(message_model(), NULL, "id"));
  assert_int_equal(orm_rows_count(rows), 3);
  expect_none_loaded(rows);
  orm_rows_free(rows);
  s = TAKE;
  assert_int_equal(orm_find_async(fx.pool, conversation_model(), ORM_INT8(20),
                                  orm_fx_on_step, &s, NULL),
                   0);
  orm_fx_wait(&fx, &s, 1);
  expect_ok(&s, "find");
  expect_none_loaded(s.taken);
  orm_rows_free(s.taken);
}

/* COUNT and EXISTS ignore includes. */
static void test_count_ignores_includes(void **state) {
  seed_history();
  orm_query_t *q = query_inc(conversation_model(), "messages.usage", NULL);
  orm_step_t s[2] = {{.result = 1}, {.take = 1}};
  assert_int_equal(orm_count_async(fx.pool, NULL, q, orm_fx_on_step, &s[0],
                                   NULL),
                   0);
  assert_int_equal(orm_exists_async(fx.pool, NULL, q, orm_fx_on_step, &s[1],
                                    NULL),
                   0);
  orm_query_free(q);
  orm_fx_wait(&fx, s, 2);
  expect_ok(&s[0], "count");
  expect_ok(&s[1], "exists");
  assert_int_equal(s[0].value, 3);
  bool exists = false;
  assert_int_equal(orm_result_bool(s[1].taken, 0, 0, &exists), 0);
  assert_true(exists);
  orm_result_free(s[1].taken);
}

/* ---- 9. no parent rows --------------------------------------------------- */

static void test_no_parent_rows(void **state) {
  seed_history();
  orm_query_t *q = query_inc(user_model(), "conversations.messages.usage, "
                                           "agents",
                             NULL);
  assert_int_equal(orm_query_where(q, "id", ORM_OP_EQ, ORM_INT8(-1)), 0);
  orm_rows_t *rows = fetch(q);
  assert_int_equal(orm_rows_count(rows), 0);
  assert_null(orm_rows_array(rows));
  orm_rows_free(rows);
  /* an empty table */
  orm_fx_sql(&fx, "CREATE TABLE rl_eparents (id bigint PRIMARY KEY);"
                  "CREATE TABLE rl_echildren (id bigint PRIMARY KEY, "
                  "parent_id bigint NOT NULL, note text)");
  rows = fetch(query_inc(eparent_model(), "kids", NULL));
  assert_int_equal(orm_rows_count(rows), 0);
  orm_rows_free(rows);
}

/* Parents, but no child rows anywhere: every statement below the query
 * selects nothing, at every depth; a to-one whose keys are all NULL. */
static void test_no_child_rows(void **state) {
  seed_people();
  orm_rows_t *rows = fetch(query_inc(
      user_model(), "conversations.messages.usage, agents.knowledge_bases",
      "id"));
  assert_int_equal(orm_rows_count(rows), 3);
  user_t *u = orm_rows_array(rows);
  for (size_t i = 0; i < 3; i++) {
    conversation_t *cs = (conversation_t *)(uintptr_t)1;
    size_t n = 9;
    assert_int_equal(ORM_REL_MANY(&u[i], conversations, &cs, &n), 0);
    assert_int_equal(n, 0);
    assert_null(cs);
  }
  agent_t *ag = NULL;
  size_t n = 0;
  assert_int_equal(ORM_REL_MANY(&u[0], agents, &ag, &n), 0);
  assert_int_equal(n, 2);
  for (size_t i = 0; i < n; i++) {
    assert_true(ORM_REL_LOADED(&ag[i], knowledge_bases));
    assert_int_equal(ag[i].knowledge_bases.len, 0);
  }
  orm_rows_free(rows);

  orm_fx_sql(&fx, "INSERT INTO conversations (id, agent_id, user_id) VALUES "
                  "(1, '" A1 "', 1);"
                  "INSERT INTO messages (id, conversation_id, role, content) "
                  "VALUES (1, 1, 'user', 'x'), (2, 1, 'user', 'y')");
  rows = fetch(query_inc(message_model(), "author.agents, editor, usage",
                         "id"));
  assert_int_equal(orm_rows_count(rows), 2);
  message_t *m = orm_rows_array(rows);
  for (size_t i = 0; i < 2; i++) {
    user_t *a = (user_t *)(uintptr_t)1;
    assert_int_equal(ORM_REL_ONE(&m[i], author, &a), 0);
    assert_null(a);
    a = (user_t *)(uintptr_t)1;
    assert_int_equal(ORM_REL_ONE(&m[i], editor, &a), 0);
    assert_null(a);
    usage_record_t *ur = (usage_record_t *)(uintptr_t)1;
    assert_int_equal(ORM_REL_ONE(&m[i], usage, &ur), 0);
    assert_null(ur);
  }
  orm_rows_free(rows);
}

/* ---- 10. in a transaction ------------------------------------------------ */

static void test_in_transaction(void **state) {
  seed_people();
  orm_tx_t *tx = NULL;
  assert_int_equal(orm_tx_begin_with(fx.pool, ORM_TX_REPEATABLE_READ, &tx), 0);
  conversation_t c = {.agent_id = uuid_of(A1), .user_id = 2, .title = "tx"};
  ORM_SET_NULL(&c, conversation, ended_at);
  orm_step_t s = TAKE;
  assert_int_equal(orm_insert_async(tx, conversation_model(), &c,
                                    orm_fx_on_step, &s, NULL),
                   0);
  orm_fx_wait(&fx, &s, 1);
  expect_ok(&s, "insert conversation");
  orm_rows_free(s.taken);
  assert_true(c.id > 0);
  message_t msgs[3];
  for (int i = 0; i < 3; i++) {
    msgs[i] = (message_t){.conversation_id = c.id,
                          .role = "user",
                          .content = i == 0 ? "one" : i == 1 ? "two" : "three",
                          .author_id = 1};
    ORM_SET_NULL(&msgs[i], message, tokens);
    ORM_SET_NULL(&msgs[i], message, editor_id);
  }
  s = TAKE;
  assert_int_equal(orm_insert_many_async(tx, message_model(), msgs, 3,
                                         orm_fx_on_step, &s, NULL),
                   0);
  orm_fx_wait(&fx, &s, 1);
  expect_ok(&s, "insert messages");
  orm_rows_free(s.taken);
  /* uncommitted: not visible outside */
  assert_int_equal(orm_fx_int(&fx, "SELECT count(*) FROM messages"), 0);

  orm_query_t *q = query_inc(user_model(), "conversations.messages.author",
                             "id");
  assert_int_equal(orm_query_where(q, "id", ORM_OP_EQ, ORM_INT8(2)), 0);
  orm_rows_t *rows = fetch_on(orm_tx_exec(tx), q);
  assert_int_equal(orm_rows_count(rows), 1);
  user_t *u = orm_rows_array(rows);
  conversation_t *cs = NULL;
  size_t n = 0;
  assert_int_equal(ORM_REL_MANY(u, conversations, &cs, &n), 0);
  assert_int_equal(n, 1);
  assert_int_equal(cs[0].id, c.id);
  char ids[64];
  snprintf(ids, sizeof ids, "%lld,%lld,%lld", (long long)msgs[0].id,
           (long long)msgs[1].id, (long long)msgs[2].id);
  expect_message_ids(&cs[0], ids);
  user_t *a = NULL;
  assert_int_equal(ORM_REL_ONE(&cs[0].messages.items[2], author, &a), 0);
  assert_int_equal(a->id, 1);
  orm_rows_free(rows);

  s = (orm_step_t){0};
  assert_int_equal(orm_tx_commit_async(tx, orm_fx_on_step, &s, NULL), 0);
  orm_fx_wait(&fx, &s, 1);
  expect_ok(&s, "commit");
  assert_int_equal(orm_fx_int(&fx, "SELECT count(*) FROM messages"), 3);
}

int main(void) {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_nested_three_deep),
      T(test_several_paths),
      T(test_back_and_forth),
      T(test_self_referential),
      T(test_paged_parents),
      T(test_strict_loading),
      T(test_count_ignores_includes),
      T(test_no_parent_rows),
      T(test_no_child_rows),
      T(test_in_transaction),
  };
#undef T
  return orm_run_group_tests(tests, NULL, NULL);
}
