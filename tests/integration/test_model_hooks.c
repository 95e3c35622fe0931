/* SPDX-License-Identifier: MIT */
/* Validation rules and hooks: a refused row never reaches the server (the
 * statements the server ran are counted), the future fails with
 * ORM_EVALIDATION naming the column; insert_many and insert_with are all or
 * nothing; hooks change rows before they go and after they come; inside a
 * transaction a refusal leaves the transaction going. */
#include "fixture.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "domain.h"

#define SCHEMA "model_hooks_test"

static int loaded, inserted, updated;

static bool has_at(const void *member, void *data) {
  (void)data;
  const char *s = *(const char *const *)member;
  return strchr(s, '@') != NULL;
}

/* Lower-cases the email; refuses the address "blocked@x". */
static int before_insert(void *row, orm_refusal_t *why, void *data);
static int before_update(void *row, uint64_t fields, orm_refusal_t *why,
                         void *data);
static int before_delete(const orm_param_t *key, orm_refusal_t *why, void *data);
static void after_load(void *row, void *data);

#define MEMBER_FIELDS(X)                                                       \
  X(id, ORM_T_INT8, int64_t, ORM_F_PK | ORM_F_GENERATED)                       \
  X(email, ORM_T_TEXT, const char *, 0)                                        \
  X(nick, ORM_T_TEXT, const char *, ORM_F_NULLABLE)                            \
  X(tokens, ORM_T_INT4, int32_t, 0)                                            \
  X(score, ORM_T_FLOAT8, double, ORM_F_NULLABLE)                               \
  X(tags, ORM_T_TEXT_ARRAY, orm_text_array_t, ORM_F_NULLABLE)                  \
  X(note, ORM_T_TEXT, const char *, ORM_F_NULLABLE)
#define MEMBER_RELATIONS(R) R(posts, ORM_HAS_MANY, post, member_id, NULL)
ORM_MODEL_DECLARE_REL(member, MEMBER_FIELDS, MEMBER_RELATIONS);

#define POST_FIELDS(X)                                                         \
  X(id, ORM_T_INT8, int64_t, ORM_F_PK | ORM_F_GENERATED)                       \
  X(member_id, ORM_T_INT8, int64_t, 0)                                         \
  X(body, ORM_T_TEXT, const char *, 0)
ORM_MODEL_DECLARE(post, POST_FIELDS);

static const orm_rule_t member_rules[] = {
    ORM_NOT_EMPTY("email"),
    ORM_LENGTH("email", 3, 40),
    ORM_CHECK("email", has_at, "must contain @"),
    ORM_RANGE("tokens", 0, 1000000),
    ORM_RANGE("score", -1, 1),
    ORM_LENGTH("tags", 0, 3),
};
static const orm_model_hooks_t member_hooks = {
    .rules = member_rules,
    .nrules = sizeof member_rules / sizeof member_rules[0],
    .before_insert = before_insert,
    .before_update = before_update,
    .before_delete = before_delete,
    .after_load = after_load,
};
ORM_MODEL_DEFINE_REL_HOOKS(member, "members", MEMBER_FIELDS, MEMBER_RELATIONS,
                           &member_hooks);

static const orm_rule_t post_rules[] = {ORM_NOT_EMPTY("body")};
static const orm_model_hooks_t post_hooks = {.rules = post_rules, .nrules = 1};
ORM_MODEL_DEFINE_HOOKS(post, "posts", POST_FIELDS, &post_hooks);

static char lowered[32][64];
static int nlowered;

static int before_insert(void *row, orm_refusal_t *why, void *data) {
  (void)data;
  member_t *m = row;
  inserted++;
  if (m->email != NULL && strcmp(m->email, "blocked@x") == 0) {
    why->field = ORM_FIELD(member, email);
    snprintf(why->message, sizeof why->message, "is blocked");
    return 1;
  }
  if (m->email != NULL && nlowered < 32) { /* normalize before it goes */
    char *l = lowered[nlowered++];
    snprintf(l, 64, "%s", m->email);
    for (char *c = l; *c; c++)
      if (*c >= 'A' && *c <= 'Z')
        *c = (char)(*c - 'A' + 'a');
    m->email = l;
  }
  return 0;
}

