"""A small HTTP client for the Pouch (and Moby-compatible) Engine API, standard library only.

It runs on the managed node, so it must not need the docker SDK or requests: http.client over a
unix socket, or over TCP with optional TLS. Every failure becomes a PouchError whose message names
the HTTP method, the path and the status, so module failures say what was attempted.
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

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


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, socket_path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._socket_path = socket_path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._socket_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class _TLSHTTPConnection(http.client.HTTPConnection):
    """HTTPS with an explicit name to verify (tls_hostname), e.g. when connecting by address."""

    default_port = 443

    def __init__(self, address: str, timeout: float, context: ssl.SSLContext, server_name: str | None) -> None:
        super().__init__(address, timeout=timeout)
        self._context = context
        self._server_name = server_name

    def connect(self) -> None:
        super().connect()
        self.sock = self._context.wrap_socket(self.sock, server_hostname=self._server_name or self.host)


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
            raise PouchPullError(f"malformed JSON in the progress stream at offset {index}: {exc.msg}") from exc
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


def _error_message(body: bytes) -> str:
    text = body.decode(errors="replace").strip()
    try:
        parsed = json.loads(text)
    except ValueError:
        return text or "(empty body)"
    if isinstance(parsed, dict) and parsed.get("message"):
        return str(parsed["message"])
    return text


class PouchClient:
    """One keep-alive connection to the daemon; paths are given without the /vX.Y prefix."""

    def __init__(self, settings: ConnectionSettings) -> None:
        self.settings = settings
        self._prefix = f"/v{settings.api_version.lstrip('v')}" if settings.api_version else ""
        self._connection: http.client.HTTPConnection | None = None
        self._version: dict[str, Any] | None = None

    # -- transport -------------------------------------------------------------------------
    def _new_connection(self, timeout: float) -> http.client.HTTPConnection:
        host = self.settings.host
        if host.startswith("unix://"):
            return _UnixHTTPConnection(host[len("unix://") :], timeout)
        for scheme in ("tcp://", "http://", "https://"):
            if host.startswith(scheme):
                address = host[len(scheme) :].rstrip("/")
                break
        else:
            raise PouchConnectionError(
                f"unsupported host {host!r}: use unix:///path/to/socket or tcp://HOST:PORT"
            )
        use_tls = self.settings.tls or self.settings.validate_certs or host.startswith("https://")
        if not use_tls:
            return http.client.HTTPConnection(address, timeout=timeout)
        return _TLSHTTPConnection(address, timeout, self._ssl_context(), self.settings.tls_hostname)

    def _ssl_context(self) -> ssl.SSLContext:
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
        except (OSError, ssl.SSLError) as exc:
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
    ) -> tuple[int, bytes]:
        """Send one request; return (status, raw body). Statuses >= 400 raise PouchError."""
        url = self._prefix + quote(path, safe="/:@=&?")
        if query:
            url += "?" + urlencode({k: v for k, v in query.items() if v is not None})
        payload = None
        send_headers = {"Host": "pouch", **(headers or {})}
        if body is not None:
            payload = json.dumps(body).encode()
            send_headers["Content-Type"] = "application/json"
        effective_timeout = timeout or self.settings.timeout
        status, data = self._send(method, url, payload, send_headers, effective_timeout, path)
        if status >= 400 and status not in ok_statuses:
            raise PouchError(
                f"{method} {path} failed with HTTP {status}: {_error_message(data)}",
                status=status,
                method=method,
                path=path,
            )
        return status, data

    def _send(
        self, method: str, url: str, payload: bytes | None, headers: dict[str, str], timeout: float, path: str
    ) -> tuple[int, bytes]:
        # A kept-alive connection may have been closed by the daemon: retry once on a fresh one.
        for attempt in (1, 2):
            reused = self._connection is not None and timeout == self.settings.timeout
            if not reused:
                self.close()
                self._connection = self._new_connection(timeout)
            connection = self._connection
            assert connection is not None
            try:
                connection.request(method, url, body=payload, headers=headers)
                response = connection.getresponse()
                data = response.read()
                if response.will_close or timeout != self.settings.timeout:
                    self.close()
                return response.status, data
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                self.close()
                if reused and attempt == 1:
                    continue
                raise self._connection_error(method, path, exc) from exc
            except ssl.SSLError as exc:
                self.close()
                raise PouchConnectionError(
                    f"{method} {path}: TLS error talking to {self.settings.host}: {exc}", method=method, path=path
                ) from exc
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                raise self._connection_error(method, path, exc) from exc
        raise AssertionError("unreachable")

    def _connection_error(self, method: str, path: str, exc: BaseException) -> PouchConnectionError:
        if isinstance(exc, socket.timeout | TimeoutError):
            reason = f"timed out after {self.settings.timeout}s"
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

    def get_json(self, path: str, query: dict[str, Any] | None = None, ok_statuses: tuple[int, ...] = ()) -> Any:
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
                "POST", path, query={"fromImage": reference}, headers=headers, timeout=max(self.settings.timeout, 300)
            )
        except PouchConnectionError:
            raise
        except PouchError as exc:
            raise PouchPullError(f"pulling {reference}: {exc}", status=exc.status, method="POST", path=path) from exc
        events = parse_json_stream(data.decode(errors="replace"))
        error = stream_error(events)
        if error:
            raise PouchPullError(f"pulling {reference} failed: {error}", status=200, method="POST", path=path)
        return events

    # -- containers ------------------------------------------------------------------------
    def inspect_container(self, name: str) -> dict[str, Any] | None:
        return self.get_json(f"/containers/{name}/json", ok_statuses=(404,))

    def list_containers(self, all_containers: bool = True, filters: dict[str, Any] | None = None) -> list[Any]:
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
        self.request("POST", f"/containers/{name}/stop", query={"t": wait}, timeout=self.settings.timeout + wait)

    def restart_container(self, name: str, timeout: int | None) -> None:
        wait = 10 if timeout is None else timeout
        self.request("POST", f"/containers/{name}/restart", query={"t": wait}, timeout=self.settings.timeout + wait)

    def remove_container(self, name: str, force: bool = True, volumes: bool = True) -> None:
        query = {"force": "true" if force else "false", "v": "true" if volumes else "false"}
        self.request("DELETE", f"/containers/{name}", query=query, ok_statuses=(404,))

    def rename_container(self, name: str, new_name: str) -> None:
        self.request("POST", f"/containers/{name}/rename", query={"name": new_name})

    def update_container(self, name: str, body: dict[str, Any]) -> Any:
        return self.post_json(f"/containers/{name}/update", body=body)

    def upgrade_container(self, name: str, body: dict[str, Any]) -> Any:
        return self.post_json(f"/containers/{name}/upgrade", body=body, timeout=max(self.settings.timeout, 300))

    def wait_container(self, name: str, timeout: float | None = None) -> dict[str, Any]:
        return self.post_json(f"/containers/{name}/wait", timeout=timeout)

    def container_logs(self, name: str, tty: bool = False) -> tuple[str, str]:
        _, data = self.request("GET", f"/containers/{name}/logs", query={"stdout": "1", "stderr": "1"})
        if tty:
            return data.decode(errors="replace"), ""
        return demultiplex_logs(data)
