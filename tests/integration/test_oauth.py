# SPDX-License-Identifier: MIT
"""OAuth2 built in (issue 14): the daemon gets and refreshes its own access
tokens from a token endpoint over real TLS (tests/support/fake_oauth.py),
and the SMTP sink accepts only the tokens that endpoint issued and that
have not expired or been revoked."""
import json
import os
import stat
import subprocess
import time
import urllib.request

from conftest import (BIN, CLIENT_SECRET, USER, daemon_upstream_settings, free_port, send, start_oauth_login,
                      wait_for)


def oauth_upstream(sink, pki, workdir, ts, grant="client_credentials", **extra):
    secret = workdir / "client-secret"
    secret.write_text(CLIENT_SECRET + "\n")
    secret.chmod(0o600)
    oauth = {"provider": "custom", "grant": grant, "client_id": "app-1", "token_url": ts.url,
             "device_authorization_url": ts.url.replace("/token", "/devicecode"),
             "scope": "https://outlook.office365.com/.default", "ca_file": pki.ca_file}
    if grant == "client_credentials":
        oauth["client_secret_file"] = str(secret)
    u = {"url": f"smtps://localhost:{sink.port}", "ca_file": pki.ca_file, "username": USER, "oauth": oauth}
    u.update(extra)
    return u


def make_oauth_pair(daemon_factory, sink_factory, token_server_factory, pki, workdir, lifetime=3600,
                    grant="client_credentials", refresh=None, **extra):
    ts = token_server_factory(lifetime)
    if refresh:
        ts.sign_in(refresh)
    sink = sink_factory(user=USER, password="unused", token_file=ts.dir / "tokens")
    d = daemon_factory(daemon_upstream_settings([oauth_upstream(sink, pki, workdir, ts, grant=grant, **extra)]),
                       start=False)
    return d, sink, ts


def store_record(d, key=f"{USER.replace('@', '-')}_localhost"):
    p = d.spool / "oauth" / f"{key}.json"
    return p, (json.loads(p.read_text()) if p.exists() else None)


def signed_in(d, ts, refresh="rt-login"):
    """What `spoolgate oauth login` leaves behind: the store record with a
    refresh token the endpoint knows."""
    (d.spool / "oauth").mkdir(parents=True, mode=0o700)
    fingerprint = f"{ts.url} app-1 https://outlook.office365.com/.default refresh_token"
    store_record(d)[0].write_text(json.dumps({
        "format": 1, "generation": 1, "client": fingerprint, "refresh_token": refresh, "access_token": "",
        "expires_at_ms": 0, "refreshed_at_ms": 0}))
    store_record(d)[0].chmod(0o600)
    ts.sign_in(refresh)


def auth_events(sink):
    return [e for e in sink.events() if e.startswith("AUTH")]


def secrets_absent(text, ts):
    assert CLIENT_SECRET not in text
    for t in ts.issued():
        assert t not in text, "an access token in a log"
    p = ts.dir / "refresh"
    if p.exists():
        assert p.read_text().strip() not in text


def test_client_credentials_tokens_are_fetched_refreshed_and_stored_privately(daemon_factory, sink_factory,
                                                                             token_server_factory, pki, workdir):
    """Microsoft 365 app-only: a token from client_credentials before the
    first delivery, refreshed on its own before it expires (two-second
    lifetimes here, so several pass), every delivery authenticated with a
    live token (never a 535), OAUTHBEARER since the sink offers it, and the
    store 0600 under <spool>/oauth."""
    d, sink, ts = make_oauth_pair(daemon_factory, sink_factory, token_server_factory, pki, workdir, lifetime=2)
    d.start()
    send(d)
    sink.wait_messages(1)
    # Three lifetimes later, without any delivery in between, tokens keep coming.
    wait_for(lambda: len(ts.issued()) >= 4, timeout=20, what="refreshes before expiry")
    send(d, body=b"Subject: later\r\n\r\nsecond\r\n")
    sink.wait_messages(2)
    events = auth_events(sink)
    assert events and all(e == f"AUTH OAUTHBEARER {USER} ok" for e in events), events
    reqs = ts.requests()
    assert all(r["grant"] == "client_credentials" and r["outcome"] == "ok" for r in reqs), reqs
    assert all(r["content_type"] == "application/x-www-form-urlencoded" for r in reqs)
    # Refreshed at 80 % of the lifetime: never more than one request per 1.6 s, so no storm.
    times = [r["time"] for r in reqs]
    assert all(b - a > 1.0 for a, b in zip(times, times[1:])), times
    path, rec = store_record(d)
    assert rec and rec["format"] == 1 and rec["access_token"] in ts.issued() and rec["generation"] >= 4
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    assert "event=oauth_token_refreshed" in d.log()
    secrets_absent(d.log(), ts)
    d.stop()


