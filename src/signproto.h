/*
 * signproto.h - the signer's wire formats: the key set the master gives
 * it, and the requests and answers on a worker's channel.
 *
 * Both are pure, bounds-checked codecs over a byte buffer (no GnuTLS, no
 * descriptor): the signer holds every private key and must never trust a
 * length, count or offset a worker wrote, so everything it reads from a
 * channel goes through signproto_req_parse() first, and the key set the
 * master writes goes through signproto_keys_parse() all the same.
 *
 * Key set (a memfd from the master, CONTROL_SIGNER_KEYS), native byte
 * order (both ends are the same binary):
 *   magic "PCKS" (u32), version (u32), count (u32, <= SIGNPROTO_KEYS_MAX),
 *   count times { len (u32, 1..SIGNPROTO_KEY_MAX), len bytes (a PEM
 *   private key) }, and nothing after.
 *
 * Request (worker -> signer, one SOCK_SEQPACKET record):
 *   id (u32), op (u32), algorithm (u32: gnutls_sign_algorithm_t),
 *   key id (SIGNPROTO_KEYID bytes), len (u32), len bytes of data; the
 *   record is exactly that long.  op SIGN_HASH: the digest of the
 *   algorithm's hash (1..SIGNPROTO_HASH_MAX bytes); op SIGN_DATA: the
 *   data itself, for algorithms that cannot sign a digest (EdDSA),
 *   1..SIGNPROTO_DATA_MAX bytes.
 *
 * Answer (signer -> worker, one record):
 *   id (u32), status (u32: 0 ok, else a SIGNPROTO_E_*), len (u32,
 *   0..SIGNPROTO_SIG_MAX, 0 unless ok), len bytes of signature.
 */
#ifndef PORTCULLIS_SIGNPROTO_H
#define PORTCULLIS_SIGNPROTO_H

#include <stddef.h>
#include <stdint.h>

#define SIGNPROTO_MAGIC		0x534b4350u	/* "PCKS" */
#define SIGNPROTO_VERSION	1
#define SIGNPROTO_KEYS_MAX	65536		/* keys in a set */
#define SIGNPROTO_KEY_MAX	(1024 * 1024)	/* a key file (CONFIG_PEM_MAX) */
#define SIGNPROTO_SET_MAX	(64u * 1024 * 1024)	/* a whole set */

/* SHA-256 of the key's SubjectPublicKeyInfo (DER). */
#define SIGNPROTO_KEYID		32
/* The longest digest, or the PKCS#1 DigestInfo of one (SHA-512: 83). */
#define SIGNPROTO_HASH_MAX	96
/*
 * What a TLS handshake asks an EdDSA key to sign whole: TLS 1.3's
 * CertificateVerify content (64 spaces, a 33-byte context string, a NUL
 * and a transcript hash of at most 64 bytes: 162) or TLS 1.2's
 * ServerKeyExchange parameters (two 32-byte randoms, 4 bytes and a
 * public key of at most 97 bytes on the groups we offer: 165).
 */
#define SIGNPROTO_DATA_MAX	512
/* A signature: RSA up to 8192 bits. */
#define SIGNPROTO_SIG_MAX	1024

#define SIGNPROTO_REQ_HDR	(4 * 3 + SIGNPROTO_KEYID + 4)
#define SIGNPROTO_REQ_MAX	(SIGNPROTO_REQ_HDR + SIGNPROTO_DATA_MAX)
#define SIGNPROTO_ANS_HDR	(4 * 3)
#define SIGNPROTO_ANS_MAX	(SIGNPROTO_ANS_HDR + SIGNPROTO_SIG_MAX)

enum signproto_op {
	SIGNPROTO_SIGN_HASH = 1,
	SIGNPROTO_SIGN_DATA = 2
};

enum signproto_status {
	SIGNPROTO_OK = 0,
	SIGNPROTO_E_MALFORMED,		/* the request did not parse */
	SIGNPROTO_E_NOKEY,		/* no key with that id */
	SIGNPROTO_E_ALGORITHM,		/* not one for that key or op */
	SIGNPROTO_E_FAILED,		/* the signature failed */
	SIGNPROTO_E_MAX = SIGNPROTO_E_FAILED
};

struct signproto_req {
	uint32_t		 id;
	uint32_t		 op;		/* enum signproto_op */
	uint32_t		 algo;		/* gnutls_sign_algorithm_t */
	unsigned char		 keyid[SIGNPROTO_KEYID];
	const unsigned char	*data;		/* into the parsed buffer */
	size_t			 len;
};

struct signproto_ans {
	uint32_t		 id;
	uint32_t		 status;	/* enum signproto_status */
	const unsigned char	*sig;		/* into the parsed buffer */
	size_t			 len;
};

/* One key of a parsed set: bytes inside the set's buffer. */
struct signproto_key {
	const unsigned char	*pem;
	size_t			 len;
};

/*
 * Parse a key set of len bytes.  Returns the number of keys (0 to
 * SIGNPROTO_KEYS_MAX) and, when keys is not NULL, fills keys[0..n-1]
 * (the caller gives room for max, and n > max is refused); -1 if
 * anything is off (magic, version, a count or length out of range, bytes
 * missing or left over).  Pure.
 */
long	 signproto_keys_parse(const unsigned char *buf, size_t len,
	    struct signproto_key *keys, size_t max);

/*
 * The size of a set of n keys of the given lengths (0 if over
 * SIGNPROTO_SET_MAX or a length is out of range), and its encoding into
 * out (at least that size).  Returns the length written.
 */
size_t	 signproto_keys_size(const struct signproto_key *keys, size_t n);
size_t	 signproto_keys_encode(const struct signproto_key *keys, size_t n,
	    unsigned char *out);

/* Requests: parse (0, or -1 when malformed; pure), encode (the length,
   0 if r does not fit the bounds; out has SIGNPROTO_REQ_MAX bytes). */
int	 signproto_req_parse(const unsigned char *buf, size_t len,
	    struct signproto_req *r);
size_t	 signproto_req_encode(const struct signproto_req *r,
	    unsigned char *out);

/* Answers: the same (out has SIGNPROTO_ANS_MAX bytes). */
int	 signproto_ans_parse(const unsigned char *buf, size_t len,
	    struct signproto_ans *a);
size_t	 signproto_ans_encode(const struct signproto_ans *a,
	    unsigned char *out);

#endif /* PORTCULLIS_SIGNPROTO_H */
