/*
 * prober.c - the prober process (see prober.h).
 *
 * One libev loop.  Each upstream of a backend with a health-check is a
 * target: its check's settings, the request it sends (built once per
 * generation), its counters and verdict, a timer for its next check and,
 * while a check is in flight, a probe (the socket, the bytes of the
 * answer so far, the parser's state).  What the transport is (TCP, or
 * TLS over it for an https backend: the worker's uptls.c, with the
 * backend's trust, name, verification and client certificate) is known
 * only by the conn_* functions below.  A backend with
 * upstream-proxy-protocol expects a PROXY header on every connection:
 * a check's is the one for a connection of the proxy's own (v2's LOCAL
 * command, v1's UNKNOWN: proxyhdr_local), sent first, before TLS.
 */
#include "autoconf.h"

#include <sys/queue.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <ev.h>

#include "config.h"
#include "control.h"
#include "http1.h"
#include "image.h"
#include "listen.h"
#include "log.h"
#include "privs.h"
#include "prober.h"
#include "sandbox.h"
#include "proxyhdr.h"
#include "shm.h"
#include "signcli.h"
#include "upstate.h"
#include "upstream.h"
#include "uptls.h"
#include "util.h"

#define TARGET_MAGIC	0x50524f42u	/* "PROB" */
/* Copies of the config image tried when the master rewrites its slot
   meanwhile (a newer generation: the next copy gets it). */
#define LOAD_TRIES	4

/* ---- pure: the request, the answer, the verdict ---- */

static void
any_health(void *arg, const struct config_listener *l UNUSED,
    const struct config_site *site UNUSED,
    const struct config_path *path UNUSED, struct config_backend *be)
{
	if (be->health.on)
		*(bool *)arg = true;
}

bool
prober_wanted(const struct config *cfg)
{
	bool any = false;

	config_foreach_backend(cfg, any_health, &any);
	return any;
}

/* The port of a resolved upstream address, 0 if it is neither family. */
static uint16_t
addr_port(const struct config_upstream *up)
{
	const struct sockaddr_in *s4;
	const struct sockaddr_in6 *s6;

	if (up->addr.ss_family == AF_INET) {
		s4 = (const struct sockaddr_in *)(const void *)&up->addr;
		return ntohs(s4->sin_port);
	}
	if (up->addr.ss_family == AF_INET6) {
		s6 = (const struct sockaddr_in6 *)(const void *)&up->addr;
		return ntohs(s6->sin6_port);
	}
	return 0;
}

int
prober_request(const struct config_upstream *up, bool https,
    const char *name, const char *path, char *buf, size_t size)
{
	char host[CONFIG_HOST_MAX + 16];
	uint16_t port = addr_port(up);
	const char *h = name != NULL ? name : up->host;
	bool v6 = strchr(h, ':') != NULL;
	int n;

	if (port == 0 || !config_health_path_ok(path))
		return -1;
	if (port == (https ? 443 : 80))
		n = snprintf(host, sizeof(host), v6 ? "[%s]" : "%s", h);
	else
		n = snprintf(host, sizeof(host), v6 ? "[%s]:%u" : "%s:%u",
		    h, port);
	if (n < 0 || (size_t)n >= sizeof(host) ||
	    !http1_is_host(host, (size_t)n))
		return -1;
	n = snprintf(buf, size, "GET %s HTTP/1.1\r\nHost: %s\r\n"
	    "User-Agent: portcullis-prober\r\nConnection: close\r\n\r\n",
	    path, host);
	if (n < 0 || (size_t)n >= size)
		return -1;
	return n;
}

enum prober_judgement
prober_judge(struct http1_parser *p, const char *buf, size_t len, bool eof,
    uint16_t min, uint16_t max, char *why, size_t whysz)
{
	struct http1_limits lim;
	struct http1_response resp;
	int rc;

	http1_limits_default(&lim);
	lim.max_head = PROBER_HEAD_MAX;
	lim.max_headers = HTTP1_MAX_HEADERS;
	rc = http1_parse_response(p, buf, len, &lim, HTTP1_METHOD_GET, &resp);
	if (rc == HTTP1_DONE) {
		if (resp.status >= min && resp.status <= max)
			return PROBER_PASS;
		snprintf(why, whysz, "status %d", resp.status);
		return PROBER_FAIL;
	}
	if (rc < 0) {
		snprintf(why, whysz, "malformed response head (%s)",
		    http1_strerror(rc));
		return PROBER_FAIL;
	}
	if (len >= PROBER_HEAD_MAX) {
		snprintf(why, whysz, "response head over %d bytes",
		    PROBER_HEAD_MAX);
		return PROBER_FAIL;
	}
	if (eof) {
		snprintf(why, whysz, "closed %s the response head",
		    len == 0 ? "before" : "in");
		return PROBER_FAIL;
	}
	return PROBER_MORE;
}

