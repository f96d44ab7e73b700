/*
 * control.c - the master/worker control channel (see control.h).
 */
#include "autoconf.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "control.h"
#include "log.h"
#include "util.h"

/* A report is written whole or not at all (pipe(7)). */
_Static_assert(CONTROL_MSG_MAX <= PIPE_BUF, "a report must fit PIPE_BUF");

/*
 * The ACME payload (control.h): four u32, two i64, then the strings in
 * fixed NUL-padded fields and the digest, then text for the types that
 * have it.
 */
#define A_ID		0
#define A_LISTENER	4
#define A_TYPE		8
#define A_OK		12
#define A_NOT_AFTER	16
#define A_NEXT		24
#define A_NAME		32
#define A_TOKEN		(A_NAME + CONTROL_NAME_MAX + 1)
#define A_KEYAUTH	(A_TOKEN + CONTROL_TOKEN_MAX + 1)
#define A_DIGEST	(A_KEYAUTH + CONTROL_KEYAUTH_MAX + 1)
_Static_assert(A_DIGEST + 32 == CONTROL_ACME_WIRE, "ACME wire layout");

/* Which fields of struct control_acme an ACME type uses. */
enum {
	FLD_ID = 1 << 0,
	FLD_LISTENER = 1 << 1,
	FLD_TYPE = 1 << 2,	/* and token, keyauth, digest as it says */
	FLD_OK = 1 << 3,
	FLD_TIMES = 1 << 4,	/* not_after, next */
	FLD_NAME = 1 << 5,	/* may be "" */
	FLD_NAME_SET = 1 << 6,	/* must not be "" */
	FLD_TEXT = 1 << 7,	/* text after the fixed part */
};

static unsigned
acme_fields(uint32_t type)
{
	switch (type) {
	case CONTROL_ACME_CHALLENGE:
		return FLD_ID | FLD_LISTENER | FLD_TYPE | FLD_NAME |
		    FLD_NAME_SET;
	case CONTROL_ACME_PUBLISHED:
	case CONTROL_ACME_RENEWED:
		return FLD_ID | FLD_OK | FLD_TEXT;
	case CONTROL_ACME_WITHDRAW:
		return FLD_ID;
	case CONTROL_ACME_ISSUED:
		return FLD_LISTENER | FLD_NAME | FLD_NAME_SET;
	case CONTROL_ACME_STATE:
		return FLD_LISTENER | FLD_TIMES | FLD_NAME | FLD_NAME_SET |
		    FLD_TEXT;
	case CONTROL_ACME_RENEW:
		return FLD_ID | FLD_NAME;
	case CONTROL_ACME_ATTEMPT:
		return FLD_LISTENER | FLD_OK | FLD_NAME | FLD_NAME_SET;
	default:
		return 0;
	}
}

/* Payload size of each type but those with text. */
static size_t
payload_size(uint32_t type)
{
	switch (type) {
	case CONTROL_READY:
	case CONTROL_SIGNER_KEYS:
		return 8 + 4;
	case CONTROL_CONFIG:
	case CONTROL_ACK:
	case CONTROL_ACME_CONFIG:
	case CONTROL_SIGNER_CHANNEL:
		return 8;
	case CONTROL_DRAIN:
	case CONTROL_REOPEN_LOG:
		return 0;
	default:
		return acme_fields(type) != 0 ? CONTROL_ACME_WIRE :
		    (size_t)-1;
	}
}

static bool
printable(const unsigned char *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i] < 0x20 || p[i] > 0x7e)
			return false;
	return true;
}

static bool
all_zero(const unsigned char *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i] != 0)
			return false;
	return true;
}

/*
 * A string field of size bytes: printable characters, a NUL, zeros to the
 * end (so that encode(parse(x)) == x).  Copied into out (size bytes too).
 * Returns its length, or -1.
 */
static ssize_t
parse_field(const unsigned char *p, size_t size, char *out)
{
	const unsigned char *nul = memchr(p, '\0', size);
	size_t len;

	if (nul == NULL)
		return -1;
	len = (size_t)(nul - p);
	if (!printable(p, len) || !all_zero(nul, size - len))
		return -1;
	memcpy(out, p, size);
	return (ssize_t)len;
}

