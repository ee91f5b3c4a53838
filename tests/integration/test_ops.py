# SPDX-License-Identifier: MIT
"""Operating the daemon: systemd notify, the queue CLI through the control
socket (and on the spool when the daemon is down), SIGUSR1."""
import os
import re
import signal
import stat
import subprocess

from conftest import BIN, daemon_upstream_settings, upstream_config, wait_for
from conftest import USER, PASSWORD, send


def cli(d, *args):
    return subprocess.run([BIN, "queue", *args, "-c", str(d.config)], capture_output=True, text=True, timeout=30)


def deferred_setup(daemon_factory, sink_factory, pki, workdir):
    sink = sink_factory(tls="implicit", user=USER, password=PASSWORD)
    settings = daemon_upstream_settings([upstream_config(sink, pki, workdir)])
    settings["delivery"]["retry"] = {"first": "1h", "max": "2h", "factor": 2, "jitter": 0}
    d = daemon_factory(settings)
    send(d, rcpts=("busy+451@example.com",))
    deferred_by_daemon(d, 1)
    [entry] = d.queue()
    return d, sink, entry["id"]


def deferred_by_daemon(d, attempts):
    """Wait until the daemon's scheduler holds the message as deferred (its
    log line follows the release), not only until the spool file records the
    attempt: a flush sent in between finds the message still in flight."""
    wait_for(lambda: re.search(rf"event=deferred .* attempts={attempts} ", d.log()), what=f"deferral {attempts}")


def rcpt_attempts(sink):
    return sum(1 for e in sink.events() if e.startswith("RCPT busy+451"))


def test_control_socket_is_private(daemon):
    st = os.stat(daemon.spool / "control.sock")
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
    assert stat.S_IMODE(os.stat(daemon.spool).st_mode) == 0o700


def test_queue_flush_retry_and_sigusr1(daemon_factory, sink_factory, pki, workdir):
    d, sink, msg_id = deferred_setup(daemon_factory, sink_factory, pki, workdir)
    assert rcpt_attempts(sink) == 1
    out = cli(d, "flush")
    assert out.returncode == 0 and "flushed: 1 message(s) due now" in out.stdout
    wait_for(lambda: rcpt_attempts(sink) == 2, what="retry after flush")
    deferred_by_daemon(d, 2)
    out = cli(d, "retry", msg_id)
    assert out.returncode == 0, out.stderr
    wait_for(lambda: rcpt_attempts(sink) == 3, what="retry after queue retry")
    deferred_by_daemon(d, 3)
    os.kill(d.pid, signal.SIGUSR1)
    wait_for(lambda: rcpt_attempts(sink) == 4, what="retry after SIGUSR1")
    bad = cli(d, "retry", "0000000000000000")
    assert bad.returncode == 1 and "is not queued" in bad.stderr


