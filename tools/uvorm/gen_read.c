/* SPDX-License-Identifier: MIT */
/* `uvorm gen`: the catalog, read with a few queries on one plain libpq
 * connection (a command-line tool, no loop to keep). Every name is bound
 * as a parameter. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "gen.h"

static char *dup(const char *s) {
  char *d = strdup(s != NULL ? s : "");
  if (d == NULL) {
    fputs("uvorm gen: out of memory\n", stderr);
    exit(1);
  }
  return d;
}

static void *grow(void *p, size_t n, size_t size) {
  void *g = realloc(p, (n == 0 ? 1 : n) * size);
  if (g == NULL) {
    fputs("uvorm gen: out of memory\n", stderr);
    exit(1);
  }
  return g;
}

/* {"a","b"}: a text[] literal of `n` names. */
static char *array_literal(const char *const *names, size_t n) {
  size_t cap = 3;
  for (size_t i = 0; i < n; i++)
    cap += 2 * strlen(names[i]) + 3;
  char *s = grow(NULL, cap, 1), *w = s;
  *w++ = '{';
  for (size_t i = 0; i < n; i++) {
    if (i > 0)
      *w++ = ',';
    *w++ = '"';
    for (const char *c = names[i]; *c; c++) {
      if (*c == '"' || *c == '\\')
        *w++ = '\\';
      *w++ = *c;
    }
    *w++ = '"';
  }
  *w++ = '}';
  *w = '\0';
  return s;
}

static PGresult *query(PGconn *pg, const char *sql, int n,
                       const char *const *values) {
  PGresult *r = PQexecParams(pg, sql, n, NULL, values, NULL, NULL, 0);
  if (PQresultStatus(r) != PGRES_TUPLES_OK) {
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    gen_warn("reading the catalog: %s (SQLSTATE %s)",
             PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) != NULL
                 ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY)
                 : PQerrorMessage(pg),
             state != NULL ? state : "-");
    PQclear(r);
    return NULL;
  }
  return r;
}

static int table_by_oid(const gen_schema_t *s, unsigned oid) {
  for (size_t i = 0; i < s->ntables; i++)
    if (s->tables[i].oid == oid)
      return (int)i;
  return -1;
}

/* "{1,2}" -> its numbers; returns how many (at most `max`). */
static size_t int_list(const char *text, int *out, size_t max) {
  size_t n = 0;
  for (const char *p = text; *p != '\0' && n < max;) {
    if (*p >= '0' && *p <= '9') {
      char *end;
      out[n++] = (int)strtol(p, &end, 10);
      p = end;
    } else {
      p++;
    }
  }
  return n;
}

static int column_by_attnum(const gen_table_t *t, const int *attnums, int a) {
  for (size_t i = 0; i < t->ncols; i++)
    if (attnums[i] == a)
      return (int)i;
  return -1;
}

static bool name_listed(const char *schema, const char *table,
                        const char *const *list, size_t n) {
  for (size_t i = 0; i < n; i++) {
    const char *dot = strchr(list[i], '.');
    if (dot == NULL ? strcmp(list[i], table) == 0
                    : (strncmp(list[i], schema, (size_t)(dot - list[i])) == 0 &&
                       schema[dot - list[i]] == '\0' && strcmp(dot + 1, table) == 0))
      return true;
  }
  return false;
}

