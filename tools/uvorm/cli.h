/* SPDX-License-Identifier: MIT */
/* The `uvorm` program: what its subcommands share. */
#ifndef UVORM_CLI_H
#define UVORM_CLI_H

#include <stdio.h>

/* Exit codes, fixed: scripts rely on them. */
enum {
  CLI_OK = 0,
  CLI_FAILED = 1, /* a migration, a verification, the database */
  CLI_USAGE = 2   /* bad arguments */
};

/* `uvorm migrate ...`: argv[0] is "migrate". */
int cli_migrate(int argc, char **argv);

/* `uvorm gen ...`: argv[0] is "gen". */
int cli_gen(int argc, char **argv);

/* Writes `dir`'s migrations as a C source defining `symbol` (an
 * orm_migration_source_t array) and `symbol`_count, to `out`. Returns a
 * CLI_* code; errors are printed. */
int cli_embed(const char *dir, const char *out, const char *symbol, int quiet);

/* "uvorm: " and the message, on stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif /* UVORM_CLI_H */
