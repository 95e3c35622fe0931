/* The pool: configuration, the request queue and its dispatcher, statement
 * interning, connection life cycle, server-side cancels, shutdown. */
#include <assert.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "async/alloc.h"
#include "pool_int.h"

#define ORM_FREE_REQS_MAX 4096
#define ORM_STMTS_MAX 4096
#define ORM_MAINT_MS 1000
/* How long after a cancel a 57014 on another statement counts as a stray
 * (the signal lands within milliseconds of PQcancel's return; a real
 * statement_timeout error inside the window is run again). */
#define ORM_CANCEL_GUARD_MS 1000

static void req_abort(orm_future_t *f, int code);
static void req_reclaim(orm_future_t *f);
static const orm__future_ops_t req_ops = {req_abort, req_reclaim};

void orm__pool_kick(orm_pool_t *pool) {
  pool->sched.work_wanted = 1;
  orm__sched_kick(&pool->sched);
}

/* ---- requests ------------------------------------------------------------ */

static void free_request(orm__request_t *req) {
  orm__free((void *)req->values);
  orm__free(req->buf);
  orm__free(req);
}

orm__request_t *orm__pool_req_new(orm_pool_t *pool, orm__req_kind_t kind,
                                  orm_future_cb cb, void *data) {
  orm__request_t *req;
  if (!orm__list_empty(&pool->free_reqs)) {
    req = ORM_CONTAINER_OF(pool->free_reqs.next, orm__request_t, link);
    orm__list_remove(&req->link);
    pool->nfree--;
  } else {
    req = orm__calloc(1, sizeof *req);
    if (req == NULL)
      return NULL;
    orm__list_init(&req->link);
    orm__list_push_back(&pool->all_reqs, &req->all);
  }
  orm__future_init(&req->future, &req_ops, &pool->sched, cb, data);
  req->pool = pool;
  req->kind = kind;
  req->state = REQ_QUEUED;
  req->tx = NULL;
  req->conn = NULL;
  req->stmt = NULL;
  req->sql = NULL;
  req->result = NULL;
  req->prepare_error = NULL;
  req->abandoned = 0;
  req->cancel_sent = 0;
  req->transformed = 0;
  req->seg = ORM_SEG_READ;
  req->retries = 0;
  req->transform = NULL;
  req->nparams = 0;
  req->buf_len = 0;
  return req;
}

static void req_reclaim(orm_future_t *f) {
  orm__request_t *req = (orm__request_t *)f;
  orm__future_clear(f);
  PQclear(req->result);
  PQclear(req->prepare_error);
  req->result = req->prepare_error = NULL;
  orm_pool_t *pool = req->pool;
  if (pool == NULL) {
    free_request(req);
    return;
  }
  req->state = REQ_FREE;
  if (pool->nfree >= ORM_FREE_REQS_MAX || pool->closing) {
    orm__list_remove(&req->all);
    free_request(req);
    return;
  }
  /* Keep parameter space for reuse, but not a huge one-off. */
  if (req->buf_cap > 65536) {
    orm__free(req->buf);
    req->buf = NULL;
    req->buf_cap = 0;
  }
  orm__list_push_front(&pool->free_reqs, &req->link);
  pool->nfree++;
}

void orm__req_drop(orm__request_t *req) {
  /* An abandoned BEGIN or COMMIT still changed the connection's state:
   * settle the transaction by what the server answered. */
  if (req->kind == REQ_BEGIN || req->kind == REQ_TX_END) {
    int ok = req->result != NULL && req->prepare_error == NULL &&
             PQresultStatus(req->result) == PGRES_COMMAND_OK;
    if (req->kind == REQ_BEGIN)
      orm__tx_begin_done(req, ok ? 0 : ORM_ESERVER, 1, 0);
    else
      orm__tx_end_done(req->tx, ok ? 0 : ORM_ESERVER);
  }
  req->state = REQ_DONE;
  req->conn = NULL;
  orm__future_unref(&req->future);
}

static void count_outcome(orm_pool_t *pool, int status) {
  pool->stats.queries++;
  if (status == ORM_ECANCELED)
    pool->stats.cancels++;
  else if (status != 0)
    pool->stats.errors++;
  if (status == ORM_ETIMEDOUT)
    pool->stats.timeouts++;
}

/* Points the future's error at what the server said in `res`. */
static void take_server_error(orm__request_t *req, PGresult *res) {
  orm_error_t *e = &req->future.error;
  e->sqlstate = PQresultErrorField(res, PG_DIAG_SQLSTATE);
  e->message = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
  if (e->message == NULL)
    e->message = PQresultErrorMessage(res);
  e->detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
  e->hint = PQresultErrorField(res, PG_DIAG_MESSAGE_HINT);
  e->constraint = PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME);
  e->column = PQresultErrorField(res, PG_DIAG_COLUMN_NAME);
  e->table = PQresultErrorField(res, PG_DIAG_TABLE_NAME);
  e->schema = PQresultErrorField(res, PG_DIAG_SCHEMA_NAME);
  req->future.error_owner = res;
  req->future.error_owner_free = (void (*)(void *))PQclear;
}

static void complete(orm__request_t *req, int status, int defer) {
  orm_pool_t *pool = req->pool;
  req->state = REQ_DONE;
  count_outcome(pool, status);
  if (req->kind == REQ_BEGIN) {
    if (status == 0)
      orm__future_set_value(&req->future, req->tx, NULL);
    orm__tx_begin_done(req, status, 0, defer);
  } else if (req->kind == REQ_TX_END) {
    orm__tx_end_done(req->tx, status);
  }
  orm__future_complete(&req->future, status, defer);
  orm__future_unref(&req->future); /* the machinery's reference */
}

void orm__req_complete(orm__request_t *req, int status, int defer) {
  /* A server error received on the way explains a lost connection. */
  PGresult *err = req->prepare_error ? req->prepare_error : req->result;
  if (status != 0 && err != NULL &&
      PQresultStatus(err) == PGRES_FATAL_ERROR) {
    take_server_error(req, err);
    if (err == req->result)
      req->result = NULL;
    else
      req->prepare_error = NULL;
  }
  complete(req, status, defer);
}

/* A pipeline holds the answers of a segment until its sync, hundreds of
 * PGresults with deep pipelines: far more than malloc's per-thread cache
 * keeps, so every one of their blocks took malloc's slow path. A read's
 * answer is turned into its value as it arrives instead, and its PGresult
 * freed at once. Reads' transforms have no effect outside the future, so
 * if the segment fails, dropping the value undoes it. Writes' transforms
 * (RETURNING written back into the caller's rows) wait for the sync. */
void orm__req_transform_early(orm__request_t *req) {
  PGresult *res = req->result;
  if (req->transform == NULL || req->seg != ORM_SEG_READ ||
      req->abandoned || req->prepare_error != NULL || res == NULL ||
      PQresultStatus(res) != PGRES_TUPLES_OK)
    return;
  req->result = NULL;
  req->transformed = 1;
  req->transform_status = req->transform(res, req->tctx, &req->future);
}