bool
prober_count(struct prober_tally *t, bool pass, unsigned passes,
    unsigned fails)
{
	unsigned *run = pass ? &t->good : &t->bad;
	unsigned need = pass ? passes : fails;
	unsigned to = pass ? UPSTATE_CHECK_UP : UPSTATE_CHECK_DOWN;

	*(pass ? &t->bad : &t->good) = 0;
	if (*run < UINT32_MAX)
		(*run)++;
	if (t->verdict == to || *run < need)
		return false;
	t->verdict = to;
	return true;
}

uint64_t
prober_offset_ms(size_t rank, size_t n, unsigned interval)
{
	if (n == 0 || rank >= n)
		return 0;
	return (uint64_t)interval * 1000 * rank / n;
}

/* ---- the process ---- */

enum probe_state {
	PROBE_IDLE = 0,
	PROBE_CONNECTING,
	PROBE_HANDSHAKE,	/* https: the TLS handshake */
	PROBE_SENDING,
	PROBE_READING,
};

/* A check in flight. */
struct probe {
	enum probe_state	 state;
	int			 fd;		/* -1: none */
	struct uptls_conn	*tls;		/* https: the session on fd */
	uint64_t		 began;		/* upstate_now_ms() */
	int			 err;		/* the connect failed at once */
	size_t			 sent;
	char			*buf;		/* PROBER_HEAD_MAX bytes */
	size_t			 len;
	bool			 eof;
	struct http1_parser	 parser;
};

struct prober;

struct target {
	uint32_t		 magic;
	struct prober		*pr;
	uint32_t		 slot;
	char			*key;		/* upstate_key(): its identity */
	char			*what;		/* for log lines */
	struct sockaddr_storage	 addr;
	socklen_t		 addrlen;
	char			*req;		/* the request of a check */
	size_t			 reqlen;
	/* upstream-proxy-protocol: the header first (pplen 0: none). */
	unsigned char		 pp[PROXYHDR_LOCAL_MAX];
	size_t			 pplen;
	struct uptls_backend	*tls;		/* https: a copy, else NULL */
	char			*host;		/* https: of the address */
	uint64_t		 tag;		/* https: uptls_tag(), else 0 */
	unsigned		 interval;	/* seconds */
	unsigned		 timeout;	/* seconds */
	unsigned		 passes;
	unsigned		 fails;
	unsigned		 max_fails;	/* passive health's */
	unsigned		 fail_timeout;
	uint16_t		 status_min;
	uint16_t		 status_max;
	struct prober_tally	 tally;
	struct probe		 probe;
	ev_timer		 next_w;	/* the next check */
	ev_timer		 timeout_w;	/* the one in flight */
	ev_io			 io_w;
	bool			 started;	/* watchers set up */
	bool			 queued;	/* waits for a free turn */
	bool			 due;		/* due while still in flight */
	bool			 fresh;		/* (re)scheduled by this load */
	bool			 kept;		/* by this load */
	TAILQ_ENTRY(target)	 entry;		/* in the queue */
};

TAILQ_HEAD(target_queue, target);

struct prober {
	struct ev_loop		*loop;
	struct shm		 shm;
	struct upstate		 ups;
	struct uptls_cache	*cache;		/* TLS sessions to resume */
	char			 why[320];	/* prober_load's */
	uint64_t		 gen;		/* the generation it checks */
	struct target		**t;		/* sorted by slot */
	size_t			 nt;
	struct target_queue	 queue;
	unsigned		 inflight;
	ev_io			 control_w;
	struct control_child	 control;	/* control_w's */
	ev_signal		 sigterm_w;
	ev_signal		 sigint_w;
};

static struct prober P;

static void	probe_start(struct target *);
static void	probe_watch(struct target *);
static void	io_cb(struct ev_loop *, ev_io *, int);
static void	timeout_cb(struct ev_loop *, ev_timer *, int);
static void	next_cb(struct ev_loop *, ev_timer *, int);

static struct target *
target_of(void *data)
{
	struct target *t = data;

	if (t == NULL || t->magic != TARGET_MAGIC)
		fatalx("prober: corrupt target");
	return t;
}

/*
 * The check's connection: the only functions that know what it runs
 * over.  conn_open starts it (the socket, or -1 with errno);
 * conn_connected, once connected, sends the PROXY header of a backend
 * that wants one and starts the TLS session of an https backend (0, or
 * -1 with why) and conn_handshake makes its
 * handshake (1 done, or nothing to do; 0 wait; -1 failed, why in *why);
 * conn_send writes what is left of the request (1 all sent, 0 try again
 * when ready, -1 with why); conn_recv reads (bytes, 0 at EOF, -1 with
 * errno and why; EAGAIN: wait); conn_events says what to wait for;
 * conn_close ends it.
 */
