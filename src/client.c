/*
 * client.c - what every client connection does (see client.h).
 */
#include "autoconf.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "client.h"
#include "config.h"
#include "gen.h"
#include "log.h"
#include "ratelimit.h"
#include "tls.h"
#include "worker.h"

void
client_peer(int fd, struct sockaddr_storage *peer, char *ip, size_t iplen)
{
	socklen_t slen = sizeof(*peer);

	if (getpeername(fd, (struct sockaddr *)peer, &slen) == -1)
		peer->ss_family = AF_UNSPEC;
	util_addr_text(peer, ip, iplen);
}

bool
client_address_final(struct client *from)
{
	util_addr_text(&from->peer, from->client_ip,
	    sizeof(from->client_ip));
	return client_admit(from);
}

void
client_accepted(struct client *from, struct worker *wk, int fd, size_t li)
{
	*from = (struct client){ .wk = wk, .fd = fd, .li = li,
	    .gen = gen_ref(worker_gen(wk)) };
	client_peer(fd, &from->peer, from->client_ip, sizeof(from->client_ip));
}

bool
client_accepted_final(struct client *from, struct worker *wk, int fd,
    size_t li)
{
	client_accepted(from, wk, fd, li);
	if (client_address_final(from))
		return true;
	client_drop(from);
	return false;
}

static void
log_refused(const struct client *cl, const struct config_listener *l)
{
	struct log_event ev;
	char net[RATELIMIT_NET_NAME_MAX];

	log_event_begin(&ev, "CONN_LIMIT");
	log_event_cstr(&ev, "client_ip", cl->client_ip);
	if (ratelimit_net_name((const struct sockaddr *)&cl->peer, net,
	    sizeof(net)))
		log_event_cstr(&ev, "client_net", net);
	log_event_uint(&ev, "listener", cl->li + 1);
	log_event_uint(&ev, "max_connections_per_client",
	    l->max_conns_per_client);
	log_event_end(&ev);
}

bool
client_admit(struct client *cl)
{
	const struct config_listener *l = &cl->gen->cfg->listeners[cl->li];
	struct connlimit *c;
	uint64_t hash;

	if (l->max_conns_per_client == 0)
		return true;
	c = worker_connlimit(cl->wk);
	hash = connlimit_hash(c, cl->li, (const struct sockaddr *)&cl->peer);
	switch (connlimit_take(c, hash, l->max_conns_per_client, &cl->cap)) {
	case CONNLIMIT_COUNTED:
		return true;
	case CONNLIMIT_UNCOUNTED:
		if (hash != 0 && connlimit_full_due(c, connlimit_now_s()))
			log_warnx("max-connections-per-client: no free entry "
			    "for %s: admitted uncounted (this line at most "
			    "once a minute)", cl->client_ip);
		return true;
	case CONNLIMIT_REFUSED:
	default:
		if (connlimit_log_due(c, hash, connlimit_now_s()))
			log_refused(cl, l);
		return false;
	}
}

/* What the connection counted, if anything, no longer counts. */
static void
client_release(const struct client *cl)
{
	struct connlimit_ticket t = cl->cap;

	if (t.hash != 0)
		connlimit_release(worker_connlimit(cl->wk), &t);
}

void
client_linger(int fd, struct tls_conn *tls)
{
	if (tls != NULL)
		tls_conn_bye(tls);
	(void)shutdown(fd, SHUT_WR);
}

bool
client_drain(int fd)
{
	char junk[16384];
	ssize_t n;

	while ((n = recv(fd, junk, sizeof(junk), 0)) > 0)
		;
	return n == 0 || (errno != EAGAIN && errno != EINTR);
}

void
client_take(struct client *cl, const struct client_ops *ops, void *data,
    const struct client *from)
{
	cl->wk = from->wk;
	cl->gen = from->gen;
	cl->li = from->li;
	cl->fd = from->fd;
	cl->tls = from->tls;
	cl->peer = from->peer;
	cl->cap = from->cap;
	memcpy(cl->client_ip, from->client_ip, sizeof(cl->client_ip));
	cl->client_ip[sizeof(cl->client_ip) - 1] = '\0';
	cl->rc = (struct request_conn){ .li = cl->li, .tls = cl->tls != NULL,
	    .gen = cl->gen, .cert_id = cl->tls != NULL ?
	    tls_conn_cert_id(cl->tls) : 0, .peer = (struct sockaddr *)&cl->peer,
	    .client_ip = cl->client_ip, .fd = cl->fd, .session = cl->tls };
	if (cl->tls != NULL) {
		cl->rc.auth_id = tls_conn_auth_id(cl->tls);
		cl->rc.client_cert = tls_conn_client_cert(cl->tls);
	}
	cl->wc.nfds = 1;
	cl->wc.drain = ops->drain;
	cl->wc.abort = ops->abort;
	ev_io_init(&cl->io, ops->io, cl->fd, 0);
	cl->io.data = data;
	ev_timer_init(&cl->timer, ops->timer, 0., 1.);
	cl->timer.data = data;
	worker_conn_add(cl->wk, &cl->wc);
}

void
client_drop(const struct client *from)
{
	client_release(from);
	if (from->tls != NULL)
		tls_conn_free(from->tls);
	close(from->fd);
	gen_unref(from->gen);
}

static void
unwatch(struct client *cl)
{
	struct ev_loop *loop = worker_loop(cl->wk);

	ev_io_stop(loop, &cl->io);
	ev_timer_stop(loop, &cl->timer);
	ev_clear_pending(loop, &cl->io);
	ev_clear_pending(loop, &cl->timer);
}

void
client_leave(struct client *cl)
{
	unwatch(cl);
	worker_conn_del(cl->wk, &cl->wc);
}

void
client_close(struct client *cl)
{
	unwatch(cl);
	if (cl->tls != NULL)
		tls_conn_free(cl->tls);
	cl->tls = NULL;
	close(cl->fd);
	gen_unref(cl->gen);
	cl->gen = NULL;
	client_release(cl);
	cl->cap.hash = 0;
	worker_conn_del(cl->wk, &cl->wc);
}
