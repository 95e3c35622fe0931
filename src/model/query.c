/* SPDX-License-Identifier: MIT */
/* The query builder: conditions, groups, ordering, pagination, locking.
 *
 * The WHERE text grows with each condition, its parameters numbered $1, $2,
 * ... in the order they are added; the parameters of the keyset, LIMIT and
 * OFFSET follow them when the SQL is rendered, so placeholders always read
 * in order. */
#include <stdbool.h>
#include <string.h>

#include "base/alloc.h"

#include "model/params.h"
#include "model/query_int.h"
#include "model/sql.h"

#define MAX_DEPTH 32

typedef struct {
  bool is_or;
  unsigned members;
} group_t;

struct orm_query_s {
  const orm_model_t *model;
  int error; /* sticky: the first failure */
  int pk;

  orm__sql_text_t where;      /* the conditions so far */
  orm__params_t where_params; /* $1 .. $w */
  group_t groups[MAX_DEPTH + 1]; /* [0] is the implicit top-level AND */
  int depth;

  uint8_t order_fields[ORM_MODEL_MAX_FIELDS];
  bool order_desc[ORM_MODEL_MAX_FIELDS];
  size_t norder;

  bool has_after;
  orm__params_t after_params; /* the key, one value per sort column */

  bool has_limit, has_offset, for_update;
  int64_t limit, offset;

  orm__includes_t *includes; /* NULL until the first include */

  /* The last rendering, valid while `rendered`. */
  bool rendered;
  orm_query_kind_t kind;
  char *sql;
  orm__params_t tail_params; /* LIMIT, OFFSET */
  orm_param_t *params;
  size_t nparams;
};

static void forget_rendering(orm_query_t *q) {
  q->rendered = false;
  orm__free(q->sql);
  q->sql = NULL;
  orm__free(q->params);
  q->params = NULL;
  q->nparams = 0;
}

int orm_query_new(orm_query_t **out, const orm_model_t *model) {
  if (out == NULL)
    return ORM_EINVAL;
  *out = NULL;
  int rc = orm_model_check(model);
  if (rc != 0)
    return rc;
  orm_query_t *q = orm__calloc(1, sizeof *q);
  if (q == NULL)
    return ORM_ENOMEM;
  q->model = model;
  q->pk = orm_model_pk(model);
  *out = q;
  return 0;
}

void orm_query_free(orm_query_t *q) {
  if (q == NULL)
    return;
  forget_rendering(q);
  orm__free(q->includes);
  orm__sql_discard(&q->where);
  orm__params_free(&q->where_params);
  orm__params_free(&q->after_params);
  orm__params_free(&q->tail_params);
  orm__free(q);
}

const orm_model_t *orm_query_model(const orm_query_t *q) {
  return q != NULL ? q->model : NULL;
}

int orm_query_error(const orm_query_t *q) {
  return q != NULL ? q->error : ORM_EINVAL;
}

/* Records the first failure; every later call returns it. */
static int fail(orm_query_t *q, int rc) {
  if (q->error == 0)
    q->error = rc;
  return q->error;
}

/* Common entry of every modifying call: the sticky error, and the
 * rendering that no longer holds. */
static int begin(orm_query_t *q) {
  if (q->error != 0)
    return q->error;
  if (q->rendered)
    forget_rendering(q);
  return 0;
}

static int column(orm_query_t *q, const char *name) {
  if (name == NULL)
    return ORM_EINVAL;
  return orm_model_field(q->model, name);
}

/* A column that can be compared and sorted: json cannot (jsonb can). */
static int comparable_column(orm_query_t *q, const char *name) {
  int f = column(q, name);
  if (f >= 0 && q->model->fields[f].type == ORM_T_JSON)
    return ORM_ETYPE;
  return f;
}

/* The separator before a new member of the innermost group. */
static void put_separator(orm_query_t *q) {
  group_t *g = &q->groups[q->depth];
  if (g->members++ > 0)
    orm__sql_put(&q->where, g->is_or ? " OR " : " AND ");
}

/* Text failures are allocation failures of the WHERE buffer. */
static int text_status(orm_query_t *q) {
  return q->where.error != 0 ? fail(q, q->where.error) : 0;
}

static const char *op_text(orm_op_t op) {
  switch (op) {
  case ORM_OP_EQ:
    return " = ";
  case ORM_OP_NE:
    return " <> ";
  case ORM_OP_LT:
    return " < ";
  case ORM_OP_LE:
    return " <= ";
  case ORM_OP_GT:
    return " > ";
  case ORM_OP_GE:
    return " >= ";
  case ORM_OP_LIKE:
    return " LIKE ";
  case ORM_OP_ILIKE:
    return " ILIKE ";
  default:
    return NULL;
  }
}

