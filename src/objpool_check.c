/*
 * objpool_check.c - layer 6: checked mode of object pools (see debug.h for
 * what checked mode is, objpool.h for the pool).
 *
 * Each slab of a checked pool has one record per slot (mp__objinfo): its
 * state and the sites of its last get and put. A checked pool's objects
 * are MP_REDZONE bytes longer than asked; those bytes hold MP_FILL_REDZONE
 * while the object is out. A freed object holds MP_FILL_FREED (unless the
 * pool has a ctor, whose state must survive) until it goes out again, and
 * waits in the quarantine first. Every check runs in the slow paths, which
 * checked pools always take.
 */
#include "objpool.h"
#include "track.h"

#include <stdio.h>

static mp__objinfo *info_of(void *obj)
{
    mp__slab *s = mp__slab_of(obj);
    return &((mp__objinfo *)s->records)[mp__slab_index(s, obj)];
}

void mp__objpool_checked_out(mp_objpool *p, void *obj, const void *site)
{
    mp__objinfo *in = info_of(obj);
    size_t rz = p->shape.stride - p->obj_size;
    if (p->tracked)
        mp__track_obj_touch(obj, p->shape.stride);
    if (in->state == MP_OBJ_OUT)
        mp__misuse_obj("corrupted free list: object handed out twice", p->kind_name, p->node.name, obj, in);
    else if (in->state == MP_OBJ_FREE && !p->ctor && !mp__filled(obj, p->obj_size, MP_FILL_FREED))
        mp__misuse_obj(mp__objpool_says(p, "write to a freed object", "write to a freed allocation"), p->kind_name, p->node.name, obj, in);
    in->state = MP_OBJ_OUT;
    in->alloc_site = site;
    in->free_site = NULL;
    in->sized = false;
    if (!p->ctor)
        memset(obj, MP_FILL_NEW, p->obj_size);
    memset((char *)obj + p->obj_size, MP_FILL_REDZONE, rz);
    if (p->tracked)
        mp__track_obj_hide(obj, p->shape.stride);
}

bool mp__objpool_checked_in(mp_objpool *p, void *obj, const void *site)
{
    mp__objinfo *in = info_of(obj); /* put_debug checked that obj is a slot */
    if (in->state != MP_OBJ_OUT) {
        mp__misuse_obj(in->state == MP_OBJ_FREE ? mp__objpool_says(p, "double put", "double free")
                                                 : mp__objpool_says(p, "put of an object never handed out",
                                                                    "free of an allocation never handed out"),
                       p->kind_name,
                       p->node.name, obj, in);
        return false;
    }
    size_t used = in->sized ? in->req : p->obj_size; /* a heap's allocation guards its class's slack too */
    char *rz = (char *)obj + used;
    size_t rzlen = p->shape.stride - used;
    if (p->tracked)
        mp__track_obj_touch(rz, rzlen);
    if (!mp__filled(rz, rzlen, MP_FILL_REDZONE))
        mp__misuse_obj(mp__objpool_says(p, "write past the end of an object", "write past the end of an allocation"), p->kind_name, p->node.name, obj, in);
    in->state = MP_OBJ_FREE;
    in->free_site = site;
    if (!p->ctor)
        memset(obj, MP_FILL_FREED, p->obj_size);
    return true;
}

void *mp__objpool_quarantine(mp_objpool *p, void *obj)
{
    mp__objpool_lock(p);
    void *out = mp__quarantine_push(&p->quar, obj);
    mp__objpool_unlock(p);
    return out;
}

/* ------------------------------------------------------------------- leaks */

void mp__objpool_leak_walk(mp__leak_walk *w, mp_objpool *p)
{
    *w = (mp__leak_walk){ .lists = { &p->partial, &p->empty_slabs, &p->full_slabs } };
}

bool mp__objpool_next_leak(void *arg, const void **ptr, const void **site)
{
    mp__leak_walk *w = arg;
    for (;;) {
        if (!w->slab) {
            if (w->list == 3)
                return false;
            mp__link *head = w->lists[w->list++]->head;
            w->slab = head ? mp__list_entry(head, mp__slab, link) : NULL;
            w->next_slot = 0;
            continue;
        }
        const mp__objinfo *rec = w->slab->records;
        while (rec && w->next_slot < w->slab->nmade) {
            uint32_t i = w->next_slot++;
            if (rec[i].state == MP_OBJ_OUT) {
                *ptr = mp__slab_slot(w->slab, i);
                *site = rec[i].alloc_site;
                return true;
            }
        }
        mp__link *next = w->slab->link.next;
        w->slab = next ? mp__list_entry(next, mp__slab, link) : NULL;
        w->next_slot = 0; /* the next slab from its first slot */
    }
}

void mp__objpool_report_leaks(mp_objpool *p)
{
    if (!p->checked || p->leak == MP__LEAK_IGNORE)
        return;
    mp__leak_walk w;
    mp__objpool_leak_walk(&w, p);
    const void *ptr, *site;
    size_t count = 0;
    while (mp__objpool_next_leak(&w, &ptr, &site))
        count++;
    if (!count)
        return;
    char header[256];
    snprintf(header, sizeof header, "mpool: leak: objpool '%s': %zu object%s (%zu bytes) still out at destroy",
             p->node.name, count, count == 1 ? "" : "s", count * p->obj_size);
    mp__objpool_leak_walk(&w, p);
    mp__leak_report(p->leak, header, mp__objpool_next_leak, &w);
}
