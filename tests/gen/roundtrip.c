/* SPDX-License-Identifier: MIT */
/* roundtrip: every model `uvorm gen` wrote, against the live schema it came
 * from (tests/gen/gen.sh compiles this with the generated models.c).
 *
 *   roundtrip CONNINFO [SALT]
 *
 * Generic over the generated list (models_all / models_count, or the names
 * given with -DMODELS_ALL= -DMODELS_COUNT= for a --prefix run): it knows no
 * model by name and reads everything from the descriptors. On one libuv loop
 * and one pool, for every model:
 *   1. orm_model_verify_async finds no problem;
 *   2. NROWS rows are inserted (models in dependency order: a belongs-to
 *      key gets the primary key of a row of its target inserted before; a
 *      self-reference points at the row before, NULL on the first row), each
 *      field filled deterministically by its ORM_T_* type (enum labels read
 *      from pg_catalog; nullable fields NULL on row 1; generated fields left
 *      to the server);
 *   3. the rows are read back (orm_find_all_async, by primary key) and
 *      compared field by field: generated fields only for being non-NULL
 *      when the column is NOT NULL;
 *   4. join-table rows are inserted with raw SQL for each many-to-many
 *      relation (pairs (i, j), j <= i);
 *   5. every relation is eager-loaded alone (orm_query_include) and checked
 *      loaded on every row, with the count (or the row) the inserts imply.
 * Read-only models (views; -DGEN_TEST_VIEWS=1, the default): find_all works
 * and orm_insert_async returns ORM_ENOTSUP.
 *
 * SALT (a character or two, default "r") goes into every text value, so
 * runs on one schema do not collide on unique columns. Text values hold an
 * '@' and fit char(10); integers are positive (see rich_schema.sql).
 *
 * Prints "FAIL <table>: <phase>: <what>" for each check that fails (phases:
 * verify, setup, write, read, relation <name>, view), then "ok <table>: ..."
 * for each model all of whose checks passed, and a last line; exits 0 when
 * everything passed, 1 otherwise. Frees all it allocates (it runs under ASan
 * in the sanitizer build). */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include <uvorm.h>

#include "models.h"

#ifndef GEN_TEST_VIEWS
#define GEN_TEST_VIEWS 1
#endif
#ifndef MODELS_ALL
#define MODELS_ALL models_all
#define MODELS_COUNT models_count
#endif

#define NROWS 3
#define MAX_MODELS 64
#define MAX_PAIRS 256
#define TIMEOUT_MS 30000

/* ---- bookkeeping ------------------------------------------------------------ */

static uv_loop_t *loop;
static orm_pool_t *pool;
static const char *salt = "r";

/* Everything allocated, freed at the end. */
static void **allocs;
static size_t nallocs;

static void *keep(void *p) {
  if (p == NULL) {
    fputs("roundtrip: out of memory\n", stderr);
    exit(2);
  }
  void **g = realloc(allocs, (nallocs + 1) * sizeof *g);
  if (g == NULL) {
    fputs("roundtrip: out of memory\n", stderr);
    exit(2);
  }
  allocs = g;
  allocs[nallocs++] = p;
  return p;
}

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...) {
  va_list ap, again;
  va_start(ap, f);
  va_copy(again, ap);
  int n = vsnprintf(NULL, 0, f, ap);
  va_end(ap);
  char *s = keep(malloc((size_t)n + 1));
  vsnprintf(s, (size_t)n + 1, f, again);
  va_end(again);
  return s;
}

/* A primary key's value, whatever its type. */
typedef struct {
  orm_type_t type;
  bool null;
  int64_t i;    /* INT2, INT4, INT8 */
  orm_uuid_t u; /* UUID */
  char *s;      /* TEXT (kept); also the text form of the others */
} rkey_t;

typedef struct {
  const orm_model_t *m;
  const char *name; /* the table */
  int pk;           /* the primary key's field, or -1 */
  bool inserted;
  bool failed;
  void *sent[NROWS];  /* the structs as sent (generated fields not valid) */
  rkey_t key[NROWS];  /* each row's primary key, as the server gave it */
  const char **labels[ORM_MODEL_MAX_FIELDS]; /* an enum field's labels */
  size_t nlabels[ORM_MODEL_MAX_FIELDS];
  int checks;
} mstate_t;

static mstate_t models[MAX_MODELS];
static size_t nmodels;

/* Join-table rows: pairs of keys, by the columns that hold them. */
typedef struct {
  const char *table, *col_a, *col_b;
  rkey_t a, b;
} pair_t;

static pair_t pairs[MAX_PAIRS];
static size_t npairs;

static int failures;

/* "FAIL <table>: <phase>: <what>". The phases: verify, setup, write, read,
 * relation <name>, view. */
static void fail(mstate_t *ms, const char *phase, const char *f, ...)
    __attribute__((format(printf, 3, 4)));
