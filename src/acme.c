/*
 * acme.c - the ACME process (see acme.h): an RFC 8555 client that keeps
 * one certificate per (listener, domain) of every listener in tls { mode
 * = "acme" }.
 *
 * One thing at a time, blocking: libcurl's easy API (https only, no
 * redirects, 10 s to connect, 30 s a request, ACME_BODY_MAX a body; its
 * own parser for the response headers, whose values we only check),
 * jansson to build what we send, acmejson.h to read everything the CA
 * answers, acmecrypto.h for keys and signatures, acmecache.h for the
 * files.  The control socket is read between every step (poll with the
 * time to the next job as timeout); DRAIN or EOF ends the process at
 * once, whatever it was doing.
 *
 * Per name: a valid cached certificate outside its renewal window (ARI's
 * suggested window when the directory has renewalInfo, else not_after -
 * acme-renew-days, else the last min(30 days, a third of the lifetime))
 * means nothing to do until the next check (12 h +- 1 h).  Otherwise an
 * order: newOrder for the name, each authorization's challenge published
 * through the master (CHALLENGE, then wait for PUBLISHED: the CA is asked
 * to validate only once every worker serves it), polled to valid or
 * invalid (WITHDRAW either way), finalize with a CSR for a new P-256 key,
 * the chain checked and written (key.pem, then fullchain.pem), ISSUED.
 * A failure is retried with backoff: 5 s doubling to 10 min when the CA
 * cannot be reached (transport error, 5xx), 2 min doubling to 1 h when an
 * order or validation fails, and never before a Retry-After the CA gave.
 */
#include "autoconf.h"

#include <sys/mman.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <curl/header.h>
#include <jansson.h>

#include "acme.h"
#include "acmecache.h"
#include "acmecrypto.h"
#include "acmejson.h"
#include "config.h"
#include "control.h"
#include "image.h"
#include "log.h"
#include "privs.h"
#include "sandbox.h"
#include "util.h"

#define CONNECT_TIMEOUT		10		/* seconds */
#define REQUEST_TIMEOUT		30
#define PUBLISH_TIMEOUT		30		/* for PUBLISHED */
#define POLL_MAX		60		/* authz, order: seconds */
/* A CA may refuse many good nonces in a row (pebble refuses a share of
   them at random: at 60%, 11 refusals in a row happen to 1 POST in 280,
   and an issuance makes about ten POSTs).  Each retry is one quick round
   trip; a CA that refuses every nonce fails the order after these. */
#define BADNONCE_RETRIES	100
#define CHECK_EVERY		(12 * 3600)	/* +- CHECK_JITTER */
#define CHECK_JITTER		3600
#define NET_BACKOFF_MIN		5		/* CA unreachable, 5xx */
#define NET_BACKOFF_MAX		600
#define CA_BACKOFF_MIN		120		/* order/validation failed */
#define CA_BACKOFF_MAX		3600
#define NONCE_MAX		256
#define HDR_VALUE_MAX		ACME_URL_MAX
#define IMAGE_MAX		(256 * 1024 * 1024)
#define MAX_RENEWALS		64

/* Why an attempt failed, which decides the backoff. */
enum fail {
	FAIL_NONE = 0,
	FAIL_NET,		/* the CA could not be reached, or 5xx */
	FAIL_CA			/* the CA (or the master) said no */
};

/* What went wrong, for the log (whole) and STATE (cut). */
struct failure {
	enum fail	 kind;
	char		 problem[128];	/* the CA's problem type, or "" */
	char		 text[ACME_TEXT_MAX + 64];
	int64_t		 retry_after;	/* seconds the CA asked for, 0 none */
};

/* One certificate to keep. */
struct aname {
	uint64_t	 serial;	/* unique for this process's life */
	uint32_t	 listener;
	char		 name[CONTROL_NAME_MAX + 1];
	int64_t		 not_before;	/* 0: no certificate */
	int64_t		 not_after;
	char		 ari_id[200];
	int64_t		 ari_start, ari_end, ari_pick;
	int64_t		 next;		/* when to look at it again */
	bool		 forced;	/* RENEW: now, whatever the window */
	enum fail	 fail_kind;	/* of the last failure, FAIL_NONE */
	int64_t		 delay;		/* the last backoff */
	char		 err[CONTROL_TEXT_MAX + 1];
	/* What the master was told last (STATE). */
	bool		 reported;
	int64_t		 rep_not_after, rep_next;
	char		 rep_err[CONTROL_TEXT_MAX + 1];
};

/* A listener's CA: its directory, account, nonce. */
struct alistener {
	const struct config_acme *conf;	/* NULL: not in ACME mode */
	struct acme_directory dir;
	bool		 have_dir;
	struct acme_key	*account;
	char		*kid;
	bool		 fresh_account;	/* EAB changed: do not reuse */
	char		 nonce[NONCE_MAX + 1];
	char		 acct_dir[32];	/* account-<16 hex> */
};

/* A RENEW being answered. */
struct renewal {
	uint32_t	 id;
	uint64_t	*serials;	/* names not done yet */
	size_t		 nleft;
	bool		 ok;
	char		 text[CONTROL_TEXT_MAX + 1];
};

/* An HTTP answer. */
struct http_resp {
	long		 status;
	char		*body;
	size_t		 len;
	bool		 too_big;
	char		 nonce[NONCE_MAX + 1];
	char		 location[ACME_URL_MAX + 1];
	char		 retry_after[64];
	char		 ctype[128];
};

struct acme {
	struct config	*cfg;
	struct config	*pending;	/* a newer ACME_CONFIG, not applied */
	struct alistener lst[CONFIG_MAX_LISTENERS];
	struct aname	**names;
	size_t		 nnames;
	uint64_t	 serial;
	struct control_msg renew_q[MAX_RENEWALS];	/* RENEWs not begun */
	size_t		 nrenew_q;
	struct renewal	 renewals[MAX_RENEWALS];
	size_t		 nrenewals;
	uint32_t	 challenge_id;
	/* The PUBLISHED awaited. */
	uint32_t	 wait_id;
	bool		 wait_done;
	bool		 wait_ok;
	char		 wait_text[CONTROL_TEXT_MAX + 1];
	CURL		*curl;
	bool		 ca_blob;	/* CURLOPT_CAINFO_BLOB works */
	int		 ca_fd;		/* else a memfd of the CA for CAINFO */
	const struct config_blob *ca_loaded;
};

static struct acme A;

static void	handle_control(struct acme *, int);

/*
 * Small helpers.
 */

static int64_t
now_s(void)
{
	return (int64_t)time(NULL);
}

static void
iso8601(int64_t t, char *buf, size_t len)
{
	struct tm tm;
	time_t tt = (time_t)t;

	if (gmtime_r(&tt, &tm) == NULL ||
	    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, len, "%" PRId64, t);
}

/* A random number in [0, n). */
static uint64_t
rnd(uint64_t n)
{
	uint64_t r = 0;

	if (n == 0)
		return 0;
	if (getrandom(&r, sizeof(r), 0) != sizeof(r))
		r = (uint64_t)now_s() * 2654435761u ^ (uint64_t)getpid();
	return r % n;
}

static void
copy_str(char *dst, size_t size, const char *src)
{
	size_t len = strnlen(src, size - 1);

	memcpy(dst, src, len);
	dst[len] = '\0';
}

static void
fail_set(struct failure *f, enum fail kind, const char *problem,
    const char *fmt, ...) PRINTFLIKE(4, 5);

static void
fail_set(struct failure *f, enum fail kind, const char *problem,
    const char *fmt, ...)
{
	va_list ap;

	f->kind = kind;
	copy_str(f->problem, sizeof(f->problem), problem != NULL ? problem :
	    "");
	va_start(ap, fmt);
	vsnprintf(f->text, sizeof(f->text), fmt, ap);
	va_end(ap);
}

/* A JSON payload, its object released. */
static char *
dump(json_t *o)
{
	char *s;

	if (o == NULL || (s = json_dumps(o, JSON_COMPACT)) == NULL)
		fatalx("out of memory");
	json_decref(o);
	return s;
}

