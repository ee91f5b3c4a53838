# SPDX-License-Identifier: MIT
"""Metrics, health and logs: what an operator watches, from the real binary."""
import base64
import json
import re
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import BIN, daemon_upstream_settings, upstream_config, wait_for
from conftest import PASSWORD, USER, send

PROMTOOL = Path(__file__).resolve().parents[2] / "build-tools" / "promtool"


def metrics_settings(upstreams, **extra):
    s = daemon_upstream_settings(upstreams, metrics={"listen": "127.0.0.1:0"})
    s.update(extra)
    return s


def metrics_url(d, path):
    addr = wait_for(lambda: re.findall(r"event=metrics_listening address=(\S+)", d.log()), what="metrics address")[0]
    return f"http://{addr}{path}"


def get(d, path, method="GET"):
    req = urllib.request.Request(metrics_url(d, path), method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


def samples(text):
    """{'name{labels}': value} for every sample line."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


def health(d, *args):
    r = subprocess.run([BIN, "health", "-c", str(d.config), *args], capture_output=True, text=True, timeout=30)
    return r.returncode, r.stdout.strip()


def test_metrics_count_what_happened_and_pass_promtool(daemon_factory, sink_factory, pki, workdir):
    sink = sink_factory(tls="implicit", user=USER, password=PASSWORD)
    up = upstream_config(sink, pki, workdir)
    d = daemon_factory(metrics_settings([up]))
    send(d, rcpts=("ok@example.com",))
    send(d, rcpts=("busy+451@example.com",))
    sink.wait_messages(1)
    # The daemon's own lines, not the sink's copy or the spool record: its
    # counters move in the step that logs them.
    wait_for(lambda: "event=delivered " in d.log() and "event=deferred " in d.log(), what="delivered and deferred")

    status, headers, text = get(d, "/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
    check = subprocess.run([str(PROMTOOL), "check", "metrics"], input=text, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    m = samples(text)
    name = up["url"]
    assert m["spoolgate_messages_received_total"] == 2
    assert m["spoolgate_messages_delivered_total"] == 1
    assert m["spoolgate_messages_deferred_total"] >= 1
    assert m["spoolgate_messages_failed_total"] == 0
    assert m["spoolgate_queue_messages"] == 1
    assert m["spoolgate_queue_bytes"] > 0
    assert m["spoolgate_queue_oldest_message_age_seconds"] >= 0
    assert m["spoolgate_spool_watermark_state"] == 0
    assert m["spoolgate_spool_writable"] == 1
    assert m["spoolgate_inbound_connections_total"] >= 2
    assert m["spoolgate_last_delivery_timestamp_seconds"] > 0
    assert m[f'spoolgate_upstream_connections_total{{upstream="{name}"}}'] >= 1
    assert m[f'spoolgate_upstream_tls_failures_total{{upstream="{name}"}}'] == 0
    assert m[f'spoolgate_upstream_auth_failures_total{{upstream="{name}"}}'] == 0
    assert m[f'spoolgate_upstream_last_success_timestamp_seconds{{upstream="{name}"}}'] > 0
    assert m[f'spoolgate_upstream_up{{upstream="{name}"}}'] == 1
    # The test PKI's leaves are valid for 90 days.
    assert 88 < m[f'spoolgate_upstream_certificate_expiry_seconds{{upstream="{name}"}}'] / 86400 < 91

    assert get(d, "/healthz")[0] == 200
    status, _, body = get(d, "/readyz")
    assert (status, body) == (200, "ok: ready; queue 1 message(s)\n")
    assert get(d, "/readyz", method="HEAD")[:1] == (200,)
    assert get(d, "/metrics", method="POST")[0] == 405
    assert get(d, "/nothing")[0] == 404
    assert health(d) == (0, "ok: ready; queue 1 message(s)")


@pytest.mark.parametrize("trouble", ["unreachable", "bad certificate", "wrong password"])
def test_upstream_trouble_shows_in_metrics_and_readiness(daemon_factory, sink_factory, pki, workdir, trouble):
    cert, key = pki.leaf("server" if trouble != "bad certificate" else "other-host",
                         **({} if trouble != "bad certificate" else dict(cn="x.example", dns=("x.example",), ips=())))
    sink = sink_factory(tls="implicit", cert=cert, key=key, user=USER, password=PASSWORD)
    up = upstream_config(sink, pki, workdir, password="wrong" if trouble == "wrong password" else PASSWORD)
    if trouble == "unreachable":
        sink.stop()  # nothing listens on that port any more
    d = daemon_factory(metrics_settings([up], metrics={"listen": "127.0.0.1:0", "unreachable_after": "1s"}))
    assert health(d)[0] == 0  # nothing has failed yet
    send(d)
    status, _, body = wait_for(lambda: (r := get(d, "/readyz"))[0] == 503 and r, what="readyz 503")
    if trouble == "wrong password":
        # Our account is refused: not ready at once, and it says why.
        assert body.startswith("fail: no upstream delivering: " + up["url"] + " misconfigured: authentication failed: 535"), body
    else:
        assert body.startswith("fail: no upstream reachable: " + up["url"] + " failing for"), body
    code, line = health(d)
    assert code == 1 and line.startswith("unhealthy: no upstream"), line
    assert health(d, "--live")[0] == 0
    assert get(d, "/healthz")[0] == 200
    m = samples(get(d, "/metrics")[2])
    name = up["url"]
    assert m[f'spoolgate_upstream_up{{upstream="{name}"}}'] in (0, 1)  # backoff may have run out meanwhile
    assert m[f'spoolgate_upstream_last_success_timestamp_seconds{{upstream="{name}"}}'] == 0
    # Counted for the trouble there is, and only for it (the retry backoff
    # is 1 s here, so a slow machine may have counted a second attempt).
    assert (m[f'spoolgate_upstream_tls_failures_total{{upstream="{name}"}}'] >= 1) == (trouble == "bad certificate")
    assert (m[f'spoolgate_upstream_auth_failures_total{{upstream="{name}"}}'] >= 1) == (trouble == "wrong password")
    assert m[f'spoolgate_upstream_misconfigured{{upstream="{name}"}}'] == (trouble == "wrong password")
    assert m["spoolgate_queue_messages"] == 1 and m["spoolgate_messages_delivered_total"] == 0


def test_health_without_a_daemon_says_so(daemon_factory):
    d = daemon_factory(start=False)
    code, line = health(d)
    assert code == 1 and line.startswith("unhealthy: no daemon answers on "), line


def test_metrics_listen_errors_are_clear(daemon_factory):
    r = subprocess.run([BIN, "check-config", "-c", "/dev/null"], capture_output=True, text=True,
                       env={"SPOOLGATE_METRICS_LISTEN": "localhost:9425", "PATH": "/usr/bin:/bin"})
    assert r.returncode == 1
    assert "metrics.listen" in r.stderr and "expected host:port" in r.stderr


@pytest.mark.parametrize("mech", ["plain", "login", "xoauth2"])
@pytest.mark.parametrize("fmt", ["text", "json"])
def test_logs_never_hold_a_secret(daemon_factory, sink_factory, pki, workdir, mech, fmt):
    secret = "Tr0ub4dor&3-" + mech
    sink = sink_factory(tls="implicit", user=USER, password=secret)
    up = upstream_config(sink, pki, workdir, password=secret, auth=mech)
    d = daemon_factory(daemon_upstream_settings([up], log={"level": "debug", "format": fmt}))
    send(d)
    [m] = sink.wait_messages(1)
    assert m["auth_user"] == USER
    assert any(e.startswith(f"AUTH {mech.upper()} {USER} ok") for e in sink.events())
    wait_for(lambda: "event=delivered" in d.log() or '"event":"delivered"' in d.log(), what="delivered log")
    d.stop()
    log = d.log()
    encodings = {secret, base64.b64encode(secret.encode()).decode(),
                 base64.b64encode(f"\0{USER}\0{secret}".encode()).decode(),
                 base64.b64encode(f"user={USER}\x01auth=Bearer {secret}\x01\x01".encode()).decode()}
    for s in encodings:
        assert s not in log, f"secret in the log as {s!r}"
    lines = [l for l in log.splitlines() if l.strip()]
    assert any("upstream_ready" in l for l in lines)
    if fmt == "json":
        records = [json.loads(l) for l in lines]  # every line is one JSON object
        about_messages = [r for r in records if r["event"] in ("queued", "delivered", "deferred", "failed")]
    else:
        records = [dict(re.findall(r'(\w+)=("[^"]*"|\S+)', l)) for l in lines]
        about_messages = [r for r in records if r.get("event") in ("queued", "delivered", "deferred", "failed")]
    assert about_messages and all(r.get("msg") for r in about_messages)


def raw_http(d, head: bytes, timeout=10):
    import socket
    addr = re.findall(r"event=metrics_listening address=(\S+)", d.log())[0]
    host, port = addr.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=timeout)
    s.sendall(head)
    out = b""
    try:
        while chunk := s.recv(65536):
            out += chunk
    except ConnectionResetError:
        pass
    s.close()
    return out.decode(errors="replace")


def test_metrics_answer_only_our_own_host_names(daemon_factory):
    """DNS rebinding: a page on evil.example that resolves its name to
    127.0.0.1 makes a browser send "Host: evil.example"; such a request gets
    421, while an address, localhost or our hostname is served."""
    d = daemon_factory({"metrics": {"listen": "127.0.0.1:0"}})
    port = re.findall(r"event=metrics_listening address=\S+:(\d+)", d.log())[0]
    for host, status in ((f"127.0.0.1:{port}", "200"), ("localhost", "200"), ("LOCALHOST:1", "200"),
                         ("relay.test", "200"), ("[::1]:9", "200"), ("evil.example", "421"),
                         (f"evil.example:{port}", "421"), ("127.0.0.1.evil.example", "421"), ("relay.test:x", "421"),
                         ("[::1]:9 evil", "421"), ("localhost:123456", "421")):
        reply = raw_http(d, f"GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        assert reply.startswith(f"HTTP/1.1 {status} "), (host, reply)
    # A bare CR or LF in the head is malformed (RFC 9112 2.2).
    assert raw_http(d, b"GET /healthz HTTP/1.1\r\nHost: evil\rexample\r\n\r\n").startswith("HTTP/1.1 400 ")


def test_metrics_allow_networks_and_a_non_loopback_listen(daemon_factory):
    d = daemon_factory({"metrics": {"listen": "127.0.0.1:0", "allow_networks": ["192.0.2.0/24"]}})
    assert raw_http(d, b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n") == ""  # closed unanswered
    assert "not in allow_networks" in d.log()
    bad = daemon_factory({"metrics": {"listen": "0.0.0.0:0"}}, start=False)
    out = subprocess.run([BIN, "check-config", "-c", str(bad.config)], capture_output=True, text=True, timeout=30)
    assert out.returncode != 0
    assert ("metrics.listen: '0.0.0.0:0' is not a loopback address; set metrics.allow_networks explicitly"
            in out.stderr), out.stderr


def test_slow_clients_cannot_keep_a_health_check_out(daemon_factory):
    """The endpoint takes 16 clients; 40 that connect and never finish their
    request used to hold every slot for their 5 s timeout, so /healthz was
    refused. The oldest unfinished one now makes room."""
    import socket
    d = daemon_factory({"metrics": {"listen": "127.0.0.1:0"}})
    addr = re.findall(r"event=metrics_listening address=(\S+)", d.log())[0]
    host, port = addr.rsplit(":", 1)
    idle = []
    for _ in range(40):
        s = socket.create_connection((host, int(port)), timeout=10)
        s.sendall(b"GET /metr")
        idle.append(s)
    try:
        assert get(d, "/healthz")[0] == 200
    finally:
        for s in idle:
            s.close()
