/* SPDX-License-Identifier: MIT */
/* What the rest of the model layer reads from a query. */
#ifndef ORM_MODEL_QUERY_INT_H
#define ORM_MODEL_QUERY_INT_H

#include <stdbool.h>

#include "uvorm/model.h"

#include "model/relation.h"

/* The query's include tree, or NULL when it includes nothing. */
const orm__includes_t *orm__query_includes(const orm_query_t *query);
bool orm__query_for_update(const orm_query_t *query);
/* The query's sort key as rendered in its ORDER BY: field indexes and
 * directions (room for ORM_MODEL_MAX_FIELDS + 1); returns their number. */
size_t orm__query_sort_key(const orm_query_t *query, uint8_t *fields,
                           bool *desc);

/* orm_find_all_async() of a query that includes relations (load.c). */
int orm__load_include(orm_exec_t *exec, orm_query_t *query, orm_future_cb cb,
                      void *data, orm_future_t **out);

#endif /* ORM_MODEL_QUERY_INT_H */
