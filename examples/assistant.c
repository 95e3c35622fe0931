/* SPDX-License-Identifier: MIT */
/* assistant: the sample AI backend end to end on one libuv loop.
 *
 * A user signs up, creates an agent, and talks to it: the conversation, its
 * messages and the usage record are written in one transaction; then the
 * user is read back with their conversations, messages, authors and usage
 * in one call (eager loading: one round trip), the bill is summed, and
 * every model is checked against the live schema. Each step is a
 * callback; nothing blocks the loop.
 *
 *   assistant [CONNINFO]   (default: $DATABASE_URL, else libpq's defaults)
 *
 * The tables that examples/domain/migrations/ create must exist on the search_path
 * (scripts/demo.sh creates them in a schema of their own). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include <uvorm.h>

#include "domain.h"

typedef struct {
  orm_pool_t *pool;
  orm_tx_t *tx;
  user_t user;
  agent_t agent;
  conversation_t conversation;
  message_t messages[3];
  usage_record_t usage;
  int verifying;
  int status;
} app_t;

static void step_done(app_t *app);

static int failed(app_t *app, orm_future_t *f, const char *what) {
  if (orm_future_status(f) == 0)
    return 0;
  const orm_error_t *e = orm_future_error(f);
  fprintf(stderr, "assistant: %s: %s%s%s\n", what, e->message,
          *e->sqlstate ? " SQLSTATE " : "", e->sqlstate);
  app->status = 1;
  if (app->tx != NULL) {
    orm_tx_rollback_async(app->tx, NULL, NULL, NULL);
    app->tx = NULL;
  }
  step_done(app);
  return 1;
}

static void on_closed(orm_pool_t *pool, void *data) { (void)pool, (void)data; }

static void step_done(app_t *app) {
  orm_pool_stats_t st;
  orm_pool_stats(app->pool, &st);
  printf("pool: %" PRIu64 " statements, %" PRIu64 " errors, %u connections\n",
         st.queries, st.errors, st.conns_idle + st.conns_busy);
  orm_pool_close(app->pool, on_closed);
}

/* 7. every model against the live tables */
static void on_verified(orm_future_t *f, void *data) {
  app_t *app = data;
  if (failed(app, f, "verify"))
    return;
  orm_schema_report_t *r = orm_future_value(f);
  printf("model %-15s %s\n", r->model->table,
         r->nproblems == 0 ? "matches its table" : r->problems[0].message);
  if (r->nproblems != 0)
    app->status = 1;
  if (--app->verifying == 0)
    step_done(app);
}

static void verify_all(app_t *app) {
  const orm_model_t *models[] = {user_model(),    agent_model(),
                                 conversation_model(), message_model(),
                                 knowledge_base_model(), usage_record_model()};
  app->verifying = 6;
  for (int i = 0; i < 6; i++)
    orm_model_verify_async(app->pool, models[i], on_verified, app, NULL);
}

/* 6. the bill */
static void on_billed(orm_future_t *f, void *data) {
  app_t *app = data;
  if (failed(app, f, "bill"))
    return;
  const char *total;
  orm_result_text(orm_future_value(f), 0, 0, &total, NULL);
  printf("%s has spent $%s\n", app->user.email, total);
  verify_all(app);
}

/* 5. the user read back with their conversations, each conversation's
 * messages, each message's author and usage: one call, one round trip */
static void on_history(orm_future_t *f, void *data) {
  app_t *app = data;
  if (failed(app, f, "history"))
    return;
  const user_t *u = orm_future_row(f);
  conversation_t *convs = NULL;
  size_t nconvs = 0;
  if (u == NULL || ORM_REL_MANY(u, conversations, &convs, &nconvs) != 0) {
    fprintf(stderr, "assistant: history: no user or no conversations\n");
    app->status = 1;
    step_done(app);
    return;
  }
  for (size_t c = 0; c < nconvs; c++) {
    message_t *msgs = NULL;
    size_t nmsgs = 0;
    if (ORM_REL_MANY(&convs[c], messages, &msgs, &nmsgs) != 0)
      continue; /* not loaded: cannot happen here, it was included */
    printf("conversation %" PRId64 " \"%s\", %zu messages:\n", convs[c].id,
           convs[c].title, nmsgs);
    for (size_t i = 0; i < nmsgs; i++) {
      const message_t *m = &msgs[i];
      user_t *author = NULL;
      usage_record_t *usage = NULL;
      ORM_REL_ONE(m, author, &author);
      ORM_REL_ONE(m, usage, &usage);
      printf("  [%-9s] %s", m->role, m->content);
      if (author != NULL)
        printf("  (by %s)", author->name);
      if (usage != NULL)
        printf("  (%d+%d tokens, $%s)", usage->prompt_tokens,
               usage->completion_tokens, usage->cost);
      printf("\n");
    }
  }
  orm_param_t who = ORM_INT8(app->user.id);
  orm_query_async(app->pool,
                  "SELECT sum(cost)::text FROM usage_records WHERE user_id = $1",
                  &who, 1, on_billed, app, NULL);
}

