/*
 * image.h - the flat, pointer-free config image the master publishes in the
 * shared segment and every worker decodes into its own struct config.
 *
 * The image carries everything a worker needs (listeners, sites, resolved
 * upstream addresses, certificates and keys as PEM bytes, limits) and
 * nothing it does not (file paths are left out: a worker never opens a
 * config or key file).  Decoding is a pure, bounds-checked parse: a worker
 * trusts no length or count in it, so a corrupt image is an error, never a
 * crash.
 */
#ifndef PORTCULLIS_IMAGE_H
#define PORTCULLIS_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

#define IMAGE_MAGIC	0x4d494350u	/* "PCIM" */
#define IMAGE_VERSION	5u

/*
 * Serialise cfg as generation gen.  Returns 0 with a malloc'd buffer in
 * *out (the caller wipes and frees it: it holds private keys), or -1.
 */
int	 image_encode(const struct config *cfg, uint64_t gen,
	    unsigned char **out, size_t *outlen);

/*
 * The same with the EAB keys (config_acme.eab_hmac_key), which image_encode
 * leaves out: the ACME process's copy, never the shared segment's.
 */
int	 image_encode_acme(const struct config *cfg, uint64_t gen,
	    unsigned char **out, size_t *outlen);

/*
 * Decode an image.  Returns 0 with a new config in *out (free with
 * config_free) and its generation in *gen, or -1 if the image is malformed
 * in any way.
 */
int	 image_decode(const unsigned char *buf, size_t len, struct config **out,
	    uint64_t *gen);

#endif /* PORTCULLIS_IMAGE_H */
