/*
 * acmecrypto_test.c - ACME's cryptography, checked from the outside: JWS
 * split with jansson and verified with GnuTLS from the JWK alone (r||s
 * turned back into DER), thumbprints, EAB MACs recomputed, CSRs and
 * TLS-ALPN-01 certificates parsed and checked field by field, issued
 * chains (a CA and a leaf made here) checked for the key, the name, the
 * dates and the ARI id, and keys of other kinds refused.  base64url is
 * decoded here by a strict decoder of the test's own.
 */
#include "autoconf.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gnutls/gnutls.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>
#include <jansson.h>

#include "acmecrypto.h"

#define OID_ACME_ID	"1.3.6.1.5.5.7.1.31"

static const char b64u_alpha[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Strict base64url, no padding: malloc'd bytes (plus a NUL), or NULL. */
static unsigned char *
b64u_dec(const char *s, size_t *outlen)
{
	size_t len = strlen(s), i, n = 0;
	unsigned char *out;
	uint32_t acc = 0;
	int bits = 0;

	if (len % 4 == 1)
		return NULL;
	if ((out = malloc(len * 3 / 4 + 1)) == NULL)
		return NULL;
	for (i = 0; i < len; i++) {
		const char *p = s[i] != '\0' ? strchr(b64u_alpha, s[i]) : NULL;

		if (p == NULL) {
			free(out);
			return NULL;
		}
		acc = (acc << 6) | (uint32_t)(p - b64u_alpha);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[n++] = (unsigned char)(acc >> bits);
		}
	}
	/* the bits left over must be zero (canonical form) */
	if ((acc & ((1u << bits) - 1)) != 0) {
		free(out);
		return NULL;
	}
	out[n] = '\0';
	*outlen = n;
	return out;
}

/* base64url of data, no padding, into out (big enough). */
static void
b64u_enc(const unsigned char *d, size_t len, char *out)
{
	size_t i, n = 0;
	uint32_t acc = 0;
	int bits = 0;

	for (i = 0; i < len; i++) {
		acc = (acc << 8) | d[i];
		bits += 8;
		while (bits >= 6) {
			bits -= 6;
			out[n++] = b64u_alpha[(acc >> bits) & 63];
		}
	}
	if (bits > 0)
		out[n++] = b64u_alpha[(acc << (6 - bits)) & 63];
	out[n] = '\0';
}

/* ---- keys made here ---- */

static gnutls_privkey_t
gen_key(gnutls_pk_algorithm_t algo, unsigned bits)
{
	gnutls_privkey_t pk;

	assert_int_equal(gnutls_privkey_init(&pk), 0);
	assert_int_equal(gnutls_privkey_generate(pk, algo, bits, 0), 0);
	return pk;
}

static gnutls_privkey_t
gen_p256(void)
{
	return gen_key(GNUTLS_PK_ECDSA,
	    GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1));
}

/* pk as PEM: PKCS#8 or the algorithm's own form (SEC 1, PKCS#1). */
static char *
key_to_pem(gnutls_privkey_t pk, bool pkcs8)
{
	gnutls_x509_privkey_t xk;
	gnutls_datum_t out;
	char *s;

	assert_int_equal(gnutls_privkey_export_x509(pk, &xk), 0);
	if (pkcs8)
		assert_int_equal(gnutls_x509_privkey_export2_pkcs8(xk,
		    GNUTLS_X509_FMT_PEM, NULL, GNUTLS_PKCS_PLAIN, &out), 0);
	else
		assert_int_equal(gnutls_x509_privkey_export2(xk,
		    GNUTLS_X509_FMT_PEM, &out), 0);
	gnutls_x509_privkey_deinit(xk);
	s = strndup((char *)out.data, out.size);
	assert_non_null(s);
	gnutls_free(out.data);
	return s;
}

/* ---- JWS ---- */

struct jws {
	json_t		*hdr;		/* the protected header, parsed */
	char		*hdr_text;
	char		*payload;
	unsigned char	 sig[64];
	size_t		 siglen;
	char		*input;		/* protected "." payload, as sent */
};

static void
jws_split(const char *text, struct jws *j)
{
	json_error_t je;
	json_t *o;
	const char *p, *pl, *sg;
	unsigned char *sig;
	size_t n;

	o = json_loads(text, JSON_REJECT_DUPLICATES, &je);
	assert_non_null(o);
	assert_int_equal(json_object_size(o), 3);
	p = json_string_value(json_object_get(o, "protected"));
	pl = json_string_value(json_object_get(o, "payload"));
	sg = json_string_value(json_object_get(o, "signature"));
	assert_non_null(p);
	assert_non_null(pl);
	assert_non_null(sg);
	j->hdr_text = (char *)b64u_dec(p, &n);
	assert_non_null(j->hdr_text);
	assert_int_equal(strlen(j->hdr_text), n);
	j->hdr = json_loads(j->hdr_text, JSON_REJECT_DUPLICATES, &je);
	assert_non_null(j->hdr);
	j->payload = (char *)b64u_dec(pl, &n);
	assert_non_null(j->payload);
	assert_int_equal(strlen(j->payload), n);
	sig = b64u_dec(sg, &n);
	assert_non_null(sig);
	assert_in_range(n, 32, 64);
	memcpy(j->sig, sig, n);
	j->siglen = n;
	free(sig);
	assert_true(asprintf(&j->input, "%s.%s", p, pl) > 0);
	json_decref(o);
}

