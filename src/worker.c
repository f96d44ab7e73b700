/*
 * worker.c - a worker process (see worker.h).
 *
 * Started by the master with fork + exec, so every worker (a respawned one
 * too) gets a fresh address-space layout.  It inherits:
 *   fd 3  control channel, master -> worker (SOCK_SEQPACKET)
 *   fd 4  config part of the shared segment, read-only
 *   fd 5  state part of the shared segment
 *   fd 6  report pipe, worker -> master
 *   fd 7+ the listening sockets, in listen_plan() order (listen.h)
 * It drops every privilege before it reads a byte from anyone.
 */
#include "autoconf.h"

#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>

#include "control.h"
#include "h1.h"
#include "health.h"
#include "image.h"
#include "listen.h"
#include "log.h"
#include "privs.h"
#include "ratelimit.h"
#include "route.h"
#include "shm.h"
#include "tls.h"
#include "upstream.h"
#include "util.h"
#include "worker.h"

#define ACCEPT_BATCH		64
#define ACCEPT_BACKOFF_MIN	0.1
#define ACCEPT_BACKOFF_MAX	2.0

struct worker {
	unsigned		 id;
	struct ev_loop		*loop;
	struct gen		*gen;		/* the live generation */
	struct config		*cfg;		/* gen->cfg */
	struct upstream_pool	*pool;
	struct shm		 shm;
	struct shm_counters	*counters;
	struct ratelimit	*rl;
	struct listen_sock	 socks[LISTEN_MAX];
	ev_io			 accept_w[LISTEN_MAX];
	size_t			 nsocks;
	ev_io			 ctl_w;
	ev_signal		 sigterm_w;
	ev_signal		 sigint_w;
	ev_timer		 drain_w;
	ev_prepare		 flush_w;	/* batched log lines */

	TAILQ_HEAD(, worker_conn) conns;
	unsigned		 nconns;
	unsigned		 max_conns;
	unsigned		 fds_base;	/* open before any connection */
	unsigned		 fds_conns;	/* held by connections */
	unsigned		 fd_limit;	/* RLIMIT_NOFILE */

	/* Accepting pauses at the cap, or waits out descriptor pressure. */
	bool			 accepting;
	bool			 at_cap;
	bool			 fd_wait;
	bool			 paused;	/* an episode is going on */
	double			 pause_start;
	double			 backoff;
	ev_timer		 backoff_w;

	bool			 draining;
};

static void	worker_drain(struct worker *, const char *);

struct ev_loop *
worker_loop(const struct worker *wk)
{
	return wk->loop;
}

struct upstream_pool *
worker_pool(const struct worker *wk)
{
	return wk->pool;
}

struct gen *
worker_gen(const struct worker *wk)
{
	return wk->gen;
}

struct gen *
gen_ref(struct gen *g)
{
	g->refs++;
	return g;
}

void
gen_unref(struct gen *g)
{
	if (g == NULL || --g->refs > 0)
		return;
	tls_ctx_free(g->tls);
	route_free(g->routes);
	config_free(g->cfg);
	free(g);
}

void
worker_fd_add(struct worker *wk, unsigned n)
{
	wk->fds_conns += n;
}

void
worker_fd_del(struct worker *wk, unsigned n)
{
	wk->fds_conns -= n;
}

void
worker_peer_name(int fd, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t slen = sizeof(ss);
	const void *addr;

	snprintf(buf, len, "-");
	if (getpeername(fd, (struct sockaddr *)&ss, &slen) == -1)
		return;
	if (ss.ss_family == AF_INET)
		addr = &((struct sockaddr_in *)&ss)->sin_addr;
	else if (ss.ss_family == AF_INET6)
		addr = &((struct sockaddr_in6 *)&ss)->sin6_addr;
	else
		return;
	if (inet_ntop(ss.ss_family, addr, buf, (socklen_t)len) == NULL)
		snprintf(buf, len, "-");
}

struct shm_counters *
worker_counters(const struct worker *wk)
{
	return wk->counters;
}

struct ratelimit *
worker_ratelimit(const struct worker *wk)
{
	return wk->rl;
}

bool
worker_draining(const struct worker *wk)
{
	return wk->draining;
}

