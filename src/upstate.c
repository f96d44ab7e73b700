/*
 * upstate.c - the shared table of upstream state (see upstate.h).
 */
#include "autoconf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "upstate.h"
#include "upstream.h"
#include "util.h"

#define PAGE		4096
#define ENTRIES_BYTES	(UPSTATE_SLOTS * sizeof(struct upstate_entry))
#define ROW_BYTES	(UPSTATE_SLOTS * sizeof(int32_t))

size_t
upstate_bytes(void)
{
	size_t n = ENTRIES_BYTES + (size_t)CONFIG_MAX_WORKERS * ROW_BYTES;

	return (n + PAGE - 1) / PAGE * PAGE;
}

void
upstate_attach(struct upstate *u, void *mem, size_t size,
    unsigned max_workers, unsigned worker)
{
	if (size < upstate_bytes() || max_workers > CONFIG_MAX_WORKERS)
		fatalx("upstate: table too small");
	u->e = mem;
	u->rows = (_Atomic int32_t *)((unsigned char *)mem + ENTRIES_BYTES);
	u->max_workers = max_workers;
	u->worker = worker < max_workers ? worker : UINT32_MAX;
}

uint64_t
upstate_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static struct upstate_entry *
entry(const struct upstate *u, uint32_t slot)
{
	if (slot >= UPSTATE_SLOTS)
		fatalx("upstate: slot %u out of range", slot);
	return &u->e[slot];
}

/*
 * What the table says of slot for a request at now: NO (its check says
 * down, or it is passively down), YES, or TRIAL (its down time is over:
 * one request may try it; *until is the time that ended).  The first
 * steps of upstate_usable and upstate_claim, which differ only there.
 */
static enum upstate_use
gate(const struct upstate_entry *e, const struct config_backend *be,
    uint64_t now, uint64_t *until)
{
	if (be->health.on && atomic_load_explicit(&e->checked,
	    memory_order_relaxed) == UPSTATE_CHECK_DOWN)
		return UPSTATE_NO;
	if (be->max_fails == 0)
		return UPSTATE_YES;
	*until = atomic_load_explicit(&e->down_until, memory_order_relaxed);
	if (*until == 0)
		return UPSTATE_YES;
	return now < *until ? UPSTATE_NO : UPSTATE_TRIAL;
}

bool
upstate_usable(const struct upstate *u, const struct config_backend *be,
    uint32_t slot, uint64_t now)
{
	uint64_t until;

	return gate(entry(u, slot), be, now, &until) != UPSTATE_NO;
}

enum upstate_use
upstate_claim(struct upstate *u, const struct config_backend *be,
    uint32_t slot, uint64_t now)
{
	struct upstate_entry *e = entry(u, slot);
	uint64_t until = 0, next;
	enum upstate_use g = gate(e, be, now, &until);

	if (g != UPSTATE_TRIAL)
		return g;
	/* One worker's request wins the trial: the others see the next
	   down time. */
	next = now + (uint64_t)be->fail_timeout * 1000;
	return atomic_compare_exchange_strong(&e->down_until, &until, next) ?
	    UPSTATE_TRIAL : UPSTATE_NO;
}

uint64_t
upstate_inflight(const struct upstate *u, uint32_t slot)
{
	int64_t v = atomic_load_explicit(&entry(u, slot)->inflight,
	    memory_order_relaxed);

	return v > 0 ? (uint64_t)v : 0;
}

static _Atomic int32_t *
row(const struct upstate *u, unsigned worker, uint32_t slot)
{
	return &u->rows[(size_t)worker * UPSTATE_SLOTS + slot];
}

void
upstate_begin(struct upstate *u, uint32_t slot)
{
	struct upstate_entry *e = entry(u, slot);

	atomic_fetch_add_explicit(&e->inflight, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&e->requests, 1, memory_order_relaxed);
	if (u->worker != UINT32_MAX)
		atomic_fetch_add_explicit(row(u, u->worker, slot), 1,
		    memory_order_relaxed);
}

