/* SPDX-License-Identifier: MIT */
/* Models on a pool: CRUD and queries whose answers are hydrated into the
 * caller's structs on the loop, before the callback runs. The SQL of each
 * model is built once per pool, on first use. */
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "async/future.h"
#include "pool/submit.h"

#include "model/hydrate.h"
#include "model/model_int.h"
#include "model/params.h"
#include "model/query_int.h"
#include "model/relation.h"
#include "model/sql.h"
#include "model/validate.h"

/* ---- the per-pool cache: model -> its SQL --------------------------------- */

typedef struct model_entry_s {
  struct model_entry_s *next;
  orm__model_sql_t *sql;
} model_entry_t;

typedef struct {
  model_entry_t *models;
  orm__params_t params; /* scratch: each call swaps its bytes into its
                           request, and gets that buffer back to reuse */
} model_cache_t;

static void cache_free(void *data) {
  model_cache_t *c = data;
  while (c->models != NULL) {
    model_entry_t *e = c->models;
    c->models = e->next;
    orm__model_sql_free(e->sql);
    orm__free(e);
  }
  orm__params_free(&c->params);
  orm__free(c);
}

/* The model's SQL on this pool, built on first use (which also validates
 * the descriptor). */
static int model_sql(orm_pool_t *pool, const orm_model_t *model,
                     orm__model_sql_t **out, model_cache_t **cache_out) {
  orm__pool_cache_t *slot = orm__pool_cache(pool);
  model_cache_t *c = slot->data;
  if (c == NULL) {
    c = orm__calloc(1, sizeof *c);
    if (c == NULL)
      return ORM_ENOMEM;
    orm__params_init(&c->params);
    slot->data = c;
    slot->free = cache_free;
  }
  *cache_out = c;
  model_entry_t **link = &c->models;
  for (model_entry_t *e = c->models; e != NULL; link = &e->next, e = e->next) {
    if (e->sql->model == model) {
      /* Move to the front: hot models are found first. */
      *link = e->next;
      e->next = c->models;
      c->models = e;
      *out = e->sql;
      return 0;
    }
  }
  model_entry_t *e = orm__malloc(sizeof *e);
  if (e == NULL)
    return ORM_ENOMEM;
  int rc = orm__model_sql_new(&e->sql, model, NULL);
  if (rc != 0) {
    orm__free(e);
    return rc;
  }
  e->next = c->models;
  c->models = e;
  *out = e->sql;
  return 0;
}

/* ---- transforms: answers into values --------------------------------------- */

static int hydrate_value(PGresult *res, const orm_model_t *model,
                         orm_future_t *f, orm_rows_t **rows_out) {
  orm_model_error_t err = {0};
  orm_rows_t *rows = NULL;
  int rc = orm__hydrate(&rows, model, res, &err);
  PQclear(res);
  if (rc != 0) {
    if (err.message[0] != '\0')
      orm__future_set_message(f, "%s", err.message);
    return rc;
  }
  /* Rows read (not rows written back): the model's after_load. */
  orm__model_after_load(model, orm_rows_array(rows), orm_rows_count(rows));
  orm__future_set_value(f, rows, (void (*)(void *))orm_rows_free);
  if (rows_out != NULL)
    *rows_out = rows;
  return 0;
}

/* ctx: model */
static int to_rows(PGresult *res, void *const *ctx, orm_future_t *f) {
  return hydrate_value(res, ctx[0], f, NULL);
}

/* ctx: model */
static int to_one_row(PGresult *res, void *const *ctx, orm_future_t *f) {
  const orm_model_t *model = ctx[0];
  orm_rows_t *rows;
  int rc = hydrate_value(res, model, f, &rows);
  if (rc == 0 && orm_rows_count(rows) == 0) {
    orm__future_set_message(f, "no row of \"%s\" has that key", model->table);
    return ORM_ENOTFOUND;
  }
  return rc;
}

/* ctx: model, the caller's rows, field mask, row count. RETURNING gave the
 * rows as stored: generated fields are written back into the caller's
 * structs, their strings pointing into the future's value. */
