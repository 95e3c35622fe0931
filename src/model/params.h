/* SPDX-License-Identifier: MIT */
/* Encoding a model's values as statement parameters.
 *
 * An orm__params_t collects parameters: each value is encoded in binary by
 * the codecs into one growable buffer, and described by an orm_param_t
 * (ORM_PARAM_BINARY with the type's OID, ORM_PARAM_UNTYPED for text the
 * server parses, or ORM_NULL). The buffer moves while it grows, so values
 * are kept as offsets until orm__params_finish() turns them into pointers.
 * A params object is scratch space meant to be reused: reset it between
 * statements and it stops allocating once it has grown.
 *
 * Every add function leaves the object unchanged when it fails. */
#ifndef ORM_MODEL_PARAMS_H
#define ORM_MODEL_PARAMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "uvorm/model.h"
#include "uvorm/pool.h"

#include "model/codec.h"
#include "model/sql.h"

typedef struct {
  orm__buf_t buf;      /* every value's bytes */
  orm_param_t *items;  /* items[i].v.s.ptr is set by orm__params_finish() */
  size_t *offsets;     /* items[i]'s bytes start at buf.data + offsets[i] */
  size_t len;
  size_t cap;
} orm__params_t;

/* Zeroed is initialised too. */
void orm__params_init(orm__params_t *p);
/* Empties it, keeping its memory. */
void orm__params_reset(orm__params_t *p);
void orm__params_free(orm__params_t *p);

/* The parameters with their pointers fixed, valid until the next add,
 * reset or free; NULL when there are none. `p->len` is their number. */
const orm_param_t *orm__params_finish(orm__params_t *p);

/* Field `f` of `row` (a struct of the checked `model`): NULL when its null
 * bit is set or it is a NULL string, else its binary encoding. Returns 0,
 * or the codec's ORM_EINVAL / ORM_ERANGE, ORM_E2BIG (more than
 * ORM_MAX_PARAMS), ORM_ENOMEM. */
int orm__params_add_field(orm__params_t *p, const orm_model_t *model,
                          const void *row, size_t f);

/* The parameters of `stmt` (one of the model's orm__sql_stmt_t) for one
 * row: stmt->fields in field order, then stmt->key. */
int orm__params_bind_row(orm__params_t *p, const orm_model_t *model,
                         const orm__sql_stmt_t *stmt, const void *row);

/* The parameters of an insert_many statement: for each field of
 * stmt->fields, one array of that field over `nrows` rows (consecutive
 * structs). ORM_ERANGE when nrows exceeds INT32_MAX. */
int orm__params_bind_rows(orm__params_t *p, const orm_model_t *model,
                          const orm__sql_stmt_t *stmt, const void *rows,
                          size_t nrows);

/* A caller's value for field `f` (a key to find by, a builder condition),
 * converted to the field's type as documented for the query builder in
 * uvorm/model.h. Returns 0, ORM_ETYPE, ORM_ERANGE, ORM_EINVAL (an
 * ORM_NULL value, a bad kind, a NUL inside text), ORM_E2BIG, ORM_ENOMEM. */
int orm__params_add_value(orm__params_t *p, const orm_model_t *model,
                          size_t f, const orm_param_t *value);

/* `n` caller values for field `f` as one array parameter (for = ANY($k)).
 * ORM_NULL elements are NULL elements. Text values, and every value for
 * text and enum columns, travel as an untyped array literal the server
 * reads with the column's type; others as a binary array of the column's
 * type. */
int orm__params_add_value_array(orm__params_t *p, const orm_model_t *model,
                                size_t f, const orm_param_t *values, size_t n);

/* Whether field `f` of `row` goes as NULL: its bit in `nulls` (the row's
 * null bitmap) is set, or it is a string type holding a NULL pointer. */
bool orm__field_is_null(const orm_model_t *model, const void *row, size_t f,
                        uint64_t nulls);

/* A plain bigint (LIMIT, OFFSET). */
int orm__params_add_int8(orm__params_t *p, int64_t v);

#endif /* ORM_MODEL_PARAMS_H */
