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
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>

#include "connlimit.h"
#include "control.h"
#include "gen.h"
#include "image.h"
#include "listen.h"
#include "log.h"
#include "metrics.h"
#include "privs.h"
#include "proxy.h"
#include "ratelimit.h"
#include "sandbox.h"
#include "shm.h"
#include "tls.h"
#include "signcli.h"
#include "upstate.h"
#include "upstream.h"
#include "uptls.h"
#include "util.h"
#include "worker.h"

#define ACCEPT_BATCH		64
#define ACCEPT_BACKOFF_MIN	0.1
#define ACCEPT_BACKOFF_MAX	2.0
/* A generation that fails to load is tried again this often, this many
   times (an allocation that fails for a moment), before the NACK. */
#define LOAD_RETRY_INTERVAL	0.05
#define LOAD_RETRY_TRIES	20

struct worker {
	unsigned		 id;
	struct ev_loop		*loop;
	struct gen		*gen;		/* the live generation */
	struct config		*cfg;		/* gen->cfg */
	struct metrics_certs	*mcerts;	/* of cfg, at the first scrape */
	struct proxy_ctx	 px;		/* loop, pool, upstream fds */
	struct shm		 shm;
	struct shm_counters	*counters;
	struct shm_stats	*stats;
	struct ratelimit	*rl;
	struct upstate		 ups;
	struct connlimit	 cap;		/* max-connections-per-client */
	struct listen_sock	 socks[LISTEN_MAX];
	worker_accept_fn	*handler[LISTEN_MAX];	/* of socks[i] */
	ev_io			 accept_w[LISTEN_MAX];
	size_t			 nsocks;
	ev_io			 control_w;
	struct control_child	 control;	/* control_w's */
	ev_signal		 sigterm_w;
	ev_signal		 sigint_w;
	ev_timer		 drain_w;
	ev_prepare		 flush_w;	/* batched log lines */

	struct conns		 conns;		/* and the fds they hold */
	unsigned		 max_conns;
	unsigned		 fds_base;	/* open before any connection */
	unsigned		 fd_limit;	/* RLIMIT_NOFILE */

	/* Accepting pauses at the cap, or waits out descriptor pressure. */
	bool			 accepting;
	bool			 at_cap;
	bool			 fd_wait;
	bool			 paused;	/* an episode is going on */
	double			 pause_start;
	double			 backoff;
	ev_timer		 backoff_w;

	/* A generation being tried again (config_cb), and how often yet. */
	ev_timer		 load_w;
	uint64_t		 load_gen;
	unsigned		 load_tries;

	bool			 draining;
};

static void	worker_drain(struct worker *, const char *);

struct ev_loop *
worker_loop(const struct worker *wk)
{
	return wk->loop;
}

struct proxy_ctx *
worker_proxy_ctx(struct worker *wk)
{
	return &wk->px;
}

struct conns *
worker_conns(struct worker *wk)
{
	return &wk->conns;
}

struct connlimit *
worker_connlimit(struct worker *wk)
{
	return &wk->cap;
}

struct gen *
worker_gen(const struct worker *wk)
{
	return wk->gen;
}

void
worker_fd_add(struct worker *wk, unsigned n)
{
	wk->conns.nfds += n;
}

void
worker_fd_del(struct worker *wk, unsigned n)
{
	wk->conns.nfds -= n;
}

struct shm_counters *
worker_counters(const struct worker *wk)
{
	return wk->counters;
}

struct shm_stats *
worker_stats(const struct worker *wk)
{
	return wk->stats;
}

char *
worker_metrics(struct worker *wk, size_t *len)
{
	struct metrics_snapshot s;
	char *buf = NULL;
	size_t n;

	/* Read once per generation, not per scrape (freed with it). */
	if (wk->mcerts == NULL &&
	    (wk->mcerts = metrics_certs_new(wk->cfg)) == NULL)
		return NULL;
	if (metrics_collect(&s, &wk->shm, &wk->ups, wk->cfg, wk->mcerts) ==
	    -1)
		return NULL;
	n = metrics_render(&s, NULL, 0);
	if ((buf = malloc(n + 1)) != NULL) {
		*len = metrics_render(&s, buf, n + 1);
		/* The snapshot does not change between the two: no cut. */
		if (*len != n) {
			free(buf);
			buf = NULL;
		}
	}
	metrics_snapshot_free(&s);
	return buf;
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
	return wk->fds_base + wk->conns.nfds + wk->px.nfds +
	    upstream_pool_size(wk->px.pool) + 2 + WORKER_FD_RESERVE <=
	    wk->fd_limit;
}

