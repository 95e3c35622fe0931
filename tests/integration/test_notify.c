/* SPDX-License-Identifier: MIT */
/* LISTEN/NOTIFY against the real server: notifications in order with
 * channel, payload and sender; channel names quoted, never spliced; a
 * killed listener backend and a server restart give a GAP event and the
 * listener listens again; bad names and payloads are refused. */
#include "fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCHEMA "notify_test"

static orm_fx_t fx;

typedef struct {
  int listening, gaps, errors, messages;
  char payloads[16][32];
  int pids[16];
  char channel[80];
  int order_bad;           /* a message before LISTENING */
  orm_listen_t *self;
  int unlisten_after;      /* unlisten itself after this many messages */
  int unlisten_on_listening; /* ... as soon as it listens */
  int close_after;         /* close the pool after this many */
} inbox_t;

static void on_note(orm_listen_t *l, const orm_notification_t *n, void *data) {
  inbox_t *in = data;
  switch (n->kind) {
  case ORM_NOTIFY_LISTENING:
    in->listening++;
    if (in->unlisten_on_listening)
      assert_int_equal(orm_unlisten(l), 0);
    break;
  case ORM_NOTIFY_GAP:
    in->gaps++;
    break;
  case ORM_NOTIFY_ERROR:
    in->errors++;
    break;
  case ORM_NOTIFY_MESSAGE:
    if (in->listening == 0)
      in->order_bad++;
    if (in->messages < 16) {
      snprintf(in->payloads[in->messages], sizeof in->payloads[0], "%s",
               n->payload);
      in->pids[in->messages] = n->sender_pid;
    }
    in->messages++;
    snprintf(in->channel, sizeof in->channel, "%s", n->channel);
    if (in->unlisten_after > 0 && in->messages == in->unlisten_after)
      assert_int_equal(orm_unlisten(l), 0);
    if (in->close_after > 0 && in->messages == in->close_after)
      assert_int_equal(orm_pool_close(fx.pool, NULL), 0);
    break;
  }
}

static void open_fx(void) {
  orm_fx_open(&fx, SCHEMA, 0,
              &(orm_pool_config_t){.min_conns = 1, .max_conns = 2});
}

static void wait_for(int *counter, int want) {
  uv_update_time(&fx.loop);
  uint64_t end = uv_now(&fx.loop) + 15000;
  while (*counter < want) {
    uv_run(&fx.loop, UV_RUN_ONCE);
    if (uv_now(&fx.loop) > end)
      fail_msg("waited for %d, have %d", want, *counter);
  }
}

/* NOTIFY from the admin connection: its pid is the sender. */
static void admin_notify(const char *channel, const char *payload) {
  const char *values[2] = {channel, payload};
  PGresult *res = PQexecParams(fx.admin, "SELECT pg_notify($1, $2)", 2, NULL,
                               values, NULL, NULL, 0);
  assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
  PQclear(res);
}

static void test_in_order_with_sender(void **state) {
  (void)state;
  open_fx();
  inbox_t in = {0};
  orm_listen_t *l;
  assert_int_equal(orm_listen(fx.pool, "jobs", on_note, &in, &l), 0);
  wait_for(&in.listening, 1);
  const char *p[] = {"one", "two", "three", "four", "five"};
  for (int i = 0; i < 5; i++)
    admin_notify("jobs", p[i]);
  admin_notify("other", "not ours");
  wait_for(&in.messages, 5);
  orm_fx_run_ms(&fx, 100);
  assert_int_equal(in.messages, 5);
  for (int i = 0; i < 5; i++) {
    assert_string_equal(in.payloads[i], p[i]);
    assert_int_equal(in.pids[i], PQbackendPID(fx.admin));
  }
  assert_string_equal(in.channel, "jobs");
  assert_int_equal(in.order_bad, 0);
  assert_int_equal(orm_unlisten(l), 0);
  orm_fx_close(&fx);
}

static void on_step(orm_future_t *f, void *data) { orm_fx_on_step(f, data); }

