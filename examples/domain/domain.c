/* SPDX-License-Identifier: MIT */
/* The sample domain's model descriptors (see domain.h and migrations/). */
#include "domain.h"

#include <stdint.h>
#include <string.h>

/* What the database would take but the service must not: checked before
 * anything is sent (a failing row's call ends in ORM_EVALIDATION). */
static bool has_at(const void *member, void *data) {
  (void)data;
  const char *email = *(const char *const *)member;
  return strchr(email, '@') != NULL;
}

static const orm_rule_t user_rules[] = {
    ORM_LENGTH("email", 3, 320),
    ORM_CHECK("email", has_at, "must contain @"),
};
static const orm_model_hooks_t user_hooks = {
    .rules = user_rules, .nrules = sizeof user_rules / sizeof user_rules[0]};

static const orm_rule_t message_rules[] = {ORM_NOT_EMPTY("content")};
static const orm_model_hooks_t message_hooks = {.rules = message_rules,
                                                .nrules = 1};

static const orm_rule_t usage_rules[] = {
    ORM_RANGE("prompt_tokens", 0, INT32_MAX),
    ORM_RANGE("completion_tokens", 0, INT32_MAX),
};
static const orm_model_hooks_t usage_hooks = {
    .rules = usage_rules, .nrules = sizeof usage_rules / sizeof usage_rules[0]};

ORM_MODEL_DEFINE_REL_HOOKS(user, "users", USER_FIELDS, USER_RELATIONS,
                           &user_hooks);
ORM_MODEL_DEFINE_REL(agent, "agents", AGENT_FIELDS, AGENT_RELATIONS);
ORM_MODEL_DEFINE_REL(conversation, "conversations", CONVERSATION_FIELDS,
                     CONVERSATION_RELATIONS);
ORM_MODEL_DEFINE_REL_HOOKS(message, "messages", MESSAGE_FIELDS,
                           MESSAGE_RELATIONS, &message_hooks);
ORM_MODEL_DEFINE_REL(knowledge_base, "knowledge_bases", KNOWLEDGE_BASE_FIELDS,
                     KNOWLEDGE_BASE_RELATIONS);
ORM_MODEL_DEFINE_REL_HOOKS(usage_record, "usage_records", USAGE_RECORD_FIELDS,
                           USAGE_RECORD_RELATIONS, &usage_hooks);
