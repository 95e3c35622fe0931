/* SPDX-License-Identifier: MIT */
/* The example server (examples/server) end to end: started on a free
 * loopback port against the test database (in a schema of its own, which
 * its migrations fill), then every endpoint checked over real HTTP: status,
 * headers, bodies (JSON shapes, the fortunes page's escaping and order,
 * the clamping rules, the domain API's errors), bad input (malformed HTTP,
 * a 1 MB body, clients that hang up mid-request, 10,000 idle
 * connections), a database stop and start, and a graceful shutdown. */
#include "fixture.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "tfb.h"

#define SCHEMA "server_test"

static orm_fx_t fx;
static pid_t server;
static int port;

/* ---- a blocking HTTP/1.1 client -------------------------------------------- */

typedef struct {
  int status;
  char head[4096]; /* status line and headers */
  char *body;
  size_t len;
} resp_t;

static int connect_server(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
  struct timeval tv = {.tv_sec = 20};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

static void send_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
    if (k < 0 && errno == EINTR)
      continue;
    if (k <= 0)
      return; /* the server may close early (413) */
    p += k;
    n -= (size_t)k;
  }
}

/* Reads one response from `fd`: 0, or -1 when the connection ended first. */
static int read_response(int fd, resp_t *r) {
  memset(r, 0, sizeof *r);
  size_t cap = 8192, got = 0;
  char *buf = malloc(cap);
  size_t off = 0; /* of the body, once the head is in */
  long length = -1;
  for (;;) {
    char *end;
    if (off == 0 && (end = memmem(buf, got, "\r\n\r\n", 4)) != NULL) {
      size_t hl = (size_t)(end - buf);
      off = hl + 4;
      assert_true(hl < sizeof r->head);
      memcpy(r->head, buf, hl);
      r->head[hl] = '\0';
      sscanf(r->head, "HTTP/1.1 %d", &r->status);
      const char *cl = strcasestr(r->head, "\r\ncontent-length:");
      length = cl != NULL ? strtol(cl + 17, NULL, 10) : -1;
    }
    if (off != 0 && length >= 0 && got - off >= (size_t)length)
      break;
    if (got == cap)
      buf = realloc(buf, cap *= 2);
    ssize_t k = recv(fd, buf + got, cap - got, 0);
    if (k < 0 && errno == EINTR) /* a signal (the restart's child ending) */
      continue;
    if (k <= 0) {
      if (off != 0 && length < 0)
        break; /* ends with the connection */
      free(buf);
      return -1;
    }
    got += (size_t)k;
  }
  r->len = length >= 0 ? (size_t)length : got - off;
  r->body = malloc(r->len + 1);
  memcpy(r->body, buf + off, r->len);
  r->body[r->len] = '\0';
  free(buf);
  return 0;
}

/* One request on a new connection. `raw` is the whole request. */
static void http_raw(const char *raw, size_t n, resp_t *r) {
  int fd = connect_server();
  assert_true(fd >= 0);
  send_all(fd, raw, n);
  if (read_response(fd, r) != 0)
    fail_msg("no response to %.40s", raw);
  close(fd);
}

static void http(const char *method, const char *path, const char *body, resp_t *r) {
  char req[8192];
  int n = snprintf(req, sizeof req,
                   "%s %s HTTP/1.1\r\nHost: localhost\r\nContent-Length: %zu\r\n"
                   "Content-Type: application/json\r\n\r\n%s",
                   method, path, body != NULL ? strlen(body) : 0, body != NULL ? body : "");
  assert_true(n > 0 && (size_t)n < sizeof req);
  http_raw(req, (size_t)n, r);
}

static void get(const char *path, resp_t *r) { http("GET", path, NULL, r); }

static const char *header(const resp_t *r, const char *name, char *out, size_t cap) {
  char key[64];
  snprintf(key, sizeof key, "\r\n%s:", name);
  const char *h = strcasestr(r->head, key);
  if (h == NULL)
    return NULL;
  h += strlen(key);
  while (*h == ' ')
    h++;
  size_t n = strcspn(h, "\r");
  snprintf(out, cap, "%.*s", (int)n, h);
  return out;
}

