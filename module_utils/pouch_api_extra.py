"""Engine API calls for images, networks and volumes that pouch_client.PouchClient does not have yet.

Plain functions taking a PouchClient, so they can move into the client as methods unchanged
(issue #4; the lead moves them). JSON calls go through the client's generic request/get_json/
post_json; only the archive upload for POST /images/load streams a file, which request() cannot.
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import Any
from urllib.parse import quote, urlencode

from ansible.module_utils.pouch_client import (
    PouchClient,
    PouchConnectionError,
    PouchError,
    parse_json_stream,
    stream_error,
)

# -- images ------------------------------------------------------------------------------------


def list_images(client: PouchClient, reference_filter: str | None = None) -> list[dict[str, Any]]:
    """GET /images/json; the reference filter uses the object form both daemons accept."""
    query = {"filters": json.dumps({"reference": {reference_filter: True}})} if reference_filter else None
    return client.get_json("/images/json", query=query) or []


def remove_image(client: PouchClient, reference: str, force: bool = False) -> None:
    """DELETE /images/{reference}; a missing image is not an error."""
    client.request(
        "DELETE", f"/images/{reference}", query={"force": "true" if force else None}, ok_statuses=(404,)
    )


def tag_image(client: PouchClient, source: str, repository: str, tag: str) -> None:
    """POST /images/{source}/tag?repo=&tag= (201 on both daemons)."""
    client.request("POST", f"/images/{source}/tag", query={"repo": repository, "tag": tag})


def load_image(client: PouchClient, archive_path: str, name: str | None = None) -> list[dict[str, Any]]:
    """POST /images/load with the archive as the body, streamed from disk.

    pouchd reads `name` (a repository without tag: only the archive's references under it are
    imported) and answers 200 with an empty body; dockerd ignores it and answers a JSON stream
    that can end with an errorDetail after the 200. Both failures raise PouchError.
    The client's request() only sends JSON bodies, so this uses its connection directly.
    """
    path = "/images/load"
    query: dict[str, Any] = {"quiet": "1"}
    if name:
        query["name"] = name
    url = client._prefix + quote(path, safe="/") + "?" + urlencode(query)
    timeout = max(client.settings.timeout, 300)
    try:
        size = os.path.getsize(archive_path)
        handle = open(archive_path, "rb")  # noqa: SIM115 - closed in finally
    except OSError as exc:
        raise PouchError(f"cannot read the archive {archive_path}: {exc.strerror or exc}") from exc
    head = (
        f"POST {url} HTTP/1.1\r\nHost: pouch\r\nContent-Type: application/x-tar\r\n"
        f"Content-Length: {size}\r\nConnection: close\r\n\r\n"
    ).encode()
    connection = None
    try:
        connection = client._connect(timeout)
        connection.sock.sendall(head)
        while chunk := handle.read(1 << 20):
            connection.sock.sendall(chunk)
        status, data = connection.exchange(b"", "POST")
    except PouchError:
        raise
    except OSError as exc:
        reason = (
            f"timed out after {timeout}s" if isinstance(exc, TimeoutError) else str(exc) or type(exc).__name__
        )
        raise PouchConnectionError(
            f"POST {path}: cannot talk to the daemon at {client.settings.host}: {reason}",
            method="POST",
            path=path,
        ) from exc
    finally:
        handle.close()
        if connection is not None:
            connection.close()
    text = data.decode(errors="replace")
    if status >= 400:
        message = text.strip()
        with contextlib.suppress(ValueError, AttributeError):
            message = json.loads(message).get("message") or message
        raise PouchError(
            f"POST {path} failed with HTTP {status}: {message}", status=status, method="POST", path=path
        )
    events = parse_json_stream(text) if text.strip() else []
    error = stream_error(events)
    if error:
        raise PouchError(f"loading {archive_path} failed: {error}", status=status, method="POST", path=path)
    return events


# -- networks ----------------------------------------------------------------------------------


def inspect_network(client: PouchClient, name: str) -> dict[str, Any] | None:
    return client.get_json(f"/networks/{name}", ok_statuses=(404,))


def list_networks(client: PouchClient) -> list[dict[str, Any]]:
    return client.get_json("/networks") or []


def create_network(client: PouchClient, body: dict[str, Any]) -> dict[str, Any]:
    return client.post_json("/networks/create", body=body) or {}


def remove_network(client: PouchClient, name: str) -> None:
    """DELETE /networks/{name}: by name, because pouchd answers 404 to a delete by network ID."""
    client.request("DELETE", f"/networks/{name}")


def connect_network(
    client: PouchClient, network: str, container: str, endpoint_config: dict[str, Any] | None = None
) -> None:
    body: dict[str, Any] = {"Container": container}
    if endpoint_config:
        body["EndpointConfig"] = endpoint_config
    client.request("POST", f"/networks/{network}/connect", body=body)


def disconnect_network(client: PouchClient, network: str, container: str, force: bool = False) -> None:
    client.request("POST", f"/networks/{network}/disconnect", body={"Container": container, "Force": force})


# -- volumes -----------------------------------------------------------------------------------


def inspect_volume(client: PouchClient, name: str) -> dict[str, Any] | None:
    return client.get_json(f"/volumes/{name}", ok_statuses=(404,))


def list_volumes(client: PouchClient) -> list[dict[str, Any]]:
    answer = client.get_json("/volumes") or {}
    return answer.get("Volumes") or []


def create_volume(client: PouchClient, body: dict[str, Any]) -> dict[str, Any]:
    return client.post_json("/volumes/create", body=body) or {}


def remove_volume(client: PouchClient, name: str) -> None:
    client.request("DELETE", f"/volumes/{name}", ok_statuses=(404,))


# -- containers (read only) --------------------------------------------------------------------


def container_networks(item: dict[str, Any]) -> dict[str, Any]:
    """NetworkSettings.Networks of a container list item or inspect (both daemons fill it in lists)."""
    return ((item.get("NetworkSettings") or {}).get("Networks")) or {}


def container_name(item: dict[str, Any]) -> str:
    """A container's name from a list item or an inspect, without Moby's leading '/'."""
    names = item.get("Names") or [item.get("Name") or item.get("Id", "")[:12]]
    return str(names[0]).lstrip("/")