static int
conn_open(struct target *t)
{
	return upstream_connect((const struct sockaddr *)&t->addr,
	    t->addrlen);
}

static int
conn_connected(struct target *t, char *why, size_t whysz)
{
	struct probe *p = &t->probe;
	ssize_t n;

	/* In one send, as the spec asks: a new connection takes 16 bytes. */
	if (t->pplen > 0) {
		do
			n = send(p->fd, t->pp, t->pplen, MSG_NOSIGNAL);
		while (n == -1 && errno == EINTR);
		if (n != (ssize_t)t->pplen) {
			snprintf(why, whysz, "PROXY header: %s", n == -1 ?
			    strerror(errno) : "not sent at once");
			return -1;
		}
	}
	if (t->tls == NULL)
		return 0;
	p->tls = uptls_conn_new(t->tls, t->pr->cache, p->fd,
	    (const struct sockaddr *)&t->addr, t->addrlen, t->host, t->tag);
	if (p->tls == NULL) {
		snprintf(why, whysz, "TLS: out of memory");
		return -1;
	}
	return 0;
}

static int
conn_handshake(struct target *t, const char **why)
{
	int rc;

	if (t->probe.tls == NULL)
		return 1;
	if ((rc = uptls_handshake(t->probe.tls)) == -1)
		*why = uptls_error(t->probe.tls);
	else if (rc == 1)
		log_debug("upstream %s health check: TLS session %s", t->what,
		    uptls_resumed(t->probe.tls) ? "resumed" : "new");
	return rc;
}

static int
conn_send(struct target *t, const char **why)
{
	struct probe *p = &t->probe;
	ssize_t n;

	while (p->sent < t->reqlen) {
		if (p->tls != NULL) {
			n = uptls_write(p->tls, t->req + p->sent,
			    t->reqlen - p->sent);
			if (n == TLS_AGAIN)
				return 0;
			if (n == -1) {
				*why = uptls_error(p->tls);
				return -1;
			}
		} else if ((n = send(p->fd, t->req + p->sent,
		    t->reqlen - p->sent, MSG_NOSIGNAL)) == -1) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return 0;
			*why = strerror(errno);
			return -1;
		}
		p->sent += (size_t)n;
	}
	return 1;
}

static ssize_t
conn_recv(struct target *t, char *buf, size_t len, const char **why)
{
	struct probe *p = &t->probe;
	ssize_t n;

	if (p->tls != NULL) {
		if ((n = uptls_read(p->tls, buf, len)) == TLS_AGAIN) {
			errno = EAGAIN;
			return -1;
		}
		if (n == -1) {
			*why = uptls_error(p->tls);
			errno = EPROTO;
		}
		return n;
	}
	do
		n = recv(p->fd, buf, len, 0);
	while (n == -1 && errno == EINTR);
	if (n == -1)
		*why = strerror(errno);
	return n;
}

/* Whether what is read so far leaves more inside (TLS: decrypted). */
static bool
conn_pending(const struct target *t)
{
	return t->probe.tls != NULL && uptls_pending(t->probe.tls);
}

/* The socket was seen readable. */
static void
conn_readable(struct target *t)
{
	if (t->probe.tls != NULL)
		uptls_readable(t->probe.tls);
}

/* What the check waits for in its state. */
static int
conn_events(const struct target *t)
{
	const struct probe *p = &t->probe;

	switch (p->state) {
	case PROBE_CONNECTING:
		return EV_WRITE;
	case PROBE_HANDSHAKE:
		return uptls_want_write(p->tls) ? EV_WRITE : EV_READ;
	case PROBE_SENDING:
		if (p->tls != NULL)
			return uptls_want_write(p->tls) ? EV_WRITE : EV_READ;
		return EV_WRITE;
	default:
		return EV_READ;
	}
}

static void
conn_close(struct target *t)
{
	uptls_conn_free(t->probe.tls);
	t->probe.tls = NULL;
	if (t->probe.fd != -1)
		close(t->probe.fd);
	t->probe.fd = -1;
}

/* The check in flight is over, whatever its result: free what it held. */
static void
probe_clear(struct target *t)
{
	struct prober *pr = t->pr;

	if (t->probe.state == PROBE_IDLE)
		return;
	ev_io_stop(pr->loop, &t->io_w);
	ev_timer_stop(pr->loop, &t->timeout_w);
	conn_close(t);
	free(t->probe.buf);
	memset(&t->probe, 0, sizeof(t->probe));
	t->probe.fd = -1;
	pr->inflight--;
}

