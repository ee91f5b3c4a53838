# SPDX-License-Identifier: MIT
"""The container image's contract, checked without an engine: the
Dockerfile's instructions, the runtime packages it installs, and its
entrypoint run directly with the environment that docker/compose.yaml gives
it, secret file included. test_image.py builds and runs the image itself."""
import json
import os
import shlex
import signal
import smtplib
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import BIN, wait_for

HELPER = os.path.join(os.path.dirname(BIN), "spoolgate-https")
from conftest import PASSWORD, USER

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "docker" / "Dockerfile"


def instructions():
    """[(INSTRUCTION, argument)] with continuation lines joined."""
    out, cur = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        cur += line.rstrip("\\").strip() + " "
        if not line.endswith("\\"):
            word, _, rest = cur.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
            cur = ""
    return out


def runtime_stage():
    ins = instructions()
    last_from = max(i for i, (w, _) in enumerate(ins) if w == "FROM")
    return ins[last_from:]


def exec_form(arg):
    return json.loads(arg) if arg.startswith("[") else shlex.split(arg)


def test_dockerfile_contract():
    ins = instructions()
    froms = [a for w, a in ins if w == "FROM"]
    # Both stages start from BASE: the registry's bookworm-slim by default,
    # the one scripts/image makes from Debian's packages in CI.
    assert ins[0] == ("ARG", "BASE=debian:bookworm-slim")
    assert froms == ["${BASE} AS build", "${BASE}"]
    rt = dict((w, a) for w, a in runtime_stage() if w != "RUN")
    assert rt["USER"] not in ("root", "0")
    assert rt["VOLUME"] == "/var/spool/spoolgate"
    assert rt["EXPOSE"] == "2525"
    assert rt["STOPSIGNAL"] == "SIGTERM"
    assert exec_form(rt["HEALTHCHECK"].split("CMD", 1)[1].strip()) == ["spoolgate", "health"]
    envs = [a for w, a in runtime_stage() if w == "ENV"]
    assert "SPOOLGATE_SPOOL_DIR=/var/spool/spoolgate" in envs
    assert "SPOOLGATE_SUBMISSION_SOCKET=/var/spool/spoolgate/submit.sock" in envs  # /run is not ours to write
    # Only the binaries are copied in: no compiler, no sources. The helper
    # sits beside the daemon, where the daemon looks for it.
    assert [a for w, a in runtime_stage() if w == "COPY"] == [
        "--from=build /src/build/spoolgate /usr/local/bin/spoolgate",
        "--from=build /src/build/spoolgate-https /usr/local/bin/spoolgate-https"]


def test_runtime_packages_exist_and_cover_the_binary():
    [install] = [a for w, a in runtime_stage() if w == "RUN" and "apt-get install" in a]
    pkgs = [p for p in install.split("--no-install-recommends", 1)[1].split("&&")[0].split() if p]
    assert sorted(pkgs) == sorted(["libuv1", "android-libboringssl", "libyaml-cpp0.7", "libcurl3-gnutls",
                                   "libsodium23", "ca-certificates"])
    for p in pkgs:
        assert subprocess.run(["apt-cache", "show", p], capture_output=True).returncode == 0, f"no package {p}"
    # Every shared library the binaries need comes from those packages or
    # their dependencies (or libc and the C++ runtime, which the base image
    # has).
    base = {"libc6", "libstdc++6", "libgcc-s1"}
    deps = set()
    for p in pkgs:
        out = subprocess.run(["apt-cache", "depends", "--recurse", "--important", p], capture_output=True,
                             text=True).stdout
        deps |= {l.split(":", 1)[1].strip() for l in out.splitlines() if ":" in l}
        deps |= {l.strip() for l in out.splitlines() if l and not l.startswith(" ")}
    for lib in shared_libraries(BIN) + shared_libraries(HELPER):
        owner = subprocess.run(["dpkg", "-S", os.path.realpath(lib)], capture_output=True, text=True)
        if owner.returncode != 0:  # usrmerge: dpkg knows the /lib path
            owner = subprocess.run(["dpkg", "-S", os.path.realpath(lib).removeprefix("/usr")], capture_output=True,
                                   text=True)
        pkg = owner.stdout.split(":")[0]
        assert pkg in set(pkgs) | base | deps, f"{lib} comes from {pkg}, which the runtime stage does not install"


def shared_libraries(binary):
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    libs = [l.split("=>")[1].split()[0] for l in out.splitlines() if "=>" in l and "/" in l.split("=>")[1]]
    return [l for l in libs if "asan" not in l and "ubsan" not in l]


