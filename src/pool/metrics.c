/* SPDX-License-Identifier: MIT */
/* orm_pool_metrics: the pool's stats and latency histograms in
 * Prometheus' text exposition format. The histograms are kept only with
 * the `metrics` setting: one per operation, plus the wait before being
 * sent, with Prometheus' customary buckets. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "pool_int.h"

/* Upper bounds in seconds; the last bucket is +Inf. */
static const double bounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                0.005,  0.01,    0.025,  0.05,  0.1,
                                0.25,   0.5,     1,      2.5,   5,
                                10};
#define NBOUNDS (sizeof bounds / sizeof bounds[0])

typedef struct orm__histogram_s {
  uint64_t buckets[NBOUNDS + 1]; /* not cumulative; the last is +Inf */
  uint64_t count;
  uint64_t sum_ns;
} orm__histogram_t;

/* The operations histograms are kept for: model calls by name, raw SQL
 * as "query", a transaction's own statements. */
static const char *const ops[] = {
    "query",  "find",        "find_by",     "find_all", "count",
    "exists", "insert",      "insert_many", "insert_with", "update",
    "delete", "upsert",      "include",     "verify",   "stream",
    "copy",   "begin",       "commit",      "rollback"};
#define NOPS (sizeof ops / sizeof ops[0])

int orm__metrics_init(orm_pool_t *pool) {
  if (!pool->cfg.metrics)
    return 0;
  pool->latency = orm__calloc(NOPS + 1, sizeof *pool->latency);
  if (pool->latency == NULL)
    return ORM_ENOMEM;
  pool->queue_wait = &pool->latency[NOPS];
  return 0;
}

void orm__metrics_free(orm_pool_t *pool) {
  orm__free(pool->latency);
  pool->latency = pool->queue_wait = NULL;
}

static void observe(orm__histogram_t *h, uint64_t ns) {
  double s = (double)ns / 1e9;
  size_t b = 0;
  while (b < NBOUNDS && s > bounds[b])
    b++;
  h->buckets[b]++;
  h->count++;
  h->sum_ns += ns;
}

static size_t op_index(const orm__request_t *req) {
  if (req->kind == REQ_BEGIN)
    return NOPS - 3;
  if (req->kind == REQ_COMMIT)
    return NOPS - 2;
  if (req->kind == REQ_ROLLBACK)
    return NOPS - 1;
  if (req->op != NULL)
    for (size_t i = 1; i < NOPS - 3; i++)
      if (strcmp(req->op, ops[i]) == 0)
        return i;
  return 0;
}

void orm__req_measure(orm__request_t *req) {
  orm_pool_t *pool = req->pool;
  if (pool->latency == NULL)
    return;
  uint64_t now = uv_hrtime();
  observe(&pool->latency[op_index(req)], now - req->t_start);
  if (req->t_sent != 0 && req->t_sent >= req->t_start)
    observe(pool->queue_wait, req->t_sent - req->t_start);
}

/* ---- the text ------------------------------------------------------------ */

typedef struct {
  char *buf;
  size_t cap;
  size_t len; /* of the whole text, written or not */
  const char *labels;
} out_t;

