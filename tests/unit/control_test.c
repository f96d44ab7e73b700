/*
 * control_test.c - the master/worker control channel: the pure
 * parser/encoder for every type, send/recv over a real SOCK_SEQPACKET
 * socketpair (master -> worker, descriptor passing included), and
 * report/read over the packet-mode pipe (worker -> master), made by
 * control_open() as the master makes them.
 */

#include "autoconf.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sys/socket.h>
#include <dirent.h>
#include <signal.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "control.h"
#include "util.h"

#define HDR	sizeof(struct control_hdr)

static struct control_msg
msg_of(enum control_type type, uint64_t gen, uint32_t pid, const char *text)
{
	struct control_msg m;

	memset(&m, 0, sizeof(m));
	m.type = type;
	m.gen = gen;
	m.pid = pid;
	m.fd = -1;
	if (text != NULL)
		memcpy(m.text, text, strlen(text) + 1);
	return m;
}

/* A raw message: header (type, len) then payload bytes. */
static size_t
raw(unsigned char *buf, uint32_t type, uint32_t len, const void *payload,
    size_t plen)
{
	struct control_hdr h = { type, len };

	memcpy(buf, &h, HDR);
	if (plen > 0)
		memcpy(buf + HDR, payload, plen);
	return HDR + plen;
}

/* Parse from an exact-size heap copy, so ASan sees a read past len. */
static int
parse(const unsigned char *buf, size_t len, struct control_msg *m)
{
	unsigned char	*copy = malloc(len > 0 ? len : 1);
	int		 rc;

	assert_non_null(copy);
	memcpy(copy, buf, len);
	memset(m, 0xa5, sizeof(*m));
	rc = control_parse(copy, len, m);
	free(copy);
	assert_true(rc == 0 || rc == -1);
	/* Whatever the outcome, no descriptor comes out of the bytes. */
	assert_int_equal(m->fd, -1);
	return rc;
}

static void
expect_reject(const unsigned char *buf, size_t len, const char *what)
{
	struct control_msg m;

	if (parse(buf, len, &m) != -1)
		fail_msg("accepted: %s", what);
}

/* The payload size each type must have on the wire. */
static size_t
wire_payload(const struct control_msg *m)
{
	switch (m->type) {
	case CONTROL_READY:
		return 12;
	case CONTROL_CONFIG:
	case CONTROL_ACK:
		return 8;
	case CONTROL_NACK:
		return 8 + strlen(m->text);
	case CONTROL_DRAIN:
	case CONTROL_REOPEN_LOG:
		return 0;
	}
	fail_msg("bad type %d", (int)m->type);
	return 0;
}

static void
assert_msg_equal(const struct control_msg *a, const struct control_msg *b)
{
	assert_int_equal(a->type, b->type);
	if (a->type == CONTROL_DRAIN || a->type == CONTROL_REOPEN_LOG)
		return;
	assert_true(a->gen == b->gen);
	if (a->type == CONTROL_READY)
		assert_int_equal(a->pid, b->pid);
	if (a->type == CONTROL_NACK)
		assert_string_equal(a->text, b->text);
}

static struct control_msg *
sample_msgs(size_t *n)
{
	static char	 longtext[CONTROL_TEXT_MAX + 1];
	static struct control_msg m[10];
	size_t		 i = 0;

	memset(longtext, '~', CONTROL_TEXT_MAX);
	longtext[0] = ' ';
	longtext[CONTROL_TEXT_MAX] = '\0';
	m[i++] = msg_of(CONTROL_READY, 1, 12345, NULL);
	m[i++] = msg_of(CONTROL_READY, UINT64_MAX, UINT32_MAX, NULL);
	m[i++] = msg_of(CONTROL_CONFIG, 0x0102030405060708ULL, 0, NULL);
	m[i++] = msg_of(CONTROL_ACK, 7, 0, NULL);
	m[i++] = msg_of(CONTROL_NACK, 8, 0, "");
	m[i++] = msg_of(CONTROL_NACK, 9, 0, "site \"a.com\": cannot load key");
	m[i++] = msg_of(CONTROL_NACK, 10, 0, longtext);
	m[i++] = msg_of(CONTROL_DRAIN, 0, 0, NULL);
	m[i++] = msg_of(CONTROL_REOPEN_LOG, 0, 0, NULL);
	*n = i;
	return m;
}

