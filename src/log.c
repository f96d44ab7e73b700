/*
 * log.c - the one logging API (see log.h).
 */
#include "autoconf.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <syslog.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

/* Room kept free for the terminator and the truncation marker. */
#define LOG_RESERVE	32

/*
 * The longest line is LOG_LINE_MAX - LOG_RESERVE bytes of fields, the
 * marker, '}' and '\n' (4083 bytes): one write(2) of it to a pipe is
 * atomic, and the reserve holds its end.
 */
_Static_assert(LOG_LINE_MAX <= PIPE_BUF, "a line fits one atomic pipe write");
_Static_assert(sizeof(",\"truncated\":true}\n") - 1 <= LOG_RESERVE,
    "the reserve holds the end of a line");

static const char	*log_proc = "portcullis";
static int		 log_worker = -1;
static enum log_level	 log_level = LOG_LEVEL_INFO;
static enum log_format	 log_format = LOG_FORMAT_TEXT;

static const char *const level_names[] = { "error", "warn", "info", "debug" };
static const char *const level_tags[] = { "ERROR", "WARN", "INFO", "DEBUG" };

void
log_init(const char *proc, int worker_id)
{
	log_proc = proc;
	log_worker = worker_id;
}

static bool access_lines = true;

void
log_set_access(bool on)
{
	access_lines = on;
}

bool
log_access_enabled(void)
{
	return access_lines;
}

void
log_configure(enum log_level level, enum log_format format)
{
	log_level = level;
	log_format = format;
}

bool
log_enabled(enum log_level level)
{
	return level <= log_level;
}

int
log_level_parse(const char *s, enum log_level *out)
{
	size_t i;

	for (i = 0; i < nitems(level_names); i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

int
log_format_parse(const char *s, enum log_format *out)
{
	if (strcmp(s, "text") == 0)
		*out = LOG_FORMAT_TEXT;
	else if (strcmp(s, "json") == 0)
		*out = LOG_FORMAT_JSON;
	else
		return -1;
	return 0;
}

static int
text_plain(unsigned char c)
{
	return c > 0x20 && c < 0x7f && c != '"' && c != '\\';
}

/*
 * The escape sequence for one byte inside a quoted value: the same short
 * escapes for both formats; other bytes outside 0x20-0x7e become \xHH in
 * text and \u00HH in JSON.
 */
static size_t
escape_byte(unsigned char c, char *out, bool json)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = 0;

	switch (c) {
	case '"': case '\\':
		out[0] = '\\'; out[1] = (char)c; return 2;
	case '\n':
		out[0] = '\\'; out[1] = 'n'; return 2;
	case '\r':
		out[0] = '\\'; out[1] = 'r'; return 2;
	case '\t':
		out[0] = '\\'; out[1] = 't'; return 2;
	}
	if (c >= 0x20 && c < 0x7f) {
		out[0] = (char)c;
		return 1;
	}
	out[n++] = '\\';
	if (json) {
		memcpy(out + n, "u00", 3);
		n += 3;
	} else
		out[n++] = 'x';
	out[n++] = hex[c >> 4];
	out[n++] = hex[c & 15];
	return n;
}

/* Quote and escape src into dst, always closing the quote. */
static size_t
escape_quoted(const char *src, size_t len, char *dst, size_t dstsz, bool *cut,
    bool json)
{
	size_t i, pos = 0, limit = dstsz - 1;
	char seq[6];

	*cut = false;
	dst[pos++] = '"';
	for (i = 0; i < len; i++) {
		size_t n = escape_byte((unsigned char)src[i], seq, json);

		if (pos + n > limit) {
			*cut = true;
			break;
		}
		memcpy(dst + pos, seq, n);
		pos += n;
	}
	dst[pos++] = '"';
	return pos;
}

size_t
log_escape_text(const char *src, size_t len, char *dst, size_t dstsz, bool *cut)
{
	size_t i, n;
	bool plain = len > 0;

	for (i = 0; i < len && plain; i++)
		plain = text_plain((unsigned char)src[i]);
	if (!plain)
		return escape_quoted(src, len, dst, dstsz, cut, false);
	n = MINIMUM(len, dstsz);
	memcpy(dst, src, n);
	*cut = n < len;
	return n;
}

size_t
log_escape_json(const char *src, size_t len, char *dst, size_t dstsz, bool *cut)
{
	return escape_quoted(src, len, dst, dstsz, cut, true);
}

/* The second of the last timestamp taken (see batch_ok()). */
static time_t line_sec;

static size_t
log_timestamp(char *buf, size_t sz)
{
	struct timespec ts;
	struct tm tm;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &ts);
	line_sec = ts.tv_sec;
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(buf, sz, "%Y-%m-%dT%H:%M:%S", &tm);
	n += (size_t)snprintf(buf + n, sz - n, ".%03ldZ", ts.tv_nsec / 1000000);
	return n;
}

