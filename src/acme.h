/*
 * acme.h - the ACME process: the only process that talks to an ACME CA
 * and the only one that writes acme-cache-dir.
 *
 * Started and supervised by the master like a worker (forked, re-executed
 * with PORTCULLIS_ACME=1, the service user, no capabilities).  Its
 * descriptors: 0 /dev/null, 1 and 2 as a worker's, ACME_FD_CONTROL the
 * master's SOCK_SEQPACKET (CONTROL_ACME_CONFIG, _PUBLISHED, _RENEW, DRAIN,
 * REOPEN_LOG in), ACME_FD_REPORT the report pipe (READY and the
 * CONTROL_ACME_* reports out).  Blocking HTTPS with libcurl, one step at
 * a time; the control socket is read between steps.
 *
 * The cache directory (per listener, acme-cache-dir; acmecache.h):
 *   account-<16 hex digits of SHA-256(directory URL)>/key.pem   0600
 *   account-<...>/url                                           the kid
 *   certs/<name>/key.pem                                        0600
 *   certs/<name>/fullchain.pem                                  0644
 * each written as a temporary file, fsync'd, renamed, directory fsync'd.
 * The master reads certs/<name>/ (acme_cache_read) after ISSUED and at
 * start, never following a symbolic link.
 */
#ifndef PORTCULLIS_ACME_H
#define PORTCULLIS_ACME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Set by the master in the environment of the ACME process. */
#define ACME_ENV	"PORTCULLIS_ACME"

#define ACME_FD_CONTROL	3
#define ACME_FD_REPORT	6

/*
 * When a certificate is due for renewal without ARI: renew_days before
 * not_after when set (but a third of its lifetime when renew_days is not
 * shorter than the lifetime), else min(30 days, a third of its lifetime)
 * before.
 * Pure.
 */
int64_t	 acme_renew_at(int64_t not_before, int64_t not_after,
	    unsigned renew_days);

/*
 * The delay (seconds) before the next attempt after a failure, prev the
 * last delay after a failure of the same kind (0: the first).  The CA
 * unreachable (transport error, 5xx): 5 s doubling up to 10 min; an order
 * or validation that failed: 2 min doubling up to 1 h.  A Retry-After the
 * CA gave comes on top (the larger wins).  Pure.
 */
int64_t	 acme_backoff(bool unreachable, int64_t prev);

/* The ACME process's main(); never returns. */
void	 acme_main(void) __attribute__((noreturn));

#endif /* PORTCULLIS_ACME_H */