static void expect_header(const resp_t *r, const char *name, const char *value) {
  char v[256];
  if (header(r, name, v, sizeof v) == NULL)
    fail_msg("no %s header in\n%s", name, r->head);
  if (value != NULL && strcmp(v, value) != 0)
    fail_msg("%s: \"%s\", expected \"%s\"", name, v, value);
}

static json_t *json_body(const resp_t *r) {
  json_error_t e;
  json_t *j = json_loadb(r->body, r->len, 0, &e);
  if (j == NULL)
    fail_msg("not JSON (%s): %s", e.text, r->body);
  expect_header(r, "content-type", "application/json");
  return j;
}

/* An error reply: its status, its "error" code and (if not NULL) field. */
static void expect_error(const resp_t *r, int status, const char *code, const char *field) {
  if (r->status != status)
    fail_msg("status %d, expected %d: %s", r->status, status, r->body);
  json_t *j = json_body(r);
  assert_string_equal(json_string_value(json_object_get(j, "error")), code);
  assert_true(json_is_string(json_object_get(j, "message")));
  if (field != NULL)
    assert_string_equal(json_string_value(json_object_get(j, "field")), field);
  json_decref(j);
}

static void done(resp_t *r) { free(r->body); }

/* ---- the server process ------------------------------------------------------ */

static int start_server(void) {
  int out[2];
  assert_int_equal(pipe(out), 0);
  char *dsn = orm_test_dsn_with("options", "-c search_path=" SCHEMA, (char *)NULL);
  server = fork();
  assert_true(server >= 0);
  if (server == 0) {
    /* Under ASan: libh2o's per-thread caches (see lsan.supp). */
    setenv("LSAN_OPTIONS", "suppressions=" UVORM_SERVER_LSAN_SUPP, 1);
    dup2(out[1], 1);
    close(out[0]);
    /* UVORM_SERVER_EXTRA: one more option (--accept-one). */
    const char *extra = getenv("UVORM_SERVER_EXTRA");
    execl(UVORM_SERVER_EXE, "uvorm_server", "--database", dsn, "--port", "0", "--threads",
          "2", "--conns", "2", "--metrics", extra != NULL && extra[0] ? extra : (char *)NULL,
          (char *)NULL);
    _exit(127);
  }
  free(dsn);
  close(out[1]);
  char line[256] = "";
  size_t n = 0;
  struct pollfd p = {.fd = out[0], .events = POLLIN};
  while (n < sizeof line - 1 && poll(&p, 1, 60000) == 1) {
    if (read(out[0], line + n, 1) != 1)
      break;
    if (line[n++] == '\n')
      break;
  }
  line[n] = '\0';
  close(out[0]);
  if (sscanf(line, "listening on http://127.0.0.1:%d", &port) != 1)
    fail_msg("the server did not start: \"%s\"", line);
  return 0;
}

static int wait_exit(int timeout_ms) {
  for (int i = 0; i < timeout_ms / 10; i++) {
    int st;
    if (waitpid(server, &st, WNOHANG) == server) {
      server = 0;
      return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    }
    usleep(10000);
  }
  return -1;
}

static int setup(void **state) {
  (void)state;
  /* 10,000 idle connections need as many descriptors, here and there. */
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  orm_fx_open_admin(&fx, SCHEMA, 0);
  return start_server();
}

static int teardown(void **state) {
  (void)state;
  if (server > 0) {
    kill(server, SIGKILL);
    wait_exit(5000);
  }
  orm_fx_close_admin(&fx);
  return 0;
}

/* ---- the TechEmpower endpoints ------------------------------------------------- */

static void test_plaintext_json(void **state) {
  (void)state;
  resp_t r;
  get("/plaintext", &r);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.body, "Hello, World!");
  expect_header(&r, "content-type", "text/plain");
  expect_header(&r, "content-length", "13");
  expect_header(&r, "server", "uvorm");
  expect_header(&r, "date", NULL);
  done(&r);
  get("/json", &r);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.body, "{\"message\":\"Hello, World!\"}");
  expect_header(&r, "content-type", "application/json");
  done(&r);
}

static void expect_world(json_t *w) {
  assert_true(json_is_object(w));
  assert_int_equal(json_object_size(w), 2);
  json_int_t id = json_integer_value(json_object_get(w, "id"));
  json_int_t rn = json_integer_value(json_object_get(w, "randomNumber"));
  assert_true(id >= 1 && id <= WORLD_ROWS);
  assert_true(rn >= 1 && rn <= WORLD_ROWS);
}

