"""Reload: SIGHUP and admin reload, bad files, static settings, acks."""

import os
import re
import shutil
import signal
import time

import pytest

from conftest import http_get, status_of, wait_until


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


def test_dynamic_settings_reload(proxy):
    proxy.settings["rate-limit"] = {"requests-per-second": 0.5, "burst": 3}
    proxy.settings["body"] = {"limit-bytes": 1000}
    proxy.write_config()
    rc, reply = proxy.ctl("reload")
    assert rc == 0, reply


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
