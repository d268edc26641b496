/*
 * boot.c - the drop-in's start (dropin.h has the model): the environment,
 * the process's first call (which makes the default heap) and each
 * thread's (which makes its block of caches), the bootstrap allocator for
 * calls made meanwhile, and trimming.
 *
 * Nothing here relies on a constructor: the first call may come from
 * another library's constructor, from the C library's own start, or from
 * the dynamic linker, before ours would run. getenv is safe that early;
 * stdio is not (these paths never use it).
 *
 * A thread's start runs with busy set: a request the C library makes
 * while it is under way (pthread_once, pthread_atfork, pthread_setspecific
 * may allocate) gets a bootstrap block instead of entering the heap again.
 * After its start, the thread's block of caches exists, so mpool makes no
 * further call that can allocate on its fast or slow paths.
 *
 * MPOOL_TRIM_MS=N: each thread looks at the clock once every LEFT_TRIM
 * of its allocations (when its countdown runs out); when N ms have passed
 * since the last trim, the one thread that claims it (a CAS on next_trim)
 * trims the default heap. Without it the countdown starts at LEFT_IDLE and
 * the clock is never read.
 */
#include "debug.h"
#include "dropin.h"
#include "os.h"
#include "showstats.h"
#include "tcache.h"

#include <pthread.h>

mp_heap *mp__malloc_heap;
__thread uint32_t mp__malloc_left MP_MALLOC_IE;
mp__malloc_env mp__malloc_env_read = { .trim_ns = -1, .report_fd = -1 };

/* The thread is in its start, or the process's. */
static __thread bool busy MP_MALLOC_IE;

#define LEFT_IDLE UINT32_MAX /* without MPOOL_TRIM_MS: nothing to look at */
#define LEFT_TRIM 1024       /* calls between two looks at the clock */
static uint32_t left_full = LEFT_IDLE;
static int64_t next_trim; /* CLOCK_MONOTONIC ns (atomic) */

/* ------------------------------------------------------------ bootstrap */

#define BOOT_SIZE ((size_t)1 << 20)
#define BOOT_HDR ((size_t)16) /* a block's size, then padding, before it */

/* Zero until handed out (.bss), never reused: a block needs no zeroing. */
static _Alignas(4096) char boot_area[BOOT_SIZE];
static size_t boot_top; /* bytes of boot_area handed out (atomic) */

void *mp__malloc_boot_alloc(size_t n, size_t align)
{
    if (align < BOOT_HDR)
        align = BOOT_HDR;
    if (align > 4096 || n > BOOT_SIZE) {
        errno = ENOMEM;
        return NULL;
    }
    size_t top = __atomic_load_n(&boot_top, __ATOMIC_RELAXED), start, end;
    do {
        start = mp__align_up(top + BOOT_HDR, align);
        end = mp__align_up(start + (n ? n : 1), BOOT_HDR);
        if (end > BOOT_SIZE) {
            errno = ENOMEM;
            return NULL;
        }
    } while (!__atomic_compare_exchange_n(&boot_top, &top, end, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
    char *p = boot_area + start;
    ((size_t *)(void *)p)[-1] = n;
    return p;
}

bool mp__malloc_is_boot(const void *p, size_t *size)
{
    const char *c = p;
    if (c < boot_area + BOOT_HDR || c >= boot_area + BOOT_SIZE)
        return false;
    *size = ((const size_t *)p)[-1];
    return true;
}

size_t mp__malloc_boot_used(void) { return __atomic_load_n(&boot_top, __ATOMIC_RELAXED); }

/* ----------------------------------------------------------------- start */

static void read_env(void)
{
    mp__malloc_env *e = &mp__malloc_env_read;
    const char *s = getenv("MPOOL_SHOW_STATS");
    e->show_stats = s && s[0] == '1' && s[1] == '\0';
    if (e->show_stats)
        mp__show_stats_claim(); /* exit.c prints the report (=json: the library's handler does) */
    const char *t = getenv("MPOOL_TRIM_MS");
    if (t && *t) {
        char *end;
        unsigned long ms = strtoul(t, &end, 10);
        if (*end == '\0' && ms <= 86400000ul) /* a day at most */
            e->trim_ns = (int64_t)ms * 1000000;
    }
    if (e->trim_ns >= 0)
        left_full = LEFT_TRIM;
    if (e->show_stats || mp__checked()) /* a report at exit (exit.c) */
        e->report_fd = mp__os_dup_high(2);
}

static void start_process(void)
{
    read_env();
    __atomic_store_n(&mp__malloc_heap, mp_heap_default(), __ATOMIC_RELEASE);
}

/* The calling thread's start (busy set): the process's first, then the
 * thread's block of the heap's caches. False when the heap could not be
 * made. */
static bool start_thread(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, start_process);
    mp_heap *h = __atomic_load_n(&mp__malloc_heap, __ATOMIC_ACQUIRE);
    if (!h)
        return false;
    /* Without memory for it, the heap works under its locks, and makes the
     * block on a later slow path. */
    if (h->group.slot)
        mp__cache_group_block(&h->group);
    mp__malloc_left = left_full;
    return true;
}

/* MPOOL_TRIM_MS is set and the countdown ran out. */
static MP_NOINLINE void tick(void)
{
    int64_t now = mp__os_now_ns();
    int64_t due = __atomic_load_n(&next_trim, __ATOMIC_RELAXED);
    if (now < due ||
        !__atomic_compare_exchange_n(&next_trim, &due, now + mp__malloc_env_read.trim_ns, false, __ATOMIC_RELAXED,
                                     __ATOMIC_RELAXED))
        return;
    mp_heap_trim(mp__malloc_heap);
}

void *mp__malloc_enter(size_t n, size_t align)
{
    if (mp_unlikely(n > PTRDIFF_MAX)) { /* no object can be that large */
        errno = ENOMEM;
        return NULL;
    }
    if (mp_unlikely(busy))
        return mp__malloc_boot_alloc(n, align);
    uint32_t left = mp__malloc_left;
    if (mp_likely(left > 1)) {
        mp__malloc_left = left - 1;
        return MP_MALLOC_GO;
    }
    if (left == 0) {
        busy = true;
        bool ok = start_thread();
        busy = false;
        if (!ok) {
            errno = ENOMEM;
            return NULL;
        }
        return MP_MALLOC_GO;
    }
    mp__malloc_left = left_full;
    if (mp__malloc_env_read.trim_ns >= 0)
        tick();
    return MP_MALLOC_GO;
}

/* At exit (exit.c); the destructor is here, in the file the linker always
 * takes, so that the static library has it too. */
__attribute__((destructor)) static void at_exit(void) { mp__malloc_at_exit(); }