static void test_db_and_queries(void **state) {
  (void)state;
  resp_t r;
  get("/db", &r);
  assert_int_equal(r.status, 200);
  json_t *j = json_body(&r);
  expect_world(j);
  json_decref(j);
  done(&r);
  /* The rules: missing, empty, not a number, below 1 give 1; above 500
   * gives 500. */
  static const struct {
    const char *query;
    size_t n;
  } cases[] = {{"", 1},           {"?queries=", 1},     {"?queries=abc", 1},
               {"?queries=-5", 1}, {"?queries=0", 1},    {"?queries=1", 1},
               {"?queries=20", 20}, {"?queries=500", 500}, {"?queries=501", 500},
               {"?queries=100000", 500}, {"?queries=99999999999999999999", 500},
               {"?foo=1&queries=7", 7}, {"?queries=3x", 1}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char path[96];
    snprintf(path, sizeof path, "/queries%s", cases[i].query);
    get(path, &r);
    assert_int_equal(r.status, 200);
    j = json_body(&r);
    if (!json_is_array(j) || json_array_size(j) != cases[i].n)
      fail_msg("%s: %zu rows, expected %zu", path, json_array_size(j), cases[i].n);
    for (size_t k = 0; k < json_array_size(j); k++)
      expect_world(json_array_get(j, k));
    json_decref(j);
    done(&r);
  }
}

static void test_updates(void **state) {
  (void)state;
  resp_t r;
  get("/updates?queries=20", &r);
  assert_int_equal(r.status, 200);
  json_t *j = json_body(&r);
  assert_int_equal(json_array_size(j), 20);
  /* Each row as written (an id drawn twice: its last value). */
  for (size_t i = 0; i < 20; i++) {
    json_t *w = json_array_get(j, i);
    expect_world(w);
    json_int_t id = json_integer_value(json_object_get(w, "id"));
    int last = 1;
    for (size_t k = i + 1; k < 20; k++)
      last &= json_integer_value(json_object_get(json_array_get(j, k), "id")) != id;
    if (!last)
      continue;
    char sql[96];
    snprintf(sql, sizeof sql, "SELECT randomnumber FROM world WHERE id = %lld", (long long)id);
    assert_int_equal(orm_fx_int(&fx, sql), json_integer_value(json_object_get(w, "randomNumber")));
  }
  json_decref(j);
  done(&r);
  get("/updates?queries=abc", &r);
  j = json_body(&r);
  assert_int_equal(json_array_size(j), 1);
  json_decref(j);
  done(&r);
}

static void escape(const char *s, char *out, size_t cap) {
  size_t n = 0;
  for (; *s && n + 8 < cap; s++) {
    const char *e = *s == '&' ? "&amp;" : *s == '<' ? "&lt;" : *s == '>' ? "&gt;"
                  : *s == '"' ? "&quot;" : *s == '\'' ? "&#39;" : NULL;
    if (e != NULL) {
      memcpy(out + n, e, strlen(e));
      n += strlen(e);
    } else {
      out[n++] = *s;
    }
  }
  out[n] = '\0';
}

