/* SPDX-License-Identifier: MIT */
/* `uvorm gen`: from the catalog to what the files say. Which tables become
 * models (and why not), member and model names, field flags, and the
 * relations the foreign keys imply, named without a clash. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uvorm/model.h>

#include "gen.h"

static bool quiet;

void gen_warn(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("uvorm gen: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

/* A warning (something left out): not with --quiet. */
static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...) {
  if (quiet)
    return;
  va_list ap;
  va_start(ap, fmt);
  fputs("uvorm gen: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

static char *dupf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *dupf(const char *fmt, ...) {
  va_list ap, again;
  va_start(ap, fmt);
  va_copy(again, ap);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  char *s = malloc((size_t)n + 1);
  if (s == NULL) {
    fputs("uvorm gen: out of memory\n", stderr);
    exit(1);
  }
  vsnprintf(s, (size_t)n + 1, fmt, again);
  va_end(again);
  return s;
}

static char *ident(const char *prefix, const char *name) {
  char buf[256];
  if (gen_c_ident(name, buf, sizeof buf) < 0)
    snprintf(buf, sizeof buf, "c_");
  return dupf("%s%s", prefix, buf);
}

/* A model's or enum's C name: NAME_t must be a type of its own. */
static char *type_ident(const char *prefix, const char *name) {
  char *id = ident(prefix, name);
  if (!gen_reserved_type(id))
    return id;
  char *more = dupf("%s_", id);
  free(id);
  return more;
}

static bool same_upper(const char *a, const char *b) {
  char x[300], y[300];
  gen_upper(a, x, sizeof x);
  gen_upper(b, y, sizeof y);
  return strcmp(x, y) == 0;
}

static bool is_fk_column(const gen_schema_t *s, int table, int column) {
  for (size_t f = 0; f < s->nfks; f++)
    if (s->fks[f].table == table && s->fks[f].column == column)
      return true;
  return false;
}

static int by_table_column(const void *a, const void *b) {
  const gen_fk_t *x = a, *y = b;
  int kx[4] = {x->table, x->column, x->target, x->target_column};
  int ky[4] = {y->table, y->column, y->target, y->target_column};
  for (int i = 0; i < 4; i++)
    if (kx[i] != ky[i])
      return kx[i] < ky[i] ? -1 : 1;
  return 0;
}

/* Which tables are models, their fields. -1 on a --strict failure or a
 * clash of member names. */
static int resolve_tables(gen_schema_t *s, const gen_options_t *opt) {
  for (size_t i = 0; i < s->ntables; i++) {
    gen_table_t *t = &s->tables[i];
    int fkcols = 0;
    for (size_t c = 0; c < t->ncols; c++)
      fkcols += is_fk_column(s, (int)i, (int)c);
    t->join = t->kind != 'v' && t->kind != 'm' && t->ncols == 2 && fkcols == 2 &&
              t->npk != 1;
    bool view = t->kind == 'v' || t->kind == 'm'; /* a read-only model */
    if (view)
      t->pk = -1;
    else if (t->join)
      t->why = dupf("a join table: a many-to-many relation of the tables it links");
    else if (t->npk == 0)
      t->why = dupf("no primary key (a model is keyed on one)");
    else if (t->npk > 1 || t->pk < 0)
      t->why = dupf("a composite primary key (a model is keyed on one column)");
    else if (t->cols[t->pk].type == 0)
      t->why = dupf("its primary key's type %s has no model type", t->cols[t->pk].pg_type);
    size_t kept = 0;
    for (size_t c = 0; c < t->ncols && t->why == NULL; c++) {
      gen_column_t *col = &t->cols[c];
      if (col->type == 0) {
        col->skip = true;
        if (opt->strict) {
          gen_warn("%s.%s.%s: type %s has no model type (--strict)", t->schema,
                   t->name, col->name, col->pg_type);
          return -1;
        }
        note("%s.%s.%s: type %s has no model type: column skipped", t->schema,
             t->name, col->name, col->pg_type);
        continue;
      }
      kept++;
      col->member = ident("", col->name);
      if ((int)c == t->pk)
        col->flags |= ORM_F_PK;
      else if (!col->not_null)
        col->flags |= ORM_F_NULLABLE;
      if (col->defaulted)
        col->flags |= ORM_F_GENERATED;
      for (size_t d = 0; d < c; d++)
        if (!t->cols[d].skip && t->cols[d].member != NULL &&
            strcmp(t->cols[d].member, col->member) == 0) {
          gen_warn("%s.%s: columns \"%s\" and \"%s\" both become member %s: "
                   "rename one",
                   t->schema, t->name, t->cols[d].name, col->name, col->member);
          return -1;
        }
    }
    if (t->why == NULL && kept > ORM_MODEL_MAX_FIELDS)
      t->why = dupf("%zu columns, more than a model's %d", kept, ORM_MODEL_MAX_FIELDS);
    if (t->why == NULL && kept == 0)
      t->why = dupf("no column has a model type");
    if (t->why != NULL) {
      t->skip = true;
      if (!t->join && opt->strict) {
        gen_warn("%s.%s: %s (--strict)", t->schema, t->name, t->why);
        return -1;
      }
      if (!t->join)
        note("%s.%s: skipped: %s", t->schema, t->name, t->why);
      continue;
    }
    char sing[256];
    gen_singular(t->name, sing, sizeof sing);
    t->prefix = type_ident(opt->prefix, sing);
  }
  return 0;
}

/* Model and enum C names must not collide. */
static int check_names(gen_schema_t *s, const gen_options_t *opt) {
  for (size_t e = 0; e < s->nenums; e++)
    s->enums[e].cname = type_ident(opt->prefix, s->enums[e].name);
  for (size_t i = 0; i < s->ntables; i++) {
    const gen_table_t *t = &s->tables[i];
    if (t->skip)
      continue;
    for (size_t j = 0; j < i; j++)
      if (!s->tables[j].skip && same_upper(s->tables[j].prefix, t->prefix)) {
        gen_warn("%s.%s and %s.%s both become model %s: exclude one, or give "
                 "them names apart",
                 s->tables[j].schema, s->tables[j].name, t->schema, t->name,
                 t->prefix);
        return -1;
      }
    for (size_t e = 0; e < s->nenums; e++)
      if (same_upper(s->enums[e].cname, t->prefix)) {
        gen_warn("enum %s.%s and table %s.%s both become %s_t", s->enums[e].schema,
                 s->enums[e].name, t->schema, t->name, t->prefix);
        return -1;
      }
  }
  for (size_t e = 0; e < s->nenums; e++)
    for (size_t f = 0; f < e; f++)
      if (same_upper(s->enums[e].cname, s->enums[f].cname)) {
        gen_warn("enums %s.%s and %s.%s both become %s_t", s->enums[f].schema,
                 s->enums[f].name, s->enums[e].schema, s->enums[e].name,
                 s->enums[e].cname);
        return -1;
      }
  return 0;
}

static bool name_taken(const gen_table_t *t, const char *name) {
  for (size_t c = 0; c < t->ncols; c++)
    if (!t->cols[c].skip && strcmp(t->cols[c].member, name) == 0)
      return true;
  for (size_t r = 0; r < t->nrels; r++)
    if (strcmp(t->rels[r].name, name) == 0)
      return true;
  return false;
}

static int add_rel(gen_table_t *t, gen_rel_t rel, char *alt) {
  if (name_taken(t, rel.name) || strlen(rel.name) > ORM_MODEL_MAX_NAME) {
    free(rel.name);
    rel.name = alt;
    alt = NULL;
    if (name_taken(t, rel.name)) {
      gen_warn("%s.%s: two relations named %s: rename a foreign key column",
               t->schema, t->name, rel.name);
      free(rel.name);
      return -1;
    }
  }
  free(alt);
  if (strlen(rel.name) > ORM_MODEL_MAX_NAME) {
    note("%s.%s: relation %s: a name longer than %d bytes: left out", t->schema,
         t->name, rel.name, ORM_MODEL_MAX_NAME);
    free(rel.name);
    return 0;
  }
  if (t->nrels == ORM_MODEL_MAX_RELATIONS) {
    note("%s.%s: more than %d relations: %s left out", t->schema, t->name,
         ORM_MODEL_MAX_RELATIONS, rel.name);
    free(rel.name);
    return 0;
  }
  gen_rel_t *g = realloc(t->rels, (t->nrels + 1) * sizeof *g);
  if (g == NULL) {
    fputs("uvorm gen: out of memory\n", stderr);
    exit(1);
  }
  t->rels = g;
  t->rels[t->nrels++] = rel;
  return 0;
}

/* Whether fk can key a relation: both ends are models, it references the
 * target's primary key, and its column is a plain member. */
static bool usable(const gen_schema_t *s, const gen_fk_t *fk, bool join) {
  const gen_table_t *from = &s->tables[fk->table], *to = &s->tables[fk->target];
  if ((!join && from->skip) || to->skip || fk->column < 0 ||
      fk->target_column != to->pk)
    return false;
  const gen_column_t *c = &from->cols[fk->column];
  /* The model layer compares keys of one type only. */
  if (c->type != to->cols[to->pk].type)
    return false;
  return join || (!c->skip && strcmp(c->member, c->name) == 0);
}

static int resolve_relations(gen_schema_t *s) {
  if (s->nfks > 1)
    qsort(s->fks, s->nfks, sizeof *s->fks, by_table_column);
  char rn[256], base[256];
  /* Belongs-to, in column order; then their reverse. */
  for (size_t f = 0; f < s->nfks; f++) {
    const gen_fk_t *fk = &s->fks[f];
    gen_table_t *from = &s->tables[fk->table];
    if (from->join || !usable(s, fk, false))
      continue;
    const char *col = from->cols[fk->column].name;
    gen_rel_name(col, rn, sizeof rn);
    if (add_rel(from, (gen_rel_t){.name = ident("", rn), .kind = GEN_BELONGS_TO,
                                  .target = fk->target, .key = col},
                dupf("%s_ref", col)) != 0)
      return -1;
  }
  for (size_t f = 0; f < s->nfks; f++) {
    const gen_fk_t *fk = &s->fks[f];
    gen_table_t *from = &s->tables[fk->table], *to = &s->tables[fk->target];
    if (from->join || !usable(s, fk, false))
      continue;
    size_t same = 0;
    for (size_t g = 0; g < s->nfks; g++)
      same += s->fks[g].table == fk->table && s->fks[g].target == fk->target &&
              usable(s, &s->fks[g], false);
    const char *col = from->cols[fk->column].name;
    gen_rel_name(col, rn, sizeof rn);
    if (fk->unique)
      gen_singular(from->name, base, sizeof base);
    else
      snprintf(base, sizeof base, "%s", from->name);
    char *plain = ident("", base), *as = dupf("%s_as_%s", plain, rn);
    char *alt = ident("", as);
    free(as);
    gen_rel_t rel = {.kind = fk->unique ? GEN_HAS_ONE : GEN_HAS_MANY,
                     .target = fk->table, .key = col};
    /* Two keys to one table (or to itself): named after the key. */
    if (same > 1 || fk->table == fk->target) {
      free(plain);
      rel.name = alt;
      alt = dupf("%s_ref", rel.name);
    } else {
      rel.name = plain;
    }
    if (add_rel(to, rel, alt) != 0)
      return -1;
  }
  /* Many-to-many through each join table, both ways. */
  for (size_t j = 0; j < s->ntables; j++) {
    const gen_table_t *jt = &s->tables[j];
    if (!jt->join)
      continue;
    const gen_fk_t *k[2] = {NULL, NULL};
    for (size_t f = 0; f < s->nfks; f++)
      if (s->fks[f].table == (int)j)
        k[k[0] == NULL ? 0 : 1] = &s->fks[f];
    if (k[0] == NULL || k[1] == NULL || !usable(s, k[0], true) ||
        !usable(s, k[1], true))
      continue;
    for (int side = 0; side < 2; side++) {
      const gen_fk_t *mine = k[side], *other = k[1 - side];
      gen_table_t *owner = &s->tables[mine->target];
      const gen_table_t *target = &s->tables[other->target];
      const char *to_col = jt->cols[other->column].name;
      gen_rel_name(to_col, rn, sizeof rn);
      /* Taken (a has-many to the same table, say): the join table's
       * name; to itself: the join table and the key, both ways apart. */
      char *joined = dupf("%s_%s", jt->name, rn);
      char *alt = mine->target == other->target ? ident("", joined)
                                                : ident("", jt->name);
      free(joined);
      gen_rel_t rel = {.kind = GEN_MANY_TO_MANY, .target = other->target,
                       .through = jt->name, .from = jt->cols[mine->column].name,
                       .to = to_col};
      if (mine->target == other->target) {
        rel.name = alt;
        alt = dupf("%s_ref", rel.name);
      } else {
        rel.name = ident("", target->name);
      }
      if (add_rel(owner, rel, alt) != 0)
        return -1;
    }
  }
  return 0;
}

int gen_resolve(gen_schema_t *s, const gen_options_t *opt) {
  quiet = opt->quiet;
  if (resolve_tables(s, opt) != 0 || check_names(s, opt) != 0)
    return -1;
  size_t models = 0;
  for (size_t i = 0; i < s->ntables; i++)
    models += !s->tables[i].skip;
  if (models == 0) {
    gen_warn("no table can be a model (see the warnings above)");
    return -1;
  }
  return resolve_relations(s);
}

void gen_free(gen_schema_t *s) {
  for (size_t i = 0; i < s->ntables; i++) {
    gen_table_t *t = &s->tables[i];
    for (size_t c = 0; c < t->ncols; c++) {
      free(t->cols[c].name);
      free(t->cols[c].member);
      free(t->cols[c].pg_type);
    }
    for (size_t r = 0; r < t->nrels; r++)
      free(t->rels[r].name);
    free(t->cols);
    free(t->rels);
    free(t->schema);
    free(t->name);
    free(t->prefix);
    free(t->why);
  }
  free(s->tables);
  for (size_t e = 0; e < s->nenums; e++) {
    for (size_t l = 0; l < s->enums[e].nlabels; l++)
      free(s->enums[e].labels[l]);
    free(s->enums[e].labels);
    free(s->enums[e].schema);
    free(s->enums[e].name);
    free(s->enums[e].cname);
  }
  free(s->enums);
  free(s->fks);
  memset(s, 0, sizeof *s);
}
