/*
 * sandbox.c - seccomp-bpf allow-lists (see sandbox.h).
 *
 * A list is a set of groups (a table row per kind: policies[]); a group
 * is system calls allowed outright plus a function that adds the ones
 * allowed only with some arguments.  What no group allows gets the
 * mode's default action.  Arguments that are ints are compared as the
 * kernel sees them: glibc passes them sign-extended to 64 bits.
 */
#include "autoconf.h"

#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <seccomp.h>

#include "sandbox.h"
#include "util.h"

#define ALLOW	SCMP_ACT_ALLOW

#ifndef SYS_SECCOMP		/* si_code of a SIGSYS from a filter */
#define SYS_SECCOMP	1	/* (asm-generic/siginfo.h) */
#endif

/* The groups of system calls. */
#define G_BASE		0x01	/* memory, time, signals, fds, exit */
#define G_LOOP		0x02	/* libev (epoll) */
#define G_NET		0x04	/* TCP clients over IPv4/IPv6 */
#define G_ACCEPT	0x08	/* accept on inherited listeners */
#define G_FILES		0x10	/* read-only opens; writes beneath a dirfd */
#define G_THREADS	0x20	/* threads (libcurl's resolver) */
#define G_SANITIZER	0x40	/* added by sanitizer builds only */
#define G_CHANNEL	0x80	/* send/recv on descriptors it holds */

struct group {
	const int	*calls;
	size_t		 ncalls;
	int		(*cond)(scmp_filter_ctx);
};

static const int base_calls[] = {
	SCMP_SYS(read), SCMP_SYS(readv), SCMP_SYS(pread64),
	SCMP_SYS(write), SCMP_SYS(writev), SCMP_SYS(pwrite64),
	SCMP_SYS(close), SCMP_SYS(fstat), SCMP_SYS(lseek),
	SCMP_SYS(fcntl), SCMP_SYS(dup), SCMP_SYS(dup2), SCMP_SYS(dup3),
	SCMP_SYS(brk), SCMP_SYS(munmap), SCMP_SYS(mremap),
	SCMP_SYS(madvise), SCMP_SYS(futex),
	SCMP_SYS(clock_gettime), SCMP_SYS(clock_getres),
	SCMP_SYS(clock_nanosleep), SCMP_SYS(nanosleep),
	SCMP_SYS(gettimeofday), SCMP_SYS(time),
	SCMP_SYS(getpid), SCMP_SYS(gettid), SCMP_SYS(getppid),
	SCMP_SYS(getuid), SCMP_SYS(geteuid), SCMP_SYS(getgid),
	SCMP_SYS(getegid), SCMP_SYS(getrandom), SCMP_SYS(uname),
	SCMP_SYS(rt_sigprocmask), SCMP_SYS(rt_sigreturn),
	SCMP_SYS(sigaltstack), SCMP_SYS(restart_syscall),
	SCMP_SYS(sched_yield), SCMP_SYS(getrlimit),
	/* glibc's qsort of 1 KB or more asks for the memory size */
	SCMP_SYS(sysinfo),
	SCMP_SYS(exit), SCMP_SYS(exit_group),
	SCMP_SYS(poll), SCMP_SYS(ppoll),
	/* the control channel: messages with descriptors */
	SCMP_SYS(recvmsg), SCMP_SYS(sendmsg),
};

static const int loop_calls[] = {
	SCMP_SYS(epoll_create1), SCMP_SYS(epoll_ctl), SCMP_SYS(epoll_wait),
	SCMP_SYS(epoll_pwait), SCMP_SYS(epoll_pwait2), SCMP_SYS(eventfd2),
	SCMP_SYS(pipe2),
};

static const int net_calls[] = {
	SCMP_SYS(connect), SCMP_SYS(getsockopt), SCMP_SYS(setsockopt),
	SCMP_SYS(getsockname), SCMP_SYS(getpeername), SCMP_SYS(sendto),
	SCMP_SYS(recvfrom), SCMP_SYS(shutdown), SCMP_SYS(sendmmsg),
	SCMP_SYS(recvmmsg),
};

static const int accept_calls[] = {
	SCMP_SYS(accept4), SCMP_SYS(accept),
};