static void
jws_free(struct jws *j)
{
	json_decref(j->hdr);
	free(j->hdr_text);
	free(j->payload);
	free(j->input);
	memset(j, 0, sizeof(*j));
}

/* The public key a JWK text names (P-256, 32-byte x and y). */
static gnutls_pubkey_t
jwk_pubkey(const char *jwk_text)
{
	json_error_t je;
	json_t *o;
	gnutls_pubkey_t pub;
	gnutls_datum_t x, y;
	size_t xl, yl;

	o = json_loads(jwk_text, JSON_REJECT_DUPLICATES, &je);
	assert_non_null(o);
	assert_int_equal(json_object_size(o), 4);
	assert_string_equal(json_string_value(json_object_get(o, "kty")),
	    "EC");
	assert_string_equal(json_string_value(json_object_get(o, "crv")),
	    "P-256");
	x.data = b64u_dec(json_string_value(json_object_get(o, "x")), &xl);
	y.data = b64u_dec(json_string_value(json_object_get(o, "y")), &yl);
	assert_non_null(x.data);
	assert_non_null(y.data);
	assert_int_equal(xl, 32);
	assert_int_equal(yl, 32);
	x.size = y.size = 32;
	assert_int_equal(gnutls_pubkey_init(&pub), 0);
	assert_int_equal(gnutls_pubkey_import_ecc_raw(pub,
	    GNUTLS_ECC_CURVE_SECP256R1, &x, &y), 0);
	free(x.data);
	free(y.data);
	json_decref(o);
	return pub;
}

/* Does sig (r||s) verify over input under pub? */
static bool
es256_ok(gnutls_pubkey_t pub, const char *input, const unsigned char *rs)
{
	gnutls_datum_t r = { (unsigned char *)rs, 32 };
	gnutls_datum_t s = { (unsigned char *)rs + 32, 32 };
	gnutls_datum_t der, in;
	int ret;

	assert_int_equal(gnutls_encode_rs_value(&der, &r, &s), 0);
	in.data = (unsigned char *)input;
	in.size = (unsigned)strlen(input);
	ret = gnutls_pubkey_verify_data2(pub, GNUTLS_SIGN_ECDSA_SHA256, 0,
	    &in, &der);
	gnutls_free(der.data);
	return ret >= 0;
}

