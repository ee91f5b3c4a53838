# SPDX-License-Identifier: MIT
"""The status page, /status.json and `spoolgate status` (issue 18): is mail
flowing, and if not, why, at a glance; rendered in a real browser."""
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import jsonschema

from conftest import BIN, PASSWORD, USER, send, upstream_config, wait_for
from test_observability import get, metrics_settings, metrics_url

SCHEMA = Path(__file__).resolve().parents[2] / "daemon" / "src" / "status" / "status.schema.json"


def chromium(args, workdir):
    profile = workdir / "chromium-status-profile"
    return subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                           "--disable-background-networking", "--disable-component-update", "--disable-sync",
                           "--disable-default-apps", "--no-proxy-server", f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=120)


def test_the_status_page_in_a_browser_says_what_status_json_says(daemon_factory, sink_factory, pki, workdir):
    """Delivered, deferred and failed mail behind one upstream (the failure's
    report delivered too). Chromium (headless) loads / from the
    running daemon: the DOM shows the figures /status.json reports, and a
    screenshot is taken (the README shows it). status.json follows its
    schema; no sender address, message content or secret is in either; the
    page runs no script and loads nothing else (its CSP says so)."""
    sink = sink_factory(tls="implicit", user=USER, password=PASSWORD)
    up = upstream_config(sink, pki, workdir)
    settings = metrics_settings([up])
    settings["notify_thresholds"] = {"queue_age": "1s"}  # the deferred message makes an alert
    d = daemon_factory(settings)
    send(d, rcpts=("ok@example.com",), body=b"Subject: secret-subject\r\n\r\nsecret body\r\n", sender="printer@lan")
    send(d, rcpts=("busy+451@example.com",), sender="printer@lan")
    send(d, rcpts=("gone+550@example.com",), sender="printer@lan")
    sink.wait_messages(1)
    wait_for(lambda: "event=failed" in d.log() and "event=deferred" in d.log(), what="a failure and a deferral")
    # Only the deferred message left (the failure's report has gone out).
    sink.wait_messages(2)
    wait_for(lambda: json.loads(get(d, "/status.json")[2])["queue"]["messages"] == 1, what="one message queued")
    wait_for(lambda: json.loads(get(d, "/status.json")[2])["alerts"], what="the stale queue's alert")
    status, headers, text = get(d, "/status.json")
    assert status == 200 and headers["Content-Type"] == "application/json"
    doc = json.loads(text)
    jsonschema.validate(doc, json.loads(SCHEMA.read_text()))
    assert doc["queue"]["messages"] == 1 and doc["queue"]["oldest"][0]["attempts"] >= 1
    assert "451" in doc["queue"]["oldest"][0]["last_error"]
    assert doc["totals"]["delivered"] >= 1 and doc["totals"]["failed"] == 1
    assert doc["hours"][-1]["delivered"] >= 1 and doc["hours"][-1]["failed"] == 1
    assert [u["state"] for u in doc["upstreams"]] == ["ok"]
    assert doc["devices"][0]["name"] == "127.0.0.1" and doc["devices"][0]["messages"] >= 3
    status, headers, page = get(d, "/")
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    for body in (text, page):
        assert "printer@lan" not in body and "secret" not in body and PASSWORD not in body
    assert "<script" not in page.lower()

    url = metrics_url(d, "/")
    dom = chromium(["--dump-dom", url], workdir).stdout
    doc = json.loads(get(d, "/status.json")[2])
    day = {k: sum(h[k] for h in doc["hours"]) for k in ("delivered", "deferred", "failed")}
    assert f'<span id="queue-messages">{doc["queue"]["messages"]}</span>' in dom, dom
    assert f'<span id="day-delivered">{day["delivered"]}</span>' in dom
    assert f'<span id="day-failed">{day["failed"]}</span>' in dom
    assert f'data-id="{doc["queue"]["oldest"][0]["id"]}"' in dom
    assert re.search(r'data-upstream="[^"]+"><td>[^<]+</td><td class="state state-ok">ok</td>', dom), dom
    assert 'data-device="127.0.0.1"' in dom and 'data-flowing="true"' in dom
    assert [(a["event"], a["key"]) for a in doc["alerts"]] == [("queue_stale", "queue")]
    assert 'data-alert="queue_stale" data-key="queue"' in dom
    shot = workdir / "status-page.png"
    r = chromium([f"--screenshot={shot}", "--window-size=1100,860", "--hide-scrollbars", url], workdir)
    assert shot.exists() and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", r.stderr
    if os.environ.get("SG_STATUS_SCREENSHOT"):  # where to keep it (the README's picture)
        shutil.copy(shot, os.environ["SG_STATUS_SCREENSHOT"])

    # The same for people in a terminal.
    out = subprocess.run([BIN, "status", "-c", str(d.config)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("mail is flowing: ready")
    assert re.search(r"^queue: 1 message\(s\), \d+ bytes, oldest \d+s$", out.stdout, re.M), out.stdout
    assert "device 127.0.0.1: 3 message(s)" in out.stdout
    assert re.search(r"^ALERT queue_stale: the oldest queued message waits since \S+ \(for \d+s\)$", out.stdout,
                     re.M), out.stdout
    js = subprocess.run([BIN, "status", "--json", "-c", str(d.config)], capture_output=True, text=True, timeout=30)
    jsonschema.validate(json.loads(js.stdout), json.loads(SCHEMA.read_text()))
    d.stop()
    gone = subprocess.run([BIN, "status", "-c", str(d.config)], capture_output=True, text=True, timeout=30)
    assert gone.returncode == 1 and "no daemon answers" in gone.stderr


def test_a_device_that_goes_silent_is_a_missed_heartbeat(daemon_factory, sink_factory, pki, workdir):
    """expect: the UPS sends at least every 2 s here (a day in real life).
    Silent for longer: missed in /status.json, the page, the metrics and
    `spoolgate health`'s line (which still exits 0: a silent device is news,
    not a sick relay); its next message ends it."""
    sink = sink_factory(tls="implicit", user=USER, password=PASSWORD)
    settings = metrics_settings([upstream_config(sink, pki, workdir)])
    settings["expect"] = [{"sender": "UPS@lan.example", "every": "2s"}, {"device": "nas", "every": "1d"}]
    d = daemon_factory(settings)

    def beats():
        return {h["name"]: h for h in json.loads(get(d, "/status.json")[2])["heartbeats"]}

    assert beats()["nas"] == {"name": "nas", "every_s": 86400, "last": 0, "missed": False}
    send(d, rcpts=("ops@example.com",), sender="ups@lan.example")
    first = beats()["ups@lan.example"]["last"]
    assert first > 0
    wait_for(lambda: beats()["ups@lan.example"]["missed"], timeout=15, what="the heartbeat missed")
    metrics = get(d, "/metrics")[2]
    assert 'spoolgate_heartbeat_missed{expect="ups@lan.example"} 1' in metrics
    assert 'spoolgate_heartbeat_missed{expect="nas"} 0' in metrics
    h = subprocess.run([BIN, "health", "-c", str(d.config)], capture_output=True, text=True, timeout=30)
    assert h.returncode == 0 and "heartbeat missed: ups@lan.example (expected every 2s, last" in h.stdout, h.stdout
    assert 'data-heartbeat="ups@lan.example"' in get(d, "/")[2]
    assert "heartbeat ups@lan.example: MISSED" in subprocess.run(
        [BIN, "status", "-c", str(d.config)], capture_output=True, text=True, timeout=30).stdout
    send(d, rcpts=("ops@example.com",), sender="ups@lan.example")
    wait_for(lambda: beats()["ups@lan.example"]["last"] > first, what="the next message recorded")
    wait_for(lambda: not beats()["ups@lan.example"]["missed"], what="the heartbeat back")
    d.stop()