static void test_notify_async_and_names(void **state) {
  (void)state;
  open_fx();
  /* Quoted, never spliced: case, spaces, quotes and semicolons stay part
   * of the name. */
  const char *names[] = {"MixedCase", "we\"ird; DROP TABLE x; --", "über"};
  inbox_t in[3] = {{0}};
  orm_listen_t *l[3];
  for (int i = 0; i < 3; i++)
    assert_int_equal(orm_listen(fx.pool, names[i], on_note, &in[i], &l[i]), 0);
  /* Two subscriptions of one channel both hear it. */
  inbox_t twin = {0};
  orm_listen_t *lt;
  assert_int_equal(orm_listen(fx.pool, "MixedCase", on_note, &twin, &lt), 0);
  for (int i = 0; i < 3; i++)
    wait_for(&in[i].listening, 1);
  wait_for(&twin.listening, 1);
  orm_step_t steps[3] = {{0}};
  for (int i = 0; i < 3; i++)
    assert_int_equal(orm_notify_async(fx.pool, names[i], "hi", on_step,
                                      &steps[i], NULL),
                     0);
  orm_fx_wait(&fx, steps, 3);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(steps[i].status, 0);
    wait_for(&in[i].messages, 1);
    assert_string_equal(in[i].channel, names[i]);
    assert_string_equal(in[i].payloads[0], "hi");
  }
  wait_for(&twin.messages, 1);
  /* "mixedcase" is another channel. */
  admin_notify("mixedcase", "x");
  orm_fx_run_ms(&fx, 200);
  assert_int_equal(in[0].messages, 1);
  /* A NULL payload arrives empty. */
  orm_step_t s = {0};
  assert_int_equal(orm_notify_async(fx.pool, "MixedCase", NULL, on_step, &s,
                                    NULL),
                   0);
  orm_fx_wait(&fx, &s, 1);
  assert_int_equal(s.status, 0);
  wait_for(&in[0].messages, 2);
  assert_string_equal(in[0].payloads[1], "");
  for (int i = 0; i < 3; i++)
    orm_unlisten(l[i]);
  orm_unlisten(lt);
  orm_fx_close(&fx);
}

static void test_notify_in_a_transaction(void **state) {
  (void)state;
  open_fx();
  inbox_t in = {0};
  orm_listen_t *l;
  assert_int_equal(orm_listen(fx.pool, "tx_chan", on_note, &in, &l), 0);
  wait_for(&in.listening, 1);
  orm_tx_t *tx;
  assert_int_equal(orm_tx_begin(fx.pool, &tx), 0);
  orm_step_t n = {0}, c = {0};
  assert_int_equal(orm_notify_async(tx, "tx_chan", "after commit", on_step,
                                    &n, NULL),
                   0);
  orm_fx_wait(&fx, &n, 1);
  orm_fx_run_ms(&fx, 200);
  assert_int_equal(in.messages, 0); /* not before COMMIT */
  assert_int_equal(orm_tx_commit_async(tx, on_step, &c, NULL), 0);
  orm_fx_wait(&fx, &c, 1);
  wait_for(&in.messages, 1);
  assert_string_equal(in.payloads[0], "after commit");
  /* Rolled back: never sent. */
  assert_int_equal(orm_tx_begin(fx.pool, &tx), 0);
  orm_step_t n2 = {0}, r = {0};
  assert_int_equal(orm_notify_async(tx, "tx_chan", "never", on_step, &n2,
                                    NULL),
                   0);
  assert_int_equal(orm_tx_rollback_async(tx, on_step, &r, NULL), 0);
  orm_fx_wait(&fx, &r, 1);
  orm_fx_run_ms(&fx, 200);
  assert_int_equal(in.messages, 1);
  orm_unlisten(l);
  orm_fx_close(&fx);
}

static unsigned busy_conns(void) {
  orm_pool_stats_t st;
  assert_int_equal(orm_pool_stats(fx.pool, &st), 0);
  return st.conns_busy;
}

