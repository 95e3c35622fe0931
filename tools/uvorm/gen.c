/* SPDX-License-Identifier: MIT */
/* `uvorm gen`: models from a live schema (docs/codegen.md). Reads the
 * catalog, resolves names, types and relations, and writes NAME.h and
 * NAME.c into DIR, both or neither; with --check, compares instead and
 * prints a diff. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "cli.h"
#include "gen.h"

static const char usage[] =
    "usage: uvorm gen --out DIR [options]\n"
    "\n"
    "Writes DIR/NAME.h (enums, X-macro field and relation lists,\n"
    "ORM_MODEL_DECLARE_REL) and DIR/NAME.c (ORM_MODEL_DEFINE_REL, NAME_all)\n"
    "from the tables of a live database: the same schema gives the same\n"
    "bytes.\n"
    "\n"
    "options:\n"
    "  --database URL   the database (default: DATABASE_URL, then libpq's\n"
    "                   PG* variables)\n"
    "  --schema NAME    a schema to read (repeatable; default: the first of\n"
    "                   the search_path)\n"
    "  --table NAME     only these tables (repeatable; NAME or schema.NAME)\n"
    "  --exclude NAME   not these (repeatable)\n"
    "  --out DIR        where the files go (required)\n"
    "  --name BASE      the files' name (default: models)\n"
    "  --prefix PFX     put before every C name (models, enums, the list)\n"
    "  --qualify        name each model's schema (default: the search_path\n"
    "                   finds it, as migrations written without one expect)\n"
    "  --strict         fail on a column or table that cannot be mapped\n"
    "                   (default: leave it out, with a warning)\n"
    "  --check          write nothing: exit 1 with a diff if DIR's files\n"
    "                   differ from what the database gives (for CI)\n"
    "  -q, --quiet      print errors only\n"
    "  -h, --help       this text\n"
    "\n"
    "Exit status: 0 success (or, with --check, up to date), 1 failure (or a\n"
    "difference), 2 bad usage.\n";

enum {
  O_DATABASE = 256, O_SCHEMA, O_TABLE, O_EXCLUDE, O_OUT, O_NAME, O_PREFIX,
  O_QUALIFY, O_STRICT, O_CHECK
};

static const struct option options[] = {
    {"database", required_argument, NULL, O_DATABASE},
    {"schema", required_argument, NULL, O_SCHEMA},
    {"table", required_argument, NULL, O_TABLE},
    {"exclude", required_argument, NULL, O_EXCLUDE},
    {"out", required_argument, NULL, O_OUT},
    {"name", required_argument, NULL, O_NAME},
    {"prefix", required_argument, NULL, O_PREFIX},
    {"qualify", no_argument, NULL, O_QUALIFY},
    {"strict", no_argument, NULL, O_STRICT},
    {"check", no_argument, NULL, O_CHECK},
    {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0}};

#define MAX_LIST 256

typedef struct {
  const char *items[MAX_LIST];
  size_t n;
} list_t;

static int bad_usage(const char *what, const char *arg) {
  fprintf(stderr, "uvorm gen: %s%s%s (try uvorm gen --help)\n", what,
          arg != NULL ? ": " : "", arg != NULL ? arg : "");
  return CLI_USAGE;
}

static bool word_ok(const char *s, bool empty_ok, const char *extra) {
  if (*s == '\0')
    return empty_ok;
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
          (*s >= '0' && *s <= '9') || *s == '_' || strchr(extra, *s) != NULL))
      return false;
  return true;
}

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (f == NULL)
    return NULL;
  char *text = NULL;
  size_t cap = 0;
  *len = 0;
  for (;;) {
    if (*len + 4096 > cap) {
      cap = (cap + 4096) * 2;
      char *g = realloc(text, cap);
      if (g == NULL) {
        free(text);
        fclose(f);
        return NULL;
      }
      text = g;
    }
    size_t got = fread(text + *len, 1, cap - *len, f);
    *len += got;
    if (got == 0)
      break;
  }
  fclose(f);
  return text;
}

/* Writes `text` to `path`.tmp; 0 or -1 (printed). */
static int write_tmp(const char *path, const char *text, size_t len) {
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "wb");
  if (f == NULL) {
    gen_warn("%s: %s", tmp, strerror(errno));
    return -1;
  }
  size_t put = fwrite(text, 1, len, f);
  if (fclose(f) != 0 || put != len) {
    gen_warn("%s: write failed", tmp);
    remove(tmp);
    return -1;
  }
  return 0;
}

static int rename_tmp(const char *path) {
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  if (rename(tmp, path) != 0) {
    gen_warn("%s: %s", path, strerror(errno));
    remove(tmp);
    return -1;
  }
  return 0;
}