static int write_back(PGresult *res, void *const *ctx, orm_future_t *f) {
  const orm_model_t *model = ctx[0];
  char *dst = ctx[1];
  uint64_t mask = (uint64_t)(uintptr_t)ctx[2];
  size_t n = (size_t)(uintptr_t)ctx[3];
  int got = PQntuples(res);
  if ((size_t)got != n) {
    PQclear(res);
    /* A BEFORE trigger (or a rule) may skip rows: not everything was
     * written, which the caller must hear about. */
    orm__future_set_message(f,
                            "RETURNING gave %d rows for %zu: a trigger or "
                            "rule skipped the others",
                            got, n);
    return ORM_ENOTFOUND;
  }
  orm_model_error_t err = {0};
  orm_rows_t *rows = NULL;
  int rc = orm__hydrate(&rows, model, res, &err);
  PQclear(res);
  /* The generated fields, copied from the rows just decoded (their strings
   * stay in the rows' arena): decoding and planning each row a second
   * time cost as much again. */
  for (size_t i = 0; rc == 0 && mask != 0 && i < n; i++) {
    const char *src = orm_rows_at(rows, i);
    char *row = dst + i * model->struct_size;
    for (size_t fi = 0; fi < model->nfields; fi++)
      if ((mask >> fi) & 1u)
        memcpy(row + model->fields[fi].offset, src + model->fields[fi].offset,
               model->fields[fi].size);
    uint64_t had = orm__row_nulls(model, row), now = orm__row_nulls(model, src);
    orm__row_set_nulls(model, row, (had & ~mask) | (now & mask));
  }
  if (rc != 0) {
    orm_rows_free(rows);
    if (err.message[0] != '\0')
      orm__future_set_message(f, "%s", err.message);
    return rc;
  }
  orm__future_set_value(f, rows, (void (*)(void *))orm_rows_free);
  return 0;
}

/* ctx: parent model, the caller's parent row, the relation, child count.
 * The result has the parent's columns then the child's, one row per
 * child (one when there is none). The parent's generated fields go back
 * into the caller's parent, each child's generated fields and foreign key
 * into the caller's child; the value is the parent as stored, with its
 * children in the relation's member. */
static int write_through(PGresult *res, void *const *ctx, orm_future_t *f) {
  const orm_model_t *pm = ctx[0];
  char *row = ctx[1];
  const orm_relation_t *rel = ctx[2];
  size_t n = (size_t)(uintptr_t)ctx[3];
  const orm_model_t *cm = rel->target();
  int np = (int)pm->nfields, nc = (int)cm->nfields;
  int fk = orm_model_field(cm, rel->key);
  uint64_t pgen = 0, cgen = UINT64_C(1) << fk;
  for (size_t i = 0; i < pm->nfields; i++)
    if (pm->fields[i].flags & ORM_F_GENERATED)
      pgen |= UINT64_C(1) << i;
  for (size_t i = 0; i < cm->nfields; i++)
    if (cm->fields[i].flags & ORM_F_GENERATED)
      cgen |= UINT64_C(1) << i;
  int got = PQntuples(res);
  if ((size_t)got != (n > 0 ? n : 1)) {
    PQclear(res);
    orm__future_set_message(f,
                            "RETURNING gave %d rows for %zu children: a "
                            "trigger or rule skipped some",
                            got, n);
    return ORM_ENOTFOUND;
  }
  bool many = orm__rel_to_many(rel);
  char *children = NULL;
  memcpy(&children, row + rel->offset, sizeof children);
  orm_model_error_t err = {0};
  orm_rows_t *parent = NULL, *stored = NULL;
  int rc = orm__rows_new(&parent, pm, 1);
  if (rc == 0)
    rc = orm__hydrate_into_cols(pm, res, 0, 0, np, parent->data,
                                orm__model_all_fields(pm), &parent->arena,
                                &err);
  if (rc == 0 && n > 0)
    rc = orm__hydrate_cols(&stored, cm, res, np, nc, &err);
  if (rc == 0 && pgen != 0)
    rc = orm__hydrate_into_cols(pm, res, 0, 0, np, row, pgen, &parent->arena,
                                &err);
  for (size_t i = 0; rc == 0 && i < n; i++)
    rc = orm__hydrate_into_cols(cm, res, (int)i, np, nc,
                                children + i * cm->struct_size, cgen,
                                &parent->arena, &err);
  PQclear(res);
  if (rc != 0) {
    orm_rows_free(stored);
    orm_rows_free(parent);
    if (err.message[0] != '\0')
      orm__future_set_message(f, "%s", err.message);
    else if (rc == ORM_ENOMEM)
      orm__future_set_message(f, "out of memory");
    return rc;
  }
  /* The caller's parent and the stored one both have the relation loaded;
   * the caller's keeps pointing at the caller's children. */
  bool loaded = true;
  void *items = stored != NULL ? orm_rows_array(stored) : NULL;
  size_t loaded_at = many ? offsetof(orm__many_slot_t, loaded)
                          : offsetof(orm__one_slot_t, loaded);
  memcpy(row + rel->offset + loaded_at, &loaded, sizeof loaded);
  char *slot = parent->data + rel->offset;
  memcpy(slot, &items, sizeof items);
  if (many)
    memcpy(slot + offsetof(orm__many_slot_t, len), &n, sizeof n);
  memcpy(slot + loaded_at, &loaded, sizeof loaded);
  if (stored != NULL)
    orm__rows_adopt(parent, stored);
  orm__future_set_value(f, parent, (void (*)(void *))orm_rows_free);
  return 0;
}

