/* SPDX-License-Identifier: MIT */
/* A primary and its replicas (uvorm/cluster.h): one pool each, the checks
 * that keep replicas in or out of rotation, the routing of each call, and
 * sessions. The WAL position a session's write reached is learnt by the
 * primary's pool (lsn.c); here it decides where the session's reads go. */
#include <stdlib.h>
#include <string.h>

#include "uvorm/cluster.h"

#include "base/alloc.h"
#include "pool_int.h"

/* The primary's insert positions kept, with when each was read: enough for
 * max_lag_ms at the check rate (older ones only ever say "at least"). */
#define SAMPLES 128

typedef struct {
  orm_cluster_t *cluster;
  orm_pool_t *pool;
  orm_replica_state_t st;
  int checking;
  uint64_t checked_at; /* uv_now() of the last answer */
} replica_t;

struct orm_cluster_s {
  orm_exec_t exec;         /* routed */
  orm_exec_t replica_exec; /* routed, everything to a replica */
  uv_loop_t *loop;
  orm_pool_t *primary;
  replica_t *replicas;
  size_t nreplicas;
  uint64_t max_lag_ms;
  uint64_t check_ms;
  uint64_t check_timeout_ms;
  uint64_t last_kick; /* uv_now() of the last check made on demand */
  uv_timer_t timer;
  int primary_checking;
  struct {
    uint64_t at, lsn;
  } samples[SAMPLES];
  size_t nsamples, head; /* a ring: oldest at head */
  orm_cluster_stats_t stats;
  size_t rr; /* spreads ties between replicas */
  void *data;
  int closing;
  unsigned open_handles; /* pools and the timer, until closed */
  unsigned refs;         /* the cluster until closed, and each session */
  orm_cluster_close_cb close_cb;
};

struct orm_session_s {
  orm__lsn_sink_t sink; /* refs: the caller's handle and writes waiting */
  orm_exec_t exec;      /* routed, with the session's sink */
  orm_exec_t writes;    /* the primary's, tracking its writes */
  orm_cluster_t *cluster;
};

static void cluster_unref(orm_cluster_t *c) {
  if (--c->refs != 0)
    return;
  orm__free(c->replicas);
  orm__free(c);
}

int orm__cluster_usable(const orm_cluster_t *c) {
  return c->closing ? ORM_ECLOSED : 0;
}

/* ---- routing -------------------------------------------------------------- */

/* How busy a pool is: what waits for it and what is in flight on it. */
static size_t load(const orm_pool_t *pool) {
  size_t n = pool->queued;
  for (const orm__link_t *l = pool->ready.next; l != &pool->ready; l = l->next)
    n += ORM__CONTAINER_OF(l, orm__conn_t, link)->in_flight;
  return n;
}

static void check_all(orm_cluster_t *c);

orm_exec_t *orm__exec_route(orm_exec_t *exec, int intent) {
  orm_cluster_t *c = exec != NULL ? exec->cluster : NULL;
  if (c == NULL || c->closing)
    return exec;
  if (intent == ORM__WRITE && exec->route != ORM__ROUTE_REPLICA) {
    c->stats.writes++;
    return exec->writes;
  }
  /* A session's reads must see its writes. */
  uint64_t need = 0;
  if (exec->sink != NULL)
    need = exec->sink->blind ? UINT64_MAX : exec->sink->lsn;
  replica_t *best = NULL;
  size_t best_load = 0, in_rotation = 0;
  for (size_t k = 0; k < c->nreplicas; k++) {
    replica_t *r = &c->replicas[(c->rr + k) % c->nreplicas];
    if (!r->st.in_rotation || r->pool->down)
      continue;
    in_rotation++;
    if (r->st.replay_lsn < need)
      continue;
    size_t n = load(r->pool);
    if (best == NULL || n < best_load) {
      best = r;
      best_load = n;
    }
  }
  c->rr++;
  if (best != NULL) {
    c->stats.reads_replica++;
    return orm_pool_exec(best->pool);
  }
  c->stats.reads_primary++;
  if (in_rotation == 0) {
    c->stats.reads_fallback++;
  } else {
    c->stats.reads_behind++;
    /* The replicas have likely replayed it by now: look again soon, so
     * that the session's next reads can go there. */
    if (need != UINT64_MAX)
      orm__cluster_kick(c);
  }
  /* A session's read on the primary sees its writes without tracking. */
  return orm_pool_exec(c->primary);
}

