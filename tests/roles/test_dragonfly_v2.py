"""roles/dragonfly generation 2 (Dragonfly2) on this machine, no VM and no Dragonfly2 binary:

- the configs and units the role writes for a 3-node fleet (c1: manager, scheduler, seed peer and
  peer; c2: peer), rendered with the role's own defaults and vars, parsed as YAML and checked
  against the keys upstream reads (dragonfly v2.4-v2.5 manager/scheduler, client v1.x dfdaemon:
  unknown keys are silently ignored upstream, so a misspelt key would only show at run time);
- bad input: each case stops in preflight with a message naming the cause, nothing installed.

The database and Redis part runs for real on a lab VM (molecule/dragonfly2).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from lab.ansible_env import ansible_command, ansible_env, local_role_play

ROOT = Path(__file__).resolve().parents[2]
ROLE = ROOT / "roles" / "dragonfly"

SECRETS = {
    "dragonfly_v2_manager_jwt_key": "jwt-secret-of-the-test",
    "dragonfly_v2_database_password": "db'pass\\word",
    "dragonfly_v2_redis_password": 'redis secret "quoted"',
}

# Rendered per host: the loop vars are the ones tasks/generation2.yml passes to v2_service.yml.
RENDER = """  tasks:
    - name: Per-host output directory
      ansible.builtin.file:
        path: "{out}/{{{{ inventory_hostname }}}}"
        state: directory
        mode: "0755"
    - name: Manager and scheduler configs
      ansible.builtin.template:
        src: {role}/templates/v2/{{{{ item }}}}.j2
        dest: "{out}/{{{{ inventory_hostname }}}}/{{{{ item }}}}"
        mode: "0644"
      loop: [manager.yaml, scheduler.yaml]
      when: inventory_hostname == 'c1'
    - name: dfdaemon configs
      ansible.builtin.template:
        src: {role}/templates/v2/dfdaemon.yaml.j2
        dest: "{out}/{{{{ inventory_hostname }}}}/{{{{ __dragonfly_v2_dfdaemon.config }}}}"
        mode: "0644"
      loop: "{{{{ __dragonfly_v2_dfdaemons | selectattr('enabled') | list }}}}"
      loop_control:
        loop_var: __dragonfly_v2_dfdaemon
    - name: The role's part list, as generation2.yml would run it
      ansible.builtin.copy:
        content: "{{{{ {{'dfdaemons': __dragonfly_v2_dfdaemons | selectattr('enabled') | list,
                       'archives': __dragonfly_v2_archives, 'mirror': __dragonfly_mirror}} | to_json }}}}"
        dest: "{out}/{{{{ inventory_hostname }}}}/parts.json"
        mode: "0644"
"""

UNIT = """  tasks:
    - name: Unit
      ansible.builtin.template:
        src: {role}/templates/v2/dragonfly.service.j2
        dest: {out}
        mode: "0644"
