/* SPDX-License-Identifier: MIT */
/* Binary codecs: C field values to and from PostgreSQL's binary wire format.
 *
 * The model layer drives this from a field descriptor: the field's uvorm type
 * (orm_type_t) says which C type lives at the field's offset and which server
 * types may fill it. Results are decoded with orm__codec_decode(), parameters
 * encoded with orm__codec_encode(); both deal only in non-NULL values: SQL
 * NULL is the caller's business (PQgetisnull() on the way in, a NULL
 * parameter value on the way out).
 *
 * C representation of each type (the field at out_field / field):
 *
 *   ORM_T_INT2         int16_t
 *   ORM_T_INT4         int32_t
 *   ORM_T_INT8         int64_t
 *   ORM_T_FLOAT4       float
 *   ORM_T_FLOAT8       double
 *   ORM_T_BOOL         bool
 *   ORM_T_TEXT         char *, NUL-terminated UTF-8 (text, varchar, bpchar,
 *                      name)
 *   ORM_T_ENUM         char *, the label; see orm__codec_accepts()
 *   ORM_T_JSON         char *, the JSON text exactly as stored
 *   ORM_T_JSONB        char *, the JSON text as the server renders it
 *   ORM_T_BYTEA        orm_bytes_t
 *   ORM_T_TIMESTAMP    int64_t microseconds since 1970-01-01 00:00:00 (no
 *                      time zone: the wall-clock value as stored)
 *   ORM_T_TIMESTAMPTZ  int64_t microseconds since 1970-01-01 00:00:00 UTC
 *   ORM_T_DATE         int32_t days since 1970-01-01
 *   ORM_T_UUID         orm_uuid_t (16 bytes), network byte order as in the
 *                      text form
 *   ORM_T_NUMERIC      char *, a plain decimal string with exactly the
 *                      value's scale ("-12345.678900", "0", "NaN",
 *                      "Infinity", "-Infinity")
 *   ORM_T_INT_ARRAY    orm_int_array_t (one-dimensional int2[]/int4[]/int8[])
 *   ORM_T_TEXT_ARRAY   orm_text_array_t (one-dimensional text[] and friends)
 *
 * Infinite timestamps are INT64_MAX (infinity) and INT64_MIN (-infinity);
 * infinite dates INT32_MAX and INT32_MIN, as on the wire. The connection must
 * use client_encoding UTF8: the server converts text to the client encoding
 * even in binary format. */
#ifndef ORM_MODEL_CODEC_H
#define ORM_MODEL_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "uvorm/common.h"
#include "uvorm/model.h"

#include "base/buf.h"
#include "base/wire.h"
#include "model/arena.h"

/* orm_type_t and the field types (orm_bytes_t, orm_uuid_t, the arrays) are
 * public: see uvorm/model.h. */


/* Whether `type` is a valid uvorm type. */
bool orm__codec_type_valid(orm_type_t type);

/* The type's name for messages, e.g. "int8" or "text[]"; "?" if invalid. */
const char *orm__codec_type_name(orm_type_t type);

/* sizeof the C field for `type` (see the table above); 0 if invalid. The
 * model layer checks descriptors against it. */
size_t orm__codec_field_size(orm_type_t type);

/* Whether a result column the server reports with type `oid` (PQftype) may
 * be decoded into a field of `type`. Domains arrive as their base type.
 *
 *   Integers widen, never narrow: INT8 accepts int8, int4 and int2; INT4
 *   accepts int4 and int2; INT2 only int2. (count(*) and sum() are bigint,
 *   and a column widened by a migration keeps working.) FLOAT8 accepts
 *   float8 and float4 (exact); FLOAT4 only float4. INT_ARRAY accepts int2[],
 *   int4[] and int8[].
 *   TEXT accepts text, varchar, bpchar and name; TEXT_ARRAY their arrays.
 *   ENUM accepts the text types and every OID >= ORM__OID_FIRST_USER: an
 *   enum's OID is assigned by CREATE TYPE, so no constant can name it. A
 *   model that wants an exact check resolves the enum's OID once (pg_type)
 *   and compares PQftype itself. Other user-defined types whose binary form
 *   is not text (composites, ranges, hstore) must not be declared ENUM.
 *   Every other type accepts exactly its own OID; timestamp and timestamptz
 *   are not interchangeable, nor are json and jsonb. */
bool orm__codec_accepts(orm_type_t type, uint32_t oid);

