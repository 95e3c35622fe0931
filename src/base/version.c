/* SPDX-License-Identifier: MIT */
#include "uvorm/common.h"

#define ORM_STRINGIFY_(x) #x
#define ORM_STRINGIFY(x) ORM_STRINGIFY_(x)

const char *orm_version_string(void) {
  return ORM_STRINGIFY(ORM_VERSION_MAJOR) "." ORM_STRINGIFY(
      ORM_VERSION_MINOR) "." ORM_STRINGIFY(ORM_VERSION_PATCH);
}

unsigned int orm_version(void) { return ORM_VERSION_HEX; }
