/*
 * signer.h - the signer process: the only child that holds private keys.
 *
 * The master reads every key file (config.c) and the ACME certificates'
 * keys (acmestate.c) but puts none in the config image; it gives them to
 * the signer in a sealed memfd (CONTROL_SIGNER_KEYS, signproto.h's key
 * set) whenever the set changes, and to a respawned signer at once.  Each
 * worker, and the prober, has a SOCK_SEQPACKET channel of its own to the
 * signer (its descriptor WORKER_FD_SIGNER; the signer's end comes over
 * the control socket with CONTROL_SIGNER_CHANNEL and the child's index),
 * on which its TLS asks for a signature (signcli.h) and waits for the
 * answer.
 *
 * The signer started like the ACME process (fork, the service user when
 * root, fexecve with SIGNER_ENV and argv[0] "portcullis-signer"), with
 * fd 0 /dev/null, 1 and 2 inherited, 3 its control socket and 6 its
 * report pipe, nothing else.  It drops every privilege, sets RLIMIT_CORE
 * to 0 (not dumpable: privs_worker_drop), reports READY (generation 0)
 * and then only answers: a request is parsed by signproto_req_parse()
 * (never trusting a length a worker wrote), the key found by its id (the
 * SHA-256 of its public key, which a worker computes from the
 * certificate), the algorithm checked against the key and the operation
 * (a digest of the algorithm's hash, a PKCS#1 DigestInfo of SHA-256/384/
 * 512 for RSA_RAW, whole data only for EdDSA; no decryption: the TLS
 * priorities have no RSA key exchange), and the answer sent on the same
 * channel with the request's id.
 *
 * Key sets: the current one and the one before (a worker still on the
 * previous generation during a reload finishes its handshakes); a set
 * replaced twice over is wiped (gnutls_privkey_deinit zeroes the key,
 * our buffers are zeroed) and freed.  The buffer the memfd is read into
 * is MADV_DONTDUMP.
 */
#ifndef PORTCULLIS_SIGNER_H
#define PORTCULLIS_SIGNER_H

#include <stddef.h>
#include <stdint.h>

#include "signproto.h"

#define SIGNER_ENV		"PORTCULLIS_SIGNER"
/* Channels: every worker and every helper's index (master.c). */
#define SIGNER_CHANNELS_MAX	272

struct signer_keys;

/*
 * The signer's key sets and requests, apart from any descriptor (the
 * unit test drives them).  signer_keys_load() parses a key set
 * (signproto_keys_parse) and makes it the current one: 0, or -1 (the
 * sets as they were) with why.  signer_answer() answers one request of
 * len bytes into out (SIGNPROTO_ANS_MAX bytes): the answer's length, 0
 * when nothing can be answered (a record too short to carry an id).
 */
struct signer_keys *signer_keys_new(void);
void	 signer_keys_free(struct signer_keys *);
int	 signer_keys_load(struct signer_keys *, const unsigned char *buf,
	    size_t len, char *why, size_t whysz);
size_t	 signer_keys_count(const struct signer_keys *, int which);
size_t	 signer_answer(struct signer_keys *, const unsigned char *req,
	    size_t len, unsigned char *out);

/* The process: never returns. */
void	 signer_main(void) __attribute__((noreturn));

#endif /* PORTCULLIS_SIGNER_H */
