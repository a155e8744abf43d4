"""pouch_info's normalization on recorded /version and /info answers of pouchd 1.3.0 and dockerd 20.10."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pouch_module_utils import load

engine = load("pouch_info_engine")
# shared/ sits beside the checkout (and beside CI's clone).
RECORDED = Path(__file__).resolve().parents[3] / "shared" / "reference" / "pouch-api" / "recorded"

DOCKER_VERSION = {
    "Version": "20.10.24+dfsg1",
    "ApiVersion": "1.41",
    "MinAPIVersion": "1.12",
    "Os": "linux",
    "Arch": "amd64",
    "Components": [{"Name": "Engine"}],
}
DOCKER_INFO = {
    "Driver": "overlay2",
    "DriverStatus": [["Backing Filesystem", "extfs"]],
    "DockerRootDir": "/var/lib/docker",
    "Runtimes": {"runc": {"path": "runc"}, "io.containerd.runc.v2": {"path": "runc"}},
    "DefaultRuntime": "runc",
    "RegistryConfig": {
        "InsecureRegistryCIDRs": ["127.0.0.0/8"],
        "IndexConfigs": {
            "docker.io": {"Name": "docker.io", "Mirrors": ["https://mirror.example.com/"], "Secure": True},
            "reg.local:5000": {"Name": "reg.local:5000", "Mirrors": [], "Secure": False},
        },
        "Mirrors": ["https://mirror.example.com/"],
    },
    "CgroupDriver": "systemd",
    "OperatingSystem": "Debian GNU/Linux 12 (bookworm)",
    "LiveRestoreEnabled": False,
}
POUCH_INFO = {
    "Driver": "overlayfs",
    "PouchRootDir": "/var/lib/pouch",
    "Runtimes": {"runc": {"path": "runc"}, "kata-runtime": {"path": "kata-runtime"}},
    "DefaultRuntime": "runc",
    "LxcfsEnabled": True,
    "CriEnabled": True,
    "DefaultRegistry": "registry.hub.docker.com",
    "RegistryConfig": {"InsecureRegistryCIDRs": ["127.0.0.1:5077"], "Mirrors": ["https://m.example/"]},
    "OperatingSystem": '"Debian GNU/Linux 12 (bookworm)"',
    "LiveRestoreEnabled": True,
}


def test_pouch_names() -> None:
    engine_facts = engine.normalize({"Version": "1.3.0", "ApiVersion": "1.24"}, POUCH_INFO, is_pouch=True)
    assert engine_facts["kind"] == "pouch"
    assert engine_facts["root_dir"] == "/var/lib/pouch"
    assert (engine_facts["storage_driver"], engine_facts["storage_family"], engine_facts["snapshotter"]) == (
        "overlayfs",
        "overlay",
        "overlayfs",
    )
    assert engine_facts["runtimes"] == ["kata-runtime", "runc"]
    assert engine_facts["lxcfs_enabled"] is True and engine_facts["cri_enabled"] is True
    assert engine_facts["registry_mirrors"] == ["https://m.example/"]
    assert engine_facts["insecure_registries"] == ["127.0.0.1:5077"]
    assert engine_facts["operating_system"] == "Debian GNU/Linux 12 (bookworm)"


def test_docker_names() -> None:
    engine_facts = engine.normalize(DOCKER_VERSION, DOCKER_INFO, is_pouch=False)
    assert engine_facts["kind"] == "docker"
    assert engine_facts["root_dir"] == "/var/lib/docker"
    assert (engine_facts["storage_driver"], engine_facts["storage_family"], engine_facts["snapshotter"]) == (
        "overlay2",
        "overlay",
        None,
    )
    assert engine_facts["lxcfs_enabled"] is False and engine_facts["cri_enabled"] is False
    assert engine_facts["registry_mirrors"] == ["https://mirror.example.com/"]  # not repeated
    assert engine_facts["insecure_registries"] == ["127.0.0.0/8", "reg.local:5000"]
    assert engine_facts["default_registry"] == "docker.io"
    assert engine_facts["cgroup_driver"] == "systemd"


@pytest.mark.skipif(
    not RECORDED.is_dir(), reason=f"recorded pouchd answers not available ({RECORDED} is missing)"
)
def test_recorded_pouchd_answers() -> None:
    info = json.loads((RECORDED / "info.json").read_text())
    version = json.loads((RECORDED / "version.json").read_text())
    engine_facts = engine.normalize(version, info, is_pouch=True)
    assert engine_facts["version"] == version["Version"] and engine_facts["api_version"] == "1.24"
    assert engine_facts["root_dir"] == info["PouchRootDir"]
    assert engine_facts["default_runtime"] == info["DefaultRuntime"]
    assert engine_facts["storage_family"] == "overlay"
