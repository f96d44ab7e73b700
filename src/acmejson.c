/*
 * acmejson.c - what an ACME server sends, parsed (see acmejson.h).
 *
 * jansson reads the JSON, strictly: a duplicate key, invalid UTF-8, a
 * NUL (raw or \u0000), a number out of range or nesting deeper than the
 * library's bound is an error.  This file then checks the shape and
 * copies out only what the header promises: strings bounded, NUL-free
 * (json_string_length against strlen, should the library ever let one
 * through) and printable ASCII; URLs https; counts bounded.  A member we
 * do not use is not looked at.  On failure the output is left zeroed,
 * nothing is kept, and err holds a short printable reason.
 *
 * No I/O and no state of our own; jansson's allocator hooks are left
 * alone.  (jansson seeds its hash function once, on its first object.)
 * Times are computed by hand (days from the civil date), not by timegm,
 * which may consult the environment.
 */
#include "autoconf.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "acmejson.h"
#include "config.h"
#include "util.h"

#define ERROR_URN	"urn:ietf:params:acme:error:"
#define RETRY_MAX	(86400 * 7)
#define LABEL_MAX	64

/* What a kept string must look like. */
enum str_kind {
	STR_URL,	/* https://..., at most ACME_URL_MAX, no space */
	STR_URI,	/* any scheme (pebble's terms are a data: URL) */
	STR_WORD,	/* at most ACME_TEXT_MAX, no space */
	STR_TOKEN,	/* acme_token_ok() */
	STR_HOST	/* a DNS name, no wildcard */
};

static const char *const status_names[] = {
	[ACME_ST_UNKNOWN] = "unknown",
	[ACME_ST_PENDING] = "pending",
	[ACME_ST_READY] = "ready",
	[ACME_ST_PROCESSING] = "processing",
	[ACME_ST_VALID] = "valid",
	[ACME_ST_INVALID] = "invalid",
	[ACME_ST_EXPIRED] = "expired",
	[ACME_ST_DEACTIVATED] = "deactivated",
	[ACME_ST_REVOKED] = "revoked",
};

static void	seterr(char *, size_t, const char *, ...) PRINTFLIKE(3, 4);

/* The reason, with anything unprintable (jansson quotes input) as '?'. */
static void
seterr(char *err, size_t errsz, const char *fmt, ...)
{
	va_list	ap;
	size_t	i;

	if (err == NULL || errsz == 0)
		return;
	va_start(ap, fmt);
	(void)vsnprintf(err, errsz, fmt, ap);
	va_end(ap);
	for (i = 0; err[i] != '\0'; i++)
		if ((unsigned char)err[i] < 0x20 ||
		    (unsigned char)err[i] > 0x7e)
			err[i] = '?';
}

const char *
acme_status_name(enum acme_status st)
{
	if ((unsigned)st >= nitems(status_names))
		return "unknown";
	return status_names[st];
}

static bool
printable(const char *s, size_t len, bool space_ok)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (s[i] < (space_ok ? 0x20 : 0x21) || s[i] > 0x7e)
			return false;
	return true;
}

static int
b64val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

bool
acme_token_ok(const char *tok, size_t len)
{
	size_t i;

	if (tok == NULL || len == 0 || len > ACME_TOKEN_MAX)
		return false;
	for (i = 0; i < len; i++)
		if (b64val((unsigned char)tok[i]) < 0)
			return false;
	return true;
}

/*
 * The body as a JSON object, or NULL with err set.
 */
static json_t *
load(const char *buf, size_t len, char *err, size_t errsz)
{
	json_error_t	 je;
	json_t		*root;

	if (buf == NULL || len == 0) {
		seterr(err, errsz, "empty body");
		return NULL;
	}
	if (len > ACME_BODY_MAX) {
		seterr(err, errsz, "body of %zu bytes, more than %d", len,
		    ACME_BODY_MAX);
		return NULL;
	}
	if ((root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je)) ==
	    NULL) {
		seterr(err, errsz, "bad JSON (line %d column %d): %s",
		    je.line, je.column, je.text);
		return NULL;
	}
	if (!json_is_object(root)) {
		json_decref(root);
		seterr(err, errsz, "not a JSON object");
		return NULL;
	}
	return root;
}

