/* The floor of reading a capture: libpcap's pcap_next_ex loop, counting packets.
 * Build: gcc -O2 -o pcap_count pcap_count.c -lpcap    Run: pcap_count FILE */
#include <pcap/pcap.h>
#include <stdio.h>

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
    struct pcap_pkthdr *h;
    const u_char *data;
    unsigned long long packets = 0, bytes = 0;
    int rc;
    while ((rc = pcap_next_ex(p, &h, &data)) == 1) {
        packets++;
        bytes += h->len;
    }
    if (rc == PCAP_ERROR) {
        fprintf(stderr, "%s\n", pcap_geterr(p));
        return 1;
    }
    printf("%llu packets, %llu bytes\n", packets, bytes);
    pcap_close(p);
    return 0;
}
