/*
 * nids.c - a small network intrusion detection pipeline, and the reason
 * each mpool pool kind exists.
 *
 *   capture thread                         worker threads (-w N)
 *   --------------                         ---------------------
 *   read pcap / live / generate --packet-> flow table (sharded: one worker
 *   decode headers              per-worker   per flow, chosen by flow hash)
 *   port-scan + SYN-flood        queues    TCP stream matching
 *     trackers (in capture order)          payload rules
 *                              <--put back-- packet back to its pool
 *                  \                        /
 *                   alerts --> output thread: prints in packet order as
 *                              soon as no earlier packet is in flight
 *
 * Where memory comes from (the mpool build; -DNIDS_MALLOC=1 builds the same
 * program on malloc/free):
 *   root arena        everything below hangs off it
 *     packets, packets 16k, packets 66k, packets 257k
 *                     object pools, one per packet size class: a frame is
 *                     copied into the smallest class that holds it. Each
 *                     has a max_live (the same byte budget for every class)
 *                     as backpressure: the capture thread waits in
 *                     mp_objpool_get_wait instead of dropping or growing.
 *                     Small packets are taken and given back in batches.
 *     flows           object pool; obj_size known only after the rules are
 *                     read (each direction keeps the stream's last
 *                     longest-pattern-minus-one bytes); MP_HANDLES: the
 *                     idle-timeout queues hold flows' handles, which go
 *                     stale when the flow ends, even once its memory is
 *                     the next flow
 *     hosts, half-open  MP_SINGLE_THREAD object pools of the capture
 *                     thread's trackers (obj_size known only at run time)
 *     alerts          a reserve with min_reserved: an alert is not lost
 *                     when memory is short; each is freed once printed
 *     flow tables     plain mp_calloc from the root arena
 *
 * Determinism: payload alerts depend only on one flow's packets, which one
 * worker sees in capture order; scan and flood trackers run in the capture
 * thread in capture order. The output thread prints an alert only once
 * every packet before it has been processed (a watermark every producer
 * publishes), sorted by packet then rule, so the output is the same for
 * any -w while alerts still stream out as the capture runs.
 */
#define _POSIX_C_SOURCE 200809L
#ifdef NIDS_HAVE_LIBPCAP
#define _DEFAULT_SOURCE 1 /* <pcap/pcap.h> uses the BSD types u_char, u_int */
#endif
#include "nids.h"

#include <mpool.h>

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef NIDS_MALLOC
#define NIDS_MALLOC 0
#endif
#ifdef NIDS_HAVE_LIBPCAP
#include <pcap/pcap.h>
#endif

/* gen.c: the synthetic traffic generator (also behind nids-gen). */
typedef struct gen gen;
gen *gen_new(const char *scenario, uint64_t npackets, uint64_t seed);
int gen_next(gen *g, uint8_t *buf, uint32_t cap, uint32_t *caplen, uint32_t *wirelen, uint64_t *ts_ns);
void gen_free(gen *g);

#define BATCH 32           /* small packets per queue hand-off and per get_bulk/put_bulk */
#define MAX_WORKERS 64
#define FLOW_BUCKETS (1u << 16)
#define HOST_BUCKETS (1u << 16)
#define NCLASS 4           /* packet size classes */
#define OUT_POLL_NS 5000000ull    /* output thread: how often it looks again while alerts wait */

/* Packet object sizes: most frames fit the first; loopback and GRO/TSO
 * captures have frames up to 64 KiB; the last holds PCAP_MAX_CAPLEN. */
static const size_t class_size[NCLASS] = { 2048, 16 * 1024, 66 * 1024, 257 * 1024 };
static const char *const class_name[NCLASS] = { "packets", "packets 16k", "packets 66k", "packets 257k" };

/* ----------------------------------------------------------------- types */

typedef struct flow_key {
    uint8_t a[16], b[16]; /* endpoints, lower (address, port) first */
    uint16_t pa, pb;
    uint8_t proto, ipver;
} flow_key;

typedef struct pkt {
    struct pkt *next;     /* queue link */
    uint64_t index;       /* position in the capture, from 0 */
    uint64_t ts_ns;
    uint64_t hash;        /* flow hash (both directions alike) */
    uint32_t caplen, wirelen;
    int dec;              /* DEC_* */
    uint8_t dir;          /* 0: src is key.a */
    uint8_t cls;          /* size class: the pool it goes back to */
    decoded d;
    flow_key key;
    uint8_t data[];       /* class_size[cls] - offsetof(pkt, data) bytes */
} pkt;
#define PKT_DATA_CAP(c) (class_size[c] - offsetof(pkt, data))

typedef struct stream {   /* one direction of a TCP flow */
    uint32_t next_seq;    /* next expected sequence number */
    uint32_t hole_lo, hole_hi; /* the bytes skipped at the last gap */
    uint16_t tail_len;    /* bytes in the flow's tail buffer for this direction */
    uint8_t seq_known, fin, has_hole;
} stream;

enum { LRU_TCP, LRU_OTHER }; /* flows by idle timeout */

/* A reference to a flow that may have ended since: the pool build's
 * mp_handle, the malloc build's hand-made equivalent (flow_at). Once its
 * flow ends, a reference names nothing, even when a new flow takes the
 * ended one's memory. 0 is none. */
typedef uint64_t flow_ref;

typedef struct flow {
    struct flow *hnext;             /* hash chain */
    flow_ref self;                  /* the reference the idle queue keeps */
    uint32_t idle_pos;              /* where its idle queue entry is in the ring; IDLE_NONE: none yet */
    flow_key key;
    uint64_t hash;
    uint64_t last_ts, pkts, bytes;
    uint64_t cand[2];               /* payload rules that apply, per direction (pkt.dir) */
    uint64_t fired;                 /* payload rules that have fired */
    stream s[2];                    /* per direction (pkt.dir) */
    uint8_t lru;                    /* LRU_TCP or LRU_OTHER */
    uint8_t tails[];                /* 2 * cfg.tail_cap: each direction's last bytes */
} flow;

typedef struct alert {
    struct alert *next;
    uint64_t index, ts_ns;
    const rule *r;
    uint8_t ipver, proto;
    uint16_t sport, dport;
    uint8_t src[16], dst[16];
} alert;

typedef struct alertq {             /* one producer's alerts, in packet order */
    pthread_mutex_t mu;
    alert *head, *tail;             /* guarded by mu */
} alertq;

typedef struct host {               /* capture thread: one address */
    struct host *hnext, *older, *newer;
    uint64_t last_ts;
    uint8_t addr[16];
    uint8_t ipver;
    uint8_t scan_alerted, flood_alerted;
    uint64_t scan_alert_ts, flood_alert_ts;
    uint32_t pending;               /* as destination: SYNs not completed within the flood window */
    uint32_t nports;                /* as source: distinct ports touched within the scan window */
    struct { uint64_t ts; uint16_t port; } ports[]; /* threshold + 1 */
} host;

typedef struct half {               /* capture thread: a SYN not yet completed */
    struct half *hnext, *older, *newer;
    uint64_t ts, hash;
    host *dst;
    uint8_t src_addr[16], dst_addr[16];
    uint16_t sport, dport;
    uint8_t ipver;
} half;

typedef struct counters {
    uint64_t packets, bytes, flows, flows_ended, idle_ended, evicted, flow_fail, gaps, late, alerts, alert_lost;
    uint64_t live, live_peak;       /* flows in the table now, most at once */
} counters;

/* A worker's flows of one kind by the time they were last seen: the idle
 * queue (flows_expire, flow_evict), a ring of entries in the order the
 * packets came. Each packet of a flow appends the flow's reference and the
 * packet's time, and strikes out the flow's previous entry (the flow knows
 * where it is), so the first entry neither struck out nor stale is the flow
 * seen longest ago. Ending a flow (FIN, RST, idle, eviction) touches no
 * queue: its entry stays, and is dropped when it reaches the front or when
 * the ring is compacted, because its reference no longer names a flow.
 * That is why entries hold references, not pointers: a flow that ended may
 * already be a new flow, at the same address, with packets of its own. */
typedef struct idle_entry {
    flow_ref f;                     /* 0: struck out */
    uint64_t ts;                    /* the packet's capture time */
} idle_entry;

#define IDLE_NONE UINT32_MAX

typedef struct lru {
    idle_entry *v;                  /* ring of cap entries (malloc'd; cap a power of two) */
    size_t head, len, cap;          /* the entries are v[head], ... len of them, wrapping */
} lru;

typedef struct worker {
    pthread_t tid;
    int id;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pkt *head, *tail;           /* queue, guarded by mu */
    bool done;                  /* no more packets; guarded by mu */
    _Atomic uint64_t pending_min; /* lowest packet index queued here or being processed; UINT64_MAX: none */
    flow **buckets;
    lru lru[2];                 /* LRU_TCP, LRU_OTHER: the idle queues */
#if NIDS_MALLOC
    struct flow_slot *slots;    /* the malloc build's flow references (flow_at) */
    uint32_t *free_slots;       /* slots with no flow, a stack */
    size_t nfree_slots;
#endif
    pkt *finished[BATCH];       /* small packets to give back in one put_bulk */
    size_t nfinished;
    alertq q;
    counters c;
    char pad[64];
} worker;

/* ---------------------------------------------------------------- config */

static struct {
    int nworkers;
    uint64_t idle_ns[2];        /* LRU_TCP, LRU_OTHER */
    size_t max_live;            /* small packets in flight; the byte budget of every class */
    size_t class_live[NCLASS];  /* max_live of each class */
    uint64_t max_flows, flows_per_worker;
    size_t tail_cap;            /* longest payload pattern - 1 */
    bool report, quiet, libpcap;
    ruleset rules;
    int linktype;
} cfg = { .idle_ns = { 60ull * 1000000000u, 30ull * 1000000000u }, .max_live = 2048, .max_flows = 65536 };

