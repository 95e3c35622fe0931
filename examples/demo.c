/* demo: connect to PostgreSQL from a libuv loop without blocking it, and
 * print the server's version.
 *
 *   demo [CONNINFO]     (default: $DATABASE_URL, else libpq's PG* defaults)
 */
#include <stdio.h>
#include <stdlib.h>

#include <libpq-fe.h>
#include <uv.h>

#include <uvorm.h>

typedef struct {
  uv_poll_t poll;
  PGconn *conn;
  int connected;
  int status; /* process exit status */
} demo_t;

static void on_poll(uv_poll_t *handle, int status, int events);

static void finish(demo_t *d, int status) {
  d->status = status;
  uv_close((uv_handle_t *)&d->poll, NULL);
}

static void connect_step(demo_t *d) {
  switch (PQconnectPoll(d->conn)) {
  case PGRES_POLLING_READING:
    uv_poll_start(&d->poll, UV_READABLE, on_poll);
    return;
  case PGRES_POLLING_WRITING:
    uv_poll_start(&d->poll, UV_WRITABLE, on_poll);
    return;
  case PGRES_POLLING_OK:
    d->connected = 1;
    PQsetnonblocking(d->conn, 1);
    if (!PQsendQuery(d->conn, "SELECT version()") || PQflush(d->conn) < 0)
      break;
    uv_poll_start(&d->poll, UV_READABLE, on_poll);
    return;
  default:
    break;
  }
  fprintf(stderr, "demo: %s", PQerrorMessage(d->conn));
  finish(d, 1);
}

static void read_step(demo_t *d) {
  if (!PQconsumeInput(d->conn)) {
    fprintf(stderr, "demo: %s", PQerrorMessage(d->conn));
    finish(d, 1);
    return;
  }
  PGresult *res;
  while (!PQisBusy(d->conn) && (res = PQgetResult(d->conn)) != NULL) {
    if (PQresultStatus(res) == PGRES_TUPLES_OK)
      printf("connected without blocking the loop: %s\n", PQgetvalue(res, 0, 0));
    else
    {
      fprintf(stderr, "demo: %s", PQresultErrorMessage(res));
      d->status = 1;
    }
    PQclear(res);
  }
  if (!PQisBusy(d->conn))
    finish(d, d->status);
}

static void on_poll(uv_poll_t *handle, int status, int events) {
  demo_t *d = handle->data;
  /* libuv reports POLLERR as UV_EBADF; libpq reads the real error itself. */
  if (!d->connected) {
    connect_step(d);
  } else if (status < 0) {
    fprintf(stderr, "demo: poll: %s\n", uv_strerror(status));
    finish(d, 1);
  } else {
    read_step(d);
  }
}

int main(int argc, char **argv) {
  const char *conninfo = argc > 1 ? argv[1] : getenv("DATABASE_URL");
  demo_t d = {.status = 0};
  printf("uvorm %s on libuv %s\n", orm_version_string(), uv_version_string());

  d.conn = PQconnectStart(conninfo != NULL ? conninfo : "");
  if (d.conn == NULL || PQstatus(d.conn) == CONNECTION_BAD) {
    fprintf(stderr, "demo: %s", d.conn ? PQerrorMessage(d.conn) : "out of memory\n");
    PQfinish(d.conn);
    return 1;
  }
  uv_loop_t *loop = uv_default_loop();
  uv_poll_init_socket(loop, &d.poll, PQsocket(d.conn));
  d.poll.data = &d;
  uv_poll_start(&d.poll, UV_WRITABLE, on_poll);
  uv_run(loop, UV_RUN_DEFAULT);
  PQfinish(d.conn);
  uv_loop_close(loop);
  return d.status;
}
