"""The offline bundle end to end on this machine: build a small bundle, serve it on 127.0.0.1, run
roles/bundle_source against localhost (its key, source and apt lists in a temp dir, apt's state
private), install nothing; tampered files, a wrong pin and an unreachable bundle fail clearly.

Needs the host's Debian mirror (the packages are downloaded from it) and gpg; skipped otherwise.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from lab.ansible_env import ansible_command, ansible_env

# One worker builds and serves the bundle for every test here (tests/conftest.py WORKER_GROUPS).

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PACKAGES = "hello,jq"
APT_DIRS: list[Path] = []

PLAYBOOK = """
- name: Use the offline bundle on this machine
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Run roles/bundle_source
      ansible.builtin.include_role:
        name: bundle_source
    - name: Write what the later roles would see
      ansible.builtin.copy:
        dest: "{{ result_file }}"
        mode: "0600"
        content: >-
          {{ {'pouchd_archive_src': pouchd_archive_src,
              'pouchd_archive_url': pouchd_archive_url | default(''),
              'pouchd_archive_sha256': pouchd_archive_sha256,
              'dragonfly_archive_src': dragonfly_archive_src,
              'dragonfly_archive_url': dragonfly_archive_url | default(''),
              'dragonfly_archive_sha256': dragonfly_archive_sha256 | default('')} | to_json }}
