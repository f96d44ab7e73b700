/*
 * signer_test.c - the signer (issue 19): its wire formats (signproto.c:
 * key sets, requests and answers, every bound and every malformed
 * length refused, encode/parse round trips), its key sets and answers
 * (signer.c: RSA, ECDSA and Ed25519 keys generated here, each signature
 * kind TLS asks for verified with the public key, a key or algorithm
 * that does not fit refused, garbage answered without a crash, the
 * previous set kept and the one before it dropped), and a worker's side
 * (signcli.c) against a signer in a child over a real SOCK_SEQPACKET
 * pair: GnuTLS's own sign calls on an external key, RSA-PSS and PKCS#1
 * v1.5 included, a stale answer skipped, a silent signer failing the
 * signature after the deadline.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sys/socket.h>
#include <sys/wait.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>

#include "signcli.h"
#include "signer.h"
#include "signproto.h"

#define nitems(a)	(sizeof(a) / sizeof((a)[0]))

/* ---- signproto ---- */

static void
test_keys_round_trip(void **state)
{
	struct signproto_key in[3] = {
		{ (const unsigned char *)"one", 3 },
		{ (const unsigned char *)"second key", 10 },
		{ (const unsigned char *)"3", 1 },
	}, out[3];
	unsigned char buf[256];
	size_t len, i;

	(void)state;
	len = signproto_keys_size(in, 3);
	assert_int_equal(len, 12 + 3 * 4 + 14);
	assert_int_equal(signproto_keys_encode(in, 3, buf), len);
	assert_int_equal(signproto_keys_parse(buf, len, NULL, 0), 3);
	assert_int_equal(signproto_keys_parse(buf, len, out, 3), 3);
	for (i = 0; i < 3; i++) {
		assert_int_equal(out[i].len, in[i].len);
		assert_memory_equal(out[i].pem, in[i].pem, in[i].len);
		/* Pointers into the buffer parsed. */
		assert_true(out[i].pem > buf && out[i].pem < buf + len);
	}
	/* Room for fewer than there are: refused, not overrun. */
	assert_int_equal(signproto_keys_parse(buf, len, out, 2), -1);
	/* An empty set is one. */
	assert_int_equal(signproto_keys_encode(in, 0, buf), 12);
	assert_int_equal(signproto_keys_parse(buf, 12, NULL, 0), 0);
}

static void
test_keys_malformed(void **state)
{
	struct signproto_key in[2] = {
		{ (const unsigned char *)"abc", 3 },
		{ (const unsigned char *)"defg", 4 },
	}, empty = { (const unsigned char *)"", 0 };
	unsigned char buf[64], bad[64];
	uint32_t v;
	size_t len, i;

	(void)state;
	len = signproto_keys_encode(in, 2, buf);
	/* Every truncation and one byte more. */
	for (i = 0; i < len; i++)
		assert_int_equal(signproto_keys_parse(buf, i, NULL, 0), -1);
	memcpy(bad, buf, len);
	bad[len] = 0;
	assert_int_equal(signproto_keys_parse(bad, len + 1, NULL, 0), -1);
	/* Magic, version. */
	memcpy(bad, buf, len);
	bad[0] ^= 1;
	assert_int_equal(signproto_keys_parse(bad, len, NULL, 0), -1);
	memcpy(bad, buf, len);
	bad[4] ^= 1;
	assert_int_equal(signproto_keys_parse(bad, len, NULL, 0), -1);
	/* A count more than there is, a huge one, a zero-length key, a
	   length past the end. */
	memcpy(bad, buf, len);
	v = 3;
	memcpy(bad + 8, &v, 4);
	assert_int_equal(signproto_keys_parse(bad, len, NULL, 0), -1);
	v = UINT32_MAX;
	memcpy(bad + 8, &v, 4);
	assert_int_equal(signproto_keys_parse(bad, len, NULL, 0), -1);
	memcpy(bad, buf, len);
	v = 0;
	memcpy(bad + 12, &v, 4);
	assert_int_equal(signproto_keys_parse(bad, len, NULL, 0), -1);
	v = UINT32_MAX;
	memcpy(bad + 12, &v, 4);
	assert_int_equal(signproto_keys_parse(bad, len, NULL, 0), -1);
	/* No empty key is encoded either. */
	assert_int_equal(signproto_keys_size(&empty, 1), 0);
}

