/*
 * tlsio.h - a GnuTLS session's records over a non-blocking socket, for
 * both ends: the server connections of tls.c and the upstream (client)
 * ones of uptls.c.
 *
 * Reads go through a read-ahead, one recv() for a record's header and
 * body; after a short recv() the socket counts as drained until the
 * caller says the event loop saw it readable (tlsio_readable), so a read
 * never costs a system call that can only fail.  A write of more than a
 * record encrypts up to four into a buffer and sends them with one
 * send().  The contract both callers rely on: after TLS_AGAIN from a
 * write, the same first bytes are offered again (GnuTLS keeps a record it
 * could not send; the gathered ones count as taken only once out).
 *
 * Where the stream stands is known: tlsio_pending() says whether anything
 * is held (decrypted bytes, the read-ahead), and, with tracking on, the
 * record boundaries of what GnuTLS was handed (tlsio_partial), so that an
 * idle connection can be proven to hold no byte.
 */
#ifndef PORTCULLIS_TLSIO_H
#define PORTCULLIS_TLSIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* tlsio_read/write (tls_conn_*, uptls_*): nothing to do until the socket
   is ready again. */
#define TLS_AGAIN	(-2)

struct buf;
struct gnutls_session_int;	/* gnutls_session_t points to one */

struct tlsio {
	struct gnutls_session_int *s;
	int		 fd;
	bool		 server;	/* for messages: who renegotiates */
	const char	*error;		/* why the last call failed */
	int		 sys_errno;	/* of the last recv() or send()
					   that failed, else 0 */
	size_t		 pending;	/* bytes of a write in flight */
	/* Read-ahead: one recv() for a record's header and body (GnuTLS
	   asks for them apart), held only while bytes are left over. */
	struct buf	*ra;
	bool		 drained;	/* the last recv() was short */
	uint64_t	 pulled;	/* bytes GnuTLS took, ever */
	/* Gathered writes: several records encrypted into wb and sent with
	   one send(); wpending plaintext bytes wait for wb to go out. */
	struct buf	*wb;
	bool		 gather;
	size_t		 wpending;
	/* With track: how far GnuTLS is into a record (header bytes seen,
	   body bytes to come). */
	bool		 track;
	uint8_t		 hdr_seen;
	uint8_t		 len_hi;
	size_t		 body_left;
};

/*
 * io reads and writes session s (a gnutls_session_t) over fd: sets its
 * transport functions.  server: for messages only.  track: keep the
 * record boundaries (tlsio_partial).
 */
void	 tlsio_init(struct tlsio *io, struct gnutls_session_int *s, int fd,
	    bool server, bool track);
/* Give back the buffers (the session is the caller's). */
void	 tlsio_release(struct tlsio *io);

/* >0 bytes, 0 at the end of the stream, TLS_AGAIN, or -1 on an error. */
ssize_t	 tlsio_read(struct tlsio *io, void *buf, size_t len);
/* >0 bytes taken, TLS_AGAIN (offer the same first bytes again) or -1. */
ssize_t	 tlsio_write(struct tlsio *io, const void *buf, size_t len);
/* The event loop saw the socket readable: the next read may recv(). */
void	 tlsio_readable(struct tlsio *io);
/* Bytes are buffered inside (decrypted, or in the read-ahead). */
bool	 tlsio_pending(const struct tlsio *io);
/* With track: GnuTLS holds part of a record (header or body). */
bool	 tlsio_partial(const struct tlsio *io);
/* The last TLS_AGAIN waits for writability. */
bool	 tlsio_want_write(const struct tlsio *io);
/* Send close_notify, without waiting. */
void	 tlsio_bye(struct tlsio *io);
/* After a handshake step: an emptied read-ahead goes back. */
void	 tlsio_ra_release(struct tlsio *io);
/* Record a GnuTLS error code as the reason. */
void	 tlsio_set_error(struct tlsio *io, int gnutls_err);

#endif /* PORTCULLIS_TLSIO_H */