static void die(const char *fmt, const char *a)
{
    fprintf(stderr, "nids: ");
    fprintf(stderr, fmt, a);
    fputc('\n', stderr);
    exit(1);
}

/* Every class gets the byte budget of max_live small packets (at least
 * one packet), so the bytes in flight stay below NCLASS times that. */
static void classes_init(void)
{
    size_t budget = cfg.max_live * class_size[0];
    for (int c = 0; c < NCLASS; c++) {
        size_t n = budget / class_size[c];
        cfg.class_live[c] = c == 0 ? cfg.max_live : n ? n : 1;
    }
}

/* The smallest class that holds caplen bytes (the last one if none does). */
static int pkt_class(uint32_t caplen)
{
    int c = 0;
    while (c < NCLASS - 1 && caplen > PKT_DATA_CAP(c))
        c++;
    return c;
}

/* ------------------------------------------------------------ memory: mpool */
#if !NIDS_MALLOC

static mp_arena *root;
static mp_objpool *pkt_pool[NCLASS], *flow_pool, *host_pool, *half_pool;
static mp_reserve *alert_res;

static void mem_init(size_t host_size, size_t flow_size)
{
    root = mp_arena_create(NULL, &(mp_arena_opts){ .name = "nids" });
    if (!root)
        die("root arena: %s", strerror(errno));
    for (int c = 0; c < NCLASS; c++) {
        /* Small packets: 1024 made at start, at most 2048 kept free.
         * Large ones are made on demand, and all kept once made: at most
         * class_live of them, within the class's byte budget. */
        pkt_pool[c] = mp_objpool_create(root, &(mp_objpool_opts){
            .name = class_name[c], .obj_size = class_size[c], .initial = c == 0 ? 1024 : 0,
            .max_free = c == 0 ? 2048 : cfg.class_live[c], .max_live = cfg.class_live[c] });
        if (!pkt_pool[c])
            die("creating the packet pools: %s", strerror(errno));
    }
    /* MP_HANDLES: the idle queues refer to flows by handle (flow_at). */
    flow_pool = mp_objpool_create(root, &(mp_objpool_opts){
        .name = "flows", .obj_size = flow_size, .initial = 256, .max_free = 4096, .flags = MP_HANDLES });
    host_pool = mp_objpool_create(root, &(mp_objpool_opts){
        .name = "hosts", .obj_size = host_size, .flags = MP_SINGLE_THREAD });
    half_pool = mp_objpool_create(root, &(mp_objpool_opts){
        .name = "half-open", .obj_size = sizeof(half), .flags = MP_SINGLE_THREAD });
    alert_res = mp_reserve_create(root, &(mp_reserve_opts){
        .name = "alerts", .min_reserved = 64, .elem_size = sizeof(alert) });
    if (!flow_pool || !host_pool || !half_pool || !alert_res)
        die("creating pools: %s", strerror(errno));
}

static void *table_alloc(size_t n, size_t size) { return mp_calloc(root, n, size); }

/* Packets of class c. To move frames to a heap later, these three become
 * an allocation of offsetof(pkt, data) + caplen and mp_free. */
static size_t pkts_get(int c, pkt **v, size_t n) { return mp_objpool_get_bulk(pkt_pool[c], (void **)v, n); }
static pkt *pkt_get_wait(int c) { return mp_objpool_get_wait(pkt_pool[c], MP_WAIT_FOREVER); }
static void pkts_put(int c, pkt **v, size_t n) { mp_objpool_put_bulk(pkt_pool[c], (void *const *)v, n); }

/* A flow and its handle, kept in the flow for its idle queue entries. A
 * handle derefs to its flow until the flow is put, and to NULL from then
 * on, whatever takes the flow's memory next. Each worker derefs only the
 * handles of its own flows, which only it puts: what deref answers holds
 * until the worker itself ends the flow (docs/handles.md). Putting by
 * handle: a flow ended twice would be reported. */
static flow *flow_new(worker *w)
{
    (void)w;
    flow *f = mp_objpool_get(flow_pool);
    if (f)
        f->self = mp_objpool_handle(flow_pool, f);
    return f;
}
static void flow_free(worker *w, flow *f)
{
    (void)w;
    mp_objpool_put_handle(flow_pool, f->self);
}
static flow *flow_at(worker *w, flow_ref r)
{
    (void)w;
    return mp_objpool_deref(flow_pool, r);
}
static void refs_init(worker *w) { (void)w; }
static void refs_fini(worker *w) { (void)w; }
static host *host_get(void) { return mp_objpool_get(host_pool); }
static void host_put(host *h) { mp_objpool_put(host_pool, h); }
static half *half_get(void) { return mp_objpool_get(half_pool); }
static void half_put(half *h) { mp_objpool_put(half_pool, h); }
static alert *alert_get(void) { return mp_reserve_alloc(alert_res, 0); }
static void alert_put(alert *a) { mp_reserve_free(alert_res, a); }

static int check_one(const char *name, int rc, const mp_stats *s)
{
    if (rc || s->objects_in_use != 0 || s->allocs != s->frees) {
        fprintf(stderr, "nids: pool '%s' unbalanced at exit: allocs %zu frees %zu in use %zu\n", name, s->allocs,
                s->frees, s->objects_in_use);
        return 1;
    }
    return 0;
}

/* Every object back? Returns the number of unbalanced pools. */
static int mem_check(void)
{
    mp_stats s;
    int bad = 0;
    for (int c = 0; c < NCLASS; c++)
        bad += check_one(class_name[c], mp_objpool_stats(pkt_pool[c], &s), &s);
    bad += check_one("flows", mp_objpool_stats(flow_pool, &s), &s);
    bad += check_one("hosts", mp_objpool_stats(host_pool, &s), &s);
    bad += check_one("half-open", mp_objpool_stats(half_pool, &s), &s);
    bad += check_one("alerts", mp_reserve_stats(alert_res, &s), &s);
    return bad;
}

static void mem_report(FILE *out)
{
    mp_stats s;
    size_t gets = 0, waits = 0, peak = 0;
    for (int c = 0; c < NCLASS; c++) {
        mp_objpool_stats(pkt_pool[c], &s);
        gets += s.allocs;
        waits += s.waits;
        peak += s.bytes_peak;
    }
    fprintf(out, "summary: packet pools: gets %zu, waits at max_live %zu, peak bytes %zu (sum of the classes' peaks)\n",
            gets, waits, peak);
    if (cfg.report)
        mp_report(out, root);
}

/* Gives everything back: a few pools and tables, so this takes
 * milliseconds (timed in the summary). */
static void mem_fini(void) { mp_arena_destroy(root); }

/* ----------------------------------------------------------- memory: malloc */
#else

static atomic_size_t n_flow, n_host, n_half, n_alert; /* objects out */
static atomic_size_t pkts_out[NCLASS];  /* in-flight packets per class: backpressure by hand */
static pthread_mutex_t bp_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t bp_cv = PTHREAD_COND_INITIALIZER;
static size_t host_bytes, flow_bytes;
static void *tables[2 + MAX_WORKERS];
static size_t ntables;

static void mem_init(size_t host_size, size_t flow_size)
{
    host_bytes = host_size;
    flow_bytes = flow_size;
}

static void *table_alloc(size_t n, size_t size)
{
    void *p = calloc(n, size);
    if (p && ntables < sizeof tables / sizeof tables[0])
        tables[ntables++] = p;
    return p;
}

static size_t pkts_get(int c, pkt **v, size_t n)
{
    size_t got = 0;
    while (got < n && atomic_load(&pkts_out[c]) < cfg.class_live[c]) {
        if (!(v[got] = malloc(class_size[c])))
            break;
        atomic_fetch_add(&pkts_out[c], 1);
        got++;
    }
    return got;
}
static pkt *pkt_get_wait(int c)
{
    pthread_mutex_lock(&bp_mu);
    while (atomic_load(&pkts_out[c]) >= cfg.class_live[c])
        pthread_cond_wait(&bp_cv, &bp_mu);
    pthread_mutex_unlock(&bp_mu);
    pkt *p;
    return pkts_get(c, &p, 1) ? p : NULL;
}
static void pkts_put(int c, pkt **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    if (atomic_fetch_sub(&pkts_out[c], n) >= cfg.class_live[c]) {
        pthread_mutex_lock(&bp_mu);
        pthread_cond_broadcast(&bp_cv);
        pthread_mutex_unlock(&bp_mu);
    }
}

static void *counted_malloc(size_t size, atomic_size_t *n)
{
    void *p = malloc(size);
    if (p)
        atomic_fetch_add(n, 1);
    return p;
}
static void counted_free(void *p, atomic_size_t *n)
{
    free(p);
    atomic_fetch_sub(n, 1);
}
/* Flow references by hand, what MP_HANDLES gives the pool build: each
 * worker numbers its live flows (at most flows_per_worker) in a table of
 * slots, each with a generation that goes up when its flow is freed. A
 * reference is (slot + 1) << 32 | generation: it names the flow until the
 * flow is freed, never the next flow in that slot. Only the worker uses its
 * table. */
typedef struct flow_slot {
    flow *f;
    uint32_t gen;
} flow_slot;