def test_queue_list_shows_the_message_being_delivered_as_active(daemon_factory, sink_factory, pki, workdir):
    hang = sink_factory(name="fake-hang-dot", scenario="hang-dot", leaf="fake")
    settings = daemon_upstream_settings([upstream_config(hang, pki, workdir, scheme="smtp+starttls")],
                                        shutdown_timeout="1s")
    settings["delivery"]["timeouts"]["done"] = "1h"  # the server sits on the final dot
    d = daemon_factory(settings)
    send(d)
    wait_for(lambda: any(e.startswith("MESSAGE") for e in hang.events()), what="the final dot sent")
    [entry] = d.queue()
    assert entry["state"] == "active", entry
    out = subprocess.run([BIN, "queue", "list", "-c", str(d.config)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and " active " in out.stdout, out.stdout
    d.stop()
    # With no daemon the spool alone cannot tell: not active any more.
    [entry] = d.queue()
    assert entry["state"] in ("queued", "deferred"), entry


def test_queue_show_and_delete_through_the_daemon(daemon_factory, sink_factory, pki, workdir):
    d, sink, msg_id = deferred_setup(daemon_factory, sink_factory, pki, workdir)
    out = cli(d, "show", msg_id)
    assert out.returncode == 0, out.stderr
    assert f"id:        {msg_id}" in out.stdout
    assert "attempts:  1" in out.stdout
    assert "recipient: <busy+451@example.com> pending (451 4.1.1 scripted reply" in out.stdout
    out = cli(d, "delete", msg_id)
    assert out.returncode == 0 and "deleted" in out.stdout, out.stderr
    assert d.queue() == []
    assert cli(d, "show", msg_id).returncode == 1
    # The daemon forgot it too: a flush retries nothing.
    assert "flushed: 0 message(s)" in cli(d, "flush").stdout


def test_queue_commands_work_on_the_spool_when_the_daemon_is_down(daemon_factory, sink_factory, pki, workdir):
    d, sink, msg_id = deferred_setup(daemon_factory, sink_factory, pki, workdir)
    d.stop()
    out = cli(d, "show", msg_id)
    assert out.returncode == 0 and "attempts:  1" in out.stdout
    out = cli(d, "retry", msg_id)
    assert out.returncode == 0 and "due at the next start" in out.stdout
    d.start()
    wait_for(lambda: rcpt_attempts(sink) == 2, what="retry at start")
    d.stop()
    assert cli(d, "delete", msg_id).returncode == 0
    assert d.queue() == []


def test_sighup_reload_applies_upstreams_limits_and_listeners(daemon_factory, sink_factory, pki, workdir):
    d = daemon_factory({"limits": {"max_recipients": 1}})  # store-only at first
    send(d)
    assert len(d.queue()) == 1
    old_port = d.port
    sink = sink_factory(tls="implicit", user=USER, password=PASSWORD)
    settings = daemon_upstream_settings([upstream_config(sink, pki, workdir)])
    settings["listen"] = ["127.0.0.1:0", "[::1]:0"]
    settings["limits"] = {"max_recipients": 3}
    d.write_config(settings)
    os.kill(d.pid, signal.SIGHUP)
    wait_for(lambda: "event=reloaded" in d.log(), what="reload")
    # The queued message goes out through the new upstream.
    sink.wait_messages(1)
    wait_for(lambda: d.queue() == [], what="delivered after reload")
    # A listener whose spec did not change is kept; the new one is opened.
    new_v6 = re.findall(r"event=listening address=(\[::1\]:\d+)", d.log())
    assert new_v6
    c = d.connect()
    assert c.code() == 220
    c.cmd("EHLO x")
    c.cmd("MAIL FROM:<a@example.com>")
    assert [c.cmd(f"RCPT TO:<r{i}@example.com>")[0][:3] for i in range(4)] == ["250", "250", "250", "452"]
    assert d.port == old_port


def test_sighup_with_a_bad_config_keeps_the_old_one(daemon_factory, workdir):
    d = daemon_factory()
    d.config.write_text("limits:\n  max_recipients: lots\n")
    os.kill(d.pid, signal.SIGHUP)
    wait_for(lambda: "event=reload_refused" in d.log(), what="refusal")
    assert "limits.max_recipients: expected a whole number" in d.log()
    c = d.connect()
    assert c.code() == 220
    assert c.cmd("QUIT") == ["221 2.0.0 Bye"]


def test_far_over_the_watermark_connections_get_421(daemon_factory):
    d = daemon_factory({"spool": {"max_messages": 10}})
    for _ in range(3):
        send(d)
    settings = {"spool": {"max_messages": 2}}
    d.write_config(settings)
    os.kill(d.pid, signal.SIGHUP)
    wait_for(lambda: "event=reloaded" in d.log(), what="reload")
    c = d.connect()
    assert c.reply() == ["421 4.3.2 relay.test Service temporarily unavailable: spool full"]
    assert c.closed()


def reload_cli(d):
    return subprocess.run([BIN, "reload", "-c", str(d.config)], capture_output=True, text=True, timeout=60)


def test_spoolgate_reload_waits_for_the_answer_and_fails_on_a_refused_config(daemon_factory):
    """What the unit's ExecReload runs: exit 0 once the new configuration is
    in force, exit 1 with the reason when the daemon refused it (systemctl
    reload used to report success for a refused file: kill -HUP cannot
    know)."""
    d = daemon_factory({"limits": {"max_recipients": 1}})
    d.write_config({"limits": {"max_recipients": 2}})
    ok = reload_cli(d)
    assert ok.returncode == 0 and ok.stdout == "reloaded\n", ok
    c = d.connect()
    c.code()
    c.cmd("EHLO x")
    c.cmd("MAIL FROM:<a@example.com>")
    assert [c.cmd(f"RCPT TO:<r{i}@example.com>")[0][:3] for i in range(3)] == ["250", "250", "452"]
    c.close()
    # A file the daemon refuses: a listen address already taken.
    import socket
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    d.write_config({"listen": [f"127.0.0.1:{taken.getsockname()[1]}"]})
    bad = reload_cli(d)
    taken.close()
    assert bad.returncode == 1, bad
    assert bad.stderr.startswith("spoolgate reload: reload refused: ") and "in use" in bad.stderr, bad
    assert "event=reload_refused" in d.log()
    # A file that does not parse: the CLI already says why, exit 1.
    d.config.write_text("limits:\n  max_recipients: lots\n")
    bad = reload_cli(d)
    assert bad.returncode == 1 and "limits.max_recipients: expected a whole number" in bad.stderr, bad
    nobody = subprocess.run([BIN, "reload", "-c", "/dev/null"], capture_output=True, text=True, timeout=60)
    assert nobody.returncode == 1 and "no daemon answers" in nobody.stderr


def test_a_reload_keeps_an_upstreams_backoff_and_warns_when_no_upstream_is_left(daemon_factory, sink_factory, pki,
                                                                                 workdir):
    """A wrong password puts the upstream in backoff (retries after an
    hour); logrotate's SIGHUP used to start its backoff afresh, so the
    provider was asked again at once. Removing every upstream warns as at
    start."""
    from test_observability import get, metrics_settings, samples
    sink = sink_factory(tls="implicit", user=USER, password=PASSWORD)
    up = upstream_config(sink, pki, workdir, password="wrong")
    settings = metrics_settings([up], metrics={"listen": "127.0.0.1:0"})
    settings["delivery"]["retry"] = {"first": "1h", "max": "1h", "factor": 1, "jitter": 0}
    d = daemon_factory(settings)
    send(d)
    wait_for(lambda: "event=auth_failed" in d.log(), what="the refused password")
    up_metric = f'spoolgate_upstream_up{{upstream="{up["url"]}"}}'
    assert samples(get(d, "/metrics")[2])[up_metric] == 0
    assert reload_cli(d).returncode == 0
    assert samples(get(d, "/metrics")[2])[up_metric] == 0  # still in backoff
    assert sum(1 for e in sink.events() if e.startswith("AUTH")) == 1
    d.write_config({"metrics": {"listen": "127.0.0.1:0"}})
    assert reload_cli(d).returncode == 0
    assert 'event=store_only reason="the reload removed every upstream' in d.log()


def test_control_verbs_take_queue_ids_only_and_inject_counts_once(daemon_factory):
    from conftest import control
    from test_observability import get, samples
    d = daemon_factory({"metrics": {"listen": "127.0.0.1:0"}})
    send(d)
    [entry] = d.queue()
    for verb in ("retry", "delete", "inject", "show"):
        for bad in ("../queue/" + entry["id"], "..", "/etc/passwd", entry["id"] + "/x", ""):
            reply = control(d, f"{verb} {bad}")
            assert reply.startswith("error: ") and "is not a queue id" in reply, (verb, bad, reply)
    assert [e["id"] for e in d.queue()] == [entry["id"]]
    # A repeated inject of a queued message changes nothing (before, its
    # size went into the usage figures again each time).
    before = samples(get(d, "/metrics")[2])
    for _ in range(3):
        reply = control(d, "inject " + entry["id"])
        assert reply == "ok\nalready queued\n", reply
    after = samples(get(d, "/metrics")[2])
    assert after["spoolgate_queue_bytes"] == before["spoolgate_queue_bytes"] == entry["size"]
    assert after["spoolgate_queue_messages"] == 1
