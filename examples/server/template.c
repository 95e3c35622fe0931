/* SPDX-License-Identifier: MIT */
/* The template engine (template.h): the text is compiled into a list of
 * operations (copy text, write a value escaped or raw, loop over the list)
 * with every name already resolved to an index. */
#include "template.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { OP_TEXT, OP_VALUE, OP_CELL, OP_LOOP, OP_END } op_kind_t;

typedef struct {
  op_kind_t kind;
  int raw;      /* {{{...}}}: not escaped */
  size_t index; /* OP_VALUE: value; OP_CELL: column; OP_LOOP: its OP_END */
  size_t off, len; /* OP_TEXT: in the text */
} op_t;

struct tpl_s {
  char *text;
  op_t *ops;
  size_t nops;
  size_t ncolumns; /* of the list */
};

static int add_op(tpl_t *t, size_t *cap, op_t op) {
  if (t->nops == *cap) {
    size_t n = *cap ? *cap * 2 : 16;
    op_t *ops = realloc(t->ops, n * sizeof *ops);
    if (ops == NULL)
      return -1;
    t->ops = ops;
    *cap = n;
  }
  t->ops[t->nops++] = op;
  return 0;
}

static int find(const char *const *names, size_t n, const char *s, size_t len) {
  for (size_t i = 0; i < n; i++)
    if (strlen(names[i]) == len && memcmp(names[i], s, len) == 0)
      return (int)i;
  return -1;
}

/* The line of byte `at`, for messages. */
static unsigned line_of(const char *text, size_t at) {
  unsigned line = 1;
  for (size_t i = 0; i < at; i++)
    line += text[i] == '\n';
  return line;
}

tpl_t *tpl_compile(const char *text, const tpl_names_t *names, char *err,
                   size_t errlen) {
  tpl_t *t = calloc(1, sizeof *t);
  size_t cap = 0, loop = SIZE_MAX;
  if (t == NULL || (t->text = strdup(text)) == NULL) {
    snprintf(err, errlen, "out of memory");
    goto fail;
  }
  t->ncolumns = names->ncolumns;
  const char *s = t->text;
  size_t i = 0, n = strlen(s);
  while (i < n) {
    const char *open = strstr(s + i, "{{");
    size_t at = open != NULL ? (size_t)(open - s) : n;
    if (at > i && add_op(t, &cap, (op_t){.kind = OP_TEXT, .off = i, .len = at - i}) != 0)
      goto oom;
    if (open == NULL)
      break;
    int raw = s[at + 2] == '{';
    const char *close_tag = raw ? "}}}" : "}}";
    size_t start = at + (raw ? 3 : 2);
    const char *close = strstr(s + start, close_tag);
    if (close == NULL) {
      snprintf(err, errlen, "line %u: a tag is not closed", line_of(s, at));
      goto fail;
    }
    size_t end = (size_t)(close - s);
    char sigil = raw ? '\0' : s[start];
    size_t name_at = start + (sigil == '#' || sigil == '/');
    while (name_at < end && s[name_at] == ' ')
      name_at++;
    size_t name_end = end;
    while (name_end > name_at && s[name_end - 1] == ' ')
      name_end--;
    const char *name = s + name_at;
    size_t len = name_end - name_at;
    if (len == 0) {
      snprintf(err, errlen, "line %u: an empty tag", line_of(s, at));
      goto fail;
    }
    if (sigil == '#') {
      if (loop != SIZE_MAX) {
        snprintf(err, errlen, "line %u: sections do not nest", line_of(s, at));
        goto fail;
      }
      if (names->list == NULL || strlen(names->list) != len ||
          memcmp(names->list, name, len) != 0) {
        snprintf(err, errlen, "line %u: no list named \"%.*s\"", line_of(s, at),
                 (int)len, name);
        goto fail;
      }
      loop = t->nops;
      if (add_op(t, &cap, (op_t){.kind = OP_LOOP}) != 0)
        goto oom;
    } else if (sigil == '/') {
      if (loop == SIZE_MAX || strlen(names->list) != len ||
          memcmp(names->list, name, len) != 0) {
        snprintf(err, errlen, "line %u: \"%.*s\" closes no open section",
                 line_of(s, at), (int)len, name);
        goto fail;
      }
      t->ops[loop].index = t->nops;
      loop = SIZE_MAX;
      if (add_op(t, &cap, (op_t){.kind = OP_END}) != 0)
        goto oom;
    } else {
      int k = loop != SIZE_MAX ? find(names->columns, names->ncolumns, name, len)
                               : find(names->values, names->nvalues, name, len);
      if (k < 0) {
        snprintf(err, errlen, "line %u: unknown name \"%.*s\"", line_of(s, at),
                 (int)len, name);
        goto fail;
      }
      op_t op = {.kind = loop != SIZE_MAX ? OP_CELL : OP_VALUE, .raw = raw,
                 .index = (size_t)k};
      if (add_op(t, &cap, op) != 0)
        goto oom;
    }
    i = end + strlen(close_tag);
  }
  if (loop != SIZE_MAX) {
    snprintf(err, errlen, "section \"%s\" is not closed", names->list);
    goto fail;
  }
  return t;
oom:
  snprintf(err, errlen, "out of memory");
fail:
  tpl_free(t);
  return NULL;
}

