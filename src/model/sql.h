/* SPDX-License-Identifier: MIT */
/* SQL generation for models.
 *
 * Identifiers come only from descriptors and are always double-quoted (an
 * embedded quote doubled); values are always bound parameters $1, $2, ...
 * Statements that return rows list the model's columns explicitly, in field
 * order, so results hydrate by position.
 *
 * A model's CRUD statements are built once, by orm__model_sql_new(), and
 * each comes with what binds its parameters (orm__sql_stmt_t): the fields
 * taken from the struct, in field order, then optionally one key field.
 * orm__params_bind_row() (params.h) encodes exactly that. For a users model
 * (id PK GENERATED, email UNIQUE, name, created_at GENERATED):
 *
 *   find        SELECT "id", "email", "name", "created_at" FROM "users"
 *               WHERE "id" = $1                              key: id
 *   find_by[f]  ... WHERE "email" = $1                        key: f
 *   find_all    SELECT ... FROM "users" ORDER BY "id"
 *   count       SELECT count(*) FROM "users"
 *   exists      SELECT EXISTS (SELECT 1 FROM "users" WHERE "id" = $1)
 *   insert      INSERT INTO "users" ("email", "name") VALUES ($1, $2)
 *               RETURNING "id", "email", "name", "created_at"
 *   insert_many INSERT INTO "users" ("email", "name")
 *               SELECT u."email", u."name"
 *               FROM unnest($1::text[], $2::text[]) AS u("email", "name")
 *               RETURNING ...                 (fields: one array each)
 *   update      UPDATE "users" SET "email" = $1, "name" = $2
 *               WHERE "id" = $3 RETURNING ...   fields: email, name; key: id
 *   update_many UPDATE "users" AS t SET "name" = u."name"
 *               FROM unnest($1::int8[], $2::text[]) AS u("id", "name")
 *               WHERE t."id" = u."id" RETURNING t."id", ...
 *               (per field mask, built on first use; fields: one array
 *               each, the key's included)
 *   remove      DELETE FROM "users" WHERE "id" = $1           key: id
 *   upsert[f]   INSERT INTO "users" ("id", "email", "name")
 *               VALUES ($1, $2, $3) ON CONFLICT ("id") DO UPDATE SET
 *               "email" = EXCLUDED."email", "name" = EXCLUDED."name"
 *               RETURNING ...
 *
 * ORM_F_GENERATED columns are never inserted (except as an upsert's
 * conflict target) nor set by a full update; RETURNING reads them back.
 * (An upsert on a serial key inserts the key given, which the sequence does
 * not learn about: upsert serial tables on a unique column instead.)
 * insert_many sends each column as one array, so one statement (and one
 * prepared statement whatever the row count) inserts any number of rows;
 * RETURNING gives the rows in the order of the arrays. Enum columns go
 * through text[] and json_populate_record() on the table's row type, which
 * converts a label to the column's enum without the enum type's name (a
 * table with a NOT NULL domain column would fail that conversion; such a
 * model's enum columns need single-row inserts). Array columns go as text[]
 * of array literals, cast back to the column's array type. */
#ifndef ORM_MODEL_SQL_H
#define ORM_MODEL_SQL_H

#include <stdint.h>

#include "uvorm/model.h"

#include "model/codec.h"
#include "pool/submit.h"

/* ---- SQL text ----------------------------------------------------------- */

/* A string being built. Appending after an allocation failure does nothing;
 * the error comes out of orm__sql_take(). Zeroed it is empty. */
typedef struct {
  orm__buf_t buf;
  int error;
} orm__sql_text_t;

void orm__sql_put(orm__sql_text_t *t, const char *s);
void orm__sql_putn(orm__sql_text_t *t, const char *s, size_t n);
/* "name", quotes inside doubled. */
void orm__sql_ident(orm__sql_text_t *t, const char *name);
/* "schema"."table", or "table". */
void orm__sql_table(orm__sql_text_t *t, const orm_model_t *model);
/* $n */
void orm__sql_param(orm__sql_text_t *t, size_t n);
/* The SQL array type that carries values of `type` as one parameter
 * ("int8[]", "uuid[]"; "text[]" for text, enums and array literals). */
const char *orm__sql_array_type(orm_type_t type);
/* The model's columns in field order: "id", "email", ... */
void orm__sql_columns(orm__sql_text_t *t, const orm_model_t *model,
                      uint64_t fields);
/* The text as a NUL-terminated string from orm__malloc() (the builder is
 * emptied), or NULL with *error set (ORM_ENOMEM). */
char *orm__sql_take(orm__sql_text_t *t, int *error);
void orm__sql_discard(orm__sql_text_t *t);

/* ---- a model's statements ----------------------------------------------- */

typedef struct {
  char *sql;       /* NULL when the model has no such statement */
  uint64_t fields; /* bound from the struct as $1..$k, in field order */
  int key;         /* bound after them as $k+1, or -1 */
  orm__stmt_hint_t hint; /* the pool's statement for `sql` */
} orm__sql_stmt_t;

