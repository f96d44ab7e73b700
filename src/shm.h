/*
 * shm.h - the shared-memory segment.
 *
 * The segment is two memfds, created by the master before the first fork
 * and sealed against resizing:
 *
 *   config part   header (magic, layout version, generation) and two
 *                 config slots (double buffer), each with the session-
 *                 ticket keys of its generation.  Only the master can
 *                 write it: workers get a read-only descriptor, so even a
 *                 compromised worker cannot change what the others route by.
 *   state part    per-worker counters, the upstream table (upstate.h),
 *                 the per-worker request statistics (per site, protocol
 *                 and status class, the duration histogram, the TLS
 *                 handshakes: struct shm_stats, for /metrics),
 *                 the per-client connection table (connlimit.h, a fixed
 *                 size) and the rate-limit table, written by every worker
 *                 with atomics.  Its header is informative
 *                 only: each process keeps its own layout (struct
 *                 shm_layout), as anything there may have been rewritten
 *                 by a compromised worker.
 *
 * Publishing: the master writes the image into the slot the live generation
 * is not in, then bumps the generation (release).  A worker copies the
 * slot of the generation it was told about into private memory and checks
 * that the slot still holds that generation after the copy.  The master
 * reuses a slot only once every live worker has acknowledged a newer one.
 */
#ifndef PORTCULLIS_SHM_H
#define PORTCULLIS_SHM_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define SHM_MAGIC		0x4d485350u	/* "PSHM" */
#define SHM_LAYOUT_VERSION	6u
/* The session-ticket keys of a generation: the current one, then the
   previous one if any (ticketkeys.h), 64 bytes each. */
#define SHM_TICKET_KEY_MAX	128
#define SHM_MAX_WORKERS		256
#define SHM_STICKY_KEY_LEN	32
#define SHM_CONNLIMIT_KEY_LEN	16

struct shm_slot {
	_Atomic uint64_t generation;	/* 0: empty */
	uint64_t	 len;
	uint32_t	 ticket_key_len;
	unsigned char	 ticket_key[SHM_TICKET_KEY_MAX];
};

/*
 * Master-side facts for /metrics (metrics.h): reloads, respawns by kind
 * of process and cause, ACME attempts by name.  In the config part, so
 * only the master writes them (atomic adds); workers read them.  The
 * master never reads anything a worker can write to make them.
 */
enum shm_proc {				/* the process="" label */
	SHM_PROC_WORKER = 0,
	SHM_PROC_ACME,
	SHM_PROC_PROBER,
	SHM_PROC_SIGNER,
	SHM_PROCS
};
enum shm_cause {			/* the cause="" label */
	SHM_CAUSE_EXIT = 0,		/* exited (any status), unasked */
	SHM_CAUSE_SIGNAL,		/* killed by a signal, not ours */
	SHM_CAUSE_SANDBOX,		/* SIGSYS: seccomp's kill */
	SHM_CAUSE_KILLED,		/* SIGKILL from the master (a protocol
					   violation, a generation rejected
					   or not applied in time) */
	SHM_CAUSES
};
#define SHM_ACME_STATS_MAX	128	/* names; more are not counted */

struct shm_acme_stat {
	_Atomic uint64_t key;		/* shm_name_key(name); 0: free */
	_Atomic uint64_t failures;	/* attempts that failed */
	_Atomic uint64_t renewals;	/* certificates obtained */
};

struct shm_mstats {
	_Atomic uint64_t reloads_ok;
	_Atomic uint64_t reloads_failed;
	_Atomic uint64_t restarts[SHM_PROCS][SHM_CAUSES];
	struct shm_acme_stat acme[SHM_ACME_STATS_MAX];
};

struct shm_config_hdr {
	uint32_t	 magic;
	uint32_t	 version;
	uint64_t	 size;		/* of the whole config part */
	uint64_t	 slot_size;
	uint64_t	 slot_off[2];
	_Atomic uint64_t generation;	/* the latest published */
	struct shm_slot	 slot[2];
	/* sticky-cookie's key (balance.h), for the master's lifetime. */
	unsigned char	 sticky_key[SHM_STICKY_KEY_LEN];
	/* The key of max-connections-per-client's hashes (connlimit.h). */
	unsigned char	 connlimit_key[SHM_CONNLIMIT_KEY_LEN];
	/* The master's counters for /metrics (struct shm_mstats). */
	struct shm_mstats stats;
};

