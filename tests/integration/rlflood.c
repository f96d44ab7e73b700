/*
 * rlflood.c - many clients, each from an address of its own, for the
 * rate-limit table test (test_ratelimit_flood.py).
 *
 *   rlflood DEST PORT COUNT THREADS HOST [FIRST]
 *
 * Connection i (FIRST <= i < FIRST + COUNT) comes from 2001:db8:X:Y::1
 * where X:Y is i in two 16-bit groups, so every connection is its own
 * IPv6 /64 (the caller routes 2001:db8::/32 to the loopback interface as
 * local).  Each one resumes one TLS 1.2 session (a ticket: no key
 * exchange, so a connection costs little), sends one GET for HOST with
 * "Connection: close" and reads the answer to its end.  Prints one line of
 * JSON: {"connections":N,"resumed":N,"errors":N,"seconds":S,
 * "statuses":{"404":N,...}}.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>

#ifndef IPV6_FREEBIND
#define IPV6_FREEBIND	78
#endif

#define PRIORITY	"NORMAL:-VERS-ALL:+VERS-TLS1.2"

static struct sockaddr_in6	 dest;
static const char		*host;
static gnutls_certificate_credentials_t creds;
static gnutls_datum_t		 ticket;
static unsigned long		 first, count;
static unsigned			 nthreads;
static _Atomic unsigned long	 next, resumed, errors;
static _Atomic unsigned long	 statuses[600];

static int
dial(unsigned long i)
{
	struct sockaddr_in6 src;
	int fd, one = 1;

	memset(&src, 0, sizeof(src));
	src.sin6_family = AF_INET6;
	inet_pton(AF_INET6, "2001:db8::1", &src.sin6_addr);
	src.sin6_addr.s6_addr[4] = (unsigned char)(i >> 24);
	src.sin6_addr.s6_addr[5] = (unsigned char)(i >> 16);
	src.sin6_addr.s6_addr[6] = (unsigned char)(i >> 8);
	src.sin6_addr.s6_addr[7] = (unsigned char)i;
	if ((fd = socket(AF_INET6, SOCK_STREAM, 0)) == -1)
		return -1;
	/* Small writes back to back: no waiting for delayed ACKs. */
	if (setsockopt(fd, IPPROTO_IPV6, IPV6_FREEBIND, &one,
	    sizeof(one)) == -1 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == -1 ||
	    bind(fd, (struct sockaddr *)&src, sizeof(src)) == -1 ||
	    connect(fd, (struct sockaddr *)&dest, sizeof(dest)) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

/* One connection: the status of its response, or -1. */
static int
one(unsigned long i, gnutls_datum_t *save)
{
	gnutls_session_t s;
	char req[512], buf[4096];
	int fd, rc, status = -1, n, len = 0;

	if ((fd = dial(i)) == -1)
		return -1;
	if (gnutls_init(&s, GNUTLS_CLIENT) < 0) {
		close(fd);
		return -1;
	}
	gnutls_priority_set_direct(s, PRIORITY, NULL);
	gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, creds);
	gnutls_server_name_set(s, GNUTLS_NAME_DNS, "localhost", 9);
	if (ticket.size > 0)
		gnutls_session_set_data(s, ticket.data, ticket.size);
	gnutls_transport_set_int(s, fd);
	do
		rc = gnutls_handshake(s);
	while (rc < 0 && !gnutls_error_is_fatal(rc));
	if (rc < 0)
		goto done;
	if (gnutls_session_is_resumed(s))
		atomic_fetch_add(&resumed, 1);
	if (save != NULL)
		gnutls_session_get_data2(s, save);
	n = snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nHost: %s\r\n"
	    "Connection: close\r\n\r\n", host);
	if (gnutls_record_send(s, req, (size_t)n) != n)
		goto done;
	while (len < (int)sizeof(buf) - 1) {
		n = (int)gnutls_record_recv(s, buf + len,
		    sizeof(buf) - 1 - (size_t)len);
		if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
			continue;
		if (n <= 0)
			break;
		len += n;
	}
	buf[len] = '\0';
	if (len >= 12 && memcmp(buf, "HTTP/1.1 ", 9) == 0 &&
	    buf[9] >= '1' && buf[9] <= '5' && buf[10] >= '0' &&
	    buf[10] <= '9' && buf[11] >= '0' && buf[11] <= '9')
		status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 +
		    (buf[11] - '0');
done:
	gnutls_deinit(s);
	close(fd);
	return status >= 100 && status < 600 ? status : -1;
}

static void *
worker(void *arg)
{
	unsigned long i;
	int st;

	(void)arg;
	while ((i = atomic_fetch_add(&next, 1)) < count) {
		st = one(first + i, NULL);
		if (st < 0)
			atomic_fetch_add(&errors, 1);
		else
			atomic_fetch_add(&statuses[st], 1);
	}
	return NULL;
}

int
main(int argc, char **argv)
{
	pthread_t th[64];
	struct timespec a, b;
	unsigned t;
	int st, sep = 0;

	if (argc < 6) {
		fprintf(stderr, "usage: rlflood DEST PORT COUNT THREADS HOST "
		    "[FIRST]\n");
		return 2;
	}
	memset(&dest, 0, sizeof(dest));
	dest.sin6_family = AF_INET6;
	dest.sin6_port = htons((uint16_t)strtoul(argv[2], NULL, 10));
	if (inet_pton(AF_INET6, argv[1], &dest.sin6_addr) != 1)
		return 2;
	count = strtoul(argv[3], NULL, 10);
	nthreads = (unsigned)strtoul(argv[4], NULL, 10);
	host = argv[5];
	first = argc > 6 ? strtoul(argv[6], NULL, 10) : 0;
	if (nthreads < 1 || nthreads > 64 || count == 0)
		return 2;
	gnutls_global_init();
	gnutls_certificate_allocate_credentials(&creds);
	clock_gettime(CLOCK_MONOTONIC, &a);
	/* The first connection makes the session the others resume. */
	st = one(first, &ticket);
	if (st < 0 || ticket.size == 0) {
		fprintf(stderr, "rlflood: first connection failed\n");
		return 1;
	}
	atomic_fetch_add(&statuses[st], 1);
	next = 1;
	for (t = 0; t < nthreads; t++)
		pthread_create(&th[t], NULL, worker, NULL);
	for (t = 0; t < nthreads; t++)
		pthread_join(th[t], NULL);
	clock_gettime(CLOCK_MONOTONIC, &b);
	printf("{\"connections\":%lu,\"resumed\":%lu,\"errors\":%lu,"
	    "\"seconds\":%.3f,\"statuses\":{", count, atomic_load(&resumed),
	    atomic_load(&errors), (double)(b.tv_sec - a.tv_sec) +
	    (double)(b.tv_nsec - a.tv_nsec) / 1e9);
	for (st = 0; st < 600; st++)
		if (statuses[st] > 0)
			printf("%s\"%d\":%lu", sep++ ? "," : "", st,
			    atomic_load(&statuses[st]));
	printf("}}\n");
	gnutls_free(ticket.data);
	gnutls_certificate_free_credentials(creds);
	gnutls_global_deinit();
	return 0;
}
