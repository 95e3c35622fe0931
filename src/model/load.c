/* SPDX-License-Identifier: MIT */
/* Loading relations: eager includes on a query, preloads of rows in hand.
 *
 * The query and every relation of an include tree are one statement each,
 * and all of them go out together: one round trip. A statement does not
 * wait for its parent's rows to learn their keys: the parent's statement
 * leaves them on the server, in a setting local to the transaction, and the
 * child's statement reads them there:
 *
 *   BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY
 *   query     WITH r AS (SELECT ... FROM "conversations" WHERE ... LIMIT $2),
 *             k AS (SELECT set_config('uvorm.k0',
 *                     coalesce(array_agg(r."id")::text, '{}'), true) FROM r)
 *             SELECT r.* FROM k LEFT JOIN r ON true
 *   messages  WITH r AS (SELECT ... FROM "messages" WHERE "conversation_id"
 *               = ANY(current_setting('uvorm.k0')::int8[])
 *               ORDER BY "conversation_id", "id"), k AS (... 'uvorm.k1' ...)
 *             SELECT r.* FROM k LEFT JOIN r ON true
 *   usage     SELECT ... FROM "usage_records" WHERE "message_id"
 *               = ANY(current_setting('uvorm.k1')::int8[])
 *             ORDER BY "message_id", "id"
 *   COMMIT
 *
 * Each statement runs once, and the children's take no parameters, so the
 * server plans them once per connection (a generic plan). Repeatable read
 * gives them one snapshot: no child is missing or orphaned whatever runs
 * meanwhile. (Two designs were measured and dropped, bench/README.md: the
 * children as subqueries over the query, which re-ran the query and every
 * level above in each statement and was planned anew each time, 0.47x
 * the 1+K throughput; and one statement of CTEs joined by UNION ALL,
 * which sorted wide rows of NULLs, 0.41x.) In the caller's transaction
 * the statements run in it, without BEGIN and COMMIT. A preload selects
 * its top relations by "= ANY($1)" over the keys in hand, one statement
 * per chunk of keys.
 *
 * Children of a to-many relation come ordered by their parent's key first,
 * so each parent's children are one run of the result: the parent's member
 * points at the run, and no row is copied. Rows are matched to parents
 * through a hash map of keys. */
#include <stdalign.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/wire.h"
#include "async/future.h"
#include "pool/submit.h"

#include "model/hydrate.h"
#include "model/model_int.h"
#include "model/query_int.h"
#include "model/relation.h"
#include "model/validate.h"
#include "model/sql.h"

/* The chunk a preload cuts keys into; another one may be compiled in to
 * measure (bench/preload_chunk.c). */
#ifndef ORM__PRELOAD_CHUNK
#define ORM__PRELOAD_CHUNK ORM_PRELOAD_CHUNK
#endif

typedef orm__many_slot_t many_slot_t;
typedef orm__one_slot_t one_slot_t;

typedef struct {
  orm_future_t future; /* first: a load is a future */
  orm__includes_t inc;
  bool preload;
  /* The parents of the top relations: the query's rows, hydrated here, or
   * the caller's. */
  orm_rows_t *root;
  /* Node i's rows of chunk c are rows[first[i] + c]; a node has the chunks
   * of the top relation above it. */
  size_t nchunks[ORM_QUERY_MAX_INCLUDES];
  size_t first[ORM_QUERY_MAX_INCLUDES];
  orm_rows_t **rows;
  orm__key_t **from; /* for many-to-many rows: each row's parent key */
  size_t nrows;
  /* Statements sent, referenced until all have completed. */
  orm_future_t **stmts;
  size_t nstmts;
  size_t pending;
  int status; /* the first failure */
  bool done;  /* the future has completed (aborted) */
} load_t;

/* The top relation above node i. */
static int top_of(const orm__includes_t *inc, int i) {
  while (inc->nodes[i].parent >= 0)
    i = inc->nodes[i].parent;
  return i;
}

/* ---- SQL ------------------------------------------------------------------ */

