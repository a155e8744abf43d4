"""The lab's shared services serve the registry's images twice: plain HTTP and TLS with the lab CA.

Real programs (docker-registry, skopeo, umoci, openssl); the apt repository's content is replaced by a
stub, since only the registry pair matters here. A test whose program is absent skips and says which.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab import services
from lab.aptrepo import AptRepo
from lab.paths import LabPaths
from lab.procs import pids_with_marker


def catalog(url: str, context: ssl.SSLContext | None = None) -> list[str]:
    with urllib.request.urlopen(f"{url}/v2/_catalog", timeout=10, context=context) as response:
        return list(json.load(response)["repositories"])


@pytest.fixture
def lab_services(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[LabPaths, services.SharedServices]]:
    """The lab's shared services in a fresh state dir (the apt repository stubbed); afterwards, that
    stop_services left none of them running."""
    missing = [p for p in ("docker-registry", "skopeo", "umoci", "openssl") if shutil.which(p) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} on PATH")
    paths = LabPaths(tmp_path / "state")
    paths.ensure()
    www = paths.repo_dir / "www"
    www.mkdir(parents=True)
    (www / "Release").write_text("Origin: test\n")
    monkeypatch.setattr(services, "build_repo", lambda _paths: AptRepo(www))
    started, _ = services.start_services(paths)
    try:
        yield paths, started
    finally:
        services.stop_services(paths)
    assert services.running_services(paths) is None
    assert not pids_with_marker(str(paths.root)), "a server outlived stop_services"


def test_the_registry_is_served_over_plain_http_and_over_tls_with_the_lab_ca(
    lab_services: tuple[LabPaths, services.SharedServices],
) -> None:
    paths, started = lab_services
    assert services.running_services(paths) == started
    plain = catalog(f"http://127.0.0.1:{started.registry_port}")
    ca = ssl.create_default_context(cafile=str(paths.ca_dir / "ca.crt"))
    assert catalog(f"https://127.0.0.1:{started.registry_tls_port}", ca) == plain
    assert "library/busybox" in plain
    # A client that does not trust the lab CA is refused.
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        catalog(f"https://127.0.0.1:{started.registry_tls_port}", ssl.create_default_context())
    assert (paths.ca_dir / "ca.key").stat().st_mode & 0o077 == 0


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None  # let the 307 surface as an HTTPError


def test_the_redirecting_registry_sends_blob_downloads_to_the_plain_http_blob_store(
    lab_services: tuple[LabPaths, services.SharedServices],
) -> None:
    """Manifests over TLS, blobs from the plain-HTTP blob store (what pouchd's image-proxy can catch);
    the blob store logs the bytes it sent, for egress figures."""
    paths, started = lab_services
    ca = ssl.create_default_context(cafile=str(paths.ca_dir / "ca.crt"))
    base = f"https://127.0.0.1:{started.registry_redirect_port}/v2/library/busybox"
    accept = "application/vnd.oci.image.manifest.v1+json"
    accept += ", application/vnd.docker.distribution.manifest.v2+json"
    request = urllib.request.Request(f"{base}/manifests/latest", headers={"Accept": accept})
    with urllib.request.urlopen(request, timeout=10, context=ca) as response:
        manifest = json.load(response)
    digest = manifest["layers"][0]["digest"]
    opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=ca), _NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as redirect:
        opener.open(f"{base}/blobs/{digest}", timeout=10)
    assert redirect.value.code == 307
    location = redirect.value.headers["Location"]
    hexdigest = digest.removeprefix("sha256:")
    path = f"/docker/registry/v2/blobs/sha256/{hexdigest[:2]}/{hexdigest}/data"
    assert location == f"http://{services.BLOB_STORE_GUEST_ADDRESS}{path}"
    # The guests' address is a guestfwd; on this machine the blob store is 127.0.0.1:<port>.
    with urllib.request.urlopen(f"http://127.0.0.1:{started.blob_store_port}{path}", timeout=10) as blob:
        content = blob.read()
    assert hashlib.sha256(content).hexdigest() == hexdigest
    log_lines = services.blob_store_access_log(paths).read_text().splitlines()
    assert any(f'"GET {path} HTTP/1.1" 200 {len(content)} ' in line for line in log_lines), log_lines
