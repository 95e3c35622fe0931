/* SPDX-License-Identifier: MIT */
/* bench_load: loads the data bench_workloads runs on.
 *
 *   bench_load [--conninfo STR]
 *
 * Connects with blocking libpq (--conninfo, else $UVORM_TEST_DSN, else
 * $DATABASE_URL, else libpq's PG* defaults), drops the schema BENCH_SCHEMA
 * with everything in it and, in one transaction, creates and fills:
 *
 *   world    TechEmpower's: WORLD_ROWS rows (id, randomnumber), the random
 *            numbers in 1..WORLD_ROWS;
 *   fortune  TechEmpower's: the TFB_FORTUNES standard fortunes;
 *   users    the sample domain's table (examples/domain/migrations/), with
 *            BENCH_USERS rows from one INSERT ... SELECT generate_series
 *            (every tenth name NULL);
 *   conversations, messages, usage_records
 *            the relations workloads' tables (relations.h): REL_CONVERSATIONS
 *            conversations of REL_MESSAGES_PER messages each, one usage
 *            record per message, each from one INSERT ... SELECT
 *            generate_series; an index on messages (conversation_id, id).
 *
 * Then it vacuums and analyzes the tables, so that the first reads of
 * a run neither set hint bits nor plan without statistics, and prints what
 * it loaded. Running it again gives the same tables (new random numbers).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "harness.h"
#include "relations.h"
#include "tfb.h"

#define DRIVER "load"

/* Runs a statement without parameters; 0, or -1 after saying why. */
static int exec_sql(PGconn *pg, const char *sql) {
  PGresult *res = PQexec(pg, sql);
  ExecStatusType st = PQresultStatus(res);
  int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
  if (!ok)
    bench_warn(DRIVER, "%.60s...: %s", sql, PQresultErrorMessage(res));
  PQclear(res);
  return ok ? 0 : -1;
}

/* The one bigint a query returns, or -1 after saying why. */
static int64_t query_count(PGconn *pg, const char *sql) {
  PGresult *res = PQexec(pg, sql);
  int64_t n = -1;
  if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
      !PQgetisnull(res, 0, 0))
    n = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
  else
    bench_warn(DRIVER, "%s: %s", sql, PQresultErrorMessage(res));
  PQclear(res);
  return n;
}

static int load_fortunes(PGconn *pg) {
  for (int i = 0; i < TFB_FORTUNES; i++) {
    char id[16];
    snprintf(id, sizeof id, "%d", i + 1);
    const char *values[2] = {id, tfb_fortune_messages[i]};
    PGresult *res = PQexecParams(
        pg, "INSERT INTO " BENCH_SCHEMA ".fortune (id, message) VALUES ($1, $2)",
        2, NULL, values, NULL, NULL, 0);
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    if (!ok)
      bench_warn(DRIVER, "fortune %d: %s", i + 1, PQresultErrorMessage(res));
    PQclear(res);
    if (!ok)
      return -1;
  }
  return 0;
}

#define STRINGIFY_(x) #x
#define STRINGIFY(x) STRINGIFY_(x)