void *orm_future_row(const orm_future_t *f) {
  if (f == NULL || f->state != ORM_FUTURE_RESOLVED ||
      f->value_free != (void (*)(void *))orm_rows_free)
    return NULL;
  return orm_rows_at(f->value, 0);
}

/* ---- a refused write: a future that fails, nothing sent ---------------------- */

typedef struct {
  orm_future_t future; /* first */
  char field[ORM_MODEL_MAX_NAME + 1];
} refused_t;

static void refused_abort(orm_future_t *f, int code) {
  (void)f;
  (void)code; /* completed at birth */
}

static void refused_reclaim(orm_future_t *f) {
  orm__future_clear(f);
  orm__free(f);
}

static const orm__future_ops_t refused_ops = {refused_abort, refused_reclaim};

/* Fails the call's future with ORM_EVALIDATION, delivered from the loop
 * like any other answer. `row` is the row's place in a many-row call, or
 * SIZE_MAX. 0, or ORM_ENOMEM (then no callback). */
static int refuse(orm_exec_t *exec, const orm_model_t *model,
                  const orm_refusal_t *why, size_t row, orm_future_cb cb,
                  void *data, orm_future_t **out) {
  refused_t *r = orm__calloc(1, sizeof *r);
  if (r == NULL)
    return ORM_ENOMEM;
  orm__future_init(&r->future, &refused_ops,
                   orm__pool_sched(orm__exec_pool(exec)), cb, data);
  const char *column = why->field >= 0 && (size_t)why->field < model->nfields
                           ? model->fields[why->field].column
                           : NULL;
  if (column != NULL) {
    snprintf(r->field, sizeof r->field, "%s", column);
    r->future.error.field = r->field;
  }
  char where[48] = "";
  if (row != SIZE_MAX)
    snprintf(where, sizeof where, "row %zu: ", row);
  orm__future_set_message(&r->future, "%s: %s%s%s%s", model->table, where,
                          column != NULL ? column : "",
                          column != NULL ? ": " : "", why->message);
  if (out != NULL) {
    orm__future_ref(&r->future);
    *out = &r->future;
  }
  orm__future_complete(&r->future, ORM_EVALIDATION, ORM__LATER);
  orm__future_unref(&r->future); /* ours */
  return 0;
}

/* ---- one entry point for every model call ----------------------------------- */

typedef struct {
  orm_exec_t *exec;
  const orm_model_t *model;
  orm__model_sql_t *sql;
  orm__params_t *params;
} call_t;

static int call_begin(call_t *c, orm_exec_t *exec, const orm_model_t *model,
                      int intent, orm_future_t **out);

/* call_begin() for a call that writes: a read-only model (a view) takes
 * none. */
static int write_begin(call_t *c, orm_exec_t *exec, const orm_model_t *model,
                       orm_future_t **out) {
  int rc = call_begin(c, exec, model, ORM__WRITE, out);
  return rc == 0 && model->read_only ? ORM_ENOTSUP : rc;
}

/* `intent`: ORM__READ or ORM__WRITE, where a cluster's executor sends it
 * (cluster.c). */
