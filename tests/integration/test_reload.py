"""Reload: SIGHUP and admin reload, bad files, static settings, acks."""

import os
import re
import shutil
import signal
import time

import pytest

from conftest import (http_get, https_get, parse_response, status_of,
                      tls_exchange, wait_until)


def test_admin_reload_publishes_a_new_generation(proxy):
    rc, st = proxy.ctl("status")
    assert rc == 0 and st["generation"] == 1 and st["sites"] == 2
    proxy.listener["site"].append(("new.test", {"upstream": "127.0.0.1:9"}))
    proxy.write_config()
    rc, reply = proxy.ctl("reload")
    assert rc == 0
    assert reply == {"status": "ok", "generation": 2, "workers": 2}
    rc, st = proxy.ctl("status")
    assert st["generation"] == 2 and st["sites"] == 3
    # Every worker acknowledged generation 2 before the reply.
    assert proxy.log().count("generation 2 live") == 2


def test_sighup_reloads(proxy):
    proxy.listener["site"].pop()
    proxy.write_config()
    proxy.send_signal(signal.SIGHUP)
    proxy.wait_log(r"generation 2 is live on 2 workers")
    rc, st = proxy.ctl("status")
    assert st["generation"] == 2 and st["sites"] == 1


def test_invalid_file_changes_nothing(proxy):
    good = proxy.conf_path.read_text()
    proxy.conf_path.write_text(good.replace('upstream = "127.0.0.1:9"',
                                            'upstream = "nonsense"', 1))
    rc, reply = proxy.ctl("reload")
    assert rc == 1
    assert reply["status"] == "error"
    assert re.match(rf"{re.escape(str(proxy.conf_path))}:\d+: upstream "
                    r'"nonsense" is not host:port', reply["message"])
    assert set(reply) == {"status", "message"}
    rc, st = proxy.ctl("status")
    assert st["generation"] == 1 and st["sites"] == 2
    assert "reload failed, generation 1 stays live" in proxy.log()
    # Still serving, and a fixed file reloads fine afterwards.
    assert status_of(http_get(proxy.health_port)) == 200
    proxy.conf_path.write_text(good)
    rc, reply = proxy.ctl("reload")
    assert rc == 0 and reply["generation"] == 2


def test_syntax_error_reported(proxy):
    proxy.conf_path.write_text(proxy.conf_path.read_text() + "listener {\n")
    rc, reply = proxy.ctl("reload")
    assert rc == 1 and reply["status"] == "error"
    assert str(proxy.conf_path) in reply["message"]


def test_several_errors_are_joined(proxy):
    text = proxy.conf_path.read_text()
    text = text.replace("shutdown-timeout = 10", "shutdown-timeout = -5")
    text = text.replace('"*.example.test"', '"bad_host"')
    proxy.conf_path.write_text(text)
    rc, reply = proxy.ctl("reload")
    assert rc == 1
    parts = reply["message"].split("; ")
    assert len(parts) == 2, reply
    assert all(re.match(rf"{re.escape(str(proxy.conf_path))}:\d+: ", p)
               for p in parts)


def test_missing_file(proxy):
    os.rename(proxy.conf_path, str(proxy.conf_path) + ".away")
    rc, reply = proxy.ctl("reload")
    assert rc == 1
    assert "cannot read configuration: No such file" in reply["message"]
    assert proxy.ctl("status")[1]["generation"] == 1


@pytest.mark.parametrize("setting,value,name", [
    ("workers", 3, "workers"),
    ("user", "daemon", "user"),
    ("health-check-port", 1, "health-check-port"),
    ("shutdown-timeout", 11, "shutdown-timeout"),
    ("max-connections", 100, "max-connections"),
    ("allow-wildcard-bind", True, "allow-wildcard-bind"),
])
def test_static_setting_change_is_refused(proxy, setting, value, name):
    if setting == "health-check-port":
        from conftest import free_port
        value = free_port()
    proxy.settings[setting] = value
    proxy.write_config()
    rc, reply = proxy.ctl("reload")
    assert rc == 1
    assert f"'{name}' changed, which needs a restart" in reply["message"]
    assert proxy.ctl("status")[1]["generation"] == 1


def test_listener_change_is_refused(proxy):
    from conftest import free_port
    proxy.listener["https-port"] = free_port()
    proxy.write_config()
    rc, reply = proxy.ctl("reload")
    assert rc == 1 and "'listener 1 https-port' changed" in reply["message"]
    proxy.listener["https-port"] = proxy.https_port
    proxy.settings["logging"]["level"] = "info"
    proxy.write_config()
    rc, reply = proxy.ctl("reload")
    assert rc == 1 and "'logging' changed" in reply["message"]


