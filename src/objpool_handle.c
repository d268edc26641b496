/*
 * objpool_handle.c - layer 6: generational handles on object pools made
 * with MP_HANDLES: mp_objpool_handle, mp_objpool_deref,
 * mp_objpool_put_handle, and what the pool's other paths do for them
 * (the model of object pools is in objpool.h; the user's view in
 * docs/handles.md).
 *
 * Why handles do not hold the object's address. A handle is 64 bits and
 * must carry a generation of 32 (so that it aliases only after 2^32
 * reuses of one slot). A slot's address needs 31 bits of chunk number
 * (47-bit user space, 64 KiB chunks) and up to 13 of slot index: 76 in
 * all. So slots get numbers, process-wide, and a handle is
 *
 *     handle = number << 32 | generation         (number >= 1: 0 is no handle)
 *
 * The table. One array of records, one per number, reserved once (its base
 * never moves, so deref reads it without a lock) and made writable from
 * the front as numbers are handed out (`committed` only grows):
 *
 *     record { obj: the slot's address; word: tag << 32 | generation }
 *     tag = pool id << 1 | out
 *
 * A slab of a handle pool holds a range of 2^hclass numbers (its slot count
 * rounded up to a power of two); slot i is number hbase + i (slab.h).
 * Ranges come from the pool's spares (ranges of its slabs given back),
 * else from those of destroyed pools, else from the end of the table, all
 * under one lock (a leaf: fork.h), never held while the table grows.
 * Spare ranges are linked through their first record's obj field: no
 * object is out in a spare range, so deref never reads it.
 *
 * Invariants:
 *   - A number's generation only grows (mod 2^32): each put adds one, and
 *     nothing ever sets it back - not a slab's release, not a pool's
 *     destroy, not the number going to another pool. So a handle whose
 *     object was put never matches again until the generation wraps.
 *   - out is set exactly while the slot's object is handed out: set by the
 *     get (after obj is stored), cleared by the put with the same CAS that
 *     advances the generation, and cleared (advancing it) for objects
 *     still out when their slab goes (a destroy).
 *   - A range stays with the pool that took it until the pool is
 *     destroyed, its slabs' release and remaking included: a pool's own
 *     stale handle always finds the pool's id at its number (ESTALE),
 *     another pool's handle never does (EINVAL).
 *   - Pool ids are 1 .. 2^31-1, taken in turn (a pool at the address of a
 *     destroyed one has another id); MP__HTAG_NONE (id 0) is no pool's.
 *
 * Ordering. A get stores obj, then the word (both release stores); deref
 * loads obj, then the word (both acquire). The caller got the handle after
 * that get (from mp_objpool_handle, then by whatever passed it on), so
 * the obj it reads is that get's or a later store. A later one is made by
 * a later get (or a range's relinking), which comes after the put that
 * moved the word on: having read it (acquire), deref then reads the new
 * word, not the one it wants. So when the word matches, obj is the object
 * that was out under the handle at that moment - no second read needed.
 * A put is a CAS of the word from "out at g" to "free at g + 1": of two
 * puts of one handle exactly one wins, and a put of an object that is not
 * out is seen, in any mode.
 */
#include "objpool.h"
#include "fork.h"
#include "os.h"

typedef struct hrec {
    void *obj;     /* the slot's object (stored by each get, before the word); in a spare
                      range's first record, the number of the next spare range */
    uint64_t word; /* tag << 32 | generation; tag = pool id << 1 | out */
} hrec;

#define OUT ((uint64_t)1 << 32)
#define GEN_MASK ((uint64_t)0xffffffff)
#define TABLE_MAX ((size_t)1 << 28)   /* numbers at most: 4 GiB of address space, no memory */
#define TABLE_MIN ((size_t)1 << 20)   /* the smallest reservation tried */
#define COMMIT_STEP ((size_t)1 << 16) /* numbers made writable at a time (1 MiB) */
#define CLASSES 14                    /* ranges of 2^0 .. 2^13 numbers (a 64 KiB slab of 8-byte slots) */

