/* SPDX-License-Identifier: MIT */
/* Internals shared by the model layer's sources. */
#ifndef ORM_MODEL_INT_H
#define ORM_MODEL_INT_H

#include <stdint.h>
#include <string.h>

#include "uvorm/model.h"

/* The null bitmap of `row` (a checked model's struct). */
static inline uint64_t orm__row_nulls(const orm_model_t *model,
                                      const void *row) {
  uint64_t nulls;
  memcpy(&nulls, (const char *)row + model->nulls_offset, sizeof nulls);
  return nulls;
}

static inline void orm__row_set_nulls(const orm_model_t *model, void *row,
                                      uint64_t nulls) {
  memcpy((char *)row + model->nulls_offset, &nulls, sizeof nulls);
}

/* All bits of a model's fields. */
static inline uint64_t orm__model_all_fields(const orm_model_t *model) {
  return model->nfields >= 64 ? UINT64_MAX
                              : (UINT64_C(1) << model->nfields) - 1;
}

/* Fills `err` (if not NULL) with `code` and a printf-formatted message. */
void orm__model_error_set(orm_model_error_t *err, int code, int field,
                          int column, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;

#endif /* ORM_MODEL_INT_H */
