/*
 * master.c - the privileged master process (see master.h).
 */
#include "autoconf.h"

#include <sys/mman.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>
#include <systemd/sd-daemon.h>

#include "acme.h"
#include "acmestate.h"
#include "admin.h"
#include "connlimit.h"
#include "control.h"
#include "image.h"
#include "listen.h"
#include "log.h"
#include "master.h"
#include "metrics.h"
#include "privs.h"
#include "prober.h"
#include "ratelimit.h"
#include "sandbox.h"
#include "shm.h"
#include "ticketkeys.h"
#include "signer.h"
#include "signproto.h"
#include "tls.h"
#include "upstate.h"
#include "util.h"
#include "worker.h"

extern char **environ;

struct master;

/*
 * What the master supervises: the workers, and one process of each other
 * kind (a helper), while the configuration wants it.
 */
enum mkind {
	MK_WORKER = 0,
	MK_ACME,		/* acme.h */
	MK_PROBER,		/* prober.h */
	MK_SIGNER,		/* signer.h */
	MK_KINDS
};
#define MK_HELPERS	(MK_KINDS - 1)

struct mworker {
	struct master	*m;
	enum mkind	 kind;
	unsigned	 id;		/* a worker's index; a helper's is
					   after the workers' */
	pid_t		 pid;		/* 0: not running */
	int		 control;	/* to it; -1: not running */
	int		 report;	/* from it (pipe); -1: not running */
	ev_io		 report_w;
	ev_timer	 respawn_w;
	bool		 ready;
	uint64_t	 acked;		/* newest generation it applied */
	double		 started;
	double		 backoff;	/* delay of the next respawn */
	bool		 killed;	/* by kill_worker (a restart's cause) */
};

struct master {
	struct ev_loop		*loop;
	struct config_opts	 opts;
	struct config		*cfg;
	struct privs_user	 user;
	struct shm		 shm;
	struct ratelimit	*rl;		/* only to repair its header */
	struct upstate		 ups;		/* the upstream table */
	struct upstate_alloc	*ualloc;	/* whose slot is whose */
	struct metrics_sites	*msites;	/* which site has which row */
	struct connlimit	 cap;		/* max-connections-per-client */
	int			 cfg_ro_fd;	/* config part, read-only */
	int			 exe_fd;	/* our own binary */
	struct listen_sock	 socks[LISTEN_MAX];
	size_t			 nsocks;
	struct admin		*admin;
	/* The workers (nw), then one helper of each kind (MK_ACME first):
	   nproc in all. */
	struct mworker		*w;
	unsigned		 nw;
	unsigned		 nproc;
	uint64_t		 gen;
	double			 start;
	bool			 ready_sent;
	bool			 stopping;

	/* A reload waits for every running worker to ack gen. */
	bool			 reloading;
	bool			 reload_again;
	struct admin_client	*waiting[ADMIN_MAX_CLIENTS];
	size_t			 nwaiting;
	struct admin_client	*queued[ADMIN_MAX_CLIENTS];
	size_t			 nqueued;
	ev_timer		 reload_w;

	/* The signer (signer.h): its end of each child's channel, by the
	   child's index (-1: none), kept so that a respawned signer gets
	   them all; the key set it last got (a SipHash under sign_sip). */
	int			*sch;
	uint64_t		 keys_sum;
	bool			 keys_sent;
	unsigned char		 sign_sip[16];

	/* The ACME process and what it is doing for us. */
	struct acme_state	*acme;
	bool			 acme_publish;	/* a publish waits its turn */
	bool			 publishing;	/* the one in flight is ours */
	uint32_t		 renew_id;
	struct {
		uint32_t		 id;
		struct admin_client	*c;
	}			 renews[ADMIN_MAX_CLIENTS];
	size_t			 nrenews;

	/* Session-ticket keys (issue 19): the ring, its timer, a rotation
	   waiting for its turn, and the admin clients of a rotation not
	   yet published (queued) and of the one in flight (waiting). */
	struct ticketkeys	 tk;
	ev_timer		 tk_w;
	unsigned		 tk_period;
	bool			 tk_pending;
	struct admin_client	*tk_queued[ADMIN_MAX_CLIENTS];
	size_t			 ntk_queued;
	struct admin_client	*tk_waiting[ADMIN_MAX_CLIENTS];
	size_t			 ntk_waiting;

	ev_signal		 sig_w[4];
	ev_child		 child_w;
	ev_timer		 stop_w;
};

static void	spawn(struct master *, struct mworker *);
static void	reload_start(struct master *);
static void	acme_publish_start(struct master *);
static void	acme_send_config(struct master *);
static void	acme_tell_live(struct master *);
static void	acme_renew_fail_all(struct master *, const char *);
static void	acme_exited(struct master *);
static void	tickets_rotate_start(struct master *);
static void	tickets_timer(struct master *);
static void	tickets_done(struct master *);
static void	handle_worker_msg(struct master *, struct mworker *,
		    const struct control_msg *);
static void	handle_acme_msg(struct master *, struct mworker *,
		    const struct control_msg *);
static void	handle_signer_msg(struct master *, struct mworker *,
		    const struct control_msg *);
static bool	signer_wanted(const struct config *);
static int	signer_channel_open(int [2]);
static void	signer_channel_set(struct master *, unsigned, int);
static void	signer_keys_send(struct master *, bool);
static void	signer_drain_if_last(struct master *);

/* What tells the kinds apart. */
static const struct mkind_def {
	const char	*argv0;
	const char	*env;		/* set to the index, "1" for a helper */
	const char	*name;		/* in log lines; NULL: "worker N" */
	bool		 shm;		/* fds 4 and 5: the shared segment */
	bool		 listeners;	/* fds 7 ...: the listeners */
	bool		 follows;	/* told of every generation (CONFIG) */
	/* A helper: whether the configuration wants it, and why not. */
	bool		(*wanted)(const struct config *);
	const char	*unwanted;
	/* A helper: what it is told on a reload; what its exit ends. */
	void		(*reconfigure)(struct master *);
	void		(*exited)(struct master *);
	void		(*handle)(struct master *, struct mworker *,
			    const struct control_msg *);
	bool		 signs;		/* fd 7: a channel to the signer */
} kinds[MK_KINDS] = {
	[MK_WORKER] = { "portcullis-worker", WORKER_ENV, NULL, true, true,
	    true, NULL, NULL, NULL, NULL, handle_worker_msg, true },
	[MK_ACME] = { "portcullis-acme", ACME_ENV, "the ACME process", false,
	    false, false, acme_state_wanted, "no listener uses ACME any more",
	    acme_send_config, acme_exited, handle_acme_msg, false },
	[MK_PROBER] = { "portcullis-prober", PROBER_ENV, "the prober", true,
	    false, true, prober_wanted, "no backend has a health-check any "
	    "more", NULL, NULL, handle_worker_msg, true },
	[MK_SIGNER] = { "portcullis-signer", SIGNER_ENV, "the signer", false,
	    false, false, signer_wanted, "", NULL, NULL, handle_signer_msg,
	    false },
};

/* The helper of kind k. */
static struct mworker *
helper(struct master *m, enum mkind k)
{
	return &m->w[m->nw + (unsigned)k - 1];
}

static bool
is_helper(const struct mworker *w)
{
	return w->kind != MK_WORKER;
}

static void PRINTFLIKE(1, 2)
notify(const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	(void)sd_notify(0, buf);
}

static unsigned
running_workers(const struct master *m, bool ready_only)
{
	unsigned i, n = 0;

	for (i = 0; i < m->nw; i++)
		if (m->w[i].pid != 0 && (!ready_only || m->w[i].ready))
			n++;
	return n;
}

/* Children still running, helpers included. */
static unsigned
running_children(const struct master *m)
{
	unsigned i, n = 0;

	for (i = 0; i < m->nproc; i++)
		if (m->w[i].pid != 0)
			n++;
	return n;
}

/*
 * STATUS= after `pre` in one datagram, so that a reader never sees the
 * READY=1 that `pre` may carry without the status that goes with it.
 */
static void
notify_status(struct master *m, const char *pre, const char *extra)
{
	notify("%sSTATUS=%u workers serving generation %llu%s", pre,
	    running_workers(m, true), (unsigned long long)m->gen, extra);
}

