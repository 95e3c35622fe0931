/* SPDX-License-Identifier: MIT */
/* The binary codecs without a server (support/codec_wire.h): numeric, in
 * both directions, canonical and lenient forms, malformed input and random
 * round trips. */
#include "codec_wire.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- numeric ----------------------------------------------------------- */

#define NUM_CASE(text, weight, sign, dscale, ndigits, ...)                     \
  {                                                                            \
    text, weight, sign, dscale, ndigits, { __VA_ARGS__ }                       \
  }

typedef struct {
  const char *text;
  int weight;
  uint16_t sign;
  uint16_t dscale;
  size_t ndigits;
  uint16_t digits[16];
} numeric_case_t;

/* Canonical forms: decoding the wire gives `text`, encoding `text` gives
 * the wire. */
static const numeric_case_t numeric_cases[] = {
    NUM_CASE("0", 0, 0x0000, 0, 0, 0),
    NUM_CASE("0.00", 0, 0x0000, 2, 0, 0),
    NUM_CASE("1", 0, 0x0000, 0, 1, 1),
    NUM_CASE("0.0001", -1, 0x0000, 4, 1, 1),
    NUM_CASE("-0.000001", -2, 0x4000, 6, 1, 100),
    NUM_CASE("-12345.678900", 1, 0x4000, 6, 3, 1, 2345, 6789),
    NUM_CASE("10000", 1, 0x0000, 0, 1, 1),
    NUM_CASE("9999.9999", 0, 0x0000, 4, 2, 9999, 9999),
    NUM_CASE("0.5", -1, 0x0000, 1, 1, 5000),
    NUM_CASE("123456789012345678901234567890.123456789", 7, 0x0000, 9, 11, 12,
             3456, 7890, 1234, 5678, 9012, 3456, 7890, 1234, 5678, 9000),
    NUM_CASE("NaN", 0, 0xC000, 0, 0, 0),
    NUM_CASE("Infinity", 0, 0xD000, 0, 0, 0),
    NUM_CASE("-Infinity", 0, 0xF000, 0, 0, 0),
};

static void test_numeric_canonical(void **state) {
  for (size_t i = 0; i < sizeof numeric_cases / sizeof numeric_cases[0]; i++) {
    const numeric_case_t *c = &numeric_cases[i];
    unsigned char wire[8 + 2 * 16];
    size_t len = wire_numeric(wire, c->weight, c->sign, c->dscale, c->ndigits,
                              c->digits);
    char *s = NULL;
    assert_int_equal(codec_decode(ORM_T_NUMERIC, wire, len, &s), 0);
    assert_string_equal(s, c->text);
    codec_expect_encoding(ORM_T_NUMERIC, &c->text, wire, len);
    codec_expect_truncations_rejected(ORM_T_NUMERIC, wire, len, &s, sizeof s);
  }
}

static void test_numeric_large_weight(void **state) {
  /* 1e100: one digit in group 25. */
  unsigned char wire[16];
  const uint16_t one[] = {1};
  size_t len = wire_numeric(wire, 25, 0x0000, 0, 1, one);
  char *s = NULL;
  assert_int_equal(codec_decode(ORM_T_NUMERIC, wire, len, &s), 0);
  assert_int_equal(strlen(s), 101);
  assert_int_equal(s[0], '1');
  assert_int_equal(strspn(s + 1, "0"), 100);
  const char *in = "1e100";
  codec_expect_encoding(ORM_T_NUMERIC, &in, wire, len);
  in = s;
  codec_expect_encoding(ORM_T_NUMERIC, &in, wire, len);

  /* The largest weight the format holds: 131072 integer digits. */
  len = wire_numeric(wire, INT16_MAX, 0x4000, 0, 1, (const uint16_t[]){7});
  assert_int_equal(codec_decode(ORM_T_NUMERIC, wire, len, &s), 0);
  assert_int_equal(strlen(s), 2 + 4 * (size_t)INT16_MAX);
  assert_string_equal(s + strlen(s) - 3, "000");
  assert_int_equal(strncmp(s, "-70", 3), 0);

  /* A weight far below the digits: all zeros but the last. */
  len = wire_numeric(wire, -5, 0x0000, 21, 1, (const uint16_t[]){3});
  assert_int_equal(codec_decode(ORM_T_NUMERIC, wire, len, &s), 0);
  assert_string_equal(s, "0.000000000000000000030");
}

