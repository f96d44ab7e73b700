/*
 * shm.c - the shared-memory segment (see shm.h).
 */
#include "autoconf.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>

#include "connlimit.h"
#include "shm.h"
#include "upstate.h"
#include "util.h"

#define PAGE		4096
#define PAGE_ROUND(n)	(((n) + (PAGE - 1)) & ~(size_t)(PAGE - 1))
#define CFG_HDR_SIZE	PAGE_ROUND(sizeof(struct shm_config_hdr))
/* The stats (struct shm_mstats) keep the config header one page. */
_Static_assert(sizeof(struct shm_config_hdr) <= PAGE, "config header");
#define STATE_HDR_SIZE	PAGE_ROUND(sizeof(struct shm_state_hdr))
#define COUNTERS_SIZE	PAGE_ROUND(SHM_MAX_WORKERS * sizeof(struct shm_counters))
#define STATS_SIZE	PAGE_ROUND(SHM_MAX_WORKERS * sizeof(struct shm_stats))
#define UPSTATE_SIZE	upstate_bytes()
#define CONNLIMIT_SIZE	connlimit_bytes()

/*
 * The layout follows from the sizes of the two parts alone, so that the
 * master and a worker compute it alike and neither needs the headers for
 * it.  -1 for a size no shm_create() makes.
 */
static int
config_layout(size_t size, struct shm_layout *l)
{
	if (size < CFG_HDR_SIZE || (size - CFG_HDR_SIZE) % (2 * PAGE) != 0)
		return -1;
	l->slot_size = (size - CFG_HDR_SIZE) / 2;
	l->slot_off[0] = CFG_HDR_SIZE;
	l->slot_off[1] = CFG_HDR_SIZE + l->slot_size;
	return 0;
}

static int
state_layout(size_t size, struct shm_layout *l)
{
	if (size < STATE_HDR_SIZE + COUNTERS_SIZE + STATS_SIZE +
	    UPSTATE_SIZE + CONNLIMIT_SIZE || size % PAGE != 0)
		return -1;
	l->counters_off = STATE_HDR_SIZE;
	l->max_workers = SHM_MAX_WORKERS;
	l->stats_off = STATE_HDR_SIZE + COUNTERS_SIZE;
	l->upstate_off = l->stats_off + STATS_SIZE;
	l->upstate_size = UPSTATE_SIZE;
	l->connlimit_off = l->upstate_off + UPSTATE_SIZE;
	l->connlimit_size = CONNLIMIT_SIZE;
	l->ratelimit_off = l->connlimit_off + CONNLIMIT_SIZE;
	l->ratelimit_size = size - l->ratelimit_off;
	return 0;
}

static int
memfd_sized(const char *name, size_t size)
{
	int fd;

	fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd == -1)
		return -1;
	/* Sealed: a worker can neither shrink it (SIGBUS for all) nor grow it. */
	if (ftruncate(fd, (off_t)size) == -1 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

static int
create_config_part(struct shm *s, size_t slot_size)
{
	struct shm_config_hdr *h;

	if (slot_size > (SIZE_MAX - 2 * PAGE - CFG_HDR_SIZE) / 2) {
		errno = EFBIG;
		return -1;
	}
	s->cfg_size = CFG_HDR_SIZE + 2 * PAGE_ROUND(slot_size);
	if (config_layout(s->cfg_size, &s->lay) == -1)
		return -1;
	if ((s->cfg_fd = memfd_sized("portcullis-config", s->cfg_size)) == -1)
		return -1;
	h = mmap(NULL, s->cfg_size, PROT_READ | PROT_WRITE, MAP_SHARED,
	    s->cfg_fd, 0);
	if (h == MAP_FAILED)
		return -1;
	s->cfg = h;
	/*
	 * From now on only this mapping may write: no new writable mapping
	 * and no write(2), whatever descriptor a worker manages to get (even
	 * one reopened O_RDWR through /proc), and only the owner may open it.
	 */
	if (fchmod(s->cfg_fd, 0400) == -1 ||
	    fcntl(s->cfg_fd, F_ADD_SEALS, F_SEAL_FUTURE_WRITE) == -1)
		return -1;
	h->magic = SHM_MAGIC;
	h->version = SHM_LAYOUT_VERSION;
	h->size = s->cfg_size;
	h->slot_size = s->lay.slot_size;
	h->slot_off[0] = s->lay.slot_off[0];
	h->slot_off[1] = s->lay.slot_off[1];
	if (gnutls_rnd(GNUTLS_RND_KEY, h->sticky_key, sizeof(h->sticky_key))
	    < 0 || gnutls_rnd(GNUTLS_RND_KEY, h->connlimit_key,
	    sizeof(h->connlimit_key)) < 0)
		return -1;
	return 0;
}

static int
seal_seals(int fd)
{
	return fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL);
}

