/* SPDX-License-Identifier: MIT */
/* SHA-256 (FIPS 180-4), for the checksums of migration files. */
#ifndef ORM_BASE_SHA256_H
#define ORM_BASE_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  uint32_t h[8];
  uint64_t len; /* bytes hashed so far */
  unsigned char block[64];
  size_t used; /* bytes waiting in `block` */
} orm__sha256_t;

void orm__sha256_init(orm__sha256_t *s);
void orm__sha256_update(orm__sha256_t *s, const void *data, size_t len);
void orm__sha256_final(orm__sha256_t *s, unsigned char digest[32]);

/* The digest of `data` as 64 lowercase hex digits and a NUL. */
void orm__sha256_hex(const void *data, size_t len, char out[65]);

#endif /* ORM_BASE_SHA256_H */
