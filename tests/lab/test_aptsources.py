"""Reading the Debian mirror from apt configuration (deb822 and one-line), as the lab does at run time."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.aptsources import debian_sources, debootstrap_mirror, host_sources, parse_deb822, parse_one_line
from lab.errors import LabError

DEB822 = """\
Types: deb
# a comment
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main contrib
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://mirror.example/debian
Suites: bookworm
Components: main

Types: deb
URIs: http://security.example/debian-security
Suites: bookworm-security
Components: main
Enabled: yes

Types: deb
URIs: http://disabled.example/debian
Suites: bookworm
Components: main
Enabled: no
"""


def make_apt_etc(tmp_path: Path, deb822: str = "", one_line: str = "") -> Path:
    (tmp_path / "sources.list.d").mkdir()
    if deb822:
        (tmp_path / "sources.list.d" / "debian.sources").write_text(deb822)
    if one_line:
        (tmp_path / "sources.list").write_text(one_line)
    # Only *.sources and sources.list count; a .list file elsewhere is someone else's business.
    (tmp_path / "sources.list.d" / "vendor.list.disabled").write_text("deb http://vendor.example/ x main\n")
    return tmp_path


def test_parse_deb822_skips_sources_and_disabled_stanzas() -> None:
    sources = parse_deb822(DEB822)
    assert [s.uri for s in sources] == [
        "http://mirror.example/debian",
        "http://security.example/debian-security",
    ]
    assert sources[0].suites == ("bookworm", "bookworm-updates")
    assert sources[0].options == {"signed-by": "/usr/share/keyrings/debian-archive-keyring.gpg"}


def test_parse_one_line_with_options_and_comments() -> None:
    text = (
        "# comment\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://m.example/debian/ bookworm main # tail\n"
        "deb-src x y z\n"
    )
    (source,) = parse_one_line(text)
    assert source.uri == "http://m.example/debian"
    assert source.suites == ("bookworm",)
    assert source.options == {"arch": "amd64", "signed-by": "/k.gpg"}


def test_debian_sources_keep_only_the_release_and_main(tmp_path: Path) -> None:
    apt_etc = make_apt_etc(
        tmp_path,
        DEB822,
        "deb http://other.example/debian trixie main\ndeb http://x.example/ bookworm contrib\n",
    )
    picked = debian_sources("bookworm", apt_etc)
    assert [(s.uri, s.suites, s.components) for s in picked] == [
        ("http://mirror.example/debian", ("bookworm", "bookworm-updates"), ("main",)),
        ("http://security.example/debian-security", ("bookworm-security",), ("main",)),
    ]
    assert debootstrap_mirror("bookworm", apt_etc) == "http://mirror.example/debian"
    assert "deb [signed-by=" in picked[0].one_line()


def test_no_debian_source_is_a_clear_error(tmp_path: Path) -> None:
    apt_etc = make_apt_etc(tmp_path, one_line="deb http://other.example/debian trixie main\n")
    with pytest.raises(LabError, match="no Debian 'bookworm' main source"):
        debian_sources("bookworm", apt_etc)


def test_this_machine_has_a_mirror_configured() -> None:
    # The lab reads it at run time; nothing in the repository names a mirror host.
    assert host_sources(), "no apt sources on this machine"
