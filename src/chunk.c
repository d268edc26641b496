/*
 * chunk.c - layer 2: size-aligned chunks, the registry of live chunks, and
 * retention of free chunks (see chunk.h).
 *
 * Registry: a two-level bitmap over the 47-bit user address space. Level 1
 * is a static array indexed by addr >> 32; each level-2 leaf holds one bit
 * per MP_CHUNK_SIZE of a 4 GiB region and is made on first use, never freed.
 * Bits change under chunk_lock with atomic RMW; lookups are lock-free
 * (acquire on the leaf pointer, relaxed on the bit word).
 */
#include "chunk.h"
#include "os.h"


#define L1_SHIFT MP_REG_L1_SHIFT
#define L1_COUNT MP_REG_L1_COUNT
#define LEAF_BITS MP_REG_LEAF_BITS

typedef mp__reg_leaf leaf;

/* Written under chunk_lock with atomic stores and RMWs; read lock-free with
 * atomic loads (mp__chunk_registered). */
leaf *mp__registry[L1_COUNT];
#define registry mp__registry
static pthread_mutex_t chunk_lock = PTHREAD_MUTEX_INITIALIZER;

/* Retained free standard chunks, linked through their first word. */
static void *retained;
static size_t retained_bytes;

static bool registry_set(uintptr_t base, bool on)
{
    size_t l1 = base >> L1_SHIFT;
    if (l1 >= L1_COUNT)
        return false;
    leaf *lf = __atomic_load_n(&registry[l1], __ATOMIC_ACQUIRE);
    if (!lf) {
        if (!on)
            return true;
        lf = mp__os_reserve(sizeof(leaf), 0);
        if (!lf)
            return false;
        __atomic_store_n(&registry[l1], lf, __ATOMIC_RELEASE);
    }
    size_t bit = (base >> MP_CHUNK_SHIFT) & (LEAF_BITS - 1);
    uint64_t mask = (uint64_t)1 << (bit & 63);
    if (on)
        __atomic_fetch_or(&lf->bits[bit / 64], mask, __ATOMIC_RELEASE);
    else
        __atomic_fetch_and(&lf->bits[bit / 64], ~mask, __ATOMIC_RELEASE);
    return true;
}

mp__chunk *mp__chunk_lookup(const void *p)
{
    uintptr_t base = (uintptr_t)p & ~(uintptr_t)MP_CHUNK_MASK;
    if (!mp__chunk_registered(base))
        return NULL;
    mp__chunk *c = (mp__chunk *)base;
    return c->magic == MP_CHUNK_MAGIC ? c : NULL;
}

mp__chunk *mp__chunk_alloc(size_t size, uint32_t kind, void *owner)
{
    if (size > SIZE_MAX - MP_CHUNK_SIZE) {
        errno = ENOMEM;
        return NULL;
    }
    size = mp__align_up(size ? size : 1, MP_CHUNK_SIZE);
    void *mem = NULL;
    mp__lock(&chunk_lock);
    if (size == MP_CHUNK_SIZE && retained) {
        mem = retained;
        retained = *(void **)mem;
        *(void **)mem = NULL;
        retained_bytes -= MP_CHUNK_SIZE;
    }
    mp__unlock(&chunk_lock);
    if (!mem)
        mem = mp__os_reserve(size, MP_CHUNK_SIZE);
    if (!mem)
        return NULL;
    mp__chunk *c = mem;
    c->kind = kind;
    c->owner = owner;
    c->size = size;
    c->obj_size = 0;
    c->magic = MP_CHUNK_MAGIC;
    mp__lock(&chunk_lock);
    bool ok = registry_set((uintptr_t)c, true);
    mp__unlock(&chunk_lock);
    if (!ok) {
        mp__os_release(mem, size);
        errno = ENOMEM;
        return NULL;
    }
    return c;
}

void mp__chunk_free(mp__chunk *c)
{
    if (!c)
        return;
    size_t size = c->size;
    c->magic = 0;
    mp__lock(&chunk_lock);
    registry_set((uintptr_t)c, false);
    bool keep = size == MP_CHUNK_SIZE && retained_bytes + size <= MP_CHUNK_RETAIN;
    mp__unlock(&chunk_lock);
    if (!keep) {
        mp__os_release(c, size);
        return;
    }
    /* Decommit outside the lock: the chunk is no longer reachable. */
    mp__os_decommit(c, size);
    mp__lock(&chunk_lock);
    *(void **)c = retained;
    retained = c;
    retained_bytes += size;
    mp__unlock(&chunk_lock);
}

size_t mp__chunk_retained(void)
{
    mp__lock(&chunk_lock);
    size_t n = retained_bytes;
    mp__unlock(&chunk_lock);
    return n;
}

void mp__chunk_release_retained(void)
{
    mp__lock(&chunk_lock);
    void *list = retained;
    retained = NULL;
    retained_bytes = 0;
    mp__unlock(&chunk_lock);
    while (list) {
        void *next = *(void **)list;
        mp__os_release(list, MP_CHUNK_SIZE);
        list = next;
    }
}

void mp__chunk_fork_lock(void) { mp__lock(&chunk_lock); }
void mp__chunk_fork_unlock(void) { mp__unlock(&chunk_lock); }
