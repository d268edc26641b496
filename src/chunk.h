/*
 * chunk.h - layer 2: size-aligned chunks with a header.
 *
 * Every chunk starts at an address that is a multiple of MP_CHUNK_SIZE and is
 * MP_CHUNK_SIZE long, or longer in whole pages. Its first bytes are an mp__chunk
 * header. For any pointer p into the first MP_CHUNK_SIZE bytes of a chunk,
 * mp__chunk_of(p) finds the header in O(1) by masking: this is what gives
 * zero per-object headers, mp_free(p) without the pool, and mp_usable_size.
 *
 * The registry records the base of every live chunk, with its owner, so
 * mp__chunk_lookup(p) can reject a pointer that mpool never handed out
 * without reading memory that may be unmapped, and an ownership check
 * (mp__chunk_owned_by) is one lookup, with no read of the chunk header. It
 * is a two-level table (one owner pointer per MP_CHUNK_SIZE of address
 * space); reads take no lock.
 *
 * Standard chunks are mapped MP_CHUNK_BATCH at a time. Free standard
 * chunks are retained up to MP_CHUNK_RETAIN bytes, or as many bytes as the
 * live standard chunks hold when that is more, and reused, backed ones
 * first: a freed chunk stays backed by memory while fewer than
 * MP_CHUNK_HOT are, or a quarter of the live standard chunks up to
 * MP_CHUNK_HOT_MAX (reuse costs no system call, and a memset of only what
 * the new owner needs zeroed); the others are decommitted (they cost
 * address space but no memory); beyond that they go back to the OS at
 * once. Large chunks freed to the cache stay backed for reuse while the
 * standard chunks' memory is not growing on net; growth sends the oldest
 * back.
 */
#ifndef MP_CHUNK_H
#define MP_CHUNK_H

#include "common.h"

#define MP_CHUNK_SHIFT 16
#define MP_CHUNK_SIZE ((size_t)1 << MP_CHUNK_SHIFT)
#define MP_CHUNK_MASK (MP_CHUNK_SIZE - 1)
#define MP_CHUNK_RETAIN ((size_t)128 * MP_CHUNK_SIZE) /* at least; see above */
#define MP_CHUNK_HOT 64   /* retained chunks kept backed by memory (4 MiB) ... */
#define MP_CHUNK_HOT_SHARE 4 /* ... or 1/4 of the live standard chunks, when that is more, */
#define MP_CHUNK_HOT_MAX 1024 /* ... up to this many (64 MiB) */
#define MP_CHUNK_BATCH 16 /* standard chunks mapped at once (1 MiB) */
#define MP_CHUNK_LARGE_RETAIN ((size_t)16 << 20) /* backed chunks past the standard size kept */
#define MP_CHUNK_LARGE_SLOTS 256                  /* ... in at most this many chunks */
#define MP_CHUNK_LARGE_BATCH 16 /* cached chunks given back per call at most (a stack array) */
#define MP_CHUNK_MAGIC 0x6d70636bu /* "mpck" */

typedef struct mp__chunk {
    uint32_t magic;  /* MP_CHUNK_MAGIC while the chunk is live */
    uint32_t kind;   /* mp__kind of the owner */
    void *owner;     /* the pool that owns this chunk */
    size_t size;     /* bytes of the chunk: MP_CHUNK_SIZE, or more in whole pages */
    size_t obj_size; /* slot stride for slabs; 0 for other kinds */
    uintptr_t alias; /* a unit past the first registered for it (mp__chunk_alias), or 0 */
} mp__chunk;

static inline mp__chunk *mp__chunk_of(const void *p)
{
    return (mp__chunk *)((uintptr_t)p & ~(uintptr_t)MP_CHUNK_MASK);
}

/* The registry (chunk.c; its layout is in mpool.h, for the inline
 * mp_free): level 1 indexed by address >> 32, each leaf one entry per
 * MP_CHUNK_SIZE of a 4 GiB region: NULL where no live chunk starts, else
 * the chunk's owner (mp__chunk_no_owner for a chunk made with none),
 * tagged MP__REG_SLAB for a slab. A leaf is 512 KiB of address space,
 * touched only where chunks are. Holding the owner rather than one bit
 * saves the always-on check of a put the bit extraction and a dependent
 * load of the chunk header. */
#define MP_REG_ADDR_BITS 47 /* user addresses the registry covers: below 128 TiB */
_Static_assert(sizeof(void *) == 8 && sizeof(uintptr_t) == 8,
               "mpool needs 64-bit pointers: its chunk registry covers a 47-bit user address space");
#define MP_REG_L1_SHIFT MP__REG_L1_SHIFT
#define MP_REG_L1_COUNT ((size_t)MP__REG_L1_COUNT)
#define MP_REG_LEAF_SLOTS ((size_t)MP__REG_LEAF_SLOTS)
_Static_assert(MP__REG_L1_SHIFT - 16 == MP_REG_L1_SHIFT - MP_CHUNK_SHIFT && MP__CHUNK_MASK == MP_CHUNK_MASK &&
                   MP_REG_L1_COUNT == (size_t)1 << (MP_REG_ADDR_BITS - MP_REG_L1_SHIFT),
               "the registry's layout as mpool.h states it");