static struct signproto_req
req_of(uint32_t id, uint32_t op, uint32_t algo, const void *data, size_t len)
{
	struct signproto_req r;

	memset(&r, 0, sizeof(r));
	r.id = id;
	r.op = op;
	r.algo = algo;
	memset(r.keyid, 0xab, sizeof(r.keyid));
	r.data = data;
	r.len = len;
	return r;
}

static void
test_req_round_trip_and_bounds(void **state)
{
	unsigned char data[SIGNPROTO_DATA_MAX + 1], buf[SIGNPROTO_REQ_MAX + 8];
	struct signproto_req r, out;
	uint32_t v;
	size_t len, i;

	(void)state;
	memset(data, 'd', sizeof(data));
	r = req_of(7, SIGNPROTO_SIGN_HASH, 8, data, 32);
	len = signproto_req_encode(&r, buf);
	assert_int_equal(len, SIGNPROTO_REQ_HDR + 32);
	assert_int_equal(signproto_req_parse(buf, len, &out), 0);
	assert_int_equal(out.id, 7);
	assert_int_equal(out.op, SIGNPROTO_SIGN_HASH);
	assert_int_equal(out.algo, 8);
	assert_memory_equal(out.keyid, r.keyid, SIGNPROTO_KEYID);
	assert_int_equal(out.len, 32);
	assert_ptr_equal(out.data, buf + SIGNPROTO_REQ_HDR);
	/* Every truncation, and a byte more than the record says. */
	for (i = 0; i < len; i++)
		assert_int_equal(signproto_req_parse(buf, i, &out), -1);
	buf[len] = 0;
	assert_int_equal(signproto_req_parse(buf, len + 1, &out), -1);
	/* The length field lies: more, less, huge. */
	for (v = 0; v < 40; v++) {
		unsigned char b2[sizeof(buf)];

		memcpy(b2, buf, len);
		memcpy(b2 + 12 + SIGNPROTO_KEYID, &v, 4);
		assert_int_equal(signproto_req_parse(b2, len, &out),
		    v == 32 ? 0 : -1);
	}
	v = UINT32_MAX;
	memcpy(buf + 12 + SIGNPROTO_KEYID, &v, 4);
	assert_int_equal(signproto_req_parse(buf, len, &out), -1);
	/* The bounds by op: a digest, data, nothing for an unknown op. */
	r = req_of(1, SIGNPROTO_SIGN_HASH, 8, data, SIGNPROTO_HASH_MAX);
	assert_int_not_equal(signproto_req_encode(&r, buf), 0);
	r.len++;
	assert_int_equal(signproto_req_encode(&r, buf), 0);
	r = req_of(1, SIGNPROTO_SIGN_DATA, 8, data, SIGNPROTO_DATA_MAX);
	len = signproto_req_encode(&r, buf);
	assert_int_equal(len, SIGNPROTO_REQ_MAX);
	assert_int_equal(signproto_req_parse(buf, len, &out), 0);
	r.len++;
	assert_int_equal(signproto_req_encode(&r, buf), 0);
	/* A hash request as long as a data one: refused. */
	r = req_of(1, SIGNPROTO_SIGN_DATA, 8, data, SIGNPROTO_DATA_MAX);
	len = signproto_req_encode(&r, buf);
	v = SIGNPROTO_SIGN_HASH;
	memcpy(buf + 4, &v, 4);
	assert_int_equal(signproto_req_parse(buf, len, &out), -1);
	v = 3;
	memcpy(buf + 4, &v, 4);
	assert_int_equal(signproto_req_parse(buf, len, &out), -1);
	r = req_of(1, SIGNPROTO_SIGN_HASH, 8, data, 0);
	assert_int_equal(signproto_req_encode(&r, buf), 0);
}