/* ---- checks --------------------------------------------------------------- */

void orm__cluster_kick(orm_cluster_t *c) {
  uint64_t now = uv_now(c->loop);
  if (c->closing || c->nreplicas == 0 ||
      now - c->last_kick < c->check_ms / 5 + 1)
    return;
  c->last_kick = now;
  check_all(c);
}

static const char primary_sql[] =
    "SELECT CASE WHEN pg_catalog.pg_is_in_recovery() THEN NULL "
    "ELSE pg_catalog.pg_current_wal_insert_lsn() END";
static const char replica_sql[] =
    "SELECT pg_catalog.pg_is_in_recovery(), "
    "pg_catalog.pg_last_wal_replay_lsn()";

/* How far behind a replica that replayed up to `replayed` is, at least:
 * from when the oldest primary position it lacks was read. */
static uint64_t lag_ms(const orm_cluster_t *c, uint64_t replayed,
                       uint64_t now) {
  for (size_t k = 0; k < c->nsamples; k++) {
    size_t i = (c->head + k) % SAMPLES;
    if (c->samples[i].lsn > replayed)
      return now - c->samples[i].at;
  }
  return 0;
}

static void set_rotation(replica_t *r, bool in, const char *why) {
  if (r->st.in_rotation == in)
    return;
  r->st.in_rotation = in;
  r->cluster->stats.rotation_changes++;
  if (in)
    orm__pool_log(r->pool, NULL, ORM_LOG_INFO, "replica_in", 0, 0,
                  "replica %zu back in rotation",
                  (size_t)(r - r->cluster->replicas));
  else
    orm__pool_log(r->pool, NULL, ORM_LOG_WARN, "replica_out", 0, 0,
                  "replica %zu out of rotation: %s",
                  (size_t)(r - r->cluster->replicas), why);
}

static void on_replica_check(orm_future_t *f, void *data) {
  replica_t *r = data;
  orm_cluster_t *c = r->cluster;
  r->checking = 0;
  if (c->closing)
    return;
  uint64_t now = uv_now(c->loop);
  orm_result_t *res = orm_future_value(f);
  int status = orm_future_status(f);
  bool standby = false;
  uint64_t replayed = 0;
  if (status == 0 && (orm_result_bool(res, 0, 0, &standby) != 0 ||
                      (standby && orm__lsn_read(res, 1, &replayed) != 0)))
    status = ORM_EPROTO;
  r->st.status = status;
  r->checked_at = now;
  if (status != 0) {
    const orm_error_t *e = orm_future_error(f);
    set_rotation(r, false, e != NULL && e->message != NULL
                               ? e->message
                               : orm_strerror(status));
    return;
  }
  r->st.checked = true;
  r->st.standby = standby;
  if (!standby) {
    set_rotation(r, false, "not a standby (pg_is_in_recovery() is false)");
    return;
  }
  if (replayed > r->st.replay_lsn)
    r->st.replay_lsn = replayed;
  r->st.lag_ms = lag_ms(c, replayed, now);
  if (r->st.lag_ms > c->max_lag_ms) {
    char why[96];
    snprintf(why, sizeof why, "%llu ms behind the primary (max_lag_ms %llu)",
             (unsigned long long)r->st.lag_ms,
             (unsigned long long)c->max_lag_ms);
    set_rotation(r, false, why);
    return;
  }
  set_rotation(r, true, NULL);
}

static void on_primary_check(orm_future_t *f, void *data) {
  orm_cluster_t *c = data;
  c->primary_checking = 0;
  if (c->closing || orm_future_status(f) != 0)
    return;
  uint64_t lsn;
  if (orm__lsn_read(orm_future_value(f), 0, &lsn) != 0)
    return; /* in recovery: a failover is under way */
  c->stats.primary_lsn = lsn;
  size_t last = (c->head + c->nsamples + SAMPLES - 1) % SAMPLES;
  if (c->nsamples > 0 && c->samples[last].lsn == lsn)
    return; /* nothing written since: the older sample says more */
  size_t i = (c->head + c->nsamples) % SAMPLES;
  if (c->nsamples == SAMPLES)
    c->head = (c->head + 1) % SAMPLES;
  else
    c->nsamples++;
  c->samples[i].at = uv_now(c->loop);
  c->samples[i].lsn = lsn;
}

