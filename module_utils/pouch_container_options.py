"""pouch_container's options, declared once as data.

Each ContainerOption says how a module parameter is normalized, written into the create body,
read back from an inspected container, compared, and whether POST /containers/{id}/update can
change it in place (on both daemons, or on pouchd only). The argument spec, the comparisons
defaults, the create body and the diff all come from OPTIONS; module_utils/pouch_container_engine.py
holds the state machine that uses them.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

BOTH = "both"  # updatable in place on pouchd and dockerd
POUCH = "pouch"  # updatable in place on pouchd only; dockerd recreates


class OptionError(ValueError):
    """A parameter value that cannot be turned into an API value; the message names the option."""


@dataclass(frozen=True)
class ContainerOption:
    name: str
    type: str  # Ansible argument type
    kind: str = "value"  # value | list | set | dict: how values compare
    api_field: str = ""  # "Hostname" (config, top level of the create body) or "HostConfig.Memory"
    elements: str | None = None
    aliases: tuple[str, ...] = ()
    choices: tuple[str, ...] | None = None
    default_comparison: str | None = None  # None: strict for value/list, allow_more_present for set/dict
    update: str | None = None  # BOTH, POUCH or None (recreate)
    pouch_only: bool = False
    normalize: Callable[[Any], Any] | None = None  # parameter -> comparable value
    from_api: Callable[[Any], Any] | None = None  # API value -> comparable value
    to_api: Callable[[Any], Any] | None = None  # comparable value -> API value
    read: Callable[[dict[str, Any]], Any] | None = None  # whole inspect -> comparable value
    write: Callable[[dict[str, Any], Any], None] | None = None  # (create body, comparable value)
    image_defaults: Callable[[dict[str, Any]], dict[str, str]] | None = None  # dict kinds only
    equal: Callable[[Any, Any], bool] | None = None  # custom "same value" for value kinds
    extra_spec: dict[str, Any] = field(default_factory=dict)

    @property
    def comparison(self) -> str:
        if self.default_comparison:
            return self.default_comparison
        return "allow_more_present" if self.kind in ("set", "dict") else "strict"

    def argument_spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = {"type": self.type}
        if self.elements:
            spec["elements"] = self.elements
        if self.aliases:
            spec["aliases"] = list(self.aliases)
        if self.choices:
            spec["choices"] = list(self.choices)
        spec.update(self.extra_spec)
        return spec

    def desired(self, param: Any) -> Any:
        return self.normalize(param) if self.normalize else param

    def current(self, container: dict[str, Any]) -> Any:
        if self.read:
            return self.read(container)
        section, key = self._location()
        raw = (container.get(section) or {}).get(key)
        return self.from_api(raw) if self.from_api else raw

    def write_into(self, body: dict[str, Any], value: Any) -> None:
        if self.write:
            self.write(body, value)
            return
        api_value = self.to_api(value) if self.to_api else value
        if self.api_field.startswith("HostConfig."):
            body.setdefault("HostConfig", {})[self.api_field.split(".", 1)[1]] = api_value
        else:
            body[self.api_field] = api_value

    def _location(self) -> tuple[str, str]:
        if self.api_field.startswith("HostConfig."):
            return "HostConfig", self.api_field.split(".", 1)[1]
        return "Config", self.api_field


# -- normalizers ---------------------------------------------------------------------------------

_SIZE_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def parse_size(value: Any, option: str) -> int:
    """'64m', '1g', '512k', '1048576' → bytes; '-1' stays -1 (unlimited swap)."""
    text = str(value).strip().lower()
    if text == "-1":
        return -1
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([bkmgt]?)(?:i?b)?", text)
    if not match:
        raise OptionError(f"{option}: cannot parse size {value!r} (use a number of bytes or e.g. 64m, 1g)")
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2)])


def _size(option: str) -> Callable[[Any], int]:
    return lambda value: parse_size(value, option)


def _zero_if_none(value: Any) -> Any:
    return value or 0


def _empty_if_none(value: Any) -> Any:
    return value or ""


def split_command(value: Any, option: str) -> list[str]:
    if isinstance(value, str):
        return shlex.split(value)
    if isinstance(value, list):
        return [str(item) for item in value]
    raise OptionError(f"{option}: expected a string or a list of strings, got {type(value).__name__}")


def _as_list(value: Any) -> list[str]:
    return list(value or [])


def string_dict(value: Any, option: str) -> dict[str, str]:
    """Dict values must be strings: YAML's yes/1 would otherwise silently become 'True'/'1'."""
    if not isinstance(value, dict):
        raise OptionError(f"{option}: expected a dictionary, got {type(value).__name__}")
    result: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(item, str):
            raise OptionError(
                f"Non-string value found for {option} option {key!r}: {item!r} ({type(item).__name__}). "
                f"Quote it (or use '| string') so the value is explicit"
            )
        result[str(key)] = item
    return result


