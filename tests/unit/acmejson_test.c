/*
 * acmejson_test.c - the ACME response parsers and codecs.
 *
 * Documents as pebble and Let's Encrypt send them (the pebble directory
 * and problem are captured from Debian's pebble; the others follow
 * RFC 8555 and what LE's boulder sends), each parsed and checked member
 * by member; then hostile ones: wrong types, missing members, http URLs,
 * strings and counts one past their bound (and exactly at it), NUL
 * inside strings, duplicate keys, deep nesting, every truncation of a
 * real document, invalid UTF-8, oversized bodies.  Every failure must
 * leave the output zeroed and say why in err.  Times are checked
 * against known values and against libc's timegm over many dates;
 * base64url against RFC 4648's vectors and round trips.
 */
#include "autoconf.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "acmejson.h"

#define LEN(lit)	(sizeof(lit) - 1)

static char	err[256];

/* All bytes of an object zero? */
static bool
zeroed(const void *p, size_t n)
{
	const unsigned char *b = p;
	size_t i;

	for (i = 0; i < n; i++)
		if (b[i] != 0)
			return false;
	return true;
}

/* A failure: -1, a reason, and nothing kept. */
#define ASSERT_FAILED(rc, obj) do {					\
	assert_int_equal((rc), -1);					\
	assert_true(err[0] != '\0');					\
	assert_true(zeroed(&(obj), sizeof(obj)));			\
} while (0)

/* Parse a string literal into a struct. */
#define PARSE(fn, lit, obj)						\
	(err[0] = '\0', fn((lit), LEN(lit), &(obj), err, sizeof(err)))
#define PARSE_S(fn, s, obj)						\
	(err[0] = '\0', fn((s), strlen(s), &(obj), err, sizeof(err)))

/* Every document of the array bad fails, the output starting as junk. */
#define ALL_FAIL(fn, bad, obj) do {					\
	size_t i_;							\
									\
	for (i_ = 0; i_ < sizeof(bad) / sizeof((bad)[0]); i_++) {	\
		memset(&(obj), 0xa5, sizeof(obj));			\
		if (PARSE_S(fn, (bad)[i_], obj) != -1 ||		\
		    err[0] == '\0' || !zeroed(&(obj), sizeof(obj)))	\
			fail_msg("accepted: %s", (bad)[i_]);		\
	}								\
} while (0)

/* ---- documents as CAs send them ---- */

/* Debian's pebble, captured. */
static const char pebble_dir[] =
"{\n"
"   \"keyChange\": \"https://127.0.0.1:14000/rollover-account-key\",\n"
"   \"meta\": {\n"
"      \"externalAccountRequired\": false,\n"
"      \"termsOfService\": \"data:text/plain,Do%20what%20thou%20wilt\"\n"
"   },\n"
"   \"newAccount\": \"https://127.0.0.1:14000/sign-me-up\",\n"
"   \"newNonce\": \"https://127.0.0.1:14000/nonce-plz\",\n"
"   \"newOrder\": \"https://127.0.0.1:14000/order-plz\",\n"
"   \"revokeCert\": \"https://127.0.0.1:14000/revoke-cert\"\n"
"}";

static const char le_dir[] =
"{\n"
"  \"keyChange\": \"https://acme-v02.api.letsencrypt.org/acme/key-change\",\n"
"  \"meta\": {\n"
"    \"caaIdentities\": [\"letsencrypt.org\"],\n"
"    \"profiles\": {\"classic\": \"https://letsencrypt.org/docs/profiles#"
"classic\", \"shortlived\": \"https://letsencrypt.org/docs/profiles#"
"shortlived\"},\n"
"    \"termsOfService\": \"https://letsencrypt.org/documents/"
"LE-SA-v1.5-February-24-2025.pdf\",\n"
"    \"website\": \"https://letsencrypt.org\"\n"
"  },\n"
"  \"newAccount\": \"https://acme-v02.api.letsencrypt.org/acme/new-acct\",\n"
"  \"newNonce\": \"https://acme-v02.api.letsencrypt.org/acme/new-nonce\",\n"
"  \"newOrder\": \"https://acme-v02.api.letsencrypt.org/acme/new-order\",\n"
"  \"renewalInfo\": \"https://acme-v02.api.letsencrypt.org/"
"draft-ietf-acme-ari-03/renewalInfo\",\n"
"  \"revokeCert\": \"https://acme-v02.api.letsencrypt.org/acme/"
"revoke-cert\",\n"
"  \"yCzVWCXoc9E\": \"https://community.letsencrypt.org/t/"
"adding-random-entries-to-the-directory/33417\"\n"
"}";

/* pebble with PEBBLE's externalAccountBindingRequired. */
static const char eab_dir[] =
"{\"meta\":{\"externalAccountRequired\":true,\"termsOfService\":"
"\"data:text/plain,Do%20what%20thou%20wilt\"},"
"\"newAccount\":\"https://localhost:14000/sign-me-up\","
"\"newNonce\":\"https://localhost:14000/nonce-plz\","
"\"newOrder\":\"https://localhost:14000/order-plz\","
"\"renewalInfo\":\"https://localhost:14000/draft-ietf-acme-ari-01/"
"renewalInfo/\"}";

static const char pebble_order[] =
"{\n"
"   \"status\": \"pending\",\n"
"   \"expires\": \"2026-12-04T03:40:28Z\",\n"
"   \"identifiers\": [\n"
"      {\"type\": \"dns\", \"value\": \"example.com\"},\n"
"      {\"type\": \"dns\", \"value\": \"git.example.com\"}\n"
"   ],\n"
"   \"finalize\": \"https://127.0.0.1:14000/finalize-order/"
"fhN7DWN2dOsgOCUBEVkgdkJQgGFxy-I1ZkM2mWwKbfk\",\n"
"   \"authorizations\": [\n"
"      \"https://127.0.0.1:14000/authZ/"
"hNiLOxhmDbtjW6p8g1UgGJ6S5sADqbSTUbOS7U8vzDg\",\n"
"      \"https://127.0.0.1:14000/authZ/"
"b2NnvKBFo0Nl4ZmZfD1s1Tr5qg9bZmQb8_JQ4DOCVa0\"\n"
"   ]\n"
"}";

static const char le_order_valid[] =
"{\"status\":\"valid\",\"expires\":\"2026-12-10T10:00:00Z\","
"\"identifiers\":[{\"type\":\"dns\",\"value\":\"example.com\"}],"
"\"authorizations\":[\"https://acme-v02.api.letsencrypt.org/acme/authz/"
"1234567/89012345678\"],"
"\"finalize\":\"https://acme-v02.api.letsencrypt.org/acme/finalize/"
"1234567/987654321\","
"\"certificate\":\"https://acme-v02.api.letsencrypt.org/acme/cert/"
"03a1b2c3d4e5f60718293a4b5c6d7e8f9012\"}";

static const char pebble_order_invalid[] =
"{\"status\":\"invalid\",\"expires\":\"2026-12-04T03:40:28Z\","
"\"identifiers\":[{\"type\":\"dns\",\"value\":\"bad.example.com\"}],"
"\"finalize\":\"https://127.0.0.1:14000/finalize-order/x\","
"\"authorizations\":[\"https://127.0.0.1:14000/authZ/y\"],"
"\"error\":{\"type\":\"urn:ietf:params:acme:error:unauthorized\","
"\"detail\":\"Authorization for bad.example.com is invalid\","
"\"status\":403}}";

static const char pebble_authz[] =
"{\n"
"   \"status\": \"pending\",\n"
"   \"identifier\": {\"type\": \"dns\", \"value\": \"example.com\"},\n"
"   \"challenges\": [\n"
"      {\"type\": \"tls-alpn-01\",\n"
"       \"url\": \"https://127.0.0.1:14000/chalZ/Yv2bgKd2c9bHxEzdkNzl\",\n"
"       \"token\": \"ohs6dF1Vvot9yT0b-A0ps_2wmfJmSzP2OqFYUuO86ig\",\n"
"       \"status\": \"pending\"},\n"
"      {\"type\": \"dns-01\",\n"
"       \"url\": \"https://127.0.0.1:14000/chalZ/a4m0kEY0NOfVPaOmaGiw\",\n"
"       \"token\": \"Q1Bq0sMXdJpGKHgWXqMQd7SeDeZzDTTHeWGnABJeoSI\",\n"
"       \"status\": \"pending\"},\n"
"      {\"type\": \"http-01\",\n"
"       \"url\": \"https://127.0.0.1:14000/chalZ/hxa3wcdOpmVjyhf8J29w\",\n"
"       \"token\": \"2iXUiP_3Lzn8LrIo6dbCN1nDqEAPKF6wmB3P8qPjV6Q\",\n"
"       \"status\": \"pending\"}\n"
"   ],\n"
"   \"expires\": \"2026-12-03T04:40:28Z\"\n"
"}";

static const char wildcard_authz[] =
"{\"status\":\"pending\",\"identifier\":{\"type\":\"dns\","
"\"value\":\"example.org\"},\"wildcard\":true,"
"\"challenges\":[{\"type\":\"dns-01\",\"url\":\"https://acme-v02.api."
"letsencrypt.org/acme/chall/1/2/Z3BhZw\",\"status\":\"pending\","
"\"token\":\"DGyRejmCefe7v4NfDGDKfA\"}],"
"\"expires\":\"2026-12-10T10:00:00Z\"}";