def post(port, n):
    """POST n bytes; the status of the answer."""
    raw = (b"POST /up HTTP/1.1\r\nHost: localhost\r\nConnection: close"
           b"\r\nContent-Length: %d\r\n\r\n" % n) + b"x" * n
    return parse_response(tls_exchange(port, raw))[0]


def test_dynamic_settings_reload(proxied):
    """The rate limit and the body limit a reload sets are the ones the
    workers apply at once: the new burst is what answers 429 (with the
    new rate's Retry-After), the new body limit what answers 413."""
    p, up = proxied
    # The defaults (burst 20, 100 MiB bodies) let all of these through.
    assert [https_get(p.https_port)[0] for _ in range(4)] == [200] * 4
    assert post(p.https_port, 2000) == 200
    p.settings["rate-limit"] = {"requests-per-second": 0.1, "burst": 3}
    p.settings["body"] = {"limit-bytes": 1000}
    p.write_config()
    rc, reply = p.ctl("reload")
    assert rc == 0 and reply["generation"] == 2, reply
    # Admission counts the request before it looks at its body: the 413
    # takes one of the three tokens.
    assert post(p.https_port, 2000) == 413
    assert post(p.https_port, 1000) == 200
    assert https_get(p.https_port)[0] == 200
    status, fields, _, _ = https_get(p.https_port)
    assert status == 429, status
    # One token in 10 s; the old rate (10 a second) would say 1.
    assert 2 <= int(fields["retry-after"][0]) <= 10, fields
    assert len(up.requests) == 4 + 1 + 2, [q.target for q in up.requests]


def test_certificate_reread_on_reload(proxy, certs):
    cert, key = certs.get("localhost")
    new_cert = proxy.dir / "new.crt"
    new_key = proxy.dir / "new.key"
    shutil.copy(cert, new_cert)
    shutil.copy(key, new_key)
    proxy.listener["tls"] = {"cert": str(new_cert), "key": str(new_key)}
    proxy.write_config()
    assert proxy.ctl("reload")[0] == 0
    # A key that no longer matches the certificate on disk is caught.
    other_cert, other_key = certs.get("other.test")
    shutil.copy(other_key, new_key)
    rc, reply = proxy.ctl("reload")
    assert rc == 1
    assert "private key does not match the certificate" in reply["message"]
    # An unreadable (garbage) certificate too.
    shutil.copy(key, new_key)
    new_cert.write_text("-----BEGIN CERTIFICATE-----\ngarbage\n")
    rc, reply = proxy.ctl("reload")
    assert rc == 1 and str(new_cert) in reply["message"]
    assert proxy.ctl("status")[1]["generation"] == 2


def test_reload_while_a_worker_is_stopped(make_proxy):
    """A worker that cannot ack is replaced, and the reply still comes."""
    p = make_proxy(workers=2).start()
    w = p.wait_workers(2)[0]
    os.kill(w, signal.SIGSTOP)
    try:
        start = time.monotonic()
        rc, reply = p.ctl("reload")
        took = time.monotonic() - start
    finally:
        try:
            os.kill(w, signal.SIGCONT)
        except ProcessLookupError:
            pass
    assert rc == 0 and reply["generation"] == 2
    assert 9 < took < 20
    assert reply["workers"] == 1
    assert re.search(rf"worker \d \(pid {w}\): did not apply generation 2",
                     p.log())
    wait_until(lambda: p.ctl("status")[1]["workers"] == 2, what="respawn")


def test_many_reloads_in_a_row(proxy):
    for i in range(20):
        rc, reply = proxy.ctl("reload")
        assert rc == 0 and reply["generation"] == i + 2
    assert status_of(http_get(proxy.health_port)) == 200


def test_concurrent_reload_requests_all_answered(proxy):
    import subprocess
    from conftest import BINARY
    procs = [subprocess.Popen([str(BINARY), "ctl", "--socket",
                               str(proxy.admin_path), "reload"],
                              stdout=subprocess.PIPE, text=True)
             for _ in range(6)]
    outs = [p.communicate(timeout=60)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    rc, st = proxy.ctl("status")
    # Six requests may be served by fewer reloads, but each got an answer.
    assert 2 <= st["generation"] <= 7


def test_respawned_worker_gets_latest_generation(proxy):
    assert proxy.ctl("reload")[1]["generation"] == 2
    victim = proxy.wait_workers(2)[0]
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: proxy.ctl("status")[1]["workers"] == 2 and
               victim not in proxy.workers(), what="respawn")
    proxy.wait_log(r"serving generation 2")
    rc, reply = proxy.ctl("reload")
    assert reply == {"status": "ok", "generation": 3, "workers": 2}