/* diff -u of the file against `text`, on stdout. */
static void show_diff(const char *path, const char *text, size_t len) {
  char tmp[] = "/tmp/uvorm-gen-XXXXXX";
  int fd = mkstemp(tmp);
  if (fd < 0)
    return;
  if (write(fd, text, len) != (ssize_t)len) {
    close(fd);
    remove(tmp);
    return;
  }
  close(fd);
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    struct stat st;
    const char *old = stat(path, &st) == 0 ? path : "/dev/null";
    execlp("diff", "diff", "-u", "--label", path, "--label",
           "(from the database)", old, tmp, (char *)NULL);
    _exit(127);
  }
  if (pid > 0)
    waitpid(pid, NULL, 0);
  remove(tmp);
}

/* " OPT VALUE" as a shell word, onto the regenerate command. */
static void add_arg(char *buf, size_t n, const char *opt, const char *value) {
  size_t used = strlen(buf);
  if (value == NULL) {
    snprintf(buf + used, n - used, " %s", opt);
    return;
  }
  if (value[strspn(value, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOP"
                          "QRSTUVWXYZ0123456789_-./")] == '\0') {
    snprintf(buf + used, n - used, " %s %s", opt, value);
    return;
  }
  snprintf(buf + used, n - used, " %s '", opt);
  for (const char *c = value; *c; c++) {
    used = strlen(buf);
    snprintf(buf + used, n - used, *c == '\'' ? "'\\''" : "%c", *c);
  }
  used = strlen(buf);
  snprintf(buf + used, n - used, "'");
}

static int by_text(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The list's items in sorted order (the files must not depend on the
 * order options came in). */
static void add_sorted(char *buf, size_t n, const char *opt, const list_t *l) {
  const char *sorted[MAX_LIST];
  memcpy(sorted, l->items, l->n * sizeof *sorted);
  qsort(sorted, l->n, sizeof *sorted, by_text);
  for (size_t i = 0; i < l->n; i++)
    add_arg(buf, n, opt, sorted[i]);
}

