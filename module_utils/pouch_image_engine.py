"""pouch_image's engine: make an image present (pull, load, local) or absent, and tag it.

Everything that can be known before touching the daemon (reference syntax, the archive's contents)
is checked first, so a bad input fails without changing anything, and check mode predicts the
real run (for loads exactly: the archive names the image ID it will produce).
"""

from __future__ import annotations

import json
import os
import re
import tarfile
from dataclasses import dataclass, field
from typing import Any

from ansible.module_utils.pouch_client import PouchError, container_name
from ansible.module_utils.pouch_common import (
    REGISTRY_AUTH_SPEC,
    ResourceInputError,
    ResourceManager,
    is_image_id,
    normalize_image_reference,
    registry_auth,
    run_manager,
    split_image_reference,
)

# docker/distribution reference grammar (reference/regexp.go), anchored.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*"
_LABEL = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"{_LABEL}(?:\.{_LABEL})*(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9A-Fa-f]{32,}"
REFERENCE_RE = re.compile(rf"^(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*(?::{_TAG})?(?:@{_DIGEST})?$")
TAG_RE = re.compile(rf"^{_TAG}$")


def argument_spec() -> dict[str, Any]:
    return {
        "name": {"type": "str", "required": True},
        "tag": {"type": "str"},
        "state": {"type": "str", "default": "present", "choices": ["present", "absent"]},
        "source": {"type": "str", "default": "pull", "choices": ["pull", "load", "local"]},
        "load_path": {"type": "path"},
        "force_source": {"type": "bool", "default": False},
        "force_absent": {"type": "bool", "default": False},
        "repository": {"type": "str"},
        "registry_auth": REGISTRY_AUTH_SPEC,
    }


ImageInputError = ResourceInputError


def check_reference(reference: str, what: str = "name") -> None:
    if not reference or not reference.strip():
        raise ImageInputError(f"{what} must not be empty")
    first, slash, _ = reference.partition("/")
    has_domain = slash and ("." in first or ":" in first or first == "localhost")
    if not REFERENCE_RE.match(reference) or (slash and not has_domain and first != first.lower()):
        raise ImageInputError(
            f"{what} {reference!r} is not a valid image reference: expected "
            "[REGISTRY[:PORT]/]PATH[:TAG][@DIGEST] with a lowercase path "
            "(letters, digits and . _ - separators)"
        )


def docker_normalized(reference: str) -> str:
    """What Moby's ParseDockerRef makes of a name: docker.io/library/ added, ':latest' when untagged."""
    repository, tag, digest = split_image_reference(reference)
    first, _, rest = repository.partition("/")
    if not rest:
        repository = f"docker.io/library/{repository}"
    elif not ("." in first or ":" in first or first == "localhost"):
        repository = f"docker.io/{repository}"
    elif first in ("docker.io", "index.docker.io") and "/" not in rest:
        repository = f"docker.io/library/{rest}"
    if digest:
        return f"{repository}@{digest}"
    return f"{repository}:{tag or 'latest'}"


@dataclass
class Archive:
    """What an image archive on the node holds, read without the daemon."""

    path: str
    kind: str  # "docker-archive" or "oci-archive"
    # reference (as the daemon will name it before any prefixing) -> image ID (config digest)
    references: dict[str, str] = field(default_factory=dict)
    untagged_ids: list[str] = field(default_factory=list)


def _tar_json(archive: tarfile.TarFile, member_name: str) -> Any:
    handle = archive.extractfile(member_name)
    if handle is None:
        raise ImageInputError(f"{member_name} in the archive is not a regular file")
    return json.loads(handle.read())


