/* SPDX-License-Identifier: MIT */
/* Relations and eager loading, each kind: has-many, belongs-to, has-one,
 * many-to-many through a bare join table and through one with a model of
 * its own, and keys of each type. Nesting, paging, strict loading and
 * transactions are in test_relations_nesting.c; call errors, cancellation
 * and server errors in test_relations_errors.c; round trips, snapshots and
 * preloads in test_relations_load.c. */
#define SCHEMA "test_relations"
#include "relations_models.h"

/* ---- 1. has-many --------------------------------------------------------- */


static void test_has_many(void **state) {
  seed_conversations();
  orm_rows_t *rows = fetch(query_inc(conversation_model(), "messages", "id"));
  assert_int_equal(orm_rows_count(rows), 3);
  conversation_t *c = orm_rows_array(rows);
  assert_int_equal(c[0].id, 10);
  expect_message_ids(&c[0], "101,102,105,100,103");
  message_t *m = NULL;
  size_t n = 0;
  assert_int_equal(ORM_REL_MANY(&c[0], messages, &m, &n), 0);
  static const char *contents[] = {"m1", "m2", "m3", "m4", "m5"};
  for (size_t i = 0; i < n; i++)
    assert_string_equal(m[i].content, contents[i]);
  /* the conversation without messages: loaded, empty, no items */
  assert_int_equal(c[1].id, 11);
  assert_true(ORM_REL_LOADED(&c[1], messages));
  assert_int_equal(c[1].messages.len, 0);
  assert_null(c[1].messages.items);
  m = (message_t *)(uintptr_t)1;
  n = 7;
  assert_int_equal(ORM_REL_MANY(&c[1], messages, &m, &n), 0);
  assert_null(m);
  assert_int_equal(n, 0);
  assert_int_equal(c[2].id, 12);
  expect_message_ids(&c[2], "104,106");
  /* what was not included is not loaded */
  m = c[0].messages.items;
  assert_false(ORM_REL_LOADED(&c[0], user));
  assert_false(ORM_REL_LOADED(&c[0], agent));
  assert_false(ORM_REL_LOADED(&m[0], author));
  assert_int_equal(orm_fx_int(&fx, "SELECT count(*) FROM messages"), 7);
  orm_rows_free(rows);
}

/* ---- 2. belongs-to ------------------------------------------------------- */

static void test_belongs_to(void **state) {
  seed_conversations();
  orm_fx_sql(&fx, "INSERT INTO messages (id, conversation_id, role, content, "
                  "author_id, editor_id) VALUES "
                  "(200, 11, 'user', 'a', 1, 2), (201, 11, 'user', 'b', 2, 1), "
                  "(202, 11, 'user', 'c', NULL, NULL), "
                  "(203, 11, 'user', 'd', 3, NULL), "
                  "(204, 11, 'user', 'e', 1, 1)");
  orm_query_t *q = query_inc(message_model(), "author, editor", "id");
  assert_int_equal(orm_query_where(q, "conversation_id", ORM_OP_EQ,
                                   ORM_INT8(11)),
                   0);
  orm_rows_t *rows = fetch(q);
  assert_int_equal(orm_rows_count(rows), 5);
  message_t *m = orm_rows_array(rows);
  static const int64_t authors[] = {1, 2, 0, 3, 1};
  static const int64_t editors[] = {2, 1, 0, 0, 1};
  static const char *emails[] = {"", "u1@example.com", "u2@example.com",
                                 "u3@example.com"};
  for (size_t i = 0; i < 5; i++) {
    user_t *a = (user_t *)(uintptr_t)1, *e = (user_t *)(uintptr_t)1;
    assert_int_equal(ORM_REL_ONE(&m[i], author, &a), 0);
    assert_int_equal(ORM_REL_ONE(&m[i], editor, &e), 0);
    if (authors[i] == 0) {
      assert_true(ORM_IS_NULL(&m[i], message, author_id));
      assert_null(a);
    } else {
      assert_non_null(a);
      assert_int_equal(a->id, authors[i]);
      assert_int_equal(a->id, m[i].author_id);
      assert_string_equal(a->email, emails[authors[i]]);
    }
    if (editors[i] == 0) {
      assert_null(e);
    } else {
      assert_non_null(e);
      assert_int_equal(e->id, editors[i]);
      assert_string_equal(e->email, emails[editors[i]]);
    }
    /* the user rows themselves have nothing loaded */
    if (a != NULL)
      assert_false(ORM_REL_LOADED(a, conversations));
  }
  /* two relations to one table: two distinct rows */
  assert_ptr_not_equal(m[0].author.item, m[0].editor.item);
  assert_string_equal(m[0].author.item->name, "U1");
  assert_string_equal(m[0].editor.item->name, "U2");
  assert_false(ORM_REL_LOADED(&m[0], usage));
  assert_false(ORM_REL_LOADED(&m[0], conversation));
  orm_rows_free(rows);
}