/*
 * Logging: one ACME line per event.
 */

static void
ev_start(struct log_event *ev, const char *what, const struct aname *n)
{
	log_event_begin(ev, "ACME");
	log_event_cstr(ev, "proc", "acme");
	log_event_uint(ev, "pid", (uint64_t)getpid());
	log_event_cstr(ev, "event", what);
	if (n != NULL) {
		log_event_uint(ev, "listener", n->listener);
		log_event_cstr(ev, "name", n->name);
	}
}

/* The line ends with msg: the event in words, for people ("next attempt
   for a.test in 5 s"); the fields before it are for programs. */
static void
ev_end(struct log_event *ev, const char *fmt, ...) PRINTFLIKE(2, 3);

static void
ev_end(struct log_event *ev, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_event_cstr(ev, "msg", msg);
	log_event_end(ev);
}

static void
log_acme(const char *what, const struct aname *n, const char *k1,
    const char *v1, const char *k2, const char *v2, const char *fmt, ...)
    PRINTFLIKE(7, 8);

static void
log_acme(const char *what, const struct aname *n, const char *k1,
    const char *v1, const char *k2, const char *v2, const char *fmt, ...)
{
	struct log_event ev;
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ev_start(&ev, what, n);
	if (k1 != NULL)
		log_event_cstr(&ev, k1, v1);
	if (k2 != NULL)
		log_event_cstr(&ev, k2, v2);
	ev_end(&ev, "%s", msg);
}

/*
 * The master.
 */

static void
report(struct control_msg *m)
{
	control_child_report(ACME_FD_REPORT, m);
}

static void
msg_init(struct control_msg *m, enum control_type type)
{
	memset(m, 0, sizeof(*m));
	m->type = type;
	m->fd = -1;
}

/* STATE, when anything the master shows changed. */
static void
report_state(struct aname *n)
{
	struct control_msg m;

	if (n->reported && n->rep_not_after == n->not_after &&
	    n->rep_next == n->next && strcmp(n->rep_err, n->err) == 0)
		return;
	msg_init(&m, CONTROL_ACME_STATE);
	m.acme.listener = n->listener;
	copy_str(m.acme.name, sizeof(m.acme.name), n->name);
	m.acme.not_after = n->not_after > 0 ? n->not_after : 0;
	m.acme.next = n->next > 0 ? n->next : 0;
	copy_str(m.text, sizeof(m.text), n->err);
	report(&m);
	n->reported = true;
	n->rep_not_after = n->not_after;
	n->rep_next = n->next;
	copy_str(n->rep_err, sizeof(n->rep_err), n->err);
}

/* ISSUED: a new certificate for n is in its cache directory. */
static void
report_issued(const struct aname *n)
{
	struct control_msg m;

	msg_init(&m, CONTROL_ACME_ISSUED);
	m.acme.listener = n->listener;
	copy_str(m.acme.name, sizeof(m.acme.name), n->name);
	report(&m);
}

/* ATTEMPT: an order for n is over, ok or failed (for /metrics). */
static void
report_attempt(const struct aname *n, bool ok)
{
	struct control_msg m;

	msg_init(&m, CONTROL_ACME_ATTEMPT);
	m.acme.listener = n->listener;
	m.acme.ok = ok ? 1 : 0;
	copy_str(m.acme.name, sizeof(m.acme.name), n->name);
	report(&m);
}

/*
 * Wait for the control socket up to timeout_ms (-1: forever) and handle
 * every message there is.
 */
static void
control_wait(struct acme *a, int timeout_ms)
{
	struct pollfd pfd = { ACME_FD_CONTROL, POLLIN, 0 };
	int rc;

	do
		rc = poll(&pfd, 1, timeout_ms);
	while (rc == -1 && errno == EINTR);
	if (rc == -1)
		fatal("poll");
	handle_control(a, rc);
}

/* Between two steps: whatever the master said meanwhile. */
static void
control_check(struct acme *a)
{
	control_wait(a, 0);
}

/* Sleep up to secs, handling control messages; stop early if *until. */
static void
control_sleep(struct acme *a, int64_t secs, const bool *until)
{
	int64_t end = now_s() + secs, left;

	while ((until == NULL || !*until) && (left = end - now_s()) > 0)
		control_wait(a, (int)MINIMUM(left, 3600) * 1000);
}

/*
 * HTTPS to the CA.
 */

static size_t
body_cb(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct http_resp *r = arg;
	size_t n = size * nmemb;
	char *p;

	if (n > ACME_BODY_MAX - r->len) {
		r->too_big = true;
		return 0;	/* refused: CURLE_WRITE_ERROR */
	}
	if ((p = realloc(r->body, r->len + n + 1)) == NULL)
		return 0;
	r->body = p;
	memcpy(r->body + r->len, ptr, n);
	r->len += n;
	r->body[r->len] = '\0';
	return n;
}

/* Keep a header's value if it is printable and fits, else "". */
static void
keep_header(char *dst, size_t size, const char *v, size_t len)
{
	size_t i;

	dst[0] = '\0';
	if (len >= size)
		return;
	for (i = 0; i < len; i++)
		if (v[i] < 0x20 || v[i] > 0x7e)
			return;
	memcpy(dst, v, len);
	dst[len] = '\0';
}

/* The headers we use, as libcurl parsed them (the last of each). */
static void
take_headers(CURL *curl, struct http_resp *r)
{
	static const struct {
		const char	*name;
		size_t		 off, size;
	} want[] = {
		{ "Replay-Nonce", offsetof(struct http_resp, nonce),
		    sizeof(r->nonce) },
		{ "Location", offsetof(struct http_resp, location),
		    sizeof(r->location) },
		{ "Retry-After", offsetof(struct http_resp, retry_after),
		    sizeof(r->retry_after) },
		{ "Content-Type", offsetof(struct http_resp, ctype),
		    sizeof(r->ctype) },
	};
	struct curl_header *h;
	size_t i;

	for (i = 0; i < nitems(want); i++) {
		char *dst = (char *)r + want[i].off;

		dst[0] = '\0';
		if (curl_easy_header(curl, want[i].name, 0, CURLH_HEADER, -1,
		    &h) == CURLHE_OK && h->value != NULL)
			keep_header(dst, want[i].size, h->value,
			    strlen(h->value));
	}
}

static void
resp_free(struct http_resp *r)
{
	free(r->body);
	memset(r, 0, sizeof(*r));
}