void
upstate_end(struct upstate *u, uint32_t slot)
{
	struct upstate_entry *e = entry(u, slot);

	atomic_fetch_sub_explicit(&e->inflight, 1, memory_order_relaxed);
	if (u->worker != UINT32_MAX)
		atomic_fetch_sub_explicit(row(u, u->worker, slot), 1,
		    memory_order_relaxed);
}

bool
upstate_fail(struct upstate *u, const struct config_backend *be,
    uint32_t slot, uint64_t now)
{
	struct upstate_entry *e = entry(u, slot);
	uint64_t old, until;
	uint32_t f;

	atomic_fetch_add_explicit(&e->failures, 1, memory_order_relaxed);
	f = atomic_fetch_add_explicit(&e->fails, 1, memory_order_relaxed) + 1;
	if (be->max_fails == 0 || f < be->max_fails)
		return false;
	old = atomic_load_explicit(&e->down_until, memory_order_relaxed);
	if (old != 0 && now < old)
		return false;		/* down already */
	until = now + (uint64_t)be->fail_timeout * 1000;
	if (until == 0)
		until = 1;
	/* One worker wins; the rest saw it down or up as they read it. */
	return atomic_compare_exchange_strong(&e->down_until, &old, until) &&
	    old == 0;
}

bool
upstate_ok(struct upstate *u, const struct config_backend *be UNUSED,
    uint32_t slot)
{
	struct upstate_entry *e = entry(u, slot);

	if (atomic_load_explicit(&e->fails, memory_order_relaxed) != 0)
		atomic_store_explicit(&e->fails, 0, memory_order_relaxed);
	if (atomic_load_explicit(&e->down_until, memory_order_relaxed) == 0)
		return false;
	return atomic_exchange(&e->down_until, 0) != 0;
}

uint64_t
upstate_rr(struct upstate *u, const struct config_backend *be)
{
	return atomic_fetch_add_explicit(&entry(u, be->ups[0].slot)->rr, 1,
	    memory_order_relaxed);
}

bool
upstate_check_passed(struct upstate *u, uint32_t slot, uint64_t since,
    unsigned fail_timeout)
{
	struct upstate_entry *e = entry(u, slot);
	uint64_t until, span = (uint64_t)fail_timeout * 1000;

	until = atomic_load_explicit(&e->down_until, memory_order_relaxed);
	if (until == 0 || (until > span ? until - span : 0) > since)
		return false;
	if (!atomic_compare_exchange_strong(&e->down_until, &until, 0))
		return false;
	atomic_store_explicit(&e->fails, 0, memory_order_relaxed);
	return true;
}

unsigned
upstate_check(const struct upstate *u, uint32_t slot)
{
	uint32_t c = atomic_load_explicit(&entry(u, slot)->checked,
	    memory_order_relaxed);

	return c == UPSTATE_CHECK_UP || c == UPSTATE_CHECK_DOWN ? c :
	    UPSTATE_CHECK_NONE;
}

void
upstate_check_set(struct upstate *u, uint32_t slot, unsigned verdict,
    uint64_t now)
{
	struct upstate_entry *e = entry(u, slot);

	atomic_store_explicit(&e->check_changed, now, memory_order_relaxed);
	atomic_store_explicit(&e->checked, verdict, memory_order_relaxed);
}

static void
clear_unchecked(void *arg, const struct config_listener *l UNUSED,
    const struct config_site *site UNUSED,
    const struct config_path *path UNUSED, struct config_backend *be)
{
	struct upstate *u = arg;
	size_t i;

	if (be->health.on)
		return;
	for (i = 0; i < be->nups; i++)
		if (upstate_check(u, be->ups[i].slot) != UPSTATE_CHECK_NONE)
			upstate_check_set(u, be->ups[i].slot,
			    UPSTATE_CHECK_NONE, 0);
}