/* Append raw bytes if they fit in the space before the reserve. */
static bool
ev_append(struct log_event *ev, const char *s, size_t n)
{
	if (ev->len + n > LOG_LINE_MAX - LOG_RESERVE) {
		ev->truncated = true;
		return false;
	}
	memcpy(ev->buf + ev->len, s, n);
	ev->len += n;
	return true;
}

/* Lines waiting for log_flush() (see log_batching()). */
static bool batching;
static char batch_buf[64 * 1024];
static size_t batch_len;

/* ---- the journal (log.h) ---- */

static int	 journal_fd = -1;
/* where its datagrams go (journal_alen 0: fd is connected, for tests) */
static struct sockaddr_un journal_addr;
static socklen_t journal_alen;

/*
 * One field in the native protocol's binary-safe form, whatever the
 * value holds (newlines included): NAME '\n', the value's length as a
 * little-endian 64-bit number, the value, '\n'.  The name is
 * PORTCULLIS_ and the key upper-cased, anything but [A-Z0-9_] made '_'
 * (the keys are the program's own).  A value that does not fit whole is
 * cut to what does; false if it was (or the name did not fit at all).
 */
static bool
jfield(struct log_event *ev, const char *pre, const char *key,
    const char *val, size_t len)
{
	char *p = ev->jbuf + ev->jlen;
	size_t room = sizeof(ev->jbuf) - ev->jlen, n = 0, i, plen = strlen(pre);
	size_t klen = strlen(key);
	uint64_t le;
	bool whole = true;

	if (room < plen + klen + 1 + 8 + 1)
		return false;
	memcpy(p, pre, plen);
	n = plen;
	for (i = 0; i < klen; i++) {
		char c = key[i];

		if (c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		else if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
			c = '_';
		p[n++] = c;
	}
	p[n++] = '\n';
	if (len > room - n - 8 - 1) {
		len = room - n - 8 - 1;
		whole = false;
	}
	le = (uint64_t)len;
	for (i = 0; i < 8; i++)
		p[n++] = (char)(le >> (8 * i) & 0xff);
	memcpy(p + n, val, len);
	n += len;
	p[n++] = '\n';
	ev->jlen += n;
	return whole;
}

/* A field of the line: PORTCULLIS_KEY; an event's own "event" field
   (ACME's) is PORTCULLIS_<TAG>_EVENT, as PORTCULLIS_EVENT is the tag. */
static void
jfield_key(struct log_event *ev, const char *key, const char *val, size_t len)
{
	char pre[48];

	if (strcmp(key, "event") == 0 || strcmp(key, "level") == 0) {
		snprintf(pre, sizeof(pre), "PORTCULLIS_%.24s_", ev->tag);
		if (!jfield(ev, pre, key, val, len))
			ev->truncated = true;
		return;
	}
	if (strcmp(key, "error") == 0 && ev->prio > LOG_WARNING)
		ev->prio = LOG_WARNING;
	if (!jfield(ev, "PORTCULLIS_", key, val, len))
		ev->truncated = true;
}

int
log_journal_stream_parse(const char *s, uint64_t *dev, uint64_t *ino)
{
	const char *colon;

	if (s == NULL || (colon = strchr(s, ':')) == NULL)
		return -1;
	if (util_parse_u64(s, (size_t)(colon - s), 0, UINT64_MAX, dev) == -1 ||
	    util_parse_u64(colon + 1, strlen(colon + 1), 0, UINT64_MAX, ino) ==
	    -1)
		return -1;
	return 0;
}

/* fd 2 is the stream JOURNAL_STREAM names. */
static bool
journal_stream(void)
{
	struct stat st;
	uint64_t dev, ino;

	return log_journal_stream_parse(getenv("JOURNAL_STREAM"), &dev,
	    &ino) == 0 && fstat(STDERR_FILENO, &st) == 0 &&
	    (uint64_t)st.st_dev == dev && (uint64_t)st.st_ino == ino;
}

/*
 * The socket is not connected: every datagram is addressed to the path
 * (sendmsg's msg_name), as libsystemd does, so a journald that restarted
 * and bound a new socket there gets the next line, without a socket() or
 * connect() the sandbox would refuse.  A connect() first tells whether
 * the path takes datagrams; AF_UNSPEC undoes it.  Non-blocking: a full
 * queue (a stalled journald) drops the line (log_event_end).  Above the
 * descriptors a child is laid out with, or not at all: a low number
 * could be overwritten by child_exec's dup2()s.
 */
bool
log_journal_open(const char *path)
{
	struct sockaddr_un sun;
	struct sockaddr unspec;
	size_t len = strlen(path);
	int fd, hi;

	if (len >= sizeof(sun.sun_path))
		return false;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, len + 1);
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
	    0)) == -1)
		return false;
	memset(&unspec, 0, sizeof(unspec));
	unspec.sa_family = AF_UNSPEC;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1 ||
	    connect(fd, &unspec, sizeof(unspec)) == -1 ||
	    (hi = fcntl(fd, F_DUPFD_CLOEXEC, LOG_JOURNAL_FD_MIN)) == -1) {
		close(fd);
		return false;
	}
	close(fd);
	log_flush();
	if (journal_fd != -1)
		close(journal_fd);
	journal_fd = hi;
	journal_addr = sun;
	journal_alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
	    len + 1);
	return true;
}

