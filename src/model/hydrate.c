/* Hydration: binary result rows decoded straight into model structs. */
#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "async/alloc.h"

#include "model/codec.h"
#include "model/hydrate.h"
#include "model/model_int.h"

/* The server type's name for messages; NULL if not a built-in we know. */
static const char *oid_name(uint32_t oid) {
  static const struct {
    uint32_t oid;
    const char *name;
  } names[] = {
      {ORM_OID_BOOL, "boolean"},       {ORM_OID_BYTEA, "bytea"},
      {ORM_OID_NAME, "name"},          {ORM_OID_INT8, "bigint"},
      {ORM_OID_INT2, "smallint"},      {ORM_OID_INT4, "integer"},
      {ORM_OID_TEXT, "text"},          {ORM_OID_JSON, "json"},
      {ORM_OID_FLOAT4, "real"},        {ORM_OID_FLOAT8, "double precision"},
      {ORM_OID_BPCHAR, "character"},   {ORM_OID_VARCHAR, "varchar"},
      {ORM_OID_DATE, "date"},          {ORM_OID_TIMESTAMP, "timestamp"},
      {ORM_OID_TIMESTAMPTZ, "timestamptz"}, {ORM_OID_NUMERIC, "numeric"},
      {ORM_OID_UUID, "uuid"},          {ORM_OID_JSONB, "jsonb"},
      {ORM_OID_INT2_ARRAY, "smallint[]"}, {ORM_OID_INT4_ARRAY, "integer[]"},
      {ORM_OID_INT8_ARRAY, "bigint[]"}, {ORM_OID_TEXT_ARRAY, "text[]"},
      {ORM_OID_VARCHAR_ARRAY, "varchar[]"}, {1083, "time"},
      {1266, "timetz"},                {1186, "interval"},
      {26, "oid"},                     {869, "inet"},
  };
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (names[i].oid == oid)
      return names[i].name;
  return NULL;
}

static int type_error(orm_model_error_t *err, const orm_field_t *field,
                      int f, int col, uint32_t oid) {
  const char *name = oid_name(oid);
  if (name != NULL)
    orm__model_error_set(err, ORM_ETYPE, f, col,
                         "column \"%s\": the server sends %s (OID %u), which "
                         "does not fit the model's %s field",
                         field->column, name, (unsigned)oid,
                         orm__codec_type_name(field->type));
  else
    orm__model_error_set(err, ORM_ETYPE, f, col,
                         "column \"%s\": the server sends type OID %u, which "
                         "does not fit the model's %s field",
                         field->column, (unsigned)oid,
                         orm__codec_type_name(field->type));
  return ORM_ETYPE;
}

int orm__hydrate_plan(orm__hydrate_plan_t *plan, const orm_model_t *model,
                      const PGresult *res, orm_model_error_t *err) {
  if (plan == NULL || model == NULL || res == NULL) {
    orm__model_error_set(err, ORM_EINVAL, -1, -1, "NULL argument");
    return ORM_EINVAL;
  }
  if (PQresultStatus(res) != PGRES_TUPLES_OK &&
      PQresultStatus(res) != PGRES_SINGLE_TUPLE) {
    orm__model_error_set(err, ORM_EINVAL, -1, -1,
                         "the result carries no rows (%s)",
                         PQresStatus(PQresultStatus(res)));
    return ORM_EINVAL;
  }
  int ncols = PQnfields(res);
  if (ncols > ORM_MODEL_MAX_FIELDS) {
    orm__model_error_set(err, ORM_EINVAL, -1, -1,
                         "the result has %d columns, more than %d", ncols,
                         ORM_MODEL_MAX_FIELDS);
    return ORM_EINVAL;
  }
  uint64_t filled = 0;
  for (int c = 0; c < ncols; c++) {
    const char *name = PQfname(res, c);
    int f = -1;
    /* The model's own select list matches position by position. */
    if ((size_t)c < model->nfields &&
        strcmp(model->fields[c].column, name) == 0)
      f = c;
    else
      f = orm_model_field(model, name);
    if (f < 0 || ((filled >> f) & 1u)) {
      orm__model_error_set(err, ORM_ENOCOLUMN, f < 0 ? -1 : f, c,
                           f < 0 ? "column \"%s\": no such field in the "
                                   "model of table \"%s\""
                                 : "column \"%s\" appears twice in the "
                                   "result for table \"%s\"",
                           name, model->table);
      return ORM_ENOCOLUMN;
    }
    const orm_field_t *field = &model->fields[f];
    if (PQfformat(res, c) != 1) {
      orm__model_error_set(err, ORM_ETYPE, f, c,
                           "column \"%s\" is in text format; models read "
                           "binary results", field->column);
      return ORM_ETYPE;
    }
    uint32_t oid = (uint32_t)PQftype(res, c);
    if (!orm__codec_accepts(field->type, oid))
      return type_error(err, field, f, c, oid);
    filled |= UINT64_C(1) << f;
    plan->cols[c].type = (uint32_t)field->type;
    plan->cols[c].field = (uint32_t)f;
    plan->cols[c].offset = field->offset;
  }
  plan->ncols = ncols;
  plan->missing = orm__model_all_fields(model) & ~filled;
  return 0;
}

