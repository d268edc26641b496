/*
 * tree.c - the pool tree (see tree.h) and the text report.
 *
 * One process-wide mutex guards every child list and the root list. Tree
 * changes are rare (create, destroy, move), so one lock keeps the rules
 * simple: it is never held across a destroy or a user callback.
 */
#include "tree.h"
#include "arena.h"
#include "chunk.h"
#include "tcache.h"

#include <inttypes.h>
#include <stdio.h>

static pthread_mutex_t tree_lock = PTHREAD_MUTEX_INITIALIZER;
static mp__node *roots; /* root pools, newest first */

const char *mp__kind_name(mp__kind k)
{
    switch (k) {
    case MP__KIND_ARENA: return "arena";
    case MP__KIND_OBJPOOL: return "objpool";
    case MP__KIND_RESERVE: return "reserve";
    case MP__KIND_HEAP: return "heap";
    }
    return "pool";
}

void mp__owner_detail(char *buf, size_t len, const mp__chunk *c)
{
    const mp__node *owner = c->owner;
    if (owner)
        snprintf(buf, len, "it is from %s '%s'", mp__kind_name(c->kind), owner->name);
    else
        snprintf(buf, len, "it is from no pool");
}

void mp__node_init(mp__node *n, mp__kind kind, const mp__node_ops *ops, const char *name)
{
    memset(n, 0, sizeof *n);
    n->magic = MP_NODE_MAGIC;
    n->kind = kind;
    n->ops = ops;
    mp__copy_name(n->name, name, "");
}

void mp__node_fini(mp__node *n) { n->magic = 0; }

static mp__node **list_head(mp__node *parent) { return parent ? &parent->children : &roots; }

static void link_locked(mp__node *parent, mp__node *n)
{
    mp__node **head = list_head(parent);
    n->parent = parent;
    n->prev = NULL;
    n->next = *head;
    if (*head)
        (*head)->prev = n;
    *head = n;
    n->attached = true;
}

static void unlink_locked(mp__node *n)
{
    if (!n->attached)
        return;
    if (n->prev)
        n->prev->next = n->next;
    else
        *list_head(n->parent) = n->next;
    if (n->next)
        n->next->prev = n->prev;
    n->prev = n->next = NULL;
    n->parent = NULL;
    n->attached = false;
}

int mp__node_attach(mp_arena *parent, mp__node *n)
{
    mp__node *pn = (mp__node *)parent;
    if (parent && !mp__node_live(pn, MP__KIND_ARENA))
        return EINVAL;
    mp__lock(&tree_lock);
    link_locked(pn, n);
    mp__unlock(&tree_lock);
    return 0;
}

void mp__node_detach(mp__node *n)
{
    mp__lock(&tree_lock);
    unlink_locked(n);
    mp__unlock(&tree_lock);
}

int mp__node_move(mp__node *n, mp_arena *new_parent)
{
    mp__node *pn = (mp__node *)new_parent;
    if (new_parent && !mp__node_live(pn, MP__KIND_ARENA))
        return EINVAL;
    mp__lock(&tree_lock);
    for (mp__node *a = pn; a; a = a->parent) {
        if (a == n) {
            mp__unlock(&tree_lock);
            return EINVAL;
        }
    }
    unlink_locked(n);
    link_locked(pn, n);
    mp__unlock(&tree_lock);
    return 0;
}

void mp__tree_destroy_children(mp__node *a)
{
    for (;;) {
        mp__lock(&tree_lock);
        mp__node *child = a->children;
        if (child)
            unlink_locked(child);
        mp__unlock(&tree_lock);
        if (!child)
            return;
        if (!child->ops->destroy(child)) { /* a misuse, reported: keep it in sight */
            mp__lock(&tree_lock);
            if (!child->attached)
                link_locked(NULL, child);
            mp__unlock(&tree_lock);
        }
    }
}

void mp__stats_add(mp_stats *a, const mp_stats *b)
{
    a->bytes_in_use += b->bytes_in_use;
    a->bytes_peak += b->bytes_peak;
    a->bytes_mapped += b->bytes_mapped;
    a->objects_in_use += b->objects_in_use;
    a->allocs += b->allocs;
    a->frees += b->frees;
    a->waits += b->waits;
    a->timeouts += b->timeouts;
    a->failures += b->failures;
    a->reserve_level += b->reserve_level;
    a->reserve_min += b->reserve_min;
    a->reserve_used += b->reserve_used;
}

