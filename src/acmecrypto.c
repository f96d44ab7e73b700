/*
 * acmecrypto.c - the cryptography of ACME on GnuTLS (see acmecrypto.h).
 *
 * Promises: keys are ECDSA P-256 and nothing else is loaded as an account
 * or certificate key; every private key that passes through a buffer of
 * ours (PEM export) is wiped before it is freed, and so is the decoded
 * EAB MAC key; JSON is written by hand from values that need no escaping
 * (base64url, and URLs, nonces and kids checked to be printable ASCII
 * without '"' or '\\'), so jansson stays inside acmejson.c.
 *
 * base64url is GnuTLS's base64 with '+/' turned into '-_' and the padding
 * dropped (b64u_encode, b64u_decode below).
 */
#include "autoconf.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gnutls/gnutls.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>

#include "acmecrypto.h"
#include "util.h"

#define P256_LEN	32		/* a coordinate, r or s */
#define MAX_CHAIN	8		/* certificates acme_cert_check takes */
#define DNS_NAME_MAX	253
#define CN_MAX		64		/* ub-common-name (RFC 5280) */
#define OID_ACME_ID	"1.3.6.1.5.5.7.1.31"	/* id-pe-acmeIdentifier */
#define ALPN_BEFORE	3600		/* the ALPN cert: valid an hour ago */
#define ALPN_LIFE	(7 * 86400)	/* for 7 days */

struct acme_key {
	gnutls_privkey_t	 pk;
};

static void
gerr(char *err, size_t errsz, const char *what, int ret)
{
	snprintf(err, errsz, "%s: %s", what, gnutls_strerror(ret));
}

/* base64url without padding (RFC 4648 5) of data: malloc'd, or NULL. */
static char *
b64u_encode(const void *data, size_t len)
{
	gnutls_datum_t in, out = { NULL, 0 };
	char *s;
	size_t i, n;

	if (len == 0)
		return strdup("");
	if (len > UINT_MAX / 2)
		return NULL;
	in.data = (unsigned char *)(uintptr_t)data;
	in.size = (unsigned)len;
	if (gnutls_base64_encode2(&in, &out) < 0)
		return NULL;
	if ((s = malloc((size_t)out.size + 1)) == NULL) {
		gnutls_free(out.data);
		return NULL;
	}
	for (i = n = 0; i < out.size; i++) {
		switch (out.data[i]) {
		case '+':
			s[n++] = '-';
			break;
		case '/':
			s[n++] = '_';
			break;
		case '=':
		case '\r':
		case '\n':
			break;
		default:
			s[n++] = (char)out.data[i];
		}
	}
	s[n] = '\0';
	gnutls_free(out.data);
	return s;
}

/*
 * Decode base64url (padding tolerated, nothing else outside the
 * alphabet): 0 with *out (gnutls_malloc'd), or -1.
 */
static int
b64u_decode(const char *s, gnutls_datum_t *out)
{
	gnutls_datum_t in;
	size_t i, len = strlen(s);
	char *t;
	int ret;

	while (len > 0 && s[len - 1] == '=')
		len--;
	if (len == 0 || len % 4 == 1 || len > UINT_MAX / 2)
		return -1;
	if ((t = malloc(len + 4)) == NULL)
		return -1;
	for (i = 0; i < len; i++) {
		char c = s[i];

		if (c == '-')
			c = '+';
		else if (c == '_')
			c = '/';
		else if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9'))) {
			explicit_bzero(t, len + 4);
			free(t);
			return -1;
		}
		t[i] = c;
	}
	while (i % 4 != 0)
		t[i++] = '=';
	in.data = (unsigned char *)t;
	in.size = (unsigned)i;
	ret = gnutls_base64_decode2(&in, out);
	explicit_bzero(t, len + 4);
	free(t);
	return ret < 0 ? -1 : 0;
}

/* v (a big-endian unsigned integer) left-padded into dst[n]. */
static int
put_uint(unsigned char *dst, size_t n, const gnutls_datum_t *v)
{
	const unsigned char *p = v->data;
	size_t len = v->size;

	while (len > 0 && *p == 0) {
		p++;
		len--;
	}
	if (len > n)
		return -1;
	memset(dst, 0, n - len);
	if (len > 0)
		memcpy(dst + n - len, p, len);
	return 0;
}