/* The trust for the CA's own HTTPS: acme-ca-file, else the system's. */
static int
set_ca(struct acme *a, const struct config_acme *c, struct failure *f)
{
	struct curl_blob blob;
	char path[64];

	if (c->ca.len == 0)
		return 0;
	if (a->ca_blob) {
		blob.data = c->ca.data;
		blob.len = c->ca.len;
		blob.flags = CURL_BLOB_COPY;
		if (curl_easy_setopt(a->curl, CURLOPT_CAINFO_BLOB, &blob) ==
		    CURLE_OK)
			return 0;
		/* Older GnuTLS builds of libcurl lack it: a memfd instead. */
		a->ca_blob = false;
	}
	if (a->ca_loaded != &c->ca) {
		/* The memfd made before the sandbox, rewritten. */
		a->ca_loaded = NULL;
		if (a->ca_fd == -1 || ftruncate(a->ca_fd, 0) == -1 ||
		    lseek(a->ca_fd, 0, SEEK_SET) == -1 ||
		    util_write_all(a->ca_fd, c->ca.data, c->ca.len) == -1) {
			fail_set(f, FAIL_NET, NULL, "acme-ca-file: %s",
			    strerror(errno));
			return -1;
		}
		a->ca_loaded = &c->ca;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", a->ca_fd);
	if (curl_easy_setopt(a->curl, CURLOPT_CAINFO, path) != CURLE_OK) {
		fail_set(f, FAIL_NET, NULL, "acme-ca-file: cannot be used");
		return -1;
	}
	return 0;
}

/*
 * One request.  method "GET", "HEAD" or "POST" (body: a JWS).  0 with
 * the answer in r (any status), or -1 with f filled: the CA could not be
 * reached, or its answer was too big.
 */
static int
http(struct acme *a, const struct config_acme *c, const char *method,
    const char *url, const char *body, const char *accept,
    struct http_resp *r, struct failure *f)
{
	char errbuf[CURL_ERROR_SIZE], acc[128];
	struct curl_slist *hdrs = NULL, *h;
	CURLcode rc;
	bool ok = true;

	memset(r, 0, sizeof(*r));
	errbuf[0] = '\0';
	curl_easy_reset(a->curl);
#define SET(opt, val) (ok = ok && curl_easy_setopt(a->curl, opt, val) == \
	CURLE_OK)
	SET(CURLOPT_URL, url);
	SET(CURLOPT_PROTOCOLS_STR, "https");
	SET(CURLOPT_REDIR_PROTOCOLS_STR, "https");
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_CONNECTTIMEOUT, (long)CONNECT_TIMEOUT);
	SET(CURLOPT_TIMEOUT, (long)REQUEST_TIMEOUT);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_ERRORBUFFER, errbuf);
	SET(CURLOPT_WRITEFUNCTION, body_cb);
	SET(CURLOPT_WRITEDATA, r);
	SET(CURLOPT_USERAGENT, "portcullis/" PACKAGE_VERSION);
	if (strcmp(method, "HEAD") == 0)
		SET(CURLOPT_NOBODY, 1L);
	else if (strcmp(method, "POST") == 0) {
		SET(CURLOPT_POSTFIELDS, body);
		SET(CURLOPT_POSTFIELDSIZE, (long)strlen(body));
		if ((h = curl_slist_append(hdrs,
		    "Content-Type: application/jose+json")) != NULL)
			hdrs = h;
	}
	if (accept != NULL) {
		snprintf(acc, sizeof(acc), "Accept: %s", accept);
		if ((h = curl_slist_append(hdrs, acc)) != NULL)
			hdrs = h;
	}
	/* No "Expect: 100-continue" round trip. */
	if ((h = curl_slist_append(hdrs, "Expect:")) != NULL)
		hdrs = h;
	SET(CURLOPT_HTTPHEADER, hdrs);
#undef SET
	if (!ok || set_ca(a, c, f) == -1) {
		curl_slist_free_all(hdrs);
		if (!ok)
			fail_set(f, FAIL_NET, NULL, "libcurl: cannot set up "
			    "a request");
		resp_free(r);
		return -1;
	}
	rc = curl_easy_perform(a->curl);
	curl_slist_free_all(hdrs);
	if (rc != CURLE_OK) {
		if (r->too_big)
			fail_set(f, FAIL_CA, NULL, "%s %s: answer larger than "
			    "%u bytes", method, url, ACME_BODY_MAX);
		else
			fail_set(f, FAIL_NET, NULL, "%s %s: %s", method, url,
			    errbuf[0] != '\0' ? errbuf :
			    curl_easy_strerror(rc));
		resp_free(r);
		return -1;
	}
	curl_easy_getinfo(a->curl, CURLINFO_RESPONSE_CODE, &r->status);
	take_headers(a->curl, r);
	if (r->body == NULL && (r->body = strdup("")) == NULL)
		fatalx("out of memory");
	return 0;
}

/* The Retry-After of r, in seconds (0 none). */
static int64_t
retry_after(const struct http_resp *r)
{
	int64_t d;

	if (r->retry_after[0] == '\0' || acme_parse_retry_after(r->retry_after,
	    strlen(r->retry_after), now_s(), &d) == -1)
		return 0;
	return d;
}

/*
 * An answer that is not what was wanted: the CA's problem document (5xx:
 * the CA is down, retried sooner), or the status.
 */
static void
fail_from(struct failure *f, const char *what, const struct http_resp *r)
{
	struct acme_problem p;
	char err[128];
	enum fail kind = r->status >= 500 ? FAIL_NET : FAIL_CA;

	memset(&p, 0, sizeof(p));
	if (acme_parse_problem(r->body, r->len, &p, err, sizeof(err)) == 0) {
		fail_set(f, kind, p.type, "%s: %s%s%s", what, p.type,
		    p.detail != NULL ? ": " : "",
		    p.detail != NULL ? p.detail : "");
		acme_problem_free(&p);
	} else
		fail_set(f, kind, NULL, "%s: HTTP %ld", what, r->status);
	f->retry_after = retry_after(r);
}

/* The answer is a badNonce problem (its nonce is taken anyway). */
static bool
bad_nonce(const struct http_resp *r)
{
	struct acme_problem p;
	char err[128];
	bool bad = false;

	if (r->status != 400)
		return false;
	memset(&p, 0, sizeof(p));
	if (acme_parse_problem(r->body, r->len, &p, err, sizeof(err)) == 0) {
		bad = acme_problem_is(&p, "badNonce");
		acme_problem_free(&p);
	}
	return bad;
}

/*
 * The directory, the nonce and the account.
 */

static int
get_directory(struct acme *a, struct alistener *l, struct failure *f)
{
	struct http_resp r;
	char err[256];

	if (l->have_dir)
		return 0;
	if (http(a, l->conf, "GET", l->conf->directory, NULL, NULL, &r, f) ==
	    -1)
		return -1;
	if (r.status != 200) {
		fail_from(f, "directory", &r);
		resp_free(&r);
		return -1;
	}
	memset(&l->dir, 0, sizeof(l->dir));
	if (acme_parse_directory(r.body, r.len, &l->dir, err, sizeof(err)) ==
	    -1) {
		fail_set(f, FAIL_CA, NULL, "directory %s: %s",
		    l->conf->directory, err);
		resp_free(&r);
		return -1;
	}
	resp_free(&r);
	l->have_dir = true;
	return 0;
}

static int
get_nonce(struct acme *a, struct alistener *l, struct failure *f)
{
	struct http_resp r;

	if (l->nonce[0] != '\0')
		return 0;
	if (http(a, l->conf, "HEAD", l->dir.new_nonce, NULL, NULL, &r, f) ==
	    -1)
		return -1;
	if ((r.status != 200 && r.status != 204) || r.nonce[0] == '\0') {
		fail_from(f, "newNonce", &r);
		resp_free(&r);
		return -1;
	}
	copy_str(l->nonce, sizeof(l->nonce), r.nonce);
	resp_free(&r);
	return 0;
}

/*
 * A signed POST (payload NULL: POST-as-GET; jwk: sign with the key in
 * the header, for newAccount).  badNonce is retried at once with the
 * nonce of the refusal, BADNONCE_RETRIES times in a row.  0 with the
 * answer (any status), -1 with f.
 */
static int
post(struct acme *a, struct alistener *l, const char *url,
    const char *payload, bool jwk, const char *accept, struct http_resp *r,
    struct failure *f)
{
	char err[256], *jws;
	int tries;

	for (tries = 0; ; tries++) {
		control_check(a);
		if (get_nonce(a, l, f) == -1)
			return -1;
		jws = acme_jws(l->account, jwk ? NULL : l->kid, l->nonce, url,
		    payload, err, sizeof(err));
		l->nonce[0] = '\0';	/* used, whatever happens */
		if (jws == NULL) {
			fail_set(f, FAIL_CA, NULL, "JWS: %s", err);
			return -1;
		}
		if (http(a, l->conf, "POST", url, jws, accept, r, f) == -1) {
			free(jws);
			return -1;
		}
		free(jws);
		copy_str(l->nonce, sizeof(l->nonce), r->nonce);
		if (!bad_nonce(r) || tries >= BADNONCE_RETRIES)
			return 0;
		log_debug("acme: %s: badNonce, retrying (%d)", url, tries + 1);
		resp_free(r);
	}
}

static void
account_dir(struct alistener *l)
{
	unsigned char h[32];
	size_t i;

	acme_sha256(l->conf->directory, strlen(l->conf->directory), h);
	memcpy(l->acct_dir, "account-", 8);
	for (i = 0; i < 8; i++)
		snprintf(l->acct_dir + 8 + 2 * i, 3, "%02x", h[i]);
}