static void
accept_set(struct worker *wk, bool on)
{
	size_t i;

	if (wk->accepting == on || wk->draining)
		return;
	wk->accepting = on;
	for (i = 0; i < wk->nsocks; i++) {
		if (wk->socks[i].fd == -1)
			continue;
		if (on)
			ev_io_start(wk->loop, &wk->accept_w[i]);
		else
			ev_io_stop(wk->loop, &wk->accept_w[i]);
	}
}

/* Whether accepting one more keeps the descriptor reserve intact. */
static bool
fds_available(const struct worker *wk)
{
	return wk->fds_base + wk->fds_conns + upstream_pool_size(wk->pool) +
	    2 + WORKER_FD_RESERVE <= wk->fd_limit;
}

void
worker_conn_add(struct worker *wk, struct worker_conn *c)
{
	TAILQ_INSERT_TAIL(&wk->conns, c, entry);
	wk->nconns++;
	wk->fds_conns += c->nfds;
	atomic_fetch_add(&wk->counters->active_connections, 1);
}

void
worker_conn_del(struct worker *wk, struct worker_conn *c)
{
	TAILQ_REMOVE(&wk->conns, c, entry);
	wk->nconns--;
	wk->fds_conns -= c->nfds;
	atomic_fetch_sub(&wk->counters->active_connections, 1);
	if (wk->draining) {
		if (wk->nconns == 0)
			ev_break(wk->loop, EVBREAK_ALL);
		return;
	}
	/* Descriptors were freed: no need to wait for the timer. */
	if (wk->fd_wait && fds_available(wk)) {
		wk->fd_wait = false;
		ev_timer_stop(wk->loop, &wk->backoff_w);
	}
	if (wk->at_cap && wk->nconns < wk->max_conns)
		wk->at_cap = false;
	if (!wk->at_cap && !wk->fd_wait)
		accept_set(wk, true);
}

/*
 * An episode of paused accepting lasts until the listen queue is drained
 * again (accept says EAGAIN): one log line when it starts and one when it
 * ends, however often accepting stops and restarts in between.
 */
static void
pause_begin(struct worker *wk, const char *why)
{
	if (wk->paused)
		return;
	wk->paused = true;
	wk->pause_start = ev_now(wk->loop);
	wk->backoff = ACCEPT_BACKOFF_MIN / 2;
	log_warnx("accept paused: %s (%u connections, fd limit %u)", why,
	    wk->nconns, wk->fd_limit);
}

static void
pause_end(struct worker *wk)
{
	if (!wk->paused)
		return;
	wk->paused = false;
	log_info("accepting again after %.1fs", ev_now(wk->loop) -
	    wk->pause_start);
}

/* Out of descriptors: stop accepting and retry on a growing timer. */
static void
fd_backoff(struct worker *wk, const char *why)
{
	pause_begin(wk, why);
	wk->backoff = MINIMUM(MAXIMUM(wk->backoff * 2, ACCEPT_BACKOFF_MIN),
	    ACCEPT_BACKOFF_MAX);
	wk->fd_wait = true;
	accept_set(wk, false);
	ev_timer_set(&wk->backoff_w, wk->backoff, 0.);
	ev_timer_start(wk->loop, &wk->backoff_w);
}

static void
backoff_cb(struct ev_loop *loop UNUSED, ev_timer *w, int revents UNUSED)
{
	struct worker *wk = w->data;

	/* Try again; the next accept pauses anew if nothing changed. */
	wk->fd_wait = false;
	if (!wk->at_cap)
		accept_set(wk, true);
}

/* Whether one more connection fits; pauses accepting if not. */
static bool
accept_allowed(struct worker *wk)
{
	if (wk->nconns >= wk->max_conns) {
		pause_begin(wk, "max-connections reached");
		wk->at_cap = true;
		accept_set(wk, false);
		return false;
	}
	if (!fds_available(wk)) {
		fd_backoff(wk, "descriptor reserve reached");
		return false;
	}
	return true;
}

static void
dispatch(struct worker *wk, const struct listen_sock *ls, int fd)
{
	switch (ls->kind) {
	case LISTEN_HEALTH:
		health_accept(wk, fd);
		break;
	case LISTEN_HTTPS:
		h1_accept(wk, fd, ls->listener, true);
		break;
	case LISTEN_HTTP:
		h1_accept(wk, fd, ls->listener, false);
		break;
	}
}

