"""Redis URLs the store refuses or shows: the message names what is wrong and never the password (in the
``user:password@`` part or as a ``password=`` option); nothing connects to build these answers."""

from __future__ import annotations

import pytest

from noa_ai_provider import ConfigError, EnhancedModelRegistry


def refusal(url: str) -> str:
    with pytest.raises(ConfigError) as refused:
        EnhancedModelRegistry(auto_save=False, backend=url)
    return str(refused.value)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("redis+sentinel://:secret@127.0.0.1:1/mymaster/0?bogus=1", "unknown option 'bogus'"),
        ("redis+sentinel://:secret@127.0.0.1:1", "names the service"),
        ("mysql://user:secret@db/0", "unknown store scheme 'mysql'"),
        ("redis://:secret@127.0.0.1:1/0?namespace={x}", "namespace must be"),
        ("redis://:secret@127.0.0.1:1/0?clock=sundial", "clock must be"),
        ("redis://user:secret@127.0.0.1:notaport/0", "backend 'redis://127.0.0.1:notaport/0'"),
    ],
)
def test_a_refused_url_is_named_without_its_password(url: str, says: str) -> None:
    message = refusal(url)
    assert says in message
    assert "secret" not in message


def test_a_password_option_is_not_shown() -> None:
    with EnhancedModelRegistry(auto_save=False, backend="redis://127.0.0.1:1/0?namespace=x&password=secret") as reg:
        assert "secret" not in repr(reg)
        assert "password=***" in repr(reg)