static void
test_ans_round_trip_and_bounds(void **state)
{
	unsigned char sig[SIGNPROTO_SIG_MAX + 1], buf[SIGNPROTO_ANS_MAX + 8];
	struct signproto_ans a, out;
	size_t len, i;

	(void)state;
	memset(sig, 's', sizeof(sig));
	memset(&a, 0, sizeof(a));
	a.id = 9;
	a.sig = sig;
	a.len = 64;
	len = signproto_ans_encode(&a, buf);
	assert_int_equal(len, SIGNPROTO_ANS_HDR + 64);
	assert_int_equal(signproto_ans_parse(buf, len, &out), 0);
	assert_int_equal(out.id, 9);
	assert_int_equal(out.status, SIGNPROTO_OK);
	assert_int_equal(out.len, 64);
	for (i = 0; i < len; i++)
		assert_int_equal(signproto_ans_parse(buf, i, &out), -1);
	/* A failure carries no signature; a success one. */
	a.status = SIGNPROTO_E_NOKEY;
	assert_int_equal(signproto_ans_encode(&a, buf), 0);
	a.len = 0;
	len = signproto_ans_encode(&a, buf);
	assert_int_equal(len, SIGNPROTO_ANS_HDR);
	assert_int_equal(signproto_ans_parse(buf, len, &out), 0);
	assert_int_equal(out.status, SIGNPROTO_E_NOKEY);
	a.status = SIGNPROTO_OK;
	assert_int_equal(signproto_ans_encode(&a, buf), 0);
	a.status = SIGNPROTO_E_MAX + 1;
	assert_int_equal(signproto_ans_encode(&a, buf), 0);
	a.status = SIGNPROTO_OK;
	a.len = SIGNPROTO_SIG_MAX;
	assert_int_equal(signproto_ans_encode(&a, buf), SIGNPROTO_ANS_MAX);
	a.len++;
	assert_int_equal(signproto_ans_encode(&a, buf), 0);
}

/* ---- keys ---- */

struct tkey {
	gnutls_pk_algorithm_t	 pk;
	unsigned		 bits;
	gnutls_datum_t		 pem;
	gnutls_pubkey_t		 pub;
	unsigned char		 id[SIGNPROTO_KEYID];
};

static struct tkey K[3];	/* RSA, ECDSA P-256, Ed25519 */

static void
tkey_make(struct tkey *k, gnutls_pk_algorithm_t pk, unsigned bits)
{
	gnutls_x509_privkey_t x;
	gnutls_privkey_t p;
	size_t idlen = sizeof(k->id);

	k->pk = pk;
	k->bits = bits;
	assert_int_equal(gnutls_x509_privkey_init(&x), 0);
	assert_int_equal(gnutls_x509_privkey_generate(x, pk, bits, 0), 0);
	assert_int_equal(gnutls_x509_privkey_export2_pkcs8(x,
	    GNUTLS_X509_FMT_PEM, NULL, GNUTLS_PKCS_PLAIN, &k->pem), 0);
	assert_int_equal(gnutls_privkey_init(&p), 0);
	assert_int_equal(gnutls_privkey_import_x509(p, x,
	    GNUTLS_PRIVKEY_IMPORT_AUTO_RELEASE), 0);
	assert_int_equal(gnutls_pubkey_init(&k->pub), 0);
	assert_int_equal(gnutls_pubkey_import_privkey(k->pub, p, 0, 0), 0);
	assert_int_equal(gnutls_pubkey_get_key_id(k->pub,
	    GNUTLS_KEYID_USE_SHA256, k->id, &idlen), 0);
	gnutls_privkey_deinit(p);
}

static int
keys_setup(void **state)
{
	(void)state;
	tkey_make(&K[0], GNUTLS_PK_RSA, 2048);
	tkey_make(&K[1], GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(
	    GNUTLS_ECC_CURVE_SECP256R1));
	tkey_make(&K[2], GNUTLS_PK_EDDSA_ED25519, GNUTLS_CURVE_TO_BITS(
	    GNUTLS_ECC_CURVE_ED25519));
	return 0;
}

static int
keys_teardown(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < nitems(K); i++) {
		gnutls_free(K[i].pem.data);
		gnutls_pubkey_deinit(K[i].pub);
	}
	return 0;
}

/* A set of the keys given (indexes into K), loaded into ks. */
static void
load(struct signer_keys *ks, const int *which, size_t n)
{
	struct signproto_key sk[3];
	unsigned char *buf;
	size_t len, i;
	char why[128];

	for (i = 0; i < n; i++) {
		sk[i].pem = K[which[i]].pem.data;
		sk[i].len = K[which[i]].pem.size;
	}
	len = signproto_keys_size(sk, n);
	assert_true(len > 0);
	assert_non_null(buf = malloc(len));
	assert_int_equal(signproto_keys_encode(sk, n, buf), len);
	assert_int_equal(signer_keys_load(ks, buf, len, why, sizeof(why)), 0);
	free(buf);
}