/* Checks that waited for a turn take the free ones. */
static void
queue_run(struct prober *pr)
{
	struct target *t;

	while (pr->inflight < PROBER_MAX_INFLIGHT &&
	    (t = TAILQ_FIRST(&pr->queue)) != NULL) {
		TAILQ_REMOVE(&pr->queue, t, entry);
		t->queued = false;
		probe_start(t);
	}
}

static void
unqueue(struct target *t)
{
	if (!t->queued)
		return;
	TAILQ_REMOVE(&t->pr->queue, t, entry);
	t->queued = false;
}

/* A check is due: made now, or when a turn is free. */
static void
check_due(struct target *t)
{
	struct prober *pr = t->pr;

	if (t->probe.state != PROBE_IDLE) {
		t->due = true;		/* right after the one in flight */
		return;
	}
	if (t->queued)
		return;
	if (pr->inflight >= PROBER_MAX_INFLIGHT) {
		TAILQ_INSERT_TAIL(&pr->queue, t, entry);
		t->queued = true;
		return;
	}
	probe_start(t);
}

/* The verdict the table holds must be ours (a worker may write it). */
static void
verdict_store(struct target *t, bool changed)
{
	struct upstate *u = &t->pr->ups;

	if (changed || upstate_check(u, t->slot) != t->tally.verdict)
		upstate_check_set(u, t->slot, t->tally.verdict,
		    upstate_now_ms());
}

/* A check is over: count it, say so if the verdict changed. */
static void
probe_end(struct target *t, bool pass, const char *why)
{
	struct prober *pr = t->pr;
	uint64_t began;
	bool changed;

	began = t->probe.began;
	probe_clear(t);
	changed = prober_count(&t->tally, pass, t->passes, t->fails);
	verdict_store(t, changed);
	/* A check is a request the upstream answered: it ends a passive
	   mark made before it began, as a trial request would. */
	if (pass && t->max_fails > 0 &&
	    t->tally.verdict != UPSTATE_CHECK_DOWN &&
	    upstate_check_passed(&pr->ups, t->slot, began, t->fail_timeout))
		log_warnx("upstream %s is up again: a health check passed",
		    t->what);
	if (changed && t->tally.verdict == UPSTATE_CHECK_DOWN)
		log_warnx("upstream %s health check: down after %u failed "
		    "check%s, the last: %s", t->what, t->tally.bad,
		    t->tally.bad == 1 ? "" : "s", why);
	else if (changed)
		log_warnx("upstream %s health check: up after %u good check%s",
		    t->what, t->tally.good, t->tally.good == 1 ? "" : "s");
	else
		log_debug("upstream %s health check: %s%s%s", t->what,
		    pass ? "good" : "failed", pass ? "" : ": ",
		    pass ? "" : why);
	queue_run(pr);
	if (t->due) {
		t->due = false;
		check_due(t);
	}
}

static void
probe_start(struct target *t)
{
	struct prober *pr = t->pr;
	struct probe *p = &t->probe;

	ev_timer_stop(pr->loop, &t->next_w);
	ev_timer_set(&t->next_w, (double)t->interval, 0.);
	ev_timer_start(pr->loop, &t->next_w);
	memset(p, 0, sizeof(*p));
	p->began = upstate_now_ms();
	pr->inflight++;
	p->state = PROBE_CONNECTING;
	if ((p->buf = malloc(PROBER_HEAD_MAX)) == NULL ||
	    (p->fd = conn_open(t)) == -1) {
		/* Ended from the loop, never from here (queue_run calls us). */
		p->err = errno != 0 ? errno : ENOMEM;
		p->fd = -1;
		ev_timer_set(&t->timeout_w, 0., 0.);
		ev_timer_start(pr->loop, &t->timeout_w);
		return;
	}
	probe_watch(t);
	ev_timer_set(&t->timeout_w, (double)t->timeout, 0.);
	ev_timer_start(pr->loop, &t->timeout_w);
}

static void
timeout_cb(struct ev_loop *loop UNUSED, ev_timer *w, int revents UNUSED)
{
	struct target *t = target_of(w->data);
	char why[128];

	if (t->probe.err != 0)
		snprintf(why, sizeof(why), "connect: %s",
		    strerror(t->probe.err));
	else if (t->probe.state == PROBE_CONNECTING)
		snprintf(why, sizeof(why), "connect: timed out after %u s",
		    t->timeout);
	else if (t->probe.state == PROBE_HANDSHAKE)
		snprintf(why, sizeof(why), "TLS handshake: timed out after "
		    "%u s", t->timeout);
	else
		snprintf(why, sizeof(why), "no response head within %u s",
		    t->timeout);
	probe_end(t, false, why);
}

/* What was read so far, judged: until the socket has no more, or (TLS)
   nothing decrypted is left inside.  Whether the check is over. */
