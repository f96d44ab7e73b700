/*
 * failmalloc.c - an LD_PRELOAD shim that makes allocations fail, for the
 * allocation-failure tests (tests/integration/test_failmalloc.py).
 *
 * It replaces malloc, calloc, realloc, reallocarray, posix_memalign,
 * aligned_alloc, memalign, valloc and pvalloc (strdup and the other libc
 * functions that allocate call malloc, and glibc lets those calls be
 * replaced too), so GnuTLS, nettle, nghttp2 and libev see the failures as
 * well as the proxy's own code.  Each replacement either fails (NULL,
 * errno ENOMEM) or hands the call to the allocator behind it: glibc's, or
 * AddressSanitizer's in the sanitizer build (see resolve()).
 *
 * PORTCULLIS_FAILMALLOC="p=0.001,seed=7,after=100,stats=/path" configures it;
 * without that variable nothing ever fails.
 *   p=P       each allocation fails with probability P (0..1).
 *   seed=N    the pseudo-random sequence (mixed with the process id, so
 *             every process has its own, reproducible for a given pid).
 *   after=N   the first N allocations after start-up never fail.
 *   nth=N     (instead of p) exactly the Nth allocation after start-up
 *             (and after= ones) fails, once.
 *   spare=S:T an allocation asked for by code in a shared object whose
 *             path contains S (or T ...), directly or through the C
 *             library, never fails; one that such code causes through
 *             other code (GMP under GnuTLS) still may.  For third-party
 *             code known not to survive a failure (doc/architecture.md,
 *             Faults).
 *   stats=F   a file of at least 4 KiB, mapped shared: the shim adds the
 *             allocations it let through and the ones it failed, counted
 *             from start-up, in every process (see struct stats); a test
 *             stops and resumes the failures by writing its "paused".
 *
 * "Start-up" ends at a process's first epoll_wait(2): until its event loop
 * first waits, a process is initialising (a worker that cannot start is
 * another matter, tested elsewhere) and nothing fails.  Every worker is a
 * fresh exec of the binary, so each one starts over.
 *
 * The shim is built without sanitizers (a plain rule in Makefile.am): in
 * the sanitizer build it sits in front of ASan's malloc and hands it every
 * allocation that does not fail, so ASan still sees (and checks, and
 * looks for leaks in) all of them.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <link.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/param.h>
#include <sys/mman.h>
#include <unistd.h>

/*
 * The allocator behind us: glibc's, or AddressSanitizer's when the shim
 * is preloaded into the sanitizer build (ASAN_OPTIONS must then say
 * verify_asan_link_order=0: the shim comes before ASan's runtime).
 * dlsym may allocate before we know where calloc is: that comes from a
 * static arena, which free() recognises and leaves alone.
 */
static void	*(*real_malloc)(size_t);
static void	*(*real_calloc)(size_t, size_t);
static void	*(*real_realloc)(void *, size_t);
static void	 (*real_free)(void *);
static void	*(*real_memalign)(size_t, size_t);
static _Alignas(16) char boot[8192];
static size_t		 boot_used;
static bool		 resolving;

static void
resolve(void)
{
	if (real_free != NULL || resolving)
		return;
	resolving = true;
	real_malloc = (void *(*)(size_t))dlsym(RTLD_NEXT, "malloc");
	real_calloc = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "calloc");
	real_realloc = (void *(*)(void *, size_t))dlsym(RTLD_NEXT, "realloc");
	real_memalign = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT,
	    "memalign");
	real_free = (void (*)(void *))dlsym(RTLD_NEXT, "free");
	resolving = false;
}

static void *
boot_alloc(size_t n)
{
	void *p;

	n = (n + 15) & ~(size_t)15;
	if (n > sizeof(boot) - boot_used)
		return NULL;
	p = boot + boot_used;
	boot_used += n;
	return p;	/* zeroed: static storage, never reused */
}

static bool
is_boot(const void *p)
{
	return (const char *)p >= boot && (const char *)p < boot + sizeof(boot);
}

/* The shared counters; 64-bit so that no process ever wraps them. */
struct stats {
	_Atomic uint64_t	 passed;	/* after start-up */
	_Atomic uint64_t	 failed;
	_Atomic uint64_t	 started;	/* processes past start-up */
	_Atomic uint64_t	 paused;	/* set by a test: nothing fails */
};

