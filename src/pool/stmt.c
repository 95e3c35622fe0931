/* SPDX-License-Identifier: MIT */
/* Statements as the pool sees them: how one may share a pipeline segment
 * (from its text), how many parameters it takes, and the table that interns
 * them (SQL text plus parameter types) so that each connection prepares
 * each statement once under a short name. No connection or loop here: this
 * is unit-tested on its own (tests/unit/test_stmt.c). */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "uvorm/common.h"

#include "base/alloc.h"
#include "pool/stmt.h"

/* SQL text without end must not grow the table without end: beyond this
 * many, statements run unnamed. */
#define ORM__STMTS_MAX 4096

/* SQL keyword matching for the classifier below: ASCII case folding (the
 * locale must not change what SQL means) and word boundaries. */
static int is_word_char(char c) {
  /* Bytes >= 0x80 are parts of non-ASCII letters, which identifiers take. */
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '_' || (unsigned char)c >= 0x80;
}

static int word_at(const char *p, const char *word) {
  size_t k = 0;
  while (word[k] != '\0' && (p[k] == word[k] || p[k] == word[k] + 32))
    k++;
  return word[k] == '\0' && !is_word_char(p[k]);
}

static int first_word_in(const char *sql, const char *const *words, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (word_at(sql, words[i]))
      return 1;
  return 0;
}

static int contains_word(const char *sql, const char *const *words, size_t n) {
  for (const char *p = sql; *p != '\0'; p++)
    if ((p == sql || !is_word_char(p[-1])) && first_word_in(p, words, n))
      return 1;
  return 0;
}

/* How a statement may share a pipeline segment (one implicit transaction)
 * with its neighbours. Decided once per statement from its text. */
orm__seg_class_t orm__sql_classify(const char *sql) {
  /* Cannot run in, or must not share, an implicit transaction. */
  static const char *const own[] = {
      "BEGIN",   "START",    "COMMIT",     "END",    "ROLLBACK", "ABORT",
      "SAVEPOINT", "RELEASE", "PREPARE",   "VACUUM", "CLUSTER",  "REINDEX",
      "CREATE",  "DROP",     "ALTER",      "LOCK",   "SET",      "RESET",
      "DISCARD", "LISTEN",   "UNLISTEN",   "CHECKPOINT"};
  static const char *const reads[] = {"SELECT", "VALUES", "TABLE", "SHOW",
                                      "WITH"};
  /* Anything that writes or locks rows (FOR UPDATE / FOR SHARE). Erring
   * towards "writes" only costs a sync. */
  static const char *const locks[] = {"INSERT", "UPDATE", "DELETE", "MERGE",
                                      "SHARE"};
  for (;;) {
    while (*sql == ' ' || *sql == '\t' || *sql == '\n' || *sql == '\r' ||
           *sql == '(')
      sql++;
    if (sql[0] == '-' && sql[1] == '-') {
      while (*sql != '\0' && *sql != '\n')
        sql++;
    } else if (sql[0] == '/' && sql[1] == '*') {
      const char *end = strstr(sql + 2, "*/");
      sql = end != NULL ? end + 2 : sql + strlen(sql);
    } else {
      break;
    }
  }
  if (first_word_in(sql, own, sizeof own / sizeof own[0]))
    return ORM_SEG_OWN;
  int lead_read = first_word_in(sql, reads, sizeof reads / sizeof reads[0]);
  if (lead_read && !contains_word(sql, locks, sizeof locks / sizeof locks[0]))
    return ORM_SEG_READ;
  /* INSERT, or WITH ... INSERT, that neither updates, deletes nor locks
   * existing rows (ON CONFLICT may update, or wait on, a row another
   * segment holds). */
  static const char *const insert[] = {"INSERT"}, *const with[] = {"WITH"};
  static const char *const touches[] = {"UPDATE", "DELETE", "MERGE", "SHARE",
                                        "CONFLICT"};
  if ((first_word_in(sql, insert, 1) ||
       (first_word_in(sql, with, 1) && contains_word(sql, insert, 1))) &&
      !contains_word(sql, touches, sizeof touches / sizeof touches[0]))
    return ORM_SEG_APPEND;
  return ORM_SEG_WRITE;
}

int orm__sql_placeholders(const char *sql) {
  int max = 0;
  const char *p = sql;
  while (*p != '\0') {
    char c = *p;
    if (c == '\'' || c == '"') {
      /* E'...' strings take backslash escapes; '' and "" are doubled. */
      int escapes = c == '\'' && p > sql && (p[-1] == 'E' || p[-1] == 'e') &&
                    (p - 1 == sql || !is_word_char(p[-2]));
      for (p++;; p++) {
        if (*p == '\0')
          return -1;
        if (escapes && *p == '\\' && p[1] != '\0') {
          p++;
        } else if (*p == c) {
          if (p[1] != c)
            break;
          p++;
        }
      }
      p++;
    } else if (c == '-' && p[1] == '-') {
      while (*p != '\0' && *p != '\n')
        p++;
    } else if (c == '/' && p[1] == '*') {
      int depth = 1; /* PostgreSQL's block comments nest */
      for (p += 2; depth > 0; p++) {
        if (*p == '\0')
          return -1;
        if (p[0] == '/' && p[1] == '*')
          depth++, p++;
        else if (p[0] == '*' && p[1] == '/')
          depth--, p++;
      }
    } else if (c == '$' && p > sql && is_word_char(p[-1])) {
      p++; /* inside an identifier such as a$1 */
    } else if (c == '$' && p[1] >= '0' && p[1] <= '9') {
      long n = 0;
      for (p++; *p >= '0' && *p <= '9'; p++)
        if (n <= 100000)
          n = n * 10 + (*p - '0');
      if (n > max)
        max = n > INT_MAX ? INT_MAX : (int)n;
    } else if (c == '$') {
      /* $tag$ ... $tag$, the tag possibly empty. */
      const char *t = p + 1;
      while (is_word_char(*t) && !(t == p + 1 && *t >= '0' && *t <= '9'))
        t++;
      if (*t != '$') {
        p++;
        continue;
      }
      size_t taglen = (size_t)(t - p) + 1;
      const char *end;
      for (end = t + 1; *end != '\0'; end++)
        if (*end == '$' && strncmp(end, p, taglen) == 0)
          break;
      if (*end == '\0')
        return -1;
      p = end + taglen;
    } else {
      p++;
    }
  }
  return max;
}