static void sum_children_locked(const mp__node *n, mp_stats *sum)
{
    for (const mp__node *c = n->children; c; c = c->next) {
        mp_stats s = { 0 };
        c->ops->stats(c, &s);
        mp__stats_add(sum, &s);
        sum_children_locked(c, sum);
    }
}

void mp__tree_sum_children(const mp__node *n, mp_stats *sum)
{
    mp__lock(&tree_lock);
    sum_children_locked(n, sum);
    mp__unlock(&tree_lock);
}

static void fork_walk(mp__node *list, bool lock)
{
    for (mp__node *n = list; n; n = n->next) {
        if (lock && n->ops->lock_for_fork)
            n->ops->lock_for_fork(n);
        fork_walk(n->children, lock);
        if (!lock && n->ops->unlock_after_fork)
            n->ops->unlock_after_fork(n);
    }
}

static void fork_prepare(void)
{
    mp__lock(&mp__tcache_lock);
    mp__lock(&tree_lock);
    fork_walk(roots, true);
    mp__arena_fork_lock();
    mp__chunk_fork_lock();
}

static void fork_release(void)
{
    mp__chunk_fork_unlock();
    mp__arena_fork_unlock();
    fork_walk(roots, false);
    mp__unlock(&tree_lock);
    mp__unlock(&mp__tcache_lock);
}

static void forget_waiters(mp__node *list)
{
    for (mp__node *n = list; n; n = n->next) {
        if (n->ops->forget_waiters_after_fork)
            n->ops->forget_waiters_after_fork(n);
        forget_waiters(n->children);
    }
}

/* The child has one thread: waiters counted in the parent would make it
 * refuse to destroy their pools for good. Every lock is still held. */
static void fork_child(void)
{
    forget_waiters(roots);
    fork_release();
}

static void register_fork_handlers(void)
{
    if (pthread_atfork(fork_prepare, fork_release, fork_child) != 0)
        abort();
}

void mp__fork_handlers_register(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, register_fork_handlers);
}

/* ----------------------------------------------------------------- report */

/* Formats a byte count in at most 9 characters: "512 B", "1.5 KiB", ... */
static void human_bytes(char *buf, size_t len, size_t v)
{
    static const char *unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
    double d = (double)v;
    int u = 0;
    while (d >= 1024 && u < 4) {
        d /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, len, "%zu B", v);
    else
        snprintf(buf, len, "%.1f %s", d, unit[u]);
}

static void report_line(FILE *out, const mp__node *n, int depth)
{
    mp_stats s = { 0 };
    n->ops->stats(n, &s);
    char in_use[16], mapped[16], peak[16], label[MP_NAME_MAX + 64];
    human_bytes(in_use, sizeof in_use, s.bytes_in_use);
    human_bytes(mapped, sizeof mapped, s.bytes_mapped);
    human_bytes(peak, sizeof peak, s.bytes_peak);
    snprintf(label, sizeof label, "%*s%s %s", depth * 2, "", mp__kind_name(n->kind), n->name);
    fprintf(out, "%-40s %10s %10s %10s %10zu %10zu", label, in_use, mapped, peak, s.objects_in_use, s.allocs);
    if (n->kind == MP__KIND_RESERVE)
        fprintf(out, "  reserve %zu/%zu, used %zu, waits %zu, timeouts %zu", s.reserve_level, s.reserve_min,
                s.reserve_used, s.waits, s.timeouts);
    else if (s.waits || s.timeouts || s.failures)
        fprintf(out, "  waits %zu, timeouts %zu, failures %zu", s.waits, s.timeouts, s.failures);
    fputc('\n', out);
}

static void report_tree_locked(FILE *out, const mp__node *n, int depth)
{
    report_line(out, n, depth);
    /* Children are listed newest first; show them oldest first, as created. */
    const mp__node *last = n->children;
    while (last && last->next)
        last = last->next;
    for (const mp__node *c = last; c; c = c->prev)
        report_tree_locked(out, c, depth + 1);
}

