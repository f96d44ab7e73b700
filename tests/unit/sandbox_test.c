/*
 * sandbox_test.c - each kind's allow-list, applied in a forked child:
 * what it forbids kills the child with SIGSYS (and says which call on
 * stderr), what it allows works, "log" kills nothing, "off" installs
 * nothing.  Sanitizer builds allow read-only openat and ptrace and refuse
 * execve with EPERM (sandbox.h): there the tests check that instead.
 */

#include "autoconf.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <netdb.h>
#include <netinet/in.h>

#include <curl/curl.h>

#include "acmecache.h"
#include "sandbox.h"
#include "util.h"

/* What a child does once its list is in place; its exit status. */
typedef int child_fn(void);

struct outcome {
	int	 status;		/* waitpid's */
	char	 err[512];		/* what it wrote to stderr */
};

/*
 * Fork; the child applies kind's list in mode, then runs fn and exits
 * with what fn returns (100 + errno if the list did not install).
 */
static void
run(enum sandbox_kind kind, enum sandbox_mode mode, child_fn *fn,
    struct outcome *o)
{
	int p[2];
	pid_t pid;
	ssize_t n;
	size_t got = 0;

	memset(o, 0, sizeof(*o));
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	pid = fork();
	assert_true(pid != -1);
	if (pid == 0) {
		close(p[0]);
		if (dup2(p[1], STDERR_FILENO) == -1)
			_exit(99);
		if (sandbox_apply(kind, mode) == -1)
			_exit(100 + errno);
		_exit(fn());
	}
	close(p[1]);
	while (got < sizeof(o->err) - 1 && (n = read(p[0], o->err + got,
	    sizeof(o->err) - 1 - got)) > 0)
		got += (size_t)n;
	close(p[0]);
	assert_int_equal(waitpid(pid, &o->status, 0), pid);
}

static void
expect_sigsys(enum sandbox_kind kind, child_fn *fn)
{
	struct outcome o;

	run(kind, SANDBOX_KILL, fn, &o);
	if (!WIFSIGNALED(o.status) || WTERMSIG(o.status) != SIGSYS)
		fail_msg("%s: not killed by SIGSYS (status %#x, stderr \"%s\")",
		    sandbox_kind_name(kind), o.status, o.err);
	assert_non_null(strstr(o.err, "portcullis: sandbox: "));
	assert_non_null(strstr(o.err, "outside its allow-list"));
}

static void
expect_exit(enum sandbox_kind kind, enum sandbox_mode mode, child_fn *fn,
    int code)
{
	struct outcome o;

	run(kind, mode, fn, &o);
	if (!WIFEXITED(o.status) || WEXITSTATUS(o.status) != code)
		fail_msg("%s/%s: status %#x, wanted exit %d (stderr \"%s\")",
		    sandbox_kind_name(kind), sandbox_mode_name(mode), o.status,
		    code, o.err);
}

/* ---- what the children do ---- */

static int
do_open_path(void)
{
	int fd = open("/etc/hosts", O_RDONLY | O_CLOEXEC);

	return fd >= 0 ? 0 : 1;
}

static int
do_open_write(void)
{
	int fd = open("/tmp/portcullis-sandbox-test", O_WRONLY | O_CREAT |
	    O_CLOEXEC, 0600);

	return fd >= 0 ? 0 : 1;
}

static int
do_execve(void)
{
	char *argv[] = { (char *)"true", NULL };

	execve("/bin/true", argv, NULL);
	return errno == EPERM ? 3 : 1;
}

static int
do_ptrace(void)
{
	return ptrace(PTRACE_TRACEME, 0, NULL, NULL) == -1 ? 1 : 0;
}

static int
do_mmap_exec(void)
{
	void *p = mmap(NULL, 4096, PROT_READ | PROT_EXEC,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? 1 : 0;
}

static int
do_mprotect_exec(void)
{
	void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return 2;
	return mprotect(p, 4096, PROT_READ | PROT_EXEC) == -1 ? 1 : 0;
}

static int
do_socket_unix(void)
{
	return socket(AF_UNIX, SOCK_STREAM, 0) == -1 ? 1 : 0;
}

static int
do_socket_netlink(void)
{
	return socket(AF_NETLINK, SOCK_RAW, 0) == -1 ? 1 : 0;
}

static int
do_socket_inet(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	return fd >= 0 ? 0 : 1;
}

static int
do_socket_udp(void)
{
	return socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0) == -1 ? 1 : 0;
}

