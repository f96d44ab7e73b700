"""A real, fast HTTP/1.1 upstream for load tests: Debian's nginx answering
every request from memory (`return 200`), on 127.0.0.1 and a free port,
as an unprivileged foreground process in the test's own directory.

    NginxUpstream(dir)                    # answers "ok\n"
    NginxUpstream(dir, body="b\n")        # answers that (which one it was)
    NginxUpstream(dir, port=p)            # on that port (a restart)
    NginxUpstream(dir, conf=f)            # nginx.conf is f(dir, port)
    up.kill()                             # SIGKILL, master and worker
    up.requests()                         # requests served (access log)
"""

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from conftest import free_port, wait_until

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

CONF = """\
daemon off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    log_format counted "$request";
    access_log {access};
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    keepalive_requests 1000000;
    server {{
        listen 127.0.0.1:{port};
        location / {{ return 200 "{body}"; }}
    }}
}}
"""


class NginxUpstream:
    def __init__(self, directory, body="ok\n", port=None, count=False,
                 conf=None):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.access = self.dir / "access.log"
        path = self.dir / "nginx.conf"
        if conf is not None:
            path.write_text(conf(self.dir, self.port))
        else:
            path.write_text(CONF.format(
                dir=self.dir, port=self.port,
                body=body.replace("\\", "\\\\").replace('"', '\\"')
                         .replace("\n", "\\n"),
                access=f"{self.access} counted" if count else "off"))
        conf = path
        # Its own process group: kill() takes the worker with the master.
        self.proc = subprocess.Popen(
            [NGINX, "-c", str(conf), "-e", str(self.dir / "error.log")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True)
        wait_until(self._up, what="nginx upstream listening")

    def _up(self):
        import socket
        assert self.proc.poll() is None, (self.dir / "error.log").read_text()
        try:
            socket.create_connection(("127.0.0.1", self.port), 0.2).close()
            return True
        except OSError:
            return False

    @property
    def addr(self):
        return f"127.0.0.1:{self.port}"

    def requests(self):
        """Requests served so far (count=True): access-log lines."""
        try:
            return self.access.read_text().splitlines()
        except FileNotFoundError:
            return []

    def kill(self):
        """Dies at once, every connection reset: as a crash."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self):
        # SIGTERM, nginx's fast shutdown: a graceful one (SIGQUIT) waits
        # out the proxy's pooled keep-alive connections, 10 s a test.
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
