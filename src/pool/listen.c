/* SPDX-License-Identifier: MIT */
/* LISTEN/NOTIFY: the pool's listener, a lease held while anything listens.
 *
 * The listener keeps the channels its connection LISTENs to (`on`) in
 * step with the subscriptions: one batch of LISTEN / UNLISTEN at a time,
 * as a simple-protocol query. When the batch is answered, subscriptions
 * whose channel is now listened to are told so (LISTENING the first time,
 * GAP after a lost connection). A lost connection ends the lease; the
 * listener asks for another from the pool's next turn, once the pool has
 * a connection up, and listens again to everything. */
#include <stdio.h>
#include <string.h>

#include "uvorm/stream.h"

#include "base/alloc.h"
#include "pool_int.h"

struct orm_listen_s {
  orm__link_t link; /* the listener's subscriptions */
  struct orm__listener_s *owner;
  orm_notify_cb cb;
  void *data;
  char channel[ORM_CHANNEL_MAX + 1];
  unsigned char active; /* its LISTEN is in place on the connection */
  unsigned char ever;   /* it was, once: the next time is a gap */
  unsigned char failed; /* the server refused its LISTEN */
};

typedef struct orm__listener_s {
  orm_pool_t *pool;
  orm__link_t subs;
  orm__request_t *req; /* the lease, from submission until it completes */
  orm__conn_t *conn;   /* while the lease runs */
  /* Channels LISTENed on the connection, and the batch in flight (the
   * channels `on` will be once it is answered). */
  char (*on)[ORM_CHANNEL_MAX + 1];
  size_t non;
  char (*next)[ORM_CHANNEL_MAX + 1];
  size_t nnext;
  size_t cap;
  int busy;          /* a batch is in flight */
  PGresult *error;   /* the batch's failure */
  struct orm_listen_s *walk_next; /* where a walk stands (see walk()) */
  struct orm_listen_s *walk_cur;  /* ... and whom it visits: NULL once
                                     that one unlistened */
} orm__listener_t;

static int channel_ok(const char *channel) {
  size_t n = channel != NULL ? strlen(channel) : 0;
  if (n == 0 || n > ORM_CHANNEL_MAX)
    return 0;
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)channel[i] < 0x20 || channel[i] == 0x7f)
      return 0;
  return 1;
}

static orm__listener_t *listener_of(orm_pool_t *pool) {
  return pool->listener;
}

static int has_channel(char (*set)[ORM_CHANNEL_MAX + 1], size_t n,
                       const char *channel) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(set[i], channel) == 0)
      return 1;
  return 0;
}

/* The channels wanted now: those of live subscriptions. */
static int wanted(orm__listener_t *l) {
  l->nnext = 0;
  for (orm__link_t *k = l->subs.next; k != &l->subs; k = k->next) {
    orm_listen_t *sub = ORM__CONTAINER_OF(k, orm_listen_t, link);
    if (sub->failed || has_channel(l->next, l->nnext, sub->channel))
      continue;
    if (l->nnext == l->cap) {
      size_t cap = l->cap ? l->cap * 2 : 8;
      void *on = orm__reallocarray(l->on, cap, sizeof *l->on);
      if (on == NULL)
        return ORM_ENOMEM;
      l->on = on;
      void *next = orm__reallocarray(l->next, cap, sizeof *l->next);
      if (next == NULL)
        return ORM_ENOMEM;
      l->next = next;
      l->cap = cap;
    }
    memcpy(l->next[l->nnext++], sub->channel, sizeof sub->channel);
  }
  return 0;
}

static void lease_lost(orm__listener_t *l, const char *why);

/* Appends `verb` and the quoted channel to `sql`. */
static int append(orm__listener_t *l, orm__buf_t *sql, const char *verb,
                  const char *channel) {
  char *quoted = PQescapeIdentifier(l->conn->pg, channel, strlen(channel));
  if (quoted == NULL)
    return ORM_ENOMEM;
  int rc = orm__buf_append(sql, verb, strlen(verb));
  if (rc == 0)
    rc = orm__buf_append(sql, " ", 1);
  if (rc == 0)
    rc = orm__buf_append(sql, quoted, strlen(quoted));
  if (rc == 0)
    rc = orm__buf_append(sql, ";", 1);
  PQfreemem(quoted);
  return rc;
}

