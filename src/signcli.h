/*
 * signcli.h - a worker's side of the signer: private keys it does not
 * have.
 *
 * A worker (and the prober) gets its certificates from the config image
 * but no private key (image.h); for each certificate it makes a GnuTLS
 * private key of the "external" kind (gnutls_privkey_import_ext4) whose
 * operations are requests to the signer (signer.h) on the child's
 * channel, WORKER_FD_SIGNER: the key's id (SHA-256 of the certificate's
 * public key), the algorithm GnuTLS chose and the digest (or, for EdDSA,
 * the data).  The call waits for the answer with the same request id
 * (answers to requests that timed out are read and dropped), at most
 * SIGNCLI_TIMEOUT_MS: a signer that is down or slow fails that handshake
 * (the connection only), never the worker.  The worker's loop waits
 * meanwhile, so after a timeout the signer is taken as down: requests
 * fail at once for SIGNCLI_DOWN_MS, then one waits at most
 * SIGNCLI_PROBE_MS, and the first answer ends it.  No decryption: the server
 * priorities have no RSA key exchange, and a client never decrypts.
 * GnuTLS asks the key what it is (the public key's algorithm and size,
 * whether it can make a given signature): answered from the certificate.
 */
#ifndef PORTCULLIS_SIGNCLI_H
#define PORTCULLIS_SIGNCLI_H

#include <gnutls/gnutls.h>
#include <gnutls/abstract.h>

#define SIGNCLI_TIMEOUT_MS	1500
#define SIGNCLI_DOWN_MS		1000
#define SIGNCLI_PROBE_MS	250

/* The channel to the signer (WORKER_FD_SIGNER), -1 for none. */
void	 signcli_init(int fd);

/*
 * A child (worker, prober), before anything else: fd must be its channel
 * to the signer (a SOCK_SEQPACKET socket), or the variable env was set by
 * someone other than the master (the process ends, saying so).  Made
 * non-blocking and the channel signcli uses.
 */
void	 signcli_child_check(int fd, const char *env);

/*
 * A private key for the certificate whose public key is pub, that asks
 * the signer: 0 with *key (gnutls_privkey_deinit frees it), or a GnuTLS
 * error.
 */
int	 signcli_key(gnutls_pubkey_t pub, gnutls_privkey_t *key);

/*
 * Whether a key of algorithm pk makes signatures of algo: GnuTLS's
 * answer, less RSA-PSS with PSS-only parameters (rsa_pss_pss_*) for a
 * plain RSA key, which TLS gives those only for an RSA-PSS certificate.
 * What a worker's key says of itself and what the signer allows.
 */
int	 signcli_algo_fits(gnutls_sign_algorithm_t algo,
	    gnutls_pk_algorithm_t pk);

#endif /* PORTCULLIS_SIGNCLI_H */
