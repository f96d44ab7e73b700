/*
 * h1conn.c - HTTP/1.x client connections (see h1conn.h).
 *
 * One state per connection, changed only by h1_set_state():
 *
 *   IDLE <-> HEAD -> EXCHANGE -> IDLE (keep-alive) ...
 *                                    |  \-> RESPOND (an error after all)
 *                                    \----> TUNNEL (WebSocket)
 *   any -> CLOSING (flush) -> LINGER (drain the client, briefly) -> gone
 *
 * Entry points from the event loop (h1_io_cb, h1_timer_cb, h1_up_cb) are
 * the only places a connection is freed: everything else marks it dead and
 * they free it on the way out.  The exchange calls back into us (head,
 * body, done ...); those callbacks only fill buffers and set flags, then
 * h1_defer() has the connection's own handler carry on.
 */
#include "autoconf.h"

#include <sys/socket.h>
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>

#include "buf.h"
#include "client.h"
#include "front.h"
#include "gen.h"
#include "h1conn.h"
#include "headers.h"
#include "http1.h"
#include "log.h"
#include "proxy.h"
#include "request.h"
#include "tunnel.h"
#include "tls.h"
#include "util.h"
#include "worker.h"

#define H1_MAGIC	0x48314331u	/* "H1C1" */
#define H1_OUT		(4 * PROXY_BUF)	/* a response head and some body */
/* Room kept in `out` for a chunk's framing and the last chunk. */
#define CHUNK_ROOM	32

enum h1_state {
	H1_IDLE,	/* between requests */
	H1_HEAD,	/* a request head is arriving */
	H1_EXCHANGE,	/* forwarding: the body in, the response out */
	H1_RESPOND,	/* a response of our own is going out */
	H1_TUNNEL,	/* WebSocket: bytes both ways */
	H1_CLOSING,	/* the last bytes go out */
	H1_LINGER,	/* the client's last bytes are read and dropped */
};

struct h1_conn {
	uint32_t		 magic;
	struct client		 cl;		/* socket, TLS, peer, watchers */
	enum h1_state		 state;
	int			 events;
	bool			 dead;		/* closed; freed on the way out */
	bool			 in_cb;		/* in one of our callbacks, which
						   end with h1_leave() */
	bool			 first;		/* no request yet */

	struct buf		*in;
	struct buf		*out;
	struct http1_parser	 parser;
	/* Filled by the parser at the end of a head and used only until
	   h1_request() returns: one per worker (4 KiB less per connection). */
	struct http1_request	*req;
	enum http1_method	 method;
	int			 minor;
	struct gen		*req_gen;	/* the request's routing */
	struct exchange		*ex;
	/* response-header, hide-response-header: in req_gen. */
	const struct headers_edit *resp_edit;

	/* The request body, as it goes to the exchange. */
	enum http1_body		 body;
	uint64_t		 body_left;	/* LENGTH */
	struct http1_chunked	 chunked;
	size_t			 body_pend;	/* decoded, at in's front */
	uint64_t		 body_seen;
	bool			 body_done;
	bool			 body_wait;	/* the exchange is full */

	/* The response. */
	enum headers_framing	 resp;
	bool			 resp_started;
	bool			 resp_done;	/* all of it is in out */
	bool			 resp_wait;	/* the exchange is paused */
	bool			 last_chunk;	/* "0\r\n\r\n" still to add */
	bool			 broken;	/* cut: close after what is out */
	bool			 close_after;
	bool			 client_eof;
	bool			 draining;
	bool			 logging;	/* a request awaits its log line */

	/* WebSocket: the upstream, once it said 101. */
	struct tunnel		 up;

	/* The request's log line: held from its first byte to its end. */
	struct front_log	*log;
};

static void	h1_io_cb(struct ev_loop *, ev_io *, int);
static void	log_access(struct h1_conn *);
static void	count_request(struct h1_conn *);
static void	drop_log(struct h1_conn *);
static void	h1_up_cb(struct ev_loop *, ev_io *, int);
static void	h1_advance(struct h1_conn *);
static void	h1_update(struct h1_conn *);

static const struct proxy_ops h1_proxy_ops;
static struct http1_request h1_req;

static struct h1_conn *
conn_of(void *data)
{
	struct h1_conn *c = data;

	if (c == NULL || c->magic != H1_MAGIC)
		fatalx("h1: corrupt connection");
	return c;
}

static struct ev_loop *
loop_of(const struct h1_conn *c)
{
	return worker_loop(c->cl.wk);
}

/*
 * The request's log, begun now if it has none yet.  Out of memory, the
 * worker's spare stands in: the line may mix up fields of the requests
 * that share it, but nothing is lost or overrun.
 */
static struct front_log	spare_log;