static int
do_sigaction_sigsys(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	return sigaction(SIGSYS, &sa, NULL) == -1 ? 1 : 0;
}

static int
do_ftruncate_other(void)
{
	return ftruncate(STDOUT_FILENO, 0) == -1 ? 1 : 0;
}

static int
do_setrlimit(void)
{
	struct rlimit rl = { 1, 1 };

	return setrlimit(RLIMIT_CORE, &rl) == -1 ? 1 : 0;
}

static int
do_kill_other(void)
{
	return kill(1, 0) == -1 ? 1 : 0;
}

static int
do_accept(void)
{
	return accept4(-1, NULL, NULL, 0) == -1 ? 1 : 0;
}

static int
do_fork(void)
{
	pid_t pid = fork();

	if (pid == 0)
		_exit(0);
	return pid == -1 ? 1 : 0;
}

static int
int_cmp(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

/* What a worker does all day, minus the peers. */
static int
do_worker_allowed(void)
{
	static int big[4096];
	char buf[64];
	struct stat st;
	void *p;
	int ep, fd, sv[2];

	if ((p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)) == MAP_FAILED)
		return 10;
	memset(p, 1, 1 << 20);
	if (munmap(p, 1 << 20) == -1)
		return 11;
	if ((p = malloc(10 << 20)) == NULL)
		return 12;
	free(p);
	if (getrandom(buf, sizeof(buf), 0) != (ssize_t)sizeof(buf))
		return 13;
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) == -1)
		return 14;
	close(ep);
	if (pipe2(sv, O_CLOEXEC | O_NONBLOCK) == -1)
		return 15;
	if (write(sv[1], "x", 1) != 1 || read(sv[0], buf, 1) != 1)
		return 16;
	if (fstat(sv[0], &st) == -1)
		return 17;
	close(sv[0]);
	close(sv[1]);
	if ((fd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) == -1)
		return 18;
	close(fd);
	/* a reload's route table: glibc's qsort asks sysinfo(2) */
	for (fd = 0; fd < (int)nitems(big); fd++)
		big[fd] = (int)nitems(big) - fd;
	qsort(big, nitems(big), sizeof(big[0]), int_cmp);
	if (big[0] != 1)
		return 21;
	/* the log's half line cut (stderr is a pipe here: EINVAL) */
	if (ftruncate(STDERR_FILENO, 0) != -1 || errno != EINVAL)
		return 20;
	/* a path's stat says "no such file", and does not kill */
	if (stat("/etc/hosts", &st) != -1 || errno != ENOENT)
		return UTIL_ASAN ? 0 : 19;
	return 0;
}

static void *
thread_fn(void *arg)
{
	return arg;
}

/* The ACME process: a thread, a read-only open, a cache write. */
static const char *cache_dir;

static int
do_acme_allowed(void)
{
	char err[256];
	pthread_t t;
	void *r = NULL;
	int fd;

	if (pthread_create(&t, NULL, thread_fn, (void *)1) != 0 ||
	    pthread_join(t, &r) != 0 || r != (void *)1)
		return 10;
	if ((fd = open("/etc/hosts", O_RDONLY | O_CLOEXEC)) == -1)
		return 11;
	close(fd);
	if (acme_cache_write(cache_dir, "certs/example.com/key.pem", "k", 1,
	    0600, err, sizeof(err)) == -1) {
		fprintf(stderr, "%s\n", err);
		return 12;
	}
	/* glibc's nscd probe: refused, not killed */
	if (socket(AF_UNIX, SOCK_STREAM, 0) != -1 || errno != EACCES)
		return 13;
	return 0;
}

