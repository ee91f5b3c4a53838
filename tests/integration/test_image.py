# SPDX-License-Identifier: MIT
"""The container image, built (scripts/image: docker/Dockerfile with podman,
from Debian's own packages) and run for real: configured from the
environment and a secret file only, it relays to a TLS server on this
machine; its health check turns unhealthy when the upstream stays
unreachable; `podman stop` lets the transfer in flight finish and the
daemon, PID 1, exits 0; a container re-created on the same named volume
delivers what the first one queued; --read-only with a tmpfs for /tmp
works. The image's size and the daemon's memory in it are printed.

Without podman these tests are skipped with the reason; where
SG_REQUIRE_IMAGE=1 (CI: scripts/check) that is a failure instead."""
import os
import re
import shutil
import smtplib
import subprocess
import time
from pathlib import Path

import pytest

from conftest import PASSWORD, USER, free_port, wait_for
from test_faults import fake

ROOT = Path(__file__).resolve().parents[2]
PODMAN = [str(ROOT / "scripts" / "podman")]
TAG = "localhost/spoolgate:test"
SPOOL = "/var/spool/spoolgate"

if not shutil.which("podman"):
    if os.environ.get("SG_REQUIRE_IMAGE") == "1":
        raise RuntimeError("SG_REQUIRE_IMAGE=1 but podman is not installed (scripts/bootstrap installs it)")
    pytest.skip("no container engine: the image tests need podman (apt-get install podman runc debootstrap)",
                allow_module_level=True)


def podman(*args, check=True, timeout=120):
    return subprocess.run(PODMAN + list(args), capture_output=True, text=True, check=check, timeout=timeout)


@pytest.fixture(scope="session")
def image():
    """scripts/image (one build at a time on the machine, and cached: with
    nothing changed it takes seconds; scripts/check starts it early)."""
    r = subprocess.run([str(ROOT / "scripts" / "image"), TAG], capture_output=True, text=True, timeout=1800)
    assert r.returncode == 0, r.stdout + r.stderr
    print(r.stdout, end="")
    return TAG


