/* SPDX-License-Identifier: MIT */
/* Compiled twice by ctest: as is it must compile; with WRONG_TYPE defined
 * the model declares an int8 column with an int32_t member, which
 * ORM_MODEL_DECLARE must reject at compile time. */
#include <uvorm.h>

#ifdef WRONG_TYPE
#define ID_CTYPE int32_t
#else
#define ID_CTYPE int64_t
#endif

#define THING_FIELDS(X)                                                        \
  X(id, ORM_T_INT8, ID_CTYPE, ORM_F_PK)                                        \
  X(label, ORM_T_TEXT, const char *, ORM_F_NULLABLE)
ORM_MODEL_DECLARE(thing, THING_FIELDS);
ORM_MODEL_DEFINE(thing, "things", THING_FIELDS);
