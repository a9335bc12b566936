"""A base URL the client cannot use is refused when the client is built, naming ``base_url``.

The message says what form is expected and never shows credentials or a
query (they may hold a secret). Nothing here sends a request.
"""

from __future__ import annotations

import pytest

from ameyo_callbacks import AmeyoCallbacksClient

EXPECTED_FORM = "expected http(s)://host[:port][/prefix]"


def build(base_url: str) -> AmeyoCallbacksClient:
    return AmeyoCallbacksClient(base_url, session_id="s")


@pytest.mark.parametrize(
    "base_url",
    [
        pytest.param("http://[::1", id="unclosed-ipv6-bracket"),
        pytest.param("http://amé yo.example", id="space-in-an-idna-host"),
        pytest.param("http://ameyo.example:port", id="port-not-a-number"),
    ],
)
def test_text_that_is_no_url_is_refused_with_the_expected_form(base_url: str) -> None:
    """Text httpx cannot parse as a URL: a ValueError quoting it and showing the expected form."""
    with pytest.raises(ValueError, match="is not a URL") as caught:
        build(base_url)
    message = str(caught.value)
    assert message.startswith(f"base_url {base_url!r}")
    assert EXPECTED_FORM in message
    assert caught.value.__cause__ is None


@pytest.mark.parametrize(
    "base_url",
    [
        pytest.param("ftp://admin:s3cr3t-pw@ameyo.example/files", id="other-scheme"),
        pytest.param("http://admin:s3cr3t-pw@[::1", id="unparsable"),
    ],
)
def test_a_refused_url_is_quoted_without_its_credentials(base_url: str) -> None:
    """A URL refused for its scheme or syntax is quoted with the user:password@ part cut out."""
    with pytest.raises(ValueError, match="base_url") as caught:
        build(base_url)
    message = str(caught.value)
    assert "s3cr3t-pw" not in message
    assert "admin" not in message
    assert EXPECTED_FORM in message


def test_an_ipv6_host_keeps_its_brackets_and_gets_the_default_port() -> None:
    """``http://[::1]`` is a host: normalised with brackets and the spec's port 8888."""
    assert build("http://[::1]/gateway/").base_url == "http://[::1]:8888/gateway"


def test_a_port_out_of_range_is_refused_naming_base_url() -> None:
    """Port 99999 is a ValueError that names base_url and the expected form."""
    with pytest.raises(ValueError, match="base_url") as caught:
        build("http://ameyo.example:99999")
    assert EXPECTED_FORM in str(caught.value)


def test_port_zero_is_refused_not_replaced_by_the_default() -> None:
    """``:0`` is no port a server listens on: refused, not silently turned into 8888."""
    with pytest.raises(ValueError, match="base_url"):
        build("http://ameyo.example:0")


def test_a_space_in_the_host_is_refused_when_the_client_is_built() -> None:
    """A host with a space (a typo) is refused at once, not at the first request."""
    with pytest.raises(ValueError, match="base_url"):
        build("http://ameyo example.com")
