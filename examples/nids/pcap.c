/*
 * pcap.c - the classic pcap file format (not pcapng), read and written
 * without libpcap.
 *
 * File: a 24-byte global header (magic, version 2.4, zone, sigfigs,
 * snaplen, link type) then records, each a 16-byte header (seconds,
 * fraction, captured length, original length) and the captured bytes. The
 * magic tells the byte order (0xa1b2c3d4 as written by the writer's
 * machine) and the unit of the fraction (0xa1b23c4d: nanoseconds).
 *
 * The reader trusts nothing: a record may not claim more than 256 KiB, more
 * than it had on the wire, or more than the file holds; every such lie is
 * reported with the file offset of the record, and reading stops there.
 * Records are read through one buffer; rec->data points into it. A file
 * with a descriptor is read with read(2), which returns what a pipe holds
 * instead of waiting for a full buffer, so a capture written into a FIFO is
 * processed as it arrives; pcapr_has_record tells the caller when the next
 * call may wait for input.
 */
#define _POSIX_C_SOURCE 200809L
#include "nids.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAGIC_US 0xa1b2c3d4u
#define MAGIC_NS 0xa1b23c4du
#define BUF_SIZE (1u << 20) /* > 16 + PCAP_MAX_CAPLEN */

struct pcap_reader {
    FILE *f;
    int fd;             /* fileno(f), or -1 (a memory stream): then fread */
    char path[256];
    bool swap, nsec;
    int linktype;
    uint8_t *buf;
    size_t start, end;  /* unread bytes are buf[start..end) */
    uint64_t buf_off;   /* file offset of buf[start] */
    bool read_error;    /* read(2) failed */
};

static uint32_t bswap32(uint32_t v)
{
    return (v >> 24) | ((v >> 8) & 0xff00u) | ((v << 8) & 0xff0000u) | (v << 24);
}
static uint32_t get32(const pcap_reader *r, const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return r->swap ? bswap32(v) : v;
}

