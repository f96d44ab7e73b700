"""A real Prometheus (Debian's prometheus package) for the tests: started
on loopback, scraping one target every second, stopped afterwards.

    with prometheus(tmp_path, proxy.health_port) as port:
        reply = prom_query(port, "portcullis_requests_total")
"""

import contextlib
import json
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request

from conftest import free_port

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"


@contextlib.contextmanager
def prometheus(tmp_path, target_port):
    """Yield the port of a Prometheus scraping 127.0.0.1:target_port."""
    port = free_port()
    conf = tmp_path / "prometheus.yml"
    conf.write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
        "scrape_configs:\n  - job_name: portcullis\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{target_port}']\n")
    with open(tmp_path / "prometheus.log", "w") as log:
        prom = subprocess.Popen(
            [PROMETHEUS, f"--config.file={conf}",
             f"--storage.tsdb.path={tmp_path / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}"],
            stdout=log, stderr=subprocess.STDOUT)
        try:
            yield port
        finally:
            prom.terminate()
            prom.wait(timeout=30)


def prom_query(port, query):
    """The API's whole reply to an instant query, an error's included."""
    url = (f"http://127.0.0.1:{port}/api/v1/query?" +
           urllib.parse.urlencode({"query": query}))
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        return json.load(e)