static void put_join_table(orm__sql_text_t *t, const orm__rel_t *r) {
  if (r->join_schema != NULL) {
    orm__sql_ident(t, r->join_schema);
    orm__sql_put(t, ".");
  }
  orm__sql_ident(t, r->join_table);
}

/* The setting that carries node i's keys from its parent's statement. */
static void put_setting(orm__sql_text_t *t, int i) {
  char name[32];
  snprintf(name, sizeof name, "'uvorm.k%d'", i);
  orm__sql_put(t, name);
}

/* Node i's rows: selected by the keys its parent's statement left in a
 * setting, or by $1 at the top of a preload; ordered by the key that hangs
 * them on their parents, then by the relation's order. */
static void put_node_select(orm__sql_text_t *t, const orm__includes_t *inc,
                            int i, bool preload) {
  const orm__include_t *n = &inc->nodes[i];
  const orm__rel_t *r = &n->rel;
  bool m2m = r->rel->kind == ORM_MANY_TO_MANY;
  const char *q = m2m ? "t." : "";
  orm__sql_put(t, "SELECT ");
  if (m2m) {
    orm__sql_put(t, "j.");
    orm__sql_ident(t, r->join_from);
    orm__sql_put(t, " AS orm__from");
    for (size_t f = 0; f < r->target->nfields; f++) {
      orm__sql_put(t, ", t.");
      orm__sql_ident(t, r->target->fields[f].column);
    }
    orm__sql_put(t, " FROM ");
    put_join_table(t, r);
    orm__sql_put(t, " j JOIN ");
    orm__sql_table(t, r->target);
    orm__sql_put(t, " t ON t.");
    orm__sql_ident(t, r->target->fields[r->target_pk].column);
    orm__sql_put(t, " = j.");
    orm__sql_ident(t, r->join_to);
    orm__sql_put(t, " WHERE j.");
    orm__sql_ident(t, r->join_from);
  } else {
    orm__sql_columns(t, r->target, UINT64_MAX);
    orm__sql_put(t, " FROM ");
    orm__sql_table(t, r->target);
    orm__sql_put(t, " WHERE ");
    orm__sql_ident(t, r->target->fields[r->target_key].column);
  }
  if (preload && n->parent < 0) {
    orm__sql_put(t, " = ANY($1)");
  } else {
    orm__sql_put(t, " = ANY(current_setting(");
    put_setting(t, i);
    orm__sql_put(t, ")::");
    orm__sql_put(t, orm__sql_array_type(r->key_type));
    orm__sql_put(t, ")");
  }
  if (r->rel->kind == ORM_BELONGS_TO)
    return; /* found by key: no order needed */
  orm__sql_put(t, " ORDER BY ");
  if (m2m) {
    orm__sql_put(t, "j.");
    orm__sql_ident(t, r->join_from);
  } else {
    orm__sql_ident(t, r->target->fields[r->target_key].column);
  }
  for (size_t k = 0; k < r->norder; k++) {
    orm__sql_put(t, ", ");
    orm__sql_put(t, q);
    orm__sql_ident(t, r->target->fields[r->order[k]].column);
    if (r->desc[k])
      orm__sql_put(t, " DESC");
  }
}