static int
parse_acme(const unsigned char *p, size_t plen, uint32_t type,
    struct control_msg *m)
{
	struct control_acme *a = &m->acme;
	unsigned f = acme_fields(type);
	ssize_t name, token, keyauth;

	if (plen < CONTROL_ACME_WIRE || plen > CONTROL_ACME_WIRE +
	    ((f & FLD_TEXT) ? CONTROL_TEXT_MAX : 0))
		return -1;
	memcpy(&a->id, p + A_ID, 4);
	memcpy(&a->listener, p + A_LISTENER, 4);
	memcpy(&a->type, p + A_TYPE, 4);
	memcpy(&a->ok, p + A_OK, 4);
	memcpy(&a->not_after, p + A_NOT_AFTER, 8);
	memcpy(&a->next, p + A_NEXT, 8);
	memcpy(a->digest, p + A_DIGEST, 32);
	if ((name = parse_field(p + A_NAME, sizeof(a->name), a->name)) == -1 ||
	    (token = parse_field(p + A_TOKEN, sizeof(a->token),
	    a->token)) == -1 ||
	    (keyauth = parse_field(p + A_KEYAUTH, sizeof(a->keyauth),
	    a->keyauth)) == -1)
		return -1;
	/* Every field a type does not use is zero. */
	if ((!(f & FLD_ID) && a->id != 0) ||
	    (!(f & FLD_LISTENER) && a->listener != 0) ||
	    (!(f & FLD_OK) && a->ok != 0) || a->ok > 1 ||
	    (!(f & FLD_TIMES) && (a->not_after != 0 || a->next != 0)) ||
	    a->not_after < 0 || a->next < 0 ||
	    (!(f & FLD_NAME) && name != 0) ||
	    ((f & FLD_NAME_SET) && name == 0))
		return -1;
	if (!(f & FLD_TYPE)) {
		if (a->type != 0 || token != 0 || keyauth != 0 ||
		    !all_zero(a->digest, 32))
			return -1;
	} else if (a->type == CONFIG_ACME_HTTP_01) {
		/* The token and the body to answer with; no digest. */
		if (token == 0 || keyauth == 0 || !all_zero(a->digest, 32))
			return -1;
	} else if (a->type == CONFIG_ACME_TLS_ALPN_01) {
		/* The digest alone. */
		if (token != 0 || keyauth != 0)
			return -1;
	} else
		return -1;
	if (!printable(p + CONTROL_ACME_WIRE, plen - CONTROL_ACME_WIRE))
		return -1;
	memcpy(m->text, p + CONTROL_ACME_WIRE, plen - CONTROL_ACME_WIRE);
	m->text[plen - CONTROL_ACME_WIRE] = '\0';
	return 0;
}

int
control_parse(const unsigned char *buf, size_t len, struct control_msg *m)
{
	struct control_hdr h;
	const unsigned char *p = buf + sizeof(h);
	size_t want;

	memset(m, 0, sizeof(*m));
	m->fd = -1;
	if (len < sizeof(h))
		return -1;
	memcpy(&h, buf, sizeof(h));
	if (h.len != len - sizeof(h))
		return -1;
	if (h.type == CONTROL_NACK) {
		if (h.len < 8 || h.len > 8 + CONTROL_TEXT_MAX ||
		    !printable(p + 8, h.len - 8))
			return -1;
		memcpy(&m->gen, p, 8);
		memcpy(m->text, p + 8, h.len - 8);
		m->text[h.len - 8] = '\0';
		m->type = CONTROL_NACK;
		return 0;
	}
	if (acme_fields(h.type) != 0) {
		if (parse_acme(p, h.len, h.type, m) == -1) {
			memset(m, 0, sizeof(*m));
			m->fd = -1;
			return -1;
		}
		m->type = (enum control_type)h.type;
		return 0;
	}
	want = payload_size(h.type);
	if (want == (size_t)-1 || h.len != want)
		return -1;
	m->type = (enum control_type)h.type;
	if (want >= 8)
		memcpy(&m->gen, p, 8);
	if (want == 12)
		memcpy(&m->pid, p + 8, 4);
	return 0;
}

