/* SPDX-License-Identifier: MIT */
/* relations.h: the data of the `relations` workloads, shared by bench_load
 * (which creates it), bench_workloads and bench_raw_workloads.
 *
 * In the schema bench (tfb.h's BENCH_SCHEMA):
 *
 *   conversations  REL_CONVERSATIONS rows, ids 1..REL_CONVERSATIONS;
 *   messages       REL_MESSAGES_PER messages per conversation, ids
 *                  1..REL_MESSAGES: conversation c holds the ids
 *                  (c - 1) * REL_MESSAGES_PER + 1 .. c * REL_MESSAGES_PER;
 *                  content REL_CONTENT_LEN bytes;
 *   usage_records  one per message, id = message_id = the message's id.
 *
 * One operation loads REL_BATCH consecutive conversations from a random
 * start (WHERE id >= $1 ORDER BY id LIMIT REL_BATCH) with their messages
 * and each message's usage record.
 */
#ifndef UVORM_BENCH_RELATIONS_H
#define UVORM_BENCH_RELATIONS_H

#define REL_CONVERSATIONS 10000
#define REL_MESSAGES_PER 10
#define REL_MESSAGES (REL_CONVERSATIONS * REL_MESSAGES_PER)
#define REL_CONTENT_LEN 100
/* Conversations per operation. */
#define REL_BATCH 20
/* The highest first id of an operation: every one gets REL_BATCH rows. */
#define REL_MAX_START (REL_CONVERSATIONS - REL_BATCH + 1)

/* The usage of message id g, as bench_load computes it (the SQL below and
 * these macros must agree): prompt and completion tokens, and the cost in
 * millionths (cost = (prompt * 3 + completion * 15) / 1e6, numeric(30,12)). */
#define REL_PROMPT_TOKENS(g) (50 + (g) % 200)
#define REL_COMPLETION_TOKENS(g) (20 + (g) % 300)
#define REL_COST_MICROS(g) (REL_PROMPT_TOKENS(g) * 3 + REL_COMPLETION_TOKENS(g) * 15)

#include <stdint.h>
#include <string.h>

/* Whether `s` is the text of message g's cost as numeric(30,12) prints it:
 * "0.", the six digits of the millionths, then six zeros. */
static inline int rel_cost_ok(const char *s, int64_t g) {
  int64_t m = REL_COST_MICROS(g);
  if (s == NULL || s[0] != '0' || s[1] != '.')
    return 0;
  for (int i = 7; i >= 2; i--, m /= 10)
    if (s[i] != (char)('0' + m % 10))
      return 0;
  return m == 0 && strcmp(s + 8, "000000") == 0;
}

#endif /* UVORM_BENCH_RELATIONS_H */
