/*
 * nids.h - the pieces of the nids example that know nothing about memory
 * pools: the packet decoder, the classic-pcap reader and writer, and the
 * rule file parser with its payload matcher. nids.c builds the pipeline
 * (threads, pools, flows, detection) on top of them.
 *
 * Everything here works on caller-owned memory and checks every length
 * before reading: these are the functions the fuzz target drives.
 */
#ifndef NIDS_H
#define NIDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---------------------------------------------------------------- decoder */

#define LINKTYPE_ETHERNET 1
#define LINKTYPE_RAW 101 /* raw IPv4/IPv6, no link header */

#define IPPROTO_ICMP_ 1
#define IPPROTO_TCP_ 6
#define IPPROTO_UDP_ 17
#define IPPROTO_ICMPV6_ 58

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_PSH 0x08
#define TCP_ACK 0x10

/* What nids_decode returns. */
enum {
    DEC_OK = 0,      /* IPv4/IPv6 decoded (and the L4 header when there is one) */
    DEC_NOT_IP,      /* a well-formed frame that carries no IP (ARP, LLDP...) */
    DEC_BAD_L2,      /* Ethernet or VLAN header cut short */
    DEC_BAD_IP4,     /* IPv4 header cut short or inconsistent */
    DEC_BAD_IP6,     /* IPv6 header or extension headers cut short */
    DEC_BAD_L4,      /* TCP/UDP/ICMP header cut short or inconsistent */
    DEC_BAD_LINK,    /* a link type this decoder does not know */
    DEC_NERR
};

typedef struct decoded {
    uint8_t ipver;      /* 4 or 6 (0 unless DEC_OK) */
    uint8_t proto;      /* IP protocol number of the transport header */
    uint8_t has_l4;     /* the transport header was decoded (not a later fragment) */
    uint8_t tcp_flags;  /* TCP only */
    uint16_t vlan;      /* VLAN id, or 0xffff when untagged */
    uint16_t sport, dport; /* TCP/UDP ports; ICMP: type, code */
    uint32_t seq, ack;  /* TCP only */
    uint8_t src[16], dst[16]; /* IPv4 addresses use the first 4 bytes, the rest is 0 */
    uint32_t payload_off, payload_len; /* transport payload within the captured bytes */
} decoded;

/* Decodes pkt[0..caplen). Never reads outside it. Returns DEC_*. */
int nids_decode(const uint8_t *pkt, size_t caplen, int linktype, decoded *d);
const char *nids_decode_error(int err);

/* ------------------------------------------------------------------- pcap */

typedef struct pcap_reader pcap_reader;
typedef struct pcap_rec {
    uint64_t ts_ns;      /* capture time, nanoseconds since the epoch */
    uint32_t caplen;     /* bytes at data */
    uint32_t wirelen;    /* bytes on the wire */
    uint64_t offset;     /* file offset of the record header */
    const uint8_t *data; /* valid until the next pcapr_next */
} pcap_rec;

#define PCAP_MAX_CAPLEN 262144u /* what libpcap accepts */

/* Opens a classic pcap file (either byte order, microsecond or nanosecond
 * magic). On failure returns NULL with a message "<path>: offset N: ..." in
 * err. f: an open stream (the reader takes it over), or NULL to open path. */
pcap_reader *pcapr_open(const char *path, FILE *f, char *err, size_t errlen);
/* 1: a record in *rec; 0: end of file; -1: a bad record, message in err. */
int pcapr_next(pcap_reader *r, pcap_rec *rec, char *err, size_t errlen);
int pcapr_linktype(const pcap_reader *r);
/* True when the next record is already buffered: pcapr_next will not read
 * (and so will not block on a pipe). */
bool pcapr_has_record(const pcap_reader *r);
void pcapr_close(pcap_reader *r);

/* Writer (little- or big-endian, micro- or nanosecond timestamps). */
typedef struct pcap_writer {
    FILE *f;
    bool swap, nsec;
} pcap_writer;
int pcapw_open(pcap_writer *w, const char *path, int linktype, bool big_endian, bool nsec);
int pcapw_write(pcap_writer *w, uint64_t ts_ns, const uint8_t *data, uint32_t caplen, uint32_t wirelen);
int pcapw_close(pcap_writer *w);

/* ------------------------------------------------------------------ rules */

enum { RULE_PAYLOAD = 1, RULE_PORTSCAN, RULE_SYNFLOOD };
enum { PORT_EITHER = 0, PORT_SRC, PORT_DST }; /* rule port N, src:N, dst:N */

#define RULE_ID_MAX 32
#define RULE_MSG_MAX 128
#define RULE_PAT_MAX 256
#define RULES_PAYLOAD_MAX 64 /* a flow remembers which payload rules fired in a 64-bit mask */

typedef struct rule {
    int kind;
    char id[RULE_ID_MAX];
    char msg[RULE_MSG_MAX];
    int line;            /* line in the rule file */
    /* payload */
    int proto;           /* 0 any, else IPPROTO_TCP_/UDP_/ICMP_ (ICMP matches ICMPv6 too) */
    int port;            /* -1 any, else the port number port_dir applies to */
    int port_dir;        /* PORT_EITHER, PORT_SRC (sender's port) or PORT_DST (receiver's port) */
    uint8_t pat[RULE_PAT_MAX];
    size_t patlen;
    /* portscan / synflood */
    uint32_t threshold;  /* alert when the count exceeds it */
    uint64_t window_ns;
} rule;

typedef struct ruleset {
    rule *rules;         /* payload rules first, in file order, then the others */
    size_t n, npayload;
    const rule *portscan, *synflood; /* at most one of each, or NULL */
} ruleset;

/* Parses a rule file. 0, or -1 with "<path>:<line>: ..." in err. */
int rules_load(ruleset *rs, const char *path, char *err, size_t errlen);
int rules_parse(ruleset *rs, const char *name, const char *text, size_t len, char *err, size_t errlen);
void rules_free(ruleset *rs);

/* First occurrence of pat in hay, or NULL. */
const uint8_t *nids_find(const uint8_t *hay, size_t n, const uint8_t *pat, size_t m);

#endif /* NIDS_H */