static void
test_jwk_shape(void **state)
{
	struct acme_key *k;
	char err[256], *jwk;
	gnutls_pubkey_t pub;

	(void)state;
	k = acme_key_generate(err, sizeof(err));
	assert_non_null(k);
	jwk = acme_key_jwk(k);
	assert_non_null(jwk);
	/* members in order, no white space; 43 characters for 32 bytes */
	assert_int_equal(strncmp(jwk,
	    "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"", 31), 0);
	assert_int_equal(jwk[31 + 43], '"');
	assert_int_equal(strncmp(jwk + 31 + 43, "\",\"y\":\"", 7), 0);
	assert_string_equal(jwk + 31 + 43 + 7 + 43, "\"}");
	assert_null(strpbrk(jwk, " \n\t="));
	pub = jwk_pubkey(jwk);
	gnutls_pubkey_deinit(pub);
	free(jwk);
	acme_key_free(k);
}

/*
 * A coordinate with a leading zero byte is still 32 bytes in the JWK
 * (RFC 7518 6.2.1.2): keys are made until one has x or y below 2^248.
 */
static void
test_jwk_padding(void **state)
{
	struct acme_key *k;
	char err[256], *jwk;
	gnutls_datum_t x, y;
	gnutls_ecc_curve_t curve;
	gnutls_pubkey_t pub;
	unsigned tries;
	bool found = false;

	(void)state;
	for (tries = 0; tries < 8192 && !found; tries++) {
		char *pem;
		size_t len;

		k = acme_key_generate(err, sizeof(err));
		assert_non_null(k);
		/* GnuTLS's own view of the point, through the PEM */
		assert_int_equal(acme_key_pem(k, &pem, &len), 0);
		{
			gnutls_privkey_t pk;
			gnutls_datum_t d = { (unsigned char *)pem,
			    (unsigned)len };

			assert_int_equal(gnutls_privkey_init(&pk), 0);
			assert_int_equal(gnutls_privkey_import_x509_raw(pk, &d,
			    GNUTLS_X509_FMT_PEM, NULL, 0), 0);
			assert_int_equal(gnutls_privkey_export_ecc_raw2(pk,
			    &curve, &x, &y, NULL, GNUTLS_EXPORT_FLAG_NO_LZ), 0);
			gnutls_privkey_deinit(pk);
		}
		free(pem);
		if (x.size < 32 || y.size < 32) {
			found = true;
			jwk = acme_key_jwk(k);
			assert_non_null(jwk);
			pub = jwk_pubkey(jwk);	/* checks 32 bytes each */
			gnutls_pubkey_deinit(pub);
			free(jwk);
		}
		gnutls_free(x.data);
		gnutls_free(y.data);
		acme_key_free(k);
	}
	assert_true(found);
}

static void
check_jws(const struct acme_key *k, const char *kid, const char *payload)
{
	struct jws j;
	char err[256], *text, *jwk, *want;
	gnutls_pubkey_t pub;
	unsigned char bad[64];

	text = acme_jws(k, kid, "nonce-1_x", "https://ca.test/acme/new-order",
	    payload, err, sizeof(err));
	assert_non_null(text);
	jws_split(text, &j);
	jwk = acme_key_jwk(k);
	assert_non_null(jwk);
	assert_string_equal(json_string_value(json_object_get(j.hdr, "alg")),
	    "ES256");
	assert_string_equal(json_string_value(json_object_get(j.hdr,
	    "nonce")), "nonce-1_x");
	assert_string_equal(json_string_value(json_object_get(j.hdr, "url")),
	    "https://ca.test/acme/new-order");
	assert_int_equal(json_object_size(j.hdr), 4);
	if (kid != NULL) {
		assert_string_equal(json_string_value(json_object_get(j.hdr,
		    "kid")), kid);
		assert_null(json_object_get(j.hdr, "jwk"));
		assert_true(asprintf(&want, "{\"alg\":\"ES256\",\"kid\":\"%s\","
		    "\"nonce\":\"nonce-1_x\",\"url\":\"https://ca.test/acme/"
		    "new-order\"}", kid) > 0);
	} else {
		assert_null(json_object_get(j.hdr, "kid"));
		assert_true(json_is_object(json_object_get(j.hdr, "jwk")));
		assert_true(asprintf(&want, "{\"alg\":\"ES256\",\"jwk\":%s,"
		    "\"nonce\":\"nonce-1_x\",\"url\":\"https://ca.test/acme/"
		    "new-order\"}", jwk) > 0);
	}
	assert_string_equal(j.hdr_text, want);
	assert_string_equal(j.payload, payload != NULL ? payload : "");
	assert_int_equal(j.siglen, 64);
	/* verified with nothing but the JWK */
	pub = jwk_pubkey(jwk);
	assert_true(es256_ok(pub, j.input, j.sig));
	memcpy(bad, j.sig, sizeof(bad));
	bad[40] ^= 0x01;
	assert_false(es256_ok(pub, j.input, bad));
	gnutls_pubkey_deinit(pub);
	free(want);
	free(jwk);
	jws_free(&j);
	free(text);
}

static void
test_jws(void **state)
{
	struct acme_key *k;
	char err[256];
	int i;

	(void)state;
	k = acme_key_generate(err, sizeof(err));
	assert_non_null(k);
	check_jws(k, NULL, "{\"termsOfServiceAgreed\":true}");
	check_jws(k, "https://ca.test/acme/acct/1", "{\"identifiers\":[]}");
	/* POST-as-GET */
	check_jws(k, "https://ca.test/acme/acct/1", NULL);
	check_jws(k, "https://ca.test/acme/acct/1", "");
	/* enough signatures that some r or s has a leading zero byte */
	for (i = 0; i < 300; i++)
		check_jws(k, "https://ca.test/acme/acct/1", "{}");
	acme_key_free(k);
}

static void
test_jws_refuses(void **state)
{
	struct acme_key *k;
	char err[256];

	(void)state;
	k = acme_key_generate(err, sizeof(err));
	assert_non_null(k);
	err[0] = '\0';
	assert_null(acme_jws(k, NULL, "a\"b", "https://x/", "", err,
	    sizeof(err)));
	assert_true(err[0] != '\0');
	assert_null(acme_jws(k, "k\\", "n", "https://x/", "", err,
	    sizeof(err)));
	assert_null(acme_jws(k, NULL, NULL, "https://x/", "", err,
	    sizeof(err)));
	assert_null(acme_jws(k, NULL, "n", "https://x/\n", "", err,
	    sizeof(err)));
	acme_key_free(k);
}

static void
test_thumbprint(void **state)
{
	struct acme_key *k, *k2;
	char err[256], tp[44], tp2[44], want[64], *jwk, *jwk2, *pem, *authz;
	unsigned char md[32];
	size_t len;

	(void)state;
	k = acme_key_generate(err, sizeof(err));
	assert_non_null(k);
	jwk = acme_key_jwk(k);
	assert_non_null(jwk);
	assert_int_equal(gnutls_hash_fast(GNUTLS_DIG_SHA256, jwk, strlen(jwk),
	    md), 0);
	b64u_enc(md, sizeof(md), want);
	assert_int_equal(strlen(want), 43);
	assert_int_equal(acme_key_thumbprint(k, tp), 0);
	assert_string_equal(tp, want);
	/* acme_sha256 is SHA-256 */
	{
		unsigned char md2[32];

		acme_sha256(jwk, strlen(jwk), md2);
		assert_memory_equal(md, md2, 32);
	}
	/* the same through PEM and back */
	assert_int_equal(acme_key_pem(k, &pem, &len), 0);
	assert_int_equal(strlen(pem), len);
	assert_int_equal(strncmp(pem, "-----BEGIN PRIVATE KEY-----\n", 28),
	    0);
	k2 = acme_key_load(pem, len, err, sizeof(err));
	assert_non_null(k2);
	jwk2 = acme_key_jwk(k2);
	assert_string_equal(jwk, jwk2);
	assert_int_equal(acme_key_thumbprint(k2, tp2), 0);
	assert_string_equal(tp, tp2);
	/* key authorization */
	authz = acme_key_authz(k2, "tok-EN_1");
	assert_non_null(authz);
	assert_int_equal(strncmp(authz, "tok-EN_1.", 9), 0);
	assert_string_equal(authz + 9, tp);
	free(authz);
	free(jwk2);
	acme_key_free(k2);
	free(pem);
	free(jwk);
	acme_key_free(k);
}

/* Keys made by GnuTLS in other forms: P-256 loads, the rest is refused. */
static void
test_key_load(void **state)
{
	gnutls_privkey_t pk;
	struct acme_key *k;
	char err[256], *pem, *jwk;
	gnutls_datum_t x, y;
	gnutls_ecc_curve_t curve;
	gnutls_pubkey_t pub;

	(void)state;
	/* SEC 1 P-256 */
	pk = gen_p256();
	pem = key_to_pem(pk, false);
	assert_non_null(strstr(pem, "BEGIN EC PRIVATE KEY"));
	k = acme_key_load(pem, strlen(pem), err, sizeof(err));
	assert_non_null(k);
	jwk = acme_key_jwk(k);
	pub = jwk_pubkey(jwk);
	/* the JWK is this key's point */
	{
		gnutls_datum_t x2, y2;

		assert_int_equal(gnutls_privkey_export_ecc_raw2(pk, &curve,
		    &x, &y, NULL, 0), 0);
		assert_int_equal(gnutls_pubkey_export_ecc_raw2(pub, &curve,
		    &x2, &y2, 0), 0);
		assert_int_equal(x.size, x2.size);
		assert_memory_equal(x.data, x2.data, x.size);
		assert_int_equal(y.size, y2.size);
		assert_memory_equal(y.data, y2.data, y.size);
		gnutls_free(x.data);
		gnutls_free(y.data);
		gnutls_free(x2.data);
		gnutls_free(y2.data);
	}
	gnutls_pubkey_deinit(pub);
	free(jwk);
	acme_key_free(k);
	free(pem);
	gnutls_privkey_deinit(pk);

	/* P-384, both forms */
	pk = gen_key(GNUTLS_PK_ECDSA,
	    GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP384R1));
	pem = key_to_pem(pk, true);
	err[0] = '\0';
	assert_null(acme_key_load(pem, strlen(pem), err, sizeof(err)));
	assert_non_null(strstr(err, "P-256"));
	free(pem);
	pem = key_to_pem(pk, false);
	assert_null(acme_key_load(pem, strlen(pem), err, sizeof(err)));
	free(pem);
	gnutls_privkey_deinit(pk);

	/* RSA, both forms */
	pk = gen_key(GNUTLS_PK_RSA, 2048);
	pem = key_to_pem(pk, true);
	err[0] = '\0';
	assert_null(acme_key_load(pem, strlen(pem), err, sizeof(err)));
	assert_non_null(strstr(err, "ECDSA"));
	free(pem);
	pem = key_to_pem(pk, false);
	assert_null(acme_key_load(pem, strlen(pem), err, sizeof(err)));
	free(pem);
	gnutls_privkey_deinit(pk);

	/* Ed25519 */
	pk = gen_key(GNUTLS_PK_EDDSA_ED25519, 256);
	pem = key_to_pem(pk, true);
	assert_null(acme_key_load(pem, strlen(pem), err, sizeof(err)));
	free(pem);
	gnutls_privkey_deinit(pk);

	/* not a key */
	err[0] = '\0';
	assert_null(acme_key_load("hello", 5, err, sizeof(err)));
	assert_true(err[0] != '\0');
	assert_null(acme_key_load("", 0, err, sizeof(err)));
}

static void
check_eab(const char *key_b64u, const unsigned char *key, size_t keylen)
{
	struct acme_key *k;
	struct jws j;
	char err[256], *text, *jwk;
	unsigned char mac[32];

	k = acme_key_generate(err, sizeof(err));
	assert_non_null(k);
	text = acme_eab(k, "kid-1", key_b64u, "https://ca.test/new-acct", err,
	    sizeof(err));
	assert_non_null(text);
	jws_split(text, &j);
	assert_string_equal(j.hdr_text, "{\"alg\":\"HS256\",\"kid\":\"kid-1\","
	    "\"url\":\"https://ca.test/new-acct\"}");
	jwk = acme_key_jwk(k);
	assert_string_equal(j.payload, jwk);
	assert_int_equal(gnutls_hmac_fast(GNUTLS_MAC_SHA256, key, keylen,
	    j.input, strlen(j.input), mac), 0);
	assert_int_equal(j.siglen, 32);
	assert_memory_equal(mac, j.sig, 32);
	free(jwk);
	jws_free(&j);
	free(text);
	acme_key_free(k);
}

static void
test_eab(void **state)
{
	struct acme_key *k;
	unsigned char key[32];
	char enc[64], padded[68], err[256];
	size_t n;

	(void)state;
	for (n = 0; n < sizeof(key); n++)
		key[n] = (unsigned char)(0xf0 + n * 7);	/* '-' and '_' too */
	b64u_enc(key, sizeof(key), enc);
	assert_true(strpbrk(enc, "-_") != NULL);
	check_eab(enc, key, sizeof(key));
	/* 31 bytes: padding "=" tolerated */
	b64u_enc(key, 31, enc);
	check_eab(enc, key, 31);
	snprintf(padded, sizeof(padded), "%s=", enc);
	check_eab(padded, key, 31);
	/* not base64url */
	k = acme_key_generate(err, sizeof(err));
	assert_non_null(k);
	err[0] = '\0';
	assert_null(acme_eab(k, "kid", "ab*d", "https://x/", err,
	    sizeof(err)));
	assert_true(err[0] != '\0');
	assert_null(acme_eab(k, "kid", "ab+/", "https://x/", err,
	    sizeof(err)));
	assert_null(acme_eab(k, "kid", "", "https://x/", err, sizeof(err)));
	assert_null(acme_eab(k, "kid", "abcde", "https://x/", err,
	    sizeof(err)));
	acme_key_free(k);
}

/* The subjectAltName dNSNames of a CSR or a certificate, ", "-joined. */
static void
sans_of(gnutls_x509_crq_t crq, gnutls_x509_crt_t crt, char *out,
    size_t outsz)
{
	char b[512];
	size_t s, n = 0;
	unsigned i, type;
	int r;

	out[0] = '\0';
	for (i = 0;; i++) {
		s = sizeof(b);
		if (crq != NULL) {
			r = gnutls_x509_crq_get_subject_alt_name(crq, i, b, &s,
			    &type, NULL);
			if (r >= 0)
				r = (int)type;
		} else
			r = gnutls_x509_crt_get_subject_alt_name(crt, i, b, &s,
			    NULL);
		if (r == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
			break;
		assert_int_equal(r, GNUTLS_SAN_DNSNAME);
		n += (size_t)snprintf(out + n, outsz - n, "%s%s",
		    n > 0 ? ", " : "", b);
		assert_true(n < outsz);
	}
}

static void
check_csr(const char *name, bool cn)
{
	struct acme_key *k;
	gnutls_x509_crq_t crq;
	gnutls_datum_t der;
	char err[256], *b64, sans[1024], buf[512];
	unsigned char id1[64], id2[64];
	size_t n, n1 = sizeof(id1), n2 = sizeof(id2);
	gnutls_pubkey_t pub;
	gnutls_privkey_t pk;
	char *pem;
	size_t plen;

	k = acme_key_generate(err, sizeof(err));
	assert_non_null(k);
	b64 = acme_csr(k, name, err, sizeof(err));
	assert_non_null(b64);
	der.data = b64u_dec(b64, &n);
	assert_non_null(der.data);
	der.size = (unsigned)n;
	assert_int_equal(gnutls_x509_crq_init(&crq), 0);
	assert_int_equal(gnutls_x509_crq_import(crq, &der,
	    GNUTLS_X509_FMT_DER), 0);
	assert_int_equal(gnutls_x509_crq_verify(crq, 0), 0);
	assert_int_equal(gnutls_x509_crq_get_version(crq), 1);
	assert_int_equal(gnutls_x509_crq_get_signature_algorithm(crq),
	    GNUTLS_SIGN_ECDSA_SHA256);
	sans_of(crq, NULL, sans, sizeof(sans));
	assert_string_equal(sans, name);
	n = sizeof(buf);
	if (cn) {
		assert_int_equal(gnutls_x509_crq_get_dn_by_oid(crq,
		    GNUTLS_OID_X520_COMMON_NAME, 0, 0, buf, &n), 0);
		assert_string_equal(buf, name);
	} else
		assert_int_equal(gnutls_x509_crq_get_dn_by_oid(crq,
		    GNUTLS_OID_X520_COMMON_NAME, 0, 0, buf, &n),
		    GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE);
	/* the CSR's key is k */
	assert_int_equal(acme_key_pem(k, &pem, &plen), 0);
	{
		gnutls_datum_t d = { (unsigned char *)pem, (unsigned)plen };

		assert_int_equal(gnutls_privkey_init(&pk), 0);
		assert_int_equal(gnutls_privkey_import_x509_raw(pk, &d,
		    GNUTLS_X509_FMT_PEM, NULL, 0), 0);
	}
	assert_int_equal(gnutls_pubkey_init(&pub), 0);
	assert_int_equal(gnutls_pubkey_import_privkey(pub, pk, 0, 0), 0);
	assert_int_equal(gnutls_pubkey_get_key_id(pub, GNUTLS_KEYID_USE_SHA256,
	    id1, &n1), 0);
	assert_int_equal(gnutls_x509_crq_get_key_id(crq,
	    GNUTLS_KEYID_USE_SHA256, id2, &n2), 0);
	assert_int_equal(n1, n2);
	assert_memory_equal(id1, id2, n1);
	gnutls_pubkey_deinit(pub);
	gnutls_privkey_deinit(pk);
	free(pem);
	gnutls_x509_crq_deinit(crq);
	free(der.data);
	free(b64);
	acme_key_free(k);
}

static void
test_csr(void **state)
{
	struct acme_key *k;
	char err[256], longname[128];

	(void)state;
	check_csr("www.example.com", true);
	/* longer than a CN may be: only in the subjectAltName */
	memset(longname, 'a', 70);
	memcpy(longname + 70, ".example.com", 13);
	check_csr(longname, false);
	k = acme_key_generate(err, sizeof(err));
	assert_non_null(k);
	err[0] = '\0';
	assert_null(acme_csr(k, "", err, sizeof(err)));
	assert_true(err[0] != '\0');
	assert_null(acme_csr(k, "a b.example", err, sizeof(err)));
	assert_null(acme_csr(k, "a/b", err, sizeof(err)));
	acme_key_free(k);
}

static gnutls_x509_crt_t
crt_from_pem(const char *pem, size_t len)
{
	gnutls_x509_crt_t crt;
	gnutls_datum_t d = { (unsigned char *)pem, (unsigned)len };

	assert_int_equal(gnutls_x509_crt_init(&crt), 0);
	assert_int_equal(gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_PEM),
	    0);
	return crt;
}

static void
test_alpn_cert(void **state)
{
	unsigned char digest[32], val[64];
	char *cert, *key, err[256], sans[1024];
	size_t cert_len, key_len, n;
	unsigned critical, i;
	gnutls_x509_crt_t crt;
	struct acme_cert_info info;
	struct acme_key *k;
	time_t now = time(NULL);

	(void)state;
	for (i = 0; i < sizeof(digest); i++)
		digest[i] = (unsigned char)(i * 37 + 1);
	assert_int_equal(acme_alpn_cert("alpn.example", digest, &cert,
	    &cert_len, &key, &key_len, err, sizeof(err)), 0);
	assert_int_equal(strlen(cert), cert_len);
	assert_int_equal(strlen(key), key_len);
	crt = crt_from_pem(cert, cert_len);
	sans_of(NULL, crt, sans, sizeof(sans));
	assert_string_equal(sans, "alpn.example");
	n = sizeof(val);
	assert_int_equal(gnutls_x509_crt_get_extension_by_oid(crt, OID_ACME_ID,
	    0, val, &n, &critical), 0);
	assert_int_equal(critical, 1);
	assert_int_equal(n, 34);
	assert_int_equal(val[0], 0x04);
	assert_int_equal(val[1], 0x20);
	assert_memory_equal(val + 2, digest, 32);
	assert_int_equal(gnutls_x509_crt_get_version(crt), 3);
	assert_true(gnutls_x509_crt_check_issuer(crt, crt) == 1);
	assert_in_range(gnutls_x509_crt_get_activation_time(crt),
	    now - 3600 - 5, now - 3600 + 5);
	assert_in_range(gnutls_x509_crt_get_expiration_time(crt),
	    now + 7 * 86400 - 5, now + 7 * 86400 + 5);
	/* self-signed: its own key verifies its signature */
	{
		unsigned status = ~0u;

		assert_int_equal(gnutls_x509_crt_verify(crt, &crt, 1,
		    GNUTLS_VERIFY_DISABLE_CA_SIGN, &status), 0);
		assert_int_equal(status & ~GNUTLS_CERT_UNKNOWN_CRIT_EXTENSIONS,
		    0);
	}
	gnutls_x509_crt_deinit(crt);
	/* the key is a P-256 key of its own, and the pair checks */
	k = acme_key_load(key, key_len, err, sizeof(err));
	assert_non_null(k);
	acme_key_free(k);
	assert_int_equal(acme_cert_check(cert, cert_len, key, key_len,
	    "alpn.example", (int64_t)now, &info, err, sizeof(err)), 0);
	assert_string_equal(info.ari_id, "");
	free(cert);
	free(key);
	assert_int_equal(acme_alpn_cert("a b", digest, &cert, &cert_len, &key,
	    &key_len, err, sizeof(err)), -1);
	assert_null(cert);
	assert_null(key);
}

/* ---- issued chains ---- */

struct issued {
	gnutls_privkey_t	 ca_key, leaf_key;
	char			*ca_pem, *leaf_pem, *chain, *key_pem;
	char			*ca_key_pem;
	char			*other_pem;	/* self-signed, unrelated */
	time_t			 nb, na;
};

static const unsigned char ca_ski[20] = {
	0xfb, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09,
	0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0xff
};

static char *
crt_pem(gnutls_x509_crt_t crt)
{
	gnutls_datum_t out;
	char *s;

	assert_int_equal(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM,
	    &out), 0);
	s = strndup((char *)out.data, out.size);
	assert_non_null(s);
	gnutls_free(out.data);
	return s;
}

