/* SPDX-License-Identifier: MIT */
/* `uvorm gen`: models from a live schema. The catalog as read (gen_read.c),
 * the names and types it maps to (gen_map.c: no server, unit-tested), the
 * relations inferred (gen_rel.c) and the files written (gen_emit.c). */
#ifndef UVORM_GEN_H
#define UVORM_GEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* ---- names and types (gen_map.c) --------------------------------------- */

/* `name` as a C identifier, into `out` (`n` bytes): characters other than
 * letters, digits and '_' become '_', a leading digit gets "c_" before it,
 * a C keyword (or a name the generated code uses: orm_nulls) gets '_'
 * after it, "" becomes "c_". Returns 1 if the result differs from `name`,
 * 0 if not, -1 if it does not fit. */
int gen_c_ident(const char *name, char *out, size_t n);

/* Whether `s` is a C11 keyword, a macro the generated code sees (bool,
 * errno, stdout, ...), or a parameter of its X-macro lists (X, R). */
bool gen_is_c_keyword(const char *s);

/* Whether NAME_t is a type the headers already define (size_t, time_t,
 * int64_t, orm_model_t, uv_loop_t, ...): such a model or enum gets a '_'
 * after its name. */
bool gen_reserved_type(const char *name);

/* English singular of a table name, for model names: users -> user,
 * categories -> category, addresses -> address, boxes -> box, statuses ->
 * status, houses -> house, news -> news (words in -ss, -us, -is and short ones stay). Only
 * the last word of a snake_case name changes. */
void gen_singular(const char *plural, char *out, size_t n);

/* `s` in upper case, non-alphanumerics as '_' (macro and enum names). */
void gen_upper(const char *s, char *out, size_t n);

/* A relation's name from its foreign key column: author_id -> author,
 * owner_uuid -> owner_uuid, parent -> parent. */
void gen_rel_name(const char *column, char *out, size_t n);

/* The model type (ORM_T_*) and C type of a column whose base type (its
 * domain's, for a domain) is `typname` in pg_catalog with `typtype` ('b'
 * base, 'e' enum, ...); for an array, `elem` is its element type's name
 * (else NULL). 0 and NULL when the model layer has no such type. */
int gen_map_type(const char *typname, char typtype, const char *elem,
                 const char **ctype);

/* "ORM_T_INT8" and the like. */
const char *gen_type_name(int type);

/* ---- the catalog --------------------------------------------------------- */

typedef struct {
  char *name;    /* the column */
  char *member;  /* its C member */
  char *pg_type; /* format_type(), for comments and warnings */
  int type;      /* ORM_T_*; 0: not supported (skipped) */
  const char *ctype;
  int enum_index; /* into gen_schema_t.enums, or -1 */
  unsigned flags; /* ORM_F_* */
  bool not_null;  /* NOT NULL, or a NOT NULL domain */
  bool defaulted; /* a default, identity or generated column */
  bool skip;
} gen_column_t;

enum { GEN_BELONGS_TO = 1, GEN_HAS_ONE, GEN_HAS_MANY, GEN_MANY_TO_MANY };

typedef struct {
  char *name;
  int kind;   /* GEN_* */
  int target; /* table index */
  const char *key;            /* a column (BELONGS_TO: ours; HAS_*: theirs) */
  const char *through;        /* MANY_TO_MANY: the join table, its columns */
  const char *from, *to;
} gen_rel_t;

typedef struct {
  char *schema;
  char *name;
  char kind;      /* 'r' table, 'p' partitioned, 'v' view, 'm' materialized */
  unsigned oid;
  char *prefix;   /* the model's C prefix */
  gen_column_t *cols;
  size_t ncols;
  int pk;         /* the primary key's column, or -1 */
  size_t npk;     /* columns in the primary key */
  bool skip;      /* no model: see `why` */
  char *why;
  bool join;      /* a join table: two foreign keys and nothing else */
  gen_rel_t *rels;
  size_t nrels;
} gen_table_t;

typedef struct {
  int table, column;         /* the referencing column */
  int target, target_column; /* the referenced one */
  bool unique;               /* the referencing column is unique */
} gen_fk_t;

typedef struct {
  char *schema, *name;
  char *cname; /* C name: prefix + identifier */
  unsigned oid;
  char **labels;
  size_t nlabels;
} gen_enum_t;

typedef struct {
  gen_table_t *tables; /* by schema, then name */
  size_t ntables;
  gen_fk_t *fks;
  size_t nfks;
  gen_enum_t *enums;
  size_t nenums;
} gen_schema_t;

typedef struct {
  const char *const *schemas; /* none: current_schema() */
  size_t nschemas;
  const char *const *tables; /* none: all */
  size_t ntables;
  const char *const *excludes;
  size_t nexcludes;
  const char *prefix; /* "" for none */
  const char *name;   /* the files' base name */
  bool qualify;       /* name each model's schema */
  bool strict;        /* an unsupported column or table fails the run */
  bool quiet;
} gen_options_t;

/* Reads the catalog of the database `conn` (a PGconn *) for `opt`. 0, or
 * -1 with the message printed. */
int gen_read(void *conn, const gen_options_t *opt, gen_schema_t *out);

/* Types, names, skips and relations: everything the files need. Warnings
 * go to stderr; 0, or -1 (a collision, --strict) with the message
 * printed. */
int gen_resolve(gen_schema_t *s, const gen_options_t *opt);

/* The header and the source, into two streams. */
int gen_emit(const gen_schema_t *s, const gen_options_t *opt,
             const char *regenerate, FILE *h, FILE *c);

void gen_free(gen_schema_t *s);

/* printf to stderr, prefixed "uvorm gen: " (warning or error). */
void gen_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif /* UVORM_GEN_H */