static void refs_init(worker *w)
{
    size_t n = cfg.flows_per_worker;
    w->slots = calloc(n, sizeof *w->slots);
    w->free_slots = malloc(n * sizeof *w->free_slots);
    if (!w->slots || !w->free_slots)
        die("flow references: %s", strerror(errno));
    for (size_t i = 0; i < n; i++)
        w->free_slots[i] = (uint32_t)(n - 1 - i);
    w->nfree_slots = n;
}
static void refs_fini(worker *w)
{
    free(w->slots);
    free(w->free_slots);
}
static flow *flow_new(worker *w)
{
    if (!w->nfree_slots) /* never: a worker ends a flow before it passes flows_per_worker */
        return NULL;
    flow *f = counted_malloc(flow_bytes, &n_flow);
    if (f) {
        uint32_t i = w->free_slots[--w->nfree_slots];
        w->slots[i].f = f;
        f->self = (uint64_t)(i + 1) << 32 | w->slots[i].gen;
    }
    return f;
}
static void flow_free(worker *w, flow *f)
{
    uint32_t i = (uint32_t)(f->self >> 32) - 1;
    w->slots[i].f = NULL;
    w->slots[i].gen++;
    w->free_slots[w->nfree_slots++] = i;
    counted_free(f, &n_flow);
}
static flow *flow_at(worker *w, flow_ref r)
{
    const flow_slot *s = &w->slots[(uint32_t)(r >> 32) - 1];
    return s->gen == (uint32_t)r ? s->f : NULL;
}
static host *host_get(void) { return counted_malloc(host_bytes, &n_host); }
static void host_put(host *h) { counted_free(h, &n_host); }
static half *half_get(void) { return counted_malloc(sizeof(half), &n_half); }
static void half_put(half *h) { counted_free(h, &n_half); }
static alert *alert_get(void) { return counted_malloc(sizeof(alert), &n_alert); }
static void alert_put(alert *a) { counted_free(a, &n_alert); }

static int mem_check(void)
{
    int bad = 0;
    const char *names[NCLASS + 4] = { "flows", "hosts", "half-open", "alerts" };
    size_t v[NCLASS + 4] = { atomic_load(&n_flow), atomic_load(&n_host), atomic_load(&n_half),
                             atomic_load(&n_alert) };
    for (int c = 0; c < NCLASS; c++) {
        names[4 + c] = class_name[c];
        v[4 + c] = atomic_load(&pkts_out[c]);
    }
    for (int i = 0; i < NCLASS + 4; i++)
        if (v[i]) {
            fprintf(stderr, "nids: '%s' unbalanced at exit: %zu still allocated\n", names[i], v[i]);
            bad++;
        }
    return bad;
}
static void mem_report(FILE *out)
{
    if (cfg.report)
        fprintf(out, "(malloc build: no pool report)\n");
}
static void mem_fini(void)
{
    for (size_t i = 0; i < ntables; i++)
        free(tables[i]);
}
#endif

/* ------------------------------------------------------------------- util */

static uint64_t mix(uint64_t h, uint64_t v)
{
    h ^= v;
    h *= 0x9e3779b97f4a7c15ull;
    return h ^ (h >> 29);
}

static uint64_t hash_bytes(uint64_t h, const uint8_t *p, size_t n)
{
    uint64_t v;
    for (; n >= 8; n -= 8, p += 8) {
        memcpy(&v, p, 8);
        h = mix(h, v);
    }
    v = 0;
    memcpy(&v, p, n);
    return mix(h, v);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static const char *proto_name(int proto, char *buf)
{
    switch (proto) {
    case IPPROTO_TCP_: return "tcp";
    case IPPROTO_UDP_: return "udp";
    case IPPROTO_ICMP_: return "icmp";
    case IPPROTO_ICMPV6_: return "icmp6";
    }
    snprintf(buf, 8, "%d", proto);
    return buf;
}

static void fmt_addr(char *out, size_t n, int ipver, const uint8_t *a)
{
    if (ipver == 6) {
        char tmp[INET6_ADDRSTRLEN];
        inet_ntop(AF_INET6, a, tmp, sizeof tmp);
        snprintf(out, n, "[%s]", tmp);
    } else {
        inet_ntop(AF_INET, a, out, (socklen_t)n);
    }
}

/* Fills the flow key, hash and direction of a decoded packet. */
static void make_key(pkt *p)
{
    const decoded *d = &p->d;
    flow_key *k = &p->key;
    uint16_t sp = d->sport, dp = d->dport;
    if (d->proto == IPPROTO_ICMP_ || d->proto == IPPROTO_ICMPV6_)
        sp = dp = 0; /* all ICMP between two hosts is one flow */
    memset(k, 0, sizeof *k);
    int c = memcmp(d->src, d->dst, 16);
    p->dir = c > 0 || (c == 0 && sp > dp);
    memcpy(k->a, p->dir ? d->dst : d->src, 16);
    memcpy(k->b, p->dir ? d->src : d->dst, 16);
    k->pa = p->dir ? dp : sp;
    k->pb = p->dir ? sp : dp;
    k->proto = d->proto;
    k->ipver = d->ipver;
    p->hash = hash_bytes(0x243f6a8885a308d3ull, (const uint8_t *)k, sizeof *k);
}

/* ----------------------------------------------------------------- alerts */

/* Producers (the capture thread's trackers, each worker) append alerts to
 * their own queue, in packet order. The output thread prints every alert
 * below the watermark, the lowest packet index some thread may still make
 * an alert for: no earlier packet is unsent in the capture thread
 * (cap_unsent) or queued or being processed in a worker (pending_min). An
 * index is published only after the alerts of every packet before it are
 * queued, and the capture publishes cap_unsent after the worker's
 * pending_min covers the packets it handed over, so the output thread,
 * reading cap_unsent first, never passes an alert that is still coming. */
static _Atomic uint64_t cap_unsent;   /* capture thread: lowest index not yet handed to a worker */
static worker workers[MAX_WORKERS];

static struct {
    pthread_t tid;
    pthread_mutex_t mu;
    pthread_cond_t cv;                /* on CLOCK_MONOTONIC */
    bool stop;                        /* guarded by mu: print everything left and return */
    atomic_size_t queued;             /* alerts queued and not yet printed */
    atomic_size_t held, held_peak;    /* alerts allocated now, most at once */
    alertq *queues[MAX_WORKERS + 1];
    int nqueues;
    alert **v;                        /* output thread: one flush's alerts */
    size_t vcap;
    size_t printed, *by_rule;         /* by rule index */
    bool failed;                      /* out of memory sorting a flush */
} out;

static alert *new_alert(void)
{
    alert *a = alert_get();
    if (a) {
        size_t n = atomic_fetch_add(&out.held, 1) + 1, peak = atomic_load(&out.held_peak);
        while (n > peak && !atomic_compare_exchange_weak(&out.held_peak, &peak, n))
            ;
    }
    return a;
}

static void free_alert(alert *a)
{
    atomic_fetch_sub(&out.held, 1);
    alert_put(a);
}

static void add_alert(alertq *q, counters *c, const rule *r, const pkt *p)
{
    alert *a = new_alert();
    if (!a) {
        c->alert_lost++;
        return;
    }
    a->next = NULL;
    a->index = p->index;
    a->ts_ns = p->ts_ns;
    a->r = r;
    a->ipver = p->d.ipver;
    a->proto = p->d.proto;
    a->sport = p->d.sport;
    a->dport = p->d.dport;
    memcpy(a->src, p->d.src, 16);
    memcpy(a->dst, p->d.dst, 16);
    c->alerts++;
    pthread_mutex_lock(&q->mu);
    if (q->tail)
        q->tail->next = a;
    else
        q->head = a;
    q->tail = a;
    pthread_mutex_unlock(&q->mu);
    if (atomic_fetch_add(&out.queued, 1) == 0) { /* the output thread may be asleep without a timeout */
        pthread_mutex_lock(&out.mu);
        pthread_cond_signal(&out.cv);
        pthread_mutex_unlock(&out.mu);
    }
}

static uint64_t watermark(void)
{
    uint64_t w = atomic_load_explicit(&cap_unsent, memory_order_acquire);
    for (int i = 0; i < cfg.nworkers; i++) {
        uint64_t m = atomic_load_explicit(&workers[i].pending_min, memory_order_acquire);
        if (m < w)
            w = m;
    }
    return w;
}

/* Alerts print by packet index, then rule (file order). */
static int cmp_alert(const void *x, const void *y)
{
    const alert *a = *(alert *const *)x, *b = *(alert *const *)y;
    if (a->index != b->index)
        return a->index < b->index ? -1 : 1;
    return a->r < b->r ? -1 : a->r > b->r;
}

static void print_alert(const alert *a)
{
    char s[64], d[64], pb[8];
    fmt_addr(s, sizeof s, a->ipver, a->src);
    fmt_addr(d, sizeof d, a->ipver, a->dst);
    printf("ALERT %s %llu.%09llu %s %s:%u -> %s:%u %s\n", a->r->id, (unsigned long long)(a->ts_ns / 1000000000u),
           (unsigned long long)(a->ts_ns % 1000000000u), proto_name(a->proto, pb), s, a->sport, d, a->dport,
           a->r->msg);
}

/* Prints and frees every queued alert of a packet below w. */
static void out_flush(uint64_t w)
{
    size_t n = 0;
    for (int i = 0; i < out.nqueues; i++) {
        alertq *q = out.queues[i];
        pthread_mutex_lock(&q->mu);
        while (q->head && q->head->index < w) {
            alert *a = q->head;
            q->head = a->next;
            if (!q->head)
                q->tail = NULL;
            if (n == out.vcap) {
                size_t cap = out.vcap ? out.vcap * 2 : 256;
                alert **nv = realloc(out.v, cap * sizeof *nv);
                if (!nv) { /* cannot sort: leave the rest queued for the next flush */
                    q->head = a;
                    if (!q->tail)
                        q->tail = a;
                    out.failed = true;
                    break;
                }
                out.v = nv;
                out.vcap = cap;
            }
            out.v[n++] = a;
        }
        pthread_mutex_unlock(&q->mu);
    }
    if (!n)
        return;
    qsort(out.v, n, sizeof *out.v, cmp_alert);
    for (size_t i = 0; i < n; i++) {
        if (!cfg.quiet)
            print_alert(out.v[i]);
        out.by_rule[out.v[i]->r - cfg.rules.rules]++;
        free_alert(out.v[i]);
    }
    out.printed += n;
    atomic_fetch_sub(&out.queued, n);
    if (!cfg.quiet)
        fflush(stdout);
}

static void *out_main(void *arg)
{
    pthread_mutex_lock(&out.mu);
    for (;;) {
        if (!out.stop && atomic_load(&out.queued) == 0) {
            pthread_cond_wait(&out.cv, &out.mu);
        } else if (!out.stop) {
            /* Alerts wait for earlier packets still in flight: look again soon. */
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_nsec += (long)OUT_POLL_NS;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&out.cv, &out.mu, &ts);
        }
        bool stop = out.stop;
        pthread_mutex_unlock(&out.mu);
        out_flush(stop ? UINT64_MAX : watermark());
        pthread_mutex_lock(&out.mu);
        if (stop && (atomic_load(&out.queued) == 0 || out.failed))
            break;
    }
    pthread_mutex_unlock(&out.mu);
    return NULL;
}