void
worker_conn_add(struct worker *wk, struct worker_conn *c)
{
	conns_add(&wk->conns, c);
}

void
worker_conn_del(struct worker *wk, struct worker_conn *c)
{
	conns_del(&wk->conns, c);
}

/* A connection went: may end the process's drain or resume accepting. */
static void
conn_released(struct conns *s UNUSED, void *arg)
{
	struct worker *wk = arg;

	if (wk->draining) {
		if (wk->conns.n == 0)
			ev_break(wk->loop, EVBREAK_ALL);
		return;
	}
	/* Descriptors were freed: no need to wait for the timer. */
	if (wk->fd_wait && fds_available(wk)) {
		wk->fd_wait = false;
		ev_timer_stop(wk->loop, &wk->backoff_w);
	}
	if (wk->at_cap && wk->conns.n < wk->max_conns)
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
	    wk->conns.n, wk->fd_limit);
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
	if (wk->conns.n >= wk->max_conns) {
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
			/* A connection's own error, passed on by accept
			   (accept(2), Linux), which took it off the queue:
			   the next one may be fine. */
			case EPROTO:
			case ENOPROTOOPT:
			case EHOSTDOWN:
			case ENONET:
			case EHOSTUNREACH:
			case EOPNOTSUPP:
			case ENETDOWN:
			case ENETUNREACH:
				continue;
			default:
				/* EMFILE, ENFILE, ENOBUFS, ENOMEM, or what
				   else persists: the socket stays readable, so
				   returning would call us again at once (a spin,
				   a line each time).  Wait, say it once. */
				fd_backoff(wk, strerror(errno));
				return;
			}
		}
		if (ls->kind != LISTEN_HEALTH)
			atomic_fetch_add(&wk->counters->accepted, 1);
		wk->handler[ls - wk->socks](wk, fd, ls);
	}
}

static void
drain_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents UNUSED)
{
	struct worker *wk = w->data;

	log_warnx("shutdown timeout: closing %u connections", wk->conns.n);
	ev_break(loop, EVBREAK_ALL);
}

static void
worker_drain(struct worker *wk, const char *why)
{
	size_t i;

	if (wk->draining)
		return;
	log_info("draining (%s): %u connections", why, wk->conns.n);
	accept_set(wk, false);
	wk->draining = true;
	ev_timer_stop(wk->loop, &wk->backoff_w);
	ev_timer_stop(wk->loop, &wk->load_w);
	/* Closed here too, so that new connections are refused at once. */
	for (i = 0; i < wk->nsocks; i++) {
		if (wk->socks[i].fd != -1) {
			close(wk->socks[i].fd);
			wk->socks[i].fd = -1;
		}
	}
	upstream_pool_flush(wk->px.pool);
	conns_drain(&wk->conns);
	if (wk->conns.n == 0) {
		ev_break(wk->loop, EVBREAK_ALL);
		return;
	}
	ev_timer_init(&wk->drain_w, drain_timeout_cb,
	    (double)wk->cfg->shutdown_timeout, 0.);
	wk->drain_w.data = wk;
	ev_timer_start(wk->loop, &wk->drain_w);
}