static struct front_log *
log_of(struct h1_conn *c)
{
	if (c->log == NULL &&
	    (c->log = front_log_new(ev_now(loop_of(c)))) == NULL) {
		front_log_begin(&spare_log, ev_now(loop_of(c)));
		c->log = &spare_log;
	}
	return c->log;
}

static const struct config_http *
http_cfg(const struct h1_conn *c)
{
	return &worker_gen(c->cl.wk)->cfg->http;
}

static void
h1_timer(struct h1_conn *c, double secs)
{
	c->cl.timer.repeat = secs;
	ev_timer_again(loop_of(c), &c->cl.timer);
}

static void
h1_set_state(struct h1_conn *c, enum h1_state s)
{
	const struct config_http *h = http_cfg(c);

	c->state = s;
	switch (s) {
	case H1_IDLE:
		/* A new connection must send its first request promptly. */
		h1_timer(c, c->first ? h->header_timeout : h->idle_timeout);
		break;
	case H1_HEAD:
		h1_timer(c, h->header_timeout);
		break;
	case H1_TUNNEL:
		h1_timer(c, h->tunnel_timeout);
		break;
	case H1_LINGER:
		h1_timer(c, LINGER_SECS);
		break;
	case H1_RESPOND:
	case H1_CLOSING:
		h1_timer(c, h->client_timeout);
		break;
	default:
		/* EXCHANGE: h1_update() runs the clock while we wait on the
		   client. */
		break;
	}
}

/* Said once per window (log.h): it comes with memory pressure. */
static struct log_rate	 nomem_rate;

/*
 * Carry on from the connection's own handler, in this loop iteration.  A
 * connection an exchange's callback closed (an answer that found no
 * memory) goes there too, to be freed: nothing else would (h1_io_cb()
 * does nothing else with a dead one).  Not from inside our own callbacks,
 * whose h1_leave() frees it on the way out.
 */
static void
h1_defer(struct h1_conn *c)
{
	if (!c->dead || !c->in_cb)
		ev_feed_event(loop_of(c), &c->cl.io, EV_CUSTOM);
}

static void
end_request_state(struct h1_conn *c)
{
	if (c->ex != NULL) {
		proxy_abort(c->ex);
		c->ex = NULL;
	}
	gen_unref(c->req_gen);
	c->req_gen = NULL;
}

/* Everything but the memory itself; h1_leave() frees that. */
static void
h1_close(struct h1_conn *c, const char *reason)
{
	if (c->dead)
		return;
	log_debug("%s: connection closed: %s", c->cl.client_ip, reason);
	if (c->logging) {
		/* A tunnel (up.fd) has no length to cut short: either side
		   may end it, in whatever state (CLOSING after the
		   upstream's end). */
		c->broken = c->broken || c->up.fd == -1;
		log_access(c);
		count_request(c);
	}
	c->dead = true;
	end_request_state(c);
	if (tunnel_close(&c->up, loop_of(c)))
		worker_fd_del(c->cl.wk, 1);
	buf_free(c->in);
	buf_free(c->out);
	c->in = c->out = NULL;
	client_close(&c->cl);
}

/*
 * A write to the client failed: it went away.  If not a byte of the
 * response reached it (an upstream slower than its patience), it got no
 * status: logged and counted as one that left first, 499 (4xx), not as
 * the upstream's answer it never saw.
 */
static void
h1_client_gone(struct h1_conn *c)
{
	if (c->logging && c->log != NULL && c->log->bytes_out == 0 &&
	    c->up.fd == -1)
		c->log->status = 0;
	h1_close(c, "client write failed");
}

static void
h1_free(struct h1_conn *c)
{
	drop_log(c);
	c->magic = 0;
	free(c);
}

static void
h1_leave(struct h1_conn *c)
{
	c->in_cb = false;
	if (c->dead)
		h1_free(c);
	else
		h1_update(c);
}

static struct buf *
in_buf(struct h1_conn *c)
{
	const struct config_http *h = http_cfg(c);

	/* Larger than the head limit, so the parser says 431 first. */
	if (c->in == NULL)
		c->in = buf_new(MAXIMUM((size_t)PROXY_BUF,
		    (size_t)h->max_header_size + 1024));
	return c->in;
}

static struct buf *
out_buf(struct h1_conn *c)
{
	if (c->out == NULL)
		c->out = buf_new(H1_OUT);
	return c->out;
}

/* Idle connections hold no buffers. */
static void
release_buffers(struct h1_conn *c)
{
	if (c->in != NULL && buf_empty(c->in)) {
		buf_free(c->in);
		c->in = NULL;
	}
	if (c->out != NULL && buf_empty(c->out)) {
		buf_free(c->out);
		c->out = NULL;
	}
}

/* ---- client I/O ---- */

static void
client_progress(struct h1_conn *c)
{
	if (ev_is_active(&c->cl.timer) && c->state != H1_HEAD &&
	    c->state != H1_IDLE && c->state != H1_LINGER)
		ev_timer_again(loop_of(c), &c->cl.timer);
}