/* The state header as shm_create() writes it, from our own layout. */
static void
state_hdr_of(const struct shm *s, struct shm_state_hdr *h)
{
	memset(h, 0, sizeof(*h));
	h->magic = SHM_MAGIC;
	h->version = SHM_LAYOUT_VERSION;
	h->size = s->state_size;
	h->counters_off = s->lay.counters_off;
	h->max_workers = s->lay.max_workers;
	h->upstate_off = s->lay.upstate_off;
	h->upstate_size = s->lay.upstate_size;
	h->connlimit_off = s->lay.connlimit_off;
	h->connlimit_size = s->lay.connlimit_size;
	h->ratelimit_off = s->lay.ratelimit_off;
	h->ratelimit_size = s->lay.ratelimit_size;
	h->stats_off = s->lay.stats_off;
}

static int
create_state_part(struct shm *s, size_t ratelimit_size)
{
	struct shm_state_hdr *h;

	if (ratelimit_size > SIZE_MAX - PAGE - STATE_HDR_SIZE - COUNTERS_SIZE -
	    STATS_SIZE - UPSTATE_SIZE - CONNLIMIT_SIZE) {
		errno = EFBIG;
		return -1;
	}
	s->state_size = STATE_HDR_SIZE + COUNTERS_SIZE + STATS_SIZE +
	    UPSTATE_SIZE +
	    CONNLIMIT_SIZE + PAGE_ROUND(ratelimit_size);
	if (state_layout(s->state_size, &s->lay) == -1)
		return -1;
	if ((s->state_fd = memfd_sized("portcullis-state", s->state_size))
	    == -1)
		return -1;
	h = mmap(NULL, s->state_size, PROT_READ | PROT_WRITE, MAP_SHARED,
	    s->state_fd, 0);
	if (h == MAP_FAILED)
		return -1;
	s->state = h;
	state_hdr_of(s, h);
	return 0;
}

int
shm_create(struct shm *s, size_t slot_size, size_t ratelimit_size)
{
	memset(s, 0, sizeof(*s));
	s->cfg_fd = s->state_fd = -1;
	if (create_config_part(s, slot_size) == -1 ||
	    create_state_part(s, ratelimit_size) == -1 ||
	    seal_seals(s->cfg_fd) == -1 || seal_seals(s->state_fd) == -1) {
		shm_close(s);
		return -1;
	}
	return 0;
}

int
shm_config_fd_readonly(const struct shm *s)
{
	char path[64];

	/* A memfd reopened O_RDONLY can never be mapped writable. */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", s->cfg_fd);
	return open(path, O_RDONLY | O_CLOEXEC);
}

int
shm_publish(struct shm *s, const void *image, size_t len, uint64_t gen,
    const unsigned char *tk, size_t tklen)
{
	struct shm_config_hdr *h = s->cfg;
	unsigned idx = (unsigned)(gen & 1);
	struct shm_slot *slot = &h->slot[idx];

	if (len > s->lay.slot_size || tklen > sizeof(slot->ticket_key)) {
		errno = EFBIG;
		return -1;
	}
	/* Empty the slot first, so a reader that raced us sees a mismatch. */
	atomic_store_explicit(&slot->generation, 0, memory_order_release);
	memcpy((unsigned char *)h + s->lay.slot_off[idx], image, len);
	slot->len = len;
	gnutls_memset(slot->ticket_key, 0, sizeof(slot->ticket_key));
	if (tklen > 0)
		memcpy(slot->ticket_key, tk, tklen);
	slot->ticket_key_len = (uint32_t)tklen;
	atomic_store_explicit(&slot->generation, gen, memory_order_release);
	atomic_store_explicit(&h->generation, gen, memory_order_release);
	return 0;
}

