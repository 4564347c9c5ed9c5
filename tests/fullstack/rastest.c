// SPDX-License-Identifier: Apache-2.0
/*
 * rastest: the full-stack lab's test program (static aarch64; runs in the
 * L2 guest and, for the host-side helpers, in L1).
 *
 * Guest side:
 *   rastest hold TAG NPAGES CPU [TOUCH]
 *                                 allocate NPAGES pages, pin to CPU, print
 *                                 each page's GPA (from /proc/self/pagemap),
 *                                 then wait: SIGUSR1 reads page TOUCH
 *                                 (default 0), SIGUSR2 reads every page.
 *                                 A read that completes prints "read-ok"
 *                                 with content=intact|zero|other (the fill
 *                                 pattern, zeros: a silently lost page).
 *                                 SIGBUS is reported with
 *                                 its code, address, lsb and the time since
 *                                 the touch started, then the process exits
 *                                 with status 42.
 *   rastest dio TAG DEV           one page-aligned 4 KiB buffer, filled,
 *                                 its GPA printed; on SIGUSR1 writes it to
 *                                 DEV at offset 0 with O_DIRECT (the device
 *                                 reads the buffer's guest page itself) and
 *                                 prints "dio-result rc=N errno=E".
 *   rastest kpfrange PFN COUNT    /proc/kpageflags of COUNT pages from PFN:
 *                                 how many are hwpoison, buddy (free), in use.
 *   rastest spin TAG SECONDS      second workload: checksums its own memory
 *                                 and prints "alive" every second.
 *   rastest hunt GPA MAXMB        allocate memory until a page at GPA is
 *                                 obtained (or MAXMB), then write and read it.
 *   rastest kpf PFN               /proc/kpageflags of PFN (hwpoison = bit 19).
 *   rastest hest [FILE]           list the error sources of the HEST table
 *                                 (type, notification, block length, the
 *                                 ESA and read-ack register addresses)
 *                                 (default /sys/firmware/acpi/tables/HEST).
 * Both sides:
 *   rastest now                   CLOCK_MONOTONIC in milliseconds.
 * Host (L1) side:
 *   rastest hostpfn PID GPA RAMBASE RAMSIZE [PATH]
 *                                 GPA -> VMM virtual address (the one
 *                                 read-write mapping of PID whose size is
 *                                 RAMSIZE [and whose line names PATH, for a
 *                                 file-backed memory zone], at GPA RAMBASE)
 *                                 -> host PFN (/proc/PID/pagemap); prints
 *                                 "hva=0x... pfn=0x...".
 *
 *   rastest hostpte PID GPA RAMBASE RAMSIZE [PATH]
 *                                 like hostpfn, but prints the raw pagemap
 *                                 entry whatever it is: present=0|1
 *                                 swap=0|1 (a non-present swap-type entry:
 *                                 hwpoison entry or poison marker, there is
 *                                 no swap in L1), swaptype=N, pfn (present)
 *                                 and the PFN's kpageflags hwpoison bit.
 *   rastest peek PID GPA RAMBASE RAMSIZE [PATH]
 *                                 reads the VMM's page behind GPA through
 *                                 /proc/PID/mem: "ok=1" (the host page is
 *                                 readable) or "ok=0 error=..." (EIO: the
 *                                 host page is poisoned).
 *   rastest hostpfns PID RAMBASE RAMSIZE [PATH] <GPAS
 *                                 hostpfn for every GPA read from stdin
 *                                 (one a line): "GPA PFN" lines.
 *   rastest poisonloop PFNFILE RATE MAX [PID]
 *                                 writes up to MAX PFNs of PFNFILE into
 *                                 debugfs hwpoison/corrupt-pfn, RATE a
 *                                 second at most (0: as fast as it can),
 *                                 stopping when PID is gone (its pages are
 *                                 freed then: poisoning them would hit
 *                                 whoever gets them next); prints the
 *                                 count, the time and the rate.
 *   rastest api SOCK COUNT SECONDS METHOD PATH [BODY]
 *                                 HTTP requests on the API socket SOCK
 *                                 (keep-alive, reconnects when closed)
 *                                 until COUNT are answered or SECONDS pass;
 *                                 prints requests, answers by status, rate.
 *   rastest fileblk FILE OFFSET   st_blocks of FILE and whether OFFSET is in
 *                                 a hole (SEEK_DATA).
 *
 *   rastest pty LOG FIFO CMD [ARGS...]
 *                                 run CMD (exec'd in this very process, so
 *                                 its pid and exit status are the caller's
 *                                 $! and wait) with stdin/stdout on a new
 *                                 pseudo-terminal; a child copies the
 *                                 terminal's output to LOG and what is
 *                                 written into FIFO to its input. (Cloud
 *                                 Hypervisor's `--serial tty` only reads
 *                                 input when stdin is a terminal.)
 *
 * Every line starts with "RASTEST " so the orchestrator can grep for it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <pty.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#ifndef BUS_MCEERR_AR
#define BUS_MCEERR_AR 4
#endif
#ifndef BUS_MCEERR_AO
#define BUS_MCEERR_AO 5
#endif

static long page_size;
static const char *tag = "-";
static volatile sig_atomic_t cmd;
static volatile uint64_t touch_ns;
static unsigned char *area;
static size_t npages;
static size_t touch_page;
/* Seconds the process lives on after its SIGBUS (hold ... thp). */
static unsigned linger_s;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* One write(2) per line so that concurrent writers do not interleave. */
static void out(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	memcpy(buf, "RASTEST ", 8);
	va_start(ap, fmt);
	n = vsnprintf(buf + 8, sizeof(buf) - 9, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	n += 8;
	if (n > (int)sizeof(buf) - 2)
		n = sizeof(buf) - 2;
	buf[n++] = '\n';
	(void)!write(1, buf, n);
}

static const char *bus_code(int code)
{
	switch (code) {
	case BUS_ADRALN: return "BUS_ADRALN";
	case BUS_ADRERR: return "BUS_ADRERR";
	case BUS_OBJERR: return "BUS_OBJERR";
	case BUS_MCEERR_AR: return "BUS_MCEERR_AR";
	case BUS_MCEERR_AO: return "BUS_MCEERR_AO";
	default: return "other";
	}
}

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
	uint64_t t = now_ns();
	uint64_t t0 = touch_ns;
	(void)sig;
	(void)uc;
	out("sigbus tag=%s pid=%d code=%s(%d) addr=%p lsb=%d dt_us=%" PRIu64, tag,
	    (int)getpid(), bus_code(si->si_code), si->si_code, si->si_addr,
	    (int)si->si_addr_lsb, t0 ? (t - t0) / 1000 : 0);
	/* A process that survives its SIGBUS a while (a database logging
	   it): its other pages stay its own while the guest learns of them. */
	if (linger_s)
		sleep(linger_s);
	_exit(42);
}

