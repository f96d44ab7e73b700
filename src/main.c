/*
 * main.c - the command line.
 *
 *   portcullis [-c|--config FILE] [--validate] [--allow-wildcard-bind]
 *              [-V|--version] [-h|--help]
 *   portcullis ctl [--socket PATH] reload|status
 *
 * A worker is this same binary executed by the master with WORKER_ENV set;
 * what it serves on each kind of listener is chosen here.  The ACME process
 * is the same binary with ACME_ENV set (acme.h), the prober with
 * PROBER_ENV (prober.h), the signer with SIGNER_ENV (signer.h).
 */
#include "autoconf.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "acme.h"
#include "config.h"
#include "ctl.h"
#include "gen.h"
#include "h1conn.h"
#include "handshake.h"
#include "health.h"
#include "listen.h"
#include "master.h"
#include "oom.h"
#include "prober.h"
#include "signer.h"
#include "proxyin.h"
#include "tls.h"
#include "uptls.h"
#include "util.h"
#include "worker.h"

#define DEFAULT_CONFIG	SYSCONFDIR "/portcullis/portcullis.conf"

static char *
absolute_path(const char *path)
{
	char cwd[PATH_MAX], *abs;

	if (path[0] == '/')
		return strdup(path);
	if (getcwd(cwd, sizeof(cwd)) == NULL ||
	    asprintf(&abs, "%s/%s", cwd, path) == -1)
		return NULL;
	return abs;
}

/* Whether listener li reads a PROXY header first (static: any
   generation says the same). */
static bool
proxy_protocol(struct worker *wk, size_t li)
{
	return worker_gen(wk)->cfg->listeners[li].proxy_protocol;
}

static void
accept_https(struct worker *wk, int fd, const struct listen_sock *ls)
{
	if (proxy_protocol(wk, ls->listener))
		proxyin_start(wk, fd, ls->listener, handshake_begin);
	else
		handshake_start(wk, fd, ls->listener);
}

static void
accept_http(struct worker *wk, int fd, const struct listen_sock *ls)
{
	if (proxy_protocol(wk, ls->listener))
		proxyin_start(wk, fd, ls->listener, h1_start);
	else
		h1_accept(wk, fd, ls->listener);
}

static char *
health_metrics(void *wk, size_t *len)
{
	return worker_metrics(wk, len);
}

static void
accept_health(struct worker *wk, int fd, const struct listen_sock *ls UNUSED)
{
	health_accept(worker_loop(wk), worker_conns(wk), fd, health_metrics,
	    wk);
}

static const struct worker_handlers handlers = {
	.accept = {
		[LISTEN_HTTPS] = accept_https,
		[LISTEN_HTTP] = accept_http,
		[LISTEN_HEALTH] = accept_health,
	},
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: portcullis [-c|--config FILE] [--validate] "
	    "[--allow-wildcard-bind]\n"
	    "                  [-V|--version] [-h|--help]\n"
	    "       portcullis ctl [--socket PATH] reload|status|renew [NAME]|"
	    "rotate-ticket-keys\n"
	    "\n"
	    "  -c, --config FILE       configuration file (default %s)\n"
	    "      --validate          check the configuration and exit\n"
	    "      --allow-wildcard-bind  allow listeners on 0.0.0.0 or ::\n"
	    "  -V, --version           print the version and exit\n"
	    "  -h, --help              print this help and exit\n",
	    DEFAULT_CONFIG);
}

int
main(int argc, char **argv)
{
	enum { OPT_VALIDATE = 256, OPT_WILDCARD };
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "validate", no_argument, NULL, OPT_VALIDATE },
		{ "allow-wildcard-bind", no_argument, NULL, OPT_WILDCARD },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct config_opts opts = { .keypair_check = tls_keypair_check,
	    .ca_check = uptls_ca_check };
	struct config_errors errs = { NULL, NULL, 0, 0 };
	const char *path = DEFAULT_CONFIG;
	struct config *cfg;
	char *abspath;
	int rc;
	bool validate = false;
	size_t i;
	int ch;

	oom_install();
	if ((getenv(WORKER_ENV) != NULL) + (getenv(ACME_ENV) != NULL) +
	    (getenv(PROBER_ENV) != NULL) + (getenv(SIGNER_ENV) != NULL) > 1) {
		fprintf(stderr, "portcullis: %s, %s, %s and %s are internal "
		    "and exclusive\n", WORKER_ENV, ACME_ENV, PROBER_ENV,
		    SIGNER_ENV);
		return 1;
	}
	if (getenv(SIGNER_ENV) != NULL)
		signer_main();
	if (getenv(ACME_ENV) != NULL)
		acme_main();
	if (getenv(PROBER_ENV) != NULL)
		prober_main();
	if (getenv(WORKER_ENV) != NULL)
		return worker_main(&handlers);
	if (argc >= 2 && strcmp(argv[1], "ctl") == 0)
		return ctl_main(argc - 1, argv + 1);

	while ((ch = getopt_long(argc, argv, "c:Vh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case OPT_VALIDATE:
			validate = true;
			break;
		case OPT_WILDCARD:
			opts.allow_wildcard_bind = true;
			break;
		case 'V':
			printf("portcullis %s\n", PACKAGE_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 1;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 1;
	}
	/* Reloads re-read it after the master has moved to "/". */
	if ((abspath = absolute_path(path)) == NULL) {
		perror("portcullis: getcwd");
		return 1;
	}
	rc = config_load(abspath, &opts, &cfg, &errs);
	free(abspath);
	for (i = 0; i < errs.n; i++)
		fprintf(stderr, "%s\n", errs.msgs[i]);
	config_errors_free(&errs);
	if (rc == -1)
		return 1;
	if (validate) {
		printf("configuration OK\n");
		config_free(cfg);
		return 0;
	}
	return master_main(cfg, &opts);
}
