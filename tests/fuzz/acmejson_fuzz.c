/*
 * acmejson_fuzz.c - what an ACME server might send, through the parser
 * the first byte picks (its value modulo the number of targets below);
 * the rest of the input is the document or field.
 *
 * After a success, what the header promises must hold: every string
 * kept NUL-terminated, bounded, printable ASCII (URLs https and without
 * spaces, tokens base64url), counts within their limits, a certificate
 * exactly when the order is valid.  After a failure: -1, a printable
 * reason, and the output all zero.  Times are compared with libc's
 * gmtime, Retry-After delays stay within 7 days, base64url goes there
 * and back unchanged.  A violation abort()s.
 */
#include "autoconf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "acmejson.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

enum {
	T_PROBLEM, T_DIRECTORY, T_ACCOUNT, T_ORDER, T_AUTHZ, T_CHALLENGE,
	T_RENEWAL, T_TIME, T_RETRY, T_B64DEC, T_B64ENC, T_TOKEN, T_COUNT
};

static void
check(bool ok)
{
	if (!ok)
		abort();
}

static bool
zeroed(const void *p, size_t n)
{
	const unsigned char *b = p;

	while (n-- > 0)
		if (*b++ != 0)
			return false;
	return true;
}

/* NUL-terminated within max, printable, and (space_ok) spaces or not. */
static bool
text_ok(const char *s, size_t max, bool space_ok)
{
	size_t i;

	if (s == NULL)
		return false;
	for (i = 0; s[i] != '\0'; i++)
		if (i >= max || s[i] < (space_ok ? 0x20 : 0x21) || s[i] > 0x7e)
			return false;
	return i > 0 || space_ok;
}

static bool
url_ok(const char *s)
{
	return text_ok(s, ACME_URL_MAX, false) && strlen(s) > 8 &&
	    strncasecmp(s, "https://", 8) == 0;
}

/* type required; detail optional (it may be empty). */
static bool
problem_ok(const struct acme_problem *p, bool optional)
{
	if (p->type == NULL)
		return optional && p->detail == NULL;
	return text_ok(p->type, ACME_TEXT_MAX, false) &&
	    (p->detail == NULL || text_ok(p->detail, ACME_TEXT_MAX, true));
}

static bool
challenge_ok(const struct acme_challenge *c)
{
	return text_ok(c->type, ACME_TEXT_MAX, false) && url_ok(c->url) &&
	    (c->token == NULL || acme_token_ok(c->token, strlen(c->token))) &&
	    (unsigned)c->status <= ACME_ST_REVOKED &&
	    problem_ok(&c->error, true);
}

static bool
err_ok(const char *err)
{
	return err[0] != '\0' && text_ok(err, 255, true);
}

/* After a parse: the promises if it worked, nothing kept if not. */
#define AFTER(rc, obj, valid, freefn) do {				\
	if ((rc) == 0) {						\
		check(valid);						\
		freefn(&(obj));						\
		check(zeroed(&(obj), sizeof(obj)));			\
		freefn(&(obj));						\
	} else {							\
		check((rc) == -1 && err_ok(err));			\
		check(zeroed(&(obj), sizeof(obj)));			\
		freefn(&(obj));						\
	}								\
} while (0)

/* The n digits at s (already checked by the parser). */
static int
num(const char *s, size_t n)
{
	int v = 0;

	while (n-- > 0)
		v = v * 10 + (*s++ - '0');
	return v;
}

static void
fuzz_time(const char *s, size_t len)
{
	struct tm	tm;
	int64_t		t;
	time_t		tt;

	if (acme_parse_time(s, len, &t) == -1)
		return;
	check(len >= 20);
	check(t >= -62167219200LL - 86400 && t <= 253402300799LL + 86400);
	/* In UTC, outside a leap second: gmtime gives the same fields. */
	if ((s[len - 1] != 'Z' && s[len - 1] != 'z') || s[17] == '6')
		return;
	tt = (time_t)t;
	check(gmtime_r(&tt, &tm) != NULL);
	check(tm.tm_year + 1900 == num(s, 4) &&
	    tm.tm_mon + 1 == num(s + 5, 2) && tm.tm_mday == num(s + 8, 2) &&
	    tm.tm_hour == num(s + 11, 2) &&
	    tm.tm_min == num(s + 14, 2) && tm.tm_sec == num(s + 17, 2));
}