static void on_usr(int sig)
{
	cmd = sig;
}

/* GPA (or host PFN, seen from the host) of a resident virtual address. */
static int pagemap_pfn(const char *path, uint64_t va, uint64_t *pfn)
{
	uint64_t e;
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		return -errno;
	if (pread(fd, &e, 8, (off_t)(va / page_size) * 8) != 8) {
		int r = -errno;
		close(fd);
		return r ? r : -EIO;
	}
	close(fd);
	if (!(e & (1ull << 63)))
		return -ENOENT; /* not present */
	*pfn = e & ((1ull << 55) - 1);
	if (*pfn == 0)
		return -EPERM; /* PFNs hidden without CAP_SYS_ADMIN */
	return 0;
}

static void pin(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		out("warn tag=%s sched_setaffinity(%d): %s", tag, cpu, strerror(errno));
}

static void install_sigbus(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigbus;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGBUS, &sa, NULL);
}

static int do_hold(int argc, char **argv)
{
	struct sigaction sa;
	sigset_t none;
	int cpu;
	/* thp: one 2 MiB transparent huge page of the guest, all 512 pages
	   this process's own (no other process shares its 2 MiB of RAM). */
	int thp = argc > 6 && !strcmp(argv[6], "thp");

	if (argc < 5 || argc > 7 || (argc == 7 && !thp))
		return 2;
	tag = argv[2];
	npages = strtoul(argv[3], NULL, 0);
	cpu = atoi(argv[4]);
	touch_page = argc > 5 ? strtoul(argv[5], NULL, 0) : 0;
	if (!npages || touch_page >= npages)
		return 2;
	if (thp && npages * page_size != 2u << 20)
		return 2;
	pin(cpu);
	install_sigbus();
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr;
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);

	area = mmap(NULL, npages * page_size * (thp ? 2 : 1), PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (area == MAP_FAILED) {
		out("error tag=%s mmap: %s", tag, strerror(errno));
		return 1;
	}
	if (thp) {
		/* A 2 MiB-aligned 2 MiB inside the 4 MiB mapped. */
		area = (unsigned char *)(((uintptr_t)area + (2u << 20) - 1) & ~(uintptr_t)((2u << 20) - 1));
		madvise(area, npages * page_size, MADV_HUGEPAGE);
		linger_s = 5;
	} else {
		/* Small pages: the guest must not back this with a huge page. */
		madvise(area, npages * page_size, MADV_NOHUGEPAGE);
	}
	for (size_t i = 0; i < npages; i++)
		memset(area + i * page_size, 0x5a + (int)i, page_size);
	mlock(area, npages * page_size);
	uint64_t first_gpa = 0;
	size_t contiguous = 0;
	for (size_t i = 0; i < npages; i++) {
		uint64_t va = (uint64_t)(uintptr_t)(area + i * page_size), pfn;
		int r = pagemap_pfn("/proc/self/pagemap", va, &pfn);
		if (r) {
			out("error tag=%s page=%zu pagemap: %s", tag, i, strerror(-r));
			continue;
		}
		if (i == 0)
			first_gpa = pfn * (uint64_t)page_size;
		contiguous += pfn * (uint64_t)page_size == first_gpa + i * page_size;
		/* thp: the first and the touched page only (512 lines would
		   flood the console). */
		if (!thp || i == 0 || i == touch_page)
			out("page tag=%s pid=%d cpu=%d page=%zu va=0x%" PRIx64
			    " gpa=0x%" PRIx64, tag, (int)getpid(), sched_getcpu(), i,
			    va, pfn * (uint64_t)page_size);
	}
	if (thp)
		out("thp tag=%s gpa=0x%" PRIx64 " aligned=%d contiguous=%zu/%zu", tag,
		    first_gpa, !(first_gpa & ((2u << 20) - 1)), contiguous, npages);
	out("ready tag=%s pid=%d", tag, (int)getpid());

	sigemptyset(&none);
	for (;;) {
		sigset_t block, old;
		sigemptyset(&block);
		sigaddset(&block, SIGUSR1);
		sigaddset(&block, SIGUSR2);
		sigprocmask(SIG_BLOCK, &block, &old);
		while (!cmd)
			sigsuspend(&none);
		sigprocmask(SIG_SETMASK, &old, NULL);
		size_t first = cmd == SIGUSR2 ? 0 : touch_page;
		size_t n = cmd == SIGUSR2 ? npages : 1;
		unsigned sum = 0;
		size_t zero = 0, intact = 0;
		cmd = 0;
		out("touch tag=%s pid=%d cpu=%d pages=%zu first=%zu", tag, (int)getpid(),
		    sched_getcpu(), n, first);
		touch_ns = now_ns();
		for (size_t i = first; i < first + n; i++) {
			volatile unsigned char *p = area + i * page_size;
			size_t z = 0, k = 0;
			sum += p[0];
			for (long b = 0; b < page_size; b++) {
				z += p[b] == 0;
				k += p[b] == (unsigned char)(0x5a + (int)i);
			}
			zero += z == (size_t)page_size;
			intact += k == (size_t)page_size;
		}
		out("read-ok tag=%s pid=%d sum=%u content=%s pages_zero=%zu pages_intact=%zu dt_us=%" PRIu64,
		    tag, (int)getpid(), sum,
		    intact == n ? "intact" : zero ? "zero" : "other", zero, intact,
		    (now_ns() - touch_ns) / 1000);
		touch_ns = 0;
	}
}