/* Safe inside a JSON string as it is: printable ASCII, no '"' or '\\'. */
static bool
json_plain(const char *s)
{
	if (s == NULL)
		return false;
	for (; *s != '\0'; s++)
		if (*s < 0x20 || *s > 0x7e || *s == '"' || *s == '\\')
			return false;
	return true;
}

/* 1 to 253 bytes of letters, digits, '-', '_' and '.'. */
static bool
dns_name_ok(const char *name)
{
	size_t i, n;

	if (name == NULL || (n = strlen(name)) == 0 || n > DNS_NAME_MAX)
		return false;
	for (i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '_' ||
		    c == '.'))
			return false;
	}
	return true;
}

/* A copy of d's bytes with a NUL after them, malloc'd; *len their count. */
static char *
dup_datum(const gnutls_datum_t *d, size_t *len)
{
	char *s;

	if ((s = malloc((size_t)d->size + 1)) == NULL)
		return NULL;
	memcpy(s, d->data, d->size);
	s[d->size] = '\0';
	if (len != NULL)
		*len = d->size;
	return s;
}

static struct acme_key *
key_wrap(gnutls_privkey_t pk, char *err, size_t errsz)
{
	struct acme_key *k;

	if ((k = malloc(sizeof(*k))) == NULL) {
		snprintf(err, errsz, "out of memory");
		gnutls_privkey_deinit(pk);
		return NULL;
	}
	k->pk = pk;
	return k;
}

struct acme_key *
acme_key_generate(char *err, size_t errsz)
{
	gnutls_privkey_t pk;
	int ret;

	if ((ret = gnutls_privkey_init(&pk)) < 0) {
		gerr(err, errsz, "key", ret);
		return NULL;
	}
	if ((ret = gnutls_privkey_generate2(pk, GNUTLS_PK_ECDSA,
	    GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0, NULL,
	    0)) < 0) {
		gerr(err, errsz, "generating a P-256 key", ret);
		gnutls_privkey_deinit(pk);
		return NULL;
	}
	return key_wrap(pk, err, errsz);
}

struct acme_key *
acme_key_load(const void *pem, size_t len, char *err, size_t errsz)
{
	gnutls_x509_privkey_t xk;
	gnutls_privkey_t pk;
	gnutls_ecc_curve_t curve;
	gnutls_datum_t d;
	int ret;

	if (len > UINT_MAX) {
		snprintf(err, errsz, "key: too long");
		return NULL;
	}
	if ((ret = gnutls_x509_privkey_init(&xk)) < 0) {
		gerr(err, errsz, "key", ret);
		return NULL;
	}
	d.data = (unsigned char *)(uintptr_t)pem;
	d.size = (unsigned)len;
	/* PKCS#8 ("PRIVATE KEY") or SEC 1 ("EC PRIVATE KEY"), unencrypted */
	if ((ret = gnutls_x509_privkey_import2(xk, &d, GNUTLS_X509_FMT_PEM,
	    NULL, 0)) < 0) {
		gerr(err, errsz, "key", ret);
		gnutls_x509_privkey_deinit(xk);
		return NULL;
	}
	if (gnutls_x509_privkey_get_pk_algorithm(xk) != GNUTLS_PK_ECDSA) {
		snprintf(err, errsz, "key: not an ECDSA key");
		gnutls_x509_privkey_deinit(xk);
		return NULL;
	}
	if ((ret = gnutls_x509_privkey_verify_params(xk)) < 0) {
		gerr(err, errsz, "key", ret);
		gnutls_x509_privkey_deinit(xk);
		return NULL;
	}
	if ((ret = gnutls_privkey_init(&pk)) < 0) {
		gerr(err, errsz, "key", ret);
		gnutls_x509_privkey_deinit(xk);
		return NULL;
	}
	if ((ret = gnutls_privkey_import_x509(pk, xk,
	    GNUTLS_PRIVKEY_IMPORT_AUTO_RELEASE)) < 0) {
		gerr(err, errsz, "key", ret);
		gnutls_privkey_deinit(pk);
		gnutls_x509_privkey_deinit(xk);
		return NULL;
	}
	/* from here xk belongs to pk */
	if ((ret = gnutls_privkey_export_ecc_raw2(pk, &curve, NULL, NULL,
	    NULL, 0)) < 0) {
		gerr(err, errsz, "key", ret);
		gnutls_privkey_deinit(pk);
		return NULL;
	}
	if (curve != GNUTLS_ECC_CURVE_SECP256R1) {
		snprintf(err, errsz, "key: curve %s, not P-256",
		    gnutls_ecc_curve_get_name(curve) != NULL ?
		    gnutls_ecc_curve_get_name(curve) : "unknown");
		gnutls_privkey_deinit(pk);
		return NULL;
	}
	return key_wrap(pk, err, errsz);
}

