/* SPDX-License-Identifier: MIT */
/* Intrusive doubly linked lists: a list is a head link, an element embeds a
 * link and is found from it with ORM__CONTAINER_OF. A link that is in no
 * list points at itself, so removing it again is harmless. */
#ifndef ORM_BASE_LIST_H
#define ORM_BASE_LIST_H

#include <stddef.h>
#include <stdint.h>

typedef struct orm__link_s {
  struct orm__link_s *prev;
  struct orm__link_s *next;
} orm__link_t;

/* Through uintptr_t so that it serves const pointers too. */
#define ORM__CONTAINER_OF(ptr, type, member)                                   \
  ((type *)(uintptr_t)((const char *)(ptr)-offsetof(type, member)))

static inline void orm__list_init(orm__link_t *head) {
  head->prev = head->next = head;
}
static inline int orm__list_empty(const orm__link_t *head) {
  return head->next == head;
}
static inline void orm__list_remove(orm__link_t *l) {
  l->prev->next = l->next;
  l->next->prev = l->prev;
  l->prev = l->next = l;
}
static inline void orm__list_push_back(orm__link_t *head, orm__link_t *l) {
  l->prev = head->prev;
  l->next = head;
  head->prev->next = l;
  head->prev = l;
}
static inline void orm__list_push_front(orm__link_t *head, orm__link_t *l) {
  l->next = head->next;
  l->prev = head;
  head->next->prev = l;
  head->next = l;
}

#endif /* ORM_BASE_LIST_H */