static int do_spin(int argc, char **argv)
{
	size_t len = 4 << 20;
	unsigned char *m;
	long secs;

	if (argc < 4)
		return 2;
	tag = argv[2];
	secs = strtol(argv[3], NULL, 0);
	install_sigbus();
	m = malloc(len);
	if (!m)
		return 1;
	memset(m, 0xa5, len);
	uint64_t start = now_ns(), next = start;
	for (long n = 0; secs <= 0 || (long)((now_ns() - start) / 1000000000ull) < secs; n++) {
		unsigned sum = 0;
		for (size_t i = 0; i < len; i += 64)
			sum += m[i];
		if (now_ns() >= next) {
			out("alive tag=%s pid=%d n=%ld sum=%u", tag, (int)getpid(), n, sum);
			next += 1000000000ull;
		}
		usleep(20000);
	}
	out("done tag=%s pid=%d", tag, (int)getpid());
	return 0;
}

static int do_hunt(int argc, char **argv)
{
	uint64_t want, maxmb;
	size_t chunk = 1 << 20;

	if (argc < 4)
		return 2;
	tag = "hunt";
	want = strtoull(argv[2], NULL, 0) & ~(uint64_t)(page_size - 1);
	maxmb = strtoull(argv[3], NULL, 0);
	install_sigbus();
	/* Stay clear of the OOM killer: at most MemAvailable - 48 MiB. */
	FILE *mi = fopen("/proc/meminfo", "r");
	char l[128];
	unsigned long long kb;
	while (mi && fgets(l, sizeof(l), mi))
		if (sscanf(l, "MemAvailable: %llu kB", &kb) == 1 && kb / 1024 > 48 &&
		    kb / 1024 - 48 < maxmb)
			maxmb = kb / 1024 - 48;
	if (mi)
		fclose(mi);
	for (uint64_t mb = 0; mb < maxmb; mb++) {
		unsigned char *c = mmap(NULL, chunk, PROT_READ | PROT_WRITE,
					MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (c == MAP_FAILED)
			break;
		madvise(c, chunk, MADV_NOHUGEPAGE);
		memset(c, 0x3c, chunk);
		for (size_t off = 0; off < chunk; off += page_size) {
			uint64_t pfn;
			if (pagemap_pfn("/proc/self/pagemap", (uintptr_t)(c + off), &pfn))
				continue;
			if (pfn * (uint64_t)page_size != want)
				continue;
			volatile unsigned char *p = c + off;
			touch_ns = now_ns();
			for (long i = 0; i < page_size; i++)
				p[i] = (unsigned char)i;
			unsigned sum = 0;
			for (long i = 0; i < page_size; i++)
				sum += p[i];
			out("hunt-ok gpa=0x%" PRIx64 " after_mb=%" PRIu64 " sum=%u", want,
			    mb + 1, sum);
			return 0;
		}
	}
	out("hunt-miss gpa=0x%" PRIx64 " mb=%" PRIu64, want, maxmb);
	return 3;
}

static int do_kpf(int argc, char **argv)
{
	uint64_t pfn, flags;
	int fd;

	if (argc < 3)
		return 2;
	pfn = strtoull(argv[2], NULL, 0);
	fd = open("/proc/kpageflags", O_RDONLY);
	if (fd < 0 || pread(fd, &flags, 8, (off_t)pfn * 8) != 8) {
		out("kpf pfn=0x%" PRIx64 " error=%s", pfn, strerror(errno));
		return 1;
	}
	out("kpf pfn=0x%" PRIx64 " flags=0x%" PRIx64 " hwpoison=%d", pfn, flags,
	    (int)((flags >> 19) & 1));
	return 0;
}

static const char *notify_name(unsigned t)
{
	static const char *n[] = {"POLLED", "EXTERNAL", "LOCAL", "SCI", "NMI", "CMCI",
				  "MCE", "GPIO", "SEA", "SEI", "GSIV", "SDEI"};
	return t < sizeof(n) / sizeof(n[0]) ? n[t] : "?";
}

static int do_hest(int argc, char **argv)
{
	const char *path = argc > 2 ? argv[2] : "/sys/firmware/acpi/tables/HEST";
	unsigned char b[65536];
	ssize_t len;
	int fd = open(path, O_RDONLY);

	if (fd < 0) {
		out("hest error=%s path=%s", strerror(errno), path);
		return 1;
	}
	len = read(fd, b, sizeof(b));
	close(fd);
	if (len < 40 || memcmp(b, "HEST", 4)) {
		out("hest error=short-or-bad-signature len=%zd", len);
		return 1;
	}
	uint32_t count, tlen;
	memcpy(&tlen, b + 4, 4);
	memcpy(&count, b + 36, 4);
	out("hest length=%u sources=%u", tlen, count);
	size_t off = 40;
	for (uint32_t i = 0; i < count && off + 4 <= (size_t)len; i++) {
		uint16_t type, id;
		memcpy(&type, b + off, 2);
		memcpy(&id, b + off + 2, 2);
		if (type == 9 || type == 10) {
			unsigned nt = b[off + 32];
			uint32_t blen;
			/* Generic Address Structures: the Error Status Address
			 * register at 20 and (GHESv2) the read-ack register at
			 * 64; each has its 64-bit address at +4. */
			uint64_t esa, ack = 0;
			memcpy(&blen, b + off + 60, 4);
			memcpy(&esa, b + off + 24, 8);
			if (type == 10)
				memcpy(&ack, b + off + 68, 8);
			out("hest source=%u type=%u(%s) enabled=%u notify=%u(%s) block_len=%u"
			    " esa=0x%" PRIx64 " ack=0x%" PRIx64, id,
			    type, type == 10 ? "GHESv2" : "GHES", b[off + 7], nt, notify_name(nt),
			    blen, esa, ack);
			off += type == 10 ? 92 : 64;
		} else {
			out("hest source=%u type=%u (not decoded; stop)", id, type);
			break;
		}
	}
	return 0;
}

/* The start of the one read-write mapping of PID of size SIZE (whose
 * /proc/PID/maps line names PATH, if given). 0 and *found set otherwise. */
static uint64_t ram_mapping(const char *pid, uint64_t size, const char *filter, int *found)
{
	char path[64], line[512];
	uint64_t start = 0;
	FILE *f;

	*found = 0;
	snprintf(path, sizeof(path), "/proc/%s/maps", pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long s, e;
		char perms[8] = "";
		if (sscanf(line, "%llx-%llx %7s", &s, &e, perms) != 3 || e - s != size)
			continue;
		if (perms[0] != 'r' || perms[1] != 'w')
			continue;
		if (filter && !strstr(line, filter))
			continue;
		if (!*found)
			start = s;
		(*found)++;
	}
	fclose(f);
	return start;
}

/* "CMD PID GPA RAMBASE RAMSIZE [PATH]": the VMM's address of GPA, through
 * its one mapping of guest RAM (RAMSIZE long, PATH in its name when given).
 * 0, or 1 after a "CMD error=..." line. */
static int gpa_hva(int argc, char **argv, uint64_t *gpa, uint64_t *hva)
{
	uint64_t base, size;
	int found;

	*gpa = strtoull(argv[3], NULL, 0);
	base = strtoull(argv[4], NULL, 0);
	size = strtoull(argv[5], NULL, 0);
	if (*gpa < base || *gpa - base >= size) {
		out("%s error=gpa-outside-ram gpa=0x%" PRIx64, argv[1], *gpa);
		return 1;
	}
	*hva = ram_mapping(argv[2], size, argc > 6 ? argv[6] : NULL, &found);
	if (found != 1) {
		out("%s error=%s size=0x%" PRIx64 " matches=%d", argv[1],
		    found ? "ambiguous" : "no-mapping-of-size", size, found);
		return 1;
	}
	*hva += *gpa - base;
	return 0;
}

static int do_hostpfn(int argc, char **argv)
{
	char path[64];
	uint64_t gpa, hva, pfn;
	int r;

	if (argc < 6)
		return 2;
	if (gpa_hva(argc, argv, &gpa, &hva))
		return 1;
	snprintf(path, sizeof(path), "/proc/%s/pagemap", argv[2]);
	r = pagemap_pfn(path, hva, &pfn);
	if (r) {
		out("hostpfn error=%s hva=0x%" PRIx64, strerror(-r), hva);
		return 1;
	}
	out("hostpfn gpa=0x%" PRIx64 " hva=0x%" PRIx64 " pfn=0x%" PRIx64 " mappings=1", gpa,
	    hva, pfn);
	return 0;
}

static int kpageflags(uint64_t pfn, uint64_t *flags)
{
	int fd = open("/proc/kpageflags", O_RDONLY);
	int ok;

	if (fd < 0)
		return -errno;
	ok = pread(fd, flags, 8, (off_t)pfn * 8) == 8;
	close(fd);
	return ok ? 0 : -EIO;
}

static int do_hostpte(int argc, char **argv)
{
	char path[64];
	uint64_t gpa, hva, e = 0, flags = 0;
	int fd;

	if (argc < 6)
		return 2;
	if (gpa_hva(argc, argv, &gpa, &hva))
		return 1;
	snprintf(path, sizeof(path), "/proc/%s/pagemap", argv[2]);
	fd = open(path, O_RDONLY);
	if (fd < 0 || pread(fd, &e, 8, (off_t)(hva / page_size) * 8) != 8) {
		out("hostpte error=%s hva=0x%" PRIx64, strerror(errno), hva);
		return 1;
	}
	close(fd);
	int present = (int)(e >> 63 & 1), swap = (int)(e >> 62 & 1);
	uint64_t frame = e & ((1ull << 55) - 1);
	if (present) {
		int r = kpageflags(frame, &flags);
		out("hostpte gpa=0x%" PRIx64 " hva=0x%" PRIx64 " entry=0x%016" PRIx64
		    " present=1 swap=0 pfn=0x%" PRIx64 " host_hwpoison=%s", gpa, hva, e, frame,
		    r ? "?" : (flags >> 19 & 1) ? "1" : "0");
	} else {
		/* Swap-type entries: the type in the low 5 bits of the frame
		 * field (MAX_SWAPFILES_SHIFT), the offset above. */
		out("hostpte gpa=0x%" PRIx64 " hva=0x%" PRIx64 " entry=0x%016" PRIx64
		    " present=0 swap=%d swaptype=%u", gpa, hva, e, swap,
		    (unsigned)(frame & 31));
	}
	return 0;
}

/* Reads the VMM's page behind GPA through /proc/PID/mem (the host's own
 * access: EIO when the host page is poisoned, data otherwise). */
static int do_peek(int argc, char **argv)
{
	char path[64];
	unsigned char b[4096];
	uint64_t gpa, hva;
	int fd;

	if (argc < 6)
		return 2;
	if (gpa_hva(argc, argv, &gpa, &hva))
		return 1;
	/* The whole page. */
	gpa &= ~(uint64_t)4095;
	hva &= ~(uint64_t)4095;
	snprintf(path, sizeof(path), "/proc/%s/mem", argv[2]);
	fd = open(path, O_RDONLY);
	if (fd < 0) {
		out("peek error=%s", strerror(errno));
		return 1;
	}
	ssize_t r = pread(fd, b, sizeof(b), (off_t)hva);
	int e = errno;
	close(fd);
	if (r != (ssize_t)sizeof(b)) {
		out("peek gpa=0x%" PRIx64 " hva=0x%" PRIx64 " ok=0 rc=%zd error=%s", gpa, hva, r,
		    r < 0 ? strerror(e) : "short");
		return 3;
	}
	size_t zero = 0;
	for (size_t i = 0; i < sizeof(b); i++)
		zero += !b[i];
	out("peek gpa=0x%" PRIx64 " hva=0x%" PRIx64 " ok=1 first=0x%02x zero_bytes=%zu", gpa, hva, b[0],
	    zero);
	return 0;
}

static int do_hostpfns(int argc, char **argv)
{
	char path[64], line[64];
	uint64_t base, size, start;
	int found, n = 0, bad = 0;

	if (argc < 5)
		return 2;
	base = strtoull(argv[3], NULL, 0);
	size = strtoull(argv[4], NULL, 0);
	start = ram_mapping(argv[2], size, argc > 5 ? argv[5] : NULL, &found);
	if (found != 1) {
		out("hostpfns error=no-single-mapping matches=%d", found);
		return 1;
	}
	snprintf(path, sizeof(path), "/proc/%s/pagemap", argv[2]);
	while (fgets(line, sizeof(line), stdin)) {
		uint64_t gpa = strtoull(line, NULL, 0), pfn;
		if (gpa < base || gpa >= base + size || pagemap_pfn(path, start + gpa - base, &pfn)) {
			bad++;
			continue;
		}
		printf("0x%" PRIx64 " 0x%" PRIx64 "\n", gpa, pfn);
		n++;
	}
	fflush(stdout);
	fprintf(stderr, "RASTEST hostpfns found=%d unresolved=%d\n", n, bad);
	return 0;
}

static int do_poisonloop(int argc, char **argv)
{
	const char *ctl = "/sys/kernel/debug/hwpoison/corrupt-pfn";
	uint64_t gap_ns, t0, max, n = 0, fails = 0;
	double rate;
	char line[128];
	FILE *f;
	int fd;

	if (argc < 5)
		return 2;
	rate = strtod(argv[3], NULL);
	max = strtoull(argv[4], NULL, 0);
	pid_t watch = argc > 5 ? (pid_t)atoi(argv[5]) : 0;
	gap_ns = rate > 0 ? (uint64_t)(1e9 / rate) : 0;
	f = fopen(argv[2], "r");
	fd = open(ctl, O_WRONLY);
	if (!f || fd < 0) {
		out("poisonloop error=%s", strerror(errno));
		return 1;
	}
	t0 = now_ns();
	while (n < max && fgets(line, sizeof(line), f)) {
		/* "PFN" or "GPA PFN": the last field. */
		char *pfn = strrchr(line, ' ');
		pfn = pfn ? pfn + 1 : line;
		/* RATE is an upper bound: the gap follows each write, so a
		 * slow write never makes the next ones bunch up. */
		if (gap_ns && n) {
			struct timespec ts = {(time_t)(gap_ns / 1000000000ull),
					      (long)(gap_ns % 1000000000ull)};
			nanosleep(&ts, NULL);
		}
		if (watch > 0 && kill(watch, 0)) {
			out("poisonloop pid %d gone after %" PRIu64 " writes", (int)watch, n);
			break;
		}
		if (write(fd, pfn, strlen(pfn)) < 0)
			fails++;
		n++;
	}
	uint64_t dt = now_ns() - t0;
	close(fd);
	fclose(f);
	out("poisonloop written=%" PRIu64 " failed=%" PRIu64 " ms=%" PRIu64 " rate_per_s=%.1f", n, fails,
	    dt / 1000000, dt ? n * 1e9 / (double)dt : 0.0);
	return 0;
}

static int api_connect(const char *sock)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", sock);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		close(fd);
		return -1;
	}
	return fd;
}

