/* SPDX-License-Identifier: MIT */
/* numeric in PostgreSQL's binary form (base-10000 digits, a weight, a sign
 * and a display scale) to and from the plain decimal strings of
 * ORM_T_NUMERIC fields. */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "uvorm/common.h"

#include "model/codec.h"

/* numeric's sign word and limits (src/include/utils/numeric.h). */
#define NUMERIC_POS 0x0000u
#define NUMERIC_NEG 0x4000u
#define NUMERIC_NAN 0xC000u
#define NUMERIC_PINF 0xD000u
#define NUMERIC_NINF 0xF000u
#define NUMERIC_DSCALE_MAX 0x3FFF
#define NUMERIC_NBASE 10000

static int64_t floor_div4(int64_t a) { return a >= 0 ? a / 4 : -((3 - a) / 4); }

static int64_t floor_mod4(int64_t a) { return a - 4 * floor_div4(a); }

static void put_digits4(char *p, unsigned d) {
  p[0] = (char)('0' + d / 1000);
  p[1] = (char)('0' + d / 100 % 10);
  p[2] = (char)('0' + d / 10 % 10);
  p[3] = (char)('0' + d % 10);
}

static int decode_special_numeric(uint16_t sign, orm__arena_t *arena,
                                  char **out) {
  const char *text;
  switch (sign) {
  case NUMERIC_NAN:
    text = "NaN";
    break;
  case NUMERIC_PINF:
    text = "Infinity";
    break;
  case NUMERIC_NINF:
    text = "-Infinity";
    break;
  default:
    return ORM_ETYPE;
  }
  char *s = orm__arena_strndup(arena, text, strlen(text));
  if (s == NULL)
    return ORM_ENOMEM;
  *out = s;
  return 0;
}

int orm__numeric_decode(const char *wire, int len,
                                        orm__arena_t *arena, char **out) {
  if (len < 8)
    return ORM_ETYPE;
  int ndigits = orm__load_i16(wire);
  int weight = orm__load_i16(wire + 2);
  uint16_t sign = orm__load_u16(wire + 4);
  int dscale = orm__load_i16(wire + 6);
  if (ndigits < 0 || len != 8 + 2 * ndigits)
    return ORM_ETYPE;
  if (sign != NUMERIC_POS && sign != NUMERIC_NEG)
    return ndigits == 0 ? decode_special_numeric(sign, arena, out) : ORM_ETYPE;
  if (dscale < 0 || dscale > NUMERIC_DSCALE_MAX)
    return ORM_ETYPE;
  const char *digits = wire + 8;
  for (int i = 0; i < ndigits; i++) {
    if (orm__load_u16(digits + 2 * i) >= NUMERIC_NBASE)
      return ORM_ETYPE;
  }

  /* The fraction is written in whole groups and cut to dscale after. */
  size_t int_groups = weight >= 0 ? (size_t)weight + 1 : 0;
  size_t frac_groups = ((size_t)dscale + 3) / 4;
  size_t size =
      1 + (int_groups > 0 ? int_groups * 4 : 1) + 1 + frac_groups * 4 + 1;
  char *s = orm__arena_alloc(arena, size, 1);
  if (s == NULL)
    return ORM_ENOMEM;

  char *p = s;
  if (sign == NUMERIC_NEG)
    *p++ = '-';
  char *int_start = p;
  for (size_t g = 0; g < int_groups; g++) {
    unsigned d = g < (size_t)ndigits ? orm__load_u16(digits + 2 * g) : 0;
    put_digits4(p, d);
    p += 4;
  }
  if (int_groups == 0) {
    *p++ = '0';
  } else {
    /* The first group is zero-padded (and a value the server did not
     * normalise may lead with zero groups): strip, keeping one digit. */
    char *first = int_start;
    while (first + 1 < p && *first == '0')
      first++;
    size_t n = (size_t)(p - first);
    memmove(int_start, first, n);
    p = int_start + n;
  }
  if (dscale > 0) {
    *p++ = '.';
    for (size_t k = 0; k < frac_groups; k++) {
      int64_t g = (int64_t)weight + 1 + (int64_t)k;
      unsigned d = g >= 0 && g < ndigits ? orm__load_u16(digits + 2 * g) : 0;
      put_digits4(p + 4 * k, d);
    }
    p += dscale;
  }
  *p = '\0';
  *out = s;
  return 0;
}