/*
 * A string value of at most max bytes and no NUL, or NULL with err set.
 */
static const char *
str_value(json_t *v, const char *label, size_t max, size_t *lenp,
    char *err, size_t errsz)
{
	const char	*s;
	size_t		 n;

	if (!json_is_string(v)) {
		seterr(err, errsz, "%s: not a string", label);
		return NULL;
	}
	s = json_string_value(v);
	n = json_string_length(v);
	if (s == NULL || strlen(s) != n) {
		seterr(err, errsz, "%s: NUL inside the string", label);
		return NULL;
	}
	if (n > max) {
		seterr(err, errsz, "%s: longer than %zu", label, max);
		return NULL;
	}
	*lenp = n;
	return s;
}

static bool
is_https(const char *s, size_t len)
{
	return len > 8 && UTIL_LIT_IS(s, 8, "https://");
}

/*
 * Check v as a string of the kind and keep a copy in *out.
 */
static int
str_take(json_t *v, const char *label, enum str_kind kind, char **out,
    char *err, size_t errsz)
{
	const char	*s;
	size_t		 len, max;

	switch (kind) {
	case STR_URL:
	case STR_URI:
		max = ACME_URL_MAX;
		break;
	case STR_TOKEN:
		max = ACME_TOKEN_MAX;
		break;
	case STR_HOST:
		max = CONFIG_HOST_MAX;
		break;
	default:
		max = ACME_TEXT_MAX;
		break;
	}
	if ((s = str_value(v, label, max, &len, err, errsz)) == NULL)
		return -1;
	if (len == 0) {
		seterr(err, errsz, "%s: empty", label);
		return -1;
	}
	if (!printable(s, len, false)) {
		seterr(err, errsz, "%s: not printable ASCII without spaces",
		    label);
		return -1;
	}
	if (kind == STR_URL && !is_https(s, len)) {
		seterr(err, errsz, "%s: not an https:// URL", label);
		return -1;
	}
	if (kind == STR_TOKEN && !acme_token_ok(s, len)) {
		seterr(err, errsz, "%s: not a base64url token", label);
		return -1;
	}
	if (kind == STR_HOST && (s[len - 1] == '.' ||
	    config_check_hostname(s, len, false) == -1)) {
		seterr(err, errsz, "%s: not a host name", label);
		return -1;
	}
	if ((*out = strdup(s)) == NULL) {
		seterr(err, errsz, "%s: out of memory", label);
		return -1;
	}
	return 0;
}

/* The member key of obj (absent: error if required, else *out NULL). */
static int
member_take(json_t *obj, const char *key, const char *where,
    enum str_kind kind, bool required, char **out, char *err, size_t errsz)
{
	char	 label[LABEL_MAX];
	json_t	*v;

	(void)snprintf(label, sizeof(label), "%s%s", where, key);
	if ((v = json_object_get(obj, key)) == NULL) {
		if (!required)
			return 0;
		seterr(err, errsz, "%s: missing", label);
		return -1;
	}
	return str_take(v, label, kind, out, err, errsz);
}

/* Optional boolean member: absent is false. */
static int
member_bool(json_t *obj, const char *key, bool *out, char *err,
    size_t errsz)
{
	json_t *v;

	*out = false;
	if ((v = json_object_get(obj, key)) == NULL)
		return 0;
	if (!json_is_boolean(v)) {
		seterr(err, errsz, "%s: not a boolean", key);
		return -1;
	}
	*out = json_is_true(v);
	return 0;
}

