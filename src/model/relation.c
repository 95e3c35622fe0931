/* SPDX-License-Identifier: MIT */
/* Relations: resolving descriptors, include paths, keys and key maps. */
#include <stdalign.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "base/alloc.h"
#include "base/wire.h"

#include "model/codec.h"
#include "model/model_int.h"
#include "model/relation.h"

#define DEFECT(...)                                                            \
  do {                                                                         \
    orm__model_error_set(err, ORM_EMODEL, -1, -1, __VA_ARGS__);                \
    return ORM_EMODEL;                                                         \
  } while (0)

static bool key_type_ok(orm_type_t type) {
  return type == ORM_T_INT2 || type == ORM_T_INT4 || type == ORM_T_INT8 ||
         type == ORM_T_UUID || type == ORM_T_TEXT;
}

/* Field `column` of `model`, or -1. */
static int field_of(const orm_model_t *model, const char *column) {
  if (column == NULL)
    return -1;
  int f = orm_model_field(model, column);
  return f < 0 ? -1 : f;
}

/* The declared order: "col [ASC|DESC], ...", then the primary key. */
static int parse_order(orm__rel_t *r, orm_model_error_t *err) {
  const orm_model_t *t = r->target;
  const char *s = r->rel->order;
  r->norder = 0;
  while (s != NULL && *s != '\0') {
    while (*s == ' ')
      s++;
    const char *name = s;
    while (*s != '\0' && *s != ' ' && *s != ',')
      s++;
    size_t len = (size_t)(s - name);
    while (*s == ' ')
      s++;
    bool desc = false;
    if (strncasecmp(s, "desc", 4) == 0 &&
        (s[4] == '\0' || s[4] == ' ' || s[4] == ',')) {
      desc = true;
      s += 4;
    } else if (strncasecmp(s, "asc", 3) == 0 &&
               (s[3] == '\0' || s[3] == ' ' || s[3] == ',')) {
      s += 3;
    }
    while (*s == ' ')
      s++;
    if (*s == ',')
      s++;
    else if (*s != '\0')
      len = 0; /* junk after the column */
    int f = -1;
    for (size_t i = 0; len > 0 && i < t->nfields; i++)
      if (strncmp(t->fields[i].column, name, len) == 0 &&
          t->fields[i].column[len] == '\0')
        f = (int)i;
    if (f < 0 || r->norder == ORM__REL_MAX_ORDER ||
        t->fields[f].type == ORM_T_JSON)
      DEFECT("relation \"%s\": order \"%s\" is not \"column [ASC|DESC], "
             "...\" over at most %d orderable columns of table \"%s\"",
             r->rel->name, r->rel->order, ORM__REL_MAX_ORDER, t->table);
    r->order[r->norder] = (uint8_t)f;
    r->desc[r->norder] = desc;
    r->norder++;
  }
  bool has_pk = false;
  for (size_t i = 0; i < r->norder; i++)
    has_pk |= r->order[i] == r->target_pk;
  if (!has_pk) {
    r->order[r->norder] = (uint8_t)r->target_pk;
    r->desc[r->norder] = false;
    r->norder++;
  }
  return 0;
}

static bool rel_name_ok(const char *name) {
  if (name == NULL || name[0] == '\0')
    return false;
  size_t len = strnlen(name, ORM_MODEL_MAX_NAME + 1);
  if (len > ORM_MODEL_MAX_NAME)
    return false;
  for (size_t i = 0; i < len; i++) {
    char c = name[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
          (i > 0 && c >= '0' && c <= '9')))
      return false;
  }
  return true;
}

