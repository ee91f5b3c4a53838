# SPDX-License-Identifier: MIT
"""Reliability: what gateways live through. Each test prints its figures.

Counts can be lowered with SG_CRASH_ITERATIONS / SG_FLAP_MESSAGES (the
sanitizer run in CI does, being several times slower); the defaults are the
figures the issue asks for.
"""
import datetime
import os
import random
import re
import resource
import signal
import smtplib
import socket
import threading
import time

from conftest import SANITIZED, daemon_upstream_settings, upstream_config, wait_for
from conftest import USER, PASSWORD

TOKEN = re.compile(rb"Subject: (t[0-9a-z-]+)\r\n")


def body_for(token, rng):
    lines = [("%s line %d " % (token, i)).encode() + bytes(rng.choice(b"abcdefghij. ") for _ in range(rng.randint(0, 120)))
             for i in range(rng.randint(1, 200))]
    return f"Subject: {token}\r\n\r\n".encode() + b"\r\n".join(lines) + b"\r\n"


def check_sink(sink_messages, sent, acked):
    """Every acknowledged message arrived at least once with identical
    content; nothing arrived partially. Returns (delivered, duplicates)."""
    seen = {}
    for m in sink_messages:
        tok = TOKEN.search(m["content"])
        assert tok, m["content"][:200]
        token = tok.group(1).decode()
        body = sent[token]
        # The sink holds the content with our trace fields on top.
        assert m["content"].endswith(body[body.index(b"\r\n\r\n") + 4:]), token
        seen[token] = seen.get(token, 0) + 1
    lost = [t for t in acked if t not in seen]
    assert lost == [], f"lost {len(lost)} acknowledged message(s): {lost[:5]}"
    return len(seen), sum(n - 1 for n in seen.values())


def test_crash_loop_loses_nothing_acknowledged(daemon_factory, sink_factory, pki, workdir):
    iterations = int(os.environ.get("SG_CRASH_ITERATIONS", "200"))
    sink = sink_factory(tls="implicit", user=USER, password=PASSWORD)
    d = daemon_factory(daemon_upstream_settings([upstream_config(sink, pki, workdir)]), start=False)
    rng = random.Random(20261122)
    sent, acked = {}, set()
    lock = threading.Lock()
    for it in range(iterations):
        d.start()
        stop = threading.Event()

        def sender(k, seed):
            r = random.Random(seed)
            n = 0
            while not stop.is_set():
                token = f"t{it}-{k}-{n}"
                n += 1
                body = body_for(token, r)
                with lock:
                    sent[token] = body
                try:
                    with smtplib.SMTP("127.0.0.1", d.port, timeout=10) as s:
                        s.sendmail("dev@lan", ["ops@example.com"], body)
                    with lock:
                        acked.add(token)
                except (OSError, smtplib.SMTPException):
                    return

        threads = [threading.Thread(target=sender, args=(k, rng.random())) for k in range(3)]
        for t in threads:
            t.start()
        # Not a synchronisation: the instant of the crash is the variable.
        threading.Event().wait(rng.uniform(0.01, 0.3))
        d.kill9()
        stop.set()
        for t in threads:
            t.join()
    d.start()
    wait_for(lambda: d.queue() == [], timeout=300, what="queue drained after the last restart")
    delivered, duplicates = check_sink(sink.messages(), sent, acked)
    print(f"\ncrash loop: iterations={iterations} sent={len(sent)} acknowledged={len(acked)} "
          f"delivered={delivered} duplicates={duplicates} lost=0")
    assert delivered >= len(acked)
    assert list((d.spool / "tmp").iterdir()) == []


