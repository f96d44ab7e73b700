/*
 * master.h - the privileged master process.
 *
 * It binds every socket, creates the shared segment, starts the workers
 * (fork, then exec in worker mode), sheds its capabilities and from then on
 * only supervises: it respawns workers with backoff, reloads the
 * configuration on SIGHUP or an admin "reload", reopens the log on SIGUSR1,
 * drains on SIGTERM/SIGINT and talks to systemd.  It never reads a byte
 * from a client.
 */
#ifndef PORTCULLIS_MASTER_H
#define PORTCULLIS_MASTER_H

#include "config.h"

/* Seconds a worker has to apply a new generation before it is restarted. */
#define MASTER_ACK_TIMEOUT	10.0
/* A worker that lived this long before dying is respawned at once. */
#define MASTER_HEALTHY_SECS	10.0
#define MASTER_BACKOFF_MIN	0.1
#define MASTER_BACKOFF_MAX	30.0
/* Control messages read from one worker per loop iteration. */
#define MASTER_REPORT_BATCH	32
/* The least space reserved for each config slot. */
#define MASTER_SLOT_MIN		(16u * 1024 * 1024)

/* Takes ownership of cfg.  Returns the process exit status. */
int	 master_main(struct config *cfg, const struct config_opts *opts);

/*
 * The wait before a worker's next respawn, in seconds, when the last one
 * was prev (0: none): doubled, at least MASTER_BACKOFF_MIN, at most
 * MASTER_BACKOFF_MAX, so that a crash loop cannot spin.  Pure.
 */
double	 master_backoff(double prev);

#endif /* PORTCULLIS_MASTER_H */