/* The required "status": one of the names, or ACME_ST_UNKNOWN. */
static int
member_status(json_t *obj, const char *where, enum acme_status *st,
    char *err, size_t errsz)
{
	char		 label[LABEL_MAX];
	const char	*s;
	json_t		*v;
	size_t		 len, i;

	*st = ACME_ST_UNKNOWN;
	(void)snprintf(label, sizeof(label), "%sstatus", where);
	if ((v = json_object_get(obj, "status")) == NULL) {
		seterr(err, errsz, "%s: missing", label);
		return -1;
	}
	if ((s = str_value(v, label, ACME_TEXT_MAX, &len, err, errsz)) ==
	    NULL)
		return -1;
	for (i = 1; i < nitems(status_names); i++)
		if (strcmp(s, status_names[i]) == 0)
			*st = (enum acme_status)i;
	return 0;
}

/*
 * Problem detail, kept: printable ASCII, each other character (a UTF-8
 * sequence, already checked by jansson, or a control) one '?'.
 */
struct text {
	char	buf[ACME_TEXT_MAX + 1];
	size_t	len;
};

static void
text_add(struct text *t, const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n && t->len < ACME_TEXT_MAX; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 0x80 && c < 0xc0)
			continue;	/* a continuation: its lead counted */
		t->buf[t->len++] = (c >= 0x20 && c <= 0x7e) ? (char)c : '?';
	}
	t->buf[t->len] = '\0';
}

/* "where: not an object", where without its final '.' (or dflt). */
static void
not_object(const char *where, const char *dflt, char *err, size_t errsz)
{
	size_t n = strlen(where);

	if (n == 0)
		seterr(err, errsz, "%s: not an object", dflt);
	else
		seterr(err, errsz, "%.*s: not an object", (int)(n - 1), where);
}

/* A member that is a string if present: its value, or "" if absent. */
static int
member_text(json_t *obj, const char *key, const char *where,
    const char **s, size_t *len, char *err, size_t errsz)
{
	char	 label[LABEL_MAX];
	json_t	*v;

	*s = NULL;
	*len = 0;
	if ((v = json_object_get(obj, key)) == NULL)
		return 0;
	(void)snprintf(label, sizeof(label), "%s%s", where, key);
	return (*s = str_value(v, label, ACME_BODY_MAX, len, err, errsz)) ==
	    NULL ? -1 : 0;
}

/* One subproblem, appended as "value: detail" (or its type alone). */
static int
subproblem_add(json_t *sp, struct text *t, const char *where, char *err,
    size_t errsz)
{
	const char	*detail, *value = NULL, *type;
	size_t		 dlen, vlen = 0, tlen;
	json_t		*id;

	if (!json_is_object(sp)) {
		seterr(err, errsz, "%s: not an object", where);
		return -1;
	}
	if (member_text(sp, "detail", where, &detail, &dlen, err,
	    errsz) == -1 ||
	    member_text(sp, "type", where, &type, &tlen, err, errsz) == -1)
		return -1;
	if ((id = json_object_get(sp, "identifier")) != NULL) {
		if (!json_is_object(id)) {
			seterr(err, errsz, "%sidentifier: not an object",
			    where);
			return -1;
		}
		if (member_text(id, "value", where, &value, &vlen, err,
		    errsz) == -1)
			return -1;
	}
	if (detail == NULL && type == NULL && value == NULL)
		return 0;
	if (t->len > 0)
		text_add(t, "; ", 2);
	if (value != NULL) {
		text_add(t, value, vlen);
		text_add(t, ": ", 2);
	}
	if (detail != NULL)
		text_add(t, detail, dlen);
	else if (type != NULL)
		text_add(t, type, tlen);
	return 0;
}

/*
 * A problem object found at where ("" for a whole document, "error."
 * inside an order or a challenge).
 */