/* ---- the worker's side of fork: arrange descriptors and exec ---- */

_Static_assert(WORKER_FD_CONFIG == WORKER_FD_CONTROL + 1 &&
    WORKER_FD_STATE == WORKER_FD_CONTROL + 2 &&
    WORKER_FD_REPORT == WORKER_FD_CONTROL + 3 &&
    WORKER_FD_SIGNER == WORKER_FD_CONTROL + 4 &&
    LISTEN_FD_BASE == WORKER_FD_CONTROL + 5, "child_exec's layout");
_Static_assert(LOG_JOURNAL_FD_MIN > LISTEN_FD_BASE + LISTEN_MAX + 1,
    "a child's journal socket stays above its laid-out descriptors");

static void NORETURN
child_fail(const char *what)
{
	char buf[256];
	int n;

	n = snprintf(buf, sizeof(buf), "portcullis: worker start: %s: %s\n",
	    what, strerror(errno));
	if (n > 0)
		(void)util_write_all(STDERR_FILENO, buf, (size_t)n);
	_exit(127);
}

/*
 * Lay out the child's descriptors from WORKER_FD_CONTROL up (listen.h):
 * its control socket, the shared segment's two parts (a kind without
 * them has 4 and 5 closed), its report pipe, its channel to the signer
 * (7, closed for a kind without one), the listeners (workers), and
 * the binary, close-on-exec; nothing above.  Then become the service
 * user and execute the binary as its kind.
 */
static void NORETURN
child_exec(struct master *m, struct mworker *w, int control, int report,
    int signch)
{
	const struct mkind_def *k = &kinds[w->kind];
	int src[5 + LISTEN_MAX + 1], tmp[5 + LISTEN_MAX + 1];
	char *argv[] = { (char *)k->argv0, NULL };
	char idbuf[16];
	sigset_t none;
	size_t i, n = 0;
	int exe;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	src[n++] = control;
	src[n++] = k->shm ? m->cfg_ro_fd : -1;
	src[n++] = k->shm ? m->shm.state_fd : -1;
	src[n++] = report;
	src[n++] = signch;
	for (i = 0; k->listeners && i < m->nsocks; i++)
		src[n++] = m->socks[i].fd;
	src[n++] = m->exe_fd;
	/* Lift every source above the target range, then lay them out. */
	for (i = 0; i < n; i++)
		if (src[i] != -1 && (tmp[i] = fcntl(src[i], F_DUPFD_CLOEXEC,
		    WORKER_FD_CONTROL + (int)n)) == -1)
			child_fail("dup");
	for (i = 0; i < n; i++) {
		if (src[i] == -1)
			close(WORKER_FD_CONTROL + (int)i);
		else if (dup2(tmp[i], WORKER_FD_CONTROL + (int)i) == -1)
			child_fail("dup2");
	}
	exe = WORKER_FD_CONTROL + (int)n - 1;
	if (util_set_cloexec(exe, true) == -1)
		child_fail("cloexec");
	close_range((unsigned)exe + 1, ~0U, 0);

	if (privs_switch_user(&m->user) == -1)
		child_fail("switch user");
	snprintf(idbuf, sizeof(idbuf), "%u", is_helper(w) ? 1 : w->id);
	if (unsetenv("NOTIFY_SOCKET") == -1)
		child_fail("environment");
	for (i = 0; i < MK_KINDS; i++)
		if (unsetenv(kinds[i].env) == -1)
			child_fail("environment");
	if (setenv(k->env, idbuf, 1) == -1 ||
	    setenv(SANDBOX_ENV, sandbox_mode_name(m->cfg->seccomp), 1) == -1)
		child_fail("environment");
	fexecve(exe, argv, environ);
	child_fail("exec");
}

/* "worker 3", "the ACME process" or "the prober", for log lines. */
static const char *
wname(const struct mworker *w, char *buf, size_t bufsz)
{
	if (kinds[w->kind].name != NULL)
		return kinds[w->kind].name;
	snprintf(buf, bufsz, "worker %u", w->id);
	return buf;
}

/* ---- supervision ---- */

static struct mworker *
mworker_of(void *data)
{
	struct mworker *w = data;

	if (w == NULL || w->m == NULL)
		fatalx("master: corrupt worker");
	return w;
}

static void
reply_waiting(struct master *m, const char *json)
{
	size_t i;

	for (i = 0; i < m->nwaiting; i++)
		admin_reply(m->waiting[i], json);
	m->nwaiting = 0;
}

/* Back to READY; then run the reload that was asked meanwhile, if any. */
static void
reload_next(struct master *m)
{
	m->reloading = false;
	if (!m->publishing)
		notify("READY=1");
	m->publishing = false;
	if (!m->reload_again) {
		if (m->acme_publish) {
			m->acme_publish = false;
			acme_publish_start(m);
			return;
		}
		tickets_rotate_start(m);
		return;
	}
	m->reload_again = false;
	memcpy(m->waiting, m->queued, m->nqueued * sizeof(m->queued[0]));
	m->nwaiting = m->nqueued;
	m->nqueued = 0;
	reload_start(m);
}

static void
reload_done(struct master *m)
{
	char json[256];
	unsigned i, n = 0;

	for (i = 0; i < m->nw; i++)
		if (m->w[i].pid != 0 && m->w[i].acked >= m->gen)
			n++;
	snprintf(json, sizeof(json), "{\"status\":\"ok\",\"generation\":%llu,"
	    "\"workers\":%u}", (unsigned long long)m->gen, n);
	log_info("generation %llu is live on %u workers",
	    (unsigned long long)m->gen, n);
	reply_waiting(m, json);
	tickets_done(m);
	ev_timer_stop(m->loop, &m->reload_w);
	notify_status(m, "", "");
	acme_tell_live(m);
	reload_next(m);
}

/* A reload is done when no running worker still has to ack it. */
static void
reload_check(struct master *m)
{
	unsigned i;

	if (!m->reloading)
		return;
	for (i = 0; i < m->nw; i++)
		if (m->w[i].pid != 0 && m->w[i].acked < m->gen)
			return;
	reload_done(m);
}

/* READY=1 once every worker serves: whether it was sent now. */
static bool
ready_check(struct master *m)
{
	if (m->ready_sent || m->stopping || running_workers(m, true) < m->nw)
		return false;
	m->ready_sent = true;
	log_info("ready: %u workers serving generation %llu", m->nw,
	    (unsigned long long)m->gen);
	notify_status(m, "READY=1\n", "");
	return true;
}

/*
 * Whatever a worker being killed still has queued is not read: one bad
 * batch gives one line, and an ACK behind a violation does not count.
 */
static void
kill_worker(struct mworker *w, const char *why)
{
	char nb[32];

	log_warnx("%s (pid %d): %s; killing it", wname(w, nb, sizeof(nb)),
	    (int)w->pid, why);
	ev_io_stop(w->m->loop, &w->report_w);
	if (w->pid != 0 && kill(w->pid, SIGKILL) == -1)
		log_warn("kill %s", wname(w, nb, sizeof(nb)));
	else if (w->pid != 0)
		w->killed = true;
}

/*
 * A worker can only have applied a generation we published: one it makes
 * up (say UINT64_MAX, to look up to date for every later reload) is a
 * protocol violation, not a number to keep.
 */
static bool
gen_claim_ok(const struct master *m, struct mworker *w,
    const struct control_msg *msg)
{
	char why[128];

	if (msg->type != CONTROL_READY && msg->type != CONTROL_ACK &&
	    msg->type != CONTROL_NACK)
		return true;
	if (msg->gen >= 1 && msg->gen <= m->gen)
		return true;
	snprintf(why, sizeof(why), "named generation %llu, but the newest is "
	    "%llu", (unsigned long long)msg->gen, (unsigned long long)m->gen);
	kill_worker(w, why);
	return false;
}

