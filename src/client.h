/*
 * client.h - what every client connection does, whatever it speaks.
 *
 * At its start: who the peer is.  At its end: after its last bytes, a
 * connection stops sending (a TLS close_notify, then a half-close) and
 * reads and drops what the client still sends for LINGER_SECS, so that
 * closing does not reset the connection before the client has read
 * everything (RFC 9112 9.6).
 */
#ifndef PORTCULLIS_CLIENT_H
#define PORTCULLIS_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <arpa/inet.h>

#include <ev.h>

#include "connlimit.h"
#include "conns.h"
#include "request.h"

struct gen;
struct tls_conn;
struct worker;

/*
 * What every client connection is, whatever it speaks: the first member
 * of an h1_conn, an h2_conn and a handshake in progress.
 */
struct client {
	struct worker_conn	 wc;		/* in the worker's set */
	struct worker		*wk;
	struct gen		*gen;		/* its TLS session's credentials */
	size_t			 li;		/* its listener */
	int			 fd;
	struct tls_conn		*tls;		/* NULL on a plain listener */
	struct sockaddr_storage	 peer;		/* AF_UNSPEC if unknown */
	char			 client_ip[INET6_ADDRSTRLEN];
	struct connlimit_ticket	 cap;		/* max-connections-per-client */
	struct request_conn	 rc;		/* what admission asks of it */
	ev_io			 io;		/* the socket */
	ev_timer		 timer;
};

/* What a kind of connection does with its events and the worker's. */
struct client_ops {
	void	(*io)(struct ev_loop *, ev_io *, int);
	void	(*timer)(struct ev_loop *, ev_timer *, int);
	void	(*drain)(struct worker_conn *);
	void	(*abort)(struct worker_conn *);
};

/*
 * The client address of a new connection is final (today: right after
 * accept, from client_peer()): count it against its listener's
 * max-connections-per-client, across all workers.  false: the cap is
 * reached; the caller closes the connection at once (client_drop), and
 * the refusal is logged once per client per minute.  With no cap on the
 * listener this is one test.  What it counted is released where every
 * client connection ends (client_close, client_drop).
 */
bool	 client_admit(struct client *cl);

/*
 * cl takes over what `from` names (wk, fd, li, tls or NULL, gen with its
 * reference, peer, client_ip, the admission's ticket; nothing else of it
 * is read): its watchers'
 * data is `data` (the connection that embeds cl), and it is registered
 * with the worker last.
 */
void	 client_take(struct client *cl, const struct client_ops *ops,
	    void *data, const struct client *from);
/* What `from` names is closed and released (a connection that could not
   be made, or refused). */
void	 client_drop(const struct client *from);
/* Stop its watchers, end its TLS session, close its socket, let its
   generation go and leave the worker's set. */
void	 client_close(struct client *cl);
/* Stop its watchers and leave the worker's set: the socket, the session
   and the generation now belong to another (the hand-over after a TLS
   handshake). */
void	 client_leave(struct client *cl);

/* After the last response: how long a client's last bytes are read. */
#define LINGER_SECS	2.0

/* The peer of an accepted socket (AF_UNSPEC if unknown) and its address
   as text ("-" if unknown). */
void	 client_peer(int fd, struct sockaddr_storage *peer, char *ip,
	    size_t iplen);
/*
 * The client address of the connection `from` describes is final: its
 * peer (the TCP peer, or the source a trusted PROXY header named) and
 * client_ip, made here from it, are what every policy (rate limit,
 * ip-hash, access rules) and every log line of the connection use.
 * Called once per connection, before any protocol byte is read as the
 * client's: at accept on a listener without proxy-protocol, after the
 * PROXY header (proxyin.c) on one with it.  false: the connection is
 * refused and the caller drops it.  What is per client address and per
 * connection (the per-client connection cap) belongs here.
 */
bool	 client_address_final(struct client *from);

/* from, for a socket just accepted on listener li: wk, fd, li, the
   current generation with a reference, its peer; nothing else. */
void	 client_accepted(struct client *from, struct worker *wk, int fd,
	    size_t li);
/* The same, the client address final at once (a listener without
   proxy-protocol): false if it was refused, and then dropped. */
bool	 client_accepted_final(struct client *from, struct worker *wk,
	    int fd, size_t li);

/* Stop sending for good: TLS's close_notify (tls may be NULL), then a
   half-close of the socket. */
void	 client_linger(int fd, struct tls_conn *tls);
/* Read and drop what the client sends: true once it is done (its end, or
   an error), false while more may come. */
bool	 client_drain(int fd);

#endif /* PORTCULLIS_CLIENT_H */
