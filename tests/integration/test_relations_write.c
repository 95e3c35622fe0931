/* SPDX-License-Identifier: MIT */
/* Writing through a relation: a conversation inserted with its messages in
 * one statement, the messages' foreign keys set by the server from the
 * conversation's generated id, everything written back; all or nothing. */
#include "fixture.h"

#include <stdio.h>
#include <string.h>

#include "domain.h"

#define SCHEMA "relations_write_test"

/* How often the server ran statements starting with `prefix`, or -1 when
 * pg_stat_statements is not there (a server given by DATABASE_URL). */
static int64_t calls(orm_fx_t *fx, const char *prefix) {
  if (orm_fx_int(fx, "SELECT count(*) FROM pg_extension "
                     "WHERE extname = 'pg_stat_statements'") != 1)
    return -1;
  char sql[256];
  snprintf(sql, sizeof sql,
           "SELECT coalesce(sum(calls), 0) FROM public.pg_stat_statements "
           "WHERE query LIKE '%s%%'",
           prefix);
  return orm_fx_int(fx, sql);
}

static void expect_ok(const orm_step_t *s) {
  if (s->status != 0)
    fail_msg("%s %s %s", orm_err_name(s->status), s->sqlstate, s->message);
}

static void new_user(orm_fx_t *fx, user_t *u, orm_uuid_t *agent_id) {
  orm_fx_sql(fx, "INSERT INTO users (email, name) VALUES ('w@example.com', 'W')");
  orm_fx_sql(fx, "INSERT INTO agents (id, owner_id, name, model, status, "
                 "temperature, config, tags) VALUES "
                 "('00000000-0000-0000-0000-0000000000a1', "
                 "(SELECT id FROM users), 'A', 'm', 'active', 0, '{}', '{}')");
  *u = (user_t){.id = orm_fx_int(fx, "SELECT id FROM users")};
  memset(agent_id->bytes, 0, sizeof agent_id->bytes);
  agent_id->bytes[15] = 0xa1;
}

static void fill_messages(message_t *m, size_t n, int64_t bogus_fk) {
  static const char *texts[] = {"one", "two", "three", "four"};
  for (size_t i = 0; i < n; i++) {
    m[i] = (message_t){.conversation_id = bogus_fk,
                       .role = i % 2 ? "assistant" : "user",
                       .content = texts[i % 4],
                       .tokens = (int32_t)i};
    ORM_SET_NULL(&m[i], message, metadata);
    ORM_SET_NULL(&m[i], message, author_id);
    ORM_SET_NULL(&m[i], message, editor_id);
  }
}

/* Three messages: one statement; ids, timestamps and keys come back. */
static void test_conversation_with_messages(void **state) {
  (void)state;
  orm_fx_t fx;
  orm_fx_open(&fx, SCHEMA, 1, NULL);
  user_t u;
  orm_uuid_t agent;
  new_user(&fx, &u, &agent);
  const char *stmt = "WITH p AS (INSERT INTO \"conversations\"";
  int64_t before = calls(&fx, stmt);
  message_t msgs[3];
  fill_messages(msgs, 3, 999999); /* ignored: the server sets it */
  conversation_t c = {.agent_id = agent, .user_id = u.id, .title = "t"};
  ORM_SET_NULL(&c, conversation, ended_at);
  c.messages.items = msgs;
  c.messages.len = 3;
  orm_step_t s = {.take = 1};
  assert_int_equal(orm_insert_with_async(fx.pool, conversation_model(), &c,
                                         "messages", orm_fx_on_step, &s, NULL),
                   0);
  orm_fx_wait(&fx, &s, 1);
  expect_ok(&s);
  assert_true(c.id > 0);
  assert_true(c.started_at > 0);
  assert_true(ORM_REL_LOADED(&c, messages));
  for (int i = 0; i < 3; i++) {
    assert_true(msgs[i].id > 0);
    assert_int_equal(msgs[i].conversation_id, c.id);
    assert_true(msgs[i].created_at > 0);
    if (i > 0)
      assert_true(msgs[i].id > msgs[i - 1].id); /* in the caller's order */
  }
  /* The value: the conversation as stored, with its messages. */
  orm_rows_t *rows = s.taken;
  assert_int_equal(orm_rows_count(rows), 1);
  conversation_t *stored = orm_rows_at(rows, 0);
  message_t *items = NULL;
  size_t n = 0;
  assert_int_equal(ORM_REL_MANY(stored, messages, &items, &n), 0);
  assert_int_equal(n, 3);
  for (size_t i = 0; i < n; i++) {
    assert_int_equal(items[i].id, msgs[i].id);
    assert_string_equal(items[i].content, msgs[i].content);
    assert_string_equal(items[i].role, msgs[i].role);
  }
  orm_rows_free(rows);
  char sql[160];
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM messages WHERE conversation_id = %lld",
           (long long)c.id);
  assert_int_equal(orm_fx_int(&fx, sql), 3);
  /* One statement did it all. */
  if (before >= 0)
    assert_int_equal(calls(&fx, stmt), before + 1);
  orm_fx_close(&fx);
}