/* What deref reads: the base, set once before any number is handed out,
 * and the numbers readable, [0, committed), which only grows (a release
 * store after the pages became writable). */
static struct {
    hrec *base;
    size_t committed;
} table;

static pthread_mutex_t hlock = PTHREAD_MUTEX_INITIALIZER;
static size_t reserved;         /* numbers the reservation holds (hlock) */
static size_t used = 1;         /* numbers [1, used) are in ranges; 0 is never one (hlock) */
static uint32_t spare[CLASSES]; /* destroyed pools' ranges, per class, linked (hlock) */
static uint32_t last_id;        /* the id given to the last handle pool (hlock) */

static const char KIND[] = MP_OBJPOOL_KIND;

static void handles_lock(void) { mp__lock(&hlock); }
static void handles_unlock(void) { mp__unlock(&hlock); }

static hrec *table_base(void) { return __atomic_load_n(&table.base, __ATOMIC_RELAXED); }

/* ----------------------------------------------------------- the table */

/* The link of a spare range (hlock held). */
static uint32_t link_of(uint32_t n) { return (uint32_t)(uintptr_t)__atomic_load_n(&table_base()[n].obj, __ATOMIC_RELAXED); }

static void set_link(uint32_t n, uint32_t next)
{
    __atomic_store_n(&table_base()[n].obj, (void *)(uintptr_t)next, __ATOMIC_RELEASE);
}

/* Reserves the table's address space, once per process. */
static bool table_ready(void)
{
    if (table_base())
        return true;
    hrec *mem = NULL;
    size_t n = TABLE_MAX;
    for (; n >= TABLE_MIN && !(mem = mp__os_reserve_space(n * sizeof *mem)); n /= 4)
        ;
    if (!mem)
        return false; /* errno ENOMEM */
    mp__lock(&hlock);
    if (!table.base) {
        __atomic_store_n(&table.base, mem, __ATOMIC_RELEASE);
        reserved = n;
        mem = NULL;
    }
    mp__unlock(&hlock);
    if (mem) /* another thread was first */
        mp__os_release(mem, n * sizeof *mem);
    return true;
}

/* `size` numbers from the end of the table, made writable if need be
 * (hlock held; dropped around the system call). 0 when the table is full
 * or no memory can be had. */
static uint32_t range_new(size_t size)
{
    for (;;) {
        size_t committed = __atomic_load_n(&table.committed, __ATOMIC_RELAXED);
        if (used + size <= committed) {
            uint32_t start = (uint32_t)used;
            used += size;
            return start;
        }
        if (used + size > reserved)
            return 0;
        size_t want = mp__align_up(used + size, COMMIT_STEP);
        if (want > reserved)
            want = reserved;
        mp__unlock(&hlock);
        /* Threads that grow it at once may make the same pages writable
         * twice, which is harmless. */
        bool ok = mp__os_commit(table_base() + committed, (want - committed) * sizeof(hrec));
        mp__lock(&hlock);
        if (!ok)
            return 0;
        if (want > __atomic_load_n(&table.committed, __ATOMIC_RELAXED))
            __atomic_store_n(&table.committed, want, __ATOMIC_RELEASE);
    }
}

/* The record of h in handle pool p, or NULL for a number that is no
 * number (0, or past the table). */
static hrec *record_of(const mp_objpool *p, mp_handle h)
{
    uint64_t n = h >> 32;
    if (!p->handles || n == 0 || n >= __atomic_load_n(&table.committed, __ATOMIC_ACQUIRE))
        return NULL;
    return &table_base()[n];
}

/* The record of obj, a slot of handle pool p. */
static hrec *record_at(void *obj)
{
    const mp__slab *s = mp__slab_of(obj);
    return &table_base()[s->hbase + mp__slab_index(s, obj)];
}

/* Why handle h does not name an object out of p, w its record's word:
 * ESTALE when it did (it is p's number, and its generation has passed
 * h's), EINVAL when it never did (another pool's number, or a generation
 * not reached, or reached while the slot was free). */
