/*
 * connlimit.c - connections per client, across all workers (see
 * connlimit.h).
 */
#include "autoconf.h"

#include <string.h>
#include <time.h>

#include "config.h"
#include "connlimit.h"
#include "log.h"
#include "util.h"

#define PAGE		4096
#define ENTRIES_BYTES	((size_t)CONNLIMIT_ENTRIES * sizeof(uint64_t))
#define CELLS_BYTES	((size_t)CONNLIMIT_CELLS * sizeof(uint64_t))
#define ROW_BYTES	((size_t)CONNLIMIT_ENTRIES * sizeof(int32_t))
#define COUNT_MASK	((UINT64_C(1) << CONNLIMIT_COUNT_BITS) - 1)
#define HASH_MASK	((UINT64_C(1) << CONNLIMIT_HASH_BITS) - 1)
#define STAMP_MASK	COUNT_MASK

size_t
connlimit_bytes(void)
{
	size_t n = ENTRIES_BYTES + CELLS_BYTES +
	    (size_t)CONFIG_MAX_WORKERS * ROW_BYTES;

	return (n + PAGE - 1) / PAGE * PAGE;
}

void
connlimit_attach(struct connlimit *c, void *mem, size_t size,
    unsigned max_workers, unsigned worker,
    const unsigned char key[CONNLIMIT_KEY_LEN])
{
	unsigned char *p = mem;

	if (size < connlimit_bytes() || max_workers > CONFIG_MAX_WORKERS)
		fatalx("connlimit: table too small");
	memset(c, 0, sizeof(*c));
	c->e = (_Atomic uint64_t *)p;
	c->cells = (_Atomic uint64_t *)(p + ENTRIES_BYTES);
	c->rows = (_Atomic int32_t *)(p + ENTRIES_BYTES + CELLS_BYTES);
	c->max_workers = max_workers;
	c->worker = worker < max_workers ? worker : UINT32_MAX;
	memcpy(c->key, key, sizeof(c->key));
}

uint64_t
connlimit_hash(const struct connlimit *c, size_t li,
    const struct sockaddr *peer)
{
	unsigned char buf[UTIL_CLIENT_KEY_MAX + 4];
	size_t len;
	uint64_t h;

	if ((len = util_client_key(peer, buf + 4)) == 0)
		return 0;
	buf[0] = (unsigned char)(li >> 24);
	buf[1] = (unsigned char)(li >> 16);
	buf[2] = (unsigned char)(li >> 8);
	buf[3] = (unsigned char)li;
	h = util_siphash(c->key, buf, len + 4) >> CONNLIMIT_COUNT_BITS;
	return h != 0 ? h : 1;		/* 0 marks a word never used */
}

static uint64_t
word_hash(uint64_t w)
{
	return w >> CONNLIMIT_COUNT_BITS;
}

static uint64_t
word_count(uint64_t w)
{
	return w & COUNT_MASK;
}

static uint64_t
word(uint64_t hash, uint64_t count)
{
	return (hash & HASH_MASK) << CONNLIMIT_COUNT_BITS | (count & COUNT_MASK);
}

static _Atomic int32_t *
share(const struct connlimit *c, unsigned worker, uint32_t entry)
{
	return &c->rows[(size_t)worker * CONNLIMIT_ENTRIES + entry];
}

static uint32_t
window_at(uint64_t hash, unsigned i)
{
	return (uint32_t)((hash + i) % CONNLIMIT_ENTRIES);
}

/*
 * The entry of hash: the one of its window that holds it with connections
 * counted; else the first whose count is 0, taken by compare-and-swap (two
 * workers racing for a new key both go for the same first free entry, and
 * the loser finds the key there).  UINT32_MAX if none is free.
 */
static uint32_t
find_entry(struct connlimit *c, uint64_t hash)
{
	uint64_t w;
	uint32_t at;
	unsigned i;

	for (i = 0; i < CONNLIMIT_WINDOW; i++) {
		w = atomic_load(&c->e[window_at(hash, i)]);
		if (word_hash(w) == hash && word_count(w) > 0)
			return window_at(hash, i);
	}
	for (i = 0; i < CONNLIMIT_WINDOW; i++) {
		at = window_at(hash, i);
		w = atomic_load(&c->e[at]);
		for (;;) {
			if (word_hash(w) == hash)
				return at;
			if (word_count(w) != 0)
				break;
			if (atomic_compare_exchange_weak(&c->e[at], &w,
			    word(hash, 0)))
				return at;
		}
	}
	return UINT32_MAX;
}

