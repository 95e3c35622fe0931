/* SPDX-License-Identifier: MIT */
/* Server notices: libpq hands them over in the middle of reading a
 * result, where a user callback could close the pool under the reader. So
 * each is copied into a queue here and delivered from the pool's own turn. */
#include <string.h>

#include "base/alloc.h"
#include "pool_int.h"

struct orm__notice_s {
  orm__notice_t *next;
  orm_notice_t notice; /* its strings live in `text` */
  char text[];
};

static size_t field_len(const char *s) { return s != NULL ? strlen(s) + 1 : 0; }

static const char *field_copy(char **at, const char *s) {
  if (s == NULL)
    return NULL;
  size_t n = strlen(s) + 1;
  char *dst = *at;
  memcpy(dst, s, n);
  *at += n;
  return dst;
}

static void on_notice(void *arg, const PGresult *res) {
  orm__conn_t *conn = arg;
  orm_pool_t *pool = conn->pool;
  pool->stats.notices++;
  if (pool->cfg.on_notice == NULL || pool->state != POOL_OPEN ||
      pool->nnotices >= ORM_NOTICES_MAX) {
    pool->stats.notices_dropped++;
    return;
  }
  const char *severity =
      PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
  const char *sqlstate = PQresultErrorField(res, PG_DIAG_SQLSTATE);
  const char *message = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
  const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
  const char *hint = PQresultErrorField(res, PG_DIAG_MESSAGE_HINT);
  if (severity == NULL)
    severity = PQresultErrorField(res, PG_DIAG_SEVERITY);
  if (severity == NULL)
    severity = "NOTICE";
  if (sqlstate == NULL)
    sqlstate = "";
  if (message == NULL)
    message = PQresultErrorMessage(res);
  size_t len = field_len(severity) + field_len(sqlstate) + field_len(message) +
               field_len(detail) + field_len(hint);
  orm__notice_t *n = orm__malloc(sizeof *n + len);
  if (n == NULL) {
    pool->stats.notices_dropped++;
    return;
  }
  char *at = n->text;
  n->next = NULL;
  n->notice.severity = field_copy(&at, severity);
  n->notice.sqlstate = field_copy(&at, sqlstate);
  n->notice.message = field_copy(&at, message);
  n->notice.detail = field_copy(&at, detail);
  n->notice.hint = field_copy(&at, hint);
  n->notice.backend_pid = conn->pg != NULL ? PQbackendPID(conn->pg) : 0;
  if (pool->notices_tail != NULL)
    pool->notices_tail->next = n;
  else
    pool->notices_head = n;
  pool->notices_tail = n;
  pool->nnotices++;
  orm__pool_kick(pool);
}

void orm__notice_watch(orm__conn_t *conn) {
  /* Replaces libpq's default, which prints to stderr. */
  PQsetNoticeReceiver(conn->pg, on_notice, conn);
}

void orm__notices_deliver(orm_pool_t *pool) {
  while (pool->notices_head != NULL && pool->state == POOL_OPEN) {
    orm__notice_t *n = pool->notices_head;
    pool->notices_head = n->next;
    if (pool->notices_head == NULL)
      pool->notices_tail = NULL;
    pool->nnotices--;
    pool->cfg.on_notice(pool, &n->notice, pool->data);
    orm__free(n);
  }
}

void orm__notices_drop(orm_pool_t *pool) {
  while (pool->notices_head != NULL) {
    orm__notice_t *n = pool->notices_head;
    pool->notices_head = n->next;
    orm__free(n);
    pool->stats.notices_dropped++;
  }
  pool->notices_tail = NULL;
  pool->nnotices = 0;
}
