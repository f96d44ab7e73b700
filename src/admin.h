/*
 * admin.h - the admin socket, served by the master.
 *
 * A Unix stream socket (mode 0600).  A client sends one command line
 * ("status", "reload", "renew [NAME]" or "rotate-ticket-keys",
 * newline-terminated) and gets one line of JSON back,
 * then the connection is closed.  A line longer than ADMIN_LINE_MAX or a
 * client that sends nothing for ADMIN_TIMEOUT seconds is dropped; an unknown
 * command gets {"status":"error",...}.
 */
#ifndef PORTCULLIS_ADMIN_H
#define PORTCULLIS_ADMIN_H

#include <stddef.h>

#include <ev.h>

#define ADMIN_LINE_MAX		256
#define ADMIN_TIMEOUT		5.0
#define ADMIN_MAX_CLIENTS	16

enum admin_cmd {
	ADMIN_CMD_INVALID = 0,
	ADMIN_CMD_STATUS,
	ADMIN_CMD_RELOAD,
	ADMIN_CMD_RENEW,	/* "renew" or "renew NAME" */
	ADMIN_CMD_ROTATE,	/* "rotate-ticket-keys" (issue 19) */
};

struct admin;
struct admin_client;

/* Called once per command; the handler must admin_reply() eventually. */
typedef void (*admin_handler)(void *arg, struct admin_client *c,
    enum admin_cmd cmd);

/*
 * The command in line[0..len) (no newline; a trailing CR and surrounding
 * blanks are ignored).  Only "renew" takes an argument: one word of
 * printable characters after blanks, at most ADMIN_ARG_MAX bytes; with
 * arg non-NULL, *arg and *arglen give it (length 0: none).  Pure.
 */
#define ADMIN_ARG_MAX		253
enum admin_cmd admin_parse(const char *line, size_t len, const char **arg,
	    size_t *arglen);

/* Bind path (replacing a stale socket, never a live one).  NULL on error. */
struct admin *admin_open(const char *path);

/* Start serving on loop. */
void	 admin_start(struct admin *a, struct ev_loop *loop, admin_handler h,
	    void *arg);

/* The argument of the client's command, NUL-terminated ("" if none). */
const char *admin_client_arg(const struct admin_client *c);
/* Send one JSON line (without newline) and drop the client. */
void	 admin_reply(struct admin_client *c, const char *json);

/* {"status":"error","message":"..."} with the message escaped. */
void	 admin_reply_error(struct admin_client *c, const char *message);

/* Stop serving, drop every client, remove the socket file. */
void	 admin_close(struct admin *a);

#endif /* PORTCULLIS_ADMIN_H */