/* LE: a valid authz lists only the challenge that validated it. */
static const char le_authz_valid[] =
"{\"identifier\":{\"type\":\"dns\",\"value\":\"git.example.com\"},"
"\"status\":\"valid\",\"expires\":\"2027-01-02T10:00:00Z\","
"\"challenges\":[{\"type\":\"http-01\",\"status\":\"valid\","
"\"url\":\"https://acme-v02.api.letsencrypt.org/acme/chall/1/2/AbCd\","
"\"token\":\"LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0\","
"\"validationRecord\":[{\"url\":\"http://git.example.com/.well-known/"
"acme-challenge/LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0\","
"\"hostname\":\"git.example.com\",\"port\":\"80\","
"\"addressesResolved\":[\"203.0.113.10\"],"
"\"addressUsed\":\"203.0.113.10\"}],"
"\"validated\":\"2026-12-03T10:00:01Z\"}]}";

static const char le_challenge_invalid[] =
"{\"type\":\"tls-alpn-01\",\"status\":\"invalid\","
"\"error\":{\"type\":\"urn:ietf:params:acme:error:connection\","
"\"detail\":\"203.0.113.10: Timeout during connect (likely firewall "
"problem)\",\"status\":400},"
"\"url\":\"https://acme-v02.api.letsencrypt.org/acme/chall/1/2/EfGh\","
"\"token\":\"evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA\","
"\"validated\":\"2026-12-03T10:00:01Z\"}";

/* Debian's pebble with PEBBLE_WFE_NONCEREJECT, captured. */
static const char pebble_badnonce[] =
"{\n"
"   \"type\": \"urn:ietf:params:acme:error:badNonce\",\n"
"   \"detail\": \"JWS has an invalid anti-replay nonce: "
"\\\"0XRcs4V55Sd5L2NK6ccOCA\\\"\",\n"
"   \"status\": 400\n"
"}";

static const char le_subproblems[] =
"{\"type\":\"urn:ietf:params:acme:error:rejectedIdentifier\","
"\"detail\":\"Error creating new order :: Cannot issue for 2 names\","
"\"status\":400,\"subproblems\":["
"{\"type\":\"urn:ietf:params:acme:error:rejectedIdentifier\","
"\"detail\":\"Domain name contains an invalid character\","
"\"identifier\":{\"type\":\"dns\",\"value\":\"bad_.example\"}},"
"{\"type\":\"urn:ietf:params:acme:error:caa\","
"\"detail\":\"CAA record for example.org prevents issuance\","
"\"identifier\":{\"type\":\"dns\",\"value\":\"example.org\"}}]}";

static const char le_renewal_info[] =
"{\"suggestedWindow\":{\"start\":\"2026-12-03T10:00:00Z\","
"\"end\":\"2026-12-04T00:00:00Z\"},"
"\"explanationURL\":\"https://letsencrypt.org/2026/incident\"}";

static const char *const real_docs[] = {
	pebble_dir, le_dir, eab_dir, pebble_order, le_order_valid,
	pebble_order_invalid, pebble_authz, wildcard_authz, le_authz_valid,
	le_challenge_invalid, pebble_badnonce, le_subproblems,
	le_renewal_info,
};

/* ---- a growable string for built documents ---- */

struct sb {
	char	*p;
	size_t	 len;
};

