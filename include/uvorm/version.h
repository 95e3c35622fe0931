/* SPDX-License-Identifier: MIT */
/* uvorm — version. This header is the one source of truth: CMake reads the
 * numbers below to version the library, its soname and its packages. */
#ifndef UVORM_VERSION_H
#define UVORM_VERSION_H

#define ORM_VERSION_MAJOR 0
#define ORM_VERSION_MINOR 1
#define ORM_VERSION_PATCH 0

#define ORM_VERSION_HEX                                                        \
  ((ORM_VERSION_MAJOR << 16) | (ORM_VERSION_MINOR << 8) | ORM_VERSION_PATCH)

#endif /* UVORM_VERSION_H */