/* A worker's messages, and the prober's (it follows generations too). */
static void
handle_worker_msg(struct master *m, struct mworker *w,
    const struct control_msg *msg)
{
	char why[CONTROL_TEXT_MAX + 64], nb[32];

	if (!gen_claim_ok(m, w, msg)) {
		reload_check(m);
		return;
	}
	switch (msg->type) {
	case CONTROL_READY:
		if (w->ready) {
			kill_worker(w, "said READY twice");
			break;
		}
		w->ready = true;
		w->acked = msg->gen;
		log_debug("%s (pid %u) ready at generation %llu",
		    wname(w, nb, sizeof(nb)), msg->pid,
		    (unsigned long long)msg->gen);
		/* Started before the latest publish: bring it up to date. */
		if (msg->gen < m->gen)
			(void)control_send_gen(w->control, CONTROL_CONFIG,
			    m->gen);
		/* The prober serves nobody: only workers make us ready. */
		if (!is_helper(w) && !ready_check(m))
			notify_status(m, "", "");
		break;
	case CONTROL_ACK:
		if (msg->gen > w->acked)
			w->acked = msg->gen;
		break;
	case CONTROL_NACK:
		snprintf(why, sizeof(why), "rejected generation %llu (%s)",
		    (unsigned long long)msg->gen, msg->text);
		kill_worker(w, why);
		break;
	default:
		kill_worker(w, "sent an unexpected control message");
	}
	reload_check(m);
}

/* ---- the signer ---- */

/* Every configuration has keys, or may have (ACME): always wanted. */
static bool
signer_wanted(const struct config *cfg UNUSED)
{
	return true;
}

/*
 * A child's channel to the signer: sc[0] the signer's end (which refuses
 * descriptors where the kernel can), sc[1] the child's.  0 or -1.
 */
static int
signer_channel_open(int sc[2])
{
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sc) == -1)
		return -1;
	if (util_refuse_fds(sc[0]) == -1) {
		close(sc[0]);
		close(sc[1]);
		return -1;
	}
	return 0;
}

/*
 * One message to the signer, waiting up to a second for room: a signer
 * that is slow to read must still get every channel.
 */
static void
signer_send(struct master *m, const struct control_msg *msg, const char *what)
{
	struct mworker *s = helper(m, MK_SIGNER);
	struct pollfd pfd;
	int i;

	if (s->pid == 0 || !s->ready)
		return;
	for (i = 0; i < 2; i++) {
		if (control_send(s->control, msg) == 0)
			return;
		if (errno != EAGAIN && errno != ENOBUFS)
			break;
		pfd.fd = s->control;
		pfd.events = POLLOUT;
		pfd.revents = 0;
		(void)poll(&pfd, 1, 1000);
	}
	log_warn("the signer: %s", what);
}

static void
signer_channel_send(struct master *m, unsigned idx)
{
	struct control_msg msg;

	memset(&msg, 0, sizeof(msg));
	msg.type = CONTROL_SIGNER_CHANNEL;
	msg.gen = idx;
	msg.fd = m->sch[idx];
	signer_send(m, &msg, "cannot pass a channel");
}

/* Child idx has a new channel: ours is kept, the signer told. */
static void
signer_channel_set(struct master *m, unsigned idx, int fd)
{
	if (m->sch[idx] != -1)
		close(m->sch[idx]);
	m->sch[idx] = fd;
	signer_channel_send(m, idx);
}

/* Add key to the set being made, once. */
static void
keys_add(struct signproto_key *k, size_t *n, const struct config_blob *key)
{
	size_t i;

	if (key->len == 0)
		return;
	for (i = 0; i < *n; i++)
		if (k[i].len == key->len && memcmp(k[i].pem, key->data,
		    key->len) == 0)
			return;
	k[*n].pem = key->data;
	k[(*n)++].len = key->len;
}

/*
 * Every private key of cfg (listeners', sites', the ACME certificates',
 * upstream client keys), as signproto_keys_encode() writes them, in
 * memory no core dump holds: *len bytes at *out (munmap), or -1.
 */
static int
signer_keyset(const struct config *cfg, unsigned char **out, size_t *len)
{
	const struct config_listener *l;
	struct signproto_key *k;
	size_t i, j, n = 0, max = cfg->nfiles;
	unsigned char *p;

	for (i = 0; i < cfg->nlisteners; i++)
		max += 1 + cfg->listeners[i].nsites +
		    cfg->listeners[i].nacme_certs;
	if ((k = calloc(max + 1, sizeof(*k))) == NULL)
		return -1;
	for (i = 0; i < cfg->nlisteners; i++) {
		l = &cfg->listeners[i];
		keys_add(k, &n, &l->tls.key);
		for (j = 0; j < l->nsites; j++)
			keys_add(k, &n, &l->sites[j].tls.key);
		for (j = 0; j < l->nacme_certs; j++)
			keys_add(k, &n, &l->acme_certs[j].key);
	}
	for (i = 0; i < cfg->nfiles; i++)
		if (cfg->files[i].secret)
			keys_add(k, &n, &cfg->files[i].data);
	if ((*len = signproto_keys_size(k, n)) == 0 ||
	    (p = mmap(NULL, *len, PROT_READ | PROT_WRITE, MAP_PRIVATE |
	    MAP_ANONYMOUS, -1, 0)) == MAP_FAILED) {
		free(k);
		return -1;
	}
	(void)madvise(p, *len, MADV_DONTDUMP);
	signproto_keys_encode(k, n, p);
	free(k);
	*out = p;
	return 0;
}

/*
 * The current configuration's keys (and how to log) to the signer, in a
 * sealed memfd: when they changed, or always (a signer that just started).
 */
static void
signer_keys_send(struct master *m, bool always)
{
	struct mworker *s = helper(m, MK_SIGNER);
	struct control_msg msg;
	unsigned char *set;
	uint64_t sum;
	uint32_t logbits;
	size_t len;
	int fd;

	if (s->pid == 0 || !s->ready)
		return;
	if (signer_keyset(m->cfg, &set, &len) == -1) {
		log_warn("the signer: cannot make the key set");
		return;
	}
	logbits = (uint32_t)m->cfg->log_level |
	    (uint32_t)m->cfg->log_format << 8;
	sum = util_siphash(m->sign_sip, set, len) ^ logbits;
	if (!always && m->keys_sent && sum == m->keys_sum)
		goto out;
	fd = memfd_create("portcullis-keys", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd == -1 || util_write_all(fd, set, len) == -1 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW |
	    F_SEAL_WRITE | F_SEAL_SEAL) == -1) {
		log_warn("the signer: key set memfd");
		if (fd != -1)
			close(fd);
		goto out;
	}
	memset(&msg, 0, sizeof(msg));
	msg.type = CONTROL_SIGNER_KEYS;
	msg.gen = m->gen;
	msg.pid = logbits;
	msg.fd = fd;
	signer_send(m, &msg, "cannot pass the keys");
	close(fd);
	m->keys_sum = sum;
	m->keys_sent = true;
out:
	explicit_bzero(set, len);
	munmap(set, len);
}

/*
 * At shutdown the signer goes last: a worker that drains may still finish
 * a handshake.
 */
static void
signer_drain_if_last(struct master *m)
{
	struct mworker *s = helper(m, MK_SIGNER);

	if (s->pid != 0 && running_children(m) == 1)
		(void)control_send_gen(s->control, CONTROL_DRAIN, 0);
}

static void
handle_signer_msg(struct master *m, struct mworker *w,
    const struct control_msg *msg)
{
	unsigned i;

	if (msg->type != CONTROL_READY || w->ready) {
		kill_worker(w, msg->type == CONTROL_READY ? "said READY twice" :
		    "sent an unexpected control message");
		return;
	}
	w->ready = true;
	log_debug("the signer (pid %u) ready", msg->pid);
	/* Its keys, then every channel (ours were kept). */
	signer_keys_send(m, true);
	for (i = 0; i < m->nproc; i++)
		if (m->sch[i] != -1)
			signer_channel_send(m, i);
}

/* ---- the ACME process ---- */

/* A renewal asked on the admin socket is over. */
static void
acme_renewed(struct master *m, const struct control_msg *msg)
{
	size_t i;

	for (i = 0; i < m->nrenews; i++) {
		if (m->renews[i].id != msg->acme.id)
			continue;
		if (msg->acme.ok)
			admin_reply(m->renews[i].c, "{\"status\":\"ok\"}");
		else
			admin_reply_error(m->renews[i].c, msg->text[0] != '\0' ?
			    msg->text : "renewal failed");
		m->renews[i] = m->renews[--m->nrenews];
		return;
	}
}