static void out_start(void)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&out.mu, NULL);
    pthread_cond_init(&out.cv, &ca);
    pthread_condattr_destroy(&ca);
    if (!(out.by_rule = calloc(cfg.rules.n + 1, sizeof *out.by_rule)))
        die("%s", "out of memory");
    if (pthread_create(&out.tid, NULL, out_main, NULL))
        die("pthread_create: %s", strerror(errno));
}

/* After every producer has stopped: print what is left, end the thread. */
static void out_stop(void)
{
    pthread_mutex_lock(&out.mu);
    out.stop = true;
    pthread_cond_signal(&out.cv);
    pthread_mutex_unlock(&out.mu);
    pthread_join(out.tid, NULL);
    free(out.v);
}

/* ----------------------------------------------------------------- worker */

/* Payload rules that apply to what a flow's first packet's sender sends
 * (from its port to the receiver's) or, with the ports swapped, receives. */
static uint64_t rule_candidates(const decoded *d, uint16_t from, uint16_t to)
{
    uint64_t m = 0;
    for (size_t i = 0; i < cfg.rules.npayload; i++) {
        const rule *r = &cfg.rules.rules[i];
        bool proto_ok = r->proto == 0 || r->proto == d->proto ||
                        (r->proto == IPPROTO_ICMP_ && d->proto == IPPROTO_ICMPV6_);
        bool port_ok = r->port < 0 ||
                       (r->port_dir == PORT_EITHER && (r->port == from || r->port == to)) ||
                       (r->port_dir == PORT_SRC && r->port == from) || (r->port_dir == PORT_DST && r->port == to);
        if (proto_ok && port_ok)
            m |= 1ull << i;
    }
    return m;
}

static void fire(worker *w, flow *f, unsigned i, const pkt *p)
{
    f->fired |= 1ull << i;
    add_alert(&w->q, &w->c, &cfg.rules.rules[i], p);
}

/* Fires the rules of `todo` whose pattern is in buf[0..n). */
static void match(worker *w, flow *f, const pkt *p, uint64_t todo, const uint8_t *buf, size_t n)
{
    for (uint64_t m = todo; m; m &= m - 1) {
        unsigned i = (unsigned)__builtin_ctzll(m);
        const rule *r = &cfg.rules.rules[i];
        if (nids_find(buf, n, r->pat, r->patlen))
            fire(w, f, i, p);
    }
}

/* New in-order bytes pl[0..n) of direction dir: matched together with the
 * direction's tail (its last tail_cap bytes), so that a pattern split over
 * segments is found; then the tail is updated. */
static void match_stream(worker *w, flow *f, const pkt *p, int dir, const uint8_t *pl, uint32_t n)
{
    stream *s = &f->s[dir];
    uint8_t *tail = f->tails + (size_t)dir * cfg.tail_cap;
    size_t tl = s->tail_len, cap = cfg.tail_cap;
    uint64_t todo = f->cand[dir] & ~f->fired;
    if (tl && todo) {
        uint8_t joint[2 * (RULE_PAT_MAX - 1)];
        size_t head = n < cap ? n : cap;
        memcpy(joint, tail, tl);
        memcpy(joint + tl, pl, head);
        for (uint64_t m = todo; m; m &= m - 1) {
            unsigned i = (unsigned)__builtin_ctzll(m);
            const rule *r = &cfg.rules.rules[i];
            size_t k = r->patlen - 1; /* a match across the boundary starts in the last k tail bytes */
            size_t from = tl > k ? tl - k : 0, to = tl + (head < k ? head : k);
            if (k && nids_find(joint + from, to - from, r->pat, r->patlen))
                fire(w, f, i, p);
        }
        todo = f->cand[dir] & ~f->fired;
    }
    match(w, f, p, todo, pl, n);
    if (!cap)
        return;
    if (n >= cap) {
        memcpy(tail, pl + n - cap, cap);
        s->tail_len = (uint16_t)cap;
    } else {
        size_t keep = tl < cap - n ? tl : cap - n;
        memmove(tail, tail + tl - keep, keep);
        memcpy(tail + keep, pl, n);
        s->tail_len = (uint16_t)(keep + n);
    }
}

/* A TCP segment with payload, seq its first byte's sequence number. In
 * order: matched with the stream. Ahead of what was expected (a segment
 * was lost, or comes later): a gap; the stream resumes here, without the
 * tail, and the skipped range is remembered. Behind: only the new bytes
 * count, except that bytes inside the last skipped range (a late segment)
 * are matched on their own. */
static void tcp_segment(worker *w, flow *f, const pkt *p, int dir, uint32_t seq, const uint8_t *pl, uint32_t plen)
{
    stream *s = &f->s[dir];
    if (!s->seq_known) { /* picked up mid-stream */
        s->next_seq = seq;
        s->seq_known = 1;
    }
    int32_t ahead = (int32_t)(seq - s->next_seq);
    if (ahead > 0) {
        w->c.gaps++;
        s->hole_lo = s->next_seq;
        s->hole_hi = seq;
        s->has_hole = 1;
        s->tail_len = 0;
    } else if (ahead < 0) {
        if (s->has_hole) {
            int64_t a = (int32_t)(seq - s->hole_lo), len = (uint32_t)(s->hole_hi - s->hole_lo);
            int64_t lo = a > 0 ? a : 0, hi = a + plen < len ? a + plen : len;
            uint64_t todo = f->cand[dir] & ~f->fired;
            if (hi > lo) {
                w->c.late++;
                if (todo)
                    match(w, f, p, todo, pl + (lo - a), (size_t)(hi - lo));
            }
        }
        uint32_t old = (uint32_t)-(int64_t)ahead;
        if (old >= plen)
            return; /* nothing new: a retransmission */
        pl += old;
        plen -= old;
        seq += old;
    }
    s->next_seq = seq + plen;
    if (f->cand[dir] & ~f->fired)
        match_stream(w, f, p, dir, pl, plen);
}

/* The idle queues (see struct lru). */
static size_t idle_index(const lru *l, size_t i) { return (l->head + i) & (l->cap - 1); }

/* The flow of entry e if it is current (not struck out, its flow live). */
static flow *idle_current(worker *w, const idle_entry *e) { return e->f ? flow_at(w, e->f) : NULL; }

static void idle_pop(lru *l)
{
    l->head = (l->head + 1) & (l->cap - 1);
    l->len--;
}

/* The flow of l seen longest ago, or NULL: the entries before the first
 * current one leave the queue. */
static flow *idle_front(worker *w, lru *l)
{
    for (; l->len; idle_pop(l)) {
        flow *f = idle_current(w, &l->v[l->head]);
        if (f)
            return f;
    }
    return NULL;
}

/* The flow of l seen longest ago if it has been idle for longer than
 * idle_ns at now, else NULL. Entries are in the order packets came, so
 * with capture times that only grow none behind an entry is older: an
 * entry not idle yet, current or not, ends the search without a look at
 * its flow (the case of nearly every packet). */
static flow *idle_expired(worker *w, lru *l, uint64_t now, uint64_t idle_ns)
{
    for (; l->len; idle_pop(l)) {
        const idle_entry *e = &l->v[l->head];
        if ((int64_t)(now - e->ts) <= (int64_t)idle_ns)
            return NULL;
        flow *f = idle_current(w, e); /* its last packet is this entry's */
        if (f)
            return f;
    }
    return NULL;
}

/* The ring is full: only current entries stay (one per live flow of the
 * kind), in order, each flow told where its entry went; the ring doubles
 * when they fill half of it or more. So an entry is looked at a bounded
 * number of times, and the ring holds at most four per live flow. */
static void idle_make_room(worker *w, lru *l)
{
    size_t kept = 0;
    for (size_t i = 0; i < l->len; i++) {
        idle_entry e = l->v[idle_index(l, i)];
        flow *f = idle_current(w, &e);
        if (f) {
            f->idle_pos = (uint32_t)idle_index(l, kept);
            l->v[f->idle_pos] = e;
            kept++;
        }
    }
    l->len = kept;
    if (l->cap && kept < l->cap / 2)
        return;
    size_t cap = l->cap ? 2 * l->cap : 1024;
    idle_entry *v = malloc(cap * sizeof *v);
    if (!v)
        die("idle queue: %s", strerror(errno));
    for (size_t i = 0; i < l->len; i++) {
        v[i] = l->v[idle_index(l, i)];
        flow_at(w, v[i].f)->idle_pos = (uint32_t)i; /* every entry is current now */
    }
    free(l->v);
    l->v = v;
    l->head = 0;
    l->cap = cap;
}

