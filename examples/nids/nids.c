/*
 * nids.c - a small network intrusion detection pipeline, and the reason
 * each mpool pool kind exists (seed 000's packet pool, grown up).
 *
 *   capture thread                         worker threads (-w N)
 *   --------------                         ---------------------
 *   read pcap / generate  --packet-->      flow table (sharded: one worker
 *   decode headers        per-worker         per flow, chosen by flow hash)
 *   port-scan + SYN-flood  queues          TCP reassembly into flow scratch
 *     trackers (in capture order)          payload rules
 *                         <--put back--    packet back to its pool
 *
 * Where memory comes from (the mpool build; -DNIDS_MALLOC=1 builds the same
 * program on malloc/free):
 *   root arena        everything below hangs off it; one destroy frees all
 *     packets         object pool, seed 000: initial 1024, max_free 2048,
 *                     max_live as backpressure: the capture thread waits in
 *                     mp_objpool_get_wait instead of dropping or growing.
 *                     Taken and given back in batches (get_bulk/put_bulk).
 *     flow scratch    parent arena of the per-flow scratch arenas
 *     flows           object pool with ctor/dtor: the ctor makes a flow's
 *                     scratch arena once, the dtor destroys it; a flow that
 *                     ends (FIN, RST, idle) only resets it
 *     hosts, half-open  MP_SINGLE_THREAD object pools of the capture
 *                     thread's trackers (obj_size known only at run time)
 *     alerts          a reserve with min_reserved: alerts are not lost when
 *                     memory is short
 *     flow tables     plain mp_calloc from the root arena
 *
 * Determinism: payload alerts depend only on one flow's packets, which one
 * worker sees in capture order; scan and flood trackers run in the capture
 * thread in capture order. Alerts are collected, sorted by packet index and
 * printed at the end, so the output is the same for any -w.
 */
#define _POSIX_C_SOURCE 200809L
#ifdef NIDS_HAVE_LIBPCAP
#define _DEFAULT_SOURCE 1 /* <pcap/pcap.h> uses the BSD types u_char, u_int */
#endif
#include "nids.h"

#include <mpool.h>

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
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

#define PKT_OBJ_SIZE 2048  /* one packet object; longer frames are cut (counted) */
#define BATCH 32           /* packets per queue hand-off and per get_bulk/put_bulk */
#define STREAM_MAX 16384   /* reassembled bytes kept per flow direction */
#define STREAM_MIN 512     /* first scratch buffer of a direction */
#define MAX_WORKERS 64
#define FLOW_BUCKETS (1u << 16)
#define HOST_BUCKETS (1u << 16)

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
    decoded d;
    flow_key key;
    uint8_t data[];
} pkt;
#define PKT_DATA_MAX (PKT_OBJ_SIZE - offsetof(pkt, data))

typedef struct stream {
    uint8_t *buf;         /* reassembled payload, in the flow's scratch */
    uint32_t len, cap;
    uint32_t next_seq;    /* next expected sequence number */
    uint8_t seq_known, fin;
} stream;

typedef struct flow {
    struct flow *hnext;             /* hash chain */
    struct flow *older, *newer;     /* the worker's idle list, oldest first */
    flow_key key;
    uint64_t hash;
    uint64_t last_ts, pkts, bytes;
    uint64_t cand[2];               /* payload rules that apply, per direction (pkt.dir) */
    uint64_t fired;                 /* payload rules that have fired */
    stream s[2];                    /* per direction (pkt.dir) */
    mp_arena *scratch;              /* mpool build: made by the ctor, reset when the flow ends */
} flow;

typedef struct alert {
    struct alert *next;
    uint64_t index, ts_ns;
    const rule *r;
    uint8_t ipver, proto;
    uint16_t sport, dport;
    uint8_t src[16], dst[16];
} alert;

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
    uint64_t packets, bytes, flows, flows_ended, idle_ended, flow_fail, scratch_fail, gaps, alerts, alert_lost;
} counters;

typedef struct worker {
    pthread_t tid;
    int id;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pkt *head, *tail;           /* queue, guarded by mu */
    bool done;                  /* no more packets; guarded by mu */
    flow **buckets;
    flow *oldest, *newest;
    pkt *finished[BATCH];       /* packets to give back in one put_bulk */
    size_t nfinished;
    alert *alerts;
    counters c;
    char pad[64];
} worker;

/* ---------------------------------------------------------------- config */