def test_xoauth2_and_a_token_refused_by_the_server_is_replaced_on_the_same_connection(
        daemon_factory, sink_factory, token_server_factory, pki, workdir):
    """`auth: xoauth2`; the provider stops accepting the cached token (401
    error challenge, then 535): one new token, one more AUTH on the same
    connection, delivered; no bounce, no second connection."""
    d, sink, ts = make_oauth_pair(daemon_factory, sink_factory, token_server_factory, pki, workdir, auth="xoauth2")
    d.start()
    send(d)
    sink.wait_messages(1)
    assert auth_events(sink) == [f"AUTH XOAUTH2 {USER} ok"]
    wait_for(lambda: "CLOSE" in sink.events(connections=True), what="the first session's end")
    ts.revoke_issued()
    before = len(sink.events(connections=True))
    send(d, body=b"Subject: after revocation\r\n\r\nsecond\r\n")
    sink.wait_messages(2)
    session = sink.events(connections=True)[before:]
    auths = [e for e in session if e.startswith("AUTH")]
    assert auths == [f"AUTH XOAUTH2 {USER} refused", f"AUTH XOAUTH2 {USER} ok"], session
    assert "CLOSE" not in session[:session.index(auths[1])], "the retry must use the same connection"
    assert len(ts.issued()) == 2
    assert "event=upstream_token_refused" in d.log()
    secrets_absent(d.log(), ts)
    d.stop()


def test_refresh_tokens_rotate_into_the_store_and_survive_kill_9(daemon_factory, sink_factory,
                                                               token_server_factory, pki, workdir):
    """refresh_token grant (delegated Microsoft, Google) with a provider
    that rotates the refresh token on every use and kills the old one: the
    daemon stores each new one, so after kill -9 and a restart it still
    holds the one live refresh token."""
    d, sink, ts = make_oauth_pair(daemon_factory, sink_factory, token_server_factory, pki, workdir, lifetime=2,
                                  grant="refresh_token")
    signed_in(d, ts)
    d.start()
    send(d)
    sink.wait_messages(1)
    wait_for(lambda: len([r for r in ts.requests() if r.get("rotated")]) >= 3, timeout=20, what="rotations")
    # kill -9 at a moment when no exchange is in flight: the endpoint
    # answers 503 for a while, so the last rotation is done and the next
    # attempt waits. (A crash while the provider's answer is on its way
    # cannot be helped by any client: see the manager's header.)
    ts.set_mode("down")
    wait_for(lambda: any(r["outcome"] == "503" for r in ts.requests()), what="a refused refresh")
    live = (ts.dir / "refresh").read_text().strip()
    assert store_record(d)[1]["refresh_token"] == live
    d.kill9()
    ts.set_mode("ok")
    d.start()
    send(d, body=b"Subject: after kill\r\n\r\nsecond\r\n")
    sink.wait_messages(2)
    rotated = len([r for r in ts.requests() if r.get("rotated")])
    wait_for(lambda: len([r for r in ts.requests() if r.get("rotated")]) >= rotated + 2, timeout=20,
             what="rotations after the restart")
    assert all(r["outcome"] in ("ok", "503") for r in ts.requests()), ts.requests()
    wait_for(lambda: store_record(d)[1]["refresh_token"] == (ts.dir / "refresh").read_text().strip(),
             what="the live refresh token in the store")
    secrets_absent(d.log(), ts)
    d.stop()


