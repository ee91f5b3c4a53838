# SPDX-License-Identifier: MIT
"""The CLI verbs: check-config, queue list, version, --help."""
import json
import subprocess
from pathlib import Path

from conftest import BIN

ROOT = Path(__file__).resolve().parents[2]


def run(*args, env=None):
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=30, env=env)


def test_version_and_help():
    assert run("version").stdout.startswith("spoolgate ")
    for verb in (["run"], ["check-config"], ["queue", "list"]):
        out = run(*verb, "--help")
        assert out.returncode == 0
        assert "--config" in out.stdout


def test_check_config_prints_the_effective_config():
    out = run("check-config", "-c", str(ROOT / "conf/spoolgate.yaml"))
    assert out.returncode == 0, out.stderr
    assert "listen: [\"127.0.0.1:2525\"]" in out.stdout
    assert "store-only" in out.stdout


def test_check_config_reports_every_error(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("listen: [\"0.0.0.0:25\"]\nlimits:\n  max_message_size: lots\n  idle_timeout: 5\nspool:\n  dri: /x\n")
    out = run("check-config", "-c", str(bad))
    assert out.returncode == 1
    err = out.stderr
    assert f"{bad}:3: limits.max_message_size: expected a size like 35MiB" in err
    assert f"{bad}:4: limits.idle_timeout: expected a duration like 30s" in err
    assert f"{bad}:6: spool.dri: unknown key" in err
    assert "'0.0.0.0:25' is not a loopback address" in err
    assert "4 configuration error(s)" in err


def test_environment_only_configuration(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "SPOOLGATE_SPOOL_DIR": str(tmp_path / "s"),
           "SPOOLGATE_UPSTREAM_URL": "smtps://alerts@smtp.gmail.com:465",
           "SPOOLGATE_PASSWORD_FILE": "/run/secrets/gmail"}
    out = run("check-config", env=env)
    assert out.returncode == 0, out.stderr
    assert "url: \"smtps://alerts@smtp.gmail.com:465\"" in out.stdout
    assert "password_file: \"/run/secrets/gmail\"" in out.stdout
    bad = run("check-config", env={**env, "SPOOLGATE_LIMITS_IDLE_TIMEOUT": "forever"})
    assert bad.returncode == 1
    assert "$SPOOLGATE_LIMITS_IDLE_TIMEOUT: limits.idle_timeout: expected a duration" in bad.stderr


def test_queue_list_on_an_empty_spool(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"spool:\n  dir: {tmp_path / 'spool'}\n")
    assert json.loads(run("queue", "list", "--json", "-c", str(cfg)).stdout) == []
    assert "0 message(s)" in run("queue", "list", "-c", str(cfg)).stdout


def schema_keys(pki, tmp):
    """Every key path the daemon knows, from its own effective-config dump
    (with one upstream with an oauth block and a listener written as a map,
    so that the per-upstream and per-listener keys appear too)."""
    import yaml
    env = {"PATH": "/usr/bin:/bin", "SPOOLGATE_UPSTREAM_URL": "smtps://smtp.example.com:465",
           "SPOOLGATE_USERNAME": "relay@example.com", "SPOOLGATE_UPSTREAM_OAUTH_PROVIDER": "google",
           "SPOOLGATE_UPSTREAM_OAUTH_GRANT": "refresh_token", "SPOOLGATE_UPSTREAM_OAUTH_CLIENT_ID": "id",
           "SPOOLGATE_UPSTREAM_NAME": "main"}
    cert, key = pki.leaf("docs")
    cfg = tmp / "listen.yaml"
    cfg.write_text(f'listen: [{{address: "127.0.0.1:2525", tls: starttls, cert_file: "{cert}", key_file: "{key}"}}]\n'
                   'devices: [{name: scanner, senders: ["scanner@lan.example"]}]\n'
                   'routes: [{sender: "*@a.example", recipient_domain: b.example, client: 10.0.0.0/8, device: scanner,'
                   ' upstream: main}]\n'
                   'expect: [{sender: ups@lan.example, device: "", every: 1d}]\n'
                   'notify: [{url: "https://hooks.example/x", secret_file: /etc/hook.secret}]\n')
    dump = yaml.safe_load(run("check-config", "-c", str(cfg), env=env).stdout)
    keys = []

    def walk(prefix, v):
        if isinstance(v, dict):
            for k, x in v.items():
                walk(f"{prefix}.{k}" if prefix else k, x)
        elif isinstance(v, list) and v and isinstance(v[0], dict):
            for k, x in v[0].items():
                walk(f"{prefix}[].{k}", x)
        else:
            keys.append(prefix)

    walk("", dump)
    return keys


def test_every_key_is_documented_in_the_readme_the_man_page_and_the_default_file(pki, tmp_path):
    keys = schema_keys(pki, tmp_path)
    assert "delivery.timeouts.done" in keys and "upstreams[].password_file" in keys and len(keys) > 40
    assert "upstreams[].oauth.token_url" in keys and "listen[].tls_min_version" in keys
    assert "devices[].senders" in keys and "routes[].recipient_domain" in keys and "expect[].every" in keys
    assert "notify[].secret_file" in keys and "notify_thresholds.crash_loop" in keys
    readme = (ROOT / "README.md").read_text()
    man = (ROOT / "daemon/man/spoolgate.yaml.5").read_text()
    conf = (ROOT / "conf/spoolgate.yaml").read_text()
    for k in keys:
        parent, _, leaf = k.rpartition(".")
        # Grouped rows name the first key in full and the others by leaf.
        assert f"`{k}`" in readme or (f"`{parent}." in readme and f"`.{leaf}`" in readme), f"README lacks {k}"
        assert k in man or (parent in man and f"\\fB.{leaf}" in man), f"spoolgate.yaml(5) lacks {k}"
        assert f"{leaf}:" in conf, f"conf/spoolgate.yaml lacks {k}"


def test_man_pages_render_without_warnings():
    for page in ("spoolgate.8", "spoolgate.yaml.5"):
        r = subprocess.run(["groff", "-man", "-ww", "-z", str(ROOT / "daemon/man" / page)], capture_output=True,
                           text=True)
        assert (r.returncode, r.stderr) == (0, ""), page
    man8 = (ROOT / "daemon/man/spoolgate.8").read_text()
    for verb in ("run", "check\\-config", "queue", "probe", "health", "sendmail", "version"):
        assert f".B {verb}" in man8, verb
