/* SPDX-License-Identifier: MIT */
/* SQL generation for models: quoting, the select list, and the CRUD
 * statements every model gets once. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"

#include "model/model_int.h"
#include "model/sql.h"

/* ---- SQL text ----------------------------------------------------------- */

void orm__sql_putn(orm__sql_text_t *t, const char *s, size_t n) {
  if (t->error == 0 && orm__buf_append(&t->buf, s, n) != 0)
    t->error = ORM_ENOMEM;
}

void orm__sql_put(orm__sql_text_t *t, const char *s) {
  orm__sql_putn(t, s, strlen(s));
}

void orm__sql_ident(orm__sql_text_t *t, const char *name) {
  orm__sql_putn(t, "\"", 1);
  const char *p = name;
  for (const char *q; (q = strchr(p, '"')) != NULL; p = q + 1) {
    orm__sql_putn(t, p, (size_t)(q - p) + 1);
    orm__sql_putn(t, "\"", 1);
  }
  orm__sql_put(t, p);
  orm__sql_putn(t, "\"", 1);
}

void orm__sql_table(orm__sql_text_t *t, const orm_model_t *model) {
  if (model->schema != NULL) {
    orm__sql_ident(t, model->schema);
    orm__sql_putn(t, ".", 1);
  }
  orm__sql_ident(t, model->table);
}

void orm__sql_param(orm__sql_text_t *t, size_t n) {
  char num[24];
  int len = snprintf(num, sizeof num, "$%zu", n);
  orm__sql_putn(t, num, (size_t)len);
}

void orm__sql_columns(orm__sql_text_t *t, const orm_model_t *model,
                      uint64_t fields) {
  const char *sep = "";
  for (size_t i = 0; i < model->nfields; i++) {
    if (!((fields >> i) & 1u))
      continue;
    orm__sql_put(t, sep);
    orm__sql_ident(t, model->fields[i].column);
    sep = ", ";
  }
}

char *orm__sql_take(orm__sql_text_t *t, int *error) {
  orm__sql_putn(t, "", 1);
  if (t->error != 0) {
    *error = t->error;
    orm__sql_discard(t);
    return NULL;
  }
  char *s = t->buf.data;
  orm__buf_init(&t->buf);
  *error = 0;
  return s;
}

void orm__sql_discard(orm__sql_text_t *t) {
  orm__buf_free(&t->buf);
  t->error = 0;
}

/* ---- statements --------------------------------------------------------- */

/* alias."a", alias."b", ...: every column of `model`. */
static void put_qualified(orm__sql_text_t *t, const char *alias,
                          const orm_model_t *model) {
  for (size_t i = 0; i < model->nfields; i++) {
    if (i > 0)
      orm__sql_put(t, ", ");
    orm__sql_put(t, alias);
    orm__sql_put(t, ".");
    orm__sql_ident(t, model->fields[i].column);
  }
}

/* The fields as "a" = $first, "b" = $first+1, ...; returns the next
 * parameter number. */
static size_t put_assignments(orm__sql_text_t *t, const orm_model_t *model,
                              uint64_t fields, size_t first) {
  size_t n = first;
  for (size_t i = 0; i < model->nfields; i++) {
    if (!((fields >> i) & 1u))
      continue;
    if (n > first)
      orm__sql_put(t, ", ");
    orm__sql_ident(t, model->fields[i].column);
    orm__sql_put(t, " = ");
    orm__sql_param(t, n++);
  }
  return n;
}

static void put_select(orm__sql_text_t *t, const orm__model_sql_t *s) {
  orm__sql_put(t, "SELECT ");
  orm__sql_put(t, s->columns);
  orm__sql_put(t, " FROM ");
  orm__sql_table(t, s->model);
}

static void put_returning(orm__sql_text_t *t, const orm__model_sql_t *s) {
  orm__sql_put(t, " RETURNING ");
  orm__sql_put(t, s->columns);
}

static void put_where_key(orm__sql_text_t *t, const orm_model_t *model,
                          int key, size_t n) {
  orm__sql_put(t, " WHERE ");
  orm__sql_ident(t, model->fields[key].column);
  orm__sql_put(t, " = ");
  orm__sql_param(t, n);
}

static int finish(orm__sql_text_t *t, orm__sql_stmt_t *st, uint64_t fields,
                  int key) {
  int rc = 0;
  st->sql = orm__sql_take(t, &rc);
  st->fields = fields;
  st->key = key;
  st->hint = (orm__stmt_hint_t){NULL};
  return rc;
}