/* One HTTP response on fd: its status, or -1 when the connection ended. */
static int api_response(int fd, char *buf, size_t cap)
{
	size_t have = 0;
	for (;;) {
		char *hdr_end;
		ssize_t r = read(fd, buf + have, cap - 1 - have);
		if (r <= 0)
			return -1;
		have += (size_t)r;
		buf[have] = 0;
		hdr_end = strstr(buf, "\r\n\r\n");
		if (!hdr_end)
			continue;
		long len = 0;
		char *cl = strcasestr(buf, "Content-Length:");
		if (cl && cl < hdr_end)
			len = strtol(cl + 15, NULL, 10);
		size_t total = (size_t)(hdr_end + 4 - buf) + (size_t)len;
		while (have < total && have < cap - 1) {
			r = read(fd, buf + have, cap - 1 - have);
			if (r <= 0)
				return -1;
			have += (size_t)r;
		}
		buf[have] = 0;
		int status = 0;
		sscanf(buf, "HTTP/1.%*d %d", &status);
		return status;
	}
}

static int do_api(int argc, char **argv)
{
	static char buf[65536], req[8192];
	const char *body;
	uint64_t count, secs, t0, sent = 0, ok = 0, other = 0, reconnects = 0;
	uint64_t by_status[6] = {0};
	int fd = -1, n;

	if (argc < 7)
		return 2;
	count = strtoull(argv[3], NULL, 0);
	secs = strtoull(argv[4], NULL, 0);
	body = argc > 7 ? argv[7] : "";
	n = snprintf(req, sizeof(req),
		     "%s /api/v1/%s HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n"
		     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
		     argv[5], argv[6], strlen(body), body);
	t0 = now_ns();
	while ((!count || sent < count) && now_ns() - t0 < secs * 1000000000ull) {
		if (fd < 0) {
			fd = api_connect(argv[2]);
			if (fd < 0) {
				out("api error=connect:%s sent=%" PRIu64, strerror(errno), sent);
				break;
			}
			reconnects++;
		}
		if (write(fd, req, (size_t)n) != n) {
			close(fd);
			fd = -1;
			continue;
		}
		sent++;
		int st = api_response(fd, buf, sizeof(buf));
		if (st < 0) {
			close(fd);
			fd = -1;
			other++;
			continue;
		}
		if (st >= 200 && st < 300)
			ok++;
		by_status[st / 100 < 6 ? st / 100 : 0]++;
		if (ok == 1 && st >= 200 && st < 300)
			out("api first-answer status=%d body=%.200s", st, strstr(buf, "\r\n\r\n") + 4);
		if (st >= 300 && by_status[st / 100] == 1)
			out("api first-refusal status=%d body=%.300s", st, strstr(buf, "\r\n\r\n") + 4);
	}
	uint64_t dt = now_ns() - t0;
	if (fd >= 0)
		close(fd);
	out("api sent=%" PRIu64 " ok=%" PRIu64 " 4xx=%" PRIu64 " 5xx=%" PRIu64 " lost=%" PRIu64
	    " connections=%" PRIu64 " ms=%" PRIu64 " rate_per_s=%.1f",
	    sent, ok, by_status[4], by_status[5], other, reconnects, dt / 1000000,
	    dt ? ok * 1e9 / (double)dt : 0.0);
	return 0;
}

