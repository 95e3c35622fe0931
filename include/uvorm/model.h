/* SPDX-License-Identifier: MIT */
/* uvorm — models: C structs that mirror tables, their descriptors, query
 * building and hydrated results.
 *
 * A model is a static descriptor (orm_model_t): a table, and one field per
 * column with the column's name, its uvorm type, where the value lives in
 * the C struct, and flags. It is normally declared once with an X-macro list
 * that generates both the struct and the descriptor:
 *
 *   #define USER_FIELDS(X)                                                 \
 *     X(id,         ORM_T_INT8,        int64_t, ORM_F_PK | ORM_F_GENERATED) \
 *     X(email,      ORM_T_TEXT,        char *,  ORM_F_UNIQUE)               \
 *     X(name,       ORM_T_TEXT,        char *,  ORM_F_NULLABLE)             \
 *     X(created_at, ORM_T_TIMESTAMPTZ, int64_t, ORM_F_GENERATED)
 *
 *   ORM_MODEL_DECLARE(user, USER_FIELDS);          (in a header)
 *   ORM_MODEL_DEFINE(user, "users", USER_FIELDS);  (in one .c file)
 *
 * which gives `user_t` (a struct with members id, email, name, created_at
 * and the null bitmap `orm_nulls`) and `const orm_model_t *user_model(void)`,
 * returning the one static descriptor. Each field's C type is checked at
 * compile time against its declared type (the table under orm_type_t):
 * declaring ORM_T_INT8 with int32_t does not compile.
 *
 * Descriptors may also be written by hand (or generated from a schema);
 * orm_model_check() validates any descriptor, and every uvorm call that
 * takes a model validates it before first use.
 *
 * NULL. Every field can be SQL NULL, whatever its C type: bit i of the
 * struct's null bitmap (a uint64_t at orm_model_t.nulls_offset) is set when
 * field i is NULL. A NULL field's C value is zero (pointers NULL), but the
 * bit alone says NULL: an int64_t field holding 0 with its bit clear is the
 * number 0. When a struct is sent to the server, a field is sent as NULL if
 * its bit is set, or if it is a string (char *) that is a NULL pointer. */
#ifndef UVORM_MODEL_H
#define UVORM_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "uvorm/common.h"
#include "uvorm/pool.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- value types ---------------------------------------------------------
 * The uvorm value types, and the C type of a field of each (binary both
 * ways; see src/model/codec.h for the wire details):
 *
 *   ORM_T_INT2         int16_t      smallint
 *   ORM_T_INT4         int32_t      integer (also reads smallint)
 *   ORM_T_INT8         int64_t      bigint (also reads integer, smallint)
 *   ORM_T_FLOAT4       float        real
 *   ORM_T_FLOAT8       double       double precision (also reads real)
 *   ORM_T_BOOL         bool         boolean
 *   ORM_T_TEXT         char *       text, varchar, char(n), name
 *   ORM_T_ENUM         char *       an enum's label (or text)
 *   ORM_T_JSON         char *       json, as stored
 *   ORM_T_JSONB        char *       jsonb, as the server renders it
 *   ORM_T_BYTEA        orm_bytes_t  bytea
 *   ORM_T_TIMESTAMP    int64_t      timestamp: microseconds since
 *                                   1970-01-01 00:00:00, wall clock
 *   ORM_T_TIMESTAMPTZ  int64_t      timestamptz: microseconds since the
 *                                   Unix epoch, UTC
 *   ORM_T_DATE         int32_t      date: days since 1970-01-01
 *   ORM_T_UUID         orm_uuid_t   uuid
 *   ORM_T_NUMERIC      char *       numeric, as an exact decimal string
 *   ORM_T_INT_ARRAY    orm_int_array_t   int2[], int4[], int8[]
 *   ORM_T_TEXT_ARRAY   orm_text_array_t  text[], varchar[], ...
 *
 * String fields may also be declared `const char *`. 0 is deliberately not
 * a type, so a zeroed field descriptor is rejected. */
typedef enum {
  ORM_T_INT2 = 1,
  ORM_T_INT4,
  ORM_T_INT8,
  ORM_T_FLOAT4,
  ORM_T_FLOAT8,
  ORM_T_BOOL,
  ORM_T_TEXT,
  ORM_T_ENUM,
  ORM_T_JSON,
  ORM_T_JSONB,
  ORM_T_BYTEA,
  ORM_T_TIMESTAMP,
  ORM_T_TIMESTAMPTZ,
  ORM_T_DATE,
  ORM_T_UUID,
  ORM_T_NUMERIC,
  ORM_T_INT_ARRAY,
  ORM_T_TEXT_ARRAY,
  ORM_T_COUNT_ /* one past the last type; not a type */
} orm_type_t;

/* A bytea value. Decoded, `data` points into the result's memory and is
 * never NULL (also for an empty value). To send, `data` may be NULL when
 * `len` is 0. */
typedef struct {
  uint8_t *data;
  size_t len;
} orm_bytes_t;

/* A uuid's 16 bytes in network order, as in its text form. */
typedef struct {
  uint8_t bytes[16];
} orm_uuid_t;

/* A one-dimensional integer array: int2[], int4[] and int8[] all decode into
 * int64_t items. `nulls` is NULL when no element is NULL; otherwise nulls[i]
 * is true when element i is NULL (items[i] is then 0). The empty array has
 * len 0 (items and nulls may be NULL). The server's lower bound is not kept:
 * item 0 is the first element whatever its subscript. */
typedef struct {
  int64_t *items;
  bool *nulls;
  size_t len;
} orm_int_array_t;

/* A one-dimensional text array: items[i] is element i's NUL-terminated
 * text, or NULL when the element is SQL NULL. The empty array has len 0
 * (items may be NULL). */
typedef struct {
  char **items;
  size_t len;
} orm_text_array_t;

/* Whether element `i` of `array` is SQL NULL. */
static inline bool orm_int_array_is_null(const orm_int_array_t *array,
                                         size_t i) {
  return array->nulls != NULL && array->nulls[i];
}

/* ---- descriptors -------------------------------------------------------- */

/* Field flags. */
#define ORM_F_PK 0x1u        /* the primary key (exactly one field) */
#define ORM_F_GENERATED 0x2u /* filled by the server (serial/identity, a
                                default, a trigger): left out of INSERT and
                                of a full UPDATE, read back by RETURNING */
#define ORM_F_NULLABLE 0x4u  /* documents that the column takes NULL */
#define ORM_F_UNIQUE 0x8u    /* a unique column: an upsert may use it as its
                                ON CONFLICT target */
#define ORM_F_ALL_ 0xfu

/* The most fields one model has (the null bitmap is one uint64_t). */
#define ORM_MODEL_MAX_FIELDS 64

/* The longest table, schema or column name in bytes: longer identifiers
 * would be truncated by the server (NAMEDATALEN - 1). */
#define ORM_MODEL_MAX_NAME 63

typedef struct orm_field_s {
  const char *column; /* the column's name, exactly as in the table */
  orm_type_t type;
  size_t offset;      /* offsetof the C member */
  size_t size;        /* sizeof the C member; must match `type` */
  unsigned flags;     /* ORM_F_* */
} orm_field_t;

