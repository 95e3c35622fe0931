/* SPDX-License-Identifier: MIT */
/* `uvorm gen`: the header (enums, X-macro field and relation lists,
 * ORM_MODEL_DECLARE_REL) and the source (ORM_MODEL_DEFINE_REL, enum labels,
 * the list of every model). Deterministic: the same catalog gives the same
 * bytes; nothing about the run (time, host, database URL) is written. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uvorm/model.h>

#include "gen.h"

/* A C string literal of `s`: ASCII only (the bytes, whatever the
 * editor's encoding), no trigraph (every '?' escaped). */
static void put_string(FILE *f, const char *s) {
  fputc('"', f);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\' || *p == '?')
      fprintf(f, "\\%c", *p);
    else if (*p < 0x20 || *p >= 0x7f)
      fprintf(f, "\\%03o", *p);
    else
      fputc(*p, f);
  }
  fputc('"', f);
}

/* Text inside a comment: a name may hold "*" "/" (or "/" "*", which
 * -Wcomment refuses): spaced apart. */
static void put_comment(FILE *f, const char *s) {
  for (const char *p = s; *p; p++) {
    fputc(*p, f);
    if ((p[0] == '*' && p[1] == '/') || (p[0] == '/' && p[1] == '*'))
      fputc(' ', f);
  }
}

/* The enum constants written so far: two labels (of one enum or two) must
 * not give one name. */
typedef struct {
  char **names;
  size_t n;
} names_t;

static bool names_has(const names_t *seen, const char *name) {
  for (size_t i = 0; i < seen->n; i++)
    if (strcmp(seen->names[i], name) == 0)
      return true;
  return false;
}

static void names_add(names_t *seen, const char *name) {
  char **g = realloc(seen->names, (seen->n + 1) * sizeof *g);
  char *d = strdup(name);
  if (g == NULL || d == NULL) {
    fputs("uvorm gen: out of memory\n", stderr);
    exit(1);
  }
  seen->names = g;
  seen->names[seen->n++] = d;
}

/* One line of a macro body, its backslash in column 80. */
static void macro_line(FILE *f, const char *text, bool more) {
  size_t n = strlen(text);
  fputs(text, f);
  if (more) {
    for (size_t i = n; i < 78; i++)
      fputc(' ', f);
    fputs(" \\", f);
  }
  fputc('\n', f);
}

static const char *const kinds[] = {NULL, "ORM_BELONGS_TO", "ORM_HAS_ONE",
                                    "ORM_HAS_MANY", "ORM_MANY_TO_MANY"};

static void flags_text(unsigned flags, char *out, size_t n) {
  static const struct {
    unsigned bit;
    const char *name;
  } names[] = {{ORM_F_PK, "ORM_F_PK"},
               {ORM_F_GENERATED, "ORM_F_GENERATED"},
               {ORM_F_NULLABLE, "ORM_F_NULLABLE"},
               {ORM_F_UNIQUE, "ORM_F_UNIQUE"}};
  out[0] = '\0';
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (flags & names[i].bit)
      snprintf(out + strlen(out), n - strlen(out), "%s%s",
               out[0] != '\0' ? " | " : "", names[i].name);
  if (out[0] == '\0')
    snprintf(out, n, "0");
}

static void emit_enum(FILE *h, const gen_enum_t *e, names_t *seen) {
  char up[300], item[700];
  gen_upper(e->cname, up, sizeof up);
  fputs("/* ", h);
  put_comment(h, e->schema);
  fputc('.', h);
  put_comment(h, e->name);
  fprintf(h, ": labels as ORM_T_ENUM text; the C enum indexes %s_labels. */\n"
             "typedef enum {\n",
          e->cname);
  for (size_t l = 0; l < e->nlabels; l++) {
    char lab[300];
    gen_upper(e->labels[l], lab, sizeof lab);
    snprintf(item, sizeof item, "%s_%s", up, lab[0] != '\0' ? lab : "EMPTY");
    /* A name taken (two labels that read the same in C, a label "count"):
     * the later gets its index. */
    while (names_has(seen, item))
      snprintf(item + strlen(item), sizeof item - strlen(item), "_%zu", l);
    names_add(seen, item);
    fprintf(h, "  %s = %zu,\n", item, l);
  }
  fprintf(h, "} %s_t;\n#define %s_COUNT %zu\n", e->cname, up, e->nlabels);
  fprintf(h, "extern const char *const %s_labels[%s_COUNT];\n\n", e->cname, up);
}

