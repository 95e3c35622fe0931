/* SPDX-License-Identifier: MIT */
/* End-to-end proof of the foundation: libpq in non-blocking mode, connected
 * with PQconnectStart/PQconnectPoll and queried with PQsendQueryParams, each
 * step driven by a uv_poll_t on the libuv loop. Nothing here blocks. */
#include "harness.h"

#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

typedef struct {
  uv_poll_t poll;
  uv_os_sock_t fd;
  PGconn *conn;
  int connected;
  int failed;
  int sent;
  int results;
  int polls;
  char server_version[32];
  long answer;
} client_t;

static void on_poll(uv_poll_t *handle, int status, int events);

static void arm(client_t *c, int events) {
  assert_int_equal(uv_poll_start(&c->poll, events, on_poll), 0);
}

/* PQconnectPoll may move to a new socket (another address or host); the
 * poll handle then has to be re-created for the new fd. */
static void step_connect(client_t *c) {
  PostgresPollingStatusType st = PQconnectPoll(c->conn);
  if (PQsocket(c->conn) != c->fd && st != PGRES_POLLING_FAILED) {
    fail_msg("socket changed during connect; single-host test expects one");
  }
  switch (st) {
  case PGRES_POLLING_READING:
    arm(c, UV_READABLE);
    break;
  case PGRES_POLLING_WRITING:
    arm(c, UV_WRITABLE);
    break;
  case PGRES_POLLING_OK: {
    c->connected = 1;
    assert_int_equal(PQsetnonblocking(c->conn, 1), 0);
    assert_int_equal(PQisnonblocking(c->conn), 1);
    const char *values[1] = {"41"};
    assert_int_equal(
        PQsendQueryParams(c->conn,
                          "SELECT current_setting('server_version'), $1::int8 + 1",
                          1, NULL, values, NULL, NULL, 0),
        1);
    c->sent = 1;
    int flushed = PQflush(c->conn);
    assert_true(flushed >= 0);
    arm(c, flushed == 1 ? UV_READABLE | UV_WRITABLE : UV_READABLE);
    break;
  }
  default:
    c->failed = 1;
    uv_poll_stop(&c->poll);
    break;
  }
}

static void step_query(client_t *c, int events) {
  if (events & UV_WRITABLE) {
    int flushed = PQflush(c->conn);
    assert_true(flushed >= 0);
    arm(c, flushed == 1 ? UV_READABLE | UV_WRITABLE : UV_READABLE);
  }
  if (!(events & UV_READABLE))
    return;
  assert_int_equal(PQconsumeInput(c->conn), 1);
  while (!PQisBusy(c->conn)) {
    PGresult *res = PQgetResult(c->conn);
    if (res == NULL) {
      uv_poll_stop(&c->poll); /* query complete: nothing more to wait for */
      return;
    }
    assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
    assert_int_equal(PQntuples(res), 1);
    snprintf(c->server_version, sizeof c->server_version, "%s",
             PQgetvalue(res, 0, 0));
    c->answer = strtol(PQgetvalue(res, 0, 1), NULL, 10);
    c->results++;
    PQclear(res);
  }
}

static void on_poll(uv_poll_t *handle, int status, int events) {
  client_t *c = handle->data;
  c->polls++;
  /* libuv reports POLLERR (e.g. a refused connect) as UV_EBADF and stops
   * the handle; libpq learns the real error from the socket itself. */
  if (!c->connected)
    step_connect(c);
  else {
    assert_int_equal(status, 0);
    step_query(c, events);
  }
}

static void start_client(uv_loop_t *loop, client_t *c, const char *dsn) {
  memset(c, 0, sizeof *c);
  c->conn = PQconnectStart(dsn);
  assert_non_null(c->conn);
  assert_int_not_equal(PQstatus(c->conn), CONNECTION_BAD);
  c->fd = PQsocket(c->conn);
  assert_true(c->fd >= 0);
  assert_int_equal(uv_poll_init_socket(loop, &c->poll, c->fd), 0);
  c->poll.data = c;
  /* PQconnectStart has begun a non-blocking connect: wait until writable. */
  arm(c, UV_WRITABLE);
}

static void test_query_on_loop(void **state) {
  uv_loop_t loop;
  client_t c;
  assert_int_equal(uv_loop_init(&loop), 0);
  start_client(&loop, &c, orm_test_dsn());
  orm_test_run(&loop, 10000);

  assert_false(c.failed);
  assert_true(c.connected);
  assert_int_equal(c.results, 1);
  assert_int_equal(c.answer, 42);
  assert_true(atoi(c.server_version) >= 14);
  assert_true(c.polls >= 2); /* it really went through the loop */

  uv_close((uv_handle_t *)&c.poll, NULL);
  orm_test_loop_close(&loop);
  PQfinish(c.conn); /* after the poll handle is closed, never before */
}

static void test_refused_connection_fails_on_loop(void **state) {
  uv_loop_t loop;
  client_t c;
  assert_int_equal(uv_loop_init(&loop), 0);
  /* Port 1 on loopback: nothing listens there, the connect is refused. */
  start_client(&loop, &c, "host=127.0.0.1 port=1 dbname=x connect_timeout=5");
  orm_test_run(&loop, 10000);

  assert_true(c.failed);
  assert_false(c.connected);
  assert_int_equal(PQstatus(c.conn), CONNECTION_BAD);
  assert_non_null(strstr(PQerrorMessage(c.conn), "refused"));

  uv_close((uv_handle_t *)&c.poll, NULL);
  orm_test_loop_close(&loop);
  PQfinish(c.conn);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_query_on_loop),
      cmocka_unit_test(test_refused_connection_fails_on_loop),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
