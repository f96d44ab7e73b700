/*
 * acmecrypto_fuzz.c - libFuzzer target for what acmecrypto reads from
 * the cache directory: a PEM chain and key (acme_cert_check) and an
 * account key (acme_key_load).
 *
 * The input is the chain, a NUL byte, then the key (no NUL: the whole
 * input is both).  What is accepted must make sense: a certificate
 * accepted for "a.example" at a fixed time has not expired and an ARI id
 * of base64url "." base64url or ""; a key accepted gives a JWK of the
 * exact P-256 shape and a 43-character thumbprint.  Any violation
 * abort()s.
 *
 * No main(): tests/fuzz/standalone.c replays files through this function
 * when libFuzzer is not available.
 */
#include "autoconf.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acmecrypto.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define NOW	((int64_t)1700000000)	/* fixed: replays are repeatable */

static void
check_ari(const char *id)
{
	size_t i, dots = 0;

	CHECK(strlen(id) < sizeof(((struct acme_cert_info *)0)->ari_id));
	for (i = 0; id[i] != '\0'; i++) {
		if (id[i] == '.')
			dots++;
		else
			CHECK((id[i] >= 'A' && id[i] <= 'Z') ||
			    (id[i] >= 'a' && id[i] <= 'z') ||
			    (id[i] >= '0' && id[i] <= '9') || id[i] == '-' ||
			    id[i] == '_');
	}
	CHECK(i == 0 || (dots == 1 && id[0] != '.' && id[i - 1] != '.'));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, '\0', size);
	const uint8_t *key = nul != NULL ? nul + 1 : data;
	size_t chain_len = nul != NULL ? (size_t)(nul - data) : size;
	size_t key_len = size - (size_t)(key - data);
	struct acme_cert_info info;
	struct acme_key *k;
	char err[256], tp[44], *jwk;

	err[0] = '\0';
	if (acme_cert_check(data, chain_len, key, key_len, "a.example", NOW,
	    &info, err, sizeof(err)) == 0) {
		CHECK(info.not_after > NOW);
		check_ari(info.ari_id);
	} else
		CHECK(err[0] != '\0');
	if ((k = acme_key_load(key, key_len, err, sizeof(err))) != NULL) {
		jwk = acme_key_jwk(k);
		CHECK(jwk != NULL);
		CHECK(strlen(jwk) == 126);
		CHECK(strncmp(jwk, "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"",
		    31) == 0);
		CHECK(acme_key_thumbprint(k, tp) == 0 && strlen(tp) == 43);
		free(jwk);
		acme_key_free(k);
	}
	return 0;
}