int
acme_key_pem(const struct acme_key *k, char **pem, size_t *len)
{
	gnutls_x509_privkey_t xk;
	gnutls_datum_t out = { NULL, 0 };
	int ret;

	*pem = NULL;
	*len = 0;
	if (gnutls_privkey_export_x509(k->pk, &xk) < 0)
		return -1;
	ret = gnutls_x509_privkey_export2_pkcs8(xk, GNUTLS_X509_FMT_PEM, NULL,
	    GNUTLS_PKCS_PLAIN, &out);
	gnutls_x509_privkey_deinit(xk);
	if (ret < 0)
		return -1;
	*pem = dup_datum(&out, len);
	gnutls_memset(out.data, 0, out.size);
	gnutls_free(out.data);
	if (*pem == NULL) {
		*len = 0;
		return -1;
	}
	return 0;
}

void
acme_key_free(struct acme_key *k)
{
	if (k == NULL)
		return;
	gnutls_privkey_deinit(k->pk);	/* clears the key's numbers */
	free(k);
}

char *
acme_key_jwk(const struct acme_key *k)
{
	gnutls_ecc_curve_t curve;
	gnutls_datum_t x = { NULL, 0 }, y = { NULL, 0 };
	unsigned char xb[P256_LEN], yb[P256_LEN];
	char *x64 = NULL, *y64 = NULL, *jwk = NULL;
	int ok;

	if (gnutls_privkey_export_ecc_raw2(k->pk, &curve, &x, &y, NULL,
	    GNUTLS_EXPORT_FLAG_NO_LZ) < 0)
		return NULL;
	ok = curve == GNUTLS_ECC_CURVE_SECP256R1 &&
	    put_uint(xb, sizeof(xb), &x) == 0 &&
	    put_uint(yb, sizeof(yb), &y) == 0;
	gnutls_free(x.data);
	gnutls_free(y.data);
	if (!ok)
		return NULL;
	if ((x64 = b64u_encode(xb, sizeof(xb))) != NULL &&
	    (y64 = b64u_encode(yb, sizeof(yb))) != NULL &&
	    asprintf(&jwk, "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\","
	    "\"y\":\"%s\"}", x64, y64) == -1)
		jwk = NULL;
	free(x64);
	free(y64);
	return jwk;
}

/* base64url(SHA-256(s)): 43 characters and a NUL in out. */
static int
b64u_sha256(const char *s, char out[44])
{
	unsigned char md[32];
	char *t;

	acme_sha256(s, strlen(s), md);
	if ((t = b64u_encode(md, sizeof(md))) == NULL)
		return -1;
	if (strlen(t) != 43) {
		free(t);
		return -1;
	}
	memcpy(out, t, 44);
	free(t);
	return 0;
}

int
acme_key_thumbprint(const struct acme_key *k, char out[44])
{
	char *jwk;
	int ret;

	out[0] = '\0';
	if ((jwk = acme_key_jwk(k)) == NULL)
		return -1;
	ret = b64u_sha256(jwk, out);
	free(jwk);
	return ret;
}

void
acme_sha256(const void *data, size_t len, unsigned char out[32])
{
	if (gnutls_hash_fast(GNUTLS_DIG_SHA256, data, len, out) < 0)
		memset(out, 0, 32);	/* not seen: SHA-256 is always there */
}

/* ES256 (RFC 7518 3.4): the signature as r||s, 32 bytes each. */
static int
es256_sign(const struct acme_key *k, const char *input,
    unsigned char rs[2 * P256_LEN], char *err, size_t errsz)
{
	gnutls_datum_t d, sig = { NULL, 0 }, r = { NULL, 0 }, s = { NULL, 0 };
	int ret;

	d.data = (unsigned char *)(uintptr_t)input;
	d.size = (unsigned)strlen(input);
	if ((ret = gnutls_privkey_sign_data(k->pk, GNUTLS_DIG_SHA256, 0, &d,
	    &sig)) < 0) {
		gerr(err, errsz, "signing", ret);
		return -1;
	}
	ret = gnutls_decode_rs_value(&sig, &r, &s);
	gnutls_free(sig.data);
	if (ret < 0) {
		gerr(err, errsz, "signing", ret);
		return -1;
	}
	ret = put_uint(rs, P256_LEN, &r) == 0 &&
	    put_uint(rs + P256_LEN, P256_LEN, &s) == 0 ? 0 : -1;
	gnutls_free(r.data);
	gnutls_free(s.data);
	if (ret < 0)
		snprintf(err, errsz, "signing: r or s longer than 32 bytes");
	return ret;
}