static void fail(mstate_t *ms, const char *phase, const char *f, ...) {
  va_list ap;
  va_start(ap, f);
  printf("FAIL %s: %s: ", ms != NULL ? ms->name : "-", phase);
  vprintf(f, ap);
  printf("\n");
  fflush(stdout);
  va_end(ap);
  failures++;
  if (ms != NULL)
    ms->failed = true;
}

static mstate_t *state_of(const orm_model_t *m) {
  for (size_t i = 0; i < nmodels; i++)
    if (models[i].m == m)
      return &models[i];
  return NULL;
}

/* ---- waiting on the loop ------------------------------------------------------ */

static void on_done(orm_future_t *f, void *data) {
  (void)f;
  *(int *)data = 1;
}

/* Runs the loop until the future of a call that returned `rc` completes;
 * gives the call's error, or the future's status (0: resolved). `*f` is
 * read after the call has set it (an argument would be read in any order). */
static int await(int rc, orm_future_t *const *f, int *done) {
  if (rc != 0)
    return rc;
  orm_future_timeout(*f, TIMEOUT_MS);
  while (!*done)
    uv_run(loop, UV_RUN_ONCE);
  return orm_future_status(*f);
}

/* "ORM_ESERVER: message (SQLSTATE x)" for a failed call or future. */
static const char *why(int rc, orm_future_t *f) {
  const orm_error_t *e = f != NULL ? orm_future_error(f) : NULL;
  if (e == NULL)
    return fmt("%s (%s)", orm_err_name(rc), orm_strerror(rc));
  return fmt("%s: %s%s%s%s", orm_err_name(rc), e->message,
             *e->sqlstate ? " (SQLSTATE " : "", e->sqlstate,
             *e->sqlstate ? ")" : "");
}

static void release(orm_future_t *f) {
  if (f != NULL)
    orm_future_release(f);
}

/* ---- values --------------------------------------------------------------------- */

static bool is_string(orm_type_t t) {
  return t == ORM_T_TEXT || t == ORM_T_ENUM || t == ORM_T_JSON ||
         t == ORM_T_JSONB || t == ORM_T_NUMERIC;
}

static void *member(const orm_model_t *m, void *row, size_t f) {
  return (char *)row + m->fields[f].offset;
}

static const char *uuid_text(const orm_uuid_t *u) {
  const uint8_t *b = u->bytes;
  return fmt("%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10],
             b[11], b[12], b[13], b[14], b[15]);
}

/* A key field of `row` as an rkey_t (text copied). */
static rkey_t key_of(const orm_model_t *m, void *row, size_t f) {
  rkey_t k = {.type = m->fields[f].type};
  void *p = member(m, row, f);
  k.null = orm_row_is_null(m, row, f);
  switch (k.type) {
  case ORM_T_INT2: k.i = *(int16_t *)p; break;
  case ORM_T_INT4: k.i = *(int32_t *)p; break;
  case ORM_T_INT8: k.i = *(int64_t *)p; break;
  case ORM_T_UUID: k.u = *(orm_uuid_t *)p; break;
  case ORM_T_TEXT:
  case ORM_T_ENUM: k.null = k.null || *(char **)p == NULL; break;
  default: k.null = true; break;
  }
  if (k.null)
    k.s = fmt("NULL");
  else if (k.type == ORM_T_UUID)
    k.s = (char *)uuid_text(&k.u);
  else if (k.type == ORM_T_TEXT || k.type == ORM_T_ENUM)
    k.s = fmt("%s", *(char **)p);
  else
    k.s = fmt("%" PRId64, k.i);
  return k;
}

static bool key_eq(const rkey_t *a, const rkey_t *b) {
  if (a->null || b->null)
    return false;
  switch (a->type) {
  case ORM_T_INT2:
  case ORM_T_INT4:
  case ORM_T_INT8: return a->i == b->i;
  case ORM_T_UUID: return memcmp(a->u.bytes, b->u.bytes, 16) == 0;
  default: return strcmp(a->s, b->s) == 0;
  }
}

/* The key as a parameter (the server converts it to the column's type). */
static orm_param_t key_param(const rkey_t *k) {
  if (k->type == ORM_T_INT2 || k->type == ORM_T_INT4 || k->type == ORM_T_INT8)
    return ORM_INT8(k->i);
  if (k->type == ORM_T_UUID)
    return ORM_UNTYPED(k->s);
  return ORM_TEXT(k->s);
}

/* Writes key `k` into field f of `row` (a belongs-to key). */
static void set_key(const orm_model_t *m, void *row, size_t f, const rkey_t *k) {
  void *p = member(m, row, f);
  orm_row_set_null(m, row, f, false);
  switch (m->fields[f].type) {
  case ORM_T_INT2: *(int16_t *)p = (int16_t)k->i; break;
  case ORM_T_INT4: *(int32_t *)p = (int32_t)k->i; break;
  case ORM_T_INT8: *(int64_t *)p = k->i; break;
  case ORM_T_UUID: *(orm_uuid_t *)p = k->u; break;
  default: *(const char **)p = k->s; break;
  }
}

