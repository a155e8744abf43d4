"""pouch_info's engine: read /version and /info (and optionally lists) into one shape for both daemons.

pouchd and dockerd name the same facts differently (PouchRootDir / DockerRootDir, a containerd snapshotter
called "overlayfs" / a graph driver called "overlay2", LxcfsEnabled and CriEnabled only on pouchd). `engine`
holds them under one set of names, so roles and playbooks need not care which daemon answered.
Nothing is ever changed.
"""

from __future__ import annotations

from typing import Any

from ansible.module_utils.pouch_client import PouchClient, PouchError, container_name
from ansible.module_utils.pouch_common import PouchModule

STORAGE_FAMILIES = {
    "overlay": "overlay",
    "overlay2": "overlay",
    "overlayfs": "overlay",
    "fuse-overlayfs": "overlay",
    "devicemapper": "devicemapper",
    "devmapper": "devicemapper",
    "btrfs": "btrfs",
    "zfs": "zfs",
    "aufs": "aufs",
    "vfs": "native",
    "native": "native",
}


def argument_spec() -> dict[str, Any]:
    return {
        "containers": {"type": "bool", "default": False},
        "containers_all": {"type": "bool", "default": False},
        "images": {"type": "bool", "default": False},
        "networks": {"type": "bool", "default": False},
        "volumes": {"type": "bool", "default": False},
        "verbose_output": {"type": "bool", "default": False},
    }


def _unique(items: list[str]) -> list[str]:
    seen: list[str] = []
    for item in items:
        if item and item not in seen:
            seen.append(item)
    return seen


def normalize(version: dict[str, Any], info: dict[str, Any], is_pouch: bool) -> dict[str, Any]:
    """One vocabulary for both daemons' /version and /info."""
    registry = info.get("RegistryConfig") or {}
    index_configs = registry.get("IndexConfigs") or {}
    mirrors = list(registry.get("Mirrors") or [])
    insecure = list(registry.get("InsecureRegistryCIDRs") or [])
    for name, index in index_configs.items():
        mirrors.extend(index.get("Mirrors") or [])
        if index.get("Secure") is False:
            insecure.append(name)
    driver = info.get("Driver") or ""
    driver_status = {str(pair[0]): pair[1] for pair in info.get("DriverStatus") or [] if len(pair) == 2}
    if is_pouch:
        snapshotter = driver or None  # pouchd's Driver is its containerd snapshotter
    elif str(driver_status.get("driver-type", "")).startswith("io.containerd.snapshotter"):
        snapshotter = driver
    else:
        snapshotter = None
    runtimes = info.get("Runtimes") or {}
    return {
        "kind": "pouch" if is_pouch else "docker",
        "version": version.get("Version") or info.get("ServerVersion"),
        "api_version": version.get("ApiVersion"),
        "min_api_version": version.get("MinAPIVersion"),
        "git_commit": version.get("GitCommit"),
        "os": version.get("Os") or info.get("OSType"),
        "arch": version.get("Arch") or info.get("Architecture"),
        "kernel_version": version.get("KernelVersion") or info.get("KernelVersion"),
        "operating_system": str(info.get("OperatingSystem") or "").strip('"') or None,
        "name": info.get("Name"),
        "ncpu": info.get("NCPU"),
        "mem_total": info.get("MemTotal"),
        "root_dir": info.get("PouchRootDir") or info.get("DockerRootDir"),
        "storage_driver": driver or None,
        "storage_family": STORAGE_FAMILIES.get(driver, driver or None),
        "snapshotter": snapshotter,
        "cgroup_driver": info.get("CgroupDriver"),
        "logging_driver": info.get("LoggingDriver"),
        "runtimes": sorted(runtimes),
        "default_runtime": info.get("DefaultRuntime"),
        "lxcfs_enabled": bool(info.get("LxcfsEnabled", False)),
        "cri_enabled": bool(info.get("CriEnabled", False)),
        "live_restore_enabled": bool(info.get("LiveRestoreEnabled", False)),
        "default_registry": info.get("DefaultRegistry") or ("docker.io" if not is_pouch else None),
        "registry_mirrors": _unique(mirrors),
        "insecure_registries": _unique(insecure),
        "security_options": list(info.get("SecurityOptions") or []),
        "listen_addresses": list(info.get("ListenAddresses") or []),
        "containers_count": info.get("Containers"),
        "images_count": info.get("Images"),
    }


def container_summary(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "Id": item.get("Id"),
        "Name": container_name(item),
        "Image": item.get("Image"),
        "ImageID": item.get("ImageID"),
        "Status": item.get("Status"),
        "Created": item.get("Created"),
        "Labels": item.get("Labels") or {},
    }


def image_summary(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "Id": item.get("Id"),
        "RepoTags": item.get("RepoTags") or [],
        "RepoDigests": item.get("RepoDigests") or [],
        "Size": item.get("Size"),
        "Created": item.get("Created") or item.get("CreatedAt"),
    }


def network_summary(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "Id": item.get("Id"),
        "Name": item.get("Name"),
        "Driver": item.get("Driver"),
        "Scope": item.get("Scope"),
        "Subnets": [entry.get("Subnet") for entry in (item.get("IPAM") or {}).get("Config") or []],
        "Labels": item.get("Labels") or {},
    }


def volume_summary(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "Name": item.get("Name"),
        "Driver": item.get("Driver"),
        "Mountpoint": item.get("Mountpoint"),
        "Labels": item.get("Labels") or {},
    }


def gather(client: PouchClient, params: dict[str, Any]) -> dict[str, Any]:
    version = client.version()
    info = client.info()
    result: dict[str, Any] = {
        "changed": False,
        "can_talk_to_daemon": True,
        "engine": normalize(version, info, client.is_pouch),
        "host_info": info,
        "version": version,
    }
    verbose = params["verbose_output"]
    if params["containers"] or params["containers_all"]:
        items = client.list_containers(all_containers=params["containers_all"])
        result["containers"] = items if verbose else [container_summary(item) for item in items]
    if params["images"]:
        items = client.list_images()
        result["images"] = items if verbose else [image_summary(item) for item in items]
    if params["networks"]:
        items = client.list_networks()
        result["networks"] = items if verbose else [network_summary(item) for item in items]
    if params["volumes"]:
        items = client.list_volumes()
        result["volumes"] = items if verbose else [volume_summary(item) for item in items]
    return result


def run_module() -> None:
    module = PouchModule(argument_spec=argument_spec(), supports_check_mode=True)
    try:
        result = gather(module.client, module.params)
    except PouchError as exc:
        module.fail_pouch(exc, can_talk_to_daemon=False)
    module.exit_json(**result)
