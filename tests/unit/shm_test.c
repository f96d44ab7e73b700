/*
 * shm_test.c - the shared segment: layout, double-buffered publishing,
 * the read-only view a worker gets, seals, and headers a worker must
 * refuse.
 */

#include "autoconf.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shm.h"
#include "util.h"

#define PAGE		4096
#define SLOT_ASKED	10000
#define SLOT_SIZE	12288	/* SLOT_ASKED rounded up to pages */

struct fixture {
	struct shm	 s;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL || shm_create(&f->s, SLOT_ASKED, 0) == -1) {
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	shm_close(&f->s);
	free(f);
	return 0;
}

static void
image_of(unsigned char *buf, size_t len, unsigned seed)
{
	size_t	i;

	for (i = 0; i < len; i++)
		buf[i] = (unsigned char)(seed * 31 + i * 7 + i / 253);
}

/* The session-ticket keys published with every image here. */
static const unsigned char TK[SHM_TICKET_KEY_MAX] =
    "current key ...\0previous key";

static int
publish(struct shm *s, const void *img, size_t len, uint64_t gen)
{
	return shm_publish(s, img, len, gen, TK, sizeof(TK));
}

/* Copy generation gen and compare it with want (and its keys with TK). */
static void
expect_copy(const struct shm *s, uint64_t gen, const void *want, size_t len,
    uint64_t want_gen)
{
	unsigned char	*out = NULL, tk[SHM_TICKET_KEY_MAX];
	size_t		 outlen = 0, tklen = 0;
	uint64_t	 got = 0;

	assert_int_equal(shm_copy_image(s, gen, &out, &outlen, &got, tk,
	    &tklen), 0);
	assert_int_equal(tklen, sizeof(TK));
	assert_memory_equal(tk, TK, sizeof(TK));
	assert_true(got == want_gen);
	assert_int_equal(outlen, len);
	assert_memory_equal(out, want, len);
	free(out);
}

static void
expect_no_copy(const struct shm *s, uint64_t gen)
{
	unsigned char	*out = (unsigned char *)&out;
	size_t		 outlen = 12345;
	uint64_t	 got = 999;

	assert_int_equal(shm_copy_image(s, gen, &out, &outlen, &got, NULL,
	    NULL), -1);
	assert_ptr_equal(out, (unsigned char *)&out);	/* untouched */
	assert_int_equal(outlen, 12345);
	assert_true(got == 999);
}

