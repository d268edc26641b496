/*
 * gen_main.c - nids-gen: writes the generator's traffic to a classic pcap
 * file, optionally damaged in one known way (for the bad-input tests).
 *
 *   nids-gen [-s SCENARIO] [-n N] [--big-endian] [--nsec] [--time-offset S] [--corrupt KIND] -o FILE
 *   nids-gen --send-udp PORT TEXT
 *
 * With --corrupt, the last line of standard output names what the reader
 * must report: "offset N" of the damaged record (or header). --send-udp
 * sends one datagram to 127.0.0.1:PORT (traffic for the live-capture test).
 */
#define _POSIX_C_SOURCE 200809L
#include "nids.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct gen gen;
gen *gen_new(const char *scenario, uint64_t npackets, uint64_t seed);
int gen_next(gen *g, uint8_t *buf, uint32_t cap, uint32_t *caplen, uint32_t *wirelen, uint64_t *ts_ns);
void gen_free(gen *g);

static void usage(void)
{
    fprintf(stderr, "usage: nids-gen [-s test|bulk|jumbo|gap|direction|udp-flows] [-n N] [--big-endian] [--nsec]\n"
                    "                [--seed S] [--time-offset SECONDS]\n"
                    "                [--corrupt trunc-header|trunc-record|caplen-huge|caplen-wire|"
                    "caplen-eof|linktype|magic|pcapng|short-file] -o FILE\n"
                    "       nids-gen --send-udp PORT TEXT   (one datagram to 127.0.0.1:PORT)\n");
    exit(1);
}

static uint64_t number(const char *opt, const char *v)
{
    char *e;
    errno = 0;
    unsigned long long n = strtoull(v, &e, 10);
    if (!*v || *e || *v == '-' || errno) {
        fprintf(stderr, "nids-gen: %s: expected a whole number, not '%s'\n", opt, v);
        exit(1);
    }
    return n;
}

static int send_udp(const char *port_s, const char *text)
{
    uint64_t port = number("--send-udp", port_s);
    if (port == 0 || port > 65535) {
        fprintf(stderr, "nids-gen: --send-udp: port %s out of range\n", port_s);
        return 1;
    }
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || sendto(fd, text, strlen(text), 0, (struct sockaddr *)&to, sizeof to) < 0) {
        perror("nids-gen: --send-udp");
        return 1;
    }
    close(fd);
    return 0;
}

static void patch32(FILE *f, long off, uint32_t v, bool big)
{
    uint8_t b[4];
    for (int i = 0; i < 4; i++)
        b[i] = (uint8_t)(big ? v >> (24 - 8 * i) : v >> (8 * i));
    fseek(f, off, SEEK_SET);
    fwrite(b, 1, 4, f);
}

int main(int argc, char **argv)
{
    const char *scenario = "test", *out = NULL, *corrupt = NULL;
    uint64_t n = 1000000, seed = 1, offset_ns = 0;
    bool big = false, nsec = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--send-udp") && v && i + 2 < argc)
            return send_udp(v, argv[i + 2]);
        if (!strcmp(a, "--big-endian"))
            big = true;
        else if (!strcmp(a, "--nsec"))
            nsec = true;
        else if (!strcmp(a, "-s") && v)
            scenario = argv[++i];
        else if (!strcmp(a, "-o") && v)
            out = argv[++i];
        else if (!strcmp(a, "-n") && v)
            n = number(a, argv[++i]);
        else if (!strcmp(a, "--seed") && v)
            seed = number(a, argv[++i]);
        else if (!strcmp(a, "--time-offset") && v)
            offset_ns = number(a, argv[++i]) * 1000000000ull;
        else if (!strcmp(a, "--corrupt") && v)
            corrupt = argv[++i];
        else
            usage();
    }
    if (!out)
        usage();
    gen *g = gen_new(scenario, n, seed);
    if (!g) {
        fprintf(stderr, "nids-gen: unknown scenario '%s'\n", scenario);
        return 1;
    }
    pcap_writer w;
    if (pcapw_open(&w, out, LINKTYPE_ETHERNET, big, nsec) < 0) {
        perror(out);
        return 1;
    }
    static uint8_t buf[PCAP_MAX_CAPLEN];
    uint32_t caplen, wirelen;
    uint64_t ts, count = 0, off = 24, rec3 = 0, last = 0;
    while (gen_next(g, buf, sizeof buf, &caplen, &wirelen, &ts) == 1) {
        if (pcapw_write(&w, ts + offset_ns, buf, caplen, wirelen) < 0) {
            perror(out);
            return 1;
        }
        if (count == 2)
            rec3 = off;
        last = off;
        off += 16 + caplen;
        count++;
    }
    gen_free(g);
    if (pcapw_close(&w) < 0) {
        perror(out);
        return 1;
    }
    if (!corrupt) {
        printf("%s: %llu packets, %llu bytes\n", out, (unsigned long long)count, (unsigned long long)off);
        return 0;
    }
    FILE *f = fopen(out, "r+b");
    if (!f) {
        perror(out);
        return 1;
    }
    long report = -1;
    if (!strcmp(corrupt, "trunc-header")) {        /* file ends inside a record header */
        fclose(f);
        if (truncate(out, (off_t)(last + 10)) < 0)
            return 1;
        printf("offset %llu\n", (unsigned long long)last);
        return 0;
    } else if (!strcmp(corrupt, "trunc-record")) { /* file ends inside a record's data */
        fclose(f);
        if (truncate(out, (off_t)(off - 7)) < 0)
            return 1;
        printf("offset %llu\n", (unsigned long long)last);
        return 0;
    } else if (!strcmp(corrupt, "short-file")) {   /* not even a file header */
        fclose(f);
        if (truncate(out, 10) < 0)
            return 1;
        printf("offset 10\n");
        return 0;
    } else if (!strcmp(corrupt, "caplen-huge")) {  /* the 3rd record claims 2 GiB */
        patch32(f, (long)rec3 + 8, 0x7fffffffu, big);
        report = (long)rec3;
    } else if (!strcmp(corrupt, "caplen-wire")) {  /* captured more than was on the wire */
        patch32(f, (long)rec3 + 12, 10, big);
        report = (long)rec3;
    } else if (!strcmp(corrupt, "caplen-eof")) {   /* the last record claims more than the file holds */
        patch32(f, (long)last + 8, 60000, big);
        patch32(f, (long)last + 12, 60000, big);
        report = (long)last;
    } else if (!strcmp(corrupt, "linktype")) {
        patch32(f, 20, 147, big);
        report = 20;
    } else if (!strcmp(corrupt, "magic")) {
        patch32(f, 0, 0x12345678u, false);
        report = 0;
    } else if (!strcmp(corrupt, "pcapng")) {
        patch32(f, 0, 0x0a0d0d0au, false);
        report = 0;
    } else {
        usage();
    }
    fclose(f);
    printf("offset %ld\n", report);
    return 0;
}
