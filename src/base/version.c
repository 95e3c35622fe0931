/* SPDX-License-Identifier: MIT */
#include "uvorm/common.h"

#define ORM__STRINGIFY_(x) #x
#define ORM__STRINGIFY(x) ORM__STRINGIFY_(x)

const char *orm_version_string(void) {
  return ORM__STRINGIFY(ORM_VERSION_MAJOR) "." ORM__STRINGIFY(
      ORM_VERSION_MINOR) "." ORM__STRINGIFY(ORM_VERSION_PATCH);
}

unsigned int orm_version(void) { return ORM_VERSION_HEX; }