typedef struct orm_model_s {
  const char *schema; /* NULL: found through the search_path */
  const char *table;
  const orm_field_t *fields; /* in column order: results map by position */
  size_t nfields;            /* 1 .. ORM_MODEL_MAX_FIELDS */
  size_t struct_size;        /* sizeof the C struct */
  size_t nulls_offset;       /* offsetof its uint64_t null bitmap */
  /* Its relations (see "relations" below); NULL and 0 for none. */
  const struct orm_relation_s *relations;
  size_t nrelations; /* 0 .. ORM_MODEL_MAX_RELATIONS */
  /* A view (ORM_MODEL_DEFINE_VIEW): reads only; its primary key is
   * optional. Writes answer ORM_ENOTSUP, and so do the calls by key
   * (orm_find_async, ...) when it has none. */
  bool read_only;
  /* Validation rules and hooks (ORM_MODEL_DEFINE_HOOKS), or NULL. */
  const struct orm_model_hooks_s *hooks;
} orm_model_t;

/* ---- validation and hooks ------------------------------------------------
 * A model may carry rules for its fields and functions called around its
 * writes and reads. Every write call (insert, insert_many, insert_with,
 * update, upsert, delete) runs them before anything is sent: a row that
 * fails sends nothing, and the call's future fails with ORM_EVALIDATION,
 * the column in orm_error_t.field and why in its message; for insert_many
 * and insert_with, no row of the call is sent (all or nothing). Inside a
 * transaction a refused write sends nothing and the transaction goes on.
 *
 *   static bool has_at(const void *member, void *data) {
 *     return strchr(*(const char *const *)member, '@') != NULL;
 *   }
 *   static const orm_rule_t user_rules[] = {
 *       ORM_NOT_EMPTY("email"), ORM_LENGTH("email", 3, 320),
 *       ORM_CHECK("email", has_at, "must contain @")};
 *   static const orm_model_hooks_t user_hooks = {
 *       .rules = user_rules, .nrules = 3, .before_insert = stamp};
 *   ORM_MODEL_DEFINE_HOOKS(user, "users", USER_FIELDS, &user_hooks);
 *
 * A rule names a column. NOT_EMPTY: a string, bytea or array with at least
 * one byte or element, never NULL. LENGTH: bytes (strings, bytea) or
 * elements (arrays) within min..max. RANGE: an integer, float, date or
 * timestamp field's value within min..max. CHECK: `check` gets the member's
 * address (and the hooks' data) and says whether it passes. A NULL value
 * passes every rule but NOT_EMPTY. Rules cover the fields a call sends:
 * INSERT skips generated fields, UPDATE the ones not updated. Bad rules
 * (no such column, a rule its type has no sense for) make the model
 * invalid (ORM_EMODEL). */
typedef enum {
  ORM_RULE_NOT_EMPTY = 1,
  ORM_RULE_LENGTH,
  ORM_RULE_RANGE,
  ORM_RULE_CHECK
} orm_rule_kind_t;

typedef struct {
  const char *column;
  orm_rule_kind_t kind;
  int64_t min, max; /* LENGTH, RANGE */
  bool (*check)(const void *member, void *data); /* CHECK */
  const char *message; /* why, when it fails; NULL: uvorm's words */
} orm_rule_t;

/* (Parameters end in '_' so that they never replace a designator.) */
#define ORM_NOT_EMPTY(c_) {.column = (c_), .kind = ORM_RULE_NOT_EMPTY}
#define ORM_LENGTH(c_, lo_, hi_)                                               \
  {.column = (c_), .kind = ORM_RULE_LENGTH, .min = (lo_), .max = (hi_)}
#define ORM_RANGE(c_, lo_, hi_)                                                \
  {.column = (c_), .kind = ORM_RULE_RANGE, .min = (lo_), .max = (hi_)}
#define ORM_CHECK(c_, fn_, why_)                                               \
  {.column = (c_), .kind = ORM_RULE_CHECK, .check = (fn_), .message = (why_)}

/* What a hook says when it refuses a row: the field (or -1 for the row)
 * and why. */
typedef struct {
  int field;
  char message[160];
} orm_refusal_t;

typedef struct orm_model_hooks_s {
  const orm_rule_t *rules;
  size_t nrules;
  /* Before a row is inserted (insert, insert_many: each row; upsert;
   * insert_with: the parent and each child): may change the row (set
   * created_by, normalize an email); return nonzero and fill `why` to
   * refuse it. Runs before the rules. */
  int (*before_insert)(void *row, orm_refusal_t *why, void *data);
  /* Before an update, with the fields it writes (0: all it can): may
   * change the row (set updated_at) or refuse it. A change is written only
   * to a field the update writes: with an explicit `fields` mask, a hook
   * that sets updated_at needs it in the mask. */
  int (*before_update)(void *row, uint64_t fields, orm_refusal_t *why,
                       void *data);
  /* Before a delete, with its key. */
  int (*before_delete)(const orm_param_t *key, orm_refusal_t *why,
                       void *data);
  /* After each row is read (find, find_by, find_all, each included
   * relation's rows), before the caller sees it. A read that is replayed
   * (its pipeline segment failed after its rows came in) is loaded again:
   * the hook then runs on the new rows too, the earlier ones discarded. */
  void (*after_load)(void *row, void *data);
  void *data;
} orm_model_hooks_t;

/* ---- declaring a model with an X-macro ---------------------------------
 * FIELDS is a macro taking one argument X and expanding to one
 * X(name, type, ctype, flags) per column, in column order: `name` is both
 * the C member and the column, `type` an ORM_T_* constant, `ctype` the
 * member's C type (see the table above), `flags` ORM_F_* or 0. A column
 * whose name is no C identifier (a keyword, a space, a capital that must
 * stay) takes ORM_COLUMN(member, "column") as its name:
 *   X(ORM_COLUMN(default_, "default"), ORM_T_TEXT, const char *, 0)
 * (ORM_FIELD and ORM_IS_NULL take the member; queries take the column; a
 * relation's key must be a plain name). */
#define ORM_COLUMN(member, column) (member, column)

/* In a header: the struct `prefix_t`, compile-time checks of every field's
 * C type, and the declaration of `prefix_model()`. Follow it with `;`. */
#define ORM_MODEL_DECLARE(prefix, FIELDS)                                      \
  ORM__MODEL_STRUCT(prefix, FIELDS, /* no relations */);                       \
  ORM__MODEL_CHECKS(prefix, FIELDS)

/* In one .c file: defines `prefix_model()`, which returns the model's
 * static descriptor (the same pointer on every call). Follow it with `;`.
 * The _IN form names the table's schema. (A function rather than an object
 * because the field offsets need the struct's type, which the X rows
 * cannot name: inside the function a local typedef does. Nothing runs at
 * call time; the descriptor is constant data.) */
#define ORM_MODEL_DEFINE(prefix, table, FIELDS)                                \
  ORM_MODEL_DEFINE_IN(prefix, NULL, table, FIELDS)