static bool
probe_read(struct target *t)
{
	struct probe *p = &t->probe;
	enum prober_judgement j;
	const char *err = "";
	char why[600];
	ssize_t n;

	do {
		n = conn_recv(t, p->buf + p->len, PROBER_HEAD_MAX - p->len,
		    &err);
		if (n == -1 && errno == EAGAIN)
			return false;
		if (n == -1) {
			snprintf(why, sizeof(why), "read: %s", err);
			probe_end(t, false, why);
			return true;
		}
		p->len += (size_t)n;
		p->eof = n == 0;
		j = prober_judge(&p->parser, p->buf, p->len, p->eof,
		    t->status_min, t->status_max, why, sizeof(why));
		if (j != PROBER_MORE) {
			probe_end(t, j == PROBER_PASS, why);
			return true;
		}
	} while (conn_pending(t));
	return false;
}

/* Wait for what the check's state needs. */
static void
probe_watch(struct target *t)
{
	ev_io *w = &t->io_w;

	ev_io_stop(t->pr->loop, w);
	ev_io_set(w, t->probe.fd, conn_events(t));
	ev_io_start(t->pr->loop, w);
}

static void
io_cb(struct ev_loop *loop UNUSED, ev_io *w, int revents)
{
	struct target *t = target_of(w->data);
	struct probe *p = &t->probe;
	const char *err = "";
	char why[600];
	int rc;

	if (revents & EV_READ)
		conn_readable(t);
	switch (p->state) {
	case PROBE_CONNECTING:
		if ((rc = upstream_connect_result(p->fd)) != 0) {
			snprintf(why, sizeof(why), "connect: %s",
			    strerror(rc));
			probe_end(t, false, why);
			return;
		}
		if (conn_connected(t, why, sizeof(why)) == -1) {
			probe_end(t, false, why);
			return;
		}
		p->state = PROBE_HANDSHAKE;
		/* FALLTHROUGH */
	case PROBE_HANDSHAKE:
		if ((rc = conn_handshake(t, &err)) == -1) {
			/* Copied: err is the session's, which ends first. */
			snprintf(why, sizeof(why), "%s", err);
			probe_end(t, false, why);
			return;
		}
		if (rc == 0)
			break;
		p->state = PROBE_SENDING;
		/* FALLTHROUGH */
	case PROBE_SENDING:
		if ((rc = conn_send(t, &err)) == -1) {
			snprintf(why, sizeof(why), "send: %s", err);
			probe_end(t, false, why);
			return;
		}
		if (rc == 0)
			break;
		p->state = PROBE_READING;
		/* The answer may be inside already (TLS). */
		if (!conn_pending(t))
			break;
		/* FALLTHROUGH */
	case PROBE_READING:
		if (probe_read(t))
			return;
		break;
	default:
		fatalx("prober: event on a target with no check in flight");
	}
	probe_watch(t);
}

static void
next_cb(struct ev_loop *loop UNUSED, ev_timer *w, int revents UNUSED)
{
	check_due(target_of(w->data));
}

/* ---- targets, per generation ---- */

static void
target_free(struct target *t)
{
	if (t == NULL)
		return;
	if (t->started) {
		probe_clear(t);
		unqueue(t);
		ev_timer_stop(t->pr->loop, &t->next_w);
	}
	free(t->key);
	free(t->what);
	free(t->req);
	uptls_backend_free(t->tls);
	free(t->host);
	t->magic = 0;
	free(t);
}

static void
targets_free(struct target **t, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		target_free(t[i]);
	free(t);
}

struct build {
	struct prober	*pr;
	const struct uptls_ctx *tls;	/* the generation's */
	struct target	**t;
	size_t		 n;
	size_t		 cap;
	bool		 err;
};