/* Sends the next batch, if the subscriptions changed. */
static void sync_channels(orm__listener_t *l) {
  if (l->conn == NULL || l->busy)
    return;
  if (wanted(l) != 0) {
    lease_lost(l, "out of memory");
    return;
  }
  orm__buf_t sql;
  orm__buf_init(&sql);
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < l->nnext; i++)
    if (!has_channel(l->on, l->non, l->next[i]))
      rc = append(l, &sql, "LISTEN", l->next[i]);
  for (size_t i = 0; rc == 0 && i < l->non; i++)
    if (!has_channel(l->next, l->nnext, l->on[i]))
      rc = append(l, &sql, "UNLISTEN", l->on[i]);
  if (rc == 0 && sql.len == 0) {
    orm__buf_free(&sql);
    if (l->nnext == 0 && orm__list_empty(&l->subs)) {
      /* Nothing listens: the connection goes back, clean. */
      orm__conn_t *conn = l->conn;
      l->conn = NULL;
      orm__request_t *req = l->req;
      l->req = NULL;
      orm__lease_end(conn, NULL);
      orm__req_complete(req, 0, ORM__NOW);
    }
    return;
  }
  if (rc != 0 || orm__buf_append(&sql, "", 1) != 0) {
    orm__buf_free(&sql);
    lease_lost(l, "out of memory");
    return;
  }
  if (!PQsendQuery(l->conn->pg, sql.data)) {
    orm__buf_free(&sql);
    lease_lost(l, PQerrorMessage(l->conn->pg));
    return;
  }
  orm__buf_free(&sql);
  l->busy = 1;
  int flush = PQflush(l->conn->pg);
  orm__conn_arm(l->conn, UV_READABLE | (flush == 1 ? UV_WRITABLE : 0));
}

static void notify(orm_listen_t *sub, orm_notify_kind_t kind,
                   const char *payload, int pid) {
  orm_notification_t note = {.kind = kind,
                             .channel = sub->channel,
                             .payload = payload != NULL ? payload : "",
                             .sender_pid = pid};
  sub->cb(sub, &note, sub->data);
}

/* Runs `fn` for each live subscription of `channel` (NULL: all), safe
 * against callbacks that unlisten any of them or close the pool: the walk
 * stops if the listener went away, and a subscription removed during it
 * is skipped (removal unlinks it, and marks where the walk stands). */
typedef int (*visit_fn)(orm__listener_t *l, orm_listen_t *sub, void *arg);

static void walk(orm__listener_t *l, const char *channel, visit_fn fn,
                 void *arg) {
  orm_listen_t *saved = l->walk_next, *saved_cur = l->walk_cur;
  orm__link_t *k = l->subs.next;
  l->walk_next =
      k != &l->subs ? ORM__CONTAINER_OF(k, orm_listen_t, link) : NULL;
  orm_pool_t *pool = l->pool;
  while (l->walk_next != NULL) {
    orm_listen_t *sub = l->walk_next;
    k = sub->link.next;
    l->walk_next =
        k != &l->subs ? ORM__CONTAINER_OF(k, orm_listen_t, link) : NULL;
    l->walk_cur = sub;
    if (channel == NULL || strcmp(sub->channel, channel) == 0)
      /* A closing pool delivers nothing more (the listener lives until
       * the pool's memory goes). */
      if (fn(l, sub, arg) != 0 || pool->state != POOL_OPEN)
        break;
  }
  l->walk_next = saved;
  l->walk_cur = saved_cur;
}

static void activate(orm_listen_t *sub) {
  sub->active = 1;
  int gap = sub->ever;
  sub->ever = 1;
  notify(sub, gap ? ORM_NOTIFY_GAP : ORM_NOTIFY_LISTENING, NULL, 0);
}

/* A notification proves its channel is listened to: a subscription whose
 * batch is still being answered (the server sends notifications before the
 * batch's end) is told it listens first. */
static int deliver_one(orm__listener_t *l, orm_listen_t *sub, void *arg) {
  PGnotify *n = arg;
  if (sub->failed)
    return 0;
  if (!sub->active) {
    activate(sub);
    /* Its callback may have unlistened it, or closed the pool. */
    if (l->walk_cur != sub || l->pool->state != POOL_OPEN)
      return 0;
  }
  notify(sub, ORM_NOTIFY_MESSAGE, n->extra, n->be_pid);
  return 0;
}