void
upstate_checks_clear(struct upstate *u, const struct config *cfg)
{
	config_foreach_backend(cfg, clear_unchecked, u);
}

void
upstate_worker_gone(struct upstate *u, unsigned worker)
{
	_Atomic int32_t *r;
	int32_t v;
	uint32_t s;

	if (worker >= u->max_workers)
		return;
	for (s = 0; s < UPSTATE_SLOTS; s++) {
		r = row(u, worker, s);
		if ((v = atomic_exchange(r, 0)) != 0)
			atomic_fetch_sub(&u->e[s].inflight, v);
	}
}

void
upstate_view(const struct upstate *u, const struct config_backend *be,
    uint32_t slot, uint64_t now, struct upstate_view *v)
{
	struct upstate_entry *e = entry(u, slot);
	uint64_t until = atomic_load(&e->down_until);
	uint32_t c = atomic_load(&e->checked);

	v->passive_down = be->max_fails > 0 && until != 0 && now < until;
	v->check = be->health.on && c <= UPSTATE_CHECK_DOWN ? c :
	    UPSTATE_CHECK_NONE;
	v->up = !v->passive_down && v->check != UPSTATE_CHECK_DOWN;
	v->inflight = upstate_inflight(u, slot);
	v->fails = atomic_load(&e->fails);
	v->failures = atomic_load(&e->failures);
	v->requests = atomic_load(&e->requests);
}

/* ---- slot assignment (the master) ---- */

struct slot_key {
	char		*key;
	uint32_t	 slot;
};

struct upstate_alloc {
	struct slot_key	*keys;		/* sorted by key */
	size_t		 nkeys;
	/* Free slots, oldest freed first: a slot a reload frees is given
	   out again as late as can be, as old requests may still end on
	   it. */
	uint32_t	 free[UPSTATE_SLOTS];
	size_t		 free_head;
	size_t		 nfree;
	/* An assignment made, not yet committed. */
	bool		 pending;
	struct slot_key	*pkeys;
	size_t		 npkeys;
	size_t		 pfree_head;
	size_t		 pnfree;
	uint32_t	*preset;	/* slots given out new: reset them */
	size_t		 npreset;
};

struct upstate_alloc *
upstate_alloc_new(void)
{
	struct upstate_alloc *a;
	uint32_t i;

	if ((a = calloc(1, sizeof(*a))) == NULL)
		return NULL;
	for (i = 0; i < UPSTATE_SLOTS; i++)
		a->free[i] = i;
	a->nfree = UPSTATE_SLOTS;
	return a;
}

static void
keys_free(struct slot_key *k, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(k[i].key);
	free(k);
}

void
upstate_alloc_free(struct upstate_alloc *a)
{
	if (a == NULL)
		return;
	upstate_abort(a);
	keys_free(a->keys, a->nkeys);
	free(a);
}

static int
key_cmp(const void *x, const void *y)
{
	const struct slot_key *a = x, *b = y;

	return strcmp(a->key, b->key);
}

char *
upstate_key(const struct config_listener *l, const struct config_site *site,
    const struct config_path *path, const struct config_upstream *up)
{
	char *k;

	if (asprintf(&k, "%s %u\n%s\n%s\n%s", l->bind != NULL ? l->bind : "",
	    l->https_port, site->host, path != NULL ? path->prefix : "",
	    up->name) == -1)
		return NULL;
	return k;
}

struct assign {
	struct upstate_alloc	*a;
	struct slot_key		*keys;	/* the new assignment */
	size_t			 n;
	size_t			 cap;
	bool			 err;
};

static void
collect(void *arg, const struct config_listener *l,
    const struct config_site *site, const struct config_path *path,
    struct config_backend *be)
{
	struct assign *as = arg;
	size_t i;