static void
sb_add(struct sb *b, const char *s, size_t n)
{
	b->p = realloc(b->p, b->len + n + 1);
	assert_non_null(b->p);
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
sb_str(struct sb *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

static void
sb_rep(struct sb *b, const char *s, size_t times)
{
	while (times-- > 0)
		sb_str(b, s);
}

/* Empty again. */
static void
sb_reset(struct sb *b)
{
	free(b->p);
	b->p = NULL;
	b->len = 0;
}

/* The three required URLs, and an ignored member "x" nested depth deep. */
static void
sb_nested_dir(struct sb *b, size_t depth)
{
	sb_reset(b);
	sb_str(b, "{\"newNonce\":\"https://a/n\",\"newAccount\":"
	    "\"https://a/a\",\"newOrder\":\"https://a/o\",\"x\":");
	sb_rep(b, "[", depth);
	sb_rep(b, "]", depth);
	sb_str(b, "}");
}

/* "https://h/" and 'x' up to n bytes in all. */
static void
sb_url(struct sb *b, size_t n)
{
	sb_str(b, "https://h/");
	sb_rep(b, "x", n - 10);
}

/* ---- status ---- */

static void
test_status_name(void **state)
{
	(void)state;
	assert_string_equal(acme_status_name(ACME_ST_UNKNOWN), "unknown");
	assert_string_equal(acme_status_name(ACME_ST_PENDING), "pending");
	assert_string_equal(acme_status_name(ACME_ST_READY), "ready");
	assert_string_equal(acme_status_name(ACME_ST_PROCESSING),
	    "processing");
	assert_string_equal(acme_status_name(ACME_ST_VALID), "valid");
	assert_string_equal(acme_status_name(ACME_ST_INVALID), "invalid");
	assert_string_equal(acme_status_name(ACME_ST_EXPIRED), "expired");
	assert_string_equal(acme_status_name(ACME_ST_DEACTIVATED),
	    "deactivated");
	assert_string_equal(acme_status_name(ACME_ST_REVOKED), "revoked");
	assert_string_equal(acme_status_name((enum acme_status)99),
	    "unknown");
	assert_string_equal(acme_status_name((enum acme_status)-1),
	    "unknown");
}

/* ---- directory ---- */

static void
test_directory_pebble(void **state)
{
	struct acme_directory d;

	(void)state;
	assert_int_equal(PARSE(acme_parse_directory, pebble_dir, d), 0);
	assert_string_equal(d.new_nonce, "https://127.0.0.1:14000/nonce-plz");
	assert_string_equal(d.new_account,
	    "https://127.0.0.1:14000/sign-me-up");
	assert_string_equal(d.new_order, "https://127.0.0.1:14000/order-plz");
	assert_null(d.renewal_info);
	assert_string_equal(d.terms_of_service,
	    "data:text/plain,Do%20what%20thou%20wilt");
	assert_false(d.eab_required);
	acme_directory_free(&d);
	assert_true(zeroed(&d, sizeof(d)));
	acme_directory_free(&d);	/* twice: still safe */
}

static void
test_directory_le(void **state)
{
	struct acme_directory d;

	(void)state;
	assert_int_equal(PARSE(acme_parse_directory, le_dir, d), 0);
	assert_string_equal(d.new_nonce,
	    "https://acme-v02.api.letsencrypt.org/acme/new-nonce");
	assert_string_equal(d.new_account,
	    "https://acme-v02.api.letsencrypt.org/acme/new-acct");
	assert_string_equal(d.new_order,
	    "https://acme-v02.api.letsencrypt.org/acme/new-order");
	assert_string_equal(d.renewal_info,
	    "https://acme-v02.api.letsencrypt.org/draft-ietf-acme-ari-03/"
	    "renewalInfo");
	assert_string_equal(d.terms_of_service, "https://letsencrypt.org/"
	    "documents/LE-SA-v1.5-February-24-2025.pdf");
	assert_false(d.eab_required);
	acme_directory_free(&d);

	assert_int_equal(PARSE(acme_parse_directory, eab_dir, d), 0);
	assert_true(d.eab_required);
	assert_string_equal(d.renewal_info, "https://localhost:14000/"
	    "draft-ietf-acme-ari-01/renewalInfo/");
	acme_directory_free(&d);

	/* No meta at all; an upper-case scheme is still https. */
	assert_int_equal(PARSE(acme_parse_directory,
	    "{\"newNonce\":\"HTTPS://a/n\",\"newAccount\":\"https://a/a\","
	    "\"newOrder\":\"https://a/o\"}", d), 0);
	assert_null(d.terms_of_service);
	assert_false(d.eab_required);
	acme_directory_free(&d);
}

static void
test_directory_hostile(void **state)
{
	static const char *const bad[] = {
		/* each required URL missing */
		"{\"newAccount\":\"https://a/a\",\"newOrder\":\"https://a/o\"}",
		"{\"newNonce\":\"https://a/n\",\"newOrder\":\"https://a/o\"}",
		"{\"newNonce\":\"https://a/n\",\"newAccount\":\"https://a/a\"}",
		/* http, no host, other schemes, wrong types */
		"{\"newNonce\":\"http://a/n\",\"newAccount\":\"https://a/a\","
		"\"newOrder\":\"https://a/o\"}",
		"{\"newNonce\":\"https://\",\"newAccount\":\"https://a/a\","
		"\"newOrder\":\"https://a/o\"}",
		"{\"newNonce\":\"https://a/n\",\"newAccount\":\"ftp://a/a\","
		"\"newOrder\":\"https://a/o\"}",
		"{\"newNonce\":\"https://a/n\",\"newAccount\":\"https://a/a\","
		"\"newOrder\":42}",
		"{\"newNonce\":\"https://a/n\",\"newAccount\":"
		"[\"https://a/a\"],"
		"\"newOrder\":\"https://a/o\"}",
		"{\"newNonce\":null,\"newAccount\":\"https://a/a\","
		"\"newOrder\":\"https://a/o\"}",
		/* optional members of the wrong kind */
		"{\"newNonce\":\"https://a/n\",\"newAccount\":\"https://a/a\","
		"\"newOrder\":\"https://a/o\",\"renewalInfo\":\"http://a/r\"}",
		"{\"newNonce\":\"https://a/n\",\"newAccount\":\"https://a/a\","
		"\"newOrder\":\"https://a/o\",\"meta\":[]}",
		"{\"newNonce\":\"https://a/n\",\"newAccount\":\"https://a/a\","
		"\"newOrder\":\"https://a/o\",\"meta\":"
		"{\"externalAccountRequired\":\"true\"}}",
		"{\"newNonce\":\"https://a/n\",\"newAccount\":\"https://a/a\","
		"\"newOrder\":\"https://a/o\",\"meta\":"
		"{\"termsOfService\":\"\"}}",
		/* spaces, controls, non-ASCII in a URL */
		"{\"newNonce\":\"https://a/ n\",\"newAccount\":\"https://a/a\","
		"\"newOrder\":\"https://a/o\"}",
		"{\"newNonce\":\"https://a/\\tn\",\"newAccount\":"
		"\"https://a/a\",\"newOrder\":\"https://a/o\"}",
		"{\"newNonce\":\"https://\xc3\xa9.example/n\",\"newAccount\":"
		"\"https://a/a\",\"newOrder\":\"https://a/o\"}",
		/* NUL inside a string */
		"{\"newNonce\":\"https://a/n\\u0000x\",\"newAccount\":"
		"\"https://a/a\",\"newOrder\":\"https://a/o\"}",
		/* duplicate keys: which one would win? */
		"{\"newNonce\":\"https://a/n\",\"newAccount\":\"https://a/a\","
		"\"newOrder\":\"https://a/o\",\"newOrder\":\"https://b/o\"}",
		/* not an object, not JSON, trailing data */
		"[\"https://a/n\"]",
		"\"https://a/n\"",
		"42",
		"",
		"{",
		"{\"newNonce\":\"https://a/n\",\"newAccount\":\"https://a/a\","
		"\"newOrder\":\"https://a/o\"} {}",
		"{\"newNonce\":'https://a/n'}",
		/* invalid UTF-8 in an ignored member, an overlong form */
		"{\"newNonce\":\"https://a/n\",\"newAccount\":\"https://a/a\","
		"\"newOrder\":\"https://a/o\",\"x\":\"\xff\"}",
		"{\"newNonce\":\"https://a/n\",\"newAccount\":\"https://a/a\","
		"\"newOrder\":\"https://a/o\",\"x\":\"\xc0\xaf\"}",
		/* a lone surrogate */
		"{\"newNonce\":\"https://a/n\",\"newAccount\":\"https://a/a\","
		"\"newOrder\":\"https://a/o\",\"x\":\"\\ud800\"}",
		/* a number jansson cannot hold */
		"{\"newNonce\":\"https://a/n\",\"newAccount\":\"https://a/a\","
		"\"newOrder\":\"https://a/o\",\"x\":1e999}",
	};
	struct acme_directory d;

	(void)state;
	ALL_FAIL(acme_parse_directory, bad, d);

	/* A raw NUL byte anywhere (here inside a URL string). */
	{
		static const char raw[] = "{\"newNonce\":\"https://a/n\0x\","
		    "\"newAccount\":\"https://a/a\",\"newOrder\":"
		    "\"https://a/o\"}";

		ASSERT_FAILED(PARSE(acme_parse_directory, raw, d), d);
	}
	/* NULL buffer, and an error buffer of size 0 is not written. */
	err[0] = 'x';
	assert_int_equal(acme_parse_directory(NULL, 0, &d, err, 0), -1);
	assert_int_equal(err[0], 'x');
	assert_true(zeroed(&d, sizeof(d)));
	assert_int_equal(acme_parse_directory("{", 1, &d, NULL, 0), -1);
}

static void
test_directory_bounds(void **state)
{
	struct acme_directory d;
	struct sb b = { NULL, 0 };

	(void)state;
	/* A URL of exactly ACME_URL_MAX bytes is kept... */
	sb_str(&b, "{\"newAccount\":\"https://a/a\",\"newOrder\":"
	    "\"https://a/o\",\"newNonce\":\"");
	sb_url(&b, ACME_URL_MAX);
	sb_str(&b, "\"}");
	assert_int_equal(PARSE_S(acme_parse_directory, b.p, d), 0);
	assert_int_equal(strlen(d.new_nonce), ACME_URL_MAX);
	acme_directory_free(&d);

	/* ...one more is refused. */
	sb_reset(&b);
	sb_str(&b, "{\"newAccount\":\"https://a/a\",\"newOrder\":"
	    "\"https://a/o\",\"newNonce\":\"");
	sb_url(&b, ACME_URL_MAX + 1);
	sb_str(&b, "\"}");
	ASSERT_FAILED(PARSE_S(acme_parse_directory, b.p, d), d);
	assert_non_null(strstr(err, "newNonce"));

	/* A body of ACME_BODY_MAX is read; one byte more is not. */
	sb_reset(&b);
	sb_str(&b, "{\"newNonce\":\"https://a/n\",\"newAccount\":"
	    "\"https://a/a\",\"newOrder\":\"https://a/o\",\"pad\":\"");
	sb_rep(&b, "x", ACME_BODY_MAX - b.len - 2);
	sb_str(&b, "\"}");
	assert_int_equal(b.len, ACME_BODY_MAX);
	assert_int_equal(PARSE_S(acme_parse_directory, b.p, d), 0);
	acme_directory_free(&d);
	sb_str(&b, " ");
	ASSERT_FAILED(PARSE_S(acme_parse_directory, b.p, d), d);
	sb_reset(&b);

	/* Nesting: modest depth in an ignored member is fine... */
	sb_nested_dir(&b, 100);
	assert_int_equal(PARSE_S(acme_parse_directory, b.p, d), 0);
	acme_directory_free(&d);

	/* ...deep nesting is refused, not recursed into. */
	sb_nested_dir(&b, 3000);
	ASSERT_FAILED(PARSE_S(acme_parse_directory, b.p, d), d);
	sb_reset(&b);
	sb_str(&b, "{\"x\":");
	sb_rep(&b, "{\"a\":[", 40000);
	ASSERT_FAILED(PARSE_S(acme_parse_directory, b.p, d), d);
	sb_reset(&b);
}

/* Every strict prefix of every real document fails, and keeps nothing. */
static void
test_truncated(void **state)
{
	struct acme_directory d;
	struct acme_order o;
	struct acme_authz a;
	struct acme_challenge c;
	struct acme_problem p;
	enum acme_status st;
	int64_t s, e;
	size_t i, n;

	(void)state;
	for (i = 0; i < sizeof(real_docs) / sizeof(real_docs[0]); i++) {
		for (n = 0; n < strlen(real_docs[i]); n++) {
			ASSERT_FAILED(acme_parse_directory(real_docs[i], n,
			    &d, err, sizeof(err)), d);
			ASSERT_FAILED(acme_parse_order(real_docs[i], n, &o,
			    err, sizeof(err)), o);
			ASSERT_FAILED(acme_parse_authz(real_docs[i], n, &a,
			    err, sizeof(err)), a);
			ASSERT_FAILED(acme_parse_challenge(real_docs[i], n,
			    &c, err, sizeof(err)), c);
			ASSERT_FAILED(acme_parse_problem(real_docs[i], n, &p,
			    err, sizeof(err)), p);
			assert_int_equal(acme_parse_account(real_docs[i], n,
			    &st, err, sizeof(err)), -1);
			assert_int_equal(acme_parse_renewal_info(real_docs[i],
			    n, &s, &e, err, sizeof(err)), -1);
		}
	}
}

/* Each parser refuses the others' documents where they lack its members. */
static void
test_cross(void **state)
{
	struct acme_directory d;
	struct acme_order o;
	struct acme_authz a;
	struct acme_challenge c;
	int64_t s, e;

	(void)state;
	ASSERT_FAILED(PARSE(acme_parse_directory, pebble_order, d), d);
	ASSERT_FAILED(PARSE(acme_parse_order, pebble_authz, o), o);
	ASSERT_FAILED(PARSE(acme_parse_authz, pebble_order, a), a);
	ASSERT_FAILED(PARSE(acme_parse_challenge, pebble_authz, c), c);
	assert_int_equal(acme_parse_renewal_info(pebble_dir, LEN(pebble_dir),
	    &s, &e, err, sizeof(err)), -1);
}

/* ---- account ---- */

#define ACCT(lit)	\
	acme_parse_account((lit), LEN(lit), &st, err, sizeof(err))

static void
test_account(void **state)
{
	enum acme_status st;

	(void)state;
	assert_int_equal(ACCT("{\"status\":\"valid\","
	    "\"contact\":[\"mailto:admin@example.com\"],\"orders\":"
	    "\"https://127.0.0.1:14000/list-orderz/1\",\"key\":{\"kty\":"
	    "\"EC\",\"crv\":\"P-256\",\"x\":\"a\",\"y\":\"b\"}}"), 0);
	assert_int_equal(st, ACME_ST_VALID);
	assert_int_equal(ACCT("{\"status\":\"deactivated\"}"), 0);
	assert_int_equal(st, ACME_ST_DEACTIVATED);
	assert_int_equal(ACCT("{\"status\":\"revoked\"}"), 0);
	assert_int_equal(st, ACME_ST_REVOKED);
	/* A status this code does not know is kept as unknown. */
	assert_int_equal(ACCT("{\"status\":\"frozen\"}"), 0);
	assert_int_equal(st, ACME_ST_UNKNOWN);
	assert_int_equal(ACCT("{\"status\":\"Valid\"}"), 0);
	assert_int_equal(st, ACME_ST_UNKNOWN);

	st = ACME_ST_VALID;
	assert_int_equal(ACCT("{}"), -1);
	assert_int_equal(st, ACME_ST_UNKNOWN);
	assert_non_null(strstr(err, "status"));
	assert_int_equal(ACCT("{\"status\":1}"), -1);
	assert_int_equal(ACCT("{\"status\":\"valid\\u0000\"}"), -1);
	assert_int_equal(ACCT("{\"status\":\"valid\","
	    "\"status\":\"revoked\"}"), -1);
	assert_int_equal(st, ACME_ST_UNKNOWN);
}

/* ---- order ---- */

static void
test_order_statuses(void **state)
{
	static const struct {
		const char		*name;
		enum acme_status	 st;
	} sts[] = {
		{ "pending", ACME_ST_PENDING },
		{ "ready", ACME_ST_READY },
		{ "processing", ACME_ST_PROCESSING },
		{ "invalid", ACME_ST_INVALID },
		{ "expired", ACME_ST_EXPIRED },
	};
	struct acme_order o;
	char doc[512];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(sts) / sizeof(sts[0]); i++) {
		/* A certificate member is ignored unless the order is valid. */
		(void)snprintf(doc, sizeof(doc), "{\"status\":\"%s\","
		    "\"authorizations\":[\"https://ca/az/1\"],"
		    "\"finalize\":\"https://ca/fin/1\","
		    "\"certificate\":\"https://ca/cert/1\"}", sts[i].name);
		assert_int_equal(PARSE_S(acme_parse_order, doc, o), 0);
		assert_int_equal(o.status, sts[i].st);
		assert_int_equal(o.nauthz, 1);
		assert_string_equal(o.authz[0], "https://ca/az/1");
		assert_string_equal(o.finalize, "https://ca/fin/1");
		assert_null(o.certificate);
		assert_null(o.error.type);
		acme_order_free(&o);
	}
}

static void
test_order_real(void **state)
{
	struct acme_order o;

	(void)state;
	assert_int_equal(PARSE(acme_parse_order, pebble_order, o), 0);
	assert_int_equal(o.status, ACME_ST_PENDING);
	assert_int_equal(o.nauthz, 2);
	assert_string_equal(o.authz[0], "https://127.0.0.1:14000/authZ/"
	    "hNiLOxhmDbtjW6p8g1UgGJ6S5sADqbSTUbOS7U8vzDg");
	assert_string_equal(o.authz[1], "https://127.0.0.1:14000/authZ/"
	    "b2NnvKBFo0Nl4ZmZfD1s1Tr5qg9bZmQb8_JQ4DOCVa0");
	assert_string_equal(o.finalize, "https://127.0.0.1:14000/"
	    "finalize-order/fhN7DWN2dOsgOCUBEVkgdkJQgGFxy-I1ZkM2mWwKbfk");
	assert_null(o.certificate);
	assert_null(o.error.type);
	assert_null(o.error.detail);
	acme_order_free(&o);
	assert_true(zeroed(&o, sizeof(o)));
	acme_order_free(&o);

	assert_int_equal(PARSE(acme_parse_order, le_order_valid, o), 0);
	assert_int_equal(o.status, ACME_ST_VALID);
	assert_int_equal(o.nauthz, 1);
	assert_string_equal(o.certificate, "https://acme-v02.api."
	    "letsencrypt.org/acme/cert/03a1b2c3d4e5f60718293a4b5c6d7e8f9012");
	acme_order_free(&o);

	assert_int_equal(PARSE(acme_parse_order, pebble_order_invalid, o), 0);
	assert_int_equal(o.status, ACME_ST_INVALID);
	assert_string_equal(o.error.type,
	    "urn:ietf:params:acme:error:unauthorized");
	assert_string_equal(o.error.detail,
	    "Authorization for bad.example.com is invalid");
	assert_true(acme_problem_is(&o.error, "unauthorized"));
	acme_order_free(&o);
}

static void
test_order_hostile(void **state)
{
	static const char *const bad[] = {
		/* valid needs its certificate, an https one */
		"{\"status\":\"valid\",\"authorizations\":[\"https://c/a\"],"
		"\"finalize\":\"https://c/f\"}",
		"{\"status\":\"valid\",\"authorizations\":[\"https://c/a\"],"
		"\"finalize\":\"https://c/f\",\"certificate\":\"http://c/c\"}",
		/* missing status, authorizations, finalize */
		"{\"authorizations\":[\"https://c/a\"],"
		"\"finalize\":\"https://c/f\"}",
		"{\"status\":\"pending\",\"finalize\":\"https://c/f\"}",
		"{\"status\":\"pending\",\"authorizations\":[\"https://c/a\"]}",
		/* wrong types */
		"{\"status\":[],\"authorizations\":[\"https://c/a\"],"
		"\"finalize\":\"https://c/f\"}",
		"{\"status\":\"pending\",\"authorizations\":\"https://c/a\","
		"\"finalize\":\"https://c/f\"}",
		"{\"status\":\"pending\",\"authorizations\":{\"a\":1},"
		"\"finalize\":\"https://c/f\"}",
		"{\"status\":\"pending\",\"authorizations\":[\"https://c/a\","
		"7],\"finalize\":\"https://c/f\"}",
		"{\"status\":\"pending\",\"authorizations\":[\"https://c/a\"],"
		"\"finalize\":true}",
		/* no authorization at all; an http one; an empty one */
		"{\"status\":\"pending\",\"authorizations\":[],"
		"\"finalize\":\"https://c/f\"}",
		"{\"status\":\"pending\",\"authorizations\":[\"https://c/a\","
		"\"http://c/b\"],\"finalize\":\"https://c/f\"}",
		"{\"status\":\"pending\",\"authorizations\":[\"\"],"
		"\"finalize\":\"https://c/f\"}",
		/* an error that is not a problem */
		"{\"status\":\"invalid\",\"authorizations\":[\"https://c/a\"],"
		"\"finalize\":\"https://c/f\",\"error\":\"it failed\"}",
		"{\"status\":\"invalid\",\"authorizations\":[\"https://c/a\"],"
		"\"finalize\":\"https://c/f\",\"error\":{\"detail\":\"x\"}}",
		/* the same authorization key twice */
		"{\"status\":\"pending\",\"authorizations\":[\"https://c/a\"],"
		"\"authorizations\":[\"https://c/b\"],"
		"\"finalize\":\"https://c/f\"}",
	};
	struct acme_order o;

	(void)state;
	ALL_FAIL(acme_parse_order, bad, o);
}

/* ACME_MAX_AUTHZ authorizations are fine, one more is not. */
static void
test_order_counts(void **state)
{
	struct acme_order o;
	struct sb b = { NULL, 0 };
	size_t n, i;
	char url[64];

	(void)state;
	for (n = ACME_MAX_AUTHZ; n <= ACME_MAX_AUTHZ + 1; n++) {
		sb_reset(&b);
		sb_str(&b, "{\"status\":\"ready\",\"finalize\":\"https://c/f\","
		    "\"authorizations\":[");
		for (i = 0; i < n; i++) {
			(void)snprintf(url, sizeof(url),
			    "%s\"https://c/a/%zu\"", i > 0 ? "," : "", i);
			sb_str(&b, url);
		}
		sb_str(&b, "]}");
		if (n == ACME_MAX_AUTHZ) {
			assert_int_equal(PARSE_S(acme_parse_order, b.p, o), 0);
			assert_int_equal(o.nauthz, n);
			assert_string_equal(o.authz[n - 1], "https://c/a/99");
			acme_order_free(&o);
		} else
			ASSERT_FAILED(PARSE_S(acme_parse_order, b.p, o), o);
		sb_reset(&b);
	}

	/* A bad URL late in the list: what was copied before is freed. */
	sb_reset(&b);
	sb_str(&b, "{\"status\":\"ready\",\"finalize\":\"https://c/f\","
	    "\"authorizations\":[");
	sb_rep(&b, "\"https://c/a\",", 50);
	sb_str(&b, "\"https://c/\\u0000\"]}");
	ASSERT_FAILED(PARSE_S(acme_parse_order, b.p, o), o);
	sb_reset(&b);
}

/* ---- authorization and challenge ---- */

static void
test_authz_pebble(void **state)
{
	struct acme_authz a;

	(void)state;
	assert_int_equal(PARSE(acme_parse_authz, pebble_authz, a), 0);
	assert_int_equal(a.status, ACME_ST_PENDING);
	assert_string_equal(a.identifier, "example.com");
	assert_false(a.wildcard);
	assert_int_equal(a.nchallenges, 3);
	assert_string_equal(a.challenges[0].type, "tls-alpn-01");
	assert_string_equal(a.challenges[0].url,
	    "https://127.0.0.1:14000/chalZ/Yv2bgKd2c9bHxEzdkNzl");
	assert_string_equal(a.challenges[0].token,
	    "ohs6dF1Vvot9yT0b-A0ps_2wmfJmSzP2OqFYUuO86ig");
	assert_int_equal(a.challenges[0].status, ACME_ST_PENDING);
	assert_null(a.challenges[0].error.type);
	assert_string_equal(a.challenges[1].type, "dns-01");
	assert_string_equal(a.challenges[2].type, "http-01");
	assert_string_equal(a.challenges[2].token,
	    "2iXUiP_3Lzn8LrIo6dbCN1nDqEAPKF6wmB3P8qPjV6Q");
	acme_authz_free(&a);
	assert_true(zeroed(&a, sizeof(a)));
	acme_authz_free(&a);
}

static void
test_authz_wildcard_and_valid(void **state)
{
	struct acme_authz a;

	(void)state;
	assert_int_equal(PARSE(acme_parse_authz, wildcard_authz, a), 0);
	assert_true(a.wildcard);
	assert_string_equal(a.identifier, "example.org");
	assert_int_equal(a.nchallenges, 1);
	assert_string_equal(a.challenges[0].type, "dns-01");
	acme_authz_free(&a);

	assert_int_equal(PARSE(acme_parse_authz, le_authz_valid, a), 0);
	assert_int_equal(a.status, ACME_ST_VALID);
	assert_string_equal(a.identifier, "git.example.com");
	assert_int_equal(a.nchallenges, 1);
	assert_int_equal(a.challenges[0].status, ACME_ST_VALID);
	assert_string_equal(a.challenges[0].token,
	    "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0");
	acme_authz_free(&a);

	/* No challenge left (a deactivated authz); an unknown type is kept,
	 * and a challenge need not have a token. */
	assert_int_equal(PARSE(acme_parse_authz, "{\"status\":\"deactivated\","
	    "\"identifier\":{\"type\":\"dns\",\"value\":\"a.example\"},"
	    "\"challenges\":[]}", a), 0);
	assert_int_equal(a.status, ACME_ST_DEACTIVATED);
	assert_int_equal(a.nchallenges, 0);
	acme_authz_free(&a);
	assert_int_equal(PARSE(acme_parse_authz, "{\"status\":\"pending\","
	    "\"identifier\":{\"type\":\"dns\",\"value\":\"A-1.Example\"},"
	    "\"wildcard\":false,\"challenges\":[{\"type\":\"future-99\","
	    "\"url\":\"https://c/x\",\"status\":\"pending\"}]}", a), 0);
	assert_string_equal(a.identifier, "A-1.Example");
	assert_string_equal(a.challenges[0].type, "future-99");
	assert_null(a.challenges[0].token);
	acme_authz_free(&a);
}

static void
test_authz_hostile(void **state)
{
#define CH	"{\"type\":\"http-01\",\"url\":\"https://c/1\"," \
		"\"status\":\"pending\",\"token\":\"abc\"}"
#define ID	"\"identifier\":{\"type\":\"dns\",\"value\":\"example.com\"}"
	static const char *const bad[] = {
		/* identifier: missing, not dns, not a host name */
		"{\"status\":\"pending\",\"challenges\":[" CH "]}",
		"{\"status\":\"pending\",\"identifier\":\"example.com\","
		"\"challenges\":[" CH "]}",
		"{\"status\":\"pending\",\"identifier\":{\"type\":\"ip\","
		"\"value\":\"192.0.2.1\"},\"challenges\":[" CH "]}",
		"{\"status\":\"pending\",\"identifier\":{\"value\":"
		"\"example.com\"},\"challenges\":[" CH "]}",
		"{\"status\":\"pending\",\"identifier\":{\"type\":\"dns\"},"
		"\"challenges\":[" CH "]}",
		"{\"status\":\"pending\",\"identifier\":{\"type\":\"dns\","
		"\"value\":\"*.example.com\"},\"challenges\":[" CH "]}",
		"{\"status\":\"pending\",\"identifier\":{\"type\":\"dns\","
		"\"value\":\"example.com.\"},\"challenges\":[" CH "]}",
		"{\"status\":\"pending\",\"identifier\":{\"type\":\"dns\","
		"\"value\":\"exa mple.com\"},\"challenges\":[" CH "]}",
		"{\"status\":\"pending\",\"identifier\":{\"type\":\"dns\","
		"\"value\":\"a..b\"},\"challenges\":[" CH "]}",
		"{\"status\":\"pending\",\"identifier\":{\"type\":\"dns\","
		"\"value\":\"192.0.2.1\"},\"challenges\":[" CH "]}",
		"{\"status\":\"pending\",\"identifier\":{\"type\":\"dns\","
		"\"value\":\"\"},\"challenges\":[" CH "]}",
		"{\"status\":\"pending\",\"identifier\":{\"type\":\"dns\\u0000"
		"x\",\"value\":\"example.com\"},\"challenges\":[" CH "]}",
		/* status, wildcard, challenges of the wrong kind */
		"{" ID ",\"challenges\":[" CH "]}",
		"{\"status\":\"pending\"," ID ",\"wildcard\":1,"
		"\"challenges\":[" CH "]}",
		"{\"status\":\"pending\"," ID "}",
		"{\"status\":\"pending\"," ID ",\"challenges\":" CH "}",
		"{\"status\":\"pending\"," ID ",\"challenges\":[" CH ",1]}",
		/* a challenge without type, url or status; http url; bad
		 * tokens (padding, a dot, empty, a number) */
		"{\"status\":\"pending\"," ID ",\"challenges\":[{\"url\":"
		"\"https://c/1\",\"status\":\"pending\"}]}",
		"{\"status\":\"pending\"," ID ",\"challenges\":[{\"type\":"
		"\"http-01\",\"status\":\"pending\"}]}",
		"{\"status\":\"pending\"," ID ",\"challenges\":[{\"type\":"
		"\"http-01\",\"url\":\"https://c/1\"}]}",
		"{\"status\":\"pending\"," ID ",\"challenges\":[{\"type\":"
		"\"http-01\",\"url\":\"http://c/1\",\"status\":\"pending\"}]}",
		"{\"status\":\"pending\"," ID ",\"challenges\":[{\"type\":"
		"\"http-01\",\"url\":\"https://c/1\",\"status\":\"pending\","
		"\"token\":\"abc=\"}]}",
		"{\"status\":\"pending\"," ID ",\"challenges\":[{\"type\":"
		"\"http-01\",\"url\":\"https://c/1\",\"status\":\"pending\","
		"\"token\":\"../../etc/passwd\"}]}",
		"{\"status\":\"pending\"," ID ",\"challenges\":[{\"type\":"
		"\"http-01\",\"url\":\"https://c/1\",\"status\":\"pending\","
		"\"token\":\"\"}]}",
		"{\"status\":\"pending\"," ID ",\"challenges\":[{\"type\":"
		"\"http-01\",\"url\":\"https://c/1\",\"status\":\"pending\","
		"\"token\":12}]}",
		"{\"status\":\"pending\"," ID ",\"challenges\":[{\"type\":"
		"\"http 01\",\"url\":\"https://c/1\",\"status\":\"pending\"}]}",
		"{\"status\":\"pending\"," ID ",\"challenges\":[{\"type\":"
		"\"http-01\",\"url\":\"https://c/1\",\"status\":\"invalid\","
		"\"error\":[]}]}",
		/* the second challenge is bad: the first is freed */
		"{\"status\":\"pending\"," ID ",\"challenges\":[" CH ","
		"{\"type\":\"dns-01\",\"url\":\"https://c/2\",\"status\":"
		"\"pending\",\"token\":\"x\",\"token\":\"y\"}]}",
	};
#undef ID
	struct acme_authz a;

	(void)state;
	ALL_FAIL(acme_parse_authz, bad, a);
}

/* Counts and lengths at their bounds, and one past. */
static void
test_authz_bounds(void **state)
{
	struct acme_authz a;
	struct sb b = { NULL, 0 };
	size_t n;

	(void)state;
	for (n = ACME_MAX_CHALLENGES; n <= ACME_MAX_CHALLENGES + 1; n++) {
		sb_reset(&b);
		sb_str(&b, "{\"status\":\"pending\",\"identifier\":{\"type\":"
		    "\"dns\",\"value\":\"example.com\"},\"challenges\":[");
		sb_rep(&b, CH ",", n - 1);
		sb_str(&b, CH "]}");
		if (n == ACME_MAX_CHALLENGES) {
			assert_int_equal(PARSE_S(acme_parse_authz, b.p, a), 0);
			assert_int_equal(a.nchallenges, n);
			acme_authz_free(&a);
		} else
			ASSERT_FAILED(PARSE_S(acme_parse_authz, b.p, a), a);
		sb_reset(&b);
	}

	for (n = ACME_TOKEN_MAX; n <= ACME_TOKEN_MAX + 1; n++) {
		sb_reset(&b);
		sb_str(&b, "{\"status\":\"pending\",\"identifier\":{\"type\":"
		    "\"dns\",\"value\":\"example.com\"},\"challenges\":[{"
		    "\"type\":\"http-01\",\"url\":\"https://c/1\",\"status\":"
		    "\"pending\",\"token\":\"");
		sb_rep(&b, "_", n);
		sb_str(&b, "\"}]}");
		if (n == ACME_TOKEN_MAX) {
			assert_int_equal(PARSE_S(acme_parse_authz, b.p, a), 0);
			assert_int_equal(strlen(a.challenges[0].token), n);
			acme_authz_free(&a);
		} else
			ASSERT_FAILED(PARSE_S(acme_parse_authz, b.p, a), a);
		sb_reset(&b);
	}

	/* A host name of 253 bytes, and of 254. */
	for (n = 253; n <= 254; n++) {
		sb_reset(&b);
		sb_str(&b, "{\"status\":\"pending\",\"challenges\":[],"
		    "\"identifier\":{\"type\":\"dns\",\"value\":\"");
		sb_rep(&b, "abcdefghijklmnopqrstuvwxyz"
		    "abcdefghijklmnopqrstuvwx.", 4);
		sb_rep(&b, "a", n - 4 * 51);
		sb_str(&b, "\"}}");
		if (n == 253) {
			assert_int_equal(PARSE_S(acme_parse_authz, b.p, a), 0);
			assert_int_equal(strlen(a.identifier), n);
			acme_authz_free(&a);
		} else
			ASSERT_FAILED(PARSE_S(acme_parse_authz, b.p, a), a);
		sb_reset(&b);
	}
#undef CH
}

static void
test_challenge(void **state)
{
	struct acme_challenge c;

	(void)state;
	assert_int_equal(PARSE(acme_parse_challenge, le_challenge_invalid, c),
	    0);
	assert_string_equal(c.type, "tls-alpn-01");
	assert_int_equal(c.status, ACME_ST_INVALID);
	assert_string_equal(c.url, "https://acme-v02.api.letsencrypt.org/"
	    "acme/chall/1/2/EfGh");
	assert_string_equal(c.token,
	    "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA");
	assert_true(acme_problem_is(&c.error, "connection"));
	assert_string_equal(c.error.detail, "203.0.113.10: Timeout during "
	    "connect (likely firewall problem)");
	acme_challenge_free(&c);
	assert_true(zeroed(&c, sizeof(c)));
	acme_challenge_free(&c);

	assert_int_equal(PARSE(acme_parse_challenge, "{\"type\":\"http-01\","
	    "\"url\":\"https://127.0.0.1:14000/chalZ/hxa3\",\"token\":"
	    "\"2iXUiP_3Lzn8LrIo6dbCN1nDqEAPKF6wmB3P8qPjV6Q\",\"status\":"
	    "\"processing\"}", c), 0);
	assert_int_equal(c.status, ACME_ST_PROCESSING);
	assert_null(c.error.type);
	acme_challenge_free(&c);

	ASSERT_FAILED(PARSE(acme_parse_challenge, "[]", c), c);
	assert_non_null(strstr(err, "object"));
	ASSERT_FAILED(PARSE(acme_parse_challenge, "{\"type\":\"http-01\","
	    "\"url\":\"https://c/1\",\"status\":\"invalid\",\"error\":"
	    "{\"type\":\"urn:x\",\"detail\":5}}", c), c);
	assert_non_null(strstr(err, "error.detail"));
}

/* ---- problem documents ---- */

static void
test_problem_real(void **state)
{
	struct acme_problem p;

	(void)state;
	assert_int_equal(PARSE(acme_parse_problem, pebble_badnonce, p), 0);
	assert_string_equal(p.type, "urn:ietf:params:acme:error:badNonce");
	assert_string_equal(p.detail, "JWS has an invalid anti-replay nonce: "
	    "\"0XRcs4V55Sd5L2NK6ccOCA\"");
	assert_true(acme_problem_is(&p, "badNonce"));
	assert_false(acme_problem_is(&p, "badnonce"));
	assert_false(acme_problem_is(&p, "badNonc"));
	assert_false(acme_problem_is(&p, "malformed"));
	acme_problem_free(&p);
	assert_true(zeroed(&p, sizeof(p)));
	assert_false(acme_problem_is(&p, "badNonce"));
	assert_false(acme_problem_is(NULL, "badNonce"));
	acme_problem_free(&p);
	acme_problem_free(NULL);

	assert_int_equal(PARSE(acme_parse_problem, le_subproblems, p), 0);
	assert_true(acme_problem_is(&p, "rejectedIdentifier"));
	assert_string_equal(p.detail, "Error creating new order :: Cannot "
	    "issue for 2 names; bad_.example: Domain name contains an invalid "
	    "character; example.org: CAA record for example.org prevents "
	    "issuance");
	acme_problem_free(&p);

	/* No detail: NULL; subproblems alone make one. */
	assert_int_equal(PARSE(acme_parse_problem,
	    "{\"type\":\"urn:ietf:params:acme:error:serverInternal\"}", p), 0);
	assert_null(p.detail);
	acme_problem_free(&p);
	assert_int_equal(PARSE(acme_parse_problem, "{\"type\":\"about:blank\","
	    "\"subproblems\":[{\"detail\":\"a\"},{},{\"type\":\"urn:t\"}]}",
	    p), 0);
	assert_false(acme_problem_is(&p, "blank"));
	assert_string_equal(p.detail, "a; urn:t");
	acme_problem_free(&p);

	/* A type that only looks like ours. */
	assert_int_equal(PARSE(acme_parse_problem,
	    "{\"type\":\"urn:ietf:params:acme:error:badNonce:x\"}", p), 0);
	assert_false(acme_problem_is(&p, "badNonce"));
	acme_problem_free(&p);
	assert_int_equal(PARSE(acme_parse_problem,
	    "{\"type\":\"urn:ietf:params:acme:errorbadNonce\"}", p), 0);
	assert_false(acme_problem_is(&p, "badNonce"));
	acme_problem_free(&p);
}

static void
test_problem_sanitized(void **state)
{
	struct acme_problem p;
	struct sb b = { NULL, 0 };
	size_t i;

	(void)state;
	/* Each non-ASCII character and each control becomes one '?'. */
	assert_int_equal(PARSE(acme_parse_problem, "{\"type\":\"urn:x\","
	    "\"detail\":\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x92 "
	    "a\\nb\\tc\\u001bd\\u007fe\\u00e9\"}", p), 0);
	assert_string_equal(p.detail, "caf? ? ? a?b?c?d?e?");
	acme_problem_free(&p);

	/* A long detail is cut at ACME_TEXT_MAX. */
	sb_str(&b, "{\"type\":\"urn:x\",\"detail\":\"");
	sb_rep(&b, "0123456789", 200);
	sb_str(&b, "\",\"subproblems\":[{\"detail\":\"more\"}]}");
	assert_int_equal(PARSE_S(acme_parse_problem, b.p, p), 0);
	assert_int_equal(strlen(p.detail), ACME_TEXT_MAX);
	for (i = 0; i < ACME_TEXT_MAX; i++)
		assert_int_equal(p.detail[i], '0' + (char)(i % 10));
	acme_problem_free(&p);

	/* Many subproblems: still cut, still printable. */
	sb_reset(&b);
	sb_str(&b, "{\"type\":\"urn:x\",\"subproblems\":[");
	sb_rep(&b, "{\"detail\":\"\xc3\xa9t\xc3\xa9\",\"identifier\":"
	    "{\"type\":\"dns\",\"value\":\"a.example\"}},", 500);
	sb_str(&b, "{}]}");
	assert_int_equal(PARSE_S(acme_parse_problem, b.p, p), 0);
	assert_int_equal(strlen(p.detail), ACME_TEXT_MAX);
	assert_int_equal(strncmp(p.detail, "a.example: ?t?; a.example: ?t?",
	    30), 0);
	acme_problem_free(&p);
	sb_reset(&b);
}

static void
test_problem_hostile(void **state)
{
	static const char *const bad[] = {
		"{\"detail\":\"no type\"}",
		"{\"type\":null}",
		"{\"type\":4}",
		"{\"type\":\"\"}",
		"{\"type\":\"urn:ietf:params:acme:error:bad Nonce\"}",
		"{\"type\":\"urn:ietf:params:acme:error:\\u00e9\"}",
		"{\"type\":\"urn:ietf:params:acme:error:badNonce\\u0000\"}",
		"{\"type\":\"urn:x\",\"detail\":{}}",
		"{\"type\":\"urn:x\",\"detail\":\"a\\u0000b\"}",
		"{\"type\":\"urn:x\",\"subproblems\":{}}",
		"{\"type\":\"urn:x\",\"subproblems\":[\"detail\"]}",
		"{\"type\":\"urn:x\",\"subproblems\":[{\"detail\":1}]}",
		"{\"type\":\"urn:x\",\"subproblems\":[{\"identifier\":"
		"\"a.example\"}]}",
		"{\"type\":\"urn:x\",\"subproblems\":[{\"identifier\":"
		"{\"value\":[]}}]}",
		"{\"type\":\"urn:x\",\"type\":\"urn:y\"}",
		"{\"type\":\"urn:x\",\"detail\":\"\xed\xa0\x80\"}",
		"[{\"type\":\"urn:x\"}]",
	};
	struct acme_problem p;
	struct sb b = { NULL, 0 };
	size_t i;

	(void)state;
	ALL_FAIL(acme_parse_problem, bad, p);
	/* A type longer than ACME_TEXT_MAX is refused, not cut. */
	sb_str(&b, "{\"type\":\"urn:");
	sb_rep(&b, "x", ACME_TEXT_MAX);
	sb_str(&b, "\"}");
	ASSERT_FAILED(PARSE_S(acme_parse_problem, b.p, p), p);
	sb_reset(&b);
	/* jansson's message quotes the input: err stays printable. */
	ASSERT_FAILED(PARSE(acme_parse_problem, "{\"type\":\x01\xff}", p), p);
	for (i = 0; err[i] != '\0'; i++)
		assert_true(err[i] >= 0x20 && err[i] <= 0x7e);
}

/* ---- renewalInfo ---- */

static void
test_renewal_info(void **state)
{
	int64_t s, e;

	(void)state;
	assert_int_equal(acme_parse_renewal_info(le_renewal_info,
	    LEN(le_renewal_info), &s, &e, err, sizeof(err)), 0);
	assert_int_equal(s, 1796292000);
	assert_int_equal(e, 1796342400);
	/* A window of one instant, with offsets that meet. */
	{
		static const char one[] = "{\"suggestedWindow\":{"
		    "\"start\":\"2026-12-03T12:00:00+02:00\",\"end\":"
		    "\"2026-12-03t10:00:00.999z\"}}";

		assert_int_equal(acme_parse_renewal_info(one, LEN(one), &s, &e,
		    err, sizeof(err)), 0);
	}
	assert_int_equal(s, 1796292000);
	assert_int_equal(e, 1796292000);

#define BAD_RI(lit) do {						\
	s = e = 1;							\
	err[0] = '\0';							\
	assert_int_equal(acme_parse_renewal_info((lit), LEN(lit), &s, &e, \
	    err, sizeof(err)), -1);					\
	assert_true(s == 0 && e == 0 && err[0] != '\0');		\
} while (0)
	BAD_RI("{\"suggestedWindow\":{\"start\":\"2026-12-04T00:00:00Z\","
	    "\"end\":\"2026-12-03T10:00:00Z\"}}");
	BAD_RI("{\"suggestedWindow\":{\"start\":\"2026-12-03T10:00:00Z\"}}");
	BAD_RI("{\"suggestedWindow\":{\"end\":\"2026-12-03T10:00:00Z\"}}");
	BAD_RI("{\"suggestedWindow\":{\"start\":\"2026-12-03\","
	    "\"end\":\"2026-12-04\"}}");
	BAD_RI("{\"suggestedWindow\":{\"start\":1796292000,"
	    "\"end\":1796342400}}");
	BAD_RI("{\"suggestedWindow\":[\"2026-12-03T10:00:00Z\","
	    "\"2026-12-04T00:00:00Z\"]}");
	BAD_RI("{\"start\":\"2026-12-03T10:00:00Z\","
	    "\"end\":\"2026-12-04T00:00:00Z\"}");
	BAD_RI("{\"suggestedWindow\":{\"start\":\"2026-12-03T10:00:00Z"
	    "\\u0000\",\"end\":\"2026-12-04T00:00:00Z\"}}");
#undef BAD_RI
}