bool
log_journal_detect(void)
{
	if (journal_fd != -1)
		return true;
	return journal_stream() && log_journal_open(LOG_JOURNAL_SOCKET);
}

void
log_journal_use(int fd)
{
	log_flush();
	journal_fd = fd;
	journal_alen = 0;
}

bool
log_journal_active(void)
{
	return journal_fd != -1;
}

/*
 * One datagram: MESSAGE (the line without its newline), PRIORITY,
 * SYSLOG_IDENTIFIER, the fields.  At most some 12 KB: far below what a
 * datagram socket takes, so never the memfd libsystemd falls back to
 * (which no sandbox would allow).  0: sent; 1: journald's queue (or our
 * send buffer) is full, errno says which; -1: not sent otherwise
 * (journald gone: ECONNREFUSED, ENOENT).
 */
static int
journal_send(struct log_event *ev)
{
	static const char ident[] = "SYSLOG_IDENTIFIER=portcullis\n";
	static const char cut[] = "PORTCULLIS_TRUNCATED=1\n";
	char head[16], prio[16];
	struct iovec iov[6];
	struct msghdr mh;
	uint64_t len = ev->len - 1;	/* without its '\n' */
	size_t i, niov = 0;
	ssize_t n;

	memcpy(head, "MESSAGE\n", 8);
	for (i = 0; i < 8; i++)
		head[8 + i] = (char)(len >> (8 * i) & 0xff);
	iov[niov++] = (struct iovec){ head, 16 };
	/* the line's own '\n' ends the field */
	iov[niov++] = (struct iovec){ ev->buf, ev->len };
	iov[niov].iov_base = prio;
	iov[niov++].iov_len = (size_t)snprintf(prio, sizeof(prio),
	    "PRIORITY=%d\n", ev->prio);
	iov[niov++] = (struct iovec){ (void *)ident, sizeof(ident) - 1 };
	iov[niov++] = (struct iovec){ ev->jbuf, ev->jlen };
	if (ev->truncated)
		iov[niov++] = (struct iovec){ (void *)cut, sizeof(cut) - 1 };
	memset(&mh, 0, sizeof(mh));
	if (journal_alen != 0) {
		mh.msg_name = &journal_addr;
		mh.msg_namelen = journal_alen;
	}
	mh.msg_iov = iov;
	mh.msg_iovlen = niov;
	/* Never waits: a stalled journald must not stall the proxy. */
	while ((n = sendmsg(journal_fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT)) ==
	    -1 && errno == EINTR)
		;
	if (n != -1)
		return 0;
	return errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS ?
	    1 : -1;
}