int orm__rel_resolve(orm__rel_t *r, const orm_model_t *owner, size_t index,
                     orm_model_error_t *err) {
  memset(r, 0, sizeof *r);
  const orm_relation_t *rel = &owner->relations[index];
  r->rel = rel;
  r->owner = owner;
  if (!rel_name_ok(rel->name))
    DEFECT("table \"%s\": relation %zu has no name, or one that is not an "
           "identifier of at most %d bytes",
           owner->table, index, ORM_MODEL_MAX_NAME);
  if (rel->kind < ORM_BELONGS_TO || rel->kind > ORM_MANY_TO_MANY)
    DEFECT("relation \"%s\": invalid kind %d", rel->name, (int)rel->kind);
  const orm_model_t *target = rel->target != NULL ? rel->target() : NULL;
  orm_model_error_t sub = {0};
  if (target == NULL || orm__model_check_fields(target, &sub) != 0)
    DEFECT("relation \"%s\": the target model is missing or invalid%s%s",
           rel->name, sub.message[0] ? ": " : "", sub.message);
  r->target = target;
  int owner_pk = orm_model_pk(owner);
  r->target_pk = orm_model_pk(target);
  if (owner_pk < 0 || r->target_pk < 0)
    DEFECT("relation \"%s\": table \"%s\" has no primary key (a view "
           "without one has no relations)",
           rel->name, owner_pk < 0 ? owner->table : target->table);
  const char *key_model = NULL;
  switch (rel->kind) {
  case ORM_BELONGS_TO:
    r->owner_key = field_of(owner, rel->key);
    r->target_key = r->target_pk;
    key_model = owner->table;
    break;
  case ORM_HAS_ONE:
  case ORM_HAS_MANY:
    r->owner_key = owner_pk;
    r->target_key = field_of(target, rel->key);
    key_model = target->table;
    break;
  case ORM_MANY_TO_MANY: {
    r->owner_key = owner_pk;
    r->target_key = r->target_pk;
    const orm_model_t *join =
        rel->through.model != NULL ? rel->through.model() : NULL;
    if (rel->through.model != NULL &&
        (join == NULL || orm__model_check_fields(join, NULL) != 0))
      DEFECT("relation \"%s\": the join table's model is missing or invalid",
             rel->name);
    r->join_schema = join != NULL ? join->schema : rel->through.schema;
    r->join_table = join != NULL ? join->table : rel->through.table;
    r->join_from = rel->through.from;
    r->join_to = rel->through.to;
    if (r->join_table == NULL || r->join_table[0] == '\0' ||
        r->join_from == NULL || r->join_from[0] == '\0' ||
        r->join_to == NULL || r->join_to[0] == '\0' ||
        strlen(r->join_table) > ORM_MODEL_MAX_NAME ||
        strlen(r->join_from) > ORM_MODEL_MAX_NAME ||
        strlen(r->join_to) > ORM_MODEL_MAX_NAME)
      DEFECT("relation \"%s\": a many-to-many relation needs a join table "
             "and its two columns",
             rel->name);
    if (join != NULL) {
      int from = field_of(join, r->join_from), to = field_of(join, r->join_to);
      if (from < 0 || to < 0)
        DEFECT("relation \"%s\": table \"%s\" has no column \"%s\"", rel->name,
               join->table, from < 0 ? r->join_from : r->join_to);
      if (join->fields[from].type != owner->fields[owner_pk].type ||
          join->fields[to].type != target->fields[r->target_pk].type)
        DEFECT("relation \"%s\": the columns of table \"%s\" do not have the "
               "types of the keys they hold",
               rel->name, join->table);
    }
    break;
  }
  }
  if (r->owner_key < 0 || r->target_key < 0)
    DEFECT("relation \"%s\": table \"%s\" has no key column \"%s\"", rel->name,
           key_model, rel->key != NULL ? rel->key : "(none)");
  /* A many-to-many relation joins two primary keys of any key types. */
  orm_type_t a = owner->fields[r->owner_key].type;
  orm_type_t b = target->fields[r->target_key].type;
  if ((rel->kind != ORM_MANY_TO_MANY && a != b) || !key_type_ok(a) ||
      !key_type_ok(b))
    DEFECT("relation \"%s\": keys \"%s\" (%s) and \"%s\" (%s) must be "
           "int2, int4, int8, uuid or text, and of one type but through a "
           "join table",
           rel->name, owner->fields[r->owner_key].column,
           orm__codec_type_name(a), target->fields[r->target_key].column,
           orm__codec_type_name(b));
  r->key_type = a;
  return parse_order(r, err);
}

/* ---- include paths --------------------------------------------------------- */

/* The relation of `model` named by [name, name + len), or -1. */
static int relation_named(const orm_model_t *model, const char *name,
                          size_t len) {
  for (size_t i = 0; i < model->nrelations; i++) {
    const char *n = model->relations[i].name;
    if (n != NULL && strncmp(n, name, len) == 0 && n[len] == '\0')
      return (int)i;
  }
  return -1;
}

