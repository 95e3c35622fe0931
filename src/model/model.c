/* SPDX-License-Identifier: MIT */
/* Model descriptors: validation and field lookup. */
#include <stdalign.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "uvorm/model.h"

#include "model/codec.h"
#include "model/model_int.h"
#include "model/validate.h"
#include "model/relation.h"

static size_t type_align(orm_type_t type) {
  switch (type) {
  case ORM_T_INT2:
    return alignof(int16_t);
  case ORM_T_INT4:
  case ORM_T_DATE:
    return alignof(int32_t);
  case ORM_T_INT8:
  case ORM_T_TIMESTAMP:
  case ORM_T_TIMESTAMPTZ:
    return alignof(int64_t);
  case ORM_T_FLOAT4:
    return alignof(float);
  case ORM_T_FLOAT8:
    return alignof(double);
  case ORM_T_BOOL:
    return alignof(bool);
  case ORM_T_BYTEA:
    return alignof(orm_bytes_t);
  case ORM_T_UUID:
    return alignof(orm_uuid_t);
  case ORM_T_INT_ARRAY:
    return alignof(orm_int_array_t);
  case ORM_T_TEXT_ARRAY:
    return alignof(orm_text_array_t);
  default:
    return alignof(char *);
  }
}

void orm__model_error_set(orm_model_error_t *err, int code, int field,
                          int column, const char *fmt, ...) {
  if (err == NULL)
    return;
  err->code = code;
  err->field = field;
  err->column = column;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err->message, sizeof err->message, fmt, ap);
  va_end(ap);
}

/* A name is at most ORM_MODEL_MAX_NAME bytes; reading stops there, so an
 * unterminated garbage name cannot run away. */
static bool name_ok(const char *name) {
  if (name == NULL)
    return false;
  size_t len = strnlen(name, ORM_MODEL_MAX_NAME + 1);
  return len > 0 && len <= ORM_MODEL_MAX_NAME;
}

/* [a, a + alen) and [b, b + blen) intersect. */
static bool overlaps(size_t a, size_t alen, size_t b, size_t blen) {
  return a < b + blen && b < a + alen;
}

#define DEFECT(field, ...)                                                     \
  do {                                                                         \
    orm__model_error_set(err, ORM_EMODEL, (field), -1, __VA_ARGS__);           \
    return ORM_EMODEL;                                                         \
  } while (0)

int orm__model_check_fields(const orm_model_t *model, orm_model_error_t *err) {
  if (err != NULL)
    orm__model_error_set(err, 0, -1, -1, "%s", "");
  if (model == NULL)
    DEFECT(-1, "the model is NULL");
  if (model->schema != NULL && !name_ok(model->schema))
    DEFECT(-1, "the schema name is empty or longer than %d bytes",
           ORM_MODEL_MAX_NAME);
  if (!name_ok(model->table))
    DEFECT(-1, "the table name is missing, empty or longer than %d bytes",
           ORM_MODEL_MAX_NAME);
  if (model->fields == NULL || model->nfields == 0)
    DEFECT(-1, "table \"%s\": the model has no fields", model->table);
  if (model->nfields > ORM_MODEL_MAX_FIELDS)
    DEFECT(-1, "table \"%s\": %zu fields, more than %d", model->table,
           model->nfields, ORM_MODEL_MAX_FIELDS);
  size_t size = model->struct_size;
  if (model->nulls_offset % alignof(uint64_t) != 0 ||
      model->nulls_offset > size || size - model->nulls_offset < 8)
    DEFECT(-1, "table \"%s\": the null bitmap is outside the struct or "
               "misaligned", model->table);

  int pk = -1;
  for (size_t i = 0; i < model->nfields; i++) {
    const orm_field_t *f = &model->fields[i];
    int fi = (int)i;
    if (!name_ok(f->column))
      DEFECT(fi, "table \"%s\": field %d has no column name, or one longer "
                 "than %d bytes", model->table, fi, ORM_MODEL_MAX_NAME);
    if (!orm__codec_type_valid(f->type))
      DEFECT(fi, "column \"%s\": invalid type %d", f->column, (int)f->type);
    if (f->size != orm__codec_field_size(f->type))
      DEFECT(fi, "column \"%s\": size %zu does not match type %s (%zu)",
             f->column, f->size, orm__codec_type_name(f->type),
             orm__codec_field_size(f->type));
    if (f->offset > size || size - f->offset < f->size)
      DEFECT(fi, "column \"%s\": offset %zu is outside the struct (%zu bytes)",
             f->column, f->offset, size);
    if (f->offset % type_align(f->type) != 0)
      DEFECT(fi, "column \"%s\": offset %zu is misaligned for %s", f->column,
             f->offset, orm__codec_type_name(f->type));
    if (overlaps(f->offset, f->size, model->nulls_offset, 8))
      DEFECT(fi, "column \"%s\": overlaps the null bitmap", f->column);
    if ((f->flags & ~ORM_F_ALL_) != 0)
      DEFECT(fi, "column \"%s\": unknown flags 0x%x", f->column, f->flags);
    if (f->flags & ORM_F_PK) {
      if (pk >= 0)
        DEFECT(fi, "table \"%s\": two primary keys, \"%s\" and \"%s\" "
                   "(composite keys are not supported)", model->table,
               model->fields[pk].column, f->column);
      if (f->flags & ORM_F_NULLABLE)
        DEFECT(fi, "column \"%s\": a primary key cannot be nullable",
               f->column);
      pk = fi;
    }
    for (size_t j = 0; j < i; j++) {
      const orm_field_t *g = &model->fields[j];
      if (strcmp(f->column, g->column) == 0)
        DEFECT(fi, "table \"%s\": column \"%s\" appears twice", model->table,
               f->column);
      if (overlaps(f->offset, f->size, g->offset, g->size))
        DEFECT(fi, "columns \"%s\" and \"%s\" overlap in the struct",
               g->column, f->column);
    }
  }
  if (pk < 0 && !model->read_only)
    DEFECT(-1, "table \"%s\": no field is flagged ORM_F_PK", model->table);
  return 0;
}

