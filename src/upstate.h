/*
 * upstate.h - the state of every upstream, shared by all processes: its
 * health and the requests in flight to it, in a table of
 * CONFIG_MAX_UPSTREAM_SLOTS entries in the state part of the shared
 * segment (shm.h), next to the rate-limit table.
 *
 * An entry (a slot) stands for one upstream of one backend: a site's or
 * a path block's list names it.  The master gives the slots out when it
 * makes a generation (upstate_assign), keyed by listener, site, path block
 * and the upstream as written, so that a reload keeps the state of every
 * upstream it keeps; a slot freed by a reload goes to the end of the free
 * list, and is reset when it is given out again.
 *
 * Every worker reads and writes entries with atomics, without a lock:
 *   - passive health: consecutive failures (fails) and, once they reach
 *     the backend's max-fails, down_until (CLOCK_MONOTONIC milliseconds)
 *     set by the one worker whose compare-and-swap marks it down, which
 *     logs it; once it has passed, one request claims a trial by moving
 *     it on (upstate_claim); the first success clears it, and that worker
 *     logs that it is up again;
 *   - active health: `checked` (UPSTATE_CHECK_*) and `check_changed`,
 *     written by the prober (prober.h) only, and by the master when it
 *     resets an entry or clears the verdict of an upstream no check
 *     covers any more; a check that passes also ends a passive mark made
 *     before it began, as a trial request would (upstate_check_passed);
 *   - in flight: one shared count per entry (least-connections reads one
 *     word per upstream), and per worker a row of its own share, so that
 *     the master can take back what a dead worker left counted;
 *   - a round-robin counter, used in the first entry of a backend.
 *
 * Nothing read from the table is trusted by the master: it reads numbers
 * for `ctl status` and clamps them; it never reads an index or a size
 * from it.  A compromised worker can unbalance or mark upstreams down,
 * not more.
 */
#ifndef PORTCULLIS_UPSTATE_H
#define PORTCULLIS_UPSTATE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

#define UPSTATE_SLOTS		CONFIG_MAX_UPSTREAM_SLOTS

/* checked: what the active checks say (0 until the first verdict). */
#define UPSTATE_CHECK_NONE	0u
#define UPSTATE_CHECK_UP	1u
#define UPSTATE_CHECK_DOWN	2u

struct upstate_entry {
	_Atomic uint32_t fails;		/* consecutive failures */
	_Atomic uint32_t checked;	/* UPSTATE_CHECK_* */
	_Atomic uint64_t down_until;	/* ms; 0: not marked down */
	_Atomic int64_t	 inflight;	/* all workers */
	_Atomic uint64_t requests;	/* sent to it, in all */
	_Atomic uint64_t failures;	/* in all */
	_Atomic uint64_t rr;		/* round-robin, a backend's first */
	_Atomic uint64_t check_changed;	/* ms of the last verdict change */
	uint64_t	 pad;
};

/* Bytes the table takes in the state part (a multiple of the page). */
size_t	 upstate_bytes(void);

/* A process's handle on the table. */
struct upstate {
	struct upstate_entry	*e;		/* UPSTATE_SLOTS */
	_Atomic int32_t		*rows;		/* [max_workers][SLOTS] */
	unsigned		 max_workers;
	unsigned		 worker;	/* whose row; UINT32_MAX: none */
};

/*
 * The table in mem (upstate_bytes() of it, zeroed by the master when the
 * segment was made), for worker (its row), or UINT32_MAX for a process
 * that does not send requests (the master, the prober).
 */
void	 upstate_attach(struct upstate *u, void *mem, size_t size,
	    unsigned max_workers, unsigned worker);

/* Milliseconds of CLOCK_MONOTONIC (the clock of down_until). */
uint64_t upstate_now_ms(void);

/*
 * Whether upstream `slot` of be may be chosen at now: not marked down by
 * passive health (or its fail-timeout has passed), and not found down by
 * the active checks.  Looks only.
 */
bool	 upstate_usable(const struct upstate *u, const struct config_backend *be,
	    uint32_t slot, uint64_t now);

/*
 * The same, for a request that will take it: once the fail-timeout of an
 * upstream marked down has passed, one request (across all workers) gets
 * it to prove itself: the caller whose compare-and-swap moves down_until
 * another fail-timeout on gets UPSTATE_TRIAL and must send its request
 * there; the others keep skipping it (nginx lets one request through per
 * fail_timeout).  A success then marks it up (upstate_ok).
 */
enum upstate_use {
	UPSTATE_NO = 0,
	UPSTATE_YES,
	UPSTATE_TRIAL,
};
enum upstate_use upstate_claim(struct upstate *u,
	    const struct config_backend *be, uint32_t slot, uint64_t now);

/* In flight to slot, as all workers count it (never below 0). */
uint64_t upstate_inflight(const struct upstate *u, uint32_t slot);

