/*
 * proxy_test.c - the exchange (proxy.c) against an upstream the test
 * plays itself, byte by byte if need be: a socketpair given to the pool
 * as an idle connection to the backend's address (the exchange takes it as
 * a reused one), and a listener on 127.0.0.1 at that address for the new
 * connections it opens.  The loop runs only when the test says so, so
 * every partial read and write happens where the test puts it.
 *
 * Covered: a response head and body arriving one byte at a time, the
 * upstream closing in the middle of the head (502) and of the body (cut),
 * a request replayed once after a pooled connection closed unanswered
 * (GET) and not replayed (POST, or a GET with a body), the frontend taking
 * less of the response than offered (paused until proxy_resume()), and
 * the request body pushed faster than a slow upstream reads it
 * (proxy_body() takes less; want_body() says when to go on); and what
 * ends an exchange otherwise (a refused head, a 101 nobody asked for, the
 * frontend leaving, a refused connect, the request timeout, Connection:
 * close, a WebSocket upgrade); upstream-proxy-protocol's header, first on
 * each new connection and never on a reused one, and a pooled connection
 * serving only requests with the very same header.  After each
 * exchange no upstream descriptor is left counted in the context.
 */
#include "autoconf.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>

#include "http1.h"
#include "proxy.h"
#include "upstate.h"
#include "upstream.h"

#define SPINS		8000	/* loop iterations a step may take, at most */
#define SPIN_USEC	500	/* pause between them: 4 s in all */

/* The frontend: records what the exchange hands it. */
struct fe {
	struct exchange	*ex;
	int		 heads;
	int		 status;
	enum http1_body	 body_kind;
	char		*body;
	size_t		 blen, bcap;
	size_t		 room;		/* body(): what it takes before full */
	size_t		 body_calls;
	size_t		 short_calls;	/* body() took less than offered */
	bool		 refuse_head;
	int		 want_body;
	bool		 done;
	enum proxy_result result;
	bool		 sent;		/* proxy_request_sent() in done() */
	bool		 want_upgrade;
	int		 up_fd;		/* what upgrade() was given */
	char		 extra[64];
	size_t		 extra_len;
	char		 name[64];	/* proxy_upstream_name() in done() */
	char		 error[128];	/* proxy_upstream_error() in done() */
};

static struct {
	struct ev_loop		*loop;
	struct proxy_ctx	 ctx;
	struct config_backend	 be;
	struct config_upstream	 up[3];		/* be.ups */
	int			 lfd;		/* up[0]'s address */
	int			 lfd2;		/* up[1]'s */
	void			*table;		/* an upstate table, or NULL */
	struct upstate		 ups;
	const char		*pp;		/* start()'s PROXY header */
} E;

static int
fe_head(void *arg, const struct proxy_response *r)
{
	struct fe *fe = arg;

	fe->heads++;
	fe->status = r->status;
	fe->body_kind = r->body;
	return fe->refuse_head ? -1 : 0;
}

static size_t
fe_body(void *arg, const char *data, size_t len)
{
	struct fe *fe = arg;
	size_t n = len < fe->room ? len : fe->room;

	fe->body_calls++;
	if (n < len)
		fe->short_calls++;
	if (fe->blen + n > fe->bcap) {
		fe->bcap = (fe->blen + n) * 2;
		assert_non_null(fe->body = realloc(fe->body, fe->bcap));
	}
	memcpy(fe->body + fe->blen, data, n);
	fe->blen += n;
	fe->room -= n;
	return n;
}

static void
fe_done(void *arg, enum proxy_result result)
{
	struct fe *fe = arg;

	assert_false(fe->done);
	fe->sent = proxy_request_sent(fe->ex);
	snprintf(fe->name, sizeof(fe->name), "%s", proxy_upstream_name(fe->ex));
	snprintf(fe->error, sizeof(fe->error), "%s",
	    proxy_upstream_error(fe->ex));
	fe->done = true;
	fe->result = result;
	fe->ex = NULL;
}

static void
fe_want_body(void *arg)
{
	struct fe *fe = arg;

	fe->want_body++;
}

static void
fe_upgrade(void *arg, int fd, struct uptls_conn *tls, const char *extra,
    size_t len)
{
	struct fe *fe = arg;

	assert_true(fe->want_upgrade);
	assert_int_equal(fe->up_fd, -1);
	assert_null(tls);	/* plain HTTP */
	assert_true(len <= sizeof(fe->extra));
	fe->up_fd = fd;
	memcpy(fe->extra, extra, len);
	fe->extra_len = len;
}

static const struct proxy_ops ops = {
	fe_head, fe_body, fe_done, fe_want_body, fe_upgrade
};

static void
fe_init(struct fe *fe)
{
	memset(fe, 0, sizeof(*fe));
	fe->room = SIZE_MAX;
	fe->up_fd = -1;
}

/* A listening socket on 127.0.0.1, its address in up. */
static int
listener(struct config_upstream *up)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&up->addr;
	socklen_t len = sizeof(*sin);
	int fd;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd == -1 || bind(fd, (struct sockaddr *)sin, len) == -1 ||
	    listen(fd, 8) == -1 ||
	    getsockname(fd, (struct sockaddr *)sin, &len) == -1)
		return -1;
	up->addrlen = len;
	return fd;
}

