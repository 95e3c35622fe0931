/* SPDX-License-Identifier: MIT */
/* The sample domain's models: one struct and descriptor per table that
 * its migrations (migrations/, embedded as domain_migrations) create, with
 * their relations (the join table agent_knowledge_bases has no model: the
 * many-to-many relations name it). Include this header anywhere; compile
 * domain.c once: it also holds the models' validation rules (an email has
 * an '@', a message a body, usage no negative tokens). */
#ifndef UVORM_EXAMPLE_DOMAIN_H
#define UVORM_EXAMPLE_DOMAIN_H

#include <stdbool.h>
#include <stdint.h>

#include <uvorm/migrate.h>
#include <uvorm/model.h>

/* The schema: the files of migrations/, compiled in by uvorm_embed_migrations()
 * (load with orm_migrations_load_embedded(domain_migrations,
 * domain_migrations_count, ...)). */
ORM_MIGRATIONS_DECLARE(domain_migrations);

#define USER_FIELDS(X)                                                         \
  X(id, ORM_T_INT8, int64_t, ORM_F_PK | ORM_F_GENERATED)                       \
  X(email, ORM_T_TEXT, const char *, ORM_F_UNIQUE)                                   \
  X(name, ORM_T_TEXT, const char *, ORM_F_NULLABLE)                                  \
  X(created_at, ORM_T_TIMESTAMPTZ, int64_t, ORM_F_GENERATED)
#define USER_RELATIONS(R)                                                      \
  R(agents, ORM_HAS_MANY, agent, owner_id, "created_at")                       \
  R(conversations, ORM_HAS_MANY, conversation, user_id, "started_at DESC")     \
  R(usage, ORM_HAS_MANY, usage_record, user_id, "day")
ORM_MODEL_DECLARE_REL(user, USER_FIELDS, USER_RELATIONS);

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
#define AGENT_RELATIONS(R)                                                     \
  R(owner, ORM_BELONGS_TO, user, owner_id, NULL)                               \
  R(conversations, ORM_HAS_MANY, conversation, agent_id, NULL)                 \
  R(knowledge_bases, ORM_MANY_TO_MANY, knowledge_base,                         \
    ORM_THROUGH("agent_knowledge_bases", "agent_id", "knowledge_base_id"),     \
    "name")
ORM_MODEL_DECLARE_REL(agent, AGENT_FIELDS, AGENT_RELATIONS);

#define CONVERSATION_FIELDS(X)                                                 \
  X(id, ORM_T_INT8, int64_t, ORM_F_PK | ORM_F_GENERATED)                       \
  X(agent_id, ORM_T_UUID, orm_uuid_t, 0)                                       \
  X(user_id, ORM_T_INT8, int64_t, 0)                                           \
  X(title, ORM_T_TEXT, const char *, ORM_F_NULLABLE)                                 \
  X(started_at, ORM_T_TIMESTAMPTZ, int64_t, ORM_F_GENERATED)                   \
  X(ended_at, ORM_T_TIMESTAMPTZ, int64_t, ORM_F_NULLABLE)
#define CONVERSATION_RELATIONS(R)                                              \
  R(user, ORM_BELONGS_TO, user, user_id, NULL)                                 \
  R(agent, ORM_BELONGS_TO, agent, agent_id, NULL)                              \
  R(messages, ORM_HAS_MANY, message, conversation_id, "created_at, id")
ORM_MODEL_DECLARE_REL(conversation, CONVERSATION_FIELDS,
                      CONVERSATION_RELATIONS);

#define MESSAGE_FIELDS(X)                                                      \
  X(id, ORM_T_INT8, int64_t, ORM_F_PK | ORM_F_GENERATED)                       \
  X(conversation_id, ORM_T_INT8, int64_t, 0)                                   \
  X(role, ORM_T_ENUM, const char *, 0)                                               \
  X(content, ORM_T_TEXT, const char *, 0)                                            \
  X(tokens, ORM_T_INT4, int32_t, ORM_F_NULLABLE)                               \
  X(metadata, ORM_T_JSON, const char *, ORM_F_NULLABLE)                              \
  X(created_at, ORM_T_TIMESTAMPTZ, int64_t, ORM_F_GENERATED)                   \
  X(author_id, ORM_T_INT8, int64_t, ORM_F_NULLABLE)                            \
  X(editor_id, ORM_T_INT8, int64_t, ORM_F_NULLABLE)
/* Two relations to users: who wrote a message and who last edited it. */
#define MESSAGE_RELATIONS(R)                                                   \
  R(conversation, ORM_BELONGS_TO, conversation, conversation_id, NULL)         \
  R(author, ORM_BELONGS_TO, user, author_id, NULL)                             \
  R(editor, ORM_BELONGS_TO, user, editor_id, NULL)                             \
  R(usage, ORM_HAS_ONE, usage_record, message_id, NULL)
ORM_MODEL_DECLARE_REL(message, MESSAGE_FIELDS, MESSAGE_RELATIONS);

#define KNOWLEDGE_BASE_FIELDS(X)                                               \
  X(id, ORM_T_INT8, int64_t, ORM_F_PK | ORM_F_GENERATED)                       \
  X(agent_id, ORM_T_UUID, orm_uuid_t, 0)                                       \
  X(name, ORM_T_TEXT, const char *, 0)                                               \
  X(description, ORM_T_TEXT, const char *, ORM_F_NULLABLE)                           \
  X(embedding_dim, ORM_T_INT2, int16_t, 0)                                     \
  X(document_ids, ORM_T_INT_ARRAY, orm_int_array_t, 0)                         \
  X(is_public, ORM_T_BOOL, bool, 0)                                            \
  X(refreshed_at, ORM_T_TIMESTAMP, int64_t, ORM_F_NULLABLE)
#define KNOWLEDGE_BASE_RELATIONS(R)                                            \
  R(owner, ORM_BELONGS_TO, agent, agent_id, NULL)                              \
  R(agents, ORM_MANY_TO_MANY, agent,                                           \
    ORM_THROUGH("agent_knowledge_bases", "knowledge_base_id", "agent_id"),     \
    NULL)
ORM_MODEL_DECLARE_REL(knowledge_base, KNOWLEDGE_BASE_FIELDS,
                      KNOWLEDGE_BASE_RELATIONS);

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
  X(recorded_at, ORM_T_TIMESTAMPTZ, int64_t, ORM_F_GENERATED)                 \
  X(message_id, ORM_T_INT8, int64_t, ORM_F_NULLABLE | ORM_F_UNIQUE)
#define USAGE_RECORD_RELATIONS(R)                                              \
  R(user, ORM_BELONGS_TO, user, user_id, NULL)                                 \
  R(message, ORM_BELONGS_TO, message, message_id, NULL)
ORM_MODEL_DECLARE_REL(usage_record, USAGE_RECORD_FIELDS,
                      USAGE_RECORD_RELATIONS);

#endif /* UVORM_EXAMPLE_DOMAIN_H */
