/*
 * control.h - the master/worker control channel.
 *
 * Two one-way channels per worker, both keeping message boundaries:
 *
 *  - master -> worker: a SOCK_SEQPACKET socketpair (the worker's fd 3).
 *    The worker sees EOF the moment the master is gone, and CONTROL_REOPEN_LOG
 *    carries the new log descriptor (SCM_RIGHTS).  The master's end is
 *    shut for reading, so nothing a worker sends on it is ever queued.
 *  - worker -> master: a packet-mode pipe (pipe2 O_DIRECT, the worker's
 *    report descriptor).  A pipe cannot carry descriptors: the close of a
 *    descriptor's last reference can block (a lingering socket), and the
 *    master must never hold one a worker chose.
 *
 * Every message is a fixed header (type, payload length) and a payload
 * whose size is fixed by its type; the receiver checks both and rejects
 * anything else.  Only CONTROL_REOPEN_LOG, CONTROL_ACME_CONFIG,
 * CONTROL_SIGNER_KEYS and CONTROL_SIGNER_CHANNEL carry a descriptor (and
 * must).  Each end refuses what only it sends: the
 * master's control_read() the master's types (CONFIG, DRAIN, REOPEN_LOG,
 * ACME_CONFIG, ACME_PUBLISHED, ACME_RENEW, SIGNER_KEYS, SIGNER_CHANNEL),
 * a child's control_recv() all the others.
 *
 * Payloads (native byte order; both ends are the same binary):
 *   READY                 gen (u64), pid (u32)
 *   CONFIG, ACK           gen (u64)
 *   NACK                  gen (u64), text (0..CONTROL_TEXT_MAX bytes)
 *   DRAIN, REOPEN_LOG     nothing
 *   ACME_CONFIG           gen (u64); the memfd attached
 *   SIGNER_KEYS           gen (u64), the log settings (u32, in pid:
 *                         level | format << 8); the memfd attached
 *   SIGNER_CHANNEL        the child's index (u64, in gen); its channel
 *                         attached
 *   every other ACME_*    struct control_acme as CONTROL_ACME_WIRE bytes:
 *                         id, listener, type, ok (u32), not_after, next
 *                         (i64), name, token, keyauth (fixed fields of
 *                         their array sizes: printable, a NUL, zeros),
 *                         digest (32 bytes); then, for PUBLISHED, STATE
 *                         and RENEWED only, text (0..CONTROL_TEXT_MAX)
 * A field an ACME type does not use must be zero (see each type below);
 * ok is 0 or 1; not_after and next are >= 0; CHALLENGE's type is an enum
 * config_acme_challenge: http-01 has token and keyauth and a zero digest,
 * tls-alpn-01 the digest and neither string.  CHALLENGE, ISSUED, STATE
 * and ATTEMPT need a name; RENEW's may be "".
 */
#ifndef PORTCULLIS_CONTROL_H
#define PORTCULLIS_CONTROL_H

#include <stddef.h>
#include <stdint.h>