/* Copy, decode and switch to generation gen.  0, or -1 with why. */
static int
worker_load(struct worker *wk, uint64_t gen, const char **why)
{
	unsigned char *img, tk[SHM_TICKET_KEY_MAX];
	struct config *cfg;
	struct gen *g;
	uint64_t got;
	size_t len, tklen;
	int rc;

	if (shm_copy_image(&wk->shm, gen, &img, &len, &got, tk, &tklen) ==
	    -1) {
		*why = "generation not in its slot";
		return -1;
	}
	rc = image_decode(img, len, &cfg, &got);
	explicit_bzero(img, len);
	free(img);
	if (rc == -1) {
		explicit_bzero(tk, sizeof(tk));
		*why = "malformed config image";
		return -1;
	}
	/* The generation's ctx derives its own keys: this copy goes. */
	g = gen_new(cfg, got, tk, tklen, wk->shm.cfg->sticky_key,
	    sizeof(wk->shm.cfg->sticky_key), why);
	explicit_bzero(tk, sizeof(tk));
	if (g == NULL)
		return -1;
	/* Open connections keep the generation they hold a reference to;
	   its ticket keys go now (issue 19). */
	if (wk->gen != NULL)
		tls_ctx_retire(wk->gen->tls);
	/* What the scrape read of the old config's certificates goes
	   before it does. */
	metrics_certs_free(wk->mcerts);
	wk->mcerts = NULL;
	gen_unref(wk->gen);
	wk->gen = g;
	wk->cfg = g->cfg;
	return 0;
}

/*
 * A generation that does not load (an allocation failed, say) is tried
 * again on a timer, LOAD_RETRY_TRIES times, before the worker says no:
 * the master kills a worker that rejects a generation, and with it every
 * connection it serves.  Meanwhile the worker serves the one it has.
 */
static uint64_t
config_cb(void *arg, uint64_t gen, const char **why)
{
	struct worker *wk = arg;

	ev_timer_stop(wk->loop, &wk->load_w);
	if (gen > wk->gen->id && worker_load(wk, gen, why) == -1) {
		log_debug("generation %llu: %s; trying again",
		    (unsigned long long)gen, *why);
		wk->load_gen = gen;
		wk->load_tries = 1;
		ev_timer_start(wk->loop, &wk->load_w);
		return CONTROL_GEN_LATER;
	}
	log_debug("generation %llu live", (unsigned long long)wk->gen->id);
	return wk->gen->id;
}

static void
load_retry_cb(struct ev_loop *loop UNUSED, ev_timer *w, int revents UNUSED)
{
	struct worker *wk = w->data;
	const char *why = "";

	if (worker_load(wk, wk->load_gen, &why) == 0) {
		log_info("generation %llu loaded at try %u",
		    (unsigned long long)wk->load_gen, wk->load_tries + 1);
		control_child_answer(&wk->control, wk->load_gen, wk->gen->id,
		    "");
		return;
	}
	if (++wk->load_tries < LOAD_RETRY_TRIES) {
		ev_timer_start(wk->loop, &wk->load_w);
		return;
	}
	control_child_answer(&wk->control, wk->load_gen, 0, why);
}

static void
drain_cb(void *arg, const char *why)
{
	worker_drain(arg, why);
}

static void
control_cb(struct ev_loop *loop, ev_io *w, int revents UNUSED)
{
	if (control_child_read(w->data) == 0)
		ev_io_stop(loop, w);
}

