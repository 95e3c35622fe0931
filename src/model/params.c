/* SPDX-License-Identifier: MIT */
/* Statement parameters from model structs and from callers' values. */
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"

#include "model/model_int.h"
#include "model/params.h"

void orm__params_init(orm__params_t *p) { memset(p, 0, sizeof *p); }

void orm__params_reset(orm__params_t *p) {
  orm__buf_reset(&p->buf);
  p->len = 0;
}

void orm__params_free(orm__params_t *p) {
  orm__buf_free(&p->buf);
  orm__free(p->items);
  orm__free(p->offsets);
  orm__params_init(p);
}

const orm_param_t *orm__params_finish(orm__params_t *p) {
  if (p->len == 0)
    return NULL;
  for (size_t i = 0; i < p->len; i++) {
    orm_param_t *item = &p->items[i];
    if (item->kind == ORM_PARAM_NULL)
      continue;
    /* Empty values before anything was allocated still get a pointer: a
     * NULL value pointer reads as SQL NULL to libpq. */
    item->v.s.ptr = p->buf.data != NULL ? p->buf.data + p->offsets[i] : "";
  }
  return p->items;
}

/* Room for one more item. */
static int reserve_item(orm__params_t *p) {
  if (p->len < p->cap)
    return 0;
  if (p->len >= ORM_MAX_PARAMS)
    return ORM_E2BIG;
  size_t cap = p->cap != 0 ? p->cap * 2 : 16;
  if (cap > ORM_MAX_PARAMS)
    cap = ORM_MAX_PARAMS;
  orm_param_t *items = orm__reallocarray(p->items, cap, sizeof *items);
  if (items == NULL)
    return ORM_ENOMEM;
  p->items = items;
  size_t *offsets = orm__reallocarray(p->offsets, cap, sizeof *offsets);
  if (offsets == NULL)
    return ORM_ENOMEM;
  p->offsets = offsets;
  p->cap = cap;
  return 0;
}

/* Records the bytes from `start` to the end of the buffer as one value.
 * The caller reserved the item. */
static void push(orm__params_t *p, orm_param_kind_t kind, uint32_t oid,
                 size_t start) {
  orm_param_t *item = &p->items[p->len];
  memset(item, 0, sizeof *item);
  item->kind = kind;
  item->oid = oid;
  item->v.s.len = p->buf.len - start;
  p->offsets[p->len++] = start;
}

/* push() for text the server parses: libpq reads such a value up to a
 * NUL, so one follows it (not counted in its length). On failure the
 * buffer is back at `start`. */
static int push_untyped(orm__params_t *p, size_t start) {
  size_t end = p->buf.len;
  if (orm__buf_append(&p->buf, "", 1) != 0) {
    p->buf.len = start;
    return ORM_ENOMEM;
  }
  p->buf.len = end;
  push(p, ORM_PARAM_UNTYPED, 0, start);
  p->buf.len = end + 1;
  return 0;
}

static void push_null(orm__params_t *p) {
  memset(&p->items[p->len], 0, sizeof p->items[p->len]);
  p->items[p->len].kind = ORM_PARAM_NULL;
  p->offsets[p->len++] = SIZE_MAX;
}

/* ---- wire helpers ------------------------------------------------------- */

static int put_u32(orm__buf_t *buf, uint32_t v) {
  int rc = orm__buf_reserve(buf, 4);
  if (rc == 0)
    orm__buf_put_u32(buf, v);
  return rc;
}

/* A one-dimensional binary array: the header now, elements after it, and
 * array_end() patches the has-null flag. */
typedef struct {
  size_t flags_at;
  bool has_null;
} array_writer_t;

static int array_begin(orm__buf_t *buf, uint32_t elem_oid, size_t n,
                       array_writer_t *w) {
  if (n > INT32_MAX)
    return ORM_ERANGE;
  int rc = put_u32(buf, n > 0 ? 1 : 0); /* ndim: the empty array has none */
  w->flags_at = buf->len;
  w->has_null = false;
  if (rc == 0)
    rc = put_u32(buf, 0);
  if (rc == 0)
    rc = put_u32(buf, elem_oid);
  if (rc == 0 && n > 0)
    rc = put_u32(buf, (uint32_t)n);
  if (rc == 0 && n > 0)
    rc = put_u32(buf, 1); /* lower bound */
  return rc;
}

static int array_null(orm__buf_t *buf, array_writer_t *w) {
  w->has_null = true;
  return put_u32(buf, UINT32_MAX); /* length -1 */
}

