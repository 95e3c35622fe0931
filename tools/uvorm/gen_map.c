/* SPDX-License-Identifier: MIT */
/* `uvorm gen`: names and types, without a server
 * (tests/unit/test_gen_map.c). */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include <uvorm/model.h>

#include "gen.h"

bool gen_is_c_keyword(const char *s) {
  static const char *const words[] = {
      "auto",      "break",    "case",     "char",          "const",
      "continue",  "default",  "do",       "double",        "else",
      "enum",      "extern",   "float",    "for",           "goto",
      "if",        "inline",   "int",      "long",          "register",
      "restrict",  "return",   "short",    "signed",        "sizeof",
      "static",    "struct",   "switch",   "typedef",       "union",
      "unsigned",  "void",     "volatile", "while",         "_Alignas",
      "_Alignof",  "_Atomic",  "_Bool",    "_Complex",      "_Generic",
      "_Imaginary", "_Noreturn", "_Static_assert", "_Thread_local",
      /* macros of the standard headers the generated code includes (and
       * <uv.h> through <uvorm/model.h>), and of GNU dialects */
      "bool",      "true",     "false",    "NULL",          "offsetof",
      "alignas",   "alignof",  "noreturn", "static_assert", "errno",
      "stdin",     "stdout",   "stderr",   "EOF",           "assert",
      "linux",     "unix",
      /* the parameters of the X-macro lists: FIELDS(X), RELATIONS(R) */
      "X",         "R",
  };
  for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
    if (strcmp(s, words[i]) == 0)
      return true;
  return false;
}

int gen_c_ident(const char *name, char *out, size_t n) {
  size_t len = strlen(name), w = 0;
  const char *lead = "";
  if (len == 0)
    lead = "c_";
  else if (isdigit((unsigned char)name[0]))
    lead = "c_";
  size_t need = strlen(lead) + len + 2;
  if (need > n)
    return -1;
  for (const char *p = lead; *p; p++)
    out[w++] = *p;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)name[i];
    out[w++] = (isalnum(c) && c < 128) || c == '_' ? (char)c : '_';
  }
  out[w] = '\0';
  /* The generated struct has a member of its own; keywords are taken. */
  if (gen_is_c_keyword(out) || strcmp(out, "orm_nulls") == 0) {
    out[w++] = '_';
    out[w] = '\0';
  }
  return strcmp(out, name) != 0;
}

static bool ends_with(const char *s, size_t len, const char *tail) {
  size_t t = strlen(tail);
  return len >= t && memcmp(s + len - t, tail, t) == 0;
}

void gen_singular(const char *plural, char *out, size_t n) {
  snprintf(out, n, "%s", plural);
  size_t len = strlen(out);
  /* The last word of a snake_case name. */
  const char *us = strrchr(out, '_');
  size_t word = us != NULL ? len - (size_t)(us + 1 - out) : len;
  if (word <= 3 || ends_with(out, len, "ss") || ends_with(out, len, "us") ||
      ends_with(out, len, "is") || ends_with(out, len, "news") ||
      ends_with(out, len, "series") || ends_with(out, len, "data"))
    return;
  if (ends_with(out, len, "ies")) {
    out[len - 3] = 'y';
    out[len - 2] = '\0';
  } else if (ends_with(out, len, "ouses") || ends_with(out, len, "auses") ||
             ends_with(out, len, "aches")) {
    out[len - 1] = '\0'; /* houses, causes, caches */
  } else if (ends_with(out, len, "sses") || ends_with(out, len, "xes") ||
             ends_with(out, len, "ches") || ends_with(out, len, "shes") ||
             ends_with(out, len, "zzes") || ends_with(out, len, "uses")) {
    out[len - 2] = '\0'; /* addresses, boxes, matches, statuses */
  } else if (ends_with(out, len, "s")) {
    out[len - 1] = '\0';
  }
}

void gen_upper(const char *s, char *out, size_t n) {
  size_t w = 0;
  for (; *s != '\0' && w + 1 < n; s++) {
    unsigned char c = (unsigned char)*s;
    out[w++] = isalnum(c) && c < 128 ? (char)toupper(c) : '_';
  }
  out[w] = '\0';
}

void gen_rel_name(const char *column, char *out, size_t n) {
  size_t len = strlen(column);
  if (len > 3 && ends_with(column, len, "_id"))
    snprintf(out, n, "%.*s", (int)(len - 3), column);
  else
    snprintf(out, n, "%s", column);
}