"""


def inventory(tmp: Path) -> Path:
    data = {
        "all": {
            "vars": {
                "pouchd_default_registry": "10.0.2.101:5000",
                "pouchd_insecure_registries": ["10.0.2.101:5000"],
            },
            "children": {
                "pouch_nodes": {
                    "hosts": {
                        "c1": {"lab_private_ip": "10.77.0.11"},
                        "c2": {"lab_private_ip": "10.77.0.12"},
                    }
                },
                "dragonfly_managers": {"hosts": {"c1": {}}},
                "dragonfly_schedulers": {"hosts": {"c1": {}}},
                "dragonfly_seed_peers": {"hosts": {"c1": {}}},
            },
        }
    }
    path = tmp / "inventory.json"
    path.write_text(json.dumps(data))
    return path


def playbook(tmp: Path, text: str, extra: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    book = tmp / "book.yml"
    book.write_text(text)
    extra = {"ansible_python_interpreter": sys.executable, **extra}
    argv = [ansible_command("ansible-playbook"), "-i", str(inventory(tmp)), str(book)]
    argv += ["-e", json.dumps(extra)]
    return subprocess.run(argv, cwd=ROOT, env=ansible_env(), capture_output=True, text=True, timeout=300)


BASE = {
    "dragonfly_enabled": True,
    "dragonfly_generation": 2,
    "dragonfly_address_var": "lab_private_ip",
    # No pouchd build was asked here (site.yml's first play does that): name the wiring.
    "dragonfly_pouchd_wiring": "mirror",
    **SECRETS,
}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("dragonfly2-render")
    out = tmp / "out"
    result = playbook(
        tmp,
        local_role_play("Render the Dragonfly2 files", "c1:c2", ROLE) + RENDER.format(role=ROLE, out=out),
        BASE,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return out


def load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def key_paths(tree: Any, prefix: str = "") -> set[str]:
    """Dotted paths of every leaf (lists of mappings as path[])."""
    if isinstance(tree, dict) and tree:
        return set().union(*(key_paths(v, f"{prefix}{k}.") for k, v in tree.items()))
    if isinstance(tree, list) and tree and all(isinstance(i, dict) for i in tree):
        return set().union(*(key_paths(i, f"{prefix[:-1]}[].") for i in tree))
    return {prefix[:-1]}


# The keys upstream reads (dragonfly v2.5 manager/config/config.go, scheduler/config/config.go;
# client v1.5 dragonfly-client-config/src/dfdaemon.rs), limited to those the role writes.
MANAGER_KEYS = {
    "server.name", "server.logDir", "server.pluginDir", "server.grpc.advertiseIP", "server.grpc.listenIP",
    "server.grpc.port.start", "server.grpc.port.end", "server.rest.addr", "auth.jwt.realm", "auth.jwt.key",
    "database.type", "database.mysql.user", "database.mysql.password", "database.mysql.host",
    "database.mysql.port", "database.mysql.dbname", "database.mysql.migrate", "database.redis.addrs",
    "database.redis.password", "database.redis.db", "database.redis.brokerDB", "database.redis.backendDB",
    "metrics.enable", "network.enableIPv6",
}  # fmt: skip
SCHEDULER_KEYS = {
    "server.advertiseIP", "server.listenIP", "server.port", "server.logDir", "server.pluginDir",
    "manager.addr", "manager.schedulerClusterID", "manager.keepAlive.interval", "seedPeer.enable",
    "database.redis.addrs", "database.redis.password", "database.redis.brokerDB", "database.redis.backendDB",
    "metrics.enable", "network.enableIPv6",
}  # fmt: skip
DFDAEMON_KEYS = {
    "host.ip", "host.hostname", "server.pluginDir", "server.cacheDir", "download.server.socketPath",
    "download.bandwidthLimit", "upload.server.ip", "upload.server.port", "upload.bandwidthLimit",
    "manager.addr", "seedPeer.enable", "seedPeer.type", "storage.server.ip", "storage.server.tcpPort",
    "storage.server.quicPort", "storage.dir", "proxy.server.ip", "proxy.server.port", "proxy.rules[].regex",
    "proxy.registryMirror.addr", "proxy.registryMirror.cert", "health.server.ip", "health.server.port",
    "metrics.server.ip", "metrics.server.port", "stats.server.ip", "stats.server.port",
}  # fmt: skip


def test_configs_use_only_upstream_keys(rendered: Path) -> None:
    for path, known in [
        (rendered / "c1/manager.yaml", MANAGER_KEYS),
        (rendered / "c1/scheduler.yaml", SCHEDULER_KEYS),
        (rendered / "c1/seed-peer.yaml", DFDAEMON_KEYS),
        (rendered / "c1/dfdaemon.yaml", DFDAEMON_KEYS),
        (rendered / "c2/dfdaemon.yaml", DFDAEMON_KEYS),
    ]:
        assert key_paths(load(path)) <= known, (path, key_paths(load(path)) - known)


def test_manager_config(rendered: Path) -> None:
    manager = load(rendered / "c1/manager.yaml")
    assert manager["server"]["grpc"] == {
        "advertiseIP": "10.77.0.11",
        "listenIP": "10.77.0.11",
        "port": {"start": 65003, "end": 65003},  # a map upstream, not a number
    }
    assert manager["server"]["rest"]["addr"] == "127.0.0.1:8080"  # the console stays on loopback
    assert manager["auth"]["jwt"]["key"] == SECRETS["dragonfly_v2_manager_jwt_key"]
    mysql = manager["database"]["mysql"]
    assert mysql == {
        "user": "dragonfly",
        "password": SECRETS["dragonfly_v2_database_password"],  # quotes and backslashes survive
        "host": "127.0.0.1",
        "port": 3306,
        "dbname": "manager",
        "migrate": True,
    }
    redis = manager["database"]["redis"]
    assert redis["addrs"] == ["10.77.0.11:6379"]
    assert redis["password"] == SECRETS["dragonfly_v2_redis_password"]
    assert (redis["db"], redis["brokerDB"], redis["backendDB"]) == (0, 1, 2)


def test_scheduler_config(rendered: Path) -> None:
    scheduler = load(rendered / "c1/scheduler.yaml")
    assert scheduler["manager"]["addr"] == "10.77.0.11:65003"  # gRPC target: no scheme
    assert scheduler["manager"]["schedulerClusterID"] == 1
    assert scheduler["server"]["port"] == 8002 and scheduler["server"]["advertiseIP"] == "10.77.0.11"
    assert scheduler["database"]["redis"]["addrs"] == ["10.77.0.11:6379"]
    assert scheduler["seedPeer"] == {"enable": True}


def test_peer_and_seed_peer_configs(rendered: Path) -> None:
    peer = load(rendered / "c2/dfdaemon.yaml")
    assert peer["manager"]["addr"] == "http://10.77.0.11:65003"  # the client parses a URL
    assert peer["host"]["ip"] == "10.77.0.12"
    assert peer["proxy"]["server"] == {"ip": "127.0.0.1", "port": 4001}
    assert peer["proxy"]["rules"] == [{"regex": "blobs/sha256.*"}]
    assert peer["proxy"]["registryMirror"] == {"addr": "http://10.0.2.101:5000"}
    assert peer["upload"]["server"] == {"ip": "10.77.0.12", "port": 4000}
    assert "seedPeer" not in peer
    seed = load(rendered / "c1/seed-peer.yaml")
    assert seed["seedPeer"] == {"enable": True, "type": "super"}
    assert seed["upload"]["server"]["port"] == 4010 and seed["proxy"]["server"]["port"] == 4011


def test_seed_peer_and_peer_share_nothing_on_one_host(rendered: Path) -> None:
    seed, peer = load(rendered / "c1/seed-peer.yaml"), load(rendered / "c1/dfdaemon.yaml")

    def resources(config: dict[str, Any]) -> set[Any]:
        ports = {config[s]["server"]["port"] for s in ("upload", "proxy", "health", "metrics", "stats")}
        ports |= {config["storage"]["server"]["tcpPort"], config["storage"]["server"]["quicPort"]}
        return ports | {config["download"]["server"]["socketPath"], config["storage"]["dir"]}

    assert len(resources(seed)) == len(resources(peer)) == 9
    assert not resources(seed) & resources(peer)


def test_archives_and_pouchd_mirror(rendered: Path) -> None:
    c1, c2 = (json.loads((rendered / h / "parts.json").read_text()) for h in ("c1", "c2"))
    assert [a["install"] for a in c1["archives"]] == [["manager", "scheduler"], ["dfdaemon", "dfget"]]
    assert [a["install"] for a in c2["archives"]] == [[], ["dfdaemon", "dfget"]]  # a peer gets no server
    assert [d["part"] for d in c1["dfdaemons"]] == ["seed-peer", "peer"]
    assert c2["mirror"] == "127.0.0.1:4001"  # pouchd's registry mirror: the peer's proxy


def test_units(tmp_path: Path) -> None:
    out = tmp_path / "unit"
    unit = {
        "part": "peer",
        "description": "Dragonfly2 dfdaemon, peer (pouch-ansible)",
        "binary": "dfdaemon",
        "config": "dfdaemon.yaml",
        "after": ["dragonfly-scheduler.service"],
        "before": ["pouch.service"],
    }
    result = playbook(
        tmp_path,
        local_role_play("Render one unit", "c1", ROLE) + UNIT.format(role=ROLE, out=out),
        {**BASE, "__dragonfly_v2_unit": unit},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    text = out.read_text()
    assert "ExecStart=/usr/local/bin/dfdaemon --config /etc/dragonfly/dfdaemon.yaml --console\n" in text
    assert "User=dragonfly\n" in text and "Restart=on-failure\n" in text
    assert "After=network-online.target dragonfly-scheduler.service\n" in text
    assert "Before=pouch.service\n" in text


# ---------------------------------------------------------------- bad input (preflight)
PREFLIGHT = """
- name: Run the dragonfly role
  hosts: c1
  connection: local
  gather_facts: false
  tasks:
    - name: Run it
      ansible.builtin.include_role:
        name: dragonfly
