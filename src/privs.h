/*
 * privs.h - user switch, capabilities and no_new_privs.
 *
 * The master, started as root (or with CAP_NET_BIND_SERVICE), binds
 * everything and then keeps only what it needs afterwards: as root,
 * CAP_SETUID/CAP_SETGID (respawned workers switch user), CAP_KILL (signal
 * workers that run as another user) and CAP_DAC_READ_SEARCH (re-read key
 * files on reload); otherwise nothing.  A worker switches to the service
 * user before it is executed, then drops every capability, sets
 * no_new_privs and checks the result.
 */
#ifndef PORTCULLIS_PRIVS_H
#define PORTCULLIS_PRIVS_H

#include <stdbool.h>
#include <sys/types.h>

struct privs_user {
	uid_t	 uid;
	gid_t	 gid;
	bool	 switch_user;	/* started as root: workers switch */
};

/* Master, at start: look the user up (only matters when root). */
int	 privs_lookup_user(const char *name, struct privs_user *u);

/* Master, after binding: shed capabilities, no_new_privs, not dumpable. */
int	 privs_master_restrict(bool root);

/* Worker child before exec: become u (when switch_user).  0 or -1. */
int	 privs_switch_user(const struct privs_user *u);

/*
 * No core dump, whatever limit the process was started with: RLIMIT_CORE
 * 0 (soft and hard) and not dumpable (sanitizer builds stay dumpable:
 * LeakSanitizer ptraces its own process).  0 or -1.
 */
int	 privs_no_core(void);

/*
 * Worker, prober, ACME process after exec: drop every capability
 * (effective, permitted, inheritable, ambient), set no_new_privs and
 * take away core dumps (privs_no_core); then verify that no capability
 * is left and, when expect_nonroot, that no uid or gid is 0.  0 or -1.
 */
int	 privs_worker_drop(bool expect_nonroot);

/* True if the process has any effective capability. */
bool	 privs_have_any_capability(void);

#endif /* PORTCULLIS_PRIVS_H */