static int
problem_from(json_t *o, const char *where, struct acme_problem *p,
    char *err, size_t errsz)
{
	char		 label[LABEL_MAX];
	struct text	 t;
	const char	*detail;
	json_t		*subs;
	size_t		 dlen, i;

	memset(p, 0, sizeof(*p));
	t.len = 0;
	t.buf[0] = '\0';
	if (!json_is_object(o)) {
		not_object(where, "problem", err, errsz);
		return -1;
	}
	if (member_take(o, "type", where, STR_WORD, true, &p->type, err,
	    errsz) == -1 ||
	    member_text(o, "detail", where, &detail, &dlen, err, errsz) == -1)
		goto fail;
	if (detail != NULL)
		text_add(&t, detail, dlen);
	if ((subs = json_object_get(o, "subproblems")) != NULL) {
		if (!json_is_array(subs)) {
			seterr(err, errsz, "%ssubproblems: not an array",
			    where);
			goto fail;
		}
		for (i = 0; i < json_array_size(subs); i++) {
			(void)snprintf(label, sizeof(label),
			    "%ssubproblems[%zu].", where, i);
			if (subproblem_add(json_array_get(subs, i), &t, label,
			    err, errsz) == -1)
				goto fail;
		}
	}
	if ((detail != NULL || t.len > 0) &&
	    (p->detail = strdup(t.buf)) == NULL) {
		seterr(err, errsz, "%sdetail: out of memory", where);
		goto fail;
	}
	return 0;
fail:
	acme_problem_free(p);
	return -1;
}

/* An optional problem member "error". */
static int
member_problem(json_t *obj, const char *where, struct acme_problem *p,
    char *err, size_t errsz)
{
	char	 label[LABEL_MAX];
	json_t	*v;

	memset(p, 0, sizeof(*p));
	if ((v = json_object_get(obj, "error")) == NULL)
		return 0;
	(void)snprintf(label, sizeof(label), "%serror.", where);
	return problem_from(v, label, p, err, errsz);
}

int
acme_parse_problem(const char *buf, size_t len, struct acme_problem *p,
    char *err, size_t errsz)
{
	json_t	*root;
	int	 rc;

	memset(p, 0, sizeof(*p));
	if ((root = load(buf, len, err, errsz)) == NULL)
		return -1;
	rc = problem_from(root, "", p, err, errsz);
	json_decref(root);
	return rc;
}

bool
acme_problem_is(const struct acme_problem *p, const char *name)
{
	size_t n = sizeof(ERROR_URN) - 1;

	return p != NULL && p->type != NULL && name != NULL &&
	    strncmp(p->type, ERROR_URN, n) == 0 &&
	    strcmp(p->type + n, name) == 0;
}

void
acme_problem_free(struct acme_problem *p)
{
	if (p == NULL)
		return;
	free(p->type);
	free(p->detail);
	memset(p, 0, sizeof(*p));
}

int
acme_parse_directory(const char *buf, size_t len, struct acme_directory *d,
    char *err, size_t errsz)
{
	json_t	*root, *meta;

	memset(d, 0, sizeof(*d));
	if ((root = load(buf, len, err, errsz)) == NULL)
		return -1;
	if (member_take(root, "newNonce", "", STR_URL, true, &d->new_nonce,
	    err, errsz) == -1 ||
	    member_take(root, "newAccount", "", STR_URL, true,
	    &d->new_account, err, errsz) == -1 ||
	    member_take(root, "newOrder", "", STR_URL, true, &d->new_order,
	    err, errsz) == -1 ||
	    member_take(root, "renewalInfo", "", STR_URL, false,
	    &d->renewal_info, err, errsz) == -1)
		goto fail;
	if ((meta = json_object_get(root, "meta")) != NULL) {
		if (!json_is_object(meta)) {
			seterr(err, errsz, "meta: not an object");
			goto fail;
		}
		if (member_take(meta, "termsOfService", "meta.", STR_URI,
		    false, &d->terms_of_service, err, errsz) == -1 ||
		    member_bool(meta, "externalAccountRequired",
		    &d->eab_required, err, errsz) == -1)
			goto fail;
	}
	json_decref(root);
	return 0;
fail:
	json_decref(root);
	acme_directory_free(d);
	return -1;
}

void
acme_directory_free(struct acme_directory *d)
{
	if (d == NULL)
		return;
	free(d->new_nonce);
	free(d->new_account);
	free(d->new_order);
	free(d->renewal_info);
	free(d->terms_of_service);
	memset(d, 0, sizeof(*d));
}