static int popcount64(uint64_t v) {
  int n = 0;
  for (; v != 0; v &= v - 1)
    n++;
  return n;
}

/* INSERT INTO t (cols) VALUES ($1, ...) — the part an upsert shares. */
static void put_insert_values(orm__sql_text_t *t, const orm_model_t *model,
                              uint64_t fields) {
  orm__sql_put(t, "INSERT INTO ");
  orm__sql_table(t, model);
  if (fields == 0) {
    orm__sql_put(t, " DEFAULT VALUES");
    return;
  }
  orm__sql_put(t, " (");
  orm__sql_columns(t, model, fields);
  orm__sql_put(t, ") VALUES (");
  int n = popcount64(fields);
  for (int i = 1; i <= n; i++) {
    if (i > 1)
      orm__sql_put(t, ", ");
    orm__sql_param(t, (size_t)i);
  }
  orm__sql_put(t, ")");
}

/* A string literal that means `s` whatever standard_conforming_strings
 * says: E'...' with backslashes and quotes doubled. */
static void put_literal(orm__sql_text_t *t, const char *s) {
  orm__sql_put(t, "E'");
  for (; *s != '\0'; s++) {
    if (*s == '\\' || *s == '\'')
      orm__sql_putn(t, s, 1);
    orm__sql_putn(t, s, 1);
  }
  orm__sql_put(t, "'");
}

const char *orm__sql_array_type(orm_type_t type) {
  switch (type) {
  case ORM_T_INT2:
    return "int2[]";
  case ORM_T_INT4:
    return "int4[]";
  case ORM_T_INT8:
    return "int8[]";
  case ORM_T_FLOAT4:
    return "float4[]";
  case ORM_T_FLOAT8:
    return "float8[]";
  case ORM_T_BOOL:
    return "bool[]";
  case ORM_T_JSON:
    return "json[]";
  case ORM_T_JSONB:
    return "jsonb[]";
  case ORM_T_BYTEA:
    return "bytea[]";
  case ORM_T_TIMESTAMP:
    return "timestamp[]";
  case ORM_T_TIMESTAMPTZ:
    return "timestamptz[]";
  case ORM_T_DATE:
    return "date[]";
  case ORM_T_UUID:
    return "uuid[]";
  case ORM_T_NUMERIC:
    return "numeric[]";
  default: /* TEXT, ENUM, and array literals for INT_ARRAY, TEXT_ARRAY */
    return "text[]";
  }
}

/* Field `f`'s value from the row of unnest() "u", as its column's type:
 * enums through text and the table's row type, array columns from their
 * literals. */
static void put_unnested(orm__sql_text_t *t, const orm_model_t *model,
                         const orm_field_t *f) {
  switch (f->type) {
  case ORM_T_ENUM:
    orm__sql_put(t, "(json_populate_record(NULL::");
    orm__sql_table(t, model);
    orm__sql_put(t, ", json_build_object(");
    put_literal(t, f->column);
    orm__sql_put(t, ", u.");
    orm__sql_ident(t, f->column);
    orm__sql_put(t, ")))."); /* the record's field */
    orm__sql_ident(t, f->column);
    break;
  case ORM_T_INT_ARRAY:
  case ORM_T_TEXT_ARRAY:
    orm__sql_put(t, "u.");
    orm__sql_ident(t, f->column);
    orm__sql_put(t, f->type == ORM_T_INT_ARRAY ? "::int8[]" : "::text[]");
    break;
  default:
    orm__sql_put(t, "u.");
    orm__sql_ident(t, f->column);
    break;
  }
}

/* unnest($first::type[], ...) AS u("a", ...): one array per field of
 * `fields`, in field order. */
static void put_unnest(orm__sql_text_t *t, const orm_model_t *model,
                       uint64_t fields, size_t first) {
  orm__sql_put(t, "unnest(");
  size_t n = first;
  for (size_t i = 0; i < model->nfields; i++) {
    if (!((fields >> i) & 1u))
      continue;
    if (n > first)
      orm__sql_put(t, ", ");
    orm__sql_param(t, n++);
    orm__sql_put(t, "::");
    orm__sql_put(t, orm__sql_array_type(model->fields[i].type));
  }
  orm__sql_put(t, ") AS u(");
  orm__sql_columns(t, model, fields);
  orm__sql_put(t, ")");
}

/* INSERT INTO t (fields) SELECT ... FROM unnest($first::type[], ...): the
 * fields in field order, each from an array. With `fk` >= 0, that field is
 * not in `fields` and comes from the row of CTE "p" instead (its column
 * `parent_key`), once per array element. */