static void
ev_begin(struct log_event *ev, const char *jsonkey, const char *jsonval,
    const char *texttag)
{
	char ts[40];
	size_t tslen;

	ev->len = 0;
	ev->truncated = false;
	ev->batch = false;
	ev->tag = texttag;
	ev->prio = LOG_INFO;
	ev->jlen = 0;
	ev->journal = journal_fd != -1;
	if (ev->journal) {
		/* The journal has the time; MESSAGE is the text line. */
		ev->json = false;
		ev_append(ev, texttag, strlen(texttag));
		if (!jfield(ev, "PORTCULLIS_", jsonkey, jsonval,
		    strlen(jsonval)))
			ev->truncated = true;
		return;
	}
	tslen = log_timestamp(ts, sizeof(ts));
	ev->json = log_format == LOG_FORMAT_JSON;
	if (ev->json) {
		ev_append(ev, "{\"time\":\"", 9);
		ev_append(ev, ts, tslen);
		ev_append(ev, "\",\"", 3);
		ev_append(ev, jsonkey, strlen(jsonkey));
		ev_append(ev, "\":\"", 3);
		ev_append(ev, jsonval, strlen(jsonval));
		ev_append(ev, "\"", 1);
	} else {
		ev_append(ev, ts, tslen);
		ev_append(ev, " ", 1);
		ev_append(ev, texttag, strlen(texttag));
	}
}

void
log_event_begin(struct log_event *ev, const char *event)
{
	char lower[64];
	size_t i;

	for (i = 0; event[i] != '\0' && i < sizeof(lower) - 1; i++)
		lower[i] = util_lower(event[i]);
	lower[i] = '\0';
	ev_begin(ev, "event", lower, event);
	ev->batch = strcmp(event, "ACCESS") == 0 ||
	    strcmp(event, "RATE_LIMIT") == 0;
	/* Refusals are notices, a lost line a warning, an event with an
	   "error" field at least a warning (jfield_key()). */
	if (strcmp(event, "RATE_LIMIT") == 0 || strcmp(event, "CONN_LIMIT") ==
	    0)
		ev->prio = LOG_NOTICE;
	else if (strcmp(event, "LOG_LOST") == 0)
		ev->prio = LOG_WARNING;
}

/*
 * Start a field if its key and at least vmin bytes of value fit; otherwise
 * leave it out and mark the event truncated.  Returns the room left for
 * the value (at least vmin), or 0.
 */
static size_t
ev_key(struct log_event *ev, const char *key, size_t vmin)
{
	size_t klen = strlen(key);
	size_t need = klen + (ev->json ? 4 : 2) + vmin;

	if (ev->len + need > LOG_LINE_MAX - LOG_RESERVE) {
		ev->truncated = true;
		return 0;
	}
	if (ev->json) {
		ev_append(ev, ",\"", 2);
		ev_append(ev, key, klen);
		ev_append(ev, "\":", 2);
	} else {
		ev_append(ev, " ", 1);
		ev_append(ev, key, klen);
		ev_append(ev, "=", 1);
	}
	return LOG_LINE_MAX - LOG_RESERVE - ev->len;
}

void
log_event_str(struct log_event *ev, const char *key, const char *val,
    size_t len)
{
	size_t room, n;
	bool cut;

	/* Room for at least an empty quoted value, "". */
	if ((room = ev_key(ev, key, 2)) == 0)
		return;
	if (ev->journal)
		jfield_key(ev, key, val, len);
	if (ev->json)
		n = log_escape_json(val, len, ev->buf + ev->len, room, &cut);
	else
		n = log_escape_text(val, len, ev->buf + ev->len, room, &cut);
	ev->len += n;
	if (cut)
		ev->truncated = true;
}

void
log_event_cstr(struct log_event *ev, const char *key, const char *val)
{
	log_event_str(ev, key, val, strlen(val));
}

void
log_event_uint(struct log_event *ev, const char *key, uint64_t val)
{
	char num[24];
	int n = snprintf(num, sizeof(num), "%llu", (unsigned long long)val);

	if (ev_key(ev, key, (size_t)n) > 0) {
		ev_append(ev, num, (size_t)n);
		if (ev->journal)
			jfield_key(ev, key, num, (size_t)n);
	}
}