/* Read the cached account key (and kid, if registered). */
static int
load_account(struct alistener *l, struct failure *f)
{
	char rel[64], err[256];
	unsigned char *data;
	size_t len;
	int rc;

	snprintf(rel, sizeof(rel), "%s/key.pem", l->acct_dir);
	rc = acme_cache_load(l->conf->cache_dir, rel, CONFIG_PEM_MAX, &data,
	    &len, err, sizeof(err));
	if (rc == 1)
		return 0;
	if (rc == -1) {
		fail_set(f, FAIL_CA, NULL, "account key: %s", err);
		return -1;
	}
	l->account = acme_key_load(data, len, err, sizeof(err));
	explicit_bzero(data, len);
	free(data);
	if (l->account == NULL) {
		fail_set(f, FAIL_CA, NULL, "%s/%s: %s", l->conf->cache_dir, rel,
		    err);
		return -1;
	}
	snprintf(rel, sizeof(rel), "%s/url", l->acct_dir);
	rc = acme_cache_load(l->conf->cache_dir, rel, ACME_URL_MAX, &data, &len,
	    err, sizeof(err));
	if (rc == -1) {
		fail_set(f, FAIL_CA, NULL, "account URL: %s", err);
		return -1;
	}
	if (rc == 0) {
		while (len > 0 && (data[len - 1] == '\n' ||
		    data[len - 1] == '\r'))
			data[--len] = '\0';
		if (len > 8 && memcmp(data, "https://", 8) == 0 &&
		    strlen((char *)data) == len)
			l->kid = (char *)data;
		else
			free(data);
	}
	return 0;
}

static int
new_account(struct acme *a, struct alistener *l, struct failure *f)
{
	const struct config_acme *c = l->conf;
	char err[256], rel[64], *pem, *payload, *eab;
	struct http_resp r;
	enum acme_status st;
	json_t *o, *e;
	size_t len;

	if (l->dir.eab_required && c->eab_kid == NULL) {
		/* The problem type the CA would answer with (RFC 8555
		   7.3.4), without asking: its directory said so. */
		fail_set(f, FAIL_CA,
		    "urn:ietf:params:acme:error:externalAccountRequired",
		    "the CA at %s requires External Account Binding: set "
		    "acme-eab-kid and acme-eab-hmac-key", c->directory);
		return -1;
	}
	if (l->account == NULL) {
		l->account = acme_key_generate(err, sizeof(err));
		if (l->account == NULL) {
			fail_set(f, FAIL_CA, NULL, "account key: %s", err);
			return -1;
		}
		/* Kept before it is registered: never an account lost. */
		if (acme_key_pem(l->account, &pem, &len) == -1)
			fatalx("account key: cannot encode");
		snprintf(rel, sizeof(rel), "%s/key.pem", l->acct_dir);
		if (acme_cache_write(c->cache_dir, rel, pem, len, 0600, err,
		    sizeof(err)) == -1) {
			explicit_bzero(pem, len);
			free(pem);
			fail_set(f, FAIL_CA, NULL, "%s", err);
			return -1;
		}
		explicit_bzero(pem, len);
		free(pem);
	}
	if ((o = json_object()) == NULL ||
	    json_object_set_new(o, "termsOfServiceAgreed", json_true()) == -1)
		fatalx("out of memory");
	if (c->contact != NULL && json_object_set_new(o, "contact",
	    json_pack("[s]", c->contact)) == -1)
		fatalx("out of memory");
	if (c->eab_kid != NULL && c->eab_hmac_key != NULL) {
		if ((eab = acme_eab(l->account, c->eab_kid, c->eab_hmac_key,
		    l->dir.new_account, err, sizeof(err))) == NULL) {
			json_decref(o);
			fail_set(f, FAIL_CA, NULL, "external account binding: "
			    "%s", err);
			return -1;
		}
		e = json_loads(eab, 0, NULL);
		explicit_bzero(eab, strlen(eab));
		free(eab);
		if (e == NULL || json_object_set_new(o,
		    "externalAccountBinding", e) == -1)
			fatalx("external account binding: not JSON");
	}
	payload = dump(o);
	if (post(a, l, l->dir.new_account, payload, true, NULL, &r, f) == -1) {
		free(payload);
		return -1;
	}
	free(payload);
	if ((r.status != 200 && r.status != 201) || r.location[0] == '\0' ||
	    strncmp(r.location, "https://", 8) != 0) {
		fail_from(f, "newAccount", &r);
		resp_free(&r);
		return -1;
	}
	if (acme_parse_account(r.body, r.len, &st, err, sizeof(err)) == -1 ||
	    st != ACME_ST_VALID) {
		fail_set(f, FAIL_CA, NULL, "newAccount: %s",
		    st != ACME_ST_VALID ? acme_status_name(st) : err);
		resp_free(&r);
		return -1;
	}
	if ((l->kid = strdup(r.location)) == NULL)
		fatalx("out of memory");
	resp_free(&r);
	snprintf(rel, sizeof(rel), "%s/url", l->acct_dir);
	if (acme_cache_write(c->cache_dir, rel, l->kid, strlen(l->kid), 0600,
	    err, sizeof(err)) == -1)
		log_warnx("acme: %s: %s", rel, err);
	log_acme("account", NULL, "directory", c->directory, "account", l->kid,
	    "account ready");
	return 0;
}

static int
get_account(struct acme *a, struct alistener *l, struct failure *f)
{
	if (l->kid != NULL)
		return 0;
	if (l->account == NULL && !l->fresh_account &&
	    load_account(l, f) == -1)
		return -1;
	if (l->kid != NULL)
		return 0;
	if (new_account(a, l, f) == -1)
		return -1;
	l->fresh_account = false;
	return 0;
}

/*
 * One order, from newOrder to the chain on disk.
 */

static const char *
challenge_name(enum config_acme_challenge t)
{
	return t == CONFIG_ACME_HTTP_01 ? "http-01" : "tls-alpn-01";
}

/* POST-as-GET url until its status is no longer pending/processing, for
 * at most max seconds (0: once). */
static int
poll_status(struct acme *a, struct alistener *l, const char *url,
    const char *what, int64_t max, struct http_resp *r, struct failure *f,
    int (*parse)(const char *, size_t, void *, char *, size_t),
    void *obj, enum acme_status *st, void (*clear)(void *))
{
	int64_t deadline = now_s() + max, wait;
	char err[256];

	for (;;) {
		if (post(a, l, url, NULL, false, NULL, r, f) == -1)
			return -1;
		if (r->status != 200) {
			fail_from(f, what, r);
			resp_free(r);
			return -1;
		}
		clear(obj);
		if (parse(r->body, r->len, obj, err, sizeof(err)) == -1) {
			fail_set(f, FAIL_CA, NULL, "%s: %s", what, err);
			resp_free(r);
			return -1;
		}
		if ((*st != ACME_ST_PENDING && *st != ACME_ST_PROCESSING) ||
		    now_s() >= deadline)
			return 0;
		wait = retry_after(r);
		if (wait < 1)
			wait = 1;
		if (wait > deadline - now_s())
			wait = MAXIMUM(deadline - now_s(), 1);
		resp_free(r);
		control_sleep(a, wait, NULL);
	}
}

static int
parse_authz_cb(const char *b, size_t n, void *o, char *e, size_t es)
{
	return acme_parse_authz(b, n, o, e, es);
}

static void
clear_authz(void *o)
{
	acme_authz_free(o);
	memset(o, 0, sizeof(struct acme_authz));
}

static int
parse_order_cb(const char *b, size_t n, void *o, char *e, size_t es)
{
	return acme_parse_order(b, n, o, e, es);
}

static void
clear_order(void *o)
{
	acme_order_free(o);
	memset(o, 0, sizeof(struct acme_order));
}