/* One cache line per worker, so counters do not share lines. */
struct shm_counters {
	_Atomic uint64_t requests;
	_Atomic uint64_t rate_limited;
	_Atomic uint64_t active_connections;
	_Atomic uint64_t bytes_in;
	_Atomic uint64_t bytes_out;
	_Atomic uint64_t errors;
	_Atomic uint64_t pid;
	/* Connections accepted on the listeners (the health port's not). */
	_Atomic uint64_t accepted;
};

/*
 * The per-site rows of a worker's statistics (/metrics): row 0 is
 * site="_unknown" (no site matched: unknown host, a request refused
 * before routing), row 1 site="_other" (past SHM_SITE_SLOTS names), rows
 * SHM_SITE_FIRST.. the sites, by the slot the master gave their name
 * (metrics_sites_assign(), config_site.metrics_slot).
 */
#define SHM_SITE_UNKNOWN	0u
#define SHM_SITE_OTHER		1u
#define SHM_SITE_FIRST		2u
#define SHM_SITE_SLOTS		256u
#define SHM_SITE_ROWS		(SHM_SITE_FIRST + SHM_SITE_SLOTS)
#define SHM_PROTOCOLS		2	/* http/1.1, h2 */
#define SHM_STATUS_CLASSES	5	/* 1xx .. 5xx */
/* Request duration buckets: Prometheus's default bounds, then +Inf. */
#define SHM_DURATION_BUCKETS	12
/* Reasons of a failed TLS handshake (metrics_tls_reason()). */
#define SHM_TLS_REASONS		9

/* One site of one worker: 24 words, three cache lines. */
struct shm_site_row {
	_Atomic uint64_t requests[SHM_PROTOCOLS][SHM_STATUS_CLASSES];
	/* Not cumulative: the renderer adds them up. */
	_Atomic uint64_t duration[SHM_DURATION_BUCKETS];
	_Atomic uint64_t duration_us;	/* the sum, in microseconds */
	uint64_t	 pad;
};

/* A worker's statistics, written by that worker alone (relaxed). */
struct shm_stats {
	_Atomic uint64_t tls_handshakes;
	_Atomic uint64_t tls_failures[SHM_TLS_REASONS];
	uint64_t	 pad[6];
	struct shm_site_row site[SHM_SITE_ROWS];
};

struct shm_state_hdr {
	uint32_t	 magic;
	uint32_t	 version;
	uint64_t	 size;
	uint64_t	 counters_off;
	uint32_t	 max_workers;
	uint32_t	 pad;
	uint64_t	 upstate_off;	/* the upstream table (upstate.h) */
	uint64_t	 upstate_size;
	uint64_t	 ratelimit_off;	/* the rate-limit table (ratelimit.h) */
	uint64_t	 ratelimit_size;
	/* Connections per client (connlimit.h), between the two above. */
	uint64_t	 connlimit_off;
	uint64_t	 connlimit_size;
	/* The per-worker statistics (struct shm_stats), after counters. */
	uint64_t	 stats_off;
};

/*
 * Where things are in the two parts: this process's own copy.  The master
 * makes it in shm_create(); a worker derives it from the sizes of the
 * parts in shm_attach() and checks that the headers agree.  Nothing reads
 * an offset, a size or a count from the segment after that: every worker
 * can write the state part, and the master must not be steered by it.
 */
struct shm_layout {
	size_t		 slot_size;
	size_t		 slot_off[2];
	size_t		 counters_off;
	unsigned	 max_workers;
	size_t		 upstate_off;
	size_t		 upstate_size;
	size_t		 connlimit_off;
	size_t		 connlimit_size;
	size_t		 ratelimit_off;
	size_t		 ratelimit_size;
	size_t		 stats_off;
};

struct shm {
	int		 cfg_fd;
	int		 state_fd;
	struct shm_config_hdr *cfg;	/* mapped read-only in workers */
	size_t		 cfg_size;
	struct shm_state_hdr *state;
	size_t		 state_size;
	struct shm_layout lay;
};

/* Master: create both parts.  slot_size bytes per config slot. */
int	 shm_create(struct shm *s, size_t slot_size, size_t ratelimit_size);