/* f was just seen: its previous entry is struck out, a new one goes to the
 * back. */
static void idle_append(worker *w, lru *l, flow *f)
{
    if (f->idle_pos != IDLE_NONE)
        l->v[f->idle_pos].f = 0;
    if (l->len == l->cap)
        idle_make_room(w, l);
    f->idle_pos = (uint32_t)idle_index(l, l->len++);
    l->v[f->idle_pos] = (idle_entry){ f->self, f->last_ts };
}

/* Ends f: out of the hash table and back to its pool. Its idle queue
 * entries stay, and name nothing from now on. */
static void flow_end(worker *w, flow *f)
{
    flow **pp = &w->buckets[f->hash & (FLOW_BUCKETS - 1)];
    while (*pp != f)
        pp = &(*pp)->hnext;
    *pp = f->hnext;
    w->c.flows_ended++;
    w->c.live--;
    flow_free(w, f);
}

/* Ends the flows idle for longer than their kind's timeout, in capture time. */
static void flows_expire(worker *w, uint64_t now)
{
    for (int k = 0; k < 2; k++) {
        flow *f;
        while ((f = idle_expired(w, &w->lru[k], now, cfg.idle_ns[k]))) {
            w->c.idle_ended++;
            flow_end(w, f);
        }
    }
}

/* The table is full: the flow seen longest ago goes. */
static void flow_evict(worker *w)
{
    flow *t = idle_front(w, &w->lru[LRU_TCP]), *o = idle_front(w, &w->lru[LRU_OTHER]);
    flow *f = !t ? o : !o ? t : (int64_t)(t->last_ts - o->last_ts) <= 0 ? t : o;
    w->c.evicted++;
    flow_end(w, f);
}

static void worker_packet(worker *w, pkt *p)
{
    w->c.packets++;
    w->c.bytes += p->wirelen;
    if (p->dec != DEC_OK || !p->d.has_l4)
        return;
    const decoded *d = &p->d;
    uint64_t now = p->ts_ns;
    flows_expire(w, now);
    flow **bucket = &w->buckets[p->hash & (FLOW_BUCKETS - 1)];
    flow *f = *bucket;
    while (f && (f->hash != p->hash || memcmp(&f->key, &p->key, sizeof f->key)))
        f = f->hnext;
    if (!f) {
        if (w->c.live >= cfg.flows_per_worker)
            flow_evict(w);
        if (!(f = flow_new(w))) {
            w->c.flow_fail++;
            return;
        }
        f->key = p->key;
        f->hash = p->hash;
        f->pkts = f->bytes = 0;
        f->fired = 0;
        f->cand[p->dir] = rule_candidates(d, d->sport, d->dport);
        f->cand[!p->dir] = rule_candidates(d, d->dport, d->sport);
        memset(f->s, 0, sizeof f->s);
        f->lru = d->proto == IPPROTO_TCP_ ? LRU_TCP : LRU_OTHER;
        f->idle_pos = IDLE_NONE;
        f->hnext = *bucket;
        *bucket = f;
        w->c.flows++;
        if (++w->c.live > w->c.live_peak)
            w->c.live_peak = w->c.live;
    }
    f->last_ts = now;
    f->pkts++;
    f->bytes += p->wirelen;
    idle_append(w, &w->lru[f->lru], f);

    const uint8_t *pl = p->data + d->payload_off;
    uint32_t plen = d->payload_len;
    if (d->proto != IPPROTO_TCP_) {
        uint64_t todo = f->cand[p->dir] & ~f->fired;
        if (plen && todo)
            match(w, f, p, todo, pl, plen);
        return;
    }
    stream *s = &f->s[p->dir];
    uint8_t fl = d->tcp_flags;
    uint32_t seq = d->seq;
    if (fl & TCP_SYN) { /* a (new) start: the data begins after the SYN */
        seq++;
        s->next_seq = seq;
        s->seq_known = 1;
        s->tail_len = 0;
        s->has_hole = 0;
    }
    if (plen)
        tcp_segment(w, f, p, p->dir, seq, pl, plen);
    if (fl & TCP_FIN)
        s->fin = 1;
    if ((fl & TCP_RST) || (f->s[0].fin && f->s[1].fin))
        flow_end(w, f);
}

static void finish(worker *w, pkt *p)
{
    if (p->cls) { /* large packets go back at once: there are few of them */
        pkts_put(p->cls, &p, 1);
        return;
    }
    w->finished[w->nfinished++] = p;
    if (w->nfinished == BATCH) {
        pkts_put(0, w->finished, BATCH);
        w->nfinished = 0;
    }
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    for (;;) {
        pthread_mutex_lock(&w->mu);
        if (!w->head && !w->done) {
            atomic_store_explicit(&w->pending_min, UINT64_MAX, memory_order_release);
            /* Give packets back before sleeping: the capture thread may be
             * waiting for exactly these at max_live. */
            pthread_mutex_unlock(&w->mu);
            if (w->nfinished) {
                pkts_put(0, w->finished, w->nfinished);
                w->nfinished = 0;
            }
            pthread_mutex_lock(&w->mu);
            while (!w->head && !w->done)
                pthread_cond_wait(&w->cv, &w->mu);
        }
        pkt *chain = w->head;
        w->head = w->tail = NULL;
        atomic_store_explicit(&w->pending_min, chain ? chain->index : UINT64_MAX, memory_order_release);
        pthread_mutex_unlock(&w->mu);
        if (!chain)
            break; /* done, and nothing queued */
        while (chain) {
            pkt *next = chain->next;
            worker_packet(w, chain);
            finish(w, chain);
            if (next) /* this packet's alerts are queued */
                atomic_store_explicit(&w->pending_min, next->index, memory_order_release);
            chain = next;
        }
    }
    if (w->nfinished)
        pkts_put(0, w->finished, w->nfinished);
    w->nfinished = 0;
    for (int k = 0; k < 2; k++) { /* end of capture: every flow ends */
        flow *f;
        while ((f = idle_front(w, &w->lru[k])))
            flow_end(w, f);
        free(w->lru[k].v);
    }
    refs_fini(w);
    return NULL;
}

/* ------------------------------------------------- capture-thread trackers */

typedef struct tracker {
    host **hosts;             /* by address */
    host *h_oldest, *h_newest;
    half **halves;            /* by (src, sport, dst, dport) */
    half *q_oldest, *q_newest;
    uint64_t host_idle_ns;
    alertq q;
    counters c;
    uint64_t track_fail;
} tracker;

#define LIST_UNLINK(head_old, head_new, x)                                                                  \
    do {                                                                                                    \
        if ((x)->older) (x)->older->newer = (x)->newer; else (head_old) = (x)->newer;                      \
        if ((x)->newer) (x)->newer->older = (x)->older; else (head_new) = (x)->older;                      \
    } while (0)
#define LIST_APPEND(head_old, head_new, x)                                                                  \
    do {                                                                                                    \
        (x)->newer = NULL;                                                                                  \
        (x)->older = (head_new);                                                                            \
        if (head_new) (head_new)->newer = (x); else (head_old) = (x);                                       \
        (head_new) = (x);                                                                                   \
    } while (0)

static host *host_find(tracker *t, const uint8_t *addr, int ipver, uint64_t now, bool create)
{
    uint64_t h = hash_bytes((uint64_t)ipver, addr, 16);
    host **bucket = &t->hosts[h & (HOST_BUCKETS - 1)];
    host *x = *bucket;
    while (x && (x->ipver != ipver || memcmp(x->addr, addr, 16)))
        x = x->hnext;
    if (x) {
        LIST_UNLINK(t->h_oldest, t->h_newest, x);
    } else {
        if (!create)
            return NULL;
        if (!(x = host_get())) {
            t->track_fail++;
            return NULL;
        }
        memcpy(x->addr, addr, 16);
        x->ipver = (uint8_t)ipver;
        x->scan_alerted = x->flood_alerted = 0;
        x->pending = x->nports = 0;
        x->hnext = *bucket;
        *bucket = x;
    }
    x->last_ts = now;
    LIST_APPEND(t->h_oldest, t->h_newest, x);
    return x;
}

static void host_remove(tracker *t, host *x)
{
    uint64_t h = hash_bytes((uint64_t)x->ipver, x->addr, 16);
    host **pp = &t->hosts[h & (HOST_BUCKETS - 1)];
    while (*pp != x)
        pp = &(*pp)->hnext;
    *pp = x->hnext;
    LIST_UNLINK(t->h_oldest, t->h_newest, x);
    host_put(x);
}

static uint64_t half_hash(const decoded *d)
{
    uint64_t h = hash_bytes((uint64_t)d->ipver << 32 | (uint64_t)d->sport << 16 | d->dport, d->src, 16);
    return hash_bytes(h, d->dst, 16);
}

static half **half_lookup(tracker *t, const decoded *d, uint64_t h)
{
    half **pp = &t->halves[h & (HOST_BUCKETS - 1)];
    for (half *x; (x = *pp); pp = &x->hnext)
        if (x->hash == h && x->sport == d->sport && x->dport == d->dport && x->ipver == d->ipver &&
            !memcmp(x->src_addr, d->src, 16) && !memcmp(x->dst_addr, d->dst, 16))
            return pp;
    return pp;
}

static void half_remove(tracker *t, half **pp)
{
    half *x = *pp;
    *pp = x->hnext;
    LIST_UNLINK(t->q_oldest, t->q_newest, x);
    x->dst->pending--;
    half_put(x);
}