static void
handle_acme_msg(struct master *m, struct mworker *w,
    const struct control_msg *msg)
{
	char why[CONTROL_TEXT_MAX + 128];
	enum acme_state_result r;

	switch (msg->type) {
	case CONTROL_READY:
		if (w->ready) {
			kill_worker(w, "said READY twice");
			return;
		}
		w->ready = true;
		log_debug("ACME process (pid %u) ready", msg->pid);
		acme_send_config(m);
		return;
	case CONTROL_ACME_RENEWED:
		acme_renewed(m, msg);
		return;
	case CONTROL_ACME_ATTEMPT:
		/* A count only: a name since removed by a reload is not
		   counted (and not a lie: the order may have been on the
		   way); a name no configuration had never is. */
		if (!w->ready)
			break;
		if (acme_state_listener_has_name(m->cfg, msg->acme.listener,
		    msg->acme.name) && shm_mstats_acme(&m->shm, msg->acme.name,
		    msg->acme.ok) == -1)
			log_debug("ACME: %s not counted in /metrics: %u names "
			    "already are", msg->acme.name,
			    (unsigned)SHM_ACME_STATS_MAX);
		return;
	case CONTROL_ACME_CHALLENGE:
	case CONTROL_ACME_WITHDRAW:
	case CONTROL_ACME_ISSUED:
	case CONTROL_ACME_STATE:
		if (!w->ready)
			break;
		r = acme_state_report(m->acme, m->cfg, msg->type, &msg->acme,
		    msg->text, (int64_t)time(NULL), why, sizeof(why));
		if (r == ACME_STATE_VIOLATION) {
			kill_worker(w, why);
			return;
		}
		if (why[0] != '\0')
			log_warnx("ACME: %s", why);
		if (r == ACME_STATE_PUBLISH)
			acme_publish_start(m);
		return;
	default:
		break;
	}
	kill_worker(w, "sent an unexpected control message");
}

/* Tell the ACME process which challenges every worker serves now. */
static void
acme_tell_live(struct master *m)
{
	struct mworker *a = helper(m, MK_ACME);
	struct control_msg msg;
	uint32_t ids[64];
	size_t i, n;

	do {
		n = acme_state_live(m->acme, m->gen, ids, nitems(ids));
		for (i = 0; i < n; i++) {
			memset(&msg, 0, sizeof(msg));
			msg.type = CONTROL_ACME_PUBLISHED;
			msg.fd = -1;
			msg.acme.id = ids[i];
			msg.acme.ok = 1;
			if (a->pid != 0 && control_send(a->control, &msg) == -1)
				log_warn("ACME process: control");
		}
	} while (n == nitems(ids));
}

/*
 * The ACME process's settings: an image with the EAB keys, in a sealed
 * memfd of its own (the shared segment's image never holds them).
 */
static void
acme_send_config(struct master *m)
{
	struct mworker *a = helper(m, MK_ACME);
	struct control_msg msg;
	unsigned char *img;
	size_t len;
	int fd;

	if (a->pid == 0 || !a->ready)
		return;
	if (image_encode_acme(m->cfg, m->gen, &img, &len) == -1) {
		log_warnx("ACME process: cannot build its configuration");
		return;
	}
	fd = memfd_create("portcullis-acme", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd == -1 || util_write_all(fd, img, len) == -1 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW |
	    F_SEAL_WRITE | F_SEAL_SEAL) == -1) {
		log_warn("ACME process: configuration memfd");
		goto out;
	}
	memset(&msg, 0, sizeof(msg));
	msg.type = CONTROL_ACME_CONFIG;
	msg.gen = m->gen;
	msg.fd = fd;
	if (control_send(a->control, &msg) == -1)
		log_warn("ACME process: control");
out:
	if (fd != -1)
		close(fd);
	explicit_bzero(img, len);
	free(img);
}

/*
 * Make every acme-cache-dir that does not exist yet, for the service user
 * (only possible while the master still may chown: at start).
 */
static void
acme_cache_dirs(struct master *m, const struct config *cfg)
{
	char path[4096], *p;
	size_t i;

	for (i = 0; i < cfg->nlisteners; i++) {
		if (cfg->listeners[i].tls_mode != CONFIG_TLS_ACME)
			continue;
		if (snprintf(path, sizeof(path), "%s",
		    cfg->listeners[i].acme.cache_dir) >= (int)sizeof(path))
			continue;
		for (p = path + 1; *p != '\0'; p++) {
			if (*p != '/')
				continue;
			*p = '\0';
			(void)mkdir(path, 0755);
			*p = '/';
		}
		/* Only the last one is the ACME process's own. */
		if (mkdir(path, 0700) == 0 && m->user.switch_user &&
		    chown(path, m->user.uid, m->user.gid) == -1)
			log_warn("ACME: chown %s", path);
	}
}

/*
 * Start, keep or stop each helper as the configuration wants: a helper
 * that runs and is still wanted hears of the new configuration (the ACME
 * process its own image; the prober had CONFIG with the workers).
 */
static void
helpers_supervise(struct master *m)
{
	const struct mkind_def *k;
	struct mworker *w;
	unsigned i;

	for (i = MK_WORKER + 1; i < MK_KINDS; i++) {
		k = &kinds[i];
		w = helper(m, (enum mkind)i);
		if (k->wanted(m->cfg)) {
			if (w->pid == 0 && !ev_is_active(&w->respawn_w))
				spawn(m, w);
			else if (k->reconfigure != NULL)
				k->reconfigure(m);
			continue;
		}
		ev_timer_stop(m->loop, &w->respawn_w);
		if (w->pid != 0) {
			log_info("%s: stopping %s", k->unwanted, k->name);
			(void)control_send_gen(w->control, CONTROL_DRAIN, 0);
		}
	}
}

static void
acme_renew_fail_all(struct master *m, const char *why)
{
	size_t i;

	for (i = 0; i < m->nrenews; i++)
		admin_reply_error(m->renews[i].c, why);
	m->nrenews = 0;
}

static void
acme_exited(struct master *m)
{
	acme_renew_fail_all(m, "the ACME process exited");
}

static void
acme_renew_request(struct master *m, struct admin_client *c)
{
	struct mworker *a = helper(m, MK_ACME);
	const char *name = admin_client_arg(c);
	struct control_msg msg;
	char why[CONFIG_HOST_MAX + 64];

	if (!acme_state_wanted(m->cfg)) {
		admin_reply_error(c, "no listener has tls mode \"acme\"");
		return;
	}
	if (name[0] != '\0' && !acme_state_has_name(m->cfg, name)) {
		snprintf(why, sizeof(why), "%s is not an ACME name", name);
		admin_reply_error(c, why);
		return;
	}
	if (a->pid == 0 || !a->ready) {
		admin_reply_error(c, "the ACME process is not running; try "
		    "again in a moment");
		return;
	}
	memset(&msg, 0, sizeof(msg));
	msg.type = CONTROL_ACME_RENEW;
	msg.fd = -1;
	msg.acme.id = ++m->renew_id;
	snprintf(msg.acme.name, sizeof(msg.acme.name), "%s", name);
	if (m->nrenews == nitems(m->renews) ||
	    control_send(a->control, &msg) == -1) {
		admin_reply_error(c, "cannot reach the ACME process");
		return;
	}
	m->renews[m->nrenews].id = msg.acme.id;
	m->renews[m->nrenews++].c = c;
}

static void
worker_report_cb(struct ev_loop *loop, ev_io *iow, int revents UNUSED)
{
	struct mworker *w = mworker_of(iow->data);
	struct control_msg msg;
	unsigned n;
	int rc;

	/*
	 * A few at a time: a worker that never stops sending must not keep
	 * the master from everything else (the pipe stays readable, so the
	 * loop comes back to it).  A kill stops the watcher: read no more.
	 */
	for (n = 0; n < MASTER_REPORT_BATCH; n++) {
		if ((rc = control_read(w->report, &msg)) != 1)
			break;
		kinds[w->kind].handle(w->m, w, &msg);
		if (!ev_is_active(iow))
			return;
	}
	if (n == MASTER_REPORT_BATCH)
		return;
	if (rc == 0 || (rc == -1 && errno != EAGAIN)) {
		/* Exiting, or broken: SIGCHLD does the rest. */
		ev_io_stop(loop, iow);
		if (rc == -1 && errno == EPROTO)
			kill_worker(w, "control protocol violation");
	}
}

