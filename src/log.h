/*
 * log.h - the one logging API.
 *
 * Every line goes to file descriptor 2, whole, so lines from the master and
 * all workers never interleave inside a line.  When logging.file is set the
 * master opens it (O_APPEND) and makes it fd 2 of every process, again on
 * SIGUSR1; otherwise fd 2 is whatever stderr the master was started with.
 * A regular file opened O_APPEND takes a worker's batch of lines in one
 * write(2) (each write lands in one piece at the end of the file); anything
 * else (a pipe, a socket, a terminal) gets one write(2) per line, and a line
 * is never longer than PIPE_BUF, so a write of one line to a pipe is atomic.
 *
 * A write that does not complete never leaves the start of a line for the
 * next one to continue: a regular file is cut back to its last whole line
 * (ftruncate), and a piece that cannot be taken back (a pipe, a socket) is
 * ended by a newline before the next line.  The lines lost are counted and
 * said once, after the first line written again:
 *   2026-11-22T10:00:00.123Z LOG_LOST proc=worker worker=0 pid=42 lines=17
 *   error="No space left on device"
 * (one line; error="short write" when write(2) took only part of the
 * line and gave no reason).
 *
 * Text format: "2026-11-22T10:00:00.123Z LEVEL key=value ...", timestamp
 * (ISO-8601 UTC) first.  JSON format: one object per line.  Every value that
 * may come from a client is escaped (log_escape_text / log_escape_json), so
 * one event can never become two lines or forge another field.
 *
 * Under systemd (the journal): when the environment has JOURNAL_STREAM
 * and it names fd 2 (device:inode, as fstat(2) sees it), fd 2 is the
 * service's stdout stream to systemd-journald, and log_journal_detect()
 * switches a process to journald's native protocol instead: one datagram
 * per line, on a socket it opens then (before the sandbox; every process
 * calls it itself, after the exec), addressed to journald's path.  MESSAGE is the text
 * line without its timestamp (the journal has its own; whatever
 * logging.format says), PRIORITY the line's syslog level,
 * SYSLOG_IDENTIFIER=portcullis, and every field of the line is a journal
 * field of its own, PORTCULLIS_<KEY> (upper case), with the raw value:
 *   MESSAGE=ACCESS client_ip=203.0.113.50 method=GET host=a.test ...
 *   PORTCULLIS_EVENT=access PORTCULLIS_CLIENT_IP=203.0.113.50 ...
 * Sending never waits: a datagram journald's full queue does not take is
 * dropped and counted (LOG_LOST); one that cannot be sent otherwise
 * (journald gone) is written to fd 2 as its MESSAGE line.
 * When logging.file is set fd 2 is that file, which never matches:
 * the file wins.
 *
 * errno is preserved across every call.
 */
#ifndef PORTCULLIS_LOG_H
#define PORTCULLIS_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

enum log_level {
	LOG_LEVEL_ERROR = 0,
	LOG_LEVEL_WARN,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
};

enum log_format {
	LOG_FORMAT_TEXT = 0,
	LOG_FORMAT_JSON,
};

/* One line, at most; must stay <= PIPE_BUF so a write to a pipe is atomic. */
#define LOG_LINE_MAX	4096
/* A line's journal fields (names and raw values), at most. */
#define LOG_JOURNAL_FIELDS_MAX	(2 * LOG_LINE_MAX)
/* journald's native socket, and where its descriptor is moved (above the
   descriptors a child is given: master.c checks). */
#define LOG_JOURNAL_SOCKET	"/run/systemd/journal/socket"
#define LOG_JOURNAL_FD_MIN	256

/* Who is logging: "master" or "worker" (with its index), and how. */
void	 log_init(const char *proc, int worker_id);
void	 log_configure(enum log_level level, enum log_format format);
/* ACCESS lines on or off (logging { access }); RATE_LIMIT lines stay. */
void	 log_set_access(bool on);
bool	 log_access_enabled(void);
bool	 log_enabled(enum log_level level);

/*
 * The journal (see above).  log_journal_detect() looks at JOURNAL_STREAM
 * and fd 2 and, if they match and journald's socket takes a connection,
 * logs there from then on; true if it does.  Call it once fd 2 is what
 * it will be (and the descriptor limit raised), before the sandbox.
 * log_journal_use() sends to fd (a connected SOCK_DGRAM socket; -1: back
 * to fd 2) and is for tests.
 */
bool	 log_journal_detect(void);
/* Log to the native-protocol socket at path (what detect does once the
   stream matches; tests give their own); false if it takes nothing. */
bool	 log_journal_open(const char *path);
void	 log_journal_use(int fd);
bool	 log_journal_active(void);
/* "DEV:INO" as systemd writes JOURNAL_STREAM: two decimal numbers. */
int	 log_journal_stream_parse(const char *s, uint64_t *dev, uint64_t *ino);

