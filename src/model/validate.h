/* SPDX-License-Identifier: MIT */
/* Validation rules and hooks of a model (validate.c). */
#ifndef ORM_MODEL_VALIDATE_H
#define ORM_MODEL_VALIDATE_H

#include <stddef.h>
#include <stdint.h>

#include "uvorm/model.h"

/* The rules make sense for the model: 0 or ORM_EMODEL (err filled). */
int orm__model_check_hooks(const orm_model_t *model, orm_model_error_t *err);

/* The rules over `fields` of `row`: 0, or ORM_EVALIDATION with `why`. */
int orm__model_validate(const orm_model_t *model, const void *row,
                        uint64_t fields, orm_refusal_t *why);

/* before_insert, then the rules over the fields an INSERT sends. */
int orm__model_before_insert(const orm_model_t *model, void *row,
                             uint64_t fields, orm_refusal_t *why);
/* before_update (with the caller's `fields`), then the rules over
 * `writes`, the fields the UPDATE sends. */
int orm__model_before_update(const orm_model_t *model, void *row,
                             uint64_t fields, uint64_t writes,
                             orm_refusal_t *why);
int orm__model_before_delete(const orm_model_t *model, const orm_param_t *key,
                             orm_refusal_t *why);

/* after_load over `n` rows of the model's struct. */
void orm__model_after_load(const orm_model_t *model, void *rows, size_t n);

#endif /* ORM_MODEL_VALIDATE_H */