/* A string into its fixed field: at most size - 1 bytes, zero padded. */
static void
encode_field(unsigned char *p, size_t size, const char *s, bool used)
{
	size_t len = used ? strnlen(s, size - 1) : 0;

	memcpy(p, s, len);
	memset(p + len, 0, size - len);
}

static size_t
encode_acme(const struct control_msg *m, unsigned char *p)
{
	const struct control_acme *a = &m->acme;
	unsigned f = acme_fields(m->type);
	uint32_t zero32 = 0;
	int64_t zero64 = 0;
	bool http = (f & FLD_TYPE) && a->type == CONFIG_ACME_HTTP_01;
	size_t tlen;

	memcpy(p + A_ID, (f & FLD_ID) ? &a->id : &zero32, 4);
	memcpy(p + A_LISTENER, (f & FLD_LISTENER) ? &a->listener : &zero32, 4);
	memcpy(p + A_TYPE, (f & FLD_TYPE) ? &a->type : &zero32, 4);
	memcpy(p + A_OK, (f & FLD_OK) ? &a->ok : &zero32, 4);
	memcpy(p + A_NOT_AFTER, (f & FLD_TIMES) ? &a->not_after : &zero64, 8);
	memcpy(p + A_NEXT, (f & FLD_TIMES) ? &a->next : &zero64, 8);
	encode_field(p + A_NAME, sizeof(a->name), a->name, f & FLD_NAME);
	encode_field(p + A_TOKEN, sizeof(a->token), a->token, http);
	encode_field(p + A_KEYAUTH, sizeof(a->keyauth), a->keyauth, http);
	if ((f & FLD_TYPE) && !http)
		memcpy(p + A_DIGEST, a->digest, 32);
	else
		memset(p + A_DIGEST, 0, 32);
	tlen = (f & FLD_TEXT) ? strnlen(m->text, CONTROL_TEXT_MAX) : 0;
	memcpy(p + CONTROL_ACME_WIRE, m->text, tlen);
	return CONTROL_ACME_WIRE + tlen;
}

size_t
control_encode(const struct control_msg *m, unsigned char *buf)
{
	struct control_hdr h;
	unsigned char *p = buf + sizeof(h);
	size_t tlen;

	h.type = m->type;
	if (m->type == CONTROL_NACK) {
		tlen = strnlen(m->text, CONTROL_TEXT_MAX);
		memcpy(p, &m->gen, 8);
		memcpy(p + 8, m->text, tlen);
		h.len = (uint32_t)(8 + tlen);
	} else if (acme_fields(m->type) != 0) {
		h.len = (uint32_t)encode_acme(m, p);
	} else {
		if (payload_size(m->type) == (size_t)-1)
			fatalx("control: encoding an unknown message type %d",
			    m->type);
		h.len = (uint32_t)payload_size(m->type);
		if (h.len >= 8)
			memcpy(p, &m->gen, 8);
		if (h.len == 12)
			memcpy(p + 8, &m->pid, 4);
	}
	memcpy(buf, &h, sizeof(h));
	return sizeof(h) + h.len;
}

/* The types that carry a descriptor (master -> worker or ACME process). */
static bool
has_fd(enum control_type type)
{
	return type == CONTROL_REOPEN_LOG || type == CONTROL_ACME_CONFIG ||
	    type == CONTROL_SIGNER_KEYS || type == CONTROL_SIGNER_CHANNEL;
}

/* The types only the master sends; the others only its children. */
static bool
from_master(enum control_type type)
{
	switch (type) {
	case CONTROL_CONFIG:
	case CONTROL_DRAIN:
	case CONTROL_REOPEN_LOG:
	case CONTROL_ACME_CONFIG:
	case CONTROL_ACME_PUBLISHED:
	case CONTROL_ACME_RENEW:
	case CONTROL_SIGNER_KEYS:
	case CONTROL_SIGNER_CHANNEL:
		return true;
	default:
		return false;
	}
}

