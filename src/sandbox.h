/*
 * sandbox.h - seccomp-bpf allow-lists for the processes that handle
 * untrusted bytes (libseccomp), and the core-dump limits of every child.
 *
 * A child installs its kind's list once, after its initialisation and
 * before it reads anything from the network, and can never widen it
 * (no_new_privs is already set: privs.h).  A system call outside the
 * list ends the process with SIGSYS: in "kill" mode the kernel traps it
 * (SECCOMP_RET_TRAP) to a handler that writes the call's number to
 * stderr with write(2) and then lets the kernel kill the process with
 * SIGSYS (its handler is reset on delivery, and the call is made again);
 * a handler cannot be installed for SIGSYS once the list is in place.
 * "log" lets every call through and has the kernel log those outside the
 * list (SECCOMP_RET_LOG, the audit or kernel log); "off" installs
 * nothing.  The master learns of a violation from the wait status
 * (WTERMSIG == SIGSYS).
 *
 * Sanitizer builds (UTIL_ASAN) add what the sanitizer runtime needs at
 * exit and when reporting (ptrace, /proc reads, a tracer thread): that
 * weakening exists only there.
 */
#ifndef PORTCULLIS_SANDBOX_H
#define PORTCULLIS_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>

/* The global option seccomp = "kill" | "log" | "off"; static. */
enum sandbox_mode {
	SANDBOX_KILL = 0,
	SANDBOX_LOG,
	SANDBOX_OFF
};

/* One allow-list per kind of process (sandbox.c's policies[]). */
enum sandbox_kind {
	SANDBOX_WORKER = 0,
	SANDBOX_PROBER,
	SANDBOX_ACME,
	SANDBOX_SIGNER,		/* the key-signing process */
	SANDBOX_KINDS
};

/* How the master tells a child the mode: set in its environment. */
#define SANDBOX_ENV	"PORTCULLIS_SECCOMP"

/* "kill", "log" or "off" to *mode: 0, or -1 for anything else. */
int		 sandbox_mode_parse(const char *s, enum sandbox_mode *mode);
const char	*sandbox_mode_name(enum sandbox_mode mode);

/*
 * The mode the master put in the environment (removed from it); "kill"
 * when it is missing or unreadable, so that a child fails closed.
 */
enum sandbox_mode sandbox_mode_from_env(void);

/*
 * Install kind's allow-list in mode (nothing for SANDBOX_OFF).  0, or -1
 * with errno (the process must not go on).  Once per process.
 */
int		 sandbox_apply(enum sandbox_kind kind, enum sandbox_mode mode);

/* The kind's name, for log lines ("worker", "acme", ...). */
const char	*sandbox_kind_name(enum sandbox_kind kind);

#endif /* PORTCULLIS_SANDBOX_H */