/*
 * The flattened JWS of hdr (the protected header's JSON) and payload,
 * signed by k (ES256) or MACed under mac (HS256).
 */
static char *
jws_flat(const char *hdr, const char *payload, const struct acme_key *k,
    const gnutls_datum_t *mac, char *err, size_t errsz)
{
	char *h64 = NULL, *p64 = NULL, *input = NULL, *s64 = NULL;
	char *out = NULL;
	unsigned char sig[2 * P256_LEN];
	size_t siglen;
	int ret;

	if ((h64 = b64u_encode(hdr, strlen(hdr))) == NULL ||
	    (p64 = b64u_encode(payload, strlen(payload))) == NULL ||
	    asprintf(&input, "%s.%s", h64, p64) == -1) {
		input = NULL;
		snprintf(err, errsz, "out of memory");
		goto done;
	}
	if (k != NULL) {
		if (es256_sign(k, input, sig, err, errsz) == -1)
			goto done;
		siglen = 2 * P256_LEN;
	} else {
		if ((ret = gnutls_hmac_fast(GNUTLS_MAC_SHA256, mac->data,
		    mac->size, input, strlen(input), sig)) < 0) {
			gerr(err, errsz, "HMAC", ret);
			goto done;
		}
		siglen = gnutls_hmac_get_len(GNUTLS_MAC_SHA256);
	}
	if ((s64 = b64u_encode(sig, siglen)) == NULL ||
	    asprintf(&out, "{\"protected\":\"%s\",\"payload\":\"%s\","
	    "\"signature\":\"%s\"}", h64, p64, s64) == -1) {
		out = NULL;
		snprintf(err, errsz, "out of memory");
	}
done:
	explicit_bzero(sig, sizeof(sig));
	free(h64);
	free(p64);
	free(input);
	free(s64);
	return out;
}

char *
acme_jws(const struct acme_key *k, const char *kid, const char *nonce,
    const char *url, const char *payload, char *err, size_t errsz)
{
	char *jwk = NULL, *hdr = NULL, *out;
	int n;

	if (!json_plain(nonce) || !json_plain(url) ||
	    (kid != NULL && !json_plain(kid))) {
		snprintf(err, errsz, "JWS: nonce, url or kid missing or not "
		    "plain printable ASCII");
		return NULL;
	}
	if (kid == NULL) {
		if ((jwk = acme_key_jwk(k)) == NULL) {
			snprintf(err, errsz, "JWS: cannot export the JWK");
			return NULL;
		}
		n = asprintf(&hdr, "{\"alg\":\"ES256\",\"jwk\":%s,"
		    "\"nonce\":\"%s\",\"url\":\"%s\"}", jwk, nonce, url);
		free(jwk);
	} else
		n = asprintf(&hdr, "{\"alg\":\"ES256\",\"kid\":\"%s\","
		    "\"nonce\":\"%s\",\"url\":\"%s\"}", kid, nonce, url);
	if (n == -1) {
		snprintf(err, errsz, "out of memory");
		return NULL;
	}
	out = jws_flat(hdr, payload != NULL ? payload : "", k, NULL, err,
	    errsz);
	free(hdr);
	return out;
}

char *
acme_eab(const struct acme_key *account, const char *eab_kid,
    const char *hmac_b64url, const char *url, char *err, size_t errsz)
{
	gnutls_datum_t mac = { NULL, 0 };
	char *jwk = NULL, *hdr = NULL, *out = NULL;

	if (!json_plain(eab_kid) || !json_plain(url)) {
		snprintf(err, errsz, "EAB: kid or url missing or not plain "
		    "printable ASCII");
		return NULL;
	}
	if (hmac_b64url == NULL || b64u_decode(hmac_b64url, &mac) == -1) {
		snprintf(err, errsz, "EAB: the HMAC key is not base64url");
		return NULL;
	}
	if ((jwk = acme_key_jwk(account)) == NULL)
		snprintf(err, errsz, "EAB: cannot export the JWK");
	else if (asprintf(&hdr, "{\"alg\":\"HS256\",\"kid\":\"%s\","
	    "\"url\":\"%s\"}", eab_kid, url) == -1) {
		hdr = NULL;
		snprintf(err, errsz, "out of memory");
	} else
		out = jws_flat(hdr, jwk, NULL, &mac, err, errsz);
	gnutls_memset(mac.data, 0, mac.size);
	gnutls_free(mac.data);
	free(jwk);
	free(hdr);
	return out;
}

