/*
 * tlsio.c - a GnuTLS session's records over a non-blocking socket (see
 * tlsio.h).
 */
#include "autoconf.h"

#include <sys/socket.h>
#include <errno.h>
#include <poll.h>
#include <string.h>

#include <gnutls/gnutls.h>

#include "buf.h"
#include "tlsio.h"
#include "util.h"

/* How often a non-fatal GnuTLS error is retried at once. */
#define NONFATAL_RETRIES 8
/* A whole record and the next one's header. */
#define TLS_READAHEAD	(16384 + 2048)
/* Records gathered for one send(), and the room one record needs (its
   16 KiB, header, type and tag). */
#define TLS_GATHER	(4 * 16384 + 2048)
#define TLS_RECORD_ROOM	(16384 + 256)

void
tlsio_set_error(struct tlsio *io, int ret)
{
	io->error = gnutls_strerror(ret);
}

/*
 * Follow the record boundaries through n bytes handed to GnuTLS: a
 * header is 5 bytes (type, version, length), its length's bytes follow.
 */
static void
track(struct tlsio *io, const unsigned char *p, size_t n)
{
	size_t k;

	while (n > 0) {
		if (io->body_left > 0) {
			k = MINIMUM(n, io->body_left);
			io->body_left -= k;
			p += k;
			n -= k;
			continue;
		}
		if (io->hdr_seen == 3)
			io->len_hi = *p;
		else if (io->hdr_seen == 4)
			io->body_left = ((size_t)io->len_hi << 8) | *p;
		io->hdr_seen = (uint8_t)((io->hdr_seen + 1) % 5);
		p++;
		n--;
	}
}

/*
 * GnuTLS's pull function.  A short recv() means the socket is drained:
 * until the event loop says it is readable again (tlsio_readable()), the
 * next pull answers EAGAIN without a system call.  The loop is
 * level-triggered, so nothing that arrives meanwhile is missed.
 */
static ssize_t
tlsio_pull(gnutls_transport_ptr_t p, void *dst, size_t len)
{
	struct tlsio *io = p;
	size_t room, n;
	ssize_t got;

	if (io->ra == NULL || buf_empty(io->ra)) {
		if (io->drained) {
			gnutls_transport_set_errno(io->s, EAGAIN);
			return -1;
		}
		if (io->ra == NULL && (io->ra = buf_new(TLS_READAHEAD)) ==
		    NULL) {
			gnutls_transport_set_errno(io->s, ENOMEM);
			return -1;
		}
		buf_reset(io->ra);
		room = buf_space(io->ra);
		got = recv(io->fd, buf_tail(io->ra), room, 0);
		if (got == -1) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				io->drained = true;
			else if (errno != EINTR)
				io->sys_errno = errno;
			gnutls_transport_set_errno(io->s, errno);
			return -1;
		}
		if (got == 0)
			return 0;
		if ((size_t)got < room)
			io->drained = true;
		buf_produce(io->ra, (size_t)got);
	}
	n = MINIMUM(len, buf_len(io->ra));
	memcpy(dst, buf_data(io->ra), n);
	if (io->track)
		track(io, dst, n);
	buf_consume(io->ra, n);
	io->pulled += n;
	return (ssize_t)n;
}

static int
tlsio_pull_timeout(gnutls_transport_ptr_t p, unsigned int ms)
{
	struct tlsio *io = p;
	struct pollfd pfd = { io->fd, POLLIN, 0 };

	if (io->ra != NULL && !buf_empty(io->ra))
		return 1;
	return poll(&pfd, 1, ms == GNUTLS_INDEFINITE_TIMEOUT ? -1 : (int)ms);
}

void
tlsio_ra_release(struct tlsio *io)
{
	if (io->ra != NULL && buf_empty(io->ra)) {
		buf_free(io->ra);
		io->ra = NULL;
	}
}

/*
 * GnuTLS's push function.  While a write is being gathered, or while
 * gathered bytes are still waiting, records are appended to wb (in order);
 * otherwise they go straight to the socket, as GnuTLS's own would send
 * them.
 */
static ssize_t
tlsio_vec_push(gnutls_transport_ptr_t p, const giovec_t *iov, int iovcnt)
{
	struct tlsio *io = p;
	struct msghdr m;
	size_t total = 0;
	ssize_t n;
	int i;

	for (i = 0; i < iovcnt; i++)
		total += iov[i].iov_len;
	if (io->gather || (io->wb != NULL && !buf_empty(io->wb))) {
		if (io->wb == NULL || buf_space(io->wb) < total) {
			gnutls_transport_set_errno(io->s, EAGAIN);
			return -1;
		}
		for (i = 0; i < iovcnt; i++)
			(void)buf_add(io->wb, iov[i].iov_base, iov[i].iov_len);
		return (ssize_t)total;
	}
	memset(&m, 0, sizeof(m));
	m.msg_iov = (struct iovec *)(uintptr_t)iov;
	m.msg_iovlen = (size_t)iovcnt;
	if ((n = sendmsg(io->fd, &m, MSG_NOSIGNAL)) == -1) {
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			io->sys_errno = errno;
		gnutls_transport_set_errno(io->s, errno);
	}
	return n;
}

void
tlsio_init(struct tlsio *io, struct gnutls_session_int *s, int fd,
    bool server, bool track_records)
{
	memset(io, 0, sizeof(*io));
	io->s = s;
	io->fd = fd;
	io->server = server;
	io->track = track_records;
	/* Reads through the read-ahead; writes straight to the socket, or
	   gathered (tlsio_write). */
	gnutls_transport_set_ptr(s, io);
	gnutls_transport_set_vec_push_function(s, tlsio_vec_push);
	gnutls_transport_set_pull_function(s, tlsio_pull);
	gnutls_transport_set_pull_timeout_function(s, tlsio_pull_timeout);
}