/* getpid through the i386 ABI: another architecture for the filter. */
static int
do_int80(void)
{
#if defined(__x86_64__)
	long ret = 20;	/* __NR_getpid on i386 */

	__asm__ volatile ("int $0x80" : "+a" (ret) : : "memory");
	return ret > 0 ? 0 : 1;
#else
	return 0;
#endif
}

/*
 * libcurl as the ACME process uses it: a name resolved by its resolver
 * thread (glibc: nsswitch.conf, /etc/hosts, AI_ADDRCONFIG's netlink
 * query), a connection.  acme_port: a listener the parent opened.
 */
static unsigned acme_port;

static int
do_acme_curl(void)
{
	struct addrinfo hints, *res = NULL;
	char url[64];
	CURL *c;
	CURLcode rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_ADDRCONFIG;
	if (getaddrinfo("localhost", "443", &hints, &res) != 0)
		return 10;
	freeaddrinfo(res);
	if ((c = curl_easy_init()) == NULL)
		return 11;
	snprintf(url, sizeof(url), "http://localhost:%u/", acme_port);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CONNECT_ONLY, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
	curl_easy_setopt(c, CURLOPT_IPRESOLVE, (long)CURL_IPRESOLVE_V4);
	rc = curl_easy_perform(c);
	curl_easy_cleanup(c);
	if (rc != CURLE_OK) {
		fprintf(stderr, "curl: %s\n", curl_easy_strerror(rc));
		return 12;
	}
	return 0;
}

static int
do_seccomp_state(void)
{
	return prctl(PR_GET_SECCOMP, 0, 0, 0, 0);
}

/* ---- the tests ---- */

static void
test_worker_forbidden(void **state UNUSED)
{
	expect_sigsys(SANDBOX_WORKER, do_open_write);
	expect_sigsys(SANDBOX_WORKER, do_mmap_exec);
	expect_sigsys(SANDBOX_WORKER, do_mprotect_exec);
	expect_sigsys(SANDBOX_WORKER, do_ftruncate_other);
	expect_sigsys(SANDBOX_WORKER, do_socket_unix);
	expect_sigsys(SANDBOX_WORKER, do_socket_netlink);
	expect_sigsys(SANDBOX_WORKER, do_socket_udp);
	expect_sigsys(SANDBOX_WORKER, do_sigaction_sigsys);
	if (UTIL_ASAN) {
		/* the sanitizer runtime's: allowed, execve refused */
		expect_exit(SANDBOX_WORKER, SANDBOX_KILL, do_open_path, 0);
		expect_exit(SANDBOX_WORKER, SANDBOX_KILL, do_execve, 3);
	} else {
		expect_sigsys(SANDBOX_WORKER, do_open_path);
		expect_sigsys(SANDBOX_WORKER, do_execve);
		expect_sigsys(SANDBOX_WORKER, do_ptrace);
		expect_sigsys(SANDBOX_WORKER, do_fork);
		expect_sigsys(SANDBOX_WORKER, do_setrlimit);
		expect_sigsys(SANDBOX_WORKER, do_kill_other);
	}
#if defined(__x86_64__)
	{
		struct outcome o;

		/* killed by the kernel: no handler, nothing said */
		run(SANDBOX_WORKER, SANDBOX_KILL, do_int80, &o);
		assert_true(WIFSIGNALED(o.status));
		assert_int_equal(WTERMSIG(o.status), SIGSYS);
	}
#endif
}

static void
test_worker_allowed(void **state UNUSED)
{
	expect_exit(SANDBOX_WORKER, SANDBOX_KILL, do_worker_allowed, 0);
	expect_exit(SANDBOX_WORKER, SANDBOX_KILL, do_socket_inet, 0);
	expect_exit(SANDBOX_WORKER, SANDBOX_KILL, do_accept, 1);
}

/* The handler names the kind and the call: openat is 257 on x86_64. */
static void
test_trap_says_which(void **state UNUSED)
{
	struct outcome o;
	char want[64];

	run(SANDBOX_PROBER, SANDBOX_KILL, do_open_write, &o);
	assert_true(WIFSIGNALED(o.status));
	assert_int_equal(WTERMSIG(o.status), SIGSYS);
	assert_false(WCOREDUMP(o.status));
	snprintf(want, sizeof(want), "prober made system call %d ",
	    (int)SYS_openat);
	if (strstr(o.err, want) == NULL)
		fail_msg("\"%s\" not in \"%s\"", want, o.err);
}