static void set_null(const orm_model_t *m, void *row, size_t f) {
  orm_row_set_null(m, row, f, true);
  if (is_string(m->fields[f].type))
    *(const char **)member(m, row, f) = NULL;
}

/* Field f of row r of model number mi: a value of its type, from its
 * coordinates alone. */
static void fill(mstate_t *ms, size_t mi, void *row, int r, size_t f) {
  const orm_model_t *m = ms->m;
  void *p = member(m, row, f);
  int v = 1 + (int)mi * 97 + r * 13 + (int)f;
  switch (m->fields[f].type) {
  case ORM_T_INT2: *(int16_t *)p = (int16_t)v; break;
  case ORM_T_INT4: *(int32_t *)p = v; break;
  case ORM_T_INT8: *(int64_t *)p = (int64_t)v * 1000003; break;
  case ORM_T_FLOAT4: *(float *)p = (float)v + 0.25f; break;
  case ORM_T_FLOAT8: *(double *)p = v + 0.125; break;
  case ORM_T_BOOL: *(bool *)p = (r + (int)f) % 2 == 0; break;
  case ORM_T_ENUM: /* a label of its enum, or text (an enum field on text) */
    *(const char **)p =
        ms->nlabels[f] > 0 ? ms->labels[f][(size_t)(r + (int)f) % ms->nlabels[f]]
                           : fmt("%s%zu.%d@%zu", salt, mi, r, f);
    break;
  case ORM_T_TEXT: *(const char **)p = fmt("%s%zu.%d@%zu", salt, mi, r, f); break;
  case ORM_T_JSON:
  case ORM_T_JSONB: *(const char **)p = fmt("{\"k\": %d}", v); break;
  case ORM_T_NUMERIC: *(const char **)p = fmt("%d.%02d", v, (r * 7 + (int)f) % 100); break;
  case ORM_T_BYTEA: {
    uint8_t *b = keep(malloc(4));
    b[0] = (uint8_t)v, b[1] = 0, b[2] = 0xff, b[3] = (uint8_t)r;
    *(orm_bytes_t *)p = (orm_bytes_t){b, 4};
    break;
  }
  case ORM_T_TIMESTAMP: *(int64_t *)p = INT64_C(1700000000000000) + (int64_t)v * 1000001; break;
  case ORM_T_TIMESTAMPTZ: *(int64_t *)p = INT64_C(1750000000000000) + (int64_t)v * 999999; break;
  case ORM_T_DATE: *(int32_t *)p = 19000 + v; break;
  case ORM_T_UUID:
    for (int i = 0; i < 16; i++)
      ((orm_uuid_t *)p)->bytes[i] = (uint8_t)(v + i * 17);
    break;
  case ORM_T_INT_ARRAY: {
    int64_t *items = keep(calloc(3, sizeof *items));
    bool *nulls = keep(calloc(3, sizeof *nulls));
    items[0] = v, items[2] = -v;
    if (r == 0)
      nulls[1] = true; /* a NULL element */
    else
      items[1] = 7;
    *(orm_int_array_t *)p = (orm_int_array_t){items, r == 0 ? nulls : NULL, 3};
    break;
  }
  case ORM_T_TEXT_ARRAY: {
    char **items = keep(calloc(3, sizeof *items));
    items[0] = fmt("a%d", v);
    items[1] = r == 0 ? NULL : fmt("b \"q\", {x}");
    items[2] = fmt("%s", "");
    *(orm_text_array_t *)p = (orm_text_array_t){items, 3};
    break;
  }
  default: break;
  }
}

/* A field's value for messages. */
static const char *show(const orm_model_t *m, void *row, size_t f) {
  void *p = member(m, row, f);
  if (orm_row_is_null(m, row, f))
    return "NULL";
  switch (m->fields[f].type) {
  case ORM_T_INT2: return fmt("%d", *(int16_t *)p);
  case ORM_T_INT4:
  case ORM_T_DATE: return fmt("%d", *(int32_t *)p);
  case ORM_T_INT8:
  case ORM_T_TIMESTAMP:
  case ORM_T_TIMESTAMPTZ: return fmt("%" PRId64, *(int64_t *)p);
  case ORM_T_FLOAT4: return fmt("%.9g", (double)*(float *)p);
  case ORM_T_FLOAT8: return fmt("%.17g", *(double *)p);
  case ORM_T_BOOL: return *(bool *)p ? "true" : "false";
  case ORM_T_UUID: return uuid_text(p);
  case ORM_T_BYTEA: {
    const orm_bytes_t *b = p;
    char *s = fmt("%zu bytes:", b->len);
    for (size_t i = 0; i < b->len && i < 16; i++)
      s = fmt("%s %02x", s, b->data[i]);
    return s;
  }
  case ORM_T_INT_ARRAY: {
    const orm_int_array_t *a = p;
    char *s = fmt("{");
    for (size_t i = 0; i < a->len; i++)
      s = orm_int_array_is_null(a, i) ? fmt("%s%sNULL", s, i ? "," : "")
                                      : fmt("%s%s%" PRId64, s, i ? "," : "", a->items[i]);
    return fmt("%s}", s);
  }
  case ORM_T_TEXT_ARRAY: {
    const orm_text_array_t *a = p;
    char *s = fmt("{");
    for (size_t i = 0; i < a->len; i++)
      s = a->items[i] == NULL ? fmt("%s%sNULL", s, i ? "," : "")
                              : fmt("%s%s\"%s\"", s, i ? "," : "", a->items[i]);
    return fmt("%s}", s);
  }
  default: {
    const char *s = *(const char **)p;
    return s == NULL ? "(null pointer)" : fmt("\"%s\"", s);
  }
  }
}

