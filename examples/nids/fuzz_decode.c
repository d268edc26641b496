/*
 * fuzz_decode.c - libFuzzer target for the untrusted-input parsers: the
 * packet decoder (first byte picks the link type), and with the same bytes
 * the pcap reader (through fmemopen) and the rule parser.
 *
 *   cmake -DCMAKE_C_COMPILER=clang -DNIDS_FUZZ=ON ..; make nids-fuzz
 *   ./nids-fuzz -max_total_time=300 corpus/
 */
#define _POSIX_C_SOURCE 200809L
#include "nids.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    /* The decoder gets an exact-size heap copy so ASan sees any overread. */
    uint8_t *copy = malloc(size - 1 ? size - 1 : 1);
    memcpy(copy, data + 1, size - 1);
    decoded d;
    int rc = nids_decode(copy, size - 1, data[0] & 1 ? LINKTYPE_RAW : LINKTYPE_ETHERNET, &d);
    if (rc == DEC_OK && d.has_l4 && d.payload_off + (size_t)d.payload_len > size - 1)
        abort(); /* the payload it reports must lie inside the packet */
    if (rc == DEC_OK && d.payload_len) {
        volatile uint8_t sink = copy[d.payload_off] ^ copy[d.payload_off + d.payload_len - 1];
        (void)sink;
    }
    free(copy);

    char err[256];
    FILE *f = fmemopen((void *)data, size, "rb");
    if (f) {
        pcap_reader *r = pcapr_open("fuzz", f, err, sizeof err);
        pcap_rec rec;
        while (r && pcapr_next(r, &rec, err, sizeof err) == 1)
            nids_decode(rec.data, rec.caplen, pcapr_linktype(r), &d);
        pcapr_close(r);
    }
    ruleset rs;
    if (rules_parse(&rs, "fuzz", (const char *)data, size, err, sizeof err) == 0)
        rules_free(&rs);
    return 0;
}
