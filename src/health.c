/*
 * health.c - the health endpoint (see health.h).
 *
 * A small plain-HTTP/1.1 server: the strict parser, keep-alive and
 * pipelining, one fixed answer for /health and the metrics for /metrics
 * (made by the caller's callback at each request, in a buffer this
 * connection owns until it is sent).  Anything malformed gets its status
 * code and the connection closed.
 */
#include "autoconf.h"

#include <sys/socket.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>

#include "conns.h"
#include "health.h"
#include "http1.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#define HEALTH_MAGIC	0x484c5448u	/* "HLTH" */

enum health_state {
	HS_READING,		/* waiting for a request head */
	HS_WRITING,		/* a response is (partly) unsent */
};

struct health_conn {
	uint32_t		 magic;
	struct worker_conn	 wc;
	struct ev_loop		*loop;
	struct conns		*conns;
	int			 fd;
	enum health_state	 state;
	ev_io			 io;
	ev_timer		 timer;
	struct http1_parser	 parser;
	char			 buf[HEALTH_BUF];
	size_t			 len;
	const char		*out;
	size_t			 outlen;
	char			*dyn;		/* a /metrics answer, or NULL */
	health_metrics_fn	*metrics;
	void			*metrics_arg;
	bool			 close_after;
	bool			 draining;
};

static void	health_read_cb(struct ev_loop *, ev_io *, int);
static void	health_write_cb(struct ev_loop *, ev_io *, int);
static void	health_process(struct health_conn *);

static struct health_conn *
conn_of(void *data)
{
	struct health_conn *c = data;

	if (c == NULL || c->magic != HEALTH_MAGIC)
		fatalx("health: corrupt connection");
	return c;
}

static void
health_close(struct health_conn *c, const char *reason)
{
	struct ev_loop *loop = c->loop;

	log_debug("health: closing connection: %s", reason);
	ev_io_stop(loop, &c->io);
	ev_timer_stop(loop, &c->timer);
	close(c->fd);
	free(c->dyn);
	c->magic = 0;
	conns_del(c->conns, &c->wc);
	free(c);
}

static void
set_state(struct health_conn *c, enum health_state s)
{
	struct ev_loop *loop = c->loop;

	c->state = s;
	ev_io_stop(loop, &c->io);
	if (s == HS_READING)
		ev_io_init(&c->io, health_read_cb, c->fd, EV_READ);
	else
		ev_io_init(&c->io, health_write_cb, c->fd, EV_WRITE);
	c->io.data = c;
	ev_io_start(loop, &c->io);
}

/* Send what is pending; 0 when all is out, 1 if it must wait, -1 on error. */
static int
health_flush(struct health_conn *c)
{
	ssize_t n;

	while (c->outlen > 0) {
		n = send(c->fd, c->out, c->outlen, MSG_NOSIGNAL);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			return 1;
		if (n <= 0)
			return -1;
		c->out += n;
		c->outlen -= (size_t)n;
	}
	return 0;
}

static void
health_after_write(struct health_conn *c)
{
	free(c->dyn);
	c->dyn = NULL;
	if (c->close_after || c->draining) {
		health_close(c, "response sent");
		return;
	}
	/* Keep-alive: the next request may already be in the buffer. */
	ev_timer_stop(c->loop, &c->timer);
	ev_timer_set(&c->timer, HEALTH_TIMEOUT, 0.);
	ev_timer_start(c->loop, &c->timer);
	set_state(c, HS_READING);
	health_process(c);
}

static void
health_respond_len(struct health_conn *c, const char *resp, size_t len,
    bool close_after)
{
	c->out = resp;
	c->outlen = len;
	c->close_after = close_after;
	switch (health_flush(c)) {
	case 0:
		health_after_write(c);
		break;
	case 1:
		set_state(c, HS_WRITING);
		break;
	default:
		health_close(c, "write error");
	}
}