/* Close the line: the truncation marker, the JSON brace, the newline. */
static void
ev_close(struct log_event *ev)
{
	const char *tail;

	/* The reserve guarantees room for the marker and the terminator. */
	if (ev->truncated) {
		tail = ev->json ? ",\"truncated\":true" : " truncated=1";
		memcpy(ev->buf + ev->len, tail, strlen(tail));
		ev->len += strlen(tail);
	}
	if (ev->json)
		ev->buf[ev->len++] = '}';
	ev->buf[ev->len++] = '\n';
}

/*
 * Where the lines go: fd 2 is the file of logging.file (a regular file
 * opened O_APPEND), or the stderr the master was started with: a
 * terminal, a pipe (| logger, a container's stdout), a stream socket
 * (journald).  A write(2) to an O_APPEND file puts all its bytes at the
 * end of the file in one piece, so a batch of lines can share one write.
 * A pipe is atomic only up to PIPE_BUF bytes: a longer write that finds it
 * full goes in pieces, and another process's write gets in between, in
 * the middle of a line; a stream socket promises nothing.  There every
 * line is a write(2) of its own, and a line is never longer than PIPE_BUF.
 *
 * The kind is looked at (fstat, F_GETFL) when batching starts, and again
 * when the clock shows another second than at the last look, only while
 * lines are batched: two system calls a second at most; and at once after
 * SIGUSR1's reopen dup2()s another file onto fd 2 (log_reopened()).
 */
static time_t	 dest_sec = -1;		/* when the kind was looked at */
static bool	 dest_append;		/* regular file, O_APPEND: batches */

static void
dest_probe(void)
{
	struct stat st;
	int fl;

	fl = fcntl(STDERR_FILENO, F_GETFL);
	dest_append = fl != -1 && (fl & O_APPEND) &&
	    fstat(STDERR_FILENO, &st) == 0 && S_ISREG(st.st_mode);
	dest_sec = line_sec;
}

static bool	 dangling;		/* fd 2 ends in a piece of a line */

void
log_reopened(void)
{
	/* A log file now: it wins over the journal. */
	if (journal_fd != -1 && !journal_stream()) {
		close(journal_fd);
		journal_fd = -1;
		journal_alen = 0;
	}
	dest_sec = -1;		/* look again before the next batch */
	dangling = false;	/* a piece, if any, stays in the old file */
}

void
log_reopen(int fd)
{
	log_flush();
	if (dup2(fd, STDERR_FILENO) == -1)
		log_warn("reopen log");
	else
		log_reopened();
	close(fd);
}

static bool
batch_ok(void)
{
	if (dest_sec != line_sec)
		dest_probe();
	return dest_append;
}

/*
 * Lines that could not be written (a full file system, a reader gone,
 * a full non-blocking pipe) are counted, and said once by a LOG_LOST
 * line after the first line that could be written again.
 */
static uint64_t	 lost_lines;
static int	 lost_errno;		/* why the last of them was lost */