int
acme_parse_account(const char *buf, size_t len, enum acme_status *status,
    char *err, size_t errsz)
{
	json_t	*root;
	int	 rc;

	*status = ACME_ST_UNKNOWN;
	if ((root = load(buf, len, err, errsz)) == NULL)
		return -1;
	rc = member_status(root, "", status, err, errsz);
	json_decref(root);
	if (rc == -1)
		*status = ACME_ST_UNKNOWN;
	return rc;
}

int
acme_parse_order(const char *buf, size_t len, struct acme_order *o,
    char *err, size_t errsz)
{
	char	 label[LABEL_MAX];
	json_t	*root, *az;
	size_t	 i, n;

	memset(o, 0, sizeof(*o));
	if ((root = load(buf, len, err, errsz)) == NULL)
		return -1;
	if (member_status(root, "", &o->status, err, errsz) == -1)
		goto fail;
	if ((az = json_object_get(root, "authorizations")) == NULL ||
	    !json_is_array(az)) {
		seterr(err, errsz, "authorizations: %s", az == NULL ?
		    "missing" : "not an array");
		goto fail;
	}
	n = json_array_size(az);
	if (n == 0 || n > ACME_MAX_AUTHZ) {
		seterr(err, errsz, "authorizations: %zu of them, not 1 to %d",
		    n, ACME_MAX_AUTHZ);
		goto fail;
	}
	if ((o->authz = calloc(n, sizeof(*o->authz))) == NULL) {
		seterr(err, errsz, "authorizations: out of memory");
		goto fail;
	}
	o->nauthz = n;
	for (i = 0; i < n; i++) {
		(void)snprintf(label, sizeof(label), "authorizations[%zu]", i);
		if (str_take(json_array_get(az, i), label, STR_URL,
		    &o->authz[i], err, errsz) == -1)
			goto fail;
	}
	if (member_take(root, "finalize", "", STR_URL, true, &o->finalize,
	    err, errsz) == -1)
		goto fail;
	if (o->status == ACME_ST_VALID && member_take(root, "certificate", "",
	    STR_URL, true, &o->certificate, err, errsz) == -1)
		goto fail;
	if (member_problem(root, "", &o->error, err, errsz) == -1)
		goto fail;
	json_decref(root);
	return 0;
fail:
	json_decref(root);
	acme_order_free(o);
	return -1;
}

void
acme_order_free(struct acme_order *o)
{
	size_t i;

	if (o == NULL)
		return;
	if (o->authz != NULL)
		for (i = 0; i < o->nauthz; i++)
			free(o->authz[i]);
	free(o->authz);
	free(o->finalize);
	free(o->certificate);
	acme_problem_free(&o->error);
	memset(o, 0, sizeof(*o));
}

static int
challenge_from(json_t *v, const char *where, struct acme_challenge *c,
    char *err, size_t errsz)
{
	memset(c, 0, sizeof(*c));
	if (!json_is_object(v)) {
		not_object(where, "challenge", err, errsz);
		return -1;
	}
	if (member_take(v, "type", where, STR_WORD, true, &c->type, err,
	    errsz) == -1 ||
	    member_take(v, "url", where, STR_URL, true, &c->url, err,
	    errsz) == -1 ||
	    member_take(v, "token", where, STR_TOKEN, false, &c->token, err,
	    errsz) == -1 ||
	    member_status(v, where, &c->status, err, errsz) == -1 ||
	    member_problem(v, where, &c->error, err, errsz) == -1) {
		acme_challenge_free(c);
		return -1;
	}
	return 0;
}

int
acme_parse_challenge(const char *buf, size_t len, struct acme_challenge *c,
    char *err, size_t errsz)
{
	json_t	*root;
	int	 rc;

	memset(c, 0, sizeof(*c));
	if ((root = load(buf, len, err, errsz)) == NULL)
		return -1;
	rc = challenge_from(root, "", c, err, errsz);
	json_decref(root);
	return rc;
}

