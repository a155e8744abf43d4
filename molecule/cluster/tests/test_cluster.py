"""The cluster scenario after side_effect.yml: Dragonfly's services on each VM, pouchd pointed at
the local dfdaemon through image-proxy (the release's wiring), the image pulled from the redirecting
TLS registry and run on all three VMs, the fallbacks, and the blob store's egress per layer (from
its access log on this machine)."""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path

import pytest
import yaml

SCENARIO = Path(__file__).resolve().parents[1]
ROOT = SCENARIO.parents[1]
sys.path.insert(0, str(SCENARIO))

from dfimage import FAT_MIB, egress  # noqa: E402

SUPERNODE = "cluster1"
PRIVATE = {"cluster1": "10.77.0.11", "cluster2": "10.77.0.12", "cluster3": "10.77.0.13"}
DFDAEMON = "127.0.0.1:65001"
REGISTRY = "10.0.2.101:5444"  # the lab registry over TLS, blob downloads redirected to the blob store
WORK_HOME = "/var/lib/dragonfly/.small-dragonfly"
HTTP_GET = (
    "import sys,urllib.request\n"
    "sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())\n"
)
CONNECT = (
    "import socket,sys\n"
    "s=socket.socket(); s.settimeout(5)\n"
    "try:\n s.connect((sys.argv[1], int(sys.argv[2]))); print('open')\n"
    "except OSError as e:\n print('closed', e)\n"
)


def name(host) -> str:
    return host.backend.get_hostname()


def http_get(host, url: str) -> str:
    return host.check_output(f"python3 -c {shlex.quote(HTTP_GET)} {shlex.quote(url)}")


def run_info() -> dict:
    state = Path(os.environ.get("LAB_STATE_DIR") or ROOT / ".lab")
    return json.loads((state / "dragonfly-image" / "cluster-run.json").read_text())


def test_peer_units_active(host) -> None:
    for unit in ("dragonfly-dfget-server", "dfdaemon"):
        service = host.service(unit)
        assert service.is_running, unit
        assert service.is_enabled, unit
    supernode_units = ("dragonfly-supernode", "dragonfly-nginx")
    for unit in supernode_units:
        assert host.service(unit).is_running == (name(host) == SUPERNODE), unit


def test_dfdaemon_answers_and_reports_its_version(host) -> None:
    assert http_get(host, f"http://{DFDAEMON}/debug/version").strip() == "0.4.1"


def test_dfdaemon_config_from_inventory(host) -> None:
    config = yaml.safe_load(host.file("/etc/dragonfly/dfdaemon.yml").content_string)
    assert config["registry_mirror"]["remote"] == f"https://{REGISTRY}"  # follows pouchd's default registry
    assert {"regx": "blobs/sha256.*"} in config["proxies"]  # the blob store's paths match it
    # 0.4.x reads the supernodes from `node` and silently ignores a `supernodes` key.
    assert config["node"] == ["10.77.0.11:8002"]
    assert "supernodes" not in config
    assert config["notbs"] is False


def test_dfdaemon_runs_dfget_with_the_role_timeout(host) -> None:
    # dfget's own limit for an image config is 10 s (length/64 KiB/s + 10 s); the wrapper sets 1800.
    log = host.file(f"{WORK_HOME}/logs/dfclient.log").content_string
    assert '"dfdaemon":true' in log and '"timeout":1800' in log


def test_dfdaemon_rejects_other_interfaces(host) -> None:
    other = next(n for n in PRIVATE if n != name(host))
    # Another VM's dfdaemon, over the private network: rejected (iptables rule of the unit).
    out = host.check_output(f"python3 -c {shlex.quote(CONNECT)} {PRIVATE[other]} 65001")
    assert out.startswith("closed"), out
    # The local one over lo: open.
    assert host.check_output(f"python3 -c {shlex.quote(CONNECT)} 127.0.0.1 65001") == "open"


def test_upload_server_on_private_address(host) -> None:
    assert host.socket(f"tcp://{PRIVATE[name(host)]}:15001").is_listening


def test_supernode_answers_and_advertises_its_private_address(host) -> None:
    if name(host) != SUPERNODE:
        pytest.skip("the supernode runs on cluster1")
    assert http_get(host, "http://10.77.0.11:8002/_ping").strip() == "OK"
    assert "advertiseIP: 10.77.0.11" in host.file("/etc/dragonfly/supernode.yml").content_string
    assert host.socket("tcp://10.77.0.11:8001").is_listening  # nginx, on the private address only


