/*
 * tcache.h - layer 4: each thread's table of caches, slot numbers, and
 * retiring caches at thread exit.
 *
 * Each kind instance that keeps per-thread caches (a thread-safe object
 * pool; a heap) takes a slot number (1 .. MP_TCACHE_SLOTS-1; 0 means "no
 * thread caches": the pool then does every operation under its lock). Each
 * thread has, per slot, a pointer to what the kind keeps for that thread:
 * an mp__cache for an object pool, a block of them for a heap. An entry
 * with nothing of its own points at mp__cache_none (mag.h), detached caches
 * on which every fast path fails over.
 *
 * Where the entries are: slots below MP__TLS_FAST in mp__tls_fast, an
 * initial-exec TLS array the inline paths index directly (mpool.h; kept
 * small so that the library can be loaded with dlopen); the others in a
 * table the thread gets on first use. Slot numbers are handed out lowest
 * first, so the first pools a program makes get the direct entries.
 *
 * Slots and exits:
 *   - mp__tcache_slot_alloc(retire) registers the kind's retire callback
 *     for the slot: when a thread exits, retire(entry) runs for each of its
 *     entries that is not mp__cache_none, with mp__tcache_lock held; it
 *     must hand the entry's objects to the owner and free the entry.
 *   - A kind that frees its slot (its pool's destroy) first detaches and
 *     frees every thread's entry in it, with mp__tcache_lock held, and
 *     points each entry back at mp__cache_none (each cache knows its
 *     entry: mp__cache.home). The next owner of the slot finds every table
 *     clean.
 *   - Lock order: mp__tcache_lock, then an owner's lock.
 */
#ifndef MP_TCACHE_H
#define MP_TCACHE_H

#include "mag.h"
#include "sync.h"

#define MP_TCACHE_SLOTS 1024

/* The calling thread's table of the slots past MP__TLS_FAST: never NULL,
 * and no entry is NULL. */
extern __thread void **mp__tls_caches __attribute__((tls_model("initial-exec")));

static inline void *mp__tcache_get(uint32_t slot)
{
    return slot < MP__TLS_FAST ? (void *)mp__tls_fast[slot] : mp__tls_caches[slot];
}

/* The calling thread's entry for slot, in a table made for it on first
 * use; NULL with errno ENOMEM. *entry is mp__cache_none until the kind
 * stores its own. */
void **mp__tcache_entry(uint32_t slot);

/* True when entry is a kind's own (not the shared detached caches). */
static inline bool mp__tcache_is_own(const void *entry) { return entry != (const void *)mp__cache_none; }
/* Points an entry back at the detached caches (mp__tcache_lock held). */
static inline void mp__tcache_clear(void **home) { *home = mp__cache_none; }

/* A slot for a new kind instance, 0 when all are taken. */
uint32_t mp__tcache_slot_alloc(void (*retire)(void *entry));
/* Gives a slot back (mp__tcache_lock held, every entry cleared). */
void mp__tcache_slot_free(uint32_t slot);

extern pthread_mutex_t mp__tcache_lock;

/* ------------------------------------------------------------ cache groups
 *
 * A kind whose per-thread caches come in sets (a heap: one per size class)
 * shares one slot among them: a thread's entry points at its block of
 * `count` caches, made on first use, all detached until their owners
 * attach them. At thread exit every attached cache of the block goes back
 * to its owner through retire_cache (mp__tcache_lock held; the owner
 * detaches it, and must not free it), then the block is freed. */
typedef struct mp__cache_group {
    uint32_t slot;    /* 0 when no slot was free: no caches at all */
    uint32_t count;   /* caches per block */
    void (*retire_cache)(mp__cache *c);
    mp__list blocks;  /* every thread's block, under mp__tcache_lock */
    uint32_t nblocks; /* how many: threads using the group now (written under
                       * mp__tcache_lock, read with relaxed loads) */
} mp__cache_group;

/* Takes a slot for the group; false when all are taken (g->slot 0). */
bool mp__cache_group_init(mp__cache_group *g, uint32_t count, void (*retire_cache)(mp__cache *c));
/* The calling thread's block (its first cache), made on first use; NULL
 * with errno ENOMEM. */
mp__cache *mp__cache_group_block(mp__cache_group *g);
/* Frees every thread's block and gives the slot back (mp__tcache_lock
 * held; the owners have detached every cache). */
void mp__cache_group_fini(mp__cache_group *g);

/* fork(): the thread-cache lock, taken first of all (fork.h). */
void mp__tcache_fork_lock(void);
void mp__tcache_fork_unlock(void);

#endif /* MP_TCACHE_H */
