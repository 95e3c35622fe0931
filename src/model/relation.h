/* SPDX-License-Identifier: MIT */
/* Relations resolved against their models, include trees, and the keys
 * that stitch loaded rows to their parents.
 *
 * A relation descriptor names its key columns; resolving it finds their
 * fields, checks that each key and the primary key it holds have one type,
 * and parses the declared order. An include tree is a list of resolved
 * relations, each under a parent (or the root model), parents first. */
#ifndef ORM_MODEL_RELATION_H
#define ORM_MODEL_RELATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "uvorm/model.h"

#include "base/buf.h"
#include "model/arena.h"

/* The most columns a relation's order names. */
#define ORM__REL_MAX_ORDER 8

typedef struct {
  const orm_relation_t *rel;
  const orm_model_t *owner;  /* the model that declares it */
  const orm_model_t *target; /* the model its rows hydrate into */
  /* The parent's field whose value finds the children: the foreign key for
   * BELONGS_TO, the primary key otherwise. */
  int owner_key;
  /* The child's field matched against it: the primary key for BELONGS_TO
   * and MANY_TO_MANY, the foreign key for HAS_ONE and HAS_MANY. */
  int target_key;
  int target_pk;
  orm_type_t key_type;
  /* MANY_TO_MANY: the join table and its two columns. */
  const char *join_schema;
  const char *join_table;
  const char *join_from;
  const char *join_to;
  /* ORDER BY: the declared columns, then the target's primary key. */
  uint8_t order[ORM__REL_MAX_ORDER + 1];
  bool desc[ORM__REL_MAX_ORDER + 1];
  size_t norder;
} orm__rel_t;

/* Resolves relation `index` of `owner` (whose own fields are valid).
 * Returns 0 or ORM_EMODEL with `err` (may be NULL) saying why. */
int orm__rel_resolve(orm__rel_t *out, const orm_model_t *owner, size_t index,
                     orm_model_error_t *err);

/* Checks `model`'s fields only (orm_model_check_detail() without the
 * relations), for the targets of relations, which may refer back. */
int orm__model_check_fields(const orm_model_t *model, orm_model_error_t *err);

static inline bool orm__rel_to_many(const orm_relation_t *rel) {
  return rel->kind == ORM_HAS_MANY || rel->kind == ORM_MANY_TO_MANY;
}

/* ---- include trees --------------------------------------------------------- */

typedef struct {
  orm__rel_t rel;
  int parent; /* the node it hangs under, or -1 for the root model */
} orm__include_t;

typedef struct {
  const orm_model_t *root;
  orm__include_t nodes[ORM_QUERY_MAX_INCLUDES];
  size_t n;
} orm__includes_t;

/* Adds the comma-separated dotted paths of `paths` to `inc` (whose root is
 * set), each relation once. Returns 0, or the errors of orm_query_include()
 * with `inc` unchanged. */
int orm__includes_add(orm__includes_t *inc, const char *paths);

/* The statement of node `node` of an include tree (load.c), or of the
 * query itself for node -1 (`root_sql`). Node i's statement selects its rows
 * by "key = ANY(keys)": the keys its parent's statement left in the setting
 * uvorm.k<i> (local to the transaction), or $1 for a top relation of a
 * preload (`root_sql` NULL). A statement whose rows have children of their
 * own also leaves their keys, and answers one row of NULLs when it has no
 * rows. From orm__malloc(); NULL with *rc set on failure. */
char *orm__include_sql(const orm__includes_t *inc, int node,
                       const char *root_sql, int *rc);

/* ---- keys ---------------------------------------------------------------- */

/* One key value: integers widened to int64, uuid and text as bytes. */
typedef struct {
  uint64_t hash;
  int64_t i;
  const void *bytes; /* NULL for integers */
  size_t len;
} orm__key_t;

/* The key in field `f` of `row`; false when it is NULL. */
bool orm__key_of_field(const orm_model_t *model, const void *row, size_t f,
                       orm__key_t *key);

/* The key in a binary value of a `type` column ("from" of a join table);
 * text and uuid bytes are copied into `arena`. Returns 0, ORM_ETYPE or
 * ORM_ENOMEM. */
int orm__key_of_wire(orm_type_t type, const char *wire, int len,
                     orm__arena_t *arena, orm__key_t *key);

/* The binary array parameter ($1 of "= ANY($1)") of `n` keys of `type`,
 * appended to `buf`; its type OID in *oid. 0, ORM_ERANGE or ORM_ENOMEM. */
int orm__keys_encode(orm_type_t type, const orm__key_t *keys, size_t n,
                     orm__buf_t *buf, uint32_t *oid);

/* A map from keys to rows, several rows per key allowed. */
typedef struct {
  struct orm__key_slot_s *slots;
  size_t mask; /* capacity - 1 */
} orm__keymap_t;

int orm__keymap_init(orm__keymap_t *map, size_t n);
void orm__keymap_free(orm__keymap_t *map);
void orm__keymap_put(orm__keymap_t *map, const orm__key_t *key, void *row);
/* The rows stored under `key`: call with *cursor 0 first; NULL when there
 * are no more. */
void *orm__keymap_next(const orm__keymap_t *map, const orm__key_t *key,
                       size_t *cursor);

#endif /* ORM_MODEL_RELATION_H */
