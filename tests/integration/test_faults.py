# SPDX-License-Identifier: MIT
"""A misbehaving upstream: every fault keeps the mail queued (or fails it
permanently where the server said so), and credentials or content never go
where they must not."""
import pytest

from conftest import daemon_upstream_settings, upstream_config, wait_for
from test_delivery import send, send_utf8


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
