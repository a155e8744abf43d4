"""bundle.inputs.resolve asks Ansible for the roles' variables per host: role defaults, then the
inventory (group and host vars, templates). Runs ansible-playbook on this machine; no host is contacted."""

from __future__ import annotations

from pathlib import Path

from bundle.inputs import artifacts_for, packages_for, resolve

ROOT = Path(__file__).resolve().parents[2]


def test_example_inventory(tmp_path: Path) -> None:
    values = resolve(ROOT / "inventories/example")
    assert sorted(values) == [
        "node-a1.example.com",
        "node-a2.example.com",
        "node-r1.example.com",
        "node-t1.example.com",
    ]
    node = values["node-a1.example.com"]
    assert node["runtimes_crun_enabled"] is True  # group_vars/pouch_nodes/runtimes.yml
    assert node["containerd_package_name"] == "containerd"  # role default
    assert node["runtimes_runlxc_artifact"] == {}  # a role default template, evaluated
    assert values["node-r1.example.com"]["pouchd_install_method"] == "repository"
    assert packages_for(values) == ["containerd", "crun", "fuse3", "iptables", "lxcfs", "python3-apt", "runc"]
    # The repository node needs no archive; the archive nodes share one.
    assert [(a.kind, a.hosts) for a in artifacts_for(values)] == [
        ("pouchd", ("node-a1.example.com", "node-a2.example.com", "node-t1.example.com"))
    ]


def test_host_vars_outrank_role_defaults(tmp_path: Path) -> None:
    (tmp_path / "hosts.yml").write_text(
        "all:\n  children:\n    pouch_nodes:\n      hosts:\n"
        "        n1:\n          lxcfs_package_name: lxcfs-custom\n          runtimes_crun_enabled: true\n"
        "        n2:\n          dragonfly_enabled: true\n"
        "    dragonfly_supernodes:\n      hosts:\n        n2: {}\n"
    )
    values = resolve(tmp_path)
    assert values["n1"]["lxcfs_package_name"] == "lxcfs-custom"
    assert values["n2"]["lxcfs_package_name"] == "lxcfs"
    assert values["n2"]["dragonfly_supernode_enabled"] is True
    assert values["n1"]["dragonfly_supernode_enabled"] is False
    assert "nginx" in packages_for(values) and "crun" in packages_for(values)
    assert "nginx" not in packages_for({"n1": values["n1"]})


def test_dragonfly2_fleet(tmp_path: Path) -> None:
    """Generation 2: the manager host needs MariaDB, Redis and the server release; a peer only the
    client release; a manager that uses existing database and Redis servers needs no package."""
    (tmp_path / "hosts.yml").write_text(
        "all:\n  vars:\n    dragonfly_enabled: true\n    dragonfly_generation: 2\n"
        "    pouchd_install_method: repository\n"
        "    dragonfly_v2_server_archive_src: /srv/dragonfly-2.5.0-linux-amd64.tar.gz\n"
        f"    dragonfly_v2_server_archive_sha256: '{'a' * 64}'\n"
        "    dragonfly_v2_client_archive_url: http://mirror.invalid/dragonfly-client.tar.gz\n"
        f"    dragonfly_v2_client_archive_sha256: '{'b' * 64}'\n"
        "  children:\n    pouch_nodes:\n      hosts:\n        m1: {}\n        p1: {}\n"
        "    dragonfly_managers:\n      hosts:\n        m1: {}\n"
        "    dragonfly_schedulers:\n      hosts:\n        m1: {}\n"
    )
    values = resolve(tmp_path)
    assert {"mariadb-server", "redis-server"} <= set(packages_for(values))
    assert not {"mariadb-server", "redis-server", "nginx"} & set(packages_for({"p1": values["p1"]}))
    assert sorted((a.kind, a.hosts) for a in artifacts_for(values)) == [
        ("dragonfly2-client", ("m1", "p1")),
        ("dragonfly2-server", ("m1",)),
    ]
    external = {**values["m1"], "dragonfly_v2_database_host": "db.internal"}
    external["dragonfly_v2_redis_host"] = "redis.internal"
    assert not {"mariadb-server", "redis-server"} & set(packages_for({"m1": external}))
