"""pouch_network's engine: networks with driver, IPAM, options and labels; container attachments.

Networks cannot be updated in place, so any difference in a compared property recreates the network.
The plan (actions) is computed completely before anything changes: check mode returns it unchanged,
and every input that can be checked locally (addresses, names, containers to attach) is checked first.

Which containers use a network is read from the container list (NetworkSettings.Networks), not from the
network's inspect: pouchd's inspect has no Containers, and dockerd's lists only running endpoints.
pouchd deletes a network still referenced by a stopped container, which then cannot start again; so the
module itself refuses to remove or recreate a network any container references, unless force is set.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
from typing import Any

from ansible.module_utils.pouch_client import PouchError, container_name, container_networks
from ansible.module_utils.pouch_common import ResourceInputError, ResourceManager, run_manager, string_map

NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
PREDEFINED = ("bridge", "host", "none")


def argument_spec() -> dict[str, Any]:
    return {
        "name": {"type": "str", "required": True, "aliases": ["network_name"]},
        "state": {"type": "str", "default": "present", "choices": ["present", "absent"]},
        "driver": {"type": "str", "default": "bridge"},
        "driver_options": {"type": "dict", "default": {}},
        "ipam_driver": {"type": "str"},
        "ipam_config": {
            "type": "list",
            "elements": "dict",
            "options": {
                "subnet": {"type": "str"},
                "gateway": {"type": "str"},
                "iprange": {"type": "str", "aliases": ["ip_range"]},
                "aux_addresses": {"type": "dict"},
            },
        },
        "internal": {"type": "bool"},
        "enable_ipv6": {"type": "bool"},
        "labels": {"type": "dict", "default": {}},
        "connected": {"type": "list", "elements": "str", "aliases": ["containers"]},
        "appends": {"type": "bool", "default": False, "aliases": ["incremental"]},
        "force": {"type": "bool", "default": False},
    }


NetworkInputError = ResourceInputError


def _network(option: str, text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        raise NetworkInputError(
            f"ipam_config {option} {text!r} is not a network address in CIDR form: {exc}"
        ) from exc


def _address(option: str, text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        return ipaddress.ip_address(text)
    except ValueError as exc:
        raise NetworkInputError(f"ipam_config {option} {text!r} is not an IP address") from exc


def normalize_ipam(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Validate ipam_config and return it in the API's spelling (Subnet, Gateway, IPRange, AuxAddress)."""
    normalized: list[dict[str, Any]] = []
    subnets: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    for entry in entries:
        subnet_text = entry.get("subnet")
        if not subnet_text:
            if any(entry.get(key) for key in ("gateway", "iprange", "aux_addresses")):
                raise NetworkInputError(
                    "ipam_config: gateway, iprange and aux_addresses need a subnet in the same entry"
                )
            raise NetworkInputError("ipam_config: every entry needs a subnet")
        subnet = _network("subnet", subnet_text)
        for other in subnets:
            if subnet.version == other.version and subnet.overlaps(other):  # type: ignore[arg-type]
                raise NetworkInputError(f"ipam_config: subnets {other} and {subnet} overlap")
        subnets.append(subnet)
        item: dict[str, Any] = {"Subnet": str(subnet)}
        if entry.get("gateway"):
            gateway = _address("gateway", entry["gateway"])
            if gateway not in subnet:
                raise NetworkInputError(f"ipam_config gateway {gateway} is outside subnet {subnet}")
            item["Gateway"] = str(gateway)
        if entry.get("iprange"):
            iprange = _network("iprange", entry["iprange"])
            if iprange.version != subnet.version or not iprange.subnet_of(subnet):  # type: ignore[arg-type]
                raise NetworkInputError(f"ipam_config iprange {iprange} is not inside subnet {subnet}")
            item["IPRange"] = str(iprange)
        if entry.get("aux_addresses"):
            aux = string_map("ipam_config aux_addresses", entry["aux_addresses"])
            for host, text in aux.items():
                if _address(f"aux_addresses {host}", text) not in subnet:
                    raise NetworkInputError(
                        f"ipam_config aux_addresses {host}={text} is outside subnet {subnet}"
                    )
            item["AuxAddress"] = aux
        normalized.append(item)
    return normalized


def _canonical_network(text: str | None) -> str | None:
    if not text:
        return text
    try:
        return str(ipaddress.ip_network(text, strict=False))
    except ValueError:
        return text


