/* SPDX-License-Identifier: MIT */
/* The sample domain's model descriptors (see domain.h and schema.sql). */
#include "domain.h"

ORM_MODEL_DEFINE(user, "users", USER_FIELDS);
ORM_MODEL_DEFINE(agent, "agents", AGENT_FIELDS);
ORM_MODEL_DEFINE(conversation, "conversations", CONVERSATION_FIELDS);
ORM_MODEL_DEFINE(message, "messages", MESSAGE_FIELDS);
ORM_MODEL_DEFINE(knowledge_base, "knowledge_bases", KNOWLEDGE_BASE_FIELDS);
ORM_MODEL_DEFINE(usage_record, "usage_records", USAGE_RECORD_FIELDS);