static struct target *
target_new(struct prober *pr, const struct uptls_ctx *ctx,
    const struct config_listener *l, const struct config_site *site,
    const struct config_path *path, const struct config_backend *be,
    const struct config_upstream *up, bool *oom)
{
	const struct config_health *h = &be->health;
	bool https = be->scheme == CONFIG_SCHEME_HTTPS;
	const struct uptls_backend *tls = uptls_ctx_backend(ctx, be);
	char req[PROBER_REQUEST_MAX], addr[64];
	struct target *t;
	int n;

	*oom = true;
	if (https && tls == NULL) {
		log_warnx("upstream %s (site %s): no TLS settings to check it "
		    "with", up->name, site->host);
		*oom = false;
		return NULL;
	}
	if ((n = prober_request(up, https, https ? be->server_name : NULL,
	    h->path, req, sizeof(req))) == -1) {
		log_warnx("upstream %s (site %s): no health check can be sent "
		    "to it", up->name, site->host);
		*oom = false;
		return NULL;
	}
	if ((t = calloc(1, sizeof(*t))) == NULL)
		return NULL;
	t->magic = TARGET_MAGIC;
	t->pr = pr;
	t->slot = up->slot;
	upstream_describe((const struct sockaddr *)&up->addr, addr,
	    sizeof(addr));
	if (asprintf(&t->what, "%s (%s, site %s%s%s)", addr, up->name,
	    site->host, path != NULL ? " path " : "", path != NULL ?
	    path->prefix : "") == -1)
		t->what = NULL;
	if (t->what == NULL || (t->key = upstate_key(l, site, path, up)) ==
	    NULL || (t->req = malloc((size_t)n)) == NULL) {
		target_free(t);
		return NULL;
	}
	memcpy(t->req, req, (size_t)n);
	t->reqlen = (size_t)n;
	if (be->proxy_protocol != CONFIG_PROXY_NONE &&
	    (t->pplen = proxyhdr_local((int)be->proxy_protocol, t->pp,
	    sizeof(t->pp))) == 0)
		fatalx("prober: no PROXY header for a backend that sends one");
	if (https) {
		if ((t->tls = uptls_backend_copy(tls)) == NULL ||
		    (t->host = strdup(up->host)) == NULL) {
			target_free(t);
			return NULL;
		}
		t->tag = uptls_tag(tls, up->host);
	}
	memcpy(&t->addr, &up->addr, up->addrlen);
	t->addrlen = up->addrlen;
	t->interval = h->interval;
	t->timeout = h->timeout;
	t->passes = h->passes;
	t->fails = h->fails;
	t->max_fails = be->max_fails;
	t->fail_timeout = be->fail_timeout;
	t->status_min = h->status_min;
	t->status_max = h->status_max;
	t->probe.fd = -1;
	return t;
}

static void
collect(void *arg, const struct config_listener *l,
    const struct config_site *site, const struct config_path *path,
    struct config_backend *be)
{
	struct build *b = arg;
	struct target *t;
	size_t i;
	bool oom;

	if (!be->health.on)
		return;
	for (i = 0; i < be->nups && !b->err; i++) {
		if (b->n == b->cap) {
			b->err = true;
			return;
		}
		/* An upstream no check can be sent to is not checked. */
		if ((t = target_new(b->pr, b->tls, l, site, path, be,
		    &be->ups[i], &oom)) != NULL)
			b->t[b->n++] = t;
		else if (oom)
			b->err = true;
	}
}

static int
slot_cmp(const void *a, const void *b)
{
	const struct target *x = *(const struct target *const *)a;
	const struct target *y = *(const struct target *const *)b;

	return x->slot < y->slot ? -1 : x->slot > y->slot;
}

/* The target of pr's table in n's slot with n's key, or NULL. */
static struct target *
find_old(struct prober *pr, const struct target *n)
{
	struct target **o;

	if (pr->nt == 0)
		return NULL;
	o = bsearch(&n, pr->t, pr->nt, sizeof(*pr->t), slot_cmp);
	return o != NULL && strcmp((*o)->key, n->key) == 0 ? *o : NULL;
}

/* Whether a check of n is made exactly as one of o. */
static bool
same_check(const struct target *o, const struct target *n)
{
	return o->addrlen == n->addrlen &&
	    memcmp(&o->addr, &n->addr, n->addrlen) == 0 && o->tag == n->tag &&
	    o->reqlen == n->reqlen && memcmp(o->req, n->req, n->reqlen) == 0 &&
	    o->pplen == n->pplen && memcmp(o->pp, n->pp, n->pplen) == 0 &&
	    o->interval == n->interval && o->timeout == n->timeout &&
	    o->status_min == n->status_min && o->status_max == n->status_max;
}

/*
 * o stays, as n says: its counters and verdict are kept; a check made
 * differently now is abandoned and the next one scheduled anew.  n
 * leaves with o's old strings.
 */
static void
target_update(struct target *o, struct target *n)
{
	char *s;

	struct uptls_backend *tls;

	o->passes = n->passes;
	o->fails = n->fails;
	o->max_fails = n->max_fails;
	o->fail_timeout = n->fail_timeout;
	s = o->what;
	o->what = n->what;
	n->what = s;
	/* The generation's TLS settings (a check in flight holds its own
	   reference to the credential it was made with). */
	tls = o->tls;
	o->tls = n->tls;
	n->tls = tls;
	s = o->host;
	o->host = n->host;
	n->host = s;
	if (same_check(o, n))
		return;
	o->tag = n->tag;
	probe_clear(o);
	unqueue(o);
	o->due = false;
	s = o->req;
	o->req = n->req;
	n->req = s;
	o->reqlen = n->reqlen;
	memcpy(o->pp, n->pp, sizeof(o->pp));
	o->pplen = n->pplen;
	memcpy(&o->addr, &n->addr, sizeof(o->addr));
	o->addrlen = n->addrlen;
	o->interval = n->interval;
	o->timeout = n->timeout;
	o->status_min = n->status_min;
	o->status_max = n->status_max;
	o->fresh = true;
}