/* A certificate for key signed by (issuer, ikey), or self-signed. */
static gnutls_x509_crt_t
make_crt(gnutls_privkey_t key, gnutls_x509_crt_t issuer,
    gnutls_privkey_t ikey, const char *cn, const char *san, bool ca,
    const unsigned char *serial, size_t slen, bool aki, time_t nb, time_t na)
{
	gnutls_x509_crt_t crt;
	gnutls_pubkey_t pub;

	assert_int_equal(gnutls_x509_crt_init(&crt), 0);
	assert_int_equal(gnutls_x509_crt_set_version(crt, 3), 0);
	assert_int_equal(gnutls_x509_crt_set_serial(crt, serial, slen), 0);
	assert_int_equal(gnutls_x509_crt_set_activation_time(crt, nb), 0);
	assert_int_equal(gnutls_x509_crt_set_expiration_time(crt, na), 0);
	assert_int_equal(gnutls_x509_crt_set_dn_by_oid(crt,
	    GNUTLS_OID_X520_COMMON_NAME, 0, cn, (unsigned)strlen(cn)), 0);
	if (san != NULL)
		assert_int_equal(gnutls_x509_crt_set_subject_alt_name(crt,
		    GNUTLS_SAN_DNSNAME, san, (unsigned)strlen(san),
		    GNUTLS_FSAN_APPEND), 0);
	/* a name that is not a dNSName, which must not count */
	assert_int_equal(gnutls_x509_crt_set_subject_alt_name(crt,
	    GNUTLS_SAN_URI, "uri.example", 11, GNUTLS_FSAN_APPEND), 0);
	if (ca) {
		assert_int_equal(gnutls_x509_crt_set_basic_constraints(crt, 1,
		    -1), 0);
		assert_int_equal(gnutls_x509_crt_set_subject_key_id(crt, ca_ski,
		    sizeof(ca_ski)), 0);
	}
	if (aki)
		assert_int_equal(gnutls_x509_crt_set_authority_key_id(crt,
		    ca_ski, sizeof(ca_ski)), 0);
	assert_int_equal(gnutls_pubkey_init(&pub), 0);
	assert_int_equal(gnutls_pubkey_import_privkey(pub, key, 0, 0), 0);
	assert_int_equal(gnutls_x509_crt_set_pubkey(crt, pub), 0);
	gnutls_pubkey_deinit(pub);
	assert_int_equal(gnutls_x509_crt_privkey_sign(crt,
	    issuer != NULL ? issuer : crt, ikey != NULL ? ikey : key,
	    GNUTLS_DIG_SHA256, 0), 0);
	return crt;
}