static int call_begin(call_t *c, orm_exec_t *exec, const orm_model_t *model,
                      int intent, orm_future_t **out) {
  if (out != NULL)
    *out = NULL;
  if (exec == NULL || model == NULL)
    return ORM_EINVAL;
  int rc = orm__exec_usable(exec);
  if (rc != 0)
    return rc;
  exec = orm__exec_route(exec, intent);
  orm_pool_t *pool = orm__exec_pool(exec);
  model_cache_t *cache;
  rc = model_sql(pool, model, &c->sql, &cache);
  if (rc != 0)
    return rc;
  c->exec = exec;
  c->model = model;
  c->params = &cache->params;
  orm__params_reset(c->params);
  return 0;
}

/* `row_key`: the call writes one row by primary key, the last value
 * bound (see orm__params_in_t). */
static int call_run_keyed(call_t *c, const char *op, orm__sql_stmt_t *stmt,
                          int row_key, orm__transform_fn fn, void *const *ctx,
                          orm_future_cb cb, void *data, orm_future_t **out) {
  if (stmt->sql == NULL)
    return ORM_ENOTSUP;
  /* The encoded values go to the request as they are: no copy. */
  orm__params_in_t in = {.op = op,
                         .table = c->model->table,
                         .schema = c->model->schema,
                         .row_key = row_key ? (int)c->params->len : 0,
                         .n = c->params->len,
                         .buf = &c->params->buf,
                         .items = c->params->items,
                         .offsets = c->params->offsets};
  return orm__exec_submit(c->exec, stmt->sql, &stmt->hint, &in, fn, ctx, cb,
                          data, out);
}

static int call_run(call_t *c, const char *op, orm__sql_stmt_t *stmt,
                    orm__transform_fn fn, void *const *ctx, orm_future_cb cb,
                    void *data, orm_future_t **out) {
  return call_run_keyed(c, op, stmt, 0, fn, ctx, cb, data, out);
}

int (orm_find_async)(orm_exec_t *exec, const orm_model_t *model, orm_param_t key,
                     orm_future_cb cb, void *data, orm_future_t **out) {
  call_t c;
  int rc = call_begin(&c, exec, model, ORM__READ, out);
  if (rc == 0 && c.sql->pk < 0)
    rc = ORM_ENOTSUP; /* a view without a key */
  if (rc == 0)
    rc = orm__params_add_value(c.params, model, (size_t)c.sql->pk, &key);
  void *ctx[ORM__SUBMIT_CTX] = {(void *)(uintptr_t)model};
  return rc != 0 ? rc
                 : call_run(&c, "find", &c.sql->find, to_one_row, ctx, cb, data, out);
}

int (orm_find_by_async)(orm_exec_t *exec, const orm_model_t *model,
                        const char *column, orm_param_t value, orm_future_cb cb,
                        void *data, orm_future_t **out) {
  call_t c;
  int rc = call_begin(&c, exec, model, ORM__READ, out);
  if (rc != 0)
    return rc;
  if (column == NULL)
    return ORM_EINVAL;
  int f = orm_model_field(model, column);
  if (f < 0)
    return f;
  rc = orm__params_add_value(c.params, model, (size_t)f, &value);
  void *ctx[ORM__SUBMIT_CTX] = {(void *)(uintptr_t)model};
  return rc != 0 ? rc
                 : call_run(&c, "find_by", &c.sql->find_by[f], to_rows, ctx, cb, data,
                            out);
}