/* Ask ks to sign with K[k]: the answer's status, the signature in sig. */
static uint32_t
ask(struct signer_keys *ks, int k, uint32_t op, gnutls_sign_algorithm_t algo,
    const void *data, size_t len, gnutls_datum_t *sig)
{
	unsigned char req[SIGNPROTO_REQ_MAX], ans[SIGNPROTO_ANS_MAX];
	struct signproto_req r = req_of(42, op, algo, data, len);
	struct signproto_ans a;
	size_t n;

	memcpy(r.keyid, K[k].id, sizeof(r.keyid));
	assert_int_not_equal(n = signproto_req_encode(&r, req), 0);
	n = signer_answer(ks, req, n, ans);
	assert_int_equal(signproto_ans_parse(ans, n, &a), 0);
	assert_int_equal(a.id, 42);
	if (sig != NULL && a.status == SIGNPROTO_OK) {
		assert_non_null(sig->data = malloc(a.len));
		memcpy(sig->data, a.sig, a.len);
		sig->size = (unsigned)a.len;
	}
	return a.status;
}

static const unsigned char msg[] = "the handshake's content";
/* Digest-sized data (up to SHA-512's), for requests of a given length. */
static const unsigned char dg[64];

/* The digest of msg by algo's hash. */
static gnutls_datum_t
digest(gnutls_sign_algorithm_t algo, unsigned char *out)
{
	gnutls_digest_algorithm_t h = gnutls_sign_get_hash_algorithm(algo);
	gnutls_datum_t d = { out, gnutls_hash_get_len(h) };

	assert_int_equal(gnutls_hash_fast(h, msg, sizeof(msg), out), 0);
	return d;
}

static void
assert_signs_hash(struct signer_keys *ks, int k, gnutls_sign_algorithm_t a)
{
	unsigned char h[64];
	gnutls_datum_t d = digest(a, h), sig = { NULL, 0 };

	assert_int_equal(ask(ks, k, SIGNPROTO_SIGN_HASH, a, d.data, d.size,
	    &sig), SIGNPROTO_OK);
	assert_true(gnutls_pubkey_verify_hash2(K[k].pub, a, 0, &d, &sig) >= 0);
	free(sig.data);
}