#define ORM__UPDATE_MASKS 8

/* Statements by field mask, built on first use: the last ORM__UPDATE_MASKS
 * masks used (sql NULL: free). */
typedef struct {
  orm__sql_stmt_t stmts[ORM__UPDATE_MASKS];
  uint64_t keys[ORM__UPDATE_MASKS];
  unsigned next;
} orm__sql_mask_cache_t;

typedef struct {
  const orm_model_t *model;
  int pk;              /* the primary key's field index */
  uint64_t generated;  /* ORM_F_GENERATED fields */
  char *columns;       /* the select list: "id", "email", ... */
  orm__sql_stmt_t find;
  orm__sql_stmt_t find_all;
  orm__sql_stmt_t count;
  orm__sql_stmt_t exists;
  orm__sql_stmt_t insert;
  orm__sql_stmt_t insert_many; /* NULL sql if every column is generated */
  orm__sql_stmt_t update;      /* NULL sql if no column can be updated */
  orm__sql_stmt_t remove;
  orm__sql_stmt_t *find_by; /* [nfields]; sql NULL for json fields,
                               which have no equality operator */
  orm__sql_stmt_t *upsert;  /* [nfields]: sql NULL unless the field is the
                               primary key or ORM_F_UNIQUE */
  /* [nrelations], or NULL: orm__model_sql_insert_with() of each has-one or
   * has-many relation, built on first use, with the child fields each
   * binds. */
  orm__sql_stmt_t *insert_with;
  uint64_t *insert_with_child;
  orm__sql_mask_cache_t update_masks;      /* UPDATEs of named fields */
  orm__sql_mask_cache_t update_many_masks; /* update_many's, by fields set */
} orm__model_sql_t;

/* Checks `model` (orm_model_check_detail) and builds its statements.
 * Returns 0, ORM_EMODEL (err says why; err may be NULL) or ORM_ENOMEM. The
 * model must outlive the result. */
int orm__model_sql_new(orm__model_sql_t **out, const orm_model_t *model,
                       orm_model_error_t *err);
void orm__model_sql_free(orm__model_sql_t *sql);

/* UPDATE of only the fields in `fields` (a non-empty set without the
 * primary key; generated fields may be named), by primary key, RETURNING
 * the columns. out->sql comes from orm__malloc(): the caller frees it.
 * Returns 0, ORM_EINVAL or ORM_ENOMEM. */
/* The UPDATE of `fields` from `sql`'s cache, built there on first use
 * (the statement stays valid until ORM__UPDATE_MASKS other masks have been
 * used after it). 0, ORM_EINVAL or ORM_ENOMEM. */
int orm__model_sql_update_cached(orm__model_sql_t *sql, uint64_t fields,
                                 orm__sql_stmt_t **out);
int orm__model_sql_update_fields(const orm__model_sql_t *sql, uint64_t fields,
                                 orm__sql_stmt_t *out);

/* Many rows' UPDATE of `fields` (as above) by primary key, in one
 * statement:
 *   UPDATE "t" AS t SET "f" = u."f", ... FROM unnest($1::type[], ...)
 *   AS u("id", "f", ...) WHERE t."id" = u."id" RETURNING t."id", ...
 * binding `fields` and the key, one array each, in field order
 * (orm__params_bind_rows). ORM_EINVAL also for a model without a key. */
int orm__model_sql_update_many_fields(const orm__model_sql_t *sql,
                                      uint64_t fields, orm__sql_stmt_t *out);
int orm__model_sql_update_many_cached(orm__model_sql_t *sql, uint64_t fields,
                                      orm__sql_stmt_t **out);

/* A parent's INSERT and its has-many children's, in one statement:
 *
 *   WITH p AS (INSERT INTO parent (...) VALUES ($1, ...) RETURNING ...),
 *        c AS (INSERT INTO child (..., fk) SELECT u.a, ..., p.pk
 *              FROM p, unnest($k::type[], ...) AS u(a, ...) RETURNING ...)
 *   SELECT p.<parent columns>, c.<child columns> FROM p LEFT JOIN c ON true
 *
 * so the server sets each child's `fk` (a field of the child) from the
 * parent's generated key. One row per child (one with NULL child columns
 * when there is none), in the children's order. out->fields are the
 * parent's fields bound as $1..; *child_fields the child's, bound as arrays
 * after them (orm__params_bind_rows). out->sql comes from orm__malloc().
 * Returns 0, ORM_ENOTSUP (the child has no column to send but its key) or
 * ORM_ENOMEM. */
int orm__model_sql_insert_with(const orm__model_sql_t *parent,
                               const orm__model_sql_t *child, int fk,
                               orm__sql_stmt_t *out, uint64_t *child_fields);

#endif /* ORM_MODEL_SQL_H */