/* No children: the parent alone; the relation is loaded and empty. */
static void test_no_children(void **state) {
  (void)state;
  orm_fx_t fx;
  orm_fx_open(&fx, SCHEMA, 1, NULL);
  user_t u;
  orm_uuid_t agent;
  new_user(&fx, &u, &agent);
  conversation_t c = {.agent_id = agent, .user_id = u.id, .title = NULL};
  ORM_SET_NULL(&c, conversation, ended_at);
  orm_step_t s = {.take = 1};
  assert_int_equal(orm_insert_with_async(fx.pool, conversation_model(), &c,
                                         "messages", orm_fx_on_step, &s, NULL),
                   0);
  orm_fx_wait(&fx, &s, 1);
  expect_ok(&s);
  assert_true(c.id > 0);
  conversation_t *stored = orm_rows_at(s.taken, 0);
  message_t *items = (message_t *)&c; /* must be overwritten */
  size_t n = 99;
  assert_int_equal(ORM_REL_MANY(stored, messages, &items, &n), 0);
  assert_int_equal(n, 0);
  assert_null(items);
  orm_rows_free(s.taken);
  assert_int_equal(orm_fx_int(&fx, "SELECT count(*) FROM messages"), 0);
  assert_int_equal(orm_fx_int(&fx, "SELECT count(*) FROM conversations"), 1);
  orm_fx_close(&fx);
}

/* A has-one child: a message with its usage record. */
static void test_has_one(void **state) {
  (void)state;
  orm_fx_t fx;
  orm_fx_open(&fx, SCHEMA, 1, NULL);
  user_t u;
  orm_uuid_t agent;
  new_user(&fx, &u, &agent);
  orm_fx_sql(&fx, "INSERT INTO conversations (agent_id, user_id) VALUES "
                  "('00000000-0000-0000-0000-0000000000a1', "
                  "(SELECT id FROM users))");
  message_t m;
  fill_messages(&m, 1, orm_fx_int(&fx, "SELECT id FROM conversations"));
  usage_record_t usage = {.user_id = u.id,
                          .day = 20000,
                          .prompt_tokens = 3,
                          .completion_tokens = 4,
                          .cost = "0.5",
                          .message_id = -1};
  ORM_SET_NULL(&usage, usage_record, agent_id);
  ORM_SET_NULL(&usage, usage_record, latency_ms);
  ORM_SET_NULL(&usage, usage_record, request_digest);
  m.usage.item = &usage;
  orm_step_t s = {.take = 1};
  assert_int_equal(orm_insert_with_async(fx.pool, message_model(), &m, "usage",
                                         orm_fx_on_step, &s, NULL),
                   0);
  orm_fx_wait(&fx, &s, 1);
  expect_ok(&s);
  assert_true(m.id > 0);
  assert_int_equal(usage.message_id, m.id);
  assert_true(usage.id > 0);
  message_t *stored = orm_rows_at(s.taken, 0);
  usage_record_t *got = NULL;
  assert_int_equal(ORM_REL_ONE(stored, usage, &got), 0);
  assert_non_null(got);
  assert_int_equal(got->id, usage.id);
  assert_string_equal(got->cost, "0.500000000000");
  orm_rows_free(s.taken);
  orm_fx_close(&fx);
}