def ipam_differs(desired: list[dict[str, Any]], actual: list[dict[str, Any]]) -> bool:
    """Entries are matched by subnet; only the keys given in an entry are compared."""
    if len(desired) != len(actual):
        return True
    by_subnet = {_canonical_network(item.get("Subnet")): item for item in actual}
    for entry in desired:
        current = by_subnet.get(entry["Subnet"])
        if current is None:
            return True
        if "Gateway" in entry and entry["Gateway"] != (current.get("Gateway") or "").split("/")[0]:
            return True
        if "IPRange" in entry and entry["IPRange"] != _canonical_network(current.get("IPRange")):
            return True
        if "AuxAddress" in entry and entry["AuxAddress"] != (current.get("AuxAddress") or {}):
            return True
    return False


class NetworkManager(ResourceManager):
    kind = "network"

    # -- inputs --------------------------------------------------------------------------
    def validate(self) -> dict[str, Any]:
        name = self.params["name"]
        if not name or not NAME_RE.match(name):
            raise NetworkInputError(
                f"network name {name!r} is invalid: use letters, digits, '_', '.' and '-', "
                "starting with a letter or digit"
            )
        desired: dict[str, Any] = {"driver": self.params["driver"]}
        if not desired["driver"]:
            raise NetworkInputError("driver must not be empty")
        desired["driver_options"] = string_map("driver_options", self.params["driver_options"] or {})
        desired["labels"] = string_map("labels", self.params["labels"] or {})
        if self.params["ipam_driver"] is not None:
            desired["ipam_driver"] = self.params["ipam_driver"]
        if self.params["ipam_config"] is not None:
            desired["ipam_config"] = normalize_ipam(self.params["ipam_config"])
        for flag in ("internal", "enable_ipv6"):
            if self.params[flag] is not None:
                desired[flag] = self.params[flag]
        return desired

    def resolve_containers(self) -> dict[str, str]:
        """connected entries (names or IDs) -> container name; every one must exist."""
        resolved: dict[str, str] = {}
        missing = []
        for entry in self.params["connected"] or []:
            if not entry:
                raise NetworkInputError("connected: container names must not be empty")
            container = self.client.inspect_container(entry)
            if container is None:
                missing.append(entry)
                continue
            resolved[container["Id"]] = container_name(container)
        if missing:
            raise NetworkInputError(f"connected: no such container(s): {', '.join(missing)}")
        return resolved

    def attached(self, network: dict[str, Any]) -> dict[str, str]:
        """Containers (running or not) whose configuration references the network: ID -> name."""
        found: dict[str, str] = {}
        for item in self.client.list_containers(all_containers=True):
            for net_name, endpoint in container_networks(item).items():
                if net_name == network.get("Name") or (endpoint or {}).get("NetworkID") == network.get("Id"):
                    found[item["Id"]] = container_name(item)
        return found

    # -- comparison ----------------------------------------------------------------------
    @staticmethod
    def current(network: dict[str, Any] | None, desired: dict[str, Any]) -> dict[str, Any]:
        if network is None:
            return {}
        ipam = network.get("IPAM") or {}
        options = network.get("Options") or {}
        labels = network.get("Labels") or {}
        view: dict[str, Any] = {
            "driver": network.get("Driver"),
            "driver_options": {key: options.get(key) for key in desired["driver_options"]},
            "labels": {key: labels.get(key) for key in desired["labels"]},
        }
        if "ipam_driver" in desired:
            view["ipam_driver"] = ipam.get("Driver") or "default"
        if "ipam_config" in desired:
            view["ipam_config"] = ipam.get("Config") or []
        for flag, key in (("internal", "Internal"), ("enable_ipv6", "EnableIPv6")):
            if flag in desired:
                view[flag] = bool(network.get(key))
        return view

    @staticmethod
    def differences(current: dict[str, Any], desired: dict[str, Any]) -> list[str]:
        found = []
        for key, wanted in desired.items():
            if key == "ipam_config":
                if ipam_differs(wanted, current.get(key) or []):
                    found.append(key)
            elif current.get(key) != wanted:
                found.append(key)
        return found

    # -- run -----------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        desired = self.validate()
        name = self.params["name"]
        network = self.client.inspect_network(name)
        if network is not None and network.get("Name") != name:
            # The daemon matched an ID prefix: that is not the network asked for.
            network = None
        attached = self.attached(network) if network else {}
        before = self.current(network, desired)
        if network:
            before["connected"] = sorted(attached.values())
        if self.params["state"] == "absent":
            self.result["diff"] = {"before": before, "after": {}}
            self.absent(name, network, attached)
            self.result["network"] = {}
            return self.result
        wanted = self.resolve_containers()
        differences = self.differences(before, desired) if network else []
        self.result["differences"] = differences
        recreate = bool(differences)
        if recreate:
            self.guard_removal(name, attached, "recreate it (" + ", ".join(differences) + " differ)")
        if network is None or recreate:
            # Attachments are only managed when `connected` is given; otherwise a recreate keeps them.
            keep = dict(attached) if self.params["appends"] or self.params["connected"] is None else {}
            keep.update(wanted)
            self.recreate(name, desired, network, attached, keep)
            final = keep
        else:
            final = self.reconcile_attachments(name, attached, wanted)
        after = {key: value for key, value in desired.items()}
        after["driver_options"] = {**before.get("driver_options", {}), **desired["driver_options"]}
        after["connected"] = sorted(final.values())
        self.result["diff"] = {"before": before, "after": after}
        # In check mode this is the network as it is now (None when it would be created).
        self.result["network"] = self.client.inspect_network(name)
        self.result["connected"] = sorted(final.values())
        return self.result

    def guard_removal(self, name: str, attached: dict[str, str], purpose: str) -> None:
        if name in PREDEFINED:
            raise NetworkInputError(f"network {name} is predefined by the daemon: refusing to {purpose}")
        self.refuse_if_used(
            f"network {name}",
            attached.values(),
            purpose,
            "disconnect them or set force=true (they are disconnected first)",
            force=self.params["force"],
        )

    def detach(self, name: str, container_id: str) -> None:
        self.client.disconnect_network(name, container_id, True)

    def absent(self, name: str, network: dict[str, Any] | None, attached: dict[str, str]) -> None:
        if network is None:
            return
        self.guard_removal(name, attached, "remove it")
        self.remove(name, attached)

    def create_body(self, desired: dict[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = {
            "Name": self.params["name"],
            "CheckDuplicate": True,
            "Driver": desired["driver"],
            "Options": desired["driver_options"],
            "Labels": desired["labels"],
        }
        ipam: dict[str, Any] = {"Driver": desired.get("ipam_driver") or "default"}
        if desired.get("ipam_config"):
            ipam["Config"] = desired["ipam_config"]
        body["IPAM"] = ipam
        if "internal" in desired:
            body["Internal"] = desired["internal"]
        if "enable_ipv6" in desired:
            body["EnableIPv6"] = desired["enable_ipv6"]
        return body

    def recreate(
        self,
        name: str,
        desired: dict[str, Any],
        network: dict[str, Any] | None,
        attached: dict[str, str],
        connect: dict[str, str],
    ) -> None:
        body = self.create_body(desired)
        self.result["create_body"] = body
        self.replace(name, network, body, users=attached)
        try:
            for container_id, container in sorted(connect.items(), key=lambda item: item[1]):
                self.perform(f"connect:{container}", self.client.connect_network, name, container_id)
        except PouchError:
            if network is None and not self.check_mode:
                # A brand-new network is not left half made: disconnect what was attached and remove it.
                for container_id in connect:
                    with contextlib.suppress(PouchError):
                        self.detach(name, container_id)
                self.client.remove_network(name)
                self.result["rolled_back"] = True
            raise

    def reconcile_attachments(
        self, name: str, attached: dict[str, str], wanted: dict[str, str]
    ) -> dict[str, str]:
        final = dict(attached)
        for container_id, container in sorted(wanted.items(), key=lambda item: item[1]):
            if container_id not in attached:
                self.perform(f"connect:{container}", self.client.connect_network, name, container_id)
                final[container_id] = container
        if self.params["connected"] is not None and not self.params["appends"]:
            for container_id, container in sorted(attached.items(), key=lambda item: item[1]):
                if container_id not in wanted:
                    self.perform(
                        f"disconnect:{container}", self.client.disconnect_network, name, container_id
                    )
                    final.pop(container_id)
        return final


def run_module() -> None:
    run_manager(NetworkManager, argument_spec())