static void test_unlisten(void **state) {
  (void)state;
  open_fx();
  inbox_t a = {0}, b = {0};
  orm_listen_t *la, *lb;
  assert_int_equal(orm_listen(fx.pool, "u1", on_note, &a, &la), 0);
  assert_int_equal(orm_listen(fx.pool, "u2", on_note, &b, &lb), 0);
  wait_for(&a.listening, 1);
  wait_for(&b.listening, 1);
  assert_int_equal(busy_conns(), 1); /* the listener's */
  a.unlisten_after = 1;              /* from inside its callback */
  admin_notify("u1", "1");
  admin_notify("u1", "2");
  wait_for(&a.messages, 1);
  orm_fx_run_ms(&fx, 200);
  assert_int_equal(a.messages, 1);
  admin_notify("u2", "x");
  wait_for(&b.messages, 1);
  assert_int_equal(orm_unlisten(lb), 0);
  admin_notify("u2", "y");
  orm_fx_run_ms(&fx, 300);
  assert_int_equal(b.messages, 1);
  /* Unlistened from its own LISTENING: nothing more reaches it. */
  inbox_t once = {.unlisten_on_listening = 1};
  orm_listen_t *lo;
  assert_int_equal(orm_listen(fx.pool, "u2", on_note, &once, &lo), 0);
  wait_for(&once.listening, 1);
  admin_notify("u2", "z");
  orm_fx_run_ms(&fx, 300);
  assert_int_equal(once.messages, 0);
  /* Nothing listens: the connection went back to the pool. */
  assert_int_equal(busy_conns(), 0);
  /* And listening again takes one again. */
  inbox_t c = {0};
  orm_listen_t *lc;
  assert_int_equal(orm_listen(fx.pool, "u1", on_note, &c, &lc), 0);
  wait_for(&c.listening, 1);
  admin_notify("u1", "3");
  wait_for(&c.messages, 1);
  assert_string_equal(c.payloads[0], "3");
  orm_unlisten(lc);
  assert_int_equal(orm_unlisten(NULL), ORM_EINVAL);
  orm_fx_close(&fx);
}

static void kill_listener(void) {
  assert_int_equal(orm_fx_int(&fx, "SELECT count(pg_terminate_backend(pid)) "
                                   "FROM pg_stat_activity WHERE "
                                   "application_name = 'notify_test' AND "
                                   "query LIKE 'LISTEN%' AND pid <> "
                                   "pg_backend_pid()"),
                   1);
}

static void test_killed_listener_reports_a_gap(void **state) {
  (void)state;
  open_fx();
  inbox_t in = {0};
  orm_listen_t *l;
  assert_int_equal(orm_listen(fx.pool, "gap_chan", on_note, &in, &l), 0);
  wait_for(&in.listening, 1);
  kill_listener();
  /* Sent while nobody listens: lost, and the GAP says so. */
  admin_notify("gap_chan", "lost");
  wait_for(&in.gaps, 1);
  assert_int_equal(in.listening, 1);
  admin_notify("gap_chan", "after");
  wait_for(&in.messages, 1);
  orm_fx_run_ms(&fx, 100);
  assert_string_equal(in.payloads[in.messages - 1], "after");
  orm_unlisten(l);
  orm_fx_close(&fx);
}

static void test_server_restart_while_listening(void **state) {
  (void)state;
  if (!orm_test_server_managed())
    skip();
  orm_fx_open(&fx, NULL, 0,
              &(orm_pool_config_t){.min_conns = 1, .max_conns = 2,
                                   .reconnect_max_ms = 300});
  inbox_t in = {0};
  orm_listen_t *l;
  assert_int_equal(orm_listen(fx.pool, "restart_chan", on_note, &in, &l), 0);
  wait_for(&in.listening, 1);
  PQfinish(fx.admin);
  fx.admin = NULL;
  orm_test_server("restart");
  wait_for(&in.gaps, 1);
  /* Notify from the pool itself now. */
  orm_step_t s = {0};
  assert_int_equal(orm_notify_async(fx.pool, "restart_chan", "back", on_step,
                                    &s, NULL),
                   0);
  orm_fx_wait(&fx, &s, 1);
  assert_int_equal(s.status, 0);
  wait_for(&in.messages, 1);
  assert_string_equal(in.payloads[0], "back");
  orm_unlisten(l);
  orm_fx_close(&fx);
}

