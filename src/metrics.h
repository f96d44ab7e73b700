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
};

/*
 * Fill s from the segment (max_workers counter slots, summed; a sum that
 * would overflow stays at UINT64_MAX), the upstream table and cfg.
 * Strings point into cfg.  0, or -1 if out of memory.
 */
int	 metrics_collect(struct metrics_snapshot *s, const struct shm *shm,
	    const struct upstate *u, const struct config *cfg);
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
