/* SPDX-License-Identifier: MIT */
/* Models' validation rules and hooks: checked with the descriptor, run
 * before every write (nothing is sent for a row they refuse) and after
 * every read. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "model/model_int.h"
#include "model/validate.h"

static bool is_string(orm_type_t t) {
  return t == ORM_T_TEXT || t == ORM_T_ENUM || t == ORM_T_JSON ||
         t == ORM_T_JSONB || t == ORM_T_NUMERIC;
}

static bool has_length(orm_type_t t) {
  return is_string(t) || t == ORM_T_BYTEA || t == ORM_T_INT_ARRAY ||
         t == ORM_T_TEXT_ARRAY;
}

static bool has_range(orm_type_t t) {
  return t == ORM_T_INT2 || t == ORM_T_INT4 || t == ORM_T_INT8 ||
         t == ORM_T_FLOAT4 || t == ORM_T_FLOAT8 || t == ORM_T_DATE ||
         t == ORM_T_TIMESTAMP || t == ORM_T_TIMESTAMPTZ;
}

int orm__model_check_hooks(const orm_model_t *model, orm_model_error_t *err) {
  const orm_model_hooks_t *h = model->hooks;
  if (h == NULL)
    return 0;
  if (h->nrules > 0 && h->rules == NULL) {
    orm__model_error_set(err, ORM_EMODEL, -1, -1,
                         "table \"%s\": %zu rules and no array", model->table,
                         h->nrules);
    return ORM_EMODEL;
  }
  for (size_t i = 0; i < h->nrules; i++) {
    const orm_rule_t *r = &h->rules[i];
    int f = r->column != NULL ? orm_model_field(model, r->column) : -1;
    const char *why = NULL;
    if (f < 0)
      why = "names no column of the model";
    else if (r->kind == ORM_RULE_NOT_EMPTY && !has_length(model->fields[f].type))
      why = "NOT_EMPTY is for strings, bytea and arrays";
    else if (r->kind == ORM_RULE_LENGTH && (!has_length(model->fields[f].type) ||
                                            r->min < 0 || r->min > r->max))
      why = "LENGTH is for strings, bytea and arrays, with 0 <= min <= max";
    else if (r->kind == ORM_RULE_RANGE &&
             (!has_range(model->fields[f].type) || r->min > r->max))
      why = "RANGE is for numbers, dates and timestamps, with min <= max";
    else if (r->kind == ORM_RULE_CHECK && r->check == NULL)
      why = "CHECK needs a function";
    else if (r->kind < ORM_RULE_NOT_EMPTY || r->kind > ORM_RULE_CHECK)
      why = "is of no known kind";
    if (why != NULL) {
      orm__model_error_set(err, ORM_EMODEL, f, -1, "table \"%s\": rule %zu (%s) %s",
                           model->table, i, r->column != NULL ? r->column : "NULL",
                           why);
      return ORM_EMODEL;
    }
  }
  return 0;
}

/* The length of a field's value: bytes or elements. */
static size_t length_of(orm_type_t t, const void *member) {
  if (is_string(t)) {
    const char *s;
    memcpy(&s, member, sizeof s);
    return s != NULL ? strlen(s) : 0;
  }
  if (t == ORM_T_BYTEA)
    return ((const orm_bytes_t *)member)->len;
  if (t == ORM_T_INT_ARRAY)
    return ((const orm_int_array_t *)member)->len;
  return ((const orm_text_array_t *)member)->len;
}

/* A numeric member: whole (ints, dates, timestamps) or not (floats). */
typedef struct {
  bool is_float;
  int64_t whole;
  double real;
} number_t;

static number_t number_of(orm_type_t t, const void *member) {
  number_t n = {0};
  switch (t) {
  case ORM_T_INT2: { int16_t x; memcpy(&x, member, sizeof x); n.whole = x; break; }
  case ORM_T_INT4:
  case ORM_T_DATE: { int32_t x; memcpy(&x, member, sizeof x); n.whole = x; break; }
  case ORM_T_FLOAT4: { float x; memcpy(&x, member, sizeof x); n.real = x; n.is_float = true; break; }
  case ORM_T_FLOAT8: { double x; memcpy(&x, member, sizeof x); n.real = x; n.is_float = true; break; }
  default: memcpy(&n.whole, member, sizeof n.whole); break; /* INT8, timestamps */
  }
  return n;
}

static int refuse(orm_refusal_t *why, int field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int refuse(orm_refusal_t *why, int field, const char *fmt, ...) {
  why->field = field;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why->message, sizeof why->message, fmt, ap);
  va_end(ap);
  return ORM_EVALIDATION;
}

