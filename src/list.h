/*
 * list.h - layer 0 (services): the one intrusive doubly linked list.
 *
 * A struct that sits on a list embeds an mp__link; the list is a head and
 * a tail, NULL-terminated both ways, so emptiness is one load and both
 * ends are O(1). mp__list_entry() turns a link back into its struct.
 * Nothing here locks: each list's owner says which lock guards it.
 *
 * Invariant: e is on list l exactly when (e->prev ? e->prev->next :
 * l->head) == e; a link that is on no list has prev == next == NULL (but a
 * list of one has that too, so callers that need to know keep a flag).
 */
#ifndef MP_LIST_H
#define MP_LIST_H

#include <stddef.h>

typedef struct mp__link {
    struct mp__link *prev, *next;
} mp__link;

typedef struct mp__list {
    mp__link *head, *tail;
} mp__list;

#define mp__list_entry(link, type, member) ((type *)(void *)((char *)(link) - offsetof(type, member)))

static inline int mp__list_empty(const mp__list *l) { return l->head == NULL; }

/* Inserts e after pos (pos NULL: at the head). */
static inline void mp__list_insert_after(mp__list *l, mp__link *pos, mp__link *e)
{
    e->prev = pos;
    e->next = pos ? pos->next : l->head;
    if (e->next)
        e->next->prev = e;
    else
        l->tail = e;
    if (pos)
        pos->next = e;
    else
        l->head = e;
}

static inline void mp__list_push(mp__list *l, mp__link *e) { mp__list_insert_after(l, NULL, e); }

static inline void mp__list_remove(mp__list *l, mp__link *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        l->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        l->tail = e->prev;
    e->prev = e->next = NULL;
}

/* Moves e from list `from` to the head of list `to`. */
static inline void mp__list_move(mp__list *from, mp__list *to, mp__link *e)
{
    mp__list_remove(from, e);
    mp__list_push(to, e);
}

#endif /* MP_LIST_H */