/* kill -SYS from outside: the same death, no call named. */
static void
test_sigsys_from_outside(void **state UNUSED)
{
	char buf[256];
	ssize_t n;
	size_t got = 0;
	int p[2], status;
	pid_t pid;

	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	pid = fork();
	assert_true(pid != -1);
	if (pid == 0) {
		close(p[0]);
		if (dup2(p[1], STDERR_FILENO) == -1 ||
		    sandbox_apply(SANDBOX_WORKER, SANDBOX_KILL) == -1)
			_exit(99);
		if (write(STDERR_FILENO, "ready\n", 6) != 6)
			_exit(98);
		sleep(30);
		_exit(0);
	}
	close(p[1]);
	n = read(p[0], buf, sizeof(buf) - 1);
	assert_true(n > 0);
	got = (size_t)n;
	assert_int_equal(kill(pid, SIGSYS), 0);
	while (got < sizeof(buf) - 1 && (n = read(p[0], buf + got,
	    sizeof(buf) - 1 - got)) > 0)
		got += (size_t)n;
	buf[got] = '\0';
	close(p[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGSYS);
	assert_string_equal(buf, "ready\n");
}

/*
 * A normal exit under the list: atexit handlers and, in sanitizer
 * builds, LeakSanitizer's tracer (it attaches to the process and lists
 * /proc/PID/task: a call it lacks killed the tracer and hung the exit).
 */
static void
test_exit_runs_atexit_and_leak_check(void **state UNUSED)
{
	enum sandbox_kind k;
	int status, i;
	pid_t pid;

	for (k = 0; k < SANDBOX_KINDS; k++) {
		pid = fork();
		assert_true(pid != -1);
		if (pid == 0) {
			if (sandbox_apply(k, SANDBOX_KILL) == -1)
				_exit(99);
			exit(7);
		}
		for (i = 0; i < 400; i++) {
			if (waitpid(pid, &status, WNOHANG) == pid)
				break;
			usleep(50000);
		}
		if (i == 400) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			fail_msg("%s: exit hung", sandbox_kind_name(k));
		}
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 7)
			fail_msg("%s: exit status %#x", sandbox_kind_name(k),
			    status);
	}
}

static void
test_prober(void **state UNUSED)
{
	expect_exit(SANDBOX_PROBER, SANDBOX_KILL, do_worker_allowed, 0);
	expect_sigsys(SANDBOX_PROBER, do_accept);
	expect_sigsys(SANDBOX_PROBER, do_mmap_exec);
	expect_sigsys(SANDBOX_PROBER, do_socket_unix);
	expect_sigsys(SANDBOX_PROBER, do_socket_udp);
	if (!UTIL_ASAN)
		expect_sigsys(SANDBOX_PROBER, do_execve);
}

static void
test_acme(void **state UNUSED)
{
	char dir[] = "/tmp/sandbox-test-XXXXXX";
	struct stat st;
	char path[128];

	assert_non_null(mkdtemp(dir));
	cache_dir = dir;
	expect_exit(SANDBOX_ACME, SANDBOX_KILL, do_acme_allowed, 0);
	snprintf(path, sizeof(path), "%s/certs/example.com/key.pem", dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 1);
	unlink(path);
	snprintf(path, sizeof(path), "%s/certs/example.com", dir);
	rmdir(path);
	snprintf(path, sizeof(path), "%s/certs", dir);
	rmdir(path);
	rmdir(dir);

	{
		struct sockaddr_in sin;
		socklen_t len = sizeof(sin);
		int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		assert_true(l != -1);
		assert_int_equal(bind(l, (struct sockaddr *)&sin, sizeof(sin)),
		    0);
		assert_int_equal(listen(l, 8), 0);
		assert_int_equal(getsockname(l, (struct sockaddr *)&sin, &len),
		    0);
		acme_port = ntohs(sin.sin_port);
		/* as acme_main, before its sandbox */
		assert_int_equal(curl_global_init(CURL_GLOBAL_DEFAULT),
		    CURLE_OK);
		expect_exit(SANDBOX_ACME, SANDBOX_KILL, do_acme_curl, 0);
		close(l);
	}
	expect_exit(SANDBOX_ACME, SANDBOX_KILL, do_socket_udp, 0);
	expect_sigsys(SANDBOX_ACME, do_open_write);
	expect_sigsys(SANDBOX_ACME, do_mmap_exec);
	expect_sigsys(SANDBOX_ACME, do_accept);
	if (!UTIL_ASAN) {
		expect_sigsys(SANDBOX_ACME, do_fork);
		expect_sigsys(SANDBOX_ACME, do_execve);
		expect_sigsys(SANDBOX_ACME, do_ptrace);
	}
}