char *orm__include_sql(const orm__includes_t *inc, int node,
                       const char *root_sql, int *rc) {
  orm__sql_text_t body = {0};
  if (node < 0)
    orm__sql_put(&body, root_sql);
  else
    put_node_select(&body, inc, node, root_sql == NULL);
  bool parent = false;
  for (size_t i = 0; i < inc->n; i++)
    parent |= inc->nodes[i].parent == node;
  if (!parent)
    return orm__sql_take(&body, rc);
  /* The rows, and their children's keys left in settings local to the
   * transaction. k has one row whatever r has, so the settings are always
   * made; r's rows follow it in r's order (one row of NULLs when there are
   * none). */
  if (body.error != 0) { /* the copy below would send a truncated body */
    *rc = body.error;
    orm__sql_discard(&body);
    return NULL;
  }
  orm__sql_text_t t = {0};
  orm__sql_put(&t, "WITH r AS (");
  orm__sql_putn(&t, body.buf.data, body.buf.len);
  orm__sql_discard(&body);
  orm__sql_put(&t, "), k AS (SELECT ");
  const char *sep = "";
  for (size_t i = 0; i < inc->n; i++) {
    const orm__rel_t *r = &inc->nodes[i].rel;
    if (inc->nodes[i].parent != node)
      continue;
    orm__sql_put(&t, sep);
    sep = ", ";
    orm__sql_put(&t, "set_config(");
    put_setting(&t, (int)i);
    orm__sql_put(&t, ", coalesce(array_agg(r.");
    orm__sql_ident(&t, r->owner->fields[r->owner_key].column);
    orm__sql_put(&t, ")::text, '{}'), true)");
  }
  orm__sql_put(&t, " FROM r) SELECT r.* FROM k LEFT JOIN r ON true");
  return orm__sql_take(&t, rc);
}

/* ---- stitching ------------------------------------------------------------ */

static void *row_at(const orm_rows_t *rows, size_t i) {
  return rows->data + i * rows->model->struct_size;
}

static void set_many(void *row, size_t offset, void *items, size_t len) {
  char *slot = (char *)row + offset;
  bool loaded = true;
  memcpy(slot + offsetof(many_slot_t, items), &items, sizeof items);
  memcpy(slot + offsetof(many_slot_t, len), &len, sizeof len);
  memcpy(slot + offsetof(many_slot_t, loaded), &loaded, sizeof loaded);
}

static void set_one(void *row, size_t offset, void *item) {
  char *slot = (char *)row + offset;
  bool loaded = true;
  memcpy(slot + offsetof(one_slot_t, item), &item, sizeof item);
  memcpy(slot + offsetof(one_slot_t, loaded), &loaded, sizeof loaded);
}

static bool key_eq(const orm__key_t *a, const orm__key_t *b) {
  if (a->hash != b->hash)
    return false;
  if (a->bytes == NULL || b->bytes == NULL)
    return a->bytes == b->bytes && a->i == b->i;
  return a->len == b->len && memcmp(a->bytes, b->bytes, a->len) == 0;
}

/* The key child row `i` of `rows` hangs by. */
static bool child_key(const orm__rel_t *r, const orm_rows_t *rows,
                      const orm__key_t *from, size_t i, orm__key_t *key) {
  if (from != NULL) {
    *key = from[i];
    return true;
  }
  return orm__key_of_field(rows->model, row_at(rows, i), (size_t)r->target_key,
                           key);
}