static void tracker_expire(tracker *t, uint64_t now)
{
    const rule *fl = cfg.rules.synflood;
    while (fl && t->q_oldest && (int64_t)(now - t->q_oldest->ts) > (int64_t)fl->window_ns) {
        half *x = t->q_oldest;
        half **pp = &t->halves[x->hash & (HOST_BUCKETS - 1)];
        while (*pp != x)
            pp = &(*pp)->hnext;
        half_remove(t, pp);
    }
    while (t->h_oldest && (int64_t)(now - t->h_oldest->last_ts) > (int64_t)t->host_idle_ns &&
           t->h_oldest->pending == 0)
        host_remove(t, t->h_oldest);
}

/* A TCP packet, in capture order. */
static void track(tracker *t, const pkt *p)
{
    const decoded *d = &p->d;
    uint64_t now = p->ts_ns;
    uint8_t fl = d->tcp_flags;
    tracker_expire(t, now);
    bool syn = (fl & (TCP_SYN | TCP_ACK | TCP_RST)) == TCP_SYN;
    const rule *sc = cfg.rules.portscan, *fr = cfg.rules.synflood;
    if (syn && sc) {
        host *src = host_find(t, d->src, d->ipver, now, true);
        if (src) {
            uint32_t k = 0, found = 0;
            for (uint32_t i = 0; i < src->nports; i++) { /* drop ports out of the window */
                if ((int64_t)(now - src->ports[i].ts) > (int64_t)sc->window_ns)
                    continue;
                if (src->ports[i].port == d->dport) {
                    src->ports[i].ts = now;
                    found = 1;
                }
                src->ports[k++] = src->ports[i];
            }
            src->nports = k;
            if (!found) {
                if (k == sc->threshold + 1) { /* full: forget the oldest */
                    memmove(src->ports, src->ports + 1, (size_t)(k - 1) * sizeof src->ports[0]);
                    k--;
                }
                src->ports[k].port = d->dport;
                src->ports[k].ts = now;
                src->nports = k + 1;
            }
            if (src->nports > sc->threshold &&
                (!src->scan_alerted || (int64_t)(now - src->scan_alert_ts) > (int64_t)sc->window_ns)) {
                src->scan_alerted = 1;
                src->scan_alert_ts = now;
                add_alert(&t->q, &t->c, sc, p);
            }
        }
    }
    if (!fr)
        return;
    if (syn) {
        uint64_t h = half_hash(d);
        half **pp = half_lookup(t, d, h);
        if (*pp)
            return; /* a retransmitted SYN */
        host *dst = host_find(t, d->dst, d->ipver, now, true);
        half *x = dst ? half_get() : NULL;
        if (!x) {
            t->track_fail++;
            return;
        }
        x->hash = h;
        x->ts = now;
        x->dst = dst;
        memcpy(x->src_addr, d->src, 16);
        memcpy(x->dst_addr, d->dst, 16);
        x->sport = d->sport;
        x->dport = d->dport;
        x->ipver = d->ipver;
        x->hnext = *pp; /* *pp is NULL: the end of the chain */
        *pp = x;
        LIST_APPEND(t->q_oldest, t->q_newest, x);
        dst->pending++;
        if (dst->pending > fr->threshold &&
            (!dst->flood_alerted || (int64_t)(now - dst->flood_alert_ts) > (int64_t)fr->window_ns)) {
            dst->flood_alerted = 1;
            dst->flood_alert_ts = now;
            add_alert(&t->q, &t->c, fr, p);
        }
    } else if ((fl & (TCP_SYN | TCP_ACK | TCP_RST)) == TCP_ACK && t->q_oldest) {
        half **pp = half_lookup(t, d, half_hash(d)); /* the client's ACK completes the handshake */
        if (*pp)
            half_remove(t, pp);
    }
}

static void tracker_fini(tracker *t)
{
    while (t->q_oldest) {
        half *x = t->q_oldest;
        half **pp = &t->halves[x->hash & (HOST_BUCKETS - 1)];
        while (*pp != x)
            pp = &(*pp)->hnext;
        half_remove(t, pp);
    }
    while (t->h_oldest)
        host_remove(t, t->h_oldest);
}

/* ------------------------------------------------------------------ input */

/* Where packets come from: the built-in pcap reader, libpcap (a file, or
 * an interface), or the generator. */
typedef struct input {
    const char *name;   /* file or interface, for messages */
    pcap_reader *rd;
    gen *g;
    bool live;
#ifdef NIDS_HAVE_LIBPCAP
    pcap_t *lp;
    bool nsec;          /* libpcap hands out nanosecond timestamps */
#endif
} input;

#ifdef NIDS_HAVE_LIBPCAP
static volatile sig_atomic_t stop_requested; /* SIGINT or SIGTERM during a live capture */

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_requested = 1; /* the capture thread's poll returns EINTR, or its next look sees it */
}