static void check_all(orm_cluster_t *c) {
  orm_future_t *f;
  orm__params_in_t primary_in = {.op = "primary_check", .internal = true};
  orm__params_in_t replica_in = {.op = "replica_check", .internal = true};
  if (!c->primary_checking && c->nreplicas > 0 &&
      orm__exec_submit(orm_pool_exec(c->primary), primary_sql, NULL, &primary_in,
                       NULL, NULL, on_primary_check, c, &f) == 0) {
    c->primary_checking = 1;
    orm_future_timeout(f, c->check_timeout_ms);
    orm_future_release(f);
  }
  for (size_t i = 0; i < c->nreplicas; i++) {
    replica_t *r = &c->replicas[i];
    if (r->checking)
      continue;
    int rc = orm__exec_submit(orm_pool_exec(r->pool), replica_sql, NULL,
                              &replica_in, NULL, NULL, on_replica_check, r, &f);
    if (rc != 0) {
      r->st.status = rc;
      set_rotation(r, false, orm_strerror(rc));
      continue;
    }
    r->checking = 1;
    orm_future_timeout(f, c->check_timeout_ms);
    orm_future_release(f);
  }
}

static void on_timer(uv_timer_t *timer) { check_all(timer->data); }

/* ---- open and close ------------------------------------------------------- */

static void closed_one(orm_cluster_t *c) {
  if (--c->open_handles != 0)
    return;
  if (c->close_cb != NULL)
    c->close_cb(c, c->data);
  cluster_unref(c);
}

static void on_pool_closed(orm_pool_t *pool, void *data) {
  (void)data;
  closed_one(pool->owner);
}

static void on_timer_closed(uv_handle_t *h) { closed_one(h->data); }

int orm_cluster_open(orm_cluster_t **out, uv_loop_t *loop,
                     const orm_cluster_config_t *cfg) {
  if (out == NULL)
    return ORM_EINVAL;
  *out = NULL;
  if (loop == NULL || cfg == NULL || cfg->primary == NULL ||
      (cfg->nreplicas > 0 && cfg->replicas == NULL))
    return ORM_EINVAL;
  for (size_t i = 0; i < cfg->nreplicas; i++)
    if (cfg->replicas[i] == NULL)
      return ORM_EINVAL;
  orm_cluster_t *c = orm__calloc(1, sizeof *c);
  replica_t *rs = cfg->nreplicas > 0
                      ? orm__calloc(cfg->nreplicas, sizeof *rs)
                      : NULL;
  if (c == NULL || (cfg->nreplicas > 0 && rs == NULL)) {
    orm__free(c);
    orm__free(rs);
    return ORM_ENOMEM;
  }
  c->loop = loop;
  c->replicas = rs;
  c->data = cfg->pool.data;
  c->max_lag_ms = cfg->max_lag_ms != 0 ? cfg->max_lag_ms : 1000;
  c->check_ms = cfg->check_ms != 0 ? cfg->check_ms : 50;
  /* A replica that cannot answer a check for this long is not serving. */
  c->check_timeout_ms = c->max_lag_ms > 1000 ? c->max_lag_ms : 1000;
  c->refs = 1;

  orm_pool_config_t pc = cfg->pool;
  pc.conninfo = cfg->primary;
  int rc = orm_pool_open(&c->primary, loop, &pc);
  for (size_t i = 0; rc == 0 && i < cfg->nreplicas; i++) {
    pc.conninfo = cfg->replicas[i];
    if (cfg->replica_max_conns != 0)
      pc.max_conns = cfg->replica_max_conns;
    if (pc.min_conns > pc.max_conns && pc.max_conns != 0)
      pc.min_conns = pc.max_conns;
    rc = orm_pool_open(&rs[i].pool, loop, &pc);
    if (rc == 0)
      c->nreplicas++;
  }
  if (rc != 0) {
    if (c->primary != NULL)
      orm_pool_close(c->primary, NULL);
    for (size_t i = 0; i < c->nreplicas; i++)
      orm_pool_close(rs[i].pool, NULL);
    orm__free(rs);
    orm__free(c);
    return rc;
  }
  c->primary->owner = c;
  c->open_handles = 1;
  for (size_t i = 0; i < c->nreplicas; i++) {
    rs[i].cluster = c;
    rs[i].pool->owner = c;
    c->open_handles++;
  }
  uv_timer_init(loop, &c->timer);
  c->timer.data = c;
  c->open_handles++;
  if (c->nreplicas > 0)
    uv_timer_start(&c->timer, on_timer, 0, c->check_ms);

  c->exec.cluster = c;
  c->exec.writes = orm_pool_exec(c->primary);
  c->replica_exec = c->exec;
  c->replica_exec.route = ORM__ROUTE_REPLICA;
  *out = c;
  return 0;
}

