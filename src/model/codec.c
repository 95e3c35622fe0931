/* SPDX-License-Identifier: MIT */
#include <stdalign.h>
#include <string.h>

#include "uvorm/common.h"

#include "base/alloc.h"

#include "codec.h"

/* PostgreSQL counts time from 2000-01-01; the C side from 1970-01-01. */
#define PG_EPOCH_DAYS INT64_C(10957)
#define PG_EPOCH_USECS (PG_EPOCH_DAYS * INT64_C(86400000000))

/* Array header: ndim, has-null flag, element OID; per dimension: size and
 * lower bound. */
#define ARRAY_HEADER 12
#define ARRAY_DIM 8

/* The variable-length decoders stay out of line so that orm__codec_decode()
 * needs no stack frame for the fixed-size types it mostly handles. */
#if defined(__GNUC__)
#define ORM__NOINLINE __attribute__((noinline))
#else
#define ORM__NOINLINE
#endif

/* ---- type table -------------------------------------------------------- */

typedef struct {
  const char *name;
  size_t size;
  uint32_t param_oid;
  uint32_t array_oid; /* the array type of param_oid's type (text[] for
                         TEXT and ENUM); 0 where arrays are not built */
} type_info_t;

static const type_info_t type_info[ORM_T_COUNT_] = {
    [ORM_T_INT2] = {"int2", sizeof(int16_t), ORM__OID_INT2, ORM__OID_INT2_ARRAY},
    [ORM_T_INT4] = {"int4", sizeof(int32_t), ORM__OID_INT4, ORM__OID_INT4_ARRAY},
    [ORM_T_INT8] = {"int8", sizeof(int64_t), ORM__OID_INT8, ORM__OID_INT8_ARRAY},
    [ORM_T_FLOAT4] = {"float4", sizeof(float), ORM__OID_FLOAT4,
                      ORM__OID_FLOAT4_ARRAY},
    [ORM_T_FLOAT8] = {"float8", sizeof(double), ORM__OID_FLOAT8,
                      ORM__OID_FLOAT8_ARRAY},
    [ORM_T_BOOL] = {"bool", sizeof(bool), ORM__OID_BOOL, ORM__OID_BOOL_ARRAY},
    [ORM_T_TEXT] = {"text", sizeof(char *), 0, ORM__OID_TEXT_ARRAY},
    [ORM_T_ENUM] = {"enum", sizeof(char *), 0, ORM__OID_TEXT_ARRAY},
    [ORM_T_JSON] = {"json", sizeof(char *), ORM__OID_JSON, ORM__OID_JSON_ARRAY},
    [ORM_T_JSONB] = {"jsonb", sizeof(char *), ORM__OID_JSONB,
                     ORM__OID_JSONB_ARRAY},
    [ORM_T_BYTEA] = {"bytea", sizeof(orm_bytes_t), ORM__OID_BYTEA,
                     ORM__OID_BYTEA_ARRAY},
    [ORM_T_TIMESTAMP] = {"timestamp", sizeof(int64_t), ORM__OID_TIMESTAMP,
                         ORM__OID_TIMESTAMP_ARRAY},
    [ORM_T_TIMESTAMPTZ] = {"timestamptz", sizeof(int64_t), ORM__OID_TIMESTAMPTZ,
                           ORM__OID_TIMESTAMPTZ_ARRAY},
    [ORM_T_DATE] = {"date", sizeof(int32_t), ORM__OID_DATE, ORM__OID_DATE_ARRAY},
    [ORM_T_UUID] = {"uuid", sizeof(orm_uuid_t), ORM__OID_UUID,
                    ORM__OID_UUID_ARRAY},
    [ORM_T_NUMERIC] = {"numeric", sizeof(char *), ORM__OID_NUMERIC,
                       ORM__OID_NUMERIC_ARRAY},
    [ORM_T_INT_ARRAY] = {"int8[]", sizeof(orm_int_array_t), ORM__OID_INT8_ARRAY,
                         0},
    [ORM_T_TEXT_ARRAY] = {"text[]", sizeof(orm_text_array_t),
                          ORM__OID_TEXT_ARRAY, 0},
};

