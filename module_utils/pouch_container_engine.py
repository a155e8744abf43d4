"""pouch_container's desired-state engine: compare, plan, then carry the plan out.

The plan (a list of actions) is computed completely before anything changes, so check mode
returns exactly the actions a real run performs. Options come from pouch_container_options.OPTIONS.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ansible.module_utils.pouch_client import PouchClient, PouchError
from ansible.module_utils.pouch_common import (
    REGISTRY_AUTH_SPEC,
    PouchModule,
    ensure_image,
    normalize_image_reference,
    registry_auth,
)
from ansible.module_utils.pouch_container_options import (
    ALIASES,
    BOTH,
    OPTIONS,
    OPTIONS_BY_NAME,
    POUCH,
    RESOURCE_UPDATE_FIELDS,
    ContainerOption,
    OptionError,
    compare,
    parse_env_file,
)

COMPARISON_MODES = ("strict", "ignore", "allow_more_present")


def argument_spec() -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": {"type": "str", "required": True},
        "state": {
            "type": "str",
            "default": "started",
            "choices": ["absent", "present", "started", "stopped"],
        },
        "image": {"type": "str"},
        "pull": {"type": "str", "default": "missing", "choices": ["missing", "always", "never"]},
        "registry_auth": REGISTRY_AUTH_SPEC,
        "image_upgrade": {"type": "bool", "default": False},
        "recreate": {"type": "bool", "default": False},
        "restart": {"type": "bool", "default": False},
        "comparisons": {"type": "dict"},
        "env_file": {"type": "path"},
        "detach": {"type": "bool", "default": True},
        "ignore_exit_status": {"type": "bool", "default": False},
        "cleanup": {"type": "bool", "default": False},
        "keep_volumes": {"type": "bool", "default": True},
    }
    for option in OPTIONS:
        spec[option.name] = option.argument_spec()
    return spec


# The daemons' container name rule (moby's RestrictedNameChars, pouchd master's too).
VALID_NAME = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$")


@dataclass
class Difference:
    option: str
    before: Any
    after: Any
    updatable: bool


class ContainerManager:
    def __init__(self, module: PouchModule) -> None:
        self.module = module
        self.params = module.params
        self.name: str = self.params["name"].lstrip("/")
        self.check_mode = module.check_mode
        self.actions: list[str] = []
        self.result: dict[str, Any] = {"changed": False, "actions": self.actions}
        self.client: PouchClient = module.client

    # -- preparation -------------------------------------------------------------------------
    def desired_values(self) -> dict[str, Any]:
        """Normalized values of the options the user set (unset options are never compared)."""
        values: dict[str, Any] = {}
        params = dict(self.params)
        if params.get("env_file"):
            from_file = parse_env_file(params["env_file"])
            params["env"] = {**from_file, **(params.get("env") or {})}
        for option in OPTIONS:
            value = params.get(option.name)
            if value is not None:
                values[option.name] = option.desired(value)
        return values

    def comparisons(self) -> dict[str, str]:
        raw = self.params.get("comparisons") or {}
        modes = {option.name: option.comparison for option in OPTIONS}
        modes["image"] = "strict"
        wildcard = raw.get("*")
        if wildcard is not None:
            if wildcard not in ("strict", "ignore"):
                raise OptionError(f"comparisons: '*' must be strict or ignore, got {wildcard!r}")
            for name in modes:
                if name != "stop_timeout":
                    modes[name] = wildcard
        for key, mode in raw.items():
            if key == "*":
                continue
            name = ALIASES.get(key, key)
            if name not in modes:
                raise OptionError(f"comparisons: unknown option {key!r}")
            if mode not in COMPARISON_MODES:
                raise OptionError(
                    f"comparisons: {key}: expected one of {', '.join(COMPARISON_MODES)}, got {mode!r}"
                )
            option = OPTIONS_BY_NAME.get(name)
            if mode == "allow_more_present" and (option is None or option.kind not in ("set", "dict")):
                raise OptionError(
                    f"comparisons: {key}: allow_more_present only applies to list-like and dict options"
                )
            modes[name] = mode
        return modes

    def validate_for_daemon(self, desired: dict[str, Any]) -> None:
        if self.client.is_pouch:
            return
        pouch_only = [name for name in desired if OPTIONS_BY_NAME[name].pouch_only]
        if pouch_only:
            raise OptionError(
                f"option(s) {', '.join(sorted(pouch_only))} are only supported by pouchd; "
                f"the daemon at {self.client.settings.host} is dockerd"
            )
        if self.params["image_upgrade"]:
            raise OptionError(
                "image_upgrade needs pouchd's POST /containers/{id}/upgrade; "
                f"the daemon at {self.client.settings.host} is dockerd, which has no upgrade endpoint"
            )

    def validate_rules(self, desired: dict[str, Any]) -> None:
        # pouchd's own rules (daemon/mgr/container_validation.go), checked before anything changes.
        if self.params["state"] != "absent" and not VALID_NAME.match(self.name):
            # master and dockerd refuse such a name at create; the 1.3.0 release creates the container
            # (state absent still removes one it made).
            raise OptionError(
                f"name {self.name!r} is not a valid container name: use letters, digits, '_', '.' and '-', "
                "starting with a letter or digit, at least two characters ([a-zA-Z0-9][a-zA-Z0-9_.-]+)"
            )
        if "rich_mode" in desired and not desired.get("rich"):
            raise OptionError("rich_mode needs rich: true")
        if desired.get("rich_mode") == "systemd" and not desired.get("privileged"):
            raise OptionError("rich_mode systemd needs privileged: true")
        if desired.get("quota_id") not in (None, "", "0") and not desired.get("disk_quota"):
            raise OptionError("quota_id needs disk_quota")
        if desired.get("quota_id") not in (None, "", "0") and len(desired.get("disk_quota") or {}) > 1:
            raise OptionError("quota_id allows only one disk_quota rule")

    # -- comparison --------------------------------------------------------------------------
    def differences(
        self,
        container: dict[str, Any],
        desired: dict[str, Any],
        image: dict[str, Any] | None,
        modes: dict[str, str],
    ) -> list[Difference]:
        pouch = self.client.is_pouch
        result = []
        for name, value in desired.items():
            option = OPTIONS_BY_NAME[name]
            current = option.current(container)
            if option.image_defaults and isinstance(current, dict):
                current = self._without_image_defaults(option, current, value, image)
            if compare(option, modes[name], value, current) or self._same_network_container(
                name, value, current
            ):
                continue
            updatable = option.update == BOTH or (option.update == POUCH and pouch)
            if updatable and option.kind == "dict" and set(current or {}) - set(value):
                # In-place updates merge keys; removing one needs a new container.
                updatable = modes[name] != "strict"
            result.append(Difference(name, current, value, updatable))
        return result

    def _same_network_container(self, name: str, desired: Any, current: Any) -> bool:
        """dockerd stores network_mode container:NAME as container:ID; pouchd keeps the name."""
        if name != "network_mode" or not str(desired).startswith("container:"):
            return False
        peer = self.client.inspect_container(str(desired).split(":", 1)[1])
        return peer is not None and current == f"container:{peer.get('Id')}"

    @staticmethod
    def _without_image_defaults(
        option: ContainerOption,
        current: dict[str, str],
        desired: dict[str, str],
        image: dict[str, Any] | None,
    ) -> dict[str, str]:
        """Drop entries that the image supplies (and the user did not set): they are not drift."""
        defaults = option.image_defaults(image) if (image and option.image_defaults) else {}
        return {key: value for key, value in current.items() if key in desired or defaults.get(key) != value}

    def image_differs(
        self, container: dict[str, Any], image: dict[str, Any] | None, modes: dict[str, str]
    ) -> bool:
        if modes["image"] == "ignore" or not self.params.get("image"):
            return False
        if image is None:  # check mode, image not pulled yet: a pull is planned, so it differs
            return True
        return container.get("Image") != image.get("Id")

    # -- planning ----------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        params = self.params
        state = params["state"]
        try:
            desired = self.desired_values()
            modes = self.comparisons()
            self.validate_rules(desired)
        except OptionError as exc:
            self.module.fail_json(msg=str(exc))
        try:
            self.validate_for_daemon(desired)
        except OptionError as exc:
            self.module.fail_json(msg=str(exc))
        container = self.client.inspect_container(self.name)
        if container is not None and container.get("Name", "").lstrip("/") != self.name:
            self.module.fail_json(
                msg=f"name conflict: {self.name!r} matches container {container.get('Id', '')[:12]} named "
                f"{container.get('Name', '').lstrip('/')!r} (by ID prefix); choose another name"
            )
        if state == "absent":
            self.plan_absent(container)
        else:
            self.plan_present(container, desired, modes)
        return self.result

    def plan_absent(self, container: dict[str, Any] | None) -> None:
        if container is None:
            return
        self.set_diff({"state": self.describe_state(container)}, {"state": "absent"})
        self.perform("remove", self.remove, container)

    def plan_present(
        self, container: dict[str, Any] | None, desired: dict[str, Any], modes: dict[str, str]
    ) -> None:
        params = self.params
        state = params["state"]
        image: dict[str, Any] | None = None
        image_ref = params.get("image")
        if image_ref:
            image, pulled = ensure_image(self.client, image_ref, params["pull"], self.check_mode, self.auth())
            if pulled:
                self.changed("pull")
        elif container is None:
            self.module.fail_json(msg=f"container {self.name} does not exist: give image to create it")

        if container is None:
            self.set_diff({"state": "absent"}, {"state": state, **desired})
            self.perform("create", self.create, desired, image)
            if state == "started":
                self.perform("start", self.start)
                self.after_start()
            return

        differences = self.differences(container, desired, image, modes)
        image_changed = self.image_differs(container, image, modes)
        needs_recreate = params["recreate"] or any(not d.updatable for d in differences)
        upgrade = image_changed and params["image_upgrade"] and not needs_recreate
        needs_recreate = needs_recreate or (image_changed and not upgrade)
        running = bool((container.get("State") or {}).get("Running"))

        before = {d.option: d.before for d in differences}
        after = {d.option: d.after for d in differences}
        if image_changed:
            before["image"] = container.get("Image")
            after["image"] = (image or {}).get("Id") or normalize_image_reference(image_ref or "")

        if needs_recreate:
            # The replacement is created under a temporary name first: if the daemon refuses the
            # new configuration (unknown runtime, quota, ...), the old container is untouched.
            temporary = f"{self.name}-replacement"
            self.perform("create", self.create, desired, image, temporary)
            if running:
                self.perform("stop", self.stop)
            self.perform("remove", self.remove_stopped)
            self.perform("rename", self.client.rename_container, temporary, self.name)
            keep_running = state == "started" or (state == "present" and running)
            if keep_running:
                self.perform("start", self.start)
                self.after_start()
            after_state = "running" if keep_running else "created"
            self.set_diff(
                {**before, "state": self.describe_state(container)},
                {**after, "state": after_state},
            )
            return

        if upgrade:
            self.perform("upgrade", self.upgrade, desired)
        updates = [d for d in differences if d.updatable]
        if updates:
            self.perform("update", self.update, container, updates, desired)

        state_before = self.describe_state(container)
        state_after = state_before
        if state == "started":
            if not running:
                self.perform("start", self.start)
                self.after_start()
                state_after = "running"
            elif params["restart"]:
                self.perform("restart", self.restart)
        elif state == "stopped":
            if running:
                self.perform("stop", self.stop)
                state_after = "stopped"
        elif state == "present" and params["restart"] and running:
            self.perform("restart", self.restart)
        if state_after != state_before:
            before["state"], after["state"] = state_before, state_after
        if before or after:
            self.set_diff(before, after)

    # -- carrying out ------------------------------------------------------------------------
    def changed(self, action: str) -> None:
        self.actions.append(action)
        self.result["changed"] = True

    def perform(self, action: str, function: Any, *args: Any) -> None:
        # Recorded after success, so a failure reports only what really happened.
        if not self.check_mode:
            function(*args)
        self.changed(action)

    def auth(self) -> dict[str, Any] | None:
        return registry_auth(self.params)

    def stop_timeout(self) -> int | None:
        return self.params.get("stop_timeout")

    def create_body(self, desired: dict[str, Any], image: dict[str, Any] | None) -> dict[str, Any]:
        body: dict[str, Any] = {"Image": self.image_for_create(image), "HostConfig": {}}
        for name, value in desired.items():
            OPTIONS_BY_NAME[name].write_into(body, value)
        host_config = body["HostConfig"]
        # pouchd rejects "default"; Moby treats "bridge" the same. OomScoreAdj is left out: a
        # negative value fails where root lacks CAP_SYS_RESOURCE.
        host_config.setdefault("NetworkMode", "bridge")
        return body

    def image_for_create(self, image: dict[str, Any] | None) -> str:
        reference = self.params["image"]
        if reference and (reference.startswith("sha256:") or len(reference) == 64):
            return reference
        return normalize_image_reference(reference)

    def create(self, desired: dict[str, Any], image: dict[str, Any] | None, name: str | None = None) -> None:
        body = self.create_body(desired, image)
        if name:
            # A leftover replacement from an interrupted run would block the create.
            self.client.remove_container(name, force=True, volumes=True)
        self.client.create_container(name or self.name, body)

    def start(self) -> None:
        self.client.start_container(self.name)

    def stop(self) -> None:
        self.client.stop_container(self.name, self.stop_timeout())

    def restart(self) -> None:
        self.client.restart_container(self.name, self.stop_timeout())

    def remove(self, container: dict[str, Any]) -> None:
        if (container.get("State") or {}).get("Running"):
            self.client.stop_container(self.name, self.stop_timeout())
        self.client.remove_container(self.name, force=True, volumes=not self.params["keep_volumes"])

    def remove_stopped(self) -> None:
        self.client.remove_container(self.name, force=True, volumes=not self.params["keep_volumes"])

    def upgrade(self, desired: dict[str, Any]) -> None:
        body: dict[str, Any] = {"Image": self.image_for_create(None)}
        if "command" in desired:
            body["Cmd"] = desired["command"]
        if "entrypoint" in desired:
            body["Entrypoint"] = desired["entrypoint"]
        self.client.upgrade_container(self.name, body)

    def update(self, container: dict[str, Any], updates: list[Difference], desired: dict[str, Any]) -> None:
        body: dict[str, Any] = {}
        for difference in updates:
            name = difference.option
            if name in RESOURCE_UPDATE_FIELDS:
                body[RESOURCE_UPDATE_FIELDS[name]] = desired[name]
            elif name in ("restart_policy", "restart_retries"):
                policy = dict((container.get("HostConfig") or {}).get("RestartPolicy") or {})
                policy.setdefault("Name", "no")
                if "restart_policy" in desired:
                    policy["Name"] = desired["restart_policy"]
                if "restart_retries" in desired:
                    policy["MaximumRetryCount"] = desired["restart_retries"]
                body["RestartPolicy"] = policy
            elif name == "env":
                body["Env"] = [f"{key}={value}" for key, value in desired["env"].items()]
            elif name == "labels":
                body["Label"] = [f"{key}={value}" for key, value in desired["labels"].items()]
            elif name == "disk_quota":
                body["DiskQuota"] = desired["disk_quota"]
            elif name == "spec_annotation":
                body["SpecAnnotation"] = desired["spec_annotation"]
        if "Memory" in body and "memory_swap" not in desired:
            # dockerd refuses a memory limit above the current swap limit (0 = none set): give the
            # swap limit a fresh container would get, twice the memory.
            current_swap = (container.get("HostConfig") or {}).get("MemorySwap") or 0
            if current_swap != -1 and (current_swap == 0 or current_swap < body["Memory"]):
                body["MemorySwap"] = 2 * body["Memory"]
        self.result["update_parameters"] = body
        self.client.update_container(self.name, body)

    def after_start(self) -> None:
        """detach: false waits for the container, returns its exit status and output."""
        if self.params["detach"]:
            return
        if self.check_mode:
            self.changed("wait")
            if self.params["cleanup"]:
                self.changed("cleanup")
            return
        # A job may run for long: wait without the API timeout (a week bounds a lost daemon).
        outcome = self.client.wait_container(self.name, timeout=7 * 24 * 3600) or {}
        self.changed("wait")
        status = outcome.get("StatusCode", 0)
        stdout, stderr = self.client.container_logs(self.name)
        self.result["status"] = status
        self.result["output"] = stdout + stderr
        self.result["stdout"], self.result["stderr"] = stdout, stderr
        if self.params["cleanup"]:
            self.client.remove_container(self.name, force=True, volumes=not self.params["keep_volumes"])
            self.changed("cleanup")
        if status != 0 and not self.params["ignore_exit_status"]:
            self.result["failed"] = True
            self.result["msg"] = (
                f"container {self.name} exited with status {status}: {(stdout + stderr)[-2000:]}"
            )

    # -- reporting ---------------------------------------------------------------------------
    @staticmethod
    def describe_state(container: dict[str, Any] | None) -> str:
        if container is None:
            return "absent"
        state = container.get("State") or {}
        if state.get("Running"):
            return "running"
        # pouchd says "stopped" after an API stop and "exited" when the process ended by itself.
        return state.get("Status") or "created"

    def set_diff(self, before: dict[str, Any], after: dict[str, Any]) -> None:
        self.result["diff"] = {"before": before, "after": after}


def run_module() -> None:
    module = PouchModule(argument_spec=argument_spec(), supports_check_mode=True)
    manager = ContainerManager(module)
    try:
        result = manager.run()
        if module.params["state"] == "absent" or (module.check_mode and "create" in manager.actions):
            result["container"] = {} if module.params["state"] == "absent" else None
        elif not (manager.params["cleanup"] and "cleanup" in manager.actions):
            result["container"] = module.client.inspect_container(manager.name)
        else:
            result["container"] = {}
    except PouchError as exc:
        module.fail_json(
            msg=str(exc), status=exc.status, actions=manager.actions, changed=bool(manager.actions)
        )
    except OptionError as exc:
        module.fail_json(msg=str(exc))
    if result.get("failed"):
        module.fail_json(**result)
    module.exit_json(**result)