static void emit_model(FILE *h, const gen_schema_t *s, const gen_table_t *t) {
  char up[300], line[1200], flags[128];
  gen_upper(t->prefix, up, sizeof up);
  fputs("/* ", h);
  put_comment(h, t->schema);
  fputc('.', h);
  put_comment(h, t->name);
  fprintf(h, "%s */\n",
          t->kind == 'v'   ? ": a view, read-only"
          : t->kind == 'm' ? ": a materialized view, read-only"
                           : "");
  for (size_t c = 0; c < t->ncols; c++)
    if (t->cols[c].skip) {
      fputs("/* (column ", h);
      put_comment(h, t->cols[c].name);
      fputs(", ", h);
      put_comment(h, t->cols[c].pg_type);
      fputs(": no model type; left out) */\n", h);
    }
  snprintf(line, sizeof line, "#define %s_FIELDS(X)", up);
  macro_line(h, line, true);
  size_t last = 0;
  for (size_t c = 0; c < t->ncols; c++)
    if (!t->cols[c].skip)
      last = c;
  for (size_t c = 0; c < t->ncols; c++) {
    const gen_column_t *col = &t->cols[c];
    if (col->skip)
      continue;
    flags_text(col->flags, flags, sizeof flags);
    char name[600];
    if (strcmp(col->member, col->name) == 0) {
      snprintf(name, sizeof name, "%s", col->member);
    } else {
      /* ORM_COLUMN(member, "column"), the column as a C string. */
      char *text = NULL;
      size_t len = 0;
      FILE *m = open_memstream(&text, &len);
      put_string(m, col->name);
      fclose(m);
      snprintf(name, sizeof name, "ORM_COLUMN(%s, %s)", col->member, text);
      free(text);
    }
    snprintf(line, sizeof line, "  X(%s, %s, %s, %s)", name,
             gen_type_name(col->type), col->ctype, flags);
    macro_line(h, line, c != last);
  }
  if (t->nrels == 0) {
    fprintf(h, "ORM_MODEL_DECLARE(%s, %s_FIELDS);\n\n", t->prefix, up);
    return;
  }
  snprintf(line, sizeof line, "#define %s_RELATIONS(R)", up);
  macro_line(h, line, true);
  for (size_t r = 0; r < t->nrels; r++) {
    const gen_rel_t *rel = &t->rels[r];
    const char *target = s->tables[rel->target].prefix;
    if (rel->kind == GEN_MANY_TO_MANY) {
      char *text = NULL;
      size_t len = 0;
      FILE *m = open_memstream(&text, &len);
      fputs("ORM_THROUGH(", m);
      put_string(m, rel->through);
      fputs(", ", m);
      put_string(m, rel->from);
      fputs(", ", m);
      put_string(m, rel->to);
      fputc(')', m);
      fclose(m);
      snprintf(line, sizeof line, "  R(%s, %s, %s, %s, NULL)", rel->name,
               kinds[rel->kind], target, text);
      free(text);
    } else {
      snprintf(line, sizeof line, "  R(%s, %s, %s, %s, NULL)", rel->name,
               kinds[rel->kind], target, rel->key);
    }
    macro_line(h, line, r + 1 < t->nrels);
  }
  fprintf(h, "ORM_MODEL_DECLARE_REL(%s, %s_FIELDS, %s_RELATIONS);\n\n",
          t->prefix, up, up);
}

static void banner(FILE *f, const char *regenerate) {
  fputs("/* Generated by `uvorm gen`: do not edit; regenerate with\n *   ", f);
  put_comment(f, regenerate);
  fputs("\n * (`uvorm gen ... --check` in CI fails when the schema moved on). */\n",
        f);
}