static size_t
count_lines(const char *p, size_t len)
{
	const char *nl, *end = p + len;
	size_t n = 0;

	while ((nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		n++;
		p = nl + 1;
	}
	return n;
}

/*
 * Take back the last frag bytes written when fd 2 is a regular file that
 * still ends where our write did: fstat's size equals the file offset,
 * which O_APPEND set to the end of the last write made through this open
 * file (the master and the workers share it).  True when no piece of a
 * line of ours is left at the end of the file.
 *
 * A write that stopped short found the file system full (or the file at
 * RLIMIT_FSIZE), and the other processes' writes fail as well until space
 * is freed.  If space is freed, or a process allowed more of it (root, in
 * the blocks ext4 reserves) appends, in the microseconds between our write
 * and the fstat, the offset is the end of that write: its line loses its
 * last frag bytes instead, newline included, and our piece, the rest of
 * its line and the next line read as one broken line.  That takes a full
 * disk and a race of microseconds; taking a lock around every write to
 * close it would cost the common case.  A file that grew through another
 * open file is left alone (our piece is followed by its bytes), as is one
 * cut shorter than our piece by someone else; a cut that fails (an
 * append-only inode) leaves the piece, which the next write ends (put()).
 */
static bool
unwrite(size_t frag)
{
	struct stat st;
	off_t end;

	if (fstat(STDERR_FILENO, &st) == -1 || !S_ISREG(st.st_mode) ||
	    (end = lseek(STDERR_FILENO, 0, SEEK_CUR)) == -1)
		return false;
	if (st.st_size != end)
		return st.st_size > end || st.st_size <= end - (off_t)frag;
	if (end < (off_t)frag || ftruncate(STDERR_FILENO, end - (off_t)frag) ==
	    -1)
		return false;
	/* A file without O_APPEND is written at the offset. */
	(void)lseek(STDERR_FILENO, end - (off_t)frag, SEEK_SET);
	return true;
}

/*
 * Write whole lines to fd 2; returns how many of them did not make it.
 * A line is written whole or not at all: a pipe or a socket that took part
 * of one gets the rest (what it holds cannot be taken back); a regular
 * file that took part of one had no room for more and is cut back to the
 * last whole line.
 */
static size_t
put(const char *buf, size_t len)
{
	struct stat st;
	const char *nl;
	size_t done = 0, whole;
	ssize_t n;

	if (dangling) {
		/* End the piece a failed write left, so that the next line
		   does not continue it: it stays one broken line. */
		while ((n = write(STDERR_FILENO, "\n", 1)) == -1 &&
		    errno == EINTR)
			;
		if (n != 1) {
			lost_errno = n == -1 ? errno : EIO;
			return count_lines(buf, len);
		}
		dangling = false;
	}
	while (done < len) {
		n = write(STDERR_FILENO, buf + done, len - done);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			lost_errno = n == -1 ? errno : EIO;
			break;
		}
		done += (size_t)n;
		if (done < len && fstat(STDERR_FILENO, &st) == 0 &&
		    S_ISREG(st.st_mode)) {
			lost_errno = 0;
			break;
		}
	}
	if (done == len)
		return 0;
	nl = done > 0 ? memrchr(buf, '\n', done) : NULL;
	whole = nl != NULL ? (size_t)(nl - buf) + 1 : 0;
	if (done > whole && !unwrite(done - whole))
		dangling = true;
	return count_lines(buf + whole, len - whole);
}

static void
report_lost(void)
{
	struct log_event ev;

	log_event_begin(&ev, "LOG_LOST");
	log_event_cstr(&ev, "proc", log_proc);
	if (log_worker >= 0)
		log_event_uint(&ev, "worker", (uint64_t)log_worker);
	log_event_uint(&ev, "pid", (uint64_t)getpid());
	log_event_uint(&ev, "lines", lost_lines);
	log_event_cstr(&ev, "error", lost_errno != 0 ? strerror(lost_errno) :
	    "short write");
	ev_close(&ev);
	if (ev.journal && journal_fd != -1)
		switch (journal_send(&ev)) {
		case 0:
			lost_lines = 0;
			return;
		case 1:		/* still full: said after the next line */
			return;
		default:	/* journald gone: the stream */
			break;
		}
	if (put(ev.buf, ev.len) == 0)
		lost_lines = 0;
}

/*
 * Write whole lines; once one gets through after some were lost, say how
 * many.  Not before: the short LOG_LOST line could fit where a line did
 * not (in the room a cut-back piece left on a full file system), and be
 * said again after every line lost.
 */
static void
emit(const char *buf, size_t len)
{
	uint64_t before = lost_lines;
	size_t missed;

	missed = put(buf, len);
	lost_lines += missed;
	if (before > 0 && missed < count_lines(buf, len))
		report_lost();
}

/*
 * A line to the journal.  A full queue (journald stalled, or slower than
 * the lines come) drops it, counted as a line the stream could not take
 * and said after the next line that is sent: waiting would stall the
 * process, a worker's connections with it.  Not sent otherwise (journald
 * gone): the stream, fd 2, as before the journal.
 */
static void
journal_emit(struct log_event *ev)
{
	uint64_t before = lost_lines;

	switch (journal_send(ev)) {
	case 0:
		if (before > 0)
			report_lost();
		break;
	case 1:
		lost_lines++;
		lost_errno = errno;
		break;
	default:
		emit(ev->buf, ev->len);
		break;
	}
}