/* Whether field f of `got` (read back) holds what `want` (sent) did. A
 * char(n) column pads with spaces: a text read back may carry trailing
 * spaces the value sent had not. */
static bool same(const orm_model_t *m, void *want, void *got, size_t f) {
  bool wn = orm_row_is_null(m, want, f), gn = orm_row_is_null(m, got, f);
  if (wn || gn)
    return wn == gn;
  void *a = member(m, want, f), *b = member(m, got, f);
  switch (m->fields[f].type) {
  case ORM_T_TEXT: {
    const char *x = *(const char **)a, *y = *(const char **)b;
    if (x == NULL || y == NULL)
      return x == y;
    size_t n = strlen(x);
    if (strncmp(x, y, n) != 0)
      return false;
    return y[n + strspn(y + n, " ")] == '\0';
  }
  case ORM_T_ENUM:
  case ORM_T_JSON:
  case ORM_T_JSONB:
  case ORM_T_NUMERIC: {
    const char *x = *(const char **)a, *y = *(const char **)b;
    return x != NULL && y != NULL ? strcmp(x, y) == 0 : x == y;
  }
  case ORM_T_BOOL: return *(bool *)a == *(bool *)b;
  case ORM_T_BYTEA: {
    const orm_bytes_t *x = a, *y = b;
    return x->len == y->len && (x->len == 0 || memcmp(x->data, y->data, x->len) == 0);
  }
  case ORM_T_INT_ARRAY: {
    const orm_int_array_t *x = a, *y = b;
    if (x->len != y->len)
      return false;
    for (size_t i = 0; i < x->len; i++)
      if (orm_int_array_is_null(x, i) != orm_int_array_is_null(y, i) ||
          (!orm_int_array_is_null(x, i) && x->items[i] != y->items[i]))
        return false;
    return true;
  }
  case ORM_T_TEXT_ARRAY: {
    const orm_text_array_t *x = a, *y = b;
    if (x->len != y->len)
      return false;
    for (size_t i = 0; i < x->len; i++)
      if ((x->items[i] == NULL) != (y->items[i] == NULL) ||
          (x->items[i] != NULL && strcmp(x->items[i], y->items[i]) != 0))
        return false;
    return true;
  }
  default: /* integers, floats, dates, timestamps, uuids: their bytes */
    return memcmp(a, b, m->fields[f].size) == 0;
  }
}

/* "schema"."table", quoted. */
static const char *quote(const char *name) {
  char *q = keep(malloc(2 * strlen(name) + 3)), *w = q;
  *w++ = '"';
  for (const char *c = name; *c; c++) {
    if (*c == '"')
      *w++ = '"';
    *w++ = *c;
  }
  *w++ = '"';
  *w = '\0';
  return q;
}

static const char *table_of(const orm_model_t *m) {
  return m->schema != NULL ? fmt("%s.%s", quote(m->schema), quote(m->table))
                           : quote(m->table);
}

/* ---- 1. verify -------------------------------------------------------------- */

static void verify(mstate_t *ms) {
  int done = 0;
  orm_future_t *f = NULL;
  int rc = await(orm_model_verify_async(pool, ms->m, on_done, &done, &f), &f, &done);
  if (rc != 0) {
    fail(ms, "verify", "orm_model_verify_async: %s", why(rc, f));
  } else {
    const orm_schema_report_t *r = orm_future_value(f);
    if (!r->table_exists)
      fail(ms, "verify", "orm_model_verify_async: the table does not exist");
    for (size_t i = 0; i < r->nproblems; i++)
      fail(ms, "verify", "orm_model_verify_async: %s (%s)", r->problems[i].message,
           orm_err_name(r->problems[i].code));
    ms->checks++;
  }
  release(f);
}