static void
test_create_layout(void **state)
{
	struct fixture		*f = *state;
	struct shm_config_hdr	*h = f->s.cfg;
	struct shm_state_hdr	*st = f->s.state;
	struct stat		 sb;
	unsigned		 i, nonzero = 0;

	assert_true(f->s.cfg_fd >= 0);
	assert_true(f->s.state_fd >= 0);
	assert_int_equal(h->magic, SHM_MAGIC);
	assert_int_equal(h->version, SHM_LAYOUT_VERSION);
	assert_int_equal(h->slot_size, SLOT_SIZE);
	assert_int_equal(h->slot_off[0], PAGE);
	assert_int_equal(h->slot_off[1], PAGE + SLOT_SIZE);
	assert_int_equal(h->size, PAGE + 2 * SLOT_SIZE);
	assert_int_equal(f->s.cfg_size, h->size);
	assert_int_equal(fstat(f->s.cfg_fd, &sb), 0);
	assert_int_equal(sb.st_size, (off_t)h->size);
	assert_true(shm_generation(&f->s) == 0);
	assert_true(h->slot[0].generation == 0);
	assert_true(h->slot[1].generation == 0);
	/* A fresh random sticky-cookie key; no ticket key yet. */
	for (i = 0; i < sizeof(h->sticky_key); i++)
		nonzero += h->sticky_key[i] != 0;
	assert_true(nonzero > sizeof(h->sticky_key) / 2);
	assert_int_equal(h->slot[0].ticket_key_len, 0);
	assert_int_equal(h->slot[1].ticket_key_len, 0);

	assert_int_equal(st->magic, SHM_MAGIC);
	assert_int_equal(st->version, SHM_LAYOUT_VERSION);
	assert_int_equal(st->size, f->s.state_size);
	assert_int_equal(st->max_workers, SHM_MAX_WORKERS);
	assert_int_equal(st->counters_off % 64, 0);
	assert_true(st->counters_off + SHM_MAX_WORKERS *
	    sizeof(struct shm_counters) <= st->size);
	assert_int_equal(fstat(f->s.state_fd, &sb), 0);
	assert_int_equal(sb.st_size, (off_t)st->size);
	/* Descriptors must not leak into anything the master executes. */
	assert_int_equal(fcntl(f->s.cfg_fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	assert_int_equal(fcntl(f->s.state_fd, F_GETFD) & FD_CLOEXEC,
	    FD_CLOEXEC);
}

static void
test_two_keys_differ(void **state)
{
	struct fixture	*f = *state;
	struct shm	 other;

	assert_int_equal(shm_create(&other, PAGE, PAGE), 0);
	assert_memory_not_equal(other.cfg->sticky_key, f->s.cfg->sticky_key,
	    sizeof(other.cfg->sticky_key));
	assert_int_equal(other.state->ratelimit_size, PAGE);
	assert_true(other.state->ratelimit_off + PAGE <= other.state->size);
	shm_close(&other);
	assert_int_equal(other.cfg_fd, -1);
	assert_int_equal(other.state_fd, -1);
	assert_null(other.cfg);
	shm_close(&other);		/* twice is harmless */
}

static void
test_nothing_published(void **state)
{
	struct fixture *f = *state;

	expect_no_copy(&f->s, 0);
	expect_no_copy(&f->s, 1);
	expect_no_copy(&f->s, 2);
}

/* Generations alternate slots; the previous one stays readable. */
static void
test_publish_alternates(void **state)
{
	struct fixture	*f = *state;
	struct shm_config_hdr *h = f->s.cfg;
	unsigned char	 a[100], b[5000], c[SLOT_SIZE];

	image_of(a, sizeof(a), 1);
	image_of(b, sizeof(b), 2);
	image_of(c, sizeof(c), 3);

	assert_int_equal(publish(&f->s, a, sizeof(a), 1), 0);
	assert_true(shm_generation(&f->s) == 1);
	assert_true(h->slot[1].generation == 1);
	assert_true(h->slot[0].generation == 0);
	expect_copy(&f->s, 0, a, sizeof(a), 1);
	expect_copy(&f->s, 1, a, sizeof(a), 1);
	expect_no_copy(&f->s, 2);

	assert_int_equal(publish(&f->s, b, sizeof(b), 2), 0);
	assert_true(shm_generation(&f->s) == 2);
	assert_true(h->slot[0].generation == 2);
	assert_true(h->slot[1].generation == 1);
	expect_copy(&f->s, 0, b, sizeof(b), 2);		/* the latest */
	expect_copy(&f->s, 2, b, sizeof(b), 2);
	expect_copy(&f->s, 1, a, sizeof(a), 1);		/* the previous */
	expect_no_copy(&f->s, 3);			/* not yet */
	expect_no_copy(&f->s, 4);

	/* Generation 3 takes slot 1 back: 1 is gone, 2 remains. */
	assert_int_equal(publish(&f->s, c, sizeof(c), 3), 0);
	expect_copy(&f->s, 3, c, sizeof(c), 3);
	expect_copy(&f->s, 0, c, sizeof(c), 3);
	expect_copy(&f->s, 2, b, sizeof(b), 2);
	expect_no_copy(&f->s, 1);
	/* A generation that merely has the same parity is not there. */
	expect_no_copy(&f->s, 5);
	expect_no_copy(&f->s, 4);
	expect_no_copy(&f->s, UINT64_MAX);
}

static void
test_publish_too_large(void **state)
{
	struct fixture	*f = *state;
	static unsigned char big[SLOT_SIZE + 1];
	unsigned char	 a[64];

	image_of(a, sizeof(a), 9);
	image_of(big, sizeof(big), 8);
	assert_int_equal(publish(&f->s, a, sizeof(a), 1), 0);
	/* Exactly a slot fits ... */
	assert_int_equal(publish(&f->s, big, SLOT_SIZE, 2), 0);
	expect_copy(&f->s, 2, big, SLOT_SIZE, 2);
	/* ... one byte more does not, and changes nothing. */
	errno = 0;
	assert_int_equal(publish(&f->s, big, SLOT_SIZE + 1, 3), -1);
	assert_int_equal(errno, EFBIG);
	assert_true(shm_generation(&f->s) == 2);
	expect_copy(&f->s, 1, a, sizeof(a), 1);
	expect_copy(&f->s, 0, big, SLOT_SIZE, 2);
	errno = 0;
	assert_int_equal(publish(&f->s, big, SIZE_MAX, 4), -1);
	assert_int_equal(errno, EFBIG);
	expect_copy(&f->s, 2, big, SLOT_SIZE, 2);
}

static void
test_counters(void **state)
{
	struct fixture		*f = *state;
	struct shm_counters	*c0, *c1, *last;

	assert_int_equal(sizeof(struct shm_counters), 64);
	c0 = shm_counters(&f->s, 0);
	c1 = shm_counters(&f->s, 1);
	last = shm_counters(&f->s, SHM_MAX_WORKERS - 1);
	assert_non_null(c0);
	assert_non_null(c1);
	assert_non_null(last);
	assert_int_equal((uintptr_t)c0 % 64, 0);
	assert_ptr_equal(c1, c0 + 1);
	assert_ptr_equal(last, c0 + SHM_MAX_WORKERS - 1);
	assert_true((unsigned char *)(last + 1) <=
	    (unsigned char *)f->s.state + f->s.state_size);
	assert_null(shm_counters(&f->s, SHM_MAX_WORKERS));
	assert_null(shm_counters(&f->s, SHM_MAX_WORKERS + 1));
	assert_null(shm_counters(&f->s, UINT32_MAX));
	atomic_fetch_add(&last->requests, 3);
	assert_true(atomic_load(&last->requests) == 3);
	assert_true(atomic_load(&c0->requests) == 0);
}

/* The statistics of /metrics: a row per worker, after the counters and
   before the upstream table, cache-line aligned, none overlapping. */
static void
test_stats(void **state)
{
	struct fixture		*f = *state;
	struct shm_stats	*s0, *s1, *last;
	size_t			 usize;
	unsigned char		*ups = shm_upstate(&f->s, &usize);

	assert_int_equal(sizeof(struct shm_site_row), 192);
	assert_int_equal(sizeof(struct shm_stats) % 64, 0);
	s0 = shm_stats(&f->s, 0);
	s1 = shm_stats(&f->s, 1);
	last = shm_stats(&f->s, SHM_MAX_WORKERS - 1);
	assert_non_null(s0);
	assert_int_equal((uintptr_t)s0 % 64, 0);
	assert_ptr_equal(s1, s0 + 1);
	assert_ptr_equal(last, s0 + SHM_MAX_WORKERS - 1);
	assert_true((unsigned char *)s0 >= (unsigned char *)
	    (shm_counters(&f->s, SHM_MAX_WORKERS - 1) + 1));
	assert_true((unsigned char *)(last + 1) <= ups);
	assert_null(shm_stats(&f->s, SHM_MAX_WORKERS));
	assert_null(shm_stats(&f->s, UINT32_MAX));
	atomic_fetch_add(&last->site[SHM_SITE_ROWS - 1].duration_us, 5);
	atomic_fetch_add(&s1->tls_handshakes, 1);
	assert_true(atomic_load(&s0->tls_handshakes) == 0);
	assert_true(atomic_load(&shm_stats(&f->s, 2)->site[0].requests[0][0])
	    == 0);
	assert_true(atomic_load(&shm_counters(&f->s, 0)->requests) == 0);
}

/*
 * Every worker can write the state part.  Whatever its header then says,
 * the master's (and an attached worker's) own layout decides where the
 * counters and the rate-limit table are: an offset there is never
 * followed.
 */
static void
corrupt_state_hdr(struct shm_state_hdr *h, int how)
{
	switch (how) {
	case 0: h->counters_off = UINT64_C(0x100000000000); break;
	case 1: h->counters_off = h->size; break;
	case 2: h->counters_off = h->size - 64; h->max_workers = UINT32_MAX;
		break;
	case 3: h->counters_off = 1; break;
	case 4: h->max_workers = 0; break;
	case 5: h->ratelimit_off = UINT64_MAX; h->ratelimit_size = UINT64_MAX;
		break;
	default: memset(h, 0xff, sizeof(*h)); break;
	}
}

#define CORRUPTIONS	7

static void
test_layout_is_our_own(void **state)
{
	struct fixture		*f = *state;
	struct shm_state_hdr	 good;
	struct shm_counters	*c0, *last;
	struct shm		 w;
	void			*rl;
	size_t			 rlsize, size;
	char			*json, want[64];
	int			 how;

	c0 = shm_counters(&f->s, 0);
	last = shm_counters(&f->s, SHM_MAX_WORKERS - 1);
	rl = shm_ratelimit(&f->s, &rlsize);
	memcpy(&good, f->s.state, sizeof(good));
	/* A worker attached before the damage keeps its layout too. */
	assert_int_equal(shm_attach(&w, shm_config_fd_readonly(&f->s),
	    dup(f->s.state_fd)), 0);
	atomic_store(&c0->pid, 4242);
	atomic_store(&c0->requests, 5);
	for (how = 0; how < CORRUPTIONS; how++) {
		corrupt_state_hdr(f->s.state, how);
		assert_ptr_equal(shm_counters(&f->s, 0), c0);
		assert_ptr_equal(shm_counters(&f->s, SHM_MAX_WORKERS - 1),
		    last);
		assert_null(shm_counters(&f->s, SHM_MAX_WORKERS));
		assert_ptr_equal(shm_ratelimit(&f->s, &size), rl);
		assert_int_equal(size, rlsize);
		assert_ptr_equal((unsigned char *)shm_counters(&w, 0) -
		    (unsigned char *)w.state, (unsigned char *)c0 -
		    (unsigned char *)f->s.state);
		assert_ptr_equal((unsigned char *)shm_ratelimit(&w, &size) -
		    (unsigned char *)w.state, (unsigned char *)rl -
		    (unsigned char *)f->s.state);
		json = shm_counters_json(&f->s, 2);
		assert_non_null(json);
		assert_non_null(strstr(json, "{\"worker\":0,\"pid\":4242,"
		    "\"requests\":5,"));
		assert_non_null(strstr(json, "{\"worker\":1,"));
		free(json);
		/* Put back, once, and then it holds. */
		assert_int_equal(shm_state_repair(&f->s), 1);
		assert_memory_equal(f->s.state, &good, sizeof(good));
		assert_int_equal(shm_state_repair(&f->s), 0);
	}
	/* Asking for more workers than there are slots gives the slots. */
	json = shm_counters_json(&f->s, UINT32_MAX);
	assert_non_null(json);
	snprintf(want, sizeof(want), "{\"worker\":%u,", SHM_MAX_WORKERS - 1);
	assert_non_null(strstr(json, want));
	snprintf(want, sizeof(want), "{\"worker\":%u,", SHM_MAX_WORKERS);
	assert_null(strstr(json, want));
	free(json);
	shm_close(&w);
}

/* Counters are numbers a worker wrote: sums stay at the top, never wrap. */
static void
test_counters_json_saturates(void **state)
{
	struct fixture		*f = *state;
	struct shm_counters	*c0 = shm_counters(&f->s, 0);
	struct shm_counters	*c1 = shm_counters(&f->s, 1);
	char			*json;

	atomic_store(&c0->requests, 3);
	atomic_store(&c1->requests, 4);
	atomic_store(&c0->bytes_in, UINT64_MAX);
	atomic_store(&c1->bytes_in, 1);
	atomic_store(&c0->errors, UINT64_MAX);
	atomic_store(&c1->errors, UINT64_MAX);
	atomic_store(&c0->pid, UINT64_MAX);
	json = shm_counters_json(&f->s, 2);
	assert_non_null(json);
	assert_string_equal(json, "\"worker_counters\":["
	    "{\"worker\":0,\"pid\":18446744073709551615,\"requests\":3,"
	    "\"rate_limited\":0,\"active_connections\":0,"
	    "\"bytes_in\":18446744073709551615,\"bytes_out\":0,"
	    "\"errors\":18446744073709551615},"
	    "{\"worker\":1,\"pid\":0,\"requests\":4,"
	    "\"rate_limited\":0,\"active_connections\":0,"
	    "\"bytes_in\":1,\"bytes_out\":0,"
	    "\"errors\":18446744073709551615}],"
	    "\"counters\":{\"requests\":7,\"rate_limited\":0,"
	    "\"active_connections\":0,\"bytes_in\":18446744073709551615,"
	    "\"bytes_out\":0,\"errors\":18446744073709551615}");
	free(json);
}

/*
 * Every field at its largest, in every slot: the reply still fits the
 * buffer (it is sized for 20 digits a number), and stays valid.
 */
static void
test_counters_json_all_max(void **state)
{
	struct fixture	*f = *state;
	char		*json;
	unsigned	 i;

	for (i = 0; i < SHM_MAX_WORKERS; i++)
		memset(shm_counters(&f->s, i), 0xff,
		    sizeof(struct shm_counters));
	json = shm_counters_json(&f->s, SHM_MAX_WORKERS);
	assert_non_null(json);
	assert_non_null(strstr(json, "\"counters\":{\"requests\":"
	    "18446744073709551615,"));
	assert_true(json[strlen(json) - 1] == '}');
	free(json);
}

/*
 * The master publishes by its own slot layout: the config header is its
 * own to write, but only as a record of what it made.
 */
static void
test_publish_by_own_layout(void **state)
{
	struct fixture	*f = *state;
	static unsigned char big[SLOT_SIZE + 1];
	unsigned char	 a[64];

	image_of(a, sizeof(a), 7);
	f->s.cfg->slot_size = UINT64_MAX;
	f->s.cfg->slot_off[0] = UINT64_C(1) << 40;
	f->s.cfg->slot_off[1] = UINT64_C(1) << 41;
	errno = 0;
	assert_int_equal(publish(&f->s, big, sizeof(big), 1), -1);
	assert_int_equal(errno, EFBIG);
	assert_int_equal(publish(&f->s, a, sizeof(a), 1), 0);
	expect_copy(&f->s, 1, a, sizeof(a), 1);
	assert_memory_equal((unsigned char *)f->s.cfg + PAGE + SLOT_SIZE, a,
	    sizeof(a));
}

/*
 * The worker's view.
 */

static void
test_readonly_descriptor(void **state)
{
	struct fixture	*f = *state;
	unsigned char	*p;
	int		 ro;

	ro = shm_config_fd_readonly(&f->s);
	assert_true(ro >= 0);
	assert_int_equal(fcntl(ro, F_GETFL) & O_ACCMODE, O_RDONLY);
	assert_int_equal(fcntl(ro, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	/* No writable shared mapping, no write(2), no resize. */
	errno = 0;
	assert_ptr_equal(mmap(NULL, f->s.cfg_size, PROT_READ | PROT_WRITE,
	    MAP_SHARED, ro, 0), MAP_FAILED);
	assert_int_equal(errno, EACCES);
	assert_int_equal(write(ro, "x", 1), -1);
	assert_int_equal(pwrite(ro, "x", 1, PAGE), -1);
	assert_int_equal(ftruncate(ro, 0), -1);
	/* A read-only mapping cannot be made writable. */
	p = mmap(NULL, f->s.cfg_size, PROT_READ, MAP_SHARED, ro, 0);
	assert_ptr_not_equal(p, MAP_FAILED);
	errno = 0;
	assert_int_equal(mprotect(p, f->s.cfg_size, PROT_READ | PROT_WRITE),
	    -1);
	assert_int_equal(errno, EACCES);
	/* A private copy may be scribbled on; the master never sees it. */
	munmap(p, f->s.cfg_size);
	p = mmap(NULL, f->s.cfg_size, PROT_READ | PROT_WRITE, MAP_PRIVATE, ro,
	    0);
	assert_ptr_not_equal(p, MAP_FAILED);
	memset(p, 0xee, 64);
	assert_int_equal(f->s.cfg->magic, SHM_MAGIC);
	munmap(p, f->s.cfg_size);
	close(ro);
}

static void
test_seals(void **state)
{
	struct fixture	*f = *state;
	int		 fds[2] = { f->s.cfg_fd, f->s.state_fd }, i, seals;
	off_t		 past[2] = { (off_t)f->s.cfg_size,
			    (off_t)f->s.state_size };

	for (i = 0; i < 2; i++) {
		seals = fcntl(fds[i], F_GET_SEALS);
		assert_true(seals >= 0);
		assert_int_equal(seals & (F_SEAL_SHRINK | F_SEAL_GROW |
		    F_SEAL_SEAL), F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
		/* Even the master's writable descriptor cannot resize. */
		errno = 0;
		assert_int_equal(ftruncate(fds[i], 0), -1);
		assert_int_equal(errno, EPERM);
		errno = 0;
		assert_int_equal(ftruncate(fds[i], past[i] + (1 << 24)), -1);
		assert_int_equal(errno, EPERM);
		errno = 0;
		assert_int_equal(fallocate(fds[i], 0, 0, past[i] + (1 << 24)),
		    -1);
		assert_int_equal(errno, EPERM);
		/* And the seals themselves are final. */
		errno = 0;
		assert_int_equal(fcntl(fds[i], F_ADD_SEALS, F_SEAL_WRITE), -1);
		assert_int_equal(errno, EPERM);
	}
}

/*
 * Only the master's own mapping writes the config part: no descriptor,
 * not even its own, yields a new writable mapping or a write(2).  The
 * state part stays writable: every worker maps it to count.
 */
static void
test_config_part_write_sealed(void **state)
{
	struct fixture	*f = *state;
	unsigned char	 a[32];
	void		*p;

	errno = 0;
	assert_ptr_equal(mmap(NULL, f->s.cfg_size, PROT_READ | PROT_WRITE,
	    MAP_SHARED, f->s.cfg_fd, 0), MAP_FAILED);
	assert_int_equal(errno, EPERM);
	errno = 0;
	assert_int_equal(pwrite(f->s.cfg_fd, "x", 1, PAGE), -1);
	assert_int_equal(errno, EPERM);
	/* The existing mapping still publishes. */
	memset(a, 'q', sizeof(a));
	assert_int_equal(publish(&f->s, a, sizeof(a), 1), 0);
	expect_copy(&f->s, 1, a, sizeof(a), 1);
	/* The state part: writable mappings, as workers need. */
	p = mmap(NULL, f->s.state_size, PROT_READ | PROT_WRITE, MAP_SHARED,
	    f->s.state_fd, 0);
	assert_ptr_not_equal(p, MAP_FAILED);
	munmap(p, f->s.state_size);
}

/* Attach in the same process, from a read-only cfg descriptor. */
static void
test_attach_same_process(void **state)
{
	struct fixture	*f = *state;
	unsigned char	 a[333];
	struct shm	 w;

	image_of(a, sizeof(a), 4);
	assert_int_equal(publish(&f->s, a, sizeof(a), 1), 0);
	assert_int_equal(shm_attach(&w, shm_config_fd_readonly(&f->s),
	    dup(f->s.state_fd)), 0);
	assert_int_equal(w.cfg_size, f->s.cfg_size);
	assert_int_equal(w.state_size, f->s.state_size);
	assert_true(shm_generation(&w) == 1);
	expect_copy(&w, 0, a, sizeof(a), 1);
	/* Same sticky key on both sides (the ticket keys: expect_copy). */
	assert_memory_equal(w.cfg->sticky_key, f->s.cfg->sticky_key,
	    sizeof(w.cfg->sticky_key));
	/* Counters are shared. */
	atomic_fetch_add(&shm_counters(&w, 7)->errors, 2);
	assert_true(atomic_load(&shm_counters(&f->s, 7)->errors) == 2);
	/* A later publish shows through the worker's mapping. */
	image_of(a, sizeof(a), 5);
	assert_int_equal(publish(&f->s, a, sizeof(a), 2), 0);
	assert_true(shm_generation(&w) == 2);
	expect_copy(&w, 2, a, sizeof(a), 2);
	/* The mapping is read-only. */
	errno = 0;
	assert_int_equal(mprotect(w.cfg, w.cfg_size, PROT_READ | PROT_WRITE),
	    -1);
	assert_int_equal(errno, EACCES);
	shm_close(&w);
}

/* Exit codes of the forked worker. */
enum {
	CHILD_OK = 0, W_ATTACH, W_COPY, W_CONTENT, W_MPROTECT, W_REMAP,
	W_GEN
};

static void
test_attach_in_child(void **state)
{
	struct fixture	*f = *state;
	unsigned char	 a[2000];
	pid_t		 pid;
	int		 ro, st, status;

	image_of(a, sizeof(a), 6);
	assert_int_equal(publish(&f->s, a, sizeof(a), 1), 0);
	ro = shm_config_fd_readonly(&f->s);
	st = dup(f->s.state_fd);
	assert_true(ro >= 0 && st >= 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct shm	 w;
		unsigned char	*out;
		size_t		 len;
		uint64_t	 got;
		void		*p;

		if (shm_attach(&w, ro, st) == -1)
			_exit(W_ATTACH);
		if (shm_generation(&w) != 1)
			_exit(W_GEN);
		if (shm_copy_image(&w, 1, &out, &len, &got, NULL, NULL) ==
		    -1)
			_exit(W_COPY);
		if (len != sizeof(a) || memcmp(out, a, len) != 0)
			_exit(W_CONTENT);
		free(out);
		if (mprotect(w.cfg, w.cfg_size, PROT_READ | PROT_WRITE) == 0)
			_exit(W_MPROTECT);
		p = mmap(NULL, w.cfg_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		    ro, 0);
		if (p != MAP_FAILED)
			_exit(W_REMAP);
		atomic_fetch_add(&shm_counters(&w, 3)->requests, 5);
		atomic_store(&shm_counters(&w, 3)->pid, (uint64_t)getpid());
		shm_close(&w);
		_exit(CHILD_OK);
	}
	close(ro);
	close(st);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), CHILD_OK);
	assert_true(atomic_load(&shm_counters(&f->s, 3)->requests) == 5);
	assert_true(atomic_load(&shm_counters(&f->s, 3)->pid) ==
	    (uint64_t)pid);
}

/*
 * shm.h: "workers get a read-only descriptor, so even a compromised
 * worker cannot change what the others route by."  The descriptor is a
 * memfd reopened O_RDONLY; reopening it again through /proc/self/fd must
 * not give a writable one either.  The attempt is made hardened as a
 * worker is (privs_worker_drop: no_new_privs, not dumpable) and as the
 * unprivileged user a worker runs as, when we can switch to it.
 */
static void
test_readonly_cannot_be_reopened_writable(void **state)
{
	struct fixture	*f = *state;
	unsigned char	 a[16];
	char		 path[64];
	struct passwd	*pw;
	pid_t		 pid;
	int		 ro, status;

	memset(a, 'A', sizeof(a));
	assert_int_equal(publish(&f->s, a, sizeof(a), 1), 0);
	ro = shm_config_fd_readonly(&f->s);
	assert_true(ro >= 0);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", ro);
	pw = geteuid() == 0 ? getpwnam("nobody") : NULL;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		unsigned char	*p;
		int		 rw;

		if (pw != NULL && (setgroups(0, NULL) == -1 ||
		    setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) == -1 ||
		    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) == -1))
			_exit(2);
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1 ||
		    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == -1)
			_exit(3);
		if ((rw = open(path, O_RDWR)) == -1)
			_exit(0);
		p = mmap(NULL, f->s.cfg_size, PROT_READ | PROT_WRITE,
		    MAP_SHARED, rw, 0);
		if (p == MAP_FAILED)
			_exit(0);
		/* Rewrite the live image the other workers will copy. */
		memset(p + f->s.cfg->slot_off[1], 'X', sizeof(a));
		_exit(1);
	}
	/*
	 * Here too, whoever we are (root opens a mode-0400 file all the
	 * same): a descriptor reopened O_RDWR must not map writable.
	 */
	{
		int rw = open(path, O_RDWR | O_CLOEXEC);

		if (rw != -1) {
			assert_ptr_equal(mmap(NULL, f->s.cfg_size, PROT_READ |
			    PROT_WRITE, MAP_SHARED, rw, 0), MAP_FAILED);
			assert_int_equal(pwrite(rw, "X", 1,
			    (off_t)f->s.cfg->slot_off[1]), -1);
			close(rw);
		}
	}
	close(ro);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) == 1)
		fail_msg("a worker reopened %s O_RDWR and rewrote the "
		    "published image: slot now starts with '%c'", path,
		    ((char *)f->s.cfg)[f->s.cfg->slot_off[1]]);
	assert_int_equal(WEXITSTATUS(status), 0);
	expect_copy(&f->s, 1, a, sizeof(a), 1);
}