def test_libcurl_and_boringssl_never_share_a_process():
    """libcurl (GnuTLS build, but libssh2 brings OpenSSL's libcrypto.so.3)
    lives in the helper; BoringSSL in the daemon. Either one in the other
    binary would bind OpenSSL's calls to BoringSSL's symbols."""
    daemon = [os.path.basename(l) for l in shared_libraries(BIN)]
    helper = [os.path.basename(l) for l in shared_libraries(HELPER)]
    assert any(l.startswith("libcurl") for l in helper), helper
    assert not any(l.startswith("libcurl") or l.startswith("libcrypto.so.3") or l.startswith("libssl.so.3")
                   for l in daemon), daemon
    assert any("android" in l for l in shared_libraries(BIN)), daemon
    assert not any("android" in l for l in shared_libraries(HELPER)), helper


@pytest.fixture
def compose_env(workdir, sink_factory, pki):
    """The spoolgate service's environment from docker/compose.yaml plus the
    image's ENV, with the container's paths and the provider mapped to this
    machine: the spool volume to a directory, the secret to a file, the
    provider to a TLS sink."""
    compose = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())
    service = compose["services"]["spoolgate"]
    env = {}
    for w, a in runtime_stage():
        if w == "ENV":
            k, v = a.split("=", 1)
            env[k] = v
    env.update({k: str(v) for k, v in service["environment"].items()})
    assert set(env) >= {"SPOOLGATE_UPSTREAM_URL", "SPOOLGATE_USERNAME", "SPOOLGATE_PASSWORD_FILE"}
    assert env["SPOOLGATE_PASSWORD_FILE"] == "/run/secrets/" + service["secrets"][0]
    assert f"spool:{env['SPOOLGATE_SPOOL_DIR']}" in service["volumes"]
    sink = sink_factory(tls="implicit", user=USER, password=PASSWORD)
    secret = workdir / "run-secrets-smtp_password"
    secret.write_text(PASSWORD + "\n")
    (workdir / "volume").mkdir()
    env.update(SPOOLGATE_SPOOL_DIR=str(workdir / "volume"), SPOOLGATE_PASSWORD_FILE=str(secret),
               SPOOLGATE_SUBMISSION_SOCKET=str(workdir / "volume" / "submit.sock"),
               SPOOLGATE_UPSTREAM_URL=f"smtps://localhost:{sink.port}", SPOOLGATE_USERNAME=USER,
               SPOOLGATE_UPSTREAM_CA_FILE=pki.ca_file, SPOOLGATE_LISTEN="127.0.0.1:0",
               SPOOLGATE_LOG_FORMAT="text", PATH=os.environ["PATH"])
    # The image's command line, with the binary under test.
    ep = [a for w, a in runtime_stage() if w == "ENTRYPOINT"][0]
    cmd = [a for w, a in runtime_stage() if w == "CMD"][0]
    argv = exec_form(ep) + exec_form(cmd)
    assert argv[0] == "spoolgate"
    return env, [BIN] + argv[1:], sink


def test_entrypoint_with_the_compose_environment_relays_mail(compose_env, workdir):
    env, argv, sink = compose_env
    log = open(workdir / "container.log", "wb")
    proc = subprocess.Popen(argv, env=env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT)
    try:
        text = lambda: (workdir / "container.log").read_text()
        wait_for(lambda: "event=ready" in text(), what="ready")
        port = int(text().split("event=listening address=127.0.0.1:")[1].split()[0])
        assert "event=config_ignored" not in text()
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
            s.sendmail("app@example.com", ["ops@example.com"], b"Subject: from the app\r\n\r\nhi\r\n")
        [m] = sink.wait_messages(1)
        assert m["auth_user"] == USER and m["rcpt_tos"] == ["ops@example.com"]
        # HEALTHCHECK, run as Docker would: same environment, no arguments.
        hc = subprocess.run([BIN, "health"], env=env, cwd="/", capture_output=True, text=True, timeout=30)
        assert hc.returncode == 0 and hc.stdout.startswith("ok: ready"), hc.stdout + hc.stderr
        # STOPSIGNAL
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
    assert PASSWORD not in text()


def overlay_mount(base: Path):
    for d in ("lower", "upper", "work", "merged"):
        (base / d).mkdir()
    r = subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                        f"lowerdir={base}/lower,upperdir={base}/upper,workdir={base}/work", str(base / "merged")],
                       capture_output=True, text=True)
    assert r.returncode == 0, f"cannot mount an overlay filesystem (the tests run as root): {r.stderr}"
    return base / "merged"


@pytest.mark.parametrize("where", ["overlay", "volume"])
def test_a_spool_not_on_a_volume_is_warned_about(daemon_factory, workdir, where):
    base = workdir / "fs"
    base.mkdir()
    if where == "overlay":
        mnt = overlay_mount(base)
    else:
        mnt = base / "vol"
        mnt.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mnt)], check=True)
    try:
        d = daemon_factory({"spool": {"dir": str(mnt / "spool")}})
        d.stop()
        warned = "event=spool_not_persistent" in d.log()
        assert warned == (where == "overlay"), d.log()
        if warned:
            assert "mount a volume there" in d.log()
    finally:
        subprocess.run(["umount", str(mnt)], check=True)
