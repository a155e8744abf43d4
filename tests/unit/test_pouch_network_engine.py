"""pouch_network's engine without a daemon: IPAM validation and comparison."""

from __future__ import annotations

import pytest
from pouch_module_utils import load

engine = load("pouch_network_engine")


def test_normalize_ipam_spells_the_api_keys() -> None:
    entries = [
        {
            "subnet": "10.214.1.0/24",
            "gateway": "10.214.1.1",
            "iprange": "10.214.1.128/25",
            "aux_addresses": None,
        },
        {"subnet": "fd00:1::/64", "gateway": None, "iprange": None, "aux_addresses": {"router": "fd00:1::2"}},
    ]
    assert engine.normalize_ipam(entries) == [
        {"Subnet": "10.214.1.0/24", "Gateway": "10.214.1.1", "IPRange": "10.214.1.128/25"},
        {"Subnet": "fd00:1::/64", "AuxAddress": {"router": "fd00:1::2"}},
    ]


@pytest.mark.parametrize(
    ("entry", "fragment"),
    [
        ({"subnet": "10.214.300.0/24"}, "not a network address in CIDR form"),
        ({"subnet": "10.214.1.5/24"}, "has host bits set"),
        ({"subnet": "10.214.1.0/24", "gateway": "10.214.2.1"}, "outside subnet"),
        ({"subnet": "10.214.1.0/24", "gateway": "nonsense"}, "is not an IP address"),
        ({"subnet": "10.214.1.0/24", "iprange": "10.214.0.0/16"}, "is not inside subnet"),
        ({"subnet": "10.214.1.0/24", "aux_addresses": {"h": "10.9.9.9"}}, "is outside subnet"),
        ({"subnet": "10.214.1.0/24", "aux_addresses": {"h": 5}}, "must be a string"),
        ({"gateway": "10.214.1.1"}, "need a subnet in the same entry"),
        ({}, "every entry needs a subnet"),
    ],
)
def test_normalize_ipam_rejects(entry: dict[str, object], fragment: str) -> None:
    with pytest.raises(engine.NetworkInputError, match=fragment):
        engine.normalize_ipam([entry])


def test_overlapping_subnets_are_rejected() -> None:
    with pytest.raises(engine.NetworkInputError, match="overlap"):
        engine.normalize_ipam([{"subnet": "10.214.0.0/16"}, {"subnet": "10.214.1.0/24"}])


def test_ipam_differs_compares_given_keys_only() -> None:
    desired = [{"Subnet": "10.214.1.0/24"}]
    # The daemon picked a gateway: not a difference.
    assert not engine.ipam_differs(desired, [{"Subnet": "10.214.1.0/24", "Gateway": "10.214.1.1"}])
    assert engine.ipam_differs(desired, [{"Subnet": "10.214.2.0/24"}])
    assert engine.ipam_differs(desired, [])
    with_gateway = [{"Subnet": "10.214.1.0/24", "Gateway": "10.214.1.254"}]
    assert engine.ipam_differs(with_gateway, [{"Subnet": "10.214.1.0/24", "Gateway": "10.214.1.1"}])
    # Some daemons report the gateway with a prefix length.
    assert not engine.ipam_differs(with_gateway, [{"Subnet": "10.214.1.0/24", "Gateway": "10.214.1.254/24"}])
    ranged = [{"Subnet": "10.214.1.0/24", "IPRange": "10.214.1.128/25"}]
    assert not engine.ipam_differs(ranged, [{"Subnet": "10.214.1.0/24", "IPRange": "10.214.1.128/25"}])
    assert engine.ipam_differs(ranged, [{"Subnet": "10.214.1.0/24", "IPRange": "10.214.1.0/25"}])