void mp_report(FILE *out, const mp_arena *root)
{
    const mp__node *rn = (const mp__node *)root;
    if (!out || (root && !mp__node_live(rn, MP__KIND_ARENA)))
        return;
    mp__lock(&tree_lock);
    fprintf(out, "%-40s %10s %10s %10s %10s %10s\n", "pool", "in use", "mapped", "peak", "objects", "allocs");
    if (rn) {
        report_tree_locked(out, rn, 0);
    } else {
        const mp__node *last = roots;
        while (last && last->next)
            last = last->next;
        for (const mp__node *c = last; c; c = c->prev)
            report_tree_locked(out, c, 0);
    }
    mp__unlock(&tree_lock);
}

/* ------------------------------------------------------------ JSON report */

/* A JSON string of s: valid UTF-8 passes as it is; each byte of a sequence
 * that is not valid UTF-8 (stray, overlong, surrogate, above U+10FFFF or
 * cut short) is written as \u00XX, XX the byte, so the output is always
 * valid JSON. */
static void json_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (const unsigned char *c = (const unsigned char *)s; *c;) {
        size_t len = 1;
        unsigned char lo = 0x80, hi = 0xbf;
        if (*c >= 0xc2 && *c <= 0xdf) {
            len = 2;
        } else if (*c >= 0xe0 && *c <= 0xef) {
            len = 3;
            lo = *c == 0xe0 ? 0xa0 : 0x80; /* not overlong */
            hi = *c == 0xed ? 0x9f : 0xbf; /* not a surrogate */
        } else if (*c >= 0xf0 && *c <= 0xf4) {
            len = 4;
            lo = *c == 0xf0 ? 0x90 : 0x80; /* not overlong */
            hi = *c == 0xf4 ? 0x8f : 0xbf; /* not above U+10FFFF */
        }
        bool valid = *c < 0x80 || (len > 1 && c[1] >= lo && c[1] <= hi);
        for (size_t i = 2; valid && i < len; i++)
            valid = c[i] >= 0x80 && c[i] <= 0xbf; /* the NUL ends a cut sequence here */
        if (!valid || *c < 0x20)
            fprintf(out, "\\u%04x", *c);
        else if (*c == '"' || *c == '\\')
            fprintf(out, "\\%c", *c);
        else
            fwrite(c, 1, len, out);
        c += valid ? len : 1;
    }
    fputc('"', out);
}

static void json_stats(FILE *out, const mp_stats *s)
{
    fprintf(out,
            "{\"bytes_in_use\":%zu,\"bytes_peak\":%zu,\"bytes_mapped\":%zu,\"objects_in_use\":%zu,"
            "\"allocs\":%zu,\"frees\":%zu,\"waits\":%zu,\"timeouts\":%zu,\"failures\":%zu,"
            "\"reserve_level\":%zu,\"reserve_min\":%zu,\"reserve_used\":%zu}",
            s->bytes_in_use, s->bytes_peak, s->bytes_mapped, s->objects_in_use, s->allocs, s->frees, s->waits,
            s->timeouts, s->failures, s->reserve_level, s->reserve_min, s->reserve_used);
}

static void json_list_locked(FILE *out, const mp__node *newest);

static void json_node_locked(FILE *out, const mp__node *n)
{
    mp_stats s = { 0 };
    n->ops->stats(n, &s);
    fputs("{\"kind\":", out);
    json_string(out, mp__kind_name(n->kind));
    fputs(",\"name\":", out);
    json_string(out, n->name);
    fputs(",\"stats\":", out);
    json_stats(out, &s);
    fputs(",\"children\":", out);
    json_list_locked(out, n->children);
    fputc('}', out);
}

/* A list of siblings, oldest first (lists are kept newest first). */
static void json_list_locked(FILE *out, const mp__node *newest)
{
    const mp__node *last = newest;
    while (last && last->next)
        last = last->next;
    fputc('[', out);
    for (const mp__node *c = last; c; c = c->prev) {
        json_node_locked(out, c);
        if (c->prev)
            fputc(',', out);
    }
    fputc(']', out);
}

void mp_report_json(FILE *out, const mp_arena *root)
{
    const mp__node *rn = (const mp__node *)root;
    if (!out || (root && !mp__node_live(rn, MP__KIND_ARENA)))
        return;
    mp__lock(&tree_lock);
    fprintf(out, "{\"mpool\":\"%s\",\"pools\":", mp_version());
    if (rn) {
        fputc('[', out);
        json_node_locked(out, rn);
        fputc(']', out);
    } else {
        json_list_locked(out, roots);
    }
    fputs("}\n", out);
    mp__unlock(&tree_lock);
}