bool orm__codec_type_valid(orm_type_t type) {
  return type > 0 && type < ORM_T_COUNT_;
}

const char *orm__codec_type_name(orm_type_t type) {
  return orm__codec_type_valid(type) ? type_info[type].name : "?";
}

size_t orm__codec_field_size(orm_type_t type) {
  return orm__codec_type_valid(type) ? type_info[type].size : 0;
}

uint32_t orm__codec_param_oid(orm_type_t type) {
  return orm__codec_type_valid(type) ? type_info[type].param_oid : 0;
}

uint32_t orm__codec_elem_oid(orm_type_t type) {
  if (type == ORM_T_TEXT || type == ORM_T_ENUM)
    return ORM__OID_TEXT;
  return orm__codec_type_valid(type) && type_info[type].array_oid != 0
             ? type_info[type].param_oid
             : 0;
}

uint32_t orm__codec_array_oid(orm_type_t type) {
  return orm__codec_type_valid(type) ? type_info[type].array_oid : 0;
}

static bool is_text_oid(uint32_t oid) {
  return oid == ORM__OID_TEXT || oid == ORM__OID_VARCHAR ||
         oid == ORM__OID_BPCHAR || oid == ORM__OID_NAME;
}

/* Element width of an integer array, 0 for any other element type. */
static int int_elem_width(uint32_t oid) {
  switch (oid) {
  case ORM__OID_INT2:
    return 2;
  case ORM__OID_INT4:
    return 4;
  case ORM__OID_INT8:
    return 8;
  default:
    return 0;
  }
}

bool orm__codec_accepts(orm_type_t type, uint32_t oid) {
  switch (type) {
  case ORM_T_INT2:
    return oid == ORM__OID_INT2;
  case ORM_T_INT4:
    return oid == ORM__OID_INT4 || oid == ORM__OID_INT2;
  case ORM_T_INT8:
    return int_elem_width(oid) != 0;
  case ORM_T_FLOAT4:
    return oid == ORM__OID_FLOAT4;
  case ORM_T_FLOAT8:
    return oid == ORM__OID_FLOAT8 || oid == ORM__OID_FLOAT4;
  case ORM_T_BOOL:
    return oid == ORM__OID_BOOL;
  case ORM_T_TEXT:
    return is_text_oid(oid);
  case ORM_T_ENUM:
    return is_text_oid(oid) || oid >= ORM__OID_FIRST_USER;
  case ORM_T_JSON:
    return oid == ORM__OID_JSON;
  case ORM_T_JSONB:
    return oid == ORM__OID_JSONB;
  case ORM_T_BYTEA:
    return oid == ORM__OID_BYTEA;
  case ORM_T_TIMESTAMP:
    return oid == ORM__OID_TIMESTAMP;
  case ORM_T_TIMESTAMPTZ:
    return oid == ORM__OID_TIMESTAMPTZ;
  case ORM_T_DATE:
    return oid == ORM__OID_DATE;
  case ORM_T_UUID:
    return oid == ORM__OID_UUID;
  case ORM_T_NUMERIC:
    return oid == ORM__OID_NUMERIC;
  case ORM_T_INT_ARRAY:
    return oid == ORM__OID_INT2_ARRAY || oid == ORM__OID_INT4_ARRAY ||
           oid == ORM__OID_INT8_ARRAY;
  case ORM_T_TEXT_ARRAY:
    return oid == ORM__OID_TEXT_ARRAY || oid == ORM__OID_VARCHAR_ARRAY ||
           oid == ORM__OID_BPCHAR_ARRAY || oid == ORM__OID_NAME_ARRAY;
  default:
    return false;
  }
}

/* ---- arrays ------------------------------------------------------------ */

typedef struct {
  uint32_t elem_oid;
  size_t count;
  const char *p;
  const char *end;
} array_reader_t;