static int by_message(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void test_fortunes(void **state) {
  (void)state;
  resp_t r;
  get("/fortunes", &r);
  assert_int_equal(r.status, 200);
  expect_header(&r, "content-type", "text/html; charset=utf-8");
  /* The expected page, built here: 12 fortunes and the added one, sorted
   * by their bytes, escaped. */
  const char *sorted[TFB_FORTUNES + 1];
  for (int i = 0; i < TFB_FORTUNES; i++)
    sorted[i] = tfb_fortune_messages[i];
  sorted[TFB_FORTUNES] = TFB_FORTUNE_ADDED;
  qsort(sorted, TFB_FORTUNES + 1, sizeof sorted[0], by_message);
  char expect[8192];
  size_t n = (size_t)snprintf(expect, sizeof expect,
                              "<!DOCTYPE html>\n<html>\n<head><title>Fortunes</title></head>\n"
                              "<body>\n<table>\n<tr><th>id</th><th>message</th></tr>\n");
  for (int i = 0; i <= TFB_FORTUNES; i++) {
    int id = 0;
    for (int k = 0; k < TFB_FORTUNES; k++)
      if (sorted[i] == tfb_fortune_messages[k])
        id = k + 1;
    char esc[512];
    escape(sorted[i], esc, sizeof esc);
    n += (size_t)snprintf(expect + n, sizeof expect - n, "<tr><td>%d</td><td>%s</td></tr>\n",
                          id, esc);
  }
  snprintf(expect + n, sizeof expect - n, "</table>\n</body>\n</html>\n");
  assert_string_equal(r.body, expect);
  assert_non_null(strstr(r.body, "&lt;script&gt;alert(&quot;This should not be displayed"));
  assert_non_null(strstr(r.body, "フレームワークのベンチマーク"));
  done(&r);
}

/* ---- the sample domain's API ------------------------------------------------------- */

static int64_t user_id, conv_id;

static void seed(void) {
  if (user_id != 0)
    return;
  user_id = orm_fx_int(&fx, "INSERT INTO users (email, name) VALUES ('ada@example.com', "
                            "'Ada') RETURNING id");
  char sql[512];
  snprintf(sql, sizeof sql,
           "INSERT INTO agents (owner_id, name, model, status, temperature, config, tags) "
           "VALUES (%lld, 'helper', 'm1', 'active', 0.5, '{}', '{}')",
           (long long)user_id);
  orm_fx_sql(&fx, sql);
  for (int i = 0; i < 5; i++) {
    snprintf(sql, sizeof sql,
             "INSERT INTO conversations (agent_id, user_id, title) "
             "SELECT id, %lld, 'talk %d' FROM agents LIMIT 1",
             (long long)user_id, i);
    orm_fx_sql(&fx, sql);
  }
  conv_id = orm_fx_int(&fx, "SELECT min(id) FROM conversations");
  snprintf(sql, sizeof sql,
           "INSERT INTO messages (conversation_id, role, content, tokens) VALUES "
           "(%lld, 'user', 'hello', 3), (%lld, 'assistant', 'hi <there>', 4)",
           (long long)conv_id, (long long)conv_id);
  orm_fx_sql(&fx, sql);
  snprintf(sql, sizeof sql,
           "INSERT INTO usage_records (user_id, day, prompt_tokens, completion_tokens, cost, "
           "message_id) SELECT %lld, '2026-12-05', 3, 4, 0.25, min(id) FROM messages",
           (long long)user_id);
  orm_fx_sql(&fx, sql);
}

static void test_users(void **state) {
  (void)state;
  seed();
  resp_t r;
  char path[96];
  snprintf(path, sizeof path, "/users/%lld", (long long)user_id);
  get(path, &r);
  assert_int_equal(r.status, 200);
  json_t *j = json_body(&r);
  assert_int_equal(json_integer_value(json_object_get(j, "id")), user_id);
  assert_string_equal(json_string_value(json_object_get(j, "email")), "ada@example.com");
  assert_string_equal(json_string_value(json_object_get(j, "name")), "Ada");
  const char *at = json_string_value(json_object_get(j, "created_at"));
  assert_non_null(at);
  assert_int_equal(strlen(at), strlen("2026-12-05T12:00:00.000000Z"));
  json_decref(j);
  done(&r);
  get("/users/999999999", &r);
  expect_error(&r, 404, "not_found", NULL);
  done(&r);
  const char *bad[] = {"/users/abc", "/users/0", "/users/-1", "/users/1x",
                       "/users/99999999999999999999"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    get(bad[i], &r);
    expect_error(&r, 400, "bad_request", "id");
    done(&r);
  }
  http("DELETE", path, NULL, &r);
  expect_error(&r, 405, "method_not_allowed", NULL);
  done(&r);
  get("/nothing/here", &r);
  expect_error(&r, 404, "not_found", NULL);
  done(&r);
}

static void test_conversation(void **state) {
  (void)state;
  seed();
  resp_t r;
  char path[96];
  snprintf(path, sizeof path, "/conversations/%lld", (long long)conv_id);
  get(path, &r);
  assert_int_equal(r.status, 200);
  json_t *j = json_body(&r);
  assert_int_equal(json_integer_value(json_object_get(j, "id")), conv_id);
  json_t *msgs = json_object_get(j, "messages");
  assert_int_equal(json_array_size(msgs), 2);
  json_t *m0 = json_array_get(msgs, 0), *m1 = json_array_get(msgs, 1);
  assert_string_equal(json_string_value(json_object_get(m0, "content")), "hello");
  assert_string_equal(json_string_value(json_object_get(m1, "content")), "hi <there>");
  json_t *u = json_object_get(m0, "usage");
  assert_true(json_is_object(u));
  assert_true(strtod(json_string_value(json_object_get(u, "cost")), NULL) == 0.25);
  assert_string_equal(json_string_value(json_object_get(u, "day")), "2026-12-05");
  assert_true(json_is_null(json_object_get(m1, "usage")));
  json_decref(j);
  done(&r);
  get("/conversations/987654321", &r);
  expect_error(&r, 404, "not_found", NULL);
  done(&r);
  get("/conversations/x", &r);
  expect_error(&r, 400, "bad_request", "id");
  done(&r);
}

static void test_post_message(void **state) {
  (void)state;
  seed();
  resp_t r;
  char path[96];
  snprintf(path, sizeof path, "/conversations/%lld/messages", (long long)conv_id);
  http("POST", path,
       "{\"role\":\"user\",\"content\":\"new one\",\"tokens\":7,\"metadata\":{\"k\":[1,2]}}",
       &r);
  assert_int_equal(r.status, 201);
  json_t *j = json_body(&r);
  json_int_t id = json_integer_value(json_object_get(j, "id"));
  assert_true(id > 0);
  assert_int_equal(json_integer_value(json_object_get(j, "conversation_id")), conv_id);
  assert_int_equal(json_integer_value(json_object_get(j, "tokens")), 7);
  assert_int_equal(json_integer_value(json_array_get(
                       json_object_get(json_object_get(j, "metadata"), "k"), 1)),
                   2);
  assert_true(json_is_string(json_object_get(j, "created_at")));
  char loc[64], want[64];
  snprintf(want, sizeof want, "/messages/%lld", (long long)id);
  assert_string_equal(header(&r, "location", loc, sizeof loc), want);
  json_decref(j);
  done(&r);
  char sql[128];
  snprintf(sql, sizeof sql, "SELECT count(*) FROM messages WHERE id = %lld AND tokens = 7",
           (long long)id);
  assert_int_equal(orm_fx_int(&fx, sql), 1);

  /* Bad input, each refused with its status, and nothing written. */
  int64_t before = orm_fx_int(&fx, "SELECT count(*) FROM messages");
  static const struct {
    const char *body;
    int status;
    const char *code, *field;
  } bad[] = {
      {"{\"role\":\"user\",", 400, "bad_json", NULL},
      {"", 400, "bad_json", NULL},
      {"[1,2]", 400, "bad_request", NULL},
      {"{\"content\":\"x\"}", 400, "bad_request", "role"},
      {"{\"role\":5,\"content\":\"x\"}", 400, "bad_request", "role"},
      {"{\"role\":\"user\"}", 400, "bad_request", "content"},
      {"{\"role\":\"user\",\"content\":\"x\",\"tokens\":\"7\"}", 400, "bad_request", "tokens"},
      {"{\"role\":\"user\",\"content\":\"x\",\"tokens\":99999999999}", 400, "bad_request",
       "tokens"},
      {"{\"role\":\"user\",\"content\":\"x\",\"metadata\":3}", 400, "bad_request", "metadata"},
      {"{\"role\":\"user\",\"content\":\"a\\u0000b\"}", 400, "bad_json", NULL},
      /* The model's rule: a message has a body. */
      {"{\"role\":\"user\",\"content\":\"\"}", 422, "validation", "content"},
      /* The enum refuses the label: the server's error. */
      {"{\"role\":\"robot\",\"content\":\"x\"}", 400, "bad_value", NULL},
      /* A missing author: the foreign key. */
      {"{\"role\":\"user\",\"content\":\"x\",\"author_id\":987654321}", 422, "constraint",
       "author_id"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    http("POST", path, bad[i].body, &r);
    expect_error(&r, bad[i].status, bad[i].code, bad[i].field);
    done(&r);
  }
  /* A missing parent. */
  http("POST", "/conversations/987654321/messages", "{\"role\":\"user\",\"content\":\"x\"}",
       &r);
  expect_error(&r, 404, "not_found", NULL);
  done(&r);
  http("GET", path, NULL, &r);
  expect_error(&r, 405, "method_not_allowed", NULL);
  done(&r);
  /* 1 MB: over the server's 64 KiB limit, refused before any handler. */
  size_t big = 1 << 20;
  char *req = malloc(big + 512);
  int n = snprintf(req, 512,
                   "POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n", path, big);
  memset(req + n, 'a', big);
  http_raw(req, (size_t)n + big, &r);
  assert_int_equal(r.status, 413);
  done(&r);
  free(req);
  assert_int_equal(orm_fx_int(&fx, "SELECT count(*) FROM messages"), before);
}

static void test_conversation_pages(void **state) {
  (void)state;
  seed();
  resp_t r;
  char path[128];
  int64_t after = 0, seen = 0, pages = 0, last = 0;
  for (;;) {
    if (after == 0)
      snprintf(path, sizeof path, "/users/%lld/conversations?limit=2", (long long)user_id);
    else
      snprintf(path, sizeof path, "/users/%lld/conversations?after=%lld&limit=2",
               (long long)user_id, (long long)after);
    get(path, &r);
    assert_int_equal(r.status, 200);
    json_t *j = json_body(&r);
    json_t *items = json_object_get(j, "items");
    pages++;
    for (size_t i = 0; i < json_array_size(items); i++) {
      json_int_t id = json_integer_value(json_object_get(json_array_get(items, i), "id"));
      assert_true(id > last); /* by id, no repeats */
      last = id;
      seen++;
    }
    json_t *next = json_object_get(j, "next_after");
    after = json_is_integer(next) ? json_integer_value(next) : 0;
    if (after != 0)
      assert_int_equal(after, last);
    json_decref(j);
    done(&r);
    if (after == 0)
      break;
    assert_true(pages < 10);
  }
  assert_int_equal(seen, 5);
  assert_int_equal(pages, 3); /* 2 + 2 + 1 */
  static const char *const bad[] = {"?after=abc", "?after=-3", "?limit=0", "?limit=101",
                                    "?limit=x"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    snprintf(path, sizeof path, "/users/%lld/conversations%s", (long long)user_id, bad[i]);
    get(path, &r);
    assert_int_equal(r.status, 400);
    done(&r);
  }
  get("/users/987654321/conversations", &r);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.body, "{\"items\":[],\"next_after\":null}");
  done(&r);
}

/* ---- operations ---------------------------------------------------------------------------- */

static void test_health_metrics(void **state) {
  (void)state;
  resp_t r;
  get("/health", &r);
  assert_int_equal(r.status, 200);
  json_t *j = json_body(&r);
  assert_string_equal(json_string_value(json_object_get(j, "status")), "ok");
  assert_true(json_integer_value(json_object_get(json_object_get(j, "connections"), "up")) >= 1);
  json_decref(j);
  done(&r);
  get("/metrics", &r);
  assert_int_equal(r.status, 200);
  expect_header(&r, "content-type", "text/plain; version=0.0.4; charset=utf-8");
  assert_non_null(strstr(r.body, "# TYPE uvorm_queries_total counter\n"));
  assert_non_null(strstr(r.body, "\nuvorm_queries_total{thread=\""));
  assert_non_null(strstr(r.body, "uvorm_query_duration_seconds_bucket{thread=\""));
  done(&r);
}

static void test_malformed_http(void **state) {
  (void)state;
  static const char *const bad[] = {
      "GARBAGE\r\n\r\n",
      "GET / HTTP/1.1\r\nHost x\r\n\r\n",
      "GET /db HTTP/1.1\r\nContent-Length: -4\r\n\r\n",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int fd = connect_server();
    assert_true(fd >= 0);
    send_all(fd, bad[i], strlen(bad[i]));
    resp_t r;
    if (read_response(fd, &r) == 0) { /* a 400, or just closed */
      assert_int_equal(r.status, 400);
      done(&r);
    }
    close(fd);
  }
  resp_t r;
  get("/plaintext", &r);
  assert_int_equal(r.status, 200);
  done(&r);
}

/* Clients that hang up with their database work in flight: the answers
 * come back to requests that are gone. */
static void test_hang_ups(void **state) {
  (void)state;
  for (int i = 0; i < 100; i++) {
    int fd = connect_server();
    assert_true(fd >= 0);
    const char *req = i % 3 == 0   ? "GET /queries?queries=500 HTTP/1.1\r\nHost: x\r\n\r\n"
                      : i % 3 == 1 ? "GET /updates?queries=50 HTTP/1.1\r\nHost: x\r\n\r\n"
                                   : "POST /conversations/1/messages HTTP/1.1\r\nHost: x\r\n"
                                     "Content-Length: 100\r\n\r\n{\"role\":";
    send_all(fd, req, strlen(req));
    /* An RST, not a FIN. */
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);
  }
  usleep(500000);
  resp_t r;
  get("/db", &r);
  assert_int_equal(r.status, 200);
  done(&r);
}

