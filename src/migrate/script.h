/* SPDX-License-Identifier: MIT */
/* A migration file as statements: where each starts, on which line, and
 * where in a file an error position falls (script.c). No I/O, no server:
 * unit-tested on its own (tests/unit/test_migrate_script.c). */
#ifndef ORM_MIGRATE_SCRIPT_H
#define ORM_MIGRATE_SCRIPT_H

#include <stdbool.h>
#include <stddef.h>

/* One statement: `len` bytes at `off` of the file, from its first token to
 * just before its ';' (trailing blanks dropped), which begins on `line`. */
typedef struct {
  size_t off;
  size_t len;
  unsigned line;
} orm__sql_stmt_t;

/* Why a file cannot be split, and the line it concerns. */
typedef struct {
  const char *why;
  unsigned line;
} orm__sql_split_error_t;

/* Splits `text` (`len` bytes) at the semicolons that end statements:
 * outside quotes ('...', E'...', "..."), comments (--, nested block
 * comments), dollar-quoted bodies ($tag$...$tag$) and the BEGIN ATOMIC ...
 * END body of a SQL-standard function. Pieces with only blanks and
 * comments are dropped. 0 with a new array in *out (orm__free it, NULL if
 * *n is 0); ORM_EINVAL with `error` filled (a quote or comment left open,
 * transaction control: BEGIN, COMMIT, ...); ORM_ENOMEM. */
int orm__sql_split(const char *text, size_t len, orm__sql_stmt_t **out,
                   size_t *n, orm__sql_split_error_t *error);

/* The line of a file on which the error `position` (PostgreSQL's 1-based
 * character index into the statement, UTF-8 text) falls; the statement's
 * first line when position is 0 or beyond it. */
unsigned orm__sql_error_line(const char *text, const orm__sql_stmt_t *stmt,
                             int position);

/* Whether the file's first line is `-- uvorm:no-transaction`. */
bool orm__sql_no_transaction(const char *text, size_t len);

#endif /* ORM_MIGRATE_SCRIPT_H */
