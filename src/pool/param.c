/* SPDX-License-Identifier: MIT */
/* A request's statement and parameters: a caller's values encoded in
 * binary into the request's own buffer (the caller's may go once the call
 * returns), or a model's, already encoded, taken over without a copy; and
 * the statement looked up or interned. */
#include <limits.h>
#include <string.h>

#include "base/alloc.h"
#include "base/wire.h"
#include "pool_int.h"

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

static int encode_params(orm__request_t *req, const orm_param_t *params,
                         size_t n) {
  if (n > ORM_MAX_PARAMS)
    return ORM_E2BIG;
  if (n > 0 && params == NULL)
    return ORM_EINVAL;
  if (params_reserve(req, n + 1) != 0)
    return ORM_ENOMEM;
  req->buf.len = 0;
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
      len = 1, oid = ORM__OID_BOOL;
      break;
    case ORM_PARAM_INT2:
      if (p->v.i < INT16_MIN || p->v.i > INT16_MAX)
        return ORM_ERANGE;
      orm__store_u16(num, (uint16_t)p->v.i);
      len = 2, oid = ORM__OID_INT2;
      break;
    case ORM_PARAM_INT4:
      if (p->v.i < INT32_MIN || p->v.i > INT32_MAX)
        return ORM_ERANGE;
      orm__store_u32(num, (uint32_t)p->v.i);
      len = 4, oid = ORM__OID_INT4;
      break;
    case ORM_PARAM_INT8:
      orm__store_u64(num, (uint64_t)p->v.i);
      len = 8, oid = ORM__OID_INT8;
      break;
    case ORM_PARAM_FLOAT4: {
      float f = (float)p->v.f;
      uint32_t bits;
      memcpy(&bits, &f, 4);
      orm__store_u32(num, bits);
      len = 4, oid = ORM__OID_FLOAT4;
      break;
    }
    case ORM_PARAM_FLOAT8: {
      uint64_t bits;
      memcpy(&bits, &p->v.f, 8);
      orm__store_u64(num, bits);
      len = 8, oid = ORM__OID_FLOAT8;
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
      oid = p->kind == ORM_PARAM_TEXT    ? ORM__OID_TEXT
            : p->kind == ORM_PARAM_BYTEA ? ORM__OID_BYTEA
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
    offsets[i] = req->buf.len;
    req->types[i] = oid;
    req->lengths[i] = (int)len;
    req->formats[i] = fmt;
    if (orm__buf_append(&req->buf, src, len) != 0 ||
        (fmt == 0 && orm__buf_append(&req->buf, "", 1) != 0))
      return ORM_ENOMEM;
  }
  return 0;
}

/* Takes values the layer above encoded: their bytes by swapping buffers,
 * their descriptions into libpq's arrays. */
static int take_encoded(orm__request_t *req, const orm__params_in_t *in) {
  size_t n = in->n;
  for (size_t i = 0; i < n; i++)
    if (in->items[i].v.s.len > INT_MAX) /* libpq's lengths are ints */
      return ORM_E2BIG;
  if (params_reserve(req, n + 1) != 0)
    return ORM_ENOMEM;
  orm__buf_t mine = req->buf;
  req->buf = *in->buf;
  *in->buf = mine;
  in->buf->len = 0;
  req->nparams = (int)n;
  size_t *offsets = (size_t *)(void *)req->values;
  for (size_t i = 0; i < n; i++) {
    const orm_param_t *p = &in->items[i];
    offsets[i] = in->offsets[i];
    req->types[i] = p->kind == ORM_PARAM_BINARY ? (Oid)p->oid : 0;
    req->lengths[i] = (int)p->v.s.len;
    req->formats[i] = p->kind != ORM_PARAM_UNTYPED;
  }
  return 0;
}

/* Turns the offsets left by encode_params (and the SQL copy at `sql_off`,
 * if any) into pointers once the buffer no longer moves. */
static void params_fix(orm__request_t *req, size_t sql_off) {
  _Static_assert(sizeof(size_t) == sizeof(char *),
                 "offsets are kept in the values array");
  size_t *offsets = (size_t *)(void *)req->values;
  /* Values that are all empty leave the buffer unallocated: they still
   * need a pointer, as libpq reads a NULL one as SQL NULL. */
  const char *base = req->buf.data != NULL ? req->buf.data : "";
  for (int i = 0; i < req->nparams; i++)
    req->values[i] = offsets[i] == SIZE_MAX ? NULL : base + offsets[i];
  if (sql_off != SIZE_MAX)
    req->sql = req->buf.data + sql_off;
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

orm__stmt_hint_t orm__hint_once;

int orm__pool_prepare_request(orm__request_t *req, const char *sql,
                              const orm__params_in_t *in, int named,
                              orm__stmt_hint_t *hint) {
  if (hint == &orm__hint_once) {
    named = 0;
    hint = NULL;
  }
  if (req->t_start != 0) { /* measured: the call is now */
    req->t_start = uv_hrtime();
    req->op = in != NULL ? in->op : NULL;
    req->internal = in != NULL && in->internal;
    req->table = in != NULL ? in->table : NULL;
  }
  int rc = in == NULL            ? encode_params(req, NULL, 0)
           : in->values != NULL || in->n == 0
               ? encode_params(req, in->values, in->n)
               : take_encoded(req, in);
  if (rc != 0)
    return rc;
  size_t sql_off = SIZE_MAX;
  if (named && (req->stmt = hinted(hint, req->types, req->nparams)) == NULL) {
    req->stmt = orm__stmts_intern(&req->pool->stmts, sql, req->types,
                                   req->nparams, &rc);
    if (hint != NULL && req->stmt != NULL)
      hint->stmt = req->stmt;
  }
  if (rc != 0)
    return rc;
  /* A parameter that no placeholder uses is a caller's mistake the server
   * would not report (too few, it reports itself: 08P01). Statements of
   * their own kind (CREATE FUNCTION, PREPARE, DO) may hold $N that are not
   * the statement's parameters, so they are left to the server. */
  orm__seg_class_t seg =
      req->stmt != NULL ? req->stmt->seg : orm__sql_classify(sql);
  int placeholders = req->stmt != NULL ? req->stmt->placeholders
                                       : orm__sql_placeholders(sql);
  if (seg != ORM_SEG_OWN && placeholders >= 0 &&
      placeholders < req->nparams)
    return ORM_EINVAL;
  if (req->stmt != NULL) {
    req->sql = req->stmt->sql;
  } else {
    sql_off = req->buf.len;
    if (orm__buf_append(&req->buf, sql, strlen(sql) + 1) != 0)
      return ORM_ENOMEM;
  }
  params_fix(req, sql_off);
  req->seg = seg;
  if (in != NULL && in->row_key > 0 && in->row_key <= req->nparams &&
      in->table != NULL) {
    req->row_key = (unsigned short)in->row_key;
    req->row_schema = in->schema;
    req->row_table = in->table;
  }
  req->writes = seg != ORM_SEG_READ;
  return 0;
}
