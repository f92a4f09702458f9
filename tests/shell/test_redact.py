"""Secrets kept out of messages and payloads (chatstream._shell.redact), without sockets."""

from __future__ import annotations

import base64

import pytest

from chatstream import ProviderError
from chatstream._shell import redact as _redact


def test_secrets_include_url_and_proxy_user_info_in_plain_and_basic_forms() -> None:
    secrets = _redact.secrets_of(
        "sk-key", {}, "http://user:url-pass@h/v1", ["http://proxy-user:proxy-pass@p:3128"]
    )
    encoded = base64.b64encode(b"proxy-user:proxy-pass").decode()
    text = f"url-pass proxy-user:proxy-pass Proxy-Authorization: {encoded} sk-key"
    redacted = _redact.redact(text, secrets)
    for secret in ("url-pass", "proxy-pass", encoded, "sk-key"):
        assert secret not in redacted


def test_a_short_password_is_redacted_only_with_its_user() -> None:
    secrets = _redact.secrets_of(None, {}, "http://u:p@h/v1")
    assert _redact.redact("u:p in a plain sentence", secrets) == "[REDACTED] in a plain sentence"


def test_payload_keys_are_redacted_as_well_as_values() -> None:
    error = ProviderError("x", payload={"error": {"sk-key": ["sk-key"], "other": 1}})
    _redact.scrub_error(error, ("sk-key",))
    assert error.payload == {"error": {"[REDACTED]": ["[REDACTED]"], "other": 1}}


@pytest.mark.parametrize("cut", range(1, 12))
def test_a_snippet_cut_inside_a_secret_shows_none_of_it(cut: int) -> None:
    secret = "sk-0123456789abcdef"
    text = "x" * (100 - cut) + secret + "tail"
    snippet = _redact.redact_snippet(text, (secret,), 100)
    assert not any(secret[:n] in snippet for n in range(4, len(secret)))
