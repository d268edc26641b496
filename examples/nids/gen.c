/*
 * gen.c - synthetic traffic with known content, for tests and benchmarks.
 *
 * Scenario "test": a few hundred flows that exercise every rule of
 * tests/test.rules once, with near misses beside each (README.md lists them
 * and tests/expected.txt is what nids must print). Built in memory, sorted
 * by time, deterministic.
 *
 * Scenarios "jumbo", "gap", "direction" and "udp-flows": one behaviour
 * each (frames up to 200 KiB, lost and late TCP segments, rule port
 * direction, flow expiry), with the rule files and expected output beside
 * the tests (their rule files and expected alerts are in tests/).
 *
 * Scenario "bulk": an endless mix of short TCP (HTTP-, telnet-like), UDP and
 * ICMP sessions over IPv4 and IPv6, some VLAN-tagged, 256 sessions open at
 * once, generated on the fly from a seeded PRNG; one session in 500 carries
 * "GET /etc/passwd". Used for throughput measurements.
 */
#include "nids.h"

#include <stdlib.h>
#include <string.h>

typedef struct gen gen;
gen *gen_new(const char *scenario, uint64_t npackets, uint64_t seed);
int gen_next(gen *g, uint8_t *buf, uint32_t cap, uint32_t *caplen, uint32_t *wirelen, uint64_t *ts_ns);
void gen_free(gen *g);

#define T0 1700000000000000000ull /* 2023-11-14, in ns */
#define MS 1000000ull
#define SEC 1000000000ull
#define MAXPKT 1600 /* the largest frame of the "test" and "bulk" scenarios */

/* ------------------------------------------------------------- builder */

typedef struct pspec {
    int vlan;          /* -1 none */
    int ipver;         /* 4 or 6 */
    const uint8_t *src, *dst;
    uint8_t proto;
    uint16_t sport, dport; /* ICMP: type, code */
    uint8_t flags;
    uint32_t seq, ack;
    const uint8_t *pl;
    uint32_t plen;
    bool hbh;          /* IPv6 hop-by-hop header */
} pspec;

