"""The Debian mirror(s) this machine already uses, read from its apt configuration at run time.

No mirror host name is committed anywhere: the base image and the lab's apt repository come from
whatever ``/etc/apt/sources.list.d/*.sources`` and ``/etc/apt/sources.list`` point at.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from lab.errors import LabError

APT_ETC = Path("/etc/apt")


@dataclass(frozen=True)
class AptSource:
    uri: str
    suites: tuple[str, ...]
    components: tuple[str, ...]
    options: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    def one_line(self) -> str:
        """The source as sources.list lines (one per suite)."""
        opts = " ".join(f"{k}={v}" for k, v in sorted(self.options.items()))
        prefix = f"deb [{opts}] " if opts else "deb "
        return "".join(f"{prefix}{self.uri} {s} {' '.join(self.components)}\n" for s in self.suites)


def host_codename(os_release: Path = Path("/etc/os-release")) -> str:
    for line in os_release.read_text().splitlines():
        if line.startswith("VERSION_CODENAME="):
            return line.split("=", 1)[1].strip().strip('"')
    raise LabError(f"no VERSION_CODENAME in {os_release}: cannot tell which Debian release to use")


def parse_deb822(text: str) -> list[AptSource]:
    sources = []
    for stanza in text.split("\n\n"):
        fields: dict[str, str] = {}
        key = ""
        for raw in stanza.splitlines():
            if raw.startswith("#") or not raw.strip():
                continue
            if raw[0] in " \t" and key:  # continuation line
                fields[key] += " " + raw.strip()
                continue
            key, _, value = raw.partition(":")
            key = key.strip().lower()
            fields[key] = value.strip()
        if not fields or "deb" not in fields.get("types", "").split():
            continue
        if fields.get("enabled", "yes").lower() == "no":
            continue
        options = {"signed-by": fields["signed-by"]} if "signed-by" in fields else {}
        for uri in fields.get("uris", "").split():
            sources.append(
                AptSource(
                    uri.rstrip("/"),
                    tuple(fields.get("suites", "").split()),
                    tuple(fields.get("components", "").split()),
                    options,
                )
            )
    return sources


def parse_one_line(text: str) -> list[AptSource]:
    sources = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line.startswith("deb "):
            continue
        rest = line[4:].strip()
        options: dict[str, str] = {}
        if rest.startswith("["):
            opts, _, rest = rest[1:].partition("]")
            for opt in opts.split():
                k, _, v = opt.partition("=")
                options[k] = v
        parts = rest.split()
        if len(parts) >= 2:
            sources.append(AptSource(parts[0].rstrip("/"), (parts[1],), tuple(parts[2:]), options))
    return sources


def host_sources(apt_etc: Path = APT_ETC) -> list[AptSource]:
    sources: list[AptSource] = []
    one_line = apt_etc / "sources.list"
    if one_line.exists():
        sources += parse_one_line(one_line.read_text())
    for path in sorted((apt_etc / "sources.list.d").glob("*.sources")):
        sources += parse_deb822(path.read_text())
    return sources


def debian_sources(codename: str, apt_etc: Path = APT_ETC) -> list[AptSource]:
    """The host's sources for this Debian release (main suite, -updates, -security), main component."""
    picked = []
    for src in host_sources(apt_etc):
        suites = tuple(s for s in src.suites if s == codename or s.startswith(f"{codename}-"))
        if suites and "main" in src.components:
            picked.append(AptSource(src.uri, suites, ("main",), src.options))
    if not any(codename in s.suites for s in picked):
        raise LabError(
            f"no Debian '{codename}' main source in {apt_etc}/sources.list or "
            f"{apt_etc}/sources.list.d/*.sources: the lab needs the host's Debian mirror"
        )
    return picked


def debootstrap_mirror(codename: str, apt_etc: Path = APT_ETC) -> str:
    for src in debian_sources(codename, apt_etc):
        if codename in src.suites:
            return src.uri
    raise AssertionError("unreachable: debian_sources guarantees a main suite")
