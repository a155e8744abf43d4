"""pouch_network against real daemons: create, compare and recreate, connected/appends, the in-use guard,
removal, and bad inputs that must leave no network behind. State is read back with the docker SDK."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import Daemon
from resource_harness import (
    closed_unix_socket,
    container_network_names,
    ensure_image,
    failed,
    free_subnet,
    host_in,
    network,
    network_names,
    ok,
    remove_networks,
    run_module_tasks,
    start_container,
    uniq,
)

MODULE = "pouch_network"


def run(daemon: Daemon, *tasks: dict[str, Any]) -> list[dict[str, Any]]:
    return run_module_tasks(daemon, MODULE, list(tasks))


@pytest.fixture
def net(daemon: Daemon) -> Iterator[str]:
    name = uniq("i4net")
    yield name
    remove_networks(daemon, name)


@pytest.fixture
def containers(daemon: Daemon) -> Iterator[list[str]]:
    ensure_image(daemon)
    names = [uniq("i4c1"), uniq("i4c2")]
    for name in names:
        start_container(daemon, name)
    yield names
    daemon.remove(*names)


def subnet_of(details: dict[str, Any]) -> list[str]:
    return [entry.get("Subnet") for entry in (details.get("IPAM") or {}).get("Config") or []]


def test_create_check_idempotent_diff(daemon: Daemon, net: str) -> None:
    subnet = free_subnet()
    args = {
        "name": net,
        "ipam_config": [
            {"subnet": subnet, "gateway": host_in(subnet, 1), "iprange": subnet.replace(".0/24", ".128/25")}
        ],
        "labels": {"app": "shop"},
        "driver_options": {"com.docker.network.bridge.name": "i4" + net[-8:]},
    }
    (predicted,) = run(daemon, {**args, "_check": True})
    ok(predicted, True, ["create"])
    assert network(daemon, net) is None
    assert predicted["diff"]["before"] == {}
    assert predicted["diff"]["after"]["labels"] == {"app": "shop"}
    created, again = run(daemon, args, args)
    ok(created, True, ["create"])
    details = network(daemon, net)
    assert details is not None and details["Id"] == created["network"]["Id"]
    config = details["IPAM"]["Config"][0]
    assert (config["Subnet"], config["Gateway"], config["IPRange"]) == (
        subnet,
        host_in(subnet, 1),
        subnet.replace(".0/24", ".128/25"),
    )
    assert details["Labels"] == {"app": "shop"}
    assert details["Options"]["com.docker.network.bridge.name"] == "i4" + net[-8:]
    ok(again, False, [])
    assert again["differences"] == []
    assert again["diff"]["before"] == again["diff"]["after"]


CHANGES: list[tuple[str, Any, Any]] = [
    ("labels", {"tier": "a"}, {"tier": "b"}),
    ("driver_options", {"com.docker.network.driver.mtu": "1500"}, {"com.docker.network.driver.mtu": "1400"}),
    ("ipam_config", "subnet", "other subnet"),
    ("ipam_config", "gateway .1", "gateway .254"),
    ("ipam_config", "iprange low", "iprange high"),
    ("internal", False, True),
    ("ipam_driver", "default", "default"),
]


def _ipam(kind: str, subnet: str, other: str) -> list[dict[str, str]]:
    return {
        "subnet": [{"subnet": subnet}],
        "other subnet": [{"subnet": other}],
        "gateway .1": [{"subnet": subnet, "gateway": host_in(subnet, 1)}],
        "gateway .254": [{"subnet": subnet, "gateway": host_in(subnet, 254)}],
        "iprange low": [{"subnet": subnet, "iprange": subnet.replace(".0/24", ".0/25")}],
        "iprange high": [{"subnet": subnet, "iprange": subnet.replace(".0/24", ".128/25")}],
    }[kind]


@pytest.mark.parametrize(("option", "first", "second"), CHANGES, ids=[f"{c[0]}-{c[1]}" for c in CHANGES])
def test_each_option_changed_recreates(
    daemon: Daemon, net: str, option: str, first: Any, second: Any
) -> None:
    subnet, other = free_subnet(), free_subnet()
    base: dict[str, Any] = {"name": net, "ipam_config": [{"subnet": subnet}]}
    if option == "ipam_config":
        first, second = _ipam(first, subnet, other), _ipam(second, subnet, other)
    created, same = run(daemon, {**base, option: first}, {**base, option: first})
    ok(created, True, ["create"])
    ok(same, False, [])
    original = network(daemon, net)
    assert original is not None
    if first == second:  # ipam_driver: the daemon's own default compares equal
        return
    (predicted,) = run(daemon, {**base, option: second, "_check": True})
    ok(predicted, True, ["remove", "create"])
    assert predicted["differences"] == [option]
    assert network(daemon, net)["Id"] == original["Id"]
    changed, settled = run(daemon, {**base, option: second}, {**base, option: second})
    ok(changed, True, ["remove", "create"])
    assert changed["diff"]["before"][option] != changed["diff"]["after"][option]
    recreated = network(daemon, net)
    assert recreated is not None and recreated["Id"] != original["Id"]
    ok(settled, False, [])
    if option == "labels":
        assert recreated["Labels"] == second
    elif option == "internal":
        assert recreated["Internal"] is True
    elif option == "ipam_config":
        assert subnet_of(recreated) == [second[0]["subnet"]]


def test_connected_and_appends(daemon: Daemon, net: str, containers: list[str]) -> None:
    c1, c2 = containers
    base = {"name": net, "ipam_config": [{"subnet": free_subnet()}]}
    ok(run(daemon, base)[0], True, ["create"])
    (predicted,) = run(daemon, {**base, "connected": [c1], "_check": True})
    ok(predicted, True, [f"connect:{c1}"])
    assert net not in container_network_names(daemon, c1)
    connected, again = run(daemon, {**base, "connected": [c1]}, {**base, "connected": [c1]})
    ok(connected, True, [f"connect:{c1}"])
    assert connected["connected"] == [c1]
    assert net in container_network_names(daemon, c1)
    ok(again, False, [])
    # Canonical list: c2 in, c1 out.
    (swap,) = run(daemon, {**base, "connected": [c2]})
    ok(swap, True, [f"connect:{c2}", f"disconnect:{c1}"])
    assert swap["diff"]["before"]["connected"] == [c1] and swap["diff"]["after"]["connected"] == [c2]
    assert net not in container_network_names(daemon, c1) and net in container_network_names(daemon, c2)
    # appends: add c1, keep c2.
    appended, again = run(
        daemon, {**base, "connected": [c1], "appends": True}, {**base, "connected": [c1], "appends": True}
    )
    ok(appended, True, [f"connect:{c1}"])
    assert appended["connected"] == sorted([c1, c2])
    ok(again, False, [])
    # Connected by ID works too and is the same container.
    ok(run(daemon, {**base, "connected": [daemon.sdk.inspect_container(c1)["Id"], c2]})[0], False, [])
    (emptied,) = run(daemon, {**base, "connected": []})
    ok(emptied, True, sorted([f"disconnect:{c1}", f"disconnect:{c2}"]))
    assert net not in container_network_names(daemon, c1) + container_network_names(daemon, c2)


def test_in_use_network_is_not_removed_or_recreated_without_force(
    daemon: Daemon, net: str, containers: list[str]
) -> None:
    c1, _ = containers
    subnet, other = free_subnet(), free_subnet()
    base = {"name": net, "ipam_config": [{"subnet": subnet}], "connected": [c1]}
    ok(run(daemon, base)[0], True, ["create", f"connect:{c1}"])
    original = network(daemon, net)
    daemon.sdk.stop(c1, timeout=1)  # a stopped container still references the network
    refused_remove, refused_recreate = run(
        daemon,
        {"name": net, "state": "absent"},
        {**base, "ipam_config": [{"subnet": other}]},
    )
    failed(refused_remove, f"network {net} is used by container(s) {c1}: refusing to remove it", "force=true")
    failed(
        refused_recreate, f"network {net} is used by container(s) {c1}: refusing to recreate it (ipam_config"
    )
    assert network(daemon, net)["Id"] == original["Id"]
    daemon.sdk.start(c1)
    (predicted,) = run(daemon, {**base, "ipam_config": [{"subnet": other}], "force": True, "_check": True})
    ok(predicted, True, [f"disconnect:{c1}", "remove", "create", f"connect:{c1}"])
    assert network(daemon, net)["Id"] == original["Id"]
    forced, again = run(
        daemon,
        {**base, "ipam_config": [{"subnet": other}], "force": True},
        {**base, "ipam_config": [{"subnet": other}], "force": True},
    )
    ok(forced, True, [f"disconnect:{c1}", "remove", "create", f"connect:{c1}"])
    recreated = network(daemon, net)
    assert recreated["Id"] != original["Id"] and subnet_of(recreated) == [other]
    assert net in container_network_names(daemon, c1)
    ok(again, False, [])
    (removed,) = run(daemon, {"name": net, "state": "absent", "force": True})
    ok(removed, True, [f"disconnect:{c1}", "remove"])
    assert network(daemon, net) is None
    assert net not in container_network_names(daemon, c1)


def test_absent_check_real_idempotent(daemon: Daemon, net: str) -> None:
    ok(run(daemon, {"name": net})[0], True, ["create"])
    (predicted,) = run(daemon, {"name": net, "state": "absent", "_check": True})
    ok(predicted, True, ["remove"])
    assert predicted["diff"]["after"] == {} and predicted["diff"]["before"]["driver"] == "bridge"
    assert network(daemon, net) is not None
    removed, again = run(daemon, {"name": net, "state": "absent"}, {"name": net, "state": "absent"})
    ok(removed, True, ["remove"])
    assert network(daemon, net) is None
    ok(again, False, [])


def test_bad_inputs_leave_no_network(daemon: Daemon, tmp_path: Path) -> None:
    taken = uniq("i4taken")
    taken_subnet = free_subnet()
    subnet = free_subnet()
    ok(run(daemon, {"name": taken, "ipam_config": [{"subnet": taken_subnet}]})[0], True)
    victim = uniq("i4bad")
    cases: list[tuple[dict[str, Any], tuple[str, ...]]] = [
        ({"name": "bad name"}, ("network name 'bad name' is invalid",)),
        (
            {"name": victim, "ipam_config": [{"subnet": "10.214.300.0/24"}]},
            ("'10.214.300.0/24' is not a network",),
        ),
        ({"name": victim, "ipam_config": [{"subnet": host_in(subnet, 5) + "/24"}]}, ("has host bits set",)),
        (
            {"name": victim, "ipam_config": [{"subnet": subnet, "gateway": "192.0.2.1"}]},
            (f"gateway 192.0.2.1 is outside subnet {subnet}",),
        ),
        (
            {"name": victim, "ipam_config": [{"subnet": subnet, "iprange": "192.0.2.0/25"}]},
            (f"iprange 192.0.2.0/25 is not inside subnet {subnet}",),
        ),
        ({"name": victim, "ipam_config": [{"gateway": "10.0.0.1"}]}, ("need a subnet in the same entry",)),
        (
            {
                "name": victim,
                "ipam_config": [{"subnet": subnet}, {"subnet": subnet.replace(".0/24", ".0/25")}],
            },
            ("overlap",),
        ),
        ({"name": victim, "labels": {"n": 1}}, ("labels: the value of 'n' must be a string, got int",)),
        (
            {"name": victim, "driver_options": {"o": True}},
            ("driver_options: the value of 'o' must be a string",),
        ),
        (
            {"name": victim, "connected": ["i4-no-such-container"]},
            ("no such container(s): i4-no-such-container",),
        ),
        ({"name": victim, "driver": "i4nosuchdriver"}, ("POST /networks/create failed", "i4nosuchdriver")),
        ({"name": victim, "ipam_config": [{"subnet": taken_subnet}]}, ("POST /networks/create failed",)),
        ({"name": "bridge", "state": "absent"}, ("network bridge is predefined by the daemon",)),
        ({"name": victim, "state": "maybe"}, ("value of state must be one of",)),
        ({"name": victim, "pouch_host": closed_unix_socket(tmp_path)}, ("cannot talk to the daemon",)),
    ]
    try:
        before = network_names(daemon)
        results = run(daemon, *[args for args, _ in cases])
        for (_args, fragments), result in zip(cases, results, strict=True):
            failed(result, *fragments)
        assert network_names(daemon) == before
        assert network(daemon, victim) is None
    finally:
        remove_networks(daemon, taken, victim)