static void test_idle_connections(void **state) {
  (void)state;
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  size_t want = 10000;
  if (rl.rlim_cur < want + 200) {
    want = rl.rlim_cur > 400 ? rl.rlim_cur - 200 : 100;
    print_message("descriptors allow %zu idle connections, not 10000\n", want);
  }
  int *fds = malloc(want * sizeof *fds);
  size_t n = 0;
  for (; n < want; n++)
    if ((fds[n] = connect_server()) < 0)
      break;
  assert_int_equal(n, want);
  resp_t r;
  get("/db", &r);
  assert_int_equal(r.status, 200);
  done(&r);
  /* Some of them used. */
  for (size_t i = 0; i < n; i += n / 10) {
    const char *req = "GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n";
    send_all(fds[i], req, strlen(req));
    assert_int_equal(read_response(fds[i], &r), 0);
    assert_int_equal(r.status, 200);
    done(&r);
  }
  for (size_t i = 0; i < n; i++)
    close(fds[i]);
  free(fds);
  get("/json", &r);
  assert_int_equal(r.status, 200);
  done(&r);
}

/* The database goes away: 503s (not a crash, not a hang), what needs no
 * database still answers; back: served again within seconds. */
static void test_database_restart(void **state) {
  (void)state;
  if (!orm_test_server_managed())
    skip();
  orm_test_server("stop");
  resp_t r;
  for (int i = 0; i < 4; i++) {
    get(i % 2 ? "/db" : "/fortunes", &r);
    expect_error(&r, 503, "unavailable", NULL);
    done(&r);
  }
  get("/health", &r);
  assert_int_equal(r.status, 503);
  done(&r);
  get("/plaintext", &r);
  assert_int_equal(r.status, 200);
  done(&r);
  orm_test_server("start");
  PQreset(fx.admin); /* cut too */
  /* Each worker's pool reconnects on its own (backoff up to 1 s): served
   * again once 20 requests in a row, spread over the workers by the
   * kernel, succeed; within 15 s. */
  int ok = 0;
  for (int i = 0; i < 150 && ok < 20; i++) {
    get("/db", &r);
    ok = r.status == 200 ? ok + 1 : 0;
    done(&r);
    if (ok == 0)
      usleep(100000);
  }
  assert_int_equal(ok, 20);
  for (int i = 0; i < 20; i++) {
    get("/queries?queries=5", &r);
    assert_int_equal(r.status, 200);
    done(&r);
  }
}