static void test_numeric_decode_lenient_forms(void **state) {
  unsigned char wire[32];
  char *s = NULL;
  /* Digits hidden by dscale are cut, as the server does on receive. */
  size_t len = wire_numeric(wire, 0, 0x0000, 2, 2, (const uint16_t[]){3, 1415});
  assert_int_equal(codec_decode(ORM_T_NUMERIC, wire, len, &s), 0);
  assert_string_equal(s, "3.14");
  /* Unnormalised leading zero groups still print one integer zero. */
  len = wire_numeric(wire, 1, 0x0000, 1, 3, (const uint16_t[]){0, 0, 5000});
  assert_int_equal(codec_decode(ORM_T_NUMERIC, wire, len, &s), 0);
  assert_string_equal(s, "0.5");
  len = wire_numeric(wire, 1, 0x0000, 0, 2, (const uint16_t[]){0, 42});
  assert_int_equal(codec_decode(ORM_T_NUMERIC, wire, len, &s), 0);
  assert_string_equal(s, "42");
}

static void test_numeric_malformed(void **state) {
  unsigned char wire[32];
  static char untouched[] = "untouched";
  char *s = untouched;
  const uint16_t d[] = {1, 2};
  /* Digit out of base 10000. */
  size_t len =
      wire_numeric(wire, 0, 0x0000, 0, 2, (const uint16_t[]){1, 10000});
  assert_int_equal(codec_decode(ORM_T_NUMERIC, wire, len, &s), ORM_ETYPE);
  /* Unknown sign word. */
  len = wire_numeric(wire, 0, 0x8000, 0, 1, d);
  assert_int_equal(codec_decode(ORM_T_NUMERIC, wire, len, &s), ORM_ETYPE);
  /* NaN with digits. */
  len = wire_numeric(wire, 0, 0xC000, 0, 1, d);
  assert_int_equal(codec_decode(ORM_T_NUMERIC, wire, len, &s), ORM_ETYPE);
  /* Scale beyond the format's 0x3FFF, and one that reads negative. */
  len = wire_numeric(wire, 0, 0x0000, 0x4000, 1, d);
  assert_int_equal(codec_decode(ORM_T_NUMERIC, wire, len, &s), ORM_ETYPE);
  len = wire_numeric(wire, 0, 0x0000, 0xFFFF, 1, d);
  assert_int_equal(codec_decode(ORM_T_NUMERIC, wire, len, &s), ORM_ETYPE);
  /* ndigits larger than the bytes sent, and negative. */
  len = wire_numeric(wire, 0, 0x0000, 0, 2, d);
  wire_be16(wire, 3);
  assert_int_equal(codec_decode(ORM_T_NUMERIC, wire, len, &s), ORM_ETYPE);
  wire_be16(wire, 0xFFFF);
  assert_int_equal(codec_decode(ORM_T_NUMERIC, wire, len, &s), ORM_ETYPE);
  assert_string_equal(s, "untouched");
}

