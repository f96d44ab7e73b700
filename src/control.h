/*
 * control.h - the master/worker control channel.
 *
 * Two one-way channels per worker, both keeping message boundaries:
 *
 *  - master -> worker: a SOCK_SEQPACKET socketpair (the worker's fd 3).
 *    The worker sees EOF the moment the master is gone, and CTL_REOPEN_LOG
 *    carries the new log descriptor (SCM_RIGHTS).  The master's end is
 *    shut for reading, so nothing a worker sends on it is ever queued.
 *  - worker -> master: a packet-mode pipe (pipe2 O_DIRECT, the worker's
 *    report descriptor).  A pipe cannot carry descriptors: the close of a
 *    descriptor's last reference can block (a lingering socket), and the
 *    master must never hold one a worker chose.
 *
 * Every message is a fixed header (type, payload length) and a payload
 * whose size is fixed by its type; the receiver checks both and rejects
 * anything else.  Only CTL_REOPEN_LOG carries a descriptor.
 */
#ifndef PORTCULLIS_CONTROL_H
#define PORTCULLIS_CONTROL_H

#include <stddef.h>
#include <stdint.h>

enum ctl_type {
	CTL_READY = 1,		/* w->m: serving, at generation gen */
	CTL_CONFIG,		/* m->w: generation gen is published */
	CTL_ACK,		/* w->m: generation gen applied */
	CTL_NACK,		/* w->m: generation gen rejected, text says why */
	CTL_DRAIN,		/* m->w: stop accepting, finish, exit */
	CTL_REOPEN_LOG,		/* m->w: the attached fd is the new log */
	CTL_TYPE_MAX = CTL_REOPEN_LOG
};

#define CTL_TEXT_MAX	200

struct ctl_hdr {
	uint32_t	 type;
	uint32_t	 len;		/* payload bytes after the header */
};

struct ctl_msg {
	enum ctl_type	 type;
	uint64_t	 gen;		/* READY CONFIG ACK NACK */
	uint32_t	 pid;		/* READY */
	char		 text[CTL_TEXT_MAX + 1];	/* NACK, NUL-terminated */
	int		 fd;		/* REOPEN_LOG; -1 otherwise */
};

/* The largest message on the wire. */
#define CTL_MSG_MAX	(sizeof(struct ctl_hdr) + 8 + 4 + CTL_TEXT_MAX)

/*
 * Validate and decode one message of len bytes (no descriptor: the caller
 * attaches it).  Pure.  Returns 0, or -1 for an unknown type, a payload
 * whose size does not match its type, or text that is not printable.
 */
int	 control_parse(const unsigned char *buf, size_t len, struct ctl_msg *m);

/* Encode m into buf (at least CTL_MSG_MAX bytes).  Returns the length. */
size_t	 control_encode(const struct ctl_msg *m, unsigned char *buf);

/*
 * Master: make the two channels of one worker, all four ends close-on-exec
 * and non-blocking.  sock[0] (the master's end of the socket, shut for
 * reading and refusing descriptors where the kernel can) and report[0]
 * (the pipe's read end) stay in the master; sock[1] and report[1] go to
 * the worker.  Returns 0, or -1 with errno (nothing left open).
 */
int	 control_open(int sock[2], int report[2]);

/* Master -> worker: m->fd >= 0 is passed along for CTL_REOPEN_LOG. */
int	 control_send(int sock, const struct ctl_msg *m);
int	 control_send_gen(int sock, enum ctl_type type, uint64_t gen);

/*
 * Worker: receive one message from the master.  Returns 1 with *m filled,
 * 0 on EOF (or an empty record, which no sender produces: it is taken as
 * EOF), -1 on error (errno EAGAIN: nothing to read; EPROTO: a malformed
 * message, whose descriptors, if any, have been closed).
 */
int	 control_recv(int sock, struct ctl_msg *m);

/*
 * Worker -> master: one write(2) of one message on the report pipe
 * (SIGPIPE must be ignored: a master that is gone gives EPIPE).  A
 * CTL_REOPEN_LOG, the one type with a descriptor, cannot be reported.
 */
int	 control_report(int pipefd, const struct ctl_msg *m);
int	 control_report_gen(int pipefd, enum ctl_type type, uint64_t gen);

/*
 * Master: read one message from a worker's report pipe.  Same returns as
 * control_recv(); no descriptor can come this way (m->fd is always -1).
 */
int	 control_read(int pipefd, struct ctl_msg *m);

#endif /* PORTCULLIS_CONTROL_H */
