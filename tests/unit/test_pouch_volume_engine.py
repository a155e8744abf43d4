"""pouch_volume's engine without a daemon: pouchd's size syntax."""

from __future__ import annotations

import pytest
from pouch_module_utils import load

engine = load("pouch_volume_engine")


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("1024", 1024),
        ("10m", 10 << 20),
        ("10M", 10 << 20),
        ("1g", 1 << 30),
        ("1.5g", 3 << 29),
        ("2kb", 2048),
        ("1GiB", 1 << 30),
    ],
)
def test_parse_size(text: str, size: int) -> None:
    assert engine.parse_size(text) == size


@pytest.mark.parametrize("text", ["lots", "", "10x", "-1g", "g"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(engine.VolumeInputError, match="is not a size"):
        engine.parse_size(text)