def test_a_kill_9_between_the_token_answer_and_the_store(daemon_factory, sink_factory, token_server_factory,
                                                        pki, workdir):
    """The crash window no client can close: the endpoint rotates the
    refresh token and the daemon is killed (kill -9, sent by the endpoint
    itself) before the answer reaches it, so the store keeps the refresh
    token it had. At Microsoft, which does not revoke a used refresh token,
    that one still works: after the restart the daemon refreshes with it,
    stores the new one and mail flows, with no sign-in and no 535. At a
    provider that kills the old one at once the same crash ends in the
    operator state: mail waits and readiness names `oauth login`, nothing
    bounces (the second half)."""
    d, sink, ts = make_oauth_pair(daemon_factory, sink_factory, token_server_factory, pki, workdir, lifetime=2,
                                  grant="refresh_token")
    signed_in(d, ts)
    ts.keep_old_refresh_tokens()
    d.start()
    send(d)
    sink.wait_messages(1)
    ts.kill_on_rotation(d.pid)
    assert d.proc.wait(timeout=30) == -9
    d.log_file.close()
    [killed] = [r for r in ts.requests() if r.get("killed")]
    assert killed["outcome"] == "ok" and killed["presented"] == "current"
    stored = store_record(d)[1]["refresh_token"]
    live = (ts.dir / "refresh").read_text().strip()
    assert stored != live, "the answer reached the store: the crash was not in the window"
    assert stored in (ts.dir / "refresh.old").read_text().split()

    d.start()
    send(d, body=b"Subject: after the crash\r\n\r\nsecond\r\n")
    sink.wait_messages(2)

    def after():
        reqs = ts.requests()
        return reqs[reqs.index(killed) + 1:]
    # (The access token stored before the crash may carry the first message
    # after the restart; the refresh comes before it expires.)
    wait_for(lambda: [r for r in after() if r.get("rotated")], what="a refresh after the restart")
    assert after()[0]["presented"] == "old" and after()[0]["outcome"] == "ok", after()
    assert not [r for r in after() if r["outcome"] != "ok"], after()
    wait_for(lambda: store_record(d)[1]["refresh_token"] == (ts.dir / "refresh").read_text().strip(),
             what="the new refresh token in the store")
    assert all(e.endswith(" ok") for e in auth_events(sink)), auth_events(sink)

    # The same crash at a provider that revokes on rotation.
    (ts.dir / "rotation").unlink()
    (ts.dir / "refresh.old").unlink()
    ts.kill_on_rotation(d.pid)
    assert d.proc.wait(timeout=30) == -9
    d.log_file.close()
    d.start()
    wait_for(lambda: "event=oauth_token_refused_by_endpoint" in d.log(), what="invalid_grant logged")
    # The access token stored before the crash still works until it expires.
    wait_for(lambda: store_record(d)[1]["expires_at_ms"] < time.time() * 1000, what="the last access token expired")
    send(d, body=b"Subject: waits\r\n\r\nthird\r\n")
    wait_for(lambda: "event=deferred" in d.log(), what="a deferral")
    health = subprocess.run([BIN, "health", "-c", str(d.config)], capture_output=True, text=True)
    assert health.returncode == 1 and "spoolgate oauth login" in health.stdout, health.stdout
    assert len(sink.messages()) == 2 and len(d.queue()) == 1
    assert "event=bounce_queued" not in d.log() and not list((d.spool / "failed").iterdir())
    secrets_absent(d.log(), ts)
    d.stop()


def test_revoked_consent_defers_and_asks_for_a_login_without_bouncing(daemon_factory, sink_factory,
                                                                     token_server_factory, pki, workdir):
    """No sign-in stored, then a sign-in the endpoint refuses (invalid_grant:
    consent revoked): the message stays queued (no bounce to a printer's
    address), the log says what to run, and the endpoint is asked once, not
    at every retry."""
    d, sink, ts = make_oauth_pair(daemon_factory, sink_factory, token_server_factory, pki, workdir,
                                  grant="refresh_token")
    d.start()
    send(d)
    wait_for(lambda: "event=oauth_reauth_required" in d.log(), what="the reauth log line")
    assert "spoolgate oauth login --upstream" in d.log()
    assert ts.requests() == [], "no request without a stored sign-in"
    wait_for(lambda: d.log().count("event=deferred") >= 2, what="deferrals")
    d.stop()
    # A sign-in the provider has since revoked.
    fingerprint = f"{ts.url} app-1 https://outlook.office365.com/.default refresh_token"
    store_record(d)[0].write_text(json.dumps({
        "format": 1, "generation": 1, "client": fingerprint, "refresh_token": "rt-revoked", "access_token": "",
        "expires_at_ms": 0, "refreshed_at_ms": 0}))
    ts.sign_in("rt-other")
    d.start()
    wait_for(lambda: "event=oauth_token_refused_by_endpoint" in d.log(), what="invalid_grant logged")
    wait_for(lambda: d.log().count("event=deferred") >= 2, what="deferrals")
    assert 'state="reauthorisation needed"' in d.log()
    assert [r["outcome"] for r in ts.requests()] == ["invalid_grant"], "asked once, not at every retry"
    assert len(d.queue()) == 1
    assert not sink.messages()
    assert "event=bounce_queued" not in d.log()
    assert not list((d.spool / "failed").iterdir())
    assert "rt-revoked" not in d.log()
    d.stop()