/* Publish a challenge through the master and wait until it is served. */
static int
publish(struct acme *a, struct aname *n, const struct acme_challenge *ch,
    const char *keyauth, uint32_t id, struct failure *f)
{
	const struct config_acme *c = a->lst[n->listener].conf;
	struct control_msg m;
	int64_t deadline;

	msg_init(&m, CONTROL_ACME_CHALLENGE);
	m.acme.id = id;
	m.acme.listener = n->listener;
	m.acme.type = c->challenge;
	copy_str(m.acme.name, sizeof(m.acme.name), n->name);
	if (c->challenge == CONFIG_ACME_HTTP_01) {
		if (strlen(ch->token) > CONTROL_TOKEN_MAX ||
		    strlen(keyauth) > CONTROL_KEYAUTH_MAX) {
			fail_set(f, FAIL_CA, NULL, "challenge token too long");
			return -1;
		}
		copy_str(m.acme.token, sizeof(m.acme.token), ch->token);
		copy_str(m.acme.keyauth, sizeof(m.acme.keyauth), keyauth);
	} else
		acme_sha256(keyauth, strlen(keyauth), m.acme.digest);
	a->wait_id = id;
	a->wait_done = false;
	report(&m);
	explicit_bzero(&m, sizeof(m));
	deadline = now_s() + PUBLISH_TIMEOUT;
	while (!a->wait_done && now_s() < deadline)
		control_sleep(a, deadline - now_s(), &a->wait_done);
	a->wait_id = 0;
	if (!a->wait_done) {
		fail_set(f, FAIL_CA, NULL, "challenge %s not published within "
		    "%d s", challenge_name(c->challenge), PUBLISH_TIMEOUT);
		return -1;
	}
	if (!a->wait_ok) {
		fail_set(f, FAIL_CA, NULL, "challenge %s not published: %s",
		    challenge_name(c->challenge), a->wait_text);
		return -1;
	}
	log_acme("challenge_ready", n, "type", challenge_name(c->challenge),
	    NULL, NULL, "challenge ready for %s (%s)", n->name,
	    challenge_name(c->challenge));
	return 0;
}

static void
withdraw(uint32_t id)
{
	struct control_msg m;

	msg_init(&m, CONTROL_ACME_WITHDRAW);
	m.acme.id = id;
	report(&m);
}

/* The challenge's problem, else the authorization's status. */
static void
fail_challenge(struct failure *f, const struct aname *n,
    const struct acme_authz *az, const char *type)
{
	size_t i;

	for (i = 0; i < az->nchallenges; i++) {
		const struct acme_challenge *ch = &az->challenges[i];

		if (ch->error.type == NULL)
			continue;
		fail_set(f, FAIL_CA, ch->error.type, "%s %s: %s%s%s", n->name,
		    ch->type, ch->error.type, ch->error.detail != NULL ?
		    ": " : "", ch->error.detail != NULL ? ch->error.detail :
		    "");
		return;
	}
	fail_set(f, FAIL_CA, NULL, "%s %s: authorization %s", n->name, type,
	    acme_status_name(az->status));
}

/* One authorization to valid. */
static int
authorize(struct acme *a, struct aname *n, const char *url,
    struct failure *f)
{
	struct alistener *l = &a->lst[n->listener];
	const char *type = challenge_name(l->conf->challenge);
	struct acme_authz az;
	struct acme_challenge *ch = NULL;
	struct http_resp r;
	char *keyauth = NULL;
	uint32_t id = 0;
	size_t i;
	int rc = -1;

	memset(&az, 0, sizeof(az));
	if (poll_status(a, l, url, "authorization", 0, &r, f, parse_authz_cb,
	    &az, &az.status, clear_authz) == -1)
		return -1;
	resp_free(&r);
	if (az.status == ACME_ST_VALID) {
		acme_authz_free(&az);
		return 0;
	}
	if (az.status != ACME_ST_PENDING) {
		fail_challenge(f, n, &az, type);
		goto out;
	}
	for (i = 0; i < az.nchallenges; i++)
		if (strcmp(az.challenges[i].type, type) == 0)
			ch = &az.challenges[i];
	if (ch == NULL || ch->token == NULL) {
		fail_set(f, FAIL_CA, NULL, "%s: the CA offers no %s challenge",
		    n->name, type);
		goto out;
	}
	if ((keyauth = acme_key_authz(l->account, ch->token)) == NULL)
		fatalx("out of memory");
	if (ch->status == ACME_ST_PENDING) {
		id = ++a->challenge_id;
		if (id == 0)
			id = ++a->challenge_id;
		if (publish(a, n, ch, keyauth, id, f) == -1)
			goto out;
		/* Now the CA may look: every worker serves it. */
		if (post(a, l, ch->url, "{}", false, NULL, &r, f) == -1)
			goto out;
		if (r.status != 200) {
			fail_from(f, "challenge", &r);
			resp_free(&r);
			goto out;
		}
		resp_free(&r);
	}
	acme_authz_free(&az);
	memset(&az, 0, sizeof(az));
	if (poll_status(a, l, url, "authorization", POLL_MAX, &r, f,
	    parse_authz_cb, &az, &az.status, clear_authz) == -1)
		goto out;
	resp_free(&r);
	if (az.status != ACME_ST_VALID) {
		if (az.status == ACME_ST_PENDING)
			fail_set(f, FAIL_CA, NULL, "%s %s: still pending after "
			    "%d s", n->name, type, POLL_MAX);
		else
			fail_challenge(f, n, &az, type);
		goto out;
	}
	log_acme("validated", n, "type", type, NULL, NULL, "validated %s (%s)",
	    n->name, type);
	rc = 0;
out:
	if (id != 0)
		withdraw(id);
	if (keyauth != NULL) {
		explicit_bzero(keyauth, strlen(keyauth));
		free(keyauth);
	}
	acme_authz_free(&az);
	return rc;
}

/* The order's problem, else its status. */
static void
fail_order(struct failure *f, const struct acme_order *o, const char *what)
{
	if (o->error.type != NULL)
		fail_set(f, FAIL_CA, o->error.type, "%s: %s%s%s", what,
		    o->error.type, o->error.detail != NULL ? ": " : "",
		    o->error.detail != NULL ? o->error.detail : "");
	else
		fail_set(f, FAIL_CA, NULL, "%s: order %s", what,
		    acme_status_name(o->status));
}

/* Write the key then the chain, each atomically. */
static int
store(const struct config_acme *c, const struct aname *n, const char *key,
    size_t keylen, const char *chain, size_t chainlen, struct failure *f)
{
	char rel[CONTROL_NAME_MAX + 32], err[256];

	snprintf(rel, sizeof(rel), "certs/%s/key.pem", n->name);
	if (acme_cache_write(c->cache_dir, rel, key, keylen, 0600, err,
	    sizeof(err)) == -1)
		goto fail;
	snprintf(rel, sizeof(rel), "certs/%s/fullchain.pem", n->name);
	if (acme_cache_write(c->cache_dir, rel, chain, chainlen, 0644, err,
	    sizeof(err)) == -1)
		goto fail;
	return 0;
fail:
	fail_set(f, FAIL_CA, NULL, "%s: %s", c->cache_dir, err);
	return -1;
}

/* Finalize a ready order, wait for it, fetch and keep the chain. */
static int
finalize(struct acme *a, struct aname *n, const char *order_url,
    struct acme_order *o, struct failure *f)
{
	struct alistener *l = &a->lst[n->listener];
	struct acme_cert_info info;
	struct acme_key *key;
	struct http_resp r;
	char err[256], na[32], *csr, *payload, *pem = NULL;
	size_t pemlen = 0;
	int rc = -1;

