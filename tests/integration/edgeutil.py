"""Helpers of the issue 18 tests of allow/deny and the header options:
--validate of a site with some lines added, and a reload that must work."""

import subprocess

from conftest import BINARY


def validate_site(p, site_body, marker='site "localhost" {'):
    """Put site_body first in the site (marker), run --validate: the
    result, and the line site_body starts on."""
    text = p.conf_path.read_text()
    assert marker in text
    p.conf_path.write_text(text.replace(marker, marker + "\n" + site_body,
                                        1))
    r = subprocess.run([str(BINARY), "--validate", "-c", str(p.conf_path)],
                       capture_output=True, text=True, timeout=30)
    line = p.conf_path.read_text().splitlines().index(
        site_body.splitlines()[0]) + 1
    return r, line


def refused_at(p, site_body, words, offset=0):
    """--validate refuses site_body (see validate_site) with an error on
    its first line (plus offset) that says each of words."""
    r, line = validate_site(p, site_body)
    line += offset
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert f"{p.conf_path}:{line}:" in r.stderr, (line, r.stderr)
    for w in words:
        assert w in r.stderr, (w, r.stderr)


def reload_ok(p):
    """Write p's settings and reload; the reload must succeed."""
    p.write_config()
    rc, reply = p.ctl("reload")
    assert rc == 0 and reply["status"] == "ok", reply