void
acme_challenge_free(struct acme_challenge *c)
{
	if (c == NULL)
		return;
	free(c->type);
	free(c->url);
	free(c->token);
	acme_problem_free(&c->error);
	memset(c, 0, sizeof(*c));
}

int
acme_parse_authz(const char *buf, size_t len, struct acme_authz *a,
    char *err, size_t errsz)
{
	char		 label[LABEL_MAX];
	const char	*type;
	json_t		*root, *id, *chs, *v;
	size_t		 i, n, tlen;

	memset(a, 0, sizeof(*a));
	if ((root = load(buf, len, err, errsz)) == NULL)
		return -1;
	if (member_status(root, "", &a->status, err, errsz) == -1)
		goto fail;
	if ((id = json_object_get(root, "identifier")) == NULL ||
	    !json_is_object(id)) {
		seterr(err, errsz, "identifier: %s", id == NULL ?
		    "missing" : "not an object");
		goto fail;
	}
	if ((v = json_object_get(id, "type")) == NULL) {
		seterr(err, errsz, "identifier.type: missing");
		goto fail;
	}
	if ((type = str_value(v, "identifier.type", ACME_TEXT_MAX, &tlen,
	    err, errsz)) == NULL)
		goto fail;
	if (strcmp(type, "dns") != 0) {
		seterr(err, errsz, "identifier.type: not \"dns\"");
		goto fail;
	}
	if (member_take(id, "value", "identifier.", STR_HOST, true,
	    &a->identifier, err, errsz) == -1 ||
	    member_bool(root, "wildcard", &a->wildcard, err, errsz) == -1)
		goto fail;
	if ((chs = json_object_get(root, "challenges")) == NULL ||
	    !json_is_array(chs)) {
		seterr(err, errsz, "challenges: %s", chs == NULL ?
		    "missing" : "not an array");
		goto fail;
	}
	if ((n = json_array_size(chs)) > ACME_MAX_CHALLENGES) {
		seterr(err, errsz, "challenges: %zu of them, more than %d",
		    n, ACME_MAX_CHALLENGES);
		goto fail;
	}
	if (n > 0 && (a->challenges = calloc(n, sizeof(*a->challenges))) ==
	    NULL) {
		seterr(err, errsz, "challenges: out of memory");
		goto fail;
	}
	a->nchallenges = n;
	for (i = 0; i < n; i++) {
		(void)snprintf(label, sizeof(label), "challenges[%zu].", i);
		if (challenge_from(json_array_get(chs, i), label,
		    &a->challenges[i], err, errsz) == -1)
			goto fail;
	}
	json_decref(root);
	return 0;
fail:
	json_decref(root);
	acme_authz_free(a);
	return -1;
}

void
acme_authz_free(struct acme_authz *a)
{
	size_t i;

	if (a == NULL)
		return;
	if (a->challenges != NULL)
		for (i = 0; i < a->nchallenges; i++)
			acme_challenge_free(&a->challenges[i]);
	free(a->challenges);
	free(a->identifier);
	memset(a, 0, sizeof(*a));
}

int
acme_parse_renewal_info(const char *buf, size_t len, int64_t *start,
    int64_t *end, char *err, size_t errsz)
{
	const char	*s[2];
	const char	*names[2] = { "start", "end" };
	int64_t		 t[2];
	json_t		*root, *w;
	size_t		 n, i;
	char		 label[LABEL_MAX];

	*start = *end = 0;
	if ((root = load(buf, len, err, errsz)) == NULL)
		return -1;
	if ((w = json_object_get(root, "suggestedWindow")) == NULL ||
	    !json_is_object(w)) {
		seterr(err, errsz, "suggestedWindow: %s", w == NULL ?
		    "missing" : "not an object");
		goto fail;
	}
	for (i = 0; i < 2; i++) {
		(void)snprintf(label, sizeof(label), "suggestedWindow.%s",
		    names[i]);
		if (json_object_get(w, names[i]) == NULL) {
			seterr(err, errsz, "%s: missing", label);
			goto fail;
		}
		if ((s[i] = str_value(json_object_get(w, names[i]), label,
		    ACME_TEXT_MAX, &n, err, errsz)) == NULL)
			goto fail;
		if (acme_parse_time(s[i], n, &t[i]) == -1) {
			seterr(err, errsz, "%s: not an RFC 3339 time", label);
			goto fail;
		}
	}
	if (t[0] > t[1]) {
		seterr(err, errsz, "suggestedWindow: start after end");
		goto fail;
	}
	json_decref(root);
	*start = t[0];
	*end = t[1];
	return 0;
fail:
	json_decref(root);
	return -1;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static int64_t
days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t		era;
	unsigned	yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static unsigned
days_in_month(unsigned y, unsigned m)
{
	static const unsigned char dim[12] = {
		31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31
	};

	if (m == 2 && y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))
		return 29;
	return dim[m - 1];
}

