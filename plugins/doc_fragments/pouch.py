"""Documentation shared by the pouch_* modules.

pouch (DOCUMENTATION): the connection options of every module that talks to the daemon
(module_utils/pouch_common.py POUCH_CONNECTION_ARGS). pouch.attributes: check and diff mode of the
modules that change the daemon. pouch.attributes_read_only: those of the modules that only read.
pouch.registry_auth: the `registry_auth` option of the modules that pull (pouch_common.REGISTRY_AUTH_SPEC).
A module refines an attribute by giving only the keys it changes (e.g. its own check_mode details).
"""

from __future__ import annotations

# check_mode / diff_mode, filled in per kind of module below.
_ATTRIBUTES = """
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: {details}
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in
      diff mode.
    support: {diff}
"""


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  pouch_host:
    description:
      - The daemon's API address, C(unix:///path/to/socket) or C(tcp://HOST:PORT).
      - Works with pouchd and with dockerd (Moby API 1.24).
      - If not set, the value of the E(POUCH_HOST) environment variable is used.
    type: str
    default: unix:///var/run/pouchd.sock
    aliases: [host]
  api_version:
    description:
      - API version prefix of every request path (C(/v1.24/...)).
      - If not set, the value of the E(POUCH_API_VERSION) environment variable is used.
    type: str
    default: '1.24'
  timeout:
    description:
      - Seconds to wait for an API answer. Stop and restart calls add the stop timeout; pulls wait at least
        300 seconds.
      - If not set, the value of the E(POUCH_TIMEOUT) environment variable is used.
    type: int
    default: 60
  tls:
    description:
      - Talk TLS to a C(tcp://) host without verifying the daemon's certificate.
      - If not set, the value of the E(POUCH_TLS) environment variable is used.
    type: bool
    default: false
  validate_certs:
    description:
      - Talk TLS and verify the daemon's certificate against O(ca_path) (or the system CAs).
      - If not set, the value of the E(POUCH_TLS_VERIFY) environment variable is used.
    type: bool
    default: false
    aliases: [tls_verify]
  ca_path:
    description:
      - CA certificate used to verify the daemon. Defaults to C(ca.pem) in E(POUCH_CERT_PATH) when that is
        set.
    type: path
    aliases: [ca_cert, tls_ca_cert]
  client_cert:
    description:
      - Client certificate for TLS client authentication. Defaults to C(cert.pem) in E(POUCH_CERT_PATH).
    type: path
    aliases: [tls_client_cert]
  client_key:
    description:
      - Key of O(client_cert). Defaults to C(key.pem) in E(POUCH_CERT_PATH).
    type: path
    aliases: [tls_client_key]
  tls_hostname:
    description:
      - The name the daemon's certificate must carry when O(validate_certs) is on, if it differs from
        the host part of O(pouch_host) (for example when connecting by IP address).
      - If not set, the value of the E(POUCH_TLS_HOSTNAME) environment variable is used.
    type: str
notes:
  - The modules talk HTTP to the daemon with Python's standard library only; nothing needs to be installed on
    the node.
requirements:
  - pouchd (API 1.24) or dockerd on the managed node
"""

    ATTRIBUTES = _ATTRIBUTES.format(
        details="Check mode computes the same plan as a real run and reports its actions, without changing "
        "the daemon.",
        diff="full",
    )

    ATTRIBUTES_READ_ONLY = _ATTRIBUTES.format(
        details="The module only reads; check mode returns what a real run returns.", diff="none"
    )

    REGISTRY_AUTH = r"""
options:
  registry_auth:
    description:
      - Credentials for the pull, sent in the C(X-Registry-Auth) header.
      - The password is never logged (Ansible masks it in results and output); the user name and the
        registry address are shown, so pull errors can name the registry.
    type: dict
    suboptions:
      username:
        description: Registry user.
        type: str
        required: true
      password:
        description: Registry password or token.
        type: str
        required: true
      server_address:
        description: Registry address the credentials are for.
        type: str
"""