static void
respawn_cb(struct ev_loop *loop UNUSED, ev_timer *t, int revents UNUSED)
{
	struct mworker *w = mworker_of(t->data);

	if (!w->m->stopping && w->pid == 0)
		spawn(w->m, w);
}

/*
 * The headers of the state part are read by a worker only when it starts
 * and by the master never; our copies are what counts.  A change means a
 * worker wrote where none should: put them back, so that the next worker
 * starts, and say so.
 */
static void
state_hdr_check(struct master *m)
{
	if (shm_state_repair(&m->shm))
		log_warnx("the header of the shared state was overwritten, by "
		    "a worker: restored (a worker may be compromised)");
	if (ratelimit_repair(m->rl))
		log_warnx("the header of the rate-limit table was overwritten, "
		    "by a worker: restored (a worker may be compromised)");
}

static void
spawn(struct master *m, struct mworker *w)
{
	int sv[2], rp[2], sc[2] = { -1, -1 };
	pid_t pid;

	char nb[32];

	state_hdr_check(m);
	if (control_open(sv, rp) == -1) {
		log_warn("%s: control channel", wname(w, nb, sizeof(nb)));
		goto retry;
	}
	if (kinds[w->kind].signs && signer_channel_open(sc) == -1) {
		log_warn("%s: channel to the signer", wname(w, nb,
		    sizeof(nb)));
		close(sv[0]);
		close(sv[1]);
		close(rp[0]);
		close(rp[1]);
		goto retry;
	}
	if ((pid = fork()) == -1) {
		log_warn("%s: fork", wname(w, nb, sizeof(nb)));
		close(sv[0]);
		close(sv[1]);
		close(rp[0]);
		close(rp[1]);
		if (sc[0] != -1) {
			close(sc[0]);
			close(sc[1]);
		}
		goto retry;
	}
	if (pid == 0)
		child_exec(m, w, sv[1], rp[1], sc[1]);
	/* Ours closed, the pipe reads EOF once the worker's end is gone. */
	close(sv[1]);
	close(rp[1]);
	if (sc[0] != -1) {
		close(sc[1]);
		signer_channel_set(m, w->id, sc[0]);
	}
	w->pid = pid;
	w->control = sv[0];
	w->report = rp[0];
	w->ready = false;
	w->killed = false;
	w->acked = 0;
	w->started = ev_now(m->loop);
	ev_io_init(&w->report_w, worker_report_cb, w->report, EV_READ);
	w->report_w.data = w;
	ev_io_start(m->loop, &w->report_w);
	/* A reload in flight includes it; READY tells which gen it took. */
	log_info("%s started (pid %d)", wname(w, nb, sizeof(nb)), (int)pid);
	return;
retry:
	w->backoff = master_backoff(w->backoff);
	ev_timer_set(&w->respawn_w, w->backoff, 0.);
	ev_timer_start(m->loop, &w->respawn_w);
}

/*
 * SIGSYS is the sandbox's (sandbox.h): the child said which call on
 * stderr just before, in "kill" mode.
 */
static void
log_sandbox_kill(const char *name, pid_t pid)
{
	log_warnx("%s (pid %d) was killed by the sandbox (SIGSYS): a system "
	    "call outside its allow-list; run with seccomp = \"log\" to find "
	    "it", name, (int)pid);
}

static void
log_exit(const struct mworker *w, pid_t pid, int status, bool expected)
{
	char nb[32];
	const char *name = wname(w, nb, sizeof(nb));

	if (WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS)
		log_sandbox_kill(name, pid);
	else if (WIFSIGNALED(status))
		log_warnx("%s (pid %d) killed by signal %d (%s)%s", name,
		    (int)pid, WTERMSIG(status), strsignal(WTERMSIG(status)),
		    WCOREDUMP(status) ? ", core dumped" : "");
	else if (WEXITSTATUS(status) != 0 || !expected)
		log_warnx("%s (pid %d) exited with status %d", name, (int)pid,
		    WEXITSTATUS(status));
	else
		log_info("%s (pid %d) exited", name, (int)pid);
}

double
master_backoff(double prev)
{
	return MINIMUM(MAXIMUM(prev * 2, MASTER_BACKOFF_MIN),
	    MASTER_BACKOFF_MAX);
}

/*
 * Respawn at once after a long, healthy life; otherwise wait, doubling the
 * wait each time (master_backoff), so that a crash loop cannot spin.
 */
static void
schedule_respawn(struct master *m, struct mworker *w)
{
	double lived = ev_now(m->loop) - w->started;
	char nb[32];

	if (lived >= MASTER_HEALTHY_SECS)
		w->backoff = 0;
	else
		w->backoff = master_backoff(w->backoff);
	if (w->backoff > 0)
		log_warnx("%s lived %.1fs; respawning it in %.1fs",
		    wname(w, nb, sizeof(nb)), lived, w->backoff);
	ev_timer_set(&w->respawn_w, w->backoff, 0.);
	ev_timer_start(m->loop, &w->respawn_w);
}

/* A respawn for /metrics: which process, and why it ended. */
static void
count_restart(struct master *m, const struct mworker *w, int status)
{
	static const enum shm_proc procs[MK_KINDS] = {
		[MK_WORKER] = SHM_PROC_WORKER, [MK_ACME] = SHM_PROC_ACME,
		[MK_PROBER] = SHM_PROC_PROBER, [MK_SIGNER] = SHM_PROC_SIGNER,
	};
	enum shm_cause cause;

	if (WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS)
		cause = SHM_CAUSE_SANDBOX;
	else if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL &&
	    w->killed)
		cause = SHM_CAUSE_KILLED;
	else if (WIFSIGNALED(status))
		cause = SHM_CAUSE_SIGNAL;
	else
		cause = SHM_CAUSE_EXIT;
	shm_mstats_restart(&m->shm, procs[w->kind], cause);
}

static void
child_cb(struct ev_loop *loop, ev_child *c, int revents UNUSED)
{
	struct master *m = c->data;
	struct mworker *w = NULL;
	const struct mkind_def *k;
	unsigned i;

	for (i = 0; i < m->nproc; i++)
		if (m->w[i].pid != 0 && m->w[i].pid == c->rpid)
			w = &m->w[i];
	if (w == NULL)
		return;
	k = &kinds[w->kind];
	log_exit(w, c->rpid, c->rstatus, m->stopping || (is_helper(w) &&
	    !k->wanted(m->cfg)));
	ev_io_stop(loop, &w->report_w);
	close(w->control);
	close(w->report);
	w->control = w->report = -1;
	w->pid = 0;
	w->ready = false;
	if (!is_helper(w)) {
		upstate_worker_gone(&m->ups, w->id);
		connlimit_worker_gone(&m->cap, w->id);
	} else {
		if (k->exited != NULL)
			k->exited(m);
		if (!m->stopping && k->wanted(m->cfg)) {
			count_restart(m, w, c->rstatus);
			schedule_respawn(m, w);
		}
	}
	if (m->stopping) {
		signer_drain_if_last(m);
		if (running_children(m) == 0)
			ev_break(loop, EVBREAK_ALL);
		return;
	}
	if (is_helper(w))
		return;
	notify_status(m, "", "");
	count_restart(m, w, c->rstatus);
	schedule_respawn(m, w);
	reload_check(m);
}

/* ---- reload ---- */

static void
reload_fail(struct master *m, const char *msg)
{
	struct admin_client *c;
	size_t i;

	log_warnx("reload failed, generation %llu stays live: %s",
	    (unsigned long long)m->gen, msg);
	for (i = 0; i < m->nwaiting; i++) {
		c = m->waiting[i];
		admin_reply_error(c, msg);
	}
	m->nwaiting = 0;
	notify_status(m, "", " (last reload failed)");
	m->publishing = false;
	reload_next(m);
}

