/* SPDX-License-Identifier: MIT */
/* Relations without a server: descriptor checks, include paths and their
 * errors, the SQL each included relation sends, keys and key maps, and
 * strict access to relations not loaded. */
#include "alloc_fault.h"
#include "harness.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uvorm.h>

#include "base/alloc.h"
#include "model/relation.h"

#include "domain.h"

/* ---- descriptors -------------------------------------------------------- */

static void test_domain_relations(void **state) {
  (void)state;
  const orm_model_t *models[] = {user_model(),         agent_model(),
                                 conversation_model(), message_model(),
                                 knowledge_base_model(), usage_record_model()};
  for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) {
    orm_model_error_t err;
    if (orm_model_check_detail(models[i], &err) != 0)
      fail_msg("%s: %s", models[i]->table, err.message);
  }
  const orm_relation_t *r = orm_model_relation(message_model(), "author");
  assert_non_null(r);
  assert_int_equal(r->kind, ORM_BELONGS_TO);
  assert_ptr_equal(r->target(), user_model());
  assert_string_equal(r->key, "author_id");
  assert_int_equal(r->offset, offsetof(message_t, author));
  r = orm_model_relation(agent_model(), "knowledge_bases");
  assert_non_null(r);
  assert_int_equal(r->kind, ORM_MANY_TO_MANY);
  assert_null(r->key);
  assert_string_equal(r->through.table, "agent_knowledge_bases");
  assert_string_equal(r->through.from, "agent_id");
  assert_string_equal(r->through.to, "knowledge_base_id");
  assert_string_equal(r->order, "name");
  assert_null(orm_model_relation(message_model(), "nope"));
  assert_null(orm_model_relation(NULL, "author"));
  assert_null(orm_model_relation(message_model(), NULL));
}

/* A hand-written parent with one relation to the domain's messages. */
typedef struct {
  int64_t id;
  char *label;
  uint64_t nulls;
  ORM_MANY_SLOT(message_t) children;
  int32_t code;
} parent_t;

static const orm_field_t parent_fields[] = {
    {"id", ORM_T_INT8, offsetof(parent_t, id), sizeof(int64_t), ORM_F_PK},
    {"label", ORM_T_TEXT, offsetof(parent_t, label), sizeof(char *), 0},
    {"code", ORM_T_INT4, offsetof(parent_t, code), sizeof(int32_t), 0},
};

static orm_relation_t parent_rel;
static orm_model_t parent_model;

static void reset_parent(void) {
  parent_rel = (orm_relation_t){.name = "children",
                                .kind = ORM_HAS_MANY,
                                .target = message_model,
                                .key = "conversation_id",
                                .offset = offsetof(parent_t, children)};
  parent_model = (orm_model_t){.table = "parents",
                               .fields = parent_fields,
                               .nfields = 3,
                               .struct_size = sizeof(parent_t),
                               .nulls_offset = offsetof(parent_t, nulls),
                               .relations = &parent_rel,
                               .nrelations = 1};
}

static void expect_defect(const char *words) {
  orm_model_error_t err;
  assert_int_equal(orm_model_check_detail(&parent_model, &err), ORM_EMODEL);
  if (strstr(err.message, words) == NULL)
    fail_msg("\"%s\" does not say \"%s\"", err.message, words);
  reset_parent();
}

static void test_bad_relations(void **state) {
  (void)state;
  reset_parent();
  assert_int_equal(orm_model_check(&parent_model), 0);
  parent_rel.key = "conversation";
  expect_defect("no key column \"conversation\"");
  parent_rel.key = NULL;
  expect_defect("no key column");
  parent_rel.kind = ORM_BELONGS_TO; /* parents has no conversation_id */
  expect_defect("table \"parents\" has no key column");
  parent_rel.kind = ORM_BELONGS_TO;
  parent_rel.key = "code"; /* int4 holding an int8 key */
  expect_defect("of one type");
  parent_rel.key = "role"; /* an enum is no key */
  expect_defect("of one type");
  parent_rel.kind = (orm_relation_kind_t)9;
  expect_defect("invalid kind");
  parent_rel.target = NULL;
  expect_defect("target model");
  parent_rel.name = "bad name";
  expect_defect("not an identifier");
  parent_rel.order = "created_at desc, nope";
  expect_defect("order");
  parent_rel.order = "content; DROP TABLE x";
  expect_defect("order");
  parent_rel.order = "metadata"; /* json: no ordering */
  expect_defect("order");
  parent_rel.offset = offsetof(parent_t, label);
  expect_defect("overlaps column \"label\"");
  parent_rel.offset = offsetof(parent_t, nulls);
  expect_defect("overlaps the null bitmap");
  parent_rel.offset = sizeof(parent_t);
  expect_defect("outside the struct");
  parent_rel.offset = offsetof(parent_t, children) + 1;
  expect_defect("misaligned");
  parent_model.nrelations = ORM_MODEL_MAX_RELATIONS + 1;
  expect_defect("relations");
  parent_rel.kind = ORM_MANY_TO_MANY;
  expect_defect("join table");
  /* Two relations by one name, or over one member. */
  orm_relation_t two[2] = {parent_rel, parent_rel};
  parent_model.relations = two;
  parent_model.nrelations = 2;
  expect_defect("appears twice");
  two[1].name = "others";
  parent_model.relations = two;
  parent_model.nrelations = 2;
  expect_defect("overlap");
  /* Orders that parse. */
  parent_rel.order = " created_at DESC ,id asc,tokens";
  assert_int_equal(orm_model_check(&parent_model), 0);
}