/* Read into `in`: >0 bytes, 0 end of stream, TLS_AGAIN, -1 error. */
static ssize_t
h1_recv(struct h1_conn *c)
{
	struct buf *in = in_buf(c);
	size_t room;
	ssize_t n;

	if (in == NULL)
		return -1;
	if ((room = buf_space(in)) == 0)
		return TLS_AGAIN;
	if (c->cl.tls != NULL)
		n = tls_conn_read(c->cl.tls, buf_tail(in), room);
	else {
		n = recv(c->cl.fd, buf_tail(in), room, 0);
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			n = TLS_AGAIN;
	}
	if (n > 0) {
		buf_produce(in, (size_t)n);
		client_progress(c);
	}
	return n;
}

/* Write out `out`.  0, or -1 if the client is gone. */
static int
h1_send(struct h1_conn *c)
{
	ssize_t n;

	while (c->out != NULL && !buf_empty(c->out)) {
		if (c->cl.tls != NULL)
			n = tls_conn_write(c->cl.tls, buf_data(c->out),
			    buf_len(c->out));
		else {
			n = send(c->cl.fd, buf_data(c->out), buf_len(c->out),
			    MSG_NOSIGNAL);
			if (n == -1 && (errno == EAGAIN || errno == EINTR))
				n = TLS_AGAIN;
		}
		if (n == TLS_AGAIN)
			break;
		if (n <= 0)
			return -1;
		buf_consume(c->out, (size_t)n);
		if (c->log != NULL)
			c->log->bytes_out += (uint64_t)n;
		client_progress(c);
	}
	/* Room again: let the exchange go on (it resumes from the loop). */
	if (c->resp_wait && c->ex != NULL &&
	    buf_space(c->out) > buf_cap(c->out) / 4) {
		c->resp_wait = false;
		proxy_resume(c->ex);
	}
	return 0;
}

/* ---- responses of our own ---- */

/* Request bytes are counted as they are used, not as they arrive. */
static void
in_consume(struct h1_conn *c, size_t n)
{
	buf_consume(c->in, n);
	if (c->log != NULL)
		c->log->bytes_in += n;
}

static void
log_access(struct h1_conn *c)
{
	if (!c->logging)
		return;
	c->logging = false;
	front_log_emit(log_of(c), c->cl.client_ip, ev_now(loop_of(c)));
}

/*
 * A short plain-text response: body (an HTTP-01 key authorization), or
 * NULL for the status as text.  The request's body, if any, is not read:
 * the connection closes after it (nothing else would find the next
 * request).  Nothing internal goes into it.
 */
static void
h1_respond_body(struct h1_conn *c, int status, const char *extra,
    bool close, const char *body, size_t blen)
{
	const char *reason = headers_reason(status);
	char line[64];
	struct buf *out = out_buf(c);

	if (body == NULL) {
		blen = (size_t)snprintf(line, sizeof(line), "%d %s\n", status,
		    reason);
		body = line;
	}
	if (!c->body_done)
		close = true;
	c->close_after = c->close_after || close;
	log_of(c)->status = status;
	if (out == NULL || buf_printf(out, "HTTP/1.1 %d %s\r\nContent-Type: "
	    "text/plain; charset=utf-8\r\nContent-Length: %zu\r\n%s%s\r\n",
	    status, reason, blen, extra != NULL ? extra : "",
	    c->close_after ? "Connection: close\r\n" : "") == -1 ||
	    (c->method != HTTP1_METHOD_HEAD &&
	    buf_add(out, body, blen) == -1)) {
		h1_close(c, "response does not fit");
		return;
	}
	c->resp_started = true;
	c->resp_done = true;
	h1_set_state(c, H1_RESPOND);
}

static void
h1_respond(struct h1_conn *c, int status, const char *extra, bool close)
{
	h1_respond_body(c, status, extra, close, NULL, 0);
}

/* A malformed request: its status, and the connection ends. */
static void
h1_reject(struct h1_conn *c, int status, const char *why)
{
	log_debug("%s: bad request: %s", c->cl.client_ip, why);
	/* Logged too, with whatever of it could be read (often nothing). */
	c->logging = true;
	c->body_done = false;	/* nothing after this head can be trusted */
	h1_respond(c, status, NULL, true);
}

/* ---- a request ---- */

/* The log goes back; the next request takes a fresh one at its first byte. */
static void
drop_log(struct h1_conn *c)
{
	if (c->log != &spare_log)
		front_log_free(c->log);
	c->log = NULL;
}