/*
 * Publish ncfg, with what ACME has for it, as the next generation and
 * tell the workers; ncfg becomes m->cfg (it may be m->cfg already).
 */
static int
publish(struct master *m, struct config *ncfg, char *err, size_t errsz)
{
	const unsigned char *tk;
	unsigned char *img;
	size_t len, tklen;
	unsigned i;
	int rc;

	/* A config already live (ncfg == m->cfg) keeps its slots. */
	if (ncfg != m->cfg && upstate_assign(m->ualloc, ncfg) == -1) {
		snprintf(err, errsz, "%s: upstream table: %s", ncfg->path,
		    strerror(errno));
		return -1;
	}
	/* Rows of the request statistics: a name never changes its row,
	   so a row given to a config that is not published stays its
	   name's (nothing to undo). */
	if (ncfg != m->cfg && metrics_sites_assign(m->msites, ncfg) == -1) {
		snprintf(err, errsz, "%s: site statistics: %s", ncfg->path,
		    strerror(errno));
		upstate_abort(m->ualloc);
		return -1;
	}
	if (acme_state_attach(m->acme, ncfg) == -1 ||
	    image_encode(ncfg, m->gen + 1, &img, &len) == -1) {
		snprintf(err, errsz, "%s: cannot build the config image",
		    ncfg->path);
		upstate_abort(m->ualloc);
		return -1;
	}
	tk = ticketkeys_bytes(&m->tk, &tklen);
	rc = shm_publish(&m->shm, img, len, m->gen + 1, tk, tklen);
	explicit_bzero(img, len);
	free(img);
	if (rc == -1) {
		snprintf(err, errsz, "%s: the configuration (%zu bytes) does "
		    "not fit the shared slot; restart to apply it",
		    ncfg->path, len);
		upstate_abort(m->ualloc);
		return -1;
	}
	upstate_commit(m->ualloc, &m->ups);
	upstate_checks_clear(&m->ups, ncfg);
	acme_state_published(m->acme, m->gen + 1);
	if (ncfg != m->cfg) {
		config_free(m->cfg);
		m->cfg = ncfg;
	}
	m->gen++;
	/* Before the workers hear of it: the keys its certificates need. */
	signer_keys_send(m, false);
	for (i = 0; i < m->nproc; i++)
		if (m->w[i].pid != 0 && kinds[m->w[i].kind].follows)
			(void)control_send_gen(m->w[i].control,
			    CONTROL_CONFIG, m->gen);
	return 0;
}

/* Validate the file, publish it and tell the workers. */
static int
reload_publish(struct master *m, char *err, size_t errsz)
{
	struct config_errors errs = { NULL, NULL, 0, 0 };
	struct config *ncfg;
	const char *what;
	char buf[128], *joined;
	size_t i;

	if (config_load(m->cfg->path, &m->opts, &ncfg, &errs) == -1) {
		joined = config_errors_join(&errs);
		snprintf(err, errsz, "%s", joined ? joined : "out of memory");
		free(joined);
		config_errors_free(&errs);
		return -1;
	}
	for (i = 0; i < errs.n; i++)
		log_warnx("reload: %s", errs.msgs[i]);
	config_errors_free(&errs);
	if ((what = config_static_change(m->cfg, ncfg, buf, sizeof(buf)))) {
		snprintf(err, errsz, "%s: '%s' changed, which needs a restart; "
		    "nothing was applied", ncfg->path, what);
		config_free(ncfg);
		return -1;
	}
	acme_cache_dirs(m, ncfg);
	acme_state_sync(m->acme, ncfg, (int64_t)time(NULL));
	if (publish(m, ncfg, err, errsz) == -1) {
		config_free(ncfg);
		acme_state_sync(m->acme, m->cfg, (int64_t)time(NULL));
		return -1;
	}
	tickets_timer(m);
	helpers_supervise(m);
	return 0;
}

/*
 * Publish what ACME changed (a challenge, a certificate) in a generation
 * of its own, after the reload or publish in flight if any.  When every
 * worker has it, the ACME process hears which challenges are live.
 */
static void
acme_publish_start(struct master *m)
{
	char err[512];

	if (m->stopping)
		return;
	if (m->reloading) {
		m->acme_publish = true;
		return;
	}
	m->reloading = m->publishing = true;
	if (publish(m, m->cfg, err, sizeof(err)) == -1) {
		log_warnx("ACME: %s", err);
		m->reloading = m->publishing = false;
		return;
	}
	ev_timer_set(&m->reload_w, MASTER_ACK_TIMEOUT, 0.);
	ev_timer_start(m->loop, &m->reload_w);
	reload_check(m);
}

static void
reload_start(struct master *m)
{
	struct timespec ts;
	char err[4096];

	m->reloading = true;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	notify("RELOADING=1\nMONOTONIC_USEC=%llu", (unsigned long long)
	    ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000);
	log_info("reloading %s", m->cfg->path);
	if (reload_publish(m, err, sizeof(err)) == -1) {
		shm_mstats_reload(&m->shm, 0);
		reload_fail(m, err);
		return;
	}
	shm_mstats_reload(&m->shm, 1);
	ev_timer_set(&m->reload_w, MASTER_ACK_TIMEOUT, 0.);
	ev_timer_start(m->loop, &m->reload_w);
	reload_check(m);
}

/* A reload asked while one is in flight runs right after it. */
static void
reload_request(struct master *m, struct admin_client *c)
{
	if (m->stopping) {
		if (c != NULL)
			admin_reply_error(c, "shutting down");
		return;
	}
	if (m->reloading) {
		m->reload_again = true;
		if (c != NULL)
			m->queued[m->nqueued++] = c;
		return;
	}
	if (c != NULL)
		m->waiting[m->nwaiting++] = c;
	reload_start(m);
}

static void
reload_timeout_cb(struct ev_loop *loop UNUSED, ev_timer *t, int revents UNUSED)
{
	struct master *m = t->data;
	char why[128];
	unsigned i;

	snprintf(why, sizeof(why), "did not apply generation %llu within "
	    "%.0fs", (unsigned long long)m->gen, MASTER_ACK_TIMEOUT);
	/* Its replacement starts with the new generation. */
	for (i = 0; i < m->nw; i++)
		if (m->w[i].pid != 0 && m->w[i].acked < m->gen)
			kill_worker(&m->w[i], why);
}

/* ---- session-ticket keys (issue 19) ---- */

/* The clients of a rotation that was not published hear why. */
static void
tickets_fail_queued(struct master *m, const char *why)
{
	for (; m->ntk_queued > 0; m->ntk_queued--)
		admin_reply_error(m->tk_queued[m->ntk_queued - 1], why);
}

/*
 * A rotation is a generation of its own: the live configuration again,
 * with the new ring (publish() sends the ring with every generation).
 * Workers switch to it as on a reload, so no connection is dropped; the
 * clients that asked hear when every worker has it (tickets_done).
 */
static void
tickets_rotate_start(struct master *m)
{
	char err[512];

	if (!m->tk_pending || m->stopping || m->reloading)
		return;
	m->tk_pending = false;
	if (ticketkeys_rotate(&m->tk) == -1) {
		log_warnx("session-ticket keys: cannot make a new key");
		tickets_fail_queued(m, "cannot make a new session-ticket key");
		return;
	}
	m->reloading = m->publishing = true;
	if (publish(m, m->cfg, err, sizeof(err)) == -1) {
		/* The ring has the key: the next generation carries it. */
		log_warnx("session-ticket keys: %s", err);
		m->reloading = m->publishing = false;
		tickets_fail_queued(m, err);
		return;
	}
	log_info("session-ticket keys rotated (rotation %llu, generation "
	    "%llu)", (unsigned long long)m->tk.rotations,
	    (unsigned long long)m->gen);
	memcpy(m->tk_waiting + m->ntk_waiting, m->tk_queued,
	    m->ntk_queued * sizeof(m->tk_queued[0]));
	m->ntk_waiting += m->ntk_queued;
	m->ntk_queued = 0;
	ev_timer_set(&m->reload_w, MASTER_ACK_TIMEOUT, 0.);
	ev_timer_start(m->loop, &m->reload_w);
	reload_check(m);
}