/* Load while the database restarts: two threads keep requests going over
 * keep-alive connections; every answer is a 200 or a 503 (never a reset,
 * a hang or a malformed answer), and after the restart they are 200s
 * again. */
typedef struct {
  uv_thread_t thread;
  int stop; /* atomic */
  int ok, unavailable, other;
  char why[160];
} loader_t;

static void loader_main(void *arg) {
  loader_t *l = arg;
  int fd = -1;
  static const char *const paths[] = {"/db", "/queries?queries=5", "/fortunes",
                                      "/updates?queries=2"};
  for (unsigned i = 0; !__atomic_load_n(&l->stop, __ATOMIC_RELAXED); i++) {
    if (fd < 0 && (fd = connect_server()) < 0) {
      l->other++;
      break;
    }
    char req[128];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", paths[i % 4]);
    send_all(fd, req, (size_t)n);
    resp_t r;
    if (read_response(fd, &r) != 0) {
      l->other++;
      snprintf(l->why, sizeof l->why, "%s: no answer (errno %d)", paths[i % 4], errno);
      close(fd);
      fd = -1;
      continue;
    }
    if (r.status == 200)
      l->ok++;
    else if (r.status == 503)
      l->unavailable++;
    else {
      l->other++;
      snprintf(l->why, sizeof l->why, "%s: %d %.100s", paths[i % 4], r.status, r.body);
    }
    if (strcasestr(r.head, "\r\nconnection: close") != NULL) {
      close(fd);
      fd = -1;
    }
    done(&r);
  }
  if (fd >= 0)
    close(fd);
}