static void
test_signs_what_tls_asks(void **state)
{
	static const int all[] = { 0, 1, 2 };
	struct signer_keys *ks = signer_keys_new();
	static const unsigned char di_sha256[19] = { 0x30, 0x31, 0x30, 0x0d,
	    0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
	    0x05, 0x00, 0x04, 0x20 };
	unsigned char di[19 + 32];
	gnutls_datum_t d = { (unsigned char *)msg, sizeof(msg) };
	gnutls_datum_t sig = { NULL, 0 }, h;

	(void)state;
	assert_non_null(ks);
	load(ks, all, 3);
	assert_int_equal(signer_keys_count(ks, 0), 3);
	/* RSA-PSS (TLS 1.3 with an RSA key), PKCS#1 v1.5, ECDSA. */
	assert_signs_hash(ks, 0, GNUTLS_SIGN_RSA_PSS_RSAE_SHA256);
	assert_signs_hash(ks, 0, GNUTLS_SIGN_RSA_PSS_RSAE_SHA384);
	assert_signs_hash(ks, 0, GNUTLS_SIGN_RSA_SHA256);
	assert_signs_hash(ks, 1, GNUTLS_SIGN_ECDSA_SECP256R1_SHA256);
	assert_signs_hash(ks, 1, GNUTLS_SIGN_ECDSA_SHA384);
	/* RSA_RAW: what GnuTLS hands an external RSA key for PKCS#1 v1.5,
	   a DigestInfo. */
	memcpy(di, di_sha256, 19);
	h = digest(GNUTLS_SIGN_RSA_SHA256, di + 19);
	assert_int_equal(ask(ks, 0, SIGNPROTO_SIGN_HASH, GNUTLS_SIGN_RSA_RAW,
	    di, sizeof(di), &sig), SIGNPROTO_OK);
	assert_true(gnutls_pubkey_verify_hash2(K[0].pub,
	    GNUTLS_SIGN_RSA_SHA256, 0, &h, &sig) >= 0);
	free(sig.data);
	/* ... and nothing else raw: not a DigestInfo, not with ECDSA. */
	di[0] ^= 1;
	assert_int_equal(ask(ks, 0, SIGNPROTO_SIGN_HASH, GNUTLS_SIGN_RSA_RAW,
	    di, sizeof(di), NULL), SIGNPROTO_E_MALFORMED);
	di[0] ^= 1;
	assert_int_equal(ask(ks, 0, SIGNPROTO_SIGN_HASH, GNUTLS_SIGN_RSA_RAW,
	    di, 40, NULL), SIGNPROTO_E_MALFORMED);
	assert_int_equal(ask(ks, 1, SIGNPROTO_SIGN_HASH, GNUTLS_SIGN_RSA_RAW,
	    di, sizeof(di), NULL), SIGNPROTO_E_ALGORITHM);
	/* Ed25519 signs the data itself, and only that way. */
	assert_int_equal(ask(ks, 2, SIGNPROTO_SIGN_DATA,
	    GNUTLS_SIGN_EDDSA_ED25519, msg, sizeof(msg), &sig), SIGNPROTO_OK);
	assert_true(gnutls_pubkey_verify_data2(K[2].pub,
	    GNUTLS_SIGN_EDDSA_ED25519, 0, &d, &sig) >= 0);
	free(sig.data);
	assert_int_equal(ask(ks, 2, SIGNPROTO_SIGN_HASH,
	    GNUTLS_SIGN_EDDSA_ED25519, dg, 32, NULL),
	    SIGNPROTO_E_ALGORITHM);
	assert_int_equal(ask(ks, 1, SIGNPROTO_SIGN_DATA,
	    GNUTLS_SIGN_ECDSA_SHA256, msg, sizeof(msg), NULL),
	    SIGNPROTO_E_ALGORITHM);
	/* An algorithm of another key kind, an unknown one, a digest of the
	   wrong size. */
	assert_int_equal(ask(ks, 1, SIGNPROTO_SIGN_HASH,
	    GNUTLS_SIGN_RSA_PSS_RSAE_SHA256, dg, 32, NULL),
	    SIGNPROTO_E_ALGORITHM);
	assert_int_equal(ask(ks, 0, SIGNPROTO_SIGN_HASH,
	    GNUTLS_SIGN_ECDSA_SHA256, dg, 32, NULL), SIGNPROTO_E_ALGORITHM);
	assert_int_equal(ask(ks, 0, SIGNPROTO_SIGN_HASH,
	    GNUTLS_SIGN_RSA_PSS_SHA256, dg, 32, NULL), SIGNPROTO_E_ALGORITHM);
	assert_int_equal(ask(ks, 0, SIGNPROTO_SIGN_HASH, 0xfff0, dg, 32,
	    NULL), SIGNPROTO_E_ALGORITHM);
	assert_int_equal(ask(ks, 0, SIGNPROTO_SIGN_HASH,
	    GNUTLS_SIGN_RSA_PSS_RSAE_SHA256, dg, 31, NULL),
	    SIGNPROTO_E_MALFORMED);
	assert_int_equal(ask(ks, 1, SIGNPROTO_SIGN_HASH,
	    GNUTLS_SIGN_ECDSA_SHA256, dg, 48, NULL), SIGNPROTO_E_MALFORMED);
	signer_keys_free(ks);
}