char *
acme_key_authz(const struct acme_key *account, const char *token)
{
	char tp[44], *s;

	if (acme_key_thumbprint(account, tp) == -1 ||
	    asprintf(&s, "%s.%s", token, tp) == -1)
		return NULL;
	return s;
}

/* The public half of k, for a CSR or a certificate. */
static gnutls_pubkey_t
pubkey_of(gnutls_privkey_t pk, char *err, size_t errsz)
{
	gnutls_pubkey_t pub;
	int ret;

	if ((ret = gnutls_pubkey_init(&pub)) < 0) {
		gerr(err, errsz, "public key", ret);
		return NULL;
	}
	if ((ret = gnutls_pubkey_import_privkey(pub, pk, 0, 0)) < 0) {
		gerr(err, errsz, "public key", ret);
		gnutls_pubkey_deinit(pub);
		return NULL;
	}
	return pub;
}

/*
 * The subject of a CSR or an ALPN certificate: CN=name where the name
 * fits a CN (64 bytes; a longer one is only in the subjectAltName, as
 * Let's Encrypt wants), and the subjectAltName dNSName name.
 */
#define SET_NAME(set_dn, set_san, obj, name, ret) do {			\
	size_t n_ = strlen(name);					\
									\
	(ret) = n_ <= CN_MAX ? set_dn((obj),				\
	    GNUTLS_OID_X520_COMMON_NAME, 0, (name), (unsigned)n_) : 0;	\
	if ((ret) >= 0)							\
		(ret) = set_san((obj), GNUTLS_SAN_DNSNAME, (name),	\
		    (unsigned)n_, GNUTLS_FSAN_SET);			\
} while (0)

char *
acme_csr(const struct acme_key *key, const char *name, char *err,
    size_t errsz)
{
	gnutls_x509_crq_t crq = NULL;
	gnutls_pubkey_t pub = NULL;
	gnutls_datum_t der = { NULL, 0 };
	char *out = NULL;
	int ret;

	if (!dns_name_ok(name)) {
		snprintf(err, errsz, "CSR: not a DNS name");
		return NULL;
	}
	if ((ret = gnutls_x509_crq_init(&crq)) < 0) {
		gerr(err, errsz, "CSR", ret);
		return NULL;
	}
	if ((ret = gnutls_x509_crq_set_version(crq, 1)) < 0)
		goto fail;
	SET_NAME(gnutls_x509_crq_set_dn_by_oid,
	    gnutls_x509_crq_set_subject_alt_name, crq, name, ret);
	if (ret < 0)
		goto fail;
	if ((pub = pubkey_of(key->pk, err, errsz)) == NULL)
		goto done;
	if ((ret = gnutls_x509_crq_set_pubkey(crq, pub)) < 0 ||
	    (ret = gnutls_x509_crq_privkey_sign(crq, key->pk,
	    GNUTLS_DIG_SHA256, 0)) < 0 ||
	    (ret = gnutls_x509_crq_export2(crq, GNUTLS_X509_FMT_DER,
	    &der)) < 0)
		goto fail;
	if ((out = b64u_encode(der.data, der.size)) == NULL)
		snprintf(err, errsz, "out of memory");
	goto done;
fail:
	gerr(err, errsz, "CSR", ret);
done:
	gnutls_free(der.data);
	if (pub != NULL)
		gnutls_pubkey_deinit(pub);
	gnutls_x509_crq_deinit(crq);
	return out;
}