def env_list_to_dict(entries: list[str] | None) -> dict[str, str]:
    result: dict[str, str] = {}
    for entry in entries or []:
        key, _, value = entry.partition("=")
        result[key] = value
    return result


def parse_env_file(path: str) -> dict[str, str]:
    result: dict[str, str] = {}
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except OSError as exc:
        raise OptionError(f"env_file: cannot read {path!r}: {exc.strerror}") from exc
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise OptionError(f"env_file {path}:{number}: expected KEY=VALUE, got {raw!r}")
        result[key.strip()] = value
    return result


def _capability(name: str) -> str:
    upper = name.upper()
    return upper[4:] if upper.startswith("CAP_") else upper


def _capabilities(value: Any) -> list[str]:
    return sorted({_capability(str(item)) for item in value or []})


def normalize_signal(value: Any) -> str:
    text = str(value).upper()
    if text and not text.isdigit() and not text.startswith("SIG"):
        text = "SIG" + text
    return text


_PORT_RE = re.compile(
    r"^(?:(?P<ip>\[[0-9a-fA-F:.]+\]|[0-9.]+|[0-9a-fA-F:]*):)??(?:(?P<host>\d*):)?(?P<cont>\d+)(?:/(?P<proto>[a-z]+))?$"
)


def parse_port(spec: Any) -> str:
    """'[IP:][HOST:]CONTAINER[/PROTO]' → 'IP:HOST:CONTAINER/PROTO' with empty IP/HOST when unset."""
    text = str(spec).strip()
    if text.count(":") > 2 and not text.startswith("["):
        raise OptionError(
            f"published_ports: {spec!r}: write IPv6 host addresses in brackets, e.g. [::1]:8080:80"
        )
    match = _PORT_RE.match(text)
    if not match:
        raise OptionError(
            f"published_ports: cannot parse {spec!r}; use [IP:][HOST_PORT:]CONTAINER_PORT[/tcp|udp|sctp]"
        )
    ip = (match.group("ip") or "").strip("[]")
    host = match.group("host") or ""
    container = match.group("cont")
    proto = match.group("proto") or "tcp"
    if proto not in ("tcp", "udp", "sctp"):
        raise OptionError(f"published_ports: {spec!r}: unknown protocol {proto!r} (tcp, udp or sctp)")
    for port in (host, container):
        if port and not 1 <= int(port) <= 65535:
            raise OptionError(f"published_ports: {spec!r}: port {port} is outside 1-65535")
    if ip == "0.0.0.0":
        ip = ""
    return f"{ip}|{host}|{container}/{proto}"


def _ports(value: Any) -> list[str]:
    return sorted({parse_port(item) for item in value or []})


def _read_ports(container: dict[str, Any]) -> list[str]:
    bindings = (container.get("HostConfig") or {}).get("PortBindings") or {}
    result = set()
    for port, hosts in bindings.items():
        name = port if "/" in port else f"{port}/tcp"
        for host in hosts or [{}]:
            ip = (host or {}).get("HostIp") or ""
            result.add(f"{'' if ip == '0.0.0.0' else ip}|{(host or {}).get('HostPort') or ''}|{name}")
    return sorted(result)


def _write_ports(body: dict[str, Any], value: list[str]) -> None:
    exposed: dict[str, Any] = {}
    bindings: dict[str, list[dict[str, str]]] = {}
    for entry in value:
        ip, host, port = entry.split("|")
        exposed[port] = {}
        bindings.setdefault(port, []).append({"HostIp": ip, "HostPort": host})
    body["ExposedPorts"] = exposed
    body.setdefault("HostConfig", {})["PortBindings"] = bindings