static void
test_key_sets_rotate(void **state)
{
	static const int rsa[] = { 0 }, ec[] = { 1 }, ed[] = { 2 };
	struct signer_keys *ks = signer_keys_new();
	unsigned char h[64];
	gnutls_datum_t d = digest(GNUTLS_SIGN_ECDSA_SHA256, h);
	char why[128];

	(void)state;
	/* No key at all. */
	assert_int_equal(ask(ks, 1, SIGNPROTO_SIGN_HASH,
	    GNUTLS_SIGN_ECDSA_SHA256, d.data, d.size, NULL), SIGNPROTO_E_NOKEY);
	load(ks, ec, 1);
	load(ks, rsa, 1);
	/* The previous set still signs (a worker still on it). */
	assert_int_equal(ask(ks, 1, SIGNPROTO_SIGN_HASH,
	    GNUTLS_SIGN_ECDSA_SHA256, d.data, d.size, NULL), SIGNPROTO_OK);
	load(ks, ed, 1);
	/* Replaced twice over: gone. */
	assert_int_equal(ask(ks, 1, SIGNPROTO_SIGN_HASH,
	    GNUTLS_SIGN_ECDSA_SHA256, d.data, d.size, NULL), SIGNPROTO_E_NOKEY);
	assert_int_equal(signer_keys_count(ks, 0), 1);
	assert_int_equal(signer_keys_count(ks, 1), 1);
	/* A malformed set changes nothing. */
	assert_int_equal(signer_keys_load(ks, (const unsigned char *)"PCKS",
	    4, why, sizeof(why)), -1);
	assert_int_equal(signer_keys_count(ks, 0), 1);
	assert_int_equal(signer_keys_count(ks, 1), 1);
	signer_keys_free(ks);
}

/* Garbage from a worker: an answer (MALFORMED with its id) or none. */
static void
test_garbage_requests(void **state)
{
	static const int all[] = { 0, 1, 2 };
	struct signer_keys *ks = signer_keys_new();
	unsigned char req[SIGNPROTO_REQ_MAX + 64], ans[SIGNPROTO_ANS_MAX];
	struct signproto_ans a;
	size_t i, len, n;
	unsigned seed = 19;

	(void)state;
	load(ks, all, 3);
	assert_int_equal(signer_answer(ks, req, 0, ans), 0);
	assert_int_equal(signer_answer(ks, req, 3, ans), 0);
	for (i = 0; i < 2000; i++) {
		len = (size_t)rand_r(&seed) % sizeof(req);
		for (n = 0; n < len; n++)
			req[n] = (unsigned char)rand_r(&seed);
		n = signer_answer(ks, req, len, ans);
		if (len < 4) {
			assert_int_equal(n, 0);
			continue;
		}
		assert_int_equal(signproto_ans_parse(ans, n, &a), 0);
		assert_memory_equal(&a.id, req, 4);
		assert_int_not_equal(a.status, SIGNPROTO_OK);
	}
	signer_keys_free(ks);
}

/* ---- a worker's side, against a signer in a child ---- */

/*
 * The child: answer every request on fd with ks, except that a request
 * whose data starts with "stale" first gets an answer with another id,
 * and one that starts with "mute" gets none.
 */
static void
serve(int fd, struct signer_keys *ks)
{
	unsigned char req[SIGNPROTO_REQ_MAX + 1], ans[SIGNPROTO_ANS_MAX];
	struct signproto_req r;
	struct signproto_ans a;
	ssize_t n;
	size_t alen;

	while ((n = recv(fd, req, sizeof(req), 0)) > 0) {
		if (signproto_req_parse(req, (size_t)n, &r) == 0 &&
		    r.len >= 5 && memcmp(r.data, "mute", 4) == 0)
			continue;
		if (signproto_req_parse(req, (size_t)n, &r) == 0 &&
		    r.len >= 5 && memcmp(r.data, "stale", 5) == 0) {
			memset(&a, 0, sizeof(a));
			a.id = r.id - 1;
			a.sig = (const unsigned char *)"x";
			a.len = 1;
			alen = signproto_ans_encode(&a, ans);
			(void)send(fd, ans, alen, 0);
		}
		alen = signer_answer(ks, req, (size_t)n, ans);
		(void)send(fd, ans, alen, 0);
	}
	_exit(0);
}

/* key (external) signs d with algo; K[k]'s public key verifies it. */
static void
sign_verify(gnutls_privkey_t key, int k, gnutls_sign_algorithm_t algo,
    const gnutls_datum_t *d)
{
	gnutls_datum_t sig;

	assert_int_equal(gnutls_privkey_sign_data2(key, algo, 0, d, &sig), 0);
	assert_true(gnutls_pubkey_verify_data2(K[k].pub, algo, 0, d, &sig) >=
	    0);
	gnutls_free(sig.data);
}