/* ---- include paths -------------------------------------------------------- */

static int include(const orm_model_t *root, const char *paths,
                   orm__includes_t *inc) {
  memset(inc, 0, sizeof *inc);
  inc->root = root;
  return orm__includes_add(inc, paths);
}

static void test_include_paths(void **state) {
  (void)state;
  orm__includes_t inc;
  assert_int_equal(include(user_model(), "conversations.messages.usage", &inc),
                   0);
  assert_int_equal(inc.n, 3);
  assert_int_equal(inc.nodes[0].parent, -1);
  assert_int_equal(inc.nodes[1].parent, 0);
  assert_int_equal(inc.nodes[2].parent, 1);
  assert_ptr_equal(inc.nodes[2].rel.target, usage_record_model());
  /* Shared prefixes once; several paths; spaces around them. */
  assert_int_equal(include(user_model(),
                           " conversations.messages.usage , "
                           "conversations.messages.author,agents",
                           &inc),
                   0);
  assert_int_equal(inc.n, 5);
  assert_int_equal(inc.nodes[3].parent, 1);
  assert_int_equal(inc.nodes[4].parent, -1);
  /* Errors leave the tree as it was. */
  assert_int_equal(orm__includes_add(&inc, "agents.nope"), ORM_ENORELATION);
  assert_int_equal(orm__includes_add(&inc, "agents.owner.agents.owner"),
                   ORM_EINVAL); /* owner twice: a cycle */
  assert_int_equal(orm__includes_add(&inc, "usage,"), ORM_EINVAL);
  assert_int_equal(orm__includes_add(&inc, "a..b"), ORM_EINVAL);
  assert_int_equal(orm__includes_add(&inc, ".usage"), ORM_EINVAL);
  assert_int_equal(orm__includes_add(&inc, ""), ORM_EINVAL);
  assert_int_equal(orm__includes_add(&inc, NULL), ORM_EINVAL);
  assert_int_equal(inc.n, 5);
  /* The same relation on two paths is no cycle. */
  assert_int_equal(include(message_model(), "author.conversations, editor",
                           &inc),
                   0);
  assert_int_equal(include(message_model(), "conversation.messages", &inc), 0);
  assert_int_equal(
      include(message_model(), "conversation.messages.conversation", &inc),
      ORM_EINVAL);
}

/* A model with ORM_QUERY_MAX_INCLUDES + 1 relations to itself. */
typedef struct self_s {
  int64_t id;
  uint64_t nulls;
  ORM_ONE_SLOT(struct self_s) up[ORM_QUERY_MAX_INCLUDES + 1];
} self_t;

static const orm_field_t self_fields[] = {
    {"id", ORM_T_INT8, offsetof(self_t, id), sizeof(int64_t), ORM_F_PK}};
static orm_relation_t self_rels[ORM_QUERY_MAX_INCLUDES + 1];
static char self_names[ORM_QUERY_MAX_INCLUDES + 1][8];
static const orm_model_t self_model = {.table = "selves",
                                       .fields = self_fields,
                                       .nfields = 1,
                                       .struct_size = sizeof(self_t),
                                       .nulls_offset = offsetof(self_t, nulls),
                                       .relations = self_rels,
                                       .nrelations =
                                           ORM_QUERY_MAX_INCLUDES + 1};
static const orm_model_t *self_target(void) { return &self_model; }