def _volume(spec: Any) -> str:
    text = str(spec).strip()
    parts = text.split(":")
    if len(parts) == 1:
        if not text.startswith("/"):
            raise OptionError(f"volumes: {spec!r}: an anonymous volume needs an absolute container path")
        return text
    if len(parts) > 3 or not parts[0] or not parts[1].startswith("/"):
        raise OptionError(f"volumes: cannot parse {spec!r}; use SOURCE:/container/path[:ro|rw]")
    if len(parts) == 3:
        modes = [mode for mode in parts[2].split(",") if mode and mode != "rw"]
        for mode in modes:
            if mode not in (
                "ro",
                "z",
                "Z",
                "shared",
                "slave",
                "private",
                "rshared",
                "rslave",
                "rprivate",
                "nocopy",
            ):
                raise OptionError(f"volumes: {spec!r}: unknown mode {mode!r}")
        return ":".join(parts[:2] + ([",".join(modes)] if modes else []))
    return text


def _volumes(value: Any) -> list[str]:
    return sorted({_volume(item) for item in value or []})


def _read_volumes(container: dict[str, Any]) -> list[str]:
    binds = [_volume(item) for item in (container.get("HostConfig") or {}).get("Binds") or []]
    anonymous = list(((container.get("Config") or {}).get("Volumes") or {}).keys())
    return sorted(set(binds) | set(anonymous))


def _write_volumes(body: dict[str, Any], value: list[str]) -> None:
    binds = [item for item in value if ":" in item]
    anonymous = {item: {} for item in value if ":" not in item}
    body.setdefault("HostConfig", {})["Binds"] = binds
    if anonymous:
        body["Volumes"] = anonymous


def _device(spec: Any) -> str:
    parts = str(spec).split(":")
    if not parts[0].startswith("/") or len(parts) > 3:
        raise OptionError(f"devices: cannot parse {spec!r}; use /dev/HOST[:/dev/CONTAINER[:rwm]]")
    host = parts[0]
    container = parts[1] if len(parts) > 1 and parts[1] else host
    permissions = parts[2] if len(parts) > 2 else "rwm"
    if not permissions or set(permissions) - set("rwm"):
        raise OptionError(f"devices: {spec!r}: permissions must be made of r, w and m")
    return f"{host}:{container}:{permissions}"


def _devices(value: Any) -> list[str]:
    return sorted({_device(item) for item in value or []})


def _devices_from_api(value: Any) -> list[str]:
    return sorted(
        f"{item.get('PathOnHost')}:{item.get('PathInContainer')}:{item.get('CgroupPermissions') or 'rwm'}"
        for item in value or []
    )


def _devices_to_api(value: list[str]) -> list[dict[str, str]]:
    result = []
    for item in value:
        host, container, permissions = item.split(":")
        result.append({"PathOnHost": host, "PathInContainer": container, "CgroupPermissions": permissions})
    return result


def _extra_hosts(value: Any) -> dict[str, str]:
    hosts = string_dict(value, "extra_hosts")
    return {name: address for name, address in hosts.items()}


def _extra_hosts_from_api(value: Any) -> dict[str, str]:
    result = {}
    for entry in value or []:
        name, _, address = entry.partition(":")
        result[name] = address
    return result


def _network_mode(value: Any) -> str:
    # pouchd rejects "default" at start (network default not found); both daemons accept "bridge".
    return "bridge" if not value or value == "default" else str(value)


def _restart_policy_name(value: Any) -> str:
    return value or "no"


def _read_restart_name(container: dict[str, Any]) -> str:
    policy = (container.get("HostConfig") or {}).get("RestartPolicy") or {}
    return policy.get("Name") or "no"


def _read_restart_retries(container: dict[str, Any]) -> int:
    policy = (container.get("HostConfig") or {}).get("RestartPolicy") or {}
    return policy.get("MaximumRetryCount") or 0


def _write_restart_name(body: dict[str, Any], value: str) -> None:
    body.setdefault("HostConfig", {}).setdefault("RestartPolicy", {})["Name"] = value


def _write_restart_retries(body: dict[str, Any], value: int) -> None:
    body.setdefault("HostConfig", {}).setdefault("RestartPolicy", {})["MaximumRetryCount"] = value


def _image_env(image: dict[str, Any]) -> dict[str, str]:
    return env_list_to_dict((image.get("Config") or {}).get("Env"))


def _image_labels(image: dict[str, Any]) -> dict[str, str]:
    return dict((image.get("Config") or {}).get("Labels") or {})