int orm_cluster_close(orm_cluster_t *c, orm_cluster_close_cb cb) {
  if (c == NULL)
    return ORM_EINVAL;
  if (c->closing)
    return ORM_ECLOSED;
  c->closing = 1;
  c->close_cb = cb;
  uv_close((uv_handle_t *)&c->timer, on_timer_closed);
  orm_pool_close(c->primary, on_pool_closed);
  for (size_t i = 0; i < c->nreplicas; i++)
    orm_pool_close(c->replicas[i].pool, on_pool_closed);
  return 0;
}

orm_exec_t *orm_cluster_exec(orm_cluster_t *c) {
  return c != NULL ? &c->exec : NULL;
}

orm_exec_t *orm_cluster_replica_exec(orm_cluster_t *c) {
  return c != NULL ? &c->replica_exec : NULL;
}

orm_pool_t *orm_cluster_primary(orm_cluster_t *c) {
  return c != NULL ? c->primary : NULL;
}

orm_pool_t *orm_cluster_replica(orm_cluster_t *c, size_t i) {
  return c != NULL && i < c->nreplicas ? c->replicas[i].pool : NULL;
}

int orm_cluster_replica_state(const orm_cluster_t *c, size_t i,
                              orm_replica_state_t *out) {
  if (c == NULL || out == NULL || i >= c->nreplicas)
    return ORM_EINVAL;
  *out = c->replicas[i].st;
  out->in_rotation = out->in_rotation && !c->replicas[i].pool->down;
  return 0;
}

int orm_cluster_stats(const orm_cluster_t *c, orm_cluster_stats_t *out) {
  if (c == NULL || out == NULL)
    return ORM_EINVAL;
  *out = c->stats;
  return 0;
}

/* ---- sessions ------------------------------------------------------------- */

static void session_release(orm__lsn_sink_t *sink) {
  orm_session_t *s = ORM__CONTAINER_OF(sink, orm_session_t, sink);
  orm_cluster_t *c = s->cluster;
  orm__free(s);
  cluster_unref(c);
}

int orm_session_open(orm_cluster_t *c, orm_session_t **out) {
  if (out == NULL)
    return ORM_EINVAL;
  *out = NULL;
  if (c == NULL)
    return ORM_EINVAL;
  if (c->closing)
    return ORM_ECLOSED;
  orm_session_t *s = orm__calloc(1, sizeof *s);
  if (s == NULL)
    return ORM_ENOMEM;
  s->cluster = c;
  c->refs++;
  s->sink.refs = 1;
  s->sink.release = session_release;
  s->writes.pool = c->primary;
  s->writes.sink = &s->sink;
  s->exec = c->exec;
  s->exec.writes = &s->writes;
  s->exec.sink = &s->sink;
  *out = s;
  return 0;
}

void orm_session_close(orm_session_t *s) {
  if (s != NULL)
    orm__lsn_sink_unref(&s->sink);
}

orm_exec_t *orm_session_exec(orm_session_t *s) {
  return s != NULL ? &s->exec : NULL;
}

int orm_session_tx_begin(orm_session_t *s, unsigned options, orm_tx_t **out) {
  if (s == NULL || out == NULL)
    return ORM_EINVAL;
  *out = NULL;
  if (s->cluster->closing)
    return ORM_ECLOSED;
  int rc = orm_tx_begin_with(s->cluster->primary, options, out);
  if (rc == 0) {
    (*out)->sink = &s->sink;
    s->sink.refs++;
  }
  return rc;
}

uint64_t orm_session_lsn(const orm_session_t *s) {
  if (s == NULL)
    return 0;
  return s->sink.blind ? UINT64_MAX : s->sink.lsn;
}

int orm_session_set_lsn(orm_session_t *s, uint64_t lsn) {
  if (s == NULL)
    return ORM_EINVAL;
  if (lsn > s->sink.lsn && lsn != UINT64_MAX)
    s->sink.lsn = lsn;
  else if (lsn == UINT64_MAX)
    s->sink.blind = 1;
  return 0;
}