static int do_fileblk(int argc, char **argv)
{
	struct stat st;
	off_t off, data;
	int fd;

	if (argc < 4)
		return 2;
	off = (off_t)strtoull(argv[3], NULL, 0);
	fd = open(argv[2], O_RDONLY);
	if (fd < 0 || fstat(fd, &st)) {
		out("fileblk error=%s", strerror(errno));
		return 1;
	}
	data = lseek(fd, off, SEEK_DATA);
	int e = errno;
	close(fd);
	char next[32];
	if (data < 0)
		snprintf(next, sizeof(next), "%s", e == ENXIO ? "none" : strerror(e));
	else
		snprintf(next, sizeof(next), "0x%llx", (unsigned long long)data);
	out("fileblk offset=0x%llx blocks=%lld size=%lld at_offset=%s next_data=%s",
	    (long long)off, (long long)st.st_blocks, (long long)st.st_size,
	    data == off ? "data" : "hole", next);
	return 0;
}

static int do_kpfrange(int argc, char **argv)
{
	uint64_t pfn, count, flags, poison = 0, buddy = 0, used = 0, err = 0;
	int fd;

	if (argc < 4)
		return 2;
	pfn = strtoull(argv[2], NULL, 0);
	count = strtoull(argv[3], NULL, 0);
	fd = open("/proc/kpageflags", O_RDONLY);
	if (fd < 0) {
		out("kpfrange error=%s", strerror(errno));
		return 1;
	}
	for (uint64_t i = 0; i < count; i++) {
		if (pread(fd, &flags, 8, (off_t)(pfn + i) * 8) != 8) {
			err++;
			continue;
		}
		if (flags >> 19 & 1)
			poison++;
		else if (flags >> 10 & 1)
			buddy++;
		else
			used++;
	}
	close(fd);
	out("kpfrange pfn=0x%" PRIx64 " count=%" PRIu64 " hwpoison=%" PRIu64 " buddy=%" PRIu64
	    " other=%" PRIu64 " unreadable=%" PRIu64, pfn, count, poison, buddy, used, err);
	return 0;
}

