/* SPDX-License-Identifier: MIT */
/* Sets of migrations: loaded from a directory of SQL files or from the
 * arrays `uvorm migrate embed` generates, checked, split into statements
 * and checksummed, once, before anything runs. */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/sha256.h"
#include "migrate/migrate_int.h"

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...) {
  if (err == NULL || errlen == 0)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

int orm__migration_version(const char *digits, size_t len, uint64_t *out) {
  if (len == 0 || len > 18)
    return -1;
  uint64_t v = 0;
  for (size_t i = 0; i < len; i++) {
    if (digits[i] < '0' || digits[i] > '9')
      return -1;
    v = v * 10 + (uint64_t)(digits[i] - '0');
  }
  *out = v;
  return 0;
}

static bool name_ok(const char *name, size_t len) {
  if (len == 0 || len > 200)
    return false;
  for (size_t i = 0; i < len; i++) {
    char c = name[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9') || c == '_' || c == '-'))
      return false;
  }
  return true;
}

/* <digits>_<name>.up.sql or .down.sql: 1 up, 2 down, 0 neither. */
static int parse_file_name(const char *file, uint64_t *version,
                           size_t *digits, const char **name, size_t *namelen) {
  size_t len = strlen(file), d = 0;
  while (file[d] >= '0' && file[d] <= '9')
    d++;
  if (d == 0 || file[d] != '_' || orm__migration_version(file, d, version) != 0)
    return 0;
  int kind;
  size_t suffix;
  if (len > 7 && strcmp(file + len - 7, ".up.sql") == 0)
    kind = 1, suffix = 7;
  else if (len > 9 && strcmp(file + len - 9, ".down.sql") == 0)
    kind = 2, suffix = 9;
  else
    return 0;
  if (len <= d + 1 + suffix || !name_ok(file + d + 1, len - d - 1 - suffix))
    return 0;
  *digits = d;
  *name = file + d + 1;
  *namelen = len - d - 1 - suffix;
  return kind;
}

void orm_migrations_free(orm_migrations_t *set) {
  if (set == NULL)
    return;
  for (size_t i = 0; i < set->n; i++) {
    orm__free(set->items[i].up_stmts);
    orm__free(set->items[i].down_stmts);
    orm__free(set->items[i].owned);
    orm__free(set->items[i].up_text);
    orm__free(set->items[i].down_text);
  }
  orm__free(set->items);
  orm__free(set);
}

size_t orm_migrations_count(const orm_migrations_t *set) {
  return set != NULL ? set->n : 0;
}

const orm_migration_t *orm_migrations_at(const orm_migrations_t *set,
                                         size_t i) {
  return set != NULL && i < set->n ? &set->items[i].pub : NULL;
}

static int by_version(const void *a, const void *b) {
  const orm__migration_t *x = a, *y = b;
  return x->version < y->version ? -1 : x->version > y->version;
}

/* Splits one file and checks it. */
static int check_text(const char *file, const char *text, size_t len,
                      orm__sql_stmt_t **stmts, size_t *n, bool *no_tx,
                      char *err, size_t errlen) {
  if (memchr(text, '\0', len) != NULL) {
    set_err(err, errlen, "%s: holds a NUL byte: not a SQL text file", file);
    return ORM_EINVAL;
  }
  orm__sql_split_error_t e = {NULL, 0};
  int rc = orm__sql_split(text, len, stmts, n, &e);
  if (rc == ORM_EINVAL)
    set_err(err, errlen, "%s:%u: %s", file, e.line, e.why);
  else if (rc == ORM_ENOMEM)
    set_err(err, errlen, "out of memory");
  else if (*n == 0) {
    set_err(err, errlen, "%s: holds no SQL statement", file);
    rc = ORM_EINVAL;
  }
  *no_tx = orm__sql_no_transaction(text, len);
  return rc;
}

/* Checks the set's items (sorted here), splits and checksums them, and
 * hands the set out. Frees it on failure. */
static int finish(orm_migrations_t *set, orm_migrations_t **out, char *err,
                  size_t errlen) {
  int rc = 0;
  if (set->n > 1)
    qsort(set->items, set->n, sizeof *set->items, by_version);
  for (size_t i = 0; i < set->n && rc == 0; i++) {
    orm__migration_t *m = &set->items[i];
    orm_migration_t *p = &m->pub;
    if (i > 0 && set->items[i - 1].version == m->version) {
      set_err(err, errlen, "%s and %s: two migrations of version %s",
              set->items[i - 1].pub.up_file, p->up_file, p->version);
      rc = ORM_EINVAL;
      break;
    }
    rc = check_text(p->up_file, p->up_sql, m->up_len, &m->up_stmts,
                    &p->up_statements, &p->up_no_transaction, err, errlen);
    if (rc == 0 && p->down_sql != NULL)
      rc = check_text(p->down_file, p->down_sql, m->down_len, &m->down_stmts,
                      &p->down_statements, &p->down_no_transaction, err,
                      errlen);
    orm__sha256_hex(p->up_sql, m->up_len, p->checksum);
  }
  if (rc != 0) {
    orm_migrations_free(set);
    return rc;
  }
  *out = set;
  return 0;
}

/* A block holding "version\0name\0up_file\0down_file\0" (and the texts when
 * given), pointed to by `m`. */
static int own_names(orm__migration_t *m, const char *version, size_t vlen,
                     const char *name, size_t nlen, const char *dir,
                     bool has_down) {
  const char *sep = dir != NULL ? "/" : "";
  if (dir == NULL)
    dir = "";
  size_t dlen = strlen(dir) + strlen(sep);
  size_t size = vlen + 1 + nlen + 1 + 2 * (dlen + vlen + 1 + nlen + 10);
  char *b = orm__malloc(size);
  if (b == NULL)
    return ORM_ENOMEM;
  m->owned = b;
  m->pub.version = b;
  b += sprintf(b, "%.*s", (int)vlen, version) + 1;
  m->pub.name = b;
  b += sprintf(b, "%.*s", (int)nlen, name) + 1;
  m->pub.up_file = b;
  b += sprintf(b, "%s%s%.*s_%.*s.up.sql", dir, sep, (int)vlen, version,
               (int)nlen, name) + 1;
  if (has_down) {
    m->pub.down_file = b;
    sprintf(b, "%s%s%.*s_%.*s.down.sql", dir, sep, (int)vlen, version,
            (int)nlen, name);
  }
  return 0;
}

int orm_migrations_load_embedded(const orm_migration_source_t *list, size_t n,
                                 orm_migrations_t **out, char *err,
                                 size_t errlen) {
  if (out == NULL || (list == NULL && n > 0)) {
    set_err(err, errlen, "invalid argument");
    return ORM_EINVAL;
  }
  orm_migrations_t *set = orm__calloc(1, sizeof *set);
  if (set == NULL || (n > 0 && (set->items = orm__calloc(n, sizeof *set->items)) == NULL)) {
    orm__free(set);
    set_err(err, errlen, "out of memory");
    return ORM_ENOMEM;
  }
  for (size_t i = 0; i < n; i++) {
    const orm_migration_source_t *src = &list[i];
    orm__migration_t *m = &set->items[set->n++];
    if (src->version == NULL || src->name == NULL || src->up == NULL ||
        orm__migration_version(src->version, strlen(src->version),
                               &m->version) != 0 ||
        !name_ok(src->name, strlen(src->name))) {
      set_err(err, errlen, "embedded migration %zu: bad version or name", i);
      orm_migrations_free(set);
      return ORM_EINVAL;
    }
    if (own_names(m, src->version, strlen(src->version), src->name,
                  strlen(src->name), NULL, src->down != NULL) != 0) {
      set_err(err, errlen, "out of memory");
      orm_migrations_free(set);
      return ORM_ENOMEM;
    }
    m->pub.up_sql = src->up;
    m->up_len = src->up_len;
    m->pub.down_sql = src->down;
    m->down_len = src->down_len;
  }
  return finish(set, out, err, errlen);
}

/* Reads a whole file into a NUL-terminated block. */
static int read_all(const char *path, char **text, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (f == NULL)
    return ORM_EIO;
  char *b = NULL;
  size_t n = 0, cap = 0;
  int rc = 0;
  for (;;) {
    if (cap - n < 4096) {
      char *g = orm__realloc(b, cap + 65536);
      if (g == NULL) {
        rc = ORM_ENOMEM;
        break;
      }
      b = g, cap += 65536;
    }
    size_t got = fread(b + n, 1, cap - n - 1, f);
    n += got;
    if (got == 0) {
      if (ferror(f))
        rc = ORM_EIO;
      break;
    }
  }
  fclose(f);
  if (rc != 0) {
    orm__free(b);
    return rc;
  }
  b[n] = '\0';
  *text = b;
  *len = n;
  return 0;
}

/* A file of the directory, as found. */
typedef struct {
  char *file;
  uint64_t version;
  int kind;
} entry_t;

static int by_version_kind(const void *a, const void *b) {
  const entry_t *x = a, *y = b;
  if (x->version != y->version)
    return x->version < y->version ? -1 : 1;
  if (x->kind != y->kind)
    return x->kind - y->kind;
  return strcmp(x->file, y->file);
}

static int load_entries(const char *dir, entry_t *e, size_t ne,
                        orm_migrations_t *set, char *err, size_t errlen) {
  for (size_t i = 0; i < ne; i++) {
    uint64_t v;
    size_t digits, namelen;
    const char *name;
    parse_file_name(e[i].file, &v, &digits, &name, &namelen);
    if (e[i].kind == 2) {
      set_err(err, errlen, "%s/%s: a down file without its up file", dir,
              e[i].file);
      return ORM_EINVAL;
    }
    bool has_down = i + 1 < ne && e[i + 1].version == v && e[i + 1].kind == 2;
    if (has_down) {
      const char *dname;
      size_t dd, dn;
      uint64_t dv;
      parse_file_name(e[i + 1].file, &dv, &dd, &dname, &dn);
      if (dn != namelen || memcmp(dname, name, dn) != 0 || dd != digits) {
        set_err(err, errlen, "%s/%s and %s/%s: two names for version %.*s",
                dir, e[i].file, dir, e[i + 1].file, (int)digits, e[i].file);
        return ORM_EINVAL;
      }
    }
    orm__migration_t *m = &set->items[set->n++];
    m->version = v;
    if (own_names(m, e[i].file, digits, name, namelen, dir, has_down) != 0) {
      set_err(err, errlen, "out of memory");
      return ORM_ENOMEM;
    }
    const char *path = m->pub.up_file;
    int rc = read_all(path, &m->up_text, &m->up_len);
    if (rc == 0 && has_down)
      rc = read_all(path = m->pub.down_file, &m->down_text, &m->down_len);
    if (rc != 0) {
      set_err(err, errlen, "%s: %s", path,
              rc == ORM_EIO ? strerror(errno) : "out of memory");
      return rc;
    }
    m->pub.up_sql = m->up_text;
    m->pub.down_sql = m->down_text;
    if (has_down)
      i++;
  }
  return 0;
}

int orm_migrations_load_dir(const char *dir, orm_migrations_t **out, char *err,
                            size_t errlen) {
  if (dir == NULL || out == NULL) {
    set_err(err, errlen, "invalid argument");
    return ORM_EINVAL;
  }
  DIR *d = opendir(dir);
  if (d == NULL) {
    set_err(err, errlen, "%s: %s", dir, strerror(errno));
    return ORM_EIO;
  }
  entry_t *e = NULL;
  size_t ne = 0, cap = 0;
  int rc = 0;
  struct dirent *de;
  while (rc == 0 && (errno = 0, de = readdir(d)) != NULL) {
    const char *f = de->d_name;
    size_t len = strlen(f);
    if (f[0] == '.' || len < 4 || strcmp(f + len - 4, ".sql") != 0)
      continue;
    entry_t x = {NULL, 0, 0};
    size_t digits, namelen;
    const char *name;
    x.kind = parse_file_name(f, &x.version, &digits, &name, &namelen);
    if (x.kind == 0) {
      set_err(err, errlen,
              "%s/%s: not a migration file name: expected "
              "<version>_<name>.up.sql or .down.sql (version: 1 to 18 digits; "
              "name: letters, digits, '_', '-')",
              dir, f);
      rc = ORM_EINVAL;
      break;
    }
    if (ne == cap) {
      size_t ncap = cap == 0 ? 32 : cap * 2;
      entry_t *g = orm__reallocarray(e, ncap, sizeof *g);
      if (g == NULL) {
        rc = ORM_ENOMEM;
        break;
      }
      e = g, cap = ncap;
    }
    if ((x.file = orm__strdup(f)) == NULL) {
      rc = ORM_ENOMEM;
      break;
    }
    e[ne++] = x;
  }
  if (rc == 0 && errno != 0) {
    set_err(err, errlen, "%s: %s", dir, strerror(errno));
    rc = ORM_EIO;
  }
  closedir(d);
  orm_migrations_t *set = NULL;
  if (rc == 0) {
    set = orm__calloc(1, sizeof *set);
    if (set == NULL ||
        (ne > 0 && (set->items = orm__calloc(ne, sizeof *set->items)) == NULL))
      rc = ORM_ENOMEM;
  }
  if (rc == 0) {
    if (ne > 1)
      qsort(e, ne, sizeof *e, by_version_kind);
    rc = load_entries(dir, e, ne, set, err, errlen);
  }
  if (rc == ORM_ENOMEM)
    set_err(err, errlen, "out of memory");
  for (size_t i = 0; i < ne; i++)
    orm__free(e[i].file);
  orm__free(e);
  if (rc != 0) {
    orm_migrations_free(set);
    return rc;
  }
  return finish(set, out, err, errlen);
}