int
acme_alpn_cert(const char *name, const unsigned char digest[32],
    char **cert, size_t *cert_len, char **key, size_t *key_len, char *err,
    size_t errsz)
{
	struct acme_key *k = NULL;
	gnutls_x509_crt_t crt = NULL;
	gnutls_pubkey_t pub = NULL;
	gnutls_datum_t pem = { NULL, 0 };
	unsigned char ext[2 + 32], serial[16];
	time_t now = time(NULL);
	int ret, rv = -1;

	*cert = *key = NULL;
	*cert_len = *key_len = 0;
	if (!dns_name_ok(name)) {
		snprintf(err, errsz, "ALPN certificate: not a DNS name");
		return -1;
	}
	/* extnValue: the DER OCTET STRING of the digest (RFC 8737 3) */
	ext[0] = 0x04;
	ext[1] = 0x20;
	memcpy(ext + 2, digest, 32);
	if ((k = acme_key_generate(err, errsz)) == NULL)
		return -1;
	if ((ret = gnutls_x509_crt_init(&crt)) < 0) {
		crt = NULL;
		goto fail;
	}
	if ((ret = gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof(serial))) < 0)
		goto fail;
	serial[0] = (unsigned char)((serial[0] & 0x7f) | 0x40);	/* > 0 */
	if ((ret = gnutls_x509_crt_set_version(crt, 3)) < 0 ||
	    (ret = gnutls_x509_crt_set_serial(crt, serial,
	    sizeof(serial))) < 0 ||
	    (ret = gnutls_x509_crt_set_activation_time(crt,
	    now - ALPN_BEFORE)) < 0 ||
	    (ret = gnutls_x509_crt_set_expiration_time(crt,
	    now + ALPN_LIFE)) < 0)
		goto fail;
	SET_NAME(gnutls_x509_crt_set_dn_by_oid,
	    gnutls_x509_crt_set_subject_alt_name, crt, name, ret);
	if (ret < 0)
		goto fail;
	if ((ret = gnutls_x509_crt_set_extension_by_oid(crt, OID_ACME_ID,
	    ext, sizeof(ext), 1)) < 0)
		goto fail;
	if ((pub = pubkey_of(k->pk, err, errsz)) == NULL)
		goto done;
	if ((ret = gnutls_x509_crt_set_pubkey(crt, pub)) < 0 ||
	    (ret = gnutls_x509_crt_privkey_sign(crt, crt, k->pk,
	    GNUTLS_DIG_SHA256, 0)) < 0 ||
	    (ret = gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM,
	    &pem)) < 0)
		goto fail;
	if ((*cert = dup_datum(&pem, cert_len)) == NULL ||
	    acme_key_pem(k, key, key_len) == -1) {
		free(*cert);
		*cert = NULL;
		*cert_len = 0;
		snprintf(err, errsz, "ALPN certificate: out of memory");
		goto done;
	}
	rv = 0;
	goto done;
fail:
	gerr(err, errsz, "ALPN certificate", ret);
done:
	gnutls_free(pem.data);
	if (pub != NULL)
		gnutls_pubkey_deinit(pub);
	if (crt != NULL)
		gnutls_x509_crt_deinit(crt);
	acme_key_free(k);
	return rv;
}

