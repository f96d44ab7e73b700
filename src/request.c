/*
 * request.c - admission of a request, for both protocols (see request.h).
 */
#include "autoconf.h"

#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "balance.h"
#include "cidr.h"
#include "log.h"
#include "path.h"
#include "proxyhdr.h"
#include "ratelimit.h"
#include "realip.h"
#include "request.h"
#include "route.h"
#include "shm.h"
#include "tls.h"
#include "uptls.h"
#include "util.h"
#include "gen.h"

/* What a 405 says we do: everything but CONNECT (and TRACE). */
#define ALLOWED_METHODS	"GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH"

/* The longest path a redirect repeats; longer gets 414. */
#define REDIRECT_PATH_MAX	1900

/* Where HTTP-01 challenges are asked (RFC 8555 8.3). */
#define ACME_CHALLENGE_PATH	"/.well-known/acme-challenge/"

/* Room for a normalised path: no request's is longer (max-request-line
   and max-header-size are 64 KiB at most), and normalising never makes
   one longer. */
#define PATH_NORM_MAX		65536

static const struct config_site *
answer(struct request_answer *ans, int status, bool close)
{
	ans->status = status;
	ans->close = close;
	ans->name = NULL;
	ans->value[0] = '\0';
	ans->body = NULL;
	ans->body_len = 0;
	ans->why[0] = '\0';
	return NULL;
}

static bool
slice_is(struct http1_slice s, const char *str, size_t len)
{
	return s.len == len && memcmp(s.p, str, len) == 0;
}

/*
 * HTTP-01 on the plain port of a listener whose acme-challenge is http-01:
 * GET or HEAD of the path of a pending challenge, for its very name, is
 * answered with the key authorization.  false: anything else, even under
 * the challenge path, nothing said: it goes on as on any plain port (the
 * redirect, or 404 for a host we do not serve).
 */
static bool
http01(const struct config_listener *l, const struct proxy_request *pr,
    const char *host, size_t hlen, struct request_answer *ans)
{
	const size_t plen = sizeof(ACME_CHALLENGE_PATH) - 1;
	const struct config_challenge *ch;
	struct http1_slice token;
	size_t i;

	if (l->tls_mode != CONFIG_TLS_ACME ||
	    l->acme.challenge != CONFIG_ACME_HTTP_01 || pr->h.path.len < plen ||
	    memcmp(pr->h.path.p, ACME_CHALLENGE_PATH, plen) != 0)
		return false;
	token = (struct http1_slice){ pr->h.path.p + plen,
	    pr->h.path.len - plen };
	if (token.len == 0 || (pr->h.method_id != HTTP1_METHOD_GET &&
	    pr->h.method_id != HTTP1_METHOD_HEAD))
		return false;
	for (i = 0; i < l->nchallenges; i++) {
		ch = &l->challenges[i];
		if (ch->type == CONFIG_ACME_HTTP_01 && ch->token != NULL &&
		    ch->keyauth != NULL &&
		    slice_is(token, ch->token, strlen(ch->token)) &&
		    strlen(ch->name) == hlen &&
		    memcmp(ch->name, host, hlen) == 0) {
			answer(ans, 200, false);
			ans->body = ch->keyauth;
			ans->body_len = strlen(ch->keyauth);
			return true;
		}
	}
	return false;
}

/*
 * The plain port serves nothing but a way to HTTPS, and only for a host we
 * serve, never to whatever the client wrote; and HTTP-01 challenges.
 */
static const struct config_site *
redirect(const struct request_conn *conn, const struct gen *g,
    const struct proxy_request *pr, const char *host, size_t hlen,
    struct request_answer *ans)
{
	const struct config_listener *l = &g->cfg->listeners[conn->li];
	const struct config_site *site;
	struct http1_slice path = pr->h.path;
	char port[8] = "";
	unsigned rport;