/*
 * Headers a worker must refuse: a memfd made by hand, holding a copy of
 * a good header with one field broken.
 */

static int
memfd_with(const void *hdr, size_t hdrlen, size_t size)
{
	int	fd = memfd_create("shm_test", MFD_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	if (hdrlen > 0)
		assert_int_equal(pwrite(fd, hdr, hdrlen, 0), (ssize_t)hdrlen);
	return fd;
}

static void
expect_attach_fails(int cfg_fd, int state_fd, const char *what)
{
	struct shm	w;
	int		rc;

	errno = 0;
	rc = shm_attach(&w, cfg_fd, state_fd);
	if (rc != -1)
		fail_msg("attached to a corrupt segment: %s", what);
	assert_int_equal(errno, EINVAL);
	shm_close(&w);			/* releases the maps and both fds */
}

static void
test_attach_good_copy(void **state)
{
	struct fixture	*f = *state;
	struct shm	 w;

	/* The hand-made copy of good headers is accepted: the corrupt
	 * cases below differ from it in one field only. */
	assert_int_equal(shm_attach(&w, memfd_with(f->s.cfg,
	    sizeof(*f->s.cfg), f->s.cfg_size), memfd_with(f->s.state,
	    sizeof(*f->s.state), f->s.state_size)), 0);
	shm_close(&w);
}

static void
test_attach_corrupt_config(void **state)
{
	struct fixture	*f = *state;
	struct shm_config_hdr h;
	size_t		 size = f->s.cfg_size;
	int		 i;

	for (i = 0; i < 12; i++) {
		memcpy(&h, f->s.cfg, sizeof(h));
		switch (i) {
		case 0: h.magic ^= 1; break;
		case 1: h.magic = 0; break;
		case 2: h.version = SHM_LAYOUT_VERSION + 1; break;
		case 3: h.size = size + PAGE; break;
		case 4: h.size = size - PAGE; break;
		case 5: h.slot_off[0] = 0; break;
		case 6: h.slot_off[0] = PAGE * 2; break;
		case 7: h.slot_size += PAGE; break;
		case 8: h.slot_off[1] += 1; break;
		case 9: h.slot_off[1] = 0; break;
		case 10: h.version = 3; break;	/* keys in the header */
		case 11:
			h.slot_size = UINT64_MAX / 2;
			h.slot_off[1] = PAGE + h.slot_size;
			break;
		}
		expect_attach_fails(memfd_with(&h, sizeof(h), size),
		    dup(f->s.state_fd), "config header");
	}
	/* Too small to hold a header page, or empty. */
	expect_attach_fails(memfd_with(f->s.cfg, 64, 64), dup(f->s.state_fd),
	    "tiny config");
	expect_attach_fails(memfd_with(NULL, 0, 0), dup(f->s.state_fd),
	    "empty config");
	/* A size other than the header says. */
	expect_attach_fails(memfd_with(f->s.cfg, sizeof(h), size + PAGE),
	    dup(f->s.state_fd), "longer file");
	/* Not a descriptor at all. */
	expect_attach_fails(-1, dup(f->s.state_fd), "bad fd");
}

static void
test_attach_corrupt_state(void **state)
{
	struct fixture	*f = *state;
	struct shm_state_hdr h;
	size_t		 size = f->s.state_size;
	int		 i;

	for (i = 0; i < 9; i++) {
		memcpy(&h, f->s.state, sizeof(h));
		switch (i) {
		case 0: h.magic ^= 0x80000000u; break;
		case 1: h.version = 0; break;
		case 2: h.size = size * 2; break;
		case 3: h.max_workers = SHM_MAX_WORKERS + 1; break;
		case 4: h.counters_off = size + 64; break;
		case 5: h.counters_off = size - 64; break;
		case 6: h.ratelimit_off = size + 1; break;
		case 7: h.ratelimit_size = size; break;
		case 8: h.counters_off = UINT64_MAX - 63; break;
		}
		expect_attach_fails(shm_config_fd_readonly(&f->s),
		    memfd_with(&h, sizeof(h), size), "state header");
	}
	expect_attach_fails(shm_config_fd_readonly(&f->s),
	    memfd_with(f->s.state, 32, 100), "tiny state");
	/* The two parts swapped. */
	expect_attach_fails(dup(f->s.state_fd), shm_config_fd_readonly(&f->s),
	    "swapped");
}

/*
 * The ticket keys go with their generation's slot: a copy gets those of
 * the generation it copies; a publish replaces (wipes) the slot's old
 * ones; too many bytes are refused; once every worker has a generation,
 * the other slot is emptied and its keys are zeros.
 */
static void
test_ticket_keys_in_slots(void **state)
{
	struct fixture	*f = *state;
	unsigned char	 a[64], tk[SHM_TICKET_KEY_MAX], k1[64], k2[128];
	unsigned char	 zero[SHM_TICKET_KEY_MAX] = { 0 }, *out;
	size_t		 len, tklen;
	uint64_t	 got;

	image_of(a, sizeof(a), 1);
	memset(k1, 0x11, sizeof(k1));
	memset(k2, 0x22, sizeof(k2));
	assert_int_equal(shm_publish(&f->s, a, sizeof(a), 1, k2,
	    sizeof(k2)), 0);
	assert_int_equal(shm_publish(&f->s, a, sizeof(a), 2, k1,
	    sizeof(k1)), 0);
	assert_int_equal(shm_copy_image(&f->s, 1, &out, &len, &got, tk,
	    &tklen), 0);
	free(out);
	assert_int_equal(tklen, sizeof(k2));
	assert_memory_equal(tk, k2, sizeof(k2));
	assert_int_equal(shm_copy_image(&f->s, 2, &out, &len, &got, tk,
	    &tklen), 0);
	free(out);
	assert_int_equal(tklen, sizeof(k1));
	assert_memory_equal(tk, k1, sizeof(k1));
	/* Generation 3 reuses slot 1: k2's second half must not stay. */
	assert_int_equal(shm_publish(&f->s, a, sizeof(a), 3, k1,
	    sizeof(k1)), 0);
	assert_memory_equal(f->s.cfg->slot[1].ticket_key + 64, zero, 64);
	errno = 0;
	assert_int_equal(shm_publish(&f->s, a, sizeof(a), 4, k2,
	    SHM_TICKET_KEY_MAX + 1), -1);
	assert_int_equal(errno, EFBIG);
	/* Every worker has 3: generation 2 goes, and its keys. */
	shm_retire_other(&f->s, 3);
	assert_true(f->s.cfg->slot[0].generation == 0);
	assert_int_equal(f->s.cfg->slot[0].ticket_key_len, 0);
	assert_memory_equal(f->s.cfg->slot[0].ticket_key, zero, sizeof(zero));
	expect_no_copy(&f->s, 2);
	assert_int_equal(shm_copy_image(&f->s, 0, &out, &len, &got, tk,
	    &tklen), 0);
	free(out);
	assert_true(got == 3);
	assert_memory_equal(tk, k1, sizeof(k1));
}

/*
 * The master's stats for /metrics: counted by the master, in the config
 * part (so a worker reads them through its read-only mapping and cannot
 * write them), ACME names by key, a full table refusing a new name.
 */
static void
test_mstats(void **state)
{
	struct fixture	*f = *state;
	const struct shm_mstats *st;
	struct shm	 w;
	uint64_t	 fail, ren;
	char		 name[32];
	unsigned	 i;

	assert_int_equal(shm_attach(&w, shm_config_fd_readonly(&f->s),
	    dup(f->s.state_fd)), 0);
	st = shm_mstats(&w);
	assert_true((const unsigned char *)st >= (unsigned char *)w.cfg &&
	    (const unsigned char *)(st + 1) <= (unsigned char *)w.cfg + PAGE);
	assert_true(atomic_load(&st->reloads_ok) == 0);
	shm_mstats_reload(&f->s, 1);
	shm_mstats_reload(&f->s, 1);
	shm_mstats_reload(&f->s, 0);
	assert_true(atomic_load(&st->reloads_ok) == 2);
	assert_true(atomic_load(&st->reloads_failed) == 1);
	shm_mstats_restart(&f->s, SHM_PROC_WORKER, SHM_CAUSE_SIGNAL);
	shm_mstats_restart(&f->s, SHM_PROC_SIGNER, SHM_CAUSE_SANDBOX);
	shm_mstats_restart(&f->s, SHM_PROCS, SHM_CAUSE_EXIT);	/* ignored */
	shm_mstats_restart(&f->s, SHM_PROC_ACME, SHM_CAUSES);	/* ignored */
	assert_true(atomic_load(&st->restarts[SHM_PROC_WORKER]
	    [SHM_CAUSE_SIGNAL]) == 1);
	assert_true(atomic_load(&st->restarts[SHM_PROC_SIGNER]
	    [SHM_CAUSE_SANDBOX]) == 1);
	assert_true(atomic_load(&st->restarts[SHM_PROC_WORKER]
	    [SHM_CAUSE_EXIT]) == 0);
	/* ACME: by name, 0 and 0 for one never counted. */
	shm_mstats_acme_get(&w, "a.test", &fail, &ren);
	assert_true(fail == 0 && ren == 0);
	assert_int_equal(shm_mstats_acme(&f->s, "a.test", 0), 0);
	assert_int_equal(shm_mstats_acme(&f->s, "a.test", 0), 0);
	assert_int_equal(shm_mstats_acme(&f->s, "a.test", 1), 0);
	assert_int_equal(shm_mstats_acme(&f->s, "b.test", 1), 0);
	shm_mstats_acme_get(&w, "a.test", &fail, &ren);
	assert_true(fail == 2 && ren == 1);
	shm_mstats_acme_get(&w, "b.test", &fail, &ren);
	assert_true(fail == 0 && ren == 1);
	/* Never counted, room left: a true 0. */
	assert_int_equal(shm_mstats_acme_get(&w, "c.test", &fail, &ren), 0);
	assert_true(fail == 0 && ren == 0);
	assert_true(shm_name_key("") != 0);
	assert_true(shm_name_key("a.test") != shm_name_key("b.test"));
	/* Full: a new name is not counted, the known ones still are. */
	for (i = 2; i < SHM_ACME_STATS_MAX; i++) {
		snprintf(name, sizeof(name), "n%u.test", i);
		assert_int_equal(shm_mstats_acme(&f->s, name, 0), 0);
	}
	assert_int_equal(shm_mstats_acme(&f->s, "late.test", 0), -1);
	/* No row, the table full: no number (0 would be a lie). */
	assert_int_equal(shm_mstats_acme_get(&w, "late.test", &fail, &ren),
	    -1);
	assert_int_equal(shm_mstats_acme(&f->s, "a.test", 0), 0);
	assert_int_equal(shm_mstats_acme_get(&w, "a.test", &fail, &ren), 0);
	assert_true(fail == 3 && ren == 1);
	shm_close(&w);
}

int
main(void)
{
#define T(name)	cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_create_layout),
		T(test_two_keys_differ),
		T(test_nothing_published),
		T(test_publish_alternates),
		T(test_publish_too_large),
		T(test_ticket_keys_in_slots),
		T(test_counters),
		T(test_stats),
		T(test_layout_is_our_own),
		T(test_counters_json_saturates),
		T(test_counters_json_all_max),
		T(test_publish_by_own_layout),
		T(test_readonly_descriptor),
		T(test_seals),
		T(test_config_part_write_sealed),
		T(test_attach_same_process),
		T(test_attach_in_child),
		T(test_readonly_cannot_be_reopened_writable),
		T(test_attach_good_copy),
		T(test_attach_corrupt_config),
		T(test_attach_corrupt_state),
		T(test_mstats),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