#define ORM_MODEL_DEFINE_IN(prefix, schema_name, table_name, FIELDS)           \
  const orm_model_t *prefix##_model(void) {                                    \
    typedef prefix##_t orm__self_t;                                            \
    static const orm_field_t fields[] = {FIELDS(ORM__FIELD_DESC)};             \
    static const orm_model_t model = {                                         \
        .schema = (schema_name),                                               \
        .table = (table_name),                                                 \
        .fields = fields,                                                      \
        .nfields = sizeof fields / sizeof fields[0],                           \
        .struct_size = sizeof(prefix##_t),                                     \
        .nulls_offset = offsetof(prefix##_t, orm_nulls)};                      \
    return &model;                                                             \
  }                                                                            \
  _Static_assert(1, "")

/* ORM_MODEL_DEFINE[_REL][_IN] with validation rules and hooks: `hooks` is
 * the address of a static orm_model_hooks_t (see "validation and hooks"). */
#define ORM_MODEL_DEFINE_HOOKS(prefix, table, FIELDS, hooks)                   \
  ORM_MODEL_DEFINE_HOOKS_IN(prefix, NULL, table, FIELDS, hooks)
#define ORM_MODEL_DEFINE_HOOKS_IN(prefix, schema_name, table_name, FIELDS,     \
                                  hooks_)                                      \
  const orm_model_t *prefix##_model(void) {                                    \
    typedef prefix##_t orm__self_t;                                            \
    static const orm_field_t fields[] = {FIELDS(ORM__FIELD_DESC)};             \
    static const orm_model_t model = {                                         \
        .schema = (schema_name),                                               \
        .table = (table_name),                                                 \
        .fields = fields,                                                      \
        .nfields = sizeof fields / sizeof fields[0],                           \
        .struct_size = sizeof(prefix##_t),                                     \
        .nulls_offset = offsetof(prefix##_t, orm_nulls),                       \
        .hooks = (hooks_)};                                                    \
    return &model;                                                             \
  }                                                                            \
  _Static_assert(1, "")

/* A read-only model, for a view or materialized view: like
 * ORM_MODEL_DEFINE_IN, with `read_only` set. ORM_F_PK is optional (a view
 * has no constraint; flag a column that is unique if there is one); rows
 * come in no particular order unless the query orders them. */
#define ORM_MODEL_DEFINE_VIEW(prefix, view, FIELDS)                            \
  ORM_MODEL_DEFINE_VIEW_IN(prefix, NULL, view, FIELDS)
#define ORM_MODEL_DEFINE_VIEW_IN(prefix, schema_name, view_name, FIELDS)       \
  const orm_model_t *prefix##_model(void) {                                    \
    typedef prefix##_t orm__self_t;                                            \
    static const orm_field_t fields[] = {FIELDS(ORM__FIELD_DESC)};             \
    static const orm_model_t model = {                                         \
        .schema = (schema_name),                                               \
        .table = (view_name),                                                  \
        .fields = fields,                                                      \
        .nfields = sizeof fields / sizeof fields[0],                           \
        .struct_size = sizeof(prefix##_t),                                     \
        .nulls_offset = offsetof(prefix##_t, orm_nulls),                       \
        .read_only = true};                                                    \
    return &model;                                                             \
  }                                                                            \
  _Static_assert(1, "")

/* The index of field `name` of model `prefix`: an integer constant. */
#define ORM_FIELD(prefix, name)                                                \
  ((int)offsetof(struct prefix##_orm_index_, name))
/* Its bit in the null bitmap and in field masks. */
#define ORM_FIELD_BIT(prefix, name) (UINT64_C(1) << ORM_FIELD(prefix, name))

/* Whether field `name` of `*row` (a prefix_t *) is NULL; set or clear its
 * NULL bit. Setting NULL does not touch the member's value. */
#define ORM_IS_NULL(row, prefix, name)                                         \
  ((((row)->orm_nulls) & ORM_FIELD_BIT(prefix, name)) != 0)
#define ORM_SET_NULL(row, prefix, name)                                        \
  ((void)((row)->orm_nulls |= ORM_FIELD_BIT(prefix, name)))
#define ORM_SET_NOT_NULL(row, prefix, name)                                    \
  ((void)((row)->orm_nulls &= ~ORM_FIELD_BIT(prefix, name)))

/* The same by field index, for any descriptor (hand-written ones too). */
ORM_EXTERN bool orm_row_is_null(const orm_model_t *model, const void *row,
                                size_t field);
ORM_EXTERN void orm_row_set_null(const orm_model_t *model, void *row,
                                 size_t field, bool is_null);

/* ---- relations -------------------------------------------------------------
 * A relation links a model to another (its target) by key columns. Four
 * kinds, each keyed on a primary key:
 *
 *   ORM_BELONGS_TO    this model's `key` column holds the target's primary
 *                     key (messages.author_id -> users.id). To-one.
 *   ORM_HAS_ONE       the target's `key` column holds this model's primary
 *                     key (messages.id <- usage_records.message_id). To-one;
 *                     should several target rows match, the first in the
 *                     relation's order is taken.
 *   ORM_HAS_MANY      the same, to-many (conversations.id <-
 *                     messages.conversation_id).
 *   ORM_MANY_TO_MANY  through a join table whose `from` column holds this
 *                     model's primary key and whose `to` column holds the
 *                     target's (agents <- agent_knowledge_bases ->
 *                     knowledge_bases). To-many.
 *
 * Keys are int2, int4, int8, uuid or text columns, and a key and the
 * primary key it holds have the same type. A relation's rows come in its
 * `order` ("col [ASC|DESC], ..." over the target's columns; the target's
 * primary key breaks ties and is the order when none is given).
 *
 * Declared with the model as a second X-macro list, next to its fields:
 *
 *   #define MESSAGE_RELATIONS(R)                                           \
 *     R(conversation, ORM_BELONGS_TO, conversation, conversation_id, NULL)  \
 *     R(author, ORM_BELONGS_TO, user, author_id, NULL)                      \
 *     R(editor, ORM_BELONGS_TO, user, editor_id, NULL)                      \
 *     R(usage, ORM_HAS_ONE, usage_record, message_id, NULL)
 *   #define AGENT_RELATIONS(R)                                             \
 *     R(knowledge_bases, ORM_MANY_TO_MANY, knowledge_base,                   \
 *       ORM_THROUGH("agent_knowledge_bases", "agent_id",                      \
 *                   "knowledge_base_id"), "name")
 *
 *   ORM_MODEL_DECLARE_REL(message, MESSAGE_FIELDS, MESSAGE_RELATIONS);
 *   ORM_MODEL_DEFINE_REL(message, "messages", MESSAGE_FIELDS,
 *                        MESSAGE_RELATIONS);
 *
 * Each row is R(name, kind, target, key, order): `name` names the relation
 * (in include paths) and its member in the struct; `target` is the target
 * model's prefix; `key` the key column (an identifier: the DEFINE macro
 * fails to compile if the model it belongs to has no such field); `order`
 * a string or NULL. A many-to-many row gives, instead of a key, either
 * ORM_THROUGH("table", "from_column", "to_column") for a join table that
 * has no model, or ORM_THROUGH_MODEL(join_prefix, from_field, to_field) for
 * one that does (its fields are checked at compile time too).
 *
 * The struct gets one member per relation, after its fields:
 *
 *   to-many:  struct { message_t *items; size_t len; bool loaded; } messages;
 *   to-one:   struct { user_t *item; bool loaded; } author;
 *
 * Zeroed means "not loaded". A loaded to-many has `len` rows at `items`
 * (NULL when there are none); a loaded to-one whose key is NULL, or whose
 * target row does not exist, has item NULL. The rows pointed to belong to
 * the orm_rows_t the parent came from, and go with it. Read them through
 * ORM_REL_MANY() / ORM_REL_ONE(), which refuse a relation that was not
 * loaded with ORM_ENOTLOADED instead of reporting it empty. */

typedef enum {
  ORM_BELONGS_TO = 1,
  ORM_HAS_ONE,
  ORM_HAS_MANY,
  ORM_MANY_TO_MANY
} orm_relation_kind_t;

/* The most relations one model declares. */
#define ORM_MODEL_MAX_RELATIONS 32

typedef struct orm_relation_s {
  const char *name; /* as in include paths: letters, digits, '_' */
  orm_relation_kind_t kind;
  const orm_model_t *(*target)(void); /* the target's descriptor */
  /* BELONGS_TO: this model's column holding the target's primary key;
   * HAS_ONE, HAS_MANY: the target's column holding this model's; NULL for
   * MANY_TO_MANY. */
  const char *key;
  const char *order; /* NULL, or "col [ASC|DESC], ..." of the target */
  struct {
    const char *schema; /* NULL: found through the search_path */
    const char *table;  /* the join table, when `model` is NULL */
    const orm_model_t *(*model)(void); /* the join table's model, or NULL */
    const char *from;   /* its column holding this model's primary key */
    const char *to;     /* its column holding the target's */
  } through; /* MANY_TO_MANY only */
  size_t offset; /* offsetof the relation's member in the struct */
} orm_relation_t;

/* The members a relation adds to the struct, for a target struct type T.
 * Hand-written descriptors use the same layouts. */
#define ORM_MANY_SLOT(T)                                                       \
  struct {                                                                     \
    T *items;                                                                  \
    size_t len;                                                                \
    bool loaded;                                                               \
  }
#define ORM_ONE_SLOT(T)                                                        \
  struct {                                                                     \
    T *item;                                                                   \
    bool loaded;                                                               \
  }

/* The same layouts for any target, as uvorm writes them. */
typedef ORM_MANY_SLOT(void) orm__many_slot_t;
typedef ORM_ONE_SLOT(void) orm__one_slot_t;

/* Whether relation `rel` of `*row` was loaded. */
#define ORM_REL_LOADED(row, rel) ((row)->rel.loaded)
/* A loaded to-many relation: sets *items_out (a T **) and *len_out (a
 * size_t *) and gives 0; or gives ORM_ENOTLOADED and sets nothing. The
 * assignment checks the pointer type at compile time. `row` is evaluated
 * more than once. */
#define ORM_REL_MANY(row, rel, items_out, len_out)                             \
  ((row)->rel.loaded ? (*(items_out) = (row)->rel.items,                       \
                        *(len_out) = (row)->rel.len, 0)                        \
                     : ORM_ENOTLOADED)
/* A loaded to-one relation: sets *item_out (a T **; NULL when there is no
 * such row) and gives 0; or ORM_ENOTLOADED. */
#define ORM_REL_ONE(row, rel, item_out)                                        \
  ((row)->rel.loaded ? (*(item_out) = (row)->rel.item, 0) : ORM_ENOTLOADED)

/* ORM_MODEL_DECLARE and ORM_MODEL_DEFINE with relations: RELATIONS is a
 * macro taking one argument R and expanding to one R(...) row per
 * relation, as above. Every target model must be declared (its header
 * included) where ORM_MODEL_DEFINE_REL is used; a target need not be
 * declared yet where ORM_MODEL_DECLARE_REL is, so models may refer to each
 * other. */
#define ORM_MODEL_DECLARE_REL(prefix, FIELDS, RELATIONS)                       \
  ORM__MODEL_STRUCT(prefix, FIELDS, RELATIONS(ORM__REL_MEMBER));               \
  ORM__MODEL_CHECKS(prefix, FIELDS)
#define ORM_MODEL_DEFINE_REL(prefix, table, FIELDS, RELATIONS)                 \
  ORM_MODEL_DEFINE_REL_IN(prefix, NULL, table, FIELDS, RELATIONS)
#define ORM_MODEL_DEFINE_REL_IN(prefix, schema_name, table_name, FIELDS,       \
                                RELATIONS)                                     \
  const orm_model_t *prefix##_model(void) {                                    \
    typedef prefix##_t orm__self_t;                                            \
    RELATIONS(ORM__REL_CHECK)                                                  \
    static const orm_field_t fields[] = {FIELDS(ORM__FIELD_DESC)};             \
    static const orm_relation_t relations[] = {RELATIONS(ORM__REL_DESC)};      \
    static const orm_model_t model = {                                         \
        .schema = (schema_name),                                               \
        .table = (table_name),                                                 \
        .fields = fields,                                                      \
        .nfields = sizeof fields / sizeof fields[0],                           \
        .struct_size = sizeof(prefix##_t),                                     \
        .nulls_offset = offsetof(prefix##_t, orm_nulls),                       \
        .relations = relations,                                                \
        .nrelations = sizeof relations / sizeof relations[0]};                 \
    return &model;                                                             \
  }                                                                            \
  _Static_assert(1, "")

#define ORM_MODEL_DEFINE_REL_HOOKS(prefix, table, FIELDS, RELATIONS, hooks)   \
  ORM_MODEL_DEFINE_REL_HOOKS_IN(prefix, NULL, table, FIELDS, RELATIONS, hooks)
#define ORM_MODEL_DEFINE_REL_HOOKS_IN(prefix, schema_name, table_name, FIELDS, \
                                      RELATIONS, hooks_)                       \
  const orm_model_t *prefix##_model(void) {                                    \
    typedef prefix##_t orm__self_t;                                            \
    RELATIONS(ORM__REL_CHECK)                                                  \
    static const orm_field_t fields[] = {FIELDS(ORM__FIELD_DESC)};             \
    static const orm_relation_t relations[] = {RELATIONS(ORM__REL_DESC)};      \
    static const orm_model_t model = {                                         \
        .schema = (schema_name),                                               \
        .table = (table_name),                                                 \
        .fields = fields,                                                      \
        .nfields = sizeof fields / sizeof fields[0],                           \
        .struct_size = sizeof(prefix##_t),                                     \
        .nulls_offset = offsetof(prefix##_t, orm_nulls),                       \
        .relations = relations,                                                \
        .nrelations = sizeof relations / sizeof relations[0],                  \
        .hooks = (hooks_)};                                                    \
    return &model;                                                             \
  }                                                                            \
  _Static_assert(1, "")

/* The relation named `name` of `model`, or NULL. */
ORM_EXTERN const orm_relation_t *orm_model_relation(const orm_model_t *model,
                                                    const char *name);


/* ---- checking a descriptor ---------------------------------------------- */

/* What went wrong, for errors that deserve more than a code: a bad
 * descriptor, or a result that does not fit its model. `message` names the
 * field or column concerned. */
typedef struct orm_model_error_s {
  int code;   /* the ORM_E* code returned; 0 if none */
  int field;  /* the field concerned, or -1 */
  int column; /* the result column concerned, or -1 */
  char message[256];
} orm_model_error_t;

/* Validates a descriptor. Returns 0, or ORM_EMODEL for: a NULL model, table,
 * fields array or column name; an empty name or one longer than
 * ORM_MODEL_MAX_NAME; no fields or more than ORM_MODEL_MAX_FIELDS; an
 * invalid type; a size that does not match the type; a field outside the
 * struct, misaligned for its type, or overlapping another field or the null
 * bitmap; a duplicate column; unknown flags; no primary key (except on a
 * read-only model), more than one, or a nullable one. Never crashes on a garbage-filled descriptor whose
 * pointers are valid or NULL. orm_model_check_detail() also fills `err`
 * (which may be NULL) with the first defect found. */
ORM_EXTERN int orm_model_check(const orm_model_t *model);
ORM_EXTERN int orm_model_check_detail(const orm_model_t *model,
                                      orm_model_error_t *err);

/* The index of the field whose column is `column` (exact match), or
 * ORM_ENOCOLUMN; ORM_EINVAL for a NULL argument. */
ORM_EXTERN int orm_model_field(const orm_model_t *model, const char *column);

/* The index of the primary key field, or ORM_EMODEL. */
ORM_EXTERN int orm_model_pk(const orm_model_t *model);

/* ---- hydrated results ----------------------------------------------------
 * Rows decoded from a query's result: an array of the model's structs.
 * Strings, bytes and arrays of all rows live in memory owned by the rows
 * object; orm_rows_free() releases everything at once, after which no
 * pointer taken from a row is valid. */
typedef struct orm_rows_s orm_rows_t;

ORM_EXTERN size_t orm_rows_count(const orm_rows_t *rows);
/* The array of structs (cast it to the model's type), or NULL when there
 * are no rows. Row i is at (char *)array + i * struct_size. */
ORM_EXTERN void *orm_rows_array(const orm_rows_t *rows);
/* Row `i`, or NULL when i >= count. */
ORM_EXTERN void *orm_rows_at(const orm_rows_t *rows, size_t i);
ORM_EXTERN const orm_model_t *orm_rows_model(const orm_rows_t *rows);
/* Frees the rows and everything they point to. NULL is a no-op. */
ORM_EXTERN void orm_rows_free(orm_rows_t *rows);

/* ---- the query builder ---------------------------------------------------
 * A query selects a model's rows: conditions, ordering, limit and offset,
 * keyset pagination and FOR UPDATE. Column names are checked against the
 * model at each call; values are bound parameters, converted to the
 * column's type and copied into the query (the caller's buffers may go once
 * a call returns).
 *
 * Errors stick: the first failing call's code is returned by every later
 * call and by orm_query_sql(), and the query never produces SQL. Calls
 * return 0 or:
 *   ORM_ENOCOLUMN  the column is not one of the model's fields
 *   ORM_ETYPE      the value cannot be given to the column (ORM_BOOL for an
 *                  integer column, ORM_FLOAT8 for an integer column: no
 *                  silent truncation), LIKE/ILIKE on a column that is not
 *                  ORM_T_TEXT, comparing or ordering a json column (json
 *                  has no operators; jsonb does), IN on an array column
 *   ORM_ERANGE     the value does not fit the column (300 for a smallint)
 *   ORM_EINVAL     a NULL argument, unknown operator, NULL value where one
 *                  is needed (use orm_query_where_null)
 *   ORM_ESTATE     the call is out of order (orm_query_end without a group,
 *                  ordering after orm_query_after, unclosed group at
 *                  orm_query_sql)
 *   ORM_E2BIG      too many parameters or groups nested too deep
 *   ORM_ENOMEM
 *
 * Values. A column takes a value of its own kind: ORM_INT2/4/8 for integer
 * columns (and for float, numeric, timestamp/timestamptz as microseconds
 * since the epoch, date as days since 1970-01-01), ORM_FLOAT4/8 for float
 * and numeric columns, ORM_BOOL for boolean, ORM_BYTEA for bytea. ORM_TEXT
 * and ORM_UNTYPED go to any column as text that the server parses with the
 * column's type ("2024-05-01 12:00+00", a uuid, "12.50", an enum label).
 * ORM_BINARY is passed through as is. */
typedef struct orm_query_s orm_query_t;

typedef enum {
  ORM_OP_EQ = 1, /* =  */
  ORM_OP_NE,     /* <> */
  ORM_OP_LT,     /* <  */
  ORM_OP_LE,     /* <= */
  ORM_OP_GT,     /* >  */
  ORM_OP_GE,     /* >= */
  ORM_OP_LIKE,   /* LIKE (text columns) */
  ORM_OP_ILIKE   /* ILIKE (text columns) */
} orm_op_t;

typedef enum { ORM_ASC = 0, ORM_DESC = 1 } orm_order_t;

typedef enum {
  ORM_QUERY_SELECT = 0, /* the model's columns, in field order */
  ORM_QUERY_COUNT,      /* one bigint: how many rows match */
  ORM_QUERY_EXISTS      /* one boolean: whether any row matches */
} orm_query_kind_t;

/* A new query over `model` (which must outlive it). Returns 0,
 * ORM_EINVAL, ORM_EMODEL (the descriptor fails orm_model_check) or
 * ORM_ENOMEM; *query is NULL on error. */
ORM_EXTERN int orm_query_new(orm_query_t **query, const orm_model_t *model);
/* Frees the query and everything it owns. NULL is a no-op. */
ORM_EXTERN void orm_query_free(orm_query_t *query);
/* The model the query selects from (its results hydrate into it). */
ORM_EXTERN const orm_model_t *orm_query_model(const orm_query_t *query);

/* column <op> value. */
ORM_EXTERN int orm_query_where(orm_query_t *query, const char *column,
                               orm_op_t op, orm_param_t value);
/* column = ANY($n): the `n` values travel as one array parameter. An empty
 * list matches nothing. NULL elements are allowed (and match nothing). */
ORM_EXTERN int orm_query_where_in(orm_query_t *query, const char *column,
                                  const orm_param_t *values, size_t n);
/* column IS NULL / column IS NOT NULL. */
ORM_EXTERN int orm_query_where_null(orm_query_t *query, const char *column);
ORM_EXTERN int orm_query_where_not_null(orm_query_t *query,
                                        const char *column);

/* Conditions are joined with AND. orm_query_or() opens a group whose
 * members are joined with OR, orm_query_and() one joined with AND (inside an
 * OR group); orm_query_end() closes the innermost group. Groups nest up to
 * 32 deep. An empty AND group is TRUE, an empty OR group FALSE. */
ORM_EXTERN int orm_query_or(orm_query_t *query);
ORM_EXTERN int orm_query_and(orm_query_t *query);
ORM_EXTERN int orm_query_end(orm_query_t *query);

/* ORDER BY column ASC|DESC; call again for more columns. */
ORM_EXTERN int orm_query_order_by(orm_query_t *query, const char *column,
                                  orm_order_t order);
/* LIMIT n / OFFSET n (n >= 0; ORM_ERANGE otherwise). */
ORM_EXTERN int orm_query_limit(orm_query_t *query, int64_t n);
ORM_EXTERN int orm_query_offset(orm_query_t *query, int64_t n);

/* Keyset pagination: only rows after the one whose sort key was `key`. The
 * sort key is the ORDER BY columns given so far, followed by the primary key
 * if it is not one of them (the query is then also ordered by it), so pass
 * the last row's values for each, in that order (`n` of them). With no
 * ORDER BY, the key is the primary key alone. All sort columns must have the
 * same direction (ORM_ENOTSUP otherwise): the condition is one row
 * comparison, (a, id) > ($1, $2), which an index on (a, id) serves. Call it
 * after the last orm_query_order_by(), and at most once. */
ORM_EXTERN int orm_query_after(orm_query_t *query, const orm_param_t *key,
                               size_t n);

/* Locks the selected rows (SELECT ... FOR UPDATE); meant for queries run in
 * a transaction. COUNT and EXISTS ignore it. */
ORM_EXTERN int orm_query_for_update(orm_query_t *query);

/* Eager loading: the rows of relation path `path` come with the query's
 * rows, in their relation members. A path names relations from the query's
 * model down, separated by dots ("messages", "messages.usage"); several
 * paths may be given at once, separated by commas ("agent, messages.usage"),
 * or by calling again. A path's prefixes are loaded too, and a prefix
 * shared by two paths once.
 *
 * The query and every relation each cost one statement, but one round trip
 * in all: a relation's statement does not wait for its parent's rows, but
 * reads their keys on the server, where the statement before it left them
 * (in settings local to the transaction, named uvorm.k0, uvorm.k1, ...).
 * On the pool all of them run in one read-only REPEATABLE READ
 * transaction, so they see one snapshot: no child is missing or orphaned
 * whatever writes run meanwhile. In a transaction they run in it, and see
 * its snapshots (one for REPEATABLE READ and SERIALIZABLE; one per
 * statement for READ COMMITTED). A query with a LIMIT or OFFSET is ordered
 * by its primary key after its ORDER BY columns.
 *
 * Errors (sticky, before any SQL is sent): ORM_ENORELATION (a name that is
 * not a relation of its model), ORM_EINVAL (a NULL or malformed path, a
 * path that takes the same relation twice, as in "a.b.a"), ORM_E2BIG (more
 * than ORM_QUERY_MAX_INCLUDES relations), ORM_EMODEL (a relation whose
 * descriptor is wrong: a key that is not a field, keys of different types).
 * Including is for ORM_QUERY_SELECT through orm_find_all_async(); COUNT and
 * EXISTS ignore it. On the pool, FOR UPDATE cannot be combined with it
 * (ORM_ENOTSUP from orm_find_all_async: the transaction is read-only):
 * lock in a transaction of your own. */
ORM_EXTERN int orm_query_include(orm_query_t *query, const char *path);

/* The most relations one query or preload loads. */
#define ORM_QUERY_MAX_INCLUDES 16

/* The first error the query met, or 0. */
ORM_EXTERN int orm_query_error(const orm_query_t *query);

/* The query's SQL and parameters, for running it (a prepared statement can
 * be kept for the SQL: the same query always gives the same text). The SQL
 * selects the model's columns in field order, so its result hydrates into
 * the model. The pointers stay valid until the query is changed or freed;
 * the query can be run again and again. Returns 0, the query's sticky
 * error, ORM_ESTATE (a group is still open), ORM_EINVAL, ORM_E2BIG or
 * ORM_ENOMEM (these last do not stick: the call may be retried).
 * `params` may be NULL when `nparams` is 0. */
ORM_EXTERN int orm_query_sql(orm_query_t *query, orm_query_kind_t kind,
                             const char **sql, const orm_param_t **params,
                             size_t *nparams);

/* ---- models on an executor --------------------------------------------------
 * Each call runs on an executor: the pool, or a transaction (see
 * orm_pool_exec() in uvorm/pool.h; in C11 a pool or transaction can be
 * passed directly). Each call builds its statement from SQL made once per
 * model and pool,
 * binds every value as a parameter, and resolves on the loop with the
 * answer hydrated into the model's structs. Like every uvorm call: 0 or a
 * negative ORM_E* code; on 0 the callback runs exactly once, later.
 *
 * Values:
 *   - reads (find, find_by, find_all) and writes that return rows (insert,
 *     insert_many, upsert) resolve with an orm_rows_t *; orm_future_row()
 *     gives its first row. Take it with orm_future_take() and free it with
 *     orm_rows_free();
 *   - update, delete, count and exists resolve with an orm_result_t *:
 *     orm_result_affected() for update and delete, one bigint (count) or one
 *     boolean (exists) in row 0, column 0.
 *
 * Call errors: ORM_EINVAL (NULL executor or model or row, a conflict column
 * that is neither the key nor unique), ORM_EMODEL (the descriptor fails
 * orm_model_check), ORM_ENOCOLUMN, ORM_ETYPE / ORM_ERANGE (a value that
 * does not fit its column), ORM_ENOTSUP (the model has no such statement,
 * e.g. an update of a model whose columns are all generated), and those of
 * orm_query_async(). Future errors: those of orm_query_async(), plus
 * ORM_ENOTFOUND (orm_find_async: no row has the key; an insert or upsert
 * that a trigger or rule skipped, so RETURNING gave fewer rows than were
 * sent) and ORM_ETYPE (a column
 * whose type does not fit its field; the message names the column). */

/* The row whose primary key is `key`. */
ORM_EXTERN int orm_find_async(orm_exec_t *exec, const orm_model_t *model,
                              orm_param_t key, orm_future_cb cb, void *data,
                              orm_future_t **out);
/* Every row whose `column` equals `value`. */
ORM_EXTERN int orm_find_by_async(orm_exec_t *exec, const orm_model_t *model,
                                 const char *column, orm_param_t value,
                                 orm_future_cb cb, void *data,
                                 orm_future_t **out);
/* The rows `query` selects (every row when it is NULL). The query must be
 * over `model` (which may be NULL when a query is given) and may be freed
 * once the call returns. */
ORM_EXTERN int orm_find_all_async(orm_exec_t *exec, const orm_model_t *model,
                                  orm_query_t *query, orm_future_cb cb,
                                  void *data, orm_future_t **out);
ORM_EXTERN int orm_count_async(orm_exec_t *exec, const orm_model_t *model,
                               orm_query_t *query, orm_future_cb cb,
                               void *data, orm_future_t **out);
ORM_EXTERN int orm_exists_async(orm_exec_t *exec, const orm_model_t *model,
                                orm_query_t *query, orm_future_cb cb,
                                void *data, orm_future_t **out);
/* Inserts `*row` (generated fields left to the server) and, before the
 * callback runs, writes the row's generated fields (id, defaults,
 * timestamps) back into it: `row` must stay valid until then. Strings
 * written back point into the future's value. */
ORM_EXTERN int orm_insert_async(orm_exec_t *exec, const orm_model_t *model,
                                void *row, orm_future_cb cb, void *data,
                                orm_future_t **out);
/* Inserts `n` structs from the array `rows` in one statement and one round
 * trip, writing generated fields back into each. */
ORM_EXTERN int orm_insert_many_async(orm_exec_t *exec,
                                     const orm_model_t *model, void *rows,
                                     size_t n, orm_future_cb cb, void *data,
                                     orm_future_t **out);
/* Writing through a relation: inserts `*row` and the children in its
 * has-many (or has-one) relation `relation`, in one statement (so wholly or
 * not at all, and one round trip). The children are the `len` structs at
 * row->relation.items (has-one: the one at .item, or none when it is NULL);
 * each child's key column is set by the server from the parent's generated
 * key, whatever the struct holds. Before the callback runs, the parent's
 * generated fields are written back into `*row`, each child's generated
 * fields and key into the child, and the relation is marked loaded: `row`
 * and the children must stay valid until then. Resolves with an
 * orm_rows_t of the parent as stored, its relation member holding the
 * children as stored. Call errors: those of orm_insert_async(),
 * ORM_ENORELATION, ORM_ENOTSUP (a relation of another kind, or a child whose
 * only column to send is its key). */
ORM_EXTERN int orm_insert_with_async(orm_exec_t *exec,
                                     const orm_model_t *model, void *row,
                                     const char *relation, orm_future_cb cb,
                                     void *data, orm_future_t **out);
/* Updates the row with `row`'s primary key: the fields in `fields` (a mask
 * of ORM_FIELD_BIT()s), or every column but the key and generated ones
 * when `fields` is 0. The row is not const: the model's before_update
 * hook may change it. */
ORM_EXTERN int orm_update_async(orm_exec_t *exec, const orm_model_t *model,
                                void *row, uint64_t fields,
                                orm_future_cb cb, void *data,
                                orm_future_t **out);
/* Updates `n` rows (consecutive structs at `rows`), each matched by its
 * primary key, in one statement and one round trip (UPDATE ... FROM
 * unnest(...): one array per column, so one prepared statement whatever
 * `n`): the fields in `fields`, or as orm_update_async() when it is 0. All
 * or nothing: a row that breaks a constraint fails the call with the
 * server's error and no row changes. The before_update hook runs on every
 * row first; a refusal fails the call (ORM_EVALIDATION, `index` naming the
 * row) and nothing is sent. Resolves, as orm_update_async() does, with an
 * orm_result_t: orm_result_affected() is the number of rows updated (a key
 * no row has updates nothing), its rows are those rows as stored, in no
 * particular order. A key given twice is updated once, with either row's
 * values. The server locks the rows in the order of `rows` (for the small
 * batches this is meant for): sort them by key, as for any batch of
 * writes, so that two batches over the same rows cannot deadlock. Call
 * errors: those of orm_update_async(), ORM_EINVAL (NULL rows, n == 0),
 * ORM_ENOTSUP (a model without a primary key, or with nothing to update),
 * ORM_ERANGE (n > INT32_MAX). */
ORM_EXTERN int orm_update_many_async(orm_exec_t *exec,
                                     const orm_model_t *model, void *rows,
                                     size_t n, uint64_t fields,
                                     orm_future_cb cb, void *data,
                                     orm_future_t **out);
ORM_EXTERN int orm_delete_async(orm_exec_t *exec, const orm_model_t *model,
                                orm_param_t key, orm_future_cb cb, void *data,
                                orm_future_t **out);
/* INSERT ... ON CONFLICT (conflict_column) DO UPDATE: the primary key when
 * `conflict_column` is NULL, or a column flagged ORM_F_UNIQUE. Writes back
 * like orm_insert_async(). */
ORM_EXTERN int orm_upsert_async(orm_exec_t *exec, const orm_model_t *model,
                                void *row, const char *conflict_column,
                                orm_future_cb cb, void *data,
                                orm_future_t **out);

/* Loads relation path(s) `path` (as for orm_query_include()) into `rows`,
 * rows already in hand: one statement per relation, selecting by
 * "key = ANY($1)" over the rows' distinct keys, in chunks of at most
 * ORM_PRELOAD_CHUNK keys. Every statement goes out at once (nested ones
 * keyed by the statement above them), one round trip in all, in one
 * read-only REPEATABLE READ transaction on the pool when there is more
 * than one. The loaded rows belong to `rows` and go with orm_rows_free();
 * `rows` must stay alive and untouched until the callback. The future
 * resolves with no value. Rows with nothing to load (no rows, or only NULL
 * keys) send nothing. A relation already loaded is loaded again. Call errors:
 * those of orm_query_include() and orm_find_all_async(); ORM_EINVAL for
 * NULL rows or path. */
ORM_EXTERN int orm_preload_async(orm_exec_t *exec, orm_rows_t *rows,
                                 const char *path, orm_future_cb cb,
                                 void *data, orm_future_t **out);

/* The most keys one preload statement carries. */
#define ORM_PRELOAD_CHUNK 10000

/* The first row of a future that resolved with an orm_rows_t (cast it to
 * the model's struct), or NULL. It lives as long as the future's value. */
ORM_EXTERN void *orm_future_row(const orm_future_t *future);

/* ---- checking a descriptor against the live table -------------------------
 * Resolves with an orm_schema_report_t * (free it with
 * orm_schema_report_free() once taken) listing each field whose column is
 * missing (ORM_ENOCOLUMN) or whose column type does not fit the field
 * (ORM_ETYPE); nproblems is 0 when the model fits. Extra columns in the
 * table are fine. */
typedef struct {
  int field;          /* index in the model */
  const char *column; /* the field's column */
  int code;           /* ORM_ENOCOLUMN or ORM_ETYPE */
  char message[192];  /* names the column and both types */
} orm_schema_problem_t;

typedef struct {
  const orm_model_t *model;
  bool table_exists;
  size_t nproblems;
  orm_schema_problem_t problems[]; /* nproblems of them */
} orm_schema_report_t;

ORM_EXTERN int orm_model_verify_async(orm_exec_t *exec,
                                      const orm_model_t *model,
                                      orm_future_cb cb, void *data,
                                      orm_future_t **out);
ORM_EXTERN void orm_schema_report_free(orm_schema_report_t *report);

#ifdef ORM__GENERIC
#define orm_find_async(exec, ...) orm_find_async(ORM_EXEC(exec), __VA_ARGS__)
#define orm_find_by_async(exec, ...)                                           \
  orm_find_by_async(ORM_EXEC(exec), __VA_ARGS__)
#define orm_find_all_async(exec, ...)                                          \
  orm_find_all_async(ORM_EXEC(exec), __VA_ARGS__)
#define orm_count_async(exec, ...) orm_count_async(ORM_EXEC(exec), __VA_ARGS__)
#define orm_exists_async(exec, ...)                                            \
  orm_exists_async(ORM_EXEC(exec), __VA_ARGS__)
#define orm_insert_async(exec, ...)                                            \
  orm_insert_async(ORM_EXEC(exec), __VA_ARGS__)
#define orm_insert_many_async(exec, ...)                                       \
  orm_insert_many_async(ORM_EXEC(exec), __VA_ARGS__)
#define orm_insert_with_async(exec, ...)                                       \
  orm_insert_with_async(ORM_EXEC(exec), __VA_ARGS__)
#define orm_update_async(exec, ...)                                            \
  orm_update_async(ORM_EXEC(exec), __VA_ARGS__)
#define orm_update_many_async(exec, ...)                                       \
  orm_update_many_async(ORM_EXEC(exec), __VA_ARGS__)
#define orm_delete_async(exec, ...)                                            \
  orm_delete_async(ORM_EXEC(exec), __VA_ARGS__)
#define orm_upsert_async(exec, ...)                                            \
  orm_upsert_async(ORM_EXEC(exec), __VA_ARGS__)
#define orm_preload_async(exec, ...)                                           \
  orm_preload_async(ORM_EXEC(exec), __VA_ARGS__)
#define orm_model_verify_async(exec, ...)                                      \
  orm_model_verify_async(ORM_EXEC(exec), __VA_ARGS__)
#endif

#ifdef __cplusplus
}
#endif

/* ---- implementation details of the macros above ------------------------- */
#define ORM__MODEL_STRUCT(prefix, FIELDS, RELATION_MEMBERS)                    \
  typedef struct prefix##_s {                                                  \
    FIELDS(ORM__MEMBER)                                                        \
    uint64_t orm_nulls; /* bit ORM_FIELD(prefix, f) set: field f is NULL */    \
    RELATION_MEMBERS                                                           \
  } prefix##_t
#define ORM__MODEL_CHECKS(prefix, FIELDS)                                      \
  /* One char per field: a member's offset is its field index. */              \
  struct prefix##_orm_index_ {                                                 \
    FIELDS(ORM__INDEX_MEMBER)                                                  \
  };                                                                           \
  FIELDS(ORM__FIELD_CHECK)                                                     \
  _Static_assert(sizeof(struct prefix##_orm_index_) ==                         \
                     (FIELDS(ORM__COUNT_ONE) 0),                               \
                 "uvorm: unexpected padding in the field index");              \
  _Static_assert(sizeof(struct prefix##_orm_index_) <= ORM_MODEL_MAX_FIELDS,   \
                 "uvorm: a model has at most ORM_MODEL_MAX_FIELDS fields");    \
  const orm_model_t *prefix##_model(void)
/* Relations: the kind picks the helper by token pasting, so each row's
 * `key` is either an identifier or an ORM_THROUGH[_MODEL](...) form, which
 * is never a macro of its own: it is pasted too. */
#define ORM__REL_MEMBER(n_, k_, t_, key_, o_) ORM__REL_MEMBER_##k_(n_, t_)
#define ORM__REL_MEMBER_ORM_BELONGS_TO(n_, t_) ORM_ONE_SLOT(struct t_##_s) n_;
#define ORM__REL_MEMBER_ORM_HAS_ONE(n_, t_) ORM_ONE_SLOT(struct t_##_s) n_;
#define ORM__REL_MEMBER_ORM_HAS_MANY(n_, t_) ORM_MANY_SLOT(struct t_##_s) n_;
#define ORM__REL_MEMBER_ORM_MANY_TO_MANY(n_, t_)                               \
  ORM_MANY_SLOT(struct t_##_s) n_;
#define ORM__REL_DESC(n_, k_, t_, key_, o_)                                    \
  {.name = #n_,                                                                \
   .kind = (k_),                                                               \
   .target = t_##_model,                                                       \
   .key = ORM__REL_KEY_##k_(#key_),                                            \
   .order = (o_),                                                              \
   .through = ORM__REL_THROUGH_##k_(key_),                                     \
   .offset = offsetof(orm__self_t, n_)},
#define ORM__REL_KEY_ORM_BELONGS_TO(s_) s_
#define ORM__REL_KEY_ORM_HAS_ONE(s_) s_
#define ORM__REL_KEY_ORM_HAS_MANY(s_) s_
#define ORM__REL_KEY_ORM_MANY_TO_MANY(s_) NULL
#define ORM__REL_THROUGH_ORM_BELONGS_TO(key_) {NULL}
#define ORM__REL_THROUGH_ORM_HAS_ONE(key_) {NULL}
#define ORM__REL_THROUGH_ORM_HAS_MANY(key_) {NULL}
#define ORM__REL_THROUGH_ORM_MANY_TO_MANY(key_) ORM__THROUGH_##key_
#define ORM__THROUGH_ORM_THROUGH(table_, from_, to_)                           \
  {.table = (table_), .from = (from_), .to = (to_)}
#define ORM__THROUGH_ORM_THROUGH_MODEL(join_, from_, to_)                      \
  {.model = join_##_model, .from = #from_, .to = #to_}
/* Compile-time checks that each key names a field of its model. */
#define ORM__REL_CHECK(n_, k_, t_, key_, o_) ORM__REL_CHECK_##k_(t_, key_)
#define ORM__REL_CHECK_ORM_BELONGS_TO(t_, key_)                                \
  _Static_assert(sizeof(((orm__self_t *)0)->key_) > 0, "uvorm: key");
#define ORM__REL_CHECK_ORM_HAS_ONE(t_, key_)                                   \
  _Static_assert(sizeof(((struct t_##_s *)0)->key_) > 0, "uvorm: key");
#define ORM__REL_CHECK_ORM_HAS_MANY(t_, key_) ORM__REL_CHECK_ORM_HAS_ONE(t_, key_)
#define ORM__REL_CHECK_ORM_MANY_TO_MANY(t_, key_) ORM__THROUGH_CHECK_##key_
#define ORM__THROUGH_CHECK_ORM_THROUGH(table_, from_, to_)
#define ORM__THROUGH_CHECK_ORM_THROUGH_MODEL(join_, from_, to_)                \
  _Static_assert(sizeof(((struct join_##_s *)0)->from_) +                      \
                         sizeof(((struct join_##_s *)0)->to_) > 0,             \
                 "uvorm: join key");
/* A field's name is an identifier, the member and the column alike, or
 * ORM_COLUMN(member, "column"), which expands to a parenthesized pair:
 * ORM__IS_PAREN tells the two apart (a probe that counts arguments). */
#define ORM__CAT(a_, b_) ORM__CAT_(a_, b_)
#define ORM__CAT_(a_, b_) a_##b_
#define ORM__PROBE_N(x_, n_, ...) n_
#define ORM__PROBE(...) ORM__PROBE_N(__VA_ARGS__, 0, ~)
#define ORM__IS_PAREN_(...) ~, 1,
#define ORM__IS_PAREN(x_) ORM__PROBE(ORM__IS_PAREN_ x_)
#define ORM__IF_0(t_, f_) f_
#define ORM__IF_1(t_, f_) t_
#define ORM__IF_PAREN(x_, t_, f_) ORM__CAT(ORM__IF_, ORM__IS_PAREN(x_))(t_, f_)
#define ORM__PAIR_FIRST(a_, b_) a_
#define ORM__PAIR_SECOND(a_, b_) b_
#define ORM__N_MEMBER(n_) ORM__IF_PAREN(n_, ORM__PAIR_FIRST n_, n_)
#define ORM__N_COLUMN(n_) ORM__IF_PAREN(n_, ORM__PAIR_SECOND n_, #n_)
/* (Parameters are named n_, t_, c_, f_ so that they never replace the
 * designators .type and .flags.) */
#define ORM__MEMBER(n_, t_, c_, f_) c_ ORM__N_MEMBER(n_);
#define ORM__INDEX_MEMBER(n_, t_, c_, f_) char ORM__N_MEMBER(n_);
#define ORM__COUNT_ONE(n_, t_, c_, f_) 1 +
#define ORM__FIELD_DESC(n_, t_, c_, f_)                                        \
  {.column = ORM__N_COLUMN(n_),                                                \
   .type = (t_),                                                               \
   .offset = offsetof(orm__self_t, ORM__N_MEMBER(n_)),                         \
   .size = sizeof(c_),                                                         \
   .flags = (f_)},
#define ORM__FIELD_CHECK(n_, t_, c_, f_)                                       \
  _Static_assert(ORM__TYPE_FITS(t_, c_),                                       \
                 "uvorm: field '" #n_ "': its C type does not fit " #t_);
#define ORM__IS_STRING_TYPE(t)                                                 \
  ((t) == ORM_T_TEXT || (t) == ORM_T_ENUM || (t) == ORM_T_JSON ||              \
   (t) == ORM_T_JSONB || (t) == ORM_T_NUMERIC)
/* Exact C types: a pointer to the member's type selects the association. */
#define ORM__TYPE_FITS(t, ctype)                                               \
  _Generic((ctype *)0,                                                         \
      int16_t *: (t) == ORM_T_INT2,                                            \
      int32_t *: (t) == ORM_T_INT4 || (t) == ORM_T_DATE,                       \
      int64_t *: (t) == ORM_T_INT8 || (t) == ORM_T_TIMESTAMP ||                \
                     (t) == ORM_T_TIMESTAMPTZ,                                 \
      float *: (t) == ORM_T_FLOAT4,                                            \
      double *: (t) == ORM_T_FLOAT8,                                           \
      bool *: (t) == ORM_T_BOOL,                                               \
      char **: ORM__IS_STRING_TYPE(t),                                         \
      const char **: ORM__IS_STRING_TYPE(t),                                   \
      orm_bytes_t *: (t) == ORM_T_BYTEA,                                       \
      orm_uuid_t *: (t) == ORM_T_UUID,                                         \
      orm_int_array_t *: (t) == ORM_T_INT_ARRAY,                               \
      orm_text_array_t *: (t) == ORM_T_TEXT_ARRAY,                             \
      default: 0)

#endif /* UVORM_MODEL_H */
