/* SPDX-License-Identifier: MIT */
/* Statements: classification, placeholders and interning (stmt.c). */
#ifndef ORM_POOL_STMT_H
#define ORM_POOL_STMT_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

/* How a statement may share a pipeline segment with others. Statements of
 * one segment run in one implicit transaction, so statements the caller
 * issued one by one must never deadlock with each other because uvorm
 * grouped them: a segment holds any number of reads and inserts, and
 * either one other write or writes of single rows by primary key in
 * ascending key order (conn.c, segment_takes()). */
typedef enum {
  ORM_SEG_READ,   /* SELECT and the like: shares freely */
  ORM_SEG_APPEND, /* a plain INSERT: takes no lock another writer waits
                     for, so any number share a segment */
  ORM_SEG_WRITE,  /* writes or locks rows: one per segment, unless keyed */
  ORM_SEG_OWN     /* BEGIN, DDL, SET, VACUUM, ...: a segment of its own */
} orm__seg_class_t;

/* A statement the pool has seen: SQL text and parameter types, interned
 * once; each connection prepares it on first use under `name`: "u<id>",
 * then "u<id>_<gen>" once a schema change made the server's copies stale
 * (each bump makes every connection prepare it afresh). */
typedef struct orm__stmt_s {
  struct orm__stmt_s *next_in_bucket;
  uint64_t hash;
  uint32_t id;
  uint32_t gen;
  int nparams;
  int placeholders; /* the highest $N in sql; -1: unknown */
  orm__seg_class_t seg;
  Oid *types;
  char name[24];
  size_t sql_len;
  char sql[]; /* NUL-terminated */
} orm__stmt_t;

/* Interned statements, by hash of text and parameter types. Zeroed is
 * empty. */
typedef struct {
  orm__stmt_t **buckets;
  size_t nbuckets; /* a power of two, or 0 */
  uint32_t nstmts;
} orm__stmt_table_t;

/* How `sql` may share a segment, from its leading keyword and whether it
 * writes or locks rows. */
orm__seg_class_t orm__sql_classify(const char *sql);

/* The highest $N placeholder in `sql`, outside string literals, quoted
 * identifiers, dollar-quoted bodies and comments; -1 if the text ends
 * inside one of those (then the server judges). */
int orm__sql_placeholders(const char *sql);

/* The statement for `sql` with these parameter types, interned on first
 * sight. NULL with *err 0 when the table is full (run it unnamed), NULL
 * with *err ORM_ENOMEM. */
orm__stmt_t *orm__stmts_intern(orm__stmt_table_t *t, const char *sql,
                               const Oid *types, int n, int *err);

/* The server's prepared copies of `stmt` are stale: every connection
 * prepares it again, under a new name. */
void orm__stmt_bump(orm__stmt_t *stmt);

/* The name generation `gen` of statement `id` is prepared under:
 * "u<id>", then "u<id>_<gen>". */
void orm__stmt_name(uint32_t id, uint32_t gen, char *out, size_t size);

void orm__stmts_free(orm__stmt_table_t *t);

#endif /* ORM_POOL_STMT_H */
