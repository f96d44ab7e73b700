/*
 * ctl.c - "portcullis ctl [--socket PATH] reload|status|renew [NAME]|
 * rotate-ticket-keys".
 *
 * Sends the command, prints the JSON reply and exits 0 when the reply says
 * "status":"ok", 1 otherwise (including when nothing answers).
 */
#include "autoconf.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "admin.h"
#include "config.h"
#include "ctl.h"
#include "util.h"

static void
ctl_usage(FILE *f)
{
	fprintf(f, "usage: portcullis ctl [--socket PATH] "
	    "reload|status|renew [NAME]|rotate-ticket-keys\n");
}

static int
ctl_connect(const char *path)
{
	struct sockaddr_un sun;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path));
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1)
		return util_close_fail(fd);
	return fd;
}

/* Read one reply line into buf (NUL-terminated, without the newline). */
static int
ctl_read_reply(int fd, char *buf, size_t bufsz, int timeout_ms)
{
	struct pollfd pfd = { fd, POLLIN, 0 };
	size_t len = 0;
	ssize_t n;

	while (len < bufsz - 1) {
		if (poll(&pfd, 1, timeout_ms) <= 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		n = read(fd, buf + len, bufsz - 1 - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		if (memchr(buf, '\n', len) != NULL)
			break;
	}
	buf[len] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	if (len == 0) {
		errno = ECONNRESET;
		return -1;
	}
	return 0;
}

int
ctl_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *path = CONFIG_ADMIN_SOCKET;
	char line[ADMIN_LINE_MAX + 2], reply[65536];
	enum admin_cmd cmd = ADMIN_CMD_INVALID;
	int ch, fd, n;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "s:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 's':
			path = optarg;
			break;
		case 'h':
			ctl_usage(stdout);
			return 0;
		default:
			ctl_usage(stderr);
			return 1;
		}
	}
	/* The words make one command line, which must parse as one. */
	n = -1;
	if (argc - optind == 1)
		n = snprintf(line, sizeof(line), "%s\n", argv[optind]);
	else if (argc - optind == 2)
		n = snprintf(line, sizeof(line), "%s %s\n", argv[optind],
		    argv[optind + 1]);
	if (n > 0 && (size_t)n < sizeof(line) && strchr(line, '\n') ==
	    line + n - 1)
		cmd = admin_parse(line, (size_t)n - 1, NULL, NULL);
	if (cmd == ADMIN_CMD_INVALID) {
		ctl_usage(stderr);
		return 1;
	}
	if ((fd = ctl_connect(path)) == -1) {
		fprintf(stderr, "portcullis ctl: %s: %s\n", path,
		    strerror(errno));
		return 1;
	}
	if (util_write_all(fd, line, strlen(line)) == -1 ||
	    ctl_read_reply(fd, reply, sizeof(reply), cmd == ADMIN_CMD_RENEW ?
	    CTL_RENEW_TIMEOUT_MS : CTL_REPLY_TIMEOUT_MS) == -1) {
		fprintf(stderr, "portcullis ctl: %s: %s\n", path,
		    strerror(errno));
		close(fd);
		return 1;
	}
	close(fd);
	printf("%s\n", reply);
	return strncmp(reply, "{\"status\":\"ok\"", 14) == 0 ? 0 : 1;
}