static void test_database_restart_under_load(void **state) {
  (void)state;
  if (!orm_test_server_managed())
    skip();
  loader_t loaders[2];
  memset(loaders, 0, sizeof loaders);
  for (int i = 0; i < 2; i++)
    assert_int_equal(uv_thread_create(&loaders[i].thread, loader_main, &loaders[i]), 0);
  usleep(300000);
  orm_test_server("restart");
  PQreset(fx.admin);
  /* Keep the load on while the pools reconnect. */
  usleep(3000000);
  for (int i = 0; i < 2; i++)
    __atomic_store_n(&loaders[i].stop, 1, __ATOMIC_RELAXED);
  int ok = 0, unavailable = 0, other = 0;
  for (int i = 0; i < 2; i++) {
    uv_thread_join(&loaders[i].thread);
    ok += loaders[i].ok;
    unavailable += loaders[i].unavailable;
    other += loaders[i].other;
    if (loaders[i].other > 0)
      print_message("loader %d: %s\n", i, loaders[i].why);
  }
  print_message("restart under load: %d ok, %d unavailable, %d other\n", ok, unavailable, other);
  assert_int_equal(other, 0);
  assert_true(ok > 0);
  /* Served again: 20 in a row. */
  int row = 0;
  for (int i = 0; i < 150 && row < 20; i++) {
    resp_t r;
    get("/queries?queries=3", &r);
    row = r.status == 200 ? row + 1 : 0;
    done(&r);
    if (row == 0)
      usleep(100000);
  }
  assert_int_equal(row, 20);
}