static int do_dio(int argc, char **argv)
{
	struct sigaction sa;
	sigset_t none, block;
	uint64_t pfn;
	unsigned char *buf;
	int fd;

	if (argc < 4)
		return 2;
	tag = argv[2];
	install_sigbus();
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr;
	sigaction(SIGUSR1, &sa, NULL);
	fd = open(argv[3], O_WRONLY | O_DIRECT | O_SYNC);
	buf = mmap(NULL, page_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (fd < 0 || buf == MAP_FAILED) {
		out("error tag=%s open/mmap: %s", tag, strerror(errno));
		return 1;
	}
	memset(buf, 0x6b, page_size);
	mlock(buf, page_size);
	if (pagemap_pfn("/proc/self/pagemap", (uintptr_t)buf, &pfn)) {
		out("error tag=%s pagemap", tag);
		return 1;
	}
	out("page tag=%s pid=%d cpu=%d page=0 va=%p gpa=0x%" PRIx64, tag, (int)getpid(),
	    sched_getcpu(), (void *)buf, pfn * (uint64_t)page_size);
	out("ready tag=%s pid=%d", tag, (int)getpid());
	sigemptyset(&none);
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigprocmask(SIG_BLOCK, &block, NULL);
	while (!cmd)
		sigsuspend(&none);
	out("dio-start tag=%s pid=%d", tag, (int)getpid());
	touch_ns = now_ns();
	ssize_t r = pwrite(fd, buf, page_size, 0);
	int e = r < 0 ? errno : 0;
	out("dio-result tag=%s pid=%d rc=%zd errno=%d(%s) dt_us=%" PRIu64, tag, (int)getpid(), r, e,
	    e ? strerror(e) : "ok", (now_ns() - touch_ns) / 1000);
	close(fd);
	return r == page_size ? 0 : 5;
}

static int do_pty(int argc, char **argv)
{
	int master, slave, log, fifo;
	struct termios tio;
	pid_t pid;

	if (argc < 5)
		return 2;
	log = open(argv[2], O_WRONLY | O_CREAT | O_APPEND, 0644);
	/* O_RDWR: never sees end-of-file when the writer closes and reopens. */
	fifo = open(argv[3], O_RDWR);
	if (log < 0 || fifo < 0 || openpty(&master, &slave, NULL, NULL, NULL)) {
		perror("rastest pty");
		return 1;
	}
	if (!tcgetattr(slave, &tio)) {
		cfmakeraw(&tio);
		tcsetattr(slave, TCSANOW, &tio);
	}
	pid = fork();
	if (pid < 0)
		return 1;
	if (pid > 0) {
		/* Parent: becomes CMD on the terminal. */
		close(master);
		close(log);
		close(fifo);
		dup2(slave, 0);
		dup2(slave, 1);
		if (slave > 2)
			close(slave);
		execvp(argv[4], argv + 4);
		perror("rastest pty: exec");
		_exit(127);
	}
	/* Child: the copier; ends when the terminal is gone (EIO/HUP). */
	close(slave);
	for (;;) {
		struct pollfd p[2] = {{.fd = master, .events = POLLIN}, {.fd = fifo, .events = POLLIN}};
		char buf[4096];
		ssize_t n;
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			n = read(master, buf, sizeof(buf));
			if (n <= 0 && errno != EINTR && errno != EAGAIN)
				break;
			if (n > 0)
				(void)!write(log, buf, n);
		}
		if (p[1].revents & POLLIN) {
			n = read(fifo, buf, sizeof(buf));
			for (ssize_t o = 0; n > 0 && o < n;) {
				ssize_t w = write(master, buf + o, n - o);
				if (w <= 0)
					break;
				o += w;
			}
		}
	}
	_exit(0);
}