def test_token_endpoint_down_only_defers(daemon_factory, sink_factory, token_server_factory, pki, workdir):
    """A 503 from the token endpoint: deferred, then delivered once it is back."""
    ts = token_server_factory()
    ts.set_mode("down")
    sink = sink_factory(user=USER, password="unused", token_file=ts.dir / "tokens")
    d = daemon_factory(daemon_upstream_settings([oauth_upstream(sink, pki, workdir, ts)]), start=False)
    d.start()
    send(d)
    wait_for(lambda: len(ts.requests()) >= 1, what="a token request")
    wait_for(lambda: "event=oauth_token_failed" in d.log(), what="the failure logged")
    assert not sink.messages()
    assert len(d.queue()) == 1
    ts.set_mode("ok")
    sink.wait_messages(1, timeout=40)
    assert not list((d.spool / "failed").iterdir())
    d.stop()


def test_a_lost_sign_in_fails_readiness_and_oauth_login_resumes_delivery_without_a_restart(
        daemon_factory, sink_factory, token_server_factory, pki, workdir):
    """Consent gone: `spoolgate health` and /readyz fail saying what to run,
    the metrics show it; `spoolgate oauth login` (device code, answered here
    by the test) stores a new sign-in and tells the running daemon, which
    delivers the waiting message at once; `oauth status` shows it all."""
    ts = token_server_factory()
    sink = sink_factory(user=USER, password="unused", token_file=ts.dir / "tokens")
    settings = daemon_upstream_settings([oauth_upstream(sink, pki, workdir, ts, grant="refresh_token")])
    mport = free_port()
    settings["metrics"] = {"listen": f"127.0.0.1:{mport}"}
    settings["log"] = {"level": "debug"}
    d = daemon_factory(settings, start=False)
    d.start()
    send(d)
    wait_for(lambda: d.log().count("event=deferred") >= 1, what="a deferral")
    health = subprocess.run([BIN, "health", "-c", str(d.config)], capture_output=True, text=True)
    assert health.returncode == 1
    assert "needs a new OAuth sign-in" in health.stdout and "spoolgate oauth login" in health.stdout, health.stdout
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics", timeout=10).read().decode()
    assert 'spoolgate_upstream_oauth_reauth_required{upstream="smtps://localhost:%d"} 1' % sink.port in metrics
    probe = subprocess.run([BIN, "probe", "--auth", "-c", str(d.config)], capture_output=True, text=True)
    assert probe.returncode == 1 and "run spoolgate oauth login --upstream 0" in probe.stdout, probe.stdout
    status = subprocess.run([BIN, "oauth", "status", "--json", "-c", str(d.config)], capture_output=True, text=True)
    [client] = json.loads(status.stdout)["clients"]
    assert client["reauth_required"] and not client["signed_in"] and client["grant"] == "refresh_token"

    key = f"{USER.replace('@', '-')}_localhost"
    login, lines = start_oauth_login(d, "--upstream", key, until="url: ")
    assert lines[-1].startswith("url: https://localhost/devicelogin"), lines
    [code] = [l.split()[1] for l in lines if l.startswith("code: ")]
    # The person signs in (after the daemon has polled at least once: pending).
    wait_for(lambda: any(r["outcome"] == "authorization_pending" for r in ts.requests()), what="polling")
    (ts.dir / "approved").write_text(f"dc-{code.split('-')[1]}\n")
    out, _ = login.communicate(timeout=30)
    assert login.returncode == 0, "".join(lines) + out
    assert "the running daemon uses it now" in out
    sink.wait_messages(1, timeout=30)
    wait_for(lambda: subprocess.run([BIN, "health", "-c", str(d.config)], capture_output=True).returncode == 0,
             what="ready again")
    text = subprocess.run([BIN, "oauth", "status", "-c", str(d.config)], capture_output=True, text=True).stdout
    assert "refresh_token, fresh, token expires" in text and "signed in" in text, text
    _, rec = store_record(d)
    assert stat.S_IMODE(os.stat(store_record(d)[0]).st_mode) == 0o600
    assert rec["refresh_token"] == (ts.dir / "refresh").read_text().strip()
    secrets_absent(d.log(), ts)
    secrets_absent(text + out, ts)
    d.stop()
    # With the daemon stopped, status reads the store.
    offline = subprocess.run([BIN, "oauth", "status", "-c", str(d.config)], capture_output=True, text=True).stdout
    assert "no daemon answers" in offline and "signed in" in offline, offline