def _write_env(body: dict[str, Any], value: dict[str, str]) -> None:
    body["Env"] = [f"{key}={item}" for key, item in value.items()]


def _read_env(container: dict[str, Any]) -> dict[str, str]:
    return env_list_to_dict((container.get("Config") or {}).get("Env"))


def _quota_id_equal(desired: str, current: str) -> bool:
    # "-1" asks pouchd to allocate an ID; any allocated ID satisfies it.
    if desired == "-1":
        return bool(current)
    return (desired or "0") == (current or "0")


def _str_or_empty(value: Any) -> str:
    return "" if value is None else str(value)


OPTIONS: list[ContainerOption] = [
    ContainerOption("command", "raw", "list", "Cmd", normalize=lambda v: split_command(v, "command")),
    ContainerOption(
        "entrypoint", "raw", "list", "Entrypoint", normalize=lambda v: split_command(v, "entrypoint")
    ),
    ContainerOption(
        "env",
        "dict",
        "dict",
        "Env",
        normalize=lambda v: string_dict(v, "env"),
        read=_read_env,
        write=_write_env,
        image_defaults=_image_env,
        update=POUCH,
    ),
    ContainerOption(
        "labels",
        "dict",
        "dict",
        "Labels",
        normalize=lambda v: string_dict(v, "labels"),
        from_api=lambda v: dict(v or {}),
        image_defaults=_image_labels,
        update=POUCH,
    ),
    ContainerOption(
        "published_ports",
        "list",
        "set",
        elements="str",
        aliases=("ports",),
        normalize=_ports,
        read=_read_ports,
        write=_write_ports,
    ),
    ContainerOption(
        "volumes",
        "list",
        "set",
        elements="str",
        aliases=("binds",),
        normalize=_volumes,
        read=_read_volumes,
        write=_write_volumes,
    ),
    ContainerOption(
        "network_mode",
        "str",
        "value",
        "HostConfig.NetworkMode",
        normalize=_network_mode,
        from_api=_network_mode,
    ),
    ContainerOption("hostname", "str", "value", "Hostname", from_api=_empty_if_none),
    ContainerOption("user", "str", "value", "User", from_api=_empty_if_none),
    ContainerOption("working_dir", "str", "value", "WorkingDir", from_api=_empty_if_none),
    ContainerOption(
        "restart_policy",
        "str",
        "value",
        choices=("no", "always", "on-failure", "unless-stopped"),
        read=_read_restart_name,
        write=_write_restart_name,
        update=BOTH,
    ),
    ContainerOption(
        "restart_retries",
        "int",
        "value",
        read=_read_restart_retries,
        write=_write_restart_retries,
        update=BOTH,
    ),
    ContainerOption(
        "memory",
        "str",
        "value",
        "HostConfig.Memory",
        normalize=_size("memory"),
        from_api=_zero_if_none,
        update=BOTH,
    ),
    ContainerOption(
        "memory_swap",
        "str",
        "value",
        "HostConfig.MemorySwap",
        normalize=_size("memory_swap"),
        from_api=_zero_if_none,
        update=BOTH,
    ),
    ContainerOption(
        "cpu_shares", "int", "value", "HostConfig.CpuShares", from_api=_zero_if_none, update=BOTH
    ),
    ContainerOption("cpu_quota", "int", "value", "HostConfig.CpuQuota", from_api=_zero_if_none, update=BOTH),
    ContainerOption(
        "cpu_period", "int", "value", "HostConfig.CpuPeriod", from_api=_zero_if_none, update=BOTH
    ),
    ContainerOption(
        "cpuset_cpus", "str", "value", "HostConfig.CpusetCpus", from_api=_empty_if_none, update=BOTH
    ),
    # Both daemons answer 200 to a PidsLimit update at API 1.24 but keep the old limit: recreate.
    ContainerOption("pids_limit", "int", "value", "HostConfig.PidsLimit", from_api=_zero_if_none),
    ContainerOption("privileged", "bool", "value", "HostConfig.Privileged", from_api=bool),
    ContainerOption(
        "cap_add",
        "list",
        "set",
        "HostConfig.CapAdd",
        elements="str",
        normalize=_capabilities,
        from_api=_capabilities,
    ),
    ContainerOption(
        "cap_drop",
        "list",
        "set",
        "HostConfig.CapDrop",
        elements="str",
        normalize=_capabilities,
        from_api=_capabilities,
    ),
    ContainerOption(
        "devices",
        "list",
        "set",
        "HostConfig.Devices",
        elements="str",
        normalize=_devices,
        from_api=_devices_from_api,
        to_api=_devices_to_api,
    ),
    ContainerOption(
        "dns", "list", "list", "HostConfig.Dns", elements="str", aliases=("dns_servers",), from_api=_as_list
    ),
    ContainerOption(
        "extra_hosts",
        "dict",
        "dict",
        "HostConfig.ExtraHosts",
        aliases=("etc_hosts",),
        normalize=_extra_hosts,
        from_api=_extra_hosts_from_api,
        to_api=lambda v: [f"{name}:{address}" for name, address in v.items()],
    ),
    ContainerOption(
        "log_driver",
        "str",
        "value",
        read=lambda c: ((c.get("HostConfig") or {}).get("LogConfig") or {}).get("Type") or "",
        write=lambda body, v: body.setdefault("HostConfig", {}).setdefault("LogConfig", {}).update(Type=v),
    ),
    ContainerOption(
        "log_options",
        "dict",
        "dict",
        aliases=("log_opt",),
        normalize=lambda v: string_dict(v, "log_options"),
        read=lambda c: dict(((c.get("HostConfig") or {}).get("LogConfig") or {}).get("Config") or {}),
        write=lambda body, v: body.setdefault("HostConfig", {}).setdefault("LogConfig", {}).update(Config=v),
    ),
    ContainerOption(
        "stop_signal",
        "str",
        "value",
        "StopSignal",
        normalize=normalize_signal,
        from_api=lambda v: normalize_signal(v or ""),
    ),
    ContainerOption("stop_timeout", "int", "value", "StopTimeout", default_comparison="ignore"),
    ContainerOption("runtime", "str", "value", "HostConfig.Runtime", from_api=_empty_if_none),
    # Pouch's own options.
    ContainerOption(
        "enable_lxcfs", "bool", "value", "HostConfig.EnableLxcfs", from_api=bool, pouch_only=True
    ),
    ContainerOption("rich", "bool", "value", "Rich", from_api=bool, pouch_only=True),
    ContainerOption(
        "rich_mode",
        "str",
        "value",
        "RichMode",
        choices=("dumb-init", "sbin-init", "systemd"),
        pouch_only=True,
    ),
    ContainerOption("init_script", "str", "value", "InitScript", from_api=_empty_if_none, pouch_only=True),
    ContainerOption(
        "disk_quota",
        "dict",
        "dict",
        "DiskQuota",
        normalize=lambda v: string_dict(v, "disk_quota"),
        from_api=lambda v: dict(v or {}),
        update=POUCH,
        pouch_only=True,
    ),
    ContainerOption(
        "quota_id", "str", "value", "QuotaID", from_api=_str_or_empty, equal=_quota_id_equal, pouch_only=True
    ),
    ContainerOption(
        "spec_annotation",
        "dict",
        "dict",
        "SpecAnnotation",
        normalize=lambda v: string_dict(v, "spec_annotation"),
        from_api=lambda v: dict(v or {}),
        update=POUCH,
        pouch_only=True,
    ),
]

OPTIONS_BY_NAME: dict[str, ContainerOption] = {option.name: option for option in OPTIONS}
ALIASES: dict[str, str] = {alias: option.name for option in OPTIONS for alias in option.aliases}

# UpdateConfig resource fields (both daemons); RestartPolicy, Env, Label... are built in the engine.
RESOURCE_UPDATE_FIELDS = {
    "memory": "Memory",
    "memory_swap": "MemorySwap",
    "cpu_shares": "CpuShares",
    "cpu_quota": "CpuQuota",
    "cpu_period": "CpuPeriod",
    "cpuset_cpus": "CpusetCpus",
}


def compare(option: ContainerOption, mode: str, desired: Any, current: Any) -> bool:
    """True when `current` satisfies `desired` under comparison `mode`."""
    if mode == "ignore":
        return True
    if option.kind == "set":
        if mode == "strict":
            return set(desired) == set(current or [])
        return set(desired) <= set(current or [])
    if option.kind == "dict":
        current = current or {}
        if mode == "strict":
            return desired == current
        return all(key in current and current[key] == value for key, value in desired.items())
    if option.equal:
        return option.equal(desired, current)
    return desired == current
