// SPDX-License-Identifier: Apache-2.0
/*
 * rastest: the full-stack lab's test program (static aarch64; runs in the
 * L2 guest and, for the host-side helpers, in L1).
 *
 * Guest side:
 *   rastest hold TAG NPAGES CPU   allocate NPAGES pages, pin to CPU, print
 *                                 each page's GPA (from /proc/self/pagemap),
 *                                 then wait: SIGUSR1 reads page 0, SIGUSR2
 *                                 reads every page. SIGBUS is reported with
 *                                 its code, address, lsb and the time since
 *                                 the touch started, then the process exits
 *                                 with status 42.
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
#include <sys/types.h>
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

	if (argc < 5)
		return 2;
	tag = argv[2];
	npages = strtoul(argv[3], NULL, 0);
	cpu = atoi(argv[4]);
	pin(cpu);
	install_sigbus();
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr;
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);

	area = mmap(NULL, npages * page_size, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (area == MAP_FAILED) {
		out("error tag=%s mmap: %s", tag, strerror(errno));
		return 1;
	}
	/* Small pages: the guest must not back this with a huge page. */
	madvise(area, npages * page_size, MADV_NOHUGEPAGE);
	for (size_t i = 0; i < npages; i++)
		memset(area + i * page_size, 0x5a + (int)i, page_size);
	mlock(area, npages * page_size);
	for (size_t i = 0; i < npages; i++) {
		uint64_t va = (uint64_t)(uintptr_t)(area + i * page_size), pfn;
		int r = pagemap_pfn("/proc/self/pagemap", va, &pfn);
		if (r)
			out("error tag=%s page=%zu pagemap: %s", tag, i, strerror(-r));
		else
			out("page tag=%s pid=%d cpu=%d page=%zu va=0x%" PRIx64
			    " gpa=0x%" PRIx64, tag, (int)getpid(), sched_getcpu(), i,
			    va, pfn * (uint64_t)page_size);
	}
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
		size_t n = cmd == SIGUSR2 ? npages : 1;
		unsigned sum = 0;
		cmd = 0;
		out("touch tag=%s pid=%d cpu=%d pages=%zu", tag, (int)getpid(),
		    sched_getcpu(), n);
		touch_ns = now_ns();
		for (size_t i = 0; i < n; i++)
			sum += *(volatile unsigned char *)(area + i * page_size);
		out("read-ok tag=%s pid=%d sum=%u dt_us=%" PRIu64, tag,
		    (int)getpid(), sum, (now_ns() - touch_ns) / 1000);
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

static int do_hostpfn(int argc, char **argv)
{
	char path[64], line[512];
	uint64_t gpa, base, size, hva = 0, pfn;
	int found = 0, r;
	FILE *f;

	if (argc < 6)
		return 2;
	gpa = strtoull(argv[3], NULL, 0);
	base = strtoull(argv[4], NULL, 0);
	size = strtoull(argv[5], NULL, 0);
	if (gpa < base || gpa >= base + size) {
		out("hostpfn error=gpa-outside-ram gpa=0x%" PRIx64, gpa);
		return 1;
	}
	snprintf(path, sizeof(path), "/proc/%s/maps", argv[2]);
	f = fopen(path, "r");
	if (!f) {
		out("hostpfn error=%s path=%s", strerror(errno), path);
		return 1;
	}
	while (fgets(line, sizeof(line), f)) {
		unsigned long long s, e;
		char perms[8] = "";
		if (sscanf(line, "%llx-%llx %7s", &s, &e, perms) != 3 || e - s != size)
			continue;
		if (perms[0] != 'r' || perms[1] != 'w')
			continue;
		if (argc > 6 && !strstr(line, argv[6]))
			continue;
		if (!found)
			hva = s + (gpa - base);
		found++;
	}
	fclose(f);
	if (found != 1) {
		out("hostpfn error=%s size=0x%" PRIx64 " matches=%d", found ? "ambiguous" : "no-mapping-of-size",
		    size, found);
		return 1;
	}
	snprintf(path, sizeof(path), "/proc/%s/pagemap", argv[2]);
	r = pagemap_pfn(path, hva, &pfn);
	if (r) {
		out("hostpfn error=%s hva=0x%" PRIx64, strerror(-r), hva);
		return 1;
	}
	out("hostpfn gpa=0x%" PRIx64 " hva=0x%" PRIx64 " pfn=0x%" PRIx64 " mappings=%d", gpa,
	    hva, pfn, found);
	return 0;
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
	if (r != 2)
		return r;
usage:
	fprintf(stderr, "usage: rastest hold TAG NPAGES CPU | spin TAG SECONDS | hunt GPA MAXMB |"
			" kpf PFN | hest [FILE] | now | hostpfn PID GPA RAMBASE RAMSIZE [PATH] |"
			" pty LOG FIFO CMD [ARGS...]\n");
	return 2;
}