int cli_gen(int argc, char **argv) {
  list_t schemas = {0}, tables = {0}, excludes = {0};
  const char *database = NULL, *out = NULL, *name = "models", *prefix = "";
  bool qualify = false, strict = false, check = false, quiet = false;
  optind = 1;
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, ":qh", options, NULL)) != -1) {
    list_t *l = NULL;
    switch (c) {
    case O_DATABASE: database = optarg; break;
    case O_SCHEMA: l = &schemas; break;
    case O_TABLE: l = &tables; break;
    case O_EXCLUDE: l = &excludes; break;
    case O_OUT: out = optarg; break;
    case O_NAME: name = optarg; break;
    case O_PREFIX: prefix = optarg; break;
    case O_QUALIFY: qualify = true; break;
    case O_STRICT: strict = true; break;
    case O_CHECK: check = true; break;
    case 'q': quiet = true; break;
    case 'h': fputs(usage, stdout); return CLI_OK;
    case ':': return bad_usage("this option needs a value", argv[optind - 1]);
    default: return bad_usage("unknown option", argv[optind - 1]);
    }
    if (l != NULL) {
      if (l->n == MAX_LIST || *optarg == '\0')
        return bad_usage("too many, or an empty name", argv[optind - 2]);
      l->items[l->n++] = optarg;
    }
  }
  if (optind < argc)
    return bad_usage("unexpected argument", argv[optind]);
  if (out == NULL)
    return bad_usage("--out DIR is required", NULL);
  if (!word_ok(name, false, "-."))
    return bad_usage("--name: letters, digits, '_', '-' and '.'", name);
  if (!word_ok(prefix, true, "") || strlen(prefix) > 32 ||
      (prefix[0] >= '0' && prefix[0] <= '9'))
    return bad_usage("--prefix: letters, digits and '_', not a digit first, "
                     "at most 32",
                     prefix);

  const char *db = database != NULL ? database : getenv("DATABASE_URL");
  char *perr = NULL;
  PQconninfoOption *parsed = PQconninfoParse(db != NULL ? db : "", &perr);
  if (parsed == NULL) {
    PQfreemem(perr); /* it may quote the text: never printed */
    return bad_usage("the database URL is not one libpq accepts", NULL);
  }
  PQconninfoFree(parsed);
  PGconn *pg = PQconnectdb(db != NULL ? db : "");
  if (PQstatus(pg) != CONNECTION_OK) {
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", PQerrorMessage(pg));
    msg[strcspn(msg, "\n")] = '\0';
    gen_warn("cannot connect: %s", msg);
    PQfinish(pg);
    return CLI_FAILED;
  }
  /* Names as UTF-8 whatever the environment says (PGCLIENTENCODING):
   * the same schema, the same bytes. */
  PQclear(PQexec(pg, "SET client_min_messages = warning"));
  if (PQsetClientEncoding(pg, "UTF8") != 0) {
    gen_warn("cannot read the catalog as UTF-8");
    PQfinish(pg);
    return CLI_FAILED;
  }

  gen_options_t opt = {.schemas = schemas.items, .nschemas = schemas.n,
                       .tables = tables.items, .ntables = tables.n,
                       .excludes = excludes.items, .nexcludes = excludes.n,
                       .prefix = prefix, .name = name, .qualify = qualify,
                       .strict = strict, .quiet = quiet};
  gen_schema_t s;
  int status = CLI_FAILED;
  char *htext = NULL, *ctext = NULL;
  size_t hlen = 0, clen = 0;
  int rc = gen_read(pg, &opt, &s);
  PQfinish(pg);
  if (rc != 0 || gen_resolve(&s, &opt) != 0)
    goto out;

  /* How to regenerate, in the files: the options that shape them (not the
   * database, not the directory as typed: ./db and db are one). */
  char regen[8192] = "uvorm gen";
  add_sorted(regen, sizeof regen, "--schema", &schemas);
  add_sorted(regen, sizeof regen, "--table", &tables);
  add_sorted(regen, sizeof regen, "--exclude", &excludes);
  snprintf(regen + strlen(regen), sizeof regen - strlen(regen), " --out <dir>");
  if (strcmp(name, "models") != 0)
    add_arg(regen, sizeof regen, "--name", name);
  if (*prefix != '\0')
    add_arg(regen, sizeof regen, "--prefix", prefix);
  if (qualify)
    add_arg(regen, sizeof regen, "--qualify", NULL);
  if (strict)
    add_arg(regen, sizeof regen, "--strict", NULL);

  FILE *h = open_memstream(&htext, &hlen), *cf = open_memstream(&ctext, &clen);
  if (h == NULL || cf == NULL || gen_emit(&s, &opt, regen, h, cf) != 0) {
    gen_warn("out of memory");
    if (h != NULL)
      fclose(h);
    if (cf != NULL)
      fclose(cf);
    goto out;
  }
  fclose(h);
  fclose(cf);

  char hpath[4096], cpath[4096];
  snprintf(hpath, sizeof hpath, "%s/%s.h", out, name);
  snprintf(cpath, sizeof cpath, "%s/%s.c", out, name);
  size_t models = 0;
  for (size_t i = 0; i < s.ntables; i++)
    models += !s.tables[i].skip;
  if (check) {
    size_t ohl = 0, ocl = 0;
    char *oh = slurp(hpath, &ohl), *oc = slurp(cpath, &ocl);
    bool same_h = oh != NULL && ohl == hlen && memcmp(oh, htext, hlen) == 0;
    bool same_c = oc != NULL && ocl == clen && memcmp(oc, ctext, clen) == 0;
    free(oh);
    free(oc);
    if (same_h && same_c) {
      if (!quiet)
        printf("%s and %s are up to date (%zu models)\n", hpath, cpath, models);
      status = CLI_OK;
    } else {
      if (!same_h)
        show_diff(hpath, htext, hlen);
      if (!same_c)
        show_diff(cpath, ctext, clen);
      gen_warn("%s differ%s from the database: regenerate with `%s`",
               same_h ? cpath : same_c ? hpath : "the models",
               same_h || same_c ? "s" : "", regen);
    }
    goto out;
  }
  if (mkdir(out, 0777) != 0 && errno != EEXIST) {
    gen_warn("%s: %s", out, strerror(errno));
    goto out;
  }
  struct stat st;
  if ((stat(hpath, &st) == 0 && !S_ISREG(st.st_mode)) ||
      (stat(cpath, &st) == 0 && !S_ISREG(st.st_mode))) {
    gen_warn("%s or %s is there and is not a file", hpath, cpath);
    goto out;
  }
  /* Both written beside, then both renamed: never one new and one old,
   * never a half-written file. */
  if (write_tmp(hpath, htext, hlen) != 0)
    goto out;
  if (write_tmp(cpath, ctext, clen) != 0) {
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", hpath);
    remove(tmp);
    goto out;
  }
  /* The old header, to put back if the source cannot follow it. */
  size_t old_len = 0;
  char *old_h = slurp(hpath, &old_len);
  if (rename_tmp(hpath) != 0) {
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", cpath);
    remove(tmp);
    free(old_h);
    goto out;
  }
  if (rename_tmp(cpath) != 0) {
    if (old_h == NULL)
      remove(hpath);
    else if (write_tmp(hpath, old_h, old_len) == 0)
      rename_tmp(hpath);
    free(old_h);
    goto out;
  }
  free(old_h);
  if (!quiet)
    printf("wrote %s and %s: %zu models, %zu enums\n", hpath, cpath, models,
           s.nenums);
  status = CLI_OK;
out:
  free(htext);
  free(ctext);
  gen_free(&s);
  return status;
}
