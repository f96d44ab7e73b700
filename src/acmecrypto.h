/*
 * acmecrypto.h - the cryptography of ACME, on GnuTLS: keys, JWS, CSRs,
 * challenge certificates, issued chains checked.
 *
 * ECDSA P-256 everywhere: the account key signs ES256 JWS (RFC 7515,
 * RFC 8555 6.2), each certificate gets a key of its own.  Nothing here
 * does I/O; every output is malloc'd (keys: wiped before they are freed
 * by acme_key_free / the caller's explicit_bzero).
 */
#ifndef PORTCULLIS_ACMECRYPTO_H
#define PORTCULLIS_ACMECRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct acme_key;	/* an ECDSA P-256 private key */

/* A new key, or NULL with a reason in err. */
struct acme_key *acme_key_generate(char *err, size_t errsz);
/* A PEM private key (PKCS#8 or SEC 1); anything but P-256 is refused. */
struct acme_key *acme_key_load(const void *pem, size_t len, char *err,
	    size_t errsz);
/* The key as PKCS#8 PEM: 0 with *pem (NUL-terminated) and *len, or -1. */
int	 acme_key_pem(const struct acme_key *k, char **pem, size_t *len);
void	 acme_key_free(struct acme_key *k);

/*
 * The public JWK, members in lexicographic order without white space
 * ({"crv":"P-256","kty":"EC","x":"...","y":"..."}), NUL-terminated, and
 * its RFC 7638 thumbprint, base64url(SHA-256(jwk)): 43 characters + NUL.
 */
char	*acme_key_jwk(const struct acme_key *k);
int	 acme_key_thumbprint(const struct acme_key *k, char out[44]);

/*
 * A JWS in the flattened JSON serialization (RFC 8555 6.2):
 * {"protected":b64u({"alg":"ES256","kid":kid | "jwk":JWK,"nonce":nonce,
 * "url":url}),"payload":b64u(payload),"signature":b64u(r||s)}.
 * kid NULL: the JWK goes in the header instead (newAccount).  payload
 * NULL or "": an empty payload (POST-as-GET).  NULL with err on failure.
 */
char	*acme_jws(const struct acme_key *k, const char *kid,
	    const char *nonce, const char *url, const char *payload,
	    char *err, size_t errsz);

/*
 * newAccount's externalAccountBinding (RFC 8555 7.3.4), as JSON text: a
 * flattened JWS, protected {"alg":"HS256","kid":eab_kid,"url":url},
 * payload the account key's JWK, MAC HMAC-SHA256 under the key that
 * hmac_b64url encodes (base64url; padding tolerated).  NULL with err.
 */
char	*acme_eab(const struct acme_key *account, const char *eab_kid,
	    const char *hmac_b64url, const char *url, char *err,
	    size_t errsz);

/* key authorization (RFC 8555 8.1): "token.thumbprint", malloc'd. */
char	*acme_key_authz(const struct acme_key *account, const char *token);

void	 acme_sha256(const void *data, size_t len, unsigned char out[32]);

/*
 * A CSR for one DNS name (subject CN and subjectAltName dNSName), signed
 * by key, as base64url of its DER (what finalize wants).  NULL with err.
 */
char	*acme_csr(const struct acme_key *key, const char *name, char *err,
	    size_t errsz);

/*
 * The TLS-ALPN-01 certificate (RFC 8737 3): self-signed with a new P-256
 * key, subjectAltName dNSName name, and the critical extension
 * id-pe-acmeIdentifier (1.3.6.1.5.5.7.1.31) holding the DER OCTET STRING
 * of digest (SHA-256 of the key authorization); valid from an hour ago
 * for 7 days.  PEM certificate and key, malloc'd and NUL-terminated.
 * Returns 0, or -1 with err.
 */
int	 acme_alpn_cert(const char *name, const unsigned char digest[32],
	    char **cert, size_t *cert_len, char **key, size_t *key_len,
	    char *err, size_t errsz);

/* What an issued chain says, from its first certificate. */
struct acme_cert_info {
	int64_t	 not_before;	/* seconds since the epoch */
	int64_t	 not_after;
	/* ARI CertID: base64url(authorityKeyIdentifier) "." base64url(serial
	   DER bytes), "" when the certificate has no AKI. */
	char	 ari_id[200];
};

/*
 * Check a PEM chain (at most 8 certificates) and its PEM key: the key is
 * P-256 or any key GnuTLS loads and belongs to the first certificate,
 * whose subjectAltName has name as a dNSName (exact, case-insensitive),
 * and which is not expired at now.  Fills info.  Returns 0, or -1 with
 * a reason in err.  Used by the ACME process before it writes, and by the
 * master before it serves what the cache holds.
 */
int	 acme_cert_check(const void *chain, size_t chain_len, const void *key,
	    size_t key_len, const char *name, int64_t now,
	    struct acme_cert_info *info, char *err, size_t errsz);

#endif /* PORTCULLIS_ACMECRYPTO_H */
