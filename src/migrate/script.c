/* SPDX-License-Identifier: MIT */
/* Migration files as statements. PostgreSQL's extended protocol takes one
 * statement per message, and a statement that must run outside a
 * transaction (CREATE INDEX CONCURRENTLY) cannot share a query string with
 * others, so files are split here, the way psql splits what it reads: by
 * the lexical structure alone, never by parsing SQL. */
#include <string.h>

#include "uvorm/common.h"

#include "base/alloc.h"
#include "migrate/script.h"

static bool is_word_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '_' || (unsigned char)c >= 0x80;
}

/* Whether the word at p (ending at or before end) is `word`, ASCII case
 * folded, with nothing word-like after it. */
static bool word_is(const char *p, const char *end, const char *word) {
  size_t n = strlen(word);
  if ((size_t)(end - p) < n)
    return false;
  for (size_t i = 0; i < n; i++) {
    char c = p[i];
    if (c >= 'a' && c <= 'z')
      c = (char)(c - 32);
    if (c != word[i])
      return false;
  }
  return p + n == end || !is_word_char(p[n]);
}

typedef struct {
  const char *text;
  const char *p;
  const char *end;
  unsigned line;
} scan_t;

static void advance(scan_t *s, size_t n) {
  for (size_t i = 0; i < n && s->p < s->end; i++, s->p++)
    if (*s->p == '\n')
      s->line++;
}

/* Skips a quoted string, identifier, comment or dollar-quoted body that
 * starts at s->p, if one does. 1: skipped; 0: none starts here; -1: it
 * never ends (error->why says what). */
static int skip_quoted(scan_t *s, orm__sql_split_error_t *error) {
  const char *p = s->p, *end = s->end;
  unsigned start_line = s->line;
  if (*p == '\'' || *p == '"') {
    char q = *p;
    bool escapes = q == '\'' && p > s->text && (p[-1] == 'E' || p[-1] == 'e') &&
                   (p - 1 == s->text || !is_word_char(p[-2]));
    advance(s, 1);
    while (s->p < end) {
      if (escapes && *s->p == '\\' && s->p + 1 < end) {
        advance(s, 2);
      } else if (*s->p == q) {
        if (s->p + 1 < end && s->p[1] == q) {
          advance(s, 2);
        } else {
          advance(s, 1);
          return 1;
        }
      } else {
        advance(s, 1);
      }
    }
    error->why = q == '"' ? "a quoted identifier is not closed"
                          : "a string literal is not closed";
  } else if (*p == '-' && p + 1 < end && p[1] == '-') {
    while (s->p < end && *s->p != '\n')
      advance(s, 1);
    return 1;
  } else if (*p == '/' && p + 1 < end && p[1] == '*') {
    int depth = 0; /* PostgreSQL's block comments nest */
    while (s->p + 1 < end) {
      if (s->p[0] == '/' && s->p[1] == '*') {
        depth++;
        advance(s, 2);
      } else if (s->p[0] == '*' && s->p[1] == '/') {
        advance(s, 2);
        if (--depth == 0)
          return 1;
      } else {
        advance(s, 1);
      }
    }
    advance(s, 1);
    error->why = "a block comment is not closed";
  } else if (*p == '$' && !(p > s->text && is_word_char(p[-1]))) {
    /* $tag$ ... $tag$: the tag is empty or an identifier (no leading
     * digit: $1 is a parameter). */
    const char *t = p + 1;
    while (t < end && is_word_char(*t) && !(t == p + 1 && *t >= '0' && *t <= '9'))
      t++;
    if (t >= end || *t != '$')
      return 0;
    size_t taglen = (size_t)(t - p) + 1;
    advance(s, taglen);
    while (s->p < end) {
      if (*s->p == '$' && (size_t)(end - s->p) >= taglen &&
          memcmp(s->p, p, taglen) == 0) {
        advance(s, taglen);
        return 1;
      }
      advance(s, 1);
    }
    error->why = "a dollar-quoted string is not closed";
  } else {
    return 0;
  }
  error->line = start_line;
  return -1;
}

static bool is_blank(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
         c == '\v';
}

/* A statement's leading words, for the checks below. */
typedef struct {
  const char *w[4];
  const char *e[4];
  int n;
} lead_t;

static bool lead_is(const lead_t *l, int i, const char *word) {
  return l->n > i && word_is(l->w[i], l->e[i], word);
}

static bool is_transaction_control(const lead_t *l) {
  return lead_is(l, 0, "BEGIN") || lead_is(l, 0, "COMMIT") ||
         lead_is(l, 0, "END") || lead_is(l, 0, "ROLLBACK") ||
         lead_is(l, 0, "ABORT") ||
         (lead_is(l, 0, "START") && lead_is(l, 1, "TRANSACTION"));
}

/* CREATE [OR REPLACE] FUNCTION|PROCEDURE: its body may be BEGIN ATOMIC
 * ... END, with semicolons inside (a body in quotes is skipped whole). */