static const unsigned char leaf_serial[] = {
	0x00, 0x9a, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0xfe
};

static void
issue(struct issued *is, const char *san2)
{
	gnutls_x509_crt_t ca, leaf;
	static const unsigned char ca_serial[] = { 0x01 };

	memset(is, 0, sizeof(*is));
	is->nb = time(NULL) - 86400;
	is->na = time(NULL) + 90 * 86400;
	is->ca_key = gen_p256();
	is->leaf_key = gen_p256();
	ca = make_crt(is->ca_key, NULL, NULL, "Test CA", NULL, true,
	    ca_serial, sizeof(ca_serial), false, is->nb, is->na + 86400);
	leaf = make_crt(is->leaf_key, ca, is->ca_key, "cn-only.example",
	    "www.example.com", false, leaf_serial, sizeof(leaf_serial), true,
	    is->nb, is->na);
	if (san2 != NULL)
		assert_int_equal(gnutls_x509_crt_set_subject_alt_name(leaf,
		    GNUTLS_SAN_DNSNAME, san2, (unsigned)strlen(san2),
		    GNUTLS_FSAN_APPEND), 0);
	if (san2 != NULL)
		assert_int_equal(gnutls_x509_crt_privkey_sign(leaf, ca,
		    is->ca_key, GNUTLS_DIG_SHA256, 0), 0);
	is->ca_pem = crt_pem(ca);
	{
		gnutls_x509_crt_t other;

		other = make_crt(is->ca_key, NULL, NULL, "Other CA", NULL,
		    true, ca_serial, sizeof(ca_serial), false, is->nb, is->na);
		is->other_pem = crt_pem(other);
		gnutls_x509_crt_deinit(other);
	}
	is->leaf_pem = crt_pem(leaf);
	assert_true(asprintf(&is->chain, "%s%s", is->leaf_pem, is->ca_pem) >
	    0);
	is->key_pem = key_to_pem(is->leaf_key, true);
	is->ca_key_pem = key_to_pem(is->ca_key, false);
	gnutls_x509_crt_deinit(ca);
	gnutls_x509_crt_deinit(leaf);
}

