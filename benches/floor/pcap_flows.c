/* The floor of flow tracking: libpcap, Ethernet (+ 802.1Q) IPv4/IPv6 TCP/UDP
 * 5-tuple, direction-free, into an open-addressing (linear probing) hash table
 * with a packet and byte count per flow. No timeouts, no classification.
 * Build: gcc -O2 -o pcap_flows pcap_flows.c -lpcap    Run: pcap_flows FILE */
#include <pcap/pcap.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct key { uint8_t lo[16], hi[16]; uint16_t lo_port, hi_port; uint8_t proto, used; };
struct flow { struct key k; uint64_t packets, bytes; };

#define SLOTS (1u << 20) /* 1M slots: a capture of up to ~500k flows */
static struct flow *table;

/* Four 64-bit words of addresses, one of ports and protocol, each mixed in. */
static uint64_t hash(const struct key *k) {
    uint64_t w[5], h = 0x9e3779b97f4a7c15ull;
    memcpy(w, k, 32);
    w[4] = (uint64_t)k->lo_port << 24 | (uint64_t)k->hi_port << 8 | k->proto;
    for (int i = 0; i < 5; i++) {
        h = (h ^ w[i]) * 0xbf58476d1ce4e5b9ull;
        h ^= h >> 31;
    }
    return h;
}

static int parse(const u_char *d, uint32_t len, struct key *k) {
    uint32_t at = 12;
    if (len < 14) return 0;
    uint16_t et = d[at] << 8 | d[at + 1];
    at += 2;
    while (et == 0x8100 || et == 0x88a8) {
        if (len < at + 4) return 0;
        et = d[at + 2] << 8 | d[at + 3];
        at += 4;
    }
    uint8_t a[16] = {0}, b[16] = {0}, proto;
    if (et == 0x0800) {
        if (len < at + 20) return 0;
        uint32_t ihl = (d[at] & 15) * 4;
        proto = d[at + 9];
        memcpy(a, d + at + 12, 4);
        memcpy(b, d + at + 16, 4);
        at += ihl;
    } else if (et == 0x86dd) {
        if (len < at + 40) return 0;
        proto = d[at + 6];
        memcpy(a, d + at + 8, 16);
        memcpy(b, d + at + 24, 16);
        at += 40;
        while (proto == 0 || proto == 60) { /* hop-by-hop, destination options */
            if (len < at + 8) return 0;
            proto = d[at];
            at += (d[at + 1] + 1) * 8;
        }
    } else {
        return 0;
    }
    if ((proto != 6 && proto != 17) || len < at + 4) return 0;
    uint16_t pa = d[at] << 8 | d[at + 1], pb = d[at + 2] << 8 | d[at + 3];
    int c = memcmp(a, b, 16);
    if (c > 0 || (c == 0 && pa > pb)) {
        memcpy(k->lo, b, 16); memcpy(k->hi, a, 16); k->lo_port = pb; k->hi_port = pa;
    } else {
        memcpy(k->lo, a, 16); memcpy(k->hi, b, 16); k->lo_port = pa; k->hi_port = pb;
    }
    k->proto = proto;
    k->used = 1;
    return 1;
}

int main(int argc, char **argv) {
    char err[PCAP_ERRBUF_SIZE];
    if (argc != 2) {
        fprintf(stderr, "usage: %s CAPTURE\n", argv[0]);
        return 2;
    }
    pcap_t *p = pcap_open_offline(argv[1], err);
    if (!p) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    table = calloc(SLOTS, sizeof *table);
    if (!table) return 1;
    struct pcap_pkthdr *h;
    const u_char *data;
    unsigned long long packets = 0, flows = 0;
    int rc;
    while ((rc = pcap_next_ex(p, &h, &data)) == 1) {
        packets++;
        struct key k;
        memset(&k, 0, sizeof k);
        if (!parse(data, h->caplen, &k)) continue;
        for (uint64_t i = hash(&k) & (SLOTS - 1);; i = (i + 1) & (SLOTS - 1)) {
            struct flow *f = &table[i];
            if (!f->k.used) {
                f->k = k;
                flows++;
            } else if (memcmp(&f->k, &k, sizeof k) != 0) {
                continue;
            }
            f->packets++;
            f->bytes += h->len;
            break;
        }
    }
    if (rc == PCAP_ERROR) {
        fprintf(stderr, "%s\n", pcap_geterr(p));
        return 1;
    }
    printf("%llu packets, %llu flows\n", packets, flows);
    pcap_close(p);
    return 0;
}