/* Adds one dotted path [s, end) to `inc`. */
static int add_path(orm__includes_t *inc, const char *s, const char *end) {
  while (s < end && *s == ' ')
    s++;
  while (end > s && end[-1] == ' ')
    end--;
  /* Well-formed first: names of letters, digits and '_' between dots. */
  bool empty = true;
  for (const char *c = s; c <= end; c++) {
    if (c == end || *c == '.') {
      if (empty)
        return ORM_EINVAL;
      empty = true;
    } else if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
               (*c >= '0' && *c <= '9') || *c == '_') {
      empty = false;
    } else {
      return ORM_EINVAL;
    }
  }
  int parent = -1;
  const orm_model_t *model = inc->root;
  while (s <= end) {
    const char *dot = memchr(s, '.', (size_t)(end - s));
    const char *stop = dot != NULL ? dot : end;
    size_t len = (size_t)(stop - s);
    if (len == 0)
      return ORM_EINVAL;
    int ri = relation_named(model, s, len);
    if (ri < 0)
      return ORM_ENORELATION;
    const orm_relation_t *rel = &model->relations[ri];
    /* The same relation twice on one path goes round a cycle. */
    for (int p = parent; p >= 0; p = inc->nodes[p].parent)
      if (inc->nodes[p].rel.rel == rel)
        return ORM_EINVAL;
    int node = -1;
    for (size_t i = 0; i < inc->n; i++)
      if (inc->nodes[i].parent == parent && inc->nodes[i].rel.rel == rel)
        node = (int)i;
    if (node < 0) {
      if (inc->n == ORM_QUERY_MAX_INCLUDES)
        return ORM_E2BIG;
      orm__include_t *n = &inc->nodes[inc->n];
      if (orm__rel_resolve(&n->rel, model, (size_t)ri, NULL) != 0)
        return ORM_EMODEL;
      n->parent = parent;
      node = (int)inc->n++;
    }
    parent = node;
    model = inc->nodes[node].rel.target;
    if (dot == NULL)
      break;
    s = dot + 1;
  }
  return 0;
}

int orm__includes_add(orm__includes_t *inc, const char *paths) {
  if (inc == NULL || paths == NULL)
    return ORM_EINVAL;
  size_t before = inc->n;
  const char *s = paths;
  for (;;) {
    const char *comma = strchr(s, ',');
    const char *end = comma != NULL ? comma : s + strlen(s);
    int rc = add_path(inc, s, end);
    if (rc != 0) {
      inc->n = before;
      return rc;
    }
    if (comma == NULL)
      return 0;
    s = comma + 1;
  }
}

/* ---- keys ------------------------------------------------------------------- */

static uint64_t mix(uint64_t h) {
  h ^= h >> 33;
  h *= UINT64_C(0xff51afd7ed558ccd);
  h ^= h >> 33;
  h *= UINT64_C(0xc4ceb9fe1a85ec53);
  h ^= h >> 33;
  return h;
}

static uint64_t hash_bytes(const void *p, size_t len) {
  const unsigned char *b = p;
  uint64_t h = UINT64_C(0xcbf29ce484222325);
  for (size_t i = 0; i < len; i++)
    h = (h ^ b[i]) * UINT64_C(0x100000001b3);
  return mix(h);
}

static void key_int(orm__key_t *key, int64_t v) {
  key->i = v;
  key->bytes = NULL;
  key->len = 0;
  key->hash = mix((uint64_t)v);
}

static void key_bytes(orm__key_t *key, const void *bytes, size_t len) {
  key->i = 0;
  key->bytes = bytes;
  key->len = len;
  key->hash = hash_bytes(bytes, len);
}

bool orm__key_of_field(const orm_model_t *model, const void *row, size_t f,
                       orm__key_t *key) {
  const orm_field_t *field = &model->fields[f];
  if ((orm__row_nulls(model, row) >> f) & 1u)
    return false;
  const char *p = (const char *)row + field->offset;
  switch (field->type) {
  case ORM_T_INT2: {
    int16_t v;
    memcpy(&v, p, sizeof v);
    key_int(key, v);
    return true;
  }
  case ORM_T_INT4: {
    int32_t v;
    memcpy(&v, p, sizeof v);
    key_int(key, v);
    return true;
  }
  case ORM_T_INT8: {
    int64_t v;
    memcpy(&v, p, sizeof v);
    key_int(key, v);
    return true;
  }
  case ORM_T_UUID:
    key_bytes(key, p, sizeof(orm_uuid_t));
    return true;
  default: { /* ORM_T_TEXT */
    const char *s;
    memcpy(&s, p, sizeof s);
    if (s == NULL)
      return false;
    key_bytes(key, s, strlen(s));
    return true;
  }
  }
}

int orm__key_of_wire(orm_type_t type, const char *wire, int len,
                     orm__arena_t *arena, orm__key_t *key) {
  switch (type) {
  case ORM_T_INT2:
    if (len != 2)
      return ORM_ETYPE;
    key_int(key, orm__load_i16(wire));
    return 0;
  case ORM_T_INT4:
    if (len != 4)
      return ORM_ETYPE;
    key_int(key, orm__load_i32(wire));
    return 0;
  case ORM_T_INT8:
    if (len != 8)
      return ORM_ETYPE;
    key_int(key, orm__load_i64(wire));
    return 0;
  case ORM_T_UUID: {
    if (len != 16)
      return ORM_ETYPE;
    void *copy = orm__arena_alloc(arena, 16, 1);
    if (copy == NULL)
      return ORM_ENOMEM;
    memcpy(copy, wire, 16);
    key_bytes(key, copy, 16);
    return 0;
  }
  default: {
    char *copy = orm__arena_strndup(arena, wire, (size_t)len);
    if (copy == NULL)
      return ORM_ENOMEM;
    key_bytes(key, copy, (size_t)len);
    return 0;
  }
  }
}

