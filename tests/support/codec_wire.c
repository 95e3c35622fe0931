/* SPDX-License-Identifier: MIT */
#include "codec_wire.h"

#include <stdlib.h>
#include <string.h>

orm__arena_t codec_arena;

int codec_arena_setup(void **state) {
  orm__arena_init(&codec_arena);
  return 0;
}

int codec_arena_teardown(void **state) {
  orm__arena_free(&codec_arena);
  return 0;
}

/* ---- wire bytes ---------------------------------------------------------- */

void wire_be16(unsigned char *p, uint16_t v) {
  p[0] = (unsigned char)(v >> 8);
  p[1] = (unsigned char)v;
}

void wire_be32(unsigned char *p, uint32_t v) {
  wire_be16(p, (uint16_t)(v >> 16));
  wire_be16(p + 2, (uint16_t)v);
}

void wire_be64(unsigned char *p, uint64_t v) {
  wire_be32(p, (uint32_t)(v >> 32));
  wire_be32(p + 4, (uint32_t)v);
}

/* Hand-builds a numeric's wire form into `out`; returns its length. */
size_t wire_numeric(unsigned char *out, int weight, uint16_t sign,
                    uint16_t dscale, size_t ndigits, const uint16_t *digits) {
  wire_be16(out, (uint16_t)ndigits);
  wire_be16(out + 2, (uint16_t)(int16_t)weight);
  wire_be16(out + 4, sign);
  wire_be16(out + 6, dscale);
  for (size_t i = 0; i < ndigits; i++)
    wire_be16(out + 8 + 2 * i, digits[i]);
  return 8 + 2 * ndigits;
}

/* Builds a one-dimensional array: elems[i] of lens[i] bytes, -1 for NULL. */
size_t wire_array(unsigned char *out, int32_t ndim, int32_t flags,
                  uint32_t elem_oid, int32_t lbound, size_t n,
                  const char *const *elems, const int32_t *lens) {
  unsigned char *p = out;
  wire_be32(p, (uint32_t)ndim);
  wire_be32(p + 4, (uint32_t)flags);
  wire_be32(p + 8, elem_oid);
  p += 12;
  if (ndim > 0) {
    wire_be32(p, (uint32_t)n);
    wire_be32(p + 4, (uint32_t)lbound);
    p += 8;
  }
  for (size_t i = 0; i < n; i++) {
    wire_be32(p, (uint32_t)lens[i]);
    p += 4;
    if (lens[i] > 0) {
      memcpy(p, elems[i], (size_t)lens[i]);
      p += lens[i];
    }
  }
  return (size_t)(p - out);
}

static uint64_t rng_state = UINT64_C(0x9E3779B97F4A7C15);

uint64_t codec_rng(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

/* ---- checks -------------------------------------------------------------- */

/* Decodes from a heap copy of exactly `len` bytes. */
int codec_decode(orm_type_t type, const void *bytes, size_t len, void *out) {
  char *copy = malloc(len > 0 ? len : 1);
  assert_non_null(copy);
  if (len > 0)
    memcpy(copy, bytes, len);
  int rc = orm__codec_decode(type, copy, (int)len, out, &codec_arena);
  free(copy);
  return rc;
}

/* Asserts that encoding `field` appends exactly `bytes` after what the
 * buffer already held. */
void codec_expect_encoding(orm_type_t type, const void *field,
                           const void *bytes, size_t len) {
  orm__buf_t buf;
  orm__buf_init(&buf);
  assert_int_equal(orm__buf_append(&buf, "pre", 3), 0);
  assert_int_equal(orm__codec_encode(type, field, &buf), 0);
  assert_int_equal(buf.len, 3 + len);
  assert_memory_equal(buf.data, "pre", 3);
  if (len > 0)
    assert_memory_equal(buf.data + 3, bytes, len);
  orm__buf_free(&buf);
}

int codec_encode_rc(orm_type_t type, const void *field) {
  orm__buf_t buf;
  orm__buf_init(&buf);
  assert_int_equal(orm__buf_append(&buf, "pre", 3), 0);
  int rc = orm__codec_encode(type, field, &buf);
  if (rc != 0) {
    assert_int_equal(buf.len, 3);
    assert_memory_equal(buf.data, "pre", 3);
  }
  orm__buf_free(&buf);
  return rc;
}

/* Every strict prefix of a fixed-layout value is rejected, and so is the
 * value with one byte too many. */
void codec_expect_truncations_rejected(orm_type_t type, const void *bytes,
                                       size_t len, void *out, size_t out_size) {
  unsigned char *before = malloc(out_size);
  unsigned char *longer = malloc(len + 1);
  assert_non_null(before);
  assert_non_null(longer);
  memcpy(before, out, out_size);
  for (size_t n = 0; n < len; n++) {
    assert_int_equal(codec_decode(type, bytes, n, out), ORM_ETYPE);
    assert_memory_equal(out, before, out_size);
  }
  memcpy(longer, bytes, len);
  longer[len] = 0;
  assert_int_equal(codec_decode(type, longer, len + 1, out), ORM_ETYPE);
  assert_memory_equal(out, before, out_size);
  free(longer);
  free(before);
}