static int before_update(void *row, uint64_t fields, orm_refusal_t *why,
                         void *data) {
  (void)why;
  (void)data;
  (void)fields;
  updated++;
  ((member_t *)row)->note = "updated";
  ORM_SET_NOT_NULL((member_t *)row, member, note);
  return 0;
}

static int before_delete(const orm_param_t *key, orm_refusal_t *why, void *data) {
  (void)data;
  if (key->kind == ORM_PARAM_INT8 && key->v.i == 1) {
    snprintf(why->message, sizeof why->message, "the first member stays");
    return 1;
  }
  return 0;
}

static void after_load(void *row, void *data) {
  (void)data;
  loaded++;
  ((member_t *)row)->note = "loaded";
}

/* Requests the pool made: a refused call makes none. */
static uint64_t requests(orm_fx_t *fx) {
  orm_pool_stats_t st;
  assert_int_equal(orm_pool_stats(fx->pool, &st), 0);
  return st.queries;
}

/* The nullable columns a test row leaves out. */
static member_t *nulls(member_t *m) {
  ORM_SET_NULL(m, member, nick);
  ORM_SET_NULL(m, member, score);
  ORM_SET_NULL(m, member, tags);
  ORM_SET_NULL(m, member, note);
  return m;
}

static void expect_refused(const orm_step_t *s, const char *field, const char *words) {
  if (s->status != ORM_EVALIDATION)
    fail_msg("not refused: %s %s", orm_err_name(s->status), s->message);
  if (strstr(s->message, words) == NULL)
    fail_msg("\"%s\" does not say \"%s\"", s->message, words);
  (void)field;
}

