/*
 * ratelimit.h - per-client token buckets shared by every worker.
 *
 * The table lives in the state part of the shared segment, so a limit is a
 * limit for the whole server, whichever worker a connection lands on, and
 * it survives reloads.  Its size is fixed at start (rate-limit.table-size);
 * nothing is ever allocated per client.
 *
 * Keys.  The TCP peer address (never a header): an IPv4 address, an IPv6
 * /64, an IPv4-mapped IPv6 address as the IPv4 address it is.  A site with
 * its own rate-limit { } section has buckets of its own: its host name (as
 * configured, so "*.example.com" for a wildcard site) goes into the key,
 * and its requests do not count against the global limit.  The key is
 * hashed with SipHash-2-4 under a secret the master draws from getrandom
 * at start, so nobody can aim many addresses at one part of the table.
 *
 * Entries.  Two 64-bit words: the key hash (0: never used) and the bucket,
 * a packed word updated with compare-and-swap only, so there is no lock a
 * dying worker could leave held:
 *
 *   bits 63..28  last refill, milliseconds of CLOCK_MONOTONIC mod 2^36
 *   bits 27..0   tokens, in 1/256 of a token (up to 1048575 tokens)
 *
 * A key is looked for in a window of RATELIMIT_WINDOW entries from its
 * hash.  When it is not there and no entry of the window is free, the
 * entry refilled longest ago is taken over: the most likely to be full
 * again, so reclaiming it loses nothing.  A worker that dies between
 * taking an entry over and resetting its bucket leaves a bucket that the
 * new key inherits for at most one refill: never a stuck table.
 *
 * Semantics: nginx "burst nodelay".  A full bucket holds `burst` tokens and
 * admits that many requests at once; tokens come back at `rate` per second
 * (fractional rates work).  A reload changes rates and bursts, not the
 * tokens a bucket holds (a smaller burst caps them).
 */
#ifndef PORTCULLIS_RATELIMIT_H
#define PORTCULLIS_RATELIMIT_H

#include <sys/socket.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct shm_counters;

#define RATELIMIT_WINDOW	8		/* entries probed per key */
#define RATELIMIT_TOKEN		256u		/* one token, in units */
#define RATELIMIT_TIME_BITS	36
#define RATELIMIT_TOKEN_BITS	28
/* Another worker's clock may be this far behind ours (ms). */
#define RATELIMIT_SKEW_MS	1000

/* Entries (16 bytes each): the range rate-limit.table-size allows. */
#define RATELIMIT_TABLE_MIN	CONFIG_RATE_TABLE_MIN
#define RATELIMIT_TABLE_MAX	CONFIG_RATE_TABLE_MAX

struct ratelimit;

/* ---- the bucket arithmetic: pure, no shared memory ---- */

struct ratelimit_take {
	uint64_t	 word;		/* the bucket after the request */
	bool		 allowed;
	uint32_t	 retry_ms;	/* if not: until one token is back */
};

/* A bucket holding `tokens` units, last refilled at now_ms. */
uint64_t ratelimit_pack(uint64_t now_ms, uint32_t tokens);
uint32_t ratelimit_tokens(uint64_t word);
uint64_t ratelimit_stamp(uint64_t word);	/* ms mod 2^36 */

/*
 * One request against bucket `word` at now_ms, for rate tokens per second
 * (> 0) and burst tokens (>= 1).  A clock that went backwards by less than
 * RATELIMIT_SKEW_MS counts as no time passing; a bucket last refilled more
 * than half the clock's range (about a year) ago counts as full.  When the
 * request is refused the bucket is unchanged (word is the input).
 */
struct ratelimit_take ratelimit_take(uint64_t word, uint64_t now_ms,
	    double rate, unsigned burst);

/* util_siphash(), as the rate limiter and balance.h know it. */
uint64_t ratelimit_siphash(const unsigned char key[16], const void *data,
	    size_t len);

/* ---- the table in the shared segment ---- */

/* Bytes the table of `entries` entries takes, header included. */
size_t	 ratelimit_table_bytes(unsigned entries);

/*
 * Master: lay out an empty table of `entries` entries in mem (at least
 * ratelimit_table_bytes(entries), zeroed) and draw its secret.  0 or -1.
 */
int	 ratelimit_init(void *mem, size_t size, unsigned entries);

/*
 * Worker: check the table the master laid out in mem and return a handle
 * (malloc'd), or NULL if it is not a valid table.  Refused requests are
 * counted in counters->rate_limited (counters may be NULL).
 */
struct ratelimit *ratelimit_attach(void *mem, size_t size,
	    struct shm_counters *counters);
void	 ratelimit_detach(struct ratelimit *rl);

/*
 * Master: put the table's header back from the handle's own copy (the
 * master attaches right after ratelimit_init()) if a worker changed it,
 * so that workers started later can attach.  Returns 1 if it had been
 * changed, 0 if not.  The buckets are data and stay as they are.
 */
int	 ratelimit_repair(const struct ratelimit *rl);

/* Milliseconds of CLOCK_MONOTONIC, the clock every bucket runs on. */
uint64_t ratelimit_now_ms(void);

/* An IPv6 client's bucket is its network of this prefix length. */
#define RATELIMIT_V6_PREFIX	64
/* "ffff:ffff:ffff:ffff::/64" and its NUL, with room to spare. */
#define RATELIMIT_NET_NAME_MAX	48

/*
 * The network a peer's bucket stands for when it is wider than the
 * address: an IPv6 peer's /64 as text ("2001:db8:1:2::/64"; the zero
 * network, ::1's, as "0::/64"), the client_net of its RATE_LIMIT line.  false (and buf "") for a peer whose
 * key is its address (IPv4, IPv4-mapped IPv6) or any other family.  Pure.
 */
bool	 ratelimit_net_name(const struct sockaddr *peer, char *buf,
	    size_t len);

/*
 * The key of a peer for a site's buckets (site_host NULL: the global
 * ones).  Returns false for an address that is not IPv4 or IPv6.
 */
bool	 ratelimit_key(const struct ratelimit *rl, const struct sockaddr *peer,
	    const char *site_host, uint64_t *key);

/*
 * Take one token for key at now_ms.  Returns true if the request may go
 * on; otherwise *retry_ms says when a token is back.  Lock-free.
 */
bool	 ratelimit_table_take(struct ratelimit *rl, uint64_t key,
	    uint64_t now_ms, double rate, unsigned burst, uint32_t *retry_ms);

/* ---- the hook the HTTP layers call ---- */

/* A request as the limiter sees it; host and path are only logged. */
struct ratelimit_req {
	const struct sockaddr	*peer;		/* the TCP peer */
	const char		*client_ip;	/* peer as text, for the log */
	const char		*host;		/* normalised, as routed */
	size_t			 host_len;
	const char		*path;		/* the target as sent */
	size_t			 path_len;
};

/*
 * Call once per request (each HTTP/1.1 request, each HTTP/2 stream) once
 * it is routed and before anything goes upstream.  site is the site it
 * was routed to, or NULL (no such host: the global limit applies); cfg is
 * the generation it was routed by.  Returns true if the request may go on.
 * Otherwise the caller answers 429 with "Retry-After: *retry_after_s"
 * (whole seconds, >= 1); the RATE_LIMIT line is already logged and the
 * refusal counted.  With rl NULL every request goes on.
 */
bool	 ratelimit_admit(struct ratelimit *rl, const struct config *cfg,
	    const struct config_site *site, const struct ratelimit_req *req,
	    unsigned *retry_after_s);

#endif /* PORTCULLIS_RATELIMIT_H */
