/*
 * control.h - the master/worker control channel.
 *
 * One SOCK_SEQPACKET socketpair per worker: message boundaries are kept,
 * and the worker sees EOF the moment the master is gone.  Every message is
 * a fixed header (type, payload length) and a payload whose size is fixed
 * by its type; the receiver checks both and rejects anything else.  Only
 * CTL_REOPEN_LOG carries a descriptor.
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

/* Send one message; m->fd >= 0 is passed along for CTL_REOPEN_LOG. */
int	 control_send(int sock, const struct ctl_msg *m);

/*
 * Receive one message.  Returns 1 with *m filled, 0 on EOF (or an empty
 * record, which no sender produces: it is taken as EOF), -1 on error
 * (errno EAGAIN: nothing to read; EPROTO: a malformed message, whose
 * descriptors, if any, have been closed).
 */
int	 control_recv(int sock, struct ctl_msg *m);

/* Convenience constructors. */
int	 control_send_gen(int sock, enum ctl_type type, uint64_t gen);

#endif /* PORTCULLIS_CONTROL_H */
