# SPDX-License-Identifier: MIT
"""A misbehaving upstream: every fault keeps the mail queued (or fails it
permanently where the server said so), and credentials or content never go
where they must not."""
import subprocess

import pytest

from conftest import BIN, daemon_upstream_settings, upstream_config, wait_for
from conftest import send, send_utf8


def fake(sink_factory, pki, scenario):
    cert, key = pki.leaf("fake")
    return sink_factory(name=f"fake-{scenario}", scenario=scenario, cert=cert, key=key)


def deferred_entry(d):
    [entry] = wait_for(lambda: [e for e in d.queue() if e["attempts"] >= 1], what="a deferred message")
    return entry


STARTTLS_FAULTS = {
    "no-starttls": "STARTTLS is required but the server does not offer it",
    "starttls-454": "STARTTLS refused: 454",
    "starttls-502": "STARTTLS refused: 502",
    "inject": "response injection",
    "starttls-220-no-tls": "TLS with localhost failed",
}


@pytest.mark.parametrize("scenario", list(STARTTLS_FAULTS))
def test_starttls_faults_never_fall_back(daemon_factory, sink_factory, pki, workdir, scenario):
    f = fake(sink_factory, pki, scenario)
    d = daemon_factory(daemon_upstream_settings([upstream_config(f, pki, workdir, scheme="smtp+starttls")]))
    send(d)
    entry = deferred_entry(d)
    assert STARTTLS_FAULTS[scenario] in entry["last_error"], entry
    verbs = [e.split()[0].upper() for e in f.events()]
    assert not set(verbs) & {"AUTH", "MAIL", "RCPT", "DATA"}, verbs


def test_capabilities_are_learned_again_after_tls(daemon_factory, sink_factory, pki, workdir):
    f = fake(sink_factory, pki, "caps-differ")
    d = daemon_factory(daemon_upstream_settings([upstream_config(f, pki, workdir, scheme="smtp+starttls")]))
    send(d)
    wait_for(lambda: d.queue() == [], what="delivered")
    auth = [e for e in f.events() if e.startswith("AUTH")]
    assert auth == ["AUTH LOGIN tls=yes"]


@pytest.mark.parametrize("scenario,reason", [
    ("greeting-421", "server closing the connection: 421"),
    ("greeting-554", "greeting refused: 554"),
    ("greeting-garbage", "protocol error: malformed reply"),
    ("greeting-none", "timeout waiting for the server at greeting"),
    ("hang-ehlo", "timeout waiting for the server at command"),
    ("hang-mail", "timeout waiting for the server at MAIL"),
    ("hang-rcpt", "timeout waiting for the server at RCPT"),
    ("hang-data", "timeout waiting for the server at DATA"),
    ("hang-dot", "timeout waiting for the server at end of data"),
    ("mail-421", "server closing the connection: 421"),
])
def test_server_faults_defer(daemon_factory, sink_factory, pki, workdir, scenario, reason):
    f = fake(sink_factory, pki, scenario)
    settings = daemon_upstream_settings([upstream_config(f, pki, workdir, scheme="smtp+starttls")])
    for k in ("greeting", "mail", "rcpt", "data", "block", "done"):
        settings["delivery"]["timeouts"][k] = "500ms"
    d = daemon_factory(settings)
    send(d)
    entry = deferred_entry(d)
    assert reason in entry["last_error"], entry


def test_plaintext_greeting_on_smtps_port_fails_tls(daemon_factory, sink_factory, pki, workdir):
    f = fake(sink_factory, pki, "plaintext-smtps")
    d = daemon_factory(daemon_upstream_settings([upstream_config(f, pki, workdir, scheme="smtps")]))
    send(d)
    entry = deferred_entry(d)
    assert "TLS with localhost failed" in entry["last_error"], entry


def test_drop_after_final_dot_retries_and_counts_the_duplicate(daemon_factory, sink_factory, pki, workdir):
    f = fake(sink_factory, pki, "drop-after-dot")
    d = daemon_factory(daemon_upstream_settings([upstream_config(f, pki, workdir, scheme="smtp+starttls")]))
    send(d)
    wait_for(lambda: d.queue() == [], timeout=30, what="delivered on retry")
    msgs = f.messages()
    assert len(msgs) == 2 and msgs[0]["content"] == msgs[1]["content"]
    assert "event=duplicate_risk" in d.log()


def test_server_size_smaller_than_message_fails_permanently_without_sending(daemon_factory, sink_factory, pki,
                                                                            workdir):
    f = fake(sink_factory, pki, "size-10")
    settings = daemon_upstream_settings([upstream_config(f, pki, workdir, scheme="smtp+starttls")])
    settings["delivery"]["bounce"] = False  # the report would be too big for this server as well
    d = daemon_factory(settings)
    send(d)
    wait_for(lambda: d.queue() == [], what="failed")
    failed = list((d.spool / "failed").glob("*.reason"))
    assert len(failed) == 1
    assert "exceeds the server's limit of 10 bytes" in failed[0].read_text()
    assert not any(e.startswith(("MAIL", "DATA")) for e in f.events())