/* The relations' members lie inside the struct, aligned, clear of the
 * fields, the bitmap and each other; names are distinct; keys resolve. */
static int check_relations(const orm_model_t *model, orm_model_error_t *err) {
  if (model->nrelations == 0)
    return 0;
  if (model->relations == NULL ||
      model->nrelations > ORM_MODEL_MAX_RELATIONS)
    DEFECT(-1, "table \"%s\": %zu relations, more than %d or none given",
           model->table, model->nrelations, ORM_MODEL_MAX_RELATIONS);
  size_t size = model->struct_size;
  for (size_t i = 0; i < model->nrelations; i++) {
    const orm_relation_t *rel = &model->relations[i];
    orm__rel_t resolved;
    int rc = orm__rel_resolve(&resolved, model, i, err);
    if (rc != 0)
      return rc;
    size_t len = orm__rel_to_many(rel) ? sizeof(ORM_MANY_SLOT(void))
                                       : sizeof(ORM_ONE_SLOT(void));
    if (rel->offset > size || size - rel->offset < len ||
        rel->offset % alignof(void *) != 0)
      DEFECT(-1, "relation \"%s\": its member is outside the struct or "
                 "misaligned", rel->name);
    for (size_t f = 0; f < model->nfields; f++)
      if (overlaps(rel->offset, len, model->fields[f].offset,
                   model->fields[f].size))
        DEFECT((int)f, "relation \"%s\": its member overlaps column \"%s\"",
               rel->name, model->fields[f].column);
    if (overlaps(rel->offset, len, model->nulls_offset, 8))
      DEFECT(-1, "relation \"%s\": its member overlaps the null bitmap",
             rel->name);
    for (size_t j = 0; j < i; j++) {
      const orm_relation_t *other = &model->relations[j];
      size_t olen = orm__rel_to_many(other) ? sizeof(ORM_MANY_SLOT(void))
                                            : sizeof(ORM_ONE_SLOT(void));
      if (strcmp(rel->name, other->name) == 0)
        DEFECT(-1, "table \"%s\": relation \"%s\" appears twice",
               model->table, rel->name);
      if (overlaps(rel->offset, len, other->offset, olen))
        DEFECT(-1, "relations \"%s\" and \"%s\" overlap in the struct",
               other->name, rel->name);
    }
  }
  return 0;
}

int orm_model_check_detail(const orm_model_t *model, orm_model_error_t *err) {
  int rc = orm__model_check_fields(model, err);
  if (rc == 0)
    rc = check_relations(model, err);
  return rc != 0 ? rc : orm__model_check_hooks(model, err);
}

const orm_relation_t *orm_model_relation(const orm_model_t *model,
                                         const char *name) {
  if (model == NULL || name == NULL || model->relations == NULL)
    return NULL;
  for (size_t i = 0; i < model->nrelations; i++)
    if (model->relations[i].name != NULL &&
        strcmp(model->relations[i].name, name) == 0)
      return &model->relations[i];
  return NULL;
}

#undef DEFECT

int orm_model_check(const orm_model_t *model) {
  return orm_model_check_detail(model, NULL);
}

int orm_model_field(const orm_model_t *model, const char *column) {
  if (model == NULL || column == NULL || model->fields == NULL)
    return ORM_EINVAL;
  for (size_t i = 0; i < model->nfields; i++)
    if (model->fields[i].column != NULL &&
        strcmp(model->fields[i].column, column) == 0)
      return (int)i;
  return ORM_ENOCOLUMN;
}

int orm_model_pk(const orm_model_t *model) {
  if (model == NULL || model->fields == NULL)
    return ORM_EMODEL;
  for (size_t i = 0; i < model->nfields; i++)
    if (model->fields[i].flags & ORM_F_PK)
      return (int)i;
  return ORM_EMODEL;
}

bool orm_row_is_null(const orm_model_t *model, const void *row, size_t field) {
  if (model == NULL || row == NULL || field >= model->nfields)
    return false;
  return (orm__row_nulls(model, row) >> field) & 1u;
}

void orm_row_set_null(const orm_model_t *model, void *row, size_t field,
                      bool is_null) {
  if (model == NULL || row == NULL || field >= model->nfields)
    return;
  uint64_t nulls = orm__row_nulls(model, row);
  if (is_null)
    nulls |= UINT64_C(1) << field;
  else
    nulls &= ~(UINT64_C(1) << field);
  orm__row_set_nulls(model, row, nulls);
}
