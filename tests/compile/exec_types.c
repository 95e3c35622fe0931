/* SPDX-License-Identifier: MIT */
/* Compiled three times by ctest. As is, every call that runs SQL accepts a
 * pool, a transaction or an executor. With WRONG_EXEC it is handed a
 * model instead, which must not compile; with NO_GENERIC the plain
 * functions take an executor only (C++ sees them that way). */
#ifdef NO_GENERIC
#define ORM_NO_GENERIC
#endif
#include <uvorm.h>

#define THING_FIELDS(X)                                                        \
  X(id, ORM_T_INT8, int64_t, ORM_F_PK)                                         \
  X(label, ORM_T_TEXT, const char *, ORM_F_NULLABLE)
ORM_MODEL_DECLARE(thing, THING_FIELDS);
ORM_MODEL_DEFINE(thing, "things", THING_FIELDS);

int use(orm_pool_t *pool, orm_tx_t *tx, orm_exec_t *exec);
int use(orm_pool_t *pool, orm_tx_t *tx, orm_exec_t *exec) {
  int rc = 0;
#if defined(NO_GENERIC)
  rc |= orm_find_async(orm_pool_exec(pool), thing_model(), ORM_INT8(1), NULL,
                       NULL, NULL);
  rc |= orm_query_async(orm_tx_exec(tx), "SELECT 1", NULL, 0, NULL, NULL,
                        NULL);
  rc |= orm_count_async(exec, thing_model(), NULL, NULL, NULL, NULL);
#elif defined(WRONG_EXEC)
  rc |= orm_find_async(thing_model(), thing_model(), ORM_INT8(1), NULL, NULL,
                       NULL);
#else
  thing_t row = {.id = 1};
  rc |= orm_find_async(pool, thing_model(), ORM_INT8(1), NULL, NULL, NULL);
  rc |= orm_find_async(tx, thing_model(), ORM_INT8(1), NULL, NULL, NULL);
  rc |= orm_find_async(exec, thing_model(), ORM_INT8(1), NULL, NULL, NULL);
  rc |= orm_insert_async(tx, thing_model(), &row, NULL, NULL, NULL);
  rc |= orm_query_async(pool, "SELECT 1", NULL, 0, NULL, NULL, NULL);
  rc |= orm_model_verify_async(tx, thing_model(), NULL, NULL, NULL);
  /* The function itself, reachable by address. */
  int (*fn)(orm_exec_t *, const orm_model_t *, orm_param_t, orm_future_cb,
            void *, orm_future_t **) = orm_find_async;
  rc |= fn(ORM_EXEC(pool), thing_model(), ORM_INT8(2), NULL, NULL, NULL);
#endif
  return rc;
}