static void
issued_free(struct issued *is)
{
	gnutls_privkey_deinit(is->ca_key);
	gnutls_privkey_deinit(is->leaf_key);
	free(is->ca_pem);
	free(is->leaf_pem);
	free(is->chain);
	free(is->key_pem);
	free(is->ca_key_pem);
	free(is->other_pem);
}

static int
check(const char *chain, const char *key, const char *name, int64_t now,
    struct acme_cert_info *info, char *err, size_t errsz)
{
	err[0] = '\0';
	return acme_cert_check(chain, strlen(chain), key, strlen(key), name,
	    now, info, err, errsz);
}

static void
test_cert_check(void **state)
{
	struct issued is;
	struct acme_cert_info info;
	char err[256], want[200], a[64], s[64], *nine, *p;
	int64_t now = (int64_t)time(NULL);
	int i;

	(void)state;
	issue(&is, "second.example");
	assert_int_equal(check(is.chain, is.key_pem, "www.example.com", now,
	    &info, err, sizeof(err)), 0);
	assert_int_equal(info.not_before, (int64_t)is.nb);
	assert_int_equal(info.not_after, (int64_t)is.na);
	/* ARI: the AKI and the serial's DER bytes, leading 00 kept */
	b64u_enc(ca_ski, sizeof(ca_ski), a);
	b64u_enc(leaf_serial, sizeof(leaf_serial), s);
	snprintf(want, sizeof(want), "%s.%s", a, s);
	assert_string_equal(info.ari_id, want);
	assert_string_equal(info.ari_id,
	    "-wECAwQFBgcICQoLDA0ODxAREv8.AJoQIDBAUGBw_g");
	/* any SAN, ASCII case ignored; the leaf alone does too */
	assert_int_equal(check(is.chain, is.key_pem, "Second.EXAMPLE", now,
	    &info, err, sizeof(err)), 0);
	assert_int_equal(check(is.leaf_pem, is.key_pem, "www.example.com",
	    now, &info, err, sizeof(err)), 0);
	/* wrong name: not in the SAN (the CN does not count), no prefix */
	assert_int_equal(check(is.chain, is.key_pem, "cn-only.example", now,
	    &info, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not for"));
	assert_int_equal(check(is.chain, is.key_pem, "example.com", now,
	    &info, err, sizeof(err)), -1);
	assert_int_equal(check(is.chain, is.key_pem, "www.example.co", now,
	    &info, err, sizeof(err)), -1);
	assert_int_equal(check(is.chain, is.key_pem, "x.www.example.com",
	    now, &info, err, sizeof(err)), -1);
	assert_int_equal(check(is.chain, is.key_pem, "uri.example", now,
	    &info, err, sizeof(err)), -1);
	/* wrong key: the CA's (SEC 1 form), or a key of no certificate */
	assert_int_equal(check(is.chain, is.ca_key_pem, "www.example.com",
	    now, &info, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "does not belong"));
	assert_int_equal(check(is.chain, "junk", "www.example.com", now,
	    &info, err, sizeof(err)), -1);
	assert_true(err[0] != '\0');
	/* expired: valid until the last second, not at not_after */
	assert_int_equal(check(is.chain, is.key_pem, "www.example.com",
	    (int64_t)is.na - 1, &info, err, sizeof(err)), 0);
	assert_int_equal(check(is.chain, is.key_pem, "www.example.com",
	    (int64_t)is.na, &info, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "expired"));
	/* unsorted, empty, garbage, too long */
	{
		char *rev;

		assert_true(asprintf(&rev, "%s%s", is.ca_pem, is.leaf_pem) > 0);
		assert_int_equal(check(rev, is.key_pem, "www.example.com", now,
		    &info, err, sizeof(err)), -1);
		free(rev);
		/* the leaf first, then a certificate that did not issue it */
		assert_true(asprintf(&rev, "%s%s", is.leaf_pem,
		    is.other_pem) > 0);
		assert_int_equal(check(rev, is.key_pem, "www.example.com", now,
		    &info, err, sizeof(err)), -1);
		free(rev);
	}
	assert_int_equal(check("", is.key_pem, "www.example.com", now, &info,
	    err, sizeof(err)), -1);
	assert_int_equal(check("-----BEGIN CERTIFICATE-----\nAAAA\n"
	    "-----END CERTIFICATE-----\n", is.key_pem, "www.example.com", now,
	    &info, err, sizeof(err)), -1);
	nine = strdup(is.chain);
	for (i = 0; i < 7; i++) {
		p = nine;
		assert_true(asprintf(&nine, "%s%s", p, is.ca_pem) > 0);
		free(p);
	}
	/* 9 certificates: refused; 8: fine */
	assert_int_equal(check(nine, is.key_pem, "www.example.com", now,
	    &info, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "at most 8"));
	*strstr(nine + strlen(is.chain), "-----BEGIN") = '\0';
	assert_int_equal(check(nine, is.key_pem, "www.example.com", now,
	    &info, err, sizeof(err)), 0);
	free(nine);
	issued_free(&is);
}

/* A leaf without an authorityKeyIdentifier: an empty ARI id. */
static void
test_cert_check_no_aki(void **state)
{
	gnutls_privkey_t pk;
	gnutls_x509_crt_t crt;
	struct acme_cert_info info;
	char err[256], *pem, *key;
	time_t now = time(NULL);
	static const unsigned char serial[] = { 0x42 };

	(void)state;
	pk = gen_p256();
	crt = make_crt(pk, NULL, NULL, "self.example", "self.example", false,
	    serial, sizeof(serial), false, now - 10, now + 1000);
	pem = crt_pem(crt);
	key = key_to_pem(pk, false);
	assert_int_equal(check(pem, key, "self.example", (int64_t)now, &info,
	    err, sizeof(err)), 0);
	assert_string_equal(info.ari_id, "");
	assert_int_equal(info.not_after, (int64_t)now + 1000);
	free(pem);
	free(key);
	gnutls_x509_crt_deinit(crt);
	gnutls_privkey_deinit(pk);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_jwk_shape),
		cmocka_unit_test(test_jwk_padding),
		cmocka_unit_test(test_jws),
		cmocka_unit_test(test_jws_refuses),
		cmocka_unit_test(test_thumbprint),
		cmocka_unit_test(test_key_load),
		cmocka_unit_test(test_eab),
		cmocka_unit_test(test_csr),
		cmocka_unit_test(test_alpn_cert),
		cmocka_unit_test(test_cert_check),
		cmocka_unit_test(test_cert_check_no_aki),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