/* A request starts / ends with the upstream in slot (this worker's). */
void	 upstate_begin(struct upstate *u, uint32_t slot);
void	 upstate_end(struct upstate *u, uint32_t slot);

/*
 * Passive health: a failure of the upstream in slot (connect refused or
 * timed out, reset before the response head, a 502-class answer).
 * Returns true if this call marked it down (its caller logs that).
 */
bool	 upstate_fail(struct upstate *u, const struct config_backend *be,
	    uint32_t slot, uint64_t now);

/* A success.  Returns true if the upstream was down (its caller logs it
   up again). */
bool	 upstate_ok(struct upstate *u, const struct config_backend *be,
	    uint32_t slot);

/* The next round-robin number of a backend (its first upstream's). */
uint64_t upstate_rr(struct upstate *u, const struct config_backend *be);

/* ---- the prober ---- */

/* The active checks' verdict of slot, as data: UPSTATE_CHECK_NONE for
   anything but UP or DOWN. */
unsigned upstate_check(const struct upstate *u, uint32_t slot);

/*
 * A check of slot that began at since passed: if passive health marked
 * it down before that (down_until less fail_timeout seconds is the time
 * of the mark, or of the last trial claimed), the check is its trial and
 * it is up: down_until and fails are cleared.  Returns true if this call
 * cleared them (the prober logs it up again).  A mark or trial made after
 * the check began is left to decide.
 */
bool	 upstate_check_passed(struct upstate *u, uint32_t slot, uint64_t since,
	    unsigned fail_timeout);

/* The prober's new verdict of slot (UPSTATE_CHECK_*), changed at now. */
void	 upstate_check_set(struct upstate *u, uint32_t slot, unsigned verdict,
	    uint64_t now);

/*
 * What names an upstream across reloads: its listener, site, path block
 * (NULL: the site's own) and name as written, in a malloc'd string (NULL
 * if out of memory).  The same key keeps its slot (upstate_assign) and,
 * in the prober, its checks' counters.
 */
char	*upstate_key(const struct config_listener *l,
	    const struct config_site *site, const struct config_path *path,
	    const struct config_upstream *up);

/* ---- the master ---- */

/* The master's memory of which slot is whose, across reloads. */
struct upstate_alloc;

struct upstate_alloc *upstate_alloc_new(void);
void	 upstate_alloc_free(struct upstate_alloc *a);

/*
 * Give every upstream of cfg its slot (config_upstream.slot): the one
 * the same listener, site, path block and upstream name had in the
 * committed assignment, else a free one.  The assignment is pending
 * until upstate_commit() (the generation is published: the new slots
 * are reset in u, NULL for none) or upstate_abort() (it was not: the
 * committed one stays, as the live generation uses it).  -1 (errno
 * ENOMEM, or ENOSPC past UPSTATE_SLOTS, which config_load() rules out)
 * leaves no pending assignment.
 */
int	 upstate_assign(struct upstate_alloc *a, struct config *cfg);
void	 upstate_commit(struct upstate_alloc *a, struct upstate *u);
void	 upstate_abort(struct upstate_alloc *a);

/*
 * Every upstream of a backend of cfg without health-check loses its
 * active checks' verdict (NONE): a later generation that checks it again
 * starts afresh, not from a verdict the prober left.  Called with each
 * generation published.
 */
void	 upstate_checks_clear(struct upstate *u, const struct config *cfg);

/* A worker is gone: take back its share of the in-flight counts. */
void	 upstate_worker_gone(struct upstate *u, unsigned worker);

/*
 * The state of one upstream for `ctl status`, from the table: clamped
 * numbers, whatever a worker wrote.
 */
struct upstate_view {
	bool		 up;
	bool		 passive_down;	/* marked down by failures */
	unsigned	 check;		/* UPSTATE_CHECK_* */
	uint64_t	 inflight;
	uint64_t	 fails;		/* consecutive */
	uint64_t	 failures;	/* in all */
	uint64_t	 requests;
};

void	 upstate_view(const struct upstate *u, const struct config_backend *be,
	    uint32_t slot, uint64_t now, struct upstate_view *v);

/*
 * Every backend of cfg and the state of its upstreams, as one JSON member
 * (no braces around it), in a malloc'd string, NULL if out of memory:
 *   "backends":[{"listener":0,"site":"a.test","path":null,
 *     "load_balance":"round-robin","max_fails":1,"fail_timeout":10,
 *     "health_check":false,"upstreams":[{"name":"127.0.0.1:9001",
 *     "address":"127.0.0.1:9001","state":"up","passive_down":false,
 *     "check":"none","in_flight":0,"fails":0,"failures":0,
 *     "requests":0}]},...]
 * (path: the path block's prefix; check: "none", "up" or "down").
 */
char	*upstate_json(const struct upstate *u, const struct config *cfg);

#endif /* PORTCULLIS_UPSTATE_H */
