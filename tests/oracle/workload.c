// SPDX-License-Identifier: Apache-2.0
// Guest workload of the oracle (static, runs from the initramfs).
//   workload hold N      map N anonymous pages, dirty them, print their
//                        physical addresses, then wait (keeps them mapped)
//   workload thp         map a 2 MiB transparent huge page, print its PA
//   workload scribble ADDR LEN BYTE   fill [ADDR, ADDR+LEN) through /dev/mem
//   workload scribble8 ADDR LEN QWORD fill with a qword through /dev/mem
//   workload peek ADDR LEN            hex-dump qwords through /dev/mem
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static uint64_t pa_of(const void *va)
{
	long ps = sysconf(_SC_PAGESIZE);
	int fd = open("/proc/self/pagemap", O_RDONLY);
	uint64_t e = 0;
	if (fd < 0)
		return 0;
	off_t off = (off_t)((uintptr_t)va / ps) * 8;
	if (pread(fd, &e, 8, off) != 8)
		e = 0;
	close(fd);
	if (!(e & (1ULL << 63)))
		return 0;
	return (e & ((1ULL << 55) - 1)) * ps + ((uintptr_t)va % ps);
}

static uint64_t kflags(uint64_t pa)
{
	int fd = open("/proc/kpageflags", O_RDONLY);
	uint64_t f = 0;
	if (fd < 0)
		return 0;
	if (pread(fd, &f, 8, (off_t)(pa / 4096) * 8) != 8)
		f = 0;
	close(fd);
	return f;
}

static volatile char *held;
static long held_n;

static void on_sigbus(int sig, siginfo_t *si, void *ctx)
{
	(void)sig;
	(void)ctx;
	char buf[160];
	int n = snprintf(buf, sizeof(buf), "ORACLE SIGBUS pid=%d code=%d addr=%p lsb=%d\n",
			 getpid(), si->si_code, si->si_addr, (int)si->si_addr_lsb);
	write(1, buf, n);
	_exit(7);
}

static int hold(long n)
{
	long ps = sysconf(_SC_PAGESIZE);
	char *p = mmap(NULL, n * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	madvise(p, n * ps, MADV_NOHUGEPAGE);
	for (long i = 0; i < n; i++)
		memset(p + i * ps, 0x40 + (int)(i & 0x3f), ps);
	for (long i = 0; i < n; i++)
		printf("ORACLE PAGE pid=%d idx=%ld va=%p pa=0x%" PRIx64 "\n", getpid(), i,
		       (void *)(p + i * ps), pa_of(p + i * ps));
	held = p;
	held_n = n;
	struct sigaction sa = { 0 };
	sa.sa_sigaction = on_sigbus;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGBUS, &sa, NULL);
	printf("ORACLE HOLD pid=%d n=%ld\n", getpid(), n);
	fflush(stdout);
	// SIGUSR1: read every page again (a later consumption of poison).
	// SIGUSR2: print the physical addresses again (after a migration).
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	sigprocmask(SIG_BLOCK, &set, NULL);
	for (;;) {
		int sig;
		sigwait(&set, &sig);
		if (sig == SIGUSR2) {
			for (long i = 0; i < n; i++)
				printf("ORACLE REPAGE pid=%d idx=%ld pa=0x%" PRIx64 " byte=0x%02x\n", getpid(), i,
				       pa_of(p + i * ps), (unsigned)(unsigned char)p[i * ps]);
			fflush(stdout);
			continue;
		}
		unsigned long sum = 0;
		for (long i = 0; i < held_n; i++)
			sum += held[i * ps];
		printf("ORACLE TOUCHED pid=%d sum=%lu\n", getpid(), sum);
		fflush(stdout);
	}
}

static sigjmp_buf touch_env;

static void on_touch_bus(int sig)
{
	(void)sig;
	siglongjmp(touch_env, 1);
}

// Reads every 4 KiB page of [p, p+len): how many fault with SIGBUS.
static void touch_all(volatile char *p, size_t len)
{
	struct sigaction sa = { 0 };
	sa.sa_handler = on_touch_bus;
	sa.sa_flags = SA_NODEFER;
	sigaction(SIGBUS, &sa, NULL);
	volatile long ok = 0, bus = 0, first = -1;
	for (volatile size_t off = 0; off < len; off += 4096) {
		if (sigsetjmp(touch_env, 1) == 0) {
			(void)p[off];
			ok++;
		} else {
			bus++;
			if (first < 0)
				first = (long)(off / 4096);
		}
	}
	printf("ORACLE THPTOUCH pid=%d pages=%zu readable=%ld sigbus=%ld first_sigbus_idx=%ld\n", getpid(),
	       len / 4096, ok, bus, first);
	fflush(stdout);
}