/* Reserves an element's length word; array_elem_end() fills it in. */
static int array_elem_begin(orm__buf_t *buf, size_t *len_at) {
  *len_at = buf->len;
  return put_u32(buf, 0);
}

static int array_elem_end(orm__buf_t *buf, size_t len_at) {
  size_t len = buf->len - len_at - 4;
  if (len > INT32_MAX)
    return ORM_ERANGE;
  orm__store_u32(buf->data + len_at, (uint32_t)len);
  return 0;
}

static void array_end(orm__buf_t *buf, const array_writer_t *w) {
  if (w->has_null)
    orm__store_u32(buf->data + w->flags_at, 1);
}

/* ---- array literals ----------------------------------------------------- */

/* An array element in double quotes, " and \ escaped. */
static int put_quoted(orm__buf_t *buf, const char *s, size_t len) {
  int rc = orm__buf_append(buf, "\"", 1);
  size_t run = 0;
  for (size_t i = 0; rc == 0 && i < len; i++) {
    if (s[i] != '"' && s[i] != '\\')
      continue;
    rc = orm__buf_append(buf, s + run, i - run);
    if (rc == 0)
      rc = orm__buf_append(buf, "\\", 1);
    run = i;
  }
  if (rc == 0)
    rc = orm__buf_append(buf, s + run, len - run);
  if (rc == 0)
    rc = orm__buf_append(buf, "\"", 1);
  return rc;
}

/* An array field as the text of an array literal ('{1,NULL}'). */
static int put_array_literal(orm__buf_t *buf, orm_type_t type,
                             const void *field) {
  int rc = orm__buf_append(buf, "{", 1);
  if (type == ORM_T_INT_ARRAY) {
    const orm_int_array_t *a = field;
    if (a->len > 0 && a->items == NULL)
      return ORM_EINVAL;
    for (size_t i = 0; rc == 0 && i < a->len; i++) {
      char num[24];
      int n = orm_int_array_is_null(a, i)
                  ? snprintf(num, sizeof num, "NULL")
                  : snprintf(num, sizeof num, "%" PRId64, a->items[i]);
      if (i > 0)
        rc = orm__buf_append(buf, ",", 1);
      if (rc == 0)
        rc = orm__buf_append(buf, num, (size_t)n);
    }
  } else {
    const orm_text_array_t *a = field;
    if (a->len > 0 && a->items == NULL)
      return ORM_EINVAL;
    for (size_t i = 0; rc == 0 && i < a->len; i++) {
      if (i > 0)
        rc = orm__buf_append(buf, ",", 1);
      if (rc != 0)
        break;
      const char *s = a->items[i];
      rc = s == NULL ? orm__buf_append(buf, "NULL", 4)
                     : put_quoted(buf, s, strlen(s));
    }
  }
  if (rc == 0)
    rc = orm__buf_append(buf, "}", 1);
  return rc;
}

/* ---- fields of a struct ------------------------------------------------- */

static bool is_string_type(orm_type_t type) {
  return type == ORM_T_TEXT || type == ORM_T_ENUM || type == ORM_T_JSON ||
         type == ORM_T_JSONB || type == ORM_T_NUMERIC;
}

bool orm__field_is_null(const orm_model_t *model, const void *row, size_t f,
                        uint64_t nulls) {
  if ((nulls >> f) & 1u)
    return true;
  const orm_field_t *field = &model->fields[f];
  if (!is_string_type(field->type))
    return false;
  const char *s;
  memcpy(&s, (const char *)row + field->offset, sizeof s);
  return s == NULL;
}

static int add_field(orm__params_t *p, const orm_model_t *model,
                     const void *row, size_t f, uint64_t nulls) {
  int rc = reserve_item(p);
  if (rc != 0)
    return rc;
  if (orm__field_is_null(model, row, f, nulls)) {
    push_null(p);
    return 0;
  }
  const orm_field_t *field = &model->fields[f];
  size_t start = p->buf.len;
  rc = orm__codec_encode(field->type, (const char *)row + field->offset,
                         &p->buf);
  if (rc != 0)
    return rc;
  push(p, ORM_PARAM_BINARY, orm__codec_param_oid(field->type), start);
  return 0;
}

int orm__params_add_field(orm__params_t *p, const orm_model_t *model,
                          const void *row, size_t f) {
  if (p == NULL || model == NULL || row == NULL || f >= model->nfields)
    return ORM_EINVAL;
  return add_field(p, model, row, f, orm__row_nulls(model, row));
}