void
tlsio_release(struct tlsio *io)
{
	buf_free(io->ra);
	buf_free(io->wb);
	io->ra = io->wb = NULL;
}

void
tlsio_readable(struct tlsio *io)
{
	io->drained = false;
}

ssize_t
tlsio_read(struct tlsio *io, void *buf, size_t len)
{
	uint64_t pulled;
	ssize_t n;
	int tries;

	for (tries = 0; tries < NONFATAL_RETRIES; tries++) {
		pulled = io->pulled;
		n = gnutls_record_recv(io->s, buf, len);
		if (n >= 0) {
			tlsio_ra_release(io);
			return n;
		}
		switch (n) {
		case GNUTLS_E_AGAIN:
		case GNUTLS_E_INTERRUPTED:
			/*
			 * Also what a record without application data ends
			 * with (a TLS 1.3 session ticket, a key update): what
			 * came behind it is read on (the read-ahead's, which
			 * no event will announce, then the socket's unless
			 * it is drained), for as long as each turn takes
			 * bytes.
			 */
			if (io->pulled != pulled) {
				tries--;
				continue;
			}
			tlsio_ra_release(io);
			return TLS_AGAIN;
		case GNUTLS_E_PREMATURE_TERMINATION:
			return 0;	/* EOF without close_notify */
		case GNUTLS_E_REHANDSHAKE:
			io->error = io->server ? "client renegotiation "
			    "refused" : "upstream renegotiation refused";
			return -1;
		}
		tlsio_ra_release(io);
		if (gnutls_error_is_fatal((int)n)) {
			tlsio_set_error(io, (int)n);
			return -1;
		}
	}
	tlsio_set_error(io, (int)n);
	return -1;
}

/* Gathered records to the socket: 0 when all are out, TLS_AGAIN, -1. */
static int
wb_flush(struct tlsio *io)
{
	ssize_t n;

	while (io->wb != NULL && !buf_empty(io->wb)) {
		n = send(io->fd, buf_data(io->wb), buf_len(io->wb),
		    MSG_NOSIGNAL);
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK ||
		    errno == EINTR))
			return TLS_AGAIN;
		if (n == -1) {
			io->sys_errno = errno;
			io->error = strerror(errno);
			return -1;
		}
		buf_consume(io->wb, (size_t)n);
	}
	/* Empty: back to the buffer cache (idle connections hold none). */
	buf_free(io->wb);
	io->wb = NULL;
	return 0;
}

/*
 * More than a record's worth: up to four records are encrypted into wb
 * and leave with one send() (a 256 MiB download made one sendmsg() per
 * 16 KiB record).  If the socket takes only part, what was encrypted
 * counts as taken only once the rest is out: until then TLS_AGAIN, as
 * when GnuTLS keeps a record.
 */
static ssize_t
write_gathered(struct tlsio *io, const char *buf, size_t len)
{
	size_t done = 0;
	ssize_t n = 0;
	int rc;

	io->gather = true;
	while (done < len && buf_space(io->wb) >= TLS_RECORD_ROOM) {
		n = gnutls_record_send(io->s, buf + done,
		    MINIMUM(len - done, (size_t)16384));
		if (n <= 0)
			break;
		done += (size_t)n;
	}
	io->gather = false;
	if (done == 0) {
		/* Nothing encrypted (wb was empty, so nothing can be owed). */
		if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
			return TLS_AGAIN;
		tlsio_set_error(io, (int)n);
		return -1;
	}
	if ((rc = wb_flush(io)) == -1)
		return -1;
	if (rc == TLS_AGAIN) {
		io->wpending = done;
		return TLS_AGAIN;
	}
	return (ssize_t)done;
}

ssize_t
tlsio_write(struct tlsio *io, const void *buf, size_t len)
{
	ssize_t n;
	int rc;

	/* Gathered records still going out: they were the first bytes. */
	if (io->wpending > 0 || (io->wb != NULL && !buf_empty(io->wb))) {
		if ((rc = wb_flush(io)) != 0)
			return rc;
		if (io->wpending > 0) {
			n = (ssize_t)io->wpending;
			io->wpending = 0;
			return n;
		}
	}
	if (len > 16384 && io->pending == 0 &&
	    (io->wb != NULL || (io->wb = buf_new(TLS_GATHER)) != NULL))
		return write_gathered(io, buf, len);

	/* A record already encrypted goes out first; GnuTLS keeps it. */
	if (io->pending > 0) {
		n = gnutls_record_send(io->s, NULL, 0);
		if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
			return TLS_AGAIN;
		if (n < 0) {
			tlsio_set_error(io, (int)n);
			return -1;
		}
		n = (ssize_t)io->pending;
		io->pending = 0;
		return n;
	}
	len = MINIMUM(len, (size_t)16384);
	n = gnutls_record_send(io->s, buf, len);
	if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
		io->pending = len;
		return TLS_AGAIN;
	}
	if (n < 0) {
		tlsio_set_error(io, (int)n);
		return -1;
	}
	return n;
}

bool
tlsio_pending(const struct tlsio *io)
{
	return gnutls_record_check_pending(io->s) > 0 ||
	    (io->ra != NULL && !buf_empty(io->ra));
}

bool
tlsio_partial(const struct tlsio *io)
{
	return io->hdr_seen != 0 || io->body_left > 0;
}

bool
tlsio_want_write(const struct tlsio *io)
{
	if (io->wb != NULL && !buf_empty(io->wb))
		return true;
	return gnutls_record_get_direction(io->s) == 1;
}

void
tlsio_bye(struct tlsio *io)
{
	(void)gnutls_bye(io->s, GNUTLS_SHUT_WR);
}