void orm__req_untransform(orm__request_t *req) {
  if (!req->transformed)
    return;
  req->transformed = 0;
  orm_future_t *f = &req->future;
  if (f->value != NULL && f->value_free != NULL)
    f->value_free(f->value);
  f->value = NULL;
  f->error.message = NULL;
  f->error_text[0] = '\0';
}

/* A write ran, but its answer could not be made into the value: say so,
 * or a caller that retries writes twice. */
static void mark_applied(orm_future_t *f) {
  char why[sizeof f->error_text];
  snprintf(why, sizeof why, "%s",
           f->error.message != NULL ? f->error.message : "");
  f->error.applied = 1;
  orm__future_set_message(f, "the statement took effect, but its answer "
                              "could not be read: %s", why);
}

void orm__req_finish(orm__request_t *req, int defer) {
  if (req->transformed) {
    req->transformed = 0;
    orm__req_complete(req, req->transform_status, defer);
    return;
  }
  PGresult *res = req->prepare_error ? req->prepare_error : req->result;
  int status = 0;
  switch (res != NULL ? PQresultStatus(res) : PGRES_FATAL_ERROR) {
  case PGRES_TUPLES_OK:
  case PGRES_COMMAND_OK:
  case PGRES_EMPTY_QUERY:
    if (req->kind == REQ_QUERY || req->kind == REQ_TX_QUERY) {
      req->result = NULL;
      if (req->transform != NULL) {
        status = req->transform(res, req->tctx, &req->future);
        if (status != 0 && req->writes)
          mark_applied(&req->future);
      } else
        orm__future_set_value(&req->future, res,
                              (void (*)(void *))orm_result_free);
    } else if (req->kind == REQ_TX_END && strcmp(req->sql, "COMMIT") == 0 &&
               strcmp(PQcmdStatus(res), "ROLLBACK") == 0) {
      /* The server answers COMMIT of a failed transaction by rolling it
       * back, without an error: nothing was committed. */
      req->future.error.sqlstate = "25P02";
      orm__future_set_message(&req->future,
                              "COMMIT rolled back: a statement of the "
                              "transaction had failed");
      status = ORM_ESERVER;
    }
    break;
  case PGRES_FATAL_ERROR:
    if (res == NULL) {
      orm__future_set_message(&req->future, "no answer from the server");
      status = ORM_EPROTO;
      break;
    }
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    if (state == NULL)
      state = "";
    /* Class 57P: the server is shutting down or cut us off. 25P02: the
     * statement did not run, the transaction had failed before it. */
    status = strncmp(state, "57P", 3) == 0 ? ORM_ECONNLOST
             : strcmp(state, "25P02") == 0 ? ORM_ESKIPPED
                                           : ORM_ESERVER;
    break;
  case PGRES_PIPELINE_ABORTED:
    /* Sent in the same segment behind a statement that failed: the server
     * skipped it. Inside a transaction that is "in failed transaction". */
    if (req->tx != NULL)
      req->future.error.sqlstate = "25P02";
    orm__future_set_message(
        &req->future, "statement skipped: an earlier statement failed");
    status = ORM_ESKIPPED;
    break;
  default:
    orm__future_set_message(&req->future, "unexpected result status %s",
                            PQresStatus(PQresultStatus(res)));
    status = ORM_EPROTO;
    break;
  }
  orm__req_complete(req, status, defer);
}

/* Cancel or deadline. Always deferred: this can run inside a public call. */
static void req_abort(orm_future_t *f, int code) {
  orm__request_t *req = (orm__request_t *)f;
  orm_pool_t *pool = req->pool;
  switch (req->state) {
  case REQ_QUEUED:
    if (req->kind == REQ_TX_END && !req->tx->dead) {
      /* Not sent yet, but the transaction must still end on the server
       * (or once BEGIN has gone out): a cancelled COMMIT becomes a
       * ROLLBACK nobody waits for. */
      orm__pool_prepare_request(req, "ROLLBACK", NULL, 0, 0, NULL);
      req->abandoned = 1;
      count_outcome(pool, code);
      orm__future_complete(&req->future, code, 1);
      orm__pool_kick(pool);
      break;
    }
    orm__list_remove(&req->link);
    if (req->kind == REQ_QUERY || req->kind == REQ_BEGIN)
      pool->queued--;
    complete(req, code, 1);
    break;
  case REQ_SENT:
  case REQ_HELD:
    /* It stays in its connection until answered (orm__req_drop). */
    orm__req_untransform(req);
    orm__conn_abandon(req->conn, req);
    count_outcome(pool, code);
    orm__future_complete(&req->future, code, 1);
    break;
  default:
    break;
  }
}

/* ---- parameters ---------------------------------------------------------- */

static int params_reserve(orm__request_t *req, size_t n) {
  if (n <= (size_t)req->param_cap)
    return 0;
  size_t cap = req->param_cap ? (size_t)req->param_cap : 8;
  while (cap < n)
    cap *= 2;
  /* One block, widest members first: values, lengths, formats, types. */
  size_t each = sizeof(char *) + 2 * sizeof(int) + sizeof(Oid);
  char *block = orm__reallocarray(NULL, cap, each);
  if (block == NULL)
    return ORM_ENOMEM;
  orm__free((void *)req->values);
  req->values = (const char **)(void *)block;
  req->lengths = (int *)(void *)(block + cap * sizeof(char *));
  req->formats = req->lengths + cap;
  req->types = (Oid *)(void *)(req->formats + cap);
  req->param_cap = (int)cap;
  return 0;
}

static int buf_append(orm__request_t *req, const void *data, size_t len) {
  if (len > SIZE_MAX - req->buf_len)
    return ORM_ENOMEM;
  if (req->buf_len + len > req->buf_cap) {
    size_t cap = req->buf_cap ? req->buf_cap : 128;
    while (cap < req->buf_len + len)
      cap = cap > SIZE_MAX / 2 ? req->buf_len + len : cap * 2;
    char *buf = orm__realloc(req->buf, cap);
    if (buf == NULL)
      return ORM_ENOMEM;
    req->buf = buf;
    req->buf_cap = cap;
  }
  if (len > 0)
    memcpy(req->buf + req->buf_len, data, len);
  req->buf_len += len;
  return 0;
}

static void put_be(unsigned char *out, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; i--) {
    out[i] = (unsigned char)(v & 0xff);
    v >>= 8;
  }
}