/* Set up for the body the request announced. */
static void
body_setup(struct h1_conn *c)
{
	c->body = c->req->body;
	c->body_left = c->req->content_length;
	c->body_seen = 0;
	c->body_pend = 0;
	c->body_wait = false;
	http1_chunked_init(&c->chunked);
	c->body_done = c->body == HTTP1_BODY_NONE ||
	    (c->body == HTTP1_BODY_LENGTH && c->body_left == 0);
}

/* The request in the form every protocol gives admission. */
static void
fill_proxy_request(struct h1_conn *c, struct proxy_request *pr)
{
	memset(pr, 0, sizeof(*pr));
	pr->h.method_id = c->req->method;
	pr->h.method = c->req->method_str;
	pr->h.path = c->req->path;
	/* OPTIONS * is forwarded as it came: the parser allows it nowhere
	   else, and CONNECT (authority-form) is refused before this.  An
	   absolute-form OPTIONS with an empty path ("/" from the parser,
	   while the target does not end in one) asks about the server as a
	   whole: the last proxy sends it as "*" (RFC 9112 3.2.4). */
	if (c->req->target_form == HTTP1_TARGET_ASTERISK ||
	    (c->req->target_form == HTTP1_TARGET_ABSOLUTE &&
	    c->req->method == HTTP1_METHOD_OPTIONS && c->req->path.len == 1 &&
	    c->req->target.p[c->req->target.len - 1] != '/'))
		pr->h.path = (struct http1_slice){ "*", 1 };
	pr->h.host = c->req->host;
	pr->h.fields = c->req->headers;
	pr->h.nfields = c->req->nheaders;
	pr->h.websocket = c->req->upgrade_websocket;
	switch (c->req->body) {
	case HTTP1_BODY_LENGTH:
		pr->h.framing = HEADERS_FRAME_LENGTH;
		pr->h.content_length = c->req->content_length;
		break;
	case HTTP1_BODY_CHUNKED:
		pr->h.framing = HEADERS_FRAME_CHUNKED;
		break;
	default:
		pr->h.framing = HEADERS_FRAME_NONE;
	}
}

/* What admission said to answer. */
static void
h1_answer(struct h1_conn *c, const struct request_answer *a)
{
	char extra[sizeof(a->value) + 32];

	if (a->name != NULL)
		snprintf(extra, sizeof(extra), "%s: %s\r\n", a->name,
		    a->value);
	if (a->why[0] != '\0')
		front_log_denied(log_of(c), a->why);
	h1_respond_body(c, a->status, a->name != NULL ? extra : NULL,
	    a->close, a->body, a->body_len);
}

/* Admit, then forward a parsed request. */
static void
h1_forward(struct h1_conn *c)
{
	const struct config_site *site;
	struct request_answer ans;
	struct proxy_request pr;

	fill_proxy_request(c, &pr);
	c->req_gen = gen_ref(worker_gen(c->cl.wk));
	c->cl.rc.rl = worker_ratelimit(c->cl.wk);
	site = request_admit(&c->cl.rc, c->req_gen, &pr, c->req->target, 0,
	    &ans);
	front_log_client(log_of(c), pr.h.client_ip);
	log_of(c)->site = ans.site_slot;
	c->resp_edit = pr.resp_edit;
	if (site != NULL)
		c->ex = request_start(worker_proxy_ctx(c->cl.wk), &pr,
		    &h1_proxy_ops, c, &ans);
	request_release(&pr);
	if (site == NULL || c->ex == NULL) {
		h1_answer(c, &ans);
		return;
	}
	/* Expect: 100-continue is answered here, once the request passed. */
	if (c->req->expect_continue && !c->body_done && buf_len(c->in) ==
	    c->req->head_len && buf_addstr(out_buf(c),
	    "HTTP/1.1 100 Continue\r\n\r\n") == -1) {
		h1_close(c, "out of memory");
		return;
	}
	h1_set_state(c, H1_EXCHANGE);
}

/* A complete, well-formed head in c->req-> */
static void
h1_request(struct h1_conn *c)
{
	c->first = false;
	c->logging = true;
	ev_timer_stop(loop_of(c), &c->cl.timer);
	c->method = c->req->method;
	c->minor = c->req->minor_version;
	log_of(c)->proto = c->minor == 0 ? "HTTP/1.0" : "HTTP/1.1";
	front_log_request(log_of(c), c->req->method_str, c->req->host,
	    c->req->target);
	/* A WebSocket not accepted ends the connection: what the client may
	   have sent after its head was meant for the tunnel, and must not
	   be read as the next request. */
	c->close_after = !c->req->keep_alive || c->minor == 0 || c->draining ||
	    c->req->upgrade_websocket;
	body_setup(c);
	h1_forward(c);
	/* The exchange copied what it needs; the head goes. */
	if (!c->dead && c->in != NULL)
		in_consume(c, c->req->head_len);
}