"""


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class Bundle:
    out: Path
    state: Path
    stand_in: Path
    key_sha256: str
    manifest_sha256: str
    url: str
    build_stdout: str
    inventory: Path

    def copy(self, name: str) -> tuple[Path, str]:
        """A copy of the bundle served beside it (to tamper with): (dir, url)."""
        dest = self.out.parent / name
        shutil.copytree(self.out, dest)
        return dest, self.url.replace("/bundle/", f"/{name}/")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"python -m http.server exited {proc.returncode}"
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer")


def _missing() -> str | None:
    for tool in ("gpg", "gpgv", "apt-get", "dpkg-scanpackages", "apt-ftparchive"):
        if shutil.which(tool) is None:
            return f"{tool} is missing"
    if os.geteuid() != 0:
        return "needs root (the role writes root-owned files, even into a temp dir)"
    return None


def build(tmp: Path, inventory: Path, out: Path, state: Path) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "bundle", "build", "--inventory", str(inventory), "--out", str(out),
            "--state", str(state), "--packages", PACKAGES, "--no-test-images"]  # fmt: skip
    env = dict(os.environ, PATH=f"{BIN}:{os.environ.get('PATH', '')}")
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)


def pins(stdout: str) -> dict[str, str]:
    found = {}
    for line in stdout.splitlines():
        key, _, value = line.strip().partition(": ")
        if key in ("pouch_bundle_key_sha256", "pouch_bundle_manifest_sha256"):
            found[key] = value.strip()
    return found


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bundle]:
    reason = _missing()
    if reason:
        pytest.skip(reason)
    tmp = tmp_path_factory.mktemp("bundle")
    stand_in = tmp / "pouch-1.3.0-stand-in.tar.gz"
    stand_in.write_bytes(b"not really pouch, but pinned like it\n")
    inventory = tmp / "inventory"
    (inventory / "group_vars").mkdir(parents=True)
    (inventory / "hosts.yml").write_text(
        "all:\n  children:\n    pouch_nodes:\n      hosts:\n        node1: {}\n"
    )
    dragonfly = tmp / "dragonfly-1.0.6-stand-in.tar.gz"
    dragonfly.write_bytes(b"not really Dragonfly\n")
    (inventory / "group_vars" / "all.yml").write_text(
        f"pouchd_archive_src: {stand_in}\npouchd_archive_sha256: {sha256(stand_in)}\n"
        f"dragonfly_enabled: true\ndragonfly_archive_src: {dragonfly}\n"
        f"dragonfly_archive_sha256: {sha256(dragonfly)}\n"
    )
    out, state = tmp / "www" / "bundle", tmp / "bundle.state"
    result = build(tmp, inventory, out, state)
    if result.returncode != 0 and "apt-get update" in result.stderr:
        pytest.skip(f"the host's Debian mirror is unreachable: {result.stderr.strip()[-300:]}")
    assert result.returncode == 0, result.stdout + result.stderr
    found = pins(result.stdout)
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            "--directory",
            str(tmp / "www"),
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(f"http://127.0.0.1:{port}/bundle/MANIFEST.sha256", server)
        yield Bundle(
            out=out,
            state=state,
            stand_in=stand_in,
            key_sha256=found["pouch_bundle_key_sha256"],
            manifest_sha256=found["pouch_bundle_manifest_sha256"],
            url=f"http://127.0.0.1:{port}/bundle/",
            build_stdout=result.stdout,
            inventory=inventory,
        )
    finally:
        server.terminate()
        server.wait(timeout=10)
        for apt in APT_DIRS:
            shutil.rmtree(apt, ignore_errors=True)


def run_role(
    tmp: Path, url: str, key_sha256: str, manifest_sha256: str, extra: dict | None = None
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """roles/bundle_source against localhost; key, source and apt state in a temp dir ``tmp/apt`` links to."""
    # Not below pytest's temp dirs (0700 root): apt's gpgv runs as the _apt user and must read the key.
    if (tmp / "apt").is_symlink():  # a second run on the same node
        apt = (tmp / "apt").resolve()
    else:
        apt = Path(tempfile.mkdtemp(prefix="bundle-apt-"))
        apt.chmod(0o755)
        (tmp / "apt").symlink_to(apt)
        APT_DIRS.append(apt)
    for d in ("state/lists/partial", "cache/archives/partial", "keyrings", "sources"):
        (apt / d).mkdir(parents=True, exist_ok=True)
    (apt / "status").touch()
    playbook = tmp / "playbook.yml"
    playbook.write_text(PLAYBOOK)
    variables = {
        "ansible_python_interpreter": sys.executable,
        "pouch_bundle_url": url,
        "pouch_bundle_key_sha256": key_sha256,
        "pouch_bundle_manifest_sha256": manifest_sha256,
        "bundle_source_keyring_dir": str(apt / "keyrings"),
        "bundle_source_sources_dir": str(apt / "sources"),
        "bundle_source_apt_options": [
            f"Dir::State={apt / 'state'}",
            f"Dir::State::status={apt / 'status'}",
            f"Dir::Cache={apt / 'cache'}",
            "Debug::NoLocking=1",
        ],
        "result_file": str(tmp / "result.json"),
        **(extra or {}),
    }
    env = ansible_env()
    # The inventory's own pouchd settings (extra vars would outrank the role's facts).
    inventory = tmp / "inventory.yml"
    inventory.write_text(
        "all:\n  hosts:\n    localhost:\n      pouchd_archive_src: /controller/path/pouch.tar.gz\n"
        "      pouchd_archive_sha256: ''\n      dragonfly_enabled: true\n"
        "      dragonfly_archive_src: /controller/path/dragonfly.tar.gz\n"
    )
    argv = [
        ansible_command("ansible-playbook"),
        "-i",
        str(inventory),
        str(playbook),
        "-e",
        json.dumps(variables),
    ]
    argv += ["-v"] if os.environ.get("BUNDLE_TEST_VERBOSE") else []
    result = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    return result, apt


def apt_private(apt: Path, *args: str) -> subprocess.CompletedProcess[str]:
    opts = [f"Dir::Etc::sourcelist={apt / 'sources' / 'pouch-bundle.sources'}", "Dir::Etc::sourceparts=-",
            f"Dir::State={apt / 'state'}", f"Dir::State::status={apt / 'status'}",
            f"Dir::Cache={apt / 'cache'}", "Debug::NoLocking=1"]  # fmt: skip
    argv = ["apt-cache", *[x for o in opts for x in ("-o", o)], *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120)


def test_layout_and_manifest_cover_every_file(bundle: Bundle) -> None:
    out = bundle.out
    for name in (
        "debian/Packages",
        "debian/Release",
        "debian/InRelease",
        "bundle-key.asc",
        "MANIFEST.sha256",
    ):
        assert (out / name).is_file(), name
    debs = sorted(p.name.split("_")[0] for p in (out / "debian/pool").glob("*.deb"))
    assert {"hello", "jq", "libjq1", "libc6"} <= set(debs), debs
    assert (out / "artifacts/pouchd" / bundle.stand_in.name).read_bytes() == bundle.stand_in.read_bytes()
    listed = {line.split("  ", 1)[1] for line in (out / "MANIFEST.sha256").read_text().splitlines()}
    on_disk = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()} - {"MANIFEST.sha256"}
    assert listed == on_disk
    check = subprocess.run(
        ["sha256sum", "--strict", "-c", "MANIFEST.sha256"], cwd=out, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert sha256(out / "bundle-key.asc") == bundle.key_sha256
    assert sha256(out / "MANIFEST.sha256") == bundle.manifest_sha256
    verify = subprocess.run(
        [sys.executable, "-m", "bundle", "verify", str(out), "--key-sha256", bundle.key_sha256,
         "--manifest-sha256", bundle.manifest_sha256],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "PRIVATE" not in "".join(p.read_text(errors="replace") for p in out.rglob("*.asc"))
    assert not any(p.name in ("gnupg", "private-keys-v1.d") for p in out.rglob("*"))


def test_rebuild_reuses_what_is_there(bundle: Bundle, tmp_path: Path) -> None:
    debs = {p: p.stat().st_mtime_ns for p in (bundle.out / "debian/pool").glob("*.deb")}
    artifact = bundle.out / "artifacts/pouchd" / bundle.stand_in.name
    artifact_mtime = artifact.stat().st_mtime_ns
    again = build(tmp_path, bundle.inventory, bundle.out, bundle.state)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "(unchanged, reused)" in again.stdout
    assert pins(again.stdout) == pins(bundle.build_stdout)
    assert {p: p.stat().st_mtime_ns for p in (bundle.out / "debian/pool").glob("*.deb")} == debs
    assert artifact.stat().st_mtime_ns == artifact_mtime


def test_build_refuses_an_artifact_whose_sha256_differs(bundle: Bundle, tmp_path: Path) -> None:
    inventory = tmp_path / "inventory"
    shutil.copytree(bundle.inventory, inventory)
    (inventory / "group_vars" / "all.yml").write_text(
        f"pouchd_archive_src: {bundle.stand_in}\npouchd_archive_sha256: '{'0' * 64}'\n"
    )
    result = build(tmp_path, inventory, tmp_path / "out", tmp_path / "state")
    assert result.returncode == 1
    assert f"has sha256 {sha256(bundle.stand_in)}, the inventory pins {'0' * 64}" in result.stderr
    assert not (tmp_path / "out" / "artifacts" / "pouchd").exists()


def test_role_uses_the_bundle(bundle: Bundle, tmp_path: Path) -> None:
    first, apt = run_role(tmp_path, bundle.url, bundle.key_sha256, bundle.manifest_sha256)
    assert first.returncode == 0, first.stdout + first.stderr
    assert (apt / "keyrings/pouch-bundle.asc").read_bytes() == (bundle.out / "bundle-key.asc").read_bytes()
    source = (apt / "sources/pouch-bundle.sources").read_text()
    assert f"URIs: {bundle.url}debian/" in source
    assert f"Signed-By: {apt / 'keyrings/pouch-bundle.asc'}" in source
    facts = json.loads((tmp_path / "result.json").read_text())
    assert facts == {
        "pouchd_archive_src": "",
        "pouchd_archive_url": f"{bundle.url}artifacts/pouchd/{bundle.stand_in.name}",
        "pouchd_archive_sha256": sha256(bundle.stand_in),
        "dragonfly_archive_src": "",
        "dragonfly_archive_url": f"{bundle.url}artifacts/dragonfly/dragonfly-1.0.6-stand-in.tar.gz",
        "dragonfly_archive_sha256": sha256(
            bundle.out / "artifacts/dragonfly/dragonfly-1.0.6-stand-in.tar.gz"
        ),
    }
    host = bundle.url.split("/")[2]
    assert not list(Path("/var/lib/apt/lists").glob(f"{host}_*")), (
        "the role's update touched the host's apt lists"
    )
    policy = apt_private(apt, "policy", "hello")
    assert policy.returncode == 0, policy.stderr
    assert f"{bundle.url}debian ./ Packages" in policy.stdout, policy.stdout
    assert "Candidate: 2" in policy.stdout, policy.stdout
    second, _ = run_role(tmp_path, bundle.url, bundle.key_sha256, bundle.manifest_sha256)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "changed=0" in second.stdout, second.stdout


def test_tampered_packages_index_is_refused_by_apt(bundle: Bundle, tmp_path: Path) -> None:
    copy, url = bundle.copy("tampered-packages")
    packages = copy / "debian/Packages"
    with packages.open("a") as f:
        f.write("\nPackage: evil\nVersion: 1\nArchitecture: all\nFilename: pool/evil.deb\nSize: 1\n")
    (copy / "debian/Packages.gz").write_bytes(gzip.compress(packages.read_bytes()))  # apt fetches this one
    result, _ = run_role(tmp_path, url, bundle.key_sha256, bundle.manifest_sha256)
    assert result.returncode != 0
    assert "apt refused the offline bundle's repository" in result.stdout, result.stdout
    verify = subprocess.run(
        [sys.executable, "-m", "bundle", "verify", str(copy)], cwd=ROOT, capture_output=True, text=True
    )
    assert verify.returncode == 1 and "debian/Packages: sha256 differs" in verify.stderr, verify.stderr


def test_tampered_signature_is_refused_by_apt(bundle: Bundle, tmp_path: Path) -> None:
    copy, url = bundle.copy("tampered-release")
    inrelease = copy / "debian/InRelease"
    inrelease.write_text(
        inrelease.read_text().replace("Origin: pouch-ansible-bundle", "Origin: pouch-ansible-evil")
    )
    result, _ = run_role(tmp_path, url, bundle.key_sha256, bundle.manifest_sha256)
    assert result.returncode != 0
    assert "apt refused the offline bundle's repository" in result.stdout, result.stdout
    verify = subprocess.run(
        [sys.executable, "-m", "bundle", "verify", str(copy)], cwd=ROOT, capture_output=True, text=True
    )
    assert verify.returncode == 1 and "bad or missing signature" in verify.stderr, verify.stderr


def test_key_checksum_mismatch(bundle: Bundle, tmp_path: Path) -> None:
    result, apt = run_role(tmp_path, bundle.url, "1" * 64, bundle.manifest_sha256)
    assert result.returncode != 0
    assert "Key checksum mismatch" in result.stdout, result.stdout
    assert not (apt / "keyrings/pouch-bundle.asc").exists()
    assert not (apt / "sources/pouch-bundle.sources").exists()


def test_manifest_mismatch(bundle: Bundle, tmp_path: Path) -> None:
    copy, url = bundle.copy("tampered-manifest")
    manifest = copy / "MANIFEST.sha256"
    manifest.write_text(manifest.read_text().replace(sha256(bundle.stand_in), "f" * 64))
    result, apt = run_role(tmp_path, url, bundle.key_sha256, bundle.manifest_sha256)
    assert result.returncode != 0
    assert "Manifest mismatch" in result.stdout, result.stdout
    assert not (apt / "keyrings/pouch-bundle.asc").exists()
    verify = subprocess.run(
        [sys.executable, "-m", "bundle", "verify", str(copy)], cwd=ROOT, capture_output=True, text=True
    )
    assert (
        verify.returncode == 1 and f"artifacts/pouchd/{bundle.stand_in.name}: sha256 differs" in verify.stderr
    )


def test_unreachable_bundle(bundle: Bundle, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/bundle/"
    result, apt = run_role(
        tmp_path, url, bundle.key_sha256, bundle.manifest_sha256, {"bundle_source_timeout": 5}
    )
    assert result.returncode != 0
    assert "The offline bundle is unreachable" in result.stdout, result.stdout
    assert not (apt / "sources/pouch-bundle.sources").exists()


def run_site_check(tmp: Path, bundle: Bundle, manifest_sha256: str) -> tuple[int, str]:
    """site.yml --check on this machine with the bundle and no pouchd archive of its own; a TCP
    listener without TLS makes pouchd's input check fail at a known point after the archive check."""
    inventory = tmp / "site-hosts.yml"
    inventory.write_text(
        "pouch_nodes:\n  hosts:\n    localhost:\n      ansible_connection: local\n"
        f"      ansible_python_interpreter: {sys.executable}\n"
    )
    extra = {
        "pouch_bundle_url": bundle.url,
        "pouch_bundle_key_sha256": bundle.key_sha256,
        "pouch_bundle_manifest_sha256": manifest_sha256,
        "pouchd_remove_docker": False,
        "pouchd_tcp_listen": ["tcp://0.0.0.0:2375"],
    }
    env = ansible_env()
    argv = [ansible_command("ansible-playbook"), "--check", "-i", str(inventory), "playbooks/site.yml"]
    argv += ["-e", json.dumps(extra)]
    result = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    return result.returncode, result.stdout


def test_site_takes_pouchd_from_the_bundle(bundle: Bundle, tmp_path: Path) -> None:
    rc, out = run_site_check(tmp_path, bundle, bundle.manifest_sha256)
    assert rc != 0
    # The archive check passed (the bundle supplied pouchd_archive_url and its sha256); the next check failed.
    assert "client-certificate verification" in out, out[-3000:]
    assert "pouchd_archive_src or" not in out
    assert f"{bundle.url}artifacts/pouchd/{bundle.stand_in.name}" in out


def test_site_stops_on_a_manifest_mismatch_before_anything(bundle: Bundle, tmp_path: Path) -> None:
    rc, out = run_site_check(tmp_path, bundle, "2" * 64)
    assert rc != 0
    assert "Manifest mismatch" in out, out[-3000:]
    assert "Check pouchd's inputs" not in out
