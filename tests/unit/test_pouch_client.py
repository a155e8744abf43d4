"""module_utils/pouch_client.py and the option table: parsing, errors, recorded pouchd bodies.

A tiny HTTP server on a unix socket stands in for a daemon only for what a real daemon cannot be
made to produce on demand (a mid-stream pull error, malformed JSON); everything else about the
daemon is tested in tests/integration against real dockerd and pouchd.
"""

from __future__ import annotations

import base64
import contextlib
import importlib.util
import json
import socketserver
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
# shared/ sits beside the checkout (and beside CI's clone).
RECORDED = ROOT.parent / "shared" / "reference" / "pouch-api" / "recorded"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "module_utils" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


client_mod = _load("pouch_client")
options_mod = _load("pouch_container_options")

# A pull stream as pouchd 1.3.0 sends it: objects back to back, no separators.
POUCH_PULL_STREAM = (
    '{"id":"127.0.0.1:5077/library/busybox:latest","status":"resolved","progressDetail":{"current":0,"total":0},'
    '"started_at":"0001-01-01T00:00:00Z","updated_at":"0001-01-01T00:00:00Z"}'
    '{"id":"manifest-sha256:382c","status":"done","progressDetail":{"current":0,"total":0}}'
    '{"id":"layer-sha256:ffe7","status":"done","progressDetail":{"current":1088818,"total":1088818}}'
)
MID_STREAM_ERROR = (
    '{"id":"busybox:latest","status":"resolving"}'
    '{"id":"layer-sha256:ffe7","status":"downloading","progressDetail":{"current":10,"total":100}}'
    '{"errorDetail":{"code":500,"message":"unexpected EOF while reading layer"},"error":"unexpected EOF"}'
)


def recorded(name: str) -> object:
    path = RECORDED / name
    if not path.exists():
        pytest.skip(f"recorded pouchd bodies not found at {RECORDED}")
    return json.loads(path.read_text())


# -- stream parsing ---------------------------------------------------------------------------
def test_pull_stream_without_separators() -> None:
    events = client_mod.parse_json_stream(POUCH_PULL_STREAM)
    assert [e["status"] for e in events] == ["resolved", "done", "done"]
    assert client_mod.stream_error(events) is None


def test_pull_stream_with_newlines_like_moby() -> None:
    text = '{"status":"Pulling from library/busybox"}\r\n{"status":"Digest: sha256:1"}\n\n'
    assert len(client_mod.parse_json_stream(text)) == 2


def test_pull_stream_error_mid_stream() -> None:
    events = client_mod.parse_json_stream(MID_STREAM_ERROR)
    assert client_mod.stream_error(events) == "unexpected EOF while reading layer"


def test_pull_stream_malformed() -> None:
    with pytest.raises(client_mod.PouchPullError, match="malformed JSON in the progress stream at offset"):
        client_mod.parse_json_stream('{"status":"done"}{"status": oops}')


def test_empty_stream() -> None:
    assert client_mod.parse_json_stream("") == []


def test_registry_auth_is_urlsafe_base64_json() -> None:
    auth = {"username": "u", "password": "p?>>>~", "serveraddress": "127.0.0.1:5000"}
    encoded = client_mod.encode_registry_auth(auth)
    assert "+" not in encoded and "/" not in encoded
    assert json.loads(base64.urlsafe_b64decode(encoded)) == auth


def test_demultiplex_logs() -> None:
    frame = b"\x01\x00\x00\x00\x00\x00\x00\x03hi\n" + b"\x02\x00\x00\x00\x00\x00\x00\x04err\n"
    assert client_mod.demultiplex_logs(frame) == ("hi\n", "err\n")
    assert client_mod.demultiplex_logs(b"plain tty output\n") == ("plain tty output\n", "")


# -- a unix-socket HTTP server for error paths -------------------------------------------------
class _Handler(BaseHTTPRequestHandler):
    routes: dict[tuple[str, str], tuple[int, str, bytes]] = {}
    seen: list[tuple[str, str, dict[str, str]]] = []

    def _answer(self) -> None:
        path = self.path.split("?")[0]
        self.seen.append((self.command, self.path, dict(self.headers)))
        status, ctype, body = self.routes.get(
            (self.command, path), (404, "application/json", b'{"message":"no route"}')
        )
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self._answer()

    def log_message(self, *args: object) -> None:
        pass


class _UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def get_request(self):  # type: ignore[no-untyped-def]
        request, _ = super().get_request()
        return request, ("local", 0)


