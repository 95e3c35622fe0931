/* SPDX-License-Identifier: MIT */
/* Typed getters over a query's result. An orm_result_t is libpq's PGresult
 * under an opaque name: no copy, no extra allocation per query. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "uvorm/pool.h"

#include "base/wire.h"

#define RES(r) ((const PGresult *)(const void *)(r))

void orm_result_free(orm_result_t *result) {
  PQclear((PGresult *)(void *)result);
}

int orm_result_nrows(const orm_result_t *r) {
  return r != NULL ? PQntuples(RES(r)) : 0;
}

int orm_result_ncols(const orm_result_t *r) {
  return r != NULL ? PQnfields(RES(r)) : 0;
}

int64_t orm_result_affected(const orm_result_t *r) {
  if (r == NULL)
    return 0;
  /* PQcmdTuples only reads, but is declared without const. */
  const char *n = PQcmdTuples((PGresult *)(uintptr_t)r);
  return n != NULL && *n != '\0' ? strtoll(n, NULL, 10) : 0;
}

/* libpq reports an index out of range through the result's notice hooks,
 * which point at the connection it came from: gone by the time a caller
 * reads a result it kept. Indexes are checked here, never by libpq. */
static int column_ok(const orm_result_t *r, int col) {
  return r != NULL && col >= 0 && col < PQnfields(RES(r));
}

const char *orm_result_name(const orm_result_t *r, int col) {
  return column_ok(r, col) ? PQfname(RES(r), col) : NULL;
}

int orm_result_column_index(const orm_result_t *r, const char *name) {
  if (r == NULL || name == NULL)
    return -1;
  /* Exact match: PQfnumber would fold case and parse quotes. */
  for (int i = 0; i < PQnfields(RES(r)); i++)
    if (strcmp(PQfname(RES(r), i), name) == 0)
      return i;
  return -1;
}

uint32_t orm_result_type(const orm_result_t *r, int col) {
  return column_ok(r, col) ? (uint32_t)PQftype(RES(r), col) : 0;
}

static int cell(const orm_result_t *r, int row, int col) {
  if (r == NULL || row < 0 || col < 0 || row >= PQntuples(RES(r)) ||
      col >= PQnfields(RES(r)))
    return ORM_ERANGE;
  if (PQgetisnull(RES(r), row, col))
    return ORM_ENOTFOUND;
  return 0;
}

bool orm_result_is_null(const orm_result_t *r, int row, int col) {
  return cell(r, row, col) == ORM_ENOTFOUND;
}

int orm_result_int(const orm_result_t *r, int row, int col, int64_t *out) {
  int rc = cell(r, row, col);
  if (rc != 0)
    return rc;
  Oid type = PQftype(RES(r), col);
  const unsigned char *v = (const unsigned char *)PQgetvalue(RES(r), row, col);
  int len = PQgetlength(RES(r), row, col);
  if (PQfformat(RES(r), col) == 0) {
    if (type != ORM__OID_INT2 && type != ORM__OID_INT4 && type != ORM__OID_INT8 &&
        type != ORM__OID_OID)
      return ORM_ETYPE;
    errno = 0;
    char *end;
    long long n = strtoll((const char *)v, &end, 10);
    if (errno != 0 || *end != '\0')
      return ORM_ETYPE;
    *out = n;
    return 0;
  }
  switch (type) {
  case ORM__OID_INT2:
    if (len != 2)
      return ORM_ETYPE;
    *out = orm__load_i16(v);
    return 0;
  case ORM__OID_INT4:
    if (len != 4)
      return ORM_ETYPE;
    *out = orm__load_i32(v);
    return 0;
  case ORM__OID_OID:
    if (len != 4)
      return ORM_ETYPE;
    *out = (int64_t)orm__load_u32(v);
    return 0;
  case ORM__OID_INT8:
    if (len != 8)
      return ORM_ETYPE;
    *out = orm__load_i64(v);
    return 0;
  default:
    return ORM_ETYPE;
  }
}

int orm_result_float(const orm_result_t *r, int row, int col, double *out) {
  int rc = cell(r, row, col);
  if (rc != 0)
    return rc;
  Oid type = PQftype(RES(r), col);
  const unsigned char *v = (const unsigned char *)PQgetvalue(RES(r), row, col);
  int len = PQgetlength(RES(r), row, col);
  if (type != ORM__OID_FLOAT4 && type != ORM__OID_FLOAT8)
    return ORM_ETYPE;
  if (PQfformat(RES(r), col) == 0) {
    char *end;
    *out = strtod((const char *)v, &end);
    return *end == '\0' ? 0 : ORM_ETYPE;
  }
  if (type == ORM__OID_FLOAT4 && len == 4) {
    uint32_t bits = orm__load_u32(v);
    float f;
    memcpy(&f, &bits, 4);
    *out = f;
    return 0;
  }
  if (type == ORM__OID_FLOAT8 && len == 8) {
    uint64_t bits = orm__load_u64(v);
    memcpy(out, &bits, 8);
    return 0;
  }
  return ORM_ETYPE;
}

int orm_result_bool(const orm_result_t *r, int row, int col, bool *out) {
  int rc = cell(r, row, col);
  if (rc != 0)
    return rc;
  if (PQftype(RES(r), col) != ORM__OID_BOOL)
    return ORM_ETYPE;
  const char *v = PQgetvalue(RES(r), row, col);
  if (PQfformat(RES(r), col) == 0)
    *out = v[0] == 't';
  else if (PQgetlength(RES(r), row, col) == 1)
    *out = v[0] != 0;
  else
    return ORM_ETYPE;
  return 0;
}

/* Types whose binary form is their text: everything text-like, and types
 * unknown here (enums have OIDs of their own). Numbers are not text. */
static int textual(Oid type) {
  switch (type) {
  case ORM__OID_BOOL:
  case ORM__OID_BYTEA:
  case ORM__OID_INT8:
  case ORM__OID_INT2:
  case ORM__OID_INT4:
  case ORM__OID_OID:
  case ORM__OID_FLOAT4:
  case ORM__OID_FLOAT8:
    return 0;
  case ORM__OID_TEXT:
  case ORM__OID_VARCHAR:
  case ORM__OID_BPCHAR:
  case ORM__OID_NAME:
  case ORM__OID_CHAR:
  case ORM__OID_JSON:
  case ORM__OID_UNKNOWN:
    return 1;
  default:
    return type >= 16384; /* user-defined: enums, domains over text */
  }
}

int orm_result_text(const orm_result_t *r, int row, int col, const char **out,
                    size_t *len) {
  int rc = cell(r, row, col);
  if (rc != 0)
    return rc;
  if (PQfformat(RES(r), col) != 0 && !textual(PQftype(RES(r), col)))
    return ORM_ETYPE;
  *out = PQgetvalue(RES(r), row, col);
  if (len != NULL)
    *len = (size_t)PQgetlength(RES(r), row, col);
  return 0;
}

int orm_result_bytes(const orm_result_t *r, int row, int col,
                     const uint8_t **out, size_t *len) {
  int rc = cell(r, row, col);
  if (rc != 0)
    return rc;
  *out = (const uint8_t *)PQgetvalue(RES(r), row, col);
  if (len != NULL)
    *len = (size_t)PQgetlength(RES(r), row, col);
  return 0;
}