/* n digits at s, at most max. */
static int
digits(const char *s, size_t n, unsigned max, unsigned *out)
{
	uint64_t v;

	if (util_parse_u64(s, n, 0, max, &v) == -1)
		return -1;
	*out = (unsigned)v;
	return 0;
}

/* A checked date and time of day, as seconds since the epoch. */
static int
civil_time(unsigned y, unsigned mo, unsigned d, unsigned h, unsigned mi,
    unsigned s, int64_t *t)
{
	if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) ||
	    h > 23 || mi > 59 || s > 60)
		return -1;
	*t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s;
	return 0;
}

int
acme_parse_time(const char *s, size_t len, int64_t *t)
{
	unsigned	y, mo, d, h, mi, sec, oh = 0, om = 0;
	int64_t		v;
	size_t		i = 19;
	int		sign = 0;

	if (s == NULL || t == NULL || len < 20)
		return -1;
	if (digits(s, 4, 9999, &y) == -1 || s[4] != '-' ||
	    digits(s + 5, 2, 99, &mo) == -1 || s[7] != '-' ||
	    digits(s + 8, 2, 99, &d) == -1 ||
	    (s[10] != 'T' && s[10] != 't') ||
	    digits(s + 11, 2, 99, &h) == -1 || s[13] != ':' ||
	    digits(s + 14, 2, 99, &mi) == -1 || s[16] != ':' ||
	    digits(s + 17, 2, 99, &sec) == -1)
		return -1;
	if (s[i] == '.') {
		if (++i >= len || s[i] < '0' || s[i] > '9')
			return -1;
		while (i < len && s[i] >= '0' && s[i] <= '9')
			i++;	/* a fraction of a second: ignored */
	}
	if (i >= len)
		return -1;
	if (s[i] == 'Z' || s[i] == 'z')
		i++;
	else if (s[i] == '+' || s[i] == '-') {
		if (len - i < 6 || digits(s + i + 1, 2, 23, &oh) == -1 ||
		    s[i + 3] != ':' || digits(s + i + 4, 2, 59, &om) == -1)
			return -1;
		sign = s[i] == '+' ? 1 : -1;
		i += 6;
	} else
		return -1;
	if (i != len || civil_time(y, mo, d, h, mi, sec, &v) == -1)
		return -1;
	/* local time = UTC + offset */
	*t = v - sign * (int64_t)(oh * 3600 + om * 60);
	return 0;
}

/* "Sun, 06 Nov 1994 08:49:37 GMT" (RFC 9110 5.6.7), exactly. */
static int
imf_fixdate(const char *s, size_t len, int64_t *t)
{
	static const char days[] = "MonTueWedThuFriSatSun";
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	unsigned	  y, mo, d, h, mi, sec;
	size_t		  i;

	if (len != 29 || s[3] != ',' || s[4] != ' ' || s[7] != ' ' ||
	    s[11] != ' ' || s[16] != ' ' || s[19] != ':' || s[22] != ':' ||
	    memcmp(s + 25, " GMT", 4) != 0)
		return -1;
	for (i = 0; i < 7; i++)
		if (memcmp(s, days + 3 * i, 3) == 0)
			break;
	if (i == 7)
		return -1;
	for (mo = 0; mo < 12; mo++)
		if (memcmp(s + 8, months + 3 * mo, 3) == 0)
			break;
	if (mo == 12 || digits(s + 5, 2, 31, &d) == -1 ||
	    digits(s + 12, 4, 9999, &y) == -1 ||
	    digits(s + 17, 2, 99, &h) == -1 ||
	    digits(s + 20, 2, 99, &mi) == -1 ||
	    digits(s + 23, 2, 99, &sec) == -1)
		return -1;
	return civil_time(y, mo + 1, d, h, mi, sec, t);
}