"""


def preflight(tmp_path: Path, **extra: Any) -> str:
    archives = {
        "dragonfly_v2_server_archive_src": "/nonexistent/server.tar.gz",
        "dragonfly_v2_server_archive_sha256": "a" * 64,
        "dragonfly_v2_client_archive_src": "/nonexistent/client.tar.gz",
        "dragonfly_v2_client_archive_sha256": "b" * 64,
        "dragonfly_cache_dir": str(tmp_path / "cache"),
        "dragonfly_bin_dir": str(tmp_path / "bin"),
    }
    result = playbook(tmp_path, PREFLIGHT, {**BASE, **archives, **extra})
    assert result.returncode != 0, result.stdout
    assert not (tmp_path / "cache").exists() and not (tmp_path / "bin").exists()
    return " ".join((result.stdout + result.stderr).split())


def test_missing_binaries(tmp_path: Path) -> None:
    text = preflight(tmp_path, dragonfly_v2_client_archive_src="", dragonfly_v2_client_archive_sha256="")
    assert "dragonfly_generation is 2 (Dragonfly2), but no Dragonfly2 binaries were supplied" in text, text


def test_missing_scheduler_group(tmp_path: Path) -> None:
    text = preflight(tmp_path, dragonfly_v2_scheduler_group="no_such_group")
    assert "'no_such_group' (now [])" in text and "put hosts in both" in text, text


def test_two_managers_with_the_local_database(tmp_path: Path) -> None:
    text = preflight(tmp_path, dragonfly_v2_manager_group="pouch_nodes")
    assert "the manager group must hold exactly one host" in text, text


def test_missing_secrets(tmp_path: Path) -> None:
    text = preflight(tmp_path, dragonfly_v2_manager_jwt_key="", dragonfly_v2_redis_password="")
    assert "Missing or invalid: ['dragonfly_v2_manager_jwt_key', 'dragonfly_v2_redis_password']" in text, text


def test_server_host_without_address(tmp_path: Path) -> None:
    text = preflight(tmp_path, dragonfly_address_var="no_such_var")
    assert "No address for Dragonfly2 server host(s) ['c1']" in text, text


def test_checksum_mismatch_installs_nothing(tmp_path: Path) -> None:
    archive = tmp_path / "server.tar.gz"
    archive.write_bytes(b"not the release")
    text = preflight(tmp_path, dragonfly_v2_server_archive_src=str(archive))
    assert "(dragonfly_v2_server_archive_sha256)" in text and "Nothing was copied or installed" in text, text
