/*
 * admin.c - the admin socket, served by the master (see admin.h).
 */
#include "autoconf.h"

#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin.h"
#include "log.h"
#include "util.h"

#define ADMIN_MAGIC	0x41444d43u	/* "ADMC" */

struct admin_client {
	uint32_t		 magic;
	struct admin		*a;
	int			 fd;
	ev_io			 io;
	ev_timer		 timer;
	char			 buf[ADMIN_LINE_MAX];
	size_t			 len;
	char			 arg[ADMIN_ARG_MAX + 1];
	TAILQ_ENTRY(admin_client) entry;
};

struct admin {
	int			 fd;
	char			*path;
	struct ev_loop		*loop;
	ev_io			 io;
	admin_handler		 handler;
	void			*arg;
	TAILQ_HEAD(, admin_client) clients;
	size_t			 nclients;
};

static bool
admin_blank(char c)
{
	return c == ' ' || c == '\t';
}

enum admin_cmd
admin_parse(const char *line, size_t len, const char **arg, size_t *arglen)
{
	static const struct {
		const char	*word;
		enum admin_cmd	 cmd;
		bool		 takes_arg;
	} cmds[] = {
		{ "status", ADMIN_CMD_STATUS, false },
		{ "reload", ADMIN_CMD_RELOAD, false },
		{ "renew", ADMIN_CMD_RENEW, true },
		{ "rotate-ticket-keys", ADMIN_CMD_ROTATE, false },
	};
	size_t i, wlen, a, alen;

	if (arg != NULL) {
		*arg = line;
		*arglen = 0;
	}
	while (len > 0 && (line[len - 1] == '\r' || admin_blank(line[len - 1])))
		len--;
	while (len > 0 && admin_blank(line[0])) {
		line++;
		len--;
	}
	for (wlen = 0; wlen < len && !admin_blank(line[wlen]); wlen++)
		;
	/* The argument: after blanks, one word of printable bytes. */
	for (a = wlen; a < len && admin_blank(line[a]); a++)
		;
	alen = len - a;
	for (i = a; i < len; i++)
		if (line[i] <= ' ' || line[i] > '~')
			return ADMIN_CMD_INVALID;
	if (alen > ADMIN_ARG_MAX)
		return ADMIN_CMD_INVALID;
	for (i = 0; i < nitems(cmds); i++) {
		if (wlen != strlen(cmds[i].word) ||
		    memcmp(line, cmds[i].word, wlen) != 0)
			continue;
		if (alen > 0 && !cmds[i].takes_arg)
			return ADMIN_CMD_INVALID;
		if (arg != NULL) {
			*arg = line + a;
			*arglen = alen;
		}
		return cmds[i].cmd;
	}
	return ADMIN_CMD_INVALID;
}

const char *
admin_client_arg(const struct admin_client *c)
{
	return c->arg;
}

static struct admin_client *
client_of(void *data)
{
	struct admin_client *c = data;

	if (c == NULL || c->magic != ADMIN_MAGIC)
		fatalx("admin: corrupt client");
	return c;
}

static void
client_free(struct admin_client *c)
{
	struct admin *a = c->a;

	ev_io_stop(a->loop, &c->io);
	ev_timer_stop(a->loop, &c->timer);
	close(c->fd);
	TAILQ_REMOVE(&a->clients, c, entry);
	a->nclients--;
	c->magic = 0;
	free(c);
}

void
admin_reply(struct admin_client *c, const char *json)
{
	struct iovec iov[2];
	struct msghdr msg;

	client_of(c);
	iov[0].iov_base = (void *)(uintptr_t)json;
	iov[0].iov_len = strlen(json);
	iov[1].iov_base = (void *)(uintptr_t)"\n";
	iov[1].iov_len = 1;
	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = iov;
	msg.msg_iovlen = 2;
	/* A reply is a few hundred bytes: the socket buffer takes it. */
	if (sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT) == -1)
		log_debug("admin: reply not delivered: %s", strerror(errno));
	client_free(c);
}

void
admin_reply_error(struct admin_client *c, const char *message)
{
	char json[1024], esc[900];
	bool cut;
	size_t n;

	n = log_escape_json(message, strlen(message), esc, sizeof(esc) - 1,
	    &cut);
	esc[n] = '\0';
	snprintf(json, sizeof(json), "{\"status\":\"error\",\"message\":%s}",
	    esc);
	admin_reply(c, json);
}

static void
client_timeout_cb(struct ev_loop *loop UNUSED, ev_timer *w, int revents UNUSED)
{
	struct admin_client *c = client_of(w->data);

	log_debug("admin: dropping a client that sent no command");
	client_free(c);
}

