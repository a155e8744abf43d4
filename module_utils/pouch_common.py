"""What every pouch_* module shares: connection options, a module base class, image resolution.

Issue #4's modules (pouch_image, pouch_network, pouch_volume, pouch_info) build on this:

    module = PouchModule(argument_spec={...}, supports_check_mode=True)
    client = module.client          # a connected PouchClient (module_utils/pouch_client.py)
    try: ... except PouchError as exc: module.fail_pouch(exc)

The connection options are documented once, in plugins/doc_fragments/pouch.py.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

from ansible.module_utils.basic import AnsibleModule, env_fallback
from ansible.module_utils.common.parameters import AnsibleFallbackNotFound
from ansible.module_utils.pouch_client import (
    DEFAULT_API_VERSION,
    DEFAULT_HOST,
    DEFAULT_TIMEOUT,
    ConnectionSettings,
    PouchClient,
    PouchError,
)


def _cert_path_fallback(filename: str) -> Any:
    def fallback() -> str:
        cert_dir = os.environ.get("POUCH_CERT_PATH")
        if cert_dir:
            return os.path.join(cert_dir, filename)
        raise AnsibleFallbackNotFound

    return fallback


POUCH_CONNECTION_ARGS: dict[str, dict[str, Any]] = {
    "pouch_host": {
        "type": "str",
        "default": DEFAULT_HOST,
        "aliases": ["host"],
        "fallback": (env_fallback, ["POUCH_HOST"]),
    },
    "api_version": {
        "type": "str",
        "default": DEFAULT_API_VERSION,
        "fallback": (env_fallback, ["POUCH_API_VERSION"]),
    },
    "timeout": {"type": "int", "default": DEFAULT_TIMEOUT, "fallback": (env_fallback, ["POUCH_TIMEOUT"])},
    "tls": {"type": "bool", "default": False, "fallback": (env_fallback, ["POUCH_TLS"])},
    "validate_certs": {
        "type": "bool",
        "default": False,
        "aliases": ["tls_verify"],
        "fallback": (env_fallback, ["POUCH_TLS_VERIFY"]),
    },
    "ca_path": {
        "type": "path",
        "aliases": ["ca_cert", "tls_ca_cert"],
        "fallback": (_cert_path_fallback("ca.pem"), []),
    },
    "client_cert": {
        "type": "path",
        "aliases": ["tls_client_cert"],
        "fallback": (_cert_path_fallback("cert.pem"), []),
    },
    "client_key": {
        "type": "path",
        "aliases": ["tls_client_key"],
        "fallback": (_cert_path_fallback("key.pem"), []),
    },
    "tls_hostname": {"type": "str", "fallback": (env_fallback, ["POUCH_TLS_HOSTNAME"])},
}


def connection_settings(params: dict[str, Any]) -> ConnectionSettings:
    return ConnectionSettings(
        host=params["pouch_host"],
        api_version=params["api_version"],
        timeout=params["timeout"],
        tls=params["tls"],
        validate_certs=params["validate_certs"],
        ca_path=params.get("ca_path"),
        client_cert=params.get("client_cert"),
        client_key=params.get("client_key"),
        tls_hostname=params.get("tls_hostname"),
    )


def check_tls_files(params: dict[str, Any]) -> str | None:
    """A clear message when TLS is asked for with files that do not exist, before any connection."""
    uses_tls = params["tls"] or params["validate_certs"]
    if not uses_tls:
        return None
    if not params["pouch_host"].startswith(("tcp://", "https://")):
        return f"TLS options need a tcp:// pouch_host, got {params['pouch_host']!r}"
    for option in ("ca_path", "client_cert", "client_key"):
        path = params.get(option)
        if path and not os.path.isfile(path):
            return f"TLS: {option} {path!r} does not exist or is not a file"
    if bool(params.get("client_cert")) != bool(params.get("client_key")):
        return "TLS: client_cert and client_key must be given together"
    return None


class PouchModule(AnsibleModule):
    """AnsibleModule with the shared connection options added and a lazily connected client."""

    def __init__(self, argument_spec: dict[str, Any], **kwargs: Any) -> None:
        spec = dict(POUCH_CONNECTION_ARGS)
        spec.update(argument_spec)
        super().__init__(argument_spec=spec, **kwargs)
        self._client: PouchClient | None = None

    @property
    def client(self) -> PouchClient:
        if self._client is None:
            problem = check_tls_files(self.params)
            if problem:
                self.fail_json(msg=problem)
            self._client = PouchClient(connection_settings(self.params))
        return self._client

    def fail_pouch(self, exc: PouchError, **extra: Any) -> None:
        self.fail_json(msg=str(exc), status=exc.status, **extra)


# The `registry_auth` option of every module that pulls (documented once: doc fragment pouch.registry_auth).
# Only the password is no_log: Ansible masks every no_log value wherever it appears in the output, and a
# no_log dict would mask the registry's address (and the user name) in every pull error message too.
REGISTRY_AUTH_SPEC: dict[str, Any] = {
    "type": "dict",
    "no_log": False,
    "options": {
        "username": {"type": "str", "required": True},
        "password": {"type": "str", "required": True, "no_log": True},
        "server_address": {"type": "str"},
    },
}


def registry_auth(params: dict[str, Any]) -> dict[str, Any] | None:
    """The AuthConfig for X-Registry-Auth from a module's `registry_auth` parameter, or None."""
    auth = params.get("registry_auth")
    if not auth:
        return None
    return {
        "username": auth["username"],
        "password": auth["password"],
        "serveraddress": auth.get("server_address") or "",
    }