static bool		 configured;
static volatile bool	 started;
static double		 prob;
static uint64_t		 nth, after, count, state;
static struct stats	*stats;

/*
 * The code of the spared objects (spare=), and of those an allocation's
 * caller is looked for past: this shim, the C library (strdup ...) and
 * ASan's runtime.
 */
struct region {
	uintptr_t	 lo, hi;
	bool		 spared;
};
static char		 spare[256];
static struct region	 regions[32];
static unsigned		 nregions;
static __thread bool	 walking;

/* xorshift64*: cheap, and the same sequence for the same seed. */
static uint64_t
next_random(void)
{
	state ^= state >> 12;
	state ^= state << 25;
	state ^= state >> 27;
	return state * 2685821657736338717ULL;
}

static const struct region *
region_of(const void *pc)
{
	unsigned i;

	for (i = 0; i < nregions; i++)
		if ((uintptr_t)pc >= regions[i].lo &&
		    (uintptr_t)pc < regions[i].hi)
			return &regions[i];
	return NULL;
}

/*
 * Whether the allocation under way was asked for by spared code: its
 * caller, the first frame outside this shim and the C library, is in a
 * spared object.  (Only the caller: GMP's allocations under GnuTLS, or
 * nghttp2's under our code, still fail.)
 */
static bool
spared(void)
{
	const struct region *r;
	void *frames[16];
	int i, n;

	if (spare[0] == '\0')
		return false;
	if (walking)
		return true;
	walking = true;
	n = backtrace(frames, 16);
	walking = false;
	for (i = 0; i < n; i++) {
		r = region_of(frames[i]);
		if (r == NULL)
			return false;
		if (r->spared)
			return true;
	}
	return false;
}

static bool
name_matches(const char *name, const char *list)
{
	char one[sizeof(spare)];
	const char *p, *e;

	for (p = list; *p != '\0'; p = *e == ':' ? e + 1 : e) {
		e = p + strcspn(p, ":");
		memcpy(one, p, (size_t)(e - p));
		one[e - p] = '\0';
		if (one[0] != '\0' && strstr(name, one) != NULL)
			return true;
	}
	return false;
}

static int
find_regions(struct dl_phdr_info *info, size_t size, void *arg)
{
	bool spared_one;
	int i;

	(void)size;
	(void)arg;
	if (info->dlpi_name == NULL)
		return 0;
	spared_one = name_matches(info->dlpi_name, spare);
	if (!spared_one && !name_matches(info->dlpi_name,
	    "failmalloc:/libc.so:libasan"))
		return 0;
	for (i = 0; i < info->dlpi_phnum && nregions < 32; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];

		if (ph->p_type != PT_LOAD || (ph->p_flags & PF_X) == 0)
			continue;
		regions[nregions].lo = info->dlpi_addr + ph->p_vaddr;
		regions[nregions].hi = regions[nregions].lo + ph->p_memsz;
		regions[nregions].spared = spared_one;
		nregions++;
	}
	return 0;
}

static bool
should_fail(void)
{
	uint64_t n;

	if (!configured || !started ||
	    (stats != NULL && atomic_load(&stats->paused) != 0))
		return false;
	n = ++count;
	if (n <= after)
		goto pass;
	if (nth != 0) {
		if (n - after == nth && !spared())
			goto fail;
		goto pass;
	}
	if (prob > 0 && (double)(next_random() >> 11) / 9007199254740992.0 <
	    prob && !spared())
		goto fail;
pass:
	if (stats != NULL)
		atomic_fetch_add(&stats->passed, 1);
	return false;
fail:
	if (stats != NULL)
		atomic_fetch_add(&stats->failed, 1);
	errno = ENOMEM;
	return true;
}