static void
h1_parse(struct h1_conn *c)
{
	const struct config_http *h = http_cfg(c);
	struct http1_limits lim;
	int rc;

	if (c->in == NULL || buf_empty(c->in)) {
		if (c->client_eof)
			h1_close(c, "client closed");
		return;
	}
	if (c->state == H1_IDLE) {
		log_of(c)->start = ev_now(loop_of(c));
		h1_set_state(c, H1_HEAD);
	}
	lim.max_request_line = h->max_request_line;
	lim.max_head = h->max_header_size;
	lim.max_headers = h->max_headers;
	rc = http1_parse_request(&c->parser, buf_data(c->in), buf_len(c->in),
	    &lim, c->req);
	if (rc == HTTP1_INCOMPLETE) {
		if (buf_space(c->in) == 0)
			h1_reject(c, 431, "head fills the buffer");
		else if (c->client_eof)
			h1_close(c, "client closed in a request head");
		return;
	}
	if (rc < 0) {
		h1_reject(c, http1_error_status(rc), http1_strerror(rc));
		return;
	}
	h1_request(c);
}

/* ---- the request body ---- */

/* Past the limit: 413 if nothing went back yet, else the end. */
static bool
body_over_limit(struct h1_conn *c, uint64_t more)
{
	if (!request_body_over(c->req_gen, c->body_seen + more, c->cl.client_ip))
		return false;
	if (c->ex != NULL) {
		proxy_abort(c->ex);
		c->ex = NULL;
	}
	c->body_done = false;
	if (c->resp_started)
		h1_close(c, "request body over the limit");
	else
		h1_respond(c, 413, NULL, true);
	return true;
}

/* Give the exchange up to len decoded bytes at the front of `in`. */
static bool
push_body(struct h1_conn *c, size_t len)
{
	size_t taken = proxy_body(c->ex, buf_data(c->in), len);

	in_consume(c, taken);
	c->body_seen += taken;
	if (taken < len) {
		c->body_wait = true;
		return false;
	}
	return true;
}

static void
body_end(struct h1_conn *c)
{
	c->body_done = true;
	proxy_body_end(c->ex);
}

static void
feed_chunked(struct h1_conn *c)
{
	const char *data;
	size_t consumed, dlen;
	int rc;

	while (!c->dead && c->ex != NULL && !c->body_done &&
	    !buf_empty(c->in)) {
		if (c->body_pend > 0) {
			size_t before = buf_len(c->in);

			push_body(c, c->body_pend);
			c->body_pend -= before - buf_len(c->in);
			if (c->body_pend > 0)
				return;
			continue;
		}
		rc = http1_chunked_decode(&c->chunked, buf_data(c->in),
		    buf_len(c->in), &consumed, &data, &dlen);
		if (rc < 0) {
			h1_reject(c, 400, http1_strerror(rc));
			return;
		}
		if (rc == HTTP1_CHUNK_DATA) {
			in_consume(c, (size_t)(data - buf_data(c->in)));
			if (body_over_limit(c, dlen))
				return;
			c->body_pend = dlen;
			continue;
		}
		in_consume(c, consumed);
		if (rc == HTTP1_CHUNK_END)
			body_end(c);
	}
}

static void
feed_body(struct h1_conn *c)
{
	size_t n;

	if (c->ex == NULL || c->body_done || c->body_wait || c->in == NULL)
		return;
	if (c->body == HTTP1_BODY_CHUNKED) {
		feed_chunked(c);
		return;
	}
	n = (size_t)MINIMUM((uint64_t)buf_len(c->in), c->body_left);
	if (n > 0 && body_over_limit(c, n))
		return;
	if (n > 0) {
		size_t before = buf_len(c->in);

		push_body(c, n);
		c->body_left -= before - buf_len(c->in);
	}
	if (c->body_left == 0)
		body_end(c);
}

/* ---- the response, from the exchange ---- */

static enum headers_framing
response_framing(struct h1_conn *c, const struct proxy_response *r)
{
	if (r->websocket)
		return HEADERS_FRAME_NONE;
	if (c->method == HTTP1_METHOD_HEAD || r->status == 304)
		return HEADERS_FRAME_PASS;
	switch (r->body) {
	case HTTP1_BODY_LENGTH:
		return HEADERS_FRAME_LENGTH;
	case HTTP1_BODY_CHUNKED:
	case HTTP1_BODY_CLOSE:
		/* An HTTP/1.0 client cannot read chunks: it gets a close. */
		return c->minor == 1 ? HEADERS_FRAME_CHUNKED :
		    HEADERS_FRAME_CLOSE;
	default:
		return HEADERS_FRAME_NONE;
	}
}