/* ---- times ---- */

static int
time_of(const char *s, int64_t *t)
{
	return acme_parse_time(s, strlen(s), t);
}

static void
test_time_known(void **state)
{
	static const struct {
		const char	*s;
		int64_t		 t;
	} ok[] = {
		{ "1970-01-01T00:00:00Z", 0 },
		{ "2000-01-01T00:00:00Z", 946684800 },
		{ "2026-12-03T10:00:00Z", 1796292000 },
		{ "2026-12-03t10:00:00z", 1796292000 },
		{ "2026-12-03T10:00:00.5Z", 1796292000 },
		{ "2026-12-03T10:00:00.000000000001Z", 1796292000 },
		{ "2026-12-03T11:30:00+01:30", 1796292000 },
		{ "2026-12-03T05:00:00-05:00", 1796292000 },
		{ "2026-12-03T10:00:00-00:00", 1796292000 },
		{ "2026-12-04T09:59:00+23:59", 1796292000 },
		{ "2024-02-29T23:59:59Z", 1709251199 },
		{ "2000-02-29T00:00:00Z", 951782400 },
		{ "2016-12-31T23:59:60Z", 1483228800 },	/* leap second */
		{ "1969-12-31T23:59:59Z", -1 },
		{ "0000-01-01T00:00:00Z", -62167219200 },
		{ "9999-12-31T23:59:59Z", 253402300799 },
	};
	static const char *const bad[] = {
		"", "2026-12-03", "2026-12-03T10:00:00", "2026-12-03T10:00Z",
		"2026-12-03 10:00:00Z", "2026-12-03T10:00:00 Z",
		"2026-12-03T10:00:00ZZ", "2026-12-03T10:00:00Z ",
		" 2026-12-03T10:00:00Z", "2026-12-03T10:00:00.Z",
		"2026-12-03T10:00:00,5Z", "2026-12-03T10:00:00+0100",
		"2026-12-03T10:00:00+01", "2026-12-03T10:00:00+24:00",
		"2026-12-03T10:00:00+01:60", "2026-12-03T10:00:00+1:00",
		"2026-13-03T10:00:00Z", "2026-00-03T10:00:00Z",
		"2026-12-00T10:00:00Z", "2026-12-32T10:00:00Z",
		"2026-04-31T10:00:00Z", "2023-02-29T10:00:00Z",
		"1900-02-29T10:00:00Z", "2100-02-29T10:00:00Z",
		"2026-12-03T24:00:00Z", "2026-12-03T10:60:00Z",
		"2026-12-03T10:00:61Z", "+2026-12-03T10:00:00Z",
		"20261-12-03T10:00:00Z", "2026-1-03T10:00:00Z",
		"2026/12/03T10:00:00Z", "2026-12-03T10-00-00Z",
		"2026-12-03T1a:00:00Z", "-026-12-03T10:00:00Z",
		"2026-12-03T10:00:00.5", "2026-12-03T10:00:00+01:00Z",
	};
	int64_t t;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		t = 42;
		if (time_of(ok[i].s, &t) != 0 || t != ok[i].t)
			fail_msg("%s: got %lld", ok[i].s, (long long)t);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (time_of(bad[i], &t) != -1)
			fail_msg("%s: accepted", bad[i]);
	/* Only len bytes are read: a prefix is not a time. */
	assert_int_equal(acme_parse_time("2026-12-03T10:00:00Z", 19, &t), -1);
	assert_int_equal(acme_parse_time("2026-12-03T10:00:00+01:00", 24,
	    &t), -1);
	assert_int_equal(acme_parse_time("2026-12-03T10:00:00.", 20, &t), -1);
	assert_int_equal(acme_parse_time(NULL, 20, &t), -1);
}