static void test_rules_and_hooks(void **state) {
  (void)state;
  loaded = inserted = updated = 0;
  orm_fx_t fx;
  orm_fx_open(&fx, SCHEMA, 0, NULL);
  orm_fx_sql(&fx, "CREATE TABLE members (id bigserial PRIMARY KEY, email text NOT NULL, "
                  "nick text, tokens int NOT NULL, score float8, tags text[], note text)");
  orm_fx_sql(&fx, "CREATE TABLE posts (id bigserial PRIMARY KEY, member_id bigint "
                  "NOT NULL REFERENCES members, body text NOT NULL)");
  assert_int_equal(orm_model_check(member_model()), 0);

  /* Each rule refuses what it should, naming the column; nothing sent. */
  char t1[] = "a", t2[] = "b", t3[] = "c", t4[] = "d";
  char *tags3[] = {t1, t2, t3, t4};
  struct {
    member_t row;
    const char *field, *words;
  } bad[] = {
      {{.email = "", .tokens = 1}, "email", "must not be empty"},
      {{.email = NULL, .tokens = 1}, "email", "must not be empty"},
      {{.email = "a@", .tokens = 1}, "email", "length 2 is not within 3..40"},
      {{.email = "no-at-sign", .tokens = 1}, "email", "must contain @"},
      {{.email = "x@y.z", .tokens = -1}, "tokens", "-1 is not within 0..1000000"},
      {{.email = "x@y.z", .tokens = 1, .score = 1.5}, "score", "1.5 is not within"},
      {{.email = "x@y.z", .tokens = INT32_MIN}, "tokens", "-2147483648 is not within"},
      {{.email = "x@y.z", .tokens = 1, .score = NAN}, "score", "nan is not within"},
      {{.email = "x@y.z", .tokens = 1, .tags = {tags3, 4}}, "tags", "length 4"},
      {{.email = "blocked@x", .tokens = 1}, "email", "is blocked"},
  };
  uint64_t before = requests(&fx);
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    orm_step_t s = {0};
    orm_future_t *f = NULL;
    assert_int_equal(orm_insert_async(fx.pool, member_model(), &bad[i].row,
                                      orm_fx_on_step, &s, &f),
                     0);
    assert_false(s.done); /* never inside the call */
    orm_fx_wait(&fx, &s, 1);
    expect_refused(&s, bad[i].field, bad[i].words);
    const orm_error_t *e = orm_future_error(f);
    assert_non_null(e->field);
    assert_string_equal(e->field, bad[i].field);
    assert_string_equal(e->sqlstate, "");
    orm_future_release(f);
  }
  assert_int_equal(requests(&fx), before); /* nothing sent */
  assert_int_equal(orm_fx_int(&fx, "SELECT count(*) FROM members"), 0);

  /* A good row: the hook lower-cased it before it went. */
  member_t ok = {.email = "Ada@Example.COM", .tokens = 5};
  nulls(&ok);
  orm_step_t s = {0};
  assert_int_equal(orm_insert_async(fx.pool, member_model(), &ok, orm_fx_on_step, &s, NULL), 0);
  orm_fx_wait(&fx, &s, 1);
  assert_int_equal(s.status, 0);
  char *email = orm_fx_text(&fx, "SELECT email FROM members");
  assert_string_equal(email, "ada@example.com");
  free(email);

  /* insert_many: one bad row, none sent. */
  member_t many[3] = {{.email = "b@x", .tokens = 1}, {.email = "c", .tokens = 1},
                      {.email = "d@x", .tokens = 1}};
  for (int i = 0; i < 3; i++)
    nulls(&many[i]);
  orm_step_t m = {0};
  assert_int_equal(orm_insert_many_async(fx.pool, member_model(), many, 3, orm_fx_on_step, &m, NULL), 0);
  orm_fx_wait(&fx, &m, 1);
  expect_refused(&m, "email", "row 1: email");
  assert_int_equal(orm_fx_int(&fx, "SELECT count(*) FROM members"), 1);

  /* insert_with: a bad child, nothing sent. */
  post_t posts[2] = {{.body = "hello"}, {.body = ""}};
  member_t parent = {.email = "e@x", .tokens = 1};
  nulls(&parent);
  parent.posts.items = posts;
  parent.posts.len = 2;
  orm_step_t w = {0};
  assert_int_equal(orm_insert_with_async(fx.pool, member_model(), &parent, "posts",
                                         orm_fx_on_step, &w, NULL),
                   0);
  orm_fx_wait(&fx, &w, 1);
  expect_refused(&w, "body", "posts: row 1: body: must not be empty");
  assert_int_equal(orm_fx_int(&fx, "SELECT count(*) FROM members"), 1);
  assert_int_equal(orm_fx_int(&fx, "SELECT count(*) FROM posts"), 0);

  /* Reads: after_load saw every row, also the included ones' parents. */
  orm_step_t r = {.take = 1};
  assert_int_equal(orm_find_async(fx.pool, member_model(), ORM_INT8(ok.id), orm_fx_on_step, &r, NULL), 0);
  orm_fx_wait(&fx, &r, 1);
  assert_int_equal(r.status, 0);
  member_t *got = orm_rows_at(r.taken, 0);
  assert_string_equal(got->note, "loaded");
  assert_int_equal(loaded, 1);

  /* Update: the hook stamps the row; the rules see the fields written. */
  got->tokens = 7;
  orm_step_t u = {0};
  assert_int_equal(orm_update_async(fx.pool, member_model(), got, 0, orm_fx_on_step, &u, NULL), 0);
  orm_fx_wait(&fx, &u, 1);
  assert_int_equal(u.status, 0);
  char *note = orm_fx_text(&fx, "SELECT note FROM members");
  assert_string_equal(note, "updated");
  free(note);
  got->tokens = -5;
  assert_int_equal(orm_update_async(fx.pool, member_model(), got, 0, orm_fx_on_step, &u, NULL), 0);
  u.done = 0;
  orm_fx_wait(&fx, &u, 1);
  expect_refused(&u, "tokens", "not within");
  /* Only `nick` written: the bad tokens are not its business. */
  got->nick = "ada";
  u.done = 0;
  assert_int_equal(orm_update_async(fx.pool, member_model(), got,
                                    ORM_FIELD_BIT(member, nick), orm_fx_on_step, &u, NULL),
                   0);
  orm_fx_wait(&fx, &u, 1);
  assert_int_equal(u.status, 0);
  orm_rows_free(r.taken);

  /* Delete: the hook keeps the first member. */
  orm_step_t d = {0};
  assert_int_equal(orm_delete_async(fx.pool, member_model(), ORM_INT8(1), orm_fx_on_step, &d, NULL), 0);
  orm_fx_wait(&fx, &d, 1);
  expect_refused(&d, NULL, "the first member stays");
  assert_int_equal(orm_fx_int(&fx, "SELECT count(*) FROM members"), 1);

  /* Upsert: the same rules. */
  member_t up = {.email = "nope", .tokens = 1};
  nulls(&up);
  orm_step_t p = {0};
  assert_int_equal(orm_upsert_async(fx.pool, member_model(), &up, NULL, orm_fx_on_step, &p, NULL), 0);
  orm_fx_wait(&fx, &p, 1);
  expect_refused(&p, "email", "must contain @");

  /* In a transaction: the refused write sends nothing, the rest commits. */
  orm_tx_t *tx;
  assert_int_equal(orm_tx_begin(fx.pool, &tx), 0);
  member_t in_tx[2] = {{.email = "bad", .tokens = 1}, {.email = "good@x", .tokens = 2}};
  nulls(&in_tx[1]);
  orm_step_t t[3] = {{0}};
  assert_int_equal(orm_insert_async(tx, member_model(), &in_tx[0], orm_fx_on_step, &t[0], NULL), 0);
  assert_int_equal(orm_insert_async(tx, member_model(), &in_tx[1], orm_fx_on_step, &t[1], NULL), 0);
  assert_int_equal(orm_tx_commit_async(tx, orm_fx_on_step, &t[2], NULL), 0);
  orm_fx_wait(&fx, t, 3);
  expect_refused(&t[0], "email", "must contain @");
  assert_int_equal(t[1].status, 0);
  assert_int_equal(t[2].status, 0);
  assert_int_equal(orm_fx_int(&fx, "SELECT count(*) FROM members WHERE email = 'good@x'"), 1);
  orm_fx_close(&fx);
}