static void
test_encode_parse_round_trip(void **state)
{
	unsigned char	 buf[CONTROL_MSG_MAX], again[CONTROL_MSG_MAX];
	struct control_msg	*m, out;
	struct control_hdr	 h;
	size_t		 i, n, len;

	(void)state;
	m = sample_msgs(&n);
	for (i = 0; i < n; i++) {
		len = control_encode(&m[i], buf);
		assert_int_equal(len, HDR + wire_payload(&m[i]));
		assert_true(len <= CONTROL_MSG_MAX);
		memcpy(&h, buf, HDR);
		assert_int_equal(h.type, m[i].type);
		assert_int_equal(h.len, len - HDR);
		assert_int_equal(parse(buf, len, &out), 0);
		assert_msg_equal(&m[i], &out);
		assert_int_equal(control_encode(&out, again), len);
		assert_memory_equal(buf, again, len);
	}
}

/* The layout both ends agree on: gen then pid, right after the header. */
static void
test_wire_layout(void **state)
{
	unsigned char	buf[CONTROL_MSG_MAX];
	struct control_msg	m = msg_of(CONTROL_READY, 0x1122334455667788ULL,
				    4242, NULL);
	uint64_t	gen;
	uint32_t	pid;

	(void)state;
	assert_int_equal(control_encode(&m, buf), HDR + 12);
	memcpy(&gen, buf + HDR, 8);
	memcpy(&pid, buf + HDR + 8, 4);
	assert_true(gen == m.gen);
	assert_int_equal(pid, 4242);
	assert_int_equal(CONTROL_MSG_MAX, HDR + 8 + 4 + CONTROL_TEXT_MAX);
}

static void
test_parse_wrong_lengths(void **state)
{
	static const uint32_t types[] = { CONTROL_READY, CONTROL_CONFIG,
	    CONTROL_ACK, CONTROL_DRAIN, CONTROL_REOPEN_LOG };
	unsigned char	buf[CONTROL_MSG_MAX + 16];
	unsigned char	zero[CONTROL_MSG_MAX] = { 0 };
	struct control_msg	m, ok;
	size_t		i, len, want;
	uint32_t	plen;

	(void)state;
	for (i = 0; i < nitems(types); i++) {
		ok = msg_of((enum control_type)types[i], 1, 1, NULL);
		want = wire_payload(&ok);
		/* Consistent headers, wrong payload sizes. */
		for (plen = 0; plen <= 16; plen++) {
			len = raw(buf, types[i], plen, zero, plen);
			if (plen == want)
				assert_int_equal(parse(buf, len, &m), 0);
			else
				expect_reject(buf, len, "wrong payload size");
		}
		/* The header disagrees with the bytes received. */
		len = raw(buf, types[i], (uint32_t)want, zero, want);
		expect_reject(buf, len - 1 < HDR ? HDR - 1 : len - 1,
		    "short");
		buf[len] = 0;
		expect_reject(buf, len + 1, "long");
		raw(buf, types[i], (uint32_t)want + 1, zero, want);
		expect_reject(buf, len, "header says one more");
		raw(buf, types[i], UINT32_MAX, zero, want);
		expect_reject(buf, len, "header says 4 GiB");
	}
	/* Shorter than a header. */
	memset(buf, 0, sizeof(buf));
	for (len = 0; len < HDR; len++)
		expect_reject(buf, len, "shorter than a header");
	raw(buf, CONTROL_DRAIN, 0, NULL, 0);
	for (len = 0; len < HDR; len++)
		expect_reject(buf, len, "truncated header");
	assert_int_equal(parse(buf, HDR, &m), 0);
	assert_int_equal(m.type, CONTROL_DRAIN);
}

static void
test_parse_unknown_types(void **state)
{
	static const uint32_t types[] = { 0, CONTROL_TYPE_MAX + 1, 7, 8, 255,
	    256, 0x10000 | CONTROL_READY, 0x80000000u | CONTROL_ACK,
	    UINT32_MAX };
	unsigned char	buf[CONTROL_MSG_MAX], zero[16] = { 0 };
	size_t		i, plen;

	(void)state;
	for (i = 0; i < nitems(types); i++)
		for (plen = 0; plen <= 12; plen += 4)
			expect_reject(buf, raw(buf, types[i], (uint32_t)plen,
			    zero, plen), "unknown type");
}

