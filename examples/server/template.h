/* SPDX-License-Identifier: MIT */
/* A small Mustache-style template engine, enough for server-rendered pages:
 *
 *   {{name}}          a value, HTML-escaped (& < > " ')
 *   {{{name}}}        a value as it is
 *   {{#list}}...{{/list}}   the inside once per row of the list
 *
 * Names are resolved when the template is compiled: inside a section
 * against the list's columns, outside it against the page's own values.
 * Sections do not nest. Compile once, render from any thread (a compiled
 * template is read-only). */
#ifndef UVORM_EXAMPLE_TEMPLATE_H
#define UVORM_EXAMPLE_TEMPLATE_H

#include <stddef.h>

typedef struct tpl_s tpl_t;

/* What a template is compiled against: the page's value names, the list's
 * name and its column names. */
typedef struct {
  const char *const *values;
  size_t nvalues;
  const char *list;
  const char *const *columns;
  size_t ncolumns;
} tpl_names_t;

/* What a page is rendered from: the values (in the order of their names)
 * and the list, row-major: cells[row * ncolumns + column], ncolumns as
 * compiled. NULL renders as nothing. */
typedef struct {
  const char *const *values;
  const char *const *cells;
  size_t nrows;
} tpl_data_t;

/* A growable output buffer (start zeroed; free .data when done). */
typedef struct {
  char *data;
  size_t len, cap;
} tpl_buf_t;

/* NULL on a syntax error or an unknown name, with why in `err`. */
tpl_t *tpl_compile(const char *text, const tpl_names_t *names, char *err,
                   size_t errlen);
void tpl_free(tpl_t *tpl);
/* Renders into `out` (emptied first). 0, or -1 when out of memory. */
int tpl_render(const tpl_t *tpl, const tpl_data_t *data, tpl_buf_t *out);

#endif /* UVORM_EXAMPLE_TEMPLATE_H */