static const int files_calls[] = {
	/* beneath a directory descriptor (acmecache.c: openat2 with
	   RESOLVE_BENEATH), and the cache directory itself */
	SCMP_SYS(openat2), SCMP_SYS(mkdir), SCMP_SYS(mkdirat),
	SCMP_SYS(renameat), SCMP_SYS(renameat2), SCMP_SYS(unlinkat),
	SCMP_SYS(fchmod), SCMP_SYS(fsync), SCMP_SYS(fdatasync),
	SCMP_SYS(ftruncate), SCMP_SYS(statx),
	SCMP_SYS(access), SCMP_SYS(faccessat), SCMP_SYS(faccessat2),
	SCMP_SYS(getdents64), SCMP_SYS(readlink),
};

static const int threads_calls[] = {
	SCMP_SYS(set_robust_list), SCMP_SYS(rseq), SCMP_SYS(sched_getaffinity),
	/* libcurl's resolver thread wakes the caller through a socketpair */
	SCMP_SYS(socketpair),
};

static const int sanitizer_calls[] = {
	/* LeakSanitizer's StopTheWorld: a tracer attaches to every thread */
	SCMP_SYS(ptrace), SCMP_SYS(wait4), SCMP_SYS(waitid),
	SCMP_SYS(prctl), SCMP_SYS(sched_getaffinity), SCMP_SYS(getdents64),
	SCMP_SYS(getdents),	/* its /proc/PID/task listing, on x86_64 */
	SCMP_SYS(readlink),
	SCMP_SYS(readlinkat), SCMP_SYS(statx),
	SCMP_SYS(stat), SCMP_SYS(lstat), SCMP_SYS(set_robust_list),
	SCMP_SYS(rseq), SCMP_SYS(kill), SCMP_SYS(tgkill), SCMP_SYS(tkill),
	SCMP_SYS(clone), SCMP_SYS(process_vm_readv),
	SCMP_SYS(sysinfo), SCMP_SYS(getrusage), SCMP_SYS(prlimit64),
	SCMP_SYS(setrlimit), SCMP_SYS(pipe2), SCMP_SYS(pipe),
	SCMP_SYS(sched_yield),
	SCMP_SYS(getpgid), SCMP_SYS(getsid), SCMP_SYS(ioctl),
};

/* The signer's channels (send and recv are sendto and recvfrom). */
static const int channel_calls[] = {
	SCMP_SYS(sendto), SCMP_SYS(recvfrom),
};

static pid_t self;
static unsigned cur_groups;	/* of the list being built */

/* int args compare as the kernel sees them: sign-extended. */
static scmp_datum_t
sx(long v)
{
	return (scmp_datum_t)(int64_t)v;
}

static int
add1(scmp_filter_ctx ctx, uint32_t action, int nr, unsigned n,
    const struct scmp_arg_cmp *a)
{
	int rc = seccomp_rule_add_array(ctx, action, nr, n, a);

	/* A call this architecture does not have is not an error, nor a
	   rule two groups both add. */
	return rc == -EDOM || rc == -EEXIST || (rc != 0 && nr < 0) ? 0 : rc;
}

/*
 * No memory made executable, ever (mmap, mprotect without PROT_EXEC):
 * the code is mapped before the list is installed.
 */
static int
base_cond(scmp_filter_ctx ctx)
{
	struct scmp_arg_cmp noexec = SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0);
	struct scmp_arg_cmp notsys = SCMP_A0(SCMP_CMP_NE, sx(SIGSYS));
	struct scmp_arg_cmp getonly = SCMP_A2(SCMP_CMP_EQ, 0);
	struct scmp_arg_cmp me = SCMP_A0(SCMP_CMP_EQ, sx(self));
	/* glibc's fstat is newfstatat(fd, "", st, AT_EMPTY_PATH) */
	struct scmp_arg_cmp emptypath = SCMP_A3(SCMP_CMP_MASKED_EQ,
	    AT_EMPTY_PATH, AT_EMPTY_PATH);
	struct scmp_arg_cmp apath = SCMP_A3(SCMP_CMP_MASKED_EQ,
	    AT_EMPTY_PATH, 0);
	/*
	 * stat of a path: only with G_FILES.  Elsewhere it fails with
	 * ENOENT instead of killing: GnuTLS looks at the modification time
	 * of its system priority file (/etc/gnutls/config) at every
	 * priority init, a reload's too, and keeps what it read at start
	 * when it cannot.
	 */
	uint32_t pathstat = (cur_groups & G_FILES) || UTIL_ASAN ? ALLOW :
	    SCMP_ACT_ERRNO(ENOENT);
	/* log.c cuts a line a full disk left half written off the log */
	struct scmp_arg_cmp logfd = SCMP_A0(SCMP_CMP_EQ, STDERR_FILENO);

	if (add1(ctx, ALLOW, SCMP_SYS(mmap), 1, &noexec) ||
	    add1(ctx, ALLOW, SCMP_SYS(mprotect), 1, &noexec) ||
	    /* SIGSYS's handler stays the one sandbox_apply set */
	    add1(ctx, ALLOW, SCMP_SYS(rt_sigaction), 1, &notsys) ||
	    /* getrlimit (glibc: prlimit64(0, r, NULL, old)), never set */
	    add1(ctx, ALLOW, SCMP_SYS(prlimit64), 1, &getonly) ||
	    /* abort() and raise(): to this process only */
	    add1(ctx, ALLOW, SCMP_SYS(tgkill), 1, &me) ||
	    add1(ctx, ALLOW, SCMP_SYS(kill), 1, &me) ||
	    add1(ctx, ALLOW, SCMP_SYS(newfstatat), 1, &emptypath) ||
	    add1(ctx, pathstat, SCMP_SYS(newfstatat), 1, &apath) ||
	    add1(ctx, ALLOW, SCMP_SYS(ftruncate), 1, &logfd))
		return -1;
	return 0;
}