static const char *const create_sql[] = {
    "SET client_min_messages = warning",
    /* The COMMIT must reach the WAL before VACUUM runs: until a commit
     * record is flushed, nothing may set its rows' hint bits, and VACUUM
     * marks no page all-visible (scripts/pg-test-server's server runs with
     * synchronous_commit = off). Without it every index-only scan of a run
     * visits the heap. */
    "SET synchronous_commit = on",
    "DROP SCHEMA IF EXISTS " BENCH_SCHEMA " CASCADE",
    "CREATE SCHEMA " BENCH_SCHEMA,
    "CREATE TABLE " BENCH_SCHEMA ".world (\n"
    "  id           integer PRIMARY KEY,\n"
    "  randomnumber integer NOT NULL\n"
    ")",
    "INSERT INTO " BENCH_SCHEMA ".world (id, randomnumber)\n"
    "  SELECT g, 1 + floor(random() * " STRINGIFY(WORLD_ROWS) ")::integer\n"
    "  FROM generate_series(1, " STRINGIFY(WORLD_ROWS) ") AS g",
    "CREATE TABLE " BENCH_SCHEMA ".fortune (\n"
    "  id      integer PRIMARY KEY,\n"
    "  message text NOT NULL\n"
    ")",
    /* examples/domain/migrations/'s users. */
    "CREATE TABLE " BENCH_SCHEMA ".users (\n"
    "  id         bigserial PRIMARY KEY,\n"
    "  email      text NOT NULL UNIQUE,\n"
    "  name       text,\n"
    "  created_at timestamptz NOT NULL DEFAULT now()\n"
    ")",
    "INSERT INTO " BENCH_SCHEMA ".users (email, name)\n"
    "  SELECT 'user' || g || '@example.com',\n"
    "         CASE WHEN g % 10 = 0 THEN NULL ELSE 'User number ' || g END\n"
    "  FROM generate_series(1, " STRINGIFY(BENCH_USERS) ") AS g",
    /* The relations workloads' tables (relations.h). Ids are given, then
     * the sequences moved past them. */
    "CREATE TABLE " BENCH_SCHEMA ".conversations (\n"
    "  id         bigserial PRIMARY KEY,\n"
    "  user_id    bigint NOT NULL,\n"
    "  title      text NOT NULL,\n"
    "  started_at timestamptz NOT NULL DEFAULT now()\n"
    ")",
    "INSERT INTO " BENCH_SCHEMA ".conversations (id, user_id, title, started_at)\n"
    "  SELECT g, 1 + g % 1000, 'Conversation number ' || g,\n"
    "         timestamptz '2025-01-01 00:00:00+00' + g * interval '1 minute'\n"
    "  FROM generate_series(1, " STRINGIFY(REL_CONVERSATIONS) ") AS g",
    "SELECT setval(pg_get_serial_sequence('" BENCH_SCHEMA ".conversations', 'id'), "
    STRINGIFY(REL_CONVERSATIONS) ")",
    "CREATE TABLE " BENCH_SCHEMA ".messages (\n"
    "  id              bigserial PRIMARY KEY,\n"
    "  conversation_id bigint NOT NULL REFERENCES " BENCH_SCHEMA ".conversations (id),\n"
    "  role            text NOT NULL,\n"
    "  content         text NOT NULL,\n"
    "  tokens          integer NOT NULL,\n"
    "  created_at      timestamptz NOT NULL DEFAULT now()\n"
    ")",
    "INSERT INTO " BENCH_SCHEMA ".messages (id, conversation_id, role, content, tokens, created_at)\n"
    "  SELECT g, (g - 1) / " STRINGIFY(REL_MESSAGES_PER) " + 1,\n"
    "         CASE WHEN (g - 1) % " STRINGIFY(REL_MESSAGES_PER) " = 0 THEN 'system'\n"
    "              WHEN (g - 1) % 2 = 1 THEN 'user' ELSE 'assistant' END,\n"
    "         rpad('Message ' || g || ': ', " STRINGIFY(REL_CONTENT_LEN) ", "
    "'the quick brown fox jumps over the lazy dog. '),\n"
    "         10 + g % 90,\n"
    "         timestamptz '2025-01-01 00:00:00+00' + g * interval '1 second'\n"
    "  FROM generate_series(1, " STRINGIFY(REL_MESSAGES) ") AS g",
    "SELECT setval(pg_get_serial_sequence('" BENCH_SCHEMA ".messages', 'id'), "
    STRINGIFY(REL_MESSAGES) ")",
    "CREATE INDEX messages_conversation_id_id ON " BENCH_SCHEMA
    ".messages (conversation_id, id)",
    "CREATE TABLE " BENCH_SCHEMA ".usage_records (\n"
    "  id                bigserial PRIMARY KEY,\n"
    "  message_id        bigint NOT NULL UNIQUE REFERENCES " BENCH_SCHEMA ".messages (id),\n"
    "  prompt_tokens     integer NOT NULL,\n"
    "  completion_tokens integer NOT NULL,\n"
    "  cost              numeric(30,12) NOT NULL\n"
    ")",
    /* REL_PROMPT_TOKENS, REL_COMPLETION_TOKENS and REL_COST_MICROS. */
    "INSERT INTO " BENCH_SCHEMA ".usage_records\n"
    "    (id, message_id, prompt_tokens, completion_tokens, cost)\n"
    "  SELECT g, g, 50 + g % 200, 20 + g % 300,\n"
    "         ((50 + g % 200) * 3 + (20 + g % 300) * 15) / 1000000.0\n"
    "  FROM generate_series(1, " STRINGIFY(REL_MESSAGES) ") AS g",
    "SELECT setval(pg_get_serial_sequence('" BENCH_SCHEMA ".usage_records', 'id'), "
    STRINGIFY(REL_MESSAGES) ")",
};

static void usage(FILE *out, const char *prog) {
  fprintf(out,
          "usage: %s [--conninfo STR]\n"
          "  Drops and re-creates the schema " BENCH_SCHEMA " with the tables\n"
          "  world, fortune, users, conversations, messages and\n"
          "  usage_records (see bench/README.md).\n"
          "  --conninfo=STR  libpq connection string (default: $UVORM_TEST_DSN,\n"
          "                  then $DATABASE_URL, then libpq's PG* defaults)\n",
          prog);
}

