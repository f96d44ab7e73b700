/*
 * tunnel.h - the upstream side of a WebSocket tunnel, for both protocols:
 * after the upstream's 101, bytes go both ways unchanged until either end
 * stops.
 *
 * The client side stays with its protocol: HTTP/1.1 reads and writes the
 * connection, HTTP/2 carries the bytes in DATA frames of one stream.  Each
 * hands the pump two buffers: `from` (client bytes on their way up) and
 * `to` (upstream bytes on their way down).  When the client has ended its
 * side and all of its bytes are out, the upstream gets an EOF of its own
 * (a half-close); its answer still comes back until it closes too.
 * Over TLS (upstream-scheme "https") the same, with the exchange's
 * session: the half-close is a close_notify, then the socket's.
 */
#ifndef PORTCULLIS_TUNNEL_H
#define PORTCULLIS_TUNNEL_H

#include <stdbool.h>
#include <sys/types.h>

#include <ev.h>

#include "buf.h"

#define TUNNEL_AGAIN	(-2)

struct uptls_conn;

struct tunnel {
	int		 fd;		/* the upstream; -1 if none */
	struct uptls_conn *tls;		/* its TLS session; NULL: plain */
	ev_io		 io;
	int		 events;
	bool		 shut;		/* the client's end is passed on */
};

/* No upstream yet; cb gets the upstream's events, with data. */
void	 tunnel_init(struct tunnel *t, void (*cb)(struct ev_loop *, ev_io *,
	    int), void *data);
/* The upstream socket (non-blocking) and TLS session (or NULL) the
   exchange handed over. */
void	 tunnel_open(struct tunnel *t, int fd, struct uptls_conn *tls);
/* Stop watching and close the upstream; 1 if there was one, else 0. */
int	 tunnel_close(struct tunnel *t, struct ev_loop *loop);

/*
 * Send what `from` holds to the upstream, as much as it takes; then, if
 * the client is done and nothing is left, half-close.  Returns the bytes
 * sent (0 if none could go now), or -1 if the upstream is gone.
 */
ssize_t	 tunnel_push(struct tunnel *t, struct buf *from, bool client_done);
/*
 * Read what the upstream sent into `to`: the bytes read, 0 at its end (or
 * an error: either way nothing more comes), TUNNEL_AGAIN if nothing now or
 * no room.
 */
ssize_t	 tunnel_pull(struct tunnel *t, struct buf *to);
/* Watch the upstream for what the buffers allow: writes while `from`
   holds bytes, reads while `to` has room and want_read (and, when its TLS
   session holds bytes already, which no event announces, a read now). */
void	 tunnel_watch(struct tunnel *t, struct ev_loop *loop,
	    const struct buf *from, struct buf *to, bool want_read);

#endif /* PORTCULLIS_TUNNEL_H */