static int encode_params(orm__request_t *req, const orm_param_t *params,
                         size_t n) {
  if (n > ORM_MAX_PARAMS)
    return ORM_E2BIG;
  if (n > 0 && params == NULL)
    return ORM_EINVAL;
  if (params_reserve(req, n + 1) != 0)
    return ORM_ENOMEM;
  req->buf_len = 0;
  req->nparams = (int)n;
  /* Offsets first: the buffer may move while it grows. */
  size_t *offsets = (size_t *)(void *)req->values;
  for (size_t i = 0; i < n; i++) {
    const orm_param_t *p = &params[i];
    unsigned char num[8];
    const void *src = num;
    size_t len = 0;
    Oid oid = 0;
    int fmt = 1;
    switch (p->kind) {
    case ORM_PARAM_NULL:
      offsets[i] = SIZE_MAX;
      req->types[i] = 0;
      req->lengths[i] = 0;
      req->formats[i] = 1;
      continue;
    case ORM_PARAM_BOOL:
      num[0] = p->v.b ? 1 : 0;
      len = 1, oid = 16;
      break;
    case ORM_PARAM_INT2:
      if (p->v.i < INT16_MIN || p->v.i > INT16_MAX)
        return ORM_ERANGE;
      put_be(num, (uint64_t)p->v.i, 2);
      len = 2, oid = 21;
      break;
    case ORM_PARAM_INT4:
      if (p->v.i < INT32_MIN || p->v.i > INT32_MAX)
        return ORM_ERANGE;
      put_be(num, (uint64_t)p->v.i, 4);
      len = 4, oid = 23;
      break;
    case ORM_PARAM_INT8:
      put_be(num, (uint64_t)p->v.i, 8);
      len = 8, oid = 20;
      break;
    case ORM_PARAM_FLOAT4: {
      float f = (float)p->v.f;
      uint32_t bits;
      memcpy(&bits, &f, 4);
      put_be(num, bits, 4);
      len = 4, oid = 700;
      break;
    }
    case ORM_PARAM_FLOAT8: {
      uint64_t bits;
      memcpy(&bits, &p->v.f, 8);
      put_be(num, bits, 8);
      len = 8, oid = 701;
      break;
    }
    case ORM_PARAM_TEXT:
    case ORM_PARAM_UNTYPED:
    case ORM_PARAM_BYTEA:
    case ORM_PARAM_BINARY:
      if (p->v.s.ptr == NULL && p->v.s.len > 0)
        return ORM_EINVAL;
      src = p->v.s.ptr;
      len = p->v.s.len;
      oid = p->kind == ORM_PARAM_TEXT    ? 25
            : p->kind == ORM_PARAM_BYTEA ? 17
            : p->kind == ORM_PARAM_BINARY ? (Oid)p->oid
                                          : 0;
      /* Text-format values are read up to a NUL by libpq. */
      fmt = p->kind == ORM_PARAM_UNTYPED ? 0 : 1;
      if (fmt == 0 && memchr(src, '\0', len) != NULL)
        return ORM_EINVAL;
      break;
    default:
      return ORM_EINVAL;
    }
    if (len > INT_MAX)
      return ORM_E2BIG;
    offsets[i] = req->buf_len;
    req->types[i] = oid;
    req->lengths[i] = (int)len;
    req->formats[i] = fmt;
    if (buf_append(req, src, len) != 0 ||
        (fmt == 0 && buf_append(req, "", 1) != 0))
      return ORM_ENOMEM;
  }
  return 0;
}

/* Turns the offsets left by encode_params (and the SQL copy at `sql_off`,
 * if any) into pointers once the buffer no longer moves. */
static void params_fix(orm__request_t *req, size_t sql_off) {
  size_t *offsets = (size_t *)(void *)req->values;
  for (int i = 0; i < req->nparams; i++)
    req->values[i] =
        offsets[i] == SIZE_MAX ? NULL : req->buf + offsets[i];
  if (sql_off != SIZE_MAX)
    req->sql = req->buf + sql_off;
}

/* ---- statements ---------------------------------------------------------- */

/* SQL keyword matching for the classifier below: ASCII case folding (the
 * locale must not change what SQL means) and word boundaries. */
static int is_word_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '_';
}

static int word_at(const char *p, const char *word) {
  size_t k = 0;
  while (word[k] != '\0' && (p[k] == word[k] || p[k] == word[k] + 32))
    k++;
  return word[k] == '\0' && !is_word_char(p[k]);
}

static int first_word_in(const char *sql, const char *const *words, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (word_at(sql, words[i]))
      return 1;
  return 0;
}

static int contains_word(const char *sql, const char *const *words, size_t n) {
  for (const char *p = sql; *p != '\0'; p++)
    if ((p == sql || !is_word_char(p[-1])) && first_word_in(p, words, n))
      return 1;
  return 0;
}

/* How a statement may share a pipeline segment (one implicit transaction)
 * with its neighbours. Decided once per statement from its text. */
static orm__seg_class_t classify(const char *sql) {
  /* Cannot run in, or must not share, an implicit transaction. */
  static const char *const own[] = {
      "BEGIN",   "START",    "COMMIT",     "END",    "ROLLBACK", "ABORT",
      "SAVEPOINT", "RELEASE", "PREPARE",   "VACUUM", "CLUSTER",  "REINDEX",
      "CREATE",  "DROP",     "ALTER",      "LOCK",   "SET",      "RESET",
      "DISCARD", "LISTEN",   "UNLISTEN",   "CHECKPOINT"};
  static const char *const reads[] = {"SELECT", "VALUES", "TABLE", "SHOW",
                                      "WITH"};
  /* Anything that writes or locks rows (FOR UPDATE / FOR SHARE). Erring
   * towards "writes" only costs a sync. */
  static const char *const locks[] = {"INSERT", "UPDATE", "DELETE", "MERGE",
                                      "SHARE"};
  for (;;) {
    while (*sql == ' ' || *sql == '\t' || *sql == '\n' || *sql == '\r' ||
           *sql == '(')
      sql++;
    if (sql[0] == '-' && sql[1] == '-') {
      while (*sql != '\0' && *sql != '\n')
        sql++;
    } else if (sql[0] == '/' && sql[1] == '*') {
      const char *end = strstr(sql + 2, "*/");
      sql = end != NULL ? end + 2 : sql + strlen(sql);
    } else {
      break;
    }
  }
  if (first_word_in(sql, own, sizeof own / sizeof own[0]))
    return ORM_SEG_OWN;
  if (first_word_in(sql, reads, sizeof reads / sizeof reads[0]) &&
      !contains_word(sql, locks, sizeof locks / sizeof locks[0]))
    return ORM_SEG_READ;
  return ORM_SEG_WRITE;
}

/* The highest $N placeholder in `sql`, outside string literals, quoted
 * identifiers, dollar-quoted bodies and comments; -1 if the text ends
 * inside one of those (then the server judges). */