	if (http01(l, pr, host, hlen, ans))
		return NULL;
	if ((site = route_lookup(g->routes, conn->li, host, hlen)) == NULL)
		return answer(ans, 404, false);
	ans->site_slot = site->metrics_slot;
	/* OPTIONS * and CONNECT's authority name no path: the root. */
	if (path.len == 0 || path.p[0] != '/')
		path = (struct http1_slice){ "/", 1 };
	if (path.len > REDIRECT_PATH_MAX)
		return answer(ans, 414, true);
	/* redirect-port: where clients reach the https-port (a mapping). */
	if ((rport = l->redirect_port != 0 ? l->redirect_port :
	    l->https_port) != 443)
		snprintf(port, sizeof(port), ":%u", rport);
	answer(ans, 301, false);
	ans->name = "Location";
	snprintf(ans->value, sizeof(ans->value), "https://%.*s%s%.*s",
	    (int)hlen, host, port, (int)path.len, path.p);
	return NULL;
}

/* The body limit, as far as the head tells. */
static bool
head_over_limit(uint64_t limit, const struct proxy_request *pr,
    uint64_t body_seen)
{
	if (limit == 0)
		return false;
	if (pr->h.framing == HEADERS_FRAME_LENGTH &&
	    pr->h.content_length > limit)
		return true;
	/* What a WebSocket client sent early is the tunnel's, not a body:
	   the stream's window bounds it. */
	return !pr->h.websocket && body_seen > limit;
}

/* A path we do not forward: 400, and the connection closes. */
static const struct config_backend *
path_refused(struct request_answer *ans, const char *client_ip,
    struct http1_slice path, const char *why)
{
	log_debug("%s: path %.*s refused: %s", client_ip,
	    (int)MINIMUM(path.len, 256), path.p, why);
	answer(ans, 400, true);
	return NULL;
}

/* The longest path block of site whose prefix norm is under, or NULL. */
static const struct config_path *
path_block(const struct config_site *site, const char *norm, size_t len)
{
	size_t i;

	for (i = 0; i < site->npaths; i++)
		if (path_prefix_match(norm, len, site->paths[i].prefix,
		    site->paths[i].prefix_len))
			return &site->paths[i];
	return NULL;
}

/* The allow and deny that apply under block p (NULL: the site's). */
static const struct config_access *
access_of(const struct config_site *site, const struct config_path *p)
{
	return p != NULL ? &p->access : &site->access;
}

/*
 * Whether the path t (q bytes before its query) comes under the same
 * allow and deny in the form forwarded (no %2F decoded, no ;parameter
 * dropped: the target goes upstream as sent) as in the form matched,
 * whose block is p.  An upstream that reads the path its own way
 * ("/admin/;/../x" is /admin/x to nginx, "/x" when matching) must not get
 * a request the rules of another block let through.  Only asked of a
 * site where some rules are; *rc: a normalisation error (then false).
 * Inherited rules are the site's own list: compared by identity.
 */
static bool
access_same_both_ways(const struct config_site *site,
    const struct config_path *p, struct http1_slice t, size_t q, int *rc)
{
	static char fwd[PATH_NORM_MAX];
	const struct config_access *a, *b;
	bool any = site->access.nranges > 0;
	size_t i, len;

	*rc = 0;
	for (i = 0; i < site->npaths && !any; i++)
		any = site->paths[i].access.own;
	if (!any)
		return true;
	if ((*rc = path_normalize(t.p, q, 0, fwd, sizeof(fwd), &len)) != 0)
		return false;
	a = access_of(site, p);
	b = access_of(site, path_block(site, fwd, len));
	return a->ranges == b->ranges && a->nranges == b->nranges;
}

/*
 * The backend for an admitted request to site, by its path: that of the
 * longest path block whose prefix the path, normalised for matching, is
 * under, else the site's.  NULL, and ans says what to answer, for a path
 * that does not normalise (with any site), that reaches a block with
 * replace-path only once %2F is decoded or ;parameters are dropped, or
 * whose two forms (access_same_both_ways) come under different allow and
 * deny rules.  With replace-path the target becomes the block's replace-path
 * and the rest of the path normalised for forwarding, with the query as
 * sent, in storage of pr's own (pr->target).  *blk: the path block, if
 * one.
 */
static const struct config_backend *
path_route(const struct config_site *site, struct proxy_request *pr,
    const char *client_ip, const struct config_path **blk,
    struct request_answer *ans)
{
	/* One thread per process, and used only within this call. */
	static char norm[PATH_NORM_MAX];
	const struct http1_slice t = pr->h.path;
	const struct config_path *p;
	const char *query = NULL;
	size_t q, len, cap;
	int rc;

