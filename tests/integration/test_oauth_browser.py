# SPDX-License-Identifier: MIT
"""`spoolgate oauth login` in a browser (issue 14, Google's way): the
authorization code with PKCE and a loopback redirect. The test plays the
browser: it opens the printed URL at the fake authorization server over real
TLS and follows its redirect to the port `oauth login` listens on, as a
browser does."""
import re
import ssl
import subprocess
import urllib.error
import urllib.parse
import urllib.request

from conftest import BIN, USER, daemon_upstream_settings, free_port, send, start_oauth_login, wait_for
from test_oauth import oauth_upstream, secrets_absent, store_record


def browser(pki):
    """An HTTP client that trusts the test CA, follows redirects and uses no proxy."""
    ctx = ssl.create_default_context(cafile=pki.ca_file)
    return urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=ctx))


def fetch(opener, url, method="GET"):
    """(status, body) of a GET, errors included."""
    try:
        with opener.open(urllib.request.Request(url, method=method), timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def start_login(d, *args):
    """Runs `oauth login` until it waits for the browser: (process, lines, url, loopback address)."""
    login, lines = start_oauth_login(d, *args, until="(a browser on another machine")
    [url] = [l.split(" ", 1)[1].strip() for l in lines if l.startswith("url: ")]
    [loopback] = re.findall(r"waiting for the browser at (http://127\.0\.0\.1:\d+)", "".join(lines))
    return login, lines, url, loopback


def google_upstream(sink, pki, workdir, ts):
    u = oauth_upstream(sink, pki, workdir, ts, grant="client_credentials")
    o = u["oauth"]
    # Google's preset, with its endpoints pointed at the fake; a desktop
    # client has a (not very secret) client secret.
    u["oauth"] = {"provider": "google", "grant": "refresh_token", "client_id": o["client_id"],
                  "client_secret_file": o["client_secret_file"], "token_url": ts.url,
                  "authorization_url": ts.url.replace("/token", "/authorize"), "ca_file": o["ca_file"]}
    return u


def test_google_sign_in_in_a_browser_with_pkce_resumes_delivery(daemon_factory, sink_factory,
                                                               token_server_factory, pki, workdir):
    """provider google: `oauth login` prints the authorization URL (PKCE
    S256, state, offline access), answers the browser's redirect on its own
    loopback port, trades the code and verifier for tokens, and the running
    daemon delivers the message that waited for the sign-in."""
    ts = token_server_factory()
    sink = sink_factory(user=USER, password="unused", token_file=ts.dir / "tokens")
    settings = daemon_upstream_settings([google_upstream(sink, pki, workdir, ts)])
    settings["log"] = {"level": "debug"}
    d = daemon_factory(settings, start=False)
    d.start()
    send(d)
    wait_for(lambda: d.log().count("event=deferred") >= 1, what="a deferral while no one has signed in")

    login, lines, url, loopback = start_login(d)
    q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
    assert url.startswith(ts.url.replace("/token", "/authorize?")), url
    assert q["redirect_uri"] == loopback and q["code_challenge_method"] == "S256"
    assert q["scope"] == "https://mail.google.com/" and q["access_type"] == "offline" and q["prompt"] == "consent"
    assert len(q["state"]) >= 32 and "code_verifier" not in q

    status, page = fetch(browser(pki), url)
    assert status == 200 and "signed in" in page, page
    out, _ = login.communicate(timeout=30)
    out = "".join(lines) + out
    assert login.returncode == 0, out
    assert "the running daemon uses it now" in out
    sink.wait_messages(1, timeout=30)

    [auth] = [r for r in ts.requests() if r["path"] == "/authorize"]
    assert auth["outcome"] == "redirect" and auth["query"]["client_id"] == "app-1"
    [exchange] = [r for r in ts.requests() if r.get("grant") == "authorization_code"]
    assert exchange["outcome"] == "ok", ts.requests()
    _, rec = store_record(d)
    assert rec["refresh_token"] == (ts.dir / "refresh").read_text().strip()
    secrets_absent(d.log(), ts)
    secrets_absent(out, ts)


def chromium(url, workdir):
    """Opens url in Debian's Chromium, headless, and returns the page it ends
    on (after every redirect) as its DOM. Nothing beyond loopback: background
    networking, updates and sync are off. The fake authorization server's
    certificate comes from the test CA, which this throwaway profile does not
    know: the browser is told to accept it (what a person's browser trusts
    is not spoolgate's to check; the daemon's own TLS is verified)."""
    profile = workdir / "chromium-profile"
    r = subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                        "--disable-background-networking", "--disable-component-update", "--disable-sync",
                        "--disable-default-apps", "--no-proxy-server", "--ignore-certificate-errors",
                        f"--user-data-dir={profile}", "--dump-dom", url],
                       capture_output=True, text=True, timeout=120)
    return r.stdout