/* Hangs the rows of `children` (nc results) on those of `parents` (np). */
static int stitch(const orm__rel_t *r, orm_rows_t *const *parents, size_t np,
                  orm_rows_t *const *children, orm__key_t *const *from,
                  size_t nc) {
  const orm_relation_t *rel = r->rel;
  bool many = orm__rel_to_many(rel);
  size_t nparents = 0, nchildren = 0;
  for (size_t p = 0; p < np; p++) {
    nparents += parents[p]->count;
    for (size_t i = 0; i < parents[p]->count; i++) {
      if (many)
        set_many(row_at(parents[p], i), rel->offset, NULL, 0);
      else
        set_one(row_at(parents[p], i), rel->offset, NULL);
    }
  }
  for (size_t c = 0; c < nc; c++)
    nchildren += children[c]->count;
  if (nparents == 0 || nchildren == 0)
    return 0;
  orm__keymap_t map;
  orm__key_t key;
  size_t cursor;
  if (rel->kind == ORM_BELONGS_TO) {
    /* Targets by primary key; each parent looks its foreign key up. */
    if (orm__keymap_init(&map, nchildren) != 0)
      return ORM_ENOMEM;
    for (size_t c = 0; c < nc; c++)
      for (size_t i = 0; i < children[c]->count; i++)
        if (child_key(r, children[c], NULL, i, &key))
          orm__keymap_put(&map, &key, row_at(children[c], i));
    for (size_t p = 0; p < np; p++)
      for (size_t i = 0; i < parents[p]->count; i++) {
        void *row = row_at(parents[p], i);
        if (!orm__key_of_field(r->owner, row, (size_t)r->owner_key, &key))
          continue;
        cursor = 0;
        set_one(row, rel->offset, orm__keymap_next(&map, &key, &cursor));
      }
    orm__keymap_free(&map);
    return 0;
  }
  /* Parents by primary key; each run of children with one key goes to
   * the parents with that key. */
  if (orm__keymap_init(&map, nparents) != 0)
    return ORM_ENOMEM;
  for (size_t p = 0; p < np; p++)
    for (size_t i = 0; i < parents[p]->count; i++) {
      void *row = row_at(parents[p], i);
      if (orm__key_of_field(r->owner, row, (size_t)r->owner_key, &key))
        orm__keymap_put(&map, &key, row);
    }
  for (size_t c = 0; c < nc; c++) {
    const orm_rows_t *rows = children[c];
    const orm__key_t *keys = from != NULL ? from[c] : NULL;
    size_t start = 0;
    while (start < rows->count) {
      orm__key_t run, next;
      if (!child_key(r, rows, keys, start, &run)) {
        start++;
        continue;
      }
      size_t end = start + 1;
      while (end < rows->count && child_key(r, rows, keys, end, &next) &&
             key_eq(&run, &next))
        end++;
      cursor = 0;
      for (void *parent; (parent = orm__keymap_next(&map, &run, &cursor));) {
        if (many)
          set_many(parent, rel->offset, row_at(rows, start), end - start);
        else
          set_one(parent, rel->offset, row_at(rows, start));
      }
      start = end;
    }
  }
  orm__keymap_free(&map);
  return 0;
}

static int stitch_all(load_t *l) {
  const orm__includes_t *inc = &l->inc;
  for (size_t i = 0; i < inc->n; i++) {
    const orm__include_t *n = &inc->nodes[i];
    int top = top_of(inc, (int)i);
    size_t chunks = l->nchunks[top];
    orm_rows_t **rows = l->rows + l->first[i];
    orm__key_t **from = n->rel.rel->kind == ORM_MANY_TO_MANY
                            ? l->from + l->first[i]
                            : NULL;
    int rc;
    if (n->parent < 0) {
      rc = stitch(&n->rel, &l->root, 1, rows, from, chunks);
    } else {
      orm_rows_t **parents = l->rows + l->first[n->parent];
      rc = 0;
      for (size_t c = 0; rc == 0 && c < chunks; c++)
        rc = stitch(&n->rel, &parents[c], 1, &rows[c],
                    from != NULL ? &from[c] : NULL, 1);
    }
    if (rc != 0)
      return rc;
  }
  return 0;
}

/* ---- the future ------------------------------------------------------------ */

static void free_rows(load_t *l) {
  for (size_t i = 0; i < l->nrows; i++) {
    orm_rows_free(l->rows[i]);
    l->rows[i] = NULL;
  }
  if (!l->preload) {
    orm_rows_free(l->root);
    l->root = NULL;
  }
}

static void load_reclaim(orm_future_t *f) {
  load_t *l = (load_t *)f;
  orm__future_clear(f);
  free_rows(l);
  orm__free(l->rows);
  orm__free(l->from);
  orm__free(l->stmts);
  orm__free(l);
}

static void load_abort(orm_future_t *f, int code) {
  load_t *l = (load_t *)f;
  if (l->done)
    return;
  l->done = true;
  orm__future_complete(f, code, ORM__LATER);
  for (size_t i = 0; i < l->nstmts; i++)
    if (l->stmts[i] != NULL && l->stmts[i]->state == ORM_FUTURE_PENDING)
      orm_future_cancel(l->stmts[i]);
}

static const orm__future_ops_t load_ops = {load_abort, load_reclaim};