/* Against libc's timegm: every day of some years, varied times. */
static void
test_time_vs_timegm(void **state)
{
	static const int years[] = { 1970, 1971, 1999, 2000, 2001, 2024,
	    2026, 2038, 2100, 2400, 2401 };
	char s[40];
	struct tm tm;
	int64_t t;
	size_t i;
	int m, d, n = 0;

	(void)state;
	for (i = 0; i < sizeof(years) / sizeof(years[0]); i++) {
		for (m = 1; m <= 12; m++) {
			for (d = 1; d <= 31; d++) {
				memset(&tm, 0, sizeof(tm));
				tm.tm_year = years[i] - 1900;
				tm.tm_mon = m - 1;
				tm.tm_mday = d;
				tm.tm_hour = (d * 7) % 24;
				tm.tm_min = (d * 13) % 60;
				tm.tm_sec = (m * 11) % 60;
				(void)snprintf(s, sizeof(s),
				    "%04d-%02d-%02dT%02d:%02d:%02dZ", years[i],
				    m, d, tm.tm_hour, tm.tm_min, tm.tm_sec);
				if (time_of(s, &t) == -1) {
					/* only days that do not exist */
					time_t g = timegm(&tm);

					assert_true(g != (time_t)-1);
					assert_int_not_equal(tm.tm_mday, d);
					continue;
				}
				assert_int_equal(t, (int64_t)timegm(&tm));
				n++;
			}
		}
	}
	assert_int_equal(n, 365 * 11 + 3);	/* 2000, 2024, 2400 leap */
}

