/*
 * metrics.h - GET /metrics on the health port: the counters of the shared
 * segment in the Prometheus text exposition format, version 0.0.4.
 *
 * Two parts: metrics_collect() reads a snapshot (the counters of every
 * worker summed, the latest generation, every upstream of the caller's
 * config with its shared state) with atomic loads only, no lock; and
 * metrics_render(), pure, turns a snapshot into the text.  Every label
 * value comes from the configuration (site, path prefix, upstream as
 * written) or the build, never from a client, so the series are bounded.
 */
#ifndef PORTCULLIS_METRICS_H
#define PORTCULLIS_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct config;
struct shm;
struct shm_stats;
struct upstate;

#define METRICS_CONTENT_TYPE	"text/plain; version=0.0.4; charset=utf-8"

struct metrics_upstream {
	unsigned	 listener;	/* index in the config */
	const char	*site;
	const char	*path;		/* a path block's prefix; "": none */
	const char	*upstream;	/* as written */
	bool		 up;
	uint64_t	 in_flight;
	uint64_t	 requests;
	uint64_t	 failures;
};

/*
 * The operational families (issue 20): certificates' not-after, ACME
 * attempts, reloads and respawns.  All but the certificates are the
 * master's counters (struct shm_mstats, in the part of the segment only
 * the master writes); the certificates are those of the caller's config.
 */
#define METRICS_PROCS		4	/* enum shm_proc */
#define METRICS_CAUSES		4	/* enum shm_cause */

struct metrics_cert {
	unsigned	 listener;	/* index in the config */
	const char	*site;		/* a site's host, or an ACME name */
	const char	*source;	/* "manual" or "acme" */
	int64_t		 not_after;	/* seconds since the epoch */
};

struct metrics_acme {
	const char	*site;		/* an ACME name, each once */
	uint64_t	 failures;
	uint64_t	 renewals;
};

struct metrics_ops {
	uint64_t	 reloads_ok;
	uint64_t	 reloads_failed;
	uint64_t	 restarts[METRICS_PROCS][METRICS_CAUSES];
	struct metrics_cert *certs;	/* malloc'd by metrics_collect */
	size_t		 ncerts;
	struct metrics_acme *acme;	/* malloc'd by metrics_collect */
	size_t		 nacme;
};
/* ---- requests by site, protocol and status class; TLS handshakes ---- */

/* A site's request statistics, all workers (see shm.h). */
struct metrics_site {
	const char	*name;		/* "_unknown", "_other" or the site's */
	uint64_t	 requests[2][5];	/* [http/1.1, h2][1xx .. 5xx] */
	uint64_t	 buckets[12];	/* not cumulative; the last: +Inf */
	uint64_t	 sum_us;	/* of the durations, microseconds */
};

/* The request duration histogram's upper bounds, seconds (+Inf last). */
extern const double metrics_duration_bounds[11];

/* Why a TLS handshake failed: the reason label, a fixed set. */
enum metrics_tls_reason {
	METRICS_TLS_TIMEOUT,	/* the handshake timeout passed */
	METRICS_TLS_CLOSED,	/* the client went away mid-handshake */
	METRICS_TLS_PROTOCOL,	/* a bad record, unexpected message, alert */
	METRICS_TLS_VERSION,	/* no TLS version in common */
	METRICS_TLS_CIPHER,	/* no cipher suite, group or signature */
	METRICS_TLS_SNI,	/* a server name we have no certificate for */
	METRICS_TLS_CLIENT_CERT, /* a client certificate refused or missing */
	METRICS_TLS_KEY,	/* the signer's key operation failed */
	METRICS_TLS_OTHER,
	METRICS_TLS_NREASONS
};

/* The label value of a reason ("timeout" ...). */
const char *metrics_tls_reason_name(enum metrics_tls_reason r);

/*
 * The reason of a failed handshake from the GnuTLS error it ended with
 * (gnutls_handshake()'s, negative; 0 if none) and what else the TLS
 * layer knew (METRICS_TLS_F_*).  Pure.
 */