/* Every statement has completed: stitch and resolve, or fail. */
static void finish(load_t *l, orm__when_t when) {
  for (size_t i = 0; i < l->nstmts; i++) {
    orm_future_release(l->stmts[i]);
    l->stmts[i] = NULL;
  }
  l->nstmts = 0;
  int status = l->status;
  if (!l->done && status == 0 && (status = stitch_all(l)) == ORM_ENOMEM)
    orm__future_set_message(&l->future, "out of memory");
  if (!l->done) {
    l->done = true;
    if (status == 0) {
      /* Everything loaded now belongs to the parents' rows. */
      for (size_t i = 0; i < l->nrows; i++) {
        if (l->rows[i] != NULL)
          orm__rows_adopt(l->root, l->rows[i]);
        l->rows[i] = NULL;
      }
      if (!l->preload) {
        orm__future_set_value(&l->future, l->root,
                              (void (*)(void *))orm_rows_free);
        l->root = NULL;
      }
    }
    orm__future_complete(&l->future, status, when);
  }
  orm__future_unref(&l->future); /* the load's own reference */
}

static void on_statement(orm_future_t *f, void *data) {
  load_t *l = data;
  int status = orm_future_status(f);
  if (status != 0 && l->status == 0) {
    l->status = status;
    if (!l->done)
      orm__future_take_error(&l->future, f);
  }
  if (--l->pending == 0)
    finish(l, ORM__NOW);
}

/* ctx: the load, the node (SIZE_MAX: the query's rows), the chunk. */
static int hydrate_node(PGresult *res, void *const *ctx, orm_future_t *f) {
  load_t *l = ctx[0];
  size_t node = (size_t)(uintptr_t)ctx[1];
  size_t chunk = (size_t)(uintptr_t)ctx[2];
  const orm__includes_t *inc = &l->inc;
  const orm__rel_t *r = node == SIZE_MAX ? NULL : &inc->nodes[node].rel;
  const orm_model_t *model = r != NULL ? r->target : inc->root;
  int skip = r != NULL && r->rel->kind == ORM_MANY_TO_MANY ? 1 : 0;
  /* A statement that also leaves keys for its children answers one row of
   * NULLs when it has no rows. */
  int nrows = PQntuples(res);
  int pk = orm_model_pk(model);
  if (pk >= 0 && nrows == 1 && PQnfields(res) > skip + pk &&
      PQgetisnull(res, 0, skip + pk))
    nrows = 0;
  orm_model_error_t err = {0};
  orm_rows_t *rows = NULL;
  int rc = orm__hydrate_block(&rows, model, res, 0, nrows, skip, -1, &err);
  if (rc == 0)
    orm__model_after_load(model, orm_rows_array(rows), orm_rows_count(rows));
  orm__key_t *keys = NULL;
  if (rc == 0 && skip > 0 && nrows > 0) {
    keys = orm__arena_alloc_array(&rows->arena, (size_t)nrows, sizeof *keys,
                                  alignof(orm__key_t));
    rc = keys == NULL ? ORM_ENOMEM : 0;
    for (int i = 0; rc == 0 && i < nrows; i++) {
      if (PQgetisnull(res, i, 0))
        rc = ORM_ETYPE;
      else
        rc = orm__key_of_wire(r->key_type, PQgetvalue(res, i, 0),
                              PQgetlength(res, i, 0), &rows->arena, &keys[i]);
    }
    if (rc != 0)
      orm__model_error_set(&err, rc, -1, 0, "the join key of \"%s\": %s",
                           r->rel->name, orm_strerror(rc));
  }
  PQclear(res);
  if (rc != 0) {
    orm_rows_free(rows);
    if (err.message[0] != '\0')
      orm__future_set_message(f, "%s", err.message);
    return rc;
  }
  /* An answer given twice (a re-sent statement) replaces the first. */
  if (r == NULL) {
    orm_rows_free(l->root);
    l->root = rows;
  } else {
    size_t slot = l->first[node] + chunk;
    orm_rows_free(l->rows[slot]);
    l->rows[slot] = rows;
    l->from[slot] = keys;
  }
  return 0;
}