static int
h1_ex_head(void *fe, const struct proxy_response *r)
{
	struct h1_conn *c = conn_of(fe);
	struct headers_response hr;
	struct buf *out = out_buf(c);

	memset(&hr, 0, sizeof(hr));
	hr.status = r->status;
	hr.reason = r->reason;
	hr.fields = r->fields;
	hr.nfields = r->nfields;
	hr.framing = response_framing(c, r);
	hr.content_length = r->content_length;
	hr.websocket = r->websocket;
	hr.edit = c->resp_edit;
	/* An answer before the whole request body: what is left of the
	   body may never be read, and then the connection cannot carry
	   another request.  Say so now (RFC 9112 9.6), not only by
	   closing. */
	if (hr.framing == HEADERS_FRAME_CLOSE || !c->body_done)
		c->close_after = true;
	hr.close = c->close_after;
	if (out == NULL) {
		log_rate_warnx(&nomem_rate, "%s: response head from %s: out "
		    "of memory", c->cl.client_ip, log_of(c)->host);
		return -1;
	}
	if (headers_response_head(out, &hr) == -1) {
		log_warnx("%s: response head from %s does not fit %d bytes",
		    c->cl.client_ip, log_of(c)->host, H1_OUT);
		return -1;
	}
	c->resp = hr.framing;
	c->resp_started = true;
	log_of(c)->status = r->status;
	h1_defer(c);
	return 0;
}

static size_t
h1_ex_body(void *fe, const char *data, size_t len)
{
	struct h1_conn *c = conn_of(fe);
	size_t room = buf_space(c->out), n;

	if (c->resp == HEADERS_FRAME_CHUNKED) {
		n = room > CHUNK_ROOM ? MINIMUM(len, room - CHUNK_ROOM) : 0;
		if (n > 0 && (buf_printf(c->out, "%zx\r\n", n) == -1 ||
		    buf_add(c->out, data, n) == -1 ||
		    buf_add(c->out, "\r\n", 2) == -1))
			fatalx("h1: chunk did not fit its reserved room");
	} else {
		n = MINIMUM(len, room);
		if (n > 0 && buf_add(c->out, data, n) == -1)
			n = 0;
	}
	if (n < len)
		c->resp_wait = true;
	h1_defer(c);
	return n;
}

static void
h1_ex_done(void *fe, enum proxy_result res)
{
	struct h1_conn *c = conn_of(fe);

	front_log_upstream(log_of(c), proxy_upstream_name(c->ex),
	    proxy_upstream_error(c->ex));
	if (!proxy_request_sent(c->ex) || !c->body_done) {
		/* The rest of its body would be read as the next request. */
		c->close_after = true;
		c->body_done = true;
	}
	c->ex = NULL;
	c->resp_wait = false;
	switch (res) {
	case PROXY_OK:
		c->resp_done = true;
		c->last_chunk = c->resp == HEADERS_FRAME_CHUNKED;
		break;
	case PROXY_BAD_GATEWAY:
	case PROXY_TIMEOUT:
	case PROXY_UNAVAILABLE:
		if (!c->resp_started) {
			h1_respond(c, proxy_error_status(res), NULL, false);
			break;
		}
		/* FALLTHROUGH */
	case PROXY_BROKEN:
		c->broken = true;
		break;
	case PROXY_UPGRADED:
		break;
	}
	h1_defer(c);
}

static void
h1_ex_want_body(void *fe)
{
	struct h1_conn *c = conn_of(fe);

	c->body_wait = false;
	h1_defer(c);
}

static void
h1_ex_upgrade(void *fe, int fd, struct uptls_conn *tls, const char *extra,
    size_t len)
{
	struct h1_conn *c = conn_of(fe);

	worker_fd_add(c->cl.wk, 1);
	log_of(c)->upgraded = ev_now(loop_of(c));
	tunnel_open(&c->up, fd, tls);
	if (len > 0 && buf_add(c->out, extra, len) == -1) {
		c->broken = true;
		h1_defer(c);
		return;
	}
	c->body_done = true;
	h1_set_state(c, H1_TUNNEL);
	h1_defer(c);
}

static const struct proxy_ops h1_proxy_ops = {
	.head = h1_ex_head,
	.body = h1_ex_body,
	.done = h1_ex_done,
	.want_body = h1_ex_want_body,
	.upgrade = h1_ex_upgrade,
};

/* ---- the end of a request ---- */

static void
count_request(struct h1_conn *c)
{
	front_count(worker_counters(c->cl.wk), worker_stats(c->cl.wk),
	    log_of(c), c->broken, false, ev_now(loop_of(c)));
}

/* The response is out: log it, then the next request or the end. */
static void
h1_finish(struct h1_conn *c)
{
	log_access(c);
	count_request(c);
	end_request_state(c);
	if (c->close_after || c->client_eof || c->broken) {
		h1_set_state(c, H1_CLOSING);
		return;
	}
	http1_parser_init(&c->parser);
	c->resp_started = c->resp_done = c->last_chunk = false;
	drop_log(c);
	release_buffers(c);
	h1_set_state(c, H1_IDLE);
}