/* ---- 3. has-one ---------------------------------------------------------- */

static void test_has_one(void **state) {
  seed_conversations();
  /* 100 and 103 have usage; a record of no message is seen by none */
  orm_fx_sql(&fx, "INSERT INTO usage_records (id, user_id, day, "
                  "prompt_tokens, completion_tokens, cost, message_id) VALUES "
                  "(1, 1, '2024-03-01', 5, 7, 0.5, 100), "
                  "(2, 2, '2024-03-02', 9, 11, 1.25, 103), "
                  "(3, 1, '2024-03-03', 1, 1, 0, NULL)");
  orm_query_t *q = query_inc(message_model(), "usage", "id");
  assert_int_equal(orm_query_where(q, "conversation_id", ORM_OP_EQ,
                                   ORM_INT8(10)),
                   0);
  orm_rows_t *rows = fetch(q);
  assert_int_equal(orm_rows_count(rows), 5);
  message_t *m = orm_rows_array(rows);
  for (size_t i = 0; i < 5; i++) {
    usage_record_t *u = (usage_record_t *)(uintptr_t)1;
    assert_int_equal(ORM_REL_ONE(&m[i], usage, &u), 0);
    if (m[i].id == 100) {
      assert_non_null(u);
      assert_int_equal(u->id, 1);
      assert_int_equal(u->message_id, 100);
      assert_int_equal(u->prompt_tokens, 5);
      assert_int_equal(u->completion_tokens, 7);
      assert_string_equal(u->cost, "0.500000000000");
    } else if (m[i].id == 103) {
      assert_non_null(u);
      assert_int_equal(u->id, 2);
      assert_int_equal(u->message_id, 103);
      assert_int_equal(u->user_id, 2);
    } else {
      assert_null(u);
    }
  }
  orm_rows_free(rows);
}

/* ---- 4. many-to-many ----------------------------------------------------- */

/* Agents A1 {zeta, alpha}, A2 {alpha, mid}, A3 {}: "alpha" is shared;
 * "unused" belongs to A3 and is linked to no agent. */
static void seed_knowledge(void) {
  seed_people();
  orm_fx_sql(&fx,
             "INSERT INTO knowledge_bases (id, agent_id, name, embedding_dim, "
             "document_ids, is_public) VALUES "
             "(1, '" A1 "', 'zeta', 3, '{1,2}', true), "
             "(2, '" A1 "', 'alpha', 3, '{}', false), "
             "(3, '" A2 "', 'mid', 3, '{3}', true), "
             "(4, '" A3 "', 'unused', 3, '{}', true);"
             "INSERT INTO agent_knowledge_bases VALUES "
             "('" A1 "', 1), ('" A1 "', 2), ('" A2 "', 2), ('" A2 "', 3)");
}