static void
accept_cb(struct ev_loop *loop, ev_io *w, int revents UNUSED)
{
	struct worker *wk = ev_userdata(loop);
	const struct listen_sock *ls = w->data;
	int i, fd;

	for (i = 0; i < ACCEPT_BATCH && accept_allowed(wk); i++) {
		fd = accept4(ls->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			switch (errno) {
			case EAGAIN:
				pause_end(wk);
				return;
			case EINTR:
			case ECONNABORTED:
				continue;
			case EMFILE:
			case ENFILE:
			case ENOBUFS:
			case ENOMEM:
				fd_backoff(wk, strerror(errno));
				return;
			default:
				log_warn("accept");
				return;
			}
		}
		dispatch(wk, ls, fd);
	}
}

static void
drain_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents UNUSED)
{
	struct worker *wk = w->data;

	log_warnx("shutdown timeout: closing %u connections", wk->nconns);
	ev_break(loop, EVBREAK_ALL);
}

static void
worker_drain(struct worker *wk, const char *why)
{
	struct worker_conn *c, *next;
	size_t i;

	if (wk->draining)
		return;
	log_info("draining (%s): %u connections", why, wk->nconns);
	accept_set(wk, false);
	wk->draining = true;
	ev_timer_stop(wk->loop, &wk->backoff_w);
	/* Closed here too, so that new connections are refused at once. */
	for (i = 0; i < wk->nsocks; i++) {
		if (wk->socks[i].fd != -1) {
			close(wk->socks[i].fd);
			wk->socks[i].fd = -1;
		}
	}
	upstream_pool_flush(wk->pool);
	for (c = TAILQ_FIRST(&wk->conns); c != NULL; c = next) {
		next = TAILQ_NEXT(c, entry);
		c->drain(c);
	}
	if (wk->nconns == 0) {
		ev_break(wk->loop, EVBREAK_ALL);
		return;
	}
	ev_timer_init(&wk->drain_w, drain_timeout_cb,
	    (double)wk->cfg->shutdown_timeout, 0.);
	wk->drain_w.data = wk;
	ev_timer_start(wk->loop, &wk->drain_w);
}

/* Routing table and TLS credentials for a decoded config. */
static struct gen *
gen_build(struct worker *wk, struct config *cfg, uint64_t id,
    const char **why)
{
	static char err[256];
	struct gen *g;

	if ((g = calloc(1, sizeof(*g))) == NULL) {
		*why = "out of memory";
		config_free(cfg);
		return NULL;
	}
	g->refs = 1;
	g->id = id;
	g->cfg = cfg;
	if ((g->routes = route_build(cfg)) == NULL) {
		*why = "out of memory";
		gen_unref(g);
		return NULL;
	}
	g->tls = tls_ctx_new(cfg, g->routes, wk->shm.cfg->ticket_key,
	    wk->shm.cfg->ticket_key_len, err, sizeof(err));
	if (g->tls == NULL) {
		*why = err;
		gen_unref(g);
		return NULL;
	}
	return g;
}

/* Copy, decode and switch to generation gen.  0, or -1 with why. */
static int
worker_load(struct worker *wk, uint64_t gen, const char **why)
{
	unsigned char *img;
	struct config *cfg;
	struct gen *g;
	uint64_t got;
	size_t len;
	int rc;

	if (shm_copy_image(&wk->shm, gen, &img, &len, &got) == -1) {
		*why = "generation not in its slot";
		return -1;
	}
	rc = image_decode(img, len, &cfg, &got);
	explicit_bzero(img, len);
	free(img);
	if (rc == -1) {
		*why = "malformed config image";
		return -1;
	}
	if ((g = gen_build(wk, cfg, got, why)) == NULL)
		return -1;
	/* Open connections keep the generation they hold a reference to. */
	gen_unref(wk->gen);
	wk->gen = g;
	wk->cfg = g->cfg;
	return 0;
}

static void
handle_config(struct worker *wk, uint64_t gen)
{
	struct ctl_msg m;
	const char *why;

	if (gen > wk->gen->id && worker_load(wk, gen, &why) == -1) {
		log_warnx("generation %llu rejected: %s",
		    (unsigned long long)gen, why);
		memset(&m, 0, sizeof(m));
		m.type = CTL_NACK;
		m.gen = gen;
		m.fd = -1;
		snprintf(m.text, sizeof(m.text), "%s", why);
		(void)control_report(WORKER_FD_REPORT, &m);
		return;
	}
	log_debug("generation %llu live", (unsigned long long)wk->gen->id);
	(void)control_report_gen(WORKER_FD_REPORT, CTL_ACK, wk->gen->id);
}

