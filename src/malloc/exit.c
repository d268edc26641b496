/*
 * exit.c - what the drop-in prints at exit, on request (dropin.h):
 *
 *   MPOOL_SHOW_STATS=1  mp_report of every pool (the default heap, and any
 *                       the program made), then the drop-in's own line:
 *                       foreign pointers left alone, bootstrap bytes
 *   MPOOL_CHECK=1       the leak report: how many allocations are still
 *                       out, and where the first ones were made
 *
 * Both go to the standard error the process started with, from a
 * destructor (boot.c), so after main returned and after the atexit
 * handlers. By then many programs have closed stderr (coreutils do, at
 * exit): start-up kept a descriptor of it (report_fd), and for the time of
 * the reports stderr is a stream on that descriptor (glibc's stderr is a
 * variable a program may set), so that mp_report and the default error
 * handler, which print to stderr, reach it. Other threads may still run:
 * the leak walk takes each class's lock in turn (and the heap's for the
 * large allocations), gathers, and formats after dropping it.
 */
#include "dropin.h"
#include "debug.h"

#include <stdio.h>

#define SHOWN 8 /* as many as mp__leak_report shows */

typedef struct leaks {
    size_t count, bytes, shown, next;
    const void *ptr[SHOWN], *site[SHOWN];
} leaks;

static void note(leaks *l, const void *ptr, const void *site)
{
    l->count++;
    l->bytes += mp_usable_size(ptr); /* checked mode: the size asked for */
    if (l->shown < SHOWN) {
        l->ptr[l->shown] = ptr;
        l->site[l->shown++] = site;
    }
}

static void gather(mp_heap *h, leaks *l)
{
    for (unsigned i = 0; i < MP_HEAP_NCLASS; i++) {
        mp_objpool *p = __atomic_load_n(&h->cls[i], __ATOMIC_ACQUIRE);
        if (!p)
            continue;
        mp__leak_walk w;
        const void *ptr, *site;
        mp__objpool_lock(p);
        mp__objpool_leak_walk(&w, p);
        while (mp__objpool_next_leak(&w, &ptr, &site))
            note(l, ptr, site);
        mp__objpool_unlock(p);
    }
    mp__lock(&h->lock);
    for (mp__link *k = h->large.head; k; k = k->next) {
        const mp__heap_large *b = mp__list_entry(k, mp__heap_large, link);
        note(l, b->start, b->info.alloc_site);
    }
    mp__unlock(&h->lock);
}

static bool next_leak(void *it, const void **ptr, const void **site)
{
    leaks *l = it;
    if (l->next == l->shown)
        return false;
    *ptr = l->ptr[l->next];
    *site = l->site[l->next++];
    return true;
}

static void report_leaks(const mp_heap *h, leaks *l)
{
    char header[200];
    snprintf(header, sizeof header,
             "mpool: leak: heap '%s': %zu allocation%s (%zu bytes) still out at exit, the C library's own among them",
             h->node.name, l->count, l->count == 1 ? "" : "s", l->bytes);
    mp__leak_report(MP__LEAK_REPORT, header, next_leak, l);
}

void mp__malloc_at_exit(void)
{
    mp_heap *h = __atomic_load_n(&mp__malloc_heap, __ATOMIC_ACQUIRE);
    const mp__malloc_env *e = &mp__malloc_env_read;
    if (!h || !(e->show_stats || h->checked))
        return;
    int err = errno;
    leaks l = { 0 };
    if (h->checked) /* before the stream below allocates */
        gather(h, &l);
    FILE *saved = stderr, *out = e->report_fd >= 0 ? fdopen(e->report_fd, "w") : NULL;
    if (out)
        stderr = out;
    if (e->show_stats) {
        mp_report(stderr, NULL);
        fprintf(stderr, "mpool: malloc: %zu foreign pointer%s left alone, %zu bytes of bootstrap memory\n",
                mp__malloc_foreign_count(), mp__malloc_foreign_count() == 1 ? "" : "s", mp__malloc_boot_used());
        fflush(stderr);
    }
    if (l.count)
        report_leaks(h, &l);
    if (out) {
        stderr = saved;
        fclose(out);
    }
    errno = err;
}
