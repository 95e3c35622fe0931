/* SPDX-License-Identifier: MIT */
/* PostgreSQL's binary wire format: big-endian integers and the built-in
 * type OIDs. One copy for every layer. */
#ifndef ORM_BASE_WIRE_H
#define ORM_BASE_WIRE_H

#include <stdint.h>
#include <string.h>

/* Built-in PostgreSQL type OIDs (pg_type.oid; fixed by initdb). */
#define ORM__OID_BOOL 16u
#define ORM__OID_BYTEA 17u
#define ORM__OID_CHAR 18u
#define ORM__OID_NAME 19u
#define ORM__OID_INT8 20u
#define ORM__OID_INT2 21u
#define ORM__OID_INT4 23u
#define ORM__OID_TEXT 25u
#define ORM__OID_OID 26u
#define ORM__OID_JSON 114u
#define ORM__OID_FLOAT4 700u
#define ORM__OID_FLOAT8 701u
#define ORM__OID_UNKNOWN 705u
#define ORM__OID_BPCHAR 1042u
#define ORM__OID_VARCHAR 1043u
#define ORM__OID_DATE 1082u
#define ORM__OID_TIMESTAMP 1114u
#define ORM__OID_TIMESTAMPTZ 1184u
#define ORM__OID_NUMERIC 1700u
#define ORM__OID_UUID 2950u
#define ORM__OID_JSONB 3802u
#define ORM__OID_NAME_ARRAY 1003u
#define ORM__OID_INT2_ARRAY 1005u
#define ORM__OID_INT4_ARRAY 1007u
#define ORM__OID_TEXT_ARRAY 1009u
#define ORM__OID_BPCHAR_ARRAY 1014u
#define ORM__OID_VARCHAR_ARRAY 1015u
#define ORM__OID_INT8_ARRAY 1016u
#define ORM__OID_JSON_ARRAY 199u
#define ORM__OID_BOOL_ARRAY 1000u
#define ORM__OID_BYTEA_ARRAY 1001u
#define ORM__OID_FLOAT4_ARRAY 1021u
#define ORM__OID_FLOAT8_ARRAY 1022u
#define ORM__OID_TIMESTAMP_ARRAY 1115u
#define ORM__OID_DATE_ARRAY 1182u
#define ORM__OID_TIMESTAMPTZ_ARRAY 1185u
#define ORM__OID_NUMERIC_ARRAY 1231u
#define ORM__OID_UUID_ARRAY 2951u
#define ORM__OID_JSONB_ARRAY 3807u
/* The first OID the server hands out to objects created after initdb
 * (FirstNormalObjectId): every enum type's OID is at least this. */
#define ORM__OID_FIRST_USER 16384u

/* Byte-wise shifts are portable and compile to a load plus bswap. The signed
 * views go through memcpy: exact-width types are two's complement, and this
 * avoids the implementation-defined unsigned-to-signed conversion. */
static inline uint16_t orm__load_u16(const void *p) {
  const unsigned char *b = (const unsigned char *)p;
  return (uint16_t)((unsigned)b[0] << 8 | (unsigned)b[1]);
}

static inline uint32_t orm__load_u32(const void *p) {
  const unsigned char *b = (const unsigned char *)p;
  return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 |
         (uint32_t)b[3];
}

static inline uint64_t orm__load_u64(const void *p) {
  return (uint64_t)orm__load_u32(p) << 32 | orm__load_u32((const char *)p + 4);
}

static inline int16_t orm__load_i16(const void *p) {
  uint16_t u = orm__load_u16(p);
  int16_t v;
  memcpy(&v, &u, sizeof v);
  return v;
}

static inline int32_t orm__load_i32(const void *p) {
  uint32_t u = orm__load_u32(p);
  int32_t v;
  memcpy(&v, &u, sizeof v);
  return v;
}

static inline int64_t orm__load_i64(const void *p) {
  uint64_t u = orm__load_u64(p);
  int64_t v;
  memcpy(&v, &u, sizeof v);
  return v;
}

static inline void orm__store_u16(void *p, uint16_t v) {
  unsigned char *b = (unsigned char *)p;
  b[0] = (unsigned char)(v >> 8);
  b[1] = (unsigned char)v;
}

static inline void orm__store_u32(void *p, uint32_t v) {
  unsigned char *b = (unsigned char *)p;
  b[0] = (unsigned char)(v >> 24);
  b[1] = (unsigned char)(v >> 16);
  b[2] = (unsigned char)(v >> 8);
  b[3] = (unsigned char)v;
}

static inline void orm__store_u64(void *p, uint64_t v) {
  orm__store_u32(p, (uint32_t)(v >> 32));
  orm__store_u32((char *)p + 4, (uint32_t)v);
}

static inline uint16_t orm__bits_i16(int16_t v) {
  uint16_t u;
  memcpy(&u, &v, sizeof u);
  return u;
}

static inline uint32_t orm__bits_i32(int32_t v) {
  uint32_t u;
  memcpy(&u, &v, sizeof u);
  return u;
}

static inline uint64_t orm__bits_i64(int64_t v) {
  uint64_t u;
  memcpy(&u, &v, sizeof u);
  return u;
}

#endif /* ORM_BASE_WIRE_H */