static void
ctl_cb(struct ev_loop *loop, ev_io *w, int revents UNUSED)
{
	struct worker *wk = w->data;
	struct ctl_msg m;
	int rc;

	while ((rc = control_recv(WORKER_FD_CONTROL, &m)) == 1) {
		switch (m.type) {
		case CTL_CONFIG:
			handle_config(wk, m.gen);
			break;
		case CTL_DRAIN:
			worker_drain(wk, "master asked");
			break;
		case CTL_REOPEN_LOG:
			log_flush();
			if (dup2(m.fd, STDERR_FILENO) == -1)
				log_warn("reopen log");
			close(m.fd);
			break;
		default:
			fatalx("control: unexpected message %d", m.type);
		}
	}
	if (rc == 0) {
		/* The master is gone: nobody will supervise us. */
		ev_io_stop(loop, w);
		worker_drain(wk, "master exited");
	} else if (errno == EPROTO)
		fatalx("control: protocol violation");
}

static void
signal_cb(struct ev_loop *loop UNUSED, ev_signal *w, int revents UNUSED)
{
	struct worker *wk = w->data;

	worker_drain(wk, w->signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

/* Before anything else: refuse to run as a worker by accident. */
static void
check_control_fd(void)
{
	int type = 0;
	socklen_t len = sizeof(type);
	struct stat st;

	if (getsockopt(WORKER_FD_CONTROL, SOL_SOCKET, SO_TYPE, &type, &len)
	    == -1 || type != SOCK_SEQPACKET)
		fatalx("fd %d is not a control channel: %s is internal",
		    WORKER_FD_CONTROL, WORKER_ENV);
	if (fstat(WORKER_FD_REPORT, &st) == -1 || !S_ISFIFO(st.st_mode))
		fatalx("fd %d is not a report pipe: %s is internal",
		    WORKER_FD_REPORT, WORKER_ENV);
	/* Never wait on the master: a report that does not fit fails. */
	if (util_set_nonblock(WORKER_FD_CONTROL) == -1 ||
	    util_set_nonblock(WORKER_FD_REPORT) == -1)
		fatal("control channel");
}

/* The listeners must be what the master said they are. */
static void
check_listeners(struct worker *wk)
{
	int acc = 0;
	socklen_t len;
	size_t i;

	wk->nsocks = listen_plan(wk->cfg, wk->socks);
	for (i = 0; i < wk->nsocks; i++) {
		wk->socks[i].fd = LISTEN_FD_BASE + (int)i;
		len = sizeof(acc);
		if (getsockopt(wk->socks[i].fd, SOL_SOCKET, SO_ACCEPTCONN,
		    &acc, &len) == -1 || acc != 1)
			fatalx("fd %d is not a listening socket",
			    wk->socks[i].fd);
	}
}

static unsigned
count_open_fds(void)
{
	unsigned n = 0;
	int fd;

	/* Small: 0-2, both control channels, shm, listeners, libev's. */
	for (fd = 0; fd < 1024; fd++)
		if (fcntl(fd, F_GETFD) != -1)
			n++;
	return n;
}

static void
setup_limits(struct worker *wk)
{
	struct rlimit rl;

	wk->fd_limit = 1024;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		wk->fd_limit = (unsigned)MINIMUM(rl.rlim_cur, 1u << 30);
	wk->fds_base = count_open_fds();
	wk->max_conns = wk->cfg->max_connections;
	if (wk->fds_base + WORKER_FD_RESERVE + wk->max_conns * 2 >
	    wk->fd_limit)
		log_warnx("max-connections %u needs about %u descriptors; the "
		    "limit is %u", wk->max_conns, wk->max_conns * 2 +
		    wk->fds_base + WORKER_FD_RESERVE, wk->fd_limit);
}

static void
setup_watchers(struct worker *wk)
{
	size_t i;

	for (i = 0; i < wk->nsocks; i++) {
		ev_io_init(&wk->accept_w[i], accept_cb, wk->socks[i].fd,
		    EV_READ);
		wk->accept_w[i].data = &wk->socks[i];
	}
	ev_io_init(&wk->ctl_w, ctl_cb, WORKER_FD_CONTROL, EV_READ);
	wk->ctl_w.data = wk;
	ev_io_start(wk->loop, &wk->ctl_w);
	ev_signal_init(&wk->sigterm_w, signal_cb, SIGTERM);
	wk->sigterm_w.data = wk;
	ev_signal_start(wk->loop, &wk->sigterm_w);
	ev_signal_init(&wk->sigint_w, signal_cb, SIGINT);
	wk->sigint_w.data = wk;
	ev_signal_start(wk->loop, &wk->sigint_w);
	ev_timer_init(&wk->backoff_w, backoff_cb, ACCEPT_BACKOFF_MIN, 0.);
	wk->backoff_w.data = wk;
	accept_set(wk, true);
}

static unsigned
worker_id_from_env(void)
{
	const char *s = getenv(WORKER_ENV);
	uint64_t id;

	if (s == NULL || util_parse_u64(s, strlen(s), 0, SHM_MAX_WORKERS - 1,
	    &id) == -1)
		fatalx("bad %s", WORKER_ENV);
	unsetenv(WORKER_ENV);
	return (unsigned)id;
}

static void
flush_cb(struct ev_loop *loop UNUSED, ev_prepare *w UNUSED,
    int revents UNUSED)
{
	log_flush();
}

static void
worker_start(struct worker *wk)
{
	const char *why;
	struct ctl_msg m;
	size_t rlsize;
	void *rl;

	check_control_fd();
	if (privs_worker_drop(true) == -1)
		fatal("cannot drop privileges");
	if (shm_attach(&wk->shm, WORKER_FD_CONFIG, WORKER_FD_STATE) == -1)
		fatal("shared segment");
	if ((wk->counters = shm_counters(&wk->shm, wk->id)) == NULL)
		fatalx("worker index %u out of range", wk->id);
	atomic_store(&wk->counters->pid, (uint64_t)getpid());
	atomic_store(&wk->counters->active_connections, 0);
	rl = shm_ratelimit(&wk->shm, &rlsize);
	if ((wk->rl = ratelimit_attach(rl, rlsize, wk->counters)) == NULL)
		fatalx("shared segment: no valid rate-limit table");
	if (worker_load(wk, 0, &why) == -1)
		fatalx("cannot load the configuration: %s", why);
	log_configure(wk->cfg->log_level, wk->cfg->log_format);
	log_set_access(wk->cfg->log_access);
	check_listeners(wk);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGUSR1, SIG_IGN);
	if ((wk->loop = ev_default_loop(EVBACKEND_EPOLL)) == NULL)
		fatalx("cannot start the event loop");
	ev_set_userdata(wk->loop, wk);
	/* Access lines go out once per loop iteration, not one write each. */
	ev_prepare_init(&wk->flush_w, flush_cb);
	ev_prepare_start(wk->loop, &wk->flush_w);
	ev_unref(wk->loop);
	log_batching(true);
	if ((wk->pool = upstream_pool_new(wk->loop)) == NULL)
		fatalx("out of memory");
	setup_limits(wk);
	setup_watchers(wk);

	memset(&m, 0, sizeof(m));
	m.type = CTL_READY;
	m.gen = wk->gen->id;
	m.pid = (uint32_t)getpid();
	m.fd = -1;
	if (control_report(WORKER_FD_REPORT, &m) == -1)
		fatal("control: ready");
	log_info("serving generation %llu", (unsigned long long)wk->gen->id);
}

int
worker_main(void)
{
	struct worker wk;
	struct worker_conn *c;

	memset(&wk, 0, sizeof(wk));
	TAILQ_INIT(&wk.conns);
	wk.id = worker_id_from_env();
	log_init("worker", (int)wk.id);
	worker_start(&wk);

	ev_run(wk.loop, 0);

	/* Whatever is left after the drain deadline is cut. */
	wk.draining = true;
	while ((c = TAILQ_FIRST(&wk.conns)) != NULL)
		c->abort(c);
	log_batching(false);
	log_info("exiting");
	upstream_pool_free(wk.pool);
	ratelimit_detach(wk.rl);
	gen_unref(wk.gen);
	shm_close(&wk.shm);
	ev_loop_destroy(wk.loop);
	return 0;
}