typedef struct {
  size_t len;
  size_t buf_len;
} mark_t;

static mark_t mark(const orm__params_t *p) {
  return (mark_t){p->len, p->buf.len};
}

static int rollback(orm__params_t *p, mark_t m, int rc) {
  p->len = m.len;
  p->buf.len = m.buf_len;
  return rc;
}

int orm__params_bind_row(orm__params_t *p, const orm_model_t *model,
                         const orm__sql_stmt_t *stmt, const void *row) {
  if (p == NULL || model == NULL || stmt == NULL || row == NULL)
    return ORM_EINVAL;
  mark_t m = mark(p);
  uint64_t nulls = orm__row_nulls(model, row);
  for (size_t f = 0; f < model->nfields; f++) {
    if (!((stmt->fields >> f) & 1u))
      continue;
    int rc = add_field(p, model, row, f, nulls);
    if (rc != 0)
      return rollback(p, m, rc);
  }
  if (stmt->key >= 0) {
    int rc = add_field(p, model, row, (size_t)stmt->key, nulls);
    if (rc != 0)
      return rollback(p, m, rc);
  }
  return 0;
}

/* One column of `nrows` structs as one binary array. */
static int add_column(orm__params_t *p, const orm_model_t *model, size_t f,
                      const char *rows, size_t nrows) {
  const orm_field_t *field = &model->fields[f];
  bool literal = field->type == ORM_T_INT_ARRAY ||
                 field->type == ORM_T_TEXT_ARRAY;
  uint32_t elem_oid = literal ? ORM__OID_TEXT : orm__codec_elem_oid(field->type);
  uint32_t array_oid =
      literal ? ORM__OID_TEXT_ARRAY : orm__codec_array_oid(field->type);
  int rc = reserve_item(p);
  if (rc != 0)
    return rc;
  size_t start = p->buf.len;
  array_writer_t w;
  rc = array_begin(&p->buf, elem_oid, nrows, &w);
  for (size_t i = 0; rc == 0 && i < nrows; i++) {
    const char *row = rows + i * model->struct_size;
    if (orm__field_is_null(model, row, f, orm__row_nulls(model, row))) {
      rc = array_null(&p->buf, &w);
      continue;
    }
    size_t len_at;
    rc = array_elem_begin(&p->buf, &len_at);
    if (rc == 0)
      rc = literal ? put_array_literal(&p->buf, field->type,
                                       row + field->offset)
                   : orm__codec_encode(field->type, row + field->offset,
                                       &p->buf);
    if (rc == 0)
      rc = array_elem_end(&p->buf, len_at);
  }
  if (rc != 0)
    return rc;
  array_end(&p->buf, &w);
  push(p, ORM_PARAM_BINARY, array_oid, start);
  return 0;
}

int orm__params_bind_rows(orm__params_t *p, const orm_model_t *model,
                          const orm__sql_stmt_t *stmt, const void *rows,
                          size_t nrows) {
  if (p == NULL || model == NULL || stmt == NULL ||
      (rows == NULL && nrows > 0))
    return ORM_EINVAL;
  if (nrows > INT32_MAX)
    return ORM_ERANGE;
  mark_t m = mark(p);
  for (size_t f = 0; f < model->nfields; f++) {
    if (!((stmt->fields >> f) & 1u))
      continue;
    int rc = add_column(p, model, f, rows, nrows);
    if (rc != 0)
      return rollback(p, m, rc);
  }
  return 0;
}

/* ---- callers' values ---------------------------------------------------- */

/* A caller's value converted to a field's C representation. */
typedef struct {
  union {
    int16_t i2;
    int32_t i4;
    int64_t i8;
    float f4;
    double f8;
    bool b;
    const char *s;
    orm_bytes_t bytes;
  } v;
  char num[48]; /* a numeric's digits */
} field_value_t;

static bool is_int_kind(orm_param_kind_t k) {
  return k == ORM_PARAM_INT2 || k == ORM_PARAM_INT4 || k == ORM_PARAM_INT8;
}

static bool is_float_kind(orm_param_kind_t k) {
  return k == ORM_PARAM_FLOAT4 || k == ORM_PARAM_FLOAT8;
}

static bool is_text_kind(orm_param_kind_t k) {
  return k == ORM_PARAM_TEXT || k == ORM_PARAM_UNTYPED;
}

