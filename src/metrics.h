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
