/* SPDX-License-Identifier: MIT */
/* Hydration: a binary-format PGresult decoded into a model's structs.
 *
 * Result columns are matched to fields by name, once per result (a result
 * of the model's select list matches position by position at the cost of
 * one strcmp per column). Each matched column's type OID is checked against
 * its field (orm__codec_accepts) before any row is read; fields absent from
 * the result are NULL in every row. Rows are then decoded in small blocks,
 * column by column, with one loop per common type: no lookups, no type
 * dispatch per value, no allocation per row (strings, bytes and arrays are
 * copied into one arena that grows by doubling chunks; the strings of a
 * block's column take one arena allocation). */
#ifndef ORM_MODEL_HYDRATE_H
#define ORM_MODEL_HYDRATE_H

#include <stdint.h>

#include <libpq-fe.h>

#include "uvorm/model.h"

#include "model/arena.h"

struct orm_rows_s {
  const orm_model_t *model;
  char *data; /* count structs of model->struct_size bytes */
  size_t count;
  orm__arena_t arena; /* their strings, bytes and arrays */
  /* Rows of relations loaded into these (and into those, nested), freed
   * with them; linked through next_owned. */
  struct orm_rows_s *owned;
  struct orm_rows_s *next_owned;
};

/* What each result column fills. */
typedef struct {
  int first; /* the result's first column that fills a field */
  int ncols; /* columns [first, first + ncols) */
  uint64_t missing; /* fields no column fills */
  struct {
    uint32_t type; /* orm_type_t */
    uint32_t field;
    size_t offset;
  } cols[ORM_MODEL_MAX_FIELDS];
} orm__hydrate_plan_t;

/* Matches the columns of `res` to the fields of the checked `model`.
 * Returns 0, or with `err` (may be NULL) filled in, naming the column:
 *   ORM_ENOCOLUMN  a column matches no field, or two columns one field
 *   ORM_ETYPE      a column's type cannot fill its field, or the column is
 *                  in text format
 *   ORM_EINVAL     NULL arguments, a result that carries no rows (an error
 *                  or a command), more than ORM_MODEL_MAX_FIELDS columns */
int orm__hydrate_plan(orm__hydrate_plan_t *plan, const orm_model_t *model,
                      const PGresult *res, orm_model_error_t *err);

/* Every row of `res` as a new orm_rows_t (free with orm_rows_free()).
 * Returns 0, the plan's errors, ORM_ETYPE or ORM_ERANGE for a value that
 * does not decode (err names the row and column), ORM_ENOMEM. *out is
 * NULL on error. */
int orm__hydrate(orm_rows_t **out, const orm_model_t *model,
                 const PGresult *res, orm_model_error_t *err);

/* orm__hydrate() of columns [first, first + count) only (count -1: to the
 * last), for results that carry more than the model's columns. */
int orm__hydrate_cols(orm_rows_t **out, const orm_model_t *model,
                      const PGresult *res, int first, int count,
                      orm_model_error_t *err);

/* `count` zeroed structs of `model`, with an empty arena. */
int orm__rows_new(orm_rows_t **out, const orm_model_t *model, size_t count);

/* Makes `rows` free `child` (and whatever `child` owns) with itself. */
void orm__rows_adopt(orm_rows_t *rows, orm_rows_t *child);

/* Decodes row `row` of `res` into the existing struct `dst`, writing only
 * the fields in `fields` (and their null bits); others are untouched. This
 * is how INSERT/UPDATE ... RETURNING writes generated columns back into the
 * caller's struct. Strings, bytes and arrays go to `arena`, which must
 * outlive their use. Returns what orm__hydrate() does, plus ORM_ENOTFOUND
 * when `row` is out of range. */
int orm__hydrate_into(const orm_model_t *model, const PGresult *res, int row,
                      void *dst, uint64_t fields, orm__arena_t *arena,
                      orm_model_error_t *err);

/* Rows [row, row + nrows) of `res`, columns [col, col + ncols), as a new
 * orm_rows_t: one segment of a result that carries several models. */
int orm__hydrate_block(orm_rows_t **out, const orm_model_t *model,
                       const PGresult *res, int row, int nrows, int col,
                       int ncols, orm_model_error_t *err);

/* orm__hydrate_into() from columns [first, first + count). */
int orm__hydrate_into_cols(const orm_model_t *model, const PGresult *res,
                           int row, int first, int count, void *dst,
                           uint64_t fields, orm__arena_t *arena,
                           orm_model_error_t *err);

/* Decodes row `row` of `res` into the struct at `dst` (zeroed first) by a
 * plan made for a result of the same shape: the rows of a stream, one
 * single-row result each, planned once. Returns what orm__hydrate() does. */
int orm__hydrate_row_planned(const orm_model_t *model,
                             const orm__hydrate_plan_t *plan,
                             const PGresult *res, int row, void *dst,
                             orm__arena_t *arena, orm_model_error_t *err);

#endif /* ORM_MODEL_HYDRATE_H */