/* ---- sending ---------------------------------------------------------------- */

/* A load of `inc` whose node i has nchunks[top of i] chunks; holds one
 * reference of its own until every statement has completed. */
static int load_new(load_t **out, orm_pool_t *pool, const orm__includes_t *inc,
                    const size_t *nchunks, bool preload, orm_future_cb cb,
                    void *data) {
  load_t *l = orm__calloc(1, sizeof *l);
  if (l == NULL)
    return ORM_ENOMEM;
  l->inc = *inc;
  l->preload = preload;
  for (size_t i = 0; i < inc->n; i++) {
    l->nchunks[i] = nchunks[i];
    l->first[i] = l->nrows;
    l->nrows += nchunks[top_of(inc, (int)i)];
  }
  size_t nslots = l->nrows > 0 ? l->nrows : 1;
  l->rows = orm__calloc(nslots, sizeof *l->rows);
  l->from = orm__calloc(nslots, sizeof *l->from);
  /* The query, every node's statements, COMMIT. */
  l->stmts = orm__calloc(l->nrows + 2, sizeof *l->stmts);
  if (l->rows == NULL || l->from == NULL || l->stmts == NULL) {
    orm__free(l->rows);
    orm__free(l->from);
    orm__free(l->stmts);
    orm__free(l);
    return ORM_ENOMEM;
  }
  orm__future_init(&l->future, &load_ops, orm__pool_sched(pool), cb, data);
  *out = l;
  return 0;
}

static int send_stmt(load_t *l, orm_exec_t *exec, const char *sql,
                     const orm__params_in_t *in, size_t node, size_t chunk) {
  void *ctx[ORM__SUBMIT_CTX] = {l, (void *)(uintptr_t)node,
                               (void *)(uintptr_t)chunk};
  /* Query events: the query's own statement is a find_all of its model,
   * each relation's an include of its target. */
  orm__params_in_t named = *in;
  const orm_model_t *model =
      node == SIZE_MAX ? l->inc.root : l->inc.nodes[node].rel.target;
  named.op = node == SIZE_MAX ? "find_all" : "include";
  named.table = model != NULL ? model->table : NULL;
  orm_future_t *f;
  int rc = orm__exec_submit(exec, sql, NULL, &named, hydrate_node, ctx,
                            on_statement, l, &f);
  if (rc == 0) {
    l->stmts[l->nstmts++] = f;
    l->pending++;
  }
  return rc;
}

/* The executor the statements go to: the caller's transaction, or a
 * read-only REPEATABLE READ one of our own when there are several. */
static int open_exec(orm_exec_t *exec, size_t nstatements, orm_tx_t **tx,
                     orm_exec_t **run) {
  *tx = NULL;
  *run = exec;
  if (exec->tx != NULL || nstatements < 2)
    return 0;
  int rc = orm_tx_begin_with(exec->pool,
                             ORM_TX_REPEATABLE_READ | ORM_TX_READ_ONLY, tx);
  if (rc == 0)
    *run = orm_tx_exec(*tx);
  return rc;
}

/* Ends what open_exec() began: COMMIT, tracked like a statement; or, when
 * sending failed (rc), ROLLBACK and a load that never calls back. */
static int close_exec(load_t *l, orm_tx_t *tx, int rc, orm_future_t **out) {
  if (rc == 0 && tx != NULL) {
    orm_future_t *f;
    rc = orm_tx_commit_async(tx, on_statement, l, &f);
    if (rc == 0) {
      l->stmts[l->nstmts++] = f;
      l->pending++;
    }
    tx = NULL; /* consumed either way */
  }
  if (rc != 0) {
    if (tx != NULL)
      orm_tx_rollback_async(tx, NULL, NULL, NULL);
    l->done = true;
    l->future.cb = NULL;
    for (size_t i = 0; i < l->nstmts; i++)
      orm_future_cancel(l->stmts[i]);
    if (l->pending == 0)
      finish(l, ORM__LATER);
    return rc;
  }
  if (out != NULL) {
    orm__future_ref(&l->future);
    *out = &l->future;
  }
  if (l->pending == 0)
    finish(l, ORM__LATER);
  return 0;
}