def test_dfget_registered_with_the_supernode_and_reused_the_upload_server(host) -> None:
    log = host.file(f"{WORK_HOME}/logs/dfclient.log").content_string
    assert "do register to 10.77.0.11:8002" in log
    assert "use peer server on port:15001" in log


def test_pouchd_uses_the_local_dfdaemon(host) -> None:
    # The release has no registry-mirrors: dragonfly_pouchd_wiring auto chose image_proxy.
    config = json.loads(host.file("/etc/pouch/config.json").content_string)
    assert config["image-proxy"] == f"http://{DFDAEMON}"
    assert "registry-mirrors" not in config and "insecure-registries" not in config
    assert config["default-registry"] == REGISTRY


def test_image_pulled_and_ran_on_every_node(host) -> None:
    record = json.loads(host.file("/root/dragonfly-check.json").content_string)["p2p"]
    assert f"ran-on-{name(host)}" in record["run_output"]
    assert str(FAT_MIB << 20) in record["run_output"]


def test_pull_with_dfdaemon_down_fails_naming_the_proxy_and_works_once_it_is_back(host) -> None:
    if name(host) != "cluster3":
        pytest.skip("dfdaemon was stopped on cluster3")
    record = json.loads(host.file("/root/dragonfly-check-nopeer.json").content_string)["nopeer"]
    assert "proxyconnect tcp" in record["refused_msg"] and DFDAEMON in record["refused_msg"], record
    assert "dfdaemon.service" in record["refused_msg"], record  # pouch_image's hint: what to start
    assert str(8 << 20) in record["run_output"]
    assert host.service("dfdaemon").is_running  # started again afterwards


def test_pull_with_supernode_down_went_back_to_source(host) -> None:
    if name(host) != "cluster2":
        pytest.skip("cluster2 pulled while the supernode was stopped")
    record = json.loads(host.file("/root/dragonfly-check-nosupernode.json").content_string)["nosupernode"]
    assert str(8 << 20) in record["run_output"]
    log = host.file(f"{WORK_HOME}/logs/dfclient.log").content_string
    assert "try to download from source" in log


def test_registry_egress_per_layer(host) -> None:
    if name(host) != SUPERNODE:
        pytest.skip("checked once, on this machine")
    run = run_info()
    lines = [f"Dragonfly cluster run {run['run']}: blob store egress (bytes written, GET) per blob"]
    failures = []
    for case, info in run["images"].items():
        log, since = Path(info["blob_store_log"]), info["blob_store_start_line"]
        figures = egress(log, info["repo"], since, info["blobs"], blob_store=True)
        lines.append(f"{case}: {info['repo']} image {info['image_bytes']} B")
        for blob in info["blobs"]:
            served = figures["per_blob"].get(blob["digest"], 0)
            gets = figures["gets"].get(blob["digest"], 0)
            full = figures["full_gets"][blob["digest"]]
            lines.append(
                f"  {blob['kind']:7} {blob['digest'][7:19]} size {blob['size']:>10} served {served:>10} "
                f"({served / blob['size']:.2f}x, {gets} GET: {full} full, "
                f"{gets - full} partial = {figures['partial_bytes'][blob['digest']]} B)"
            )
        ratio = figures["blob_bytes"] / info["image_bytes"]
        lines.append(
            f"  total {figures['blob_bytes']} B = {ratio:.3f}x image; by agent {figures['per_agent']}"
        )
        fat = info["blobs"][-1]
        full_fat = figures["full_gets"][fat["digest"]]
        if case == "p2p":
            # The blob store sends the new layer in full once (the supernode's CDN download); the peers
            # get it from each other. Each peer's registration also costs a partial GET: supernode
            # 0.4.1 reads the length with a GET it closes at once (the ratio above includes them;
            # bench/dragonfly_egress.py measures them against the 1.2x target).
            if full_fat != 1:
                failures.append(f"p2p: the fat layer was sent in full {full_fat} times, expected once")
        elif full_fat < 1:
            failures.append(f"{case}: the new layer was not served by the blob store")
    report = "\n".join(lines)
    state = Path(os.environ.get("LAB_STATE_DIR") or ROOT / ".lab")
    (state / "logs").mkdir(parents=True, exist_ok=True)
    (state / "logs" / "dragonfly-cluster-egress.txt").write_text(report + "\n")
    print(report)
    assert not failures, f"{failures}\n{report}"