/* c (NULL: the timer) asks for a rotation; one runs as soon as no other
   publication is in flight, for every request made meanwhile. */
static void
tickets_rotate_request(struct master *m, struct admin_client *c)
{
	if (m->stopping) {
		if (c != NULL)
			admin_reply_error(c, "shutting down");
		return;
	}
	if (c != NULL) {
		if (m->ntk_queued + m->ntk_waiting >= ADMIN_MAX_CLIENTS) {
			admin_reply_error(c, "too many rotations waiting");
			return;
		}
		m->tk_queued[m->ntk_queued++] = c;
	}
	m->tk_pending = true;
	tickets_rotate_start(m);
}

/*
 * Every worker has generation m->gen: the rotations published so far are
 * live.  The other slot's keys (and with them a key the last rotation
 * dropped) are wiped from the segment.
 */
static void
tickets_done(struct master *m)
{
	char json[256];
	size_t i;

	shm_retire_other(&m->shm, m->gen);
	snprintf(json, sizeof(json), "{\"status\":\"ok\",\"rotations\":%llu,"
	    "\"generation\":%llu,\"ticket_keys\":%u}",
	    (unsigned long long)m->tk.rotations, (unsigned long long)m->gen,
	    m->tk.n);
	for (i = 0; i < m->ntk_waiting; i++)
		admin_reply(m->tk_waiting[i], json);
	m->ntk_waiting = 0;
}

static void
tickets_fail_all(struct master *m, const char *why)
{
	tickets_fail_queued(m, why);
	for (; m->ntk_waiting > 0; m->ntk_waiting--)
		admin_reply_error(m->tk_waiting[m->ntk_waiting - 1], why);
}

static void
tickets_timer_cb(struct ev_loop *loop UNUSED, ev_timer *t,
    int revents UNUSED)
{
	tickets_rotate_request(t->data, NULL);
}

/* session-ticket-rotation: a reload that changes it starts the period
   anew. */
static void
tickets_timer(struct master *m)
{
	if (m->tk_period == m->cfg->ticket_rotation)
		return;
	m->tk_period = m->cfg->ticket_rotation;
	ev_timer_stop(m->loop, &m->tk_w);
	ev_timer_set(&m->tk_w, (double)m->tk_period, (double)m->tk_period);
	ev_timer_start(m->loop, &m->tk_w);
}

/* ---- admin, signals, shutdown ---- */

static void
admin_cb(void *arg, struct admin_client *c, enum admin_cmd cmd)
{
	struct master *m = arg;
	char *json, *counters, *certs, *backends, prober[128];
	struct mworker *pr;

	state_hdr_check(m);
	if (cmd == ADMIN_CMD_RELOAD) {
		reload_request(m, c);
		return;
	}
	if (cmd == ADMIN_CMD_RENEW) {
		acme_renew_request(m, c);
		return;
	}
	if (cmd == ADMIN_CMD_ROTATE) {
		tickets_rotate_request(m, c);
		return;
	}
	counters = shm_counters_json(&m->shm, m->nw);
	certs = acme_state_json(m->acme, m->cfg, tls_cert_not_after);
	backends = upstate_json(&m->ups, m->cfg);
	pr = helper(m, MK_PROBER);
	if (pr->pid != 0)
		snprintf(prober, sizeof(prober), "{\"pid\":%d,\"ready\":%s,"
		    "\"generation\":%llu}", (int)pr->pid, pr->ready ? "true" :
		    "false", (unsigned long long)pr->acked);
	else
		snprintf(prober, sizeof(prober), "null");
	if (counters == NULL || certs == NULL || backends == NULL ||
	    asprintf(&json, "{\"status\":\"ok\",\"uptime_secs\":%llu,"
	    "\"sites\":%zu,\"generation\":%llu,\"workers\":%u,%s,%s,%s,"
	    "\"prober\":%s}", (unsigned long long)(ev_now(m->loop) - m->start),
	    config_site_count(m->cfg), (unsigned long long)m->gen,
	    running_workers(m, true), counters, certs, backends, prober) ==
	    -1) {
		free(counters);
		free(certs);
		free(backends);
		admin_reply_error(c, "out of memory");
		return;
	}
	admin_reply(c, json);
	free(json);
	free(counters);
	free(certs);
	free(backends);
}

static void
reopen_log(struct master *m)
{
	struct control_msg msg;
	char nb[32];
	unsigned i;
	int fd;

	if (m->cfg->log_file == NULL) {
		log_info("SIGUSR1: logging to stderr, nothing to reopen");
		return;
	}
	fd = open(m->cfg->log_file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC |
	    O_NOCTTY, 0640);
	if (fd == -1) {
		log_warn("reopen %s", m->cfg->log_file);
		return;
	}
	if (dup2(fd, STDERR_FILENO) == -1)
		log_warn("reopen log");
	else
		log_reopened();
	memset(&msg, 0, sizeof(msg));
	msg.type = CONTROL_REOPEN_LOG;
	msg.fd = fd;
	for (i = 0; i < m->nproc; i++)
		if (m->w[i].pid != 0 &&
		    control_send(m->w[i].control, &msg) == -1)
			log_warn("reopen log: %s", wname(&m->w[i], nb,
			    sizeof(nb)));
	close(fd);
	log_info("log file %s reopened", m->cfg->log_file);
}

static void
stop_timeout_cb(struct ev_loop *loop UNUSED, ev_timer *t, int revents UNUSED)
{
	struct master *m = t->data;
	unsigned i;

	for (i = 0; i < m->nproc; i++)
		if (m->w[i].pid != 0)
			kill_worker(&m->w[i], "still running after the "
			    "shutdown timeout");
}

static void
shutdown_begin(struct master *m, const char *why)
{
	size_t i;

	if (m->stopping) {
		log_warnx("%s again: stopping now", why);
		stop_timeout_cb(m->loop, &m->stop_w, 0);
		return;
	}
	m->stopping = true;
	notify("STOPPING=1");
	log_info("shutting down (%s): draining for up to %us", why,
	    m->cfg->shutdown_timeout);
	for (i = 0; i < m->nsocks; i++)
		close(m->socks[i].fd);
	m->nsocks = 0;
	reply_waiting(m, "{\"status\":\"error\",\"message\":\"shutting "
	    "down\"}");
	for (i = 0; i < m->nqueued; i++)
		admin_reply_error(m->queued[i], "shutting down");
	m->nqueued = 0;
	admin_close(m->admin);
	m->admin = NULL;
	acme_renew_fail_all(m, "shutting down");
	tickets_fail_all(m, "shutting down");
	ev_timer_stop(m->loop, &m->tk_w);
	for (i = 0; i < m->nproc; i++) {
		ev_timer_stop(m->loop, &m->w[i].respawn_w);
		if (m->w[i].pid != 0 && m->w[i].kind != MK_SIGNER)
			(void)control_send_gen(m->w[i].control, CONTROL_DRAIN,
			    0);
	}
	signer_drain_if_last(m);
	ev_timer_set(&m->stop_w, (double)m->cfg->shutdown_timeout + 2., 0.);
	ev_timer_start(m->loop, &m->stop_w);
	if (running_children(m) == 0)
		ev_break(m->loop, EVBREAK_ALL);
}

static void
signal_cb(struct ev_loop *loop UNUSED, ev_signal *s, int revents UNUSED)
{
	struct master *m = s->data;

	switch (s->signum) {
	case SIGHUP:
		reload_request(m, NULL);
		break;
	case SIGUSR1:
		reopen_log(m);
		break;
	default:
		shutdown_begin(m, s->signum == SIGTERM ? "SIGTERM" : "SIGINT");
	}
}

/* ---- start-up ---- */

static void
setup_stdio(const struct config *cfg)
{
	int fd;

	if ((fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) != -1) {
		(void)dup2(fd, STDIN_FILENO);
		close(fd);
	}
	if (cfg->log_file == NULL)
		return;
	fd = open(cfg->log_file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC |
	    O_NOCTTY, 0640);
	if (fd == -1)
		fatal("cannot open log file %s", cfg->log_file);
	if (dup2(fd, STDERR_FILENO) == -1)
		fatal("dup2");
	close(fd);
}

