/*
 * oom.h - allocators for the libraries that cannot take a failed malloc.
 *
 * Our code, GnuTLS and nghttp2 take a NULL from malloc as an error of the
 * connection or the request at hand.  Two libraries do not: libev and GMP
 * (which GnuTLS's nettle uses for RSA and elliptic curves) abort the
 * process when an allocation fails.  oom_install() gives them an
 * allocator that retries a failed allocation for up to about a second,
 * sleeping in between (memory freed meanwhile by another process, or a
 * transient failure, lets it through), and only then gives up as they
 * would, with one line on stderr and abort().  Every process calls it
 * first thing.
 */
#ifndef PORTCULLIS_OOM_H
#define PORTCULLIS_OOM_H

#include <stddef.h>

void	 oom_install(void);

/* realloc(p, n), retried as above; NULL only for n == 0 (p is freed). */
void	*oom_realloc_retry(void *p, size_t n);

#endif /* PORTCULLIS_OOM_H */