static void
fuzz_b64(const uint8_t *d, size_t n, bool decode)
{
	unsigned char	*raw;
	char		*enc;
	size_t		 m, esz;
	ssize_t		 r;

	if (decode) {
		/* Strict: whatever decodes encodes back to the same text. */
		if ((raw = malloc(n + 1)) == NULL)
			return;
		r = acme_b64url_decode((const char *)d, n, raw, n);
		if (r >= 0) {
			check((size_t)r == n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0));
			esz = 4 * (((size_t)r + 2) / 3) + 1;
			check((enc = malloc(esz)) != NULL);
			m = acme_b64url_encode(raw, (size_t)r, enc, esz);
			check(m == n && memcmp(enc, d, n) == 0);
			check(acme_token_ok(enc, m) == (m > 0 &&
			    m <= ACME_TOKEN_MAX));
			free(enc);
		}
		free(raw);
		return;
	}
	esz = 4 * ((n + 2) / 3) + 1;
	if ((enc = malloc(esz)) == NULL || (raw = malloc(n + 1)) == NULL) {
		free(enc);
		return;
	}
	m = acme_b64url_encode(d, n, enc, esz);
	check(m == (n * 4 + 2) / 3 && strlen(enc) == m);
	check(acme_b64url_decode(enc, m, raw, n) == (ssize_t)n);
	check(n == 0 || memcmp(raw, d, n) == 0);
	/* One byte short of the need: refused, not overrun. */
	check(acme_b64url_encode(d, n, enc, m) == 0);
	free(enc);
	free(raw);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct acme_directory	 d;
	struct acme_problem	 p;
	struct acme_order	 o;
	struct acme_authz	 a;
	struct acme_challenge	 c;
	enum acme_status	 st;
	const char		*s;
	char			 err[256];
	int64_t			 t0, t1;
	size_t			 n, i;
	int			 rc;

	if (size == 0)
		return 0;
	s = (const char *)data + 1;
	n = size - 1;
	err[0] = '\0';
	switch (data[0] % T_COUNT) {
	case T_PROBLEM:
		rc = acme_parse_problem(s, n, &p, err, sizeof(err));
		AFTER(rc, p, problem_ok(&p, false), acme_problem_free);
		break;
	case T_DIRECTORY:
		rc = acme_parse_directory(s, n, &d, err, sizeof(err));
		AFTER(rc, d, url_ok(d.new_nonce) && url_ok(d.new_account) &&
		    url_ok(d.new_order) &&
		    (d.renewal_info == NULL || url_ok(d.renewal_info)) &&
		    (d.terms_of_service == NULL ||
		    text_ok(d.terms_of_service, ACME_URL_MAX, false)),
		    acme_directory_free);
		break;
	case T_ACCOUNT:
		rc = acme_parse_account(s, n, &st, err, sizeof(err));
		check(rc == 0 ? (unsigned)st <= ACME_ST_REVOKED :
		    rc == -1 && st == ACME_ST_UNKNOWN && err_ok(err));
		break;
	case T_ORDER:
		rc = acme_parse_order(s, n, &o, err, sizeof(err));
		if (rc == 0) {
			check(o.nauthz >= 1 && o.nauthz <= ACME_MAX_AUTHZ);
			for (i = 0; i < o.nauthz; i++)
				check(url_ok(o.authz[i]));
			check(url_ok(o.finalize));
			check((o.status == ACME_ST_VALID) ==
			    (o.certificate != NULL));
			check(o.certificate == NULL || url_ok(o.certificate));
		}
		AFTER(rc, o, problem_ok(&o.error, true), acme_order_free);
		break;
	case T_AUTHZ:
		rc = acme_parse_authz(s, n, &a, err, sizeof(err));
		if (rc == 0) {
			check(text_ok(a.identifier, 253, false) &&
			    a.identifier[0] != '*');
			check(a.nchallenges <= ACME_MAX_CHALLENGES &&
			    (a.nchallenges == 0) == (a.challenges == NULL));
			for (i = 0; i < a.nchallenges; i++)
				check(challenge_ok(&a.challenges[i]));
		}
		AFTER(rc, a, (unsigned)a.status <= ACME_ST_REVOKED,
		    acme_authz_free);
		break;
	case T_CHALLENGE:
		rc = acme_parse_challenge(s, n, &c, err, sizeof(err));
		AFTER(rc, c, challenge_ok(&c), acme_challenge_free);
		break;
	case T_RENEWAL:
		t0 = t1 = 1;
		rc = acme_parse_renewal_info(s, n, &t0, &t1, err, sizeof(err));
		check(rc == 0 ? t0 <= t1 :
		    rc == -1 && t0 == 0 && t1 == 0 && err_ok(err));
		break;
	case T_TIME:
		fuzz_time(s, n);
		break;
	case T_RETRY:
		t1 = 1;
		rc = acme_parse_retry_after(s, n, 784111777, &t1);
		check(rc == 0 ? t1 >= 0 && t1 <= 86400 * 7 :
		    rc == -1 && t1 == 0);
		break;
	case T_B64DEC:
		fuzz_b64(data + 1, n, true);
		break;
	case T_B64ENC:
		fuzz_b64(data + 1, n, false);
		break;
	case T_TOKEN:
		if (acme_token_ok(s, n)) {
			check(n >= 1 && n <= ACME_TOKEN_MAX);
			for (i = 0; i < n; i++)
				check(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				    "abcdefghijklmnopqrstuvwxyz0123456789-_",
				    s[i]) != NULL && s[i] != '\0');
		}
		break;
	}
	return 0;
}
