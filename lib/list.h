/* SPDX-License-Identifier: MIT */
/* An intrusive circular doubly-linked list with a sentinel head (the shape
 * of libuv's queue.h). A node that is not on a list points at itself, so
 * removing it twice is harmless. Header-only. */
#ifndef JK_LIST_H
#define JK_LIST_H

#include <stdbool.h>
#include <stddef.h>

struct jk_list {
    struct jk_list *next, *prev;
};

static inline void jk_list_init(struct jk_list *l)
{
    l->next = l->prev = l;
}

static inline bool jk_list_empty(const struct jk_list *l)
{
    return l->next == l;
}

/* Insert n at the front of head's list. */
static inline void jk_list_push(struct jk_list *head, struct jk_list *n)
{
    n->next = head->next;
    n->prev = head;
    head->next->prev = n;
    head->next = n;
}

/* Insert n at the back (a FIFO: push back, take the front). */
static inline void jk_list_push_back(struct jk_list *head, struct jk_list *n)
{
    jk_list_push(head->prev, n);
}

/* Whether n is on a list (a removed or initialised node points at itself). */
static inline bool jk_list_linked(const struct jk_list *n)
{
    return n->next != n;
}

static inline void jk_list_del(struct jk_list *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    jk_list_init(n);
}

#define jk_list_entry(p, type, member) ((type *)((char *)(p) - offsetof(type, member)))

/* Iterate (pos must stay on the list). */
#define jk_list_each(pos, head) for ((pos) = (head)->next; (pos) != (head); (pos) = (pos)->next)

/* Iterate over the entries (pos: type *, linked through member). */
#define jk_list_each_entry(pos, head, type, member)                                            \
    for ((pos) = jk_list_entry((head)->next, type, member); &(pos)->member != (head);          \
         (pos) = jk_list_entry((pos)->member.next, type, member))

/* Iterate; pos may be removed from the list inside the loop body (tmp). */
#define jk_list_each_safe(pos, tmp, head)                                                      \
    for ((pos) = (head)->next, (tmp) = (pos)->next; (pos) != (head);                           \
         (pos) = (tmp), (tmp) = (pos)->next)

#endif
