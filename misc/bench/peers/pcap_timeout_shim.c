/*
 * LD_PRELOAD shim for pcap peers in misc/bench/peers.sh.
 *
 * softflowd 1.1.0 calls pcap_set_timeout(p, 0). libpcap >= 1.9 on Linux
 * uses TPACKET_V3 and maps a 0 ms timeout to a block-retire timeout of
 * UINT_MAX ms, so a ring block (256 KiB) reaches user space only once it is
 * full: a slow interface is never read, a fast one is read in bursts and
 * the last, partly filled block of a run is never read at all.
 *
 * This shim replaces a 0 ms timeout with PCAP_SHIM_TIMEOUT_MS (default
 * 1000 ms, what tcpdump uses) and leaves every other value alone. With
 * PCAP_SHIM_LOG set it prints each call to stderr (to see what a peer asks
 * libpcap for).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct pcap pcap_t;

int pcap_set_timeout(pcap_t *p, int to_ms)
{
	static int (*real)(pcap_t *, int);
	const char *env = getenv("PCAP_SHIM_TIMEOUT_MS");
	int ms = to_ms;

	if (real == NULL)
		real = (int (*)(pcap_t *, int))dlsym(RTLD_NEXT, "pcap_set_timeout");
	if (real == NULL)
		return -1;
	if (to_ms == 0)
		ms = env != NULL ? atoi(env) : 1000;
	if (getenv("PCAP_SHIM_LOG") != NULL)
		fprintf(stderr, "pcap_timeout_shim: pcap_set_timeout(%d) -> %d\n", to_ms, ms);
	return real(p, ms);
}

int pcap_set_buffer_size(pcap_t *p, int bytes)
{
	static int (*real)(pcap_t *, int);

	if (real == NULL)
		real = (int (*)(pcap_t *, int))dlsym(RTLD_NEXT, "pcap_set_buffer_size");
	if (real == NULL)
		return -1;
	if (getenv("PCAP_SHIM_LOG") != NULL)
		fprintf(stderr, "pcap_timeout_shim: pcap_set_buffer_size(%d)\n", bytes);
	return real(p, bytes);
}
