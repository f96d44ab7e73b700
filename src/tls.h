/*
 * tls.h - GnuTLS: certificate checks, credentials and sessions.
 */
#ifndef PORTCULLIS_TLS_H
#define PORTCULLIS_TLS_H

#include <stddef.h>

#include "config.h"

/*
 * Check that cert (a PEM chain) and key (a PEM private key) load and that
 * the key belongs to the first certificate.  Returns 0, or -1 with a reason
 * in err.
 */
int	 tls_keypair_check(const struct config_blob *cert,
	    const struct config_blob *key, char *err, size_t errsz);

#endif /* PORTCULLIS_TLS_H */
