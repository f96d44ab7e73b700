/*
 * control.c - the master/worker control channel (see control.h).
 */
#include "autoconf.h"

#include <sys/socket.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "control.h"
#include "log.h"
#include "util.h"

/* A report is written whole or not at all (pipe(7)). */
_Static_assert(CONTROL_MSG_MAX <= PIPE_BUF, "a report must fit PIPE_BUF");

/* Payload size of each type; NACK has a variable text part after gen. */
static size_t
payload_size(uint32_t type)
{
	switch (type) {
	case CONTROL_READY:
		return 8 + 4;
	case CONTROL_CONFIG:
	case CONTROL_ACK:
		return 8;
	case CONTROL_DRAIN:
	case CONTROL_REOPEN_LOG:
		return 0;
	default:
		return (size_t)-1;
	}
}

int
control_parse(const unsigned char *buf, size_t len, struct control_msg *m)
{
	struct control_hdr h;
	const unsigned char *p = buf + sizeof(h);
	size_t i, want;

	memset(m, 0, sizeof(*m));
	m->fd = -1;
	if (len < sizeof(h))
		return -1;
	memcpy(&h, buf, sizeof(h));
	if (h.len != len - sizeof(h))
		return -1;
	if (h.type == CONTROL_NACK) {
		if (h.len < 8 || h.len > 8 + CONTROL_TEXT_MAX)
			return -1;
		memcpy(&m->gen, p, 8);
		for (i = 8; i < h.len; i++) {
			if (p[i] < 0x20 || p[i] > 0x7e)
				return -1;
			m->text[i - 8] = (char)p[i];
		}
		m->text[h.len - 8] = '\0';
		m->type = CONTROL_NACK;
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
	if (m->type == CONTROL_REOPEN_LOG && m->fd >= 0) {
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
	    (fd != -1) != (m->type == CONTROL_REOPEN_LOG)) {
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

	if (m->type == CONTROL_REOPEN_LOG) {
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
	    m->type == CONTROL_REOPEN_LOG) {
		errno = EPROTO;
		return -1;
	}
	return 1;
}