static void
test_signer_stub(void **state UNUSED)
{
	expect_sigsys(SANDBOX_SIGNER, do_socket_inet);
	expect_sigsys(SANDBOX_SIGNER, do_open_write);
}

/* "log" lets the call through; "off" installs no filter at all. */
static void
test_modes(void **state UNUSED)
{
	expect_exit(SANDBOX_WORKER, SANDBOX_LOG, do_open_path, 0);
	expect_exit(SANDBOX_WORKER, SANDBOX_LOG, do_socket_unix, 0);
	expect_exit(SANDBOX_WORKER, SANDBOX_OFF, do_open_path, 0);
	expect_exit(SANDBOX_WORKER, SANDBOX_OFF, do_seccomp_state, 0);
	expect_exit(SANDBOX_WORKER, SANDBOX_LOG, do_seccomp_state,
	    SECCOMP_MODE_FILTER);
	expect_exit(SANDBOX_ACME, SANDBOX_LOG, do_seccomp_state,
	    SECCOMP_MODE_FILTER);
}

static void
test_mode_parse(void **state UNUSED)
{
	enum sandbox_mode m = SANDBOX_OFF;

	assert_int_equal(sandbox_mode_parse("kill", &m), 0);
	assert_int_equal(m, SANDBOX_KILL);
	assert_int_equal(sandbox_mode_parse("log", &m), 0);
	assert_int_equal(m, SANDBOX_LOG);
	assert_int_equal(sandbox_mode_parse("off", &m), 0);
	assert_int_equal(m, SANDBOX_OFF);
	assert_int_equal(sandbox_mode_parse("Kill", &m), -1);
	assert_int_equal(sandbox_mode_parse("", &m), -1);
	assert_int_equal(sandbox_mode_parse("kill ", &m), -1);
	assert_int_equal(sandbox_mode_parse(NULL, &m), -1);
	assert_string_equal(sandbox_mode_name(SANDBOX_LOG), "log");
	assert_string_equal(sandbox_mode_name(SANDBOX_OFF), "off");
	assert_string_equal(sandbox_mode_name(SANDBOX_KILL), "kill");
}

/* A child without the variable, or with garbage, fails closed. */
static void
test_mode_from_env(void **state UNUSED)
{
	unsetenv(SANDBOX_ENV);
	assert_int_equal(sandbox_mode_from_env(), SANDBOX_KILL);
	setenv(SANDBOX_ENV, "off", 1);
	assert_int_equal(sandbox_mode_from_env(), SANDBOX_OFF);
	assert_null(getenv(SANDBOX_ENV));
	setenv(SANDBOX_ENV, "lo", 1);
	assert_int_equal(sandbox_mode_from_env(), SANDBOX_KILL);
	assert_int_equal(sandbox_apply(SANDBOX_KINDS, SANDBOX_KILL), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_worker_forbidden),
		cmocka_unit_test(test_worker_allowed),
		cmocka_unit_test(test_trap_says_which),
		cmocka_unit_test(test_sigsys_from_outside),
		cmocka_unit_test(test_exit_runs_atexit_and_leak_check),
		cmocka_unit_test(test_prober),
		cmocka_unit_test(test_acme),
		cmocka_unit_test(test_signer_stub),
		cmocka_unit_test(test_modes),
		cmocka_unit_test(test_mode_parse),
		cmocka_unit_test(test_mode_from_env),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