static int confirm_one(orm__listener_t *l, orm_listen_t *sub, void *arg) {
  (void)arg;
  if (sub->active || sub->failed || !has_channel(l->on, l->non, sub->channel))
    return 0;
  activate(sub);
  return 0;
}

static int refuse_one(orm__listener_t *l, orm_listen_t *sub, void *arg) {
  if (sub->active || sub->failed || !has_channel(l->next, l->nnext,
                                                 sub->channel))
    return 0;
  sub->failed = 1;
  notify(sub, ORM_NOTIFY_ERROR, arg, 0);
  return 0;
}

/* The batch is answered. */
static void batch_done(orm__listener_t *l) {
  l->busy = 0;
  orm_pool_t *pool = l->pool;
  if (l->error != NULL) {
    /* The batch ran in one implicit transaction: none of it took. */
    const char *msg = PQresultErrorField(l->error, PG_DIAG_MESSAGE_PRIMARY);
    char why[256];
    snprintf(why, sizeof why, "%s", msg != NULL ? msg : "LISTEN failed");
    PQclear(l->error);
    l->error = NULL;
    walk(l, NULL, refuse_one, why);
  } else {
    memcpy(l->on, l->next, l->nnext * sizeof *l->on);
    l->non = l->nnext;
    walk(l, NULL, confirm_one, NULL);
  }
  if (pool->state == POOL_OPEN)
    sync_channels(l);
}

static void drain(orm__listener_t *l) {
  orm_pool_t *pool = l->pool;
  while (l->conn != NULL && pool->state == POOL_OPEN) {
    PGconn *pg = l->conn->pg;
    PGnotify *n = PQnotifies(pg);
    if (n != NULL) {
      walk(l, n->relname, deliver_one, n);
      PQfreemem(n);
      continue;
    }
    if (!l->busy || PQisBusy(pg))
      break;
    PGresult *res = PQgetResult(pg);
    if (res == NULL) {
      batch_done(l);
      continue;
    }
    if (PQresultStatus(res) == PGRES_FATAL_ERROR && l->error == NULL)
      l->error = res;
    else
      PQclear(res);
  }
}

/* The connection failed under the listener (from its own io). */
static void lease_lost(orm__listener_t *l, const char *why) {
  orm__conn_t *conn = l->conn;
  l->conn = NULL;
  l->req = NULL;
  orm__lease_lost(conn, "the listener's connection was lost", why);
}

static void on_start(orm__request_t *req, orm__conn_t *conn) {
  orm__listener_t *l = req->lease_obj;
  l->conn = conn;
  l->non = 0;
  l->busy = 0;
  sync_channels(l);
}

static void on_io(orm__request_t *req, int status, int events) {
  orm__listener_t *l = req->lease_obj;
  const char *why;
  int pending = orm__lease_io(l->conn, status, events, &why);
  if (pending < 0) {
    lease_lost(l, why);
    return;
  }
  if (events & UV_WRITABLE)
    orm__conn_arm(l->conn, UV_READABLE | (pending ? UV_WRITABLE : 0));
  drain(l);
}

static void on_abort(orm__request_t *req, int code) {
  (void)req;
  (void)code; /* the listener's lease is never cancelled */
}

static void unlisten_all_locally(orm__listener_t *l) {
  for (orm__link_t *k = l->subs.next; k != &l->subs; k = k->next)
    ORM__CONTAINER_OF(k, orm_listen_t, link)->active = 0;
  l->non = 0;
  l->busy = 0;
  PQclear(l->error);
  l->error = NULL;
}

static void on_lost(orm__request_t *req, int code, const char *why) {
  (void)code;
  (void)why;
  orm__listener_t *l = req->lease_obj;
  l->conn = NULL;
  unlisten_all_locally(l);
}

/* The lease request belongs to the listener, which outlives it. */
static void on_release(void *obj) { (void)obj; }

static const orm__lease_ops_t listen_ops = {on_start, on_io, on_abort,
                                            on_lost, on_release};