	for (i = 0; i < be->nups && !as->err; i++) {
		if (as->n == as->cap) {
			as->err = true;
			return;
		}
		if ((as->keys[as->n].key = upstate_key(l, site, path,
		    &be->ups[i])) == NULL) {
			as->err = true;
			return;
		}
		as->keys[as->n].slot = UINT32_MAX;
		as->n++;
	}
}

static void
apply(void *arg, const struct config_listener *l UNUSED,
    const struct config_site *site UNUSED,
    const struct config_path *path UNUSED, struct config_backend *be)
{
	struct assign *as = arg;
	size_t i;

	for (i = 0; i < be->nups; i++)
		be->ups[i].slot = as->keys[as->n++].slot;
}

static void
slot_reset(struct upstate *u, uint32_t s)
{
	struct upstate_entry *e = &u->e[s];

	/* Not inflight: requests of the old upstream still end on it. */
	atomic_store(&e->fails, 0);
	atomic_store(&e->checked, UPSTATE_CHECK_NONE);
	atomic_store(&e->down_until, 0);
	atomic_store(&e->requests, 0);
	atomic_store(&e->failures, 0);
	atomic_store(&e->check_changed, 0);
}

void
upstate_abort(struct upstate_alloc *a)
{
	if (!a->pending)
		return;
	keys_free(a->pkeys, a->npkeys);
	free(a->preset);
	a->pkeys = NULL;
	a->preset = NULL;
	a->npkeys = a->npreset = 0;
	a->pending = false;
}

void
upstate_commit(struct upstate_alloc *a, struct upstate *u)
{
	size_t i;

	if (!a->pending)
		return;
	if (u != NULL)
		for (i = 0; i < a->npreset; i++)
			slot_reset(u, a->preset[i]);
	keys_free(a->keys, a->nkeys);
	a->keys = a->pkeys;
	a->nkeys = a->npkeys;
	a->free_head = a->pfree_head;
	a->nfree = a->pnfree;
	free(a->preset);
	a->pkeys = NULL;
	a->preset = NULL;
	a->npkeys = a->npreset = 0;
	a->pending = false;
}

int
upstate_assign(struct upstate_alloc *a, struct config *cfg)
{
	struct assign as = { .a = a };
	struct slot_key *old;
	bool *kept = NULL;
	uint32_t freed[UPSTATE_SLOTS];
	size_t i, nfreed = 0, nfree, head;
	int saved = ENOMEM;

	upstate_abort(a);
	as.cap = config_upstream_count(cfg);
	if (as.cap > UPSTATE_SLOTS) {
		errno = ENOSPC;
		return -1;
	}
	if ((as.keys = calloc(as.cap + 1, sizeof(*as.keys))) == NULL ||
	    (kept = calloc(a->nkeys + 1, sizeof(*kept))) == NULL ||
	    (a->preset = calloc(as.cap + 1, sizeof(*a->preset))) == NULL)
		goto fail;
	config_foreach_backend(cfg, collect, &as);
	if (as.err)
		goto fail;
	/* Those that were there keep their slots. */
	for (i = 0; i < as.n; i++) {
		struct slot_key probe = { as.keys[i].key, 0 };

		old = a->nkeys > 0 ? bsearch(&probe, a->keys, a->nkeys,
		    sizeof(*a->keys), key_cmp) : NULL;
		if (old != NULL && !kept[old - a->keys]) {
			kept[old - a->keys] = true;
			as.keys[i].slot = old->slot;
		}
	}
	/* The slots of those gone go to the end of the free list (past
	   its live part: nothing changes until the commit). */
	for (i = 0; i < a->nkeys; i++)
		if (!kept[i])
			freed[nfreed++] = a->keys[i].slot;
	nfree = a->nfree;
	head = a->free_head;
	for (i = 0; i < nfreed; i++)
		a->free[(head + nfree++) % UPSTATE_SLOTS] = freed[i];
	/* The new ones take free slots, oldest freed first. */
	for (i = 0; i < as.n; i++) {
		if (as.keys[i].slot != UINT32_MAX)
			continue;
		if (nfree == 0) {	/* cannot be: n <= UPSTATE_SLOTS */
			saved = ENOSPC;
			goto fail;
		}
		as.keys[i].slot = a->free[head];
		a->preset[a->npreset++] = a->free[head];
		head = (head + 1) % UPSTATE_SLOTS;
		nfree--;
	}
	as.n = 0;
	config_foreach_backend(cfg, apply, &as);
	qsort(as.keys, as.cap, sizeof(*as.keys), key_cmp);
	free(kept);
	a->pkeys = as.keys;
	a->npkeys = as.cap;
	a->pfree_head = head;
	a->pnfree = nfree;
	a->pending = true;
	return 0;
fail:
	keys_free(as.keys, as.n);
	free(kept);
	free(a->preset);
	a->preset = NULL;
	a->npreset = 0;
	errno = saved;
	return -1;
}