static inline uint16_t load_u16(const char *p) {
  const unsigned char *u = (const unsigned char *)p;
  return (uint16_t)(u[0] << 8 | u[1]);
}

static inline uint32_t load_u32(const char *p) {
  const unsigned char *u = (const unsigned char *)p;
  return (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 |
         (uint32_t)u[3];
}

static inline uint64_t load_u64(const char *p) {
  return (uint64_t)load_u32(p) << 32 | load_u32(p + 4);
}

#if defined(__GNUC__)
#define ORM__UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define ORM__UNLIKELY(x) (x)
#endif

/* PostgreSQL's epoch (2000-01-01) in microseconds since the Unix epoch. */
#define PG_EPOCH_USECS INT64_C(946684800000000)

/* Decodes one non-NULL value. Fixed-size types and strings are inline; the
 * rest, and every value whose length is off (the codec then says why), go
 * through the codec. */
static inline int decode(orm_type_t type, const char *v, int len, char *dst,
                         orm__arena_t *arena) {
  switch (type) {
  case ORM_T_INT8:
  case ORM_T_FLOAT8:
    if (len != 8)
      break;
    {
      uint64_t u = load_u64(v);
      memcpy(dst, &u, sizeof u);
    }
    return 0;
  case ORM_T_INT4:
  case ORM_T_FLOAT4:
    if (len != 4)
      break;
    {
      uint32_t u = load_u32(v);
      memcpy(dst, &u, sizeof u);
    }
    return 0;
  case ORM_T_INT2:
    if (len != 2)
      break;
    {
      uint16_t u = load_u16(v);
      memcpy(dst, &u, sizeof u);
    }
    return 0;
  case ORM_T_BOOL:
    if (len != 1)
      break;
    *(bool *)(void *)dst = v[0] != 0;
    return 0;
  case ORM_T_TIMESTAMP:
  case ORM_T_TIMESTAMPTZ: {
    if (len != 8)
      break;
    int64_t t = (int64_t)load_u64(v);
    /* Infinities stay; finite values shift epochs unless that overflows
     * (the codec reports it). */
    if (t != INT64_MAX && t != INT64_MIN) {
      if (t >= INT64_MAX - PG_EPOCH_USECS)
        break;
      t += PG_EPOCH_USECS;
    }
    memcpy(dst, &t, sizeof t);
    return 0;
  }
  case ORM_T_TEXT:
  case ORM_T_ENUM:
  case ORM_T_JSON: {
    char *s = orm__arena_strndup_fast(arena, v, (size_t)len);
    if (s == NULL)
      return ORM_ENOMEM;
    memcpy(dst, &s, sizeof s);
    return 0;
  }
  default:
    break;
  }
  return orm__codec_decode(type, v, len, dst, arena);
}

static int value_error(orm_model_error_t *err, const orm_model_t *model,
                       int f, int col, int row, int rc) {
  if (rc == ORM_ENOMEM)
    orm__model_error_set(err, rc, f, col, "out of memory");
  else
    orm__model_error_set(err, rc, f, col,
                         "column \"%s\", row %d: %s", model->fields[f].column,
                         row, orm_strerror(rc));
  return rc;
}

/* Fills `count` zeroed structs from rows [first, first + count). */
static int fill_rows(const orm_model_t *model, const orm__hydrate_plan_t *plan,
                     const PGresult *res, int first, int count, char *data,
                     orm__arena_t *arena, orm_model_error_t *err) {
  /* The plan in locals: stores into the rows go through char pointers,
   * which could alias the plan and would force it to be re-read for every
   * value. */
  uint8_t types[ORM_MODEL_MAX_FIELDS];
  size_t offsets[ORM_MODEL_MAX_FIELDS];
  uint64_t bits[ORM_MODEL_MAX_FIELDS];
  int ncols = plan->ncols;
  for (int c = 0; c < ncols; c++) {
    types[c] = (uint8_t)plan->cols[c].type;
    offsets[c] = plan->cols[c].offset;
    bits[c] = UINT64_C(1) << plan->cols[c].field;
  }
  const size_t size = model->struct_size;
  const size_t nulls_at = model->nulls_offset;
  const uint64_t missing = plan->missing;
  for (int r = first; r < first + count; r++) {
    char *row = data + (size_t)(r - first) * size;
    uint64_t nulls = missing;
    for (int c = 0; c < ncols; c++) {
      int len = PQgetlength(res, r, c);
      /* PQgetlength() gives 0 for NULL: only then is PQgetisnull() asked. */
      if (len == 0 && PQgetisnull(res, r, c)) {
        nulls |= bits[c];
        continue;
      }
      int rc = decode((orm_type_t)types[c], PQgetvalue(res, r, c), len,
                      row + offsets[c], arena);
      if (ORM__UNLIKELY(rc != 0))
        return value_error(err, model, (int)plan->cols[c].field, c, r, rc);
    }
    memcpy(row + nulls_at, &nulls, sizeof nulls);
  }
  return 0;
}

/* The rows live right after the header, aligned for any struct. */
#define ROWS_HEADER                                                            \
  ((sizeof(struct orm_rows_s) + alignof(max_align_t) - 1) /                    \
   alignof(max_align_t) * alignof(max_align_t))

int orm__hydrate(orm_rows_t **out, const orm_model_t *model,
                 const PGresult *res, orm_model_error_t *err) {
  if (out == NULL) {
    orm__model_error_set(err, ORM_EINVAL, -1, -1, "NULL argument");
    return ORM_EINVAL;
  }
  *out = NULL;
  orm__hydrate_plan_t plan;
  int rc = orm__hydrate_plan(&plan, model, res, err);
  if (rc != 0)
    return rc;
  size_t count = (size_t)PQntuples(res);
  if (count > (SIZE_MAX - ROWS_HEADER) / model->struct_size) {
    orm__model_error_set(err, ORM_ENOMEM, -1, -1, "out of memory");
    return ORM_ENOMEM;
  }
  /* Zeroed: padding and NULL fields read as 0, never as stale bytes. */
  orm_rows_t *rows = orm__calloc(1, ROWS_HEADER + count * model->struct_size);
  if (rows == NULL) {
    orm__model_error_set(err, ORM_ENOMEM, -1, -1, "out of memory");
    return ORM_ENOMEM;
  }
  rows->model = model;
  rows->data = (char *)rows + ROWS_HEADER;
  rows->count = count;
  orm__arena_init(&rows->arena);
  rc = fill_rows(model, &plan, res, 0, (int)count, rows->data, &rows->arena,
                 err);
  if (rc != 0) {
    orm_rows_free(rows);
    return rc;
  }
  *out = rows;
  return 0;
}

int orm__hydrate_into(const orm_model_t *model, const PGresult *res, int row,
                      void *dst, uint64_t fields, orm__arena_t *arena,
                      orm_model_error_t *err) {
  if (dst == NULL || arena == NULL) {
    orm__model_error_set(err, ORM_EINVAL, -1, -1, "NULL argument");
    return ORM_EINVAL;
  }
  orm__hydrate_plan_t plan;
  int rc = orm__hydrate_plan(&plan, model, res, err);
  if (rc != 0)
    return rc;
  if (row < 0 || row >= PQntuples(res)) {
    orm__model_error_set(err, ORM_ENOTFOUND, -1, -1, "no row %d", row);
    return ORM_ENOTFOUND;
  }
  /* Decode a whole row aside, then copy only the wanted fields: a failure
   * leaves `dst` as it was. */
  char scratch[1024];
  char *tmp = model->struct_size <= sizeof scratch
                  ? scratch
                  : orm__malloc(model->struct_size);
  if (tmp == NULL) {
    orm__model_error_set(err, ORM_ENOMEM, -1, -1, "out of memory");
    return ORM_ENOMEM;
  }
  memset(tmp, 0, model->struct_size);
  rc = fill_rows(model, &plan, res, row, 1, tmp, arena, err);
  if (rc == 0) {
    uint64_t nulls = orm__row_nulls(model, dst);
    uint64_t got = orm__row_nulls(model, tmp);
    for (size_t f = 0; f < model->nfields; f++) {
      if (!((fields >> f) & 1u))
        continue;
      const orm_field_t *field = &model->fields[f];
      memcpy((char *)dst + field->offset, tmp + field->offset, field->size);
    }
    nulls = (nulls & ~fields) | (got & fields);
    orm__row_set_nulls(model, dst, nulls);
  }
  if (tmp != scratch)
    orm__free(tmp);
  return rc;
}

/* ---- orm_rows_t --------------------------------------------------------- */

size_t orm_rows_count(const orm_rows_t *rows) {
  return rows != NULL ? rows->count : 0;
}

void *orm_rows_data(const orm_rows_t *rows) {
  return rows != NULL && rows->count > 0 ? rows->data : NULL;
}

void *orm_rows_at(const orm_rows_t *rows, size_t i) {
  if (rows == NULL || i >= rows->count)
    return NULL;
  return rows->data + i * rows->model->struct_size;
}

const orm_model_t *orm_rows_model(const orm_rows_t *rows) {
  return rows != NULL ? rows->model : NULL;
}

void orm_rows_free(orm_rows_t *rows) {
  if (rows == NULL)
    return;
  orm__arena_free(&rows->arena);
  orm__free(rows);
}