	/* OPTIONS * names no path: the site's. */
	if (t.len == 0 || t.p[0] != '/')
		return &site->be;
	if ((q = path_query_at(t.p, t.len)) < t.len)
		query = t.p + q + 1;
	if ((rc = path_normalize(t.p, q, PATH_MATCH, norm, sizeof(norm),
	    &len)) != 0)
		return path_refused(ans, client_ip, t, path_strerror(rc));
	p = path_block(site, norm, len);
	if (!access_same_both_ways(site, p, t, q, &rc))
		return path_refused(ans, client_ip, t, rc != 0 ?
		    path_strerror(rc) : "another path block's allow and deny "
		    "once %2F is decoded or a ;parameter dropped");
	if (p == NULL)
		return &site->be;
	*blk = p;
	pr->prefix = p->prefix;
	if (p->replace == NULL)
		return &p->be;
	if ((rc = path_normalize(t.p, q, 0, norm, sizeof(norm), &len)) != 0)
		return path_refused(ans, client_ip, t, path_strerror(rc));
	if (!path_prefix_match(norm, len, p->prefix, p->prefix_len))
		return path_refused(ans, client_ip, t, "under a path block "
		    "with replace-path only through %2F or a ;parameter");
	/* The result is at most the target's length and replace-path's. */
	cap = t.len + p->replace_len;
	if ((pr->target = malloc(cap)) == NULL) {
		answer(ans, 503, true);
		return NULL;
	}
	if ((rc = path_replace(norm, len, p->prefix_len, p->replace,
	    p->replace_len, query, query != NULL ? t.len - q - 1 : 0,
	    pr->target, cap, &len)) != 0) {
		log_warnx("%s: replace-path of %s: %s", client_ip, p->prefix,
		    path_strerror(rc));
		request_release(pr);
		answer(ans, 500, true);
		return NULL;
	}
	pr->h.path = (struct http1_slice){ pr->target, len };
	return &p->be;
}

/*
 * allow and deny (config.h: struct config_access): whether the client
 * at peer may ask; if not, why[] says which rule refused it.
 */
static bool
access_allows(const struct config_access *a, const struct sockaddr *peer,
    char why[REQUEST_WHY_MAX])
{
	char range[CIDR_TEXT_MAX];
	long i;

	if (a->nranges == 0)
		return true;
	if ((i = cidr_find(a->ranges, a->nranges, peer)) < 0) {
		if (!a->whitelist)
			return true;
		snprintf(why, REQUEST_WHY_MAX, "not in allow");
		return false;
	}
	if (((size_t)i < a->nfirst) == a->first_allow)
		return true;
	cidr_format(&a->ranges[i], range);
	snprintf(why, REQUEST_WHY_MAX, "deny %s", range);
	return false;
}

/* sticky-cookie: the upstream the request's Cookie fields name, or -1. */
static int
sticky_of(const struct proxy_request *pr)
{
	const struct http1_header *f;
	size_t i;
	int up;

	for (i = 0; i < pr->h.nfields; i++) {
		f = &pr->h.fields[i];
		if (util_strcaseeq(f->name.p, f->name.len, "cookie", 6) &&
		    (up = balance_cookie_pick(pr->be, f->value.p,
		    f->value.len)) >= 0)
			return up;
	}
	return -1;
}

/*
 * The request's client: the connection's, unless the listener has
 * real-ip-header and the connection's client (the TCP peer, or the
 * source its PROXY header named) is a trusted proxy, whose header then
 * names it (realip.h).  Everything after goes by pr->peer and
 * pr->h.client_ip: the rate limit, the access rules, ip-hash,
 * X-Forwarded-For and X-Real-IP, the log lines.
 */
static void
real_ip(const struct request_conn *conn, const struct gen *g,
    struct proxy_request *pr)
{
	const struct config_listener *l = &g->cfg->listeners[conn->li];
	const struct http1_header *f;
	struct realip r;
	size_t i, n;

