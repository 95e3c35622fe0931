/* SPDX-License-Identifier: MIT */
/* The sample domain's models: one struct and descriptor per table of
 * schema.sql. Include this header anywhere; compile domain.c once. */
#ifndef UVORM_EXAMPLE_DOMAIN_H
#define UVORM_EXAMPLE_DOMAIN_H

#include <stdbool.h>
#include <stdint.h>

#include <uvorm/model.h>

#define USER_FIELDS(X)                                                         \
  X(id, ORM_T_INT8, int64_t, ORM_F_PK | ORM_F_GENERATED)                       \
  X(email, ORM_T_TEXT, const char *, ORM_F_UNIQUE)                                   \
  X(name, ORM_T_TEXT, const char *, ORM_F_NULLABLE)                                  \
  X(created_at, ORM_T_TIMESTAMPTZ, int64_t, ORM_F_GENERATED)
ORM_MODEL_DECLARE(user, USER_FIELDS);

#define AGENT_FIELDS(X)                                                        \
  X(id, ORM_T_UUID, orm_uuid_t, ORM_F_PK | ORM_F_GENERATED)                    \
  X(owner_id, ORM_T_INT8, int64_t, 0)                                          \
  X(name, ORM_T_TEXT, const char *, 0)                                               \
  X(model, ORM_T_TEXT, const char *, 0)                                              \
  X(status, ORM_T_ENUM, const char *, 0)                                             \
  X(temperature, ORM_T_FLOAT8, double, 0)                                      \
  X(config, ORM_T_JSONB, const char *, 0)                                            \
  X(tags, ORM_T_TEXT_ARRAY, orm_text_array_t, 0)                               \
  X(created_at, ORM_T_TIMESTAMPTZ, int64_t, ORM_F_GENERATED)
ORM_MODEL_DECLARE(agent, AGENT_FIELDS);

#define CONVERSATION_FIELDS(X)                                                 \
  X(id, ORM_T_INT8, int64_t, ORM_F_PK | ORM_F_GENERATED)                       \
  X(agent_id, ORM_T_UUID, orm_uuid_t, 0)                                       \
  X(user_id, ORM_T_INT8, int64_t, 0)                                           \
  X(title, ORM_T_TEXT, const char *, ORM_F_NULLABLE)                                 \
  X(started_at, ORM_T_TIMESTAMPTZ, int64_t, ORM_F_GENERATED)                   \
  X(ended_at, ORM_T_TIMESTAMPTZ, int64_t, ORM_F_NULLABLE)
ORM_MODEL_DECLARE(conversation, CONVERSATION_FIELDS);

#define MESSAGE_FIELDS(X)                                                      \
  X(id, ORM_T_INT8, int64_t, ORM_F_PK | ORM_F_GENERATED)                       \
  X(conversation_id, ORM_T_INT8, int64_t, 0)                                   \
  X(role, ORM_T_ENUM, const char *, 0)                                               \
  X(content, ORM_T_TEXT, const char *, 0)                                            \
  X(tokens, ORM_T_INT4, int32_t, ORM_F_NULLABLE)                               \
  X(metadata, ORM_T_JSON, const char *, ORM_F_NULLABLE)                              \
  X(created_at, ORM_T_TIMESTAMPTZ, int64_t, ORM_F_GENERATED)
ORM_MODEL_DECLARE(message, MESSAGE_FIELDS);

#define KNOWLEDGE_BASE_FIELDS(X)                                               \
  X(id, ORM_T_INT8, int64_t, ORM_F_PK | ORM_F_GENERATED)                       \
  X(agent_id, ORM_T_UUID, orm_uuid_t, 0)                                       \
  X(name, ORM_T_TEXT, const char *, 0)                                               \
  X(description, ORM_T_TEXT, const char *, ORM_F_NULLABLE)                           \
  X(embedding_dim, ORM_T_INT2, int16_t, 0)                                     \
  X(document_ids, ORM_T_INT_ARRAY, orm_int_array_t, 0)                         \
  X(is_public, ORM_T_BOOL, bool, 0)                                            \
  X(refreshed_at, ORM_T_TIMESTAMP, int64_t, ORM_F_NULLABLE)
ORM_MODEL_DECLARE(knowledge_base, KNOWLEDGE_BASE_FIELDS);

#define USAGE_RECORD_FIELDS(X)                                                 \
  X(id, ORM_T_INT8, int64_t, ORM_F_PK | ORM_F_GENERATED)                       \
  X(user_id, ORM_T_INT8, int64_t, 0)                                           \
  X(agent_id, ORM_T_UUID, orm_uuid_t, ORM_F_NULLABLE)                          \
  X(day, ORM_T_DATE, int32_t, 0)                                               \
  X(prompt_tokens, ORM_T_INT4, int32_t, 0)                                     \
  X(completion_tokens, ORM_T_INT4, int32_t, 0)                                 \
  X(cost, ORM_T_NUMERIC, const char *, 0)                                            \
  X(latency_ms, ORM_T_FLOAT4, float, ORM_F_NULLABLE)                           \
  X(request_digest, ORM_T_BYTEA, orm_bytes_t, ORM_F_NULLABLE)                  \
  X(recorded_at, ORM_T_TIMESTAMPTZ, int64_t, ORM_F_GENERATED)
ORM_MODEL_DECLARE(usage_record, USAGE_RECORD_FIELDS);

#endif /* UVORM_EXAMPLE_DOMAIN_H */