static bool all_digits(const char *s)
{
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

/* Opens an interface (live) or a file (pcap or pcapng) with libpcap. */
static int open_libpcap(input *in, const char *src, bool live, const char *filter)
{
    char perr[PCAP_ERRBUF_SIZE] = "";
    pcap_t *lp;
    if (live) {
        if (!(lp = pcap_create(src, perr))) {
            fprintf(stderr, "nids: %s: %s\n", src, perr);
            return 1;
        }
        pcap_set_snaplen(lp, (int)PCAP_MAX_CAPLEN);
        pcap_set_promisc(lp, 1);
        pcap_set_immediate_mode(lp, 1); /* each packet as it comes, not when a buffer fills */
        pcap_set_tstamp_precision(lp, PCAP_TSTAMP_PRECISION_NANO);
        int rc = pcap_activate(lp);
        if (rc < 0) {
            const char *status = pcap_statustostr(rc), *detail = pcap_geterr(lp);
            bool more = *detail && strcmp(detail, status) != 0;
            fprintf(stderr, "nids: %s: cannot capture: %s%s%s%s\n", src, status, more ? " (" : "", more ? detail : "",
                    more ? ")" : "");
            if (all_digits(src))
                fprintf(stderr, "nids: -i takes an interface; the flow idle timeout is --idle SECONDS\n");
            pcap_close(lp);
            return 1;
        }
        if (rc > 0)
            fprintf(stderr, "nids: %s: warning: %s\n", src, pcap_statustostr(rc));
    } else if (!(lp = pcap_open_offline_with_tstamp_precision(src, PCAP_TSTAMP_PRECISION_NANO, perr))) {
        fprintf(stderr, "nids: %s: %s\n", src, perr);
        return 2;
    }
    in->lp = lp;
    in->live = live;
    in->nsec = pcap_get_tstamp_precision(lp) == PCAP_TSTAMP_PRECISION_NANO;
    cfg.linktype = pcap_datalink(lp);
    if (cfg.linktype != LINKTYPE_ETHERNET && cfg.linktype != LINKTYPE_RAW) {
        fprintf(stderr, "nids: %s: unsupported link type %d (Ethernet 1 and raw IP 101 are)\n", src, cfg.linktype);
        return live ? 1 : 2;
    }
    if (filter) {
        struct bpf_program prog;
        if (pcap_compile(lp, &prog, filter, 1, PCAP_NETMASK_UNKNOWN) < 0 || pcap_setfilter(lp, &prog) < 0) {
            fprintf(stderr, "nids: --filter '%s': %s\n", filter, pcap_geterr(lp));
            return 1;
        }
        pcap_freecode(&prog);
    }
    if (live) {
        /* Non-blocking: when nothing is waiting, the capture thread hands
         * what it holds to the workers, then waits in poll(2). */
        if (pcap_setnonblock(lp, 1, perr) < 0 || pcap_get_selectable_fd(lp) < 0) {
            fprintf(stderr, "nids: %s: cannot wait for packets: %s\n", src, perr);
            return 1;
        }
        struct sigaction sa = { .sa_handler = on_stop_signal };
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        fprintf(stderr, "nids: listening on %s (link type %d, snapshot length %d); SIGINT or SIGTERM ends the run\n",
                src, cfg.linktype, pcap_snapshot(lp));
    }
    return 0;
}
#endif

/* Returns 0, or the exit code after printing why. */
static int input_open(input *in, const char *path, const char *iface, const char *filter, const char *gen_spec,
                      uint64_t gen_packets)
{
    char err[512];
    in->name = path ? path : iface ? iface : gen_spec;
#ifdef NIDS_HAVE_LIBPCAP
    if (iface || (path && cfg.libpcap))
        return open_libpcap(in, iface ? iface : path, iface != NULL, filter);
#endif
    if (path) {
        if (!(in->rd = pcapr_open(path, NULL, err, sizeof err))) {
            fprintf(stderr, "nids: %s\n", err);
            return 2;
        }
        cfg.linktype = pcapr_linktype(in->rd);
        if (cfg.linktype != LINKTYPE_ETHERNET && cfg.linktype != LINKTYPE_RAW) {
            fprintf(stderr, "nids: %s: offset 20: unsupported link type %d (Ethernet 1 and raw IP 101 are)\n", path,
                    cfg.linktype);
            return 2;
        }
        return 0;
    }
    if (!(in->g = gen_new(gen_spec, gen_packets, 1))) {
        fprintf(stderr, "nids: unknown generator scenario '%s' (test, bulk, jumbo, gap, direction, udp-flows)\n",
                gen_spec);
        return 1;
    }
    cfg.linktype = LINKTYPE_ETHERNET;
    return 0;
}

/* 1: a packet in *rec; 0: the end; -1: an error (message in err); 2: none
 * yet (a live capture: call input_wait). */
static int input_next(input *in, pcap_rec *rec, uint64_t index, char *err, size_t errlen)
{
    static uint8_t genbuf[PCAP_MAX_CAPLEN];
    if (in->rd)
        return pcapr_next(in->rd, rec, err, errlen);
#ifdef NIDS_HAVE_LIBPCAP
    if (in->lp) {
        struct pcap_pkthdr *h;
        const u_char *data;
        if (stop_requested)
            return 0;
        int got = pcap_next_ex(in->lp, &h, &data);
        if (got == 0)
            return 2;
        if (got == PCAP_ERROR_BREAK)
            return 0; /* the end of a file */
        if (got < 0) {
            snprintf(err, errlen, "%s: packet %llu: %s", in->name, (unsigned long long)index, pcap_geterr(in->lp));
            return -1;
        }
        rec->data = data;
        rec->caplen = h->caplen;
        rec->wirelen = h->len;
        rec->ts_ns = (uint64_t)h->ts.tv_sec * 1000000000u + (uint64_t)h->ts.tv_usec * (in->nsec ? 1u : 1000u);
        return 1;
    }
#endif
    rec->data = genbuf;
    return gen_next(in->g, genbuf, sizeof genbuf, &rec->caplen, &rec->wirelen, &rec->ts_ns);
}

/* A live capture with nothing to read: waits until there is (or a signal). */
static void input_wait(input *in)
{
#ifdef NIDS_HAVE_LIBPCAP
    struct pollfd pfd = { .fd = pcap_get_selectable_fd(in->lp), .events = POLLIN };
    if (!stop_requested)
        poll(&pfd, 1, 100); /* EINTR at a signal; the timeout only bounds a missed wake-up */
#else
    (void)in;
#endif
}

static void input_close(input *in)
{
    if (in->rd)
        pcapr_close(in->rd);
    gen_free(in->g);
#ifdef NIDS_HAVE_LIBPCAP
    if (in->lp) {
        if (in->live) {
            struct pcap_stat ps;
            if (pcap_stats(in->lp, &ps) == 0)
                printf("summary: live capture on %s: received %u, dropped %u by the kernel, %u by the interface\n",
                       in->name, ps.ps_recv, ps.ps_drop, ps.ps_ifdrop);
        }
        pcap_close(in->lp);
    }
#endif
}

/* ---------------------------------------------------------------- capture */

typedef struct capture {
    pkt *stock[BATCH];      /* free small packets taken in one get_bulk */
    size_t nstock, stock_next;
    pkt *out_head[MAX_WORKERS], *out_tail[MAX_WORKERS]; /* not yet handed over */
    size_t nout[MAX_WORKERS], unsent;
    uint64_t next_index;    /* index of the next packet read */
    uint64_t waits;
    uint64_t by_class[NCLASS];
} capture;

static void send_batch(capture *c, int i)
{
    if (!c->nout[i])
        return;
    worker *w = &workers[i];
    pthread_mutex_lock(&w->mu);
    if (w->tail)
        w->tail->next = c->out_head[i];
    else
        w->head = c->out_head[i];
    w->tail = c->out_tail[i];
    if (c->out_head[i]->index < atomic_load_explicit(&w->pending_min, memory_order_relaxed))
        atomic_store_explicit(&w->pending_min, c->out_head[i]->index, memory_order_release);
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    c->unsent -= c->nout[i];
    c->out_head[i] = c->out_tail[i] = NULL;
    c->nout[i] = 0;
}

/* Publishes the lowest index not yet handed to a worker (the watermark's
 * part from this thread), after the hand-overs it follows. */
static void publish_unsent(capture *c)
{
    uint64_t m = c->next_index;
    for (int i = 0; c->unsent && i < cfg.nworkers; i++)
        if (c->out_head[i] && c->out_head[i]->index < m)
            m = c->out_head[i]->index;
    atomic_store_explicit(&cap_unsent, m, memory_order_release);
}

static void send_all(capture *c)
{
    for (int i = 0; i < cfg.nworkers; i++)
        send_batch(c, i);
    publish_unsent(c);
}

static pkt *capture_get(capture *c, int cls)
{
    pkt *p;
    if (cls == 0) {
        if (c->stock_next < c->nstock)
            return c->stock[c->stock_next++];
        c->nstock = pkts_get(0, c->stock, BATCH);
        c->stock_next = 0;
        if (c->nstock)
            return c->stock[c->stock_next++];
    } else if (pkts_get(cls, &p, 1)) {
        return p;
    }
    /* At max_live: hand over what we hold, then wait for a worker to put. */
    send_all(c);
    c->waits++;
    return pkt_get_wait(cls);
}

/* --------------------------------------------------------------------- run */

static void add_counters(counters *t, const counters *c)
{
    t->packets += c->packets;
    t->bytes += c->bytes;
    t->flows += c->flows;
    t->flows_ended += c->flows_ended;
    t->idle_ended += c->idle_ended;
    t->evicted += c->evicted;
    t->flow_fail += c->flow_fail;
    t->gaps += c->gaps;
    t->late += c->late;
    t->alerts += c->alerts;
    t->alert_lost += c->alert_lost;
    t->live_peak += c->live_peak;
}

/* The whole run: open the input, build the pools, start the threads, read,
 * drain, print, check the pools. Returns the exit code. */
static int run(const char *path, const char *iface, const char *filter, const char *gen_spec, uint64_t gen_packets)
{
    uint64_t t0 = now_ns();
    input in = { 0 };
    int rc = input_open(&in, path, iface, filter, gen_spec, gen_packets);
    if (rc) {
        input_close(&in);
        return rc;
    }

    classes_init();
    cfg.flows_per_worker = (cfg.max_flows + (uint64_t)cfg.nworkers - 1) / (uint64_t)cfg.nworkers;
    cfg.tail_cap = 0;
    for (size_t i = 0; i < cfg.rules.npayload; i++)
        if (cfg.rules.rules[i].patlen - 1 > cfg.tail_cap)
            cfg.tail_cap = cfg.rules.rules[i].patlen - 1;
    size_t scan_k = cfg.rules.portscan ? cfg.rules.portscan->threshold + 1 : 0;
    mem_init(sizeof(host) + scan_k * sizeof(((host *)0)->ports[0]), sizeof(flow) + 2 * cfg.tail_cap);

    tracker tr = { .host_idle_ns = 1 };
    pthread_mutex_init(&tr.q.mu, NULL);
    out.queues[out.nqueues++] = &tr.q;
    for (int i = 0; i < cfg.nworkers; i++) {
        worker *w = &workers[i];
        w->id = i;
        pthread_mutex_init(&w->mu, NULL);
        pthread_cond_init(&w->cv, NULL);
        pthread_mutex_init(&w->q.mu, NULL);
        atomic_init(&w->pending_min, UINT64_MAX);
        out.queues[out.nqueues++] = &w->q;
        if (!(w->buckets = table_alloc(FLOW_BUCKETS, sizeof(flow *))))
            die("flow table: %s", strerror(errno));
        refs_init(w);
    }
    if (cfg.rules.portscan || cfg.rules.synflood) {
        tr.hosts = table_alloc(HOST_BUCKETS, sizeof(host *));
        tr.halves = table_alloc(HOST_BUCKETS, sizeof(half *));
        if (!tr.hosts || !tr.halves)
            die("host tables: %s", strerror(errno));
        if (cfg.rules.portscan)
            tr.host_idle_ns = cfg.rules.portscan->window_ns;
        if (cfg.rules.synflood && cfg.rules.synflood->window_ns > tr.host_idle_ns)
            tr.host_idle_ns = cfg.rules.synflood->window_ns;
    }

    /* Only this thread takes SIGINT/SIGTERM (a live capture's end). */
    sigset_t stop_sigs, old_mask;
    sigemptyset(&stop_sigs);
    sigaddset(&stop_sigs, SIGINT);
    sigaddset(&stop_sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_sigs, &old_mask);
    out_start();
    for (int i = 0; i < cfg.nworkers; i++)
        if (pthread_create(&workers[i].tid, NULL, worker_main, &workers[i]))
            die("pthread_create: %s", strerror(errno));
    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);

    static capture cap;
    uint64_t cut = 0, dec_err[DEC_NERR] = { 0 };
    char err[512];
    for (;;) {
        pcap_rec rec;
        if (cap.unsent && in.rd && !pcapr_has_record(in.rd))
            send_all(&cap); /* the read may wait for input: hand over what we hold */
        int got = input_next(&in, &rec, cap.next_index, err, sizeof err);
        if (got == 2) {
            if (cap.unsent)
                send_all(&cap);
            input_wait(&in);
            continue;
        }
        if (got == 0)
            break;
        if (got < 0) {
            fprintf(stderr, "nids: %s\n", err);
            rc = 2;
            break;
        }
        uint32_t n = rec.caplen;
        int cls = pkt_class(n);
        if (n > PKT_DATA_CAP(cls)) {
            n = (uint32_t)PKT_DATA_CAP(cls);
            cut++;
        }
        pkt *p = capture_get(&cap, cls);
        if (!p) {
            fprintf(stderr, "nids: no packet object: %s\n", strerror(errno));
            rc = 1;
            break;
        }
        cap.by_class[cls]++;
        memcpy(p->data, rec.data, n);
        p->cls = (uint8_t)cls;
        p->caplen = n;
        p->wirelen = rec.wirelen;
        p->ts_ns = rec.ts_ns;
        p->index = cap.next_index++;
        p->next = NULL;
        p->dec = nids_decode(p->data, n, cfg.linktype, &p->d);
        dec_err[p->dec]++;
        int wi = 0;
        if (p->dec == DEC_OK && p->d.has_l4) {
            make_key(p);
            wi = (int)((p->hash >> 32) % (uint64_t)cfg.nworkers);
            if (p->d.proto == IPPROTO_TCP_ && tr.hosts)
                track(&tr, p);
        }
        if (cap.out_tail[wi])
            cap.out_tail[wi]->next = p;
        else
            cap.out_head[wi] = p;
        cap.out_tail[wi] = p;
        cap.unsent++;
        if (++cap.nout[wi] == BATCH) {
            send_batch(&cap, wi);
            publish_unsent(&cap);
        }
    }
    send_all(&cap);
    for (int i = 0; i < cfg.nworkers; i++) {
        pthread_mutex_lock(&workers[i].mu);
        workers[i].done = true;
        pthread_cond_signal(&workers[i].cv);
        pthread_mutex_unlock(&workers[i].mu);
    }
    if (cap.stock_next < cap.nstock)
        pkts_put(0, cap.stock + cap.stock_next, cap.nstock - cap.stock_next);
    for (int i = 0; i < cfg.nworkers; i++)
        pthread_join(workers[i].tid, NULL);
    tracker_fini(&tr);
    out_stop();
    input_close(&in);

    counters tot = tr.c;
    for (int i = 0; i < cfg.nworkers; i++)
        add_counters(&tot, &workers[i].c);
    uint64_t index = cap.next_index;
    printf("summary: packets %llu bytes %llu flows %llu alerts %zu\n", (unsigned long long)index,
           (unsigned long long)tot.bytes, (unsigned long long)tot.flows, out.printed);
    for (size_t i = 0; i < cfg.rules.n; i++)
        printf("summary: rule %s alerts %zu\n", cfg.rules.rules[i].id, out.by_rule[i]);
    printf("summary: not-ip %llu decode-errors %llu cut %llu tcp-gaps %llu late-segments %llu\n",
           (unsigned long long)dec_err[DEC_NOT_IP],
           (unsigned long long)(dec_err[DEC_BAD_L2] + dec_err[DEC_BAD_IP4] + dec_err[DEC_BAD_IP6] +
                                dec_err[DEC_BAD_L4] + dec_err[DEC_BAD_LINK]),
           (unsigned long long)cut, (unsigned long long)tot.gaps, (unsigned long long)tot.late);
    printf("summary: flows idle-ended %llu evicted %llu table-peak %llu of %llu\n",
           (unsigned long long)tot.idle_ended, (unsigned long long)tot.evicted, (unsigned long long)tot.live_peak,
           (unsigned long long)(cfg.flows_per_worker * (uint64_t)cfg.nworkers));
    printf("summary: packet classes");
    for (int c = 0; c < NCLASS; c++)
        printf(" %zu:%llu", PKT_DATA_CAP(c), (unsigned long long)cap.by_class[c]);
    printf("\n");
    printf("summary: lost: flows %llu alerts %llu trackers %llu\n", (unsigned long long)tot.flow_fail,
           (unsigned long long)tot.alert_lost, (unsigned long long)tr.track_fail);
    printf("summary: alerts held at most %zu at once\n", atomic_load(&out.held_peak));
    mem_report(stdout);
    fflush(stdout);
    if (out.failed) {
        fprintf(stderr, "nids: out of memory sorting alerts: %zu not printed\n", atomic_load(&out.queued));
        rc = rc ? rc : 1;
    }
    if (tot.packets != index) {
        fprintf(stderr, "nids: workers saw %llu packets of %llu\n", (unsigned long long)tot.packets,
                (unsigned long long)index);
        rc = rc ? rc : 3;
    }
    if (tot.flows != tot.flows_ended) {
        fprintf(stderr, "nids: %llu flows made, %llu ended\n", (unsigned long long)tot.flows,
                (unsigned long long)tot.flows_ended);
        rc = rc ? rc : 3;
    }
    if (mem_check())
        rc = rc ? rc : 3;
    uint64_t t1 = now_ns();
    mem_fini();
    uint64_t t2 = now_ns();
    double secs = (double)(t2 - t0) / 1e9;
    printf("summary: %s build, %d workers, %.3f s (teardown %.3f s), %.0f packets/s, capture waited %llu times\n",
           NIDS_MALLOC ? "malloc" : "mpool", cfg.nworkers, secs, (double)(t2 - t1) / 1e9,
           secs > 0 ? (double)index / secs : 0.0, (unsigned long long)cap.waits);
    free(out.by_rule);
    return rc;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: nids [options] -r RULES (FILE | -i IFACE | -g SCENARIO)\n"
            "  -r FILE          rule file (README.md: Rule files)\n"
            "  FILE             a classic pcap file (pcapng too with --libpcap)\n"
            "  -i, --live IFACE capture from a network interface (needs libpcap); SIGINT ends it\n"
            "  -g SCENARIO      built-in generator: test | bulk | jumbo | gap | direction | udp-flows\n"
            "  -n N             packets for -g bulk and udp-flows (default 1000000)\n"
            "  -w N             worker threads (default: number of cores)\n"
            "  -l N             small packets in flight at most (default 2048); every size class\n"
            "                   gets the same byte budget (README.md: Which pool)\n"
            "  --idle SECONDS   TCP flow idle timeout in capture time (default 60)\n"
            "  --idle-udp SECONDS  UDP, ICMP and other flows' idle timeout (default 30)\n"
            "  --max-flows N    flows kept at once; past it the longest idle goes (default 65536)\n"
            "  --filter EXPR    a BPF filter (with libpcap: -i or --libpcap)\n"
            "  -q               do not print alerts (summary only)\n"
            "  --report         print the pool tree (mp_report) at exit\n"
            "  --libpcap        read FILE with libpcap (when built with it)\n"
            "exit: 0 ok, 1 usage or system error, 2 bad input (pcap or rules), 3 pools unbalanced at exit\n");
    exit(1);
}