/* Master: a read-only descriptor of the config part, for a worker. */
int	 shm_config_fd_readonly(const struct shm *s);

/*
 * Master: publish image as generation gen, with the session-ticket keys
 * tk[0..tklen) (at most SHM_TICKET_KEY_MAX bytes; the slot's old keys are
 * wiped).  Returns 0, or -1 if it does not fit in a slot (errno EFBIG).
 */
int	 shm_publish(struct shm *s, const void *image, size_t len, uint64_t gen,
	    const unsigned char *tk, size_t tklen);

/*
 * Master: once every worker has generation gen, empty the other slot and
 * wipe its ticket keys: a key dropped by a rotation must not stay
 * readable in the segment.
 */
void	 shm_retire_other(struct shm *s, uint64_t gen);

/* The latest published generation. */
uint64_t shm_generation(const struct shm *s);

/*
 * Worker: map both parts from inherited descriptors and check them.  On
 * failure what was mapped stays mapped: call shm_close().
 */
int	 shm_attach(struct shm *s, int cfg_fd, int state_fd);

/*
 * Worker: copy the image of generation gen (0: the latest) into a new
 * malloc'd buffer, and, with tk non-NULL, its ticket keys into
 * tk[SHM_TICKET_KEY_MAX] (*tklen bytes).  Returns 0, or -1 if that
 * generation is not (or no longer) in its slot.
 */
int	 shm_copy_image(const struct shm *s, uint64_t gen, unsigned char **out,
	    size_t *len, uint64_t *got_gen, unsigned char *tk, size_t *tklen);

/* The counters of a worker, NULL if worker is out of range. */
struct shm_counters *shm_counters(const struct shm *s, unsigned worker);

/* The statistics of a worker (/metrics), NULL if worker is out of
   range.  Pages no worker wrote stay unallocated. */
struct shm_stats *shm_stats(const struct shm *s, unsigned worker);

/* The region of the upstream table (upstate.h), and its size. */
void	*shm_upstate(const struct shm *s, size_t *size);

/* The region of the per-client connection table (connlimit.h). */
void	*shm_connlimit(const struct shm *s, size_t *size);

/* The region reserved for the rate-limit table, and its size. */
void	*shm_ratelimit(const struct shm *s, size_t *size);

/*
 * Master: put back the state header from our own layout if it is not
 * what shm_create() wrote (a worker can write it).  Returns 1 if it had
 * been changed, 0 if not.  Only a worker started later reads it.
 */
int	 shm_state_repair(struct shm *s);

/*
 * The counters of workers 0..nworkers-1 as two JSON members (no braces
 * around them), in a malloc'd string, NULL if out of memory:
 *   "worker_counters":[{"worker":0,"pid":P,"requests":N,...},...],
 *   "counters":{"requests":N,"rate_limited":N,"active_connections":N,
 *               "bytes_in":N,"bytes_out":N,"errors":N}   (the sums)
 * Workers write the counters: they are numbers only, any value is valid
 * JSON, and a sum that would overflow stays at UINT64_MAX.
 */
char	*shm_counters_json(const struct shm *s, unsigned nworkers);

/* ---- master-side stats (struct shm_mstats) ---- */

/* The key of an ACME name in the stats: a hash, never 0. */
uint64_t shm_name_key(const char *name);

/* Master: count a reload (ok or failed) and a respawn. */
void	 shm_mstats_reload(struct shm *s, int ok);
void	 shm_mstats_restart(struct shm *s, enum shm_proc p, enum shm_cause c);

/*
 * Master: count an ACME attempt on name (ok: a certificate obtained).
 * -1 if the table is full (the name is not counted), else 0.
 */
int	 shm_mstats_acme(struct shm *s, const char *name, int ok);

/* Anyone: the stats, to read with atomic loads. */
const struct shm_mstats *shm_mstats(const struct shm *s);

/*
 * Anyone: name's ACME counters: 0, or 0 and 0 if never counted while the
 * table has room (its first attempt will take a row); -1 if the table is
 * full without a row for name: its attempts are not counted, and 0 would
 * be a lie (the caller shows no number).
 */
int	 shm_mstats_acme_get(const struct shm *s, const char *name,
	    uint64_t *failures, uint64_t *renewals);

void	 shm_close(struct shm *s);

#endif /* PORTCULLIS_SHM_H */