/* The lease completed (given back, lost, or never granted). */
static void on_lease_done(orm_future_t *f, void *data) {
  (void)f;
  orm__listener_t *l = data;
  if (l->req == (orm__request_t *)f)
    l->req = NULL;
  l->conn = NULL;
  unlisten_all_locally(l);
  if (l->pool->listener == l && l->pool->state == POOL_OPEN)
    orm__pool_kick(l->pool); /* orm__listener_turn asks again */
}

void orm__listener_turn(orm_pool_t *pool) {
  orm__listener_t *l = listener_of(pool);
  if (l == NULL || l->req != NULL || orm__list_empty(&l->subs) || pool->down)
    return;
  orm__request_t *req;
  if (orm__lease_submit(&pool->exec, &listen_ops, l, "LISTEN", NULL,
                        on_lease_done, l, &req) == 0)
    l->req = req;
}

void orm__listener_free(orm_pool_t *pool) {
  orm__listener_t *l = pool->listener;
  if (l == NULL)
    return;
  pool->listener = NULL;
  while (!orm__list_empty(&l->subs)) {
    orm_listen_t *sub = ORM__CONTAINER_OF(l->subs.next, orm_listen_t, link);
    orm__list_remove(&sub->link);
    orm__free(sub);
  }
  PQclear(l->error);
  orm__free(l->on);
  orm__free(l->next);
  orm__free(l);
}

int orm_listen(orm_pool_t *pool, const char *channel, orm_notify_cb cb,
               void *data, orm_listen_t **out) {
  if (out != NULL)
    *out = NULL;
  if (pool == NULL || cb == NULL || out == NULL || !channel_ok(channel))
    return ORM_EINVAL;
  if (pool->state != POOL_OPEN)
    return ORM_ECLOSED;
  if (pool->cfg.max_conns < 2 || pool->cfg.transaction_pooling)
    return ORM_ENOTSUP;
  orm__listener_t *l = pool->listener;
  if (l == NULL) {
    l = orm__calloc(1, sizeof *l);
    if (l == NULL)
      return ORM_ENOMEM;
    l->pool = pool;
    orm__list_init(&l->subs);
    pool->listener = l;
  }
  orm_listen_t *sub = orm__calloc(1, sizeof *sub);
  if (sub == NULL)
    return ORM_ENOMEM;
  sub->owner = l;
  sub->cb = cb;
  sub->data = data;
  memcpy(sub->channel, channel, strlen(channel) + 1);
  orm__list_push_back(&l->subs, &sub->link);
  /* From the pool's turn: the lease, or the next batch on the one held. */
  orm__pool_kick(pool);
  *out = sub;
  return 0;
}

int orm_unlisten(orm_listen_t *sub) {
  if (sub == NULL)
    return ORM_EINVAL;
  orm__listener_t *l = sub->owner;
  if (l->walk_cur == sub)
    l->walk_cur = NULL;
  if (l->walk_next == sub) {
    orm__link_t *k = sub->link.next;
    l->walk_next =
        k != &l->subs ? ORM__CONTAINER_OF(k, orm_listen_t, link) : NULL;
  }
  orm__list_remove(&sub->link);
  orm__free(sub);
  if (l->pool->state == POOL_OPEN)
    orm__pool_kick(l->pool);
  return 0;
}

void orm__listener_sync(orm_pool_t *pool) {
  orm__listener_t *l = listener_of(pool);
  if (l != NULL && l->conn != NULL && !l->busy)
    sync_channels(l);
}

int(orm_notify_async)(orm_exec_t *exec, const char *channel,
                      const char *payload, orm_future_cb cb, void *data,
                      orm_future_t **out) {
  if (out != NULL)
    *out = NULL;
  if (!channel_ok(channel))
    return ORM_EINVAL;
  size_t len = payload != NULL ? strlen(payload) : 0;
  if (len > ORM_NOTIFY_PAYLOAD_MAX)
    return ORM_E2BIG;
  orm_param_t params[2] = {ORM_TEXT(channel), ORM_TEXT_N(payload, len)};
  if (payload == NULL)
    params[1] = ORM_NULL;
  return (orm_query_async)(exec, "SELECT pg_notify($1, $2)", params, 2, cb,
                           data, out);
}