static int
setup(void **state)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&E.up[0].addr;
	socklen_t len = sizeof(*sin);

	(void)state;
	memset(&E, 0, sizeof(E));
	E.be.ups = E.up;
	E.be.nups = 1;
	E.up[0].name = "127.0.0.1:1";
	E.up[1].name = "127.0.0.1:2";
	E.up[2].name = "127.0.0.1:3";
	E.up[1].slot = 1;
	E.up[2].slot = 2;
	E.lfd2 = -1;
	if ((E.loop = ev_loop_new(EVBACKEND_EPOLL)) == NULL ||
	    (E.ctx.pool = upstream_pool_new(E.loop)) == NULL)
		return -1;
	E.ctx.loop = E.loop;
	E.lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (E.lfd == -1 || bind(E.lfd, (struct sockaddr *)sin, len) == -1 ||
	    listen(E.lfd, 8) == -1 ||
	    getsockname(E.lfd, (struct sockaddr *)sin, &len) == -1)
		return -1;
	E.up[0].addrlen = len;
	E.be.connect_timeout = 5;
	E.be.request_timeout = 5;
	E.be.keepalive = 4;
	E.be.keepalive_timeout = 60;
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	if (E.lfd2 != -1)
		close(E.lfd2);
	free(E.table);
	close(E.lfd);
	upstream_pool_free(E.ctx.pool);
	ev_loop_destroy(E.loop);
	return 0;
}

static void
spin(int n)
{
	while (n-- > 0)
		ev_run(E.loop, EVRUN_NOWAIT);
}

/* Run the loop until cond holds (evaluated once a turn: it may have
   side effects); fail if it does not within 4 s. */
#define RUN_UNTIL(cond) do {						\
	bool ok_ = false;						\
	int spins_;							\
	for (spins_ = 0; spins_ < SPINS; spins_++) {			\
		if ((ok_ = (cond)))					\
			break;						\
		ev_run(E.loop, EVRUN_NOWAIT);				\
		usleep(SPIN_USEC);					\
	}								\
	assert_true(ok_);						\
} while (0)

static void
unused_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
}

/*
 * An idle connection in the pool, as if from an earlier exchange; the
 * upstream's end is returned.  The pool takes only descriptors an
 * exchange watched (libev then need not register them again): a watcher
 * started and stopped here tells libev this one is new, as
 * upstream_connect()'s are, even if its number is one that just closed.
 */
static int
pooled(void)
{
	ev_io w;
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0, sv), 0);
	ev_io_init(&w, unused_cb, sv[0], EV_READ);
	ev_io_start(E.loop, &w);
	ev_io_stop(E.loop, &w);
	upstream_put(E.ctx.pool, (struct sockaddr *)&E.be.ups[0].addr,
	    E.be.ups[0].addrlen, 0, sv[0], NULL, E.be.keepalive,
	    E.be.keepalive_timeout);
	assert_int_equal(upstream_pool_size(E.ctx.pool), 1);
	return sv[1];
}

/* A new connection the exchange opened to the backend's address. */
static int
accepted(void)
{
	int fd = -1;

	RUN_UNTIL((fd = accept4(E.lfd, NULL, NULL, SOCK_NONBLOCK |
	    SOCK_CLOEXEC)) != -1);
	return fd;
}

/* No connection was opened to the backend's address. */
static void
none_accepted(void)
{
	int fd;

	spin(10);
	fd = accept4(E.lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd != -1)
		close(fd);
	assert_int_equal(fd, -1);
}

static void
start(struct fe *fe, const char *method, enum headers_framing framing,
    uint64_t content_length)
{
	struct proxy_request pr;

	memset(&pr, 0, sizeof(pr));
	pr.h.method = (struct http1_slice){ method, strlen(method) };
	pr.h.method_id = http1_method_lookup(method, strlen(method));
	pr.h.path = (struct http1_slice){ "/p", 2 };
	pr.h.host = (struct http1_slice){ "example.test", 12 };
	pr.h.framing = framing;
	pr.h.content_length = content_length;
	pr.h.client_ip = "192.0.2.1";
	pr.h.tls = true;
	pr.h.port = 443;
	pr.h.websocket = fe->want_upgrade;
	pr.be = &E.be;
	pr.site = "example.test";
	if (E.pp != NULL) {
		pr.pp = (unsigned char *)(uintptr_t)E.pp;
		pr.pp_len = strlen(E.pp);
	}
	assert_non_null(fe->ex = proxy_start(&E.ctx, &pr, &ops, fe));
}

/* Read exactly n bytes from the upstream's end, running the loop. */
static void
up_read(int up, char *buf, size_t n)
{
	size_t got = 0;
	ssize_t r;
	int spins;

	for (spins = 0; got < n && spins < SPINS; spins++) {
		r = read(up, buf + got, n - got);
		if (r > 0) {
			got += (size_t)r;
			continue;
		}
		assert_true(r == -1 && errno == EAGAIN);
		ev_run(E.loop, EVRUN_NOWAIT);
		usleep(SPIN_USEC);
	}
	assert_int_equal(got, n);
}

/* The request head the upstream gets, NUL-terminated; its length. */
static size_t
up_read_head(int up, char *buf, size_t cap)
{
	size_t len = 0;

	while (len < 4 || memcmp(buf + len - 4, "\r\n\r\n", 4) != 0) {
		assert_true(len + 1 < cap);
		up_read(up, buf + len, 1);
		len++;
	}
	buf[len] = '\0';
	assert_non_null(strstr(buf, " /p HTTP/1.1\r\nHost: example.test\r\n"));
	return len;
}

/* What the upstream's end has (at least a byte), into buf; its length. */
static size_t
up_read_some(int up, char *buf, size_t cap)
{
	ssize_t n = -1;

	RUN_UNTIL((n = read(up, buf, cap)) != -1 || errno != EAGAIN);
	assert_true(n > 0);
	return (size_t)n;
}

/* Write all of data to the upstream's end, running the loop. */
static void
up_write(int up, const char *data, size_t len)
{
	ssize_t n;
	int spins;

	for (spins = 0; len > 0 && spins < SPINS; spins++) {
		n = write(up, data, len);
		if (n > 0) {
			data += n;
			len -= (size_t)n;
			continue;
		}
		assert_true(n == -1 && errno == EAGAIN);
		ev_run(E.loop, EVRUN_NOWAIT);
		usleep(SPIN_USEC);
	}
	assert_int_equal(len, 0);
}