/* Every statement a model sends goes through here, so the SQL is hashed
 * eight bytes at a time (a byte-wise loop was the pool's hottest line). The
 * multiply carries low bits up only: folding the high half back down after
 * each step lets every byte reach the bucket index in the low bits. */
static uint64_t stmt_hash(const char *sql, size_t len, const Oid *types,
                          int n) {
  const uint64_t k = 0x9E3779B97F4A7C15ULL;
  uint64_t h = len * k;
  size_t i = 0;
  for (; i + 8 <= len; i += 8) {
    uint64_t w;
    memcpy(&w, sql + i, 8);
    h = (h ^ w) * k;
    h ^= h >> 32;
  }
  uint64_t tail = 0;
  memcpy(&tail, sql + i, len - i);
  h = (h ^ tail) * k;
  h ^= h >> 32;
  for (int j = 0; j < n; j++) {
    h = (h ^ types[j]) * k;
    h ^= h >> 32;
  }
  return h;
}

orm__stmt_t *orm__stmts_intern(orm__stmt_table_t *t, const char *sql,
                               const Oid *types, int n, int *err) {
  *err = 0;
  size_t sql_len = strlen(sql);
  uint64_t h = stmt_hash(sql, sql_len, types, n);
  if (t->nbuckets > 0) {
    for (orm__stmt_t *s = t->buckets[h & (t->nbuckets - 1)]; s != NULL;
         s = s->next_in_bucket)
      if (s->hash == h && s->sql_len == sql_len && s->nparams == n &&
          (n == 0 || memcmp(s->types, types, (size_t)n * sizeof(Oid)) == 0) &&
          memcmp(s->sql, sql, sql_len) == 0)
        return s;
  }
  if (t->nstmts >= ORM__STMTS_MAX)
    return NULL; /* run it unnamed: SQL text without end must not grow us */
  if (t->nstmts >= t->nbuckets) {
    size_t nb = t->nbuckets ? t->nbuckets * 2 : 64;
    orm__stmt_t **buckets = orm__calloc(nb, sizeof *buckets);
    if (buckets == NULL) {
      *err = ORM_ENOMEM;
      return NULL;
    }
    for (size_t i = 0; i < t->nbuckets; i++) {
      orm__stmt_t *s = t->buckets[i];
      while (s != NULL) {
        orm__stmt_t *next = s->next_in_bucket;
        s->next_in_bucket = buckets[s->hash & (nb - 1)];
        buckets[s->hash & (nb - 1)] = s;
        s = next;
      }
    }
    orm__free(t->buckets);
    t->buckets = buckets;
    t->nbuckets = nb;
  }
  orm__stmt_t *s = orm__malloc(sizeof *s + sql_len + 1);
  Oid *copy = orm__reallocarray(NULL, (size_t)n + 1, sizeof(Oid));
  if (s == NULL || copy == NULL) {
    orm__free(s);
    orm__free(copy);
    *err = ORM_ENOMEM;
    return NULL;
  }
  memcpy(s->sql, sql, sql_len + 1);
  s->sql_len = sql_len;
  if (n > 0) /* types may be NULL then: memcpy must not see it */
    memcpy(copy, types, (size_t)n * sizeof(Oid));
  s->types = copy;
  s->nparams = n;
  s->hash = h;
  s->seg = orm__sql_classify(sql);
  s->placeholders = orm__sql_placeholders(sql);
  s->id = t->nstmts++;
  s->gen = 0;
  orm__stmt_name(s->id, s->gen, s->name, sizeof s->name);
  s->next_in_bucket = t->buckets[h & (t->nbuckets - 1)];
  t->buckets[h & (t->nbuckets - 1)] = s;
  return s;
}

void orm__stmt_name(uint32_t id, uint32_t gen, char *out, size_t size) {
  if (gen == 0)
    snprintf(out, size, "u%u", (unsigned)id);
  else
    snprintf(out, size, "u%u_%u", (unsigned)id, (unsigned)gen);
}

void orm__stmt_bump(orm__stmt_t *stmt) {
  stmt->gen++;
  orm__stmt_name(stmt->id, stmt->gen, stmt->name, sizeof stmt->name);
}

void orm__stmts_free(orm__stmt_table_t *t) {
  for (size_t i = 0; i < t->nbuckets; i++) {
    orm__stmt_t *s = t->buckets[i];
    while (s != NULL) {
      orm__stmt_t *next = s->next_in_bucket;
      orm__free(s->types);
      orm__free(s);
      s = next;
    }
  }
  orm__free(t->buckets);
  t->buckets = NULL;
  t->nbuckets = 0;
  t->nstmts = 0;
}