void tpl_free(tpl_t *t) {
  if (t == NULL)
    return;
  free(t->text);
  free(t->ops);
  free(t);
}

static int reserve(tpl_buf_t *b, size_t more) {
  if (b->cap - b->len >= more)
    return 0;
  size_t cap = b->cap ? b->cap : 1024;
  while (cap - b->len < more)
    cap *= 2;
  char *d = realloc(b->data, cap);
  if (d == NULL)
    return -1;
  b->data = d;
  b->cap = cap;
  return 0;
}

static int put(tpl_buf_t *b, const char *s, size_t n) {
  if (reserve(b, n) != 0)
    return -1;
  memcpy(b->data + b->len, s, n);
  b->len += n;
  return 0;
}

static int put_escaped(tpl_buf_t *b, const char *s) {
  size_t n = strlen(s);
  if (reserve(b, n * 6) != 0) /* &quot; is the longest */
    return -1;
  char *o = b->data + b->len;
  for (size_t i = 0; i < n; i++) {
    const char *r;
    switch (s[i]) {
    case '&': r = "&amp;"; break;
    case '<': r = "&lt;"; break;
    case '>': r = "&gt;"; break;
    case '"': r = "&quot;"; break;
    case '\'': r = "&#39;"; break;
    default: *o++ = s[i]; continue;
    }
    size_t k = strlen(r);
    memcpy(o, r, k);
    o += k;
  }
  b->len = (size_t)(o - b->data);
  return 0;
}

static int put_value(tpl_buf_t *b, const char *v, int raw) {
  if (v == NULL)
    return 0;
  return raw ? put(b, v, strlen(v)) : put_escaped(b, v);
}

int tpl_render(const tpl_t *t, const tpl_data_t *d, tpl_buf_t *out) {
  out->len = 0;
  for (size_t i = 0; i < t->nops; i++) {
    const op_t *op = &t->ops[i];
    int rc = 0;
    switch (op->kind) {
    case OP_TEXT:
      rc = put(out, t->text + op->off, op->len);
      break;
    case OP_VALUE:
      rc = put_value(out, d->values != NULL ? d->values[op->index] : NULL, op->raw);
      break;
    case OP_LOOP: {
      size_t end = op->index;
      for (size_t r = 0; r < d->nrows && rc == 0; r++)
        for (size_t j = i + 1; j < end && rc == 0; j++) {
          const op_t *in = &t->ops[j];
          if (in->kind == OP_TEXT)
            rc = put(out, t->text + in->off, in->len);
          else
            rc = put_value(out, d->cells[r * t->ncolumns + in->index], in->raw);
        }
      i = end;
      break;
    }
    case OP_CELL:
    case OP_END:
      break;
    }
    if (rc != 0)
      return -1;
  }
  return 0;
}