int orm_query_where(orm_query_t *q, const char *name, orm_op_t op,
                    orm_param_t value) {
  if (q == NULL)
    return ORM_EINVAL;
  int rc = begin(q);
  if (rc != 0)
    return rc;
  int f = comparable_column(q, name);
  if (f < 0)
    return fail(q, f);
  const char *op_sql = op_text(op);
  if (op_sql == NULL || value.kind == ORM_PARAM_NULL)
    return fail(q, ORM_EINVAL);
  if ((op == ORM_OP_LIKE || op == ORM_OP_ILIKE) &&
      q->model->fields[f].type != ORM_T_TEXT)
    return fail(q, ORM_ETYPE);
  rc = orm__params_add_value(&q->where_params, q->model, (size_t)f, &value);
  if (rc != 0)
    return fail(q, rc);
  put_separator(q);
  orm__sql_ident(&q->where, q->model->fields[f].column);
  orm__sql_put(&q->where, op_sql);
  orm__sql_param(&q->where, q->where_params.len);
  return text_status(q);
}

int orm_query_where_in(orm_query_t *q, const char *name,
                       const orm_param_t *values, size_t n) {
  if (q == NULL)
    return ORM_EINVAL;
  int rc = begin(q);
  if (rc != 0)
    return rc;
  int f = comparable_column(q, name);
  if (f < 0)
    return fail(q, f);
  rc = orm__params_add_value_array(&q->where_params, q->model, (size_t)f,
                                   values, n);
  if (rc != 0)
    return fail(q, rc);
  put_separator(q);
  orm__sql_ident(&q->where, q->model->fields[f].column);
  orm__sql_put(&q->where, " = ANY(");
  orm__sql_param(&q->where, q->where_params.len);
  orm__sql_put(&q->where, ")");
  return text_status(q);
}

static int where_null(orm_query_t *q, const char *name, const char *test) {
  if (q == NULL)
    return ORM_EINVAL;
  int rc = begin(q);
  if (rc != 0)
    return rc;
  int f = column(q, name);
  if (f < 0)
    return fail(q, f);
  put_separator(q);
  orm__sql_ident(&q->where, q->model->fields[f].column);
  orm__sql_put(&q->where, test);
  return text_status(q);
}

int orm_query_where_null(orm_query_t *q, const char *name) {
  return where_null(q, name, " IS NULL");
}

int orm_query_where_not_null(orm_query_t *q, const char *name) {
  return where_null(q, name, " IS NOT NULL");
}

static int open_group(orm_query_t *q, bool is_or) {
  if (q == NULL)
    return ORM_EINVAL;
  int rc = begin(q);
  if (rc != 0)
    return rc;
  if (q->depth >= MAX_DEPTH)
    return fail(q, ORM_E2BIG);
  put_separator(q);
  orm__sql_put(&q->where, "(");
  q->groups[++q->depth] = (group_t){.is_or = is_or, .members = 0};
  return text_status(q);
}

int orm_query_or(orm_query_t *q) { return open_group(q, true); }

int orm_query_and(orm_query_t *q) { return open_group(q, false); }

int orm_query_end(orm_query_t *q) {
  if (q == NULL)
    return ORM_EINVAL;
  int rc = begin(q);
  if (rc != 0)
    return rc;
  if (q->depth == 0)
    return fail(q, ORM_ESTATE);
  group_t *g = &q->groups[q->depth--];
  if (g->members == 0)
    orm__sql_put(&q->where, g->is_or ? "FALSE" : "TRUE");
  orm__sql_put(&q->where, ")");
  return text_status(q);
}

int orm_query_order_by(orm_query_t *q, const char *name, orm_order_t order) {
  if (q == NULL)
    return ORM_EINVAL;
  int rc = begin(q);
  if (rc != 0)
    return rc;
  int f = comparable_column(q, name);
  if (f < 0)
    return fail(q, f);
  if (order != ORM_ASC && order != ORM_DESC)
    return fail(q, ORM_EINVAL);
  if (q->has_after)
    return fail(q, ORM_ESTATE);
  for (size_t i = 0; i < q->norder; i++)
    if (q->order_fields[i] == f)
      return fail(q, ORM_EINVAL);
  q->order_fields[q->norder] = (uint8_t)f;
  q->order_desc[q->norder] = order == ORM_DESC;
  q->norder++;
  return 0;
}

/* LIMIT and OFFSET: a count that cannot be negative. */
static int set_count(orm_query_t *q, int64_t n, bool *has, int64_t *value) {
  int rc = begin(q);
  if (rc != 0)
    return rc;
  if (n < 0)
    return fail(q, ORM_ERANGE);
  *has = true;
  *value = n;
  return 0;
}