/* This worker's share of entry at moves by d (the master's handle has
   no row). */
static void
share_add(struct connlimit *c, uint32_t at, int32_t d)
{
	if (c->worker != UINT32_MAX)
		atomic_fetch_add(share(c, c->worker, at), d);
}

/*
 * A worker's share is never less than what it has in the count: it goes
 * up before the count does and down after, so a worker killed in between
 * leaves one too few counted (the master takes back the share), never one
 * too many that would cap the client for good.
 */
enum connlimit_verdict
connlimit_take(struct connlimit *c, uint64_t hash, unsigned max,
    struct connlimit_ticket *t)
{
	uint32_t at;
	uint64_t w;

	t->hash = 0;
	t->entry = 0;
	if (hash == 0)
		return CONNLIMIT_UNCOUNTED;
	for (;;) {
		if ((at = find_entry(c, hash)) == UINT32_MAX)
			return CONNLIMIT_UNCOUNTED;
		share_add(c, at, 1);
		w = atomic_load(&c->e[at]);
		/* Checked before counting: a refusal never counts, even for
		   a moment another connection of the key could see. */
		while (word_hash(w) == hash) {
			if (word_count(w) >= max || word_count(w) >= COUNT_MASK) {
				share_add(c, at, -1);
				return CONNLIMIT_REFUSED;
			}
			if (atomic_compare_exchange_weak(&c->e[at], &w,
			    word(hash, word_count(w) + 1))) {
				t->hash = hash;
				t->entry = at;
				return CONNLIMIT_COUNTED;
			}
		}
		/* Taken over by another key between the two: look again. */
		share_add(c, at, -1);
	}
}

void
connlimit_release(struct connlimit *c, struct connlimit_ticket *t)
{
	uint64_t w;

	if (t->hash == 0 || t->entry >= CONNLIMIT_ENTRIES)
		return;
	w = atomic_load(&c->e[t->entry]);
	/* Another key's now only if the master took ours back meanwhile. */
	while (word_hash(w) == t->hash && word_count(w) > 0 &&
	    !atomic_compare_exchange_weak(&c->e[t->entry], &w,
	    word(t->hash, word_count(w) - 1)))
		;
	share_add(c, t->entry, -1);
	t->hash = 0;
}

unsigned
connlimit_count(const struct connlimit *c, uint64_t hash)
{
	uint64_t w;
	unsigned i;

	for (i = 0; i < CONNLIMIT_WINDOW; i++) {
		w = atomic_load(&c->e[window_at(hash, i)]);
		if (word_hash(w) == hash && word_count(w) > 0)
			return (unsigned)word_count(w);
	}
	return 0;
}

bool
connlimit_log_due(struct connlimit *c, uint64_t hash, uint64_t now_s)
{
	_Atomic uint64_t *cell = &c->cells[hash % CONNLIMIT_CELLS];
	uint64_t w = atomic_load(cell);
	uint64_t want = word(hash, now_s);

	for (;;) {
		if (word_hash(w) == hash && w != 0 &&
		    ((now_s - word_count(w)) & STAMP_MASK) < CONNLIMIT_LOG_EVERY)
			return false;
		if (atomic_compare_exchange_weak(cell, &w, want))
			return true;
	}
}

bool
connlimit_full_due(struct connlimit *c, uint64_t now_s)
{
	if (c->full_once && now_s - c->full_logged < CONNLIMIT_LOG_EVERY)
		return false;
	c->full_once = true;
	c->full_logged = now_s;
	return true;
}

void
connlimit_worker_gone(struct connlimit *c, unsigned worker)
{
	_Atomic int32_t *r;
	uint64_t w, n;
	int32_t v;
	uint32_t i;

	if (worker >= c->max_workers)
		return;
	for (i = 0; i < CONNLIMIT_ENTRIES; i++) {
		r = share(c, worker, i);
		if ((v = atomic_exchange(r, 0)) <= 0)
			continue;
		w = atomic_load(&c->e[i]);
		do {
			n = word_count(w);
			n = n > (uint64_t)v ? n - (uint64_t)v : 0;
		} while (!atomic_compare_exchange_weak(&c->e[i], &w,
		    word(word_hash(w), n)));
	}
}

uint64_t
connlimit_now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec;
}