/* A number option's value in [lo, hi], or exit 1 saying why. */
static uint64_t num_arg(const char *opt, const char *v, uint64_t lo, uint64_t hi)
{
    char *e;
    errno = 0;
    unsigned long long n = strtoull(v, &e, 10);
    if (!*v || *e || *v == '-' || errno || n < lo || n > hi) {
        fprintf(stderr, "nids: %s: expected a whole number from %llu to %llu, not '%s'\n", opt,
                (unsigned long long)lo, (unsigned long long)hi, v);
        exit(1);
    }
    return n;
}

int main(int argc, char **argv)
{
    const char *rules_path = NULL, *pcap_path = NULL, *gen_spec = NULL, *iface = NULL, *filter = NULL;
    uint64_t gen_packets = 1000000;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    cfg.nworkers = ncpu > 0 ? (int)(ncpu < MAX_WORKERS ? ncpu : MAX_WORKERS) : 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--report")) {
            cfg.report = true;
        } else if (!strcmp(a, "-q")) {
            cfg.quiet = true;
        } else if (!strcmp(a, "--libpcap")) {
#ifdef NIDS_HAVE_LIBPCAP
            cfg.libpcap = true;
#else
            die("%s", "--libpcap: this nids was built without libpcap (install libpcap-dev and rebuild; "
                      "the built-in reader reads classic pcap files)");
#endif
        } else if (a[0] == '-' && a[1]) {
            static const char *const with_value[] = { "-r", "-g", "-n", "-w", "-l", "-i", "--live", "--idle",
                                                      "--idle-udp", "--max-flows", "--filter" };
            bool known = false;
            for (size_t k = 0; k < sizeof with_value / sizeof *with_value; k++)
                known |= !strcmp(a, with_value[k]);
            if (!known) {
                fprintf(stderr, "nids: unknown option '%s'\n", a);
                usage();
            }
            if (i + 1 >= argc) {
                fprintf(stderr, "nids: %s needs a value\n", a);
                usage();
            }
            const char *v = argv[++i];
            if (!strcmp(a, "-r"))
                rules_path = v;
            else if (!strcmp(a, "-g"))
                gen_spec = v;
            else if (!strcmp(a, "-n"))
                gen_packets = num_arg(a, v, 1, UINT64_MAX);
            else if (!strcmp(a, "-w"))
                cfg.nworkers = (int)num_arg(a, v, 1, MAX_WORKERS);
            else if (!strcmp(a, "-l"))
                cfg.max_live = (size_t)num_arg(a, v, 1, 1u << 24);
            else if (!strcmp(a, "--idle"))
                cfg.idle_ns[LRU_TCP] = num_arg(a, v, 1, 86400) * 1000000000ull;
            else if (!strcmp(a, "--idle-udp"))
                cfg.idle_ns[LRU_OTHER] = num_arg(a, v, 1, 86400) * 1000000000ull;
            else if (!strcmp(a, "--max-flows"))
                cfg.max_flows = num_arg(a, v, 1, 1u << 26);
            else if (!strcmp(a, "--filter"))
                filter = v;
            else
                iface = v; /* -i, --live */
        } else if (!pcap_path) {
            pcap_path = a;
        } else {
            fprintf(stderr, "nids: more than one input file ('%s', '%s')\n", pcap_path, a);
            usage();
        }
    }
    if (!rules_path) {
        fprintf(stderr, "nids: no rule file (-r RULES)\n");
        usage();
    }
    if (!!pcap_path + !!gen_spec + !!iface != 1) {
        fprintf(stderr, "nids: give exactly one input: a FILE, -i IFACE or -g SCENARIO\n");
        usage();
    }
#ifndef NIDS_HAVE_LIBPCAP
    if (iface)
        die("%s", "-i: live capture needs libpcap, and this nids was built without libpcap "
                  "(install libpcap-dev and rebuild)");
    if (filter)
        die("%s", "--filter: this nids was built without libpcap");
#else
    if (filter && !iface && !cfg.libpcap)
        die("%s", "--filter works on what libpcap reads: use it with -i IFACE or --libpcap");
#endif
    char err[512];
    if (rules_load(&cfg.rules, rules_path, err, sizeof err) < 0) {
        fprintf(stderr, "nids: %s\n", err);
        return 2;
    }
    int rc = run(pcap_path, iface, filter, gen_spec, gen_packets);
    rules_free(&cfg.rules);
    return rc;
}