	if ((key = acme_key_generate(err, sizeof(err))) == NULL) {
		fail_set(f, FAIL_CA, NULL, "certificate key: %s", err);
		return -1;
	}
	if ((csr = acme_csr(key, n->name, err, sizeof(err))) == NULL) {
		fail_set(f, FAIL_CA, NULL, "CSR: %s", err);
		goto out;
	}
	payload = dump(json_pack("{s:s}", "csr", csr));
	free(csr);
	rc = post(a, l, o->finalize, payload, false, NULL, &r, f);
	free(payload);
	if (rc == -1)
		goto out;
	rc = -1;
	if (r.status != 200) {
		fail_from(f, "finalize", &r);
		resp_free(&r);
		goto out;
	}
	resp_free(&r);
	if (poll_status(a, l, order_url, "order", POLL_MAX, &r, f,
	    parse_order_cb, o, &o->status, clear_order) == -1)
		goto out;
	resp_free(&r);
	if (o->status != ACME_ST_VALID || o->certificate == NULL) {
		fail_order(f, o, n->name);
		goto out;
	}
	if (post(a, l, o->certificate, NULL, false,
	    "application/pem-certificate-chain", &r, f) == -1)
		goto out;
	if (r.status != 200) {
		fail_from(f, "certificate", &r);
		resp_free(&r);
		goto out;
	}
	if (acme_key_pem(key, &pem, &pemlen) == -1)
		fatalx("certificate key: cannot encode");
	if (acme_cert_check(r.body, r.len, pem, pemlen, n->name, now_s(),
	    &info, err, sizeof(err)) == -1) {
		fail_set(f, FAIL_CA, NULL, "%s: the CA's certificate: %s",
		    n->name, err);
		resp_free(&r);
		goto out;
	}
	if (store(l->conf, n, pem, pemlen, r.body, r.len, f) == -1) {
		resp_free(&r);
		goto out;
	}
	resp_free(&r);
	n->not_before = info.not_before;
	n->not_after = info.not_after;
	copy_str(n->ari_id, sizeof(n->ari_id), info.ari_id);
	n->ari_start = n->ari_end = n->ari_pick = 0;
	iso8601(n->not_after, na, sizeof(na));
	log_acme("issued", n, "not_after", na, NULL, NULL,
	    "issued %s, not after %s", n->name, na);
	rc = 0;
out:
	if (pem != NULL) {
		explicit_bzero(pem, pemlen);
		free(pem);
	}
	acme_key_free(key);
	return rc;
}

static int
issue(struct acme *a, struct aname *n, struct failure *f)
{
	struct alistener *l = &a->lst[n->listener];
	struct acme_order o;
	struct http_resp r;
	char err[256], *payload, *url = NULL;
	size_t i;
	int rc = -1;

	if (get_directory(a, l, f) == -1 || get_account(a, l, f) == -1)
		return -1;
	payload = dump(json_pack("{s:[{s:s,s:s}]}", "identifiers", "type",
	    "dns", "value", n->name));
	rc = post(a, l, l->dir.new_order, payload, false, NULL, &r, f);
	free(payload);
	if (rc == -1)
		return -1;
	rc = -1;
	memset(&o, 0, sizeof(o));
	if (r.status != 201 || r.location[0] == '\0' ||
	    strncmp(r.location, "https://", 8) != 0) {
		if (r.status == 401 || r.status == 403) {
			/* The account may be gone: register again next time. */
			free(l->kid);
			l->kid = NULL;
		}
		fail_from(f, "newOrder", &r);
		resp_free(&r);
		return -1;
	}
	if (acme_parse_order(r.body, r.len, &o, err, sizeof(err)) == -1) {
		fail_set(f, FAIL_CA, NULL, "newOrder: %s", err);
		resp_free(&r);
		return -1;
	}
	if ((url = strdup(r.location)) == NULL)
		fatalx("out of memory");
	resp_free(&r);
	log_acme("ordered", n, "order", url, NULL, NULL, "ordered %s", n->name);
	for (i = 0; i < o.nauthz; i++)
		if (authorize(a, n, o.authz[i], f) == -1)
			goto out;
	/* Every authorization is valid: the order is ready, or soon. */
	if (poll_status(a, l, url, "order", POLL_MAX, &r, f, parse_order_cb,
	    &o, &o.status, clear_order) == -1)
		goto out;
	resp_free(&r);
	if (o.status != ACME_ST_READY && o.status != ACME_ST_VALID) {
		fail_order(f, &o, n->name);
		goto out;
	}
	if (finalize(a, n, url, &o, f) == -1)
		goto out;
	report_issued(n);
	rc = 0;
out:
	free(url);
	acme_order_free(&o);
	return rc;
}

/*
 * When to renew, and when to try again.
 */

int64_t
acme_renew_at(int64_t not_before, int64_t not_after, unsigned renew_days)
{
	int64_t life, window;

	life = not_before > 0 ? not_after - not_before : 0;
	if (renew_days != 0) {
		window = (int64_t)renew_days * 86400;
		/* A window as long as the lifetime would make every new
		   certificate due at once: an order a minute, until the
		   CA's rate limits refuse them. */
		if (life <= 0 || window < life)
			return not_after - window;
		return not_after - life / 3;
	}
	window = (int64_t)CONFIG_ACME_RENEW_DAYS * 86400;
	if (life > 0 && life / 3 < window)
		window = life / 3;
	return not_after - window;
}

int64_t
acme_backoff(bool unreachable, int64_t prev)
{
	int64_t min = unreachable ? NET_BACKOFF_MIN : CA_BACKOFF_MIN;
	int64_t max = unreachable ? NET_BACKOFF_MAX : CA_BACKOFF_MAX;

	return prev > 0 ? MINIMUM(MAXIMUM(prev * 2, min), max) : min;
}

/* Read the cached certificate: not_before, not_after, ari_id. */
static int
read_cached(struct acme *a, struct aname *n, char *err, size_t errsz)
{
	const struct config_acme *c = a->lst[n->listener].conf;
	struct config_acme_cert cert;
	struct acme_cert_info info;
	int64_t not_after;
	int rc;

	memset(&cert, 0, sizeof(cert));
	rc = acme_cache_read(c->cache_dir, n->name, now_s(), &cert, &not_after,
	    err, errsz);
	if (rc != 0) {
		n->not_before = n->not_after = 0;
		n->ari_id[0] = '\0';
		return rc;
	}
	if (acme_cert_check(cert.cert.data, cert.cert.len, cert.key.data,
	    cert.key.len, n->name, now_s(), &info, err, errsz) == 0) {
		n->not_before = info.not_before;
		copy_str(n->ari_id, sizeof(n->ari_id), info.ari_id);
	}
	n->not_after = not_after;
	acme_cache_cert_free(&cert);
	return 0;
}

/* ARI's suggested window, if the CA has one for this certificate. */
static bool
ari_window(struct acme *a, struct aname *n)
{
	struct alistener *l = &a->lst[n->listener];
	struct failure f;
	struct http_resp r;
	char err[256], *url;
	int64_t start, end;

	if (n->ari_id[0] == '\0')
		return false;
	memset(&f, 0, sizeof(f));
	if (get_directory(a, l, &f) == -1) {
		log_debug("acme: %s: no directory for ARI: %s", n->name,
		    f.text);
		return false;
	}
	if (l->dir.renewal_info == NULL)
		return false;
	if (asprintf(&url, "%s/%s", l->dir.renewal_info, n->ari_id) == -1)
		fatalx("out of memory");
	control_check(a);
	if (http(a, l->conf, "GET", url, NULL, NULL, &r, &f) == -1) {
		log_debug("acme: %s: renewalInfo: %s", n->name, f.text);
		free(url);
		return false;
	}
	free(url);
	if (r.status != 200 || acme_parse_renewal_info(r.body, r.len, &start,
	    &end, err, sizeof(err)) == -1) {
		resp_free(&r);
		return false;
	}
	resp_free(&r);
	if (start != n->ari_start || end != n->ari_end) {
		n->ari_start = start;
		n->ari_end = end;
		n->ari_pick = start + (int64_t)rnd((uint64_t)(end - start) + 1);
	}
	return true;
}

static int64_t
renew_at(struct acme *a, struct aname *n)
{
	const struct config_acme *c = a->lst[n->listener].conf;

	if (ari_window(a, n))
		return n->ari_pick;
	return acme_renew_at(n->not_before, n->not_after, c->renew_days);
}

static int64_t
next_check(void)
{
	return now_s() + CHECK_EVERY - CHECK_JITTER +
	    (int64_t)rnd(2 * CHECK_JITTER + 1);
}

/*
 * Renewals asked for by the master.
 */

