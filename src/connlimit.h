/*
 * connlimit.h - max-connections-per-client: the connections each client
 * holds on a listener, counted across all workers.
 *
 * The table is a region of the state part of the shared segment (shm.h),
 * of a fixed size (connlimit_bytes()), zeroed by the master when it makes
 * the segment:
 *
 *   entries   CONNLIMIT_ENTRIES 64-bit words, each
 *               bits 63..24  the key hash (0: never used)
 *               bits 23..0   connections counted, all workers
 *             updated by compare-and-swap only: there is no lock a dying
 *             worker could leave held.
 *   cells     CONNLIMIT_CELLS 64-bit words [key hash | seconds mod 2^24]
 *             that decide, by compare-and-swap, which worker logs a
 *             refusal: one line per client per minute, not per connection.
 *   rows      per worker, int32 shares[CONNLIMIT_ENTRIES], written only
 *             by that worker: what it has counted in each entry, so that
 *             the master takes back what a dead worker left counted.
 *
 * Keys.  The key hash is SipHash-2-4, under a secret the master draws at
 * start (in the config part, which workers cannot write), of the listener
 * index and the client key (util_client_key: an IPv4 address, an IPv6 /64,
 * an IPv4-mapped address as the IPv4 address), cut to 40 bits, never 0.
 * A key lives in one entry of a window of CONNLIMIT_WINDOW from its hash:
 * the one holding its hash with connections counted, else the first whose
 * count is 0, taken by compare-and-swap.  No such entry: the connection
 * is admitted uncounted (fail open: a full table never refuses legitimate
 * clients wholesale) and that is logged at most once a minute per worker.
 *
 * Trust.  The master reads only a dead worker's row and the entries it
 * names by its own loop's indices, and clamps what it subtracts: a
 * compromised worker can mis-count, never steer the master's memory.
 */
#ifndef PORTCULLIS_CONNLIMIT_H
#define PORTCULLIS_CONNLIMIT_H

#include <sys/socket.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONNLIMIT_ENTRIES	65536u
#define CONNLIMIT_WINDOW	8u
#define CONNLIMIT_CELLS		4096u
#define CONNLIMIT_KEY_LEN	16
#define CONNLIMIT_HASH_BITS	40
#define CONNLIMIT_COUNT_BITS	24
#define CONNLIMIT_LOG_EVERY	60	/* seconds between refusal lines */

/* Bytes the table takes in the state part (a multiple of the page). */
size_t	 connlimit_bytes(void);

/* A process's handle on the table. */
struct connlimit {
	_Atomic uint64_t	*e;		/* CONNLIMIT_ENTRIES */
	_Atomic uint64_t	*cells;		/* CONNLIMIT_CELLS */
	_Atomic int32_t		*rows;		/* [max_workers][ENTRIES] */
	unsigned		 max_workers;
	unsigned		 worker;	/* whose row; UINT32_MAX: none */
	unsigned char		 key[CONNLIMIT_KEY_LEN];
	uint64_t		 full_logged;	/* s of the last "full" line */
	bool			 full_once;
};

/*
 * The table in mem (connlimit_bytes() of it), for worker (its row), or
 * UINT32_MAX for the master; key is the master's secret.
 */
void	 connlimit_attach(struct connlimit *c, void *mem, size_t size,
	    unsigned max_workers, unsigned worker,
	    const unsigned char key[CONNLIMIT_KEY_LEN]);

/*
 * The key hash of a client of listener li (40 bits, never 0), or 0 for an
 * address that is neither IPv4 nor IPv6.
 */
uint64_t connlimit_hash(const struct connlimit *c, size_t li,
	    const struct sockaddr *peer);

/* What one connection holds of the table. */
struct connlimit_ticket {
	uint64_t	 hash;		/* 0: nothing counted */
	uint32_t	 entry;
};

enum connlimit_verdict {
	CONNLIMIT_REFUSED = 0,	/* max connections of this key are open */
	CONNLIMIT_COUNTED,	/* admitted; release the ticket at its end */
	CONNLIMIT_UNCOUNTED,	/* admitted; no free entry in the window */
};

/* One more connection of hash, at most max (>= 1) at once.  Lock-free. */
enum connlimit_verdict connlimit_take(struct connlimit *c, uint64_t hash,
	    unsigned max, struct connlimit_ticket *t);

/* A counted connection ended (a ticket with hash 0: nothing to do). */
void	 connlimit_release(struct connlimit *c, struct connlimit_ticket *t);

/* Connections of hash counted now, all workers (for tests and status). */
unsigned connlimit_count(const struct connlimit *c, uint64_t hash);

/*
 * A connection of hash refused at now_s (seconds of CLOCK_MONOTONIC):
 * true for the one caller, across all workers, that logs it, at most once
 * every CONNLIMIT_LOG_EVERY seconds per key (two keys sharing a cell may
 * each log a little more often).
 */
bool	 connlimit_log_due(struct connlimit *c, uint64_t hash, uint64_t now_s);

/*
 * No free entry for a key at now_s: true once a minute (per process), for
 * the caller to log that the table is full.
 */
bool	 connlimit_full_due(struct connlimit *c, uint64_t now_s);

/* Master: a worker is gone: take back what its row counted. */
void	 connlimit_worker_gone(struct connlimit *c, unsigned worker);

/* Seconds of CLOCK_MONOTONIC (the clock of the log cells). */
uint64_t connlimit_now_s(void);

#endif /* PORTCULLIS_CONNLIMIT_H */