/* find_all / count / exists: a query, or every row. */
static int select_query(orm_exec_t *exec, const orm_model_t *model,
                        orm_query_t *query, orm_query_kind_t kind,
                        orm_future_cb cb, void *data, orm_future_t **out) {
  call_t c;
  if (query != NULL && model == NULL)
    model = orm_query_model(query);
  int rc = call_begin(&c, exec, model,
                      query != NULL && orm__query_for_update(query)
                          ? ORM__WRITE
                          : ORM__READ,
                      out);
  if (rc != 0)
    return rc;
  if (query != NULL && orm_query_model(query) != model)
    return ORM_EINVAL;
  if (kind == ORM_QUERY_SELECT && query != NULL &&
      orm__query_includes(query) != NULL)
    return orm__load_include(c.exec, query, cb, data, out);
  orm__transform_fn fn = kind == ORM_QUERY_SELECT ? to_rows : NULL;
  const char *op = kind == ORM_QUERY_SELECT  ? "find_all"
                   : kind == ORM_QUERY_COUNT ? "count"
                                             : "exists";
  void *ctx[ORM__SUBMIT_CTX] = {(void *)(uintptr_t)model};
  if (query == NULL) {
    orm__sql_stmt_t *stmt = kind == ORM_QUERY_SELECT  ? &c.sql->find_all
                            : kind == ORM_QUERY_COUNT ? &c.sql->count
                                                      : &c.sql->exists;
    return call_run(&c, op, stmt, fn, ctx, cb, data, out);
  }
  const char *sql;
  const orm_param_t *params;
  size_t n;
  rc = orm_query_sql(query, kind, &sql, &params, &n);
  if (rc != 0)
    return rc;
  orm__params_in_t in = {.values = params, .n = n, .op = op,
                         .table = model->table};
  return orm__exec_submit(c.exec, sql, NULL, &in, fn, ctx, cb, data, out);
}

static int insert(orm_exec_t *exec, const orm_model_t *model, void *rows,
                  size_t n, orm_future_cb cb, void *data, orm_future_t **out) {
  call_t c;
  int rc = write_begin(&c, exec, model, out);
  if (rc != 0)
    return rc;
  if (rows == NULL || n == 0)
    return ORM_EINVAL;
  if (model->hooks != NULL) {
    uint64_t sent = orm__model_all_fields(model) & ~c.sql->generated;
    for (size_t i = 0; i < n; i++) {
      orm_refusal_t why;
      if (orm__model_before_insert(model, (char *)rows + i * model->struct_size,
                                   sent, &why) != 0)
        return refuse(exec, model, &why, n > 1 ? i : SIZE_MAX, cb, data, out);
    }
  }
  orm__sql_stmt_t *stmt = n == 1 ? &c.sql->insert : &c.sql->insert_many;
  rc = n == 1 ? orm__params_bind_row(c.params, model, stmt, rows)
              : orm__params_bind_rows(c.params, model, stmt, rows, n);
  if (rc != 0)
    return rc;
  void *ctx[ORM__SUBMIT_CTX] = {(void *)(uintptr_t)model, rows,
                               (void *)(uintptr_t)c.sql->generated,
                               (void *)(uintptr_t)n};
  return call_run(&c, n == 1 ? "insert" : "insert_many", stmt, write_back, ctx,
                  cb, data, out);
}

/* The parent's statement with relation `ri`'s children, built on first
 * use. */
static int insert_with_stmt(orm__model_sql_t *ps, size_t ri, orm__model_sql_t *cs, int fk,
                            orm__sql_stmt_t **stmt, uint64_t *child_fields) {
  size_t nrel = ps->model->nrelations;
  if (ps->insert_with == NULL) {
    ps->insert_with = orm__calloc(nrel, sizeof *ps->insert_with);
    ps->insert_with_child = orm__calloc(nrel, sizeof *ps->insert_with_child);
    if (ps->insert_with == NULL || ps->insert_with_child == NULL) {
      orm__free(ps->insert_with);
      orm__free(ps->insert_with_child);
      ps->insert_with = NULL;
      ps->insert_with_child = NULL;
      return ORM_ENOMEM;
    }
  }
  if (ps->insert_with[ri].sql == NULL) {
    int rc = orm__model_sql_insert_with(ps, cs, fk, &ps->insert_with[ri],
                                        &ps->insert_with_child[ri]);
    if (rc != 0)
      return rc;
  }
  *stmt = &ps->insert_with[ri];
  *child_fields = ps->insert_with_child[ri];
  return 0;
}