static void
renewal_answer(struct renewal *rw)
{
	struct control_msg m;

	msg_init(&m, CONTROL_ACME_RENEWED);
	m.acme.id = rw->id;
	m.acme.ok = rw->ok ? 1 : 0;
	copy_str(m.text, sizeof(m.text), rw->text);
	report(&m);
}

/* The attempt on serial ended (ok, or failed with why). */
static void
renewals_done(struct acme *a, const struct aname *n, uint64_t serial,
    bool ok, const char *why)
{
	struct renewal *rw;
	size_t i, j;

	for (i = 0; i < a->nrenewals; ) {
		rw = &a->renewals[i];
		for (j = 0; j < rw->nleft; j++)
			if (rw->serials[j] == serial)
				break;
		if (j < rw->nleft) {
			rw->serials[j] = rw->serials[--rw->nleft];
			if (!ok && rw->ok) {
				char text[CONTROL_NAME_MAX + ACME_TEXT_MAX];

				rw->ok = false;
				snprintf(text, sizeof(text), "%s: %s", n->name,
				    why);
				copy_str(rw->text, sizeof(rw->text), text);
			}
		}
		if (rw->nleft > 0) {
			i++;
			continue;
		}
		renewal_answer(rw);
		free(rw->serials);
		a->renewals[i] = a->renewals[--a->nrenewals];
	}
}

/* Begin the RENEWs that came in: their names are due now. */
static void
renewals_begin(struct acme *a)
{
	struct control_msg *m;
	struct renewal *rw;
	size_t q, i;

	for (q = 0; q < a->nrenew_q; q++) {
		m = &a->renew_q[q];
		if (a->nrenewals == MAX_RENEWALS) {
			struct renewal busy = { .id = m->acme.id, .ok = false };

			copy_str(busy.text, sizeof(busy.text),
			    "too many renewals at once");
			renewal_answer(&busy);
			continue;
		}
		rw = &a->renewals[a->nrenewals];
		memset(rw, 0, sizeof(*rw));
		rw->id = m->acme.id;
		rw->ok = true;
		if ((rw->serials = calloc(a->nnames + 1, sizeof(uint64_t))) ==
		    NULL)
			fatalx("out of memory");
		for (i = 0; i < a->nnames; i++) {
			if (m->acme.name[0] != '\0' &&
			    strcmp(m->acme.name, a->names[i]->name) != 0)
				continue;
			rw->serials[rw->nleft++] = a->names[i]->serial;
			a->names[i]->forced = true;
			a->names[i]->next = 0;
		}
		if (rw->nleft == 0) {
			rw->ok = false;
			if (m->acme.name[0] != '\0') {
				char text[CONTROL_NAME_MAX + 64];

				snprintf(text, sizeof(text), "%s: no such ACME "
				    "certificate", m->acme.name);
				copy_str(rw->text, sizeof(rw->text), text);
			} else
				copy_str(rw->text, sizeof(rw->text),
				    "no ACME certificate configured");
			renewal_answer(rw);
			free(rw->serials);
			continue;
		}
		log_info("acme: renewal %u asked for %s (%zu certificate%s)",
		    rw->id, m->acme.name[0] != '\0' ? m->acme.name :
		    "every name",
		    rw->nleft, rw->nleft == 1 ? "" : "s");
		a->nrenewals++;
	}
	a->nrenew_q = 0;
}

/*
 * A job: look at one name, order if it is time, schedule the next look.
 */

static void
job(struct acme *a, struct aname *n)
{
	struct failure f;
	char err[256], at[32], in[32];
	bool forced = n->forced;
	int64_t when, delay, known = n->not_after;
	int rc;

	n->forced = false;
	memset(&f, 0, sizeof(f));
	rc = read_cached(a, n, err, sizeof(err));
	if (rc == -1)
		log_warnx("acme: %s: the cached certificate is unusable (%s): "
		    "ordering a new one", n->name, err);
	if (rc == 0 && n->not_after != known)
		/* Another listener with this cache directory got it. */
		report_issued(n);
	if (rc == 0 && !forced && (when = renew_at(a, n)) > now_s()) {
		/* Nothing to do yet. */
		n->next = MINIMUM(when, next_check());
		n->fail_kind = FAIL_NONE;
		n->delay = 0;
		iso8601(n->next, at, sizeof(at));
		log_debug("acme: %s: valid, next look at %s", n->name, at);
		report_state(n);
		renewals_done(a, n, n->serial, true, "");
		return;
	}
	if (issue(a, n, &f) == 0) {
		report_attempt(n, true);
		n->fail_kind = FAIL_NONE;
		n->delay = 0;
		n->err[0] = '\0';
		when = renew_at(a, n);
		n->next = MINIMUM(MAXIMUM(when, now_s() + 60), next_check());
		report_state(n);
		renewals_done(a, n, n->serial, true, "");
		return;
	}
	/* Failed: the old certificate (if any) keeps serving. */
	report_attempt(n, false);
	delay = acme_backoff(f.kind == FAIL_NET,
	    n->fail_kind == f.kind ? n->delay : 0);
	n->fail_kind = f.kind;
	n->delay = delay;
	if (f.retry_after > delay)
		delay = f.retry_after;
	n->next = now_s() + delay;
	copy_str(n->err, sizeof(n->err), f.text);
	{
		struct log_event ev;

		ev_start(&ev, "failed", n);
		if (f.problem[0] != '\0')
			log_event_cstr(&ev, "problem", f.problem);
		log_event_cstr(&ev, "error", f.text);
		ev_end(&ev, "failed %s", n->name);
	}
	iso8601(n->next, at, sizeof(at));
	snprintf(in, sizeof(in), "%" PRId64, delay);
	log_acme("next_attempt", n, "in", in, "at", at,
	    "next attempt for %s in %s s", n->name, in);
	report_state(n);
	renewals_done(a, n, n->serial, false, f.text);
}

/*
 * Configuration.
 */

static bool
str_eq(const char *x, const char *y)
{
	return (x == NULL && y == NULL) ||
	    (x != NULL && y != NULL && strcmp(x, y) == 0);
}

static void
listener_reset(struct alistener *l, bool account)
{
	if (l->have_dir)
		acme_directory_free(&l->dir);
	l->have_dir = false;
	l->nonce[0] = '\0';
	if (account) {
		acme_key_free(l->account);
		l->account = NULL;
		free(l->kid);
		l->kid = NULL;
	}
}

static struct aname *
find_name(struct aname **v, size_t n, uint32_t listener, const char *name)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (v[i] != NULL && v[i]->listener == listener &&
		    strcmp(v[i]->name, name) == 0)
			return v[i];
	return NULL;
}

static void
add_name(struct acme *a, struct aname ***v, size_t *nv, uint32_t li,
    const char *name)
{
	struct aname *n, **nn;
	char err[256];

	if (strlen(name) > CONTROL_NAME_MAX || name[0] == '.' ||
	    strchr(name, '/') != NULL) {
		log_warnx("acme: listener %u: %s is not a name to order", li,
		    name);
		return;
	}
	if (find_name(*v, *nv, li, name) != NULL)
		return;
	if ((n = find_name(a->names, a->nnames, li, name)) != NULL) {
		/* Kept: its state and backoff too. */
		for (size_t i = 0; i < a->nnames; i++)
			if (a->names[i] == n)
				a->names[i] = NULL;
		if (n->fail_kind == FAIL_NONE)
			n->next = 0;	/* looked at again with the new
					   settings */
	} else {
		if ((n = calloc(1, sizeof(*n))) == NULL)
			fatalx("out of memory");
		n->serial = ++a->serial;
		n->listener = li;
		copy_str(n->name, sizeof(n->name), name);
		/* What the master serves already. */
		(void)read_cached(a, n, err, sizeof(err));
	}
	if ((nn = reallocarray(*v, *nv + 1, sizeof(*nn))) == NULL)
		fatalx("out of memory");
	nn[(*nv)++] = n;
	*v = nn;
}