int orm__keys_encode(orm_type_t type, const orm__key_t *keys, size_t n,
                     orm__buf_t *buf, uint32_t *oid) {
  if (n > INT32_MAX)
    return ORM_ERANGE;
  uint32_t elem;
  switch (type) {
  case ORM_T_INT2:
    elem = ORM__OID_INT2;
    *oid = ORM__OID_INT2_ARRAY;
    break;
  case ORM_T_INT4:
    elem = ORM__OID_INT4;
    *oid = ORM__OID_INT4_ARRAY;
    break;
  case ORM_T_INT8:
    elem = ORM__OID_INT8;
    *oid = ORM__OID_INT8_ARRAY;
    break;
  case ORM_T_UUID:
    elem = ORM__OID_UUID;
    *oid = ORM__OID_UUID_ARRAY;
    break;
  default:
    elem = ORM__OID_TEXT;
    *oid = ORM__OID_TEXT_ARRAY;
    break;
  }
  size_t start = buf->len;
  if (orm__buf_reserve(buf, 20) != 0)
    return ORM_ENOMEM;
  orm__buf_put_u32(buf, 1);    /* dimensions */
  orm__buf_put_u32(buf, 0);    /* no NULLs */
  orm__buf_put_u32(buf, elem); /* element type */
  orm__buf_put_u32(buf, (uint32_t)n);
  orm__buf_put_u32(buf, 1); /* lower bound */
  for (size_t i = 0; i < n; i++) {
    const orm__key_t *k = &keys[i];
    size_t len = k->bytes != NULL ? k->len
                 : type == ORM_T_INT2 ? 2
                 : type == ORM_T_INT4 ? 4
                                      : 8;
    if (len > INT32_MAX || orm__buf_reserve(buf, 4 + len) != 0) {
      buf->len = start;
      return len > INT32_MAX ? ORM_ERANGE : ORM_ENOMEM;
    }
    orm__buf_put_u32(buf, (uint32_t)len);
    if (k->bytes != NULL)
      orm__buf_append(buf, k->bytes, len);
    else if (len == 2)
      orm__buf_put_u16(buf, (uint16_t)k->i);
    else if (len == 4)
      orm__buf_put_u32(buf, (uint32_t)k->i);
    else
      orm__buf_put_u64(buf, (uint64_t)k->i);
  }
  return 0;
}

/* ---- key maps -------------------------------------------------------------- */

struct orm__key_slot_s {
  orm__key_t key;
  void *row; /* NULL: the slot is free */
};

int orm__keymap_init(orm__keymap_t *map, size_t n) {
  size_t cap = 16;
  while (cap < n * 2) {
    if (cap > SIZE_MAX / 4 / sizeof *map->slots)
      return ORM_ENOMEM;
    cap *= 2;
  }
  map->slots = orm__calloc(cap, sizeof *map->slots);
  if (map->slots == NULL)
    return ORM_ENOMEM;
  map->mask = cap - 1;
  return 0;
}

void orm__keymap_free(orm__keymap_t *map) {
  orm__free(map->slots);
  map->slots = NULL;
}

static bool key_eq(const orm__key_t *a, const orm__key_t *b) {
  if (a->hash != b->hash)
    return false;
  if (a->bytes == NULL || b->bytes == NULL)
    return a->bytes == b->bytes && a->i == b->i;
  return a->len == b->len && memcmp(a->bytes, b->bytes, a->len) == 0;
}

/* The map never holds more than half its capacity: probing ends. */
void orm__keymap_put(orm__keymap_t *map, const orm__key_t *key, void *row) {
  size_t i = (size_t)key->hash & map->mask;
  while (map->slots[i].row != NULL)
    i = (i + 1) & map->mask;
  map->slots[i].key = *key;
  map->slots[i].row = row;
}

void *orm__keymap_next(const orm__keymap_t *map, const orm__key_t *key,
                       size_t *cursor) {
  size_t i = *cursor == 0 ? (size_t)key->hash & map->mask
                          : *cursor & map->mask;
  while (map->slots[i].row != NULL) {
    if (key_eq(&map->slots[i].key, key)) {
      *cursor = i + 1;
      return map->slots[i].row;
    }
    i = (i + 1) & map->mask;
  }
  return NULL;
}