void
log_event_end(struct log_event *ev)
{
	int saved = errno;

	ev_close(ev);
	if (ev->journal && journal_fd != -1) {
		log_flush();
		journal_emit(ev);
		errno = saved;
		return;
	}
	if (batching && ev->batch && batch_ok()) {
		if (batch_len + ev->len > sizeof(batch_buf))
			log_flush();
		memcpy(batch_buf + batch_len, ev->buf, ev->len);
		batch_len += ev->len;
	} else {
		log_flush();
		emit(ev->buf, ev->len);
	}
	errno = saved;
}

void
log_batching(bool on)
{
	log_flush();
	batching = on;
	dest_sec = -1;
}

void
log_flush(void)
{
	int saved = errno;
	const char *p, *nl, *end;

	if (batch_len == 0)
		return;
	if (dest_append)
		emit(batch_buf, batch_len);
	else {
		/* The destination changed kind since these were batched. */
		end = batch_buf + batch_len;
		for (p = batch_buf; p < end; p = nl + 1) {
			nl = memchr(p, '\n', (size_t)(end - p));
			emit(p, (size_t)(nl - p) + 1);
		}
	}
	batch_len = 0;
	errno = saved;
}

static void PRINTFLIKE(3, 0)
log_vmsg(enum log_level level, int errnum, const char *fmt, va_list ap)
{
	struct log_event ev;
	char msg[LOG_LINE_MAX / 2];
	bool cut = false;
	int n;

	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof(msg)) {
		n = (int)sizeof(msg) - 1;
		cut = true;
	}
	if (errnum != 0)
		n += snprintf(msg + n, sizeof(msg) - (size_t)n, ": %s",
		    strerror(errnum));
	if ((size_t)n >= sizeof(msg))
		n = (int)sizeof(msg) - 1;

	ev_begin(&ev, "level", level_names[level], level_tags[level]);
	ev.prio = level == LOG_LEVEL_ERROR ? LOG_ERR : level == LOG_LEVEL_WARN ?
	    LOG_WARNING : level == LOG_LEVEL_INFO ? LOG_INFO : LOG_DEBUG;
	log_event_cstr(&ev, "proc", log_proc);
	if (log_worker >= 0)
		log_event_uint(&ev, "worker", (uint64_t)log_worker);
	log_event_uint(&ev, "pid", (uint64_t)getpid());
	log_event_str(&ev, "msg", msg, (size_t)n);
	ev.truncated = ev.truncated || cut;
	log_event_end(&ev);
}

bool
log_rate_due(struct log_rate *r, uint64_t now_ms, uint64_t *quiet)
{
	if (r->next_ms != 0 && now_ms < r->next_ms) {
		r->quiet++;
		return false;
	}
	*quiet = r->quiet;
	r->quiet = 0;
	/* Never 0 again: 0 means "never logged". */
	r->next_ms = now_ms + LOG_RATE_WINDOW_MS + (now_ms == 0);
	return true;
}

void
log_rate_warnx(struct log_rate *r, const char *fmt, ...)
{
	char msg[LOG_LINE_MAX / 2];
	struct timespec ts;
	uint64_t quiet;
	int saved = errno;
	va_list ap;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (!log_enabled(LOG_LEVEL_WARN) || !log_rate_due(r,
	    (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000,
	    &quiet)) {
		errno = saved;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (quiet > 0)
		log_warnx("%s (%llu more like it not logged)", msg,
		    (unsigned long long)quiet);
	else
		log_warnx("%s", msg);
	errno = saved;
}

#define LOG_FN(name, level, with_errno)					\
void									\
name(const char *fmt, ...)						\
{									\
	int saved = errno;						\
	va_list ap;							\
									\
	if (!log_enabled(level))					\
		return;							\
	va_start(ap, fmt);						\
	log_vmsg(level, (with_errno) ? saved : 0, fmt, ap);		\
	va_end(ap);							\
	errno = saved;							\
}

LOG_FN(log_warn, LOG_LEVEL_WARN, 1)
LOG_FN(log_warnx, LOG_LEVEL_WARN, 0)
LOG_FN(log_errorx, LOG_LEVEL_ERROR, 0)
LOG_FN(log_info, LOG_LEVEL_INFO, 0)
LOG_FN(log_debug, LOG_LEVEL_DEBUG, 0)

void
fatal(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOG_LEVEL_ERROR, saved, fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOG_LEVEL_ERROR, 0, fmt, ap);
	va_end(ap);
	exit(1);
}