def split_image_reference(reference: str) -> tuple[str, str | None, str | None]:
    """(repository, tag, digest) of `name[:tag][@digest]`; a registry port is not a tag."""
    digest = None
    if "@" in reference:
        reference, digest = reference.split("@", 1)
    tag = None
    last = reference.rsplit("/", 1)[-1]
    if ":" in last:
        reference, tag = reference.rsplit(":", 1)
    return reference, tag, digest


def normalize_image_reference(reference: str) -> str:
    """The exact reference to pull and look up: add ':latest' when neither tag nor digest is given.

    pouchd finds images by the name they were stored under, so the user's spelling is kept
    otherwise (no docker.io/ or library/ expansion).
    """
    repository, tag, digest = split_image_reference(reference)
    if digest:
        return f"{repository}@{digest}" if not tag else f"{repository}:{tag}@{digest}"
    return f"{repository}:{tag or 'latest'}"


def is_image_id(reference: str) -> bool:
    if reference.startswith("sha256:"):
        return True
    return len(reference) == 64 and all(c in "0123456789abcdef" for c in reference)


def ensure_image(
    client: PouchClient, reference: str, pull: str, check_mode: bool, auth: dict[str, Any] | None = None
) -> tuple[dict[str, Any] | None, bool]:
    """Return (image inspect or None when only predicted, pulled?) following pull=missing|always|never.

    In check mode nothing is pulled: a missing image is reported as "would pull" and None comes back.
    With pull=always the pull counts as a change only when the image ID changed.
    """
    lookup = reference if is_image_id(reference) else normalize_image_reference(reference)
    image = client.inspect_image(lookup)
    if is_image_id(reference):
        if image is None:
            raise PouchError(f"image {reference} not found (image IDs are never pulled)")
        return image, False
    if pull == "never":
        if image is None:
            raise PouchError(f"image {lookup} not found on the daemon and pull is 'never'")
        return image, False
    if image is not None and pull == "missing":
        return image, False
    if check_mode:
        # With pull=always we cannot know whether the registry has a newer image without pulling.
        return image, image is None
    client.pull_image(lookup, auth)
    pulled = client.inspect_image(lookup)
    if pulled is None:
        raise PouchError(f"image {lookup} was pulled but the daemon cannot find it under that name")
    return pulled, image is None or image.get("Id") != pulled.get("Id")


