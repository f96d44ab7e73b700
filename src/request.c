/*
 * request.c - admission of a request, for both protocols (see request.h).
 */
#include "autoconf.h"

#include <stdio.h>
#include <string.h>

#include "log.h"
#include "ratelimit.h"
#include "request.h"
#include "route.h"
#include "tls.h"
#include "gen.h"

/* What a 405 says we do: everything but CONNECT (and TRACE). */
#define ALLOWED_METHODS	"GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH"

/* The longest path a redirect repeats; longer gets 414. */
#define REDIRECT_PATH_MAX	1900

/* Where HTTP-01 challenges are asked (RFC 8555 8.3). */
#define ACME_CHALLENGE_PATH	"/.well-known/acme-challenge/"

static const struct config_site *
answer(struct request_answer *ans, int status, bool close)
{
	ans->status = status;
	ans->close = close;
	ans->name = NULL;
	ans->value[0] = '\0';
	ans->body = NULL;
	ans->body_len = 0;
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
	struct http1_slice path = pr->h.path;
	char port[8] = "";

	if (http01(l, pr, host, hlen, ans))
		return NULL;
	if (route_lookup(g->routes, conn->li, host, hlen) == NULL)
		return answer(ans, 404, false);
	/* OPTIONS * and CONNECT's authority name no path: the root. */
	if (path.len == 0 || path.p[0] != '/')
		path = (struct http1_slice){ "/", 1 };
	if (path.len > REDIRECT_PATH_MAX)
		return answer(ans, 414, true);
	if (l->https_port != 443)
		snprintf(port, sizeof(port), ":%u", l->https_port);
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

const struct config_site *
request_admit(const struct request_conn *conn, const struct gen *g,
    struct proxy_request *pr, struct http1_slice target, uint64_t body_seen,
    struct request_answer *ans)
{
	char host[CONFIG_HOST_MAX + 1];
	const struct config_site *site;
	struct ratelimit_req rq;
	unsigned retry;
	int hlen = -1;

	if (pr->h.host.len > 0)
		hlen = route_normalize_host(pr->h.host.p, pr->h.host.len, host,
		    sizeof(host));
	if (hlen <= 0)
		return answer(ans, 400, true);
	if (!conn->tls)
		return redirect(conn, g, pr, host, (size_t)hlen, ans);

	site = route_lookup(g->routes, conn->li, host, (size_t)hlen);
	/* Unknown hosts too: a scan of names is as much load as any. */
	rq = (struct ratelimit_req){ conn->peer, conn->client_ip, host,
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
	if (pr->h.method_id == HTTP1_METHOD_CONNECT) {
		answer(ans, 405, false);
		ans->name = "Allow";
		memcpy(ans->value, ALLOWED_METHODS, sizeof(ALLOWED_METHODS));
		return NULL;
	}
	if (head_over_limit(g->cfg->body_limit, pr, body_seen))
		return answer(ans, 413, true);

	pr->be = &site->be;
	pr->site = site->host;
	pr->h.client_ip = conn->client_ip;
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