int orm__sql_placeholders(const char *sql) {
  int max = 0;
  const char *p = sql;
  while (*p != '\0') {
    char c = *p;
    if (c == '\'' || c == '"') {
      /* E'...' strings take backslash escapes; '' and "" are doubled. */
      int escapes = c == '\'' && p > sql && (p[-1] == 'E' || p[-1] == 'e') &&
                    (p - 1 == sql || !is_word_char(p[-2]));
      for (p++;; p++) {
        if (*p == '\0')
          return -1;
        if (escapes && *p == '\\' && p[1] != '\0') {
          p++;
        } else if (*p == c) {
          if (p[1] != c)
            break;
          p++;
        }
      }
      p++;
    } else if (c == '-' && p[1] == '-') {
      while (*p != '\0' && *p != '\n')
        p++;
    } else if (c == '/' && p[1] == '*') {
      int depth = 1; /* PostgreSQL's block comments nest */
      for (p += 2; depth > 0; p++) {
        if (*p == '\0')
          return -1;
        if (p[0] == '/' && p[1] == '*')
          depth++, p++;
        else if (p[0] == '*' && p[1] == '/')
          depth--, p++;
      }
    } else if (c == '$' && p > sql && is_word_char(p[-1])) {
      p++; /* inside an identifier such as a$1 */
    } else if (c == '$' && p[1] >= '0' && p[1] <= '9') {
      long n = 0;
      for (p++; *p >= '0' && *p <= '9'; p++)
        if (n <= 100000)
          n = n * 10 + (*p - '0');
      if (n > max)
        max = n > INT_MAX ? INT_MAX : (int)n;
    } else if (c == '$') {
      /* $tag$ ... $tag$, the tag possibly empty. */
      const char *t = p + 1;
      while (is_word_char(*t) && !(t == p + 1 && *t >= '0' && *t <= '9'))
        t++;
      if (*t != '$') {
        p++;
        continue;
      }
      size_t taglen = (size_t)(t - p) + 1;
      const char *end;
      for (end = t + 1; *end != '\0'; end++)
        if (*end == '$' && strncmp(end, p, taglen) == 0)
          break;
      if (*end == '\0')
        return -1;
      p = end + taglen;
    } else {
      p++;
    }
  }
  return max;
}

/* Every statement a model sends goes through here, so the SQL is hashed
 * eight bytes at a time (a byte-wise loop was the pool's hottest line). The
 * multiply carries low bits up only: folding the high half back down after
 * each step lets every byte reach the bucket index in the low bits. */
static uint64_t stmt_hash(const char *sql, size_t len, const Oid *types,
                          int n) {
  const uint64_t k = 0x9E3779B97F4A7C15ULL;
  uint64_t h = len * k;
  size_t i = 0;
  for (; i + 8 <= len; i += 8) {
    uint64_t w;
    memcpy(&w, sql + i, 8);
    h = (h ^ w) * k;
    h ^= h >> 32;
  }
  uint64_t tail = 0;
  memcpy(&tail, sql + i, len - i);
  h = (h ^ tail) * k;
  h ^= h >> 32;
  for (int j = 0; j < n; j++) {
    h = (h ^ types[j]) * k;
    h ^= h >> 32;
  }
  return h;
}

orm__stmt_t *orm__pool_intern(orm_pool_t *pool, const char *sql,
                              const Oid *types, int n, int *err) {
  *err = 0;
  size_t sql_len = strlen(sql);
  uint64_t h = stmt_hash(sql, sql_len, types, n);
  if (pool->nbuckets > 0) {
    for (orm__stmt_t *s = pool->buckets[h & (pool->nbuckets - 1)]; s != NULL;
         s = s->next_in_bucket)
      if (s->hash == h && s->sql_len == sql_len && s->nparams == n &&
          memcmp(s->types, types, (size_t)n * sizeof(Oid)) == 0 &&
          memcmp(s->sql, sql, sql_len) == 0)
        return s;
  }
  if (pool->nstmts >= ORM_STMTS_MAX)
    return NULL; /* run it unnamed: SQL text without end must not grow us */
  if (pool->nstmts >= pool->nbuckets) {
    size_t nb = pool->nbuckets ? pool->nbuckets * 2 : 64;
    orm__stmt_t **buckets = orm__calloc(nb, sizeof *buckets);
    if (buckets == NULL) {
      *err = ORM_ENOMEM;
      return NULL;
    }
    for (size_t i = 0; i < pool->nbuckets; i++) {
      orm__stmt_t *s = pool->buckets[i];
      while (s != NULL) {
        orm__stmt_t *next = s->next_in_bucket;
        s->next_in_bucket = buckets[s->hash & (nb - 1)];
        buckets[s->hash & (nb - 1)] = s;
        s = next;
      }
    }
    orm__free(pool->buckets);
    pool->buckets = buckets;
    pool->nbuckets = nb;
  }
  orm__stmt_t *s = orm__malloc(sizeof *s + sql_len + 1);
  Oid *copy = orm__reallocarray(NULL, (size_t)n + 1, sizeof(Oid));
  if (s == NULL || copy == NULL) {
    orm__free(s);
    orm__free(copy);
    *err = ORM_ENOMEM;
    return NULL;
  }
  memcpy(s->sql, sql, sql_len + 1);
  s->sql_len = sql_len;
  memcpy(copy, types, (size_t)n * sizeof(Oid));
  s->types = copy;
  s->nparams = n;
  s->hash = h;
  s->seg = classify(sql);
  s->placeholders = orm__sql_placeholders(sql);
  s->id = pool->nstmts++;
  s->gen = 0;
  snprintf(s->name, sizeof s->name, "u%u", (unsigned)s->id);
  s->next_in_bucket = pool->buckets[h & (pool->nbuckets - 1)];
  pool->buckets[h & (pool->nbuckets - 1)] = s;
  return s;
}

void orm__stmt_bump(orm__stmt_t *stmt) {
  stmt->gen++;
  snprintf(stmt->name, sizeof stmt->name, "u%u_%u", (unsigned)stmt->id,
           (unsigned)stmt->gen);
}

/* The statement `hint` remembers, if its parameter types are these. */
static orm__stmt_t *hinted(const orm__stmt_hint_t *hint, const Oid *types,
                           int n) {
  orm__stmt_t *s = hint != NULL ? hint->stmt : NULL;
  return s != NULL && s->nparams == n &&
                 memcmp(s->types, types, (size_t)n * sizeof(Oid)) == 0
             ? s
             : NULL;
}