enum control_type {
	CONTROL_READY = 1,	/* w->m: serving, at generation gen */
	CONTROL_CONFIG,		/* m->w: generation gen is published */
	CONTROL_ACK,		/* w->m: generation gen applied */
	CONTROL_NACK,		/* w->m: generation gen rejected, text: why */
	CONTROL_DRAIN,		/* m->w: stop accepting, finish, exit */
	CONTROL_REOPEN_LOG,	/* m->w: the attached fd is the new log */
	/* The ACME process ("a"): READY, DRAIN and REOPEN_LOG as a worker. */
	CONTROL_ACME_CONFIG,	/* m->a: the attached fd is a sealed memfd
				   holding the image of generation gen, EAB
				   keys included */
	CONTROL_ACME_CHALLENGE,	/* a->m: publish challenge acme.id for
				   acme.listener: acme.type, name, token,
				   keyauth (http-01) or digest (tls-alpn-01) */
	CONTROL_ACME_PUBLISHED,	/* m->a: every worker serves acme.id now
				   (acme.ok 0: it could not be published,
				   text: why) */
	CONTROL_ACME_WITHDRAW,	/* a->m: challenge acme.id is over */
	CONTROL_ACME_ISSUED,	/* a->m: a new certificate for acme.name is
				   in acme.listener's cache directory */
	CONTROL_ACME_STATE,	/* a->m: acme.listener's acme.name:
				   not_after, next (the next attempt or
				   renewal), text: the last error ("" none) */
	CONTROL_ACME_RENEW,	/* m->a: renew acme.name ("" every name of
				   every listener) now; acme.id answers */
	CONTROL_ACME_RENEWED,	/* a->m: renewal acme.id is over: acme.ok,
				   text: what failed */
	/* The signer ("s", signer.h): READY, DRAIN and REOPEN_LOG as a
	   worker. */
	CONTROL_SIGNER_KEYS,	/* m->s: the attached fd is a sealed memfd
				   holding generation gen's private keys
				   (signproto.h's key set); pid: how to
				   log */
	CONTROL_SIGNER_CHANNEL,	/* m->s: the attached fd is the signer's end
				   of child gen's channel (gen: the child's
				   index), replacing any before */
	CONTROL_ACME_ATTEMPT,	/* a->m: an order for acme.listener's
				   acme.name is over: acme.ok 1 a
				   certificate was obtained, 0 it failed
				   (for /metrics, metrics.h) */
	CONTROL_TYPE_MAX = CONTROL_ACME_ATTEMPT
};

#define CONTROL_TEXT_MAX	200
#define CONTROL_NAME_MAX	253	/* a host name */
#define CONTROL_TOKEN_MAX	256	/* an ACME challenge token */
#define CONTROL_KEYAUTH_MAX	(CONTROL_TOKEN_MAX + 1 + 43)

/*
 * The payload of every CONTROL_ACME_* message but CONFIG (one layout, so
 * one parser); the fields a type does not use are zero.  Strings are
 * NUL-terminated and printable ASCII.  What the ACME process sends is
 * checked by the master as coming from an adversary (a listener in ACME
 * mode, a name among its domains, a token of base64url characters ...).
 */
struct control_acme {
	uint32_t	 id;		/* challenge or renewal id */
	uint32_t	 listener;	/* index in the configuration */
	uint32_t	 type;		/* enum config_acme_challenge */
	uint32_t	 ok;		/* PUBLISHED, RENEWED: 1 ok, 0 failed */
	int64_t		 not_after;	/* STATE: 0 if no certificate */
	int64_t		 next;		/* STATE: 0 if nothing planned */
	char		 name[CONTROL_NAME_MAX + 1];
	char		 token[CONTROL_TOKEN_MAX + 1];
	char		 keyauth[CONTROL_KEYAUTH_MAX + 1];
	unsigned char	 digest[32];
};

struct control_hdr {
	uint32_t	 type;
	uint32_t	 len;		/* payload bytes after the header */
};

struct control_msg {
	enum control_type type;
	uint64_t	 gen;		/* READY CONFIG ACK NACK */
	uint32_t	 pid;		/* READY; SIGNER_KEYS: the log level |
					   format << 8 */
	char		 text[CONTROL_TEXT_MAX + 1]; /* NACK, ACME_STATE,
					   ACME_RENEWED, ACME_PUBLISHED:
					   NUL-terminated */
	struct control_acme acme;	/* CONTROL_ACME_* but CONFIG */
	int		 fd;		/* REOPEN_LOG, ACME_CONFIG,
					   SIGNER_*; else -1 */
};

/* The fixed part of an ACME payload, and a bound on any message. */
#define CONTROL_ACME_WIRE \
	(4 * 4 + 2 * 8 + CONTROL_NAME_MAX + 1 + CONTROL_TOKEN_MAX + 1 + \
	 CONTROL_KEYAUTH_MAX + 1 + 32)
#define CONTROL_MSG_MAX \
	(sizeof(struct control_hdr) + 8 + CONTROL_ACME_WIRE + CONTROL_TEXT_MAX)

/*
 * Validate and decode one message of len bytes (no descriptor: the caller
 * attaches it).  Pure.  Returns 0, or -1 for an unknown type, a payload
 * whose size does not match its type, or text that is not printable.
 */