static void put_insert_many(orm__sql_text_t *t, const orm_model_t *model,
                            uint64_t fields, size_t first, int fk,
                            const char *parent_key) {
  uint64_t fk_bit = fk >= 0 ? UINT64_C(1) << fk : 0;
  orm__sql_put(t, "INSERT INTO ");
  orm__sql_table(t, model);
  orm__sql_put(t, " (");
  orm__sql_columns(t, model, fields | fk_bit);
  orm__sql_put(t, ") SELECT ");
  const char *sep = "";
  for (size_t i = 0; i < model->nfields; i++) {
    if (!(((fields | fk_bit) >> i) & 1u))
      continue;
    const orm_field_t *f = &model->fields[i];
    orm__sql_put(t, sep);
    sep = ", ";
    if ((int)i == fk) {
      orm__sql_put(t, "p.");
      orm__sql_ident(t, parent_key);
      continue;
    }
    put_unnested(t, model, f);
  }
  orm__sql_put(t, fk >= 0 ? " FROM p, " : " FROM ");
  put_unnest(t, model, fields, first);
}

/* INSERT ... ON CONFLICT (target) DO UPDATE SET c = EXCLUDED.c, ... */
static void put_upsert(orm__sql_text_t *t, const orm__model_sql_t *s,
                       uint64_t fields, int target) {
  const orm_model_t *model = s->model;
  put_insert_values(t, model, fields);
  orm__sql_put(t, " ON CONFLICT (");
  orm__sql_ident(t, model->fields[target].column);
  orm__sql_put(t, ") DO UPDATE SET ");
  uint64_t set = fields & ~(UINT64_C(1) << target) & ~(UINT64_C(1) << s->pk);
  /* Nothing else to set: a no-op assignment still makes RETURNING give the
   * existing row, which DO NOTHING would not. */
  if (set == 0)
    set = UINT64_C(1) << target;
  const char *sep = "";
  for (size_t i = 0; i < model->nfields; i++) {
    if (!((set >> i) & 1u))
      continue;
    orm__sql_put(t, sep);
    sep = ", ";
    orm__sql_ident(t, model->fields[i].column);
    orm__sql_put(t, " = EXCLUDED.");
    orm__sql_ident(t, model->fields[i].column);
  }
  put_returning(t, s);
}

static int build_update(const orm__model_sql_t *s, uint64_t fields,
                        orm__sql_stmt_t *out) {
  orm__sql_text_t t = {0};
  orm__sql_put(&t, "UPDATE ");
  orm__sql_table(&t, s->model);
  orm__sql_put(&t, " SET ");
  size_t next = put_assignments(&t, s->model, fields, 1);
  put_where_key(&t, s->model, s->pk, next);
  put_returning(&t, s);
  return finish(&t, out, fields, s->pk);
}

/* UPDATE t AS t SET "f" = u."f", ... FROM unnest(...) AS u(...)
 * WHERE t."pk" = u."pk" RETURNING t.*: `fields` and the key, one array
 * each, in field order. */
static int build_update_many(const orm__model_sql_t *s, uint64_t fields,
                             orm__sql_stmt_t *out) {
  const orm_model_t *model = s->model;
  uint64_t sent = fields | UINT64_C(1) << s->pk;
  orm__sql_text_t t = {0};
  orm__sql_put(&t, "UPDATE ");
  orm__sql_table(&t, model);
  orm__sql_put(&t, " AS t SET ");
  const char *sep = "";
  for (size_t i = 0; i < model->nfields; i++) {
    if (!((fields >> i) & 1u))
      continue;
    orm__sql_put(&t, sep);
    sep = ", ";
    orm__sql_ident(&t, model->fields[i].column);
    orm__sql_put(&t, " = ");
    put_unnested(&t, model, &model->fields[i]);
  }
  orm__sql_put(&t, " FROM ");
  put_unnest(&t, model, sent, 1);
  orm__sql_put(&t, " WHERE t.");
  orm__sql_ident(&t, model->fields[s->pk].column);
  orm__sql_put(&t, " = u.");
  orm__sql_ident(&t, model->fields[s->pk].column);
  orm__sql_put(&t, " RETURNING ");
  put_qualified(&t, "t", model);
  return finish(&t, out, sent, -1);
}