/* Take a new configuration: what is new is ordered, what is gone goes. */
static void
apply_config(struct acme *a, struct config *cfg)
{
	struct aname **v = NULL;
	size_t nv = 0, i, j;
	const struct config_acme *c, *old;
	struct alistener *l;

	for (i = 0; i < CONFIG_MAX_LISTENERS; i++) {
		l = &a->lst[i];
		old = l->conf;
		c = i < cfg->nlisteners &&
		    cfg->listeners[i].tls_mode == CONFIG_TLS_ACME ?
		    &cfg->listeners[i].acme : NULL;
		if (old != NULL && (c == NULL ||
		    !str_eq(old->directory, c->directory) ||
		    !str_eq(old->cache_dir, c->cache_dir) ||
		    old->ca.len != c->ca.len || (c->ca.len > 0 &&
		    memcmp(old->ca.data, c->ca.data, c->ca.len) != 0)))
			listener_reset(l, true);
		else if (old != NULL && (!str_eq(old->eab_kid, c->eab_kid) ||
		    !str_eq(old->eab_hmac_key, c->eab_hmac_key))) {
			/* Another binding: another account. */
			listener_reset(l, true);
			l->fresh_account = true;
		}
		l->conf = c;
		if (c != NULL)
			account_dir(l);
	}
	a->ca_loaded = NULL;	/* the old config's bytes go away */
	for (i = 0; i < cfg->nlisteners; i++) {
		const struct config_listener *cl = &cfg->listeners[i];

		if (cl->tls_mode != CONFIG_TLS_ACME)
			continue;
		if (cl->acme.domains_set || cl->acme.ndomains > 0) {
			for (j = 0; j < cl->acme.ndomains; j++)
				add_name(a, &v, &nv, (uint32_t)i,
				    cl->acme.domains[j]);
		} else {
			for (j = 0; j < cl->nsites; j++)
				if (!cl->sites[j].wildcard)
					add_name(a, &v, &nv, (uint32_t)i,
					    cl->sites[j].host);
		}
	}
	/* What is left of the old list is forgotten. */
	for (i = 0; i < a->nnames; i++) {
		if (a->names[i] == NULL)
			continue;
		log_info("acme: %s (listener %u) is no longer configured",
		    a->names[i]->name, a->names[i]->listener);
		renewals_done(a, a->names[i], a->names[i]->serial, false,
		    "no longer configured");
		free(a->names[i]);
	}
	free(a->names);
	a->names = v;
	a->nnames = nv;
	if (a->cfg != NULL)
		config_free(a->cfg);
	a->cfg = cfg;
	log_configure(cfg->log_level, cfg->log_format);
	for (i = 0; i < a->nnames; i++)
		report_state(a->names[i]);
	log_info("acme: %zu certificate%s to keep", a->nnames,
	    a->nnames == 1 ? "" : "s");
}

/* The image in the memfd of an ACME_CONFIG. */
static void
load_image(struct acme *a, int fd, uint64_t gen)
{
	struct config *cfg;
	struct stat st;
	unsigned char *buf;
	uint64_t igen;
	ssize_t n;
	size_t off = 0;

	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
	    st.st_size > IMAGE_MAX) {
		log_warnx("acme: configuration %llu: not an image",
		    (unsigned long long)gen);
		return;
	}
	if ((buf = malloc((size_t)st.st_size)) == NULL)
		fatalx("out of memory");
	while (off < (size_t)st.st_size) {
		n = pread(fd, buf + off, (size_t)st.st_size - off, (off_t)off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	if (off != (size_t)st.st_size ||
	    image_decode(buf, off, &cfg, &igen) == -1) {
		log_warnx("acme: configuration %llu: malformed image",
		    (unsigned long long)gen);
		cfg = NULL;
	}
	explicit_bzero(buf, off);
	free(buf);
	if (cfg == NULL)
		return;
	if (a->pending != NULL)
		config_free(a->pending);
	a->pending = cfg;
}

/*
 * Control messages.
 */

static void
handle_msg(struct acme *a, struct control_msg *m)
{
	switch (m->type) {
	case CONTROL_DRAIN:
		log_info("exiting: master asked");
		exit(0);
	case CONTROL_REOPEN_LOG:
		log_reopen(m->fd);
		break;
	case CONTROL_ACME_CONFIG:
		load_image(a, m->fd, m->gen);
		close(m->fd);
		break;
	case CONTROL_ACME_PUBLISHED:
		if (a->wait_id != 0 && m->acme.id == a->wait_id) {
			a->wait_done = true;
			a->wait_ok = m->acme.ok == 1;
			copy_str(a->wait_text, sizeof(a->wait_text), m->text);
		} else
			log_debug("acme: PUBLISHED for %u, not awaited",
			    m->acme.id);
		break;
	case CONTROL_ACME_RENEW:
		if (a->nrenew_q == MAX_RENEWALS) {
			struct renewal busy = { .id = m->acme.id, .ok = false };

			copy_str(busy.text, sizeof(busy.text),
			    "too many renewals at once");
			renewal_answer(&busy);
			break;
		}
		a->renew_q[a->nrenew_q++] = *m;
		break;
	default:
		if (m->fd != -1)
			close(m->fd);
		fatalx("control: unexpected message %d", (int)m->type);
	}
}

/* ready: poll said fd 3 is readable (or not: then nothing is read). */
static void
handle_control(struct acme *a, int ready)
{
	struct control_msg m;
	int rc;

	if (ready <= 0)
		return;
	while ((rc = control_recv(ACME_FD_CONTROL, &m)) == 1)
		handle_msg(a, &m);
	if (rc == 0) {
		log_info("exiting: master gone");
		exit(0);
	}
	if (errno == EPROTO)
		fatalx("control: protocol violation");
	if (errno != EAGAIN)
		fatal("control");
}

/*
 * Start-up and the loop.
 */

/* The name due first (forced ones before all), or NULL. */
static struct aname *
due(struct acme *a)
{
	struct aname *best = NULL;
	size_t i;

	for (i = 0; i < a->nnames; i++) {
		struct aname *n = a->names[i];

		if (n->forced)
			return n;
		if (best == NULL || n->next < best->next)
			best = n;
	}
	return best;
}

void
acme_main(void)
{
	struct acme *a = &A;
	enum sandbox_mode sb = sandbox_mode_from_env();
	struct control_msg m;
	struct aname *n;
	int64_t wait;
	curl_version_info_data *cv;

	log_init("acme", -1);
	(void)log_journal_detect();	/* before the sandbox (log.h) */
	control_child_check(ACME_FD_CONTROL, ACME_FD_REPORT, ACME_ENV);
	unsetenv(ACME_ENV);
	if (privs_worker_drop(true) == -1)
		fatal("cannot drop privileges");
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGUSR1, SIG_IGN);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK ||
	    (a->curl = curl_easy_init()) == NULL)
		fatalx("libcurl: cannot start");
	cv = curl_version_info(CURLVERSION_NOW);
	/* libcurl's GnuTLS backend takes CURLOPT_CAINFO_BLOB since 8.14. */
	a->ca_blob = cv->version_num >= 0x080e00 ||
	    strstr(cv->ssl_version, "GnuTLS") == NULL;
	/* CAINFO for a libcurl without CAINFO_BLOB: made now, as the
	   sandbox allows no memfd_create. */
	if ((a->ca_fd = memfd_create("acme-ca", MFD_CLOEXEC)) == -1)
		fatal("memfd_create");
	if (sandbox_apply(SANDBOX_ACME, sb) == -1)
		fatal("cannot install the sandbox");

	msg_init(&m, CONTROL_READY);
	m.gen = 0;
	m.pid = (uint32_t)getpid();
	report(&m);
	log_info("acme: ready (%s)", cv->ssl_version);

	for (;;) {
		if (a->pending != NULL) {
			struct config *cfg = a->pending;

			a->pending = NULL;
			apply_config(a, cfg);
		}
		renewals_begin(a);
		n = due(a);
		if (n != NULL && (n->forced || n->next <= now_s())) {
			job(a, n);
			continue;
		}
		wait = n == NULL ? -1 : MINIMUM(n->next - now_s(), 3600);
		control_wait(a, wait < 0 ? -1 : (int)wait * 1000);
	}
}