static void
health_respond(struct health_conn *c, const char *resp, bool close_after)
{
	health_respond_len(c, resp, strlen(resp), close_after);
}

static const char *
error_response(int status)
{
	switch (status) {
	case 414:
		return "HTTP/1.1 414 URI Too Long\r\nContent-Length: 0\r\n"
		    "Connection: close\r\n\r\n";
	case 417:
		return "HTTP/1.1 417 Expectation Failed\r\nContent-Length: 0"
		    "\r\nConnection: close\r\n\r\n";
	case 431:
		return "HTTP/1.1 431 Request Header Fields Too Large\r\n"
		    "Content-Length: 0\r\nConnection: close\r\n\r\n";
	case 505:
		return "HTTP/1.1 505 HTTP Version Not Supported\r\n"
		    "Content-Length: 0\r\nConnection: close\r\n\r\n";
	default:
		return "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
		    "Connection: close\r\n\r\n";
	}
}

static bool
path_is(const struct http1_request *req, const char *path)
{
	return req->path.len == strlen(path) &&
	    memcmp(req->path.p, path, req->path.len) == 0;
}

/*
 * The answer to GET or HEAD /metrics in c->dyn, its length in *len; NULL
 * if out of memory.  The body is made for HEAD too, for its length.
 */
static const char *
metrics_answer(struct health_conn *c, bool head, bool close_after,
    size_t *len)
{
	char hdr[256], *body;
	size_t blen, hlen;
	int n;

	if ((body = c->metrics(c->metrics_arg, &blen)) == NULL)
		return NULL;
	n = snprintf(hdr, sizeof(hdr), "HTTP/1.1 200 OK\r\n"
	    "Content-Type: " METRICS_CONTENT_TYPE "\r\n"
	    "Content-Length: %zu\r\nCache-Control: no-store\r\n%s\r\n",
	    blen, close_after ? "Connection: close\r\n" : "");
	if (n < 0 || (size_t)n >= sizeof(hdr)) {
		free(body);
		return NULL;
	}
	hlen = (size_t)n;
	if (head)
		blen = 0;
	free(c->dyn);
	if ((c->dyn = malloc(hlen + blen)) == NULL) {
		free(body);
		return NULL;
	}
	memcpy(c->dyn, hdr, hlen);
	memcpy(c->dyn + hlen, body, blen);
	free(body);
	*len = hlen + blen;
	return c->dyn;
}

/*
 * The answer to a well-formed request, and whether to close after it;
 * *metrics says that a 200 must carry the metrics instead.
 */
static const char *
health_answer(const struct http1_request *req, bool draining,
    bool *close_after, bool *metrics)
{
	static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n"
	    "Cache-Control: no-store\r\n\r\n";
	static const char ok_close[] = "HTTP/1.1 200 OK\r\nContent-Length: 0"
	    "\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n";
	static const char not_found[] = "HTTP/1.1 404 Not Found\r\n"
	    "Content-Length: 0\r\nConnection: close\r\n\r\n";
	static const char bad_method[] = "HTTP/1.1 405 Method Not Allowed\r\n"
	    "Allow: GET, HEAD\r\nContent-Length: 0\r\nConnection: close\r\n"
	    "\r\n";
	static const char has_body[] = "HTTP/1.1 413 Content Too Large\r\n"
	    "Content-Length: 0\r\nConnection: close\r\n\r\n";

	*close_after = true;
	*metrics = false;
	/* A body would have to be read and thrown away: refuse it. */
	if (req->body == HTTP1_BODY_CHUNKED ||
	    (req->body == HTTP1_BODY_LENGTH && req->content_length > 0))
		return has_body;
	if (!path_is(req, "/health") && !path_is(req, "/metrics"))
		return not_found;
	if (req->method != HTTP1_METHOD_GET && req->method != HTTP1_METHOD_HEAD)
		return bad_method;
	*metrics = path_is(req, "/metrics");
	/* Draining: tell the client this connection ends here. */
	*close_after = !req->keep_alive || draining;
	return *close_after ? ok_close : ok;
}