@contextlib.contextmanager
def serving(path: Path, handler: type[BaseHTTPRequestHandler]) -> Iterator[Any]:
    """`handler` answering on the unix socket `path`; yields a client of it (timeout 5 s)."""
    server = _UnixServer(str(path), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    client = client_mod.PouchClient(client_mod.ConnectionSettings(host=f"unix://{path}", timeout=5))
    try:
        yield client
    finally:
        client.close()
        server.shutdown()
        server.server_close()


@pytest.fixture
def fake_daemon(tmp_path: Path) -> Iterator[tuple[object, type[_Handler]]]:
    path = tmp_path / "fake.sock"
    handler = type("Handler", (_Handler,), {"routes": {}, "seen": []})
    server = _UnixServer(str(path), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    client = client_mod.PouchClient(client_mod.ConnectionSettings(host=f"unix://{path}", timeout=5))
    yield client, handler
    client.close()
    server.shutdown()
    server.server_close()


def test_error_message_names_method_path_status(fake_daemon: tuple[object, type[_Handler]]) -> None:
    client, handler = fake_daemon
    handler.routes[("POST", "/v1.24/containers/create")] = (
        400,
        "application/json",
        b'{"message":"unknown runtime nosuch: failed to find runtime nosuch in daemon config: '
        b'invalid param"}',
    )
    with pytest.raises(client_mod.PouchError) as raised:
        client.create_container("c1", {"Image": "busybox"})
    assert str(raised.value) == (
        "POST /containers/create failed with HTTP 400: "
        "unknown runtime nosuch: failed to find runtime nosuch in daemon config: invalid param"
    )
    assert raised.value.status == 400


def test_inspect_missing_is_none(fake_daemon: tuple[object, type[_Handler]]) -> None:
    client, handler = fake_daemon
    handler.routes[("GET", "/v1.24/containers/gone/json")] = (
        404,
        "application/json",
        b'{"message":"container gone: not found"}',
    )
    assert client.inspect_container("gone") is None


def test_pull_fails_on_mid_stream_error(fake_daemon: tuple[object, type[_Handler]]) -> None:
    client, handler = fake_daemon
    handler.routes[("POST", "/v1.24/images/create")] = (200, "application/json", MID_STREAM_ERROR.encode())
    with pytest.raises(
        client_mod.PouchPullError, match="pulling busybox:latest failed: unexpected EOF while reading layer"
    ):
        client.pull_image("busybox:latest", auth={"username": "u", "password": "secret"})
    _method, path, headers = handler.seen[-1]
    assert path == "/v1.24/images/create?fromImage=busybox%3Alatest"
    assert json.loads(base64.urlsafe_b64decode(headers["X-Registry-Auth"]))["password"] == "secret"


def test_pull_http_error_before_stream(fake_daemon: tuple[object, type[_Handler]]) -> None:
    client, handler = fake_daemon
    handler.routes[("POST", "/v1.24/images/create")] = (
        404,
        "application/json",
        b'{"message":"127.0.0.1:5077/library/nosuch:latest not found: not found"}',
    )
    with pytest.raises(
        client_mod.PouchPullError, match=r"HTTP 404: 127\.0\.0\.1:5077/library/nosuch:latest not found"
    ):
        client.pull_image("127.0.0.1:5077/library/nosuch:latest")


def test_malformed_json_answer(fake_daemon: tuple[object, type[_Handler]]) -> None:
    client, handler = fake_daemon
    handler.routes[("GET", "/v1.24/version")] = (200, "application/json", b'{"ApiVersion": "1.24",')
    with pytest.raises(client_mod.PouchError, match="GET /version: the daemon answered with malformed JSON"):
        client.version()


def test_non_json_error_body(fake_daemon: tuple[object, type[_Handler]]) -> None:
    client, handler = fake_daemon
    handler.routes[("POST", "/v1.24/containers/x/kill")] = (405, "text/plain", b"405 method not allowed")
    with pytest.raises(
        client_mod.PouchError, match="POST /containers/x/kill failed with HTTP 405: 405 method not allowed"
    ):
        client.request("POST", "/containers/x/kill")


def test_keep_alive_reuses_one_connection(fake_daemon: tuple[object, type[_Handler]]) -> None:
    client, handler = fake_daemon
    handler.protocol_version = "HTTP/1.1"
    handler.routes[("GET", "/v1.24/version")] = (
        200,
        "application/json",
        json.dumps(recorded("version.json")).encode(),
    )
    handler.routes[("GET", "/v1.24/containers/bb2/json")] = (
        200,
        "application/json",
        json.dumps(recorded("inspect-bb2.json")).encode(),
    )
    assert client.is_pouch
    assert client.inspect_container("bb2")["Name"] == "bb2"
    assert client.inspect_container("bb2")["State"]["Status"] == "running"


def test_unreachable_socket(tmp_path: Path) -> None:
    client = client_mod.PouchClient(client_mod.ConnectionSettings(host=f"unix://{tmp_path}/none.sock"))
    with pytest.raises(
        client_mod.PouchConnectionError, match=r"GET /version: cannot talk to the daemon at unix://"
    ):
        client.version()


def test_api_version_prefix_is_configurable(fake_daemon: tuple[object, type[_Handler]]) -> None:
    client, handler = fake_daemon
    other = client_mod.PouchClient(
        client_mod.ConnectionSettings(host=client.settings.host, api_version="1.40")
    )
    handler.routes[("GET", "/v1.40/_ping")] = (200, "text/plain", b"OK")
    assert other.request("GET", "/_ping") == (200, b"OK")


# -- recorded bodies ---------------------------------------------------------------------------
def test_recorded_version_is_pouch() -> None:
    client = client_mod.PouchClient(client_mod.ConnectionSettings())
    client._version = recorded("version.json")
    assert client.is_pouch and client.daemon_kind == "pouch"
    client._version = {"ApiVersion": "1.41", "MinAPIVersion": "1.12", "Components": []}
    assert client.daemon_kind == "docker"


def test_options_read_recorded_inspect() -> None:
    inspect = recorded("inspect-bb2.json")
    by_name = options_mod.OPTIONS_BY_NAME
    assert by_name["command"].current(inspect) == ["sleep", "1000"]
    assert by_name["labels"].current(inspect) == {"app": "demo"}
    assert by_name["restart_policy"].current(inspect) == "no"
    assert by_name["network_mode"].current(inspect) == "bridge"
    assert by_name["runtime"].current(inspect) == "runc"
    assert by_name["memory"].current(inspect) == 0
    assert by_name["published_ports"].current(inspect) == []
    assert by_name["log_driver"].current(inspect) == "json-file"
    assert by_name["env"].current(inspect) == {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    }


def test_recorded_list_has_no_state() -> None:
    listing = recorded("ps-all.json")
    assert all("State" not in item for item in listing)
    assert [item["Names"] for item in listing] == [["bb2"], ["bb1"]]


def test_create_body_matches_recorded_request_shape() -> None:
    request = recorded("create-req.json")
    body: dict = {"Image": "busybox", "HostConfig": {}}
    by_name = options_mod.OPTIONS_BY_NAME
    by_name["command"].write_into(body, by_name["command"].desired("sleep 1000"))
    by_name["labels"].write_into(body, by_name["labels"].desired({"app": "demo"}))
    by_name["runtime"].write_into(body, "runc")
    by_name["restart_policy"].write_into(body, "no")
    assert body["Cmd"] == request["Cmd"] and body["Labels"] == request["Labels"]
    assert body["HostConfig"]["Runtime"] == request["HostConfig"]["Runtime"]
    assert body["HostConfig"]["RestartPolicy"] == request["HostConfig"]["RestartPolicy"]
    # Pouch's own fields go to the top level of the create body, as pouchd reads them.
    by_name["rich"].write_into(body, True)
    by_name["rich_mode"].write_into(body, "dumb-init")
    by_name["init_script"].write_into(body, "/bin/true")
    by_name["enable_lxcfs"].write_into(body, True)
    assert body["Rich"] is True and body["RichMode"] == "dumb-init" and body["InitScript"] == "/bin/true"
    assert body["HostConfig"]["EnableLxcfs"] is True and "Rich" not in body["HostConfig"]


# -- normalizers ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("spec", "normalized"),
    [
        ("80", "||80/tcp"),
        ("8080:80", "|8080|80/tcp"),
        ("127.0.0.1:8080:80/udp", "127.0.0.1|8080|80/udp"),
        ("127.0.0.1::80", "127.0.0.1||80/tcp"),
        ("0.0.0.0:8080:80", "|8080|80/tcp"),
        ("[::1]:8080:80", "::1|8080|80/tcp"),
    ],
)
def test_parse_port(spec: str, normalized: str) -> None:
    assert options_mod.parse_port(spec) == normalized


@pytest.mark.parametrize(
    ("value", "size"),
    [
        ("64m", 64 << 20),
        ("1g", 1 << 30),
        ("512k", 512 << 10),
        ("100", 100),
        ("1.5g", int(1.5 * (1 << 30))),
        ("64MB", 64 << 20),
        ("-1", -1),
    ],
)
def test_parse_size(value: str, size: int) -> None:
    assert options_mod.parse_size(value, "memory") == size


def test_env_rejects_non_strings() -> None:
    with pytest.raises(options_mod.OptionError, match="Non-string value found for env option 'DEBUG'"):
        options_mod.string_dict({"DEBUG": True}, "env")


def test_chunked_response_and_keep_alive(tmp_path: Path) -> None:
    """Moby streams pulls and logs chunked over a kept-alive HTTP/1.1 connection."""
    path = tmp_path / "chunked.sock"
    connections: list[int] = []

    class Chunked(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            connections.append(id(self.connection))
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b'{"status":"Pulling"}\r\n', b'{"status":"Done"}'):
                self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")

        def log_message(self, *args: object) -> None:
            pass

    with serving(path, Chunked) as client:
        assert [e["status"] for e in client.pull_image("busybox:latest")] == ["Pulling", "Done"]
        assert [e["status"] for e in client.pull_image("busybox:latest")] == ["Pulling", "Done"]
        assert len(set(connections)) == 1, "the second request reuses the kept-alive connection"


def test_load_image_streams_the_archive_as_the_raw_body(tmp_path: Path) -> None:
    """POST /images/load: the archive file is the body (not JSON), on the client's kept-alive connection."""
    path = tmp_path / "load.sock"
    archive = tmp_path / "image.tar"
    archive.write_bytes(bytes(range(256)) * 9000)  # > 2 MiB: sent in several chunks
    received: list[tuple[str, dict[str, str], bytes]] = []
    answers = [b"", b'{"stream":"Loaded"}{"errorDetail":{"message":"bad layer"},"error":"bad layer"}']

    class Load(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.path, dict(self.headers), body))
            answer = answers[len(received) - 1]
            self.send_response(200)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: object) -> None:
            pass

    with serving(path, Load) as client:
        assert client.load_image(str(archive), "docker.io/library/app") == []
        with pytest.raises(client_mod.PouchError, match=r"loading .*image\.tar failed: bad layer"):
            client.load_image(str(archive))
        with pytest.raises(client_mod.PouchError, match=r"cannot read the archive .*nope\.tar"):
            client.load_image(str(tmp_path / "nope.tar"))
    (first_path, first_headers, first_body), (second_path, _, second_body) = received
    assert first_path == "/v1.24/images/load?quiet=1&name=docker.io%2Flibrary%2Fapp"
    assert second_path == "/v1.24/images/load?quiet=1"
    assert first_headers["Content-Type"] == "application/x-tar"
    assert int(first_headers["Content-Length"]) == archive.stat().st_size
    assert first_body == second_body == archive.read_bytes()


