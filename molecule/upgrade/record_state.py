"""Record what the upgrade must keep, on the node, under a key of /root/upgrade-check.json.

Usage: record_state.py KEY. Reads pouchd's /version and the upgrade-survivor container through the
API socket, and the main PIDs of pouch.service and lxcfs.service from systemd.
"""

import http.client
import json
import os
import socket
import subprocess
import sys

SOCKET = "/var/run/pouchd.sock"
RECORD = "/root/upgrade-check.json"
CONTAINER = "upgrade-survivor"


def api_get(path):
    sock = socket.socket(socket.AF_UNIX)
    sock.connect(SOCKET)
    conn = http.client.HTTPConnection("localhost")
    conn.sock = sock
    conn.request("GET", path)
    resp = conn.getresponse()
    body = resp.read().decode()
    if resp.status != 200:
        sys.exit(f"GET {path}: {resp.status} {body}")
    return json.loads(body)


def main_pid(unit):
    argv = ["systemctl", "show", "-p", "MainPID", "--value", unit]
    out = subprocess.run(argv, capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


state = api_get(f"/containers/{CONTAINER}/json")["State"]
record = {}
if os.path.exists(RECORD):
    with open(RECORD) as existing:
        record = json.load(existing)
version = api_get("/version")
record[sys.argv[1]] = {
    "pouchd_version": version["Version"],
    "pouchd_build": version.get("GitCommit", "").lower(),
    "pouchd_pid": main_pid("pouch.service"),
    "lxcfs_pid": main_pid("lxcfs.service"),
    "container": {"running": state["Running"], "pid": state["Pid"], "started_at": state["StartedAt"]},
}
with open(RECORD, "w") as out:
    json.dump(record, out, indent=2, sort_keys=True)
print(json.dumps(record[sys.argv[1]], sort_keys=True))
