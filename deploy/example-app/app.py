"""The example application behind portcullis in deploy/docker-compose.yml.

GET /health      "ok"
GET /slow?s=N    "hello from the example app ..." after N seconds (at most
                 60): a request in flight while "docker stop" drains the proxy
GET /anything    "hello from the example app (host H, path P)"
"""
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        url = urlsplit(self.path)
        if url.path == "/health":
            body = "ok\n"
        else:
            if url.path == "/slow":
                try:
                    secs = float(parse_qs(url.query).get("s", ["5"])[0])
                except ValueError:
                    secs = 5.0
                time.sleep(max(0.0, min(secs, 60.0)))
            body = "hello from the example app (host %s, path %s)\n" % (
                self.headers.get("Host", "-"), self.path)
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


if __name__ == "__main__":
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer(("0.0.0.0", 8000), Handler).serve_forever()