int orm_query_limit(orm_query_t *q, int64_t n) {
  return q ? set_count(q, n, &q->has_limit, &q->limit) : ORM_EINVAL;
}

int orm_query_offset(orm_query_t *q, int64_t n) {
  return q ? set_count(q, n, &q->has_offset, &q->offset) : ORM_EINVAL;
}

int orm_query_for_update(orm_query_t *q) {
  if (q == NULL)
    return ORM_EINVAL;
  int rc = begin(q);
  if (rc != 0)
    return rc;
  q->for_update = true;
  return 0;
}

/* Whether the primary key is one of the ORDER BY columns. */
static bool pk_ordered(const orm_query_t *q) {
  for (size_t i = 0; i < q->norder; i++)
    if (q->order_fields[i] == q->pk)
      return true;
  return false;
}

int orm_query_after(orm_query_t *q, const orm_param_t *key, size_t n) {
  if (q == NULL)
    return ORM_EINVAL;
  int rc = begin(q);
  if (rc != 0)
    return rc;
  if (q->has_after)
    return fail(q, ORM_ESTATE);
  if (q->pk < 0 && q->norder == 0)
    return fail(q, ORM_ENOTSUP); /* a view without a key: order it */
  size_t nkey = q->norder + (pk_ordered(q) || q->pk < 0 ? 0 : 1);
  if (key == NULL || n != nkey)
    return fail(q, ORM_EINVAL);
  for (size_t i = 1; i < q->norder; i++)
    if (q->order_desc[i] != q->order_desc[0])
      return fail(q, ORM_ENOTSUP);
  for (size_t i = 0; i < n; i++) {
    size_t f = i < q->norder ? q->order_fields[i] : (size_t)q->pk;
    rc = orm__params_add_value(&q->after_params, q->model, f, &key[i]);
    if (rc != 0)
      return fail(q, rc);
  }
  q->has_after = true;
  return 0;
}

int orm_query_include(orm_query_t *q, const char *path) {
  if (q == NULL)
    return ORM_EINVAL;
  int rc = begin(q);
  if (rc != 0)
    return rc;
  if (path == NULL)
    return fail(q, ORM_EINVAL);
  if (q->includes == NULL) {
    q->includes = orm__calloc(1, sizeof *q->includes);
    if (q->includes == NULL)
      return ORM_ENOMEM; /* not sticky: the query is as it was */
    q->includes->root = q->model;
  }
  rc = orm__includes_add(q->includes, path);
  return rc != 0 ? fail(q, rc) : 0;
}

const orm__includes_t *orm__query_includes(const orm_query_t *q) {
  return q->includes != NULL && q->includes->n > 0 ? q->includes : NULL;
}

bool orm__query_for_update(const orm_query_t *q) { return q->for_update; }

static size_t sort_key(const orm_query_t *q, uint8_t *fields, bool *desc);

size_t orm__query_sort_key(const orm_query_t *q, uint8_t *fields, bool *desc) {
  return sort_key(q, fields, desc);
}

/* ---- rendering ---------------------------------------------------------- */

/* The sort columns: ORDER BY's, then the primary key when paging by key. */
static size_t sort_key(const orm_query_t *q, uint8_t *fields, bool *desc) {
  size_t n = q->norder;
  memcpy(fields, q->order_fields, n);
  memcpy(desc, q->order_desc, n * sizeof *desc);
  /* With includes, each statement must pick the same page of rows: the
   * primary key makes the order total. */
  bool paged_includes = orm__query_includes(q) != NULL &&
                        (q->has_limit || q->has_offset);
  if ((q->has_after || paged_includes) && !pk_ordered(q) && q->pk >= 0) {
    fields[n] = (uint8_t)q->pk;
    desc[n] = n > 0 && q->order_desc[0];
    n++;
  }
  return n;
}

/* FROM ... WHERE ... [ORDER BY ...] [LIMIT] [OFFSET]; numbers the tail
 * parameters from `next`. */