static void expect_kb_names(const agent_t *a, const char *names) {
  knowledge_base_t *kb = NULL;
  size_t n = 0;
  assert_int_equal(ORM_REL_MANY(a, knowledge_bases, &kb, &n), 0);
  char got[256] = "";
  size_t off = 0;
  for (size_t i = 0; i < n; i++)
    off += (size_t)snprintf(got + off, sizeof got - off, "%s%s",
                            i ? "," : "", kb[i].name);
  if (strcmp(got, names) != 0)
    fail_msg("agent %s: knowledge bases [%s], expected [%s]", a->name, got,
             names);
}

static void test_many_to_many_bare_join(void **state) {
  seed_knowledge();
  orm_rows_t *rows =
      fetch(query_inc(agent_model(), "knowledge_bases", "name"));
  assert_int_equal(orm_rows_count(rows), 3);
  agent_t *a = orm_rows_array(rows);
  assert_string_equal(a[0].name, "A1");
  expect_kb_names(&a[0], "alpha,zeta");
  expect_kb_names(&a[1], "alpha,mid");
  expect_kb_names(&a[2], "");
  assert_true(ORM_REL_LOADED(&a[2], knowledge_bases));
  assert_null(a[2].knowledge_bases.items);
  /* the shared base is the same row under both agents */
  assert_int_equal(a[0].knowledge_bases.items[0].id, 2);
  assert_int_equal(a[1].knowledge_bases.items[0].id, 2);
  assert_true(uuid_eq(a[1].knowledge_bases.items[0].agent_id, A1));
  int64_t docs = a[0].knowledge_bases.items[1].document_ids.len;
  assert_int_equal(docs, 2); /* zeta's {1,2} */
  orm_rows_free(rows);

  /* the other way, with the owner, ordered by the agents' key */
  rows = fetch(query_inc(knowledge_base_model(), "agents, owner", "id"));
  assert_int_equal(orm_rows_count(rows), 4);
  knowledge_base_t *kb = orm_rows_array(rows);
  agent_t *ag = NULL;
  size_t n = 0;
  assert_int_equal(ORM_REL_MANY(&kb[1], agents, &ag, &n), 0);
  assert_int_equal(n, 2);
  assert_true(uuid_eq(ag[0].id, A1));
  assert_true(uuid_eq(ag[1].id, A2));
  assert_int_equal(ORM_REL_MANY(&kb[3], agents, &ag, &n), 0);
  assert_int_equal(n, 0);
  agent_t *owner = NULL;
  assert_int_equal(ORM_REL_ONE(&kb[3], owner, &owner), 0);
  assert_non_null(owner);
  assert_string_equal(owner->name, "A3");
  orm_rows_free(rows);

  /* nested under a many-to-many: the shared base's agents appear under
   * each agent that draws on it */
  rows = fetch(query_inc(agent_model(), "knowledge_bases.agents", "name"));
  a = orm_rows_array(rows);
  for (size_t i = 0; i < 2; i++) {
    knowledge_base_t *alpha = &a[i].knowledge_bases.items[0];
    assert_string_equal(alpha->name, "alpha");
    assert_int_equal(ORM_REL_MANY(alpha, agents, &ag, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(ag[0].name, "A1");
    assert_string_equal(ag[1].name, "A2");
    assert_false(ORM_REL_LOADED(alpha, owner));
  }
  knowledge_base_t *zeta = &a[0].knowledge_bases.items[1];
  assert_int_equal(ORM_REL_MANY(zeta, agents, &ag, &n), 0);
  assert_int_equal(n, 1);
  assert_string_equal(ag[0].name, "A1");
  orm_rows_free(rows);
}

static void seed_school(void) {
  orm_fx_sql(&fx,
             "CREATE TABLE rl_students (id bigint PRIMARY KEY, name text NOT "
             "NULL);"
             "CREATE TABLE rl_courses (code text PRIMARY KEY, title text NOT "
             "NULL);"
             "CREATE TABLE rl_enrollments (id bigint PRIMARY KEY, student_id "
             "bigint NOT NULL REFERENCES rl_students, course_code text NOT "
             "NULL REFERENCES rl_courses, grade smallint);"
             "INSERT INTO rl_students VALUES (1, 'Ann'), (2, 'Bob'), "
             "(3, 'Cy');"
             "INSERT INTO rl_courses VALUES ('MATH', 'Algebra'), "
             "('ART', 'Painting'), ('BIO', 'Biology'), ('LAT', 'Latin');"
             "INSERT INTO rl_enrollments VALUES (10, 1, 'MATH', 5), "
             "(11, 1, 'ART', NULL), (12, 2, 'ART', 3), (13, 2, 'BIO', 4), "
             "(14, 2, 'MATH', 2)");
}

static void test_many_to_many_join_model(void **state) {
  seed_school();
  assert_int_equal(orm_model_check(student_model()), 0);
  assert_int_equal(orm_model_check(course_model()), 0);
  orm_rows_t *rows =
      fetch(query_inc(student_model(), "courses, enrollments.course", "id"));
  assert_int_equal(orm_rows_count(rows), 3);
  student_t *s = orm_rows_array(rows);
  static const char *titles[3][3] = {{"Algebra", "Painting", NULL},
                                     {"Algebra", "Biology", "Painting"},
                                     {NULL}};
  for (size_t i = 0; i < 3; i++) {
    course_t *c = NULL;
    size_t n = 0;
    assert_int_equal(ORM_REL_MANY(&s[i], courses, &c, &n), 0);
    size_t expect = 0;
    while (expect < 3 && titles[i][expect] != NULL)
      expect++;
    assert_int_equal(n, expect);
    for (size_t k = 0; k < n; k++)
      assert_string_equal(c[k].title, titles[i][k]);
    /* the join rows, through their own model, agree */
    enrollment_t *e = NULL;
    size_t ne = 0;
    assert_int_equal(ORM_REL_MANY(&s[i], enrollments, &e, &ne), 0);
    assert_int_equal(ne, n);
    for (size_t k = 0; k < ne; k++) {
      assert_int_equal(e[k].student_id, s[i].id);
      course_t *ec = NULL;
      assert_int_equal(ORM_REL_ONE(&e[k], course, &ec), 0);
      assert_non_null(ec);
      assert_string_equal(ec->code, e[k].course_code);
    }
  }
  assert_true(ORM_IS_NULL(&s[0].enrollments.items[1], enrollment, grade));
  orm_rows_free(rows);

  rows = fetch(query_inc(course_model(), "students", "code"));
  assert_int_equal(orm_rows_count(rows), 4);
  course_t *c = orm_rows_array(rows); /* ART, BIO, LAT, MATH */
  static const char *names[4] = {"Ann,Bob", "Bob", "", "Ann,Bob"};
  for (size_t i = 0; i < 4; i++) {
    student_t *st = NULL;
    size_t n = 0;
    assert_int_equal(ORM_REL_MANY(&c[i], students, &st, &n), 0);
    char got[64] = "";
    size_t off = 0;
    for (size_t k = 0; k < n; k++)
      off += (size_t)snprintf(got + off, sizeof got - off, "%s%s",
                              k ? "," : "", st[k].name);
    assert_string_equal(got, names[i]);
  }
  orm_rows_free(rows);
}

/* ---- 5. keys of each type ------------------------------------------------ */

static void test_uuid_keys(void **state) {
  seed_conversations();
  /* belongs-to by uuid */
  orm_rows_t *rows =
      fetch(query_inc(conversation_model(), "agent, user", "id"));
  conversation_t *c = orm_rows_array(rows);
  static const char *agents[] = {A1, A1, A3};
  for (size_t i = 0; i < 3; i++) {
    agent_t *a = NULL;
    assert_int_equal(ORM_REL_ONE(&c[i], agent, &a), 0);
    assert_non_null(a);
    assert_true(uuid_eq(a->id, agents[i]));
    assert_true(uuid_eq(c[i].agent_id, agents[i]));
    user_t *u = NULL;
    assert_int_equal(ORM_REL_ONE(&c[i], user, &u), 0);
    assert_int_equal(u->id, c[i].user_id);
  }
  orm_rows_free(rows);
  /* has-many by uuid */
  rows = fetch(query_inc(agent_model(), "conversations", "name"));
  agent_t *a = orm_rows_array(rows);
  assert_int_equal(orm_rows_count(rows), 3);
  static const char *ids[] = {"10,11", "", "12"};
  for (size_t i = 0; i < 3; i++) {
    conversation_t *cs = NULL;
    size_t n = 0;
    assert_int_equal(ORM_REL_MANY(&a[i], conversations, &cs, &n), 0);
    char got[64] = "";
    size_t off = 0;
    for (size_t k = 0; k < n; k++) {
      assert_memory_equal(cs[k].agent_id.bytes, a[i].id.bytes, 16);
      off += (size_t)snprintf(got + off, sizeof got - off, "%s%lld",
                              k ? "," : "", (long long)cs[k].id);
    }
    assert_string_equal(got, ids[i]);
  }
  orm_rows_free(rows);
}

static void test_int4_keys(void **state) {
  orm_fx_sql(&fx,
             "CREATE TABLE rl_teams (id integer PRIMARY KEY, name text NOT "
             "NULL);"
             "CREATE TABLE rl_players (id integer PRIMARY KEY, team_id "
             "integer, name text NOT NULL);"
             "INSERT INTO rl_teams VALUES (1, 'Red'), (2, 'Blue'), "
             "(3, 'Empty'), (-2147483648, 'Min');"
             "INSERT INTO rl_players VALUES (10, 1, 'zed'), (11, 1, 'amy'), "
             "(12, 2, 'bo'), (13, NULL, 'nobody'), (14, 99, 'ghost'), "
             "(15, 1, 'max'), (16, -2147483648, 'low')");
  orm_rows_t *rows =
      fetch(query_inc(team_model(), "players, first_player", "id"));
  assert_int_equal(orm_rows_count(rows), 4);
  team_t *t = orm_rows_array(rows); /* Min, Red, Blue, Empty */
  static const char *players[] = {"low", "amy,max,zed", "bo", ""};
  static const char *first[] = {"low", "amy", "bo", NULL};
  for (size_t i = 0; i < 4; i++) {
    player_t *p = NULL;
    size_t n = 0;
    assert_int_equal(ORM_REL_MANY(&t[i], players, &p, &n), 0);
    char got[64] = "";
    size_t off = 0;
    for (size_t k = 0; k < n; k++) {
      assert_int_equal(p[k].team_id, t[i].id);
      off += (size_t)snprintf(got + off, sizeof got - off, "%s%s",
                              k ? "," : "", p[k].name);
    }
    assert_string_equal(got, players[i]);
    player_t *fp = (player_t *)(uintptr_t)1;
    assert_int_equal(ORM_REL_ONE(&t[i], first_player, &fp), 0);
    if (first[i] == NULL) {
      assert_null(fp);
    } else {
      assert_non_null(fp);
      assert_string_equal(fp->name, first[i]);
    }
  }
  orm_rows_free(rows);

  rows = fetch(query_inc(player_model(), "team", "id"));
  assert_int_equal(orm_rows_count(rows), 7);
  player_t *p = orm_rows_array(rows);
  static const char *teams[] = {"Red", "Red", "Blue", NULL, NULL, "Red",
                                "Min"};
  for (size_t i = 0; i < 7; i++) {
    team_t *tm = (team_t *)(uintptr_t)1;
    assert_int_equal(ORM_REL_ONE(&p[i], team, &tm), 0);
    if (teams[i] == NULL) { /* a NULL key, or a team that does not exist */
      assert_null(tm);
    } else {
      assert_non_null(tm);
      assert_string_equal(tm->name, teams[i]);
    }
  }
  orm_rows_free(rows);
}

static void test_text_keys(void **state) {
  /* Codes that differ only by case, a prefix of another, the empty
   * string, a quote and non-ASCII bytes: matched exactly. */
  orm_fx_sql(&fx,
             "CREATE TABLE rl_countries (code text PRIMARY KEY, name text "
             "NOT NULL);"
             "CREATE TABLE rl_cities (id bigint PRIMARY KEY, country_code "
             "text, name text NOT NULL);"
             "INSERT INTO rl_countries VALUES ('DE', 'c2 germany'), "
             "('de', 'c3 lower'), ('D', 'c6 prefix'), ('', 'c1 empty'), "
             "('O''Q', 'c7 quote'), ('Ø', 'c5 non-ascii'), "
             "('NONE', 'c4 no cities'), ('NULL', 'c8 the word null'), "
             "('a,b{c}\"d\\e', 'c9 array syntax');"
             "INSERT INTO rl_cities VALUES (1, 'DE', 'Berlin'), "
             "(2, 'DE', 'Bonn'), (3, 'de', 'berlin-lower'), "
             "(4, 'D', 'dee'), (5, '', 'nowhere'), (6, 'O''Q', 'oq'), "
             "(7, 'Ø', 'oe'), (8, NULL, 'null'), (9, 'ZZ', 'missing'), "
             "(10, 'DE ', 'trailing space'), (11, 'NULL', 'n'), "
             "(12, 'a,b{c}\"d\\e', 'arr'), (13, 'a', 'a-prefix')");
  orm_rows_t *rows = fetch(query_inc(country_model(), "cities", "name"));
  assert_int_equal(orm_rows_count(rows), 9);
  country_t *c = orm_rows_array(rows);
  /* by name: c1 .. c9 */
  static const char *codes[] = {"", "DE", "de", "NONE", "Ø", "D", "O'Q",
                                "NULL", "a,b{c}\"d\\e"};
  static const char *cities[] = {"nowhere", "Berlin,Bonn", "berlin-lower",
                                 "",        "oe",          "dee",
                                 "oq",      "n",           "arr"};
  for (size_t i = 0; i < 9; i++) {
    assert_string_equal(c[i].code, codes[i]);
    city_t *ct = NULL;
    size_t n = 0;
    assert_int_equal(ORM_REL_MANY(&c[i], cities, &ct, &n), 0);
    char got[128] = "";
    size_t off = 0;
    for (size_t k = 0; k < n; k++) {
      assert_string_equal(ct[k].country_code, c[i].code);
      off += (size_t)snprintf(got + off, sizeof got - off, "%s%s",
                              k ? "," : "", ct[k].name);
    }
    assert_string_equal(got, cities[i]);
  }
  orm_rows_free(rows);

  rows = fetch(query_inc(city_model(), "country", "id"));
  assert_int_equal(orm_rows_count(rows), 13);
  city_t *ci = orm_rows_array(rows);
  static const char *names[] = {"c2 germany", "c2 germany", "c3 lower",
                                "c6 prefix",  "c1 empty",   "c7 quote",
                                "c5 non-ascii", NULL,       NULL,
                                NULL,       "c8 the word null",
                                "c9 array syntax", NULL};
  for (size_t i = 0; i < 13; i++) {
    country_t *co = (country_t *)(uintptr_t)1;
    assert_int_equal(ORM_REL_ONE(&ci[i], country, &co), 0);
    if (names[i] == NULL) {
      assert_null(co);
    } else {
      assert_non_null(co);
      assert_string_equal(co->name, names[i]);
    }
  }
  orm_rows_free(rows);
}

int main(void) {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_has_many),
      T(test_belongs_to),
      T(test_has_one),
      T(test_many_to_many_bare_join),
      T(test_many_to_many_join_model),
      T(test_uuid_keys),
      T(test_int4_keys),
      T(test_text_keys),
  };
#undef T
  return orm_run_group_tests(tests, NULL, NULL);
}