static struct {
    int nworkers;
    uint64_t idle_ns;
    size_t max_live;
    bool report, quiet, libpcap;
    ruleset rules;
    int linktype;
} cfg = { .idle_ns = 60ull * 1000000000u, .max_live = 2048 };

static void die(const char *fmt, const char *a)
{
    fprintf(stderr, "nids: ");
    fprintf(stderr, fmt, a);
    fputc('\n', stderr);
    exit(1);
}

/* ------------------------------------------------------------ memory: mpool */
#if !NIDS_MALLOC

static mp_arena *root, *scratch_parent;
static mp_objpool *pkt_pool, *flow_pool, *host_pool, *half_pool;
static mp_reserve *alert_res;

static void flow_ctor(void *obj, void *arg)
{
    flow *f = obj;
    /* 64 KiB blocks, so every stream buffer (up to STREAM_MAX) is a small
     * allocation bumped out of a block, never a chunk of its own; both
     * directions' buffers, doubled up to STREAM_MAX, fit in two blocks,
     * which the limit makes the most a flow can hold. MP_RELEASE_ON_RESET:
     * a flow object waiting in the pool holds no block; the next flow's
     * arena takes a still-resident one from the library's chunk cache. */
    f->scratch = mp_arena_create(scratch_parent, &(mp_arena_opts){
        .name = "flow scratch", .block_size = 64 * 1024, .limit = 2 * 64 * 1024, .flags = MP_RELEASE_ON_RESET });
}
static void flow_dtor(void *obj, void *arg) { mp_arena_destroy(((flow *)obj)->scratch); }

static void mem_init(size_t host_size)
{
    root = mp_arena_create(NULL, &(mp_arena_opts){ .name = "nids" });
    if (!root)
        die("root arena: %s", strerror(errno));
    pkt_pool = mp_objpool_create(root, &(mp_objpool_opts){
        .name = "packets", .obj_size = PKT_OBJ_SIZE, .initial = 1024, .max_free = 2048, .max_live = cfg.max_live });
    scratch_parent = mp_arena_create(root, &(mp_arena_opts){ .name = "flow scratch", .flags = MP_THREADSAFE });
    flow_pool = mp_objpool_create(root, &(mp_objpool_opts){
        .name = "flows", .obj_size = sizeof(flow), .initial = 256, .max_free = 4096,
        .ctor = flow_ctor, .dtor = flow_dtor });
    host_pool = mp_objpool_create(root, &(mp_objpool_opts){
        .name = "hosts", .obj_size = host_size, .flags = MP_SINGLE_THREAD });
    half_pool = mp_objpool_create(root, &(mp_objpool_opts){
        .name = "half-open", .obj_size = sizeof(half), .flags = MP_SINGLE_THREAD });
    alert_res = mp_reserve_create(root, &(mp_reserve_opts){
        .name = "alerts", .min_reserved = 64, .elem_size = sizeof(alert) });
    if (!pkt_pool || !scratch_parent || !flow_pool || !host_pool || !half_pool || !alert_res)
        die("creating pools: %s", strerror(errno));
}

static void *table_alloc(size_t n, size_t size) { return mp_calloc(root, n, size); }

/* Packets: the capture thread's stock comes from get_bulk; when the pool is
 * at max_live it gets none and waits for one. */
static size_t pkts_get(pkt **v, size_t n) { return mp_objpool_get_bulk(pkt_pool, (void **)v, n); }
static pkt *pkt_get_wait(void) { return mp_objpool_get_wait(pkt_pool, MP_WAIT_FOREVER); }
static void pkts_put(pkt **v, size_t n) { mp_objpool_put_bulk(pkt_pool, (void *const *)v, n); }

static flow *flow_get(void) { return mp_objpool_get(flow_pool); }
static void flow_put(flow *f)
{
    mp_arena_reset(f->scratch); /* everything the flow kept, in one call */
    mp_objpool_put(flow_pool, f);
}
static bool flow_scratch_ok(const flow *f) { return f->scratch != NULL; }
static uint8_t *scratch_grow(flow *f, stream *s, uint32_t cap)
{
    uint8_t *nb = mp_alloc_unaligned(f->scratch, cap);
    if (nb && s->len)
        memcpy(nb, s->buf, s->len);
    if (nb && s->buf)
        mp_arena_free(f->scratch, s->buf); /* rolled back if newest, else kept until reset */
    return nb;
}

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
    bad += check_one("packets", mp_objpool_stats(pkt_pool, &s), &s);
    bad += check_one("flows", mp_objpool_stats(flow_pool, &s), &s);
    bad += check_one("hosts", mp_objpool_stats(host_pool, &s), &s);
    bad += check_one("half-open", mp_objpool_stats(half_pool, &s), &s);
    bad += check_one("alerts", mp_reserve_stats(alert_res, &s), &s);
    return bad;
}