static void put_body(orm_query_t *q, orm__sql_text_t *t, bool ordered) {
  const orm_model_t *model = q->model;
  uint8_t fields[ORM_MODEL_MAX_FIELDS + 1];
  bool desc[ORM_MODEL_MAX_FIELDS + 1];
  size_t nsort = sort_key(q, fields, desc);
  size_t next = q->where_params.len + 1;

  orm__sql_put(t, " FROM ");
  orm__sql_table(t, model);
  if (q->where.buf.len > 0 || q->has_after)
    orm__sql_put(t, " WHERE ");
  if (q->where.buf.len > 0)
    orm__sql_putn(t, q->where.buf.data, q->where.buf.len);
  if (q->has_after) {
    if (q->where.buf.len > 0)
      orm__sql_put(t, " AND ");
    if (nsort > 1)
      orm__sql_put(t, "(");
    for (size_t i = 0; i < nsort; i++) {
      if (i > 0)
        orm__sql_put(t, ", ");
      orm__sql_ident(t, model->fields[fields[i]].column);
    }
    orm__sql_put(t, nsort > 1 ? ") " : " ");
    orm__sql_put(t, desc[0] ? "< " : "> ");
    if (nsort > 1)
      orm__sql_put(t, "(");
    for (size_t i = 0; i < nsort; i++) {
      if (i > 0)
        orm__sql_put(t, ", ");
      orm__sql_param(t, next++);
    }
    if (nsort > 1)
      orm__sql_put(t, ")");
  }
  if (ordered && nsort > 0) {
    orm__sql_put(t, " ORDER BY ");
    for (size_t i = 0; i < nsort; i++) {
      if (i > 0)
        orm__sql_put(t, ", ");
      orm__sql_ident(t, model->fields[fields[i]].column);
      if (desc[i])
        orm__sql_put(t, " DESC");
    }
  }
  if (q->has_limit) {
    orm__sql_put(t, " LIMIT ");
    orm__sql_param(t, next++);
  }
  if (q->has_offset) {
    orm__sql_put(t, " OFFSET ");
    orm__sql_param(t, next++);
  }
}

static int render_sql(orm_query_t *q, orm_query_kind_t kind) {
  orm__sql_text_t t = {0};
  bool paged = q->has_limit || q->has_offset;
  switch (kind) {
  case ORM_QUERY_SELECT:
    orm__sql_put(&t, "SELECT ");
    orm__sql_columns(&t, q->model, UINT64_MAX);
    put_body(q, &t, true);
    if (q->for_update)
      orm__sql_put(&t, " FOR UPDATE");
    break;
  case ORM_QUERY_COUNT:
    if (paged) {
      orm__sql_put(&t, "SELECT count(*) FROM (SELECT 1");
      put_body(q, &t, true);
      orm__sql_put(&t, ") AS s");
    } else {
      orm__sql_put(&t, "SELECT count(*)");
      put_body(q, &t, false);
    }
    break;
  case ORM_QUERY_EXISTS:
    orm__sql_put(&t, "SELECT EXISTS (SELECT 1");
    put_body(q, &t, paged);
    orm__sql_put(&t, ")");
    break;
  default:
    return ORM_EINVAL;
  }
  int rc = 0;
  q->sql = orm__sql_take(&t, &rc);
  return rc;
}

static int render_params(orm_query_t *q) {
  orm__params_reset(&q->tail_params);
  int rc = 0;
  if (q->has_limit)
    rc = orm__params_add_int8(&q->tail_params, q->limit);
  if (rc == 0 && q->has_offset)
    rc = orm__params_add_int8(&q->tail_params, q->offset);
  if (rc != 0)
    return rc;
  orm__params_t *parts[] = {&q->where_params, &q->after_params,
                            &q->tail_params};
  size_t n = 0;
  for (size_t i = 0; i < 3; i++)
    n += parts[i]->len;
  if (n > ORM_MAX_PARAMS)
    return ORM_E2BIG;
  if (n == 0)
    return 0;
  q->params = orm__reallocarray(NULL, n, sizeof *q->params);
  if (q->params == NULL)
    return ORM_ENOMEM;
  for (size_t i = 0; i < 3; i++) {
    const orm_param_t *items = orm__params_finish(parts[i]);
    if (parts[i]->len > 0)
      memcpy(q->params + q->nparams, items, parts[i]->len * sizeof *items);
    q->nparams += parts[i]->len;
  }
  return 0;
}

int orm_query_sql(orm_query_t *q, orm_query_kind_t kind, const char **sql,
                  const orm_param_t **params, size_t *nparams) {
  if (q == NULL || sql == NULL || params == NULL || nparams == NULL)
    return ORM_EINVAL;
  if (q->error != 0)
    return q->error;
  if (q->depth != 0)
    return ORM_ESTATE;
  if (!q->rendered || q->kind != kind) {
    forget_rendering(q);
    int rc = render_sql(q, kind);
    if (rc == 0)
      rc = render_params(q);
    if (rc != 0) { /* not sticky: the query itself is fine */
      forget_rendering(q);
      return rc;
    }
    q->rendered = true;
    q->kind = kind;
  }
  *sql = q->sql;
  *params = q->params;
  *nparams = q->nparams;
  return 0;
}