	pr->peer = conn->peer;
	pr->h.client_ip = conn->client_ip;
	if (l->real_ip_header == NULL || conn->peer == NULL ||
	    cidr_find(l->trusted, l->ntrusted, conn->peer) < 0)
		return;
	n = strlen(l->real_ip_header);
	realip_init(&r, l->trusted, l->ntrusted);
	for (i = 0; i < pr->h.nfields; i++) {
		f = &pr->h.fields[i];
		if (util_strcaseeq(f->name.p, f->name.len, l->real_ip_header,
		    n))
			realip_add(&r, f->value.p, f->value.len);
	}
	if (!realip_result(&r, &pr->real_peer))
		return;
	util_addr_text(&pr->real_peer, pr->real_ip, sizeof(pr->real_ip));
	pr->peer = (const struct sockaddr *)&pr->real_peer;
	pr->h.client_ip = pr->real_ip;
}

/*
 * upstream-proxy-protocol: the header each new connection for pr starts
 * with (proxyhdr.h): the request's client (real_ip()'s: the peer, the
 * client a PROXY header in named, or real-ip-header's), the address conn
 * reached (its socket's own; unknown if getsockname fails: a LOCAL
 * header, or v1's UNKNOWN) and its TLS session.  Into pr->pp; -1 if out
 * of memory.
 */
static int
proxy_header(const struct request_conn *conn, struct proxy_request *pr)
{
	unsigned char out[PROXYHDR_MAX];
	char sni[PROXYHDR_STR_MAX + 2];
	struct sockaddr_storage local;
	socklen_t llen = sizeof(local);
	struct proxyhdr_conn pc = { pr->peer, NULL, NULL };
	struct proxyhdr_tls t;
	size_t n;

	if (getsockname(conn->fd, (struct sockaddr *)&local, &llen) == 0)
		pc.dst = (const struct sockaddr *)&local;
	if (conn->session != NULL) {
		tls_conn_proxy_tls(conn->session, &t, sni, sizeof(sni));
		/* A certificate is this site's to speak of only if it asked
		   for one (the connection may have been verified for another
		   site that shares its server certificate). */
		if (pr->h.client_cert == NULL)
			t.cert_conn = t.cert_sess = t.verified = false;
		pc.tls = &t;
	}
	if ((n = proxyhdr_build((int)pr->be->proxy_protocol, &pc, out,
	    sizeof(out))) == 0)
		fatalx("request: no PROXY header for a backend that sends one");
	if ((pr->pp = malloc(n)) == NULL)
		return -1;
	memcpy(pr->pp, out, n);
	pr->pp_len = n;
	return 0;
}

const struct config_site *
request_admit(const struct request_conn *conn, const struct gen *g,
    struct proxy_request *pr, struct http1_slice target, uint64_t body_seen,
    struct request_answer *ans)
{
	char host[CONFIG_HOST_MAX + 1], why[REQUEST_WHY_MAX];
	const struct config_site *site;
	const struct config_path *blk = NULL;
	const struct config_access *acc;
	const struct config_edits *edits;
	struct ratelimit_req rq;
	unsigned retry;
	int hlen = -1;

	pr->be = NULL;
	pr->tls = NULL;
	pr->site = NULL;
	pr->prefix = NULL;
	pr->target = NULL;
	pr->pp = NULL;
	pr->pp_len = 0;
	pr->sticky = -1;
	pr->h.edit = NULL;
	pr->resp_edit = NULL;
	ans->site_slot = SHM_SITE_UNKNOWN;
	real_ip(conn, g, pr);

	if (pr->h.host.len > 0)
		hlen = route_normalize_host(pr->h.host.p, pr->h.host.len, host,
		    sizeof(host));
	if (hlen <= 0)
		return answer(ans, 400, true);
	if (!conn->tls)
		return redirect(conn, g, pr, host, (size_t)hlen, ans);