int	 control_parse(const unsigned char *buf, size_t len,
	    struct control_msg *m);

/* Encode m into buf (at least CONTROL_MSG_MAX bytes).  Returns the length. */
size_t	 control_encode(const struct control_msg *m, unsigned char *buf);

/*
 * Master: make the two channels of one worker, all four ends close-on-exec
 * and non-blocking.  sock[0] (the master's end of the socket, shut for
 * reading and refusing descriptors where the kernel can) and report[0]
 * (the pipe's read end) stay in the master; sock[1] and report[1] go to
 * the worker.  Returns 0, or -1 with errno (nothing left open).
 */
int	 control_open(int sock[2], int report[2]);

/* Master -> worker: m->fd >= 0 is passed along for CONTROL_REOPEN_LOG and
   CONTROL_ACME_CONFIG. */
int	 control_send(int sock, const struct control_msg *m);
int	 control_send_gen(int sock, enum control_type type, uint64_t gen);

/*
 * Worker: receive one message from the master.  Returns 1 with *m filled,
 * 0 on EOF (or an empty record, which no sender produces: it is taken as
 * EOF), -1 on error (errno EAGAIN: nothing to read; EPROTO: a malformed
 * message, a type the master does not send, a descriptor missing or on a
 * type without one; its descriptors, if any, have been closed).
 */
int	 control_recv(int sock, struct control_msg *m);

/*
 * Worker -> master: one write(2) of one message on the report pipe
 * (SIGPIPE must be ignored: a master that is gone gives EPIPE).
 * CONTROL_REOPEN_LOG and CONTROL_ACME_CONFIG, the types with a descriptor,
 * cannot be reported (EINVAL).
 */
int	 control_report(int pipefd, const struct control_msg *m);
int	 control_report_gen(int pipefd, enum control_type type,
	    uint64_t gen);

/*
 * Master: read one message from a worker's report pipe.  Same returns as
 * control_recv() (EPROTO too for a type only the master sends); no
 * descriptor can come this way (m->fd is always -1).
 */
int	 control_read(int pipefd, struct control_msg *m);

/*
 * A child (worker, ACME process, prober), before anything else: sock must
 * be its control socket and pipefd its report pipe, or the variable env
 * was set by someone other than the master (the process ends, saying
 * so).  Both are made non-blocking.
 */
void	 control_child_check(int sock, int pipefd, const char *env);

/*
 * What a child that follows generations (a worker, the prober) does with
 * the master's messages: config applies generation gen if it is newer
 * than its own and returns the one it has then (ACKed), or 0 with why
 * (NACKed); drain stops it.
 */
/*
 * A child's config callback returns the generation now live (ACK), 0 with
 * why set (NACK), or CONTROL_GEN_LATER: no answer yet, the child gives it
 * later with control_child_answer() (a worker that tries a failed load
 * again, see worker.c).
 */
#define CONTROL_GEN_LATER	UINT64_MAX

struct control_child {
	int		 sock;		/* its control socket */
	int		 report;	/* its report pipe */
	uint64_t	(*config)(void *arg, uint64_t gen, const char **why);
	void		(*drain)(void *arg, const char *why);
	void		*arg;
};

/*
 * Every message waiting on c->sock: CONFIG (then ACK or NACK on
 * c->report, the NACK logged), DRAIN ("master asked"), REOPEN_LOG
 * (log_reopen).  Another type or a malformed message ends the process.
 * At EOF (the master is gone) it drains ("master exited") and returns 0:
 * stop watching the socket; 1 otherwise.
 */
int	 control_child_read(const struct control_child *c);

/* The answer to CONFIG gen: ACK now if now != 0, else NACK why (logged). */
void	 control_child_answer(const struct control_child *c, uint64_t gen,
	    uint64_t now, const char *why);

/*
 * A child's report to the master (control_report, m->fd set to -1): a
 * master that is gone (EPIPE) ends the child (exit 0); another failure
 * is logged.
 */
void	 control_child_report(int pipefd, struct control_msg *m);

#endif /* PORTCULLIS_CONTROL_H */