static void format_double(char *out, size_t size, double d) {
  if (isnan(d))
    snprintf(out, size, "NaN");
  else if (isinf(d))
    snprintf(out, size, d > 0 ? "Infinity" : "-Infinity");
  else
    snprintf(out, size, "%.17g", d);
}

/* Converts a number, boolean or bytea value; text and pre-encoded values
 * are handled by the callers. */
static int convert(orm_type_t type, const orm_param_t *value,
                   field_value_t *out) {
  orm_param_kind_t k = value->kind;
  if (is_int_kind(k)) {
    int64_t i = value->v.i;
    switch (type) {
    case ORM_T_INT2:
      if (i < INT16_MIN || i > INT16_MAX)
        return ORM_ERANGE;
      out->v.i2 = (int16_t)i;
      return 0;
    case ORM_T_INT4:
    case ORM_T_DATE:
      if (i < INT32_MIN || i > INT32_MAX)
        return ORM_ERANGE;
      out->v.i4 = (int32_t)i;
      return 0;
    case ORM_T_INT8:
    case ORM_T_TIMESTAMP:
    case ORM_T_TIMESTAMPTZ:
      out->v.i8 = i;
      return 0;
    case ORM_T_FLOAT4:
      out->v.f4 = (float)i;
      return 0;
    case ORM_T_FLOAT8:
      out->v.f8 = (double)i;
      return 0;
    case ORM_T_NUMERIC:
      snprintf(out->num, sizeof out->num, "%" PRId64, i);
      out->v.s = out->num;
      return 0;
    default:
      return ORM_ETYPE;
    }
  }
  if (is_float_kind(k)) {
    double d = value->v.f;
    switch (type) {
    case ORM_T_FLOAT4:
      if (isfinite(d) && (d > FLT_MAX || d < -FLT_MAX))
        return ORM_ERANGE;
      out->v.f4 = (float)d;
      return 0;
    case ORM_T_FLOAT8:
      out->v.f8 = d;
      return 0;
    case ORM_T_NUMERIC:
      format_double(out->num, sizeof out->num, d);
      out->v.s = out->num;
      return 0;
    default:
      return ORM_ETYPE;
    }
  }
  if (k == ORM_PARAM_BOOL) {
    if (type != ORM_T_BOOL)
      return ORM_ETYPE;
    out->v.b = value->v.b;
    return 0;
  }
  if (k == ORM_PARAM_BYTEA) {
    if (type != ORM_T_BYTEA)
      return ORM_ETYPE;
    out->v.bytes.data = (uint8_t *)(uintptr_t)value->v.s.ptr;
    out->v.bytes.len = value->v.s.len;
    return 0;
  }
  return ORM_EINVAL;
}

static int check_bytes(const orm_param_t *value) {
  if (value->v.s.ptr == NULL && value->v.s.len > 0)
    return ORM_EINVAL;
  if (value->v.s.len > INT32_MAX)
    return ORM_ERANGE;
  return 0;
}

/* Text goes untyped: the server reads it with the column's type. */
static int check_text(const orm_param_t *value) {
  int rc = check_bytes(value);
  if (rc == 0 && value->v.s.len > 0 &&
      memchr(value->v.s.ptr, '\0', value->v.s.len) != NULL)
    rc = ORM_EINVAL;
  return rc;
}

/* Appends `value` for a field of `type` to the buffer; *kind and *oid say
 * how it travels. */
static int encode_value(orm__buf_t *buf, orm_type_t type,
                        const orm_param_t *value, orm_param_kind_t *kind,
                        uint32_t *oid) {
  int rc;
  if (value->kind == ORM_PARAM_BINARY) {
    if ((rc = check_bytes(value)) != 0)
      return rc;
    *kind = ORM_PARAM_BINARY;
    *oid = value->oid;
    return orm__buf_append(buf, value->v.s.ptr, value->v.s.len);
  }
  if (is_text_kind(value->kind)) {
    if ((rc = check_text(value)) != 0)
      return rc;
    *kind = ORM_PARAM_UNTYPED;
    *oid = 0;
    return orm__buf_append(buf, value->v.s.ptr, value->v.s.len);
  }
  field_value_t fv;
  if ((rc = convert(type, value, &fv)) != 0)
    return rc;
  *kind = ORM_PARAM_BINARY;
  *oid = orm__codec_param_oid(type);
  return orm__codec_encode(type, &fv.v, buf);
}