int main(int argc, char **argv)
{
	page_size = sysconf(_SC_PAGESIZE);
	if (argc < 2)
		goto usage;
	if (!strcmp(argv[1], "now")) {
		printf("%" PRIu64 "\n", now_ns() / 1000000);
		return 0;
	}
	int r = 2;
	if (!strcmp(argv[1], "hold"))
		r = do_hold(argc, argv);
	else if (!strcmp(argv[1], "spin"))
		r = do_spin(argc, argv);
	else if (!strcmp(argv[1], "hunt"))
		r = do_hunt(argc, argv);
	else if (!strcmp(argv[1], "kpf"))
		r = do_kpf(argc, argv);
	else if (!strcmp(argv[1], "hest"))
		r = do_hest(argc, argv);
	else if (!strcmp(argv[1], "pty"))
		r = do_pty(argc, argv);
	else if (!strcmp(argv[1], "hostpfn"))
		r = do_hostpfn(argc, argv);
	else if (!strcmp(argv[1], "hostpte"))
		r = do_hostpte(argc, argv);
	else if (!strcmp(argv[1], "peek"))
		r = do_peek(argc, argv);
	else if (!strcmp(argv[1], "hostpfns"))
		r = do_hostpfns(argc, argv);
	else if (!strcmp(argv[1], "poisonloop"))
		r = do_poisonloop(argc, argv);
	else if (!strcmp(argv[1], "api"))
		r = do_api(argc, argv);
	else if (!strcmp(argv[1], "fileblk"))
		r = do_fileblk(argc, argv);
	else if (!strcmp(argv[1], "kpfrange"))
		r = do_kpfrange(argc, argv);
	else if (!strcmp(argv[1], "dio"))
		r = do_dio(argc, argv);
	if (r != 2)
		return r;
usage:
	fprintf(stderr, "usage: rastest hold TAG NPAGES CPU [TOUCH [thp]] | spin TAG SECONDS | hunt GPA MAXMB |"
			" kpf PFN | kpfrange PFN COUNT | hest [FILE] | dio TAG DEV | now |"
			" hostpfn|hostpte|peek PID GPA RAMBASE RAMSIZE [PATH] |"
			" hostpfns PID RAMBASE RAMSIZE [PATH] <GPAS | poisonloop PFNFILE RATE MAX |"
			" api SOCK COUNT SECONDS METHOD PATH [BODY] | fileblk FILE OFFSET |"
			" pty LOG FIFO CMD [ARGS...]\n");
	return 2;
}