/*
 * TCP sockets of the Internet families only: no UDP, AF_UNIX,
 * AF_NETLINK, raw ... (G_FILES adds UDP for the resolver).  The type's
 * low bits, without SOCK_NONBLOCK and SOCK_CLOEXEC.
 */
static int
net_cond(scmp_filter_ctx ctx)
{
	struct scmp_arg_cmp v4[2] = {
		SCMP_A0(SCMP_CMP_EQ, AF_INET),
		SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, SOCK_STREAM),
	};
	struct scmp_arg_cmp v6[2] = {
		SCMP_A0(SCMP_CMP_EQ, AF_INET6),
		SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, SOCK_STREAM),
	};
	struct scmp_arg_cmp fionread = SCMP_A1(SCMP_CMP_EQ, FIONREAD);

	return add1(ctx, ALLOW, SCMP_SYS(socket), 2, v4) ||
	    add1(ctx, ALLOW, SCMP_SYS(socket), 2, v6) ||
	    /* the only ioctl: bytes waiting (glibc's resolver) */
	    add1(ctx, ALLOW, SCMP_SYS(ioctl), 1, &fionread) ? -1 : 0;
}

/*
 * openat of a path: read-only (no write access mode, no O_CREAT or
 * O_TRUNC), for the resolver's /etc files and libcurl's CA file.  The
 * cache is written beneath its directory descriptor (openat2).  glibc
 * asks nscd over an AF_UNIX socket first, and the kernel's addresses
 * over netlink for AI_ADDRCONFIG: both say "refused", and the lookup
 * goes on without them.
 */
static int
files_cond(scmp_filter_ctx ctx)
{
	struct scmp_arg_cmp ro = SCMP_A2(SCMP_CMP_MASKED_EQ,
	    O_ACCMODE | O_CREAT | O_TRUNC | O_APPEND, O_RDONLY);
	struct scmp_arg_cmp unix_ = SCMP_A0(SCMP_CMP_EQ, AF_UNIX);
	struct scmp_arg_cmp netlink = SCMP_A0(SCMP_CMP_EQ, AF_NETLINK);
	struct scmp_arg_cmp dns4 = SCMP_A0(SCMP_CMP_EQ, AF_INET);
	struct scmp_arg_cmp dns6 = SCMP_A0(SCMP_CMP_EQ, AF_INET6);

	return add1(ctx, ALLOW, SCMP_SYS(openat), 1, &ro) ||
	    /* the resolver asks over UDP */
	    add1(ctx, ALLOW, SCMP_SYS(socket), 1, &dns4) ||
	    add1(ctx, ALLOW, SCMP_SYS(socket), 1, &dns6) ||
	    /* AI_ADDRCONFIG's look at the addresses: refused, glibc then
	       assumes both families (no bind(2) needed) */
	    add1(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(socket), 1, &netlink) ||
	    add1(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(socket), 1, &unix_) ?
	    -1 : 0;
}

/*
 * Threads only (CLONE_THREAD): no new process.  clone3 passes its flags
 * in memory a filter cannot read, so it says ENOSYS and glibc falls back
 * to clone.
 */