/* One byte at a time, the loop running after each. */
static void
up_trickle(int up, const char *data, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		assert_int_equal(write(up, data + i, 1), 1);
		spin(2);
	}
}

/* The upstream's end sees the exchange close its side. */
static void
up_sees_close(int up)
{
	char c;
	ssize_t n = -1;

	RUN_UNTIL((n = read(up, &c, 1)) == 0 || (n == -1 && errno !=
	    EAGAIN));
	assert_int_equal(n, 0);
}

static void
no_fd_left(void)
{
	assert_int_equal(E.ctx.nfds, 0);
}

static void
fe_free(struct fe *fe)
{
	free(fe->body);
}

/* A GET on a pooled connection, up to the upstream having read its head
   (into head); the upstream's end. */
static int
get_pooled(struct fe *fe, char *head, size_t cap)
{
	int up = pooled();

	start(fe, "GET", HEADERS_FRAME_NONE, 0);
	up_read_head(up, head, cap);
	return up;
}

/* get_pooled(), then the upstream answers resp: run until done(). */
static int
get_answered(struct fe *fe, char *head, size_t cap, const char *resp)
{
	int up = get_pooled(fe, head, cap);

	up_write(up, resp, strlen(resp));
	RUN_UNTIL(fe->done);
	return up;
}

/* The end of every case: no upstream descriptor is left counted. */
static void
finish(struct fe *fe, int up)
{
	no_fd_left();
	if (up != -1)
		close(up);
	fe_free(fe);
}

/* The same, once the upstream's end saw the exchange close it: the
   connection was not kept. */
static void
finish_closed(struct fe *fe, int up)
{
	up_sees_close(up);
	assert_int_equal(upstream_pool_size(E.ctx.pool), 0);
	finish(fe, up);
}

#define OK_LEN \
    "HTTP/1.1 200 OK\r\nContent-Length: 11\r\nX-A: b\r\n\r\nhello world"
#define OK_CHUNKED \
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" \
    "5\r\nhello\r\n6;x=y\r\n world\r\n0\r\nT: 1\r\n\r\n"

/*
 * The upstream sends everything one byte at a time: the head is taken
 * only once complete, the body goes out as it comes, and the connection
 * goes back to the pool after the last byte (the same one: its next
 * request arrives on it).
 */
static void
byte_by_byte(const char *resp)
{
	struct fe fe;
	char head[1024];
	int up;

	fe_init(&fe);
	up = pooled();
	start(&fe, "GET", HEADERS_FRAME_NONE, 0);
	assert_int_equal(upstream_pool_size(E.ctx.pool), 0);
	up_read_head(up, head, sizeof(head));
	assert_non_null(strstr(head, "X-Forwarded-For: 192.0.2.1\r\n"));
	up_trickle(up, resp, strlen(resp));
	RUN_UNTIL(fe.done);
	assert_int_equal(fe.heads, 1);
	assert_int_equal(fe.status, 200);
	assert_int_equal(fe.result, PROXY_OK);
	assert_true(fe.sent);
	assert_int_equal(fe.blen, 11);
	assert_memory_equal(fe.body, "hello world", 11);
	assert_true(fe.body_calls >= 2);	/* as it came, not at the end */
	assert_int_equal(upstream_pool_size(E.ctx.pool), 1);
	no_fd_left();

	/* Kept: the next exchange goes out on the same connection. */
	fe_free(&fe);
	fe_init(&fe);
	start(&fe, "GET", HEADERS_FRAME_NONE, 0);
	up_read_head(up, head, sizeof(head));
	up_write(up, OK_LEN, strlen(OK_LEN));
	RUN_UNTIL(fe.done);
	assert_int_equal(fe.result, PROXY_OK);
	none_accepted();
	finish(&fe, up);
}

static void
test_byte_by_byte_length(void **state)
{
	(void)state;
	byte_by_byte(OK_LEN);
}

static void
test_byte_by_byte_chunked(void **state)
{
	(void)state;
	byte_by_byte(OK_CHUNKED);
}

/* Interim 1xx heads are dropped; the final one is what counts. */
static void
test_interim_dropped(void **state)
{
	static const char resp[] = "HTTP/1.1 100 Continue\r\n\r\n"
	    "HTTP/1.1 103 Early Hints\r\nLink: </s>\r\n\r\n"
	    "HTTP/1.1 204 No Content\r\n\r\n";
	struct fe fe;
	char head[1024];
	int up;

	(void)state;
	fe_init(&fe);
	up = get_pooled(&fe, head, sizeof(head));
	up_trickle(up, resp, sizeof(resp) - 1);
	RUN_UNTIL(fe.done);
	assert_int_equal(fe.heads, 1);
	assert_int_equal(fe.status, 204);
	assert_int_equal(fe.result, PROXY_OK);
	assert_int_equal(upstream_pool_size(E.ctx.pool), 1);
	finish(&fe, up);
}

/* A head cut short: 502, never a retry (a byte of it came). */
static void
test_close_mid_head(void **state)
{
	static const char part[] = "HTTP/1.1 200 OK\r\nContent-Le";
	struct fe fe;
	char head[1024];
	int up;

	(void)state;
	fe_init(&fe);
	up = get_pooled(&fe, head, sizeof(head));
	up_trickle(up, part, sizeof(part) - 1);
	assert_false(fe.done);
	close(up);
	RUN_UNTIL(fe.done);
	assert_int_equal(fe.heads, 0);
	assert_int_equal(fe.result, PROXY_BAD_GATEWAY);
	none_accepted();
	assert_int_equal(upstream_pool_size(E.ctx.pool), 0);
	finish(&fe, -1);
}