int gen_emit(const gen_schema_t *s, const gen_options_t *opt,
             const char *regenerate, FILE *h, FILE *c) {
  char list[300], guard[300];
  snprintf(list, sizeof list, "%s%s", opt->prefix, opt->name);
  char ident_list[300];
  gen_c_ident(list, ident_list, sizeof ident_list);
  gen_upper(ident_list, guard, sizeof guard);
  banner(h, regenerate);
  fprintf(h, "#ifndef %s_H\n#define %s_H\n\n", guard, guard);
  fputs("#include <stdbool.h>\n#include <stddef.h>\n#include <stdint.h>\n\n"
        "#include <uvorm/model.h>\n\n",
        h);
  /* The macros every enum and model defines, taken before any label. */
  names_t seen = {NULL, 0};
  char taken[320];
  for (size_t e = 0; e < s->nenums; e++) {
    gen_upper(s->enums[e].cname, taken, sizeof taken - 8);
    strcat(taken, "_COUNT");
    names_add(&seen, taken);
  }
  for (size_t i = 0; i < s->ntables; i++)
    if (!s->tables[i].skip) {
      gen_upper(s->tables[i].prefix, taken, sizeof taken - 12);
      strcat(taken, "_FIELDS");
      names_add(&seen, taken);
      gen_upper(s->tables[i].prefix, taken, sizeof taken - 12);
      strcat(taken, "_RELATIONS");
      names_add(&seen, taken);
    }
  for (size_t e = 0; e < s->nenums; e++)
    if (s->enums[e].nlabels > 0) /* C has no empty enum */
      emit_enum(h, &s->enums[e], &seen);
  for (size_t i = 0; i < seen.n; i++)
    free(seen.names[i]);
  free(seen.names);
  size_t n = 0;
  for (size_t i = 0; i < s->ntables; i++) {
    const gen_table_t *t = &s->tables[i];
    if (t->skip) {
      if (!t->join) {
        fputs("/* (", h);
        put_comment(h, t->schema);
        fputc('.', h);
        put_comment(h, t->name);
        fputs(": no model: ", h);
        put_comment(h, t->why);
        fputs(") */\n\n", h);
      }
      continue;
    }
    emit_model(h, s, t);
    n++;
  }
  fprintf(h,
          "/* Every model above, for checking them all at start\n"
          " * (orm_model_verify_async) or iterating. */\n"
          "extern const orm_model_t *(*const %s_all[])(void);\n"
          "extern const size_t %s_count;\n\n#endif /* %s_H */\n",
          ident_list, ident_list, guard);

  banner(c, regenerate);
  fprintf(c, "#include \"%s.h\"\n\n", opt->name);
  for (size_t i = 0; i < s->ntables; i++) {
    const gen_table_t *t = &s->tables[i];
    if (t->skip)
      continue;
    char up[300];
    gen_upper(t->prefix, up, sizeof up);
    if (t->nrels > 0)
      fprintf(c, "ORM_MODEL_DEFINE_REL_IN(%s, ", t->prefix);
    else if (t->kind == 'v' || t->kind == 'm')
      fprintf(c, "ORM_MODEL_DEFINE_VIEW_IN(%s, ", t->prefix);
    else
      fprintf(c, "ORM_MODEL_DEFINE_IN(%s, ", t->prefix);
    if (opt->qualify)
      put_string(c, t->schema);
    else
      fputs("NULL", c);
    fputs(", ", c);
    put_string(c, t->name);
    if (t->nrels > 0)
      fprintf(c, ", %s_FIELDS, %s_RELATIONS);\n", up, up);
    else
      fprintf(c, ", %s_FIELDS);\n", up);
  }
  for (size_t e = 0; e < s->nenums; e++) {
    if (s->enums[e].nlabels == 0)
      continue;
    char up[300];
    gen_upper(s->enums[e].cname, up, sizeof up);
    fprintf(c, "\nconst char *const %s_labels[%s_COUNT] = {", s->enums[e].cname, up);
    for (size_t l = 0; l < s->enums[e].nlabels; l++) {
      fputs(l > 0 ? ", " : "", c);
      put_string(c, s->enums[e].labels[l]);
    }
    fputs("};\n", c);
  }
  fprintf(c, "\nconst orm_model_t *(*const %s_all[])(void) = {\n", ident_list);
  for (size_t i = 0; i < s->ntables; i++)
    if (!s->tables[i].skip)
      fprintf(c, "    %s_model,\n", s->tables[i].prefix);
  fprintf(c, "};\nconst size_t %s_count = %zu;\n", ident_list, n);
  return ferror(h) || ferror(c) ? -1 : 0;
}
