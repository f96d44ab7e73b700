/*
 * prober.h - the prober: the process that makes the active health checks
 * (health-check { }, config.h), once per upstream whatever the number of
 * workers, and writes their verdict in the shared upstream table
 * (upstate.h), which every worker reads when it chooses an upstream.
 *
 * The master starts it, like a worker, only while some backend has a
 * health-check: forked, re-executed with PROBER_ENV set and argv[0]
 * "portcullis-prober", the service user, no capability, no_new_privs,
 * respawned with backoff when it dies, told of every generation (CONFIG),
 * sent DRAIN when no backend needs it any more.  Its descriptors are a
 * worker's without the listeners (listen.h): 3 the control socket (CONFIG,
 * DRAIN, REOPEN_LOG in), 4 the config part of the shared segment
 * (read-only), 5 the state part, 6 the report pipe (READY, ACK, NACK out).
 * It writes only `checked` and `check_changed` of the slots it checks.
 *
 * A check of an upstream (plain HTTP only for now: the upstreams of an
 * upstream-scheme "https" backend are not checked, and a warning says so)
 * is a non-blocking connect to its address, then
 *   GET <path> HTTP/1.1
 *   Host: <its host as written, with ":port" unless the port is 80>
 *   User-Agent: portcullis-prober
 *   Connection: close
 * and the response head, read with the strict parser (http1.h, at most
 * PROBER_HEAD_MAX bytes): a status in the health-check's range within its
 * timeout (connect and head) passes; anything else fails (refused, timed
 * out, closed early, malformed, another status).  `passes` passes in a
 * row make the verdict UP, `fails` failures in a row DOWN (the first
 * verdict too); every change is one log line.  Each upstream is checked
 * every interval seconds, the first checks of a generation spread over
 * the interval, at most PROBER_MAX_INFLIGHT at a time; nothing blocks the
 * loop.  A generation keeps the counters and verdict of every upstream it
 * keeps (same slot, same listener, site, path block and name); one that
 * changes how an upstream is checked takes effect at once.
 */
#ifndef PORTCULLIS_PROBER_H
#define PORTCULLIS_PROBER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "http1.h"

/* Set by the master in the environment of the prober. */
#define PROBER_ENV		"PORTCULLIS_PROBER"

/* The most bytes a check's response head may take. */
#define PROBER_HEAD_MAX		(16 * 1024)
/* Checks in flight at once; the others wait their turn. */
#define PROBER_MAX_INFLIGHT	64
/* The longest request a check sends (path, host and the fixed fields). */
#define PROBER_REQUEST_MAX	(CONFIG_PREFIX_MAX + CONFIG_HOST_MAX + 128)

/* Whether any backend of cfg has a health-check (the prober must run). */
bool	 prober_wanted(const struct config *cfg);

/*
 * The request of a check of up, for path (a health-check path), in buf:
 * its length, or -1 if it does not fit or the Host it would send is not
 * a valid host[:port] (http1_is_host).  Host names name (an https
 * backend's upstream-server-name, what its TLS says it talks to) or, when
 * NULL, the host of up's address; with the port unless it is the
 * scheme's own (443 with https, else 80).  Pure.
 */
int	 prober_request(const struct config_upstream *up, bool https,
	    const char *name, const char *path, char *buf, size_t size);

/* What a check's answer says so far. */
enum prober_judgement {
	PROBER_MORE = 0,	/* no complete head yet: read on */
	PROBER_PASS,
	PROBER_FAIL,		/* why says what */
};

/*
 * Judge buf[0..len), every byte a check has read (eof: the upstream
 * closed after them), with p the parser state kept between calls (zeroed
 * before the first): a head whose status is in [min, max] passes, any
 * other status, a malformed head, a head over PROBER_HEAD_MAX bytes or
 * an EOF before the head fails.  Pure.
 */
enum prober_judgement prober_judge(struct http1_parser *p, const char *buf,
	    size_t len, bool eof, uint16_t min, uint16_t max, char *why,
	    size_t whysz);

/* An upstream's checks in a row, and their verdict (UPSTATE_CHECK_*). */
struct prober_tally {
	unsigned	 verdict;
	unsigned	 good;		/* passes in a row */
	unsigned	 bad;		/* failures in a row */
};

/*
 * Count one check (pass or not) against the thresholds passes and fails:
 * true if the verdict changed (to t->verdict).  Pure.
 */
bool	 prober_count(struct prober_tally *t, bool pass, unsigned passes,
	    unsigned fails);

/*
 * When the first check of the rank-th of n upstreams that start together
 * is made: rank/n of the interval after now (milliseconds), so that their
 * checks are spread over it.  Pure.
 */
uint64_t prober_offset_ms(size_t rank, size_t n, unsigned interval);

/* The prober's main(); never returns. */
void	 prober_main(void) __attribute__((noreturn));

#endif /* PORTCULLIS_PROBER_H */