static void test_numeric_encode_forms(void **state) {
  static const struct {
    const char *in;
    const char *canonical;
  } cases[] = {
      {"007.50", "7.50"},
      {"+3", "3"},
      {"-0", "0"},
      {"-0.000", "0.000"},
      {".5", "0.5"},
      {"5.", "5"},
      {"1E+3", "1000"},
      {"12.34e1", "123.4"},
      {"1.5e-3", "0.0015"},
      {"1e-5", "0.00001"},
      {"nan", "NaN"},
      {"NAN", "NaN"},
      {"inf", "Infinity"},
      {"+Infinity", "Infinity"},
      {"-infinity", "-Infinity"},
      {"-INF", "-Infinity"},
      {"100000000", "100000000"},
      {"0.00010000", "0.00010000"},
      {"-99999999.99999999", "-99999999.99999999"},
      {"123.0e-2", "1.230"},
      {"5e0", "5"},
      {"0e10", "0"},
  };
  orm__buf_t buf;
  orm__buf_init(&buf);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    orm__buf_reset(&buf);
    assert_int_equal(orm__codec_encode(ORM_T_NUMERIC, &cases[i].in, &buf), 0);
    char *s = NULL;
    assert_int_equal(codec_decode(ORM_T_NUMERIC, buf.data, buf.len, &s), 0);
    if (strcmp(s, cases[i].canonical) != 0)
      fail_msg("%s encoded and decoded as %s, expected %s", cases[i].in, s,
               cases[i].canonical);
  }
  orm__buf_free(&buf);

  static const char *invalid[] = {"",    "-",    "+",         ".",    "1.2.3",
                                  "1e",  "1e+",  "abc",       " 1",   "1 ",
                                  "--1", "+NaN", "-nan",      "1,5",  "0x10",
                                  "e5",  ".e1",  "Infinityx", "1e5.0"};
  for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
    if (codec_encode_rc(ORM_T_NUMERIC, &invalid[i]) != ORM_EINVAL)
      fail_msg("numeric \"%s\" was not rejected", invalid[i]);
  }
  static const char *too_big[] = {"1e-20000", "1e200000", "1e131072",
                                  "1e99999999999999999999", "0.1e-16383"};
  for (size_t i = 0; i < sizeof too_big / sizeof too_big[0]; i++) {
    if (codec_encode_rc(ORM_T_NUMERIC, &too_big[i]) != ORM_ERANGE)
      fail_msg("numeric \"%s\" was not out of range", too_big[i]);
  }
  /* The extremes that still fit. */
  const char *fits = "1e131071";
  assert_int_equal(codec_encode_rc(ORM_T_NUMERIC, &fits), 0);
  fits = "1e-16383";
  assert_int_equal(codec_encode_rc(ORM_T_NUMERIC, &fits), 0);
  const char *null_string = NULL;
  assert_int_equal(codec_encode_rc(ORM_T_NUMERIC, &null_string), ORM_EINVAL);
}

/* Random canonical decimal strings (no leading zeros, any trailing zeros,
 * up to 60 digits each side) survive encode + decode unchanged. */
static void test_numeric_random_round_trip(void **state) {
  orm__buf_t buf;
  orm__buf_init(&buf);
  char text[160];
  for (int iter = 0; iter < 20000; iter++) {
    char *p = text;
    size_t int_len = codec_rng() % 61;
    size_t frac_len = codec_rng() % 61;
    bool zero_int = int_len == 0;
    if (zero_int) {
      *p++ = '0';
    } else {
      *p++ = (char)('1' + codec_rng() % 9);
      for (size_t i = 1; i < int_len; i++)
        *p++ = (char)('0' + (codec_rng() % 3 == 0 ? 0 : codec_rng() % 10));
    }
    if (frac_len > 0) {
      *p++ = '.';
      for (size_t i = 0; i < frac_len; i++)
        *p++ = (char)('0' + (codec_rng() % 3 == 0 ? 0 : codec_rng() % 10));
    }
    *p = '\0';
    bool all_zero = strspn(text, "0.") == strlen(text);
    char signed_text[161];
    snprintf(signed_text, sizeof signed_text, "%s%s",
             !all_zero && codec_rng() % 2 ? "-" : "", text);

    const char *in = signed_text;
    orm__buf_reset(&buf);
    assert_int_equal(orm__codec_encode(ORM_T_NUMERIC, &in, &buf), 0);
    char *out = NULL;
    assert_int_equal(codec_decode(ORM_T_NUMERIC, buf.data, buf.len, &out), 0);
    if (strcmp(out, signed_text) != 0)
      fail_msg("round trip of %s gave %s", signed_text, out);
    orm__arena_reset(&codec_arena);
  }
  orm__buf_free(&buf);
}

int main(void) {
  const struct CMUnitTest tests[] = {
#define T(fn)                                                                  \
  cmocka_unit_test_setup_teardown(fn, codec_arena_setup, codec_arena_teardown)
      T(test_numeric_canonical),
      T(test_numeric_large_weight),
      T(test_numeric_decode_lenient_forms),
      T(test_numeric_malformed),
      T(test_numeric_encode_forms),
      T(test_numeric_random_round_trip),
#undef T
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