#define METRICS_TLS_F_TIMEOUT	 0x1u	/* the handshake timeout passed */
#define METRICS_TLS_F_NO_CERT	 0x2u	/* no certificate for the name
					   (ACME's refusal: tls_conn_refusal) */
#define METRICS_TLS_F_CLIENT_CERT 0x4u	/* a client certificate refused
					   (tls_conn_auth_refusal) */
enum metrics_tls_reason metrics_tls_reason(int gnutls_error, unsigned flags);

/* The duration bucket of a request that took seconds (0 .. 11). */
unsigned metrics_duration_bucket(double seconds);

/*
 * Count one request answered with status (its class: 1xx .. 5xx; other
 * numbers count as 5xx) of site row slot (SHM_SITE_*: out of range counts
 * as "_other") over HTTP/2 (h2) or HTTP/1.x, that took seconds, in a
 * worker's statistics.  Relaxed atomics: nothing waits.
 */
void	 metrics_count_request(struct shm_stats *st, unsigned slot, bool h2,
	    int status, double seconds);

/* Count a TLS handshake done, or failed for reason. */
void	 metrics_count_handshake(struct shm_stats *st);
void	 metrics_count_handshake_failure(struct shm_stats *st,
	    enum metrics_tls_reason reason);

/*
 * The master's memory of which site name has which row (SHM_SITE_*),
 * for its lifetime: a name keeps its row across reloads (the counters of
 * a row never move to another name), a new name takes the next unused
 * row, past SHM_SITE_SLOTS names "_other"'s.  A row is never given to
 * another name, even once its name left the configuration.
 */
struct metrics_sites;

struct metrics_sites *metrics_sites_new(void);
void	 metrics_sites_free(struct metrics_sites *m);
/* Set config_site.metrics_slot of every site of cfg; -1 if out of
   memory (cfg is then partly assigned: do not publish it). */
int	 metrics_sites_assign(struct metrics_sites *m, struct config *cfg);

struct metrics_snapshot {
	const char	*version;
	uint64_t	 requests;
	uint64_t	 rate_limited;
	uint64_t	 active_connections;
	uint64_t	 accepted;
	uint64_t	 bytes_in;
	uint64_t	 bytes_out;
	uint64_t	 generation;
	struct metrics_upstream *ups;	/* malloc'd by metrics_collect */
	size_t		 nups;
	struct metrics_ops ops;		/* the operational families */
	/* Requests by site (_unknown, _other, then the config's sites by
	   name, each once), malloc'd by metrics_collect. */
	struct metrics_site *sites;
	size_t		 nsites;
	uint64_t	 tls_handshakes;
	uint64_t	 tls_failures[METRICS_TLS_NREASONS];
};

/*
 * What cfg's certificates say, read once per configuration generation:
 * each certificate's notAfter (the same bytes parsed once, however many
 * sites share them: a manual listener's certificate for every site
 * without its own) and the ACME names, each once.  Strings point into
 * cfg: free it first.  NULL if out of memory.
 */
struct metrics_certs;

struct metrics_certs *metrics_certs_new(const struct config *cfg);
void	 metrics_certs_free(struct metrics_certs *m);
/* Certificates metrics_certs_new() parsed, ever (the tests look). */
extern unsigned long metrics_cert_parses;

/*
 * Fill s from the segment (max_workers counter slots, summed; a sum that
 * would overflow stays at UINT64_MAX), the upstream table, cfg and mc,
 * metrics_certs_new(cfg)'s (NULL: made and freed for this call).
 * Strings point into cfg.  0, or -1 if out of memory.
 */
int	 metrics_collect(struct metrics_snapshot *s, const struct shm *shm,
	    const struct upstate *u, const struct config *cfg,
	    const struct metrics_certs *mc);
void	 metrics_snapshot_free(struct metrics_snapshot *s);

/*
 * The exposition of s into buf[0..size), NUL-terminated.  Returns its
 * length without the NUL, or the length it needs (as snprintf) if that
 * is size or more: call again with a larger buffer.
 */
size_t	 metrics_render(const struct metrics_snapshot *s, char *buf,
	    size_t size);

/*
 * A label value escaped as the format wants (\\, \" and \n) into
 * out[0..size), NUL-terminated; returns the length it needs, as above.
 */
size_t	 metrics_escape(const char *v, char *out, size_t size);

#endif /* PORTCULLIS_METRICS_H */
