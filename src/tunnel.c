/*
 * tunnel.c - the upstream side of a WebSocket tunnel (see tunnel.h).
 */
#include "autoconf.h"

#include <sys/socket.h>
#include <errno.h>
#include <unistd.h>

#include "tunnel.h"
#include "uptls.h"
#include "util.h"

void
tunnel_init(struct tunnel *t, void (*cb)(struct ev_loop *, ev_io *, int),
    void *data)
{
	t->fd = -1;
	t->tls = NULL;
	t->events = 0;
	t->shut = false;
	ev_io_init(&t->io, cb, -1, 0);
	t->io.data = data;
}

void
tunnel_open(struct tunnel *t, int fd, struct uptls_conn *tls)
{
	t->fd = fd;
	t->tls = tls;
	t->events = 0;
	t->shut = false;
	ev_io_set(&t->io, fd, 0);
}

int
tunnel_close(struct tunnel *t, struct ev_loop *loop)
{
	ev_io_stop(loop, &t->io);
	ev_clear_pending(loop, &t->io);
	if (t->fd == -1)
		return 0;
	uptls_conn_free(t->tls);
	t->tls = NULL;
	close(t->fd);
	t->fd = -1;
	ev_io_set(&t->io, -1, 0);	/* see util_watch() */
	return 1;
}

/* send()'s contract, over TLS too (TLS_AGAIN is EAGAIN). */
static ssize_t
up_send(struct tunnel *t, const void *p, size_t n)
{
	ssize_t r;

	if (t->tls == NULL)
		return send(t->fd, p, n, MSG_NOSIGNAL);
	if ((r = uptls_write(t->tls, p, n)) == TLS_AGAIN) {
		errno = EAGAIN;
		return -1;
	}
	return r;
}

ssize_t
tunnel_push(struct tunnel *t, struct buf *from, bool client_done)
{
	ssize_t n, sent = 0;

	while (from != NULL && !buf_empty(from)) {
		n = up_send(t, buf_data(from), buf_len(from));
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			return sent;
		if (n <= 0)
			return -1;
		buf_consume(from, (size_t)n);
		sent += n;
	}
	if (client_done && !t->shut) {
		t->shut = true;
		if (t->tls != NULL)
			uptls_bye(t->tls);
		(void)shutdown(t->fd, SHUT_WR);
	}
	return sent;
}

ssize_t
tunnel_pull(struct tunnel *t, struct buf *to)
{
	size_t room = to != NULL ? buf_space(to) : 0;
	ssize_t n;

	if (room == 0)
		return TUNNEL_AGAIN;
	if (t->tls != NULL) {
		/* Pulled on every event the pump sees: the socket is asked. */
		uptls_readable(t->tls);
		if ((n = uptls_read(t->tls, buf_tail(to), room)) == TLS_AGAIN)
			return TUNNEL_AGAIN;
	} else
		n = recv(t->fd, buf_tail(to), room, 0);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return TUNNEL_AGAIN;
	if (n <= 0)
		return 0;
	buf_produce(to, (size_t)n);
	return n;
}

void
tunnel_watch(struct tunnel *t, struct ev_loop *loop, const struct buf *from,
    struct buf *to, bool want_read)
{
	int ev = 0;

	if (t->fd == -1)
		return;
	if (from != NULL && !buf_empty(from))
		ev |= EV_WRITE;
	if (want_read && to != NULL && buf_space(to) > 0)
		ev |= EV_READ;
	if (ev != t->events || ev_is_active(&t->io) != (ev != 0)) {
		util_watch(loop, &t->io, t->fd, ev);
		t->events = ev;
	}
	if ((ev & EV_READ) && t->tls != NULL && uptls_pending(t->tls))
		ev_feed_event(loop, &t->io, EV_READ);
}