/* SIGTERM with requests in flight: they are answered, the server exits 0
 * and accepts nothing more. */
static void test_graceful_shutdown(void **state) {
  (void)state;
  /* A client that stays idle through it all: the server gives it 2 s,
   * then leaves it to the exit (still exit 0, nothing leaked). */
  int idle = connect_server();
  assert_true(idle >= 0);
  int fds[8];
  for (int i = 0; i < 8; i++) {
    fds[i] = connect_server();
    assert_true(fds[i] >= 0);
    const char *req = "GET /queries?queries=500 HTTP/1.1\r\nHost: x\r\n\r\n";
    send_all(fds[i], req, strlen(req));
  }
  usleep(20000);
  kill(server, SIGTERM);
  for (int i = 0; i < 8; i++) {
    resp_t r;
    assert_int_equal(read_response(fds[i], &r), 0);
    if (r.status != 200)
      fail_msg("in flight at SIGTERM: %d %s", r.status, r.body);
    json_t *j = json_loadb(r.body, r.len, 0, NULL);
    assert_int_equal(json_array_size(j), 500);
    json_decref(j);
    done(&r);
    close(fds[i]);
  }
  assert_int_equal(wait_exit(20000), 0);
  assert_int_equal(connect_server(), -1);
  close(idle);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_plaintext_json),   cmocka_unit_test(test_db_and_queries),
      cmocka_unit_test(test_updates),          cmocka_unit_test(test_fortunes),
      cmocka_unit_test(test_users),            cmocka_unit_test(test_conversation),
      cmocka_unit_test(test_post_message),     cmocka_unit_test(test_conversation_pages),
      cmocka_unit_test(test_health_metrics),   cmocka_unit_test(test_malformed_http),
      cmocka_unit_test(test_hang_ups),         cmocka_unit_test(test_idle_connections),
      cmocka_unit_test(test_database_restart),
      cmocka_unit_test(test_database_restart_under_load), cmocka_unit_test(test_graceful_shutdown),
  };
  return orm_run_group_tests(tests, setup, teardown);
}
