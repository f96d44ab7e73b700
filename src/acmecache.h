/*
 * acmecache.h - acme-cache-dir: what the ACME process writes and the
 * master reads.
 *
 *   account-<16 hex digits of SHA-256(directory URL)>/key.pem   0600
 *   account-<...>/url                                           the kid
 *   certs/<name>/key.pem                                        0600
 *   certs/<name>/fullchain.pem                                  0644
 *
 * Every file is written as a temporary file, fsync'd, renamed over the
 * old one, and the directory fsync'd.  Nothing here follows a symbolic
 * link (openat2 RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH under the cache
 * directory), and nothing read is longer than CONFIG_PEM_MAX.
 */
#ifndef PORTCULLIS_ACMECACHE_H
#define PORTCULLIS_ACMECACHE_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

/*
 * Read certs/<name>/fullchain.pem and key.pem under cache_dir (no
 * symbolic link followed, each at most CONFIG_PEM_MAX bytes) and check
 * them (acme_cert_check at now).  0 with *out filled (name copied; the
 * caller frees with acme_cache_cert_free), 1 if there is no certificate,
 * -1 with a reason in err if what is there is unusable.
 */
int	 acme_cache_read(const char *cache_dir, const char *name, int64_t now,
	    struct config_acme_cert *out, int64_t *not_after, char *err,
	    size_t errsz);
void	 acme_cache_cert_free(struct config_acme_cert *c);

/*
 * Write data as rel (e.g. "certs/example.com/key.pem") under cache_dir
 * with mode, atomically, making the directories on the way (0700).
 * Returns 0, or -1 with a reason in err.
 */
int	 acme_cache_write(const char *cache_dir, const char *rel,
	    const void *data, size_t len, unsigned mode, char *err,
	    size_t errsz);
/*
 * Read rel under cache_dir (at most max bytes, NUL added).  0 with *data
 * (malloc'd) and *len, 1 if it does not exist, -1 with err.
 */
int	 acme_cache_load(const char *cache_dir, const char *rel, size_t max,
	    unsigned char **data, size_t *len, char *err, size_t errsz);

#endif /* PORTCULLIS_ACMECACHE_H */
