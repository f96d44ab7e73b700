/*
 * tls.c - GnuTLS: certificate checks, credentials and sessions.
 */
#include "autoconf.h"

#include <stdio.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <gnutls/abstract.h>

#include "tls.h"

int
tls_keypair_check(const struct config_blob *cert, const struct config_blob *key,
    char *err, size_t errsz)
{
	gnutls_certificate_credentials_t cred = NULL;
	gnutls_datum_t c, k;
	int ret;

	c.data = cert->data;
	c.size = (unsigned)cert->len;
	k.data = key->data;
	k.size = (unsigned)key->len;
	if ((ret = gnutls_certificate_allocate_credentials(&cred)) < 0) {
		snprintf(err, errsz, "%s", gnutls_strerror(ret));
		return -1;
	}
	/* Loads the whole chain and checks that the key matches its leaf. */
	ret = gnutls_certificate_set_x509_key_mem2(cred, &c, &k,
	    GNUTLS_X509_FMT_PEM, NULL, 0);
	gnutls_certificate_free_credentials(cred);
	if (ret < 0) {
		if (ret == GNUTLS_E_CERTIFICATE_KEY_MISMATCH)
			snprintf(err, errsz, "private key does not match the "
			    "certificate");
		else
			snprintf(err, errsz, "%s", gnutls_strerror(ret));
		return -1;
	}
	return 0;
}