static void
client_read_cb(struct ev_loop *loop, ev_io *w, int revents UNUSED)
{
	struct admin_client *c = client_of(w->data);
	enum admin_cmd cmd;
	const char *arg;
	size_t arglen;
	char *nl;
	ssize_t n;

	n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		client_free(c);
		return;
	}
	c->len += (size_t)n;
	if ((nl = memchr(c->buf, '\n', c->len)) == NULL) {
		if (c->len == sizeof(c->buf)) {
			log_warnx("admin: dropping a client with an oversized "
			    "command");
			client_free(c);
		}
		return;
	}
	/* The command is complete: the client now waits for its reply. */
	ev_io_stop(loop, &c->io);
	ev_timer_stop(loop, &c->timer);
	cmd = admin_parse(c->buf, (size_t)(nl - c->buf), &arg, &arglen);
	if (cmd == ADMIN_CMD_INVALID) {
		admin_reply_error(c, "unknown command (try status, reload, "
		    "renew [NAME] or rotate-ticket-keys)");
		return;
	}
	memcpy(c->arg, arg, arglen);
	c->arg[arglen] = '\0';
	c->a->handler(c->a->arg, c, cmd);
}

static void
admin_accept_cb(struct ev_loop *loop, ev_io *w, int revents UNUSED)
{
	struct admin *a = w->data;
	struct admin_client *c;
	int fd;

	fd = accept4(a->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd == -1) {
		if (errno != EAGAIN && errno != EINTR)
			log_warn("admin: accept");
		return;
	}
	if (a->nclients >= ADMIN_MAX_CLIENTS ||
	    (c = calloc(1, sizeof(*c))) == NULL) {
		log_warnx("admin: too many clients, dropping one");
		close(fd);
		return;
	}
	c->magic = ADMIN_MAGIC;
	c->a = a;
	c->fd = fd;
	TAILQ_INSERT_TAIL(&a->clients, c, entry);
	a->nclients++;
	ev_io_init(&c->io, client_read_cb, fd, EV_READ);
	c->io.data = c;
	ev_timer_init(&c->timer, client_timeout_cb, ADMIN_TIMEOUT, 0.);
	c->timer.data = c;
	ev_io_start(loop, &c->io);
	ev_timer_start(loop, &c->timer);
}

/* An existing socket file is removed only if nothing answers on it. */
static int
clear_stale(const char *path, const struct sockaddr_un *sun)
{
	struct stat st;
	int fd, rc;

	if (lstat(path, &st) == -1)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISSOCK(st.st_mode)) {
		log_warnx("admin socket %s exists and is not a socket", path);
		errno = EEXIST;
		return -1;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	rc = connect(fd, (const struct sockaddr *)sun, sizeof(*sun));
	close(fd);
	if (rc == 0) {
		log_warnx("admin socket %s is in use: is portcullis already "
		    "running?", path);
		errno = EADDRINUSE;
		return -1;
	}
	return unlink(path);
}

struct admin *
admin_open(const char *path)
{
	struct sockaddr_un sun;
	struct admin *a;
	mode_t old;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		errno = ENAMETOOLONG;
		return NULL;
	}
	memcpy(sun.sun_path, path, strlen(path));
	if (clear_stale(path, &sun) == -1 ||
	    (a = calloc(1, sizeof(*a))) == NULL)
		return NULL;
	TAILQ_INIT(&a->clients);
	a->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (a->fd == -1 || (a->path = strdup(path)) == NULL)
		goto fail;
	/*
	 * No descriptor from a client: its close in the master could block
	 * (a lingering socket).  Only where the kernel can refuse them
	 * (Linux 6.16); a worker running as the master's user can connect.
	 */
	if (util_refuse_fds(a->fd) == -1)
		goto fail;
	old = umask(0177);
	if (bind(a->fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		umask(old);
		goto fail;
	}
	umask(old);
	if (chmod(path, 0600) == -1 || listen(a->fd, ADMIN_MAX_CLIENTS) == -1)
		goto fail;
	return a;
fail:
	if (a->fd != -1)
		close(a->fd);
	free(a->path);
	free(a);
	return NULL;
}

void
admin_start(struct admin *a, struct ev_loop *loop, admin_handler h, void *arg)
{
	a->loop = loop;
	a->handler = h;
	a->arg = arg;
	ev_io_init(&a->io, admin_accept_cb, a->fd, EV_READ);
	a->io.data = a;
	ev_io_start(loop, &a->io);
}

void
admin_close(struct admin *a)
{
	struct admin_client *c;

	if (a == NULL)
		return;
	while ((c = TAILQ_FIRST(&a->clients)) != NULL)
		client_free(c);
	if (a->loop != NULL)
		ev_io_stop(a->loop, &a->io);
	close(a->fd);
	(void)unlink(a->path);
	free(a->path);
	free(a);
}
