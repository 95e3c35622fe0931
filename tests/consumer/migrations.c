/* SPDX-License-Identifier: MIT */
/* Built with uvorm_embed_migrations(): the directory's migrations are in
 * the program, checked and split as the library loads them. */
#include <stdio.h>
#include <string.h>

#include <uvorm.h>

ORM_MIGRATIONS_DECLARE(consumer_migrations);

int main(void) {
  orm_migrations_t *set = NULL;
  char err[256];
  if (orm_migrations_load_embedded(consumer_migrations, consumer_migrations_count,
                                   &set, err, sizeof err) != 0) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  int ok = orm_migrations_count(set) == 2;
  const orm_migration_t *first = ok ? orm_migrations_at(set, 0) : NULL;
  const orm_migration_t *second = ok ? orm_migrations_at(set, 1) : NULL;
  ok = ok && strcmp(first->name, "first") == 0 && first->up_statements == 2 &&
       first->down_sql != NULL && strcmp(second->version, "2") == 0 &&
       second->up_no_transaction && second->down_sql == NULL;
  if (ok)
    printf("%zu embedded migrations, the last %s_%s (%.12s...)\n",
           orm_migrations_count(set), second->version, second->name,
           second->checksum);
  orm_migrations_free(set);
  return ok ? 0 : 1;
}