void
shm_retire_other(struct shm *s, uint64_t gen)
{
	struct shm_slot *slot = &s->cfg->slot[(gen + 1) & 1];

	if (atomic_load_explicit(&slot->generation, memory_order_acquire) ==
	    0 && slot->ticket_key_len == 0)
		return;
	atomic_store_explicit(&slot->generation, 0, memory_order_release);
	gnutls_memset(slot->ticket_key, 0, sizeof(slot->ticket_key));
	slot->ticket_key_len = 0;
}

uint64_t
shm_generation(const struct shm *s)
{
	return atomic_load_explicit(&s->cfg->generation, memory_order_acquire);
}

/* The headers must say what the sizes imply: anything else is not ours. */
static int
check_config_hdr(const struct shm_config_hdr *h, size_t size,
    const struct shm_layout *l)
{
	if (h->magic != SHM_MAGIC || h->version != SHM_LAYOUT_VERSION ||
	    h->size != size || h->slot_size != l->slot_size ||
	    h->slot_off[0] != l->slot_off[0] ||
	    h->slot_off[1] != l->slot_off[1])
		return -1;
	return 0;
}

static int
state_hdr_matches(const struct shm *s)
{
	struct shm_state_hdr want;

	state_hdr_of(s, &want);
	return memcmp(s->state, &want, sizeof(want)) == 0;
}

static void *
map_fd(int fd, int prot, size_t *size)
{
	struct stat st;
	void *p;

	if (fstat(fd, &st) == -1 || st.st_size < 4096)
		return NULL;
	*size = (size_t)st.st_size;
	p = mmap(NULL, *size, prot, MAP_SHARED, fd, 0);
	return p == MAP_FAILED ? NULL : p;
}

int
shm_attach(struct shm *s, int cfg_fd, int state_fd)
{
	memset(s, 0, sizeof(*s));
	s->cfg_fd = cfg_fd;
	s->state_fd = state_fd;
	s->cfg = map_fd(cfg_fd, PROT_READ, &s->cfg_size);
	s->state = map_fd(state_fd, PROT_READ | PROT_WRITE, &s->state_size);
	if (s->cfg == NULL || s->state == NULL ||
	    config_layout(s->cfg_size, &s->lay) == -1 ||
	    state_layout(s->state_size, &s->lay) == -1 ||
	    check_config_hdr(s->cfg, s->cfg_size, &s->lay) == -1 ||
	    !state_hdr_matches(s)) {
		errno = EINVAL;
		return -1;
	}
	return 0;
}

int
shm_copy_image(const struct shm *s, uint64_t gen, unsigned char **out,
    size_t *len, uint64_t *got_gen, unsigned char *tk, size_t *tklen)
{
	const struct shm_config_hdr *h = s->cfg;
	const struct shm_slot *slot;
	unsigned char *buf;
	uint64_t n;
	uint32_t k;

	if (gen == 0)
		gen = shm_generation(s);
	if (gen == 0)
		return -1;
	slot = &h->slot[gen & 1];
	if (atomic_load_explicit(&slot->generation, memory_order_acquire)
	    != gen)
		return -1;
	n = slot->len;
	k = slot->ticket_key_len;
	if (n == 0 || n > s->lay.slot_size || k > sizeof(slot->ticket_key) ||
	    (buf = malloc(n)) == NULL)
		return -1;
	memcpy(buf, (const unsigned char *)h + s->lay.slot_off[gen & 1], n);
	if (tk != NULL)
		memcpy(tk, slot->ticket_key, k);
	/* The master rewrote the slot meanwhile: the copy may be torn. */
	if (atomic_load_explicit(&slot->generation, memory_order_acquire)
	    != gen) {
		explicit_bzero(buf, n);
		free(buf);
		if (tk != NULL)
			gnutls_memset(tk, 0, SHM_TICKET_KEY_MAX);
		return -1;
	}
	if (tklen != NULL)
		*tklen = k;
	*out = buf;
	*len = n;
	*got_gen = gen;
	return 0;
}