/* ---- Retry-After ---- */

static int
retry_of(const char *s, int64_t now, int64_t *d)
{
	return acme_parse_retry_after(s, strlen(s), now, d);
}

static void
test_retry_after(void **state)
{
	const int64_t date = 784111777;	/* Sun, 06 Nov 1994 08:49:37 GMT */
	int64_t d;
	size_t i;
	static const char *const bad[] = {
		"", " ", "-1", "+5", "1.5", "12s", "0x10", "1 2",
		"123456789012345678901",	/* 21 digits */
		"99999999999999999999",		/* 20, above 2^64 */
		"Sun, 06 Nov 1994 08:49:37 UTC",
		"Sun, 06 Nov 1994 08:49:37 gmt",
		"sun, 06 Nov 1994 08:49:37 GMT",
		"Sun, 06 nov 1994 08:49:37 GMT",
		"Sun,  6 Nov 1994 08:49:37 GMT",
		"Sun, 6 Nov 1994 08:49:37 GMT",
		"Sunday, 06-Nov-94 08:49:37 GMT",	/* RFC 850 */
		"Sun Nov  6 08:49:37 1994",		/* asctime */
		"Sun, 30 Feb 1994 08:49:37 GMT",
		"Sun, 06 Nov 1994 24:49:37 GMT",
		"Sun, 06 Nov 1994 08:60:37 GMT",
		"Sun, 06 Nov 1994 08:49:61 GMT",
		"Sun, 00 Nov 1994 08:49:37 GMT",
		"Xyz, 06 Nov 1994 08:49:37 GMT",
		"Sun, 06 Nov 1994 08:49:37 GMTX",
		"Sun, 06 Nov 1994 08:49:37",
	};

	(void)state;
	assert_int_equal(retry_of("120", 0, &d), 0);
	assert_int_equal(d, 120);
	assert_int_equal(retry_of("0", 0, &d), 0);
	assert_int_equal(d, 0);
	assert_int_equal(retry_of(" \t86400 ", 0, &d), 0);
	assert_int_equal(d, 86400);
	assert_int_equal(retry_of("00000000000000000030", 0, &d), 0);
	assert_int_equal(d, 30);
	assert_int_equal(retry_of("604800", 0, &d), 0);
	assert_int_equal(d, 604800);
	assert_int_equal(retry_of("604801", 0, &d), 0);
	assert_int_equal(d, 604800);
	assert_int_equal(retry_of("18446744073709551615", 0, &d), 0);
	assert_int_equal(d, 604800);

	assert_int_equal(retry_of("Sun, 06 Nov 1994 08:49:37 GMT", date - 90,
	    &d), 0);
	assert_int_equal(d, 90);
	assert_int_equal(retry_of("Sun, 06 Nov 1994 08:49:37 GMT", date, &d),
	    0);
	assert_int_equal(d, 0);
	assert_int_equal(retry_of("Sun, 06 Nov 1994 08:49:37 GMT", date + 1,
	    &d), 0);
	assert_int_equal(d, 0);
	assert_int_equal(retry_of("Sun, 06 Nov 1994 08:49:37 GMT", date + 5,
	    &d), 0);
	assert_int_equal(d, 0);
	assert_int_equal(retry_of("Sun, 06 Nov 1994 08:49:37 GMT", 0, &d), 0);
	assert_int_equal(d, 604800);
	assert_int_equal(retry_of("Sun, 06 Nov 1994 08:49:37 GMT", INT64_MIN,
	    &d), 0);
	assert_int_equal(d, 604800);
	assert_int_equal(retry_of("Sun, 06 Nov 1994 08:49:37 GMT", INT64_MAX,
	    &d), 0);
	assert_int_equal(d, 0);
	/* The day name is not checked against the date; a leap day is. */
	assert_int_equal(retry_of("Mon, 29 Feb 2028 00:00:10 GMT",
	    1835395200, &d), 0);
	assert_int_equal(d, 10);
	assert_int_equal(retry_of("Thu, 03 Dec 2026 10:00:00 GMT",
	    1796292000 - 3600, &d), 0);
	assert_int_equal(d, 3600);

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		d = 7;
		if (retry_of(bad[i], date - 10, &d) != -1 || d != 0)
			fail_msg("\"%s\": accepted", bad[i]);
	}
	assert_int_equal(acme_parse_retry_after("120", 2, 0, &d), 0);
	assert_int_equal(d, 12);	/* only len bytes */
	assert_int_equal(acme_parse_retry_after(NULL, 0, 0, &d), -1);
}

