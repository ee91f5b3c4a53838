# SPDX-License-Identifier: MIT
"""Soak: what months on a gateway look like, compressed. Outside the CI
budget at full size (tests/soak/run); CI runs it small. Bounded in count
and time; prints its figures; fails on any loss.

- kill -9 at random instants under concurrent load, each cycle with a
  random disk fault from tests/support/faultfs.c mixed in: none, a lagging
  disk (every fsync/pread on the spool 5 ms late), EIO on every 50th pread,
  ENOSPC on every 40th write; every tenth cycle lets the queue drain before
  the kill. Then a clean start drains the queue: every acknowledged message
  must have arrived, whole.
- a flapping upstream (fake_upstream's flaky scenario, digest-only) taking
  SG_SOAK_MESSAGES messages; the daemon's RSS and fd count at start and end.

Counts: SG_SOAK_CYCLES (default 1000), SG_SOAK_MESSAGES (default 1000000).
"""
import hashlib
import os
import random
import smtplib
import threading
import time

from conftest import daemon_upstream_settings, upstream_config, wait_for

CYCLES = int(os.environ.get("SG_SOAK_CYCLES", "1000"))
MESSAGES = int(os.environ.get("SG_SOAK_MESSAGES", "1000000"))

FAULTS = [{}, {"delay_us": 5000}, {"pread_eio_every": 50}, {"write_enospc_every": 40}]


def body_for(token, rng):
    lines = [f"{token} line {i} ".encode() + bytes(rng.choice(b"abcdefghij. ") for _ in range(rng.randint(0, 80)))
             for i in range(rng.randint(1, 30))]
    return f"Subject: {token}\r\n\r\n".encode() + b"\r\n".join(lines) + b"\r\n"


def digest(body):
    return hashlib.sha256(body[body.index(b"\r\n\r\n") + 4:]).hexdigest()


def account(sink, expected, acked):
    """Every acknowledged message arrived at least once, whole (same body
    digest). Returns (delivered, duplicates)."""
    seen = {}
    for token, dg in sink.digests():
        assert token in expected and expected[token] == dg, f"{token} arrived damaged or unknown"
        seen[token] = seen.get(token, 0) + 1
    lost = [t for t in acked if t not in seen]
    assert lost == [], f"lost {len(lost)} acknowledged message(s): {lost[:5]}"
    return len(seen), sum(n - 1 for n in seen.values())


def test_kill9_cycles_with_disk_faults_lose_nothing(daemon_factory, sink_factory, pki, workdir, faultfs):
    sink = sink_factory(name="soak-sink", scenario="ok", digest_only=True)
    d = daemon_factory(daemon_upstream_settings([upstream_config(sink, pki, workdir, scheme="smtp+starttls")]),
                       start=False)
    rng = random.Random(20261202)
    expected, acked = {}, set()
    lock = threading.Lock()
    modes = {}
    t0 = time.monotonic()
    for it in range(CYCLES):
        fault = rng.choice(FAULTS)
        modes[str(fault)] = modes.get(str(fault), 0) + 1
        d.env = faultfs(d, **fault) if fault else None
        # Recovery reads every queued message: with a lagging disk and a
        # backlog that takes a while.
        d.start(ready_timeout=300)
        if it == 0:
            fds0, rss0 = d.fd_count(), d.rss_kib()
        stop = threading.Event()

        def sender(k, seed):
            r = random.Random(seed)
            n = 0
            while not stop.is_set():
                token = f"t{it}-{k}-{n}"
                n += 1
                body = body_for(token, r)
                with lock:
                    expected[token] = digest(body)
                try:
                    with smtplib.SMTP("127.0.0.1", d.port, timeout=10) as s:
                        s.sendmail("dev@lan", ["ops@example.com"], body)
                    with lock:
                        acked.add(token)
                except (OSError, smtplib.SMTPException):
                    if stop.is_set():
                        return

        threads = [threading.Thread(target=sender, args=(k, rng.random())) for k in range(3)]
        for t in threads:
            t.start()
        # Not a synchronisation: the instant of the crash is the variable.
        threading.Event().wait(rng.uniform(0.02, 0.4))
        if it % 10 == 9:
            # A calm spell now and then (crashes are rarer than messages):
            # the backlog drains, so recovery does not grow without bound.
            stop.set()
            for t in threads:
                t.join()
            wait_for(lambda: d.queue() == [], timeout=600, what="a drained queue between crashes")
        d.kill9()
        stop.set()
        for t in threads:
            t.join()
    d.env = None
    d.start(ready_timeout=300)
    wait_for(lambda: d.queue() == [], timeout=900, what="queue drained after the last restart")
    fds1, rss1 = d.fd_count(), d.rss_kib()
    delivered, duplicates = account(sink, expected, acked)
    print(f"\nkill -9 soak: cycles={CYCLES} faults={modes} sent={len(expected)} acknowledged={len(acked)} "
          f"delivered={delivered} duplicates={duplicates} lost=0 fds {fds0}->{fds1} rss {rss0}->{rss1} KiB "
          f"in {time.monotonic() - t0:.0f}s")
    assert list((d.spool / "tmp").iterdir()) == []
    assert list((d.spool / "failed").iterdir()) == []


def test_flapping_upstream_soak(daemon_factory, sink_factory, pki, workdir):
    flaky = sink_factory(name="flaky", scenario="flaky", digest_only=True, leaf="fake")
    settings = daemon_upstream_settings([upstream_config(flaky, pki, workdir, scheme="smtp+starttls")])
    settings["delivery"]["retry"] = {"first": "100ms", "max": "500ms", "factor": 2, "jitter": 0.2}
    for k in ("greeting", "mail", "rcpt", "data", "block", "done"):
        settings["delivery"]["timeouts"][k] = "300ms"
    settings["delivery"]["max_lifetime"] = "1d"
    settings["spool"] = {"max_messages": 10_000_000, "max_bytes": "8GiB", "min_free_disk": "256MiB"}
    d = daemon_factory(settings)
    fds0, rss0 = d.fd_count(), d.rss_kib()
    expected = {}
    lock = threading.Lock()
    t0 = time.monotonic()

    def inject(k, count):
        r = random.Random(k)
        n = 0
        while n < count:
            with smtplib.SMTP("127.0.0.1", d.port, timeout=120) as s:
                for _ in range(min(1000, count - n)):  # a new session now and then
                    token = f"f{k}-{n}"
                    body = body_for(token, r)
                    with lock:
                        expected[token] = digest(body)
                    s.sendmail("dev@lan", ["ops@example.com"], body)
                    n += 1

    threads = [threading.Thread(target=inject, args=(k, MESSAGES // 4 + (k < MESSAGES % 4))) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    injected = time.monotonic() - t0
    wait_for(lambda: d.queue() == [], timeout=3600, what="all delivered")
    wait_for(lambda: d.fd_count() <= fds0 + 2, timeout=60, what="held upstream sessions closed")
    fds1, rss1 = d.fd_count(), d.rss_kib()
    delivered, duplicates = account(flaky, expected, set(expected))
    print(f"\nflapping soak: messages={MESSAGES} delivered={delivered} duplicates={duplicates} lost=0 "
          f"fds {fds0}->{fds1} rss {rss0}->{rss1} KiB injected in {injected:.0f}s, "
          f"all delivered in {time.monotonic() - t0:.0f}s")
    assert delivered == MESSAGES
    assert fds1 <= fds0 + 2