static void
h1_exchange_step(struct h1_conn *c)
{
	feed_body(c);
	if (c->dead || c->state != H1_EXCHANGE)
		return;
	if (c->last_chunk && buf_add(c->out, "0\r\n\r\n", 5) == 0)
		c->last_chunk = false;
	if (c->broken && c->ex == NULL) {
		log_access(c);
		count_request(c);
		end_request_state(c);
		h1_set_state(c, H1_CLOSING);
		return;
	}
	if (c->ex == NULL && c->resp_done && !c->last_chunk &&
	    buf_empty(c->out))
		h1_finish(c);
}

/* ---- WebSocket tunnel ---- */

static void
tunnel_update(struct h1_conn *c)
{
	bool on = c->state == H1_TUNNEL;

	/* Past the tunnel (the upstream ended it), no event: an upstream
	   at EOF stays readable. */
	tunnel_watch(&c->up, loop_of(c), on ? c->in : NULL, c->out, on);
}

/* Client bytes to the upstream, and its EOF once they are all out. */
static void
h1_tunnel_push(struct h1_conn *c)
{
	ssize_t n = tunnel_push(&c->up, c->in, c->client_eof);

	if (n == -1)
		h1_close(c, "tunnel: upstream write failed");
	else if (n > 0)
		client_progress(c);
}

/* Upstream bytes towards the client. */
static void
h1_tunnel_pull(struct h1_conn *c)
{
	ssize_t n = tunnel_pull(&c->up, c->out);

	if (n == 0) {
		/* Let what the upstream said last reach the client. */
		c->close_after = true;
		h1_set_state(c, H1_CLOSING);
	} else if (n > 0)
		client_progress(c);
}

static void
h1_up_cb(struct ev_loop *loop UNUSED, ev_io *w, int revents)
{
	struct h1_conn *c = conn_of(w->data);

	c->in_cb = true;
	if (c->state == H1_TUNNEL) {
		if (revents & EV_WRITE)
			h1_tunnel_push(c);
		if (!c->dead && c->state == H1_TUNNEL && (revents & EV_READ))
			h1_tunnel_pull(c);
		if (!c->dead && h1_send(c) == -1)
			h1_client_gone(c);
	}
	/* The upstream may have ended the tunnel: carry on from there. */
	if (!c->dead)
		h1_advance(c);
	h1_leave(c);
}

/* ---- closing ---- */

/*
 * After the last response: stop sending, then read and drop what the
 * client still sends for a moment, so that closing does not reset the
 * connection before the client has read the response.
 */
static void
h1_linger(struct h1_conn *c)
{
	if (c->broken || c->client_eof) {
		/* A client that only half-closed still reads: our end is
		   marked, so that it is no truncation (a tunnel's upstream
		   answering after the client's EOF, say). */
		if (!c->broken && c->cl.tls != NULL)
			tls_conn_bye(c->cl.tls);
		h1_close(c, c->broken ? "response cut" : "done");
		return;
	}
	client_linger(c->cl.fd, c->cl.tls);
	if (c->in != NULL)
		buf_reset(c->in);
	h1_set_state(c, H1_LINGER);
}

/* ---- the state machine ---- */

static void
h1_advance(struct h1_conn *c)
{
	enum h1_state before;

	do {
		before = c->state;
		switch (c->state) {
		case H1_IDLE:
		case H1_HEAD:
			h1_parse(c);
			break;
		case H1_EXCHANGE:
			h1_exchange_step(c);
			break;
		case H1_RESPOND:
			if (c->out == NULL || buf_empty(c->out))
				h1_finish(c);
			break;
		case H1_TUNNEL:
			h1_tunnel_push(c);
			break;
		case H1_CLOSING:
			if (c->out == NULL || buf_empty(c->out))
				h1_linger(c);
			break;
		default:
			break;
		}
	} while (!c->dead && c->state != before);
}

static bool
want_read(const struct h1_conn *c)
{
	if (c->client_eof)
		return false;
	switch (c->state) {
	case H1_IDLE:
	case H1_HEAD:
	case H1_EXCHANGE:
	case H1_TUNNEL:
	case H1_LINGER:
		return c->in == NULL || buf_space(c->in) > 0;
	default:
		return false;
	}
}

/* In an exchange the client's clock runs only while we wait on it. */
static void
exchange_clock(struct h1_conn *c)
{
	bool waiting = (c->out != NULL && !buf_empty(c->out)) ||
	    (!c->body_done && !c->body_wait && c->ex != NULL);

	if (waiting && !ev_is_active(&c->cl.timer))
		h1_timer(c, http_cfg(c)->client_timeout);
	else if (!waiting)
		ev_timer_stop(loop_of(c), &c->cl.timer);
}

