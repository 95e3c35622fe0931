/* SPDX-License-Identifier: MIT */
/* What the TechEmpower endpoints of the example server and of its raw twin
 * (bench/raw_server.c) share, so that the two differ only in how they
 * reach the database: the queries count's clamping, a world row's JSON,
 * the fortunes page (sort, template, reply). */
#ifndef UVORM_EXAMPLE_TFB_HTTP_H
#define UVORM_EXAMPLE_TFB_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "httpd.h"

#define TFB_MAX_QUERIES 500

/* N from ?queries=N: missing, empty or not a number gives 1; below 1
 * gives 1; above 500 gives 500. */
unsigned tfb_queries_count(h2o_iovec_t query);
/* {"id": id, "randomNumber": n} */
json_t *tfb_world_json(int32_t id, int32_t randomnumber);
/* Answers /plaintext and /json; 0, or -1 for another path. */
int tfb_route_static(h2o_req_t *req, h2o_iovec_t path);

typedef struct {
  int32_t id;
  const char *message;
} tfb_fortune_t;

/* The fortunes page's template, compiled (NULL and why in `err`). */
tpl_t *tfb_fortunes_template(char *err, size_t errlen);
/* Adds the request-time fortune to the `n` read (room for n + 1 in
 * `items`), sorts by message, renders through `tpl` and replies. */
void tfb_reply_fortunes(worker_t *w, h2o_req_t *req, const tpl_t *tpl, tfb_fortune_t *items,
                        size_t n);

#endif /* UVORM_EXAMPLE_TFB_HTTP_H */