def test_flapping_upstream_delivers_everything(daemon_factory, sink_factory, pki, workdir):
    count = int(os.environ.get("SG_FLAP_MESSAGES", "10000"))
    flaky = sink_factory(name="flaky", scenario="flaky", leaf="fake")
    settings = daemon_upstream_settings([upstream_config(flaky, pki, workdir, scheme="smtp+starttls")])
    settings["delivery"]["retry"] = {"first": "100ms", "max": "500ms", "factor": 2, "jitter": 0.2}
    for k in ("greeting", "mail", "rcpt", "data", "block", "done"):
        settings["delivery"]["timeouts"][k] = "300ms"
    settings["delivery"]["max_lifetime"] = "1h"
    d = daemon_factory(settings)
    rng = random.Random(7)
    sent = {}
    for i in range(count):
        sent[f"t{i}"] = body_for(f"t{i}", rng)
    tokens = list(sent)

    def inject(part):
        with smtplib.SMTP("127.0.0.1", d.port, timeout=60) as s:
            for t in part:
                s.sendmail("dev@lan", ["ops@example.com"], sent[t])

    t0 = time.monotonic()
    first = min(1000, count // 10)
    inject(tokens[:first])
    t1 = time.monotonic()
    wait_for(lambda: d.queue() == [], timeout=300, what="first batch delivered")
    fds0, rss0 = d.fd_count(), d.rss_kib()
    threads = [threading.Thread(target=inject, args=(tokens[first + k::4],)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    t2 = time.monotonic()
    wait_for(lambda: d.queue() == [], timeout=900, what="all delivered")
    print(f"\ninject first {first}: {t1 - t0:.1f}s; rest injected at {t2 - t0:.1f}s; all delivered at "
          f"{time.monotonic() - t0:.1f}s; log: " + " ".join(f"{k}={d.log().count('event=' + k)}" for k in
          ("upstream_ready", "upstream_failed", "deferred", "delivered", "upstream_down")))
    delivered, duplicates = check_sink(flaky.messages(), sent, set(tokens))
    # Upstream sessions with nothing left to send are held for idle_hold (2 s)
    # and then QUIT: their sockets are not leaks. A leaked one never goes.
    wait_for(lambda: d.fd_count() <= fds0 + 2, timeout=30, what="held upstream sessions closed")
    fds1, rss1 = d.fd_count(), d.rss_kib()
    print(f"\nflapping upstream: messages={count} delivered={delivered} duplicates={duplicates} lost=0 "
          f"fds {fds0}->{fds1} rss {rss0}->{rss1} KiB")
    assert delivered == count
    assert fds1 <= fds0 + 2
    if not SANITIZED:
        assert rss1 - rss0 < 4096


def test_idle_connections_and_concurrent_senders_stay_within_budget(daemon_factory):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
    d = daemon_factory({"limits": {"max_connections": 2000, "max_connections_per_client": 2000}})
    base = d.rss_kib()
    socks = []
    for _ in range(1000):
        s = socket.create_connection(("127.0.0.1", d.port), timeout=30)
        socks.append(s)
    for s in socks:  # every one greeted: all of them are live sessions
        assert s.recv(100).startswith(b"220 ")
    idle = d.rss_kib()
    per_conn = (idle - base) * 1024 / 1000
    print(f"\n1000 idle connections: rss {base}->{idle} KiB ({per_conn:.0f} bytes each)")
    for s in socks:
        s.close()
    if not SANITIZED:
        assert idle - base < 16 * 1024

    errors = []
    body = b"Subject: load\r\n\r\n" + b"x" * 998 + b"\r\n"
    body = body * 100  # ~100 KB

    def send_one():
        try:
            with smtplib.SMTP("127.0.0.1", d.port, timeout=60) as s:
                s.sendmail("dev@lan", ["ops@example.com"], body)
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=send_one) for _ in range(200)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(d.queue()) == 200
    peak = d.rss_peak_kib()
    print(f"200 concurrent senders: peak rss {peak} KiB")
    if not SANITIZED:
        assert peak < 64 * 1024


def test_sigterm_lets_a_transfer_in_progress_finish(daemon):
    c = daemon.connect()
    assert c.code() == 220
    c.cmd("EHLO dev")
    c.cmd("MAIL FROM:<a@example.com>")
    c.cmd("RCPT TO:<b@example.com>")
    assert c.cmd("DATA")[0].startswith("354")
    c.send(b"Subject: in flight\r\n\r\nfirst half\r\n")
    os.kill(daemon.pid, signal.SIGTERM)
    wait_for(lambda: "event=shutdown" in daemon.log(), what="shutdown begun")
    c.send(b"second half\r\n.\r\n")
    assert c.reply()[0].startswith("250 2.0.0 Ok: queued as")
    assert c.reply() == ["421 4.3.2 relay.test Service shutting down, try again later"]
    assert daemon.proc.wait(timeout=30) == 0
    assert len(daemon.queue()) == 1
    assert list((daemon.spool / "tmp").iterdir()) == []


def test_sigterm_while_an_upstream_connect_hangs(daemon_factory, blackhole, pki, workdir):
    """The connect to the provider hangs. At the shutdown deadline the session
    is abandoned through its finalizer, the connect is cancelled and the
    daemon exits cleanly (no leaked session: the sanitizer run checks for
    leaks at exit), the message still queued."""
    settings = daemon_upstream_settings([upstream_config(blackhole, pki, workdir, host="127.0.0.1")],
                                        shutdown_timeout="1s", log={"level": "debug"})
    settings["delivery"]["timeouts"]["connect"] = "1h"
    d = daemon_factory(settings)
    with smtplib.SMTP("127.0.0.1", d.port, timeout=30) as s:
        s.sendmail("dev@lan", ["ops@example.com"], b"Subject: held\r\n\r\nx\r\n")
    wait_for(lambda: "event=upstream_connect " in d.log(), what="upstream connect begun")
    os.kill(d.pid, signal.SIGTERM)
    # Long before the 1 h connect timeout.
    assert d.proc.wait(timeout=60) == 0, d.log()
    assert "event=shutdown_deadline" in d.log()
    [entry] = d.queue()
    assert entry["attempts"] == 0


def test_clock_jumps_cause_no_retry_storm_and_no_early_expiry(daemon_factory, sink_factory, pki, workdir):
    sink = sink_factory(tls="implicit", user=USER, password=PASSWORD)
    settings = daemon_upstream_settings([upstream_config(sink, pki, workdir)])
    settings["delivery"]["retry"] = {"first": "1h", "max": "2h", "factor": 2, "jitter": 0}
    settings["delivery"]["max_lifetime"] = "5d"
    d = daemon_factory(settings)
    with smtplib.SMTP("127.0.0.1", d.port, timeout=30) as s:
        s.sendmail("dev@lan", ["busy+451@example.com"], b"Subject: clock\r\n\r\nx\r\n")
    wait_for(lambda: d.queue() and d.queue()[0]["attempts"] == 1, what="first attempt")
    d.stop()
    for jump in ("-30d", "+2d"):
        d.prefix = ["faketime", "-f", jump]
        # libfaketime is preloaded; ASan wants to come first, which it cannot
        # here (only the sanitizer run cares).
        d.env = {"DONT_FAKE_MONOTONIC": "1",
                 "ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"}
        before = sum(1 for e in sink.events() if e.startswith("RCPT"))
        d.start()
        # Recovered mail is handed to delivery before "ready" is logged, so the
        # ready line says whether the daemon found the message due.
        ready = [l for l in d.log().splitlines() if "event=ready" in l][-1]
        if jump.startswith("-"):
            # Backwards: the persisted next attempt is a month ahead of the
            # daemon's clock; nothing is due and no session is opened.
            assert "in_delivery=0" in ready, ready
            [entry] = d.queue()
            assert entry["attempts"] == 1
        else:
            # Forwards two days: due, tried once, and the next attempt lands
            # in the daemon's future (two days ahead of real time), so there
            # is nothing left to loop on.
            assert "in_delivery=1" in ready, ready
            wait_for(lambda: d.queue()[0]["attempts"] == 2, what="the retry after the jump")
            [entry] = d.queue()
            next_attempt = datetime.datetime.fromisoformat(entry["next_attempt"].replace("Z", "+00:00"))
            assert next_attempt.timestamp() > time.time() + 2 * 86400
        after = sum(1 for e in sink.events() if e.startswith("RCPT"))
        print(f"\nclock {jump}: attempts during the run={after - before}, next={entry['next_attempt']}")
        assert after - before == (0 if jump.startswith("-") else 1), "retry storm or early retry"
        assert "expired" not in entry["last_error"]
        d.stop()