/* ---- base64url ---- */

static void
test_b64url_vectors(void **state)
{
	static const struct {
		const char	*raw, *enc;
	} v[] = {
		{ "", "" }, { "f", "Zg" }, { "fo", "Zm8" }, { "foo", "Zm9v" },
		{ "foob", "Zm9vYg" }, { "fooba", "Zm9vYmE" },
		{ "foobar", "Zm9vYmFy" }, { "\xfb\xff", "-_8" },
		{ "\xff\xff\xfe", "___-" },
	};
	char out[64];
	unsigned char raw[64];
	size_t i, n;

	(void)state;
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		n = strlen(v[i].raw);
		assert_int_equal(acme_b64url_encode(v[i].raw, n, out,
		    sizeof(out)), strlen(v[i].enc));
		assert_string_equal(out, v[i].enc);
		assert_int_equal(acme_b64url_decode(v[i].enc, strlen(v[i].enc),
		    raw, sizeof(raw)), (ssize_t)n);
		assert_memory_equal(raw, v[i].raw, n);
	}
	/* The size the header names is enough; the exact need too. */
	assert_int_equal(acme_b64url_encode("foob", 4, out, 4 * 2 + 1), 6);
	assert_int_equal(acme_b64url_encode("foob", 4, out, 7), 6);
	assert_string_equal(out, "Zm9vYg");
	assert_int_equal(acme_b64url_encode("foob", 4, out, 6), 0);
	assert_int_equal(acme_b64url_encode("", 0, out, 0), 0);
	assert_int_equal(acme_b64url_encode("f", 1, NULL, 10), 0);
	assert_int_equal(acme_b64url_decode("Zm9vYg", 6, raw, 4), 4);
	assert_int_equal(acme_b64url_decode("Zm9vYg", 6, raw, 3), -1);
	assert_int_equal(acme_b64url_decode("", 0, NULL, 0), 0);
}