/* Parses the option string by hand: no allocation while we do it. */
static void
parse(const char *s)
{
	char path[4096];
	const char *v;
	size_t n;
	int fd;

	while (*s != '\0') {
		v = strchr(s, '=');
		n = strcspn(s, ",");
		if (v == NULL || (size_t)(v - s) > n)
			break;
		v++;
		if (strncmp(s, "p=", 2) == 0)
			prob = strtod(v, NULL);
		else if (strncmp(s, "seed=", 5) == 0)
			state = strtoull(v, NULL, 10);
		else if (strncmp(s, "after=", 6) == 0)
			after = strtoull(v, NULL, 10);
		else if (strncmp(s, "nth=", 4) == 0)
			nth = strtoull(v, NULL, 10);
		else if (strncmp(s, "spare=", 6) == 0 &&
		    n - 6 < sizeof(spare)) {
			memcpy(spare, v, n - 6);
			spare[n - 6] = '\0';
		} else if (strncmp(s, "stats=", 6) == 0 &&
		    n - 6 < sizeof(path)) {
			memcpy(path, v, n - 6);
			path[n - 6] = '\0';
			fd = open(path, O_RDWR | O_CLOEXEC);
			if (fd != -1) {
				void *p = mmap(NULL, 4096, PROT_READ |
				    PROT_WRITE, MAP_SHARED, fd, 0);
				if (p != MAP_FAILED)
					stats = p;
				close(fd);
			}
		}
		s += n;
		if (*s == ',')
			s++;
	}
}

__attribute__((constructor)) static void
failmalloc_init(void)
{
	const char *s = getenv("PORTCULLIS_FAILMALLOC");

	if (s == NULL || *s == '\0')
		return;
	parse(s);
	state = (state ^ ((uint64_t)getpid() << 32)) * 0x9E3779B97F4A7C15ULL;
	if (state == 0)
		state = 1;
	configured = true;
}

/* The end of start-up: the event loop waits for the first time. */
static void
mark_started(void)
{
	void *warm[1];

	if (!started && configured) {
		/* Not in the constructor: the allocator behind us may not be
		   ready then (ASan's runs its own constructor after ours). */
		if (spare[0] != '\0') {
			dl_iterate_phdr(find_regions, NULL);
			/* The unwinder (libgcc_s, linked in: no file opened
			   now) is set up at the first walk: not in malloc. */
			walking = true;
			(void)backtrace(warm, 1);
			walking = false;
		}
		started = true;
		if (stats != NULL)
			atomic_fetch_add(&stats->started, 1);
	}
}

int
epoll_wait(int epfd, struct epoll_event *ev, int maxev, int timeout)
{
	mark_started();
	return epoll_pwait(epfd, ev, maxev, timeout, NULL);
}

void *
malloc(size_t n)
{
	resolve();
	if (real_malloc == NULL)
		return boot_alloc(n);
	return should_fail() ? NULL : real_malloc(n);
}

void *
calloc(size_t n, size_t sz)
{
	resolve();
	if (real_calloc == NULL)
		return sz != 0 && n > SIZE_MAX / sz ? NULL : boot_alloc(n * sz);
	return should_fail() ? NULL : real_calloc(n, sz);
}

void
free(void *p)
{
	if (p == NULL || is_boot(p))
		return;
	resolve();
	real_free(p);
}

void *
realloc(void *p, size_t n)
{
	void *q;

	resolve();
	if (is_boot(p)) {
		/* Moved out of the arena (it never shrinks or grows there). */
		if ((q = malloc(n)) != NULL)
			memcpy(q, p, MIN(n, (size_t)(boot + sizeof(boot) -
			    (char *)p)));
		return q;
	}
	/* realloc(p, 0) frees; a failure there would be no failure at all. */
	if (p != NULL && n == 0)
		return real_realloc(p, n);
	return should_fail() ? NULL : real_realloc(p, n);
}

void *
reallocarray(void *p, size_t n, size_t sz)
{
	if (sz != 0 && n > SIZE_MAX / sz) {
		errno = ENOMEM;
		return NULL;
	}
	return realloc(p, n * sz);
}

void *
memalign(size_t align, size_t n)
{
	resolve();
	return should_fail() ? NULL : real_memalign(align, n);
}

void *
aligned_alloc(size_t align, size_t n)
{
	return memalign(align, n);
}

int
posix_memalign(void **out, size_t align, size_t n)
{
	void *p;

	if (align < sizeof(void *) || (align & (align - 1)) != 0)
		return EINVAL;
	if ((p = memalign(align, n)) == NULL)
		return ENOMEM;
	*out = p;
	return 0;
}

void *
valloc(size_t n)
{
	return memalign((size_t)sysconf(_SC_PAGESIZE), n);
}

void *
pvalloc(size_t n)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);

	return memalign(pg, (n + pg - 1) & ~(pg - 1));
}
