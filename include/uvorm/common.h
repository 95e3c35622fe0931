/* SPDX-License-Identifier: MIT */
/* uvorm — declarations shared by every public header: the export macro,
 * error codes, the allocator and the version. */
#ifndef UVORM_COMMON_H
#define UVORM_COMMON_H

#include <stddef.h>

#include "uvorm/version.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(ORM_BUILDING_SHARED) && defined(__GNUC__)
#define ORM_EXTERN __attribute__((visibility("default")))
#else
#define ORM_EXTERN /* nothing */
#endif

/* Every fallible call returns 0 on success or one of these negative codes.
 * The table is the single source for the enum, orm_strerror(),
 * orm_strerror_r() and orm_err_name(); codes are stable across releases. */
#define ORM_ERRNO_MAP(XX)                                                      \
  XX(EINVAL, -1, "invalid argument")                                           \
  XX(ENOMEM, -2, "out of memory")                                              \
  XX(ECANCELED, -3, "operation canceled")                                      \
  XX(ETIMEDOUT, -4, "operation timed out")                                     \
  XX(EQUEUEFULL, -5, "request queue is full")                                  \
  XX(ECLOSED, -6, "pool is closing or closed")                                 \
  XX(ECONNECT, -7, "could not connect to the server")                          \
  XX(ECONNLOST, -8, "connection to the server was lost")                       \
  XX(ESERVER, -9, "the server reported an error")                              \
  XX(EPROTO, -10, "unexpected response from the server")                       \
  XX(ETYPE, -11, "column type does not match the declared type")             \
  XX(ENOTFOUND, -12, "no matching row")                                        \
  XX(ERANGE, -13, "value out of range")                                        \
  XX(E2BIG, -14, "too many parameters or values")                              \
  XX(ENOCOLUMN, -15, "unknown column")                                         \
  XX(EBUSY, -16, "resource busy")                                              \
  XX(ESTATE, -17, "operation not valid in the current state")                  \
  XX(ENOTSUP, -18, "operation not supported")                                  \
  XX(EMODEL, -19, "invalid model descriptor")                                  \
  XX(EIO, -20, "input/output error")                                           \
  XX(ESKIPPED, -21, "skipped: an earlier statement of the transaction failed") \
  XX(ENORELATION, -22, "unknown relation")                                     \
  XX(ENOTLOADED, -23, "relation not loaded")                                   \
  XX(EMIGRATION, -24, "migrations do not match the database's history")      \
  XX(EVALIDATION, -25, "a row failed its model's validation")                 \
  XX(EAUTH, -26, "authentication failed")

typedef enum {
#define ORM_ERRNO_ENUM_(name, code, msg) ORM_##name = (code),
  ORM_ERRNO_MAP(ORM_ERRNO_ENUM_)
#undef ORM_ERRNO_ENUM_
  ORM_ERRNO_MAX_ = -27 /* one past the last code; not an error */
} orm_errno_t;

/* A static, human-readable description of `code`. Never NULL, never
 * allocates; unknown codes give "unknown error". */
ORM_EXTERN const char *orm_strerror(int code);

/* Like orm_strerror() but writes into `buf` (at most `len` bytes, always
 * NUL-terminated when len > 0); unknown codes are written with their number.
 * Returns `buf`. */
ORM_EXTERN char *orm_strerror_r(int code, char *buf, size_t len);

/* The symbolic name of `code`, e.g. "ORM_ETIMEDOUT"; "ORM_UNKNOWN" for
 * codes not in the table. */
ORM_EXTERN const char *orm_err_name(int code);

/* The library's version as "MAJOR.MINOR.PATCH" and as ORM_VERSION_HEX. */
ORM_EXTERN const char *orm_version_string(void);
ORM_EXTERN unsigned int orm_version(void);

/* Replace the allocator used for every allocation uvorm makes (libpq's own
 * memory is not affected). All four functions must be given, or none: the
 * call returns ORM_EINVAL and changes nothing otherwise. Call it before any
 * other uvorm function, or with no uvorm object alive. */
typedef void *(*orm_malloc_func)(size_t size);
typedef void *(*orm_realloc_func)(void *ptr, size_t size);
typedef void *(*orm_calloc_func)(size_t count, size_t size);
typedef void (*orm_free_func)(void *ptr);

ORM_EXTERN int orm_replace_allocator(orm_malloc_func malloc_func,
                                     orm_realloc_func realloc_func,
                                     orm_calloc_func calloc_func,
                                     orm_free_func free_func);

#ifdef __cplusplus
}
#endif

#endif /* UVORM_COMMON_H */