int orm__pool_prepare_request(orm__request_t *req, const char *sql,
                              const orm_param_t *params, size_t nparams,
                              int named, orm__stmt_hint_t *hint) {
  int rc = encode_params(req, params, nparams);
  if (rc != 0)
    return rc;
  size_t sql_off = SIZE_MAX;
  if (named && (req->stmt = hinted(hint, req->types, req->nparams)) == NULL) {
    req->stmt = orm__pool_intern(req->pool, sql, req->types, req->nparams, &rc);
    if (hint != NULL && req->stmt != NULL)
      hint->stmt = req->stmt;
  }
  if (rc != 0)
    return rc;
  /* A parameter that no placeholder uses is a caller's mistake the server
   * would not report; one missing it reports as a protocol error. */
  int placeholders = req->stmt != NULL ? req->stmt->placeholders
                                       : orm__sql_placeholders(sql);
  if (placeholders >= 0 && placeholders != req->nparams)
    return ORM_EINVAL;
  if (req->stmt != NULL) {
    req->sql = req->stmt->sql;
  } else {
    sql_off = req->buf_len;
    if (buf_append(req, sql, strlen(sql) + 1) != 0)
      return ORM_ENOMEM;
  }
  params_fix(req, sql_off);
  req->seg = req->stmt != NULL ? req->stmt->seg : classify(sql);
  req->writes = req->seg != ORM_SEG_READ;
  return 0;
}

/* ---- queue and dispatch -------------------------------------------------- */

int orm__pool_enqueue(orm_pool_t *pool, orm__request_t *req) {
  if (pool->queued >= pool->cfg.queue_max)
    return ORM_EQUEUEFULL;
  if (orm__future_owner_deadline(&req->future, pool->cfg.acquire_timeout_ms) !=
      0)
    return ORM_ENOMEM;
  req->state = REQ_QUEUED;
  orm__list_push_back(&pool->queue, &req->link);
  pool->queued++;
  orm__pool_kick(pool);
  return 0;
}

void orm__pool_resend(orm_pool_t *pool, orm__request_t *req) {
  /* Ahead of newer requests: it was accepted first. Order among resends
   * of one segment is kept by the caller inserting them in reverse. */
  req->state = REQ_QUEUED;
  orm__list_push_front(&pool->queue, &req->link);
  pool->queued++;
  orm__pool_kick(pool);
}

static orm__conn_t *new_conn(orm_pool_t *pool) {
  orm__conn_t *conn = orm__conn_new(pool);
  if (conn == NULL)
    return NULL;
  orm__conn_start(conn);
  return conn;
}

static int health_due(orm_pool_t *pool, orm__conn_t *conn, uint64_t now) {
  return pool->cfg.health_check_ms > 0 && conn->in_flight == 0 &&
         now - conn->idle_since >= pool->cfg.health_check_ms;
}

/* The ready connection with the fewest requests in flight and room for one
 * more; `for_begin`: BEGIN, which pins it, avoids one whose cancel guard
 * is up (a stray cancel would abort the new transaction). BEGIN may follow
 * work in flight, another transaction's COMMIT too: transactions pipeline
 * one after the other on a connection. */
static orm__conn_t *pick(orm_pool_t *pool, int for_begin, int *all_busy) {
  orm__conn_t *best = NULL;
  uint64_t now = uv_now(pool->loop);
  orm__link_t *l = pool->ready.next;
  *all_busy = 1;
  while (l != &pool->ready) {
    orm__conn_t *conn = ORM_CONTAINER_OF(l, orm__conn_t, link);
    l = l->next;
    if (conn->in_flight == 0 && health_due(pool, conn, now)) {
      /* Idle for long: prove it alive before trusting it again. */
      orm__list_remove(&conn->link);
      orm__list_push_back(&pool->connecting, &conn->link);
      orm__conn_check(conn);
      continue;
    }
    if (conn->in_flight == 0)
      *all_busy = 0;
    if (conn->in_flight >= orm__conn_capacity(conn) ||
        (for_begin && now < conn->cancel_guard_until))
      continue;
    if (best == NULL || conn->in_flight < best->in_flight)
      best = conn;
    if (best->in_flight == 0)
      break;
  }
  return best;
}

static void fail_queue(orm_pool_t *pool, int code, const char *why,
                       int defer) {
  while (!orm__list_empty(&pool->queue)) {
    orm__request_t *req =
        ORM_CONTAINER_OF(pool->queue.next, orm__request_t, link);
    orm__list_remove(&req->link);
    pool->queued--;
    if (why != NULL)
      orm__future_set_message(&req->future, "%s", why);
    complete(req, code, defer);
  }
}

void orm__pool_dispatch(orm_pool_t *pool) {
  if (pool->closing)
    return;
  while (!orm__list_empty(&pool->queue)) {
    orm__request_t *req =
        ORM_CONTAINER_OF(pool->queue.next, orm__request_t, link);
    int all_busy;
    orm__conn_t *conn = pick(pool, req->kind == REQ_BEGIN, &all_busy);
    if (all_busy && pool->nconns < pool->cfg.max_conns &&
        orm__list_empty(&pool->connecting) && orm__list_empty(&pool->broken))
      new_conn(pool);
    if (conn == NULL)
      break;
    orm__list_remove(&req->link);
    pool->queued--;
    if (req->kind == REQ_BEGIN) {
      orm__list_remove(&conn->link);
      orm__list_push_back(&pool->pinned, &conn->link);
      conn->state = CONN_PINNED;
      conn->tx = req->tx;
      req->tx->conn = conn;
    }
    int rc = orm__conn_send(conn, req);
    if (rc == ORM_ENOMEM) {
      if (req->kind == REQ_BEGIN)
        orm__tx_unpin(req->tx);
      complete(req, ORM_ENOMEM, 0);
      continue;
    }
    if (rc != 0) {
      if (req->state == REQ_QUEUED) {
        /* Never sent: BEGIN goes back to the queue with its transaction
         * unharmed, rather than failing it with the connection. */
        if (req->kind == REQ_BEGIN) {
          conn->tx = NULL;
          req->tx->conn = NULL;
        }
        orm__list_push_front(&pool->queue, &req->link);
        pool->queued++;
      }
      orm__pool_conn_failed(pool, conn, 1, 0);
      continue;
    }
    /* Sent: the acquire deadline gives way to the statement's. Without
     * memory for the heap it runs untimed rather than failing. Nobody
     * waits for the BEGIN of orm_tx_begin(): its statements have their
     * own deadlines, and it must not be abandoned under them. */
    orm__future_owner_deadline(&req->future,
                               req->kind == REQ_BEGIN && req->tx->caller
                                   ? 0
                                   : pool->cfg.statement_timeout_ms);
  }
}

/* Flushes each connection that got statements this turn, with one sync. */
static void sync_all(orm__link_t *list) {
  orm__link_t *l = list->next;
  while (l != list) {
    orm__conn_t *conn = ORM_CONTAINER_OF(l, orm__conn_t, link);
    l = l->next;
    if (conn->dirty)
      orm__conn_sync(conn);
  }
}

static void finish_close(orm_pool_t *pool);

static void on_work(orm__sched_t *sched) {
  orm_pool_t *pool = ORM_CONTAINER_OF(sched, orm_pool_t, sched);
  if (pool->closing) {
    finish_close(pool);
    return;
  }
  if (pool->notices_head != NULL) {
    orm__notices_deliver(pool);
    if (pool->closing)
      return; /* closed from on_notice: its own turn comes next */
  }
  orm__pool_dispatch(pool);
  orm__tx_pump_all(pool);
  sync_all(&pool->ready);
  sync_all(&pool->pinned);
}