static void w16(uint8_t *p, uint32_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void w32(uint8_t *p, uint32_t v) { w16(p, v >> 16); w16(p + 2, v); }

static uint32_t build(uint8_t *buf, const pspec *s)
{
    uint8_t *p = buf;
    static const uint8_t macs[12] = { 0, 0x16, 0x3e, 0, 0, 2, 0, 0x16, 0x3e, 0, 0, 1 };
    memcpy(p, macs, 12);
    p += 12;
    if (s->vlan >= 0) {
        w16(p, 0x8100);
        w16(p + 2, (uint32_t)s->vlan);
        p += 4;
    }
    w16(p, s->ipver == 6 ? 0x86dd : 0x0800);
    p += 2;
    uint32_t l4len = s->proto == IPPROTO_TCP_ ? 20 : 8;
    uint32_t l4total = l4len + s->plen;
    uint8_t *ip = p;
    if (s->ipver == 4) {
        memset(ip, 0, 20);
        ip[0] = 0x45;
        w16(ip + 2, 20 + l4total);
        w16(ip + 6, 0x4000);
        ip[8] = 64;
        ip[9] = s->proto;
        memcpy(ip + 12, s->src, 4);
        memcpy(ip + 16, s->dst, 4);
        uint32_t sum = 0;
        for (int i = 0; i < 20; i += 2)
            sum += (uint32_t)(ip[i] << 8 | ip[i + 1]);
        while (sum >> 16)
            sum = (sum & 0xffff) + (sum >> 16);
        w16(ip + 10, ~sum & 0xffff);
        p += 20;
    } else {
        uint32_t ext = s->hbh ? 8 : 0;
        memset(ip, 0, 40);
        ip[0] = 0x60;
        w16(ip + 4, ext + l4total);
        ip[6] = s->hbh ? 0 : s->proto;
        ip[7] = 64;
        memcpy(ip + 8, s->src, 16);
        memcpy(ip + 24, s->dst, 16);
        p += 40;
        if (s->hbh) {
            const uint8_t h[8] = { s->proto, 0, 1, 4, 0, 0, 0, 0 };
            memcpy(p, h, 8);
            p += 8;
        }
    }
    memset(p, 0, l4len);
    if (s->proto == IPPROTO_TCP_) {
        w16(p, s->sport);
        w16(p + 2, s->dport);
        w32(p + 4, s->seq);
        w32(p + 8, s->ack);
        p[12] = 5 << 4;
        p[13] = s->flags;
        w16(p + 14, 65535);
    } else if (s->proto == IPPROTO_UDP_) {
        w16(p, s->sport);
        w16(p + 2, s->dport);
        w16(p + 4, l4total);
    } else {
        p[0] = (uint8_t)s->sport;
        p[1] = (uint8_t)s->dport;
        w16(p + 4, 0x1234);
    }
    p += l4len;
    if (s->plen)
        memcpy(p, s->pl, s->plen);
    p += s->plen;
    uint32_t len = (uint32_t)(p - buf);
    while (len < 60) /* Ethernet minimum: padding after the datagram */
        buf[len++] = 0;
    return len;
}

/* ------------------------------------------------------------ test scenario */

typedef struct gpkt {
    uint64_t ts, order;
    uint32_t len;
    uint8_t *data;
} gpkt;

typedef struct sess {      /* a TCP/UDP/ICMP conversation being scripted */
    int vlan, ipver;
    uint8_t proto;
    uint8_t c[16], s[16];
    uint16_t cp, sp;
    uint32_t cseq, sseq;
    uint64_t ts;
    bool hbh;
} sess;

struct gen {
    bool bulk;
    gpkt *v;
    size_t n, cap, next;
    /* bulk */
    uint64_t rng, remaining, ts;
    struct bsess *bs;
    uint8_t *noise;
};

static void addr4(uint8_t *a, int x, int y, int z, int w)
{
    memset(a, 0, 16);
    a[0] = (uint8_t)x, a[1] = (uint8_t)y, a[2] = (uint8_t)z, a[3] = (uint8_t)w;
}
static void addr6(uint8_t *a, uint16_t last)
{
    static const uint8_t pre[16] = { 0x20, 0x01, 0x0d, 0xb8 };
    memcpy(a, pre, 16);
    a[14] = (uint8_t)(last >> 8);
    a[15] = (uint8_t)last;
}

static void emit_raw(gen *g, uint64_t ts, const uint8_t *data, uint32_t len)
{
    if (g->n == g->cap) {
        g->cap = g->cap ? g->cap * 2 : 1024;
        g->v = realloc(g->v, g->cap * sizeof *g->v);
        if (!g->v)
            abort();
    }
    gpkt *p = &g->v[g->n];
    p->ts = ts;
    p->order = g->n++;
    p->len = len;
    p->data = malloc(len);
    if (!p->data)
        abort();
    memcpy(p->data, data, len);
}

static void emit(gen *g, sess *x, bool from_server, uint8_t flags, const void *pl, uint32_t plen)
{
    static uint8_t buf[PCAP_MAX_CAPLEN];
    pspec s = { .vlan = x->vlan, .ipver = x->ipver, .proto = x->proto, .flags = flags, .pl = pl, .plen = plen,
                .hbh = x->hbh };
    s.src = from_server ? x->s : x->c;
    s.dst = from_server ? x->c : x->s;
    s.sport = from_server ? x->sp : x->cp;
    s.dport = from_server ? x->cp : x->sp;
    s.seq = from_server ? x->sseq : x->cseq;
    s.ack = from_server ? x->cseq : x->sseq;
    emit_raw(g, x->ts, buf, build(buf, &s));
    uint32_t adv = plen + ((flags & (TCP_SYN | TCP_FIN)) ? 1 : 0);
    if (from_server)
        x->sseq += adv;
    else
        x->cseq += adv;
    x->ts += MS;
}

static sess tcp4(uint64_t ts, int c3, int c4, uint16_t cp, int s3, int s4, uint16_t sp)
{
    sess x = { .vlan = -1, .ipver = 4, .proto = IPPROTO_TCP_, .cp = cp, .sp = sp, .cseq = 1000, .sseq = 5000,
               .ts = ts };
    addr4(x.c, 10, 1, c3, c4);
    addr4(x.s, 10, 2, s3, s4);
    return x;
}

static void t_open(gen *g, sess *x)
{
    emit(g, x, false, TCP_SYN, NULL, 0);
    emit(g, x, true, TCP_SYN | TCP_ACK, NULL, 0);
    emit(g, x, false, TCP_ACK, NULL, 0);
}
static void t_send(gen *g, sess *x, bool from_server, const char *s)
{
    emit(g, x, from_server, TCP_PSH | TCP_ACK, s, (uint32_t)strlen(s));
}
static void t_close(gen *g, sess *x)
{
    emit(g, x, false, TCP_FIN | TCP_ACK, NULL, 0);
    emit(g, x, true, TCP_FIN | TCP_ACK, NULL, 0);
    emit(g, x, false, TCP_ACK, NULL, 0);
}

static int cmp_gpkt(const void *a, const void *b)
{
    const gpkt *x = a, *y = b;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

static void scenario_test(gen *g)
{
    char big[1001];
    memset(big, 'a', 1000);
    big[1000] = 0;

    /* A: a normal HTTP exchange. */
    sess a = tcp4(T0 + 1 * SEC, 0, 1, 40001, 0, 1, 80);
    t_open(g, &a);
    t_send(g, &a, false, "GET /index.html HTTP/1.1\r\nHost: example\r\n\r\n");
    t_send(g, &a, true, big);
    t_close(g, &a);

    /* B: the pattern split over two segments: found by reassembly. ALERT */
    sess b = tcp4(T0 + 2 * SEC, 0, 2, 40002, 0, 1, 80);
    t_open(g, &b);
    t_send(g, &b, false, "GET /etc/pa");
    t_send(g, &b, false, "sswd HTTP/1.1\r\n\r\n");
    t_send(g, &b, true, "HTTP/1.1 403 Forbidden\r\n\r\n");
    t_close(g, &b);

    /* C: near misses: a different path; the right path on port 8080. */
    sess c = tcp4(T0 + 3 * SEC, 0, 3, 40003, 0, 1, 80);
    t_open(g, &c);
    t_send(g, &c, false, "GET /etc/passw0rd HTTP/1.1\r\n\r\n");
    t_close(g, &c);
    sess c2 = tcp4(T0 + 3 * SEC + 500 * MS, 0, 4, 40004, 0, 1, 8080);
    t_open(g, &c2);
    t_send(g, &c2, false, "GET /etc/passwd HTTP/1.1\r\n\r\n");
    t_close(g, &c2);

    /* E: UDP with a binary pattern (ALERT once, though sent twice), and a near miss. */
    sess e = { .vlan = -1, .ipver = 4, .proto = IPPROTO_UDP_, .cp = 5000, .sp = 9999, .ts = T0 + 4 * SEC };
    addr4(e.c, 10, 1, 0, 5);
    addr4(e.s, 10, 2, 0, 9);
    const char sled[] = "xx\x90\x90\x90\x90\xccyy", nearly[] = "xx\x90\x90\x90\x90\xcdyy";
    emit(g, &e, false, 0, sled, 9);
    emit(g, &e, true, 0, "ok", 2);
    emit(g, &e, false, 0, sled, 9);
    sess e2 = e;
    addr4(e2.c, 10, 1, 0, 6);
    emit(g, &e2, false, 0, nearly, 9);

    /* F: ICMP echo with SECRET (ALERT once: the reply is the same flow); near miss. */
    sess f = { .vlan = -1, .ipver = 4, .proto = IPPROTO_ICMP_, .cp = 8, .sp = 0, .ts = T0 + 5 * SEC };
    addr4(f.c, 10, 1, 0, 7);
    addr4(f.s, 10, 2, 0, 7);
    emit(g, &f, false, 0, "ping SECRET data", 16);
    f.cp = 0; /* echo reply: type 0 */
    emit(g, &f, true, 0, "ping SECRET data", 16);
    sess f2 = f;
    addr4(f2.c, 10, 1, 0, 8);
    f2.cp = 8;
    emit(g, &f2, false, 0, "ping SECRE", 10);

    /* G: IPv6 in VLAN 42 with a hop-by-hop header, to telnet. ALERT */
    sess gg = { .vlan = 42, .ipver = 6, .proto = IPPROTO_TCP_, .cp = 40010, .sp = 23, .cseq = 77, .sseq = 99,
                .ts = T0 + 6 * SEC, .hbh = true };
    addr6(gg.c, 1);
    addr6(gg.s, 2);
    t_open(g, &gg);
    t_send(g, &gg, false, "echo; /bin/sh -i\r\n");
    t_close(g, &gg);
    /* and a benign IPv4 flow in VLAN 7 */
    sess v = tcp4(T0 + 6 * SEC + 500 * MS, 0, 11, 40011, 0, 1, 23);
    v.vlan = 7;
    t_open(g, &v);
    t_send(g, &v, false, "ls -l\r\n");
    t_close(g, &v);

    /* H: a port scan: SYNs to 30 ports, one per 100 ms; closed ports answer RST.
     * ALERT at the 21st port (t = 12.0 s). */
    for (int i = 0; i < 30; i++) {
        sess h = tcp4(T0 + 10 * SEC + (uint64_t)i * 100 * MS, 0, 0, 50000, 0, 5, (uint16_t)(1 + i));
        addr4(h.c, 10, 66, 0, 1);
        emit(g, &h, false, TCP_SYN, NULL, 0);
        emit(g, &h, true, TCP_RST | TCP_ACK, NULL, 0);
    }
    /* I: near misses: exactly 20 ports in 2 s; 25 ports one per second. */
    for (int i = 0; i < 20; i++) {
        sess h = tcp4(T0 + 20 * SEC + (uint64_t)i * 100 * MS, 0, 0, 50001, 0, 5, (uint16_t)(100 + i));
        addr4(h.c, 10, 77, 0, 1);
        emit(g, &h, false, TCP_SYN, NULL, 0);
        emit(g, &h, true, TCP_RST | TCP_ACK, NULL, 0);
    }
    for (int i = 0; i < 25; i++) {
        sess h = tcp4(T0 + 25 * SEC + (uint64_t)i * SEC + 50 * MS, 0, 0, 50002, 0, 5, (uint16_t)(200 + i));
        addr4(h.c, 10, 78, 0, 1);
        emit(g, &h, false, TCP_SYN, NULL, 0);
        emit(g, &h, true, TCP_RST | TCP_ACK, NULL, 0);
    }

    /* J: a SYN flood: 150 spoofed SYNs in 1 s, answered, never completed.
     * ALERT at the 101st. */
    for (int i = 0; i < 150; i++) {
        sess h = tcp4(T0 + 60 * SEC + (uint64_t)i * 6 * MS, 0, 0, (uint16_t)(1024 + i * 7), 0, 80, 80);
        addr4(h.c, 172, 16, i / 200, 1 + i % 200);
        emit(g, &h, false, TCP_SYN, NULL, 0);
        emit(g, &h, true, TCP_SYN | TCP_ACK, NULL, 0);
    }
    /* K: near misses: 150 completed handshakes in 1 s; 90 incomplete SYNs. */
    for (int i = 0; i < 150; i++) {
        sess h = tcp4(T0 + 80 * SEC + (uint64_t)i * 6 * MS, 0, 0, (uint16_t)(2000 + i), 0, 81, 443);
        addr4(h.c, 172, 17, 0, 1 + i);
        emit(g, &h, false, TCP_SYN, NULL, 0);
        emit(g, &h, true, TCP_SYN | TCP_ACK, NULL, 0);
        emit(g, &h, false, TCP_ACK, NULL, 0);
        emit(g, &h, false, TCP_RST | TCP_ACK, NULL, 0);
    }
    for (int i = 0; i < 90; i++) {
        sess h = tcp4(T0 + 85 * SEC + (uint64_t)i * 6 * MS, 0, 0, (uint16_t)(3000 + i), 0, 82, 443);
        addr4(h.c, 172, 18, 0, 1 + i);
        emit(g, &h, false, TCP_SYN, NULL, 0);
    }

    /* L: idle timeout (60 s): a pattern split by 100 s of silence is not
     * found (the flow expired in between); split by 30 s it is. ALERT */
    sess l = tcp4(T0 + 100 * SEC, 0, 9, 40009, 0, 1, 80);
    t_open(g, &l);
    t_send(g, &l, false, "GET /etc/pas");
    l.ts += 100 * SEC;
    t_send(g, &l, false, "swd HTTP/1.1\r\n\r\n");
    t_close(g, &l);
    sess l2 = tcp4(T0 + 110 * SEC, 0, 10, 40010, 0, 1, 80);
    t_open(g, &l2);
    t_send(g, &l2, false, "GET /etc/pas");
    l2.ts += 30 * SEC;
    t_send(g, &l2, false, "swd HTTP/1.1\r\n\r\n");
    t_close(g, &l2);

    /* M: frames that are not IP, or are malformed: counted, never crash. */
    uint8_t buf[MAXPKT];
    memset(buf, 0, 60);
    memset(buf, 0xff, 6);
    buf[12] = 0x08, buf[13] = 0x06; /* ARP */
    emit_raw(g, T0 + 300 * SEC, buf, 60);
    sess m = tcp4(T0 + 301 * SEC, 0, 12, 40012, 0, 1, 80);
    uint32_t len;
    pspec ps = { .vlan = -1, .ipver = 4, .src = m.c, .dst = m.s, .proto = IPPROTO_TCP_, .sport = 1, .dport = 80,
                 .flags = TCP_ACK, .pl = (const uint8_t *)"GET /etc/passwd", .plen = 15 };
    len = build(buf, &ps);
    buf[14] = 0x4f; /* IHL 60 bytes: the options would run into the TCP header - fine, but */
    buf[16] = 0, buf[17] = 30; /* total length 30 < IHL: a lying header */
    emit_raw(g, T0 + 301 * SEC, buf, len);
    len = build(buf, &ps);
    buf[14 + 20 + 12] = 0xf0; /* TCP data offset 60 > segment */
    emit_raw(g, T0 + 302 * SEC, buf, len);
    emit_raw(g, T0 + 303 * SEC, buf, 20); /* cut inside the IP header */

    qsort(g->v, g->n, sizeof *g->v, cmp_gpkt);
}

/* ----------------------------------------------------- one-behaviour scenarios */

static sess tcp_at(uint64_t ts, int net, int host, uint16_t cp, uint16_t sp)
{
    sess x = tcp4(ts, 0, 0, cp, 0, 0, sp);
    addr4(x.c, 10, net, 0, host);
    addr4(x.s, 10, net + 1, 0, 1);
    return x;
}

/* Frames past the small packet size: a 61 KiB TCP segment with a marker
 * 33,000 bytes in, a marker split over two 60 KiB segments, a 12 KiB UDP
 * datagram with a marker at its end, and a 200 KiB frame that is not IP. */
static void scenario_jumbo(gen *g)
{
    enum { SEG = 60000 };
    uint8_t *big = malloc(SEG + 1000);
    if (!big)
        abort();
    memset(big, 'a', SEG + 1000);

    sess x = tcp_at(T0 + 1 * SEC, 9, 1, 43001, 8000);
    t_open(g, &x);
    t_send(g, &x, false, "GET /big HTTP/1.1\r\n\r\n");
    memcpy(big + 33000, "X-Deep-Marker: 7f3a", 19);
    emit(g, &x, true, TCP_PSH | TCP_ACK, big, SEG + 1000); /* one 61,054-byte frame */
    memset(big, 'a', SEG + 1000);
    memcpy(big + SEG - 10, "BOUNDARY-S", 10);
    emit(g, &x, true, TCP_ACK, big, SEG);
    memset(big, 'a', SEG);
    memcpy(big, "PLIT-MARKER", 11);
    emit(g, &x, true, TCP_PSH | TCP_ACK, big, SEG);
    t_close(g, &x);

    sess u = { .vlan = -1, .ipver = 4, .proto = IPPROTO_UDP_, .cp = 5001, .sp = 7001, .ts = T0 + 2 * SEC };
    addr4(u.c, 10, 9, 0, 2);
    addr4(u.s, 10, 10, 0, 2);
    memset(big, 'b', 12000);
    memcpy(big + 12000 - 20, "MIDSIZE-DATAGRAM-END", 20);
    emit(g, &u, false, 0, big, 12000);

    memset(big, 0, SEG);
    memset(big, 0xff, 6);
    big[12] = 0x88, big[13] = 0xb5; /* local experimental EtherType */
    uint8_t *huge = calloc(1, 200 * 1024);
    if (!huge)
        abort();
    memcpy(huge, big, 14);
    emit_raw(g, T0 + 3 * SEC, huge, 200 * 1024);
    free(huge);
    free(big);
    qsort(g->v, g->n, sizeof *g->v, cmp_gpkt);
}

/* Lost and late TCP segments (port 80, "GET /etc/passwd" in test.rules). */
static void scenario_gap(gen *g)
{
    /* 1: a segment lost before the pattern split in two: found. */
    sess a = tcp_at(T0 + 1 * SEC, 40, 1, 41001, 80);
    t_open(g, &a);
    t_send(g, &a, false, "GET /index.html HTTP/1.1\r\n\r\n");
    a.cseq += 100; /* lost */
    t_send(g, &a, false, "GET /etc/pa");
    t_send(g, &a, false, "sswd HTTP/1.1\r\n\r\n");
    t_close(g, &a);

    /* 2: after a loss, the pattern over three segments: found. */
    sess b = tcp_at(T0 + 2 * SEC, 42, 1, 41002, 80);
    t_open(g, &b);
    t_send(g, &b, false, "HEAD / HTTP/1.1\r\n\r\n");
    b.cseq += 200; /* lost */
    t_send(g, &b, false, "GET /e");
    t_send(g, &b, false, "tc/pa");
    t_send(g, &b, false, "sswd HTTP/1.1\r\n\r\n");
    t_close(g, &b);

    /* 3: the segment with the pattern comes after the one behind it: found
     * (a late segment, matched on its own). */
    sess c = tcp_at(T0 + 3 * SEC, 44, 1, 41003, 80);
    t_open(g, &c);
    t_send(g, &c, false, "hello ");
    const char *late = "GET /etc/passwd HTTP/1.1\r\n\r\n";
    uint32_t late_seq = c.cseq;
    c.cseq += (uint32_t)strlen(late);
    t_send(g, &c, false, "world\r\n");
    uint32_t after = c.cseq;
    c.cseq = late_seq;
    t_send(g, &c, false, late);
    c.cseq = after;
    t_close(g, &c);

    /* 4: near miss: the pattern's halves on both sides of a lost segment. */
    sess d = tcp_at(T0 + 4 * SEC, 46, 1, 41004, 80);
    t_open(g, &d);
    t_send(g, &d, false, "GET /etc/pa");
    d.cseq += 50; /* lost */
    t_send(g, &d, false, "sswd HTTP/1.1\r\n\r\n");
    t_close(g, &d);
    qsort(g->v, g->n, sizeof *g->v, cmp_gpkt);
}

/* The same pattern in a request to port 18080 and in responses from it. */
static void scenario_direction(gen *g)
{
    sess a = tcp_at(T0 + 1 * SEC, 50, 1, 42001, 18080);
    t_open(g, &a);
    t_send(g, &a, false, "POST /run?cmd=/bin/sh HTTP/1.1\r\n\r\n");
    t_send(g, &a, true, "HTTP/1.1 200 OK\r\n\r\nran /bin/sh\n");
    t_close(g, &a);
    sess b = tcp_at(T0 + 2 * SEC, 52, 1, 42002, 18080);
    t_open(g, &b);
    t_send(g, &b, false, "GET /help HTTP/1.1\r\n\r\n");
    t_send(g, &b, true, "HTTP/1.1 200 OK\r\n\r\ntry /bin/sh\n");
    t_close(g, &b);
    qsort(g->v, g->n, sizeof *g->v, cmp_gpkt);
}

/* npackets/2 UDP flows (a query and its answer), a new one every 10 ms,
 * none ever active again: each can only end by idling out. */
static void scenario_udp_flows(gen *g, uint64_t npackets)
{
    for (uint64_t i = 0; i < npackets / 2; i++) {
        sess u = { .vlan = -1, .ipver = 4, .proto = IPPROTO_UDP_, .cp = (uint16_t)(1024 + i % 60000), .sp = 53,
                   .ts = T0 + i * 10 * MS };
        addr4(u.c, 10, 60 + (int)(i / 65536 % 100), (int)(i / 256 % 256), (int)(i % 256));
        addr4(u.s, 10, 200, 0, 53);
        emit(g, &u, false, 0, "query", 5);
        emit(g, &u, true, 0, "answer", 6);
    }
}

/* ------------------------------------------------------------ bulk scenario */

#define BULK_SESSIONS 256

typedef struct bsess {
    sess x;
    int kind;      /* 0 tcp, 1 udp, 2 icmp */
    int step, steps;
    bool evil;
} bsess;

static uint64_t rnd(gen *g)
{
    uint64_t x = g->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return g->rng = x;
}

static void bulk_new(gen *g, bsess *b)
{
    uint64_t r = rnd(g);
    memset(b, 0, sizeof *b);
    sess *x = &b->x;
    x->vlan = r % 5 == 0 ? (int)(r >> 8 & 0xfff) : -1;
    x->ipver = (r >> 20) % 10 == 0 ? 6 : 4;
    int kind = (int)((r >> 24) % 20);
    b->kind = kind < 16 ? 0 : kind < 19 ? 1 : 2;
    x->proto = b->kind == 0 ? IPPROTO_TCP_ : b->kind == 1 ? IPPROTO_UDP_ : IPPROTO_ICMP_;
    uint32_t client = (uint32_t)(r >> 32) & 0xffff;
    if (x->ipver == 4) {
        addr4(x->c, 10, 0, (int)(client >> 8), (int)(client & 0xff));
        addr4(x->s, 10, 200, 0, (int)((r >> 48) & 0xff));
    } else {
        addr6(x->c, (uint16_t)client);
        addr6(x->s, (uint16_t)(0x8000 | ((r >> 48) & 0xff)));
    }
    if (b->kind == 2 && x->ipver == 6)
        x->proto = IPPROTO_ICMPV6_;
    x->cp = (uint16_t)(1024 + (rnd(g) % 60000));
    static const uint16_t tports[] = { 80, 80, 80, 443, 443, 23, 8080, 25 };
    x->sp = b->kind == 0 ? tports[r % 8] : b->kind == 1 ? 53 : 8;
    if (b->kind == 2)
        x->cp = 8;
    x->cseq = (uint32_t)rnd(g);
    x->sseq = (uint32_t)rnd(g);
    b->steps = b->kind == 0 ? 6 + 2 * (int)(rnd(g) % 8) : 2 * (1 + (int)(rnd(g) % 3));
    b->evil = rnd(g) % 500 == 0;
}

/* One packet of session b into buf; false when the session is over. */
static uint32_t bulk_step(gen *g, bsess *b, uint8_t *buf)
{
    sess *x = &b->x;
    pspec s = { .vlan = x->vlan, .ipver = x->ipver, .proto = x->proto };
    bool from_server;
    uint8_t flags = 0;
    uint32_t plen = 0;
    int st = b->step++;
    if (b->kind == 0) {
        int last = b->steps - 1;
        if (st == 0) from_server = false, flags = TCP_SYN;
        else if (st == 1) from_server = true, flags = TCP_SYN | TCP_ACK;
        else if (st == 2) from_server = false, flags = TCP_ACK;
        else if (st == last - 1) from_server = false, flags = TCP_FIN | TCP_ACK;
        else if (st == last) from_server = true, flags = TCP_FIN | TCP_ACK;
        else {
            from_server = (st & 1) == 0;
            flags = TCP_PSH | TCP_ACK;
            plen = from_server ? 200 + (uint32_t)(rnd(g) % 1200) : 40 + (uint32_t)(rnd(g) % 360);
        }
    } else {
        from_server = st & 1;
        plen = 32 + (uint32_t)(rnd(g) % 200);
    }
    const uint8_t *pl = g->noise + rnd(g) % (65536 - 1500);
    uint8_t tmp[1500];
    if (b->evil && st == 3 && plen) {
        memcpy(tmp, pl, plen);
        memcpy(tmp + 10, "GET /etc/passwd", 15);
        pl = tmp;
    }
    s.src = from_server ? x->s : x->c;
    s.dst = from_server ? x->c : x->s;
    s.sport = from_server ? x->sp : x->cp;
    s.dport = from_server ? x->cp : x->sp;
    if (b->kind == 2) {
        s.sport = from_server ? 0 : 8;
        s.dport = 0;
    }
    s.seq = from_server ? x->sseq : x->cseq;
    s.ack = from_server ? x->cseq : x->sseq;
    s.flags = flags;
    s.pl = pl;
    s.plen = plen;
    uint32_t adv = plen + ((flags & (TCP_SYN | TCP_FIN)) ? 1 : 0);
    if (from_server)
        x->sseq += adv;
    else
        x->cseq += adv;
    return build(buf, &s);
}

/* ------------------------------------------------------------------- API */

gen *gen_new(const char *scenario, uint64_t npackets, uint64_t seed)
{
    gen *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    if (!strcmp(scenario, "test")) {
        scenario_test(g);
        return g;
    }
    if (!strcmp(scenario, "jumbo") || !strcmp(scenario, "gap") || !strcmp(scenario, "direction")) {
        if (scenario[0] == 'j')
            scenario_jumbo(g);
        else if (scenario[0] == 'g')
            scenario_gap(g);
        else
            scenario_direction(g);
        return g;
    }
    if (!strcmp(scenario, "udp-flows")) {
        scenario_udp_flows(g, npackets);
        return g;
    }
    if (strcmp(scenario, "bulk") != 0) {
        free(g);
        return NULL;
    }
    g->bulk = true;
    g->rng = seed * 0x9e3779b97f4a7c15ull + 88172645463325252ull;
    g->remaining = npackets;
    g->ts = T0;
    g->bs = calloc(BULK_SESSIONS, sizeof *g->bs);
    g->noise = malloc(65536);
    if (!g->bs || !g->noise) {
        gen_free(g);
        return NULL;
    }
    for (int i = 0; i < 65536; i++)
        g->noise[i] = (uint8_t)(rnd(g) >> 24 | 0x20); /* no NULs, like text-ish payloads */
    for (int i = 0; i < BULK_SESSIONS; i++)
        bulk_new(g, &g->bs[i]);
    return g;
}

int gen_next(gen *g, uint8_t *buf, uint32_t cap, uint32_t *caplen, uint32_t *wirelen, uint64_t *ts_ns)
{
    if (!g->bulk) {
        if (g->next == g->n)
            return 0;
        gpkt *p = &g->v[g->next++];
        uint32_t n = p->len < cap ? p->len : cap;
        memcpy(buf, p->data, n);
        *caplen = n;
        *wirelen = p->len;
        *ts_ns = p->ts;
        return 1;
    }
    if (g->remaining == 0 || cap < MAXPKT)
        return 0;
    g->remaining--;
    bsess *b = &g->bs[rnd(g) % BULK_SESSIONS];
    uint32_t n = bulk_step(g, b, buf);
    if (b->step == b->steps)
        bulk_new(g, b);
    g->ts += 1000 + rnd(g) % 20000;
    *caplen = *wirelen = n;
    *ts_ns = g->ts;
    return 1;
}

void gen_free(gen *g)
{
    if (!g)
        return;
    for (size_t i = 0; i < g->n; i++)
        free(g->v[i].data);
    free(g->v);
    free(g->bs);
    free(g->noise);
    free(g);
}