static void test_include_bound(void **state) {
  (void)state;
  char paths[256] = "";
  for (int i = 0; i <= ORM_QUERY_MAX_INCLUDES; i++) {
    snprintf(self_names[i], sizeof self_names[i], "up%d", i);
    self_rels[i] = (orm_relation_t){.name = self_names[i],
                                    .kind = ORM_BELONGS_TO,
                                    .target = self_target,
                                    .key = "id",
                                    .offset = offsetof(self_t, up[i])};
    if (i < ORM_QUERY_MAX_INCLUDES) {
      strcat(paths, i ? "," : "");
      strcat(paths, self_names[i]);
    }
  }
  assert_int_equal(orm_model_check(&self_model), 0);
  orm__includes_t inc;
  assert_int_equal(include(&self_model, paths, &inc), 0);
  assert_int_equal(inc.n, ORM_QUERY_MAX_INCLUDES);
  assert_int_equal(orm__includes_add(&inc, "up16"), ORM_E2BIG);
  assert_int_equal(inc.n, ORM_QUERY_MAX_INCLUDES);
  /* Through the query builder: the error sticks. */
  orm_query_t *q;
  assert_int_equal(orm_query_new(&q, &self_model), 0);
  assert_int_equal(orm_query_include(q, paths), 0);
  assert_int_equal(orm_query_include(q, "up16"), ORM_E2BIG);
  assert_int_equal(orm_query_error(q), ORM_E2BIG);
  assert_int_equal(orm_query_where(q, "id", ORM_OP_EQ, ORM_INT8(1)),
                   ORM_E2BIG);
  orm_query_free(q);
  assert_int_equal(orm_query_new(&q, message_model()), 0);
  assert_int_equal(orm_query_include(q, "nope"), ORM_ENORELATION);
  assert_int_equal(orm_query_error(q), ORM_ENORELATION);
  orm_query_free(q);
  assert_int_equal(orm_query_include(NULL, "x"), ORM_EINVAL);
}

/* ---- SQL ------------------------------------------------------------------ */

static void expect_sql(const orm__includes_t *inc, int node, const char *root,
                       const char *want) {
  int rc = 0;
  char *sql = orm__include_sql(inc, node, root, &rc);
  assert_non_null(sql);
  if (strcmp(sql, want) != 0)
    fail_msg("node %d:\n got: %s\nwant: %s", node, sql, want);
  orm__free(sql);
}

#define MSG_COLS                                                               \
  "\"id\", \"conversation_id\", \"role\", \"content\", \"tokens\", "           \
  "\"metadata\", \"created_at\", \"author_id\", \"editor_id\""
#define USAGE_COLS                                                             \
  "\"id\", \"user_id\", \"agent_id\", \"day\", \"prompt_tokens\", "            \
  "\"completion_tokens\", \"cost\", \"latency_ms\", \"request_digest\", "      \
  "\"recorded_at\", \"message_id\""

static void test_include_sql(void **state) {
  (void)state;
  orm__includes_t inc;
  assert_int_equal(
      include(conversation_model(), "messages.usage, messages.author", &inc),
      0);
  const char *root = "SELECT c FROM \"conversations\" LIMIT $1";
  /* The query leaves its rows' keys for the messages. */
  expect_sql(&inc, -1, root,
             "WITH r AS (SELECT c FROM \"conversations\" LIMIT $1), k AS "
             "(SELECT set_config('uvorm.k0', coalesce(array_agg(r.\"id\")::"
             "text, '{}'), true) FROM r) SELECT r.* FROM k LEFT JOIN r ON "
             "true");
  /* The messages read them, and leave theirs for usage and author. */
  expect_sql(&inc, 0, root,
             "WITH r AS (SELECT " MSG_COLS " FROM \"messages\" WHERE "
             "\"conversation_id\" = ANY(current_setting('uvorm.k0')::int8[]) "
             "ORDER BY \"conversation_id\", \"created_at\", \"id\"), k AS "
             "(SELECT set_config('uvorm.k1', coalesce(array_agg(r.\"id\")::"
             "text, '{}'), true), set_config('uvorm.k2', coalesce(array_agg("
             "r.\"author_id\")::text, '{}'), true) FROM r) SELECT r.* FROM k "
             "LEFT JOIN r ON true");
  expect_sql(&inc, 1, root,
             "SELECT " USAGE_COLS " FROM \"usage_records\" WHERE "
             "\"message_id\" = ANY(current_setting('uvorm.k1')::int8[]) "
             "ORDER BY \"message_id\", \"id\"");
  expect_sql(&inc, 2, root,
             "SELECT \"id\", \"email\", \"name\", \"created_at\" FROM "
             "\"users\" WHERE \"id\" = ANY(current_setting('uvorm.k2')::"
             "int8[])");
  /* A preload: the top relation by $1. */
  assert_int_equal(include(conversation_model(), "messages", &inc), 0);
  expect_sql(&inc, 0, NULL,
             "SELECT " MSG_COLS " FROM \"messages\" WHERE "
             "\"conversation_id\" = ANY($1) ORDER BY \"conversation_id\", "
             "\"created_at\", \"id\"");
  /* Many-to-many: the join's key first, ordered by it then by name. */
  assert_int_equal(include(agent_model(), "knowledge_bases", &inc), 0);
  expect_sql(&inc, 0, NULL,
             "SELECT j.\"agent_id\" AS orm__from, t.\"id\", t.\"agent_id\", "
             "t.\"name\", t.\"description\", t.\"embedding_dim\", "
             "t.\"document_ids\", t.\"is_public\", t.\"refreshed_at\" FROM "
             "\"agent_knowledge_bases\" j JOIN \"knowledge_bases\" t ON "
             "t.\"id\" = j.\"knowledge_base_id\" WHERE j.\"agent_id\" = "
             "ANY($1) ORDER BY j.\"agent_id\", t.\"name\", t.\"id\"");
}