class Containers:
    """The containers and volumes a test made, removed after it."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.names, self.volumes = [], []
        self.secrets = workdir / "secrets"

    def secret_dir(self, pki):
        """The secret file and the CA, mounted read-only at /run/secrets as
        Docker and Compose mount secrets (mode 0444)."""
        self.secrets.mkdir(exist_ok=True)
        (self.secrets / "smtp_password").write_text(PASSWORD + "\n")
        shutil.copy(pki.ca_file, self.secrets / "ca.pem")
        for f in self.secrets.iterdir():
            f.chmod(0o444)
        return f"{self.secrets}:/run/secrets:ro"

    def volume(self):
        name = f"sg-test-{os.getpid()}-{len(self.volumes)}"
        podman("volume", "create", name)
        self.volumes.append(name)
        return name

    def run(self, env, volume, *extra):
        name = f"sg-test-{os.getpid()}-{len(self.names)}-{int(time.time() * 1000) % 100000}"
        args = ["run", "-d", "--name", name, "--network", "host", "-v", f"{volume}:{SPOOL}", *extra]
        for k, v in env.items():
            args += ["-e", f"{k}={v}"]
        podman(*args, TAG)
        self.names.append(name)
        wait_for(lambda: re.search(r'event=ready|"event":"ready"', self.logs(name)) or self.state(name) != "running",
                 timeout=30, what="the container ready")
        assert self.state(name) == "running", self.logs(name)
        return name

    def logs(self, name):
        r = podman("logs", name, check=False)
        return r.stdout + r.stderr

    def state(self, name):
        return podman("inspect", "--format", "{{.State.Status}}", name).stdout.strip()

    def exit_code(self, name):
        return int(podman("inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip())

    def remove(self):
        for n in self.names:
            podman("rm", "-f", "-t", "0", n, check=False)
        for v in self.volumes:
            podman("volume", "rm", "-f", v, check=False)


@pytest.fixture
def containers(workdir, image):
    c = Containers(workdir)
    yield c
    for n in c.names:  # shown when the test fails
        print(f"--- container {n}:\n{c.logs(n)}")
    c.remove()


def environment(port, upstream_url, **extra):
    """Everything from the environment, the password from the secret file."""
    env = {"SPOOLGATE_LISTEN": f"127.0.0.1:{port}", "SPOOLGATE_HOSTNAME": "relay.test",
           "SPOOLGATE_UPSTREAM_URL": upstream_url, "SPOOLGATE_USERNAME": USER,
           "SPOOLGATE_PASSWORD_FILE": "/run/secrets/smtp_password",
           "SPOOLGATE_UPSTREAM_CA_FILE": "/run/secrets/ca.pem"}
    env.update(extra)
    return env


def submit(port, body=b"Subject: from the image test\r\n\r\nhello\r\n"):
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
        s.sendmail("app@lan.example", ["ops@example.com"], body)


def test_the_image_relays_from_the_environment_read_only_and_stops_cleanly(containers, sink_factory, pki):
    """Read-only root, a tmpfs for /tmp, the spool on a named volume: a
    message goes to the TLS server; the health check is healthy; the daemon
    runs as spoolgate, as PID 1; podman stop during a slow 10 MB transfer
    lets it finish and the container exits 0."""
    f = fake(sink_factory, pki, "slow-data")
    port = free_port()
    env = environment(port, f"smtp+starttls://localhost:{f.port}")
    name = containers.run(env, containers.volume(), "-v", containers.secret_dir(pki), "--read-only",
                          "--tmpfs", "/tmp")
    submit(port)
    wait_for(lambda: len(f.messages()) == 1, timeout=30, what="relayed through the container")
    hc = podman("healthcheck", "run", name, check=False)
    assert hc.returncode == 0, hc.stdout + hc.stderr
    top = podman("exec", name, "sh", "-c", "id -un; tr '\\0' ' ' </proc/1/cmdline; echo; grep VmRSS /proc/1/status")
    user, cmdline, rss = top.stdout.splitlines()[:3]
    assert user == "spoolgate" and cmdline.startswith("spoolgate run"), top.stdout
    size = int(podman("image", "inspect", "--format", "{{.Size}}", TAG).stdout.strip())
    print(f"\nimage {TAG}: {size / 1e6:.1f} MB; the daemon in it: {rss.split(':')[1].strip()} resident")

    line = b"0123456789" * 9 + b"\r\n"
    submit(port, b"Subject: big\r\n\r\n" + line * (10 * 1024 * 1024 // len(line)))
    wait_for(lambda: sum(e.startswith("DATA") for e in f.events()) >= 2, what="the second transfer begun")
    start = time.monotonic()
    podman("stop", "-t", "60", name, timeout=90)
    print(f"podman stop took {time.monotonic() - start:.1f} s")
    assert containers.state(name) == "exited" and containers.exit_code(name) == 0, containers.logs(name)
    assert len(f.messages()) == 2
    logs = containers.logs(name)
    assert "event=shutdown" in logs and "event=stopped" in logs and "event=delivered" in logs.split("event=shutdown")[1]


def test_unhealthy_while_the_upstream_is_unreachable(containers, pki):
    """metrics.unreachable_after (2 s here) after the first failure, with
    nothing listening where the upstream should be, the health check says
    unhealthy, and podman records it."""
    port = free_port()
    env = environment(port, f"smtps://localhost:{free_port()}", SPOOLGATE_METRICS_UNREACHABLE_AFTER="2s")
    name = containers.run(env, containers.volume(), "-v", containers.secret_dir(pki))
    assert podman("healthcheck", "run", name, check=False).returncode == 0
    submit(port)
    wait_for(lambda: podman("healthcheck", "run", name, check=False).returncode != 0, timeout=30,
             what="the check failing")

    # The image's HEALTHCHECK: unhealthy after three failed checks in a row
    # once its 10 s start period is over (podman runs the checks on a timer
    # where systemd runs; here the test runs them).
    def status():
        podman("healthcheck", "run", name, check=False)
        return podman("inspect", "--format", "{{.State.Health.Status}}", name).stdout.strip() == "unhealthy"

    wait_for(status, timeout=60, what="podman's health status unhealthy")


def test_a_container_recreated_on_the_same_volume_delivers_what_the_first_queued(containers, sink_factory, pki):
    """The first container cannot reach its upstream and queues a message;
    it is removed. A new container on the same named volume, with the
    upstream now there, delivers it."""
    volume = containers.volume()
    port = free_port()
    # A short first retry: the second container finds the message due soon.
    dead = environment(port, f"smtps://localhost:{free_port()}", SPOOLGATE_DELIVERY_RETRY_FIRST="1s")
    first = containers.run(dead, volume, "-v", containers.secret_dir(pki))
    submit(port)
    wait_for(lambda: "event=deferred" in containers.logs(first), what="deferred")
    podman("stop", "-t", "30", first)
    podman("rm", first)
    sink = sink_factory(tls="implicit", user=USER, password=PASSWORD)
    second = containers.run(environment(port, f"smtps://localhost:{sink.port}"), volume, "-v",
                            containers.secret_dir(pki))
    sink.wait_messages(1)
    assert "queued=1" in containers.logs(second)


def test_the_compose_sidecar_as_docker_compose_file_says(containers, sink_factory, pki, workdir):
    """docker/compose.yaml's two services, started with the file's own
    settings (podman-compose 1.0.3, Debian 12's, hands network_mode
    "service:spoolgate" to podman verbatim, which wants "container:...", and
    drops stop_grace_period and depends_on's condition, so this test reads
    the file and starts them itself): spoolgate read-only, every capability
    dropped, no-new-privileges, the password a secret file, the spool the
    named volume; the app in spoolgate's network namespace once spoolgate
    is healthy, sending to 127.0.0.1. Mapped to this machine: the provider
    is a TLS server here (its CA a second secret), both run in the host's
    network namespace, and the listen port is a free one instead of 2525."""
    import yaml
    compose = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())
    relay, app = compose["services"]["spoolgate"], compose["services"]["app"]
    sink = sink_factory(tls="implicit", user=USER, password=PASSWORD)
    port = free_port()
    env = {k: str(v) for k, v in relay["environment"].items()}
    env.update(SPOOLGATE_UPSTREAM_URL=f"smtps://localhost:{sink.port}", SPOOLGATE_USERNAME=USER,
               SPOOLGATE_UPSTREAM_CA_FILE="/run/secrets/ca.pem", SPOOLGATE_LISTEN=f"127.0.0.1:{port}")
    assert env["SPOOLGATE_PASSWORD_FILE"] == f"/run/secrets/{relay['secrets'][0]}"
    [volume_spec] = relay["volumes"]
    assert volume_spec == f"spool:{SPOOL}" and "spool" in compose["volumes"]
    args = ["-v", containers.secret_dir(pki)]
    if relay.get("read_only"):
        args.append("--read-only")
    for cap in relay.get("cap_drop", []):
        args += ["--cap-drop", cap]
    for opt in relay.get("security_opt", []):
        args += ["--security-opt", opt]
    grace = int(relay["stop_grace_period"].rstrip("s"))
    args += ["--stop-timeout", str(grace)]
    name = containers.run(env, containers.volume(), *args)
    # depends_on: spoolgate healthy first.
    wait_for(lambda: podman("healthcheck", "run", name, check=False).returncode == 0, what="healthy")
    assert app["network_mode"] == "service:spoolgate"
    # Compose's interpolation turns $$ into $; the port is this test's.
    command = [a.replace("$$", "$").replace("/2525", f"/{port}") for a in app["command"]]
    app_name = f"{name}-app"
    podman("run", "-d", "--name", app_name, "--network", f"container:{name}", "localhost/debian:bookworm-slim",
           *command)
    containers.names.append(app_name)
    [m] = sink.wait_messages(1)
    assert b"Subject: hello from the app" in m["content"]
    wait_for(lambda: "221 " in containers.logs(app_name), what="the app's QUIT answered")
    assert "354 " in containers.logs(app_name) and "early_talker" not in containers.logs(name)
    podman("stop", "-t", str(grace), name, timeout=grace + 30)
    assert containers.exit_code(name) == 0, containers.logs(name)