static int why_not(const mp_objpool *p, mp_handle h, uint64_t w)
{
    if ((w >> 33) != (p->htag >> 33))
        return EINVAL;
    return (int32_t)((uint32_t)w - (uint32_t)h) > 0 ? ESTALE : EINVAL;
}

/* -------------------------------------------------------- pool hooks */

bool mp__handles_pool_init(mp_objpool *p)
{
    if (!table_ready() || !mp__fork_add(handles_lock, handles_unlock, NULL)) {
        errno = ENOMEM;
        return false;
    }
    uint32_t k = 0;
    while (((size_t)1 << k) < p->shape.nslots)
        k++;
    if (k >= CLASSES) { /* no slab has that many slots: its slots are 8 bytes at least */
        errno = ENOMEM;
        return false;
    }
    p->hclass = k;
    mp__lock(&hlock);
    last_id = last_id % 0x7fffffffu + 1;
    uint64_t id = last_id;
    mp__unlock(&hlock);
    p->htag = (id << 1 | 1) << 32;
    return true;
}

bool mp__handles_slab_new(mp_objpool *p, mp__slab *s)
{
    mp__lock(&hlock);
    uint32_t start = p->hspare;
    if (start) {
        p->hspare = link_of(start);
    } else {
        if ((start = spare[p->hclass]))
            spare[p->hclass] = link_of(start);
        else
            start = range_new((size_t)1 << p->hclass);
        if (start)
            __atomic_store_n(&p->hranges, p->hranges + 1, __ATOMIC_RELAXED);
    }
    mp__unlock(&hlock);
    if (!start) {
        errno = ENOMEM;
        return false;
    }
    s->hbase = start;
    return true;
}

void mp__handles_slab_gone(mp_objpool *p, mp__slab *s)
{
    hrec *r = table_base() + s->hbase;
    for (uint32_t i = 0; i < s->nmade; i++) {
        uint64_t w = __atomic_load_n(&r[i].word, __ATOMIC_RELAXED);
        if (w & OUT) /* out at a destroy: stale from now on */
            __atomic_store_n(&r[i].word, (p->htag & ~OUT) | (uint32_t)(w + 1), __ATOMIC_RELEASE);
    }
    mp__lock(&hlock);
    set_link(s->hbase, p->hspare);
    p->hspare = s->hbase;
    mp__unlock(&hlock);
}

void mp__handles_pool_gone(mp_objpool *p)
{
    mp__lock(&hlock);
    while (p->hspare) {
        uint32_t n = p->hspare;
        p->hspare = link_of(n);
        set_link(n, spare[p->hclass]);
        spare[p->hclass] = n;
    }
    __atomic_store_n(&p->hranges, 0, __ATOMIC_RELAXED);
    mp__unlock(&hlock);
}

void mp__handles_out(mp_objpool *p, void *obj)
{
    hrec *r = record_at(obj);
    __atomic_store_n(&r->obj, obj, __ATOMIC_RELEASE);
    uint64_t w = __atomic_load_n(&r->word, __ATOMIC_RELAXED);
    __atomic_store_n(&r->word, p->htag | (w & GEN_MASK), __ATOMIC_RELEASE);
}

bool mp__handles_in(mp_objpool *p, void *obj)
{
    hrec *r = record_at(obj);
    uint64_t w = __atomic_load_n(&r->word, __ATOMIC_RELAXED);
    do {
        if ((w & ~GEN_MASK) != p->htag)
            return false;
    } while (!__atomic_compare_exchange_n(&r->word, &w, (p->htag & ~OUT) | (uint32_t)(w + 1), true,
                                          __ATOMIC_ACQ_REL, __ATOMIC_RELAXED));
    return true;
}

size_t mp__handles_bytes(const mp_objpool *p)
{
    return __atomic_load_n(&p->hranges, __ATOMIC_RELAXED) * ((size_t)1 << p->hclass) * sizeof(hrec);
}

/* ---------------------------------------------------------- the calls */

/* A live chunk of p's holding a slot at obj (then p is live: a destroy
 * gives its chunks back first, and the header can be read), and the slot's
 * record out in p; else the checks: a dead pool is misuse, the rest EINVAL. */
