/* SPDX-License-Identifier: MIT */
/* Mailboxes inside the library: the pool's own (orm_pool_post). */
#ifndef ORM_ASYNC_MAILBOX_H
#define ORM_ASYNC_MAILBOX_H

#include <uv.h>

#include "uvorm/pool.h"

/* orm_mailbox_open() with the choice of whether the mailbox alone keeps
 * the loop running (a pool's does not). */
int orm__mailbox_open(orm_mailbox_t **out, uv_loop_t *loop, int ref);
/* Refuses further posts, runs what was posted before, closes the handle,
 * frees the mailbox, then calls `cb(data)` (may be NULL). On the loop. */
void orm__mailbox_close(orm_mailbox_t *box, void (*cb)(void *data), void *data);

#endif /* ORM_ASYNC_MAILBOX_H */