/*
 * Nothing a worker writes on the socket may reach the master: shut for
 * reading, the master's end makes the worker's send fail (EPIPE) before
 * anything is queued, so no descriptor a worker attaches is ever held by
 * the master (its close could block: a lingering socket whose queue never
 * drains).  SO_PASSRIGHTS=0 says the same where the kernel knows it.
 */
static int
master_end_deaf(int sock)
{
	if (util_refuse_fds(sock) == -1)
		return -1;
	return shutdown(sock, SHUT_RD);
}

int
control_open(int sock[2], int report[2])
{
	int saved;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK,
	    0, sock) == -1)
		return -1;
	if (master_end_deaf(sock[0]) == -1)
		goto fail;
	/* O_DIRECT: packet mode, one read(2) returns one write(2). */
	if (pipe2(report, O_DIRECT | O_CLOEXEC | O_NONBLOCK) == -1)
		goto fail;
	return 0;
fail:
	saved = errno;
	close(sock[0]);
	close(sock[1]);
	errno = saved;
	return -1;
}

int
control_send(int sock, const struct control_msg *m)
{
	unsigned char buf[CONTROL_MSG_MAX];
	union {
		struct cmsghdr	 hdr;
		unsigned char	 buf[CMSG_SPACE(sizeof(int))];
	} cm;
	struct iovec iov;
	struct msghdr msg;
	ssize_t n;

	iov.iov_base = buf;
	iov.iov_len = control_encode(m, buf);
	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	if (has_fd(m->type) && m->fd >= 0) {
		memset(&cm, 0, sizeof(cm));
		msg.msg_control = cm.buf;
		msg.msg_controllen = sizeof(cm.buf);
		cm.hdr.cmsg_len = CMSG_LEN(sizeof(int));
		cm.hdr.cmsg_level = SOL_SOCKET;
		cm.hdr.cmsg_type = SCM_RIGHTS;
		memcpy(CMSG_DATA(&cm.hdr), &m->fd, sizeof(int));
	}
	do
		n = sendmsg(sock, &msg, MSG_NOSIGNAL);
	while (n == -1 && errno == EINTR);
	return n == (ssize_t)iov.iov_len ? 0 : -1;
}

static void
msg_gen(struct control_msg *m, enum control_type type, uint64_t gen)
{
	memset(m, 0, sizeof(*m));
	m->type = type;
	m->gen = gen;
	m->fd = -1;
}

int
control_send_gen(int sock, enum control_type type, uint64_t gen)
{
	struct control_msg m;

	msg_gen(&m, type, gen);
	return control_send(sock, &m);
}

/* Take the descriptors out of a message: keep at most one, close the rest. */
static int
take_fds(struct msghdr *msg)
{
	struct cmsghdr *c;
	int fd = -1, extra;
	size_t i, n;

	for (c = CMSG_FIRSTHDR(msg); c != NULL; c = CMSG_NXTHDR(msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < n; i++) {
			memcpy(&extra, CMSG_DATA(c) + i * sizeof(int),
			    sizeof(int));
			if (fd == -1)
				fd = extra;
			else
				close(extra);
		}
	}
	return fd;
}

int
control_recv(int sock, struct control_msg *m)
{
	unsigned char buf[CONTROL_MSG_MAX + 1];
	union {
		struct cmsghdr	 hdr;
		unsigned char	 buf[CMSG_SPACE(4 * sizeof(int))];
	} cm;
	struct iovec iov = { buf, sizeof(buf) };
	struct msghdr msg;
	ssize_t n;
	int fd;

	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cm.buf;
	msg.msg_controllen = sizeof(cm.buf);
	do
		n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
	while (n == -1 && errno == EINTR);
	if (n <= 0)
		return (int)n;
	fd = take_fds(&msg);
	if ((msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) ||
	    control_parse(buf, (size_t)n, m) == -1 ||
	    !from_master(m->type) || (fd != -1) != has_fd(m->type)) {
		if (fd != -1)
			close(fd);
		errno = EPROTO;
		return -1;
	}
	m->fd = fd;
	return 1;
}

