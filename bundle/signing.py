"""The bundle's own signing key (a private GNUPGHOME outside the served tree) and apt signatures.

The key is generated once per state dir (``gpg --batch --quick-gen-key``, ed25519, no passphrase:
it lives in the operator's state dir, never in the bundle) and reused by every rebuild, so the
inventory's ``pouch_bundle_key_sha256`` stays valid. Its public half is ``bundle-key.asc``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from bundle.errors import BundleError

KEY_UID = "pouch-ansible offline bundle <bundle@pouch-ansible.invalid>"


def _gpg(home: Path, *args: str, what: str) -> str:
    env = dict(os.environ, GNUPGHOME=str(home))
    result = subprocess.run(
        ["gpg", "--batch", "--no-tty", "--quiet", *args], env=env, capture_output=True, text=True
    )
    if result.returncode != 0:
        raise BundleError(f"{what}: gpg {' '.join(args)} exited {result.returncode}: {result.stderr.strip()}")
    return result.stdout


def _stop_agent(home: Path) -> None:
    if shutil.which("gpgconf"):
        subprocess.run(
            ["gpgconf", "--kill", "gpg-agent"], env=dict(os.environ, GNUPGHOME=str(home)), capture_output=True
        )


def ensure_key(home: Path) -> str:
    """The fingerprint of the signing key in ``home``, generating the key the first time."""
    if shutil.which("gpg") is None:
        raise BundleError("gpg is missing: signing the bundle needs Debian's gnupg package")
    home.mkdir(parents=True, exist_ok=True)
    home.chmod(0o700)
    fpr_file = home / "bundle-key.fingerprint"
    try:
        if not fpr_file.exists():
            _gpg(home, "--passphrase", "", "--quick-gen-key", KEY_UID, "ed25519", "sign", "never",
                 what="generating the bundle signing key")  # fmt: skip
            listing = _gpg(home, "--with-colons", "--list-secret-keys", KEY_UID, what="reading the new key")
            fprs = [line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:")]
            if not fprs:
                raise BundleError(f"no fingerprint for the key just generated in {home}")
            fpr_file.write_text(fprs[0] + "\n")
        return fpr_file.read_text().strip()
    finally:
        _stop_agent(home)


def export_public_key(home: Path, fingerprint: str, dest: Path) -> None:
    text = _gpg(home, "--armor", "--export", fingerprint, what="exporting the bundle key")
    if "BEGIN PGP PUBLIC KEY BLOCK" not in text:
        raise BundleError(f"the signing key {fingerprint} is not in {home}")
    if not dest.exists() or dest.read_text() != text:
        dest.write_text(text)


def sign_release(home: Path, fingerprint: str, repo: Path) -> None:
    """InRelease (clear-signed) and Release.gpg (detached) for ``repo/Release``."""
    try:
        for out, mode in (("InRelease", "--clearsign"), ("Release.gpg", "--detach-sign")):
            (repo / out).unlink(missing_ok=True)
            _gpg(home, "--yes", "--armor", "--local-user", fingerprint, "--digest-algo", "SHA512",
                 "--output", str(repo / out), mode, str(repo / "Release"),
                 what=f"signing {repo / 'Release'}")  # fmt: skip
    finally:
        _stop_agent(home)


def verify_release(repo: Path, public_key: Path) -> str | None:
    """None when ``repo/InRelease`` carries a good signature by ``public_key`` and matches Release."""
    if shutil.which("gpgv") is None:
        return "gpgv is missing: cannot check the signature"
    with tempfile.TemporaryDirectory(prefix="bundle-gpgv-") as tmp:
        keyring = Path(tmp) / "key.gpg"
        dearmor = subprocess.run(
            ["gpg", "--batch", "--homedir", tmp, "--dearmor", "--output", str(keyring), str(public_key)],
            capture_output=True,
            text=True,
        )
        if dearmor.returncode != 0:
            return f"{public_key} is not a usable public key: {dearmor.stderr.strip()}"
        content = Path(tmp) / "Release.signed"
        result = subprocess.run(
            ["gpgv", "--keyring", str(keyring), "--output", str(content), str(repo / "InRelease")],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            return f"{repo / 'InRelease'}: bad or missing signature: {result.stderr.strip()}"
        if content.read_bytes() != (repo / "Release").read_bytes():
            return f"{repo / 'Release'} differs from the signed content of InRelease"
        _stop_agent(Path(tmp))
    return None
