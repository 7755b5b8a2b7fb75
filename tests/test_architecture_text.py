"""An architecture's text form, written and read in one place."""

from __future__ import annotations

import pytest

from models import (
    DEFAULT_SPACE,
    InvalidArchitecture,
    format_architecture,
    get_space,
    parse_architecture,
)


def test_text_round_trips_every_sampled_architecture() -> None:
    for arch in get_space(DEFAULT_SPACE).sample(20, 0):
        text = format_architecture(arch)
        assert text == ",".join(str(int(i)) for i in arch)
        assert parse_architecture(text) == [int(i) for i in arch]


@pytest.mark.parametrize("text", ["", "0,,1", "0,1,two", "0;1"])
def test_bad_text_says_what_an_architecture_looks_like(text: str) -> None:
    with pytest.raises(InvalidArchitecture, match="comma-separated candidate indices"):
        parse_architecture(text)
