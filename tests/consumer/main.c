/* SPDX-License-Identifier: MIT */
/* Built against an installed uvorm; prints its version and one error string,
 * and fails if either is not what the headers it was compiled with say. */
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include <uvorm.h>

int main(void) {
  char expected[32];
  snprintf(expected, sizeof expected, "%d.%d.%d", ORM_VERSION_MAJOR,
           ORM_VERSION_MINOR, ORM_VERSION_PATCH);
  if (strcmp(orm_version_string(), expected) != 0 ||
      orm_version() != ORM_VERSION_HEX) {
    fprintf(stderr, "version mismatch: %s vs %s\n", orm_version_string(),
            expected);
    return 1;
  }
  if (strcmp(orm_err_name(ORM_ETIMEDOUT), "ORM_ETIMEDOUT") != 0)
    return 1;
  printf("uvorm %s (libuv %s): %s\n", orm_version_string(),
         uv_version_string(), orm_strerror(ORM_EQUEUEFULL));
  return 0;
}