int
control_report(int pipefd, const struct control_msg *m)
{
	unsigned char buf[CONTROL_MSG_MAX];
	size_t len;
	ssize_t n;

	if (has_fd(m->type)) {
		errno = EINVAL;
		return -1;
	}
	len = control_encode(m, buf);
	/* At most PIPE_BUF bytes: written whole or not at all. */
	do
		n = write(pipefd, buf, len);
	while (n == -1 && errno == EINTR);
	return n == (ssize_t)len ? 0 : -1;
}

int
control_report_gen(int pipefd, enum control_type type, uint64_t gen)
{
	struct control_msg m;

	msg_gen(&m, type, gen);
	return control_report(pipefd, &m);
}

int
control_read(int pipefd, struct control_msg *m)
{
	unsigned char buf[CONTROL_MSG_MAX + 1];
	ssize_t n;

	/*
	 * One packet (the rest of a longer one is discarded).  A worker that
	 * turns packet mode off on its end only garbles its own framing:
	 * whatever one read returns is parsed as one message, or refused.
	 */
	do
		n = read(pipefd, buf, sizeof(buf));
	while (n == -1 && errno == EINTR);
	if (n <= 0)
		return (int)n;
	if ((size_t)n > CONTROL_MSG_MAX ||
	    control_parse(buf, (size_t)n, m) == -1 ||
	    from_master(m->type)) {
		errno = EPROTO;
		return -1;
	}
	return 1;
}

void
control_child_check(int sock, int pipefd, const char *env)
{
	int type = 0;
	socklen_t len = sizeof(type);
	struct stat st;

	if (getsockopt(sock, SOL_SOCKET, SO_TYPE, &type, &len) == -1 ||
	    type != SOCK_SEQPACKET)
		fatalx("fd %d is not a control channel: %s is internal", sock,
		    env);
	if (fstat(pipefd, &st) == -1 || !S_ISFIFO(st.st_mode))
		fatalx("fd %d is not a report pipe: %s is internal", pipefd,
		    env);
	/* Never wait on the master: a report that does not fit fails. */
	if (util_set_nonblock(sock) == -1 || util_set_nonblock(pipefd) == -1)
		fatal("control channel");
}

void
control_child_report(int pipefd, struct control_msg *m)
{
	m->fd = -1;
	if (control_report(pipefd, m) == -1) {
		if (errno == EPIPE)
			exit(0);	/* the master is gone */
		log_warn("control: report %d", (int)m->type);
	}
}

void
control_child_answer(const struct control_child *c, uint64_t gen,
    uint64_t now, const char *why)
{
	struct control_msg m;

	if (now != 0) {
		(void)control_report_gen(c->report, CONTROL_ACK, now);
		return;
	}
	log_warnx("generation %llu rejected: %s", (unsigned long long)gen,
	    why);
	memset(&m, 0, sizeof(m));
	m.type = CONTROL_NACK;
	m.gen = gen;
	m.fd = -1;
	snprintf(m.text, sizeof(m.text), "%s", why);
	(void)control_report(c->report, &m);
}

static void
child_config(const struct control_child *c, uint64_t gen)
{
	const char *why = "";
	uint64_t now;

	if ((now = c->config(c->arg, gen, &why)) != CONTROL_GEN_LATER)
		control_child_answer(c, gen, now, why);
}

int
control_child_read(const struct control_child *c)
{
	struct control_msg m;
	int rc;

	while ((rc = control_recv(c->sock, &m)) == 1) {
		switch (m.type) {
		case CONTROL_CONFIG:
			child_config(c, m.gen);
			break;
		case CONTROL_DRAIN:
			c->drain(c->arg, "master asked");
			break;
		case CONTROL_REOPEN_LOG:
			log_reopen(m.fd);
			break;
		default:
			fatalx("control: unexpected message %d", m.type);
		}
	}
	if (rc == 0) {
		/* The master is gone: nobody will supervise us. */
		c->drain(c->arg, "master exited");
		return 0;
	}
	if (errno == EPROTO)
		fatalx("control: protocol violation");
	return 1;
}