int
acme_parse_retry_after(const char *value, size_t len, int64_t now,
    int64_t *delay)
{
	uint64_t	v;
	int64_t		t;

	*delay = 0;
	if (value == NULL)
		return -1;
	while (len > 0 && (value[0] == ' ' || value[0] == '\t')) {
		value++;
		len--;
	}
	while (len > 0 && (value[len - 1] == ' ' || value[len - 1] == '\t'))
		len--;
	if (len > 0 && value[0] >= '0' && value[0] <= '9') {
		if (util_parse_u64(value, len, 0, UINT64_MAX, &v) == -1)
			return -1;
		*delay = v > RETRY_MAX ? RETRY_MAX : (int64_t)v;
		return 0;
	}
	if (imf_fixdate(value, len, &t) == -1)
		return -1;
	if (now >= t)
		*delay = 0;
	else if (now < t - RETRY_MAX)
		*delay = RETRY_MAX;
	else
		*delay = t - now;
	return 0;
}

size_t
acme_b64url_encode(const void *in, size_t len, char *out, size_t outsz)
{
	static const char	 alpha[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	const unsigned char	*p = in;
	size_t			 need, i, o = 0;
	uint32_t		 v;

	if (len / 3 >= (SIZE_MAX - 5) / 4)
		return 0;
	need = len / 3 * 4 + (len % 3 == 0 ? 0 : len % 3 + 1) + 1;
	if (out == NULL || outsz < need || (p == NULL && len > 0))
		return 0;
	for (i = 0; i + 3 <= len; i += 3) {
		v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		out[o++] = alpha[v >> 18];
		out[o++] = alpha[(v >> 12) & 63];
		out[o++] = alpha[(v >> 6) & 63];
		out[o++] = alpha[v & 63];
	}
	if (len - i == 1) {
		v = (uint32_t)p[i] << 16;
		out[o++] = alpha[v >> 18];
		out[o++] = alpha[(v >> 12) & 63];
	} else if (len - i == 2) {
		v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
		out[o++] = alpha[v >> 18];
		out[o++] = alpha[(v >> 12) & 63];
		out[o++] = alpha[(v >> 6) & 63];
	}
	out[o] = '\0';
	return o;
}

ssize_t
acme_b64url_decode(const char *in, size_t len, unsigned char *out,
    size_t outsz)
{
	size_t		need, i, o = 0, rest;
	uint32_t	v;
	int		c[4];
	size_t		k;

	if (len % 4 == 1 || (in == NULL && len > 0))
		return -1;
	need = len / 4 * 3 + (len % 4 == 0 ? 0 : len % 4 - 1);
	if (need > outsz || need > SSIZE_MAX || (out == NULL && need > 0))
		return -1;
	for (i = 0; i < len; i += 4) {
		rest = len - i < 4 ? len - i : 4;
		v = 0;
		for (k = 0; k < 4; k++) {
			c[k] = k < rest ? b64val((unsigned char)in[i + k]) : 0;
			if (c[k] < 0)
				return -1;
			v = v << 6 | (uint32_t)c[k];
		}
		/* The bits after the last whole octet must be zero. */
		if ((rest == 2 && (v & 0xffff)) || (rest == 3 && (v & 0xff)))
			return -1;
		out[o++] = (unsigned char)(v >> 16);
		if (rest > 2)
			out[o++] = (unsigned char)(v >> 8);
		if (rest > 3)
			out[o++] = (unsigned char)v;
	}
	return (ssize_t)o;
}