static void free_sql(char **sql, size_t n) {
  for (size_t i = 0; i < n; i++)
    orm__free(sql[i]);
}

/* Every node's statement, and the query's when `root_sql` is set (an
 * include) at sql[inc->n]; a preload's top relations select by $1. */
static int build_sql(const orm__includes_t *inc, const char *root_sql,
                     char **sql) {
  size_t n = inc->n + (root_sql != NULL);
  for (size_t i = 0; i < n; i++) {
    int rc = 0;
    int node = i < inc->n ? (int)i : -1;
    sql[i] = orm__include_sql(inc, node, root_sql, &rc);
    if (sql[i] == NULL) {
      free_sql(sql, i);
      return rc != 0 ? rc : ORM_ENOMEM;
    }
  }
  return 0;
}

int orm__load_include(orm_exec_t *exec, orm_query_t *query, orm_future_cb cb,
                      void *data, orm_future_t **out) {
  const orm__includes_t *inc = orm__query_includes(query);
  if (exec->tx == NULL && orm__query_for_update(query))
    return ORM_ENOTSUP; /* the transaction of our own is read-only */
  orm_pool_t *pool = orm__exec_pool(exec);
  if (pool == NULL)
    return ORM_ECLOSED;
  const char *root_sql;
  const orm_param_t *params;
  size_t nparams;
  int rc = orm_query_sql(query, ORM_QUERY_SELECT, &root_sql, &params, &nparams);
  if (rc != 0)
    return rc;
  char *sql[ORM_QUERY_MAX_INCLUDES + 1];
  if ((rc = build_sql(inc, root_sql, sql)) != 0)
    return rc;
  size_t nchunks[ORM_QUERY_MAX_INCLUDES];
  for (size_t i = 0; i < inc->n; i++)
    nchunks[i] = 1;
  load_t *l;
  orm_tx_t *tx = NULL;
  orm_exec_t *run;
  rc = load_new(&l, pool, inc, nchunks, false, cb, data);
  if (rc == 0 && (rc = open_exec(exec, inc->n + 1, &tx, &run)) != 0)
    orm__future_unref(&l->future);
  if (rc != 0) {
    free_sql(sql, inc->n + 1);
    return rc;
  }
  /* The query's parameters go with its statement; the others read the
   * keys the statement before them left. */
  orm__params_in_t in = {.values = params, .n = nparams};
  orm__params_in_t none = {0};
  rc = send_stmt(l, run, sql[inc->n], &in, SIZE_MAX, 0);
  for (size_t i = 0; rc == 0 && i < inc->n; i++)
    rc = send_stmt(l, run, sql[i], &none, i, 0);
  free_sql(sql, inc->n + 1);
  return close_exec(l, tx, rc, out);
}

/* The distinct keys of field `f` over `rows`, NULLs left out, into `keys`
 * (room for rows->count); their number in *n. */
static int distinct_keys(const orm_rows_t *rows, size_t f, orm__key_t *keys,
                         size_t *n) {
  orm__keymap_t seen;
  *n = 0;
  if (rows->count == 0)
    return 0;
  if (orm__keymap_init(&seen, rows->count) != 0)
    return ORM_ENOMEM;
  for (size_t i = 0; i < rows->count; i++) {
    orm__key_t key;
    size_t cursor = 0;
    if (!orm__key_of_field(rows->model, row_at(rows, i), f, &key) ||
        orm__keymap_next(&seen, &key, &cursor) != NULL)
      continue;
    orm__keymap_put(&seen, &key, row_at(rows, i));
    keys[(*n)++] = key;
  }
  orm__keymap_free(&seen);
  return 0;
}