/* ---- connection life cycle ----------------------------------------------- */

void orm__pool_conn_ready(orm_pool_t *pool, orm__conn_t *conn) {
  uint64_t now = uv_now(pool->loop);
  if (conn->state == CONN_CONNECTING) {
    pool->stats.connects++;
    if (conn->ever_connected)
      pool->stats.reconnects++;
    conn->ever_connected = 1;
  }
  uv_timer_stop(&conn->timer);
  conn->state = CONN_READY;
  conn->failures = 0;
  conn->idle_since = now;
  orm__list_remove(&conn->link);
  orm__list_push_back(&pool->ready, &conn->link);
  pool->down = 0;
  orm__pool_kick(pool);
}

static uint64_t next_random(orm_pool_t *pool) {
  /* xorshift64: jitter needs spread, not secrecy. */
  uint64_t x = pool->rng;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return pool->rng = x;
}

static uint64_t backoff_ms(orm_pool_t *pool, unsigned failures) {
  uint64_t delay = pool->cfg.reconnect_min_ms;
  for (unsigned i = 1; i < failures && delay < pool->cfg.reconnect_max_ms; i++)
    delay *= 2;
  if (delay > pool->cfg.reconnect_max_ms)
    delay = pool->cfg.reconnect_max_ms;
  /* Full jitter over the upper half: spread, but never immediate. */
  return delay / 2 + next_random(pool) % (delay / 2 + 1);
}

void orm__pool_conn_failed(orm_pool_t *pool, orm__conn_t *conn, int lost,
                           int have_reason) {
  if (!have_reason && conn->pg != NULL) {
    const char *msg = PQerrorMessage(conn->pg);
    if (msg != NULL && *msg != '\0') {
      snprintf(pool->last_error, sizeof pool->last_error, "%s", msg);
      size_t n = strlen(pool->last_error);
      while (n > 0 && (pool->last_error[n - 1] == '\n' ||
                       pool->last_error[n - 1] == ' '))
        pool->last_error[--n] = '\0';
    }
  }
  if (!have_reason && (conn->pg == NULL || pool->last_error[0] == '\0'))
    snprintf(pool->last_error, sizeof pool->last_error, "%s",
             orm_strerror(lost ? ORM_ECONNLOST : ORM_ECONNECT));
  int was_up = conn->state != CONN_CONNECTING;
  /* Closed first: nothing that completes below can hand the connection
   * back to the pool (a transaction's end) or fail it a second time. */
  orm__conn_shutdown(conn);
  orm__conn_fail_all(conn, ORM_ECONNLOST, pool->last_error, 0);
  if (conn->tx != NULL) {
    orm_tx_t *tx = conn->tx;
    conn->tx = NULL;
    orm__tx_conn_lost(tx);
  }
  if (!was_up) {
    pool->stats.connect_failures++;
    conn->failures++;
  }
  conn->state = CONN_BROKEN;
  orm__list_remove(&conn->link);
  orm__list_push_back(&pool->broken, &conn->link);
  if (pool->closing)
    return;
  /* A lost connection is retried at once; failed attempts back off. */
  uint64_t delay = conn->failures == 0 ? 0 : backoff_ms(pool, conn->failures);
  orm__conn_retry_in(conn, delay);
  if (!was_up && orm__list_empty(&pool->ready) &&
      orm__list_empty(&pool->pinned) && orm__list_empty(&pool->connecting)) {
    /* Nothing can serve the queue: fail it now rather than let it wait
     * out the outage; new requests fail fast until a connection is up. */
    pool->down = 1;
    fail_queue(pool, ORM_ECONNECT, pool->last_error, 0);
  }
  orm__pool_kick(pool);
}

/* ---- server-side cancel --------------------------------------------------- */

typedef struct {
  uv_work_t work;
  orm_pool_t *pool;
  int backend_pid;
  PGcancel *cancel;
  int ok;
  char err[256];
} cancel_job_t;

static void cancel_work(uv_work_t *work) {
  cancel_job_t *job = work->data;
  /* PQcancel blocks on a connection of its own: thread pool only. */
  job->ok = PQcancel(job->cancel, job->err, sizeof job->err);
}

static void cancel_after(uv_work_t *work, int status) {
  cancel_job_t *job = work->data;
  orm_pool_t *pool = job->pool;
  int pid = job->backend_pid;
  PQfreeCancel(job->cancel);
  orm__free(job);
  pool->pending_cancels--;
  if (pool->closing) {
    orm__pool_kick(pool);
    return;
  }
  /* The thread pool may have run it late: the window in which a 57014 on
   * another statement counts as a stray starts again now that the cancel
   * has really gone out. */
  const orm__link_t *lists[] = {&pool->ready, &pool->pinned};
  for (size_t i = 0; i < 2; i++) {
    for (orm__link_t *l = lists[i]->next; l != lists[i]; l = l->next) {
      orm__conn_t *conn = ORM_CONTAINER_OF(l, orm__conn_t, link);
      if (conn->pg != NULL && PQbackendPID(conn->pg) == pid)
        conn->cancel_guard_until = uv_now(pool->loop) + ORM_CANCEL_GUARD_MS;
    }
  }
}

void orm__pool_cancel_on_server(orm_pool_t *pool, orm__conn_t *conn) {
  if (conn->pg == NULL)
    return;
  cancel_job_t *job = orm__malloc(sizeof *job);
  if (job == NULL)
    return; /* the result is discarded on arrival all the same */
  job->cancel = PQgetCancel(conn->pg);
  if (job->cancel == NULL) {
    orm__free(job);
    return;
  }
  job->pool = pool;
  job->backend_pid = PQbackendPID(conn->pg);
  job->work.data = job;
  if (uv_queue_work(pool->loop, &job->work, cancel_work, cancel_after) != 0) {
    PQfreeCancel(job->cancel);
    orm__free(job);
    return;
  }
  pool->pending_cancels++;
  conn->cancel_guard_until = uv_now(pool->loop) + ORM_CANCEL_GUARD_MS;
}

void orm__req_set_transform(orm__request_t *req, orm__transform_fn fn,
                            void *const *ctx) {
  req->transform = fn;
  for (int i = 0; i < ORM_SUBMIT_CTX; i++)
    req->tctx[i] = ctx != NULL ? ctx[i] : NULL;
}

void orm__pool_req_fail_deferred(orm__request_t *req, int code) {
  complete(req, code, 1);
}

void orm__pool_req_discard(orm__request_t *req) {
  req->state = REQ_DONE;
  orm__future_unref(&req->future);
}

/* ---- maintenance ---------------------------------------------------------- */