def read_archive(path: str) -> Archive:
    """Index a docker-archive (manifest.json) or an OCI image layout tar (index.json)."""
    if not os.path.exists(path):
        raise ImageInputError(f"load_path {path} does not exist on the managed node")
    if not os.path.isfile(path):
        raise ImageInputError(f"load_path {path} is not a file")
    try:
        with tarfile.open(path, "r:*") as archive:
            names = {member.name.removeprefix("./"): member.name for member in archive.getmembers()}
            if "manifest.json" in names:
                result = Archive(path, "docker-archive")
                for entry in _tar_json(archive, names["manifest.json"]):
                    image_id = "sha256:" + os.path.basename(entry["Config"]).removesuffix(".json")
                    tags = entry.get("RepoTags") or []
                    for tag in tags:
                        result.references[docker_normalized(tag)] = image_id
                    if not tags:
                        result.untagged_ids.append(image_id)
                return result
            if "index.json" in names and "oci-layout" in names:
                result = Archive(path, "oci-archive")
                for manifest in _tar_json(archive, names["index.json"]).get("manifests") or []:
                    blob = "blobs/" + manifest["digest"].replace(":", "/", 1)
                    if blob not in names:
                        raise ImageInputError(f"{path}: index.json names {blob}, which the archive lacks")
                    config = _tar_json(archive, names[blob]).get("config") or {}
                    ref_name = (manifest.get("annotations") or {}).get("org.opencontainers.image.ref.name")
                    if ref_name:
                        result.references[ref_name] = config.get("digest", "")
                    else:
                        result.untagged_ids.append(config.get("digest", ""))
                return result
    except (tarfile.TarError, OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ImageInputError(f"load_path {path} is not a readable image archive: {exc}") from exc
    raise ImageInputError(
        f"load_path {path} is neither a docker-archive (no manifest.json) nor an OCI image layout "
        "(no index.json and oci-layout)"
    )


@dataclass
class LoadPlan:
    name_param: str | None  # POST /images/load?name=
    loaded_as: str  # reference the daemon will store the wanted image under
    image_id: str
    retag: bool  # tag loaded_as as the user's reference afterwards (pouchd, docker-archive)


def plan_load(archive: Archive, reference: str, on_pouch: bool) -> LoadPlan:
    """Where the wanted image ends up, following each daemon's naming rules for archives.

    dockerd loads every image of the archive under its own (normalized) tags and finds them by any
    spelling. pouchd keeps only references starting with ?name= (a repository without tag), turns an
    OCI archive's bare tags into NAME:TAG, keeps a docker-archive's tags normalized
    (docker.io/library/...), and finds an image only under the exact name it stored.
    """
    repository, tag, _ = split_image_reference(reference)
    tag = tag or "latest"
    available = sorted(archive.references) or ["(no tagged images)"]
    if archive.kind == "oci-archive":
        full = {ref: image_id for ref, image_id in archive.references.items() if any(c in ref for c in "/:@")}
        bare = {ref: image_id for ref, image_id in archive.references.items() if ref not in full}
        if reference in full:
            return LoadPlan(repository if on_pouch else None, reference, full[reference], False)
        if tag in bare:
            if not on_pouch:
                raise ImageInputError(
                    f"{archive.path} is an OCI archive whose image is tagged only {tag!r}: dockerd "
                    f"cannot name it {reference}; use a docker-archive "
                    "(or pouchd, which names it REPOSITORY:TAG)"
                )
            return LoadPlan(repository, reference, bare[tag], False)
        raise ImageInputError(
            f"{archive.path} holds no image for {reference}: its OCI references are {', '.join(available)}"
        )
    wanted = docker_normalized(reference)
    if wanted not in archive.references:
        raise ImageInputError(
            f"{archive.path} holds no image named {reference}: it holds {', '.join(available)}"
        )
    if not on_pouch:
        return LoadPlan(None, reference, archive.references[wanted], False)
    wanted_repository = split_image_reference(wanted)[0]
    return LoadPlan(wanted_repository, wanted, archive.references[wanted], wanted != reference)


def image_summary(image: dict[str, Any] | None) -> dict[str, Any]:
    if not image:
        return {}
    return {"id": image.get("Id"), "tags": sorted(image.get("RepoTags") or [])}


def summarize_progress(events: list[dict[str, Any]]) -> dict[str, Any]:
    """Pull progress of either daemon: layer IDs seen and the last status line."""
    layers: list[str] = []
    for event in events:
        ident = str(event.get("id") or "")
        status = str(event.get("status") or "")
        is_layer = ident.startswith("layer-") or status in ("Pull complete", "Already exists")
        if is_layer and ident not in layers:
            layers.append(ident)
    last = next((str(e.get("status")) for e in reversed(events) if e.get("status")), "")
    return {"events": len(events), "layers": layers, "status": last}


class ImageManager(ResourceManager):
    kind = "image"

    # -- inputs --------------------------------------------------------------------------
    def reference(self) -> str:
        name = (self.params["name"] or "").strip()
        tag = self.params.get("tag")
        if not name:
            raise ImageInputError("name must not be empty")
        if is_image_id(name):
            if tag:
                raise ImageInputError("tag cannot be combined with an image ID in name")
            if self.params["state"] == "present" and self.params["source"] != "local":
                raise ImageInputError(
                    f"name {name} is an image ID: IDs cannot be pulled or loaded; "
                    "use source=local or a reference"
                )
            return name
        check_reference(name)
        repository, own_tag, digest = split_image_reference(name)
        if tag is not None:
            if not TAG_RE.match(tag):
                raise ImageInputError(
                    f"tag {tag!r} is not a valid tag: up to 128 letters, digits, '_', '.' and '-'"
                )
            if digest:
                raise ImageInputError(f"tag {tag!r} cannot be combined with a digest in name {name}")
            if own_tag and own_tag != tag:
                raise ImageInputError(
                    f"name {name} already carries tag {own_tag!r}, which differs from tag {tag!r}"
                )
            name = f"{repository}:{tag}"
        if digest and self.params["source"] == "load":
            raise ImageInputError(f"name {name} has a digest: loaded images are named by tag, not digest")
        return normalize_image_reference(name)

    def target(self, reference: str) -> tuple[str, str] | None:
        """(repository, tag) of the extra tag asked for with `repository`."""
        wanted = self.params.get("repository")
        if wanted is None:
            return None
        check_reference(wanted, "repository")
        repository, tag, digest = split_image_reference(wanted)
        if digest:
            raise ImageInputError(f"repository {wanted} has a digest: a tag target needs REPOSITORY[:TAG]")
        if tag is None:
            tag = "latest" if is_image_id(reference) else (split_image_reference(reference)[1] or "latest")
        return repository, tag

    def auth(self) -> dict[str, Any] | None:
        return registry_auth(self.params)

    # -- run -----------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        reference = self.reference()
        target = self.target(reference) if self.params["state"] == "present" else None
        archive = None
        if self.params["state"] == "present" and self.params["source"] == "load":
            if not self.params.get("load_path"):
                raise ImageInputError("source=load needs load_path (an image archive on the managed node)")
            archive = read_archive(self.params["load_path"])
        before = self.client.inspect_image(reference)
        self.result["diff"] = {"before": image_summary(before), "after": image_summary(before)}
        if self.params["state"] == "absent":
            return self.absent(reference, before)
        image = self.present(reference, before, archive)
        if target is not None:
            image = self.ensure_tag(reference, image, target)
        self.result["image"] = image
        self.result["diff"]["after"] = (
            image_summary(image) if image else {"id": "(new image)", "tags": [reference]}
        )
        return self.result

    def absent(self, reference: str, before: dict[str, Any] | None) -> dict[str, Any]:
        self.result["image"] = {}
        if before is None:
            return self.result
        tags = before.get("RepoTags") or []
        last_reference = is_image_id(reference) or len(tags) <= 1
        if last_reference and not self.params["force_absent"]:
            self.refuse_if_used(
                f"image {reference}",
                self.containers_using(before["Id"]),
                "remove it",
                "set force_absent=true to remove it anyway",
            )
        if not self.check_mode:
            self.client.remove_image(reference, force=self.params["force_absent"] or is_image_id(reference))
        self.actions.append("remove")
        self.result["changed"] = True
        self.result["diff"]["after"] = {}
        return self.result

    def containers_using(self, image_id: str) -> list[str]:
        users = []
        for item in self.client.list_containers(all_containers=True):
            if item.get("ImageID") == image_id:
                users.append(container_name(item))
        return users

    def present(
        self, reference: str, before: dict[str, Any] | None, archive: Archive | None
    ) -> dict[str, Any] | None:
        source = self.params["source"]
        if source == "local":
            if before is None:
                raise PouchError(f"image {reference} is not on the daemon and source is 'local'")
            return before
        if before is not None and not self.params["force_source"]:
            return before
        if source == "pull":
            return self.pull(reference, before)
        assert archive is not None
        return self.load(reference, before, archive)

    def pull(self, reference: str, before: dict[str, Any] | None) -> dict[str, Any] | None:
        if self.check_mode:
            # Only a pull tells whether the registry has a newer image: a forced pull may change.
            self.actions.append("pull")
            self.result["changed"] = True
            return before
        events = self.client.pull_image(reference, self.auth())
        self.actions.append("pull")  # recorded once done: a failed pull did nothing
        self.result["progress"] = summarize_progress(events)
        after = self.client.inspect_image(reference)
        if after is None:
            raise PouchError(f"image {reference} was pulled but the daemon cannot find it under that name")
        self.result["changed"] = before is None or before.get("Id") != after.get("Id")
        return after

    def load(self, reference: str, before: dict[str, Any] | None, archive: Archive) -> dict[str, Any] | None:
        plan = plan_load(archive, reference, self.client.is_pouch)
        self.result["load"] = {
            "archive": archive.path,
            "format": archive.kind,
            "name_parameter": plan.name_param,
            "stored_as": plan.loaded_as,
            "image_id": plan.image_id,
        }
        # The user's spelling needs a tag unless it already names the archive's image.
        retag = plan.retag and (before is None or before.get("Id") != plan.image_id)
        if self.check_mode:
            self.actions.extend(["load", "tag"] if retag else ["load"])
            self.result["changed"] = before is None or before.get("Id") != plan.image_id
            return before
        self.client.load_image(archive.path, plan.name_param)
        self.actions.append("load")
        if retag:
            if before is not None:
                self.client.remove_image(reference)  # pouchd does not move a tag
            repository, tag, _ = split_image_reference(reference)
            self.client.tag_image(plan.loaded_as, repository, tag or "latest")
            self.actions.append("tag")
        after = self.client.inspect_image(reference)
        if after is None:
            raise PouchError(
                f"the archive {archive.path} was loaded but the daemon has no image {reference}; "
                f"images now known under that repository: {self.similar(reference)}"
            )
        self.result["changed"] = before is None or before.get("Id") != after.get("Id")
        return after

    def similar(self, reference: str) -> str:
        repository = split_image_reference(reference)[0]
        found = [
            tag
            for image in self.client.list_images()
            for tag in image.get("RepoTags") or []
            if repository in tag
        ]
        return ", ".join(sorted(found)) or "none"

    def ensure_tag(
        self, reference: str, image: dict[str, Any] | None, target: tuple[str, str]
    ) -> dict[str, Any] | None:
        repository, tag = target
        target_reference = f"{repository}:{tag}"
        existing = self.client.inspect_image(target_reference)
        self.result["tagged"] = target_reference
        if image is not None and existing is not None and existing.get("Id") == image.get("Id"):
            return image
        if self.check_mode:
            self.actions.append("tag")
            self.result["changed"] = True
            return image
        if existing is not None and self.client.is_pouch:
            # pouchd refuses to move a tag ("has been used as reference"): drop the old reference first.
            self.client.remove_image(target_reference)
        self.client.tag_image(reference, repository, tag)
        self.actions.append("tag")
        self.result["changed"] = True
        tagged = self.client.inspect_image(target_reference)
        if tagged is None or (image is not None and tagged.get("Id") != image.get("Id")):
            raise PouchError(f"tagging {reference} as {target_reference} did not take effect on the daemon")
        return self.client.inspect_image(reference) or image


def run_module() -> None:
    run_manager(ImageManager, argument_spec())