/* A body cut short, counted or chunked: the response is broken. */
static void
close_mid_body(const char *resp, const char *want)
{
	struct fe fe;
	char head[1024];
	int up;

	fe_init(&fe);
	start(&fe, "GET", HEADERS_FRAME_NONE, 0);	/* a new connection */
	up = accepted();
	up_read_head(up, head, sizeof(head));
	up_write(up, resp, strlen(resp));
	RUN_UNTIL(fe.heads == 1 && fe.blen == strlen(want));
	assert_false(fe.done);
	close(up);
	RUN_UNTIL(fe.done);
	assert_int_equal(fe.result, PROXY_BROKEN);
	assert_memory_equal(fe.body, want, fe.blen);
	none_accepted();
	assert_int_equal(upstream_pool_size(E.ctx.pool), 0);
	finish(&fe, -1);
}

static void
test_close_mid_body(void **state)
{
	(void)state;
	close_mid_body("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabcd",
	    "abcd");
	close_mid_body("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "5\r\nhello\r\n6\r\n wo", "hello wo");
}

/* Without Content-Length or chunked, the close is the end: complete,
   and the connection is not kept. */
static void
test_close_delimited(void **state)
{
	static const char resp[] = "HTTP/1.1 200 OK\r\n\r\nuntil the end";
	struct fe fe;
	char head[1024];
	int up;

	(void)state;
	fe_init(&fe);
	up = get_pooled(&fe, head, sizeof(head));
	up_write(up, resp, sizeof(resp) - 1);
	RUN_UNTIL(fe.blen == 13);
	assert_false(fe.done);
	close(up);
	RUN_UNTIL(fe.done);
	assert_int_equal(fe.result, PROXY_OK);
	assert_int_equal(fe.body_kind, HTTP1_BODY_CLOSE);
	assert_memory_equal(fe.body, "until the end", 13);
	assert_int_equal(upstream_pool_size(E.ctx.pool), 0);
	finish(&fe, -1);
}

/*
 * A pooled connection the upstream closes without a byte of an answer: a
 * GET is sent again, once, on a new connection, and the client never
 * knows.
 */
static void
test_retry_stale_get(void **state)
{
	struct fe fe;
	char first[1024], again[1024];
	int up, fresh;

	(void)state;
	fe_init(&fe);
	up = get_pooled(&fe, first, sizeof(first));
	close(up);
	fresh = accepted();
	up_read_head(fresh, again, sizeof(again));
	assert_string_equal(again, first);
	up_write(fresh, OK_LEN, strlen(OK_LEN));
	RUN_UNTIL(fe.done);
	assert_int_equal(fe.result, PROXY_OK);
	assert_int_equal(fe.heads, 1);
	assert_memory_equal(fe.body, "hello world", 11);
	assert_int_equal(upstream_pool_size(E.ctx.pool), 1);
	finish(&fe, fresh);
}

/* The same, but the new connection fails too: 502, no third try. */
static void
test_retry_once(void **state)
{
	struct fe fe;
	char head[1024];
	int up, fresh;

	(void)state;
	fe_init(&fe);
	up = get_pooled(&fe, head, sizeof(head));
	close(up);
	fresh = accepted();
	up_read_head(fresh, head, sizeof(head));
	close(fresh);
	RUN_UNTIL(fe.done);
	assert_int_equal(fe.result, PROXY_BAD_GATEWAY);
	none_accepted();
	finish(&fe, -1);
}

/* What may have been acted on is never sent twice: a POST, a GET with a
   body (Content-Length: 0 is one). */
static void
no_replay(const char *method, const char *body)
{
	struct fe fe;
	char head[1024], got[16];
	size_t blen = strlen(body);
	int up;

	fe_init(&fe);
	up = pooled();
	start(&fe, method, HEADERS_FRAME_LENGTH, blen);
	assert_int_equal(proxy_body(fe.ex, body, blen), blen);
	proxy_body_end(fe.ex);
	up_read_head(up, head, sizeof(head));
	up_read(up, got, blen);
	assert_memory_equal(got, body, blen);
	close(up);
	RUN_UNTIL(fe.done);
	assert_int_equal(fe.result, PROXY_BAD_GATEWAY);
	assert_int_equal(fe.heads, 0);
	none_accepted();
	finish(&fe, -1);
}

static void
test_no_replay(void **state)
{
	(void)state;
	no_replay("POST", "abc");
	no_replay("GET", "");
	no_replay("PUT", "x");
}

/*
 * The frontend takes less than offered (a slow client): nothing more is
 * delivered until proxy_resume(), and then the rest comes, in order,
 * whether counted or chunked (the chunk decoder keeps what it decoded but
 * could not hand over).
 */
#define BIG	(200 * 1000)
#define TAKE	1000

static void
backpressure(bool chunked)
{
	struct fe fe;
	char head[1024], *pattern, *resp;
	size_t i, len = 0, was, chunk = 4096, resumes = 0;
	int up;

	assert_non_null(pattern = malloc(BIG));
	for (i = 0; i < BIG; i++)
		pattern[i] = (char)('a' + i % 23);
	assert_non_null(resp = malloc(2 * BIG));
	if (chunked) {
		len = (size_t)snprintf(resp, 2 * BIG, "HTTP/1.1 200 OK\r\n"
		    "Transfer-Encoding: chunked\r\n\r\n");
		for (i = 0; i < BIG; i += chunk) {
			size_t n = BIG - i < chunk ? BIG - i : chunk;

			len += (size_t)snprintf(resp + len, 2 * BIG - len,
			    "%zx\r\n", n);
			memcpy(resp + len, pattern + i, n);
			len += n;
			memcpy(resp + len, "\r\n", 2);
			len += 2;
		}
		memcpy(resp + len, "0\r\n\r\n", 5);
		len += 5;
	} else {
		len = (size_t)snprintf(resp, 2 * BIG, "HTTP/1.1 200 OK\r\n"
		    "Content-Length: %d\r\n\r\n", BIG);
		memcpy(resp + len, pattern, BIG);
		len += BIG;
	}

	fe_init(&fe);
	fe.room = TAKE;
	up = get_pooled(&fe, head, sizeof(head));
	up_write(up, resp, len);
	while (!fe.done) {
		RUN_UNTIL(fe.done || fe.room == 0);
		if (fe.done)
			break;
		/* Full: the exchange waits, however long the loop runs. */
		was = fe.body_calls;
		spin(20);
		assert_int_equal(fe.body_calls, was);
		assert_false(fe.done);
		fe.room = TAKE;
		proxy_resume(fe.ex);
		resumes++;
	}
	assert_int_equal(fe.result, PROXY_OK);
	assert_int_equal(fe.blen, BIG);
	assert_memory_equal(fe.body, pattern, BIG);
	assert_true(resumes >= BIG / TAKE - 1);
	assert_true(fe.short_calls > 0);
	assert_int_equal(upstream_pool_size(E.ctx.pool), 1);
	finish(&fe, up);
	free(pattern);
	free(resp);
}

static void
test_backpressure_length(void **state)
{
	(void)state;
	backpressure(false);
}

static void
test_backpressure_chunked(void **state)
{
	(void)state;
	backpressure(true);
}

/*
 * A request body pushed faster than the upstream reads it: proxy_body()
 * takes less once the buffer and the socket are full, want_body() comes
 * only after the upstream read some, and every byte arrives in order,
 * counted or re-chunked.
 */
#define UPLOAD	(1024 * 1024)

static void
slow_upstream(enum headers_framing framing)
{
	struct fe fe;
	struct http1_chunked ch;
	char head[1024], *pattern, *got;
	size_t i, off = 0, glen = 0, dlen, consumed, pos = 0;
	const char *data;
	int up, rc, shorts = 0, wants, spins;

	assert_non_null(pattern = malloc(UPLOAD));
	for (i = 0; i < UPLOAD; i++)
		pattern[i] = (char)('A' + i % 26);
	assert_non_null(got = malloc(2 * UPLOAD));

	fe_init(&fe);
	up = pooled();
	start(&fe, "POST", framing, framing == HEADERS_FRAME_LENGTH ?
	    UPLOAD : 0);
	up_read_head(up, head, sizeof(head));
	assert_non_null(strstr(head, framing == HEADERS_FRAME_LENGTH ?
	    "Content-Length: 1048576\r\n" : "Transfer-Encoding: chunked\r\n"));
	for (;;) {
		off += proxy_body(fe.ex, pattern + off, UPLOAD - off);
		if (off == UPLOAD)
			break;
		/* Took less: nothing more fits until the loop runs. */
		shorts++;
		assert_int_equal(proxy_body(fe.ex, pattern + off, 1), 0);
		wants = fe.want_body;
		spin(20);
		/* The socket is full too: the upstream must read first,
		   a little at a time. */
		for (spins = 0; fe.want_body == wants && spins < SPINS;
		    spins++) {
			ssize_t r = read(up, got + glen, 4096);

			if (r > 0)
				glen += (size_t)r;
			else
				assert_true(r == -1 && errno == EAGAIN);
			spin(1);
		}
		assert_int_equal(fe.want_body, wants + 1);
	}
	proxy_body_end(fe.ex);
	assert_true(shorts > 0);
	assert_true(fe.want_body > 0);
	/* The rest, up to the end of the body. */
	if (framing == HEADERS_FRAME_LENGTH) {
		up_read(up, got + glen, UPLOAD - glen);
		assert_memory_equal(got, pattern, UPLOAD);
	} else {
		http1_chunked_init(&ch);
		off = 0;
		for (;;) {
			rc = http1_chunked_decode(&ch, got + pos, glen - pos,
			    &consumed, &data, &dlen);
			assert_true(rc >= 0);
			pos += consumed;
			if (rc == HTTP1_CHUNK_END)
				break;
			if (rc == HTTP1_CHUNK_DATA) {
				assert_true(off + dlen <= UPLOAD);
				assert_memory_equal(data, pattern + off, dlen);
				off += dlen;
				continue;
			}
			assert_true(glen < 2 * UPLOAD);
			glen += up_read_some(up, got + glen, 2 * UPLOAD - glen);
		}
		assert_int_equal(off, UPLOAD);
		assert_int_equal(pos, glen);
	}
	up_write(up, "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n", 43);
	RUN_UNTIL(fe.done);
	assert_int_equal(fe.result, PROXY_OK);
	assert_int_equal(fe.status, 201);
	assert_true(fe.sent);
	assert_int_equal(upstream_pool_size(E.ctx.pool), 1);
	finish(&fe, up);
	free(pattern);
	free(got);
}

static void
test_slow_upstream_length(void **state)
{
	(void)state;
	slow_upstream(HEADERS_FRAME_LENGTH);
}

static void
test_slow_upstream_chunked(void **state)
{
	(void)state;
	slow_upstream(HEADERS_FRAME_CHUNKED);
}

/*
 * A WebSocket upgrade: the socket, and the bytes that came after the 101,
 * go to the frontend (and its descriptor with them), then done().
 */
static void
test_upgrade(void **state)
{
	static const char resp[] = "HTTP/1.1 101 Switching Protocols\r\n"
	    "Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x02hi";
	struct fe fe;
	char head[1024], c;
	int up;

	(void)state;
	fe_init(&fe);
	fe.want_upgrade = true;
	up = get_answered(&fe, head, sizeof(head), resp);
	assert_non_null(strstr(head, "Upgrade: websocket\r\n"));
	assert_int_equal(fe.result, PROXY_UPGRADED);
	assert_int_equal(fe.status, 101);
	assert_true(fe.up_fd >= 0);
	assert_int_equal(fe.extra_len, 4);
	assert_memory_equal(fe.extra, "\x81\x02hi", 4);
	no_fd_left();
	/* The tunnel's now: open, and the upstream's other end. */
	assert_int_equal(write(fe.up_fd, "x", 1), 1);
	RUN_UNTIL(read(up, &c, 1) == 1);
	assert_int_equal(c, 'x');
	close(fe.up_fd);
	finish(&fe, up);
}

/*
 * Answers after which the connection is closed, not kept: a head the
 * frontend refuses (a 502, not a cut response), Connection: close, a 101
 * nobody asked for (a malformed answer).
 */
static const struct {
	const char		*what;
	const char		*resp;
	bool			 refuse_head;
	int			 heads;
	enum proxy_result	 result;
} not_kept[] = {
	{ "head refused", OK_LEN, true, 1, PROXY_BAD_GATEWAY },
	{ "Connection: close", "HTTP/1.1 200 OK\r\nConnection: close\r\n"
	    "Content-Length: 2\r\n\r\nok", false, 1, PROXY_OK },
	{ "unasked 101", "HTTP/1.1 101 Switching Protocols\r\n"
	    "Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n", false, 0,
	    PROXY_BAD_GATEWAY },
};

static void
test_not_kept(void **state)
{
	struct fe fe;
	char head[1024];
	size_t i;
	int up;

	(void)state;
	for (i = 0; i < sizeof(not_kept) / sizeof(not_kept[0]); i++) {
		print_message("%s\n", not_kept[i].what);
		fe_init(&fe);
		fe.refuse_head = not_kept[i].refuse_head;
		up = get_answered(&fe, head, sizeof(head), not_kept[i].resp);
		assert_int_equal(fe.heads, not_kept[i].heads);
		assert_int_equal(fe.result, not_kept[i].result);
		finish_closed(&fe, up);
	}
}

/* The frontend goes away mid-response: the upstream is closed, not kept. */
static void
test_abort(void **state)
{
	struct fe fe;
	char head[1024];
	int up;

	(void)state;
	fe_init(&fe);
	up = get_pooled(&fe, head, sizeof(head));
	up_write(up, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab", 41);
	RUN_UNTIL(fe.blen == 2);
	proxy_abort(fe.ex);
	assert_false(fe.done);
	finish_closed(&fe, up);
}

/* Nothing listens at the backend's address: 502, reported from the loop. */
static void
test_connect_refused(void **state)
{
	struct fe fe;

	(void)state;
	close(E.lfd);		/* the port is free now: refused */
	E.lfd = -1;
	fe_init(&fe);
	start(&fe, "GET", HEADERS_FRAME_NONE, 0);
	assert_false(fe.done);
	RUN_UNTIL(fe.done);
	assert_int_equal(fe.result, PROXY_BAD_GATEWAY);
	assert_false(fe.sent);
	finish(&fe, -1);
}

/* No answer within request-timeout: 504. */
static void
test_request_timeout(void **state)
{
	struct fe fe;
	char head[1024];
	int up;

	(void)state;
	E.be.request_timeout = 1;
	fe_init(&fe);
	up = get_pooled(&fe, head, sizeof(head));
	RUN_UNTIL(fe.done);
	assert_int_equal(fe.result, PROXY_TIMEOUT);
	finish_closed(&fe, up);
}

/*
 * Several upstreams.  up[0] listens on lfd, up[1] on lfd2 (second());
 * round-robin without a shared table starts at up[0].
 */
static void
second(void)
{
	assert_int_not_equal(E.lfd2 = listener(&E.up[1]), -1);
	E.be.nups = 2;
}

/* up[0] refuses connections from now on. */
static void
first_refuses(void)
{
	close(E.lfd);
	E.lfd = -1;
}

/* The shared table, for health and in-flight counts. */
static void
with_table(unsigned max_fails)
{
	assert_non_null(E.table = calloc(1, upstate_bytes()));
	upstate_attach(&E.ups, E.table, upstate_bytes(), 4, 0);
	E.ctx.ups = &E.ups;
	E.be.max_fails = max_fails;
	E.be.fail_timeout = 10;
}

/* Accept on fd within the loop's time. */
static int
accepted_on(int lfd)
{
	int fd = -1;

	RUN_UNTIL((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK |
	    SOCK_CLOEXEC)) != -1);
	return fd;
}

/* Refused by the first: the request goes to the second, body and all. */
static void
test_next_on_refused(void **state)
{
	struct fe fe;
	char head[1024], body[8];
	int up;

	(void)state;
	second();
	first_refuses();
	fe_init(&fe);
	start(&fe, "POST", HEADERS_FRAME_LENGTH, 5);
	assert_int_equal(proxy_body(fe.ex, "hello", 5), 5);
	proxy_body_end(fe.ex);
	up = accepted_on(E.lfd2);
	up_read_head(up, head, sizeof(head));
	assert_non_null(strstr(head, "POST /p HTTP/1.1\r\n"));
	up_read(up, body, 5);
	assert_memory_equal(body, "hello", 5);
	up_write(up, OK_LEN, strlen(OK_LEN));
	RUN_UNTIL(fe.done);
	assert_int_equal(fe.result, PROXY_OK);
	/* The access log names the one that answered, and what failed. */
	assert_non_null(strstr(fe.error, "connect: Connection refused"));
	assert_int_not_equal(strcmp(fe.name, ""), 0);
	assert_null(strstr(fe.error, fe.name));
	finish(&fe, up);
}

/* A new connection reset before the head: a GET goes to the next. */
static void
test_next_on_reset_get(void **state)
{
	struct fe fe;
	char head[1024], again[1024];
	int up, up2;

	(void)state;
	second();
	fe_init(&fe);
	start(&fe, "GET", HEADERS_FRAME_NONE, 0);
	up = accepted_on(E.lfd);
	up_read_head(up, head, sizeof(head));
	close(up);
	up2 = accepted_on(E.lfd2);
	up_read_head(up2, again, sizeof(again));
	assert_string_equal(again, head);
	up_write(up2, OK_LEN, strlen(OK_LEN));
	RUN_UNTIL(fe.done);
	assert_int_equal(fe.result, PROXY_OK);
	finish(&fe, up2);
}

/* The same for a POST with a body: sent once, never again (502). */
static void
test_no_next_after_body(void **state)
{
	struct fe fe;
	char head[1024], body[8];
	int up;

	(void)state;
	second();
	fe_init(&fe);
	start(&fe, "POST", HEADERS_FRAME_LENGTH, 5);
	assert_int_equal(proxy_body(fe.ex, "hello", 5), 5);
	proxy_body_end(fe.ex);
	up = accepted_on(E.lfd);
	up_read_head(up, head, sizeof(head));
	up_read(up, body, 5);
	close(up);
	RUN_UNTIL(fe.done);
	assert_int_equal(fe.result, PROXY_BAD_GATEWAY);
	RUN_UNTIL(true);
	assert_int_equal(accept4(E.lfd2, NULL, NULL, SOCK_NONBLOCK), -1);
	finish(&fe, -1);
}

/* A response that started is never retried: the client's is cut. */
static void
test_no_next_after_head(void **state)
{
	struct fe fe;
	char head[1024];
	int up;

	(void)state;
	second();
	fe_init(&fe);
	start(&fe, "GET", HEADERS_FRAME_NONE, 0);
	up = accepted_on(E.lfd);
	up_read_head(up, head, sizeof(head));
	up_write(up, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhel", 42);
	RUN_UNTIL(fe.heads == 1);
	close(up);
	RUN_UNTIL(fe.done);
	assert_int_equal(fe.result, PROXY_BROKEN);
	assert_int_equal(accept4(E.lfd2, NULL, NULL, SOCK_NONBLOCK), -1);
	finish(&fe, -1);
}

/* Every upstream refuses: each is tried once, then 502. */
static void
test_all_refuse(void **state)
{
	struct fe fe;

	(void)state;
	second();
	first_refuses();
	close(E.lfd2);
	E.lfd2 = -1;
	fe_init(&fe);
	start(&fe, "GET", HEADERS_FRAME_NONE, 0);
	RUN_UNTIL(fe.done);
	assert_int_equal(fe.result, PROXY_BAD_GATEWAY);
	assert_non_null(strstr(fe.error, "127.0.0.1:"));
	assert_non_null(strstr(fe.error, "; "));	/* both said */
	finish(&fe, -1);
}

/*
 * Passive health: with max-fails 1, the refusing upstream is marked down
 * by the first request (which the second upstream answers), and the next
 * requests skip it; when every upstream is down, 503 at once.
 */
static void
test_passive_down_and_all_down(void **state)
{
	struct fe fe;
	char head[1024];
	int i, up;

	(void)state;
	second();
	first_refuses();
	with_table(1);
	for (i = 0; i < 3; i++) {
		fe_init(&fe);
		start(&fe, "GET", HEADERS_FRAME_NONE, 0);
		up = accepted_on(E.lfd2);
		up_read_head(up, head, sizeof(head));
		up_write(up, OK_LEN, strlen(OK_LEN));
		RUN_UNTIL(fe.done);
		assert_int_equal(fe.result, PROXY_OK);
		/* Only the first request tried the refusing one. */
		assert_int_equal(fe.error[0] != '\0', i == 0);
		finish(&fe, up);
	}
	assert_false(upstate_usable(&E.ups, &E.be, 0, upstate_now_ms()));
	assert_true(upstate_usable(&E.ups, &E.be, 1, upstate_now_ms()));
	assert_int_equal(upstate_inflight(&E.ups, 0), 0);
	assert_int_equal(upstate_inflight(&E.ups, 1), 0);
	/* Both down now: 503, nothing tried. */
	assert_true(upstate_fail(&E.ups, &E.be, 1, upstate_now_ms()));
	fe_init(&fe);
	start(&fe, "GET", HEADERS_FRAME_NONE, 0);
	RUN_UNTIL(fe.done);
	assert_int_equal(fe.result, PROXY_UNAVAILABLE);
	assert_string_equal(fe.error, "all upstreams down");
	assert_int_equal(proxy_error_status(fe.result), 503);
	finish(&fe, -1);
}

/*
 * A pooled connection closed under a POST: 502 (not replayable), but not
 * the upstream's failure: it stays up.
 */
static void
test_pooled_close_is_not_a_failure(void **state)
{
	struct fe fe;
	char head[1024];
	int up;

	(void)state;
	second();
	with_table(1);
	fe_init(&fe);
	up = pooled();
	start(&fe, "POST", HEADERS_FRAME_LENGTH, 3);
	assert_int_equal(proxy_body(fe.ex, "abc", 3), 3);
	proxy_body_end(fe.ex);
	up_read_head(up, head, sizeof(head));
	close(up);
	RUN_UNTIL(fe.done);
	assert_int_equal(fe.result, PROXY_BAD_GATEWAY);
	assert_true(upstate_usable(&E.ups, &E.be, 0, upstate_now_ms()));
	assert_int_equal(atomic_load(&E.ups.e[0].fails), 0);
	finish(&fe, -1);
}

/*
 * Out of descriptors here: no connection can be made to any upstream,
 * and that is no upstream's failure (one worker short of descriptors
 * must not make every worker answer 503).
 */
static void
test_local_error_is_not_a_failure(void **state)
{
	struct rlimit old, low;
	struct fe fe;
	int fds[1024], n = 0, fd, top = 0;

	(void)state;
	second();
	with_table(1);
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	/* A limit a little above what is open, then every descriptor under
	   it taken (the holes too). */
	for (fd = 0; fd < 1000; fd++)
		if (fcntl(fd, F_GETFD) != -1)
			top = fd;
	low = old;
	low.rlim_cur = (rlim_t)top + 16;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	while (n < 1024 && (fd = dup(0)) != -1)
		fds[n++] = fd;
	assert_int_equal(errno, EMFILE);
	fe_init(&fe);
	start(&fe, "GET", HEADERS_FRAME_NONE, 0);
	RUN_UNTIL(fe.done);
	while (n > 0)
		close(fds[--n]);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	assert_int_equal(fe.result, PROXY_BAD_GATEWAY);
	assert_non_null(strstr(fe.error, "Too many open files"));
	assert_true(upstate_usable(&E.ups, &E.be, 0, upstate_now_ms()));
	assert_true(upstate_usable(&E.ups, &E.be, 1, upstate_now_ms()));
	finish(&fe, -1);
}

/*
 * The first upstream's connect times out, the second refuses at once:
 * the answer is the last failure (502, the second's), said once.
 */
static void
test_last_failure_is_the_answer(void **state)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&E.up[2].addr;
	socklen_t len = sizeof(*sin);
	int full, c1, c2;
	struct fe fe;

	(void)state;
	/* up[0]: a listener whose queue is full: SYNs go unanswered. */
	close(E.lfd);
	E.lfd = -1;
	full = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(full, (struct sockaddr *)sin, len), 0);
	assert_int_equal(listen(full, 0), 0);
	assert_int_equal(getsockname(full, (struct sockaddr *)sin, &len), 0);
	E.up[2].addrlen = len;
	c1 = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	c2 = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	(void)connect(c1, (struct sockaddr *)sin, len);
	(void)connect(c2, (struct sockaddr *)sin, len);
	usleep(100000);
	E.up[0] = E.up[2];
	E.up[0].slot = 0;
	/* up[1]: nothing listens. */
	second();
	close(E.lfd2);
	E.lfd2 = -1;
	E.be.connect_timeout = 1;
	fe_init(&fe);
	start(&fe, "GET", HEADERS_FRAME_NONE, 0);
	RUN_UNTIL(fe.done);
	assert_int_equal(fe.result, PROXY_BAD_GATEWAY);
	assert_non_null(strstr(fe.error, "connect timed out after 1s; "));
	assert_non_null(strstr(fe.error, "connect: Connection refused"));
	assert_null(strstr(strstr(fe.error, "refused"), "refused; "));
	close(c1);
	close(c2);
	close(full);
	finish(&fe, -1);
}