static void fail(char *err, size_t errlen, const char *path, uint64_t off, const char *fmt, ...)
{
    int n = snprintf(err, errlen, "%s: offset %llu: ", path, (unsigned long long)off);
    if (n < 0 || (size_t)n >= errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
    va_end(ap);
}

/* Makes at least n unread bytes available if the file has them; returns
 * how many are available (fewer only at end of file). */
static size_t fill(pcap_reader *r, size_t n)
{
    if (r->end - r->start >= n)
        return r->end - r->start;
    memmove(r->buf, r->buf + r->start, r->end - r->start);
    r->end -= r->start;
    r->start = 0;
    while (r->end < n) {
        size_t got;
        if (r->fd >= 0) {
            ssize_t k = read(r->fd, r->buf + r->end, BUF_SIZE - r->end);
            if (k < 0 && errno == EINTR)
                continue;
            if (k < 0)
                r->read_error = true;
            got = k > 0 ? (size_t)k : 0;
        } else {
            got = fread(r->buf + r->end, 1, BUF_SIZE - r->end, r->f);
        }
        if (got == 0)
            break;
        r->end += got;
    }
    return r->end;
}

pcap_reader *pcapr_open(const char *path, FILE *f, char *err, size_t errlen)
{
    if (!f && !(f = fopen(path, "rb"))) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    pcap_reader *r = calloc(1, sizeof *r);
    uint8_t *buf = malloc(BUF_SIZE);
    if (!r || !buf) {
        free(r);
        free(buf);
        fclose(f);
        snprintf(err, errlen, "%s: out of memory", path);
        return NULL;
    }
    r->f = f;
    r->fd = fileno(f);
    r->buf = buf;
    snprintf(r->path, sizeof r->path, "%s", path);
    size_t have = fill(r, 24);
    if (have < 4) {
        fail(err, errlen, path, have, "not a pcap file: %zu bytes, too short for a header", have);
        goto bad;
    }
    uint32_t magic;
    memcpy(&magic, r->buf, 4);
    if (magic == MAGIC_US || magic == MAGIC_NS) {
        r->nsec = magic == MAGIC_NS;
    } else if (bswap32(magic) == MAGIC_US || bswap32(magic) == MAGIC_NS) {
        r->swap = true;
        r->nsec = bswap32(magic) == MAGIC_NS;
    } else if (magic == 0x0a0d0d0au) {
        fail(err, errlen, path, 0, "pcapng is not supported by the built-in reader (convert: editcap -F pcap)");
        goto bad;
    } else {
        fail(err, errlen, path, 0, "not a pcap file (magic 0x%08x)", magic);
        goto bad;
    }
    if (have < 24) {
        fail(err, errlen, path, have, "truncated file header (%zu of 24 bytes)", have);
        goto bad;
    }
    uint16_t major;
    memcpy(&major, r->buf + 4, 2);
    if (r->swap)
        major = (uint16_t)(major >> 8 | major << 8);
    if (major != 2) {
        fail(err, errlen, path, 4, "unsupported pcap version %u", major);
        goto bad;
    }
    r->linktype = (int)(get32(r, r->buf + 20) & 0xffff);
    r->start = 24;
    r->buf_off = 24;
    return r;
bad:
    pcapr_close(r);
    return NULL;
}

int pcapr_next(pcap_reader *r, pcap_rec *rec, char *err, size_t errlen)
{
    size_t have = fill(r, 16);
    uint64_t off = r->buf_off;
    if (have == 0) {
        if (r->read_error || ferror(r->f)) {
            fail(err, errlen, r->path, off, "read error");
            return -1;
        }
        return 0;
    }
    if (have < 16) {
        fail(err, errlen, r->path, off, "truncated record header (%zu of 16 bytes)", have);
        return -1;
    }
    const uint8_t *h = r->buf + r->start;
    uint32_t sec = get32(r, h), frac = get32(r, h + 4);
    uint32_t caplen = get32(r, h + 8), wirelen = get32(r, h + 12);
    if (frac >= (r->nsec ? 1000000000u : 1000000u)) {
        fail(err, errlen, r->path, off, "bad timestamp fraction %u", frac);
        return -1;
    }
    if (caplen > PCAP_MAX_CAPLEN) {
        fail(err, errlen, r->path, off, "captured length %u larger than %u", caplen, PCAP_MAX_CAPLEN);
        return -1;
    }
    if (caplen > wirelen) {
        fail(err, errlen, r->path, off, "captured length %u larger than original length %u", caplen, wirelen);
        return -1;
    }
    have = fill(r, 16 + (size_t)caplen);
    if (have < 16 + (size_t)caplen) {
        fail(err, errlen, r->path, off, "truncated record (%zu of %u captured bytes)", have - 16, caplen);
        return -1;
    }
    rec->ts_ns = (uint64_t)sec * 1000000000u + (r->nsec ? frac : (uint64_t)frac * 1000u);
    rec->caplen = caplen;
    rec->wirelen = wirelen;
    rec->offset = off;
    rec->data = r->buf + r->start + 16;
    r->start += 16 + (size_t)caplen;
    r->buf_off += 16 + (uint64_t)caplen;
    return 1;
}

int pcapr_linktype(const pcap_reader *r) { return r->linktype; }

bool pcapr_has_record(const pcap_reader *r)
{
    size_t have = r->end - r->start;
    if (have < 16)
        return false;
    uint32_t caplen = get32(r, r->buf + r->start + 8);
    return caplen > PCAP_MAX_CAPLEN || have >= 16 + (size_t)caplen; /* a bad length is reported without reading */
}

void pcapr_close(pcap_reader *r)
{
    if (!r)
        return;
    fclose(r->f);
    free(r->buf);
    free(r);
}

/* ----------------------------------------------------------------- writer */

static void put32(const pcap_writer *w, uint8_t *p, uint32_t v)
{
    if (w->swap)
        v = bswap32(v);
    memcpy(p, &v, 4);
}

static bool host_big_endian(void)
{
    const uint16_t one = 1;
    return *(const uint8_t *)&one == 0;
}

int pcapw_open(pcap_writer *w, const char *path, int linktype, bool big_endian, bool nsec)
{
    w->f = fopen(path, "wb");
    if (!w->f)
        return -1;
    w->swap = big_endian != host_big_endian();
    w->nsec = nsec;
    uint8_t h[24];
    put32(w, h, nsec ? MAGIC_NS : MAGIC_US);
    uint16_t major = 2, minor = 4;
    if (w->swap) {
        major = (uint16_t)(major << 8);
        minor = (uint16_t)(minor << 8);
    }
    memcpy(h + 4, &major, 2);
    memcpy(h + 6, &minor, 2);
    put32(w, h + 8, 0);
    put32(w, h + 12, 0);
    put32(w, h + 16, PCAP_MAX_CAPLEN); /* snaplen: frames up to 256 KiB */
    put32(w, h + 20, (uint32_t)linktype);
    return fwrite(h, 1, 24, w->f) == 24 ? 0 : -1;
}

int pcapw_write(pcap_writer *w, uint64_t ts_ns, const uint8_t *data, uint32_t caplen, uint32_t wirelen)
{
    uint8_t h[16];
    put32(w, h, (uint32_t)(ts_ns / 1000000000u));
    uint32_t frac = (uint32_t)(ts_ns % 1000000000u);
    put32(w, h + 4, w->nsec ? frac : frac / 1000u);
    put32(w, h + 8, caplen);
    put32(w, h + 12, wirelen);
    if (fwrite(h, 1, 16, w->f) != 16 || fwrite(data, 1, caplen, w->f) != caplen)
        return -1;
    return 0;
}

int pcapw_close(pcap_writer *w)
{
    int rc = ferror(w->f) ? -1 : 0;
    if (fclose(w->f) != 0)
        rc = -1;
    return rc;
}