/* The labels of the enum behind each ORM_T_ENUM field (through a domain). */
static void read_labels(mstate_t *ms) {
  static const char sql[] =
      "SELECT e.enumlabel::text FROM pg_catalog.pg_attribute a "
      "JOIN pg_catalog.pg_type t ON t.oid = a.atttypid "
      "JOIN pg_catalog.pg_enum e ON e.enumtypid = "
      "  CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END "
      "WHERE a.attrelid = to_regclass($1) AND a.attname = $2 "
      "ORDER BY e.enumsortorder";
  for (size_t i = 0; i < ms->m->nfields; i++) {
    if (ms->m->fields[i].type != ORM_T_ENUM)
      continue;
    orm_param_t p[2] = {ORM_TEXT(table_of(ms->m)), ORM_TEXT(ms->m->fields[i].column)};
    int done = 0;
    orm_future_t *f = NULL;
    int rc = await(orm_query_async(pool, sql, p, 2, on_done, &done, &f), &f, &done);
    if (rc != 0) {
      fail(ms, "setup", "reading the labels of %s: %s", ms->m->fields[i].column, why(rc, f));
    } else {
      orm_result_t *res = orm_future_value(f);
      int n = orm_result_nrows(res);
      ms->labels[i] = keep(calloc((size_t)n + 1, sizeof *ms->labels[i]));
      for (int k = 0; k < n; k++) {
        const char *s = NULL;
        orm_result_text(res, k, 0, &s, NULL);
        ms->labels[i][k] = fmt("%s", s != NULL ? s : "");
      }
      ms->nlabels[i] = (size_t)n;
    }
    release(f);
  }
}

/* ---- 2. insert --------------------------------------------------------------- */

static const orm_relation_t *belongs_to_of(const orm_model_t *m, size_t f) {
  for (size_t k = 0; k < m->nrelations; k++)
    if (m->relations[k].kind == ORM_BELONGS_TO &&
        strcmp(m->relations[k].key, m->fields[f].column) == 0)
      return &m->relations[k];
  return NULL;
}

/* Whether every belongs-to target of ms but itself has its rows. */
static bool ready(const mstate_t *ms) {
  for (size_t k = 0; k < ms->m->nrelations; k++) {
    const orm_relation_t *rel = &ms->m->relations[k];
    if (rel->kind != ORM_BELONGS_TO || rel->target() == ms->m)
      continue;
    mstate_t *t = state_of(rel->target());
    if (t == NULL || !t->inserted)
      return false;
  }
  return true;
}

static void insert_rows(mstate_t *ms, size_t mi) {
  const orm_model_t *m = ms->m;
  for (int r = 0; r < NROWS; r++) {
    void *row = keep(calloc(1, m->struct_size));
    ms->sent[r] = row;
    for (size_t f = 0; f < m->nfields; f++) {
      const orm_field_t *fd = &m->fields[f];
      if (fd->flags & ORM_F_GENERATED)
        continue;
      const orm_relation_t *rel = belongs_to_of(m, f);
      bool nullable = (fd->flags & ORM_F_NULLABLE) != 0;
      if (rel != NULL) {
        mstate_t *t = state_of(rel->target());
        int tr;
        if (t == ms) /* a self-reference: the row before */
          tr = r - 1;
        else /* a unique key: a target row of its own; else shared */
          tr = (fd->flags & (ORM_F_UNIQUE | ORM_F_PK)) ? r : r / 2;
        if (t != ms && nullable && r == NROWS - 1)
          tr = -1; /* and a NULL key on the last row */
        if (t == NULL || t->pk < 0 || tr < 0 || t->key[tr].null) {
          if (!nullable)
            fail(ms, "write", "field %s: no %s row to refer to", fd->column,
                 t == ms ? "earlier" : "target");
          set_null(m, row, f);
        } else {
          set_key(m, row, f, &t->key[tr]);
        }
        continue;
      }
      if (nullable && r == 1)
        set_null(m, row, f);
      else
        fill(ms, mi, row, r, f);
    }
    int done = 0;
    orm_future_t *fut = NULL;
    int rc = await(orm_insert_async(pool, m, row, on_done, &done, &fut), &fut, &done);
    if (rc != 0) {
      fail(ms, "write", "orm_insert_async row %d: %s", r, why(rc, fut));
      ms->key[r] = (rkey_t){.null = true, .s = "NULL"};
    } else {
      /* The generated fields came back into `row`; strings among them point
       * into the future's value, gone once it is released: copy the key. */
      ms->key[r] = key_of(m, row, (size_t)ms->pk);
      if (ms->key[r].null)
        fail(ms, "write", "row %d: no primary key after the insert", r);
    }
    release(fut);
  }
  ms->inserted = true;
  if (!ms->failed)
    ms->checks++;
}

/* ---- 3. read back ------------------------------------------------------------- */

/* A query for the rows this run inserted (by primary key). */
static orm_query_t *our_rows(mstate_t *ms) {
  orm_query_t *q = NULL;
  if (orm_query_new(&q, ms->m) != 0)
    return NULL;
  orm_param_t keys[NROWS];
  for (int r = 0; r < NROWS; r++)
    keys[r] = key_param(&ms->key[r]);
  orm_query_where_in(q, ms->m->fields[ms->pk].column, keys, NROWS);
  return q;
}