int orm__params_add_value(orm__params_t *p, const orm_model_t *model,
                          size_t f, const orm_param_t *value) {
  if (p == NULL || model == NULL || value == NULL || f >= model->nfields ||
      value->kind == ORM_PARAM_NULL)
    return ORM_EINVAL;
  int rc = reserve_item(p);
  if (rc != 0)
    return rc;
  size_t start = p->buf.len;
  orm_param_kind_t kind;
  uint32_t oid;
  rc = encode_value(&p->buf, model->fields[f].type, value, &kind, &oid);
  if (rc != 0) {
    p->buf.len = start;
    return rc;
  }
  if (kind == ORM_PARAM_UNTYPED)
    return push_untyped(p, start);
  push(p, kind, oid, start);
  return 0;
}

/* '{"a","b",NULL}' from text values. */
static int put_text_list(orm__buf_t *buf, const orm_param_t *values,
                         size_t n) {
  int rc = orm__buf_append(buf, "{", 1);
  for (size_t i = 0; rc == 0 && i < n; i++) {
    const orm_param_t *v = &values[i];
    if (i > 0 && (rc = orm__buf_append(buf, ",", 1)) != 0)
      break;
    if (v->kind == ORM_PARAM_NULL)
      rc = orm__buf_append(buf, "NULL", 4);
    else if (!is_text_kind(v->kind))
      rc = ORM_ETYPE;
    else if ((rc = check_text(v)) == 0)
      rc = put_quoted(buf, v->v.s.ptr, v->v.s.len);
  }
  if (rc == 0)
    rc = orm__buf_append(buf, "}", 1);
  return rc;
}

static int put_binary_list(orm__buf_t *buf, orm_type_t type,
                           const orm_param_t *values, size_t n) {
  uint32_t elem_oid = orm__codec_elem_oid(type);
  array_writer_t w;
  int rc = array_begin(buf, elem_oid, n, &w);
  for (size_t i = 0; rc == 0 && i < n; i++) {
    const orm_param_t *v = &values[i];
    if (v->kind == ORM_PARAM_NULL) {
      rc = array_null(buf, &w);
      continue;
    }
    size_t len_at;
    if ((rc = array_elem_begin(buf, &len_at)) != 0)
      break;
    if (v->kind == ORM_PARAM_BINARY) {
      rc = v->oid != elem_oid ? ORM_ETYPE : check_bytes(v);
      if (rc == 0)
        rc = orm__buf_append(buf, v->v.s.ptr, v->v.s.len);
    } else {
      field_value_t fv;
      rc = convert(type, v, &fv);
      if (rc == 0)
        rc = orm__codec_encode(type, &fv.v, buf);
    }
    if (rc == 0)
      rc = array_elem_end(buf, len_at);
  }
  if (rc == 0)
    array_end(buf, &w);
  return rc;
}

int orm__params_add_value_array(orm__params_t *p, const orm_model_t *model,
                                size_t f, const orm_param_t *values,
                                size_t n) {
  if (p == NULL || model == NULL || f >= model->nfields ||
      (values == NULL && n > 0))
    return ORM_EINVAL;
  if (n > INT32_MAX)
    return ORM_ERANGE;
  orm_type_t type = model->fields[f].type;
  if (type == ORM_T_INT_ARRAY || type == ORM_T_TEXT_ARRAY)
    return ORM_ETYPE;
  bool literal = type == ORM_T_TEXT || type == ORM_T_ENUM;
  for (size_t i = 0; !literal && i < n; i++)
    literal = is_text_kind(values[i].kind);
  int rc = reserve_item(p);
  if (rc != 0)
    return rc;
  size_t start = p->buf.len;
  rc = literal ? put_text_list(&p->buf, values, n)
               : put_binary_list(&p->buf, type, values, n);
  if (rc != 0) {
    p->buf.len = start;
    return rc;
  }
  if (literal)
    return push_untyped(p, start);
  push(p, ORM_PARAM_BINARY, orm__codec_array_oid(type), start);
  return 0;
}

int orm__params_add_int8(orm__params_t *p, int64_t v) {
  if (p == NULL)
    return ORM_EINVAL;
  int rc = reserve_item(p);
  if (rc != 0)
    return rc;
  size_t start = p->buf.len;
  rc = orm__codec_encode(ORM_T_INT8, &v, &p->buf);
  if (rc != 0)
    return rc;
  push(p, ORM_PARAM_BINARY, ORM__OID_INT8, start);
  return 0;
}