static int thp(void)
{
	size_t huge = 2UL << 20;
	char *raw = mmap(NULL, 2 * huge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (raw == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	char *p = (char *)(((uintptr_t)raw + huge - 1) & ~(huge - 1));
	if (madvise(p, huge, MADV_HUGEPAGE))
		perror("madvise");
	memset(p, 0x5a, huge);
	uint64_t pa = pa_of(p);
	uint64_t f = kflags(pa);
	int contiguous = 1;
	for (size_t off = 4096; off < huge; off += 4096)
		if (pa_of(p + off) != pa + off)
			contiguous = 0;
	printf("ORACLE THP pid=%d va=%p pa=0x%" PRIx64 " thp=%d huge=%d contiguous=%d\n", getpid(),
	       (void *)p, pa, (int)((f >> 22) & 1), (int)((f >> 17) & 1), contiguous);
	printf("ORACLE HOLD pid=%d n=512\n", getpid());
	fflush(stdout);
	// SIGUSR1: read every 4 KiB page of the huge page.
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, NULL);
	for (;;) {
		int sig;
		sigwait(&set, &sig);
		touch_all(p, huge);
	}
}

static void *devmem(uint64_t addr, size_t len, int *fd)
{
	// No O_SYNC: the reserved window is already mapped write-back by the
	// kernel (GHES), and PAT refuses a second, uncached mapping.
	*fd = open("/dev/mem", O_RDWR);
	if (*fd < 0) {
		printf("ORACLE DEVMEM open failed errno=%d\n", errno);
		return NULL;
	}
	uint64_t base = addr & ~4095ULL;
	size_t off = (size_t)(addr - base);
	char *m = mmap(NULL, len + off, PROT_READ | PROT_WRITE, MAP_SHARED, *fd, (off_t)base);
	if (m == MAP_FAILED) {
		printf("ORACLE DEVMEM mmap failed errno=%d\n", errno);
		return NULL;
	}
	return m + off;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc >= 3 && !strcmp(argv[1], "hold"))
		return hold(atol(argv[2]));
	if (argc >= 2 && !strcmp(argv[1], "thp"))
		return thp();
	if (argc >= 5 && !strcmp(argv[1], "scribble")) {
		uint64_t addr = strtoull(argv[2], NULL, 0);
		size_t len = strtoull(argv[3], NULL, 0);
		int b = (int)strtol(argv[4], NULL, 0);
		int fd;
		volatile uint8_t *m = devmem(addr, len, &fd);
		if (!m)
			return 1;
		for (size_t i = 0; i < len; i++)
			m[i] = (uint8_t)b;
		printf("ORACLE SCRIBBLED addr=0x%" PRIx64 " len=%zu byte=0x%02x\n", addr, len, b);
		return 0;
	}
	if (argc >= 5 && !strcmp(argv[1], "scribble8")) {
		uint64_t addr = strtoull(argv[2], NULL, 0);
		size_t len = strtoull(argv[3], NULL, 0);
		uint64_t q = strtoull(argv[4], NULL, 0);
		int fd;
		volatile uint64_t *m = devmem(addr, len, &fd);
		if (!m)
			return 1;
		for (size_t i = 0; i < len / 8; i++)
			m[i] = q;
		printf("ORACLE SCRIBBLED addr=0x%" PRIx64 " len=%zu qword=0x%" PRIx64 "\n", addr, len, q);
		return 0;
	}
	if (argc >= 4 && !strcmp(argv[1], "peek")) {
		uint64_t addr = strtoull(argv[2], NULL, 0);
		size_t len = strtoull(argv[3], NULL, 0);
		int fd;
		volatile uint64_t *m = devmem(addr, len, &fd);
		if (!m)
			return 1;
		for (size_t i = 0; i < len / 8; i++)
			printf("ORACLE PEEK 0x%" PRIx64 " 0x%016" PRIx64 "\n", addr + i * 8, m[i]);
		return 0;
	}
	fprintf(stderr, "usage: workload hold N | thp | scribble ADDR LEN BYTE | peek ADDR LEN\n");
	return 2;
}