int (orm_insert_with_async)(orm_exec_t *exec, const orm_model_t *model,
                            void *row, const char *relation, orm_future_cb cb,
                            void *data, orm_future_t **out) {
  call_t c;
  int rc = write_begin(&c, exec, model, out);
  if (rc != 0)
    return rc;
  if (row == NULL || relation == NULL)
    return ORM_EINVAL;
  const orm_relation_t *rel = orm_model_relation(model, relation);
  if (rel == NULL)
    return ORM_ENORELATION;
  if (rel->kind != ORM_HAS_MANY && rel->kind != ORM_HAS_ONE)
    return ORM_ENOTSUP;
  const orm_model_t *child = rel->target();
  if (child->read_only)
    return ORM_ENOTSUP; /* children in a view */
  orm__model_sql_t *cs;
  model_cache_t *cache;
  if ((rc = model_sql(orm__exec_pool(exec), child, &cs, &cache)) != 0)
    return rc;
  int fk = orm_model_field(child, rel->key);
  /* The children: the relation's member of the caller's row. */
  char *slot = (char *)row + rel->offset;
  void *items;
  size_t n = 0;
  memcpy(&items, slot, sizeof items);
  if (rel->kind == ORM_HAS_MANY)
    memcpy(&n, slot + offsetof(orm__many_slot_t, len), sizeof n);
  else
    n = items != NULL;
  if (n > 0 && items == NULL)
    return ORM_EINVAL;
  orm__sql_stmt_t *stmt;
  uint64_t child_fields;
  rc = insert_with_stmt(c.sql, (size_t)(rel - model->relations), cs, fk,
                        &stmt, &child_fields);
  if (rc != 0)
    return rc;
  /* The parent and every child pass, or nothing is sent. (The children's
   * key to the parent is filled by the server: not theirs to check.) */
  orm_refusal_t why;
  if (orm__model_before_insert(model, row, stmt->fields, &why) != 0)
    return refuse(exec, model, &why, SIZE_MAX, cb, data, out);
  for (size_t i = 0; i < n && child->hooks != NULL; i++)
    if (orm__model_before_insert(child, (char *)items + i * child->struct_size,
                                 child_fields, &why) != 0)
      return refuse(exec, child, &why, i, cb, data, out);
  rc = orm__params_bind_row(c.params, model, stmt, row);
  orm__sql_stmt_t arrays = {.fields = child_fields, .key = -1};
  if (rc == 0)
    rc = orm__params_bind_rows(c.params, child, &arrays, items, n);
  if (rc != 0)
    return rc;
  void *ctx[ORM__SUBMIT_CTX] = {(void *)(uintptr_t)model, row,
                               (void *)(uintptr_t)rel, (void *)(uintptr_t)n};
  return call_run(&c, "insert_with", stmt, write_through, ctx, cb, data, out);
}

int (orm_update_async)(orm_exec_t *exec, const orm_model_t *model,
                       void *row, uint64_t fields, orm_future_cb cb,
                       void *data, orm_future_t **out) {
  call_t c;
  int rc = write_begin(&c, exec, model, out);
  if (rc != 0)
    return rc;
  if (row == NULL)
    return ORM_EINVAL;
  if (model->hooks != NULL) {
    /* The fields the UPDATE writes: these, or every one it can. */
    uint64_t writes = fields != 0 ? fields : c.sql->update.fields;
    orm_refusal_t why;
    if (orm__model_before_update(model, row, fields, writes,
                                 &why) != 0)
      return refuse(exec, model, &why, SIZE_MAX, cb, data, out);
  }
  if (fields == 0) {
    if ((rc = orm__params_bind_row(c.params, model, &c.sql->update, row)) != 0)
      return rc;
    return call_run_keyed(&c, "update", &c.sql->update, 1, NULL, NULL, cb,
                          data, out);
  }
  orm__sql_stmt_t *stmt;
  if ((rc = orm__model_sql_update_cached(c.sql, fields, &stmt)) != 0)
    return rc;
  rc = orm__params_bind_row(c.params, model, stmt, row);
  return rc != 0 ? rc
                 : call_run_keyed(&c, "update", stmt, 1, NULL, NULL, cb, data,
                                  out);
}