struct shm_counters *
shm_counters(const struct shm *s, unsigned worker)
{
	if (worker >= s->lay.max_workers)
		return NULL;
	return (struct shm_counters *)((unsigned char *)s->state +
	    s->lay.counters_off) + worker;
}

struct shm_stats *
shm_stats(const struct shm *s, unsigned worker)
{
	if (worker >= s->lay.max_workers)
		return NULL;
	return (struct shm_stats *)((unsigned char *)s->state +
	    s->lay.stats_off) + worker;
}

void *
shm_ratelimit(const struct shm *s, size_t *size)
{
	*size = s->lay.ratelimit_size;
	return (unsigned char *)s->state + s->lay.ratelimit_off;
}

void *
shm_connlimit(const struct shm *s, size_t *size)
{
	*size = s->lay.connlimit_size;
	return (unsigned char *)s->state + s->lay.connlimit_off;
}

void *
shm_upstate(const struct shm *s, size_t *size)
{
	*size = s->lay.upstate_size;
	return (unsigned char *)s->state + s->lay.upstate_off;
}

int
shm_state_repair(struct shm *s)
{
	if (state_hdr_matches(s))
		return 0;
	state_hdr_of(s, s->state);
	return 1;
}

/* The fields of one set of counters, in the order status reports them. */
#define COUNTER_FIELDS(X)						\
	X(requests) X(rate_limited) X(active_connections) X(bytes_in)	\
	X(bytes_out) X(errors)

struct counter_sums {
#define SUM_FIELD(f)	uint64_t f;
	COUNTER_FIELDS(SUM_FIELD)
#undef SUM_FIELD
};