/* A new target: its watchers, and the verdict the table holds. */
static void
target_init(struct target *t)
{
	ev_timer_init(&t->next_w, next_cb, 0., 0.);
	t->next_w.data = t;
	ev_timer_init(&t->timeout_w, timeout_cb, 0., 0.);
	t->timeout_w.data = t;
	ev_io_init(&t->io_w, io_cb, -1, EV_READ);
	t->io_w.data = t;
	t->started = true;
	t->tally.verdict = upstate_check(&t->pr->ups, t->slot);
	t->fresh = true;
}

/*
 * The targets of cfg replace pr's: those kept go on (target_update),
 * those gone stop and clear the verdict they left (a later generation
 * that checks the upstream again starts afresh; the master clears it
 * too), the new ones start from the table's verdict (NONE for a slot the
 * master gave out anew; what a prober before us found, when we were
 * respawned).  The first checks of those (re)scheduled are spread over
 * their interval.  0, or -1 (out of memory: pr's table unchanged).
 */
static int
targets_apply(struct prober *pr, const struct config *cfg,
    const struct uptls_ctx *tls)
{
	struct build b = { pr, tls, NULL, 0, 0, false };
	struct target *o, **match;
	size_t i, j, nfresh = 0, rank = 0;

	b.cap = config_upstream_count(cfg);
	if ((b.t = calloc(b.cap + 1, sizeof(*b.t))) == NULL)
		return -1;
	config_foreach_backend(cfg, collect, &b);
	if (b.err) {
		targets_free(b.t, b.n);
		return -1;
	}
	qsort(b.t, b.n, sizeof(*b.t), slot_cmp);
	/* One target per slot (an image names each once). */
	for (i = j = 0; i < b.n; i++) {
		if (j > 0 && b.t[j - 1]->slot == b.t[i]->slot)
			target_free(b.t[i]);
		else
			b.t[j++] = b.t[i];
	}
	b.n = j;
	if ((match = calloc(b.n + 1, sizeof(*match))) == NULL) {
		targets_free(b.t, b.n);
		return -1;
	}
	for (i = 0; i < pr->nt; i++)
		pr->t[i]->kept = false;
	for (i = 0; i < b.n; i++)
		if ((match[i] = find_old(pr, b.t[i])) != NULL)
			match[i]->kept = true;
	/* Gone: stop, and clear what they said, before a new target of
	   the same slot reads it. */
	for (i = 0; i < pr->nt; i++) {
		o = pr->t[i];
		if (o->kept)
			continue;
		if (upstate_check(&pr->ups, o->slot) != UPSTATE_CHECK_NONE)
			upstate_check_set(&pr->ups, o->slot,
			    UPSTATE_CHECK_NONE, 0);
		target_free(o);
	}
	for (i = 0; i < b.n; i++) {
		if ((o = match[i]) != NULL) {
			o->fresh = false;
			target_update(o, b.t[i]);
			target_free(b.t[i]);
			b.t[i] = o;
		} else
			target_init(b.t[i]);
		if (b.t[i]->fresh)
			nfresh++;
	}
	free(match);
	free(pr->t);
	pr->t = b.t;
	pr->nt = b.n;
	for (i = 0; i < pr->nt; i++) {
		o = pr->t[i];
		if (!o->fresh)
			continue;
		o->fresh = false;
		ev_timer_stop(pr->loop, &o->next_w);
		ev_timer_set(&o->next_w, (double)prober_offset_ms(rank++,
		    nfresh, o->interval) / 1000., 0.);
		ev_timer_start(pr->loop, &o->next_w);
	}
	/* Checks dropped above free turns for those waiting. */
	queue_run(pr);
	return 0;
}

/* ---- generations, the master, the loop ---- */

/*
 * Check what the newest generation says, if it is newer than ours.  0, or
 * -1 with why.  The master does not wait for us before it publishes the
 * next one, which may take the slot we copy from: then the copy fails and
 * the next try takes the newer generation.
 */