/* Parse what is buffered and answer one request if it is complete. */
static void
health_process(struct health_conn *c)
{
	struct http1_limits lim;
	struct http1_request req;
	static const char unavailable[] = "HTTP/1.1 503 Service Unavailable"
	    "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
	const char *resp;
	size_t len;
	bool close_after, metrics;
	int rc;

	if (c->len == 0)
		return;
	http1_limits_default(&lim);
	lim.max_request_line = HEALTH_BUF / 2;
	lim.max_head = sizeof(c->buf);
	rc = http1_parse_request(&c->parser, c->buf, c->len, &lim, &req);
	if (rc == HTTP1_INCOMPLETE) {
		if (c->len == sizeof(c->buf))
			health_respond(c, error_response(431), true);
		return;
	}
	if (rc < 0) {
		log_debug("health: bad request: %s", http1_strerror(rc));
		health_respond(c, error_response(http1_error_status(rc)), true);
		return;
	}
	resp = health_answer(&req, c->draining, &close_after, &metrics);
	/* The metrics: the same checks as /health, another body. */
	len = strlen(resp);
	if (metrics) {
		resp = metrics_answer(c, req.method == HTTP1_METHOD_HEAD,
		    close_after, &len);
		if (resp == NULL) {
			log_warnx("health: out of memory for /metrics");
			resp = unavailable;
			len = strlen(resp);
			close_after = true;
		}
	}
	/* Pipelining: keep the bytes after this head for the next request. */
	memmove(c->buf, c->buf + req.head_len, c->len - req.head_len);
	c->len -= req.head_len;
	http1_parser_init(&c->parser);
	health_respond_len(c, resp, len, close_after);
}

static void
health_read_cb(struct ev_loop *loop UNUSED, ev_io *w, int revents UNUSED)
{
	struct health_conn *c = conn_of(w->data);
	ssize_t n;

	n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		health_close(c, n == 0 ? "client closed" : "read error");
		return;
	}
	c->len += (size_t)n;
	health_process(c);
}

static void
health_write_cb(struct ev_loop *loop UNUSED, ev_io *w, int revents UNUSED)
{
	struct health_conn *c = conn_of(w->data);

	switch (health_flush(c)) {
	case 0:
		health_after_write(c);
		break;
	case 1:
		break;
	default:
		health_close(c, "write error");
	}
}

static void
health_timeout_cb(struct ev_loop *loop UNUSED, ev_timer *w, int revents UNUSED)
{
	health_close(conn_of(w->data), "timeout");
}

static struct health_conn *
conn_of_wc(struct worker_conn *wc)
{
	return conn_of((char *)wc - offsetof(struct health_conn, wc));
}

static void
health_drain(struct worker_conn *wc)
{
	struct health_conn *c = conn_of_wc(wc);

	c->draining = true;
	if (c->state == HS_READING && c->len == 0)
		health_close(c, "draining");
}

static void
health_abort(struct worker_conn *wc)
{
	health_close(conn_of_wc(wc), "shutdown");
}

void
health_accept(struct ev_loop *loop, struct conns *conns, int fd,
    health_metrics_fn *metrics, void *metrics_arg)
{
	struct health_conn *c;

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		log_warnx("health: out of memory");
		close(fd);
		return;
	}
	c->magic = HEALTH_MAGIC;
	c->loop = loop;
	c->conns = conns;
	c->fd = fd;
	c->metrics = metrics;
	c->metrics_arg = metrics_arg;
	c->wc.nfds = 1;
	c->wc.drain = health_drain;
	c->wc.abort = health_abort;
	http1_parser_init(&c->parser);
	conns_add(conns, &c->wc);
	ev_timer_init(&c->timer, health_timeout_cb, HEALTH_TIMEOUT, 0.);
	c->timer.data = c;
	ev_timer_start(loop, &c->timer);
	set_state(c, HS_READING);
}
