/*
 * shm.c - the shared-memory segment (see shm.h).
 */
#include "autoconf.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gnutls/gnutls.h>

#include "shm.h"
#include "util.h"

#define PAGE_ROUND(n)	(((n) + 4095) & ~(size_t)4095)

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
make_ticket_key(struct shm_config_hdr *h)
{
	gnutls_datum_t key = { NULL, 0 };

	if (gnutls_session_ticket_key_generate(&key) < 0)
		return -1;
	if (key.size > sizeof(h->ticket_key)) {
		gnutls_memset(key.data, 0, key.size);
		gnutls_free(key.data);
		return -1;
	}
	memcpy(h->ticket_key, key.data, key.size);
	h->ticket_key_len = key.size;
	gnutls_memset(key.data, 0, key.size);
	gnutls_free(key.data);
	return 0;
}

static int
create_config_part(struct shm *s, size_t slot_size)
{
	size_t hdr = PAGE_ROUND(sizeof(struct shm_config_hdr));
	struct shm_config_hdr *h;

	slot_size = PAGE_ROUND(slot_size);
	s->cfg_size = hdr + 2 * slot_size;
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
	h->slot_size = slot_size;
	h->slot_off[0] = hdr;
	h->slot_off[1] = hdr + slot_size;
	return make_ticket_key(h);
}

static int
seal_seals(int fd)
{
	return fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL);
}

static int
create_state_part(struct shm *s, size_t ratelimit_size)
{
	size_t hdr = PAGE_ROUND(sizeof(struct shm_state_hdr));
	size_t counters = PAGE_ROUND(SHM_MAX_WORKERS *
	    sizeof(struct shm_counters));
	struct shm_state_hdr *h;

	s->state_size = hdr + counters + PAGE_ROUND(ratelimit_size);
	if ((s->state_fd = memfd_sized("portcullis-state", s->state_size))
	    == -1)
		return -1;
	h = mmap(NULL, s->state_size, PROT_READ | PROT_WRITE, MAP_SHARED,
	    s->state_fd, 0);
	if (h == MAP_FAILED)
		return -1;
	s->state = h;
	h->magic = SHM_MAGIC;
	h->version = SHM_LAYOUT_VERSION;
	h->size = s->state_size;
	h->counters_off = hdr;
	h->max_workers = SHM_MAX_WORKERS;
	h->ratelimit_off = hdr + counters;
	h->ratelimit_size = PAGE_ROUND(ratelimit_size);
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
shm_publish(struct shm *s, const void *image, size_t len, uint64_t gen)
{
	struct shm_config_hdr *h = s->cfg;
	unsigned idx = (unsigned)(gen & 1);
	struct shm_slot *slot = &h->slot[idx];

	if (len > h->slot_size) {
		errno = EFBIG;
		return -1;
	}
	/* Empty the slot first, so a reader that raced us sees a mismatch. */
	atomic_store_explicit(&slot->generation, 0, memory_order_release);
	memcpy((unsigned char *)h + h->slot_off[idx], image, len);
	slot->len = len;
	atomic_store_explicit(&slot->generation, gen, memory_order_release);
	atomic_store_explicit(&h->generation, gen, memory_order_release);
	return 0;
}

uint64_t
shm_generation(const struct shm *s)
{
	return atomic_load_explicit(&s->cfg->generation, memory_order_acquire);
}

static int
check_config_hdr(const struct shm_config_hdr *h, size_t size)
{
	size_t hdr = PAGE_ROUND(sizeof(*h));

	if (h->magic != SHM_MAGIC || h->version != SHM_LAYOUT_VERSION ||
	    h->size != size || h->slot_off[0] != hdr ||
	    h->slot_size > (size - hdr) / 2 ||
	    h->slot_off[1] != hdr + h->slot_size ||
	    h->ticket_key_len > sizeof(h->ticket_key))
		return -1;
	return 0;
}

static int
check_state_hdr(const struct shm_state_hdr *h, size_t size)
{
	if (h->magic != SHM_MAGIC || h->version != SHM_LAYOUT_VERSION ||
	    h->size != size || h->max_workers > SHM_MAX_WORKERS ||
	    h->counters_off > size ||
	    h->counters_off % _Alignof(struct shm_counters) != 0 ||
	    h->max_workers >
	    (size - h->counters_off) / sizeof(struct shm_counters) ||
	    h->ratelimit_off > size ||
	    h->ratelimit_size > size - h->ratelimit_off)
		return -1;
	return 0;
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
	    check_config_hdr(s->cfg, s->cfg_size) == -1 ||
	    check_state_hdr(s->state, s->state_size) == -1) {
		errno = EINVAL;
		return -1;
	}
	return 0;
}

int
shm_copy_image(const struct shm *s, uint64_t gen, unsigned char **out,
    size_t *len, uint64_t *got_gen)
{
	const struct shm_config_hdr *h = s->cfg;
	const struct shm_slot *slot;
	unsigned char *buf;
	uint64_t n;

	if (gen == 0)
		gen = shm_generation(s);
	if (gen == 0)
		return -1;
	slot = &h->slot[gen & 1];
	if (atomic_load_explicit(&slot->generation, memory_order_acquire)
	    != gen)
		return -1;
	n = slot->len;
	if (n == 0 || n > h->slot_size || (buf = malloc(n)) == NULL)
		return -1;
	memcpy(buf, (const unsigned char *)h + h->slot_off[gen & 1], n);
	/* The master rewrote the slot meanwhile: the copy may be torn. */
	if (atomic_load_explicit(&slot->generation, memory_order_acquire)
	    != gen) {
		explicit_bzero(buf, n);
		free(buf);
		return -1;
	}
	*out = buf;
	*len = n;
	*got_gen = gen;
	return 0;
}

struct shm_counters *
shm_counters(const struct shm *s, unsigned worker)
{
	if (worker >= s->state->max_workers)
		return NULL;
	return (struct shm_counters *)((unsigned char *)s->state +
	    s->state->counters_off) + worker;
}

void *
shm_ratelimit(const struct shm *s, size_t *size)
{
	*size = s->state->ratelimit_size;
	return (unsigned char *)s->state + s->state->ratelimit_off;
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

	nworkers = MINIMUM(nworkers, s->state->max_workers);
	sz = 256 + (size_t)nworkers * 256;
	if ((buf = malloc(sz)) == NULL)
		return NULL;
	memset(&total, 0, sizeof(total));
	rc |= json_add(buf, sz, &off, "\"worker_counters\":[");
	for (i = 0; i < nworkers; i++) {
		k = shm_counters(s, i);
#define READ_FIELD(f)	one.f = atomic_load(&k->f); total.f += one.f;
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