static void on_maint(uv_timer_t *timer) {
  orm_pool_t *pool = timer->data;
  if (pool->closing)
    return;
  uint64_t now = uv_now(pool->loop);
  /* Broken connections beyond the minimum go first: not worth retrying
   * while nobody waits, and never kept in place of a working one. */
  orm__link_t *l = pool->broken.next;
  while (l != &pool->broken && pool->nconns > pool->cfg.min_conns &&
         pool->queued == 0) {
    orm__conn_t *conn = ORM_CONTAINER_OF(l, orm__conn_t, link);
    l = l->next;
    orm__conn_destroy(conn);
  }
  l = pool->ready.next;
  while (l != &pool->ready) {
    orm__conn_t *conn = ORM_CONTAINER_OF(l, orm__conn_t, link);
    l = l->next;
    /* Idle means nothing in its slots and no answer held for a sync. */
    if (conn->slot_count > 0 || !orm__list_empty(&conn->held))
      continue;
    int too_old = pool->cfg.max_lifetime_ms > 0 &&
                  now - conn->created_at >= pool->cfg.max_lifetime_ms;
    int idle_extra = pool->cfg.idle_timeout_ms > 0 &&
                     pool->nconns > pool->cfg.min_conns &&
                     now - conn->idle_since >= pool->cfg.idle_timeout_ms;
    if (too_old || idle_extra)
      orm__conn_destroy(conn);
  }
  while (pool->nconns < pool->cfg.min_conns && new_conn(pool) != NULL)
    ;
  /* A BEGIN may be waiting out a connection's cancel guard. */
  if (pool->queued > 0)
    orm__pool_kick(pool);
}

/* ---- open, close, stats --------------------------------------------------- */

static int config_defaults(orm_pool_config_t *c) {
  if (c->max_conns == 0)
    c->max_conns = 4;
  if (c->min_conns == 0)
    c->min_conns = 1;
  if (c->min_conns > c->max_conns)
    return ORM_EINVAL;
  if (c->pipeline_depth == 0)
    c->pipeline_depth = 64;
  if (c->queue_max == 0)
    c->queue_max = 65536;
  if (c->connect_timeout_ms == 0)
    c->connect_timeout_ms = 10000;
  if (c->reconnect_min_ms == 0)
    c->reconnect_min_ms = 100;
  if (c->reconnect_max_ms == 0)
    c->reconnect_max_ms = 5000;
  if (c->reconnect_max_ms < c->reconnect_min_ms)
    return ORM_EINVAL;
  if (c->idle_timeout_ms == 0)
    c->idle_timeout_ms = 300000;
  if (c->health_check_ms == 0)
    c->health_check_ms = 30000;
  return 0;
}

static void pool_free(orm_pool_t *pool) {
  /* Transactions the caller never ended: their handles go with the pool. */
  while (!orm__list_empty(&pool->closed_txs))
    orm__tx_free_closed(
        ORM_CONTAINER_OF(pool->closed_txs.next, orm_tx_t, link));
  /* Futures the caller still holds outlive the pool, detached from it. */
  while (!orm__list_empty(&pool->all_reqs)) {
    orm__request_t *req =
        ORM_CONTAINER_OF(pool->all_reqs.next, orm__request_t, all);
    orm__list_remove(&req->all);
    if (req->state == REQ_FREE) {
      free_request(req);
    } else {
      req->pool = NULL;
      req->future.sched = NULL;
    }
  }
  for (size_t i = 0; i < pool->nbuckets; i++) {
    orm__stmt_t *s = pool->buckets[i];
    while (s != NULL) {
      orm__stmt_t *next = s->next_in_bucket;
      orm__free(s->types);
      orm__free(s);
      s = next;
    }
  }
  orm__free(pool->buckets);
  orm__free(pool->conninfo);
  if (pool->cache.free != NULL)
    pool->cache.free(pool->cache.data);
  orm__free(pool);
}

int orm_pool_open(orm_pool_t **out, uv_loop_t *loop,
                  const orm_pool_config_t *config) {
  if (out != NULL)
    *out = NULL;
  if (out == NULL || loop == NULL || config == NULL ||
      config->conninfo == NULL)
    return ORM_EINVAL;
  orm_pool_config_t cfg = *config;
  int rc = config_defaults(&cfg);
  if (rc != 0)
    return rc;
  /* Reject what libpq cannot parse now, not on every reconnect. */
  char *errmsg = NULL;
  PQconninfoOption *opts = PQconninfoParse(config->conninfo, &errmsg);
  if (opts == NULL) {
    int nomem = errmsg == NULL;
    PQfreemem(errmsg);
    return nomem ? ORM_ENOMEM : ORM_EINVAL;
  }
  PQconninfoFree(opts);

  orm_pool_t *pool = orm__calloc(1, sizeof *pool);
  if (pool == NULL)
    return ORM_ENOMEM;
  pool->conninfo = orm__strdup(config->conninfo);
  if (pool->conninfo == NULL) {
    orm__free(pool);
    return ORM_ENOMEM;
  }
  cfg.conninfo = pool->conninfo;
  pool->cfg = cfg;
  pool->loop = loop;
  pool->data = cfg.data;
  pool->rng = uv_hrtime() | 1;
  orm__list_init(&pool->queue);
  orm__list_init(&pool->free_reqs);
  orm__list_init(&pool->all_reqs);
  orm__list_init(&pool->connecting);
  orm__list_init(&pool->ready);
  orm__list_init(&pool->pinned);
  orm__list_init(&pool->broken);
  orm__list_init(&pool->txs);
  orm__list_init(&pool->closed_txs);
  /* Allocate everything that can fail before the first handle exists, so
   * that a failure leaves nothing behind on the loop. */
  orm__conn_t **conns = orm__calloc(cfg.min_conns, sizeof *conns);
  for (unsigned i = 0; conns != NULL && i < cfg.min_conns; i++) {
    conns[i] = orm__malloc(sizeof **conns);
    if (conns[i] == NULL) {
      while (i > 0)
        orm__free(conns[--i]);
      orm__free(conns);
      conns = NULL;
    }
  }
  if (conns == NULL) {
    pool_free(pool);
    return ORM_ENOMEM;
  }
  orm__sched_init(&pool->sched, loop, on_work); /* cannot fail */
  pool->handles_open = 2;
  uv_timer_init(loop, &pool->maint);
  pool->maint.data = pool;
  pool->handles_open++;
  uv_timer_start(&pool->maint, on_maint, ORM_MAINT_MS, ORM_MAINT_MS);
  /* The maintenance timer alone must not keep the loop running. */
  uv_unref((uv_handle_t *)&pool->maint);
  for (unsigned i = 0; i < cfg.min_conns; i++) {
    orm__conn_init(conns[i], pool);
    orm__conn_start(conns[i]);
  }
  orm__free(conns);
  *out = pool;
  return 0;
}