static void test_close_from_a_callback(void **state) {
  (void)state;
  open_fx();
  inbox_t in = {.close_after = 1};
  orm_listen_t *l;
  assert_int_equal(orm_listen(fx.pool, "closing", on_note, &in, &l), 0);
  wait_for(&in.listening, 1);
  admin_notify("closing", "1");
  admin_notify("closing", "2");
  wait_for(&in.messages, 1);
  /* A listen on a closing pool is refused. */
  inbox_t late = {0};
  orm_listen_t *ll = (orm_listen_t *)&late;
  assert_int_equal(orm_listen(fx.pool, "late", on_note, &late, &ll),
                   ORM_ECLOSED);
  assert_null(ll);
  /* Closed already: the fixture only runs the loop out and checks that
   * every handle is gone. */
  fx.pool = NULL;
  fx.closed = 1;
  orm_fx_close(&fx);
  assert_int_equal(in.messages, 1);
}

static void test_bad_input(void **state) {
  (void)state;
  open_fx();
  inbox_t in = {0};
  orm_listen_t *l;
  char long_name[65];
  memset(long_name, 'c', 64);
  long_name[64] = '\0';
  assert_int_equal(orm_listen(fx.pool, long_name, on_note, &in, &l),
                   ORM_EINVAL);
  assert_int_equal(orm_listen(fx.pool, "", on_note, &in, &l), ORM_EINVAL);
  assert_int_equal(orm_listen(fx.pool, "a\nb", on_note, &in, &l), ORM_EINVAL);
  assert_int_equal(orm_listen(fx.pool, NULL, on_note, &in, &l), ORM_EINVAL);
  assert_int_equal(orm_listen(fx.pool, "ok", NULL, &in, &l), ORM_EINVAL);
  assert_int_equal(orm_listen(NULL, "ok", on_note, &in, &l), ORM_EINVAL);
  assert_int_equal(orm_listen(fx.pool, "ok", on_note, &in, NULL), ORM_EINVAL);
  long_name[63] = '\0'; /* 63 bytes: fine */
  assert_int_equal(orm_listen(fx.pool, long_name, on_note, &in, &l), 0);
  wait_for(&in.listening, 1);
  orm_unlisten(l);
  /* Payloads: the server's limit is checked before anything is sent. */
  size_t big = 1 << 20;
  char *payload = malloc(big + 1);
  memset(payload, 'p', big);
  payload[big] = '\0';
  orm_step_t s = {0};
  assert_int_equal(orm_notify_async(fx.pool, "ok", payload, on_step, &s, NULL),
                   ORM_E2BIG);
  payload[ORM_NOTIFY_PAYLOAD_MAX + 1] = '\0';
  assert_int_equal(orm_notify_async(fx.pool, "ok", payload, on_step, &s, NULL),
                   ORM_E2BIG);
  payload[ORM_NOTIFY_PAYLOAD_MAX] = '\0';
  assert_int_equal(orm_notify_async(fx.pool, "ok", payload, on_step, &s, NULL),
                   0);
  orm_fx_wait(&fx, &s, 1);
  assert_int_equal(s.status, 0);
  free(payload);
  assert_int_equal(orm_notify_async(fx.pool, "", "x", on_step, &s, NULL),
                   ORM_EINVAL);
  orm_fx_close(&fx);
  /* One connection cannot be lent to a listener for good. */
  orm_fx_open(&fx, NULL, 0,
              &(orm_pool_config_t){.min_conns = 1, .max_conns = 1});
  assert_int_equal(orm_listen(fx.pool, "ok", on_note, &in, &l), ORM_ENOTSUP);
  orm_fx_close(&fx);
  /* Behind a transaction-mode pooler LISTEN cannot work. */
  orm_fx_open(&fx, NULL, 0,
              &(orm_pool_config_t){.max_conns = 4,
                                   .transaction_pooling = true});
  assert_int_equal(orm_listen(fx.pool, "ok", on_note, &in, &l), ORM_ENOTSUP);
  orm_fx_close(&fx);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_in_order_with_sender),
      cmocka_unit_test(test_notify_async_and_names),
      cmocka_unit_test(test_notify_in_a_transaction),
      cmocka_unit_test(test_unlisten),
      cmocka_unit_test(test_killed_listener_reports_a_gap),
      cmocka_unit_test(test_close_from_a_callback),
      cmocka_unit_test(test_bad_input),
      cmocka_unit_test(test_server_restart_while_listening),
  };
  return orm_run_group_tests(tests, NULL, NULL);
}