static void
h1_update(struct h1_conn *c)
{
	int ev = 0;

	if (c->dead)
		return;
	if (c->out != NULL && !buf_empty(c->out))
		ev |= EV_WRITE;
	if (want_read(c))
		ev |= EV_READ;
	if (ev != c->events || ev_is_active(&c->cl.io) != (ev != 0)) {
		util_watch(loop_of(c), &c->cl.io, c->cl.fd, ev);
		c->events = ev;
	}
	if (c->state == H1_EXCHANGE)
		exchange_clock(c);
	if (c->up.fd != -1)
		tunnel_update(c);
	/* Bytes GnuTLS already decrypted never make the socket readable. */
	if ((ev & EV_READ) && c->cl.tls != NULL && tls_conn_pending(c->cl.tls))
		ev_feed_event(loop_of(c), &c->cl.io, EV_READ);
}

static void
h1_read(struct h1_conn *c)
{
	ssize_t n;

	if (c->state == H1_LINGER) {
		if (client_drain(c->cl.fd))
			h1_close(c, "done");
		return;
	}
	while ((n = h1_recv(c)) > 0)
		if (buf_space(c->in) == 0)
			break;
	if (n == 0)
		c->client_eof = true;
	else if (n == -1) {
		c->client_eof = true;
		c->broken = c->resp_started && !c->resp_done;
		if (c->state == H1_TUNNEL || c->state == H1_IDLE)
			h1_close(c, c->cl.tls != NULL ? tls_conn_error(c->cl.tls) :
			    strerror(errno));
	}
}

static void
h1_io_cb(struct ev_loop *loop UNUSED, ev_io *w, int revents)
{
	struct h1_conn *c = conn_of(w->data);

	c->in_cb = true;
	if ((revents & EV_READ) && c->cl.tls != NULL)
		tls_conn_readable(c->cl.tls);
	if ((revents & EV_WRITE) && h1_send(c) == -1)
		h1_client_gone(c);
	if (!c->dead && (revents & EV_READ))
		h1_read(c);
	if (!c->dead)
		h1_advance(c);
	/* Whatever became ready to send goes now, not a loop later. */
	if (!c->dead && c->out != NULL && !buf_empty(c->out) &&
	    h1_send(c) == -1)
		h1_client_gone(c);
	if (!c->dead && c->state != H1_TUNNEL)
		h1_advance(c);
	h1_leave(c);
}

static void
h1_timer_cb(struct ev_loop *loop UNUSED, ev_timer *w, int revents UNUSED)
{
	struct h1_conn *c = conn_of(w->data);

	c->in_cb = true;
	switch (c->state) {
	case H1_HEAD:
		if (c->in != NULL && !buf_empty(c->in)) {
			h1_reject(c, 408, "request head too slow");
			break;
		}
		h1_close(c, "no request");
		break;
	case H1_EXCHANGE:
		if (!c->resp_started && !c->body_done) {
			end_request_state(c);
			h1_reject(c, 408, "request body too slow");
			break;
		}
		h1_close(c, "client too slow");
		break;
	case H1_IDLE:
		h1_close(c, c->first ? "no request" : "idle");
		break;
	default:
		h1_close(c, "timeout");
	}
	if (!c->dead && c->out != NULL && h1_send(c) == -1)
		h1_client_gone(c);
	/* A 408 that went out in full closes now, not a timeout later. */
	if (!c->dead)
		h1_advance(c);
	h1_leave(c);
}

/* ---- the worker's hooks ---- */

static void
h1_drain(struct worker_conn *wc)
{
	struct h1_conn *c = conn_of(CONTAINER_OF(wc, struct h1_conn, cl.wc));

	c->draining = true;
	c->close_after = true;
	if (c->state == H1_IDLE && (c->in == NULL || buf_empty(c->in))) {
		h1_close(c, "draining");
		h1_free(c);
	}
}

static void
h1_abort(struct worker_conn *wc)
{
	struct h1_conn *c = conn_of(CONTAINER_OF(wc, struct h1_conn, cl.wc));

	h1_close(c, "shutdown");
	h1_free(c);
}

static const struct client_ops h1_client_ops = {
	.io = h1_io_cb,
	.timer = h1_timer_cb,
	.drain = h1_drain,
	.abort = h1_abort,
};

void
h1_start(const struct client *from)
{
	struct h1_conn *c;

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		client_drop(from);
		return;
	}
	c->magic = H1_MAGIC;
	c->first = true;
	c->draining = worker_draining(from->wk);
	c->req = &h1_req;
	http1_parser_init(&c->parser);
	tunnel_init(&c->up, h1_up_cb, c);
	client_take(&c->cl, &h1_client_ops, c, from);
	drop_log(c);
	h1_set_state(c, H1_IDLE);
	h1_update(c);
}

void
h1_accept(struct worker *wk, int fd, size_t li)
{
	struct client from;

	if (client_accepted_final(&from, wk, fd, li))
		h1_start(&from);
}