def test_request_refuses_a_json_body_and_an_upload_together(tmp_path: Path) -> None:
    client = client_mod.PouchClient(client_mod.ConnectionSettings(host=f"unix://{tmp_path}/none.sock"))
    with (tmp_path / "f").open("wb+") as handle, pytest.raises(ValueError, match="not both"):
        client.request("POST", "/images/load", body={}, upload=handle)


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            'Head "https://10.0.2.101:5443/v2/": x509: certificate signed by unknown authority',
            "does not trust the registry's TLS certificate",
        ),
        (
            "tls: failed to verify certificate: x509: certificate signed by unknown authority",
            "pouchd_registry_ca_certs",
        ),
        (
            "x509: certificate is valid for 127.0.0.1, not 10.0.2.101",
            "does not name the address pulled from",
        ),
        ("http: server gave HTTP response to HTTPS client", "the registry speaks plain HTTP"),
        (
            'Get "http://10.0.2.101:5080/docker/registry/v2/blobs/sha256/ab/abc/data": proxyconnect tcp: '
            "dial tcp 127.0.0.1:65001: connect: connection refused",
            "dfdaemon.service",
        ),
        ("manifest unknown", ""),
    ],
)
def test_pull_error_hint_names_the_cause_and_the_fix(message: str, expected: str) -> None:
    hint = client_mod.pull_error_hint(message)
    if expected:
        assert hint.startswith(" (") and expected in hint, hint
    else:
        assert hint == ""