int main(int argc, char **argv) {
  const char *conninfo = "";
  const char *env;

  if ((env = getenv("UVORM_TEST_DSN")) != NULL && *env)
    conninfo = env;
  else if ((env = getenv("DATABASE_URL")) != NULL && *env)
    conninfo = env;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
      usage(stdout, argv[0]);
      return 0;
    } else if (strncmp(argv[i], "--conninfo=", 11) == 0) {
      conninfo = argv[i] + 11;
    } else if (strcmp(argv[i], "--conninfo") == 0 && i + 1 < argc) {
      conninfo = argv[++i];
    } else {
      usage(stderr, argv[0]);
      fprintf(stderr, "%s: unknown argument '%s'\n", argv[0], argv[i]);
      return 2;
    }
  }

  uint64_t start = bench_now_ns();
  PGconn *pg = PQconnectdb(conninfo);
  if (PQstatus(pg) != CONNECTION_OK) {
    bench_warn(DRIVER, "connect: %s", PQerrorMessage(pg));
    PQfinish(pg);
    return 1;
  }

  int failed = exec_sql(pg, "BEGIN") != 0;
  for (size_t i = 0; !failed && i < sizeof create_sql / sizeof create_sql[0]; i++)
    failed = exec_sql(pg, create_sql[i]) != 0;
  if (!failed)
    failed = load_fortunes(pg) != 0;
  if (!failed)
    failed = exec_sql(pg, "COMMIT") != 0;
  /* VACUUM runs outside a transaction. */
  if (!failed)
    failed = exec_sql(pg, "VACUUM (ANALYZE) " BENCH_SCHEMA ".world, " BENCH_SCHEMA
                          ".fortune, " BENCH_SCHEMA ".users, " BENCH_SCHEMA
                          ".conversations, " BENCH_SCHEMA ".messages, " BENCH_SCHEMA
                          ".usage_records") != 0;

  int64_t worlds = -1, fortunes = -1, users = -1, convs = -1, msgs = -1, full = -1;
  if (!failed) {
    worlds = query_count(pg, "SELECT count(*) FROM " BENCH_SCHEMA ".world "
                             "WHERE randomnumber BETWEEN 1 AND " STRINGIFY(WORLD_ROWS));
    fortunes = query_count(pg, "SELECT count(*) FROM " BENCH_SCHEMA ".fortune");
    users = query_count(pg, "SELECT count(*) FROM " BENCH_SCHEMA ".users");
    if (worlds != WORLD_ROWS || fortunes != TFB_FORTUNES || users != BENCH_USERS) {
      bench_warn(DRIVER, "loaded world %" PRId64 ", fortune %" PRId64
                         ", users %" PRId64 " rows: expected %d, %d and %d",
                 worlds, fortunes, users, WORLD_ROWS, TFB_FORTUNES, BENCH_USERS);
      failed = 1;
    }
  }
  if (!failed) {
    convs = query_count(pg, "SELECT count(*) FROM " BENCH_SCHEMA ".conversations");
    /* Every conversation has REL_MESSAGES_PER messages, each with a usage. */
    msgs = query_count(pg, "SELECT count(*) FROM " BENCH_SCHEMA ".messages m JOIN "
                           BENCH_SCHEMA ".usage_records u ON u.message_id = m.id");
    full = query_count(pg, "SELECT count(*) FROM (SELECT conversation_id FROM "
                            BENCH_SCHEMA ".messages GROUP BY conversation_id HAVING "
                            "count(*) = " STRINGIFY(REL_MESSAGES_PER) ") c");
    if (convs != REL_CONVERSATIONS || msgs != REL_MESSAGES || full != REL_CONVERSATIONS) {
      bench_warn(DRIVER, "loaded %" PRId64 " conversations, %" PRId64
                         " messages with a usage record, %" PRId64
                         " conversations of %d messages: expected %d, %d and %d",
                 convs, msgs, full, REL_MESSAGES_PER, REL_CONVERSATIONS,
                 REL_MESSAGES, REL_CONVERSATIONS);
      failed = 1;
    }
  }
  PQfinish(pg);
  if (failed)
    return 1;
  printf("bench_load: schema " BENCH_SCHEMA ": world %" PRId64 " rows, fortune %" PRId64
         " rows, users %" PRId64 " rows, conversations %" PRId64 " rows, messages and"
         " usage_records %" PRId64 " rows, in %.2f s\n",
         worlds, fortunes, users, convs, msgs, (double)(bench_now_ns() - start) / 1e9);
  return 0;
}