static void on_committed(orm_future_t *f, void *data) {
  app_t *app = data;
  app->tx = NULL;
  if (failed(app, f, "commit"))
    return;
  printf("committed the conversation, its messages and the usage\n");
  orm_query_t *q;
  orm_query_new(&q, user_model());
  orm_query_where(q, "id", ORM_OP_EQ, ORM_INT8(app->user.id));
  orm_query_include(q, "conversations.messages.usage");
  orm_query_include(q, "conversations.messages.author");
  if (orm_find_all_async(app->pool, NULL, q, on_history, app, NULL) != 0)
    app->status = 1;
  orm_query_free(q); /* the call copied what it needs */
}

/* 4b. the usage of the assistant's answer, now that it has an id */
static void on_messages(orm_future_t *f, void *data) {
  app_t *app = data;
  if (failed(app, f, "messages"))
    return;
  app->usage = (usage_record_t){.user_id = app->user.id,
                                .agent_id = app->agent.id,
                                .day = 20416, /* 2025-11-24 */
                                .prompt_tokens = 17,
                                .completion_tokens = 11,
                                .cost = "0.000420000000",
                                .latency_ms = 212.5f,
                                .message_id = app->messages[2].id};
  ORM_SET_NULL(&app->usage, usage_record, request_digest);
  orm_insert_async(app->tx, usage_record_model(), &app->usage, NULL, NULL,
                   NULL);
  /* Statements of a transaction run in order: COMMIT comes after them. */
  orm_tx_commit_async(app->tx, on_committed, app, NULL);
}

/* 4. messages and usage, in the same transaction */
static void on_conversation(orm_future_t *f, void *data) {
  app_t *app = data;
  if (failed(app, f, "conversation"))
    return;
  static const char *roles[] = {"system", "user", "assistant"};
  static const char *texts[] = {"You are a helpful assistant.",
                                "What is a pipelined query?",
                                "Several queries sent before the answers."};
  for (int i = 0; i < 3; i++) {
    message_t *m = &app->messages[i];
    m->conversation_id = app->conversation.id;
    m->role = roles[i];
    m->content = texts[i];
    m->tokens = (int32_t)strlen(texts[i]) / 4;
    m->metadata = NULL; /* a NULL string is sent as NULL */
    m->author_id = app->user.id;
    ORM_SET_NULL(m, message, editor_id);
    if (i != 1) /* the system prompt and the answer have no human author */
      ORM_SET_NULL(m, message, author_id);
    if (i == 0)
      ORM_SET_NULL(m, message, tokens);
  }
  orm_insert_many_async(app->tx, message_model(), app->messages, 3,
                        on_messages, app, NULL);
}

/* 2. the user's agent (its uuid comes back from the server) */
static void on_agent(orm_future_t *f, void *data) {
  app_t *app = data;
  if (failed(app, f, "agent"))
    return;
  char uuid[37];
  const uint8_t *b = app->agent.id.bytes;
  snprintf(uuid, sizeof uuid,
           "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
           b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10],
           b[11], b[12], b[13], b[14], b[15]);
  printf("agent %s (%s, %s)\n", uuid, app->agent.name, app->agent.status);
  /* 3. a transaction: the handle comes at once, and what is issued on it
   * goes out right behind BEGIN */
  int rc = orm_tx_begin(app->pool, &app->tx);
  if (rc != 0) {
    fprintf(stderr, "assistant: begin: %s\n", orm_strerror(rc));
    app->status = 1;
    step_done(app);
    return;
  }
  app->conversation = (conversation_t){.agent_id = app->agent.id,
                                       .user_id = app->user.id,
                                       .title = "First steps"};
  ORM_SET_NULL(&app->conversation, conversation, ended_at);
  orm_insert_async(app->tx, conversation_model(), &app->conversation,
                      on_conversation, app, NULL);
}

/* 1. the user (id and created_at come back into the struct) */
static void on_user(orm_future_t *f, void *data) {
  app_t *app = data;
  if (failed(app, f, "user"))
    return;
  printf("user %" PRId64 " <%s> signed up\n", app->user.id, app->user.email);
  static char tag0[] = "demo", tag1[] = "pipelines";
  static char *tags[] = {tag0, tag1};
  app->agent = (agent_t){.owner_id = app->user.id,
                         .name = "Tutor",
                         .model = "small-1",
                         .status = "active",
                         .temperature = 0.2,
                         .config = "{\"max_tokens\": 256}",
                         .tags = {tags, 2}};
  orm_insert_async(app->pool, agent_model(), &app->agent, on_agent, app, NULL);
}

int main(int argc, char **argv) {
  const char *conninfo = argc > 1 ? argv[1] : getenv("DATABASE_URL");
  uv_loop_t *loop = uv_default_loop();
  app_t app = {0};
  int rc = orm_pool_open(&app.pool, loop,
                         &(orm_pool_config_t){.conninfo = conninfo ? conninfo : "",
                                              .max_conns = 4});
  if (rc != 0) {
    fprintf(stderr, "assistant: %s\n", orm_strerror(rc));
    return 1;
  }
  char email[64];
  snprintf(email, sizeof email, "ada+%llu@example.com",
           (unsigned long long)(uv_hrtime() % 1000000007ULL));
  app.user = (user_t){.email = email, .name = "Ada"};
  orm_insert_async(app.pool, user_model(), &app.user, on_user, &app, NULL);
  uv_run(loop, UV_RUN_DEFAULT);
  uv_loop_close(loop);
  return app.status;
}