int gen_map_type(const char *typname, char typtype, const char *elem,
                 const char **ctype) {
  static const struct {
    const char *pg;
    int type;
    const char *ctype;
  } scalars[] = {
      {"int2", ORM_T_INT2, "int16_t"},
      {"int4", ORM_T_INT4, "int32_t"},
      {"int8", ORM_T_INT8, "int64_t"},
      {"float4", ORM_T_FLOAT4, "float"},
      {"float8", ORM_T_FLOAT8, "double"},
      {"bool", ORM_T_BOOL, "bool"},
      {"text", ORM_T_TEXT, "const char *"},
      {"varchar", ORM_T_TEXT, "const char *"},
      {"bpchar", ORM_T_TEXT, "const char *"},
      {"name", ORM_T_TEXT, "const char *"},
      {"json", ORM_T_JSON, "const char *"},
      {"jsonb", ORM_T_JSONB, "const char *"},
      {"bytea", ORM_T_BYTEA, "orm_bytes_t"},
      {"timestamp", ORM_T_TIMESTAMP, "int64_t"},
      {"timestamptz", ORM_T_TIMESTAMPTZ, "int64_t"},
      {"date", ORM_T_DATE, "int32_t"},
      {"uuid", ORM_T_UUID, "orm_uuid_t"},
      {"numeric", ORM_T_NUMERIC, "const char *"},
  };
  *ctype = NULL;
  if (elem != NULL) {
    if (strcmp(elem, "int2") == 0 || strcmp(elem, "int4") == 0 ||
        strcmp(elem, "int8") == 0) {
      *ctype = "orm_int_array_t";
      return ORM_T_INT_ARRAY;
    }
    if (strcmp(elem, "text") == 0 || strcmp(elem, "varchar") == 0 ||
        strcmp(elem, "bpchar") == 0 || strcmp(elem, "name") == 0) {
      *ctype = "orm_text_array_t";
      return ORM_T_TEXT_ARRAY;
    }
    return 0;
  }
  if (typtype == 'e') {
    *ctype = "const char *";
    return ORM_T_ENUM;
  }
  if (typtype != 'b')
    return 0;
  for (size_t i = 0; i < sizeof scalars / sizeof scalars[0]; i++)
    if (strcmp(typname, scalars[i].pg) == 0) {
      *ctype = scalars[i].ctype;
      return scalars[i].type;
    }
  return 0;
}

const char *gen_type_name(int type) {
  static const char *const names[] = {
      [ORM_T_INT2] = "ORM_T_INT2",           [ORM_T_INT4] = "ORM_T_INT4",
      [ORM_T_INT8] = "ORM_T_INT8",           [ORM_T_FLOAT4] = "ORM_T_FLOAT4",
      [ORM_T_FLOAT8] = "ORM_T_FLOAT8",       [ORM_T_BOOL] = "ORM_T_BOOL",
      [ORM_T_TEXT] = "ORM_T_TEXT",           [ORM_T_ENUM] = "ORM_T_ENUM",
      [ORM_T_JSON] = "ORM_T_JSON",           [ORM_T_JSONB] = "ORM_T_JSONB",
      [ORM_T_BYTEA] = "ORM_T_BYTEA",         [ORM_T_TIMESTAMP] = "ORM_T_TIMESTAMP",
      [ORM_T_TIMESTAMPTZ] = "ORM_T_TIMESTAMPTZ", [ORM_T_DATE] = "ORM_T_DATE",
      [ORM_T_UUID] = "ORM_T_UUID",           [ORM_T_NUMERIC] = "ORM_T_NUMERIC",
      [ORM_T_INT_ARRAY] = "ORM_T_INT_ARRAY", [ORM_T_TEXT_ARRAY] = "ORM_T_TEXT_ARRAY",
  };
  return type > 0 && type < ORM_T_COUNT_ ? names[type] : "?";
}

bool gen_reserved_type(const char *name) {
  static const char *const taken[] = {
      "size",    "ssize",    "time",    "mode",     "off",      "pid",
      "uid",     "gid",      "clock",   "clockid",  "dev",      "ino",
      "nlink",   "blksize",  "blkcnt",  "key",      "id",       "timer",
      "suseconds", "useconds", "socklen", "sa_family", "wchar", "wint",
      "ptrdiff", "max_align", "intptr", "uintptr",  "intmax",   "uintmax",
      "int8",    "int16",    "int32",   "int64",    "uint8",    "uint16",
      "uint32",  "uint64",   "fpos",    "sig_atomic", "div",    "ldiv",
      "lldiv",   "mbstate",  "locale",  "fenv",     "fexcept",  "float",
      "double",  "char16",   "char32",  "errno",    "rsize",    "regoff",
  };
  for (size_t i = 0; i < sizeof taken / sizeof taken[0]; i++)
    if (strcmp(name, taken[i]) == 0)
      return true;
  /* The typedefs of the headers the generated code includes. */
  return strncmp(name, "orm_", 4) == 0 || strncmp(name, "uv_", 3) == 0 ||
         strncmp(name, "pthread_", 8) == 0 || strncmp(name, "int_", 4) == 0 ||
         strncmp(name, "uint_", 5) == 0;
}