extern char mp__chunk_no_owner;

/* The registry's entry for base (a multiple of MP_CHUNK_SIZE): NULL unless a
 * live chunk starts there. Lock-free; never reads unmapped memory. */
static inline void *mp__chunk_reg_entry(uintptr_t base)
{
    size_t l1 = base >> MP_REG_L1_SHIFT;
    if (l1 >= MP_REG_L1_COUNT)
        return NULL;
    mp__reg_leaf *lf = __atomic_load_n(&mp__registry[l1], __ATOMIC_ACQUIRE);
    if (!lf)
        return NULL;
    return __atomic_load_n(&lf->owner[(base >> MP_CHUNK_SHIFT) & (MP_REG_LEAF_SLOTS - 1)], __ATOMIC_ACQUIRE);
}

/* True when a live chunk starts at base (a multiple of MP_CHUNK_SIZE).
 * Lock-free; never reads unmapped memory. */
static inline bool mp__chunk_registered(uintptr_t base) { return mp__chunk_reg_entry(base) != NULL; }

/* True when a live chunk owned by owner (not NULL) starts at base: the
 * same answer as mp__chunk_lookup(base)->owner == owner, without reading
 * the header. Lock-free; never reads unmapped memory. */
static inline bool mp__chunk_owned_by(uintptr_t base, const void *owner)
{
    return ((uintptr_t)mp__chunk_reg_entry(base) & ~MP__REG_SLAB) == (uintptr_t)owner;
}

/* True when a registry entry names a chunk through an alias (below): the
 * entry is then the chunk's header, tagged, not an owner. */
static inline bool mp__chunk_entry_is_alias(const void *entry) { return ((uintptr_t)entry & 1) != 0; }

/* The chunk holding p, or NULL if p is not inside the first MP_CHUNK_SIZE
 * bytes of a live chunk or of its alias unit. Never reads unmapped memory. */
mp__chunk *mp__chunk_lookup(const void *p);

/* Registers `unit` (a multiple of MP_CHUNK_SIZE inside c, past its first)
 * as c's alias, so that mp__chunk_lookup finds c for a pointer there: a
 * large allocation aligned past MP_CHUNK_SIZE starts beyond its chunk's
 * first unit. At most one per chunk; mp__chunk_free forgets it. false
 * (errno ENOMEM) when the registry cannot grow. */
bool mp__chunk_alias(mp__chunk *c, uintptr_t unit);

/* A new chunk of at least `size` bytes (MP_CHUNK_SIZE, or whole pages past it),
 * registered, with its header filled in. Past the header, its bytes up to
 * offset zero_len read as zero; the rest is unspecified: zero when it is
 * new from the OS, stale when it is a reused chunk (so a caller that needs
 * only a small header zeroed does not pay for zeroing, or committing, the
 * whole chunk). NULL with errno ENOMEM. */
mp__chunk *mp__chunk_alloc(size_t size, size_t zero_len, uint32_t kind, void *owner);
/* The same for a slab (slab.h): its registry entry is tagged MP__REG_SLAB,
 * which lets the inline mp_free take its objects. */
mp__chunk *mp__chunk_alloc_slab(size_t size, size_t zero_len, uint32_t kind, void *owner);

/* The same as mp__chunk_alloc for a chunk past the standard size, which
 * may also be a cached one (mp__chunk_free_cached) of up to max_size
 * bytes: its c->size says which. */
mp__chunk *mp__chunk_alloc_fit(size_t size, size_t max_size, size_t zero_len, uint32_t kind, void *owner);

/* Unregisters the chunk and gives its memory back (or retains it). */
void mp__chunk_free(mp__chunk *c);
/* The same, but a chunk past the standard size may be kept backed for
 * mp__chunk_alloc_fit (for owners that do not need the OS to see it go:
 * the pages keep what they held). */
void mp__chunk_free_cached(mp__chunk *c);

/* A chunk past the standard size, made new_size bytes (whole pages, more
 * than MP_CHUNK_SIZE), keeping its contents up to the smaller size: in
 * place when it shrinks or the address space after it is free, else moved
 * by the OS without copying. The chunk's owner must keep every other
 * thread away from it meanwhile; it must have no alias. Returns the chunk
 * (perhaps at a new address), or NULL, with the chunk as it was, when the
 * OS cannot (errno ENOMEM; always where moving pages is not supported). */
mp__chunk *mp__chunk_resize(mp__chunk *c, size_t new_size);

/* Bytes of standard chunks retained for reuse right now, and of larger
 * ones cached (for tests and stats). */
size_t mp__chunk_retained(void);
size_t mp__chunk_cached_large(void);
/* Returns every retained and cached chunk, and the unused rest of the last
 * batch, to the OS. */
void mp__chunk_release_retained(void);

/* fork(): the chunk lock is a leaf lock, taken last. */
void mp__chunk_fork_lock(void);
void mp__chunk_fork_unlock(void);

#endif /* MP_CHUNK_H */