/* The index of the row sent whose key is that of `got`, or -1. */
static int sent_row(mstate_t *ms, void *got) {
  rkey_t k = key_of(ms->m, got, (size_t)ms->pk);
  for (int r = 0; r < NROWS; r++)
    if (key_eq(&k, &ms->key[r]))
      return r;
  return -1;
}

static void read_back(mstate_t *ms) {
  const orm_model_t *m = ms->m;
  orm_query_t *q = our_rows(ms);
  int done = 0;
  orm_future_t *f = NULL;
  int rc = await(orm_find_all_async(pool, m, q, on_done, &done, &f), &f, &done);
  orm_query_free(q);
  if (rc != 0) {
    fail(ms, "read", "orm_find_all_async: %s", why(rc, f));
    release(f);
    return;
  }
  orm_rows_t *rows = orm_future_value(f);
  size_t n = orm_rows_count(rows);
  if (n != NROWS)
    fail(ms, "read", "read back %zu rows, inserted %d", n, NROWS);
  for (size_t i = 0; i < n; i++) {
    void *got = orm_rows_at(rows, i);
    int r = sent_row(ms, got);
    if (r < 0) {
      fail(ms, "read", "a row read back has a key no insert gave");
      continue;
    }
    for (size_t fi = 0; fi < m->nfields; fi++) {
      const orm_field_t *fd = &m->fields[fi];
      if (fd->flags & ORM_F_GENERATED) {
        if (!(fd->flags & ORM_F_NULLABLE) && orm_row_is_null(m, got, fi))
          fail(ms, "read", "row %d: %s (generated, NOT NULL) read back NULL", r, fd->column);
        continue;
      }
      if (!same(m, ms->sent[r], got, fi))
        fail(ms, "read", "row %d: %s: sent %s, read back %s", r, fd->column,
             show(m, ms->sent[r], fi), show(m, got, fi));
    }
  }
  if (!ms->failed)
    ms->checks++;
  release(f);
}

/* ---- 4. join rows --------------------------------------------------------------- */

static bool joined(const char *table) {
  for (size_t i = 0; i < npairs; i++)
    if (strcmp(pairs[i].table, table) == 0)
      return true;
  return false;
}

static void insert_pairs(mstate_t *ms, const orm_relation_t *rel) {
  mstate_t *t = state_of(rel->target());
  if (rel->through.table == NULL || joined(rel->through.table))
    return; /* a join model's rows would be inserted as a model's */
  if (t == NULL || t->pk < 0) {
    fail(ms, fmt("relation %s", rel->name), "its target is no model of the list");
    return;
  }
  const char *sql = fmt("INSERT INTO %s%s%s (%s, %s) VALUES ($1, $2)",
                        rel->through.schema ? quote(rel->through.schema) : "",
                        rel->through.schema ? "." : "", quote(rel->through.table),
                        quote(rel->through.from), quote(rel->through.to));
  for (int i = 0; i < NROWS; i++)
    for (int j = 0; j <= i; j++) {
      if (npairs == MAX_PAIRS) {
        fail(ms, fmt("relation %s", rel->name), "too many join rows");
        return;
      }
      orm_param_t p[2] = {key_param(&ms->key[i]), key_param(&t->key[j])};
      int done = 0;
      orm_future_t *f = NULL;
      int rc = await(orm_query_async(pool, sql, p, 2, on_done, &done, &f), &f, &done);
      if (rc != 0)
        fail(ms, fmt("relation %s", rel->name), "%s: %s", sql, why(rc, f));
      else
        pairs[npairs++] = (pair_t){rel->through.table, rel->through.from,
                                   rel->through.to, ms->key[i], t->key[j]};
      release(f);
    }
}

/* ---- 5. relations ------------------------------------------------------------------ */

/* How many rows relation `rel` of the row keyed `k` should load; each key
 * it may load goes to `partners` (to-many through a join table). */
static size_t expected(mstate_t *ms, const orm_relation_t *rel, const rkey_t *k,
                       const rkey_t **partners) {
  size_t n = 0;
  if (rel->kind == ORM_MANY_TO_MANY) {
    for (size_t i = 0; i < npairs; i++) {
      const pair_t *p = &pairs[i];
      if (strcmp(p->table, rel->through.table) != 0)
        continue;
      if (strcmp(p->col_a, rel->through.from) == 0 && key_eq(&p->a, k))
        partners[n++] = &p->b;
      else if (strcmp(p->col_b, rel->through.from) == 0 && key_eq(&p->b, k))
        partners[n++] = &p->a;
    }
    return n;
  }
  /* has-one, has-many: the target's rows whose key column holds k */
  mstate_t *t = state_of(rel->target());
  int kf = t != NULL ? orm_model_field(t->m, rel->key) : -1;
  if (kf < 0) {
    fail(ms, fmt("relation %s", rel->name), "key %s is no field of its target", rel->key);
    return 0;
  }
  for (int r = 0; r < NROWS && t->sent[r] != NULL; r++) {
    rkey_t v = key_of(t->m, t->sent[r], (size_t)kf);
    if (key_eq(&v, k))
      partners[n++] = &t->key[r];
  }
  return n;
}