#define PP_A	"PROXY TCP4 192.0.2.1 127.0.0.1 40000 443\r\n"
#define PP_B	"PROXY TCP4 192.0.2.1 127.0.0.1 40001 443\r\n"

/* A GET with E.pp's header (or none) on a new connection: the upstream
   reads the header, then the head, and answers; the connection is kept.
   The upstream's end. */
static int
pp_new(const char *pp)
{
	struct fe fe;
	char buf[1024];
	size_t n;
	int up;

	E.pp = pp;
	fe_init(&fe);
	start(&fe, "GET", HEADERS_FRAME_NONE, 0);
	up = accepted();
	if (pp != NULL) {
		n = strlen(pp);
		up_read(up, buf, n);
		assert_memory_equal(buf, pp, n);
	}
	up_read_head(up, buf, sizeof(buf));
	assert_memory_equal(buf, "GET ", 4);
	up_write(up, OK_LEN, strlen(OK_LEN));
	RUN_UNTIL(fe.done);
	assert_int_equal(fe.result, PROXY_OK);
	finish(&fe, -1);
	return up;
}

/* A GET with pp's header goes out on the pooled connection whose
   upstream end is up: the head alone, no header again. */
static void
pp_reused(const char *pp, int up)
{
	struct fe fe;
	char buf[1024];

	E.pp = pp;
	fe_init(&fe);
	start(&fe, "GET", HEADERS_FRAME_NONE, 0);
	up_read_head(up, buf, sizeof(buf));
	assert_memory_equal(buf, "GET ", 4);
	up_write(up, OK_LEN, strlen(OK_LEN));
	RUN_UNTIL(fe.done);
	assert_int_equal(fe.result, PROXY_OK);
	none_accepted();
	finish(&fe, -1);
}

