/*
 * decode.c - Ethernet (one VLAN tag) / IPv4 / IPv6 / TCP / UDP / ICMP
 * header decoder.
 *
 * Rule: every read is preceded by a check that the bytes are there. `len`
 * is always the number of captured bytes left from `p`, and shrinks to the
 * IP datagram's own length when the header says the datagram is shorter
 * than the capture (Ethernet padding). A header that claims more bytes than
 * were captured is cut to the capture (a truncated snapshot is normal), but
 * a header that contradicts itself (IHL below 5, a TCP data offset below 5 or
 * past the segment) is an error.
 */
#include "nids.h"

#include <string.h>

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

const char *nids_decode_error(int err)
{
    static const char *const names[DEC_NERR] = {
        "ok", "not IP", "bad link header", "bad IPv4 header", "bad IPv6 header",
        "bad transport header", "unknown link type",
    };
    return err >= 0 && err < DEC_NERR ? names[err] : "?";
}

/* Transport header at p (len bytes of the datagram's payload). */
static int decode_l4(const uint8_t *base, const uint8_t *p, size_t len, decoded *d)
{
    size_t hl;
    switch (d->proto) {
    case IPPROTO_TCP_:
        if (len < 20)
            return DEC_BAD_L4;
        hl = (size_t)(p[12] >> 4) * 4;
        if (hl < 20 || hl > len)
            return DEC_BAD_L4;
        d->sport = rd16(p);
        d->dport = rd16(p + 2);
        d->seq = rd32(p + 4);
        d->ack = rd32(p + 8);
        d->tcp_flags = p[13];
        break;
    case IPPROTO_UDP_: {
        if (len < 8)
            return DEC_BAD_L4;
        size_t ulen = rd16(p + 4);
        if (ulen < 8)
            return DEC_BAD_L4;
        if (ulen < len)
            len = ulen; /* trailing bytes are not UDP payload */
        d->sport = rd16(p);
        d->dport = rd16(p + 2);
        hl = 8;
        break;
    }
    case IPPROTO_ICMP_:
    case IPPROTO_ICMPV6_:
        if (len < 8)
            return DEC_BAD_L4;
        d->sport = p[0]; /* type */
        d->dport = p[1]; /* code */
        hl = 8;
        break;
    default:
        d->payload_off = (uint32_t)(p - base);
        d->payload_len = (uint32_t)len;
        return DEC_OK; /* another protocol: no transport header to decode */
    }
    d->has_l4 = 1;
    d->payload_off = (uint32_t)(p + hl - base);
    d->payload_len = (uint32_t)(len - hl);
    return DEC_OK;
}

static int decode_ip4(const uint8_t *base, const uint8_t *p, size_t len, decoded *d)
{
    if (len < 20 || p[0] >> 4 != 4)
        return DEC_BAD_IP4;
    size_t ihl = (size_t)(p[0] & 15) * 4;
    size_t total = rd16(p + 2);
    if (ihl < 20 || total < ihl || ihl > len)
        return DEC_BAD_IP4;
    if (total < len)
        len = total; /* Ethernet padding */
    d->ipver = 4;
    d->proto = p[9];
    memcpy(d->src, p + 12, 4);
    memcpy(d->dst, p + 16, 4);
    uint16_t frag = rd16(p + 6);
    if (frag & 0x1fff) { /* a later fragment: no transport header here */
        d->payload_off = (uint32_t)(p + ihl - base);
        d->payload_len = (uint32_t)(len - ihl);
        return DEC_OK;
    }
    return decode_l4(base, p + ihl, len - ihl, d);
}

static int decode_ip6(const uint8_t *base, const uint8_t *p, size_t len, decoded *d)
{
    if (len < 40 || p[0] >> 4 != 6)
        return DEC_BAD_IP6;
    size_t plen = rd16(p + 4);
    uint8_t nh = p[6];
    memcpy(d->src, p + 8, 16);
    memcpy(d->dst, p + 24, 16);
    d->ipver = 6;
    p += 40;
    len -= 40;
    if (plen < len)
        len = plen; /* padding (a jumbogram's payload length 0 is not supported: cut to 0) */
    for (int hops = 0; hops < 8; hops++) {
        switch (nh) {
        case 0:   /* hop-by-hop */
        case 43:  /* routing */
        case 60: { /* destination options */
            if (len < 8)
                return DEC_BAD_IP6;
            size_t hl = ((size_t)p[1] + 1) * 8;
            if (hl > len)
                return DEC_BAD_IP6;
            nh = p[0];
            p += hl;
            len -= hl;
            continue;
        }
        case 44: /* fragment */
            if (len < 8)
                return DEC_BAD_IP6;
            d->proto = p[0];
            if (rd16(p + 2) & 0xfff8) { /* offset != 0: no transport header */
                d->payload_off = (uint32_t)(p + 8 - base);
                d->payload_len = (uint32_t)(len - 8);
                return DEC_OK;
            }
            nh = p[0];
            p += 8;
            len -= 8;
            continue;
        default:
            d->proto = nh;
            return decode_l4(base, p, len, d);
        }
    }
    return DEC_BAD_IP6; /* too many extension headers */
}

int nids_decode(const uint8_t *pkt, size_t caplen, int linktype, decoded *d)
{
    memset(d, 0, sizeof *d);
    d->vlan = 0xffff;
    const uint8_t *p = pkt;
    size_t len = caplen;
    uint16_t type;

    if (linktype == LINKTYPE_RAW) {
        if (len < 1)
            return DEC_BAD_IP4;
        type = (p[0] >> 4) == 6 ? 0x86dd : 0x0800;
    } else if (linktype == LINKTYPE_ETHERNET) {
        if (len < 14)
            return DEC_BAD_L2;
        type = rd16(p + 12);
        p += 14;
        len -= 14;
        if (type == 0x8100 || type == 0x88a8) { /* one 802.1Q / 802.1ad tag */
            if (len < 4)
                return DEC_BAD_L2;
            d->vlan = rd16(p) & 0x0fff;
            type = rd16(p + 2);
            p += 4;
            len -= 4;
        }
    } else {
        return DEC_BAD_LINK;
    }
    switch (type) {
    case 0x0800: return decode_ip4(pkt, p, len, d);
    case 0x86dd: return decode_ip6(pkt, p, len, d);
    default: return DEC_NOT_IP;
    }
}

const uint8_t *nids_find(const uint8_t *hay, size_t n, const uint8_t *pat, size_t m)
{
    if (m == 0 || m > n)
        return NULL;
    const uint8_t *end = hay + (n - m) + 1; /* last possible start + 1 */
    const uint8_t *s = hay;
    while (s < end) {
        s = memchr(s, pat[0], (size_t)(end - s));
        if (!s)
            return NULL;
        if (memcmp(s + 1, pat + 1, m - 1) == 0)
            return s;
        s++;
    }
    return NULL;
}