int(orm_preload_async)(orm_exec_t *exec, orm_rows_t *rows, const char *path,
                       orm_future_cb cb, void *data, orm_future_t **out) {
  if (out != NULL)
    *out = NULL;
  if (exec == NULL || rows == NULL || path == NULL)
    return ORM_EINVAL;
  exec = orm__exec_route(exec, ORM__READ);
  orm_pool_t *pool = orm__exec_pool(exec);
  if (pool == NULL)
    return ORM_ECLOSED;
  orm__includes_t inc = {.root = rows->model};
  int rc = orm__includes_add(&inc, path);
  if (rc != 0)
    return rc;
  /* Each top relation's distinct parent keys, cut into chunks. */
  orm__key_t *keys[ORM_QUERY_MAX_INCLUDES] = {0};
  size_t nkeys[ORM_QUERY_MAX_INCLUDES] = {0};
  size_t nchunks[ORM_QUERY_MAX_INCLUDES] = {0};
  for (size_t i = 0; rc == 0 && i < inc.n; i++) {
    if (inc.nodes[i].parent < 0) {
      keys[i] = orm__reallocarray(NULL, rows->count > 0 ? rows->count : 1,
                                  sizeof *keys[i]);
      rc = keys[i] == NULL ? ORM_ENOMEM
                           : distinct_keys(rows, (size_t)inc.nodes[i].rel.owner_key,
                                           keys[i], &nkeys[i]);
      nchunks[i] = (nkeys[i] + ORM__PRELOAD_CHUNK - 1) / ORM__PRELOAD_CHUNK;
    }
  }
  char *sql[ORM_QUERY_MAX_INCLUDES];
  bool have_sql = rc == 0 && (rc = build_sql(&inc, NULL, sql)) == 0;
  load_t *l = NULL;
  orm_tx_t *tx = NULL;
  orm_exec_t *run = NULL;
  size_t nstatements = 0;
  for (size_t i = 0; i < inc.n; i++)
    nstatements += nchunks[top_of(&inc, (int)i)];
  if (rc == 0) {
    rc = load_new(&l, pool, &inc, nchunks, true, cb, data);
    if (rc == 0) {
      l->root = rows;
      if ((rc = open_exec(exec, nstatements, &tx, &run)) != 0) {
        orm__future_unref(&l->future);
        l = NULL;
      }
    }
  }
  if (rc != 0) {
    if (have_sql)
      free_sql(sql, inc.n);
    for (size_t i = 0; i < inc.n; i++)
      orm__free(keys[i]);
    return rc;
  }
  orm__buf_t buf;
  orm__buf_init(&buf);
  for (size_t top = 0; rc == 0 && top < inc.n; top++) {
    for (size_t c = 0; rc == 0 && c < nchunks[top]; c++) {
      size_t from = c * ORM__PRELOAD_CHUNK;
      size_t n = nkeys[top] - from < ORM__PRELOAD_CHUNK ? nkeys[top] - from
                                                       : ORM__PRELOAD_CHUNK;
      uint32_t oid;
      orm__buf_reset(&buf);
      rc = orm__keys_encode(inc.nodes[top].rel.key_type, keys[top] + from, n,
                            &buf, &oid);
      orm_param_t param = {.kind = ORM_PARAM_BINARY,
                           .oid = oid,
                           .v.s = {buf.data, buf.len}};
      orm__params_in_t in = {.values = &param, .n = 1};
      orm__params_in_t none = {0};
      /* The chunk's top statement, then those under it, which read the
       * keys it leaves. */
      for (size_t i = top; rc == 0 && i < inc.n; i++)
        if (top_of(&inc, (int)i) == (int)top)
          rc = send_stmt(l, run, sql[i], i == top ? &in : &none, i, c);
    }
  }
  orm__buf_free(&buf);
  free_sql(sql, inc.n);
  for (size_t i = 0; i < inc.n; i++)
    orm__free(keys[i]);
  return close_exec(l, tx, rc, out);
}