int	 log_level_parse(const char *s, enum log_level *out);
int	 log_format_parse(const char *s, enum log_format *out);

/* Messages.  log_warn and fatal append strerror(errno). */
void	 log_warn(const char *fmt, ...) PRINTFLIKE(1, 2);
void	 log_warnx(const char *fmt, ...) PRINTFLIKE(1, 2);
void	 log_errorx(const char *fmt, ...) PRINTFLIKE(1, 2);
void	 log_info(const char *fmt, ...) PRINTFLIKE(1, 2);
void	 log_debug(const char *fmt, ...) PRINTFLIKE(1, 2);
void	 fatal(const char *fmt, ...) PRINTFLIKE(1, 2) NORETURN;
void	 fatalx(const char *fmt, ...) PRINTFLIKE(1, 2) NORETURN;

/*
 * A failure that repeats (an allocation failing for connection after
 * connection, connect(2) to upstreams failing with EMFILE) is said once,
 * not once per event.  Each kind has a struct log_rate of its own (static,
 * zero at start): the first one is logged, the same kind within the next
 * LOG_RATE_WINDOW_MS is only counted, and the first one after that is
 * logged with how many were not:
 *   ... msg="h2: out of memory: GOAWAY (41 more like it not logged)"
 * Failures that come in episodes have their own once-per-episode lines
 * (accept paused / accepting again, worker.c; LOG_LOST, above).
 */
#define LOG_RATE_WINDOW_MS	10000

struct log_rate {
	uint64_t	 next_ms;	/* monotonic: log again from then on */
	uint64_t	 quiet;		/* not logged since the last line */
};

void	 log_rate_warnx(struct log_rate *r, const char *fmt, ...)
	    PRINTFLIKE(2, 3);
/*
 * The decision alone, at now_ms (monotonic milliseconds): true if a line
 * is due, with *quiet the events not logged before it; false if this one
 * is only counted.
 */
bool	 log_rate_due(struct log_rate *r, uint64_t now_ms, uint64_t *quiet);

/*
 * Structured events (access lines, RATE_LIMIT ...).  Always written,
 * whatever the level.  A field that does not fit is cut and the event gets
 * "truncated=1"; the line stays one line.
 */
struct log_event {
	char	 buf[LOG_LINE_MAX];
	size_t	 len;
	bool	 truncated;
	bool	 json;
	bool	 batch;	/* ACCESS, RATE_LIMIT: may wait for log_flush() */
	bool	 journal;	/* to the journal: jbuf holds the fields */
	int	 prio;		/* its syslog priority (journal) */
	const char *tag;	/* "ACCESS", "WARN" ... */
	char	 jbuf[LOG_JOURNAL_FIELDS_MAX];
	size_t	 jlen;
};

void	 log_event_begin(struct log_event *ev, const char *event);

/*
 * Batching (workers): when fd 2 is a regular file opened O_APPEND, ACCESS
 * and RATE_LIMIT lines are gathered and written by log_flush(), which the
 * worker calls once per event-loop iteration, before it waits; any other
 * line flushes them and itself at once, so the order of lines is kept.
 * Elsewhere every line is written at once.  What fd 2 is gets looked at
 * when batching starts, again each second, and at once after a reopen.
 */
void	 log_batching(bool on);
/* fd 2 was replaced (dup2() of a reopened log file): the next line looks
   at what it is. */
void	 log_reopened(void);
/*
 * A child told to reopen the log (CONTROL_REOPEN_LOG): what is batched
 * goes to the old file, fd becomes fd 2 (log_reopened()) and is closed.
 */
void	 log_reopen(int fd);
void	 log_flush(void);
void	 log_event_str(struct log_event *ev, const char *key, const char *val,
	    size_t len);
void	 log_event_cstr(struct log_event *ev, const char *key, const char *val);
void	 log_event_uint(struct log_event *ev, const char *key, uint64_t val);
void	 log_event_end(struct log_event *ev);

/*
 * Escape src[0..len) as one text-format value into dst (size dstsz, which
 * must be at least 3).  A value of printable ASCII without '"' or '\\' is
 * copied as is; anything else is quoted, with \" \\ \n \r \t and \xHH for
 * every other byte outside 0x20-0x7E.  Returns the bytes written (not
 * NUL-terminated) and sets *cut when the value had to be shortened; the
 * result is always a complete token (a cut never splits an escape).
 */
size_t	 log_escape_text(const char *src, size_t len, char *dst, size_t dstsz,
	    bool *cut);

/*
 * The same as a JSON string including its quotes: \" \\ \n \r \t, and
 * \u00XX for other control bytes and every byte >= 0x7F.
 */
size_t	 log_escape_json(const char *src, size_t len, char *dst, size_t dstsz,
	    bool *cut);

#endif /* PORTCULLIS_LOG_H */