/* Rules that make no sense for their column make the model invalid. */
#define ODD_FIELDS(X)                                                          \
  X(id, ORM_T_INT8, int64_t, ORM_F_PK)                                         \
  X(n, ORM_T_INT4, int32_t, 0)                                                 \
  X(s, ORM_T_TEXT, const char *, 0)
ORM_MODEL_DECLARE(odd, ODD_FIELDS);
static const orm_rule_t odd_rules[][1] = {
    {ORM_NOT_EMPTY("n")},    {ORM_LENGTH("n", 0, 3)}, {ORM_RANGE("s", 0, 1)},
    {ORM_LENGTH("s", 5, 2)}, {ORM_NOT_EMPTY("nope")}, {ORM_CHECK("s", NULL, "x")},
};
static orm_model_hooks_t odd_hooks = {.nrules = 1};
ORM_MODEL_DEFINE_HOOKS(odd, "odd", ODD_FIELDS, &odd_hooks);

static void test_bad_rules(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof odd_rules / sizeof odd_rules[0]; i++) {
    odd_hooks.rules = odd_rules[i];
    orm_model_error_t err;
    if (orm_model_check_detail(odd_model(), &err) != ORM_EMODEL)
      fail_msg("rule %zu accepted", i);
    assert_non_null(strstr(err.message, "rule 0"));
  }
  odd_hooks.rules = NULL;
  assert_int_equal(orm_model_check(odd_model()), ORM_EMODEL); /* 1 rule, none */
  odd_hooks.nrules = 0;
  assert_int_equal(orm_model_check(odd_model()), 0);
}

/* The sample domain uses them: an email has an '@', a message a body,
 * usage no negative tokens. */
static void test_domain_rules(void **state) {
  (void)state;
  orm_fx_t fx;
  orm_fx_open(&fx, SCHEMA, 1, NULL);
  user_t nobody = {.email = "nobody"};
  ORM_SET_NULL(&nobody, user, name);
  usage_record_t usage = {.user_id = 1, .day = 1, .prompt_tokens = -3, .cost = "0"};
  message_t empty = {.conversation_id = 1, .role = "user", .content = ""};
  orm_step_t s[3] = {{0}};
  assert_int_equal(orm_insert_async(fx.pool, user_model(), &nobody, orm_fx_on_step, &s[0], NULL), 0);
  assert_int_equal(orm_insert_async(fx.pool, usage_record_model(), &usage, orm_fx_on_step, &s[1], NULL), 0);
  assert_int_equal(orm_insert_async(fx.pool, message_model(), &empty, orm_fx_on_step, &s[2], NULL), 0);
  orm_fx_wait(&fx, s, 3);
  expect_refused(&s[0], "email", "users: email: must contain @");
  expect_refused(&s[1], "prompt_tokens", "usage_records: prompt_tokens: -3 is not within");
  expect_refused(&s[2], "content", "messages: content: must not be empty");
  orm_fx_close(&fx);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_rules_and_hooks),
      cmocka_unit_test(test_bad_rules),
      cmocka_unit_test(test_domain_rules),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
