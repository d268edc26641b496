/*
 * debug.c - layer 6: the checked-mode switch, site formatting, object
 * reports, the quarantine, the leak report and the graveyard (see debug.h).
 */
#include "debug.h"
#include "meta.h"
#include "error.h"
#include "os.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

#ifndef MPOOL_CHECKED_DEFAULT
#define MPOOL_CHECKED_DEFAULT 0
#endif

static pthread_once_t decide_once = PTHREAD_ONCE_INIT;
static bool checked;
static size_t quarantine = 256;

static void decide(void)
{
    checked = MPOOL_CHECKED_DEFAULT;
    const char *v = getenv("MPOOL_CHECK");
    if (v && (v[0] == '0' || v[0] == '1') && v[1] == '\0')
        checked = v[0] == '1';
    const char *q = getenv("MPOOL_QUARANTINE");
    if (q && *q) {
        char *end;
        unsigned long n = strtoul(q, &end, 10);
        if (*end == '\0' && n <= 1u << 20)
            quarantine = n;
    }
}

bool mp__checked(void)
{
    pthread_once(&decide_once, decide);
    return checked;
}

size_t mp__quarantine_depth(void)
{
    pthread_once(&decide_once, decide);
    return quarantine;
}

void mp__format_site(char *buf, size_t len, const void *site)
{
    Dl_info info;
    if (!site) {
        snprintf(buf, len, "unknown");
        return;
    }
    if (dladdr(site, &info) && info.dli_sname && info.dli_saddr) {
        const char *file = info.dli_fname ? strrchr(info.dli_fname, '/') : NULL;
        snprintf(buf, len, "%s+0x%zx (%s)", info.dli_sname,
                 (size_t)((const char *)site - (const char *)info.dli_saddr),
                 file ? file + 1 : (info.dli_fname ? info.dli_fname : "?"));
    } else if (dladdr(site, &info) && info.dli_fname && info.dli_fbase) {
        const char *file = strrchr(info.dli_fname, '/');
        snprintf(buf, len, "%s+0x%zx", file ? file + 1 : info.dli_fname,
                 (size_t)((const char *)site - (const char *)info.dli_fbase));
    } else {
        snprintf(buf, len, "%p", site);
    }
}

void mp__misuse_obj(const char *check, const char *kind, const char *name, const void *ptr, const mp__objinfo *info)
{
    char got[160], put[160], detail[400];
    if (!info || info->state == MP_OBJ_FRESH) {
        mp__misuse(check, kind, name, ptr);
        return;
    }
    mp__format_site(got, sizeof got, info->alloc_site);
    mp__format_site(put, sizeof put, info->free_site);
    if (info->state == MP_OBJ_FREE)
        snprintf(detail, sizeof detail, "allocated at %s, freed at %s", got, put);
    else
        snprintf(detail, sizeof detail, "allocated at %s", got);
    mp__misuse_detail(check, kind, name, ptr, detail);
}

bool mp__filled(const void *p, size_t n, unsigned char b)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        if (c[i] != b)
            return false;
    return true;
}

/* Destroyed pools of every kind, newest first, chained through their
 * `link` fields. Pushed with a CAS and never popped, so no ABA. */
static void *graveyard;

void mp__graveyard_keep(void *pool, void **link)
{
    void *head = __atomic_load_n(&graveyard, __ATOMIC_RELAXED);
    do
        *link = head;
    while (!__atomic_compare_exchange_n(&graveyard, &head, pool, true, __ATOMIC_RELEASE, __ATOMIC_RELAXED));
}

bool mp__quarantine_init(mp__quarantine *q, size_t cap)
{
    *q = (mp__quarantine){ 0 };
    if (cap && !(q->ring = mp__meta_alloc(cap * sizeof *q->ring)))
        return false;
    q->cap = cap;
    return true;
}

void mp__quarantine_fini(mp__quarantine *q)
{
    mp__meta_free(q->ring);
    *q = (mp__quarantine){ 0 };
}

void *mp__quarantine_push(mp__quarantine *q, void *obj)
{
    if (!q->cap)
        return obj;
    if (q->len < q->cap) {
        q->ring[(q->head + q->len++) % q->cap] = obj;
        return NULL;
    }
    void *out = q->ring[q->head];
    q->ring[q->head] = obj;
    q->head = (q->head + 1) % q->cap;
    return out;
}

#define LEAK_SHOWN 8

void mp__leak_report(mp__leak_policy policy, const char *header,
                     bool (*next)(void *it, const void **ptr, const void **site), void *it)
{
    if (policy == MP__LEAK_IGNORE)
        return;
    char text[2048], where[160];
    size_t len = (size_t)snprintf(text, sizeof text, "%s", header);
    const void *ptr, *site, *first = NULL;
    for (int shown = 0; shown < LEAK_SHOWN && next(it, &ptr, &site); shown++) {
        first = first ? first : ptr;
        mp__format_site(where, sizeof where, site);
        if (len < sizeof text)
            len += (size_t)snprintf(text + len, sizeof text - len, "\n  %p allocated at %s", ptr, where);
    }
    mp__leak(policy, text, first);
}
