/*
 * foreign.c - pointers mpool never handed out, given to free, realloc or
 * malloc_usable_size (dropin.h).
 *
 * Where they come from: blocks of the bootstrap area (boot.c); memory the
 * dynamic linker allocated for itself before the drop-in took over; blocks
 * another allocator made (a program that found the C library's own malloc
 * with dlsym); and bugs (a pointer to the stack, to static data, or one
 * freed twice after its chunk went back to the OS).
 *
 * What happens to them: they are left alone, and counted. Nothing is
 * written through them, and they are never passed on: the C library's
 * free would abort (or worse) on anything but its own blocks, and nothing
 * tells its blocks from the rest safely. So their memory stays with
 * whoever made it: a leak, for another allocator's blocks. realloc copies
 * what it can read of the old block (mp__os_copy_readable, which never
 * faults) into a new one; malloc_usable_size says 0.
 *
 * In checked mode (MPOOL_CHECK=1) each one, except the bootstrap's, is
 * misuse: reported, with the caller, through the error handler, which
 * aborts by default.
 */
#include "dropin.h"
#include "debug.h"
#include "os.h"
#include "ptr.h"

#include <stdio.h>

static size_t foreign; /* frees and reallocs of such pointers (atomic) */

size_t mp__malloc_foreign_count(void) { return __atomic_load_n(&foreign, __ATOMIC_RELAXED); }

/* Checked mode: reports the pointer; true when a handler returned (the
 * call then does nothing). */
static bool report(const char *check, const void *p, const void *site)
{
    if (!mp__checked()) /* the default heap's mode, made or not yet */
        return false;
    char where[160], detail[200];
    mp__format_site(where, sizeof where, site);
    snprintf(detail, sizeof detail, "called from %s", where);
    mp__misuse_detail(check, NULL, NULL, p, detail);
    return true;
}

void mp__free_foreign(void *ptr, const void *site)
{
    size_t size;
    if (mp__malloc_is_boot(ptr, &size))
        return; /* the area is never reused */
    int err = errno;
    __atomic_fetch_add(&foreign, 1, __ATOMIC_RELAXED);
    report("free of a pointer mpool never handed out", ptr, site);
    errno = err;
}

void *mp__malloc_realloc_foreign(void *p, size_t n, const void *site)
{
    size_t have;
    bool boot = mp__malloc_is_boot(p, &have);
    if (!boot) {
        __atomic_fetch_add(&foreign, 1, __ATOMIC_RELAXED);
        if (report("realloc of a pointer mpool never handed out", p, site)) {
            errno = EINVAL;
            return NULL;
        }
    }
    void *q = mp__malloc_begin(n, 0);
    if (q != MP_MALLOC_GO)
        return q;
    if (!(q = mp_heap_alloc(mp__malloc_heap, n)))
        return NULL;
    if (boot) {
        memcpy(q, p, have < n ? have : n);
        return q;
    }
    if (mp__os_copy_readable(q, p, n) == SIZE_MAX) { /* its extent cannot be known here */
        mp_free(q);
        errno = ENOMEM;
        return NULL;
    }
    return q;
}

size_t mp__malloc_usable_foreign(const void *p)
{
    size_t size;
    return mp__malloc_is_boot(p, &size) ? size : 0;
}