static int
threads_cond(scmp_filter_ctx ctx)
{
	struct scmp_arg_cmp thread = SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD,
	    CLONE_THREAD);

	return add1(ctx, ALLOW, SCMP_SYS(clone), 1, &thread) ||
	    add1(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0, NULL) ?
	    -1 : 0;
}

/*
 * The sanitizer runtime reads /proc when it reports and at exit, and
 * forks its symbolizer: that fails (unsymbolized frames) instead of
 * killing the report.
 */
static int
sanitizer_cond(scmp_filter_ctx ctx)
{
	/* /proc/self/maps, /proc/self/task: read-only, as G_FILES */
	struct scmp_arg_cmp ro = SCMP_A2(SCMP_CMP_MASKED_EQ,
	    O_ACCMODE | O_CREAT | O_TRUNC | O_APPEND, O_RDONLY);
	struct scmp_arg_cmp ro1 = SCMP_A1(SCMP_CMP_MASKED_EQ,
	    O_ACCMODE | O_CREAT | O_TRUNC | O_APPEND, O_RDONLY);

	return add1(ctx, ALLOW, SCMP_SYS(openat), 1, &ro) ||
	    add1(ctx, ALLOW, SCMP_SYS(open), 1, &ro1) ||
	    add1(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(execve), 0, NULL) ||
	    add1(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(fork), 0, NULL) ||
	    add1(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(vfork), 0, NULL) ?
	    -1 : 0;
}

#define GROUP(a, c)	{ a, nitems(a), c }
static const struct group groups[] = {
	GROUP(base_calls, base_cond),		/* G_BASE */
	GROUP(loop_calls, NULL),		/* G_LOOP */
	GROUP(net_calls, net_cond),		/* G_NET */
	GROUP(accept_calls, NULL),		/* G_ACCEPT */
	GROUP(files_calls, files_cond),		/* G_FILES */
	GROUP(threads_calls, threads_cond),	/* G_THREADS */
	GROUP(sanitizer_calls, sanitizer_cond),	/* G_SANITIZER */
	GROUP(channel_calls, NULL),		/* G_CHANNEL */
};

/*
 * What each kind may do.  Adding a kind is a row here (and its value in
 * enum sandbox_kind).
 */
static const struct policy {
	const char	*name;
	unsigned	 groups;
} policies[SANDBOX_KINDS] = {
	/* TLS and HTTP on accepted connections, to upstreams (TCP, TLS);
	   new generations from the shared segment; log reopen by a
	   descriptor the master sends */
	[SANDBOX_WORKER] = { "worker", G_BASE | G_LOOP | G_NET | G_ACCEPT },
	/* health checks: TCP and TLS to upstreams */
	[SANDBOX_PROBER] = { "prober", G_BASE | G_LOOP | G_NET },
	/* HTTPS to the CA (libcurl: its resolver thread, /etc/resolv.conf,
	   /etc/hosts, the CA file), the cache beneath its directory */
	[SANDBOX_ACME] = { "acme", G_BASE | G_NET | G_FILES | G_THREADS },
	/*
	 * The signer: poll over its control socket and the children's
	 * channels (SOCK_SEQPACKET socketpairs it was sent), memory, time,
	 * getrandom (GnuTLS's signatures), the key set's memfd (fstat,
	 * pread, mmap); no socket of its own, no epoll, no file, no thread.
	 */
	[SANDBOX_SIGNER] = { "signer", G_BASE | G_CHANNEL },
};

int
sandbox_mode_parse(const char *s, enum sandbox_mode *mode)
{
	if (s == NULL)
		return -1;
	if (strcmp(s, "kill") == 0)
		*mode = SANDBOX_KILL;
	else if (strcmp(s, "log") == 0)
		*mode = SANDBOX_LOG;
	else if (strcmp(s, "off") == 0)
		*mode = SANDBOX_OFF;
	else
		return -1;
	return 0;
}

const char *
sandbox_mode_name(enum sandbox_mode mode)
{
	switch (mode) {
	case SANDBOX_LOG:
		return "log";
	case SANDBOX_OFF:
		return "off";
	default:
		return "kill";
	}
}

const char *
sandbox_kind_name(enum sandbox_kind kind)
{
	return (unsigned)kind < SANDBOX_KINDS ? policies[kind].name : "?";
}