static int array_open(const char *wire, int len, array_reader_t *r) {
  if (len < ARRAY_HEADER)
    return ORM_ETYPE;
  int32_t ndim = orm__load_i32(wire);
  int32_t flags = orm__load_i32(wire + 4);
  r->elem_oid = orm__load_u32(wire + 8);
  r->end = wire + len;
  if (flags != 0 && flags != 1)
    return ORM_ETYPE;
  if (ndim == 0) {
    r->count = 0;
    r->p = wire + ARRAY_HEADER;
    return len == ARRAY_HEADER ? 0 : ORM_ETYPE;
  }
  if (ndim != 1 || len < ARRAY_HEADER + ARRAY_DIM)
    return ORM_ETYPE;
  int32_t dim = orm__load_i32(wire + ARRAY_HEADER);
  r->p = wire + ARRAY_HEADER + ARRAY_DIM;
  /* Every element takes at least its 4-byte length: this bounds the
   * allocation by the bytes actually received. */
  if (dim < 0 || (size_t)dim > (size_t)(r->end - r->p) / 4)
    return ORM_ETYPE;
  r->count = (size_t)dim;
  return 0;
}

/* The next element: *elem_len is -1 for NULL. */
static int array_next(array_reader_t *r, const char **elem, int32_t *elem_len) {
  if (r->end - r->p < 4)
    return ORM_ETYPE;
  int32_t n = orm__load_i32(r->p);
  r->p += 4;
  if (n < -1 || (n > 0 && n > r->end - r->p))
    return ORM_ETYPE;
  *elem = r->p;
  *elem_len = n;
  if (n > 0)
    r->p += n;
  return 0;
}

ORM__NOINLINE static int decode_int_array(const char *wire, int len,
                                          orm__arena_t *arena,
                                          orm_int_array_t *out) {
  array_reader_t r;
  int rc = array_open(wire, len, &r);
  if (rc != 0)
    return rc;
  int width = int_elem_width(r.elem_oid);
  if (width == 0)
    return ORM_ETYPE;
  int64_t *items = NULL;
  bool *nulls = NULL;
  if (r.count > 0) {
    items =
        orm__arena_alloc_array(arena, r.count, sizeof *items, alignof(int64_t));
    if (items == NULL)
      return ORM_ENOMEM;
  }
  for (size_t i = 0; i < r.count; i++) {
    const char *elem;
    int32_t n;
    rc = array_next(&r, &elem, &n);
    if (rc != 0)
      return rc;
    if (n == -1) {
      if (nulls == NULL) {
        nulls = orm__arena_alloc_array(arena, r.count, sizeof *nulls,
                                       alignof(bool));
        if (nulls == NULL)
          return ORM_ENOMEM;
        memset(nulls, 0, r.count * sizeof *nulls);
      }
      nulls[i] = true;
      items[i] = 0;
    } else if (n != width) {
      return ORM_ETYPE;
    } else {
      items[i] = width == 8   ? orm__load_i64(elem)
                 : width == 4 ? orm__load_i32(elem)
                              : orm__load_i16(elem);
    }
  }
  if (r.p != r.end)
    return ORM_ETYPE;
  out->items = items;
  out->nulls = nulls;
  out->len = r.count;
  return 0;
}

ORM__NOINLINE static int decode_text_array(const char *wire, int len,
                                           orm__arena_t *arena,
                                           orm_text_array_t *out) {
  array_reader_t r;
  int rc = array_open(wire, len, &r);
  if (rc != 0)
    return rc;
  if (!is_text_oid(r.elem_oid))
    return ORM_ETYPE;
  char **items = NULL;
  if (r.count > 0) {
    items =
        orm__arena_alloc_array(arena, r.count, sizeof *items, alignof(char *));
    if (items == NULL)
      return ORM_ENOMEM;
  }
  for (size_t i = 0; i < r.count; i++) {
    const char *elem;
    int32_t n;
    rc = array_next(&r, &elem, &n);
    if (rc != 0)
      return rc;
    if (n == -1) {
      items[i] = NULL;
      continue;
    }
    items[i] = orm__arena_strndup(arena, elem, (size_t)n);
    if (items[i] == NULL)
      return ORM_ENOMEM;
  }
  if (r.p != r.end)
    return ORM_ETYPE;
  out->items = items;
  out->len = r.count;
  return 0;
}

