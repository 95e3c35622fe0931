/* SPDX-License-Identifier: MIT */
/* The sample domain's model descriptors (see domain.h and migrations/). */
#include "domain.h"

ORM_MODEL_DEFINE_REL(user, "users", USER_FIELDS, USER_RELATIONS);
ORM_MODEL_DEFINE_REL(agent, "agents", AGENT_FIELDS, AGENT_RELATIONS);
ORM_MODEL_DEFINE_REL(conversation, "conversations", CONVERSATION_FIELDS,
                     CONVERSATION_RELATIONS);
ORM_MODEL_DEFINE_REL(message, "messages", MESSAGE_FIELDS, MESSAGE_RELATIONS);
ORM_MODEL_DEFINE_REL(knowledge_base, "knowledge_bases", KNOWLEDGE_BASE_FIELDS,
                     KNOWLEDGE_BASE_RELATIONS);
ORM_MODEL_DEFINE_REL(usage_record, "usage_records", USAGE_RECORD_FIELDS,
                     USAGE_RECORD_RELATIONS);
