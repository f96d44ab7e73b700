/*
 * image.h - the flat, pointer-free config image the master publishes in the
 * shared segment and every worker decodes into its own struct config.
 *
 * The image carries everything a worker needs (listeners, sites and their
 * path blocks, resolved upstream addresses, certificates as PEM bytes,
 * the files of upstream TLS (trust stores and client certificates, once
 * each), limits, the certificates and challenges of ACME listeners) and
 * nothing it does not (no private key: the signer has them, signer.h;
 * file paths are left out: a worker never opens a
 * config or key file; the ACME settings, which the ACME process decodes
 * from its own copy, keep acme-cache-dir and acme-ca-file, and only that
 * copy has the EAB keys).  Decoding is a pure, bounds-checked parse: a
 * worker trusts no length or count in it, so a corrupt image is an error,
 * never a crash.
 */
#ifndef PORTCULLIS_IMAGE_H
#define PORTCULLIS_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

#define IMAGE_MAGIC	0x4d494350u	/* "PCIM" */
#define IMAGE_VERSION	12u

/*
 * Serialise cfg as generation gen.  Returns 0 with a malloc'd buffer in
 * *out (the caller frees it), or -1.  No private key goes in (a
 * decoded image has every tls.key, acme_certs[].key and secret file
 * empty).
 * Every listener's tls { mode = "acme" } settings go in but its
 * acme-eab-hmac-key (decoded as NULL), and with them the certificates and
 * challenges the master adds (acme_certs, challenges: only for a listener
 * in ACME mode).
 */
int	 image_encode(const struct config *cfg, uint64_t gen,
	    unsigned char **out, size_t *outlen);

/*
 * The same with every acme-eab-hmac-key in: the ACME process's copy,
 * never the shared segment's.
 */
int	 image_encode_acme(const struct config *cfg, uint64_t gen,
	    unsigned char **out, size_t *outlen);

/*
 * 1 if buf starts as an image from image_encode_acme, 0 as one from
 * image_encode, -1 if it is not an image of this version (only the
 * header is looked at: image_decode still checks everything).
 */
int	 image_is_acme(const unsigned char *buf, size_t len);

/*
 * Decode an image.  Returns 0 with a new config in *out (free with
 * config_free) and its generation in *gen, or -1 if the image is malformed
 * in any way.
 */
int	 image_decode(const unsigned char *buf, size_t len, struct config **out,
	    uint64_t *gen);

#endif /* PORTCULLIS_IMAGE_H */