static int put_array_header(orm__buf_t *buf, size_t count, bool has_null,
                            uint32_t elem_oid) {
  int rc = orm__buf_reserve(buf, ARRAY_HEADER + ARRAY_DIM);
  if (rc != 0)
    return rc;
  orm__buf_put_u32(buf, count > 0 ? 1 : 0);
  orm__buf_put_u32(buf, has_null ? 1 : 0);
  orm__buf_put_u32(buf, elem_oid);
  if (count > 0) {
    orm__buf_put_u32(buf, (uint32_t)count);
    orm__buf_put_u32(buf, 1);
  }
  return 0;
}

static int encode_int_array(const orm_int_array_t *a, orm__buf_t *buf) {
  if (a->len > 0 && a->items == NULL)
    return ORM_EINVAL;
  if (a->len > INT32_MAX)
    return ORM_ERANGE;
  bool has_null = false;
  for (size_t i = 0; i < a->len && !has_null; i++)
    has_null = orm_int_array_is_null(a, i);
  int rc = put_array_header(buf, a->len, has_null, ORM__OID_INT8);
  if (rc != 0)
    return rc;
  if (a->len > (SIZE_MAX - buf->len) / 12)
    return ORM_ERANGE;
  rc = orm__buf_reserve(buf, a->len * 12);
  if (rc != 0)
    return rc;
  for (size_t i = 0; i < a->len; i++) {
    if (orm_int_array_is_null(a, i)) {
      orm__buf_put_u32(buf, UINT32_MAX);
    } else {
      orm__buf_put_u32(buf, 8);
      orm__buf_put_u64(buf, orm__bits_i64(a->items[i]));
    }
  }
  return 0;
}

static int encode_text_array(const orm_text_array_t *a, orm__buf_t *buf) {
  if (a->len > 0 && a->items == NULL)
    return ORM_EINVAL;
  if (a->len > INT32_MAX)
    return ORM_ERANGE;
  bool has_null = false;
  for (size_t i = 0; i < a->len && !has_null; i++)
    has_null = a->items[i] == NULL;
  int rc = put_array_header(buf, a->len, has_null, ORM__OID_TEXT);
  if (rc != 0)
    return rc;
  for (size_t i = 0; i < a->len; i++) {
    const char *item = a->items[i];
    size_t n = item != NULL ? strlen(item) : 0;
    if (n > INT32_MAX)
      return ORM_ERANGE;
    rc = orm__buf_reserve(buf, 4 + n);
    if (rc != 0)
      return rc;
    orm__buf_put_u32(buf, item != NULL ? (uint32_t)n : UINT32_MAX);
    if (n > 0) {
      memcpy(buf->data + buf->len, item, n);
      buf->len += n;
    }
  }
  return 0;
}

/* ---- decode ------------------------------------------------------------ */

ORM__NOINLINE static int decode_string(const char *wire, size_t len,
                                       orm__arena_t *arena, void *out) {
  char *s = orm__arena_strndup(arena, wire, len);
  if (s == NULL)
    return ORM_ENOMEM;
  *(char **)out = s;
  return 0;
}

ORM__NOINLINE static int decode_bytea(const char *wire, size_t len,
                                      orm__arena_t *arena, orm_bytes_t *out) {
  uint8_t *data = orm__arena_alloc(arena, len, 1);
  if (data == NULL)
    return ORM_ENOMEM;
  if (len > 0)
    memcpy(data, wire, len);
  out->data = data;
  out->len = len;
  return 0;
}

static int decode_timestamp(const char *wire, int len, int64_t *out) {
  if (len != 8)
    return ORM_ETYPE;
  int64_t v = orm__load_i64(wire);
  if (v != INT64_MAX && v != INT64_MIN) {
    /* Reaching INT64_MAX would read as infinity: reject that too. */
    if (v >= INT64_MAX - PG_EPOCH_USECS)
      return ORM_ERANGE;
    v += PG_EPOCH_USECS;
  }
  *out = v;
  return 0;
}