static void
test_external_keys(void **state)
{
	static const int all[] = { 0, 1, 2 };
	struct signer_keys *ks = signer_keys_new();
	gnutls_privkey_t key;
	gnutls_datum_t d = { (unsigned char *)msg, sizeof(msg) }, sig;
	unsigned char stale[32];
	struct timespec t0, t1;
	double took;
	int sv[2];
	unsigned bits;
	pid_t pid;

	(void)state;
	load(ks, all, 3);
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	if ((pid = fork()) == 0) {
		close(sv[0]);
		serve(sv[1], ks);
	}
	close(sv[1]);
	signcli_init(sv[0]);

	/* RSA: what it says of itself, then RSA-PSS and PKCS#1 v1.5. */
	assert_int_equal(signcli_key(K[0].pub, &key), 0);
	assert_int_equal(gnutls_privkey_get_pk_algorithm(key, &bits),
	    GNUTLS_PK_RSA);
	assert_int_equal(bits, 2048);
	sign_verify(key, 0, GNUTLS_SIGN_RSA_PSS_RSAE_SHA256, &d);
	sign_verify(key, 0, GNUTLS_SIGN_RSA_SHA384, &d);
	gnutls_privkey_deinit(key);

	/* ECDSA and Ed25519. */
	assert_int_equal(signcli_key(K[1].pub, &key), 0);
	sign_verify(key, 1, GNUTLS_SIGN_ECDSA_SECP256R1_SHA256, &d);
	gnutls_privkey_deinit(key);
	assert_int_equal(signcli_key(K[2].pub, &key), 0);
	sign_verify(key, 2, GNUTLS_SIGN_EDDSA_ED25519, &d);
	/* An answer with another id is skipped, the right one taken. */
	memcpy(stale, "stale", 5);
	memset(stale + 5, 'z', sizeof(stale) - 5);
	d.data = stale;
	d.size = sizeof(stale);
	sign_verify(key, 2, GNUTLS_SIGN_EDDSA_ED25519, &d);
	/* No answer: the signature fails at the deadline, no sooner. */
	memcpy(stale, "mute", 4);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_true(gnutls_privkey_sign_data2(key, GNUTLS_SIGN_EDDSA_ED25519,
	    0, &d, &sig) < 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	took = (double)(t1.tv_sec - t0.tv_sec) +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	assert_true(took >= SIGNCLI_TIMEOUT_MS / 1000.0 - 0.05);
	assert_true(took < SIGNCLI_TIMEOUT_MS / 1000.0 + 2);
	/* Down now: the next fails at once, without asking ... */
	d.data = (unsigned char *)msg;
	d.size = sizeof(msg);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_true(gnutls_privkey_sign_data2(key, GNUTLS_SIGN_EDDSA_ED25519,
	    0, &d, &sig) < 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	took = (double)(t1.tv_sec - t0.tv_sec) +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	assert_true(took < 0.1);
	/* ... and once that is over, a probe that is answered ends it. */
	usleep((SIGNCLI_DOWN_MS + 50) * 1000);
	sign_verify(key, 2, GNUTLS_SIGN_EDDSA_ED25519, &d);
	sign_verify(key, 2, GNUTLS_SIGN_EDDSA_ED25519, &d);
	gnutls_privkey_deinit(key);

	/* A signer that is gone: fails at once. */
	close(sv[0]);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	close(sv[1]);
	signcli_init(sv[0]);
	assert_int_equal(signcli_key(K[1].pub, &key), 0);
	d.data = (unsigned char *)msg;
	d.size = sizeof(msg);
	assert_true(gnutls_privkey_sign_data2(key,
	    GNUTLS_SIGN_ECDSA_SECP256R1_SHA256, 0, &d, &sig) < 0);
	gnutls_privkey_deinit(key);
	close(sv[0]);
	signcli_init(-1);
	signer_keys_free(ks);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keys_round_trip),
		cmocka_unit_test(test_keys_malformed),
		cmocka_unit_test(test_req_round_trip_and_bounds),
		cmocka_unit_test(test_ans_round_trip_and_bounds),
		cmocka_unit_test(test_signs_what_tls_asks),
		cmocka_unit_test(test_key_sets_rotate),
		cmocka_unit_test(test_garbage_requests),
		cmocka_unit_test(test_external_keys),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, keys_setup, keys_teardown);
}
