/* SPDX-License-Identifier: MIT */
/* The sample domain's hand-written models (examples/domain/domain.h) and
 * the ones `uvorm gen --prefix gen_` writes from its migrations agree:
 * every model's fields (column, type, C size, flags) are the same, and
 * every hand-written relation is among the generated ones (same kind,
 * target, key or join table: names may differ). The generated models also
 * pass orm_model_verify_async against the live tables.
 *
 *   domain_agree CONNINFO   (the search_path set to the migrated schema) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>
#include <uvorm.h>

#include "domain.h"
#include "models.h" /* generated, with --prefix gen_ */

static int failures;

#define CHECK(cond, ...)                                                       \
  do {                                                                         \
    if (!(cond)) {                                                             \
      printf("MISMATCH: ");                                                    \
      printf(__VA_ARGS__);                                                     \
      printf("\n");                                                            \
      failures++;                                                              \
    }                                                                          \
  } while (0)

static const orm_model_t *generated_for(const char *table) {
  for (size_t i = 0; i < gen_models_count; i++)
    if (strcmp(gen_models_all[i]()->table, table) == 0)
      return gen_models_all[i]();
  return NULL;
}

static bool same_relation(const orm_relation_t *a, const orm_relation_t *b) {
  if (a->kind != b->kind || strcmp(a->target()->table, b->target()->table) != 0)
    return false;
  if (a->kind != ORM_MANY_TO_MANY)
    return strcmp(a->key, b->key) == 0;
  return strcmp(a->through.table, b->through.table) == 0 &&
         strcmp(a->through.from, b->through.from) == 0 &&
         strcmp(a->through.to, b->through.to) == 0;
}

static void compare(const orm_model_t *hand) {
  const orm_model_t *gen = generated_for(hand->table);
  CHECK(gen != NULL, "no generated model for table %s", hand->table);
  if (gen == NULL)
    return;
  CHECK(gen->nfields == hand->nfields, "%s: %zu fields generated, %zu by hand",
        hand->table, gen->nfields, hand->nfields);
  for (size_t i = 0; i < hand->nfields && i < gen->nfields; i++) {
    const orm_field_t *h = &hand->fields[i], *g = &gen->fields[i];
    CHECK(strcmp(h->column, g->column) == 0, "%s field %zu: column %s vs %s",
          hand->table, i, g->column, h->column);
    CHECK(h->type == g->type, "%s.%s: type %d generated, %d by hand",
          hand->table, h->column, (int)g->type, (int)h->type);
    CHECK(h->size == g->size, "%s.%s: size %zu vs %zu", hand->table, h->column,
          g->size, h->size);
    CHECK(h->flags == g->flags, "%s.%s: flags 0x%x generated, 0x%x by hand",
          hand->table, h->column, g->flags, h->flags);
  }
  for (size_t r = 0; r < hand->nrelations; r++) {
    const orm_relation_t *h = &hand->relations[r];
    const orm_relation_t *match = NULL;
    for (size_t k = 0; k < gen->nrelations && match == NULL; k++)
      if (same_relation(h, &gen->relations[k]))
        match = &gen->relations[k];
    CHECK(match != NULL, "%s: the hand-written relation %s has no generated twin",
          hand->table, h->name);
    if (match != NULL)
      printf("%-16s relation %-16s = generated %s\n", hand->table, h->name,
             match->name);
  }
  printf("%-16s %zu fields agree; %zu relations generated, %zu by hand\n",
         hand->table, hand->nfields, gen->nrelations, hand->nrelations);
}

typedef struct {
  size_t pending;
  uv_loop_t *loop;
  orm_pool_t *pool;
} verify_t;

static void on_verified(orm_future_t *f, void *data) {
  verify_t *v = data;
  orm_schema_report_t *rep = orm_future_take(f);
  if (orm_future_status(f) != 0) {
    CHECK(0, "verify failed: %s", orm_strerror(orm_future_status(f)));
  } else {
    CHECK(rep->table_exists && rep->nproblems == 0, "%s does not match its table%s%s",
          rep->model->table, rep->nproblems ? ": " : "",
          rep->nproblems ? rep->problems[0].message : "");
  }
  orm_schema_report_free(rep);
  if (--v->pending == 0)
    orm_pool_close(v->pool, NULL);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: domain_agree CONNINFO\n");
    return 2;
  }
  const orm_model_t *hand[] = {user_model(),         agent_model(),
                               conversation_model(), message_model(),
                               knowledge_base_model(), usage_record_model()};
  size_t n = sizeof hand / sizeof hand[0];
  CHECK(gen_models_count == n, "%zu models generated, %zu by hand",
        gen_models_count, n);
  for (size_t i = 0; i < n; i++)
    compare(hand[i]);
  /* The enums, as C: the labels in the order the migration gives. */
  CHECK(GEN_AGENT_STATUS_COUNT == 3 &&
            strcmp(gen_agent_status_labels[GEN_AGENT_STATUS_PAUSED], "paused") == 0,
        "enum agent_status");
  CHECK(GEN_MESSAGE_ROLE_COUNT == 4 &&
            strcmp(gen_message_role_labels[GEN_MESSAGE_ROLE_TOOL], "tool") == 0,
        "enum message_role");

  uv_loop_t loop;
  uv_loop_init(&loop);
  verify_t v = {.pending = gen_models_count, .loop = &loop};
  if (orm_pool_open(&v.pool, &loop, &(orm_pool_config_t){.conninfo = argv[1]}) != 0)
    return 1;
  for (size_t i = 0; i < gen_models_count; i++)
    orm_model_verify_async(v.pool, gen_models_all[i](), on_verified, &v, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  if (failures != 0) {
    printf("%d mismatches\n", failures);
    return 1;
  }
  printf("the generated models agree with examples/domain/ and the live tables\n");
  return 0;
}
