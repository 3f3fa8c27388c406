"""Accept headers weighed as RFC 9110 says (section 12.5.1)."""

from __future__ import annotations

import pytest

from services.tracker.api.negotiation import negotiate
from services.tracker.render import BadQuery


@pytest.mark.parametrize(("accept", "kind"), [
    (None, "json"), ("", "json"), ("*/*", "json"),
    ("text/html;q=0.1, application/json", "json"),
    ("text/html", "html"), ("TEXT/HTML", "html"), ("text/csv", "csv"),
    ("text/*", "html"), ("text/*, text/html;q=0.2", "csv"),
    ("application/json;q=0, */*", "html"),
    ("text/csv;q=0.5, application/json;q=0.4", "csv"),
    ("text/html;level=1;q=0.3, application/*;q=0.2", "html"),
    ("image/png, text/csv;q=0.001", "csv"),
    ("text/html;q=abc, application/json;q=0.1", "json"),  # an unreadable range counts for none
])
def test_the_highest_q_wins(accept: str | None, kind: str) -> None:
    assert negotiate(accept, None) == kind


@pytest.mark.parametrize("accept", ["image/png", "application/json;q=0", "garbage",
                                    "*/json", "text/html;q=2", "text/*;q=0, application/*;q=0"])
def test_nothing_acceptable_is_a_406(accept: str) -> None:
    with pytest.raises(BadQuery) as raised:
        negotiate(accept, None)
    assert raised.value.status == 406


def test_format_overrides_the_header() -> None:
    assert negotiate("image/png", "csv") == "csv"
