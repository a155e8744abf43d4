"""A small HTTP client for the Pouch (and Moby-compatible) Engine API, standard library only.

It runs on the managed node, so it must not need the docker SDK or requests: HTTP/1.1 over a unix
socket, or over TCP with optional TLS. Every failure becomes a PouchError whose message names the
HTTP method, the path and the status, so module failures say what was attempted.

HTTP is spoken directly on the socket (Content-Length and chunked bodies, keep-alive) rather than
through http.client, and ssl is imported only for TLS: both imports cost more than a no-op task's
API calls, and a no-op task should cost little more than Ansible's own floor.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

if TYPE_CHECKING:
    import ssl

DEFAULT_HOST = "unix:///var/run/pouchd.sock"
DEFAULT_API_VERSION = "1.24"
DEFAULT_TIMEOUT = 60


class PouchError(Exception):
    """Any failure talking to the daemon; `status` is the HTTP status when there was one."""

    def __init__(self, message: str, status: int | None = None, method: str = "", path: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.method = method
        self.path = path


class PouchConnectionError(PouchError):
    """The daemon could not be reached (socket missing, refused, TLS handshake failed, timeout)."""


class PouchPullError(PouchError):
    """An image pull failed, possibly mid-stream after an HTTP 200."""


@dataclass(frozen=True)
class ConnectionSettings:
    host: str = DEFAULT_HOST
    api_version: str = DEFAULT_API_VERSION
    timeout: float = DEFAULT_TIMEOUT
    tls: bool = False
    validate_certs: bool = False
    ca_path: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    tls_hostname: str | None = None


class _HTTPConnectionClosed(ConnectionError):
    """The peer closed a kept-alive connection before answering."""


class _Connection:
    """One socket speaking HTTP/1.1: a request, then its whole response."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""
        self.reusable = True

    def close(self) -> None:
        self.reusable = False
        with contextlib.suppress(OSError):
            self.sock.close()

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        if not chunk:
            return False
        self.buffer += chunk
        return True

    def _read_until(self, marker: bytes) -> bytes:
        while marker not in self.buffer:
            if not self._fill():
                raise _HTTPConnectionClosed("connection closed by the daemon")
        head, self.buffer = self.buffer.split(marker, 1)
        return head

    def _read_exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            if not self._fill():
                raise _HTTPConnectionClosed("connection closed in the middle of a response")
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def exchange(self, request: bytes, method: str, upload: IO[bytes] | None = None) -> tuple[int, bytes]:
        """Send the request (head and JSON body), then stream `upload` in 1 MiB chunks; read the answer."""
        self.sock.sendall(request)
        if upload is not None:
            while chunk := upload.read(1 << 20):
                self.sock.sendall(chunk)
        head = self._read_until(b"\r\n\r\n").decode("latin-1")
        status_line, _, header_block = head.partition("\r\n")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            raise _HTTPConnectionClosed(f"not an HTTP answer: {status_line[:80]!r}")
        status = int(parts[1])
        headers = {}
        for line in header_block.split("\r\n"):
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if parts[0] == "HTTP/1.0" or headers.get("connection", "").lower() == "close":
            self.reusable = False
        if status in (204, 304) or 100 <= status < 200 or method == "HEAD":
            return status, b""
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = []
            while True:
                size = int(self._read_until(b"\r\n").split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self._read_until(b"\r\n")  # end of (empty) trailers
                    return status, b"".join(body)
                body.append(self._read_exactly(size))
                self._read_exactly(2)
        if "content-length" in headers:
            return status, self._read_exactly(int(headers["content-length"]))
        self.reusable = False
        while self._fill():
            pass
        data, self.buffer = self.buffer, b""
        return status, data


def parse_json_stream(text: str) -> list[dict[str, Any]]:
    """Split pouchd's progress stream: JSON objects back to back, with or without whitespace between."""
    decoder = json.JSONDecoder()
    objects: list[dict[str, Any]] = []
    index = 0
    length = len(text)
    while True:
        while index < length and text[index] in " \t\r\n":
            index += 1
        if index >= length:
            return objects
        try:
            value, index = decoder.raw_decode(text, index)
        except json.JSONDecodeError as exc:
            raise PouchPullError(
                f"malformed JSON in the progress stream at offset {index}: {exc.msg}"
            ) from exc
        if isinstance(value, dict):
            objects.append(value)


def stream_error(objects: list[dict[str, Any]]) -> str | None:
    """The error message a progress stream ends with, if any (Moby and pouchd use errorDetail/error)."""
    for item in objects:
        detail = item.get("errorDetail")
        if detail or item.get("error"):
            message = (detail or {}).get("message") if isinstance(detail, dict) else None
            return str(message or item.get("error") or detail)
    return None


def encode_registry_auth(auth: dict[str, Any]) -> str:
    """X-Registry-Auth value: URL-safe base64 of the AuthConfig JSON (as pouchd and Moby decode it)."""
    return base64.urlsafe_b64encode(json.dumps(auth).encode()).decode()


def demultiplex_logs(raw: bytes) -> tuple[str, str]:
    """Split a non-TTY log stream (stdcopy frames: 1 byte stream, 3 padding, 4 size) into stdout/stderr."""
    stdout: list[bytes] = []
    stderr: list[bytes] = []
    index = 0
    framed = len(raw) >= 8 and raw[0] in (0, 1, 2) and raw[1:4] == b"\x00\x00\x00"
    if not framed:
        return raw.decode(errors="replace"), ""
    while index + 8 <= len(raw):
        stream = raw[index]
        size = int.from_bytes(raw[index + 4 : index + 8], "big")
        chunk = raw[index + 8 : index + 8 + size]
        (stderr if stream == 2 else stdout).append(chunk)
        index += 8 + size
    return b"".join(stdout).decode(errors="replace"), b"".join(stderr).decode(errors="replace")


def container_name(item: dict[str, Any]) -> str:
    """A container's name from a list item or an inspect, without Moby's leading '/'."""
    names = item.get("Names") or [item.get("Name") or item.get("Id", "")[:12]]
    return str(names[0]).lstrip("/")


def container_networks(item: dict[str, Any]) -> dict[str, Any]:
    """NetworkSettings.Networks of a container list item or inspect (both daemons fill it in lists)."""
    return ((item.get("NetworkSettings") or {}).get("Networks")) or {}


def _error_message(body: bytes) -> str:
    text = body.decode(errors="replace").strip()
    try:
        parsed = json.loads(text)
    except ValueError:
        return text or "(empty body)"
    if isinstance(parsed, dict) and parsed.get("message"):
        return str(parsed["message"])
    return text


# Registry TLS failures as the daemons word them (Go's crypto/x509 and net/http), with what fixes them.
_PULL_ERROR_HINTS = (
    (
        ("certificate signed by unknown authority", "failed to verify certificate"),
        "the daemon does not trust the registry's TLS certificate: install the CA that issued it in the "
        "node's trust store (roles/pouchd: pouchd_registry_ca_certs) and restart the daemon",
    ),
    (
        ("certificate is valid for", "certificate is not valid for"),
        "the registry's TLS certificate does not name the address pulled from: reissue it with that "
        "name or IP address, or pull through a name it holds",
    ),
    (
        ("server gave HTTP response to HTTPS client",),
        "the registry speaks plain HTTP and the daemon pulls over HTTPS: serve the registry over TLS "
        "(the pouch 1.3.0 release has no insecure-registries), or list it in the daemon's "
        "insecure-registries (roles/pouchd: pouchd_insecure_registries, master builds)",
    ),
    (
        ("proxyconnect tcp",),
        "the daemon sends plain-HTTP pulls through its image-proxy, which did not answer: start the "
        "proxy (Dragonfly: dfdaemon.service), or clear the daemon's image-proxy (pouchd_image_proxy)",
    ),
)


def pull_error_hint(message: str) -> str:
    """' (cause and fix)' when ``message`` is a registry TLS or proxy failure we recognise, else ''."""
    for needles, hint in _PULL_ERROR_HINTS:
        if any(needle in message for needle in needles):
            return f" ({hint})"
    return ""


class PouchClient:
    """One keep-alive connection to the daemon; paths are given without the /vX.Y prefix."""

    def __init__(self, settings: ConnectionSettings) -> None:
        self.settings = settings
        self._prefix = f"/v{settings.api_version.lstrip('v')}" if settings.api_version else ""
        self._connection: _Connection | None = None
        self._version: dict[str, Any] | None = None

    # -- transport -------------------------------------------------------------------------
    def _connect(self, timeout: float) -> _Connection:
        host = self.settings.host
        if host.startswith("unix://"):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            try:
                sock.connect(host[len("unix://") :])
            except OSError:
                sock.close()
                raise
            return _Connection(sock)
        for scheme in ("tcp://", "http://", "https://"):
            if host.startswith(scheme):
                address = host[len(scheme) :].rstrip("/")
                break
        else:
            raise PouchConnectionError(
                f"unsupported host {host!r}: use unix:///path/to/socket or tcp://HOST:PORT"
            )
        name, _, port = address.rpartition(":")
        if not name or not port.isdigit():
            raise PouchConnectionError(f"unsupported host {host!r}: tcp:// needs HOST:PORT")
        name = name.strip("[]")
        use_tls = self.settings.tls or self.settings.validate_certs or host.startswith("https://")
        context = self._ssl_context() if use_tls else None
        sock = socket.create_connection((name, int(port)), timeout=timeout)
        if context is not None:
            try:
                sock = context.wrap_socket(sock, server_hostname=self.settings.tls_hostname or name)
            except OSError:
                sock.close()
                raise
        return _Connection(sock)

    def _ssl_context(self) -> ssl.SSLContext:
        import ssl  # only TLS connections pay for it

        settings = self.settings
        try:
            if settings.validate_certs:
                context = ssl.create_default_context(cafile=settings.ca_path or None)
            else:
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            if settings.client_cert or settings.client_key:
                if not (settings.client_cert and settings.client_key):
                    raise PouchConnectionError("TLS: client_cert and client_key must be given together")
                context.load_cert_chain(settings.client_cert, settings.client_key)
        except OSError as exc:  # ssl.SSLError is an OSError
            raise PouchConnectionError(f"TLS configuration error: {exc}") from exc
        return context

    def request(
        self,
        method: str,
        path: str,
        query: dict[str, Any] | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
        ok_statuses: tuple[int, ...] = (),
        upload: IO[bytes] | None = None,
        content_type: str = "application/octet-stream",
    ) -> tuple[int, bytes]:
        """Send one request; return (status, raw body). Statuses >= 400 raise PouchError.

        `body` is sent as JSON. `upload`, a binary file opened for reading, is sent instead as the raw
        body (`content_type`), streamed from its current position to its end without being read into
        memory (the archive of POST /images/load).
        """
        if body is not None and upload is not None:
            raise ValueError("request(): give a JSON body or an upload, not both")
        url = self._prefix + quote(path, safe="/:@=&?")
        if query:
            url += "?" + urlencode({k: v for k, v in query.items() if v is not None})
        payload = b"" if body is None else json.dumps(body).encode()
        start = upload.tell() if upload is not None else 0
        length = os.fstat(upload.fileno()).st_size - start if upload is not None else len(payload)
        lines = [f"{method} {url} HTTP/1.1", "Host: pouch", f"Content-Length: {length}"]
        if body is not None:
            lines.append("Content-Type: application/json")
        elif upload is not None:
            lines.append(f"Content-Type: {content_type}")
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        raw = ("\r\n".join(lines) + "\r\n\r\n").encode() + payload
        status, data = self._send(method, raw, timeout or self.settings.timeout, path, upload, start)
        if status >= 400 and status not in ok_statuses:
            raise PouchError(
                f"{method} {path} failed with HTTP {status}: {_error_message(data)}",
                status=status,
                method=method,
                path=path,
            )
        return status, data

    def _send(
        self,
        method: str,
        raw: bytes,
        timeout: float,
        path: str,
        upload: IO[bytes] | None = None,
        start: int = 0,
    ) -> tuple[int, bytes]:
        # A kept-alive connection may have been closed by the daemon: retry once on a fresh one.
        for attempt in (1, 2):
            reused = self._connection is not None
            try:
                if self._connection is None:
                    self._connection = self._connect(timeout)
                connection = self._connection
                connection.sock.settimeout(timeout)
                if upload is not None:
                    upload.seek(start)
                status, data = connection.exchange(raw, method, upload)
                if not connection.reusable:
                    self.close()
                return status, data
            except PouchError:
                self.close()
                raise
            except (_HTTPConnectionClosed, BrokenPipeError, ConnectionResetError) as exc:
                self.close()
                if reused and attempt == 1:
                    continue
                raise self._connection_error(method, path, exc, timeout) from exc
            except OSError as exc:
                self.close()
                raise self._connection_error(method, path, exc, timeout) from exc
        raise AssertionError("unreachable")

    def _connection_error(
        self, method: str, path: str, exc: BaseException, timeout: float
    ) -> PouchConnectionError:
        if isinstance(exc, TimeoutError):
            reason = f"timed out after {timeout:g}s"
        elif type(exc).__module__ == "ssl":
            reason = f"TLS error: {exc}"
        else:
            reason = str(exc) or type(exc).__name__
        return PouchConnectionError(
            f"{method} {path}: cannot talk to the daemon at {self.settings.host}: {reason}",
            method=method,
            path=path,
        )

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def get_json(
        self, path: str, query: dict[str, Any] | None = None, ok_statuses: tuple[int, ...] = ()
    ) -> Any:
        status, data = self.request("GET", path, query=query, ok_statuses=ok_statuses)
        if status >= 400:
            return None
        return self._decode(data, "GET", path)

    def post_json(
        self, path: str, body: Any = None, query: dict[str, Any] | None = None, timeout: float | None = None
    ) -> Any:
        _, data = self.request("POST", path, query=query, body=body, timeout=timeout)
        return self._decode(data, "POST", path) if data.strip() else None

    @staticmethod
    def _decode(data: bytes, method: str, path: str) -> Any:
        try:
            return json.loads(data)
        except ValueError as exc:
            raise PouchError(f"{method} {path}: the daemon answered with malformed JSON: {exc}") from exc

    # -- system ----------------------------------------------------------------------------
    def version(self) -> dict[str, Any]:
        if self._version is None:
            self._version = self.get_json("/version")
        return self._version

    def info(self) -> dict[str, Any]:
        return self.get_json("/info")

    @property
    def is_pouch(self) -> bool:
        """pouchd's /version has none of Moby's Components/MinAPIVersion/Platform keys."""
        version = self.version()
        return not any(key in version for key in ("Components", "MinAPIVersion", "Platform"))

    @property
    def daemon_kind(self) -> str:
        return "pouch" if self.is_pouch else "docker"

    # -- images ----------------------------------------------------------------------------
    def inspect_image(self, reference: str) -> dict[str, Any] | None:
        return self.get_json(f"/images/{reference}/json", ok_statuses=(404,))

    def pull_image(self, reference: str, auth: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Pull `reference` (name[:tag] or name@digest); fail on an errorDetail anywhere in the stream."""
        headers = {"X-Registry-Auth": encode_registry_auth(auth)} if auth else {}
        path = "/images/create"
        try:
            # Digests and tags travel inside fromImage: pouchd joins fromImage and tag with ':'.
            _, data = self.request(
                "POST",
                path,
                query={"fromImage": reference},
                headers=headers,
                timeout=max(self.settings.timeout, 300),
            )
        except PouchConnectionError:
            raise
        except PouchError as exc:
            raise PouchPullError(
                f"pulling {reference}: {exc}{pull_error_hint(str(exc))}",
                status=exc.status,
                method="POST",
                path=path,
            ) from exc
        events = parse_json_stream(data.decode(errors="replace"))
        error = stream_error(events)
        if error:
            raise PouchPullError(
                f"pulling {reference} failed: {error}{pull_error_hint(error)}",
                status=200,
                method="POST",
                path=path,
            )
        return events

    def list_images(self, reference_filter: str | None = None) -> list[dict[str, Any]]:
        """GET /images/json; the reference filter uses the object form both daemons accept."""
        query = {"filters": json.dumps({"reference": {reference_filter: True}})} if reference_filter else None
        return self.get_json("/images/json", query=query) or []

    def remove_image(self, reference: str, force: bool = False) -> None:
        """DELETE /images/{reference}; a missing image is not an error."""
        self.request(
            "DELETE", f"/images/{reference}", query={"force": "true" if force else None}, ok_statuses=(404,)
        )

    def tag_image(self, source: str, repository: str, tag: str) -> None:
        """POST /images/{source}/tag?repo=&tag= (201 on both daemons)."""
        self.request("POST", f"/images/{source}/tag", query={"repo": repository, "tag": tag})

    def load_image(self, archive_path: str, name: str | None = None) -> list[dict[str, Any]]:
        """POST /images/load with the archive as the body, streamed from disk.

        pouchd reads `name` (a repository without tag: only the archive's references under it are
        imported) and answers 200 with an empty body; dockerd ignores it and answers a JSON stream
        that can end with an errorDetail after the 200. Both failures raise PouchError.
        """
        path = "/images/load"
        query: dict[str, Any] = {"quiet": "1", "name": name or None}
        try:
            handle = open(archive_path, "rb")  # noqa: SIM115 - closed below, after the request
        except OSError as exc:
            raise PouchError(f"cannot read the archive {archive_path}: {exc.strerror or exc}") from exc
        with handle:
            status, data = self.request(
                "POST",
                path,
                query=query,
                upload=handle,
                content_type="application/x-tar",
                timeout=max(self.settings.timeout, 300),
            )
        text = data.decode(errors="replace")
        events = parse_json_stream(text) if text.strip() else []
        error = stream_error(events)
        if error:
            raise PouchError(
                f"loading {archive_path} failed: {error}", status=status, method="POST", path=path
            )
        return events

    # -- containers ------------------------------------------------------------------------
    def inspect_container(self, name: str) -> dict[str, Any] | None:
        return self.get_json(f"/containers/{name}/json", ok_statuses=(404,))

    def list_containers(
        self, all_containers: bool = True, filters: dict[str, Any] | None = None
    ) -> list[Any]:
        query: dict[str, Any] = {"all": "true" if all_containers else None}
        if filters:
            query["filters"] = json.dumps(filters)
        return self.get_json("/containers/json", query=query)

    def create_container(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.post_json("/containers/create", body=body, query={"name": name})

    def start_container(self, name: str) -> None:
        # 304: already running (pouchd and Moby both answer so).
        self.request("POST", f"/containers/{name}/start")

    def stop_container(self, name: str, timeout: int | None) -> None:
        wait = 10 if timeout is None else timeout
        self.request(
            "POST", f"/containers/{name}/stop", query={"t": wait}, timeout=self.settings.timeout + wait
        )

    def restart_container(self, name: str, timeout: int | None) -> None:
        wait = 10 if timeout is None else timeout
        self.request(
            "POST", f"/containers/{name}/restart", query={"t": wait}, timeout=self.settings.timeout + wait
        )

    def remove_container(self, name: str, force: bool = True, volumes: bool = True) -> None:
        query = {"force": "true" if force else "false", "v": "true" if volumes else "false"}
        self.request("DELETE", f"/containers/{name}", query=query, ok_statuses=(404,))

    def rename_container(self, name: str, new_name: str) -> None:
        self.request("POST", f"/containers/{name}/rename", query={"name": new_name})

    def update_container(self, name: str, body: dict[str, Any]) -> Any:
        return self.post_json(f"/containers/{name}/update", body=body)

    def upgrade_container(self, name: str, body: dict[str, Any]) -> Any:
        return self.post_json(
            f"/containers/{name}/upgrade", body=body, timeout=max(self.settings.timeout, 300)
        )

    def wait_container(self, name: str, timeout: float | None = None) -> dict[str, Any]:
        return self.post_json(f"/containers/{name}/wait", timeout=timeout)

    def container_logs(self, name: str, tty: bool = False) -> tuple[str, str]:
        _, data = self.request("GET", f"/containers/{name}/logs", query={"stdout": "1", "stderr": "1"})
        if tty:
            return data.decode(errors="replace"), ""
        return demultiplex_logs(data)

    # -- networks --------------------------------------------------------------------------
    def inspect_network(self, name: str) -> dict[str, Any] | None:
        return self.get_json(f"/networks/{name}", ok_statuses=(404,))

    def list_networks(self) -> list[dict[str, Any]]:
        return self.get_json("/networks") or []

    def create_network(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.post_json("/networks/create", body=body) or {}

    def remove_network(self, name: str) -> None:
        """DELETE /networks/{name}: by name, because pouchd answers 404 to a delete by network ID."""
        self.request("DELETE", f"/networks/{name}")

    def connect_network(
        self, network: str, container: str, endpoint_config: dict[str, Any] | None = None
    ) -> None:
        body: dict[str, Any] = {"Container": container}
        if endpoint_config:
            body["EndpointConfig"] = endpoint_config
        self.request("POST", f"/networks/{network}/connect", body=body)

    def disconnect_network(self, network: str, container: str, force: bool = False) -> None:
        self.request("POST", f"/networks/{network}/disconnect", body={"Container": container, "Force": force})

    # -- volumes ---------------------------------------------------------------------------
    def inspect_volume(self, name: str) -> dict[str, Any] | None:
        return self.get_json(f"/volumes/{name}", ok_statuses=(404,))

    def list_volumes(self) -> list[dict[str, Any]]:
        answer = self.get_json("/volumes") or {}
        return answer.get("Volumes") or []

    def create_volume(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.post_json("/volumes/create", body=body) or {}

    def remove_volume(self, name: str) -> None:
        self.request("DELETE", f"/volumes/{name}", ok_statuses=(404,))