static int build_all(orm__model_sql_t *s) {
  const orm_model_t *model = s->model;
  uint64_t all = orm__model_all_fields(model);
  bool keyed = s->pk >= 0, writable = !model->read_only;
  uint64_t pk_bit = keyed ? UINT64_C(1) << s->pk : 0;
  uint64_t insertable = all & ~s->generated;
  orm__sql_text_t t = {0};
  int rc = 0;

  orm__sql_columns(&t, model, all);
  s->columns = orm__sql_take(&t, &rc);
  if (s->columns == NULL)
    return rc;

  /* A statement left NULL is one the model cannot run (a view: no
   * writes; without a key: no find or delete by key): ORM_ENOTSUP. */
  if (keyed) {
    put_select(&t, s);
    put_where_key(&t, model, s->pk, 1);
    if ((rc = finish(&t, &s->find, 0, s->pk)) != 0)
      return rc;
  }

  put_select(&t, s);
  if (keyed) {
    orm__sql_put(&t, " ORDER BY ");
    orm__sql_ident(&t, model->fields[s->pk].column);
  }
  if ((rc = finish(&t, &s->find_all, 0, -1)) != 0)
    return rc;

  orm__sql_put(&t, "SELECT count(*) FROM ");
  orm__sql_table(&t, model);
  if ((rc = finish(&t, &s->count, 0, -1)) != 0)
    return rc;

  /* orm_exists_async without a query: whether there is any row. */
  orm__sql_put(&t, "SELECT EXISTS (SELECT 1 FROM ");
  orm__sql_table(&t, model);
  orm__sql_put(&t, ")");
  if ((rc = finish(&t, &s->exists, 0, -1)) != 0)
    return rc;

  if (writable) {
    put_insert_values(&t, model, insertable);
    put_returning(&t, s);
    if ((rc = finish(&t, &s->insert, insertable, -1)) != 0)
      return rc;
  }

  if (writable && insertable != 0) {
    put_insert_many(&t, model, insertable, 1, -1, NULL);
    put_returning(&t, s);
    if ((rc = finish(&t, &s->insert_many, insertable, -1)) != 0)
      return rc;
  }

  uint64_t updatable = insertable & ~pk_bit;
  if (writable && keyed && updatable != 0 &&
      (rc = build_update(s, updatable, &s->update)) != 0)
    return rc;

  if (writable && keyed) {
    orm__sql_put(&t, "DELETE FROM ");
    orm__sql_table(&t, model);
    put_where_key(&t, model, s->pk, 1);
    if ((rc = finish(&t, &s->remove, 0, s->pk)) != 0)
      return rc;
  }

  for (size_t i = 0; i < model->nfields; i++) {
    /* json has no equality operator. */
    if (model->fields[i].type != ORM_T_JSON) {
      put_select(&t, s);
      put_where_key(&t, model, (int)i, 1);
      if ((rc = finish(&t, &s->find_by[i], 0, (int)i)) != 0)
        return rc;
    }
    if (!writable || ((int)i != s->pk && !(model->fields[i].flags & ORM_F_UNIQUE)))
      continue;
    uint64_t fields = insertable | (UINT64_C(1) << i);
    put_upsert(&t, s, fields, (int)i);
    if ((rc = finish(&t, &s->upsert[i], fields, -1)) != 0)
      return rc;
  }
  return 0;
}

int orm__model_sql_new(orm__model_sql_t **out, const orm_model_t *model,
                       orm_model_error_t *err) {
  if (out == NULL)
    return ORM_EINVAL;
  *out = NULL;
  int rc = orm_model_check_detail(model, err);
  if (rc != 0)
    return rc;
  orm__model_sql_t *s = orm__calloc(1, sizeof *s);
  if (s == NULL)
    return ORM_ENOMEM;
  s->model = model;
  s->pk = orm_model_pk(model);
  for (size_t i = 0; i < model->nfields; i++)
    if (model->fields[i].flags & ORM_F_GENERATED)
      s->generated |= UINT64_C(1) << i;
  s->find_by = orm__calloc(model->nfields, sizeof *s->find_by);
  s->upsert = orm__calloc(model->nfields, sizeof *s->upsert);
  rc = s->find_by != NULL && s->upsert != NULL ? build_all(s) : ORM_ENOMEM;
  if (rc != 0) {
    orm__model_sql_free(s);
    orm__model_error_set(err, rc, -1, -1, "%s", orm_strerror(rc));
    return rc;
  }
  *out = s;
  return 0;
}

