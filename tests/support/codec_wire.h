/* SPDX-License-Identifier: MIT */
/* What the test_codec_* tests share, without a server: a result arena for
 * each test, hand-built wire bytes, and checks in both directions. Wire
 * values are decoded from exact-size heap copies so that AddressSanitizer
 * catches any read past the end. */
#ifndef ORM_TEST_CODEC_WIRE_H
#define ORM_TEST_CODEC_WIRE_H

#include "harness.h"

#include <stdint.h>

#include <uvorm.h>

#include "model/arena.h"
#include "model/codec.h"

#define PG_EPOCH_USECS INT64_C(946684800000000)

/* The arena decoded values live in: fresh for each test. */
extern orm__arena_t codec_arena;
int codec_arena_setup(void **state);
int codec_arena_teardown(void **state);

/* ---- wire bytes ---------------------------------------------------------- */

/* Big-endian integers at `p`. */
void wire_be16(unsigned char *p, uint16_t v);
void wire_be32(unsigned char *p, uint32_t v);
void wire_be64(unsigned char *p, uint64_t v);
/* A numeric's wire form into `out`; returns its length. */
size_t wire_numeric(unsigned char *out, int weight, uint16_t sign,
                    uint16_t dscale, size_t ndigits, const uint16_t *digits);
/* A one-dimensional array: elems[i] of lens[i] bytes, -1 for NULL; returns
 * its length. */
size_t wire_array(unsigned char *out, int32_t ndim, int32_t flags,
                  uint32_t elem_oid, int32_t lbound, size_t n,
                  const char *const *elems, const int32_t *lens);

/* A fixed pseudo-random sequence (xorshift). */
uint64_t codec_rng(void);

/* ---- checks -------------------------------------------------------------- */

/* Decodes from a heap copy of exactly `len` bytes into codec_arena. */
int codec_decode(orm_type_t type, const void *bytes, size_t len, void *out);
/* Asserts that encoding `field` appends exactly `bytes` after what the
 * buffer already held. */
void codec_expect_encoding(orm_type_t type, const void *field,
                           const void *bytes, size_t len);
/* Encodes `field` after three bytes; a failure must leave them alone.
 * Returns the encoder's result. */
int codec_encode_rc(orm_type_t type, const void *field);
/* Every strict prefix of a fixed-layout value is rejected, and so is the
 * value with one byte too many; `out` is left as it was. */
void codec_expect_truncations_rejected(orm_type_t type, const void *bytes,
                                       size_t len, void *out, size_t out_size);

#endif /* ORM_TEST_CODEC_WIRE_H */