static bool is_routine(const lead_t *l) {
  int k = lead_is(l, 1, "OR") && lead_is(l, 2, "REPLACE") ? 3 : 1;
  return lead_is(l, 0, "CREATE") &&
         (lead_is(l, k, "FUNCTION") || lead_is(l, k, "PROCEDURE"));
}

static int push(orm__sql_stmt_t **stmts, size_t *count, size_t *cap,
                orm__sql_stmt_t st) {
  if (*count == *cap) {
    size_t ncap = *cap == 0 ? 16 : *cap * 2;
    orm__sql_stmt_t *grown = orm__reallocarray(*stmts, ncap, sizeof *grown);
    if (grown == NULL)
      return ORM_ENOMEM;
    *stmts = grown;
    *cap = ncap;
  }
  (*stmts)[(*count)++] = st;
  return 0;
}

int orm__sql_split(const char *text, size_t len, orm__sql_stmt_t **out,
                   size_t *n, orm__sql_split_error_t *error) {
  scan_t s = {text, text, text + len, 1};
  orm__sql_stmt_t *stmts = NULL;
  size_t count = 0, cap = 0;
  int rc = 0;
  *out = NULL;
  *n = 0;
  while (s.p < s.end) {
    /* One statement: from its first token up to a ';' at depth 0. */
    const char *start = NULL, *last = NULL;
    unsigned line = 0;
    lead_t lead = {.n = 0};
    int depth = 0; /* BEGIN ATOMIC nesting, with CASE ... END inside it */
    int parens = 0; /* as psql: no statement ends inside parentheses (a
                       rule's DO ALSO (...; ...)) */
    while (s.p < s.end) {
      char c = *s.p;
      if (c == ';' && depth == 0 && parens <= 0) {
        advance(&s, 1);
        break;
      }
      if (is_blank(c)) {
        advance(&s, 1);
        continue;
      }
      bool comment = (c == '-' && s.p + 1 < s.end && s.p[1] == '-') ||
                     (c == '/' && s.p + 1 < s.end && s.p[1] == '*');
      if (start == NULL && !comment) {
        start = s.p;
        line = s.line;
      }
      const char *tok = s.p;
      int q = skip_quoted(&s, error);
      if (q < 0) {
        rc = ORM_EINVAL;
        goto fail;
      }
      if (q == 0 && is_word_char(c)) {
        while (s.p < s.end && is_word_char(*s.p))
          advance(&s, 1);
        int idx = 4;
        if (lead.n < 4) {
          idx = lead.n;
          lead.w[lead.n] = tok;
          lead.e[lead.n++] = s.p;
        }
        int kind_at = lead_is(&lead, 1, "OR") ? 3 : 1;
        if (idx > kind_at && is_routine(&lead)) {
          if (word_is(tok, s.p, "BEGIN"))
            depth++;
          else if (depth > 0 && word_is(tok, s.p, "CASE"))
            depth++;
          else if (depth > 0 && word_is(tok, s.p, "END"))
            depth--;
        }
      } else if (q == 0) {
        parens += c == '(' ? 1 : c == ')' ? -1 : 0;
        advance(&s, 1);
      }
      if (!comment)
        last = s.p;
    }
    if (start == NULL)
      continue; /* blanks and comments only */
    if (is_transaction_control(&lead)) {
      error->why = "transaction control (BEGIN, COMMIT, ROLLBACK, ...) is "
                   "not allowed: each migration runs in a transaction of its "
                   "own, or in none with -- uvorm:no-transaction";
      error->line = line;
      rc = ORM_EINVAL;
      goto fail;
    }
    rc = push(&stmts, &count, &cap,
              (orm__sql_stmt_t){.off = (size_t)(start - text),
                                .len = (size_t)(last - start),
                                .line = line});
    if (rc != 0)
      goto fail;
  }
  *out = stmts;
  *n = count;
  return 0;
fail:
  orm__free(stmts);
  return rc;
}

unsigned orm__sql_error_line(const char *text, const orm__sql_stmt_t *stmt,
                             int position) {
  unsigned line = stmt->line;
  if (position <= 0)
    return line;
  const char *p = text + stmt->off, *end = p + stmt->len;
  /* Characters, not bytes: a UTF-8 continuation byte starts none. */
  long chars = 0;
  for (; p < end; p++) {
    if (((unsigned char)*p & 0xC0) != 0x80 && ++chars == position)
      return line;
    if (*p == '\n')
      line++;
  }
  return stmt->line;
}

bool orm__sql_no_transaction(const char *text, size_t len) {
  static const char marker[] = "-- uvorm:no-transaction";
  size_t m = sizeof marker - 1;
  if (len < m || memcmp(text, marker, m) != 0)
    return false;
  for (size_t i = m; i < len && text[i] != '\n'; i++)
    if (!is_blank(text[i]))
      return false;
  return true;
}
