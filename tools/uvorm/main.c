/* SPDX-License-Identifier: MIT */
/* `uvorm`: the project's command-line program. Subcommands `migrate` and
 * `gen`, each in files of its own. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <uvorm.h>

#include "cli.h"

void cli_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("uvorm: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

static const char usage[] =
    "usage: uvorm <command> [options]\n"
    "\n"
    "commands:\n"
    "  migrate     versioned schema migrations (uvorm migrate --help)\n"
    "  gen         models generated from a live schema (uvorm gen --help)\n"
    "\n"
    "options:\n"
    "  -h, --help     this text\n"
    "  --version      the version of uvorm\n"
    "\n"
    "The database is the one --database URL names, else DATABASE_URL, else\n"
    "libpq's defaults (PGHOST, PGPORT, PGUSER, ...). Exit status: 0 success,\n"
    "1 a migration, a verification or the database failed, 2 bad usage.\n";

int main(int argc, char **argv) {
  if (argc < 2) {
    fputs(usage, stderr);
    return CLI_USAGE;
  }
  const char *cmd = argv[1];
  if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 ||
      strcmp(cmd, "help") == 0) {
    fputs(usage, stdout);
    return CLI_OK;
  }
  if (strcmp(cmd, "--version") == 0) {
    printf("uvorm %s\n", orm_version_string());
    return CLI_OK;
  }
  if (strcmp(cmd, "migrate") == 0)
    return cli_migrate(argc - 1, argv + 1);
  if (strcmp(cmd, "gen") == 0)
    return cli_gen(argc - 1, argv + 1);
  cli_error("unknown command '%s' (try uvorm --help)", cmd);
  return CLI_USAGE;
}