static void
test_b64url_strict(void **state)
{
	static const char *const bad[] = {
		"Zg==", "Zm8=", "Zg=", "Z", "Zm9vY", "Zm9v+A", "Zm9v/A",
		"Zm9 v", "Zm9v\n", "Zh", "Zm9", "-_9", "AB", "AAB",
		"Zm9v.Zm9v",
	};
	unsigned char raw[64];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (acme_b64url_decode(bad[i], strlen(bad[i]), raw,
		    sizeof(raw)) != -1)
			fail_msg("\"%s\": accepted", bad[i]);
	/* A NUL inside the span is just a bad character. */
	assert_int_equal(acme_b64url_decode("Zm\0v", 4, raw, sizeof(raw)),
	    -1);
}

/* Every length and many byte patterns, there and back. */
static void
test_b64url_roundtrip(void **state)
{
	unsigned char in[200], back[200];
	char enc[300];
	size_t len, i, n;
	uint32_t x = 12345;

	(void)state;
	for (len = 0; len <= sizeof(in); len++) {
		for (i = 0; i < len; i++) {
			x = x * 1103515245 + 12345;
			in[i] = (unsigned char)(x >> 16);
		}
		n = acme_b64url_encode(in, len, enc, sizeof(enc));
		assert_int_equal(n, (len * 4 + 2) / 3);
		assert_int_equal(strlen(enc), n);
		assert_true(acme_token_ok(enc, n) ==
		    (n > 0 && n <= ACME_TOKEN_MAX));
		assert_int_equal(acme_b64url_decode(enc, n, back,
		    sizeof(back)), (ssize_t)len);
		assert_memory_equal(in, back, len);
	}
}

static void
test_token(void **state)
{
	char tok[ACME_TOKEN_MAX + 2];

	(void)state;
	assert_true(acme_token_ok("ohs6dF1Vvot9yT0b-A0ps_2wmfJmSzP2OqFYUuO86ig",
	    43));
	assert_true(acme_token_ok("a", 1));
	assert_false(acme_token_ok("", 0));
	assert_false(acme_token_ok(NULL, 5));
	assert_false(acme_token_ok("abc=", 4));
	assert_false(acme_token_ok("a.b", 3));
	assert_false(acme_token_ok("a/b", 3));
	assert_false(acme_token_ok("a+b", 3));
	assert_false(acme_token_ok("a b", 3));
	assert_false(acme_token_ok("a\0b", 3));
	assert_true(acme_token_ok("a\0b", 1));
	memset(tok, 'x', sizeof(tok));
	assert_true(acme_token_ok(tok, ACME_TOKEN_MAX));
	assert_false(acme_token_ok(tok, ACME_TOKEN_MAX + 1));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_status_name),
		cmocka_unit_test(test_directory_pebble),
		cmocka_unit_test(test_directory_le),
		cmocka_unit_test(test_directory_hostile),
		cmocka_unit_test(test_directory_bounds),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_cross),
		cmocka_unit_test(test_account),
		cmocka_unit_test(test_order_statuses),
		cmocka_unit_test(test_order_real),
		cmocka_unit_test(test_order_hostile),
		cmocka_unit_test(test_order_counts),
		cmocka_unit_test(test_authz_pebble),
		cmocka_unit_test(test_authz_wildcard_and_valid),
		cmocka_unit_test(test_authz_hostile),
		cmocka_unit_test(test_authz_bounds),
		cmocka_unit_test(test_challenge),
		cmocka_unit_test(test_problem_real),
		cmocka_unit_test(test_problem_sanitized),
		cmocka_unit_test(test_problem_hostile),
		cmocka_unit_test(test_renewal_info),
		cmocka_unit_test(test_time_known),
		cmocka_unit_test(test_time_vs_timegm),
		cmocka_unit_test(test_retry_after),
		cmocka_unit_test(test_b64url_vectors),
		cmocka_unit_test(test_b64url_strict),
		cmocka_unit_test(test_b64url_roundtrip),
		cmocka_unit_test(test_token),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