# -- what pouch_image, pouch_network and pouch_volume share ----------------------------------------


class ResourceInputError(ValueError):
    """A parameter problem (or a refusal) found before anything changed."""


def string_map(option: str, value: dict[str, Any]) -> dict[str, str]:
    """A dict option whose values must be strings (labels, driver options): YAML's yes/1 are refused."""
    for key, item in value.items():
        if not isinstance(item, str):
            raise ResourceInputError(
                f"{option}: the value of {key!r} must be a string, got {type(item).__name__} {item!r} "
                "(quote it in YAML)"
            )
    return dict(value)


class ResourceManager:
    """Base of the image, network and volume engines: the list of actions, the result, the guard that
    refuses to remove what containers use, and the remove-then-create recreate of a named object.

    `kind` names the client's methods a subclass works with: inspect_KIND, create_KIND, remove_KIND.
    """

    kind = ""

    def __init__(self, module: PouchModule) -> None:
        self.module = module
        self.params = module.params
        self.check_mode = module.check_mode
        self.actions: list[str] = []
        self.result: dict[str, Any] = {"changed": False, "actions": self.actions}

    @property
    def client(self) -> PouchClient:
        return self.module.client

    def run(self) -> dict[str, Any]:
        raise NotImplementedError

    def api(self, verb: str) -> Callable[..., Any]:
        return getattr(self.client, f"{verb}_{self.kind}")

    def perform(self, action: str, function: Callable[..., Any], *args: Any) -> None:
        """Record `action` as a change; call `function(*args)` unless in check mode."""
        if not self.check_mode:
            function(*args)
        self.actions.append(action)
        self.result["changed"] = True

    @staticmethod
    def refuse_if_used(
        what: str, users: Iterable[str], purpose: str, remedy: str, force: bool = False
    ) -> None:
        """Fail, changing nothing, when containers use `what` (unless `force`); the message names them."""
        names = sorted(set(users))
        if names and not force:
            raise ResourceInputError(
                f"{what} is used by container(s) {', '.join(names)}: refusing to {purpose}; {remedy}"
            )

    def detach(self, name: str, container_id: str) -> None:
        """Detach one container from the object before it is removed (only networks can)."""
        raise NotImplementedError(f"a {self.kind} cannot be detached from its containers")

    def remove(self, name: str, users: dict[str, str] | None = None) -> None:
        """Detach `users` (container ID -> name), in name order, then remove the object."""
        for container_id, container in sorted((users or {}).items(), key=lambda item: item[1]):
            self.perform(f"disconnect:{container}", self.detach, name, container_id)
        self.perform("remove", self.api("remove"), name)

    def replace(
        self,
        name: str,
        current: dict[str, Any] | None,
        body: dict[str, Any],
        users: dict[str, str] | None = None,
    ) -> None:
        """Recreate: detach `users` (container ID -> name) and remove `current` when there is one, then
        create from `body`. A create that fails leaves nothing half made (`rolled_back`), except after a
        409, when the name belongs to an object this task did not make."""
        if current is not None:
            self.remove(name, users)
        try:
            self.perform("create", self.api("create"), body)
        except PouchError as exc:
            if not self.check_mode and exc.status != 409 and self.api("inspect")(name) is not None:
                self.api("remove")(name)
                self.result["rolled_back"] = True
            raise


def run_manager(manager_class: type[ResourceManager], argument_spec: dict[str, Any]) -> None:
    """The body of an image/network/volume module: run the manager, turn its errors into failures."""
    module = PouchModule(argument_spec=argument_spec, supports_check_mode=True)
    manager = manager_class(module)
    try:
        result = manager.run()
    except ResourceInputError as exc:
        module.fail_json(msg=str(exc), actions=manager.actions)
    except PouchError as exc:
        module.fail_pouch(exc, actions=manager.actions, rolled_back=manager.result.get("rolled_back", False))
    module.exit_json(**result)
