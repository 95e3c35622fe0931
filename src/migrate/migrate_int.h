/* SPDX-License-Identifier: MIT */
/* What the loader (set.c) hands the runner (run.c). */
#ifndef ORM_MIGRATE_INT_H
#define ORM_MIGRATE_INT_H

#include <stdint.h>

#include "uvorm/migrate.h"

#include "migrate/script.h"

typedef struct {
  orm_migration_t pub; /* first: the public view points here */
  uint64_t version;    /* the digits' value: versions compare by it */
  size_t up_len;
  size_t down_len;
  orm__sql_stmt_t *up_stmts;
  orm__sql_stmt_t *down_stmts;
  char *owned;     /* one block with the version, name and paths */
  char *up_text;   /* the texts read from a directory (NULL: embedded, */
  char *down_text; /* not owned) */
} orm__migration_t;

struct orm_migrations_s {
  orm__migration_t *items; /* by version */
  size_t n;
};

/* The value of a version's digits; -1 if they are not 1 to 18 digits. */
int orm__migration_version(const char *digits, size_t len, uint64_t *out);

#endif /* ORM_MIGRATE_INT_H */