int gen_read(void *conn, const gen_options_t *opt, gen_schema_t *s) {
  PGconn *pg = conn;
  memset(s, 0, sizeof *s);
  int status = -1;
  char *schemas = NULL, *oids = NULL;
  char names[1024] = ""; /* the schemas, for messages */
  int **attnums = NULL;
  PGresult *r = NULL;

  /* The schemas: those named, else the first of the search_path. */
  if (opt->nschemas > 0) {
    schemas = array_literal(opt->schemas, opt->nschemas);
  } else {
    r = query(pg, "SELECT current_schema()", 0, NULL);
    if (r == NULL)
      goto out;
    if (PQgetisnull(r, 0, 0)) {
      gen_warn("the search_path names no schema that exists: give --schema");
      goto out;
    }
    const char *one = PQgetvalue(r, 0, 0);
    schemas = array_literal(&one, 1);
    snprintf(names, sizeof names, "%s", one);
    PQclear(r);
  }
  const char *p1[1] = {schemas};
  r = query(pg,
            "SELECT c.oid, n.nspname, c.relname, c.relkind "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('r', 'p', 'v', 'm') AND NOT c.relispartition "
            "AND n.nspname = ANY ($1::text[]) "
            "ORDER BY n.nspname COLLATE \"C\", c.relname COLLATE \"C\"",
            1, p1);
  if (r == NULL)
    goto out;
  int nrows = PQntuples(r);
  s->tables = grow(NULL, (size_t)nrows, sizeof *s->tables);
  bool *matched = grow(NULL, opt->ntables + 1, sizeof *matched);
  memset(matched, 0, (opt->ntables + 1) * sizeof *matched);
  for (int i = 0; i < nrows; i++) {
    const char *schema = PQgetvalue(r, i, 1), *name = PQgetvalue(r, i, 2);
    if (opt->ntables > 0) {
      bool hit = false;
      for (size_t k = 0; k < opt->ntables; k++)
        if (name_listed(schema, name, &opt->tables[k], 1))
          hit = matched[k] = true;
      if (!hit)
        continue;
    }
    if (name_listed(schema, name, opt->excludes, opt->nexcludes))
      continue;
    /* The migrations' history is no model, unless asked for by name. */
    if (opt->ntables == 0 && strcmp(name, "uvorm_migrations") == 0)
      continue;
    gen_table_t *t = &s->tables[s->ntables++];
    memset(t, 0, sizeof *t);
    t->oid = (unsigned)strtoul(PQgetvalue(r, i, 0), NULL, 10);
    t->schema = dup(schema);
    t->name = dup(name);
    t->kind = PQgetvalue(r, i, 3)[0];
    t->pk = -1;
  }
  for (size_t k = 0; k < opt->ntables; k++)
    if (!matched[k]) {
      gen_warn("--table %s matches no table or view", opt->tables[k]);
      free(matched);
      goto out;
    }
  free(matched);
  PQclear(r);
  r = NULL;
  if (s->ntables == 0) {
    for (size_t i = 0; i < opt->nschemas; i++)
      snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s",
               i > 0 ? ", " : "", opt->schemas[i]);
    gen_warn("no table or view in schema %s%s", names,
             opt->nexcludes > 0 ? " (after --exclude)" : "");
    goto out;
  }

  /* Their oids, as an oid[] literal. */
  oids = grow(NULL, s->ntables * 12 + 3, 1);
  char *w = oids;
  *w++ = '{';
  for (size_t i = 0; i < s->ntables; i++)
    w += sprintf(w, "%s%u", i > 0 ? "," : "", s->tables[i].oid);
  *w++ = '}';
  *w = '\0';
  const char *p2[1] = {oids};

  /* Columns, each with its base type (through domains, which add NOT
   * NULL when they have it). */
  r = query(pg,
            "SELECT a.attrelid, a.attnum, a.attname, "
            "a.attnotnull OR dom.dnn, "
            "a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> '', "
            "format_type(a.atttypid, a.atttypmod), bt.typname, bt.typtype, "
            "bn.nspname, et.typname, en.nspname, bt.oid "
            "FROM pg_attribute a "
            "CROSS JOIN LATERAL ("
            "  WITH RECURSIVE d(oid, nn, lvl) AS ("
            "    SELECT a.atttypid, false, 0"
            "    UNION ALL"
            "    SELECT t.typbasetype, d.nn OR t.typnotnull, d.lvl + 1"
            "    FROM d JOIN pg_type t ON t.oid = d.oid WHERE t.typtype = 'd')"
            "  SELECT oid, nn FROM d ORDER BY lvl DESC LIMIT 1) dom(oid, dnn) "
            "JOIN pg_type bt ON bt.oid = dom.oid "
            "JOIN pg_namespace bn ON bn.oid = bt.typnamespace "
            "LEFT JOIN pg_type et ON et.oid = bt.typelem AND bt.typcategory = 'A' "
            "LEFT JOIN pg_namespace en ON en.oid = et.typnamespace "
            "WHERE a.attrelid = ANY ($1::oid[]) AND a.attnum > 0 "
            "AND NOT a.attisdropped ORDER BY a.attrelid, a.attnum",
            1, p2);
  if (r == NULL)
    goto out;
  attnums = grow(NULL, s->ntables, sizeof *attnums);
  memset(attnums, 0, s->ntables * sizeof *attnums);
  for (int i = 0; i < PQntuples(r); i++) {
    int ti = table_by_oid(s, (unsigned)strtoul(PQgetvalue(r, i, 0), NULL, 10));
    if (ti < 0)
      continue;
    gen_table_t *t = &s->tables[ti];
    t->cols = grow(t->cols, t->ncols + 1, sizeof *t->cols);
    attnums[ti] = grow(attnums[ti], t->ncols + 1, sizeof **attnums);
    attnums[ti][t->ncols] = atoi(PQgetvalue(r, i, 1));
    gen_column_t *c = &t->cols[t->ncols++];
    memset(c, 0, sizeof *c);
    c->enum_index = -1;
    c->name = dup(PQgetvalue(r, i, 2));
    c->not_null = PQgetvalue(r, i, 3)[0] == 't';
    c->defaulted = PQgetvalue(r, i, 4)[0] == 't';
    c->pg_type = dup(PQgetvalue(r, i, 5));
    char typtype = PQgetvalue(r, i, 7)[0];
    bool catalog = strcmp(PQgetvalue(r, i, 8), "pg_catalog") == 0;
    bool array = !PQgetisnull(r, i, 9);
    bool elem_catalog = array && strcmp(PQgetvalue(r, i, 10), "pg_catalog") == 0;
    if (array)
      c->type = elem_catalog ? gen_map_type("", 'b', PQgetvalue(r, i, 9), &c->ctype)
                             : 0;
    else if (typtype == 'e' || catalog)
      c->type = gen_map_type(PQgetvalue(r, i, 6), typtype, NULL, &c->ctype);
    if (c->type != 0 && typtype == 'e' && !array) {
      unsigned eoid = (unsigned)strtoul(PQgetvalue(r, i, 11), NULL, 10);
      size_t e = 0;
      while (e < s->nenums && s->enums[e].oid != eoid)
        e++;
      if (e == s->nenums) {
        s->enums = grow(s->enums, s->nenums + 1, sizeof *s->enums);
        memset(&s->enums[e], 0, sizeof s->enums[e]);
        s->enums[e].oid = eoid;
        s->enums[e].schema = dup(PQgetvalue(r, i, 8));
        s->enums[e].name = dup(PQgetvalue(r, i, 6));
        s->nenums++;
      }
      c->enum_index = (int)e;
    }
  }
  PQclear(r);
  r = NULL;

  /* Enums by schema and name (not by where they were first seen). */
  for (size_t i = 1; i < s->nenums; i++)
    for (size_t j = i; j > 0; j--) {
      gen_enum_t *a = &s->enums[j - 1], *b = &s->enums[j];
      int cmp = strcmp(a->schema, b->schema);
      if (cmp < 0 || (cmp == 0 && strcmp(a->name, b->name) <= 0))
        break;
      gen_enum_t tmp = *a;
      *a = *b;
      *b = tmp;
      for (size_t t = 0; t < s->ntables; t++)
        for (size_t c = 0; c < s->tables[t].ncols; c++) {
          int *ei = &s->tables[t].cols[c].enum_index;
          if (*ei == (int)(j - 1))
            *ei = (int)j;
          else if (*ei == (int)j)
            *ei = (int)(j - 1);
        }
    }

  /* Enum labels, in their order. */
  if (s->nenums > 0) {
    char *eo = grow(NULL, s->nenums * 12 + 3, 1), *ew = eo;
    *ew++ = '{';
    for (size_t i = 0; i < s->nenums; i++)
      ew += sprintf(ew, "%s%u", i > 0 ? "," : "", s->enums[i].oid);
    *ew++ = '}';
    *ew = '\0';
    const char *p3[1] = {eo};
    r = query(pg,
              "SELECT enumtypid, enumlabel FROM pg_enum "
              "WHERE enumtypid = ANY ($1::oid[]) ORDER BY enumtypid, enumsortorder",
              1, p3);
    free(eo);
    if (r == NULL)
      goto out;
    for (int i = 0; i < PQntuples(r); i++) {
      unsigned eoid = (unsigned)strtoul(PQgetvalue(r, i, 0), NULL, 10);
      for (size_t e = 0; e < s->nenums; e++)
        if (s->enums[e].oid == eoid) {
          gen_enum_t *en = &s->enums[e];
          en->labels = grow(en->labels, en->nlabels + 1, sizeof *en->labels);
          en->labels[en->nlabels++] = dup(PQgetvalue(r, i, 1));
        }
    }
    PQclear(r);
    r = NULL;
  }

  /* Primary keys and foreign keys. */
  r = query(pg,
            "SELECT conrelid, contype, conkey::text, confrelid, confkey::text "
            "FROM pg_constraint WHERE conrelid = ANY ($1::oid[]) "
            "AND contype IN ('p', 'f') ORDER BY conrelid, contype, conname COLLATE \"C\"",
            1, p2);
  if (r == NULL)
    goto out;
  for (int i = 0; i < PQntuples(r); i++) {
    int ti = table_by_oid(s, (unsigned)strtoul(PQgetvalue(r, i, 0), NULL, 10));
    if (ti < 0)
      continue;
    gen_table_t *t = &s->tables[ti];
    int keys[32], fkeys[32];
    size_t nk = int_list(PQgetvalue(r, i, 2), keys, 32);
    if (PQgetvalue(r, i, 1)[0] == 'p') {
      t->npk = nk;
      if (nk == 1)
        t->pk = column_by_attnum(t, attnums[ti], keys[0]);
      continue;
    }
    int target = table_by_oid(s, (unsigned)strtoul(PQgetvalue(r, i, 3), NULL, 10));
    size_t nf = int_list(PQgetvalue(r, i, 4), fkeys, 32);
    if (target < 0 || nk != 1 || nf != 1)
      continue; /* to a table not read, or a composite key: no relation */
    s->fks = grow(s->fks, s->nfks + 1, sizeof *s->fks);
    s->fks[s->nfks++] = (gen_fk_t){
        .table = ti,
        .column = column_by_attnum(t, attnums[ti], keys[0]),
        .target = target,
        .target_column = column_by_attnum(&s->tables[target], attnums[target], fkeys[0])};
  }
  PQclear(r);
  r = NULL;

  /* Single-column unique indexes (constraints have one too), whole-table
   * and on a plain column. */
  r = query(pg,
            "SELECT indrelid, indkey::text FROM pg_index "
            "WHERE indrelid = ANY ($1::oid[]) AND indisunique AND indnkeyatts = 1 "
            "AND indisvalid AND indimmediate "
            "AND indpred IS NULL AND indexprs IS NULL ORDER BY indrelid",
            1, p2);
  if (r == NULL)
    goto out;
  for (int i = 0; i < PQntuples(r); i++) {
    int ti = table_by_oid(s, (unsigned)strtoul(PQgetvalue(r, i, 0), NULL, 10));
    int key[1];
    if (ti < 0 || int_list(PQgetvalue(r, i, 1), key, 1) != 1)
      continue;
    int ci = column_by_attnum(&s->tables[ti], attnums[ti], key[0]);
    if (ci >= 0 && ci != s->tables[ti].pk)
      s->tables[ti].cols[ci].flags |= 0x8u; /* ORM_F_UNIQUE */
    for (size_t f = 0; f < s->nfks; f++)
      if (s->fks[f].table == ti && s->fks[f].column == ci)
        s->fks[f].unique = true;
  }
  status = 0;
out:
  if (r != NULL)
    PQclear(r);
  if (attnums != NULL)
    for (size_t i = 0; i < s->ntables; i++)
      free(attnums[i]);
  free(attnums);
  free(schemas);
  free(oids);
  return status;
}