static void
test_nack_text(void **state)
{
	unsigned char	buf[CONTROL_MSG_MAX + 16], payload[CONTROL_MSG_MAX];
	struct control_msg	m;
	size_t		len;
	unsigned	c;

	(void)state;
	memset(payload, 0, 8);
	/* A NACK needs its generation. */
	for (len = 0; len < 8; len++)
		expect_reject(buf, raw(buf, CONTROL_NACK, (uint32_t)len,
		    payload, len), "NACK without gen");
	/* Text length: 0 and CONTROL_TEXT_MAX are fine, one more is not. */
	memset(payload + 8, 'x', CONTROL_TEXT_MAX + 1);
	len = raw(buf, CONTROL_NACK, 8, payload, 8);
	assert_int_equal(parse(buf, len, &m), 0);
	assert_string_equal(m.text, "");
	len = raw(buf, CONTROL_NACK, 8 + CONTROL_TEXT_MAX, payload,
	    8 + CONTROL_TEXT_MAX);
	assert_int_equal(parse(buf, len, &m), 0);
	assert_int_equal(strlen(m.text), CONTROL_TEXT_MAX);
	assert_int_equal(m.text[CONTROL_TEXT_MAX], '\0');
	len = raw(buf, CONTROL_NACK, 8 + CONTROL_TEXT_MAX + 1, payload,
	    8 + CONTROL_TEXT_MAX + 1);
	expect_reject(buf, len, "NACK text one too long");

	/* Every byte value in the middle of a text. */
	memcpy(payload + 8, "abc?def", 7);
	for (c = 0; c < 256; c++) {
		payload[8 + 3] = (unsigned char)c;
		len = raw(buf, CONTROL_NACK, 15, payload, 15);
		if (c >= 0x20 && c <= 0x7e) {
			assert_int_equal(parse(buf, len, &m), 0);
			assert_int_equal((unsigned char)m.text[3], c);
			assert_int_equal(strlen(m.text), 7);
		} else
			expect_reject(buf, len, "non-printable NACK text");
	}
	/* A NUL at the very end, as a C string would have it. */
	memcpy(payload + 8, "abc\0", 4);
	expect_reject(buf, raw(buf, CONTROL_NACK, 12, payload, 12),
	    "NUL-terminated text");
}

/* The encoder never reads past CONTROL_TEXT_MAX, terminator or not. */
static void
test_nack_encode_bounds(void **state)
{
	unsigned char	buf[CONTROL_MSG_MAX];
	struct control_msg	m = msg_of(CONTROL_NACK, 3, 0, NULL), out;

	(void)state;
	memset(m.text, 'y', sizeof(m.text));	/* no terminator at all */
	assert_int_equal(control_encode(&m, buf), HDR + 8 + CONTROL_TEXT_MAX);
	assert_int_equal(parse(buf, HDR + 8 + CONTROL_TEXT_MAX, &out), 0);
	assert_int_equal(strlen(out.text), CONTROL_TEXT_MAX);
}

/*
 * Over a socketpair.
 */

static void
seqpacket_pair(int sv[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0,
	    sv), 0);
}