static void
signal_cb(struct ev_loop *loop UNUSED, ev_signal *w, int revents UNUSED)
{
	struct worker *wk = w->data;

	worker_drain(wk, w->signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

/* The listeners must be what the master said they are. */
static void
check_listeners(struct worker *wk, const struct worker_handlers *h)
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
		if ((unsigned)wk->socks[i].kind >= LISTEN_KINDS ||
		    (wk->handler[i] = h->accept[wk->socks[i].kind]) == NULL)
			fatalx("no handler for listener kind %d",
			    (int)wk->socks[i].kind);
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
	wk->control = (struct control_child){ WORKER_FD_CONTROL,
	    WORKER_FD_REPORT, config_cb, drain_cb, wk };
	ev_io_init(&wk->control_w, control_cb, WORKER_FD_CONTROL, EV_READ);
	wk->control_w.data = &wk->control;
	ev_io_start(wk->loop, &wk->control_w);
	ev_signal_init(&wk->sigterm_w, signal_cb, SIGTERM);
	wk->sigterm_w.data = wk;
	ev_signal_start(wk->loop, &wk->sigterm_w);
	ev_signal_init(&wk->sigint_w, signal_cb, SIGINT);
	wk->sigint_w.data = wk;
	ev_signal_start(wk->loop, &wk->sigint_w);
	ev_timer_init(&wk->backoff_w, backoff_cb, ACCEPT_BACKOFF_MIN, 0.);
	ev_timer_init(&wk->load_w, load_retry_cb, LOAD_RETRY_INTERVAL, 0.);
	wk->load_w.data = wk;
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
worker_start(struct worker *wk, const struct worker_handlers *h)
{
	enum sandbox_mode sb = sandbox_mode_from_env();
	const char *why;
	struct control_msg m;
	size_t rlsize;
	void *rl;

	control_child_check(WORKER_FD_CONTROL, WORKER_FD_REPORT, WORKER_ENV);
	signcli_child_check(WORKER_FD_SIGNER, WORKER_ENV);
	if (privs_worker_drop(true) == -1)
		fatal("cannot drop privileges");
	if (shm_attach(&wk->shm, WORKER_FD_CONFIG, WORKER_FD_STATE) == -1)
		fatal("shared segment");
	if ((wk->counters = shm_counters(&wk->shm, wk->id)) == NULL)
		fatalx("worker index %u out of range", wk->id);
	/* The same row as the worker this one replaces: no counter goes
	   back when a worker is respawned. */
	if ((wk->stats = shm_stats(&wk->shm, wk->id)) == NULL)
		fatalx("worker index %u out of range", wk->id);
	atomic_store(&wk->counters->pid, (uint64_t)getpid());
	atomic_store(&wk->counters->active_connections, 0);
	conns_init(&wk->conns, &wk->counters->active_connections,
	    conn_released, wk);
	rl = shm_ratelimit(&wk->shm, &rlsize);
	if ((wk->rl = ratelimit_attach(rl, rlsize, wk->counters)) == NULL)
		fatalx("shared segment: no valid rate-limit table");
	rl = shm_upstate(&wk->shm, &rlsize);
	upstate_attach(&wk->ups, rl, rlsize, CONFIG_MAX_WORKERS, wk->id);
	rl = shm_connlimit(&wk->shm, &rlsize);
	connlimit_attach(&wk->cap, rl, rlsize, CONFIG_MAX_WORKERS, wk->id,
	    wk->shm.cfg->connlimit_key);
	if (worker_load(wk, 0, &why) == -1)
		fatalx("cannot load the configuration: %s", why);
	log_configure(wk->cfg->log_level, wk->cfg->log_format);
	log_set_access(wk->cfg->log_access);
	check_listeners(wk, h);
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
	wk->px.loop = wk->loop;
	wk->px.ups = &wk->ups;
	if ((wk->px.pool = upstream_pool_new(wk->loop)) == NULL ||
	    (wk->px.tls_cache = uptls_cache_new()) == NULL)
		fatalx("out of memory");
	setup_limits(wk);
	setup_watchers(wk);
	/* Everything is open and mapped: from here on, only the list. */
	if (sandbox_apply(SANDBOX_WORKER, sb) == -1)
		fatal("cannot install the sandbox");

	memset(&m, 0, sizeof(m));
	m.type = CONTROL_READY;
	m.gen = wk->gen->id;
	m.pid = (uint32_t)getpid();
	m.fd = -1;
	if (control_report(WORKER_FD_REPORT, &m) == -1)
		fatal("control: ready");
	log_info("serving generation %llu", (unsigned long long)wk->gen->id);
}

int
worker_main(const struct worker_handlers *h)
{
	struct worker wk;

	memset(&wk, 0, sizeof(wk));
	wk.id = worker_id_from_env();
	log_init("worker", (int)wk.id);
	(void)log_journal_detect();	/* before the sandbox (log.h) */
	worker_start(&wk, h);

	ev_run(wk.loop, 0);

	/* Whatever is left after the drain deadline is cut. */
	wk.draining = true;
	conns_abort(&wk.conns);
	log_batching(false);
	log_info("exiting");
	upstream_pool_free(wk.px.pool);
	uptls_cache_free(wk.px.tls_cache);
	ratelimit_detach(wk.rl);
	metrics_certs_free(wk.mcerts);
	gen_unref(wk.gen);
	shm_close(&wk.shm);
	ev_loop_destroy(wk.loop);
	return 0;
}