static void mem_report(FILE *out)
{
    mp_stats s;
    mp_objpool_stats(pkt_pool, &s);
    fprintf(out, "summary: packet pool: gets %zu, waits at max_live %zu, peak bytes %zu\n", s.allocs, s.waits,
            s.bytes_peak);
    if (cfg.report)
        mp_report(out, root);
}

static void mem_fini(void) { mp_arena_destroy(root); /* children newest first: the flow pool before its scratch parent */ }

/* ----------------------------------------------------------- memory: malloc */
#else

static atomic_size_t n_pkt, n_flow, n_host, n_half, n_alert; /* objects out */
static atomic_size_t pkts_out;     /* in-flight packets: backpressure by hand */
static pthread_mutex_t bp_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t bp_cv = PTHREAD_COND_INITIALIZER;
static size_t host_bytes;
static void *tables[2 + MAX_WORKERS];
static size_t ntables;

static void mem_init(size_t host_size) { host_bytes = host_size; }

static void *table_alloc(size_t n, size_t size)
{
    void *p = calloc(n, size);
    if (p && ntables < sizeof tables / sizeof tables[0])
        tables[ntables++] = p;
    return p;
}

static size_t pkts_get(pkt **v, size_t n)
{
    size_t got = 0;
    while (got < n && atomic_load(&pkts_out) < cfg.max_live) {
        if (!(v[got] = malloc(PKT_OBJ_SIZE)))
            break;
        atomic_fetch_add(&pkts_out, 1);
        got++;
    }
    atomic_fetch_add(&n_pkt, got);
    return got;
}
static pkt *pkt_get_wait(void)
{
    pthread_mutex_lock(&bp_mu);
    while (atomic_load(&pkts_out) >= cfg.max_live)
        pthread_cond_wait(&bp_cv, &bp_mu);
    pthread_mutex_unlock(&bp_mu);
    pkt *p;
    return pkts_get(&p, 1) ? p : NULL;
}
static void pkts_put(pkt **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    atomic_fetch_sub(&n_pkt, n);
    if (atomic_fetch_sub(&pkts_out, n) >= cfg.max_live) {
        pthread_mutex_lock(&bp_mu);
        pthread_cond_signal(&bp_cv);
        pthread_mutex_unlock(&bp_mu);
    }
}

static flow *flow_get(void)
{
    flow *f = malloc(sizeof(flow));
    if (f)
        atomic_fetch_add(&n_flow, 1);
    return f;
}
static void flow_put(flow *f)
{
    free(f->s[0].buf);
    free(f->s[1].buf);
    free(f);
    atomic_fetch_sub(&n_flow, 1);
}
static bool flow_scratch_ok(const flow *f) { return true; }
static uint8_t *scratch_grow(flow *f, stream *s, uint32_t cap) { return realloc(s->buf, cap); }

static host *host_get(void)
{
    host *h = malloc(host_bytes);
    if (h)
        atomic_fetch_add(&n_host, 1);
    return h;
}
static void host_put(host *h)
{
    free(h);
    atomic_fetch_sub(&n_host, 1);
}
static half *half_get(void)
{
    half *h = malloc(sizeof(half));
    if (h)
        atomic_fetch_add(&n_half, 1);
    return h;
}
static void half_put(half *h)
{
    free(h);
    atomic_fetch_sub(&n_half, 1);
}
static alert *alert_get(void)
{
    alert *a = malloc(sizeof(alert));
    if (a)
        atomic_fetch_add(&n_alert, 1);
    return a;
}
static void alert_put(alert *a)
{
    free(a);
    atomic_fetch_sub(&n_alert, 1);
}