static int
count_fds(void)
{
	struct dirent	*de;
	DIR		*d = opendir("/proc/self/fd");
	int		 n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* Send raw bytes with any number of descriptors attached. */
static void
send_raw(int sock, const void *buf, size_t len, const int *fds, size_t nfds)
{
	union {
		struct cmsghdr	 hdr;
		unsigned char	 buf[CMSG_SPACE(8 * sizeof(int))];
	} cm;
	struct iovec	iov = { (void *)(uintptr_t)buf, len };
	struct msghdr	msg;

	assert_true(nfds <= 8);
	memset(&msg, 0, sizeof(msg));
	memset(&cm, 0, sizeof(cm));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	if (nfds > 0) {
		msg.msg_control = cm.buf;
		msg.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
		cm.hdr.cmsg_len = CMSG_LEN(nfds * sizeof(int));
		cm.hdr.cmsg_level = SOL_SOCKET;
		cm.hdr.cmsg_type = SCM_RIGHTS;
		memcpy(CMSG_DATA(&cm.hdr), fds, nfds * sizeof(int));
	}
	assert_int_equal(sendmsg(sock, &msg, 0), (ssize_t)len);
}

/* True if nobody holds the write end of pipe p anymore. */
static bool
writers_gone(int rfd)
{
	char	c;
	ssize_t	n;

	assert_int_equal(util_set_nonblock(rfd), 0);
	n = read(rfd, &c, 1);
	if (n == -1)
		assert_int_equal(errno, EAGAIN);
	return n == 0;
}

static void
test_send_recv_every_type(void **state)
{
	struct control_msg	*m, out;
	size_t		 i, n;
	int		 sv[2];

	(void)state;
	seqpacket_pair(sv);
	m = sample_msgs(&n);
	for (i = 0; i < n; i++) {
		if (m[i].type == CONTROL_REOPEN_LOG)
			continue;		/* needs a descriptor */
		assert_int_equal(control_send(sv[0], &m[i]), 0);
		memset(&out, 0x5a, sizeof(out));
		assert_int_equal(control_recv(sv[1], &out), 1);
		assert_msg_equal(&m[i], &out);
		assert_int_equal(out.fd, -1);
	}
	/* Both directions, and the convenience constructor. */
	assert_int_equal(control_send_gen(sv[1], CONTROL_ACK, 99), 0);
	assert_int_equal(control_recv(sv[0], &out), 1);
	assert_int_equal(out.type, CONTROL_ACK);
	assert_true(out.gen == 99);
	assert_int_equal(out.fd, -1);
	close(sv[0]);
	close(sv[1]);
}

/* Several messages queued keep their boundaries and their order. */
static void
test_message_boundaries(void **state)
{
	struct control_msg	out;
	uint64_t	g;
	int		sv[2];

	(void)state;
	seqpacket_pair(sv);
	for (g = 1; g <= 20; g++)
		assert_int_equal(control_send_gen(sv[0],
		    g % 2 ? CONTROL_CONFIG : CONTROL_ACK, g), 0);
	for (g = 1; g <= 20; g++) {
		assert_int_equal(control_recv(sv[1], &out), 1);
		assert_int_equal(out.type,
		    g % 2 ? CONTROL_CONFIG : CONTROL_ACK);
		assert_true(out.gen == g);
	}
	close(sv[0]);
	close(sv[1]);
}

static void
test_reopen_log_passes_fd(void **state)
{
	struct control_msg	m = msg_of(CONTROL_REOPEN_LOG, 0, 0, NULL);
	struct control_msg	out;
	char		buf[32];
	int		sv[2], p[2], before;

	(void)state;
	seqpacket_pair(sv);
	assert_int_equal(pipe(p), 0);
	m.fd = p[1];
	assert_int_equal(control_send(sv[0], &m), 0);
	close(p[1]);			/* only the passed copy is left */
	before = count_fds();
	assert_int_equal(control_recv(sv[1], &out), 1);
	assert_int_equal(out.type, CONTROL_REOPEN_LOG);
	assert_true(out.fd >= 0);
	assert_int_equal(count_fds(), before + 1);
	/* Close-on-exec: a worker re-executes itself. */
	assert_int_equal(fcntl(out.fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	assert_int_equal(write(out.fd, "new log\n", 8), 8);
	assert_int_equal(read(p[0], buf, sizeof(buf)), 8);
	assert_memory_equal(buf, "new log\n", 8);
	close(out.fd);
	assert_true(writers_gone(p[0]));
	close(p[0]);
	close(sv[0]);
	close(sv[1]);
}

/* A descriptor on anything but REOPEN_LOG: EPROTO, and it is closed. */
static void
test_fd_on_wrong_type_is_closed(void **state)
{
	unsigned char	buf[CONTROL_MSG_MAX];
	struct control_msg	m, out;
	size_t		len, i, n;
	int		sv[2], p[2], before;
	struct control_msg	*all = sample_msgs(&n);

	(void)state;
	seqpacket_pair(sv);
	for (i = 0; i < n; i++) {
		if (all[i].type == CONTROL_REOPEN_LOG)
			continue;
		m = all[i];
		len = control_encode(&m, buf);
		assert_int_equal(pipe(p), 0);
		before = count_fds();
		send_raw(sv[0], buf, len, &p[1], 1);
		close(p[1]);
		errno = 0;
		assert_int_equal(control_recv(sv[1], &out), -1);
		assert_int_equal(errno, EPROTO);
		assert_int_equal(count_fds(), before - 1);
		assert_true(writers_gone(p[0]));
		close(p[0]);
	}
	/* The channel is still usable after a bad message. */
	assert_int_equal(control_send_gen(sv[0], CONTROL_CONFIG, 5), 0);
	assert_int_equal(control_recv(sv[1], &out), 1);
	assert_true(out.gen == 5);
	close(sv[0]);
	close(sv[1]);
}

static void
test_reopen_log_without_fd(void **state)
{
	unsigned char	buf[CONTROL_MSG_MAX];
	struct control_msg	m = msg_of(CONTROL_REOPEN_LOG, 0, 0, NULL);
	struct control_msg	out;
	int		sv[2];

	(void)state;
	seqpacket_pair(sv);
	/* control_send attaches nothing for fd -1 ... */
	assert_int_equal(control_send(sv[0], &m), 0);
	errno = 0;
	assert_int_equal(control_recv(sv[1], &out), -1);
	assert_int_equal(errno, EPROTO);
	/* ... and the same bytes sent by hand fare no better. */
	send_raw(sv[0], buf, control_encode(&m, buf), NULL, 0);
	errno = 0;
	assert_int_equal(control_recv(sv[1], &out), -1);
	assert_int_equal(errno, EPROTO);
	close(sv[0]);
	close(sv[1]);
}

/* Several descriptors on a REOPEN_LOG: one is kept, the rest closed. */
static void
test_reopen_log_extra_fds(void **state)
{
	unsigned char	buf[CONTROL_MSG_MAX];
	struct control_msg	m = msg_of(CONTROL_REOPEN_LOG, 0, 0, NULL);
	struct control_msg	out;
	int		sv[2], p[3][2], w[3], before, i, gone = 0;
	char		c;

	(void)state;
	seqpacket_pair(sv);
	for (i = 0; i < 3; i++) {
		assert_int_equal(pipe(p[i]), 0);
		w[i] = p[i][1];
	}
	send_raw(sv[0], buf, control_encode(&m, buf), w, 3);
	for (i = 0; i < 3; i++)
		close(w[i]);
	before = count_fds();
	assert_int_equal(control_recv(sv[1], &out), 1);
	assert_true(out.fd >= 0);
	assert_int_equal(count_fds(), before + 1);
	assert_int_equal(write(out.fd, "k", 1), 1);
	assert_int_equal(read(p[0][0], &c, 1), 1);	/* the first is kept */
	close(out.fd);
	for (i = 0; i < 3; i++) {
		gone += writers_gone(p[i][0]);
		close(p[i][0]);
	}
	assert_int_equal(gone, 3);
	close(sv[0]);
	close(sv[1]);
}

/* More descriptors than the receiver has room for: none may leak. */
static void
test_too_many_fds(void **state)
{
	unsigned char	buf[CONTROL_MSG_MAX];
	struct control_msg	m = msg_of(CONTROL_REOPEN_LOG, 0, 0, NULL);
	struct control_msg	out;
	int		sv[2], fds[8], before, i, rc;

	(void)state;
	seqpacket_pair(sv);
	for (i = 0; i < 8; i++)
		assert_true((fds[i] = open("/dev/null", O_WRONLY)) >= 0);
	send_raw(sv[0], buf, control_encode(&m, buf), fds, 8);
	for (i = 0; i < 8; i++)
		close(fds[i]);
	before = count_fds();
	rc = control_recv(sv[1], &out);
	if (rc == 1) {
		close(out.fd);
	} else {
		assert_int_equal(rc, -1);
		assert_int_equal(errno, EPROTO);
	}
	assert_int_equal(count_fds(), before);
	close(sv[0]);
	close(sv[1]);
}

static void
test_recv_malformed(void **state)
{
	unsigned char	buf[CONTROL_MSG_MAX + 64];
	unsigned char	zero[CONTROL_MSG_MAX + 64] = { 0 };
	struct control_msg	out;
	size_t		len;
	int		sv[2];

	(void)state;
	seqpacket_pair(sv);
	/* Unknown type. */
	send_raw(sv[0], buf, raw(buf, 0, 8, zero, 8), NULL, 0);
	errno = 0;
	assert_int_equal(control_recv(sv[1], &out), -1);
	assert_int_equal(errno, EPROTO);
	/* Larger than any message: truncated by the receiver. */
	len = raw(buf, CONTROL_NACK, CONTROL_TEXT_MAX + 8 + 40, zero,
	    CONTROL_TEXT_MAX + 8 + 40);
	memset(buf + HDR + 8, 'a', CONTROL_TEXT_MAX + 40);
	send_raw(sv[0], buf, len, NULL, 0);
	errno = 0;
	assert_int_equal(control_recv(sv[1], &out), -1);
	assert_int_equal(errno, EPROTO);
	/* One byte more than the largest message (a NACK with a text
	 * CONTROL_TEXT_MAX + 5 long). */
	len = raw(buf, CONTROL_NACK, CONTROL_TEXT_MAX + 13, zero,
	    CONTROL_TEXT_MAX + 13);
	memset(buf + HDR + 8, 'a', CONTROL_TEXT_MAX + 5);
	assert_int_equal(len, CONTROL_MSG_MAX + 1);
	send_raw(sv[0], buf, len, NULL, 0);
	errno = 0;
	assert_int_equal(control_recv(sv[1], &out), -1);
	assert_int_equal(errno, EPROTO);
	/* Still in sync afterwards. */
	assert_int_equal(control_send_gen(sv[0], CONTROL_ACK, 77), 0);
	assert_int_equal(control_recv(sv[1], &out), 1);
	assert_true(out.gen == 77);
	close(sv[0]);
	close(sv[1]);
}

static void
test_recv_eof_and_eagain(void **state)
{
	struct control_msg	out;
	int		sv[2];

	(void)state;
	seqpacket_pair(sv);
	assert_int_equal(util_set_nonblock(sv[1]), 0);
	errno = 0;
	assert_int_equal(control_recv(sv[1], &out), -1);
	assert_int_equal(errno, EAGAIN);
	/* A queued message is still delivered before EOF. */
	assert_int_equal(control_send_gen(sv[0], CONTROL_CONFIG, 3), 0);
	close(sv[0]);
	assert_int_equal(control_recv(sv[1], &out), 1);
	assert_true(out.gen == 3);
	assert_int_equal(control_recv(sv[1], &out), 0);
	assert_int_equal(control_recv(sv[1], &out), 0);
	close(sv[1]);
}

/* The master is gone: sending fails without killing us with SIGPIPE. */
static void
test_send_to_closed_peer(void **state)
{
	struct control_msg	m = msg_of(CONTROL_READY, 1, 2, NULL);
	int		sv[2];

	(void)state;
	seqpacket_pair(sv);
	close(sv[1]);
	errno = 0;
	assert_int_equal(control_send(sv[0], &m), -1);
	assert_int_equal(errno, EPIPE);
	assert_int_equal(control_send_gen(sv[0], CONTROL_ACK, 1), -1);
	close(sv[0]);
	assert_int_equal(control_send_gen(sv[0], CONTROL_ACK, 1), -1);
}

/*
 * The channels control_open() makes.
 */

static int
fd_flags(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	assert_true(fl != -1);
	return fl;
}

static void
test_open_ends(void **state)
{
	int	sock[2], rep[2], i;
	int	all[4];

	(void)state;
	assert_int_equal(control_open(sock, rep), 0);
	all[0] = sock[0], all[1] = sock[1], all[2] = rep[0], all[3] = rep[1];
	for (i = 0; i < 4; i++) {
		assert_int_equal(fcntl(all[i], F_GETFD) & FD_CLOEXEC,
		    FD_CLOEXEC);
		assert_true(fd_flags(all[i]) & O_NONBLOCK);
	}
	assert_int_equal(fd_flags(rep[0]) & O_ACCMODE, O_RDONLY);
	assert_int_equal(fd_flags(rep[1]) & O_ACCMODE, O_WRONLY);
	/* Packet mode is the writer's: each write(2) one packet. */
	assert_true(fd_flags(rep[1]) & O_DIRECT);
	for (i = 0; i < 4; i++)
		close(all[i]);
}

static void
test_report_read_every_type(void **state)
{
	struct control_msg	*m, out;
	size_t		 i, n;
	int		 sock[2], rep[2];

	(void)state;
	assert_int_equal(control_open(sock, rep), 0);
	m = sample_msgs(&n);
	for (i = 0; i < n; i++) {
		if (m[i].type == CONTROL_REOPEN_LOG) {
			/* The one type with a descriptor is not reported. */
			errno = 0;
			assert_int_equal(control_report(rep[1], &m[i]), -1);
			assert_int_equal(errno, EINVAL);
			continue;
		}
		assert_int_equal(control_report(rep[1], &m[i]), 0);
		memset(&out, 0x5a, sizeof(out));
		assert_int_equal(control_read(rep[0], &out), 1);
		assert_msg_equal(&m[i], &out);
		assert_int_equal(out.fd, -1);
	}
	/* Boundaries and order kept with several queued. */
	for (i = 1; i <= 12; i++)
		assert_int_equal(control_report_gen(rep[1], CONTROL_ACK, i), 0);
	for (i = 1; i <= 12; i++) {
		assert_int_equal(control_read(rep[0], &out), 1);
		assert_int_equal(out.type, CONTROL_ACK);
		assert_true(out.gen == i);
	}
	close(sock[0]);
	close(sock[1]);
	close(rep[0]);
	close(rep[1]);
}

/*
 * The master's end of the socket takes nothing from the worker: a send
 * fails before anything is queued, descriptors included, while the
 * master's messages (REOPEN_LOG's descriptor too) still reach the worker.
 */
static void
test_open_socket_is_one_way(void **state)
{
	unsigned char	buf[CONTROL_MSG_MAX];
	struct control_msg	m = msg_of(CONTROL_ACK, 1, 0, NULL), out;
	union {
		struct cmsghdr	 hdr;
		unsigned char	 buf[CMSG_SPACE(sizeof(int))];
	} cm;
	struct iovec	iov = { buf, 0 };
	struct msghdr	msg;
	int		sock[2], rep[2], p[2];

	(void)state;
	assert_int_equal(control_open(sock, rep), 0);
	errno = 0;
	assert_int_equal(control_send(sock[1], &m), -1);
	assert_int_equal(errno, EPIPE);
	assert_int_equal(pipe(p), 0);
	iov.iov_len = control_encode(&m, buf);
	memset(&msg, 0, sizeof(msg));
	memset(&cm, 0, sizeof(cm));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cm.buf;
	msg.msg_controllen = sizeof(cm.buf);
	cm.hdr.cmsg_len = CMSG_LEN(sizeof(int));
	cm.hdr.cmsg_level = SOL_SOCKET;
	cm.hdr.cmsg_type = SCM_RIGHTS;
	memcpy(CMSG_DATA(&cm.hdr), &p[1], sizeof(int));
	errno = 0;
	assert_int_equal(sendmsg(sock[1], &msg, MSG_NOSIGNAL), -1);
	assert_int_equal(errno, EPIPE);
	close(p[1]);
	/* No copy of the descriptor is held anywhere. */
	assert_true(writers_gone(p[0]));
	close(p[0]);
	errno = 0;
	assert_int_equal(recv(sock[0], buf, sizeof(buf), 0), 0);

	/* Master -> worker is untouched. */
	assert_int_equal(pipe(p), 0);
	m = msg_of(CONTROL_REOPEN_LOG, 0, 0, NULL);
	m.fd = p[1];
	assert_int_equal(control_send(sock[0], &m), 0);
	close(p[1]);
	assert_int_equal(control_recv(sock[1], &out), 1);
	assert_int_equal(out.type, CONTROL_REOPEN_LOG);
	assert_true(out.fd >= 0);
	close(out.fd);
	assert_true(writers_gone(p[0]));
	close(p[0]);
	assert_int_equal(control_send_gen(sock[0], CONTROL_CONFIG, 4), 0);
	assert_int_equal(control_recv(sock[1], &out), 1);
	assert_true(out.gen == 4);
	/* The worker still sees EOF when the master is gone. */
	close(sock[0]);
	assert_int_equal(control_recv(sock[1], &out), 0);
	close(sock[1]);
	close(rep[0]);
	close(rep[1]);
}

static void
write_raw(int fd, const void *buf, size_t len)
{
	assert_int_equal(write(fd, buf, len), (ssize_t)len);
}

static void
test_read_malformed(void **state)
{
	unsigned char	buf[8192], zero[CONTROL_MSG_MAX + 64] = { 0 };
	struct control_msg	out;
	size_t		len;
	int		sock[2], rep[2];

	(void)state;
	assert_int_equal(control_open(sock, rep), 0);
	/* Unknown type. */
	write_raw(rep[1], buf, raw(buf, 0, 8, zero, 8));
	errno = 0;
	assert_int_equal(control_read(rep[0], &out), -1);
	assert_int_equal(errno, EPROTO);
	/* Well formed, but the type that carries a descriptor. */
	write_raw(rep[1], buf, raw(buf, CONTROL_REOPEN_LOG, 0, NULL, 0));
	errno = 0;
	assert_int_equal(control_read(rep[0], &out), -1);
	assert_int_equal(errno, EPROTO);
	/* One byte more than the largest message. */
	len = raw(buf, CONTROL_NACK, CONTROL_TEXT_MAX + 13, zero,
	    CONTROL_TEXT_MAX + 13);
	memset(buf + HDR + 8, 'a', CONTROL_TEXT_MAX + 5);
	assert_int_equal(len, CONTROL_MSG_MAX + 1);
	write_raw(rep[1], buf, len);
	errno = 0;
	assert_int_equal(control_read(rep[0], &out), -1);
	assert_int_equal(errno, EPROTO);
	/*
	 * A write of two pages becomes two packets: each is refused, and
	 * what follows is read whole (the rest of a packet is discarded).
	 */
	memset(buf, 'x', sizeof(buf));
	write_raw(rep[1], buf, sizeof(buf));
	assert_int_equal(control_report_gen(rep[1], CONTROL_ACK, 77), 0);
	for (len = 0; len < 2; len++) {
		errno = 0;
		assert_int_equal(control_read(rep[0], &out), -1);
		assert_int_equal(errno, EPROTO);
	}
	assert_int_equal(control_read(rep[0], &out), 1);
	assert_int_equal(out.type, CONTROL_ACK);
	assert_true(out.gen == 77);
	close(sock[0]);
	close(sock[1]);
	close(rep[0]);
	close(rep[1]);
}

static void
test_read_eof_and_eagain(void **state)
{
	struct control_msg	out;
	int		sock[2], rep[2];

	(void)state;
	assert_int_equal(control_open(sock, rep), 0);
	errno = 0;
	assert_int_equal(control_read(rep[0], &out), -1);
	assert_int_equal(errno, EAGAIN);
	/* A queued report is still delivered before EOF. */
	assert_int_equal(control_report_gen(rep[1], CONTROL_ACK, 3), 0);
	close(rep[1]);
	assert_int_equal(control_read(rep[0], &out), 1);
	assert_true(out.gen == 3);
	assert_int_equal(control_read(rep[0], &out), 0);
	assert_int_equal(control_read(rep[0], &out), 0);
	close(rep[0]);
	close(sock[0]);
	close(sock[1]);
}

/* The master is gone: a report fails (EPIPE; SIGPIPE is ignored). */
static void
test_report_to_closed_master(void **state)
{
	struct control_msg	m = msg_of(CONTROL_READY, 1, 2, NULL);
	int		sock[2], rep[2];

	(void)state;
	assert_true(signal(SIGPIPE, SIG_IGN) != SIG_ERR);
	assert_int_equal(control_open(sock, rep), 0);
	close(rep[0]);
	errno = 0;
	assert_int_equal(control_report(rep[1], &m), -1);
	assert_int_equal(errno, EPIPE);
	close(rep[1]);
	close(sock[0]);
	close(sock[1]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_encode_parse_round_trip),
		cmocka_unit_test(test_wire_layout),
		cmocka_unit_test(test_parse_wrong_lengths),
		cmocka_unit_test(test_parse_unknown_types),
		cmocka_unit_test(test_nack_text),
		cmocka_unit_test(test_nack_encode_bounds),
		cmocka_unit_test(test_send_recv_every_type),
		cmocka_unit_test(test_message_boundaries),
		cmocka_unit_test(test_reopen_log_passes_fd),
		cmocka_unit_test(test_fd_on_wrong_type_is_closed),
		cmocka_unit_test(test_reopen_log_without_fd),
		cmocka_unit_test(test_reopen_log_extra_fds),
		cmocka_unit_test(test_too_many_fds),
		cmocka_unit_test(test_recv_malformed),
		cmocka_unit_test(test_recv_eof_and_eagain),
		cmocka_unit_test(test_send_to_closed_peer),
		cmocka_unit_test(test_open_ends),
		cmocka_unit_test(test_report_read_every_type),
		cmocka_unit_test(test_open_socket_is_one_way),
		cmocka_unit_test(test_read_malformed),
		cmocka_unit_test(test_read_eof_and_eagain),
		cmocka_unit_test(test_report_to_closed_master),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
