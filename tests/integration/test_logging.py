"""Logging: formats, levels, file vs stderr, SIGUSR1 reopen."""

import json
import os
import re
import signal

import pytest

from conftest import http_get, status_of, wait_until

TS = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"


def test_text_format(proxy):
    lines = proxy.log().splitlines()
    assert lines
    for line in lines:
        assert re.match(rf"^{TS} (ERROR|WARN|INFO|DEBUG) (\S+=(\S+|\"([^\"\\]|\\.)*\"))"
                        rf"( \S+=(\S+|\"([^\"\\]|\\.)*\"))*$", line), line
    assert re.search(rf'^{TS} INFO proc=master pid={proxy.pid} msg="ready: 2 '
                     r'workers serving generation 1"$', proxy.log(), re.M)
    assert re.search(r"INFO proc=worker worker=[01] pid=\d+ msg=\"serving "
                     r"generation 1\"", proxy.log())


def test_json_format(make_proxy):
    p = make_proxy()
    p.settings["logging"]["format"] = "json"
    p.write_config()
    p.start()
    lines = p.log().splitlines()
    assert lines
    for line in lines:
        obj = json.loads(line)
        assert re.fullmatch(TS, obj["time"])
        assert obj["level"] in ("error", "warn", "info", "debug")
        assert obj["proc"] in ("master", "worker", "signer")
        assert isinstance(obj["pid"], int)
    assert any(json.loads(l).get("msg", "").startswith("ready: 2 workers")
               for l in lines)


def test_level_filters(make_proxy):
    p = make_proxy()
    p.settings["logging"]["level"] = "warn"
    p.write_config()
    p.start()
    assert p.log() == ""
    http_get(p.health_port, "/nope")
    p.stop()
    assert all(" INFO " not in l and " DEBUG " not in l
               for l in p.log().splitlines())


def test_stderr_when_no_file(make_proxy):
    p = make_proxy()
    del p.settings["logging"]["file"]
    p.write_config()
    p.start()
    assert not p.log_path.exists()
    assert "ready: 2 workers" in p.stderr_path.read_text()


def test_sigusr1_reopens_for_master_and_workers(proxy):
    rotated = proxy.dir / "portcullis.log.1"
    os.rename(proxy.log_path, rotated)
    proxy.send_signal(signal.SIGUSR1)
    wait_until(lambda: proxy.log_path.exists(), what="new log file")
    proxy.wait_log(r"log file .* reopened")
    # Workers write to the new file too (a reload makes them log).
    assert proxy.ctl("reload")[0] == 0
    proxy.wait_log(r"proc=worker worker=0 .*generation 2 live")
    proxy.wait_log(r"proc=worker worker=1 .*generation 2 live")
    assert "generation 2" not in rotated.read_text()


def test_log_file_permissions(proxy):
    assert oct(os.stat(proxy.log_path).st_mode & 0o777) == "0o640"


def test_unwritable_log_file_fails_start(make_proxy):
    import subprocess
    from conftest import BINARY
    p = make_proxy()
    p.settings["logging"]["file"] = str(p.dir / "no" / "such" / "dir.log")
    p.write_config()
    r = subprocess.run([str(BINARY), "-c", str(p.conf_path)],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 1
    assert "cannot open log file" in r.stderr


def test_access_lines_can_be_turned_off(make_proxy, upstream):
    """logging { access = false } drops ACCESS lines (nginx's
    access_log off); RATE_LIMIT lines, which fail2ban needs, stay."""
    from conftest import https_get, point_sites_at
    p = make_proxy(workers=1, **{"rate-limit": {
        "requests-per-second": 0.1, "burst": 2}})
    p.settings["logging"]["access"] = False
    point_sites_at(p, upstream)
    p.start()
    statuses = [https_get(p.https_port, f"/a{i}")[0] for i in range(3)]
    assert statuses == [200, 200, 429], statuses
    p.wait_log(r"RATE_LIMIT client_ip=127\.0\.0\.1 host=localhost "
               r"path=/a2 status=429")
    assert " ACCESS " not in p.log()
    # And on by default.
    q = make_proxy(workers=1)
    point_sites_at(q, upstream)
    q.start()
    https_get(q.https_port, "/b")
    q.wait_log(r"ACCESS client_ip=127\.0\.0\.1 method=GET host=localhost "
               r"path=/b ")
