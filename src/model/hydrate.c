/* SPDX-License-Identifier: MIT */
/* Hydration: binary result rows decoded straight into model structs. */
#include <stdalign.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/alloc.h"

#include "model/codec.h"
#include "model/hydrate.h"
#include "model/model_int.h"

/* The server type's name for messages; NULL if not a built-in we know. */
static const char *oid_name(uint32_t oid) {
  static const struct {
    uint32_t oid;
    const char *name;
  } names[] = {
      {ORM__OID_BOOL, "boolean"},       {ORM__OID_BYTEA, "bytea"},
      {ORM__OID_NAME, "name"},          {ORM__OID_INT8, "bigint"},
      {ORM__OID_INT2, "smallint"},      {ORM__OID_INT4, "integer"},
      {ORM__OID_TEXT, "text"},          {ORM__OID_JSON, "json"},
      {ORM__OID_FLOAT4, "real"},        {ORM__OID_FLOAT8, "double precision"},
      {ORM__OID_BPCHAR, "character"},   {ORM__OID_VARCHAR, "varchar"},
      {ORM__OID_DATE, "date"},          {ORM__OID_TIMESTAMP, "timestamp"},
      {ORM__OID_TIMESTAMPTZ, "timestamptz"}, {ORM__OID_NUMERIC, "numeric"},
      {ORM__OID_UUID, "uuid"},          {ORM__OID_JSONB, "jsonb"},
      {ORM__OID_INT2_ARRAY, "smallint[]"}, {ORM__OID_INT4_ARRAY, "integer[]"},
      {ORM__OID_INT8_ARRAY, "bigint[]"}, {ORM__OID_TEXT_ARRAY, "text[]"},
      {ORM__OID_VARCHAR_ARRAY, "varchar[]"}, {1083, "time"},
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

/* Plans columns [first, first + count) of `res`; count -1: to the last. */
static int plan_from(orm__hydrate_plan_t *plan, const orm_model_t *model,
                     const PGresult *res, int first, int count,
                     orm_model_error_t *err) {
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
  int ncols = count >= 0 ? count : PQnfields(res) - first;
  if (ncols < 0 || first < 0 || first + ncols > PQnfields(res) ||
      ncols > ORM_MODEL_MAX_FIELDS) {
    orm__model_error_set(err, ORM_EINVAL, -1, -1,
                         "the result has %d columns, more than %d", ncols,
                         ORM_MODEL_MAX_FIELDS);
    return ORM_EINVAL;
  }
  uint64_t filled = 0;
  for (int c = 0; c < ncols; c++) {
    const char *name = PQfname(res, first + c);
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
    if (PQfformat(res, first + c) != 1) {
      orm__model_error_set(err, ORM_ETYPE, f, c,
                           "column \"%s\" is in text format; models read "
                           "binary results", field->column);
      return ORM_ETYPE;
    }
    uint32_t oid = (uint32_t)PQftype(res, first + c);
    if (!orm__codec_accepts(field->type, oid))
      return type_error(err, field, f, c, oid);
    filled |= UINT64_C(1) << f;
    plan->cols[c].type = (uint32_t)field->type;
    plan->cols[c].field = (uint32_t)f;
    plan->cols[c].offset = field->offset;
  }
  plan->first = first;
  plan->ncols = ncols;
  plan->missing = orm__model_all_fields(model) & ~filled;
  return 0;
}

int orm__hydrate_plan(orm__hydrate_plan_t *plan, const orm_model_t *model,
                      const PGresult *res, orm_model_error_t *err) {
  return plan_from(plan, model, res, 0, -1, err);
}

/* ---- decoding rows --------------------------------------------------------
 *
 * Rows are decoded in blocks of BLOCK_ROWS, column by column: each column
 * runs the loop written for its type over the whole block, so the type is
 * dispatched once per column and block rather than once per value. The
 * common types (8- and 4-byte numbers, timestamps, strings) have a loop of
 * their own; the rest, and every value a fast loop does not expect (a NULL,
 * an int4 widened into an int8 field, a malformed value), go through the
 * codec, which decodes or rejects it.
 *
 * A block's structs, libpq's values for it and its strings must stay in the
 * L1 cache while the columns go over them: 16 to 32 rows measured best for
 * the users table (bench/hydrate.c), 64 were 10% slower, 128 15%. */

enum { BLOCK_ROWS = 32 };

/* The rows of one block. */
typedef struct {
  const PGresult *res;
  int first; /* the block's first row in `res` */
  int count;
  char *data; /* the struct of row `first`; `count` structs follow */
  size_t size;
  size_t nulls_at; /* the null bitmap's offset in a struct */
  orm__arena_t *arena;
  /* The columns write every byte of a struct (see fill_rows()), so the
   * structs need not be zeroed first. */
  bool covered;
} block_t;

typedef enum {
  COLUMN_ANY, /* through the codec, value by value */
  COLUMN_8BYTE,
  COLUMN_4BYTE,
  COLUMN_TIMESTAMP,
  COLUMN_STRING,
} column_kind_t;

/* One result column and the field it fills. */
typedef struct {
  int col;
  column_kind_t kind;
  orm_type_t type;
  size_t offset;
  size_t size; /* of the field */
  uint64_t bit; /* the field's null bit */
} column_t;

static column_kind_t column_kind(orm_type_t type) {
  switch (type) {
  case ORM_T_INT8:
  case ORM_T_FLOAT8:
    return COLUMN_8BYTE;
  case ORM_T_INT4:
  case ORM_T_FLOAT4:
    return COLUMN_4BYTE;
  case ORM_T_TIMESTAMP:
  case ORM_T_TIMESTAMPTZ:
    return COLUMN_TIMESTAMP;
  case ORM_T_TEXT:
  case ORM_T_ENUM:
  case ORM_T_JSON:
    return COLUMN_STRING;
  default:
    return COLUMN_ANY;
  }
}

static void set_null(char *row, size_t nulls_at, uint64_t bit) {
  uint64_t nulls;
  memcpy(&nulls, row + nulls_at, sizeof nulls);
  nulls |= bit;
  memcpy(row + nulls_at, &nulls, sizeof nulls);
}

/* A value of row `r` the fast loops leave aside: a NULL (length 0, and
 * PQgetisnull() says so; only then is it asked), whose field is zeroed, or
 * anything else for the codec. 0 or the codec's error. */
static int other_value(const block_t *b, const column_t *k, int r, int len,
                       char *row) {
  if (len == 0 && PQgetisnull(b->res, r, k->col)) {
    set_null(row, b->nulls_at, k->bit);
    memset(row + k->offset, 0, k->size);
    return 0;
  }
  return orm__codec_decode(k->type, PQgetvalue(b->res, r, k->col), len,
                           row + k->offset, b->arena);
}

/* The loops below copy what they use into locals: the values are stored
 * through char pointers, which could alias `b` and `k` and would make the
 * compiler re-read them for every value. Each returns 0, or an error with
 * the row it met it in in *failed. */

/* int8, float8 (width 8), int4, float4 (width 4): big-endian bytes stored
 * as they are. Called with a constant width, so each use compiles to a
 * loop of its own. */
static inline int fill_fixed(const block_t *b, const column_t *k, int *failed,
                             int width) {
  const PGresult *res = b->res;
  const int c = k->col, end = b->first + b->count;
  const size_t size = b->size, offset = k->offset;
  char *row = b->data;
  for (int r = b->first; r < end; r++, row += size) {
    int len = PQgetlength(res, r, c);
    if (len == width) {
      const char *v = PQgetvalue(res, r, c);
      if (width == 8) {
        uint64_t u = orm__load_u64(v);
        memcpy(row + offset, &u, sizeof u);
      } else {
        uint32_t u = orm__load_u32(v);
        memcpy(row + offset, &u, sizeof u);
      }
      continue;
    }
    int rc = other_value(b, k, r, len, row);
    if (rc != 0) {
      *failed = r;
      return rc;
    }
  }
  return 0;
}

/* PostgreSQL's epoch (2000-01-01) in microseconds since the Unix epoch. */
#define PG_EPOCH_USECS INT64_C(946684800000000)

/* timestamp, timestamptz: microseconds since 2000 become microseconds since
 * 1970. The infinities (INT64_MIN, INT64_MAX) stay as they are; a finite
 * value the shift would overflow goes to the codec, which reports it. */
static int fill_timestamp(const block_t *b, const column_t *k, int *failed) {
  const PGresult *res = b->res;
  const int c = k->col, end = b->first + b->count;
  const size_t size = b->size, offset = k->offset;
  char *row = b->data;
  for (int r = b->first; r < end; r++, row += size) {
    int len = PQgetlength(res, r, c);
    if (len == 8) {
      int64_t t = (int64_t)orm__load_u64(PQgetvalue(res, r, c));
      if (t > INT64_MIN && t < INT64_MAX - PG_EPOCH_USECS) {
        t += PG_EPOCH_USECS;
        memcpy(row + offset, &t, sizeof t);
        continue;
      }
      if (t == INT64_MIN || t == INT64_MAX) {
        memcpy(row + offset, &t, sizeof t);
        continue;
      }
    }
    int rc = other_value(b, k, r, len, row);
    if (rc != 0) {
      *failed = r;
      return rc;
    }
  }
  return 0;
}

/* text, varchar, enum labels, json: each value copied with a NUL into the
 * arena. The lengths are read first, so that the copies of the whole
 * block take one arena allocation (NULLs waste a byte each) and the copy
 * loop needs no room check per value. */
static int fill_string(const block_t *b, const column_t *k, int *failed) {
  const PGresult *res = b->res;
  const int c = k->col, first = b->first, n = b->count;
  const size_t size = b->size, offset = k->offset, nulls_at = b->nulls_at;
  const uint64_t bit = k->bit;
  int lens[BLOCK_ROWS];
  /* Cannot overflow: libpq holds every value with a NUL, in memory. */
  size_t total = 0;
  for (int i = 0; i < n; i++) {
    lens[i] = PQgetlength(res, first + i, c);
    total += (size_t)lens[i] + 1;
  }
  char *s = orm__arena_alloc(b->arena, total, 1);
  if (s == NULL) {
    *failed = first;
    return ORM_ENOMEM;
  }
  char *row = b->data;
  for (int i = 0; i < n; i++, row += size) {
    size_t len = (size_t)lens[i];
    if (len == 0 && PQgetisnull(res, first + i, c)) {
      char *none = NULL;
      memcpy(row + offset, &none, sizeof none);
      set_null(row, nulls_at, bit);
      continue;
    }
    memcpy(s, PQgetvalue(res, first + i, c), len);
    s[len] = '\0';
    memcpy(row + offset, &s, sizeof s);
    s += len + 1;
  }
  return 0;
}

/* Every other type: the codec, value by value. */
static int fill_any(const block_t *b, const column_t *k, int *failed) {
  const int end = b->first + b->count;
  char *row = b->data;
  for (int r = b->first; r < end; r++, row += b->size) {
    int rc = other_value(b, k, r, PQgetlength(b->res, r, k->col), row);
    if (rc != 0) {
      *failed = r;
      return rc;
    }
  }
  return 0;
}

/* Fills the block's structs. Padding and NULL fields read as 0, never as
 * stale bytes: the structs are zeroed first unless the columns write every
 * byte. Returns 0 or the error of the value that comes first row by row
 * (row, then column) in *failed_row and *failed_col (an index into
 * `cols`). */
static int fill_block(const block_t *b, const column_t *cols, int ncols,
                      uint64_t missing, int *failed_row, int *failed_col) {
  if (!b->covered)
    memset(b->data, 0, (size_t)b->count * b->size);
  for (int i = 0; i < b->count; i++)
    memcpy(b->data + (size_t)i * b->size + b->nulls_at, &missing,
           sizeof missing);
  /* After a failure in row r, the later columns only need to look at the
   * rows before r for a failure that comes first. */
  block_t part = *b;
  int rc = 0;
  for (int c = 0; c < ncols && part.count > 0; c++) {
    const column_t *k = &cols[c];
    int row = 0, crc;
    switch (k->kind) {
    case COLUMN_8BYTE:
      crc = fill_fixed(&part, k, &row, 8);
      break;
    case COLUMN_4BYTE:
      crc = fill_fixed(&part, k, &row, 4);
      break;
    case COLUMN_TIMESTAMP:
      crc = fill_timestamp(&part, k, &row);
      break;
    case COLUMN_STRING:
      crc = fill_string(&part, k, &row);
      break;
    default:
      crc = fill_any(&part, k, &row);
      break;
    }
    if (crc != 0) {
      rc = crc;
      *failed_row = row;
      *failed_col = c;
      part.count = row - part.first;
    }
  }
  return rc;
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

/* Fills the `count` structs at `data` from rows [first, first + count). */
static int fill_rows(const orm_model_t *model, const orm__hydrate_plan_t *plan,
                     const PGresult *res, int first, int count, char *data,
                     orm__arena_t *arena, orm_model_error_t *err) {
  column_t cols[ORM_MODEL_MAX_FIELDS];
  int ncols = plan->ncols;
  /* The fields of a checked model do not overlap each other or the null
   * bitmap: the fast loops, which write a whole field for every value
   * (zeros for a NULL), cover a struct when their fields and the bitmap add
   * up to its size. The codec may leave padding inside a field untouched. */
  size_t covered = sizeof(uint64_t);
  for (int c = 0; c < ncols; c++) {
    const orm_field_t *field = &model->fields[plan->cols[c].field];
    cols[c] = (column_t){.col = plan->first + c,
                         .kind = column_kind(field->type),
                         .type = field->type,
                         .offset = field->offset,
                         .size = field->size,
                         .bit = UINT64_C(1) << plan->cols[c].field};
    if (cols[c].kind != COLUMN_ANY)
      covered += field->size;
  }
  block_t block = {.res = res,
                   .size = model->struct_size,
                   .nulls_at = model->nulls_offset,
                   .arena = arena,
                   .covered = covered == model->struct_size};
  for (int done = 0; done < count; done += block.count) {
    block.first = first + done;
    block.count = count - done < BLOCK_ROWS ? count - done : BLOCK_ROWS;
    block.data = data + (size_t)done * block.size;
    int row, c;
    int rc = fill_block(&block, cols, ncols, plan->missing, &row, &c);
    if (rc != 0)
      return value_error(err, model, (int)plan->cols[c].field, c, row, rc);
  }
  return 0;
}

/* The rows live right after the header, aligned for any struct. */
#define ROWS_HEADER                                                            \
  ((sizeof(struct orm_rows_s) + alignof(max_align_t) - 1) /                    \
   alignof(max_align_t) * alignof(max_align_t))

int orm__hydrate(orm_rows_t **out, const orm_model_t *model,
                 const PGresult *res, orm_model_error_t *err) {
  return orm__hydrate_cols(out, model, res, 0, -1, err);
}

int orm__hydrate_cols(orm_rows_t **out, const orm_model_t *model,
                      const PGresult *res, int first, int ncols,
                      orm_model_error_t *err) {
  return orm__hydrate_block(out, model, res, 0, res != NULL ? PQntuples(res) : 0,
                            first, ncols, err);
}

int orm__hydrate_block(orm_rows_t **out, const orm_model_t *model,
                       const PGresult *res, int row, int nrows, int first,
                       int ncols, orm_model_error_t *err) {
  if (out == NULL || model == NULL || res == NULL) {
    orm__model_error_set(err, ORM_EINVAL, -1, -1, "NULL argument");
    return ORM_EINVAL;
  }
  *out = NULL;
  orm__hydrate_plan_t plan;
  int rc = plan_from(&plan, model, res, first, ncols, err);
  if (rc != 0)
    return rc;
  if (row < 0 || nrows < 0 || row > PQntuples(res) - nrows) {
    orm__model_error_set(err, ORM_EINVAL, -1, -1, "no rows %d..%d", row,
                         row + nrows);
    return ORM_EINVAL;
  }
  size_t count = (size_t)nrows;
  if (count > (SIZE_MAX - ROWS_HEADER) / model->struct_size) {
    orm__model_error_set(err, ORM_ENOMEM, -1, -1, "out of memory");
    return ORM_ENOMEM;
  }
  /* Not zeroed here: fill_rows() zeroes each block of rows just before it
   * fills it, while the block is in the cache. */
  orm_rows_t *rows = orm__malloc(ROWS_HEADER + count * model->struct_size);
  if (rows == NULL) {
    orm__model_error_set(err, ORM_ENOMEM, -1, -1, "out of memory");
    return ORM_ENOMEM;
  }
  rows->model = model;
  rows->data = (char *)rows + ROWS_HEADER;
  rows->count = count;
  rows->owned = NULL;
  rows->next_owned = NULL;
  orm__arena_init(&rows->arena);
  rc = fill_rows(model, &plan, res, row, nrows, rows->data, &rows->arena,
                 err);
  if (rc != 0) {
    orm_rows_free(rows);
    return rc;
  }
  *out = rows;
  return 0;
}

int orm__hydrate_row_planned(const orm_model_t *model,
                             const orm__hydrate_plan_t *plan,
                             const PGresult *res, int row, void *dst,
                             orm__arena_t *arena, orm_model_error_t *err) {
  return fill_rows(model, plan, res, row, 1, dst, arena, err);
}

int orm__hydrate_into(const orm_model_t *model, const PGresult *res, int row,
                      void *dst, uint64_t fields, orm__arena_t *arena,
                      orm_model_error_t *err) {
  return orm__hydrate_into_cols(model, res, row, 0, -1, dst, fields, arena,
                                err);
}

int orm__hydrate_into_cols(const orm_model_t *model, const PGresult *res,
                           int row, int first, int count, void *dst,
                           uint64_t fields, orm__arena_t *arena,
                           orm_model_error_t *err) {
  if (dst == NULL || arena == NULL || model == NULL || res == NULL) {
    orm__model_error_set(err, ORM_EINVAL, -1, -1, "NULL argument");
    return ORM_EINVAL;
  }
  orm__hydrate_plan_t plan;
  int rc = plan_from(&plan, model, res, first, count, err);
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

void *orm_rows_array(const orm_rows_t *rows) {
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

int orm__rows_new(orm_rows_t **out, const orm_model_t *model, size_t count) {
  *out = NULL;
  if (count > (SIZE_MAX - ROWS_HEADER) / model->struct_size)
    return ORM_ENOMEM;
  orm_rows_t *rows = orm__calloc(1, ROWS_HEADER + count * model->struct_size);
  if (rows == NULL)
    return ORM_ENOMEM;
  rows->model = model;
  rows->data = (char *)rows + ROWS_HEADER;
  rows->count = count;
  orm__arena_init(&rows->arena);
  *out = rows;
  return 0;
}

void orm__rows_adopt(orm_rows_t *rows, orm_rows_t *child) {
  /* The child's own list joins ours: one flat list, freed without
   * recursion. */
  orm_rows_t *last = child;
  while (last->next_owned != NULL)
    last = last->next_owned;
  last->next_owned = child->owned;
  child->owned = NULL;
  while (last->next_owned != NULL)
    last = last->next_owned;
  last->next_owned = rows->owned;
  rows->owned = child;
}

void orm_rows_free(orm_rows_t *rows) {
  if (rows == NULL)
    return;
  orm_rows_t *owned = rows->owned;
  while (owned != NULL) {
    orm_rows_t *next = owned->next_owned;
    orm__arena_free(&owned->arena);
    orm__free(owned);
    owned = next;
  }
  orm__arena_free(&rows->arena);
  orm__free(rows);
}