	site = route_lookup(g->routes, conn->li, host, (size_t)hlen);
	/* From here on the request is its site's, refused or not. */
	if (site != NULL)
		ans->site_slot = site->metrics_slot;
	/* Unknown hosts too: a scan of names is as much load as any. */
	rq = (struct ratelimit_req){ pr->peer, pr->h.client_ip, host,
	    (size_t)hlen, target.p, target.len };
	if (!ratelimit_admit(conn->rl, g->cfg, site, &rq, &retry)) {
		answer(ans, 429, false);
		ans->name = "Retry-After";
		snprintf(ans->value, sizeof(ans->value), "%u", retry);
		return NULL;
	}
	if (site == NULL)
		return answer(ans, 404, false);
	/* Asked of the connection's own generation, so that a reload that
	   renews a certificate leaves established connections alone (most
	   often it is the request's: the same lookup). */
	if (conn->cert_id != tls_ctx_cert_id(conn->gen->tls, conn->li,
	    conn->gen == g ? site : route_lookup(conn->gen->routes, conn->li,
	    host, (size_t)hlen), host, (size_t)hlen))
		return answer(ans, 421, false);
	/* client-auth: only a handshake for this very site (its name, mode
	   and CA, in the request's generation) verified what the site
	   asks; another SNI on a shared certificate, no SNI, a session
	   resumed from another site, an HTTP/2 connection reused for
	   another host, or a reload that changed the CA: 421. */
	if (site->client_auth != CONFIG_CLIENT_AUTH_NONE &&
	    (conn->auth_id == 0 ||
	    conn->auth_id != tls_ctx_auth_id(g->tls, conn->li, site))) {
		log_debug("%s: %s: client-auth site, and the connection's "
		    "handshake verified no certificate for it: 421",
		    pr->h.client_ip, site->host);
		return answer(ans, 421, false);
	}
	if (pr->h.method_id == HTTP1_METHOD_CONNECT) {
		answer(ans, 405, false);
		ans->name = "Allow";
		memcpy(ans->value, ALLOWED_METHODS, sizeof(ALLOWED_METHODS));
		return NULL;
	}
	if (head_over_limit(g->cfg->body_limit, pr, body_seen))
		return answer(ans, 413, true);
	if ((pr->be = path_route(site, pr, pr->h.client_ip, &blk, ans)) ==
	    NULL)
		return NULL;
	/* allow, deny: the path block's, which are its site's unless it
	   has its own, on the client's address (pr->peer: the one the rate
	   limit keys on).  Nothing of the upstream is touched for a denied
	   client. */
	acc = blk != NULL ? &blk->access : &site->access;
	if (acc->nranges > 0 && !access_allows(acc, pr->peer, why)) {
		log_debug("%s: %s denied: %s", pr->h.client_ip, site->host,
		    why);
		pr->be = NULL;
		answer(ans, 403, false);
		memcpy(ans->why, why, sizeof(why));
		return NULL;
	}
	/* The header options; none (most sites): NULL, nothing to ask. */
	edits = blk != NULL ? &blk->edits : &site->edits;
	if (edits->edit_req.nadd > 0)
		pr->h.edit = &edits->edit_req;
	if (edits->edit_resp.nadd > 0 || edits->edit_resp.nhide > 0)
		pr->resp_edit = &edits->edit_resp;
	if (pr->be->balance == CONFIG_LB_STICKY)
		pr->sticky = sticky_of(pr);
	if (pr->be->scheme == CONFIG_SCHEME_HTTPS)
		pr->tls = uptls_ctx_backend(g->uptls, pr->be);
	pr->h.client_cert = site->client_auth != CONFIG_CLIENT_AUTH_NONE ?
	    conn->client_cert : NULL;
	if (pr->be->proxy_protocol != CONFIG_PROXY_NONE &&
	    proxy_header(conn, pr) == -1)
		return answer(ans, 503, true);

	pr->site = site->host;
	pr->h.tls = true;
	pr->h.port = g->cfg->listeners[conn->li].https_port;
	return site;
}

struct exchange *
request_start(struct proxy_ctx *ctx, const struct proxy_request *pr,
    const struct proxy_ops *ops, void *fe, struct request_answer *ans)
{
	struct exchange *ex;

	if ((ex = proxy_start(ctx, pr, ops, fe)) == NULL)
		answer(ans, 503, true);
	return ex;
}

void
request_release(struct proxy_request *pr)
{
	free(pr->target);
	pr->target = NULL;
	free(pr->pp);
	pr->pp = NULL;
	pr->pp_len = 0;
}

bool
request_body_over(const struct gen *g, uint64_t seen, const char *client_ip)
{
	uint64_t limit = g != NULL ? g->cfg->body_limit : 0;

	if (limit == 0 || seen <= limit)
		return false;
	log_debug("%s: request body over the %llu-byte limit", client_ip,
	    (unsigned long long)limit);
	return true;
}