/* The OID to pass in PQexecParams' / PQsendQueryPrepared's paramTypes for a
 * parameter encoded from `type`. TEXT and ENUM give 0, letting the server
 * infer the type from the SQL's context (the column's varchar, bpchar, name
 * or enum type, which all take text's binary form): text would make a bpchar
 * comparison use text semantics and lose its index, and an enum column
 * refuses text. Such a parameter therefore needs context: write $1::text
 * where the SQL gives none. Every other type gives its own OID (INT_ARRAY is
 * sent as int8[], TEXT_ARRAY as text[]). 0 for an invalid type. */
uint32_t orm__codec_param_oid(orm_type_t type);

/* For building a one-dimensional binary array of values of `type`, each
 * encoded with orm__codec_encode(): the element OID to write in the array's
 * header (text for TEXT and ENUM, whose arrays must then be cast, e.g.
 * $1::text[]::mood[]) and the array's type OID. Both are 0 for INT_ARRAY and
 * TEXT_ARRAY (no arrays of arrays: PostgreSQL's arrays are
 * multi-dimensional instead) and for an invalid type. */
uint32_t orm__codec_elem_oid(orm_type_t type);
uint32_t orm__codec_array_oid(orm_type_t type);

/* Decodes one non-NULL binary value of `len` bytes at `wire` (PQgetvalue /
 * PQgetlength of a column fetched with resultFormat 1) into the field at
 * `out_field`, whose C type is given by `type`. Strings, bytes and arrays
 * are copied into `arena` (which may be NULL for types that need none);
 * the field then points into the arena and lives as long as its contents.
 * The width of a widened integer or float comes from `len`, so check the
 * column's OID with orm__codec_accepts() first; INT_ARRAY and TEXT_ARRAY
 * check the element OID carried in the value themselves.
 *
 * Returns 0, or:
 *   ORM_ETYPE   the value is malformed for `type`: wrong length, bad
 *               array header, element OID, multi-dimensional array,
 *               jsonb version, numeric sign or digit; nothing beyond
 *               wire[len - 1] is ever read.
 *   ORM_ERANGE  a well-formed value that the C type cannot hold: a
 *               timestamp after about 294247 AD (PostgreSQL's range
 *               ends at 294276 AD, whose microseconds since 1970 overflow
 *               int64_t), or a finite value that would read as infinity.
 *   ORM_ENOMEM  the arena could not grow.
 *   ORM_EINVAL  invalid `type`, len < 0, or a NULL arena where one is needed.
 * On error the field is unchanged; the arena may hold bytes nothing points
 * to until it is reset. */
int orm__codec_decode(orm_type_t type, const char *wire, int len,
                      void *out_field, orm__arena_t *arena);

/* Appends the binary form of the field at `field` (C type given by `type`)
 * to `buf`: the bytes to send as one parameter with format 1, whose length
 * is buf->len after minus buf->len before. NUMERIC accepts what the server's
 * numeric input does, minus whitespace: an optional sign, digits with an
 * optional point, an optional exponent ("1.5e-3"), and NaN, Infinity, inf
 * (any case, Infinity signed); the scale is kept ("1.50" stays 1.50, as
 * "1.5e-3" gets scale 4 as on the server).
 *
 * Returns 0, or:
 *   ORM_EINVAL  invalid `type`; a NULL string, array item pointer or bytea
 *               data with a length; a malformed numeric string.
 *   ORM_ERANGE  a value the wire cannot carry: a string, bytea or array
 *               over INT32_MAX bytes or elements, a numeric whose weight
 *               or scale exceeds the format, a timestamp or date that the
 *               shift to PostgreSQL's epoch would overflow or turn into an
 *               infinity.
 *   ORM_ENOMEM  the buffer could not grow.
 * On error `buf` is as it was before the call. */
int orm__codec_encode(orm_type_t type, const void *field, orm__buf_t *buf);

/* numeric.c: a numeric's binary value as a decimal string in `arena`
 * (ORM_ETYPE for a malformed one), and a decimal string ("-12.50", "NaN",
 * "Infinity") as a binary value (ORM_EINVAL for anything else). */
int orm__numeric_decode(const char *wire, int len, orm__arena_t *arena,
                        char **out);
int orm__numeric_encode(const char *s, orm__buf_t *buf);

#endif /* ORM_MODEL_CODEC_H */