enum sandbox_mode
sandbox_mode_from_env(void)
{
	enum sandbox_mode mode = SANDBOX_KILL;

	if (sandbox_mode_parse(getenv(SANDBOX_ENV), &mode) == -1)
		mode = SANDBOX_KILL;
	unsetenv(SANDBOX_ENV);
	return mode;
}

/* "sandbox: <kind> made system call <nr> outside its allow-list\n" */
static const char *trap_kind = "?";

static size_t
fmt_uint(char *p, unsigned long v)
{
	char tmp[24];
	size_t n = 0, i;

	do
		tmp[n++] = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	for (i = 0; i < n; i++)
		p[i] = tmp[n - 1 - i];
	return n;
}

/*
 * Async-signal-safe: say which call, then raise SIGSYS: SA_RESETHAND has
 * put it back to its default, so the process dies of it as the kernel's
 * SECCOMP_RET_KILL_PROCESS would kill it (no core: RLIMIT_CORE 0, not
 * dumpable).
 */
static void
trap_handler(int sig UNUSED, siginfo_t *si, void *uc UNUSED)
{
	static const char pre[] = "portcullis: sandbox: ";
	static const char mid[] = " made system call ";
	static const char post[] = " outside its allow-list: killed\n";
	char buf[160];
	size_t n = 0, k;
	int nr = si->si_syscall;

	/* A SIGSYS sent by someone (kill -SYS) is not a call to name. */
	if (si->si_code != SYS_SECCOMP)
		goto die;
	memcpy(buf, pre, sizeof(pre) - 1);
	n += sizeof(pre) - 1;
	k = strlen(trap_kind);
	if (k > 32)
		k = 32;
	memcpy(buf + n, trap_kind, k);
	n += k;
	memcpy(buf + n, mid, sizeof(mid) - 1);
	n += sizeof(mid) - 1;
	n += fmt_uint(buf + n, (unsigned long)(unsigned)nr);
	memcpy(buf + n, post, sizeof(post) - 1);
	n += sizeof(post) - 1;
	(void)!write(STDERR_FILENO, buf, n);
die:
	raise(SIGSYS);
	_exit(128 + SIGSYS);	/* not reached */
}

static int
install_trap(const char *name)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = trap_handler;
	sa.sa_flags = SA_SIGINFO | SA_RESETHAND | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	trap_kind = name;
	return sigaction(SIGSYS, &sa, NULL);
}

int
sandbox_apply(enum sandbox_kind kind, enum sandbox_mode mode)
{
	const struct policy *p;
	scmp_filter_ctx ctx;
	unsigned g;
	size_t i;
	int rc = -EINVAL;

	if ((unsigned)kind >= SANDBOX_KINDS) {
		errno = EINVAL;
		return -1;
	}
	if (mode == SANDBOX_OFF)
		return 0;
	p = &policies[kind];
	self = getpid();
	cur_groups = p->groups;
	/* Read /etc/localtime now: strftime's tzset, later, only checks. */
	tzset();
	if (mode == SANDBOX_KILL && install_trap(p->name) == -1)
		return -1;
	if ((ctx = seccomp_init(mode == SANDBOX_LOG ? SCMP_ACT_LOG :
	    SCMP_ACT_TRAP)) == NULL) {
		errno = ENOMEM;
		return -1;
	}
	/*
	 * no_new_privs is already set (privs.h): the filter does not depend
	 * on it.  A call through another ABI (int 0x80 on x86_64) kills the
	 * whole process, not only its thread.
	 */
	if (seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 1) != 0 ||
	    seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, mode == SANDBOX_LOG ?
	    SCMP_ACT_LOG : SCMP_ACT_KILL_PROCESS) != 0)
		goto out;
	for (g = 0; g < nitems(groups); g++) {
		unsigned bit = 1u << g;
		bool want = (p->groups & bit) != 0 ||
		    (bit == G_SANITIZER && UTIL_ASAN);

		if (!want)
			continue;
		for (i = 0; i < groups[g].ncalls; i++)
			if ((rc = add1(ctx, ALLOW, groups[g].calls[i], 0,
			    NULL)) != 0)
				goto out;
		if (groups[g].cond != NULL && groups[g].cond(ctx) != 0) {
			rc = -EINVAL;
			goto out;
		}
	}
	rc = seccomp_load(ctx);
out:
	seccomp_release(ctx);
	if (rc != 0) {
		errno = rc < 0 ? -rc : EINVAL;
		return -1;
	}
	return 0;
}