def test_oauth_login_refuses_what_it_cannot_sign_in(daemon_factory, sink_factory, token_server_factory, pki,
                                                     workdir):
    ts = token_server_factory()
    sink = sink_factory(user=USER, password="unused", token_file=ts.dir / "tokens")
    d = daemon_factory(daemon_upstream_settings([oauth_upstream(sink, pki, workdir, ts)]), start=False)
    for args, expect in ((["oauth", "login"], "client_credentials needs no sign-in"),
                         (["oauth", "login", "--upstream", "7"], "no upstream 7"),
                         (["oauth", "login", "--upstream", "nosuch"], "no OAuth upstream named 'nosuch'")):
        r = subprocess.run([BIN, *args, "-c", str(d.config)], capture_output=True, text=True)
        assert r.returncode == 1 and expect in r.stdout, (args, r.stdout, r.stderr)
    assert ts.requests() == []


def test_token_requests_go_through_https_proxy_from_the_environment(daemon_factory, sink_factory,
                                                                    token_server_factory, pki, workdir):
    """https_proxy in the daemon's environment is what the helper uses (the
    convention every libcurl program follows): a proxy that is not there
    shows in the failure, and no request reaches the endpoint directly."""
    ts = token_server_factory()
    sink = sink_factory(user=USER, password="unused", token_file=ts.dir / "tokens")
    proxy_port = free_port()
    d = daemon_factory(daemon_upstream_settings([oauth_upstream(sink, pki, workdir, ts)]), start=False,
                       env={"https_proxy": f"http://127.0.0.1:{proxy_port}", "no_proxy": "", "NO_PROXY": ""})
    d.start()
    send(d)
    wait_for(lambda: "event=oauth_token_failed" in d.log(), what="the failure logged")
    line = next(l for l in d.log().splitlines() if "event=oauth_token_failed" in l)
    assert str(proxy_port) in line, line
    assert ts.requests() == []
    assert not sink.messages()
    d.stop()


def rsa_credential(workdir):
    """An application certificate (RSA, self-signed) and its key, as uploaded to Entra."""
    import datetime
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "spoolgate app")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30)).sign(key, hashes.SHA256()))
    cert_path, key_path = workdir / "app-cert.pem", workdir / "app-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


def test_client_credentials_with_a_certificate_assertion(daemon_factory, sink_factory, token_server_factory, pki,
                                                        workdir):
    """Microsoft's certificate credentials: no secret leaves the machine; each
    token request carries a fresh RS256 client assertion (RFC 7523) the
    endpoint verifies against the registered certificate (signature,
    x5t#S256, aud, iss/sub, times, jti never reused)."""
    cert, key = rsa_credential(workdir)
    ts = token_server_factory(lifetime=2, client_cert=cert)
    sink = sink_factory(user=USER, password="unused", token_file=ts.dir / "tokens")
    up = oauth_upstream(sink, pki, workdir, ts)
    del up["oauth"]["client_secret_file"]
    up["oauth"].update(client_cert=str(cert), client_key=str(key))
    d = daemon_factory(daemon_upstream_settings([up]), start=False)
    d.start()
    send(d)
    sink.wait_messages(1)
    wait_for(lambda: len(ts.requests()) >= 3, timeout=20, what="refreshes, each with a new assertion")
    reqs = ts.requests()
    assert all(r["outcome"] == "ok" and r.get("assertion") for r in reqs), reqs
    assert "BEGIN" not in d.log() and CLIENT_SECRET not in d.log()
    d.stop()