/* Workers write the counters: a sum that would wrap stays at the top. */
static uint64_t
sat_add(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static int
counters_add(char *buf, size_t sz, size_t *off, const struct counter_sums *c)
{
	int n;

	n = snprintf(buf + *off, sz - *off, "\"requests\":%llu,"
	    "\"rate_limited\":%llu,\"active_connections\":%llu,"
	    "\"bytes_in\":%llu,\"bytes_out\":%llu,\"errors\":%llu",
	    (unsigned long long)c->requests,
	    (unsigned long long)c->rate_limited,
	    (unsigned long long)c->active_connections,
	    (unsigned long long)c->bytes_in, (unsigned long long)c->bytes_out,
	    (unsigned long long)c->errors);
	if (n < 0 || (size_t)n >= sz - *off)
		return -1;
	*off += (size_t)n;
	return 0;
}

static int
json_add(char *buf, size_t sz, size_t *off, const char *text)
{
	size_t n = strlen(text);

	if (n >= sz - *off)
		return -1;
	memcpy(buf + *off, text, n + 1);
	*off += n;
	return 0;
}

char *
shm_counters_json(const struct shm *s, unsigned nworkers)
{
	struct counter_sums total, one;
	struct shm_counters *k;
	size_t sz, off = 0;
	char *buf, head[64];
	unsigned i;
	int rc = 0;

	nworkers = MINIMUM(nworkers, s->lay.max_workers);
	sz = 256 + (size_t)nworkers * 256;
	if ((buf = malloc(sz)) == NULL)
		return NULL;
	memset(&total, 0, sizeof(total));
	rc |= json_add(buf, sz, &off, "\"worker_counters\":[");
	for (i = 0; i < nworkers; i++) {
		k = shm_counters(s, i);
#define READ_FIELD(f)	one.f = atomic_load(&k->f);			\
		total.f = sat_add(total.f, one.f);
		COUNTER_FIELDS(READ_FIELD)
#undef READ_FIELD
		snprintf(head, sizeof(head), "%s{\"worker\":%u,\"pid\":%llu,",
		    i > 0 ? "," : "", i, (unsigned long long)atomic_load(&k->pid));
		rc |= json_add(buf, sz, &off, head);
		rc |= counters_add(buf, sz, &off, &one);
		rc |= json_add(buf, sz, &off, "}");
	}
	rc |= json_add(buf, sz, &off, "],\"counters\":{");
	rc |= counters_add(buf, sz, &off, &total);
	rc |= json_add(buf, sz, &off, "}");
	if (rc != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* ---- master-side stats ---- */

uint64_t
shm_name_key(const char *name)
{
	const unsigned char *p;
	uint64_t h = 0xcbf29ce484222325ULL;	/* FNV-1a */

	for (p = (const unsigned char *)name; *p != '\0'; p++) {
		h ^= *p;
		h *= 0x100000001b3ULL;
	}
	return h == 0 ? 1 : h;
}

const struct shm_mstats *
shm_mstats(const struct shm *s)
{
	return &s->cfg->stats;
}

void
shm_mstats_reload(struct shm *s, int ok)
{
	atomic_fetch_add_explicit(ok ? &s->cfg->stats.reloads_ok :
	    &s->cfg->stats.reloads_failed, 1, memory_order_relaxed);
}

void
shm_mstats_restart(struct shm *s, enum shm_proc p, enum shm_cause c)
{
	if ((unsigned)p >= SHM_PROCS || (unsigned)c >= SHM_CAUSES)
		return;
	atomic_fetch_add_explicit(&s->cfg->stats.restarts[p][c], 1,
	    memory_order_relaxed);
}

/* name's entry, or NULL with *full set if every entry is taken. */
static const struct shm_acme_stat *
acme_stat_find(const struct shm_mstats *st, uint64_t key, bool *full)
{
	size_t i;
	uint64_t k;

	*full = false;
	for (i = 0; i < SHM_ACME_STATS_MAX; i++) {
		k = atomic_load_explicit(&st->acme[i].key,
		    memory_order_acquire);
		if (k == key)
			return &st->acme[i];
		if (k == 0)
			return NULL;	/* taken in order, never freed */
	}
	*full = true;
	return NULL;
}

int
shm_mstats_acme(struct shm *s, const char *name, int ok)
{
	struct shm_mstats *st = &s->cfg->stats;
	struct shm_acme_stat *a;
	uint64_t key = shm_name_key(name);
	size_t i;

	for (i = 0; i < SHM_ACME_STATS_MAX; i++) {
		a = &st->acme[i];
		if (atomic_load_explicit(&a->key, memory_order_relaxed) == 0) {
			/* A new entry: zero counts, then the key. */
			atomic_store_explicit(&a->failures, 0,
			    memory_order_relaxed);
			atomic_store_explicit(&a->renewals, 0,
			    memory_order_relaxed);
			atomic_store_explicit(&a->key, key,
			    memory_order_release);
		} else if (atomic_load_explicit(&a->key,
		    memory_order_relaxed) != key)
			continue;
		atomic_fetch_add_explicit(ok ? &a->renewals : &a->failures,
		    1, memory_order_relaxed);
		return 0;
	}
	return -1;
}

int
shm_mstats_acme_get(const struct shm *s, const char *name,
    uint64_t *failures, uint64_t *renewals)
{
	const struct shm_acme_stat *a;
	bool full;

	*failures = *renewals = 0;
	if ((a = acme_stat_find(&s->cfg->stats, shm_name_key(name),
	    &full)) == NULL)
		return full ? -1 : 0;
	*failures = atomic_load_explicit(&a->failures, memory_order_relaxed);
	*renewals = atomic_load_explicit(&a->renewals, memory_order_relaxed);
	return 0;
}

void
shm_close(struct shm *s)
{
	if (s->cfg != NULL)
		munmap(s->cfg, s->cfg_size);
	if (s->state != NULL)
		munmap(s->state, s->state_size);
	if (s->cfg_fd != -1)
		close(s->cfg_fd);
	if (s->state_fd != -1)
		close(s->state_fd);
	memset(s, 0, sizeof(*s));
	s->cfg_fd = s->state_fd = -1;
}