/*
 * upstream-proxy-protocol: the header goes first on a new connection;
 * the connection is reused for the same header only (the same client
 * connection), never for another header, nor for a request without one,
 * and a request with one never takes a connection made without.
 */
static void
test_proxy_header_pooling(void **state)
{
	int a, b, plain, old;

	(void)state;
	old = pooled();				/* made without a header */
	a = pp_new(PP_A);			/* not the pooled one */
	assert_int_equal(upstream_pool_size(E.ctx.pool), 2);
	pp_reused(PP_A, a);
	b = pp_new(PP_B);			/* another client: its own */
	pp_reused(PP_B, b);
	pp_reused(PP_A, a);
	assert_int_equal(upstream_pool_size(E.ctx.pool), 3);
	pp_reused(NULL, old);			/* no header: the old one */
	/* Without it, a request without a header takes neither a nor b. */
	close(old);
	RUN_UNTIL(upstream_pool_size(E.ctx.pool) == 2);
	plain = pp_new(NULL);
	assert_int_equal(upstream_pool_size(E.ctx.pool), 3);
	close(plain);
	close(a);
	close(b);
}

#define T(f)	cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_byte_by_byte_length),
		T(test_byte_by_byte_chunked),
		T(test_interim_dropped),
		T(test_close_mid_head),
		T(test_close_mid_body),
		T(test_close_delimited),
		T(test_retry_stale_get),
		T(test_retry_once),
		T(test_no_replay),
		T(test_backpressure_length),
		T(test_backpressure_chunked),
		T(test_slow_upstream_length),
		T(test_slow_upstream_chunked),
		T(test_not_kept),
		T(test_upgrade),
		T(test_abort),
		T(test_connect_refused),
		T(test_request_timeout),
		T(test_next_on_refused),
		T(test_next_on_reset_get),
		T(test_no_next_after_body),
		T(test_no_next_after_head),
		T(test_all_refuse),
		T(test_passive_down_and_all_down),
		T(test_pooled_close_is_not_a_failure),
		T(test_local_error_is_not_a_failure),
		T(test_last_failure_is_the_answer),
		T(test_proxy_header_pooling),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
