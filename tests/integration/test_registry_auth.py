"""Registry credentials against a real registry that requires them (issues 3 and 4).

The session's second registry (conftest `auth_registry`: Debian's docker-registry with htpasswd auth,
bcrypt hashes) refuses anonymous and wrongly authenticated pulls. pouch_image and pouch_container send
`registry_auth` as X-Registry-Auth; both daemons pass it on to the registry. Every run here is made at
-vvv, and the passwords (right and wrong) must appear neither in a module result nor in that output.
"""

from __future__ import annotations

import json
from typing import Any

from harness import AuthRegistry, Daemon, run_module_tasks, unique_name
from resource_harness import failed, image_id, ok, push_unique, push_variant, remove_images, uniq

# The registry's answer to wrong credentials (distribution: 401 "unauthorized: authentication required"),
# as the daemons pass it on.
REFUSED = ("unauthorized", "authentication required", "401")
# No credentials at all: dockerd says so itself after the registry's 401 challenge.
ANONYMOUS = (*REFUSED, "no basic auth credentials")


def run(daemon: Daemon, module: str, *tasks: dict[str, Any]) -> list[dict[str, Any]]:
    return run_module_tasks(daemon, module, list(tasks), verbosity=3)


def assert_never_shown(results: list[dict[str, Any]], *secrets: str) -> None:
    output = results[0]["_stdout"]
    assert "-vvv" in output or "ansible-playbook [core" in output, "the run was not verbose"
    for secret in secrets:
        assert secret not in output, "a password is in the -vvv output"
        for result in results:
            shown = json.dumps({key: value for key, value in result.items() if key != "_stdout"})
            assert secret not in shown, f"a password is in a module result: {shown[:500]}"


def refused_by_registry(result: dict[str, Any], reference: str, words: tuple[str, ...] = REFUSED) -> None:
    failed(result, f"pulling {reference}")
    message = result["msg"].lower()
    assert any(word in message for word in words), result["msg"]


def test_pouch_image_pull_needs_the_right_credentials(daemon: Daemon, auth_registry: AuthRegistry) -> None:
    auth_registry = auth_registry.for_daemon(daemon)
    repository = uniq("auth/pull")
    reference = push_variant(auth_registry.address, repository, "1", skopeo_flags=auth_registry.skopeo_flags)
    wrong_password = "wrong-" + uniq("pw")
    right, wrong = auth_registry.auth(), auth_registry.auth(wrong_password)
    try:
        anonymous, refused, pulled, again = run(
            daemon,
            "pouch_image",
            {"name": reference},
            {"name": reference, "registry_auth": wrong},
            {"name": reference, "registry_auth": right},
            {"name": reference, "registry_auth": right},
        )
        refused_by_registry(anonymous, reference, ANONYMOUS)
        refused_by_registry(refused, reference)
        assert refused["actions"] == []
        ok(pulled, True, ["pull"])
        assert pulled["diff"]["before"] == {}, "the refused pulls left no image behind"
        first_id = image_id(daemon, reference)
        assert first_id is not None and pulled["image"]["Id"] == first_id
        ok(again, False, [])
        assert_never_shown([anonymous, refused, pulled, again], auth_registry.password, wrong_password)

        # The registry now has another image under that tag: a refused forced pull leaves the old one.
        push_variant(
            auth_registry.address, repository, "1", variant="v2", skopeo_flags=auth_registry.skopeo_flags
        )
        (refused_again,) = run(
            daemon, "pouch_image", {"name": reference, "force_source": True, "registry_auth": wrong}
        )
        refused_by_registry(refused_again, reference)
        assert image_id(daemon, reference) == first_id, "a refused pull changed the image"
        (forced,) = run(
            daemon, "pouch_image", {"name": reference, "force_source": True, "registry_auth": right}
        )
        ok(forced, True, ["pull"])
        assert image_id(daemon, reference) not in (None, first_id)
        assert_never_shown([refused_again], auth_registry.password, wrong_password)
        assert_never_shown([forced], auth_registry.password, wrong_password)
    finally:
        remove_images(daemon, reference)


def test_pouch_container_pulls_its_image_with_registry_auth(
    daemon: Daemon, auth_registry: AuthRegistry
) -> None:
    auth_registry = auth_registry.for_daemon(daemon)
    reference = push_unique(
        auth_registry.address, uniq("auth/app"), "1", skopeo_flags=auth_registry.skopeo_flags
    )
    name = unique_name("auth-ctr")
    task = {"name": name, "image": reference, "command": "sleep 3600", "stop_timeout": 1}
    wrong_password = "wrong-" + uniq("pw")
    try:
        anonymous, refused = run(
            daemon, "pouch_container", task, {**task, "registry_auth": auth_registry.auth(wrong_password)}
        )
        for result, words in ((anonymous, ANONYMOUS), (refused, REFUSED)):
            assert result.get("failed"), result
            assert reference in result["msg"], result["msg"]
            assert any(word in result["msg"].lower() for word in words), result["msg"]
        assert image_id(daemon, reference) is None and daemon.inspect(name) is None
        started, again = run(
            daemon,
            "pouch_container",
            {**task, "registry_auth": auth_registry.auth()},
            {**task, "registry_auth": auth_registry.auth()},
        )
        assert not started.get("failed"), started.get("msg")
        assert started["changed"] and started["actions"] == ["pull", "create", "start"], started["actions"]
        assert not again["changed"] and again["actions"] == [], again.get("diff")
        inspect = daemon.inspect(name)
        assert inspect is not None and inspect["State"]["Running"]
        assert inspect["Image"] == image_id(daemon, reference)
        assert_never_shown([anonymous, refused], auth_registry.password, wrong_password)
        assert_never_shown([started, again], auth_registry.password, wrong_password)
    finally:
        daemon.remove(name)
        remove_images(daemon, reference)