def test_google_sign_in_with_a_real_browser(daemon_factory, sink_factory, token_server_factory, pki, workdir):
    """The same sign-in with Chromium (headless) as the browser: it opens the
    printed URL, follows the authorization server's redirect to the loopback
    port of `oauth login`, and shows its answer; the tokens are stored and
    the waiting message is delivered."""
    ts = token_server_factory()
    sink = sink_factory(user=USER, password="unused", token_file=ts.dir / "tokens")
    d = daemon_factory(daemon_upstream_settings([google_upstream(sink, pki, workdir, ts)]), start=False)
    d.start()
    send(d)
    wait_for(lambda: "event=deferred" in d.log(), what="a deferral while no one has signed in")
    login, lines, url, loopback = start_login(d)
    page = chromium(url, workdir)
    out, _ = login.communicate(timeout=60)
    out = "".join(lines) + out
    assert login.returncode == 0, out + page
    assert "signed in" in page, page
    [auth] = [r for r in ts.requests() if r["path"] == "/authorize"]
    assert auth["outcome"] == "redirect"
    assert [r["outcome"] for r in ts.requests() if r.get("grant") == "authorization_code"] == ["ok"]
    sink.wait_messages(1, timeout=30)
    assert store_record(d)[1]["refresh_token"] == (ts.dir / "refresh").read_text().strip()
    secrets_absent(page, ts)
    d.stop()


def test_browser_sign_in_refuses_answers_not_its_own_and_a_refused_consent(daemon_factory, sink_factory,
                                                                          token_server_factory, pki,
                                                                          workdir):
    """A custom endpoint without device authorization gets the browser flow.
    Requests that are not this sign-in's redirect (another path, another
    method, another state: some other page's doing) are refused and the wait
    goes on; a refused consent ends it with the provider's reason, the
    browser is told, and nothing is stored."""
    ts = token_server_factory()
    sink = sink_factory(user=USER, password="unused", token_file=ts.dir / "tokens")
    u = oauth_upstream(sink, pki, workdir, ts, grant="refresh_token")
    del u["oauth"]["device_authorization_url"]
    u["oauth"]["authorization_url"] = ts.url.replace("/token", "/authorize")
    d = daemon_factory(daemon_upstream_settings([u]), start=False)
    r = subprocess.run([BIN, "oauth", "login", "-c", str(d.config)], capture_output=True, text=True)
    assert r.returncode == 1 and "does not exist yet: start the daemon once" in r.stdout, r.stdout
    d.start()

    login, lines, url, loopback = start_login(d)
    plain = browser(pki)
    assert fetch(plain, loopback + "/favicon.ico")[0] == 404
    assert fetch(plain, loopback + "/?code=x", method="POST")[0] == 405
    status, page = fetch(plain, loopback + "/?code=stolen&state=not-this-one")
    assert status == 400 and "not for the sign-in" in page
    assert login.poll() is None, "a stray request ended the sign-in"

    ts.set_mode("deny")
    status, page = fetch(plain, url)
    assert status == 403 and "access_denied" in page, page
    out, _ = login.communicate(timeout=30)
    out = "".join(lines) + out
    assert login.returncode == 1, out
    assert "refused an answer that is not for this sign-in" in out
    assert "the authorization server refused the sign-in: access_denied: the user said no" in out
    assert store_record(d)[1] is None
    assert not [r for r in ts.requests() if r.get("grant")], "a code was traded though none was good"


def test_browser_sign_in_on_a_port_of_the_operators_choosing(daemon_factory, sink_factory, token_server_factory,
                                                            pki, workdir):
    """--port fixes the loopback port (for an ssh -L forward from the
    operator's machine); --browser picks the browser over a device code."""
    ts = token_server_factory()
    sink = sink_factory(user=USER, password="unused", token_file=ts.dir / "tokens")
    u = oauth_upstream(sink, pki, workdir, ts, grant="refresh_token")
    u["oauth"]["scope"] = "https://outlook.office.com/SMTP.Send offline_access"
    u["oauth"]["authorization_url"] = ts.url.replace("/token", "/authorize")
    d = daemon_factory(daemon_upstream_settings([u]), start=False)
    d.start()  # it makes the spool, and stops: the sign-in is stored for its next start
    d.stop()
    port = free_port()
    login, lines, url, loopback = start_login(d, "--browser", "--port", str(port))
    assert loopback == f"http://127.0.0.1:{port}" and f"ssh -L {port}:127.0.0.1:{port}" in "".join(lines)
    # Not Google: no Google-only parameters.
    assert "access_type" not in url and "prompt" not in url
    status, page = fetch(browser(pki), url)
    assert status == 200 and "signed in" in page, page
    out, _ = login.communicate(timeout=30)
    assert login.returncode == 0 and "no daemon answered: it uses the sign-in when it starts" in out, out
    assert store_record(d)[1]["refresh_token"] == (ts.dir / "refresh").read_text().strip()
    assert not [r for r in ts.requests() if r["path"] == "/devicecode"]