static bool ascii_ieq(const char *a, const char *b) {
  for (; *a != '\0' && *b != '\0'; a++, b++) {
    char ca = *a >= 'A' && *a <= 'Z' ? (char)(*a - 'A' + 'a') : *a;
    if (ca != *b)
      return false;
  }
  return *a == '\0' && *b == '\0';
}

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

static int put_numeric_header(orm__buf_t *buf, int64_t ndigits, int64_t weight,
                              uint16_t sign, int64_t dscale) {
  int rc = orm__buf_reserve(buf, 8 + 2 * (size_t)ndigits);
  if (rc != 0)
    return rc;
  orm__buf_put_u16(buf, (uint16_t)ndigits);
  orm__buf_put_u16(buf, orm__bits_i16((int16_t)weight));
  orm__buf_put_u16(buf, sign);
  orm__buf_put_u16(buf, (uint16_t)dscale);
  return 0;
}

int orm__numeric_encode(const char *s, orm__buf_t *buf) {
  if (s == NULL)
    return ORM_EINVAL;
  const char *p = s;
  bool negative = false;
  bool has_sign = false;
  if (*p == '+' || *p == '-') {
    negative = *p == '-';
    has_sign = true;
    p++;
  }
  if (!has_sign && ascii_ieq(p, "nan"))
    return put_numeric_header(buf, 0, 0, NUMERIC_NAN, 0);
  if (ascii_ieq(p, "infinity") || ascii_ieq(p, "inf"))
    return put_numeric_header(buf, 0, 0, negative ? NUMERIC_NINF : NUMERIC_PINF,
                              0);

  /* The mantissa's digits, read as one string D with the decimal point
   * `point` digits from its start; digit j of D has exponent point-1-j. */
  const char *mantissa = p;
  int64_t ndig = 0;
  int64_t frac = 0;
  int64_t lead = -1;
  int64_t trail = -1;
  bool seen_point = false;
  for (;; p++) {
    if (is_digit(*p)) {
      if (*p != '0') {
        if (lead < 0)
          lead = ndig;
        trail = ndig;
      }
      ndig++;
      if (seen_point)
        frac++;
      if (ndig > INT32_MAX)
        return ORM_ERANGE;
    } else if (*p == '.' && !seen_point) {
      seen_point = true;
    } else {
      break;
    }
  }
  if (ndig == 0)
    return ORM_EINVAL;

  int64_t exponent = 0;
  if (*p == 'e' || *p == 'E') {
    p++;
    bool exp_negative = false;
    if (*p == '+' || *p == '-')
      exp_negative = *p++ == '-';
    if (!is_digit(*p))
      return ORM_EINVAL;
    /* Saturate: anything this large fails the range checks below anyway. */
    for (; is_digit(*p); p++) {
      if (exponent < INT64_C(1000000000))
        exponent = exponent * 10 + (*p - '0');
    }
    if (exp_negative)
      exponent = -exponent;
  }
  if (*p != '\0')
    return ORM_EINVAL;

  int64_t dscale = frac - exponent;
  if (dscale < 0)
    dscale = 0;
  if (dscale > NUMERIC_DSCALE_MAX)
    return ORM_ERANGE;
  if (lead < 0)
    return put_numeric_header(buf, 0, 0, NUMERIC_POS, dscale);

  int64_t point = (ndig - frac) + exponent;
  int64_t weight = floor_div4(point - 1 - lead);
  int64_t ndigits = weight - floor_div4(point - 1 - trail) + 1;
  if (weight < INT16_MIN || weight > INT16_MAX || ndigits > INT16_MAX)
    return ORM_ERANGE;
  int rc = put_numeric_header(buf, ndigits, weight,
                              negative ? NUMERIC_NEG : NUMERIC_POS, dscale);
  if (rc != 0)
    return rc;

  static const unsigned pow10[4] = {1, 10, 100, 1000};
  int64_t j = 0;
  int64_t group = 0;
  unsigned acc = 0;
  for (p = mantissa; j <= trail; p++) {
    if (*p == '.')
      continue;
    if (j >= lead) {
      int64_t e = point - 1 - j;
      int64_t g = weight - floor_div4(e);
      if (g != group) {
        orm__buf_put_u16(buf, (uint16_t)acc);
        group = g;
        acc = 0;
      }
      acc += (unsigned)(*p - '0') * pow10[floor_mod4(e)];
    }
    j++;
  }
  orm__buf_put_u16(buf, (uint16_t)acc);
  return 0;
}