static int mem_check(void)
{
    int bad = 0;
    const char *names[] = { "packets", "flows", "hosts", "half-open", "alerts" };
    size_t v[] = { atomic_load(&n_pkt), atomic_load(&n_flow), atomic_load(&n_host), atomic_load(&n_half),
                   atomic_load(&n_alert) };
    for (int i = 0; i < 5; i++)
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

static void add_alert(alert **list, counters *c, const rule *r, const pkt *p)
{
    alert *a = alert_get();
    if (!a) {
        c->alert_lost++;
        return;
    }
    a->index = p->index;
    a->ts_ns = p->ts_ns;
    a->r = r;
    a->ipver = p->d.ipver;
    a->proto = p->d.proto;
    a->sport = p->d.sport;
    a->dport = p->d.dport;
    memcpy(a->src, p->d.src, 16);
    memcpy(a->dst, p->d.dst, 16);
    a->next = *list;
    *list = a;
    c->alerts++;
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

/* Runs the flow's remaining payload rules over buf[from..to), where the
 * bytes before `from` were already searched: a match may start up to
 * patlen-1 bytes before it. */
static void match(worker *w, flow *f, const pkt *p, const uint8_t *buf, uint32_t from, uint32_t to)
{
    for (uint64_t m = f->cand[p->dir] & ~f->fired; m; m &= m - 1) {
        unsigned i = (unsigned)__builtin_ctzll(m);
        const rule *r = &cfg.rules.rules[i];
        uint32_t start = from >= r->patlen - 1 ? from - (uint32_t)(r->patlen - 1) : 0;
        if (nids_find(buf + start, to - start, r->pat, r->patlen)) {
            f->fired |= 1ull << i;
            add_alert(&w->alerts, &w->c, r, p);
        }
    }
}

static void tcp_payload(worker *w, flow *f, const pkt *p, stream *s, const uint8_t *pl, uint32_t plen)
{
    uint32_t seq = p->d.seq;
    if (!s->seq_known) { /* picked up mid-stream */
        s->next_seq = seq;
        s->seq_known = 1;
    }
    if ((int32_t)(seq - s->next_seq) > 0) { /* a gap: search this segment alone */
        w->c.gaps++;
        match(w, f, p, pl, 0, plen);
        return;
    }
    uint32_t old = s->next_seq - seq; /* bytes of this segment already seen */
    if (old >= plen)
        return;                       /* a retransmission */
    pl += old;
    plen -= old;
    s->next_seq += plen;
    uint32_t take = STREAM_MAX - s->len < plen ? STREAM_MAX - s->len : plen;
    if (take && flow_scratch_ok(f)) {
        if (s->len + take > s->cap) {
            uint32_t cap = s->cap ? s->cap : STREAM_MIN;
            while (cap < s->len + take)
                cap *= 2;
            uint8_t *nb = scratch_grow(f, s, cap);
            if (!nb) {
                w->c.scratch_fail++;
                match(w, f, p, pl, 0, plen);
                return;
            }
            s->buf = nb;
            s->cap = cap;
        }
        memcpy(s->buf + s->len, pl, take);
        uint32_t from = s->len;
        s->len += take;
        match(w, f, p, s->buf, from, s->len);
        pl += take;
        plen -= take;
    }
    if (plen) /* past the reassembly bound: segments on their own */
        match(w, f, p, pl, 0, plen);
}

static void idle_unlink(worker *w, flow *f)
{
    if (f->older)
        f->older->newer = f->newer;
    else
        w->oldest = f->newer;
    if (f->newer)
        f->newer->older = f->older;
    else
        w->newest = f->older;
}

static void idle_append(worker *w, flow *f)
{
    f->newer = NULL;
    f->older = w->newest;
    if (w->newest)
        w->newest->newer = f;
    else
        w->oldest = f;
    w->newest = f;
}

static void flow_end(worker *w, flow *f)
{
    flow **pp = &w->buckets[f->hash & (FLOW_BUCKETS - 1)];
    while (*pp != f)
        pp = &(*pp)->hnext;
    *pp = f->hnext;
    idle_unlink(w, f);
    w->c.flows_ended++;
    flow_put(f);
}

static void worker_packet(worker *w, pkt *p)
{
    w->c.packets++;
    w->c.bytes += p->wirelen;
    if (p->dec != DEC_OK || !p->d.has_l4)
        return;
    uint64_t now = p->ts_ns;
    while (w->oldest && (int64_t)(now - w->oldest->last_ts) > (int64_t)cfg.idle_ns) {
        w->c.idle_ended++;
        flow_end(w, w->oldest);
    }
    flow **bucket = &w->buckets[p->hash & (FLOW_BUCKETS - 1)];
    flow *f = *bucket;
    while (f && (f->hash != p->hash || memcmp(&f->key, &p->key, sizeof f->key)))
        f = f->hnext;
    if (f) {
        idle_unlink(w, f);
    } else {
        if (!(f = flow_get())) {
            w->c.flow_fail++;
            return;
        }
        f->key = p->key;
        f->hash = p->hash;
        f->pkts = f->bytes = 0;
        f->fired = 0;
        f->cand[p->dir] = rule_candidates(&p->d, p->d.sport, p->d.dport);
        f->cand[!p->dir] = rule_candidates(&p->d, p->d.dport, p->d.sport);
        memset(f->s, 0, sizeof f->s);
        f->hnext = *bucket;
        *bucket = f;
        w->c.flows++;
    }
    idle_append(w, f);
    f->last_ts = now;
    f->pkts++;
    f->bytes += p->wirelen;

    const decoded *d = &p->d;
    const uint8_t *pl = p->data + d->payload_off;
    uint32_t plen = d->payload_len;
    if (d->proto != IPPROTO_TCP_) {
        if (plen && f->cand[p->dir] & ~f->fired)
            match(w, f, p, pl, 0, plen);
        return;
    }
    stream *s = &f->s[p->dir];
    uint8_t fl = d->tcp_flags;
    if (fl & TCP_SYN) {
        s->next_seq = d->seq + 1;
        s->seq_known = 1;
    }
    if (plen && f->cand[p->dir] & ~f->fired)
        tcp_payload(w, f, p, s, pl, plen);
    if (fl & TCP_FIN)
        s->fin = 1;
    if ((fl & TCP_RST) || (f->s[0].fin && f->s[1].fin))
        flow_end(w, f);
}

static void finish(worker *w, pkt *p)
{
    w->finished[w->nfinished++] = p;
    if (w->nfinished == BATCH) {
        pkts_put(w->finished, BATCH);
        w->nfinished = 0;
    }
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    for (;;) {
        pthread_mutex_lock(&w->mu);
        if (!w->head && !w->done) {
            /* Give packets back before sleeping: the capture thread may be
             * waiting for exactly these at max_live. */
            pthread_mutex_unlock(&w->mu);
            if (w->nfinished) {
                pkts_put(w->finished, w->nfinished);
                w->nfinished = 0;
            }
            pthread_mutex_lock(&w->mu);
            while (!w->head && !w->done)
                pthread_cond_wait(&w->cv, &w->mu);
        }
        pkt *chain = w->head;
        bool done = w->done;
        w->head = w->tail = NULL;
        pthread_mutex_unlock(&w->mu);
        if (!chain && done)
            break;
        while (chain) {
            pkt *next = chain->next;
            worker_packet(w, chain);
            finish(w, chain);
            chain = next;
        }
    }
    if (w->nfinished)
        pkts_put(w->finished, w->nfinished);
    w->nfinished = 0;
    while (w->oldest) /* end of capture: every flow ends */
        flow_end(w, w->oldest);
    return NULL;
}

/* ------------------------------------------------- capture-thread trackers */

typedef struct tracker {
    host **hosts;             /* by address */
    host *h_oldest, *h_newest;
    half **halves;            /* by (src, sport, dst, dport) */
    half *q_oldest, *q_newest;
    uint64_t host_idle_ns;
    alert *alerts;
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
                add_alert(&t->alerts, &t->c, sc, p);
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
            add_alert(&t->alerts, &t->c, fr, p);
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

/* ---------------------------------------------------------------- capture */

typedef struct capture {
    worker *w;
    pkt *stock[BATCH];      /* free packets taken in one get_bulk */
    size_t nstock, stock_next;
    pkt *out_head[MAX_WORKERS], *out_tail[MAX_WORKERS];
    size_t nout[MAX_WORKERS];
    uint64_t waits;
} capture;

static void send_batch(capture *c, int i)
{
    if (!c->nout[i])
        return;
    worker *w = &c->w[i];
    pthread_mutex_lock(&w->mu);
    if (w->tail)
        w->tail->next = c->out_head[i];
    else
        w->head = c->out_head[i];
    w->tail = c->out_tail[i];
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    c->out_head[i] = c->out_tail[i] = NULL;
    c->nout[i] = 0;
}

static pkt *capture_get(capture *c)
{
    if (c->stock_next < c->nstock)
        return c->stock[c->stock_next++];
    c->nstock = pkts_get(c->stock, BATCH);
    c->stock_next = 0;
    if (c->nstock)
        return c->stock[c->stock_next++];
    /* At max_live: hand over what we hold, then wait for a worker to put. */
    for (int i = 0; i < cfg.nworkers; i++)
        send_batch(c, i);
    c->waits++;
    return pkt_get_wait();
}

/* Alerts print by packet index, then rule (file order). */
static int cmp_alert(const void *x, const void *y)
{
    const alert *a = *(alert *const *)x, *b = *(alert *const *)y;
    if (a->index != b->index)
        return a->index < b->index ? -1 : 1;
    return a->r < b->r ? -1 : a->r > b->r;
}

/* The whole run: open the input, build the pools, start the workers, read,
 * drain, print, check the pools. Returns the exit code. */
static int run(const char *pcap_path, const char *gen_spec, uint64_t gen_packets)
{
    char err[512];
    pcap_reader *rd = NULL;
    gen *g = NULL;
#ifdef NIDS_HAVE_LIBPCAP
    pcap_t *lp = NULL;
    if (pcap_path && cfg.libpcap) {
        char perr[PCAP_ERRBUF_SIZE];
        if (!(lp = pcap_open_offline(pcap_path, perr))) {
            fprintf(stderr, "nids: %s: %s\n", pcap_path, perr);
            return 2;
        }
        cfg.linktype = pcap_datalink(lp);
        if (cfg.linktype != LINKTYPE_ETHERNET && cfg.linktype != LINKTYPE_RAW) {
            fprintf(stderr, "nids: %s: unsupported link type %d (Ethernet 1 and raw IP 101 are)\n", pcap_path,
                    cfg.linktype);
            pcap_close(lp);
            return 2;
        }
    } else
#endif
    if (pcap_path) {
        if (!(rd = pcapr_open(pcap_path, NULL, err, sizeof err))) {
            fprintf(stderr, "nids: %s\n", err);
            return 2;
        }
        cfg.linktype = pcapr_linktype(rd);
        if (cfg.linktype != LINKTYPE_ETHERNET && cfg.linktype != LINKTYPE_RAW) {
            fprintf(stderr, "nids: %s: offset 20: unsupported link type %d (Ethernet 1 and raw IP 101 are)\n",
                    pcap_path, cfg.linktype);
            pcapr_close(rd);
            return 2;
        }
    } else {
        if (!(g = gen_new(gen_spec, gen_packets, 1))) {
            fprintf(stderr, "nids: unknown generator scenario '%s'\n", gen_spec);
            return 1;
        }
        cfg.linktype = LINKTYPE_ETHERNET;
    }

    size_t scan_k = cfg.rules.portscan ? cfg.rules.portscan->threshold + 1 : 0;
    mem_init(sizeof(host) + scan_k * sizeof(((host *)0)->ports[0]));

    static worker workers[MAX_WORKERS];
    memset(workers, 0, sizeof workers);
    for (int i = 0; i < cfg.nworkers; i++) {
        worker *w = &workers[i];
        w->id = i;
        pthread_mutex_init(&w->mu, NULL);
        pthread_cond_init(&w->cv, NULL);
        if (!(w->buckets = table_alloc(FLOW_BUCKETS, sizeof(flow *))))
            die("flow table: %s", strerror(errno));
    }
    tracker tr = { .host_idle_ns = 1 };
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
    for (int i = 0; i < cfg.nworkers; i++)
        if (pthread_create(&workers[i].tid, NULL, worker_main, &workers[i]))
            die("pthread_create: %s", strerror(errno));

    static capture cap;
    memset(&cap, 0, sizeof cap);
    cap.w = workers;
    uint64_t index = 0, truncated = 0, dec_err[DEC_NERR] = { 0 };
    int rc = 0;
    uint64_t t0 = now_ns();
    static uint8_t genbuf[PCAP_MAX_CAPLEN];
    for (;;) {
        pcap_rec rec;
        int got;
        if (rd) {
            got = pcapr_next(rd, &rec, err, sizeof err);
#ifdef NIDS_HAVE_LIBPCAP
        } else if (lp) {
            struct pcap_pkthdr *h;
            const u_char *data;
            got = pcap_next_ex(lp, &h, &data);
            if (got == PCAP_ERROR_BREAK) {
                got = 0;
            } else if (got < 0) {
                snprintf(err, sizeof err, "%s: packet %llu: %s", pcap_path, (unsigned long long)index,
                         pcap_geterr(lp));
                got = -1;
            } else {
                rec.data = data;
                rec.caplen = h->caplen;
                rec.wirelen = h->len;
                /* tv_usec holds nanoseconds for files opened with nanosecond precision; default is micro */
                rec.ts_ns = (uint64_t)h->ts.tv_sec * 1000000000u + (uint64_t)h->ts.tv_usec * 1000u;
                got = 1;
            }
#endif
        } else {
            got = gen_next(g, genbuf, sizeof genbuf, &rec.caplen, &rec.wirelen, &rec.ts_ns);
            rec.data = genbuf;
        }
        if (got == 0)
            break;
        if (got < 0) {
            fprintf(stderr, "nids: %s\n", err);
            rc = 2;
            break;
        }
        pkt *p = capture_get(&cap);
        if (!p) {
            fprintf(stderr, "nids: no packet object: %s\n", strerror(errno));
            rc = 1;
            break;
        }
        uint32_t n = rec.caplen;
        if (n > PKT_DATA_MAX) {
            n = PKT_DATA_MAX;
            truncated++;
        }
        memcpy(p->data, rec.data, n);
        p->caplen = n;
        p->wirelen = rec.wirelen;
        p->ts_ns = rec.ts_ns;
        p->index = index++;
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
        if (++cap.nout[wi] == BATCH)
            send_batch(&cap, wi);
    }
    for (int i = 0; i < cfg.nworkers; i++) {
        send_batch(&cap, i);
        pthread_mutex_lock(&workers[i].mu);
        workers[i].done = true;
        pthread_cond_signal(&workers[i].cv);
        pthread_mutex_unlock(&workers[i].mu);
    }
    if (cap.stock_next < cap.nstock)
        pkts_put(cap.stock + cap.stock_next, cap.nstock - cap.stock_next);
    for (int i = 0; i < cfg.nworkers; i++)
        pthread_join(workers[i].tid, NULL);
    uint64_t t1 = now_ns();
    if (rd)
        pcapr_close(rd);
#ifdef NIDS_HAVE_LIBPCAP
    if (lp)
        pcap_close(lp);
#endif
    gen_free(g);
    tracker_fini(&tr);

    /* Alerts: gather, sort by packet then rule, print, give back. */
    counters tot = tr.c;
    size_t nalerts = 0;
    alert *all = tr.alerts;
    for (alert *a = all; a; a = a->next)
        nalerts++;
    for (int i = 0; i < cfg.nworkers; i++) {
        counters *c = &workers[i].c;
        tot.packets += c->packets;
        tot.bytes += c->bytes;
        tot.flows += c->flows;
        tot.flows_ended += c->flows_ended;
        tot.idle_ended += c->idle_ended;
        tot.flow_fail += c->flow_fail;
        tot.scratch_fail += c->scratch_fail;
        tot.gaps += c->gaps;
        tot.alerts += c->alerts;
        tot.alert_lost += c->alert_lost;
        for (alert *a = workers[i].alerts, *next; a; a = next) {
            next = a->next;
            a->next = all;
            all = a;
            nalerts++;
        }
    }
    alert **v = malloc((nalerts ? nalerts : 1) * sizeof *v);
    if (!v)
        die("%s", "out of memory sorting alerts");
    size_t k = 0;
    for (alert *a = all; a; a = a->next)
        v[k++] = a;
    qsort(v, nalerts, sizeof *v, cmp_alert);
    size_t *by_rule = calloc(cfg.rules.n + 1, sizeof *by_rule);
    for (size_t i = 0; i < nalerts; i++) {
        alert *a = v[i];
        char s[64], d[64], pb[8];
        fmt_addr(s, sizeof s, a->ipver, a->src);
        fmt_addr(d, sizeof d, a->ipver, a->dst);
        if (!cfg.quiet)
            printf("ALERT %s %llu.%09llu %s %s:%u -> %s:%u %s\n", a->r->id,
                   (unsigned long long)(a->ts_ns / 1000000000u), (unsigned long long)(a->ts_ns % 1000000000u),
                   proto_name(a->proto, pb), s, a->sport, d, a->dport, a->r->msg);
        if (by_rule)
            by_rule[a->r - cfg.rules.rules]++;
        alert_put(a);
    }
    free(v);

    double secs = (double)(t1 - t0) / 1e9;
    printf("summary: packets %llu bytes %llu flows %llu alerts %zu\n", (unsigned long long)index,
           (unsigned long long)tot.bytes, (unsigned long long)tot.flows, nalerts);
    for (size_t i = 0; i < cfg.rules.n && by_rule; i++)
        printf("summary: rule %s alerts %zu\n", cfg.rules.rules[i].id, by_rule[i]);
    free(by_rule);
    printf("summary: not-ip %llu decode-errors %llu cut-to-%zu %llu tcp-gaps %llu idle-flows %llu\n",
           (unsigned long long)dec_err[DEC_NOT_IP],
           (unsigned long long)(dec_err[DEC_BAD_L2] + dec_err[DEC_BAD_IP4] + dec_err[DEC_BAD_IP6] +
                                dec_err[DEC_BAD_L4] + dec_err[DEC_BAD_LINK]),
           PKT_DATA_MAX, (unsigned long long)truncated, (unsigned long long)tot.gaps,
           (unsigned long long)tot.idle_ended);
    printf("summary: lost: flows %llu scratch %llu alerts %llu trackers %llu\n", (unsigned long long)tot.flow_fail,
           (unsigned long long)tot.scratch_fail, (unsigned long long)tot.alert_lost,
           (unsigned long long)tr.track_fail);
    printf("summary: %s build, %d workers, %.3f s, %.0f packets/s, capture waited %llu times\n",
           NIDS_MALLOC ? "malloc" : "mpool", cfg.nworkers, secs, secs > 0 ? (double)index / secs : 0.0,
           (unsigned long long)cap.waits);
    mem_report(stdout);
    fflush(stdout);
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
    mem_fini();
    return rc;
}


static void usage(void)
{
    fprintf(stderr,
            "usage: nids [options] -r RULES (FILE.pcap | -g SCENARIO)\n"
            "  -r FILE       rule file (README.md: Rule files)\n"
            "  -g SCENARIO   read from the built-in generator instead of a file: test | bulk\n"
            "  -n N          packets for -g bulk (default 1000000)\n"
            "  -w N          worker threads (default: number of cores)\n"
            "  -l N          packets in flight at most (the packet pool's max_live; default 2048)\n"
            "  -i SECONDS    flow idle timeout in capture time (default 60)\n"
            "  -q            do not print alerts (summary only)\n"
            "  --report      print the pool tree (mp_report) at exit\n"
            "  --libpcap     read the file with libpcap (when built with it: pcapng too)\n"
            "exit: 0 ok, 1 usage or system error, 2 bad input (pcap or rules), 3 pools unbalanced at exit\n");
    exit(1);
}

int main(int argc, char **argv)
{
    const char *rules_path = NULL, *pcap_path = NULL, *gen_spec = NULL;
    uint64_t gen_packets = 1000000;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    cfg.nworkers = ncpu > 0 ? (int)(ncpu < MAX_WORKERS ? ncpu : MAX_WORKERS) : 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--report")) {
            cfg.report = true;
        } else if (!strcmp(a, "--libpcap")) {
#ifdef NIDS_HAVE_LIBPCAP
            cfg.libpcap = true;
#else
            die("%s", "built without libpcap (--libpcap unavailable; the built-in reader is the default)");
#endif
        } else if (!strcmp(a, "-q")) {
            cfg.quiet = true;
        } else if (a[0] == '-' && a[1] && !a[2] && strchr("rgnwli", a[1])) {
            if (!v)
                usage();
            i++;
            char *e;
            unsigned long long n = strtoull(v, &e, 10);
            bool num_ok = *v && !*e;
            switch (a[1]) {
            case 'r': rules_path = v; break;
            case 'g': gen_spec = v; break;
            case 'n': if (!num_ok || !n) usage(); gen_packets = n; break;
            case 'w': if (!num_ok || !n || n > MAX_WORKERS) usage(); cfg.nworkers = (int)n; break;
            case 'l': if (!num_ok || !n) usage(); cfg.max_live = (size_t)n; break;
            case 'i': if (!num_ok || !n) usage(); cfg.idle_ns = n * 1000000000ull; break;
            }
        } else if (a[0] == '-') {
            usage();
        } else if (!pcap_path) {
            pcap_path = a;
        } else {
            usage();
        }
    }
    if (!rules_path || !!pcap_path == !!gen_spec)
        usage();
    char err[512];
    if (rules_load(&cfg.rules, rules_path, err, sizeof err) < 0) {
        fprintf(stderr, "nids: %s\n", err);
        return 2;
    }
    int rc = run(pcap_path, gen_spec, gen_packets);
    rules_free(&cfg.rules);
    return rc;
}