static int decode_date(const char *wire, int len, int32_t *out) {
  if (len != 4)
    return ORM_ETYPE;
  int32_t v = orm__load_i32(wire);
  if (v != INT32_MAX && v != INT32_MIN) {
    int64_t days = (int64_t)v + PG_EPOCH_DAYS;
    if (days >= INT32_MAX)
      return ORM_ERANGE;
    v = (int32_t)days;
  }
  *out = v;
  return 0;
}

static bool needs_arena(orm_type_t type) {
  switch (type) {
  case ORM_T_TEXT:
  case ORM_T_ENUM:
  case ORM_T_JSON:
  case ORM_T_JSONB:
  case ORM_T_BYTEA:
  case ORM_T_NUMERIC:
  case ORM_T_INT_ARRAY:
  case ORM_T_TEXT_ARRAY:
    return true;
  default:
    return false;
  }
}

int orm__codec_decode(orm_type_t type, const char *wire, int len,
                      void *out_field, orm__arena_t *arena) {
  if (len < 0 || (len > 0 && wire == NULL) || out_field == NULL)
    return ORM_EINVAL;
  if (arena == NULL && needs_arena(type))
    return ORM_EINVAL;

  switch (type) {
  case ORM_T_INT8:
    if (len == 8)
      *(int64_t *)out_field = orm__load_i64(wire);
    else if (len == 4)
      *(int64_t *)out_field = orm__load_i32(wire);
    else if (len == 2)
      *(int64_t *)out_field = orm__load_i16(wire);
    else
      return ORM_ETYPE;
    return 0;
  case ORM_T_INT4:
    if (len == 4)
      *(int32_t *)out_field = orm__load_i32(wire);
    else if (len == 2)
      *(int32_t *)out_field = orm__load_i16(wire);
    else
      return ORM_ETYPE;
    return 0;
  case ORM_T_INT2:
    if (len != 2)
      return ORM_ETYPE;
    *(int16_t *)out_field = orm__load_i16(wire);
    return 0;
  case ORM_T_FLOAT8:
    if (len == 8) {
      uint64_t u = orm__load_u64(wire);
      double d;
      memcpy(&d, &u, sizeof d);
      *(double *)out_field = d;
    } else if (len == 4) {
      uint32_t u = orm__load_u32(wire);
      float f;
      memcpy(&f, &u, sizeof f);
      *(double *)out_field = f;
    } else {
      return ORM_ETYPE;
    }
    return 0;
  case ORM_T_FLOAT4: {
    if (len != 4)
      return ORM_ETYPE;
    uint32_t u = orm__load_u32(wire);
    float f;
    memcpy(&f, &u, sizeof f);
    *(float *)out_field = f;
    return 0;
  }
  case ORM_T_BOOL:
    if (len != 1)
      return ORM_ETYPE;
    /* The server's boolrecv reads any non-zero byte as true; so do we. */
    *(bool *)out_field = wire[0] != 0;
    return 0;
  case ORM_T_TEXT:
  case ORM_T_ENUM:
  case ORM_T_JSON:
    return decode_string(wire, (size_t)len, arena, out_field);
  case ORM_T_JSONB:
    /* jsonb's binary form is a format version (only 1 exists) and text. */
    if (len < 1 || wire[0] != 1)
      return ORM_ETYPE;
    return decode_string(wire + 1, (size_t)len - 1, arena, out_field);
  case ORM_T_BYTEA:
    return decode_bytea(wire, (size_t)len, arena, out_field);
  case ORM_T_TIMESTAMP:
  case ORM_T_TIMESTAMPTZ:
    return decode_timestamp(wire, len, out_field);
  case ORM_T_DATE:
    return decode_date(wire, len, out_field);
  case ORM_T_UUID:
    if (len != 16)
      return ORM_ETYPE;
    memcpy(out_field, wire, 16);
    return 0;
  case ORM_T_NUMERIC:
    return orm__numeric_decode(wire, len, arena, out_field);
  case ORM_T_INT_ARRAY:
    return decode_int_array(wire, len, arena, out_field);
  case ORM_T_TEXT_ARRAY:
    return decode_text_array(wire, len, arena, out_field);
  default:
    return ORM_EINVAL;
  }
}

/* ---- encode ------------------------------------------------------------ */

