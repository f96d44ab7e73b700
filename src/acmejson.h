/*
 * acmejson.h - what an ACME server sends (RFC 8555), parsed.
 *
 * Pure functions over a byte buffer: no I/O, no global state.  jansson
 * stays inside acmejson.c.  Every string kept is bounded (ACME_URL_MAX,
 * ACME_TEXT_MAX), NUL-free and printable ASCII; counts are bounded
 * (ACME_MAX_AUTHZ, ACME_MAX_CHALLENGES); anything else is an error with a
 * short reason in err, never a crash.  Also the small codecs ACME needs
 * (base64url, RFC 3339 times, Retry-After).  Unit-tested
 * (tests/unit/acmejson_test.c) and fuzzed (tests/fuzz/acmejson_fuzz.c).
 */
#ifndef PORTCULLIS_ACMEJSON_H
#define PORTCULLIS_ACMEJSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define ACME_BODY_MAX		(256 * 1024)	/* a JSON answer, at most */
#define ACME_URL_MAX		2048		/* a URL, at most */
#define ACME_TEXT_MAX		1024		/* a problem's detail, kept */
#define ACME_TOKEN_MAX		256		/* a challenge token */
#define ACME_MAX_AUTHZ		100		/* authorizations of an order */
#define ACME_MAX_CHALLENGES	16		/* challenges of an authz */

enum acme_status {
	ACME_ST_UNKNOWN = 0,	/* absent or not one of these */
	ACME_ST_PENDING,
	ACME_ST_READY,
	ACME_ST_PROCESSING,
	ACME_ST_VALID,
	ACME_ST_INVALID,
	ACME_ST_EXPIRED,
	ACME_ST_DEACTIVATED,
	ACME_ST_REVOKED
};

/* "pending" ... ; "unknown" for ACME_ST_UNKNOWN. */
const char *acme_status_name(enum acme_status st);

/*
 * A problem document (RFC 7807, RFC 8555 6.7).  type is required; detail
 * may be NULL; subproblems' details are appended to detail ("; " joined,
 * cut at ACME_TEXT_MAX).  Everything kept is printable ASCII (anything
 * else in detail becomes '?').
 */
struct acme_problem {
	char	*type;		/* "urn:ietf:params:acme:error:badNonce" */
	char	*detail;
};
int	 acme_parse_problem(const char *buf, size_t len,
	    struct acme_problem *p, char *err, size_t errsz);
/* The problem is "urn:ietf:params:acme:error:<name>" (name: "badNonce"). */
bool	 acme_problem_is(const struct acme_problem *p, const char *name);
void	 acme_problem_free(struct acme_problem *p);

/*
 * The directory (RFC 8555 7.1.1).  newNonce, newAccount and newOrder are
 * required and must be https:// URLs; renewalInfo (draft ARI) and
 * meta.externalAccountRequired are optional.
 */
struct acme_directory {
	char	*new_nonce;
	char	*new_account;
	char	*new_order;
	char	*renewal_info;		/* NULL: no ARI */
	char	*terms_of_service;	/* meta.termsOfService, NULL if none */
	bool	 eab_required;		/* meta.externalAccountRequired */
};
int	 acme_parse_directory(const char *buf, size_t len,
	    struct acme_directory *d, char *err, size_t errsz);
void	 acme_directory_free(struct acme_directory *d);

/* An account object (RFC 8555 7.1.2): its status is all we use. */
int	 acme_parse_account(const char *buf, size_t len,
	    enum acme_status *status, char *err, size_t errsz);

/*
 * An order (RFC 8555 7.1.3).  status, authorizations (1..ACME_MAX_AUTHZ
 * https URLs) and finalize are required; certificate is required when
 * status is valid; error is optional (type NULL when absent).
 */
struct acme_order {
	enum acme_status	 status;
	char			**authz;
	size_t			 nauthz;
	char			*finalize;
	char			*certificate;	/* NULL unless valid */
	struct acme_problem	 error;
};
int	 acme_parse_order(const char *buf, size_t len, struct acme_order *o,
	    char *err, size_t errsz);
void	 acme_order_free(struct acme_order *o);

/* One challenge of an authorization (RFC 8555 7.1.5, 8). */
struct acme_challenge {
	char			*type;		/* "http-01", "tls-alpn-01" ... */
	char			*url;
	char			*token;		/* NULL if absent; else checked
						   with acme_token_ok() */
	enum acme_status	 status;
	struct acme_problem	 error;		/* type NULL when absent */
};

/*
 * An authorization (RFC 8555 7.1.4).  identifier must be {"type":"dns",
 * "value": a host name}; challenges 0..ACME_MAX_CHALLENGES (a challenge of
 * an unknown type is kept: the caller picks the one it wants).
 */
struct acme_authz {
	enum acme_status	 status;
	char			*identifier;	/* the dns value, as sent */
	bool			 wildcard;
	struct acme_challenge	*challenges;
	size_t			 nchallenges;
};
int	 acme_parse_authz(const char *buf, size_t len, struct acme_authz *a,
	    char *err, size_t errsz);
void	 acme_authz_free(struct acme_authz *a);

/* A challenge object alone (the answer to a POST to its URL). */
int	 acme_parse_challenge(const char *buf, size_t len,
	    struct acme_challenge *c, char *err, size_t errsz);
void	 acme_challenge_free(struct acme_challenge *c);

/*
 * A renewalInfo answer (ARI, draft-ietf-acme-ari): suggestedWindow start
 * and end (RFC 3339, start <= end) as seconds since the epoch.
 */
int	 acme_parse_renewal_info(const char *buf, size_t len, int64_t *start,
	    int64_t *end, char *err, size_t errsz);

/* An RFC 3339 date-time ("2026-12-03T10:00:00Z", offsets, fractions). */
int	 acme_parse_time(const char *s, size_t len, int64_t *t);

/*
 * A Retry-After field value (RFC 9110 10.2.3): delta-seconds or an
 * HTTP-date.  Returns 0 with the delay in seconds from now (0 for a date
 * in the past, at most 86400 * 7), or -1 if malformed.
 */
int	 acme_parse_retry_after(const char *value, size_t len, int64_t now,
	    int64_t *delay);

/* base64url without padding (RFC 7515 2).  Returns the length written
 * (NUL added), or 0 if out is too small (needs 4 * ceil(len / 3) + 1). */
size_t	 acme_b64url_encode(const void *in, size_t len, char *out,
	    size_t outsz);
/* Decode base64url (padding refused).  Returns the length, or -1. */
ssize_t	 acme_b64url_decode(const char *in, size_t len, unsigned char *out,
	    size_t outsz);

/* A challenge token: 1..ACME_TOKEN_MAX base64url characters. */
bool	 acme_token_ok(const char *tok, size_t len);

#endif /* PORTCULLIS_ACMEJSON_H */
