/* SPDX-License-Identifier: MIT */
/* What the TechEmpower endpoints of both servers share (tfb_http.h). */
#include "tfb_http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tfb.h"

/* N from ?queries=N: missing, empty or not a number gives 1; below 1
 * gives 1; above 500 gives 500. */
unsigned tfb_queries_count(h2o_iovec_t query) {
  h2o_iovec_t v = query_param(query, "queries");
  if (v.base == NULL || v.len == 0)
    return 1;
  size_t i = 0;
  int negative = v.base[0] == '-';
  i += negative || v.base[0] == '+';
  if (i == v.len)
    return 1;
  unsigned long n = 0;
  for (; i < v.len; i++) {
    if (v.base[i] < '0' || v.base[i] > '9')
      return 1;
    if (n <= TFB_MAX_QUERIES)
      n = n * 10 + (unsigned long)(v.base[i] - '0');
  }
  if (negative || n < 1)
    return 1;
  return n > TFB_MAX_QUERIES ? TFB_MAX_QUERIES : (unsigned)n;
}

json_t *tfb_world_json(int32_t id, int32_t randomnumber) {
  return json_pack("{s:i, s:i}", "id", (json_int_t)id, "randomNumber", (json_int_t)randomnumber);
}

static int is(h2o_iovec_t path, const char *s) {
  return h2o_memis(path.base, path.len, s, strlen(s));
}

int tfb_route_static(h2o_req_t *req, h2o_iovec_t path) {
  if (is(path, "/plaintext"))
    reply(req, 200, "text/plain", H2O_STRLIT("Hello, World!"));
  else if (is(path, "/json")) /* serialized per request, as the rules say */
    reply_json(req, 200, json_pack("{s:s}", "message", "Hello, World!"));
  else
    return -1;
  return 0;
}

/* ---- /fortunes ------------------------------------------------------------------ */

static const char fortunes_page[] =
    "<!DOCTYPE html>\n"
    "<html>\n"
    "<head><title>Fortunes</title></head>\n"
    "<body>\n"
    "<table>\n"
    "<tr><th>id</th><th>message</th></tr>\n"
    "{{#fortunes}}<tr><td>{{id}}</td><td>{{message}}</td></tr>\n"
    "{{/fortunes}}</table>\n"
    "</body>\n"
    "</html>\n";

tpl_t *tfb_fortunes_template(char *err, size_t errlen) {
  static const char *const columns[] = {"id", "message"};
  tpl_names_t names = {.list = "fortunes", .columns = columns, .ncolumns = 2};
  return tpl_compile(fortunes_page, &names, err, errlen);
}

static int by_message(const void *a, const void *b) {
  return strcmp(((const tfb_fortune_t *)a)->message,
                ((const tfb_fortune_t *)b)->message);
}

void tfb_reply_fortunes(worker_t *w, h2o_req_t *req, const tpl_t *tpl, tfb_fortune_t *items,
                        size_t n) {
  const char **cells = h2o_mem_alloc_pool(&req->pool, (n + 1) * 2 * sizeof *cells);
  char *ids = h2o_mem_alloc_pool(&req->pool, (n + 1) * 12);
  items[n] = (tfb_fortune_t){0, TFB_FORTUNE_ADDED};
  qsort(items, n + 1, sizeof *items, by_message);
  for (size_t i = 0; i <= n; i++) {
    snprintf(ids + 12 * i, 12, "%d", (int)items[i].id);
    cells[2 * i] = ids + 12 * i;
    cells[2 * i + 1] = items[i].message;
  }
  tpl_data_t d = {.cells = cells, .nrows = n + 1};
  if (tpl_render(tpl, &d, &w->out) != 0)
    reply_error(req, 500, "internal", "out of memory", NULL);
  else /* copied into the request's memory: the buffer is reused */
    reply(req, 200, "text/html; charset=utf-8", w->out.data, w->out.len);
}
