"""module_utils/pouchd_capabilities.py on the recorded `pouchd --version` / `--help` of both real builds.

Recorded from ../shared/artifacts (tests/unit/fixtures/pouchd/): the 1.3.0 release (build 37051654)
and master bc5839e3, which print the same version. The runtime type names are what
runtime_types_in() found in each binary (checked against the real binaries where they are present).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pouch_builds import POUCH_BUILDS, POUCH_IDS, NoBuild, require

from lab.artifacts import PouchBuild
from module_utils.pouchd_capabilities import (
    V1_SHIM,
    capabilities,
    config_for_build,
    parse_flags,
    parse_version,
    runtime_types_in,
)

FIXTURES = Path(__file__).parent / "fixtures" / "pouchd"
RELEASE, MASTER = "1.3.0-37051654", "master-bc5839e3"
RUNTIME_TYPES_IN_BINARY = {
    RELEASE: ["io.containerd.runtime.v1.linux"],
    MASTER: ["io.containerd.kata.v2", "io.containerd.runc.v1", "io.containerd.runsc.v1"],
}


def recorded(build: str) -> dict:
    return capabilities(
        (FIXTURES / f"version-{build}.txt").read_text(),
        (FIXTURES / f"help-{build}.txt").read_text(),
        RUNTIME_TYPES_IN_BINARY[build],
    )


def test_release_is_known_by_its_build_not_its_version() -> None:
    release, master = recorded(RELEASE), recorded(MASTER)
    assert (release["version"], release["build"]) == ("1.3.0", "37051654")
    assert (master["version"], master["build"]) == ("1.3.0", "bc5839e3")


def test_release_lacks_the_registry_settings_master_has() -> None:
    release, master = recorded(RELEASE), recorded(MASTER)
    assert release["insecure_registries"] is False and release["registry_mirrors"] is False
    assert master["insecure_registries"] is True and master["registry_mirrors"] is True
    assert release["image_proxy"] is True and master["image_proxy"] is True
    assert set(master["flags"]) - set(release["flags"]) == {
        "cni-runtime-config",
        "enable-builder",
        "insecure-registries",
        "registry-mirrors",
    }
    assert set(release["flags"]) <= set(master["flags"])


def test_runtime_types() -> None:
    release, master = recorded(RELEASE), recorded(MASTER)
    assert release["runtime_types"] == [V1_SHIM] and release["shim_v2"] is False
    assert master["shim_v2"] is True
    assert {V1_SHIM, "io.containerd.runc.v1", "io.containerd.kata.v2"} <= set(master["runtime_types"])


def test_flags_parse_short_and_long_forms() -> None:
    flags = parse_flags((FIXTURES / f"help-{RELEASE}.txt").read_text())
    assert {"containerd", "listen", "debug", "config-file", "version", "help"} <= set(flags)
    assert "c" not in flags and "string" not in flags


@pytest.mark.parametrize(
    ("text", "call"),
    [
        ("pouchd: command not found", lambda t: parse_version(t)),
        ("Usage: something else\n  --foo  bar", lambda t: parse_flags(t)),
    ],
)
def test_unreadable_output_is_an_error(text: str, call) -> None:
    with pytest.raises(ValueError, match="pouchd"):
        call(text)


def test_runtime_types_in_bytes() -> None:
    blob = b"\x00io.containerd.runc.v1\x00junk io.containerd.runtime.v1.linux"
    assert runtime_types_in(blob) == ["io.containerd.runtime.v1.linux", "io.containerd.runc.v1"]


@pytest.mark.pouchd
@pytest.mark.parametrize("build", POUCH_BUILDS, ids=POUCH_IDS)
def test_recordings_match_the_real_binaries(build: PouchBuild | NoBuild) -> None:
    """The fixtures are what the real builds say (where the test artifacts are here)."""
    real = require(build).capabilities()
    name = RELEASE if real["build"] == "37051654" else MASTER if real["build"] == "bc5839e3" else None
    if name is None:
        pytest.skip(f"no recording for build {real['build']} (recorded: {RELEASE}, {MASTER})")
    assert real == recorded(name)


LAB_CONFIG = {
    "home-dir": "/var/lib/pouch",
    "registry-mirrors": [],
    "insecure-registries": [],
    "enable-builder": False,
    "image-proxy": "",
    "add-runtime": {"runc": {"path": "/usr/sbin/runc"}},
}


def test_release_config_leaves_out_keys_it_lacks_when_they_ask_for_nothing() -> None:
    config, errors = config_for_build(LAB_CONFIG, recorded(RELEASE))
    assert errors == []
    assert config == {
        k: v
        for k, v in LAB_CONFIG.items()
        if k not in ("registry-mirrors", "insecure-registries", "enable-builder")
    }
    # master honours them all: nothing is left out
    assert config_for_build(LAB_CONFIG, recorded(MASTER)) == (LAB_CONFIG, [])


@pytest.mark.parametrize(
    ("change", "fragments"),
    [
        (
            {"insecure-registries": ["10.0.2.101:5000"]},
            ["insecure-registries:", "pouchd 1.3.0 (build 37051654)", "10.0.2.101:5000", "over TLS"],
        ),
        ({"registry-mirrors": ["127.0.0.1:65001"]}, ["registry-mirrors:", "build 37051654", "image-proxy"]),
        ({"enable-builder": True}, ["enable-builder:", "build 37051654"]),
        (
            {"add-runtime": {"runc": {"path": "runc", "type": "io.containerd.runc.v1"}}},
            ["add-runtime.runc.type", "cannot drive io.containerd.runc.v1", "cgroup v1", "shim v2"],
        ),
    ],
)
def test_release_refuses_what_it_would_ignore(change: dict, fragments: list[str]) -> None:
    _, errors = config_for_build({**LAB_CONFIG, **change}, recorded(RELEASE))
    assert len(errors) == 1
    for fragment in fragments:
        assert fragment in errors[0]
    assert config_for_build({**LAB_CONFIG, **change}, recorded(MASTER))[1] == []


def test_unknown_runtime_type_refused_on_master_too() -> None:
    change = {"add-runtime": {"gvisor": {"path": "runsc", "type": "io.containerd.nosuch.v9"}}}
    _, errors = config_for_build({**LAB_CONFIG, **change}, recorded(MASTER))
    assert errors and "cannot drive io.containerd.nosuch.v9" in errors[0]