void *orm_pool_data(const orm_pool_t *pool) {
  return pool != NULL ? pool->data : NULL;
}

static void maybe_free(orm_pool_t *pool) {
  if (pool->handles_open != 0 || pool->pending_cancels != 0)
    return;
  orm_pool_close_cb cb = pool->close_cb;
  if (cb != NULL)
    cb(pool, pool->data);
  pool_free(pool);
}

static void on_handle_closed(uv_handle_t *handle) {
  orm_pool_t *pool = handle->data;
  pool->handles_open--;
  maybe_free(pool);
}

static void on_sched_closed(orm__sched_t *sched) {
  orm_pool_t *pool = ORM_CONTAINER_OF(sched, orm_pool_t, sched);
  pool->handles_open -= 2;
  maybe_free(pool);
}

static void destroy_all(orm__link_t *list) {
  while (!orm__list_empty(list))
    orm__conn_destroy(ORM_CONTAINER_OF(list->next, orm__conn_t, link));
}

/* Runs from the scheduler once the close call has returned and the
 * callbacks it caused have run. Called again as handles close. */
static void finish_close(orm_pool_t *pool) {
  if (pool->closing == 1) {
    pool->closing = 2;
    destroy_all(&pool->connecting);
    destroy_all(&pool->ready);
    destroy_all(&pool->pinned);
    destroy_all(&pool->broken);
    uv_close((uv_handle_t *)&pool->maint, on_handle_closed);
  }
  /* The scheduler goes last: it delivers until everything is done. */
  if (pool->closing == 2 && pool->handles_open == 2 &&
      pool->pending_cancels == 0 && pool->sched.deferred_head == NULL) {
    pool->closing = 3;
    orm__sched_close(&pool->sched, on_sched_closed);
  }
}

static void cancel_conns(orm_pool_t *pool, orm__link_t *list) {
  for (orm__link_t *l = list->next; l != list; l = l->next) {
    orm__conn_t *conn = ORM_CONTAINER_OF(l, orm__conn_t, link);
    if (conn->in_flight > 0)
      orm__pool_cancel_on_server(pool, conn);
    orm__conn_fail_all(conn, ORM_ECANCELED, "the pool was closed", 1);
  }
}

int orm_pool_close(orm_pool_t *pool, orm_pool_close_cb cb) {
  if (pool == NULL)
    return ORM_EINVAL;
  if (pool->closing)
    return ORM_ECLOSED;
  pool->closing = 1;
  pool->close_cb = cb;
  orm__notices_drop(pool);
  fail_queue(pool, ORM_ECANCELED, "the pool was closed", 1);
  while (!orm__list_empty(&pool->txs)) {
    orm_tx_t *tx = ORM_CONTAINER_OF(pool->txs.next, orm_tx_t, link);
    orm__tx_pool_closing(tx, 1);
  }
  cancel_conns(pool, &pool->connecting);
  cancel_conns(pool, &pool->ready);
  cancel_conns(pool, &pool->pinned);
  cancel_conns(pool, &pool->broken);
  orm__pool_kick(pool);
  return 0;
}

int orm_pool_stats(const orm_pool_t *pool, orm_pool_stats_t *stats) {
  if (pool == NULL || stats == NULL)
    return ORM_EINVAL;
  *stats = pool->stats;
  stats->conns_connecting = stats->conns_idle = stats->conns_busy = 0;
  stats->conns_in_tx = stats->conns_broken = 0;
  stats->in_flight = 0;
  const orm__link_t *lists[] = {&pool->connecting, &pool->ready,
                                &pool->pinned, &pool->broken};
  for (size_t i = 0; i < 4; i++) {
    for (const orm__link_t *l = lists[i]->next; l != lists[i]; l = l->next) {
      const orm__conn_t *conn = ORM_CONTAINER_OF(l, orm__conn_t, link);
      stats->in_flight += conn->in_flight;
      switch (conn->state) {
      case CONN_CONNECTING:
      case CONN_CHECKING:
        stats->conns_connecting++;
        break;
      case CONN_READY:
        if (conn->in_flight > 0)
          stats->conns_busy++;
        else
          stats->conns_idle++;
        break;
      case CONN_PINNED:
        stats->conns_in_tx++;
        break;
      default:
        stats->conns_broken++;
        break;
      }
    }
  }
  stats->queued = pool->queued;
  return 0;
}

/* ---- raw SQL -------------------------------------------------------------- */

/* Checks shared by every call that makes a request. */
int orm__pool_usable(const orm_pool_t *pool) {
  if (pool == NULL)
    return ORM_EINVAL;
  return pool->closing ? ORM_ECLOSED : 0;
}

orm__pool_cache_t *orm__pool_cache(orm_pool_t *pool) { return &pool->cache; }

int orm_query_async(orm_pool_t *pool, const char *sql,
                    const orm_param_t *params, size_t nparams,
                    orm_future_cb cb, void *data, orm_future_t **out) {
  return orm__pool_submit(pool, NULL, sql, NULL, params, nparams, NULL, NULL,
                          cb, data, out);
}

int orm__statement_args(const char *sql, const orm_param_t *params,
                        size_t nparams) {
  if (sql == NULL || (params == NULL && nparams > 0))
    return ORM_EINVAL;
  return nparams > ORM_MAX_PARAMS ? ORM_E2BIG : 0;
}

int orm__pool_submit(orm_pool_t *pool, orm_tx_t *tx, const char *sql,
                     orm__stmt_hint_t *hint, const orm_param_t *params,
                     size_t nparams, orm__transform_fn transform,
                     void *const *ctx, orm_future_cb cb, void *data,
                     orm_future_t **out) {
  if (tx != NULL)
    return orm__tx_submit(tx, sql, hint, params, nparams, transform, ctx, cb,
                          data, out);
  if (out != NULL)
    *out = NULL;
  int rc = orm__pool_usable(pool);
  if (rc == 0)
    rc = orm__statement_args(sql, params, nparams);
  if (rc != 0)
    return rc;
  if (pool->queued >= pool->cfg.queue_max)
    return ORM_EQUEUEFULL;
  orm__request_t *req = orm__pool_req_new(pool, REQ_QUERY, cb, data);
  if (req == NULL)
    return ORM_ENOMEM;
  orm__req_set_transform(req, transform, ctx);
  rc = orm__pool_prepare_request(req, sql, params, nparams,
                                 !pool->cfg.no_prepare, hint);
  if (rc == 0 && !pool->down)
    rc = orm__pool_enqueue(pool, req);
  if (rc != 0) {
    orm__pool_req_discard(req);
    return rc;
  }
  if (out != NULL) {
    orm__future_ref(&req->future);
    *out = &req->future;
  }
  if (pool->down) {
    orm__future_set_message(&req->future, "%s", pool->last_error);
    complete(req, ORM_ECONNECT, 1);
  }
  return 0;
}