static void check_relation(mstate_t *ms, const orm_relation_t *rel) {
  const orm_model_t *m = ms->m, *tm = rel->target();
  const char *phase = fmt("relation %s", rel->name);
  mstate_t *t = state_of(tm);
  orm_query_t *q = our_rows(ms);
  int rc = q == NULL ? ORM_ENOMEM : orm_query_include(q, rel->name);
  int done = 0;
  orm_future_t *f = NULL;
  if (rc == 0)
    rc = await(orm_find_all_async(pool, m, q, on_done, &done, &f), &f, &done);
  orm_query_free(q);
  if (rc != 0) {
    fail(ms, phase, "orm_find_all_async with the include: %s", why(rc, f));
    release(f);
    return;
  }
  orm_rows_t *rows = orm_future_value(f);
  if (orm_rows_count(rows) != NROWS)
    fail(ms, phase, "%zu rows, expected %d", orm_rows_count(rows), NROWS);
  int tpk = t != NULL ? t->pk : -1;
  for (size_t i = 0; i < orm_rows_count(rows); i++) {
    char *row = orm_rows_at(rows, i);
    int r = sent_row(ms, row);
    if (r < 0 || tpk < 0)
      continue;
    const rkey_t *partners[MAX_PAIRS];
    if (rel->kind == ORM_BELONGS_TO) {
      const orm__one_slot_t *slot = (const void *)(row + rel->offset);
      int kf = orm_model_field(m, rel->key);
      rkey_t want = key_of(m, ms->sent[r], (size_t)kf);
      if (!slot->loaded) {
        fail(ms, phase, "row %d: (belongs-to) not loaded", r);
      } else if (want.null) {
        if (slot->item != NULL)
          fail(ms, phase, "row %d: key NULL, yet a row loaded", r);
      } else if (slot->item == NULL) {
        fail(ms, phase, "row %d: no row loaded for key %s", r, want.s);
      } else {
        rkey_t got = key_of(tm, slot->item, (size_t)tpk);
        if (!key_eq(&got, &want))
          fail(ms, phase, "row %d: loaded the row keyed %s, expected %s", r,
               got.s, want.s);
      }
      continue;
    }
    size_t n = expected(ms, rel, &ms->key[r], partners);
    void *items;
    size_t len;
    if (rel->kind == ORM_HAS_ONE) {
      const orm__one_slot_t *slot = (const void *)(row + rel->offset);
      if (!slot->loaded) {
        fail(ms, phase, "row %d: (has-one) not loaded", r);
        continue;
      }
      items = slot->item, len = slot->item != NULL;
      if (n > 1)
        n = 1; /* the first */
    } else {
      const orm__many_slot_t *slot = (const void *)(row + rel->offset);
      if (!slot->loaded) {
        fail(ms, phase, "row %d: (%s) not loaded", r,
             rel->kind == ORM_HAS_MANY ? "has-many" : "many-to-many");
        continue;
      }
      items = slot->items, len = slot->len;
    }
    if (len != n) {
      fail(ms, phase, "row %d (key %s): loaded %zu rows, expected %zu", r, ms->key[r].s,
           len, n);
      continue;
    }
    for (size_t k = 0; k < len; k++) {
      void *item = (char *)items + k * tm->struct_size;
      rkey_t got = key_of(tm, item, (size_t)tpk);
      bool known = false;
      for (size_t p = 0; p < n && !known; p++)
        known = key_eq(&got, partners[p]);
      if (!known && rel->kind != ORM_HAS_ONE)
        fail(ms, phase, "row %d: loaded the row keyed %s, not one of its own", r,
             got.s);
      if (rel->kind != ORM_MANY_TO_MANY) { /* its key column holds ours */
        rkey_t back = key_of(tm, item, (size_t)orm_model_field(tm, rel->key));
        if (!key_eq(&back, &ms->key[r]))
          fail(ms, phase, "row %d: loaded a row whose %s is %s, not %s", r,
               rel->key, back.s, ms->key[r].s);
      }
    }
  }
  release(f);
}

/* ---- views ---------------------------------------------------------------------------- */