int orm__model_validate(const orm_model_t *model, const void *row,
                        uint64_t fields, orm_refusal_t *why) {
  const orm_model_hooks_t *h = model->hooks;
  uint64_t nulls = orm__row_nulls(model, row);
  for (size_t i = 0; h != NULL && i < h->nrules; i++) {
    const orm_rule_t *r = &h->rules[i];
    int f = orm_model_field(model, r->column);
    if (f < 0 || !(fields & (UINT64_C(1) << f)))
      continue;
    const orm_field_t *fd = &model->fields[f];
    const void *member = (const char *)row + fd->offset;
    bool null = (nulls >> f) & 1;
    if (is_string(fd->type) && !null) {
      const char *s;
      memcpy(&s, member, sizeof s);
      null = s == NULL;
    }
    const char *m = r->message;
    switch (r->kind) {
    case ORM_RULE_NOT_EMPTY:
      if (null || length_of(fd->type, member) == 0)
        return refuse(why, f, "%s", m != NULL ? m : "must not be empty");
      break;
    case ORM_RULE_LENGTH: {
      if (null)
        break;
      size_t n = length_of(fd->type, member);
      if ((int64_t)n < r->min || (int64_t)n > r->max)
        return m != NULL ? refuse(why, f, "%s", m)
                         : refuse(why, f, "length %zu is not within %" PRId64
                                          "..%" PRId64, n, r->min, r->max);
      break;
    }
    case ORM_RULE_RANGE: {
      if (null)
        break;
      number_t v = number_of(fd->type, member);
      /* A float compares as a double (NaN is never within); an int exactly. */
      bool out = v.is_float ? !(v.real >= (double)r->min && v.real <= (double)r->max)
                            : v.whole < r->min || v.whole > r->max;
      if (!out)
        break;
      if (m != NULL)
        return refuse(why, f, "%s", m);
      return v.is_float ? refuse(why, f, "%g is not within %" PRId64 "..%" PRId64,
                                 v.real, r->min, r->max)
                        : refuse(why, f, "%" PRId64 " is not within %" PRId64 "..%" PRId64,
                                 v.whole, r->min, r->max);
    }
    case ORM_RULE_CHECK:
      if (null)
        break;
      if (!r->check(member, h->data))
        return refuse(why, f, "%s", m != NULL ? m : "failed its check");
      break;
    }
  }
  return 0;
}

int orm__model_before_insert(const orm_model_t *model, void *row,
                             uint64_t fields, orm_refusal_t *why) {
  const orm_model_hooks_t *h = model->hooks;
  if (h == NULL)
    return 0;
  why->field = -1;
  why->message[0] = '\0';
  if (h->before_insert != NULL && h->before_insert(row, why, h->data) != 0) {
    if (why->message[0] == '\0')
      snprintf(why->message, sizeof why->message, "refused by before_insert");
    return ORM_EVALIDATION;
  }
  return orm__model_validate(model, row, fields, why);
}

int orm__model_before_update(const orm_model_t *model, void *row,
                             uint64_t fields, uint64_t writes,
                             orm_refusal_t *why) {
  const orm_model_hooks_t *h = model->hooks;
  if (h == NULL)
    return 0;
  why->field = -1;
  why->message[0] = '\0';
  if (h->before_update != NULL && h->before_update(row, fields, why, h->data) != 0) {
    if (why->message[0] == '\0')
      snprintf(why->message, sizeof why->message, "refused by before_update");
    return ORM_EVALIDATION;
  }
  return orm__model_validate(model, row, writes, why);
}

int orm__model_before_delete(const orm_model_t *model, const orm_param_t *key,
                             orm_refusal_t *why) {
  const orm_model_hooks_t *h = model->hooks;
  if (h == NULL || h->before_delete == NULL)
    return 0;
  why->field = -1;
  why->message[0] = '\0';
  if (h->before_delete(key, why, h->data) != 0) {
    if (why->message[0] == '\0')
      snprintf(why->message, sizeof why->message, "refused by before_delete");
    return ORM_EVALIDATION;
  }
  return 0;
}

void orm__model_after_load(const orm_model_t *model, void *rows, size_t n) {
  const orm_model_hooks_t *h = model->hooks;
  if (h == NULL || h->after_load == NULL)
    return;
  for (size_t i = 0; i < n; i++)
    h->after_load((char *)rows + i * model->struct_size, h->data);
}
