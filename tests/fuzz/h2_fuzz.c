/*
 * h2_fuzz.c - raw bytes from an HTTP/2 client, after the connection
 * preface, into a real nghttp2 server session (HTTP messaging checks on,
 * as in h2conn.c) wired to the request translation (h2req.c).  Every request
 * the translation accepts must re-parse with our strict HTTP/1.1 parser as
 * exactly one identical request: h2req_check() failing is a crash here.
 * The session also answers (SETTINGS ACK, RST_STREAM, GOAWAY ...), so the
 * frames it writes are exercised too.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nghttp2/nghttp2.h>

#include "buf.h"
#include "h2req.h"
#include "http1.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_STREAMS 16

struct fz {
	struct h2req	 req[MAX_STREAMS];
	int32_t		 id[MAX_STREAMS];
	struct buf	*scratch;
};

static struct h2req *
req_of(struct fz *z, int32_t id)
{
	size_t i;

	for (i = 0; i < MAX_STREAMS; i++)
		if (z->id[i] == id)
			return &z->req[i];
	return NULL;
}

static int
on_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
	struct fz *z = ud;
	size_t i;

	(void)s;
	if (f->hd.type != NGHTTP2_HEADERS ||
	    f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	for (i = 0; i < MAX_STREAMS; i++)
		if (z->id[i] == 0) {
			z->id[i] = f->hd.stream_id;
			h2req_init(&z->req[i], 16384, 100);
			return 0;
		}
	return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
}

static int
on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
    size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
	struct h2req *r;

	(void)s;
	(void)flags;
	if (f->hd.type == NGHTTP2_HEADERS &&
	    f->headers.cat == NGHTTP2_HCAT_REQUEST &&
	    (r = req_of(ud, f->hd.stream_id)) != NULL)
		(void)h2req_field(r, (const char *)name, nlen,
		    (const char *)value, vlen);
	return 0;
}

static void
dump_slice(const char *what, struct http1_slice v)
{
	size_t i;

	fprintf(stderr, "%s: \"", what);
	for (i = 0; i < v.len; i++)
		fprintf(stderr, (unsigned char)v.p[i] < 0x20 ||
		    (unsigned char)v.p[i] >= 0x7f ? "\\x%02x" : "%c",
		    (unsigned char)v.p[i]);
	fprintf(stderr, "\"\n");
}

/* What failed the check, before the crash. */
static void
dump(const struct headers_request *pr)
{
	size_t i;

	dump_slice("method", pr->method);
	dump_slice("path", pr->path);
	dump_slice("host", pr->host);
	fprintf(stderr, "framing %d length %llu\n", (int)pr->framing,
	    (unsigned long long)pr->content_length);
	for (i = 0; i < pr->nfields; i++) {
		dump_slice("name", pr->fields[i].name);
		dump_slice("value", pr->fields[i].value);
	}
}

static int
on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
	struct fz *z = ud;
	struct headers_request pr;
	struct h2req *r;

	(void)s;
	if (f->hd.type != NGHTTP2_HEADERS ||
	    f->headers.cat != NGHTTP2_HCAT_REQUEST ||
	    (r = req_of(z, f->hd.stream_id)) == NULL)
		return 0;
	if (h2req_wants_key(r))
		h2req_set_key(r, "dGhlIHNhbXBsZSBub25jZQ==");
	if (h2req_finish(r, (f->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0,
	    &pr) != 0 || pr.method_id == HTTP1_METHOD_CONNECT)
		return 0;
	pr.client_ip = "192.0.2.1";
	pr.tls = true;
	if (h2req_check(&pr, z->scratch) != 0) {
		dump(&pr);
		abort();
	}
	return 0;
}

static int
on_stream_close(nghttp2_session *s, int32_t id, uint32_t err, void *ud)
{
	struct fz *z = ud;
	size_t i;

	(void)s;
	(void)err;
	for (i = 0; i < MAX_STREAMS; i++)
		if (z->id[i] == id) {
			h2req_free(&z->req[i]);
			z->id[i] = 0;
		}
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char preface[] = NGHTTP2_CLIENT_MAGIC;
	nghttp2_session_callbacks *cb;
	nghttp2_session *s;
	nghttp2_option *opt;
	struct fz z;
	const uint8_t *out;
	size_t i;

	memset(&z, 0, sizeof(z));
	if ((z.scratch = buf_new(32768)) == NULL)
		return 0;
	nghttp2_session_callbacks_new(&cb);
	nghttp2_session_callbacks_set_on_begin_headers_callback(cb,
	    on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb,
	    on_frame_recv);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb,
	    on_stream_close);
	nghttp2_option_new(&opt);
	nghttp2_option_set_no_auto_window_update(opt, 1);
	nghttp2_session_server_new2(&s, cb, &z, opt);
	{
		nghttp2_settings_entry iv = {
		    NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL, 1 };

		nghttp2_submit_settings(s, NGHTTP2_FLAG_NONE, &iv, 1);
	}
	if (nghttp2_session_mem_recv(s, (const uint8_t *)preface,
	    sizeof(preface) - 1) >= 0 &&
	    nghttp2_session_mem_recv(s, data, size) >= 0)
		while (nghttp2_session_mem_send(s, &out) > 0)
			;
	nghttp2_session_del(s);
	nghttp2_option_del(opt);
	nghttp2_session_callbacks_del(cb);
	for (i = 0; i < MAX_STREAMS; i++)
		if (z.id[i] != 0)
			h2req_free(&z.req[i]);
	buf_free(z.scratch);
	return 0;
}