static int encode_string(const char *s, bool jsonb, orm__buf_t *buf) {
  if (s == NULL)
    return ORM_EINVAL;
  size_t n = strlen(s);
  if (n >= INT32_MAX)
    return ORM_ERANGE;
  int rc = orm__buf_reserve(buf, n + 1);
  if (rc != 0)
    return rc;
  if (jsonb)
    buf->data[buf->len++] = 1;
  memcpy(buf->data + buf->len, s, n);
  buf->len += n;
  return 0;
}

static int encode_fixed(orm_type_t type, const void *field, orm__buf_t *buf) {
  int rc = orm__buf_reserve(buf, 16);
  if (rc != 0)
    return rc;
  switch (type) {
  case ORM_T_INT2:
    orm__buf_put_u16(buf, orm__bits_i16(*(const int16_t *)field));
    return 0;
  case ORM_T_INT4:
    orm__buf_put_u32(buf, orm__bits_i32(*(const int32_t *)field));
    return 0;
  case ORM_T_INT8:
    orm__buf_put_u64(buf, orm__bits_i64(*(const int64_t *)field));
    return 0;
  case ORM_T_FLOAT4: {
    uint32_t u;
    memcpy(&u, field, sizeof u);
    orm__buf_put_u32(buf, u);
    return 0;
  }
  case ORM_T_FLOAT8: {
    uint64_t u;
    memcpy(&u, field, sizeof u);
    orm__buf_put_u64(buf, u);
    return 0;
  }
  case ORM_T_BOOL:
    buf->data[buf->len++] = *(const bool *)field ? 1 : 0;
    return 0;
  case ORM_T_TIMESTAMP:
  case ORM_T_TIMESTAMPTZ: {
    int64_t v = *(const int64_t *)field;
    if (v != INT64_MAX && v != INT64_MIN) {
      /* Reaching INT64_MIN would read as -infinity: reject that too. */
      if (v <= INT64_MIN + PG_EPOCH_USECS)
        return ORM_ERANGE;
      v -= PG_EPOCH_USECS;
    }
    orm__buf_put_u64(buf, orm__bits_i64(v));
    return 0;
  }
  case ORM_T_DATE: {
    int32_t v = *(const int32_t *)field;
    if (v != INT32_MAX && v != INT32_MIN) {
      int64_t days = (int64_t)v - PG_EPOCH_DAYS;
      if (days <= INT32_MIN)
        return ORM_ERANGE;
      v = (int32_t)days;
    }
    orm__buf_put_u32(buf, orm__bits_i32(v));
    return 0;
  }
  case ORM_T_UUID:
    memcpy(buf->data + buf->len, field, 16);
    buf->len += 16;
    return 0;
  default:
    return ORM_EINVAL;
  }
}

static int encode_value(orm_type_t type, const void *field, orm__buf_t *buf) {
  switch (type) {
  case ORM_T_TEXT:
  case ORM_T_ENUM:
  case ORM_T_JSON:
    return encode_string(*(char *const *)field, false, buf);
  case ORM_T_JSONB:
    return encode_string(*(char *const *)field, true, buf);
  case ORM_T_BYTEA: {
    const orm_bytes_t *bytes = field;
    if (bytes->data == NULL && bytes->len > 0)
      return ORM_EINVAL;
    if (bytes->len > INT32_MAX)
      return ORM_ERANGE;
    return orm__buf_append(buf, bytes->data, bytes->len);
  }
  case ORM_T_NUMERIC:
    return orm__numeric_encode(*(char *const *)field, buf);
  case ORM_T_INT_ARRAY:
    return encode_int_array(field, buf);
  case ORM_T_TEXT_ARRAY:
    return encode_text_array(field, buf);
  default:
    return encode_fixed(type, field, buf);
  }
}

int orm__codec_encode(orm_type_t type, const void *field, orm__buf_t *buf) {
  if (!orm__codec_type_valid(type) || field == NULL || buf == NULL)
    return ORM_EINVAL;
  size_t start = buf->len;
  int rc = encode_value(type, field, buf);
  if (rc != 0)
    buf->len = start;
  return rc;
}