def test_a_message_needing_smtputf8_fails_permanently_when_the_server_lacks_it(daemon_factory, sink_factory, pki,
                                                                               workdir):
    f = fake(sink_factory, pki, "ok")  # never offers SMTPUTF8
    settings = daemon_upstream_settings([upstream_config(f, pki, workdir, scheme="smtp+starttls")])
    settings["delivery"]["bounce"] = False
    d = daemon_factory(settings)
    send_utf8(d)
    wait_for(lambda: d.queue() == [], what="failed")
    [reason] = list((d.spool / "failed").glob("*.reason"))
    assert "message needs SMTPUTF8, which the server does not offer" in reason.read_text()
    assert any(e.startswith("EHLO") and e.endswith("tls=yes") for e in f.events())
    assert not any(e.startswith(("MAIL", "RCPT", "DATA")) for e in f.events())


def test_a_slow_but_steady_server_gets_a_big_message_at_the_first_attempt(daemon_factory, sink_factory, pki,
                                                                           workdir):
    """The data-block timeout runs per write, not over the whole content: a
    server that takes 20 MB at about 3 MB/s (the content takes at least
    twice the 3 s block timeout) is not timed out."""
    f = fake(sink_factory, pki, "slow-data")
    settings = daemon_upstream_settings([upstream_config(f, pki, workdir, scheme="smtp+starttls")])
    # "done" covers what the kernel's socket buffers still hold after the dot.
    settings["delivery"]["timeouts"].update(block="3s", done="20s")
    d = daemon_factory(settings)
    line = b"0123456789" * 9 + b"\r\n"
    body = b"Subject: big\r\n\r\n" + line * (20 * 1024 * 1024 // len(line))
    send(d, body=body)
    wait_for(lambda: "event=delivered" in d.log(), timeout=120, what="delivered")
    [m] = f.messages()
    assert m["content"].endswith(body[-1000:]) and len(m["content"]) > len(body)
    assert "event=deferred" not in d.log()


@pytest.mark.parametrize("scenario", ["login-password-first", "login-not-base64"])
def test_an_unexpected_auth_login_challenge_gets_no_secret(daemon_factory, sink_factory, pki, workdir, scenario):
    """AUTH LOGIN whose first challenge asks for the password, or is not
    base64: the exchange is cancelled with '*' and neither the username nor
    the password goes on the wire; the message stays queued."""
    import base64
    f = fake(sink_factory, pki, scenario)
    up = upstream_config(f, pki, workdir, scheme="smtp+starttls", auth="login")
    d = daemon_factory(daemon_upstream_settings([up]))
    send(d)
    entry = deferred_entry(d)
    assert "unexpected AUTH LOGIN challenge" in entry["last_error"], entry
    events = f.events()
    assert "* tls=yes" in events, events
    for secret in ("s3cret-pw", "relay@example.com"):
        assert not any(base64.b64encode(secret.encode()).decode() in e for e in events), events
    assert not any(e.startswith(("MAIL", "RCPT", "DATA")) for e in events)


OUR_SIDE = {
    "mail-530": "530 5.7.57 Client not authenticated",
    "mail-5730": "550 5.7.30 Basic authentication is not supported",
    "dot-quota": "554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException",
    "rcpt-gmail-quota": "550 5.4.5 Daily user sending limit exceeded",
}


@pytest.mark.parametrize("scenario", list(OUR_SIDE))
def test_replies_about_our_account_defer_and_never_bounce(daemon_factory, sink_factory, pki, workdir, scenario):
    """Invariant 8: a provider's reply that means "your credentials, your
    account, your quota" (Microsoft 365 with basic auth off, a daily sending
    quota) defers the message with site backoff, logs it loudly, turns
    readiness red and the misconfigured gauge on, and bounces nothing; once
    the account is fixed the message goes out and the state clears. Before,
    these 5xx replies failed the message and bounced it to the device."""
    from test_observability import get, metrics_settings, samples
    fixed = workdir / "fixed"
    f = sink_factory(name=f"fake-{scenario}", scenario=scenario, fix_after=fixed, leaf="fake")
    up = upstream_config(f, pki, workdir, scheme="smtp+starttls")
    d = daemon_factory(metrics_settings([up], metrics={"listen": "127.0.0.1:0", "unreachable_after": "1h"}))
    send(d, sender="printer@lan")
    entry = deferred_entry(d)
    assert OUR_SIDE[scenario] in entry["last_error"], entry
    assert entry["state"] == "deferred" and entry["pending"] == ["ops@example.com"]
    log = d.log()
    assert "event=upstream_misconfigured" in log and "nothing is bounced" in log or "quota" in log, log
    assert "event=failed" not in log and "event=bounce_queued" not in log
    assert list((d.spool / "failed").iterdir()) == []
    status, _, body = get(d, "/readyz")
    assert status == 503 and "misconfigured: " + OUR_SIDE[scenario] in body, body
    m = samples(get(d, "/metrics")[2])
    assert m[f'spoolgate_upstream_misconfigured{{upstream="{up["url"]}"}}'] == 1
    # The operator fixes the account: the next attempt delivers, the state clears.
    # A quota reply holds the upstream until its window opens (an hour at
    # most, issue 16); once the provider has raised the quota, a flush ends
    # the hold.
    fixed.write_text("")
    if "quota" in scenario:
        assert "event=upstream_quota" in d.log()
        r = subprocess.run([BIN, "queue", "flush", "-c", str(d.config)], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stdout + r.stderr
    wait_for(lambda: "event=delivered" in d.log(), timeout=60, what="delivery after the fix")
    assert "event=upstream_fixed" in d.log()
    assert get(d, "/readyz")[0] == 200
    assert len(f.messages()) == 1