static int
prober_load(struct prober *pr, const char **why)
{
	unsigned char *img = NULL;
	struct uptls_ctx *tls;
	struct config *cfg;
	char err[256];
	uint64_t got = 0;
	size_t len = 0;
	int i, rc;

	for (i = 0; i < LOAD_TRIES; i++)
		if (shm_copy_image(&pr->shm, 0, &img, &len, &got, NULL,
		    NULL) == 0)
			break;
	if (i == LOAD_TRIES) {
		*why = "generation not in its slot";
		return -1;
	}
	if (got <= pr->gen) {
		explicit_bzero(img, len);
		free(img);
		return 0;
	}
	rc = image_decode(img, len, &cfg, &got);
	explicit_bzero(img, len);
	free(img);
	if (rc == -1) {
		*why = "malformed config image";
		return -1;
	}
	if (pr->gen == 0)
		log_configure(cfg->log_level, cfg->log_format);
	/* What we keep is the targets (with copies of their TLS settings):
	   the keys go with the config. */
	if ((tls = uptls_ctx_new(cfg, err, sizeof(err))) == NULL) {
		config_free(cfg);
		snprintf(pr->why, sizeof(pr->why), "upstream TLS: %s", err);
		*why = pr->why;
		return -1;
	}
	rc = targets_apply(pr, cfg, tls);
	uptls_ctx_free(tls);
	config_free(cfg);
	if (rc == -1) {
		*why = "out of memory";
		return -1;
	}
	pr->gen = got;
	log_debug("generation %llu: %zu upstreams to check",
	    (unsigned long long)got, pr->nt);
	return 0;
}

static uint64_t
config_cb(void *arg, uint64_t gen, const char **why)
{
	struct prober *pr = arg;

	if (gen > pr->gen && prober_load(pr, why) == -1)
		return 0;
	return pr->gen;
}

/* Checks in flight are dropped: nothing is lost. */
static void
drain_cb(void *arg, const char *why)
{
	struct prober *pr = arg;

	log_info("stopping (%s)", why);
	ev_break(pr->loop, EVBREAK_ALL);
}

static void
control_cb(struct ev_loop *loop, ev_io *w, int revents UNUSED)
{
	if (control_child_read(w->data) == 0)
		ev_io_stop(loop, w);
}

static void
signal_cb(struct ev_loop *loop, ev_signal *w UNUSED, int revents UNUSED)
{
	ev_break(loop, EVBREAK_ALL);
}

void
prober_main(void)
{
	struct prober *pr = &P;
	enum sandbox_mode sb = sandbox_mode_from_env();
	struct control_msg m;
	const char *why;
	size_t size;
	void *mem;

	log_init("prober", -1);
	(void)log_journal_detect();	/* before the sandbox (log.h) */
	control_child_check(WORKER_FD_CONTROL, WORKER_FD_REPORT, PROBER_ENV);
	signcli_child_check(WORKER_FD_SIGNER, PROBER_ENV);
	unsetenv(PROBER_ENV);
	if (privs_worker_drop(true) == -1)
		fatal("cannot drop privileges");
	if (shm_attach(&pr->shm, WORKER_FD_CONFIG, WORKER_FD_STATE) == -1)
		fatal("shared segment");
	mem = shm_upstate(&pr->shm, &size);
	upstate_attach(&pr->ups, mem, size, CONFIG_MAX_WORKERS, UINT32_MAX);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGUSR1, SIG_IGN);
	if ((pr->loop = ev_default_loop(EVBACKEND_EPOLL)) == NULL)
		fatalx("cannot start the event loop");
	TAILQ_INIT(&pr->queue);
	if ((pr->cache = uptls_cache_new()) == NULL)
		fatalx("out of memory");
	if (prober_load(pr, &why) == -1)
		fatalx("cannot load the configuration: %s", why);
	pr->control = (struct control_child){ WORKER_FD_CONTROL,
	    WORKER_FD_REPORT, config_cb, drain_cb, pr };
	ev_io_init(&pr->control_w, control_cb, WORKER_FD_CONTROL, EV_READ);
	pr->control_w.data = &pr->control;
	ev_io_start(pr->loop, &pr->control_w);
	ev_signal_init(&pr->sigterm_w, signal_cb, SIGTERM);
	ev_signal_start(pr->loop, &pr->sigterm_w);
	ev_signal_init(&pr->sigint_w, signal_cb, SIGINT);
	ev_signal_start(pr->loop, &pr->sigint_w);
	if (sandbox_apply(SANDBOX_PROBER, sb) == -1)
		fatal("cannot install the sandbox");

	memset(&m, 0, sizeof(m));
	m.type = CONTROL_READY;
	m.gen = pr->gen;
	m.pid = (uint32_t)getpid();
	control_child_report(WORKER_FD_REPORT, &m);
	log_info("checking %zu upstreams of generation %llu", pr->nt,
	    (unsigned long long)pr->gen);

	ev_run(pr->loop, 0);

	log_info("exiting");
	targets_free(pr->t, pr->nt);
	uptls_cache_free(pr->cache);
	shm_close(&pr->shm);
	ev_loop_destroy(pr->loop);
	exit(0);
}