/* ---- ctl status ---- */

struct json_walk {
	FILE			*f;
	const struct upstate	*u;
	const struct config	*cfg;
	uint64_t		 now;
	bool			 first;
};

static void
json_str(FILE *f, const char *s)
{
	char esc[2 * CONFIG_PREFIX_MAX + 16];
	bool cut;

	esc[log_escape_json(s, strlen(s), esc, sizeof(esc) - 1, &cut)] = '\0';
	fputs(esc, f);
}

static const char *const check_names[] = { "none", "up", "down" };

static void
json_backend(void *arg, const struct config_listener *l,
    const struct config_site *site, const struct config_path *path,
    struct config_backend *be)
{
	struct json_walk *w = arg;
	struct upstate_view v;
	char addr[64];
	size_t i;

	fprintf(w->f, "%s{\"listener\":%zu,\"site\":", w->first ? "" : ",",
	    (size_t)(l - w->cfg->listeners));
	json_str(w->f, site->host);
	fputs(",\"path\":", w->f);
	if (path != NULL)
		json_str(w->f, path->prefix);
	else
		fputs("null", w->f);
	fprintf(w->f, ",\"load_balance\":\"%s\",\"max_fails\":%u,"
	    "\"fail_timeout\":%u,\"health_check\":%s,\"upstreams\":[",
	    config_balance_name(be->balance), be->max_fails, be->fail_timeout,
	    be->health.on ? "true" : "false");
	for (i = 0; i < be->nups; i++) {
		upstate_view(w->u, be, be->ups[i].slot, w->now, &v);
		upstream_describe((const struct sockaddr *)&be->ups[i].addr,
		    addr, sizeof(addr));
		fprintf(w->f, "%s{\"name\":", i > 0 ? "," : "");
		json_str(w->f, be->ups[i].name);
		fputs(",\"address\":", w->f);
		json_str(w->f, addr);
		fprintf(w->f, ",\"state\":\"%s\",\"passive_down\":%s,"
		    "\"check\":\"%s\",\"in_flight\":%llu,\"fails\":%llu,"
		    "\"failures\":%llu,\"requests\":%llu}",
		    v.up ? "up" : "down", v.passive_down ? "true" : "false",
		    check_names[v.check], (unsigned long long)v.inflight,
		    (unsigned long long)v.fails,
		    (unsigned long long)v.failures,
		    (unsigned long long)v.requests);
	}
	fputs("]}", w->f);
	w->first = false;
}

char *
upstate_json(const struct upstate *u, const struct config *cfg)
{
	struct json_walk w = { NULL, u, cfg, upstate_now_ms(), true };
	char *p = NULL;
	size_t len;

	if ((w.f = open_memstream(&p, &len)) == NULL)
		return NULL;
	fputs("\"backends\":[", w.f);
	config_foreach_backend(cfg, json_backend, &w);
	fputs("]", w.f);
	if (ferror(w.f)) {
		fclose(w.f);
		free(p);
		return NULL;
	}
	if (fclose(w.f) != 0) {
		free(p);
		return NULL;
	}
	return p;
}