int (orm_update_many_async)(orm_exec_t *exec, const orm_model_t *model,
                            void *rows, size_t n, uint64_t fields,
                            orm_future_cb cb, void *data, orm_future_t **out) {
  call_t c;
  int rc = write_begin(&c, exec, model, out);
  if (rc != 0)
    return rc;
  if (rows == NULL || n == 0)
    return ORM_EINVAL;
  if (c.sql->pk < 0)
    return ORM_ENOTSUP; /* a view, or no key to match rows by */
  /* The fields the UPDATE writes: these, or every one it can. */
  uint64_t writes = fields != 0 ? fields : c.sql->update.fields;
  if (writes == 0)
    return ORM_ENOTSUP;
  if (model->hooks != NULL) {
    for (size_t i = 0; i < n; i++) {
      orm_refusal_t why;
      if (orm__model_before_update(model, (char *)rows + i * model->struct_size,
                                   fields, writes, &why) != 0)
        return refuse(exec, model, &why, n > 1 ? i : SIZE_MAX, cb, data, out);
    }
  }
  orm__sql_stmt_t *stmt;
  if ((rc = orm__model_sql_update_many_cached(c.sql, writes, &stmt)) != 0)
    return rc;
  if ((rc = orm__params_bind_rows(c.params, model, stmt, rows, n)) != 0)
    return rc;
  return call_run(&c, "update_many", stmt, NULL, NULL, cb, data, out);
}

int (orm_delete_async)(orm_exec_t *exec, const orm_model_t *model,
                       orm_param_t key, orm_future_cb cb, void *data,
                       orm_future_t **out) {
  call_t c;
  int rc = write_begin(&c, exec, model, out);
  if (rc == 0 && c.sql->pk < 0)
    rc = ORM_ENOTSUP;
  orm_refusal_t why;
  if (rc == 0 && orm__model_before_delete(model, &key, &why) != 0)
    return refuse(exec, model, &why, SIZE_MAX, cb, data, out);
  if (rc == 0)
    rc = orm__params_add_value(c.params, model, (size_t)c.sql->pk, &key);
  return rc != 0 ? rc
                 : call_run_keyed(&c, "delete", &c.sql->remove, 1, NULL, NULL,
                                  cb, data, out);
}

int (orm_upsert_async)(orm_exec_t *exec, const orm_model_t *model, void *row,
                       const char *conflict, orm_future_cb cb, void *data,
                       orm_future_t **out) {
  call_t c;
  int rc = write_begin(&c, exec, model, out);
  if (rc != 0)
    return rc;
  if (row == NULL)
    return ORM_EINVAL;
  int f = conflict != NULL ? orm_model_field(model, conflict) : c.sql->pk;
  if (f < 0)
    return f;
  orm__sql_stmt_t *stmt = &c.sql->upsert[f];
  if (stmt->sql == NULL)
    return ORM_EINVAL; /* neither the primary key nor a unique column */
  if (model->hooks != NULL) {
    orm_refusal_t why;
    if (orm__model_before_insert(model, row, stmt->fields, &why) != 0)
      return refuse(exec, model, &why, SIZE_MAX, cb, data, out);
  }
  if ((rc = orm__params_bind_row(c.params, model, stmt, row)) != 0)
    return rc;
  void *ctx[ORM__SUBMIT_CTX] = {(void *)(uintptr_t)model, row,
                               (void *)(uintptr_t)c.sql->generated,
                               (void *)(uintptr_t)1};
  return call_run(&c, "upsert", stmt, write_back, ctx, cb, data, out);
}

/* ---- public calls ------------------------------------------------------------ */

int (orm_find_all_async)(orm_exec_t *exec, const orm_model_t *model,
                         orm_query_t *query, orm_future_cb cb, void *data,
                         orm_future_t **out) {
  return select_query(exec, model, query, ORM_QUERY_SELECT, cb, data, out);
}

int (orm_count_async)(orm_exec_t *exec, const orm_model_t *model,
                      orm_query_t *query, orm_future_cb cb, void *data,
                      orm_future_t **out) {
  return select_query(exec, model, query, ORM_QUERY_COUNT, cb, data, out);
}

int (orm_exists_async)(orm_exec_t *exec, const orm_model_t *model,
                       orm_query_t *query, orm_future_cb cb, void *data,
                       orm_future_t **out) {
  return select_query(exec, model, query, ORM_QUERY_EXISTS, cb, data, out);
}

int (orm_insert_async)(orm_exec_t *exec, const orm_model_t *model, void *row,
                       orm_future_cb cb, void *data, orm_future_t **out) {
  return insert(exec, model, row, 1, cb, data, out);
}

int (orm_insert_many_async)(orm_exec_t *exec, const orm_model_t *model,
                            void *rows, size_t n, orm_future_cb cb, void *data,
                            orm_future_t **out) {
  return insert(exec, model, rows, n, cb, data, out);
}