void orm__model_sql_free(orm__model_sql_t *s) {
  if (s == NULL)
    return;
  orm__free(s->columns);
  orm__sql_stmt_t *single[] = {&s->find,   &s->find_all,    &s->count,
                               &s->exists, &s->insert,      &s->insert_many,
                               &s->update, &s->remove};
  for (size_t i = 0; i < sizeof single / sizeof single[0]; i++)
    orm__free(single[i]->sql);
  for (size_t i = 0; i < s->model->nfields; i++) {
    if (s->find_by != NULL)
      orm__free(s->find_by[i].sql);
    if (s->upsert != NULL)
      orm__free(s->upsert[i].sql);
  }
  for (size_t i = 0; s->insert_with != NULL && i < s->model->nrelations; i++)
    orm__free(s->insert_with[i].sql);
  orm__free(s->insert_with);
  orm__free(s->insert_with_child);
  for (size_t i = 0; i < ORM__UPDATE_MASKS; i++) {
    orm__free(s->update_masks.stmts[i].sql);
    orm__free(s->update_many_masks.stmts[i].sql);
  }
  orm__free(s->find_by);
  orm__free(s->upsert);
  orm__free(s);
}

int orm__model_sql_update_fields(const orm__model_sql_t *s, uint64_t fields,
                                 orm__sql_stmt_t *out) {
  if (s == NULL || out == NULL || fields == 0 ||
      (fields & ~orm__model_all_fields(s->model)) != 0 ||
      (fields & (UINT64_C(1) << s->pk)) != 0)
    return ORM_EINVAL;
  return build_update(s, fields, out);
}

/* The statement for `fields` from a cache of the last ORM__UPDATE_MASKS
 * masks used, built by `build` on a miss. */
static int mask_cached(orm__model_sql_t *s, orm__sql_mask_cache_t *cache,
                       uint64_t fields,
                       int (*build)(const orm__model_sql_t *, uint64_t,
                                    orm__sql_stmt_t *),
                       orm__sql_stmt_t **out) {
  for (size_t i = 0; i < ORM__UPDATE_MASKS; i++) {
    if (cache->stmts[i].sql != NULL && cache->keys[i] == fields) {
      *out = &cache->stmts[i];
      return 0;
    }
  }
  orm__sql_stmt_t st;
  int rc = build(s, fields, &st);
  if (rc != 0)
    return rc;
  size_t i = cache->next++ % ORM__UPDATE_MASKS;
  orm__free(cache->stmts[i].sql);
  cache->stmts[i] = st;
  cache->keys[i] = fields;
  *out = &cache->stmts[i];
  return 0;
}

int orm__model_sql_update_cached(orm__model_sql_t *s, uint64_t fields,
                                 orm__sql_stmt_t **out) {
  return mask_cached(s, &s->update_masks, fields,
                     orm__model_sql_update_fields, out);
}

int orm__model_sql_update_many_fields(const orm__model_sql_t *s,
                                      uint64_t fields, orm__sql_stmt_t *out) {
  if (s == NULL || out == NULL || s->pk < 0 || fields == 0 ||
      (fields & ~orm__model_all_fields(s->model)) != 0 ||
      (fields & (UINT64_C(1) << s->pk)) != 0)
    return ORM_EINVAL;
  return build_update_many(s, fields, out);
}

int orm__model_sql_update_many_cached(orm__model_sql_t *s, uint64_t fields,
                                      orm__sql_stmt_t **out) {
  return mask_cached(s, &s->update_many_masks, fields,
                     orm__model_sql_update_many_fields, out);
}

int orm__model_sql_insert_with(const orm__model_sql_t *parent,
                               const orm__model_sql_t *child, int fk,
                               orm__sql_stmt_t *out, uint64_t *child_fields) {
  const orm_model_t *pm = parent->model, *cm = child->model;
  uint64_t pfields = orm__model_all_fields(pm) & ~parent->generated;
  uint64_t cfields =
      orm__model_all_fields(cm) & ~child->generated & ~(UINT64_C(1) << fk);
  if (cfields == 0)
    return ORM_ENOTSUP; /* nothing to send per child: no arrays to unnest */
  orm__sql_text_t t = {0};
  orm__sql_put(&t, "WITH p AS (");
  put_insert_values(&t, pm, pfields);
  put_returning(&t, parent);
  orm__sql_put(&t, "), c AS (");
  put_insert_many(&t, cm, cfields, (size_t)popcount64(pfields) + 1, fk,
                  pm->fields[parent->pk].column);
  put_returning(&t, child);
  orm__sql_put(&t, ") SELECT ");
  put_qualified(&t, "p", pm);
  orm__sql_put(&t, ", ");
  put_qualified(&t, "c", cm);
  orm__sql_put(&t, " FROM p LEFT JOIN c ON true");
  *child_fields = cfields;
  return finish(&t, out, pfields, -1);
}