static void
raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static void
setup_shm(struct master *m)
{
	const unsigned char *tk;
	unsigned char *img;
	size_t len, slot, rlsize, tklen;
	void *rl;

	if ((m->ualloc = upstate_alloc_new()) == NULL ||
	    upstate_assign(m->ualloc, m->cfg) == -1)
		fatal("upstream table");
	/* The table is new: zeroed, nothing to reset. */
	upstate_commit(m->ualloc, NULL);
	if ((m->msites = metrics_sites_new()) == NULL ||
	    metrics_sites_assign(m->msites, m->cfg) == -1)
		fatal("site statistics");
	if (acme_state_attach(m->acme, m->cfg) == -1 ||
	    image_encode(m->cfg, 1, &img, &len) == -1)
		fatalx("cannot build the config image");
	slot = MAXIMUM((size_t)MASTER_SLOT_MIN, len * 4);
	if (shm_create(&m->shm, slot,
	    ratelimit_table_bytes(m->cfg->rate_table_size)) == -1)
		fatal("shared segment");
	rl = shm_upstate(&m->shm, &rlsize);
	upstate_attach(&m->ups, rl, rlsize, CONFIG_MAX_WORKERS, UINT32_MAX);
	rl = shm_connlimit(&m->shm, &rlsize);
	connlimit_attach(&m->cap, rl, rlsize, CONFIG_MAX_WORKERS, UINT32_MAX,
	    m->shm.cfg->connlimit_key);
	rl = shm_ratelimit(&m->shm, &rlsize);
	if (ratelimit_init(rl, rlsize, m->cfg->rate_table_size) == -1 ||
	    (m->rl = ratelimit_attach(rl, rlsize, NULL)) == NULL)
		fatal("shared segment: rate-limit table");
	if (ticketkeys_init(&m->tk) == -1)
		fatalx("cannot make a session-ticket key");
	tk = ticketkeys_bytes(&m->tk, &tklen);
	if (shm_publish(&m->shm, img, len, 1, tk, tklen) == -1)
		fatal("shared segment: publish");
	explicit_bzero(img, len);
	free(img);
	acme_state_published(m->acme, 1);
	m->gen = 1;
	if ((m->cfg_ro_fd = shm_config_fd_readonly(&m->shm)) == -1)
		fatal("shared segment: read-only descriptor");
}

static void
setup_processes(struct master *m)
{
	long ncpu;
	unsigned i;

	m->nw = m->cfg->workers;
	if (m->nw == 0) {
		ncpu = sysconf(_SC_NPROCESSORS_ONLN);
		m->nw = ncpu < 1 ? 1 : (unsigned)MINIMUM(ncpu,
		    (long)SHM_MAX_WORKERS);
	}
	m->nproc = m->nw + MK_HELPERS;
	if ((m->w = calloc(m->nproc, sizeof(*m->w))) == NULL ||
	    (m->sch = calloc(m->nproc, sizeof(*m->sch))) == NULL)
		fatal("calloc");
	for (i = 0; i < m->nproc; i++)
		m->sch[i] = -1;
	_Static_assert(SHM_MAX_WORKERS + MK_HELPERS <= SIGNER_CHANNELS_MAX,
	    "a channel index for every child");
	if (getrandom(m->sign_sip, sizeof(m->sign_sip), 0) !=
	    (ssize_t)sizeof(m->sign_sip))
		fatal("getrandom");
	for (i = 0; i < m->nproc; i++) {
		m->w[i].m = m;
		m->w[i].kind = i < m->nw ? MK_WORKER :
		    (enum mkind)(i - m->nw + 1);
		m->w[i].id = i;
		m->w[i].control = m->w[i].report = -1;
		ev_timer_init(&m->w[i].respawn_w, respawn_cb, 0., 0.);
		m->w[i].respawn_w.data = &m->w[i];
	}
}

static void
setup_loop(struct master *m)
{
	static const int sigs[] = { SIGHUP, SIGTERM, SIGINT, SIGUSR1 };
	size_t i;

	signal(SIGPIPE, SIG_IGN);
	if ((m->loop = ev_default_loop(EVBACKEND_EPOLL)) == NULL)
		fatalx("cannot start the event loop");
	for (i = 0; i < nitems(sigs); i++) {
		ev_signal_init(&m->sig_w[i], signal_cb, sigs[i]);
		m->sig_w[i].data = m;
		ev_signal_start(m->loop, &m->sig_w[i]);
	}
	ev_child_init(&m->child_w, child_cb, 0, 0);
	m->child_w.data = m;
	ev_child_start(m->loop, &m->child_w);
	ev_timer_init(&m->reload_w, reload_timeout_cb, MASTER_ACK_TIMEOUT, 0.);
	m->reload_w.data = m;
	ev_timer_init(&m->stop_w, stop_timeout_cb, 1., 0.);
	m->stop_w.data = m;
	ev_timer_init(&m->tk_w, tickets_timer_cb, 1., 0.);
	m->tk_w.data = m;
	tickets_timer(m);
	if (m->admin != NULL)
		admin_start(m->admin, m->loop, admin_cb, m);
	m->start = ev_now(m->loop);
}

int
master_main(struct config *cfg, const struct config_opts *opts)
{
	struct master m;
	unsigned i;

	memset(&m, 0, sizeof(m));
	m.cfg = cfg;
	m.opts = *opts;
	m.exe_fd = m.cfg_ro_fd = -1;
	log_init("master", -1);
	log_configure(cfg->log_level, cfg->log_format);
	setup_stdio(cfg);
	/* Before the journal: its socket goes above LOG_JOURNAL_FD_MIN,
	   which a low soft limit would not allow. */
	raise_fd_limit();
	/* Under systemd without logging.file: the journal, with fields. */
	(void)log_journal_detect();
	/* Hold no directory busy; dumps (if any) cannot land in one. */
	if (chdir("/") == -1)
		fatal("chdir /");
	if (privs_lookup_user(cfg->user, &m.user) == -1)
		fatal("user %s", cfg->user);
	if (listen_bind_all(cfg, m.socks, &m.nsocks) == -1)
		fatalx("cannot bind the listeners");
	if (cfg->admin_socket != NULL &&
	    (m.admin = admin_open(cfg->admin_socket)) == NULL)
		fatal("admin socket %s", cfg->admin_socket);
	/* Certificates already in a cache are served from the first. */
	if ((m.acme = acme_state_new()) == NULL)
		fatal("calloc");
	acme_cache_dirs(&m, cfg);
	acme_state_sync(m.acme, cfg, (int64_t)time(NULL));
	setup_shm(&m);
	if ((m.exe_fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC)) == -1)
		fatal("/proc/self/exe");
	if (privs_master_restrict(m.user.switch_user) == -1)
		fatal("cannot restrict the master's privileges");
	setup_processes(&m);
	setup_loop(&m);
	notify("STATUS=starting %u workers", m.nw);
	log_info("portcullis %s starting %u workers (%s)", PACKAGE_VERSION,
	    m.nw, m.user.switch_user ? cfg->user : "same user");
	/* The signer first: the workers' first handshakes need it. */
	spawn(&m, helper(&m, MK_SIGNER));
	for (i = 0; i < m.nw; i++)
		spawn(&m, &m.w[i]);
	helpers_supervise(&m);

	ev_run(m.loop, 0);

	log_info("exiting");
	admin_close(m.admin);
	for (i = 0; i < m.nsocks; i++)
		close(m.socks[i].fd);
	ratelimit_detach(m.rl);
	shm_close(&m.shm);
	ticketkeys_wipe(&m.tk);
	close(m.cfg_ro_fd);
	close(m.exe_fd);
	for (i = 0; i < m.nproc; i++)
		if (m.sch[i] != -1)
			close(m.sch[i]);
	free(m.sch);
	free(m.w);
	acme_state_free(m.acme);
	upstate_alloc_free(m.ualloc);
	metrics_sites_free(m.msites);
	config_free(m.cfg);
	ev_loop_destroy(m.loop);
	return 0;
}