#if GEN_TEST_VIEWS
static void check_view(mstate_t *ms) {
  int done = 0;
  orm_future_t *f = NULL;
  int rc = await(orm_find_all_async(pool, ms->m, NULL, on_done, &done, &f), &f, &done);
  if (rc != 0)
    fail(ms, "view", "find_all on the read-only model: %s", why(rc, f));
  else
    ms->checks++;
  release(f);
  void *row = calloc(1, ms->m->struct_size);
  f = NULL;
  done = 0;
  rc = orm_insert_async(pool, ms->m, row, on_done, &done, &f);
  if (rc != ORM_ENOTSUP) {
    fail(ms, "view", "orm_insert_async on the read-only model returned %s, expected ORM_ENOTSUP",
         orm_err_name(rc));
    if (rc == 0)
      await(0, &f, &done);
  } else {
    ms->checks++;
  }
  release(f);
  free(row);
}
#endif

/* ---- main ------------------------------------------------------------------------------- */

static void on_closed(orm_pool_t *p, void *data) { (void)p, (void)data; }

int main(int argc, char **argv) {
  if (argc < 2 || argc > 3) {
    fputs("usage: roundtrip CONNINFO [SALT]\n", stderr);
    return 2;
  }
  if (argc == 3)
    salt = argv[2];
  if (MODELS_COUNT == 0 || MODELS_COUNT > MAX_MODELS) {
    fprintf(stderr, "roundtrip: %zu models\n", (size_t)MODELS_COUNT);
    return 1;
  }
  loop = uv_default_loop();
  int rc = orm_pool_open(&pool, loop,
                         &(orm_pool_config_t){.conninfo = argv[1], .max_conns = 2});
  if (rc != 0) {
    fprintf(stderr, "roundtrip: orm_pool_open: %s\n", orm_strerror(rc));
    return 1;
  }
  for (size_t i = 0; i < MODELS_COUNT; i++) {
    mstate_t *ms = &models[nmodels++];
    ms->m = MODELS_ALL[i]();
    ms->name = ms->m->table;
    ms->pk = orm_model_pk(ms->m);
    if (orm_model_check(ms->m) != 0)
      fail(ms, "verify", "orm_model_check: the descriptor is invalid");
  }
  for (size_t i = 0; i < nmodels; i++) {
    verify(&models[i]);
    read_labels(&models[i]);
  }

  /* Inserts, in dependency order. */
  for (;;) {
    size_t next = nmodels;
    bool left = false;
    for (size_t i = 0; i < nmodels && next == nmodels; i++) {
      mstate_t *ms = &models[i];
#if GEN_TEST_VIEWS
      if (ms->m->read_only)
        continue;
#endif
      if (ms->inserted)
        continue;
      left = true;
      if (ready(ms))
        next = i;
    }
    if (!left)
      break;
    if (next == nmodels) {
      for (size_t i = 0; i < nmodels; i++)
        if (!models[i].inserted)
          fail(&models[i], "write", "its belongs-to targets form a cycle: not inserted");
      break;
    }
    if (models[next].pk < 0) {
      fail(&models[next], "write", "no primary key");
      models[next].inserted = true;
      continue;
    }
    insert_rows(&models[next], next);
  }
  for (size_t i = 0; i < nmodels; i++)
    if (models[i].inserted && models[i].pk >= 0)
      read_back(&models[i]);

  /* Join rows, then every relation. */
  for (size_t i = 0; i < nmodels; i++)
    for (size_t k = 0; models[i].inserted && k < models[i].m->nrelations; k++)
      if (models[i].m->relations[k].kind == ORM_MANY_TO_MANY)
        insert_pairs(&models[i], &models[i].m->relations[k]);
  for (size_t i = 0; i < nmodels; i++) {
    mstate_t *ms = &models[i];
    if (!ms->inserted || ms->pk < 0)
      continue;
    int before = failures;
    for (size_t k = 0; k < ms->m->nrelations; k++)
      check_relation(ms, &ms->m->relations[k]);
    if (failures == before && ms->m->nrelations > 0)
      ms->checks++;
  }
#if GEN_TEST_VIEWS
  for (size_t i = 0; i < nmodels; i++)
    if (models[i].m->read_only)
      check_view(&models[i]);
#endif

  for (size_t i = 0; i < nmodels; i++) {
    mstate_t *ms = &models[i];
    if (ms->failed)
      continue;
#if GEN_TEST_VIEWS
    if (ms->m->read_only) {
      printf("ok %s: read-only: verified, find_all, insert refused (%d checks)\n",
             ms->name, ms->checks);
      continue;
    }
#endif
    printf("ok %s: verified, %d rows written and read back (%zu fields), "
           "%zu relations loaded (%d checks)\n",
           ms->name, NROWS, ms->m->nfields, ms->m->nrelations, ms->checks);
  }

  orm_pool_close(pool, on_closed);
  uv_run(loop, UV_RUN_DEFAULT);
  uv_loop_close(loop);
  for (size_t i = 0; i < nallocs; i++)
    free(allocs[i]);
  free(allocs);
  if (failures > 0) {
    printf("roundtrip: %d checks FAILED\n", failures);
    return 1;
  }
  printf("roundtrip: all %zu models passed\n", nmodels);
  return 0;
}