/* ---- keys --------------------------------------------------------------- */

static void test_keymap(void **state) {
  (void)state;
  enum { N = 1000 };
  static message_t rows[N];
  orm__keymap_t map;
  assert_int_equal(orm__keymap_init(&map, N), 0);
  for (int i = 0; i < N; i++) {
    rows[i] = (message_t){.id = i, .conversation_id = i % 10};
    orm__key_t key;
    assert_true(orm__key_of_field(message_model(), &rows[i],
                                  ORM_FIELD(message, conversation_id), &key));
    orm__keymap_put(&map, &key, &rows[i]);
  }
  for (int k = 0; k < 11; k++) {
    message_t probe = {.conversation_id = k};
    orm__key_t key;
    assert_true(orm__key_of_field(message_model(), &probe,
                                  ORM_FIELD(message, conversation_id), &key));
    size_t cursor = 0, found = 0;
    for (message_t *m; (m = orm__keymap_next(&map, &key, &cursor));) {
      assert_int_equal(m->conversation_id, k);
      found++;
    }
    assert_int_equal(found, k < 10 ? N / 10 : 0);
  }
  orm__keymap_free(&map);
  /* NULL keys are no keys. */
  message_t m = {0};
  ORM_SET_NULL(&m, message, author_id);
  orm__key_t key;
  assert_false(orm__key_of_field(message_model(), &m,
                                 ORM_FIELD(message, author_id), &key));
  user_t u = {.email = NULL};
  assert_false(
      orm__key_of_field(user_model(), &u, ORM_FIELD(user, email), &key));
  /* Text and uuid keys compare by bytes; the array parameter is binary. */
  user_t a = {.email = "x@y"}, b = {.email = "x@y"};
  orm__key_t ka, kb;
  assert_true(orm__key_of_field(user_model(), &a, ORM_FIELD(user, email), &ka));
  assert_true(orm__key_of_field(user_model(), &b, ORM_FIELD(user, email), &kb));
  assert_int_equal(ka.hash, kb.hash);
  orm__buf_t buf;
  orm__buf_init(&buf);
  uint32_t oid;
  orm__key_t keys[2] = {ka, kb};
  assert_int_equal(orm__keys_encode(ORM_T_TEXT, keys, 2, &buf, &oid), 0);
  assert_int_equal(oid, 1009);
  assert_int_equal(buf.len, 20 + 2 * (4 + 3));
  orm__buf_free(&buf);
}

/* ---- strict access ---------------------------------------------------------- */

static void test_not_loaded(void **state) {
  (void)state;
  conversation_t c = {0};
  message_t *items = (message_t *)&c;
  size_t n = 7;
  assert_false(ORM_REL_LOADED(&c, messages));
  assert_int_equal(ORM_REL_MANY(&c, messages, &items, &n), ORM_ENOTLOADED);
  assert_ptr_equal(items, (message_t *)&c); /* untouched */
  assert_int_equal(n, 7);
  user_t *u = (user_t *)&c;
  assert_int_equal(ORM_REL_ONE(&c, user, &u), ORM_ENOTLOADED);
  assert_ptr_equal(u, (user_t *)&c);
  c.messages.loaded = true; /* loaded and empty */
  assert_int_equal(ORM_REL_MANY(&c, messages, &items, &n), 0);
  assert_null(items);
  assert_int_equal(n, 0);
  c.user.loaded = true; /* loaded, no such row (or a NULL key) */
  assert_int_equal(ORM_REL_ONE(&c, user, &u), 0);
  assert_null(u);
  assert_string_equal(orm_strerror(ORM_ENOTLOADED), "relation not loaded");
  assert_string_equal(orm_err_name(ORM_ENORELATION), "ORM_ENORELATION");
}

int main(void) {
  const struct CMUnitTest tests[] = {
#define C(fn)                                                                  \
  cmocka_unit_test_setup_teardown(fn, orm_test_alloc_setup,                    \
                                  orm_test_alloc_teardown)
      C(test_domain_relations), C(test_bad_relations), C(test_include_paths),
      C(test_include_bound),    C(test_include_sql),   C(test_keymap),
      C(test_not_loaded),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