/* Has crt a subjectAltName dNSName equal to name (ASCII case aside)? */
static bool
san_has(gnutls_x509_crt_t crt, const char *name)
{
	char buf[DNS_NAME_MAX + 2];
	size_t size, nlen = strlen(name);
	unsigned i;
	int ret;

	for (i = 0;; i++) {
		size = sizeof(buf);
		ret = gnutls_x509_crt_get_subject_alt_name(crt, i, buf, &size,
		    NULL);
		if (ret == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
			return false;
		if (ret == GNUTLS_E_SHORT_MEMORY_BUFFER)
			continue;	/* longer than any name of ours */
		if (ret < 0)
			return false;
		if (ret == GNUTLS_SAN_DNSNAME &&
		    util_strcaseeq(buf, size, name, nlen))
			return true;
	}
}

/* ARI's CertID (RFC 9773 4.1): "" when there is no AKI or it is too long. */
static void
ari_id(gnutls_x509_crt_t crt, char *out, size_t outsz)
{
	unsigned char aki[64], serial[64];
	size_t akilen = sizeof(aki), slen = sizeof(serial);
	char *a = NULL, *s = NULL;
	int n;

	out[0] = '\0';
	if (gnutls_x509_crt_get_authority_key_id(crt, aki, &akilen,
	    NULL) < 0 || akilen == 0 ||
	    gnutls_x509_crt_get_serial(crt, serial, &slen) < 0 || slen == 0)
		return;
	/* the serial as DER has it: GnuTLS keeps a leading 00 byte */
	if ((a = b64u_encode(aki, akilen)) != NULL &&
	    (s = b64u_encode(serial, slen)) != NULL) {
		n = snprintf(out, outsz, "%s.%s", a, s);
		if (n < 0 || (size_t)n >= outsz)
			out[0] = '\0';
	}
	free(a);
	free(s);
}

/* Does key (PEM) belong to crt?  Compares the SHA-256 key ids. */
static int
key_matches(gnutls_x509_crt_t crt, const void *key, size_t key_len,
    char *err, size_t errsz)
{
	gnutls_privkey_t pk = NULL;
	gnutls_pubkey_t pub = NULL;
	gnutls_datum_t d;
	unsigned char id1[64], id2[64];
	size_t n1 = sizeof(id1), n2 = sizeof(id2);
	int ret, rv = -1;

	if (key_len > UINT_MAX) {
		snprintf(err, errsz, "key: too long");
		return -1;
	}
	d.data = (unsigned char *)(uintptr_t)key;
	d.size = (unsigned)key_len;
	if ((ret = gnutls_privkey_init(&pk)) < 0) {
		gerr(err, errsz, "key", ret);
		return -1;
	}
	if ((ret = gnutls_privkey_import_x509_raw(pk, &d, GNUTLS_X509_FMT_PEM,
	    NULL, 0)) < 0) {
		gerr(err, errsz, "key", ret);
		goto done;
	}
	if ((pub = pubkey_of(pk, err, errsz)) == NULL)
		goto done;
	if ((ret = gnutls_pubkey_get_key_id(pub, GNUTLS_KEYID_USE_SHA256,
	    id1, &n1)) < 0 ||
	    (ret = gnutls_x509_crt_get_key_id(crt, GNUTLS_KEYID_USE_SHA256,
	    id2, &n2)) < 0) {
		gerr(err, errsz, "key id", ret);
		goto done;
	}
	if (n1 != n2 || memcmp(id1, id2, n1) != 0) {
		snprintf(err, errsz, "the key does not belong to the "
		    "certificate");
		goto done;
	}
	rv = 0;
done:
	if (pub != NULL)
		gnutls_pubkey_deinit(pub);
	gnutls_privkey_deinit(pk);
	return rv;
}

int
acme_cert_check(const void *chain, size_t chain_len, const void *key,
    size_t key_len, const char *name, int64_t now,
    struct acme_cert_info *info, char *err, size_t errsz)
{
	gnutls_x509_crt_t *list = NULL;
	gnutls_datum_t d;
	unsigned i, n = 0;
	time_t nb, na;
	int ret, rv = -1;

	memset(info, 0, sizeof(*info));
	if (chain_len > UINT_MAX) {
		snprintf(err, errsz, "chain: too long");
		return -1;
	}
	d.data = (unsigned char *)(uintptr_t)chain;
	d.size = (unsigned)chain_len;
	if ((ret = gnutls_x509_crt_list_import2(&list, &n, &d,
	    GNUTLS_X509_FMT_PEM, GNUTLS_X509_CRT_LIST_FAIL_IF_UNSORTED)) < 0) {
		gerr(err, errsz, "chain", ret);
		return -1;
	}
	if (n == 0) {
		snprintf(err, errsz, "chain: no certificate");
		goto done;
	}
	if (n > MAX_CHAIN) {
		snprintf(err, errsz, "chain: %u certificates, at most %d", n,
		    MAX_CHAIN);
		goto done;
	}
	if (key_matches(list[0], key, key_len, err, errsz) == -1)
		goto done;
	if (name == NULL || !san_has(list[0], name)) {
		snprintf(err, errsz, "the certificate is not for %s",
		    name != NULL ? name : "(no name)");
		goto done;
	}
	nb = gnutls_x509_crt_get_activation_time(list[0]);
	na = gnutls_x509_crt_get_expiration_time(list[0]);
	if (nb == (time_t)-1 || na == (time_t)-1) {
		snprintf(err, errsz, "the certificate has no valid dates");
		goto done;
	}
	if ((int64_t)na <= now) {
		snprintf(err, errsz, "the certificate has expired");
		goto done;
	}
	info->not_before = (int64_t)nb;
	info->not_after = (int64_t)na;
	ari_id(list[0], info->ari_id, sizeof(info->ari_id));
	rv = 0;
done:
	for (i = 0; i < n; i++)
		gnutls_x509_crt_deinit(list[i]);
	gnutls_free(list);
	return rv;
}