static void put(out_t *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(out_t *o, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  size_t room = o->len < o->cap ? o->cap - o->len : 0;
  int n = vsnprintf(room > 0 ? o->buf + o->len : NULL, room, fmt, ap);
  va_end(ap);
  if (n > 0)
    o->len += (size_t)n;
}

static void head(out_t *o, const char *name, const char *type, const char *help) {
  put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* name{labels[,extra]} value */
static void sample(out_t *o, const char *name, const char *extra, uint64_t v) {
  bool l = o->labels != NULL && o->labels[0] != '\0';
  bool e = extra != NULL && extra[0] != '\0';
  put(o, "%s%s%s%s%s%s %" PRIu64 "\n", name, l || e ? "{" : "",
      l ? o->labels : "", l && e ? "," : "", e ? extra : "", l || e ? "}" : "",
      v);
}

static void histogram(out_t *o, const char *name, const char *extra,
                      const orm__histogram_t *h) {
  char lab[128], bucket[160];
  uint64_t cumulative = 0;
  snprintf(lab, sizeof lab, "%s", extra != NULL ? extra : "");
  char bname[96];
  snprintf(bname, sizeof bname, "%s_bucket", name);
  for (size_t b = 0; b <= NBOUNDS; b++) {
    cumulative += h->buckets[b];
    if (b < NBOUNDS)
      snprintf(bucket, sizeof bucket, "%s%sle=\"%g\"", lab, lab[0] ? "," : "",
               bounds[b]);
    else
      snprintf(bucket, sizeof bucket, "%s%sle=\"+Inf\"", lab, lab[0] ? "," : "");
    sample(o, bname, bucket, cumulative);
  }
  bool l = o->labels != NULL && o->labels[0] != '\0';
  bool e = lab[0] != '\0';
  put(o, "%s_sum%s%s%s%s%s %.9f\n", name, l || e ? "{" : "", l ? o->labels : "",
      l && e ? "," : "", lab, l || e ? "}" : "", (double)h->sum_ns / 1e9);
  char cname[96];
  snprintf(cname, sizeof cname, "%s_count", name);
  sample(o, cname, lab, h->count);
}

/* The label names uvorm writes itself, and Prometheus' own (le, __*). */
static bool reserved_label(const char *name, size_t len) {
  static const char *const taken[] = {"le", "operation", "state", "result"};
  if (len >= 2 && name[0] == '_' && name[1] == '_')
    return true;
  for (size_t i = 0; i < sizeof taken / sizeof taken[0]; i++)
    if (strlen(taken[i]) == len && memcmp(taken[i], name, len) == 0)
      return true;
  return false;
}

/* name="value"[,name="value"...]: label names that are not reserved,
 * quoted values with only \\, \" and \n escaped; no trailing comma. */
static bool labels_ok(const char *s) {
  for (;;) {
    const char *name = s;
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_'))
      return false;
    while ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
           (*s >= '0' && *s <= '9') || *s == '_')
      s++;
    if (reserved_label(name, (size_t)(s - name)))
      return false;
    if (s[0] != '=' || s[1] != '"')
      return false;
    s += 2;
    while (*s != '"') {
      if (*s == '\0' || *s == '\n')
        return false;
      if (*s == '\\') {
        if (s[1] != '\\' && s[1] != '"' && s[1] != 'n')
          return false;
        s++;
      }
      s++;
    }
    s++;
    if (*s == '\0')
      return true;
    if (*s++ != ',')
      return false;
  }
}

int orm_pool_metrics(const orm_pool_t *pool, const char *labels, char *buf,
                     size_t cap) {
  if (pool == NULL || (buf == NULL && cap > 0) ||
      (labels != NULL && labels[0] != '\0' && !labels_ok(labels)))
    return ORM_EINVAL;
  orm_pool_stats_t st;
  orm_pool_stats(pool, &st);
  out_t o = {buf, cap, 0, labels};
  if (cap > 0)
    buf[0] = '\0';
  head(&o, "uvorm_connections", "gauge", "Connections of the pool by state.");
  const struct {
    const char *state;
    unsigned n;
  } conns[] = {{"connecting", st.conns_connecting}, {"idle", st.conns_idle},
               {"busy", st.conns_busy},             {"in_transaction", st.conns_in_tx},
               {"broken", st.conns_broken}};
  for (size_t i = 0; i < sizeof conns / sizeof conns[0]; i++) {
    char extra[48];
    snprintf(extra, sizeof extra, "state=\"%s\"", conns[i].state);
    sample(&o, "uvorm_connections", extra, conns[i].n);
  }
  head(&o, "uvorm_queue_depth", "gauge", "Requests waiting for a connection.");
  sample(&o, "uvorm_queue_depth", NULL, st.queued);
  head(&o, "uvorm_in_flight", "gauge", "Requests sent and not yet answered.");
  sample(&o, "uvorm_in_flight", NULL, st.in_flight);
  const struct {
    const char *name, *help;
    uint64_t v;
  } counters[] = {
      {"uvorm_queries_total", "Requests completed, by any outcome.", st.queries},
      {"uvorm_errors_total", "Requests that failed.", st.errors},
      {"uvorm_timeouts_total", "Requests that timed out.", st.timeouts},
      {"uvorm_cancels_total", "Requests cancelled.", st.cancels},
      {"uvorm_replays_total", "Statements sent again after a neighbour failed.",
       st.resends},
      {"uvorm_connects_total", "Connections set up.", st.connects},
      {"uvorm_reconnects_total", "Connections that replaced a lost one.",
       st.reconnects},
      {"uvorm_connect_failures_total", "Failed connection attempts.",
       st.connect_failures},
      {"uvorm_notices_total", "Server notices received.", st.notices},
      {"uvorm_notices_dropped_total", "Server notices not delivered.",
       st.notices_dropped},
  };
  for (size_t i = 0; i < sizeof counters / sizeof counters[0]; i++) {
    head(&o, counters[i].name, "counter", counters[i].help);
    sample(&o, counters[i].name, NULL, counters[i].v);
  }
  head(&o, "uvorm_prepared_statements_total", "counter",
       "Named statements run: already prepared on their connection (hit), or "
       "prepared first (miss).");
  sample(&o, "uvorm_prepared_statements_total", "result=\"hit\"", st.prepared_hits);
  sample(&o, "uvorm_prepared_statements_total", "result=\"miss\"", st.prepared_misses);
  if (pool->latency != NULL) {
    head(&o, "uvorm_query_duration_seconds", "histogram",
         "Time from the call to the answer, by operation.");
    for (size_t i = 0; i < NOPS; i++) {
      char extra[48];
      snprintf(extra, sizeof extra, "operation=\"%s\"", ops[i]);
      histogram(&o, "uvorm_query_duration_seconds", extra, &pool->latency[i]);
    }
    head(&o, "uvorm_queue_wait_seconds", "histogram",
         "Time from the call until the statement was sent.");
    histogram(&o, "uvorm_queue_wait_seconds", NULL, pool->queue_wait);
  }
  return o.len > INT32_MAX ? ORM_ENOMEM : (int)o.len;
}
