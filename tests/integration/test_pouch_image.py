"""pouch_image against real daemons: pull, force_source, load (docker-archive, OCI), tag, remove, bad inputs.

Each daemon's state is read back with the docker SDK. The only fake is a socket that answers a pull with
HTTP 200 and then an error object, which no real registry can be made to do on demand.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from harness import Daemon
from resource_harness import (
    FakeDaemon,
    closed_unix_socket,
    delete_from_registry,
    docker_archive,
    failed,
    image_id,
    image_snapshot,
    oci_archive,
    ok,
    push_unique,
    push_variant,
    remove_images,
    run_module_tasks,
    uniq,
)

from lab.registry import Registry
from lab.tlsca import LabCa

MODULE = "pouch_image"


def run(daemon: Daemon | None, *tasks: dict[str, Any]) -> list[dict[str, Any]]:
    return run_module_tasks(daemon, MODULE, list(tasks))


def test_pull_check_idempotent_force_source_and_diff(daemon: Daemon) -> None:
    repository = uniq("i4/pull")
    reference = push_variant(daemon.registry, repository, "1")
    try:
        (predicted,) = run(daemon, {"name": reference, "_check": True})
        ok(predicted, True, ["pull"])
        assert predicted["image"] is None
        assert predicted["diff"] == {"before": {}, "after": {"id": "(new image)", "tags": [reference]}}
        assert image_id(daemon, reference) is None
        pulled, again, forced = run(
            daemon,
            {"name": reference},
            {"name": reference},
            {"name": reference, "force_source": True},
        )
        ok(pulled, True, ["pull"])
        first_id = image_id(daemon, reference)
        assert first_id is not None and pulled["image"]["Id"] == first_id
        assert pulled["diff"]["before"] == {} and pulled["diff"]["after"]["id"] == first_id
        assert reference in pulled["diff"]["after"]["tags"]
        # The layers may already be on the daemon (same content under other names): no layer events then.
        assert pulled["progress"]["events"] > 0 and pulled["progress"]["status"]
        ok(again, False, [])
        assert again["diff"]["before"] == again["diff"]["after"]
        # Re-pulled, same image: not a change.
        ok(forced, False, ["pull"])
        assert image_id(daemon, reference) == first_id

        # The registry now serves another image under the same tag.
        push_variant(daemon.registry, repository, "1", variant="v2")
        (check_forced,) = run(daemon, {"name": reference, "force_source": True, "_check": True})
        ok(check_forced, True, ["pull"])
        assert image_id(daemon, reference) == first_id  # check mode pulled nothing
        forced_new, settled = run(
            daemon,
            {"name": reference, "force_source": True},
            {"name": reference},
        )
        ok(forced_new, True, ["pull"])
        second_id = image_id(daemon, reference)
        assert second_id not in (None, first_id)
        assert (
            forced_new["diff"]["before"]["id"] == first_id and forced_new["diff"]["after"]["id"] == second_id
        )
        ok(settled, False, [])
    finally:
        remove_images(daemon, reference)


def test_failed_pull_keeps_the_old_image(daemon: Daemon) -> None:
    repository = uniq("i4/keep")
    reference = push_variant(daemon.registry, repository, "1")
    try:
        ok(run(daemon, {"name": reference})[0], True)
        before = image_id(daemon, reference)
        delete_from_registry(reference)
        (result,) = run(daemon, {"name": reference, "force_source": True})
        failed(result, f"pulling {reference}")
        assert "not found" in result["msg"] or "unknown" in result["msg"], result["msg"]
        assert image_id(daemon, reference) == before
    finally:
        remove_images(daemon, reference)


def test_registry_tls_failures_name_the_cause_and_the_fix(
    pouch_daemon: Daemon, registry: dict[str, tuple[str, dict[str, str]]], tmp_path: Path
) -> None:
    """A registry whose CA pouchd does not trust, and one that speaks plain HTTP to a pouchd without
    it in insecure-registries (every test pouchd: the release has no such setting): each pull fails,
    saying why and what to do; nothing is pulled."""
    untrusted_ca = LabCa(tmp_path / "ca", name="pouch-ansible untrusted test CA").ensure()
    untrusted = Registry(
        tmp_path / "registry",
        tls=untrusted_ca.server_cert("untrusted", ["127.0.0.1"]),
        ca_file=untrusted_ca.cert,
    )
    untrusted.start()
    try:
        reference = f"{untrusted.address}/library/busybox:latest"
        (result,) = run(pouch_daemon, {"name": reference})
        failed(result, f"pulling {reference}")
        assert "the daemon does not trust the registry's TLS certificate" in result["msg"], result["msg"]
        assert "pouchd_registry_ca_certs" in result["msg"], result["msg"]
        assert image_id(pouch_daemon, reference) is None
    finally:
        untrusted.stop()
    plain_reference = registry["plain"][1]["latest"]
    (result,) = run(pouch_daemon, {"name": plain_reference})
    failed(result, f"pulling {plain_reference}")
    assert "the registry speaks plain HTTP and the daemon pulls over HTTPS" in result["msg"], result["msg"]
    assert image_id(pouch_daemon, plain_reference) is None


def test_tag_with_repository(daemon: Daemon) -> None:
    source = daemon.images["latest"]
    target = uniq("i4tag/app")
    try:
        assert not run(daemon, {"name": source})[0].get("failed")
        (predicted,) = run(
            daemon, {"name": source, "source": "local", "repository": f"{target}:t1", "_check": True}
        )
        ok(predicted, True, ["tag"])
        assert image_id(daemon, f"{target}:t1") is None
        tagged, again, other_tag = run(
            daemon,
            {"name": source, "source": "local", "repository": f"{target}:t1"},
            {"name": source, "source": "local", "repository": f"{target}:t1"},
            {"name": source, "source": "local", "repository": target},
        )
        ok(tagged, True, ["tag"])
        assert tagged["tagged"] == f"{target}:t1"
        assert image_id(daemon, f"{target}:t1") == image_id(daemon, source)
        ok(again, False, [])
        # Without a tag, the tag of name (latest) is used.
        ok(other_tag, True, ["tag"])
        assert image_id(daemon, f"{target}:latest") == image_id(daemon, source)
    finally:
        remove_images(daemon, f"{target}:t1", f"{target}:latest")


def test_retag_moves_a_tag_to_another_image(daemon: Daemon) -> None:
    target = uniq("i4move/app") + ":1"
    latest, v2 = daemon.images["latest"], daemon.images["v2"]
    try:
        first, moved, again = run(
            daemon,
            {"name": latest, "repository": target},
            {"name": v2, "repository": target},
            {"name": v2, "repository": target},
        )
        ok(first, True)
        ok(moved, True)
        assert "tag" in moved["actions"]
        assert image_id(daemon, target) == image_id(daemon, v2) != image_id(daemon, latest)
        ok(again, False, [])
    finally:
        remove_images(daemon, target)


def test_absent_check_real_idempotent(daemon: Daemon) -> None:
    source = daemon.images["latest"]
    target = uniq("i4rm/app") + ":1"
    ok(run(daemon, {"name": source, "repository": target})[0], True)
    (predicted,) = run(daemon, {"name": target, "state": "absent", "_check": True})
    ok(predicted, True, ["remove"])
    assert predicted["diff"]["after"] == {} and predicted["diff"]["before"]["id"] == image_id(daemon, source)
    assert image_id(daemon, target) is not None
    removed, again = run(daemon, {"name": target, "state": "absent"}, {"name": target, "state": "absent"})
    ok(removed, True, ["remove"])
    assert image_id(daemon, target) is None
    assert image_id(daemon, source) is not None  # only the reference went
    ok(again, False, [])


def test_absent_refuses_an_image_in_use_unless_forced(daemon: Daemon) -> None:
    repository = uniq("i4use/app")
    reference = push_unique(daemon.registry, repository, "1")
    container = uniq("i4use")
    try:
        ok(run(daemon, {"name": reference})[0], True)
        image = image_id(daemon, reference)
        daemon.sdk.create_container(reference, command=["sleep", "60"], name=container)
        (refused,) = run(daemon, {"name": reference, "state": "absent"})
        failed(refused, f"image {reference} is used by container(s) {container}", "force_absent=true")
        assert image_id(daemon, reference) == image
        forced, again = run(
            daemon,
            {"name": reference, "state": "absent", "force_absent": True},
            {"name": reference, "state": "absent"},
        )
        ok(forced, True, ["remove"])
        assert image_id(daemon, reference) is None
        ok(again, False, [])
    finally:
        daemon.remove(container)
        remove_images(daemon, reference)


def test_load_docker_archive(daemon: Daemon, tmp_path: Path) -> None:
    name = uniq("i4load/app") + ":1"
    archive = docker_archive(tmp_path / "app.tar", name)
    try:
        expected_actions = ["load", "tag"] if daemon.kind == "pouch" else ["load"]
        (predicted,) = run(
            daemon, {"name": name, "source": "load", "load_path": str(archive), "_check": True}
        )
        ok(predicted, True, expected_actions)
        assert image_id(daemon, name) is None
        loaded, again, forced = run(
            daemon,
            {"name": name, "source": "load", "load_path": str(archive)},
            {"name": name, "source": "load", "load_path": str(archive)},
            {"name": name, "source": "load", "load_path": str(archive), "force_source": True},
        )
        ok(loaded, True, expected_actions)
        assert loaded["load"]["format"] == "docker-archive"
        assert image_id(daemon, name) == loaded["image"]["Id"] == predicted["load"]["image_id"]
        if daemon.kind == "pouch":
            # pouchd keeps a docker-archive's tags normalized and only under ?name=: the module asks for
            # the normalized repository and tags the image as written.
            assert loaded["load"]["name_parameter"] == "docker.io/" + name.split(":")[0]
            assert image_id(daemon, "docker.io/" + name) == loaded["image"]["Id"]
        ok(again, False, [])
        ok(forced, False, ["load"])  # loaded again; name already on that image, so no tag
    finally:
        remove_images(daemon, name, "docker.io/" + name)


def test_load_oci_archive(daemon: Daemon, tmp_path: Path) -> None:
    repository = uniq("i4oci/app")
    archive = oci_archive(tmp_path / "oci.tar", "7", variant="v2")
    tasks = [{"name": f"{repository}:7", "source": "load", "load_path": str(archive)}]
    if daemon.kind == "docker":
        before = image_snapshot(daemon)
        (result,) = run(daemon, *tasks)
        failed(result, "is an OCI archive whose image is tagged only '7'", "dockerd cannot name it")
        assert image_snapshot(daemon) == before
        return
    try:
        loaded, again = run(daemon, tasks[0], tasks[0])
        ok(loaded, True, ["load"])
        assert loaded["load"] == {
            "archive": str(archive),
            "format": "oci-archive",
            "name_parameter": repository,
            "stored_as": f"{repository}:7",
            "image_id": loaded["image"]["Id"],
        }
        assert image_id(daemon, f"{repository}:7") == loaded["image"]["Id"]
        ok(again, False, [])
    finally:
        remove_images(daemon, f"{repository}:7")


def test_bad_inputs_fail_clearly_and_change_nothing(daemon: Daemon, tmp_path: Path) -> None:
    existing = daemon.images["latest"]
    run(daemon, {"name": existing})
    garbage = tmp_path / "garbage.tar"
    garbage.write_bytes(b"this is not a tar archive\n" * 100)
    wrong_name = docker_archive(tmp_path / "other.tar", "i4bad/other:1")
    missing_repo = f"{daemon.registry}/i4/{uniq('nosuch')}:1"
    cases: list[tuple[dict[str, Any], tuple[str, ...]]] = [
        ({"name": ""}, ("name must not be empty",)),
        ({"name": "Bad Name"}, ("'Bad Name' is not a valid image reference",)),
        ({"name": "UPPER/case:1"}, ("'UPPER/case:1' is not a valid image reference",)),
        ({"name": "i4bad/app:1", "tag": "2"}, ("already carries tag '1', which differs from tag '2'",)),
        ({"name": "i4bad/app", "tag": "bad tag!"}, ("tag 'bad tag!' is not a valid tag",)),
        ({"name": "i4bad/app:1", "source": "load"}, ("source=load needs load_path",)),
        (
            {"name": "i4bad/app:1", "source": "load", "load_path": str(tmp_path / "nope.tar")},
            ("does not exist",),
        ),
        (
            {"name": "i4bad/app:1", "source": "load", "load_path": str(garbage)},
            ("is not a readable image archive",),
        ),
        (
            {"name": "i4bad/app:1", "source": "load", "load_path": str(wrong_name)},
            ("holds no image named i4bad/app:1", "docker.io/i4bad/other:1"),
        ),
        (
            {"name": "i4bad/app@sha256:" + "a" * 64, "source": "load", "load_path": str(wrong_name)},
            ("has a digest: loaded images are named by tag",),
        ),
        ({"name": "sha256:" + "b" * 64}, ("is an image ID: IDs cannot be pulled or loaded",)),
        (
            {"name": existing, "repository": "Bad/Repo"},
            ("repository 'Bad/Repo' is not a valid image reference",),
        ),
        (
            {"name": f"i4bad/{uniq('absent')}:1", "source": "local"},
            ("is not on the daemon and source is 'local'",),
        ),
        ({"name": missing_repo}, (f"pulling {missing_repo}", "not found")),
        (
            {"name": existing, "registry_auth": {"username": "i4-user"}},
            ("missing required arguments: password",),
        ),
        ({"name": existing, "state": "gone"}, ("value of state must be one of: present, absent",)),
        ({"name": existing, "force_source": "maybe"}, ("force_source",)),
        ({"name": existing, "pouch_host": closed_unix_socket(tmp_path)}, ("cannot talk to the daemon",)),
    ]
    before = image_snapshot(daemon)
    results = run(daemon, *[args for args, _ in cases])
    for (args, fragments), result in zip(cases, results, strict=True):
        failed(result, *fragments)
        assert result.get("actions", []) == [], (args, result)
    assert image_snapshot(daemon) == before


def _fake_image() -> dict[str, Any]:
    return {"Id": "sha256:" + "c" * 64, "RepoTags": ["127.0.0.1:9/i4/fake:1"]}


def test_mid_stream_pull_error_fails_with_the_registry_message() -> None:
    progress = [
        {"id": "127.0.0.1:9/i4/fake:1", "status": "resolved", "progressDetail": {"current": 0, "total": 0}},
        {
            "id": "layer-sha256:" + "d" * 64,
            "status": "downloading",
            "progressDetail": {"current": 5, "total": 9},
        },
        {
            "errorDetail": {"code": 500, "message": "unexpected EOF while reading layer sha256:dddd"},
            "error": "unexpected EOF while reading layer sha256:dddd",
        },
    ]
    body = "".join(json.dumps(item) for item in progress).encode()  # no separators, as pouchd sends them
    with FakeDaemon(body, image=_fake_image()) as fake:
        (result,) = run(
            None, {"name": "127.0.0.1:9/i4/fake:1", "force_source": True, "pouch_host": fake.host}
        )
    failed(result, "pulling 127.0.0.1:9/i4/fake:1 failed: unexpected EOF while reading layer sha256:dddd")
    assert result["actions"] == []  # a failed pull did nothing


def test_registry_auth_is_sent_and_never_logged() -> None:
    secret = "s3cr3t-" + uniq("pw")
    body = json.dumps({"id": "x", "status": "done"}).encode()
    with FakeDaemon(body, image=_fake_image()) as fake:
        (result,) = run(
            None,
            {
                "name": "127.0.0.1:9/i4/fake:1",
                "force_source": True,
                "pouch_host": fake.host,
                "registry_auth": {"username": "deploy", "password": secret, "server_address": "127.0.0.1:9"},
            },
        )
        pulls = [headers for method, path, headers in fake.requests if "/images/create" in path]
    ok(result, False, ["pull"])
    assert len(pulls) == 1
    header = pulls[0].get("X-Registry-Auth") or pulls[0].get("x-registry-auth")
    auth = json.loads(base64.urlsafe_b64decode(header))
    assert auth == {"username": "deploy", "password": secret, "serveraddress": "127.0.0.1:9"}
    assert secret not in json.dumps({k: v for k, v in result.items() if k != "_stdout"})
    assert secret not in result["_stdout"]