/* One bad child fails the whole statement: no conversation, no message. */
static void test_all_or_nothing(void **state) {
  (void)state;
  orm_fx_t fx;
  orm_fx_open(&fx, SCHEMA, 1, NULL);
  user_t u;
  orm_uuid_t agent;
  new_user(&fx, &u, &agent);
  message_t msgs[3];
  fill_messages(msgs, 3, 0);
  msgs[2].role = "robot"; /* not a message_role */
  conversation_t c = {.agent_id = agent, .user_id = u.id, .title = "x"};
  ORM_SET_NULL(&c, conversation, ended_at);
  c.messages.items = msgs;
  c.messages.len = 3;
  orm_step_t s = {0};
  assert_int_equal(orm_insert_with_async(fx.pool, conversation_model(), &c,
                                         "messages", orm_fx_on_step, &s, NULL),
                   0);
  orm_fx_wait(&fx, &s, 1);
  assert_int_equal(s.status, ORM_ESERVER);
  assert_string_equal(s.sqlstate, "22P02");
  assert_int_equal(c.id, 0); /* nothing written back */
  assert_int_equal(msgs[0].id, 0);
  assert_int_equal(orm_fx_int(&fx, "SELECT count(*) FROM conversations"), 0);
  assert_int_equal(orm_fx_int(&fx, "SELECT count(*) FROM messages"), 0);
  /* In a transaction that rolls back, a good one leaves nothing either. */
  fill_messages(msgs, 3, 0);
  orm_tx_t *tx;
  assert_int_equal(orm_tx_begin(fx.pool, &tx), 0);
  orm_step_t t[2] = {{0}};
  assert_int_equal(orm_insert_with_async(tx, conversation_model(), &c,
                                         "messages", orm_fx_on_step, &t[0],
                                         NULL),
                   0);
  assert_int_equal(orm_tx_rollback_async(tx, orm_fx_on_step, &t[1], NULL), 0);
  orm_fx_wait(&fx, t, 2);
  expect_ok(&t[0]);
  expect_ok(&t[1]);
  assert_true(c.id > 0);
  assert_int_equal(orm_fx_int(&fx, "SELECT count(*) FROM conversations"), 0);
  assert_int_equal(orm_fx_int(&fx, "SELECT count(*) FROM messages"), 0);
  orm_fx_close(&fx);
}

static void test_bad_calls(void **state) {
  (void)state;
  orm_fx_t fx;
  orm_fx_open(&fx, SCHEMA, 1, NULL);
  conversation_t c = {0};
  assert_int_equal(orm_insert_with_async(fx.pool, conversation_model(), &c,
                                         "nope", NULL, NULL, NULL),
                   ORM_ENORELATION);
  assert_int_equal(orm_insert_with_async(fx.pool, conversation_model(), &c,
                                         "user", NULL, NULL, NULL),
                   ORM_ENOTSUP);
  assert_int_equal(orm_insert_with_async(fx.pool, conversation_model(), NULL,
                                         "messages", NULL, NULL, NULL),
                   ORM_EINVAL);
  assert_int_equal(orm_insert_with_async(fx.pool, conversation_model(), &c,
                                         NULL, NULL, NULL, NULL),
                   ORM_EINVAL);
  c.messages.len = 2; /* and no items */
  assert_int_equal(orm_insert_with_async(fx.pool, conversation_model(), &c,
                                         "messages", NULL, NULL, NULL),
                   ORM_EINVAL);
  assert_int_equal((orm_insert_with_async)(NULL, conversation_model(), &c,
                                           "messages", NULL, NULL, NULL),
                   ORM_EINVAL);
  orm_pool_stats_t st;
  assert_int_equal(orm_pool_stats(fx.pool, &st), 0);
  assert_int_equal(st.queries, 0);
  orm_fx_close(&fx);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_conversation_with_messages),
      cmocka_unit_test(test_no_children),
      cmocka_unit_test(test_has_one),
      cmocka_unit_test(test_all_or_nothing),
      cmocka_unit_test(test_bad_calls),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