mp_handle mp_objpool_handle(mp_objpool *p, const void *obj)
{
    uintptr_t base = (uintptr_t)obj & ~(uintptr_t)MP_CHUNK_MASK;
    const mp__slab *s = (const mp__slab *)base;
    if (mp_likely(p != NULL && obj != NULL) && mp_likely(mp__chunk_owned_by(base, p)) && mp_likely(p->handles) &&
        mp_likely(mp__slab_is_slot(s, obj))) {
        uint64_t n = (uint64_t)s->hbase + mp__slab_index(s, obj);
        uint64_t w = __atomic_load_n(&table_base()[n].word, __ATOMIC_ACQUIRE);
        if (mp_likely((w & ~GEN_MASK) == p->htag))
            return n << 32 | (w & GEN_MASK);
    } else if (!mp__objpool_ok(p, "handle in a destroyed or invalid pool")) {
        return 0;
    }
    errno = EINVAL; /* not out, not p's, not an object, or p without handles */
    return 0;
}

/* Everything the fast path of deref does not answer: a NULL or dead pool,
 * a pool without handles, garbage, another pool's handle, a stale one. */
static MP_NOINLINE void *deref_slow(mp_objpool *p, mp_handle h)
{
    if (!mp__objpool_ok(p, "deref in a destroyed or invalid pool"))
        return NULL;
    hrec *r = record_of(p, h);
    if (!r) {
        errno = EINVAL;
        return NULL;
    }
    void *obj = __atomic_load_n(&r->obj, __ATOMIC_ACQUIRE);
    uint64_t w = __atomic_load_n(&r->word, __ATOMIC_ACQUIRE);
    if (w == (p->htag | (h & GEN_MASK))) /* out again: the fast path raced with nothing we can tell */
        return obj;
    errno = why_not(p, h, w);
    return NULL;
}

/* The fast path: the number in bounds, then obj, then the record's word
 * exactly "out, in p, at h's generation" (the order that makes obj exact:
 * see the top of the file). A pool without handles has a tag no record
 * has. */
void *mp_objpool_deref(mp_objpool *p, mp_handle h)
{
    uint64_t n = h >> 32;
    if (mp_likely(p != NULL) && mp_likely(n < __atomic_load_n(&table.committed, __ATOMIC_ACQUIRE))) {
        const hrec *r = &table_base()[n];
        void *obj = __atomic_load_n(&r->obj, __ATOMIC_ACQUIRE);
        if (mp_likely(__atomic_load_n(&r->word, __ATOMIC_ACQUIRE) == (p->htag | (h & GEN_MASK))))
            return obj;
    }
    return deref_slow(p, h);
}

void mp_objpool_put_handle(mp_objpool *p, mp_handle h)
{
    const void *site = __builtin_return_address(0);
    const void *hp = (const void *)(uintptr_t)h; /* what the messages show */
    if (!p) { /* its object would stay out for good */
        mp__misuse("put to a NULL pool", KIND, NULL, hp);
        return;
    }
    if (!mp__objpool_ok(p, "put to a destroyed or invalid pool"))
        return;
    if (!p->handles) {
        mp__misuse("put_handle to a pool without MP_HANDLES", p->kind_name, p->node.name, hp);
        return;
    }
    hrec *r = record_of(p, h);
    uint64_t want = p->htag | (h & GEN_MASK), w = want;
    uint64_t next = (p->htag & ~OUT) | (uint32_t)((uint32_t)h + 1);
    /* The claim: out at h's generation becomes free at the next one. Only
     * one thread can make it; the object is then its to put. */
    if (r && __atomic_compare_exchange_n(&r->word, &w, next, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        mp__objpool_put_claimed(p, __atomic_load_n(&r->obj, __ATOMIC_RELAXED), site);
        return;
    }
    bool stale = r && why_not(p, h, w) == ESTALE;
    mp__misuse(stale ? "put of a stale handle (its object was put back)" : "put of an invalid handle", p->kind_name,
               p->node.name, hp);
}
