"""The redactor (configured secrets and secret-shaped text) and the JSON rules of event
payloads (check at the door, repair elsewhere)."""

from __future__ import annotations

import enum
import json
import math

import pytest
from pydantic import SecretStr

from app.core import jsonsafe
from app.core.redaction import (
    MEMO_ENTRIES,
    MEMO_MAX_CHARS,
    REDACTED,
    REDACTOR,
    Redactor,
    redact,
    remember_secrets,
)


def test_configured_secrets_and_shapes_are_masked() -> None:
    """A configured key anywhere in text or JSON, and ?token=/Bearer/sk- shapes, become ***."""
    remember_secrets([SecretStr("configured-key-0123456789"), None])
    text = "GET /v1/events/ws?token=anything&type=x key configured-key-0123456789 Bearer abcdefgh"
    out = redact(text)
    assert "configured-key-0123456789" not in out and "anything" not in out
    assert "?token=***&type=x" in out and "Bearer ***" in out
    assert Redactor().value({"k": ["sk-abcdefghijkl", 3]}) == {"k": [REDACTED, 3]}


def test_short_configured_values_are_not_masked_by_value() -> None:
    """A value shorter than 8 characters would mask ordinary words: it is not learnt."""
    redactor = Redactor()
    redactor.add(["abc"])
    assert redactor.text("abc abc") == "abc abc"


def test_a_secret_learnt_later_is_masked_in_text_seen_before() -> None:
    """Short strings are masked once and remembered; learning a secret forgets the
    answers given without it."""
    redactor = Redactor()
    secret = "learnt-later-0123456789"
    assert redactor.text(secret) == secret  # remembered as harmless
    redactor.add([secret])
    assert redactor.text(secret) == REDACTED
    assert redactor.text(f"a {secret} b") == f"a {REDACTED} b"


def test_the_memo_stays_bounded_and_long_text_is_masked_alike() -> None:
    redactor = Redactor()
    redactor.add(["configured-key-0123456789"])
    for n in range(MEMO_ENTRIES * 3):
        assert redactor.text(f"word {n}") == f"word {n}"
    assert 0 < len(redactor.memo) <= MEMO_ENTRIES
    long_text = "x" * MEMO_MAX_CHARS + " configured-key-0123456789 Bearer abcdefgh"
    assert redactor.text(long_text) == "x" * MEMO_MAX_CHARS + f" {REDACTED} Bearer {REDACTED}"
    assert long_text not in redactor.memo


def test_payload_repair_answers_from_the_memo_yet_repairs_and_masks_as_before() -> None:
    """Payload repair takes a string the redactor masked before straight from its memo: a
    lone surrogate the logger's path masked first is still repaired (the memo keeps ASCII
    text only), and a secret learnt after a string was remembered is masked the next time."""
    broken = "x\ud800y"
    assert REDACTOR.text(broken) == broken  # how log lines are masked: no repair there
    assert jsonsafe.repair({"k": broken}) == {"k": "x\ufffdy"}
    secret = "learnt-after-a-payload-0123456789"
    assert jsonsafe.repair({secret: secret}) == {secret: secret}
    remember_secrets([SecretStr(secret)])
    assert jsonsafe.repair({secret: [secret]}) == {REDACTED: [REDACTED]}


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ({"k": "\ud800"}, "lone surrogate"),
        ({"\udfff": 1}, "lone surrogate"),
        ({"k": math.nan}, "finite"),
        ({"k": [math.inf]}, "finite"),
        ({"k": {"k": {}}}, None),
    ],
)
def test_check_refuses_what_cannot_be_served_back(value: object, why: str | None) -> None:
    if why is None:
        jsonsafe.check(value)
        return
    with pytest.raises(jsonsafe.PayloadRefused, match=why):
        jsonsafe.check(value)


def test_depth_limit_and_big_integers() -> None:
    """MAX_DEPTH levels pass, one more is refused; integers of any size are kept."""
    deep: object = {}
    for _ in range(jsonsafe.MAX_DEPTH - 1):
        deep = {"k": deep}
    jsonsafe.check(deep)
    with pytest.raises(jsonsafe.PayloadRefused, match="deeper"):
        jsonsafe.check({"k": deep})
    jsonsafe.check({"big": 2**200})


def test_normalise_repairs_and_truncates() -> None:
    """Surrogates → U+FFFD, NaN → null, too deep → marker, other objects → text; too large
    → a truncated preview; the result always encodes as strict JSON."""
    deep: object = "x"
    for _ in range(40):
        deep = [deep]
    out = jsonsafe.normalise({"s": "a\ud800", "n": math.nan, "d": deep, "o": object}, 10_000)
    assert out["s"] == "a\ufffd" and out["n"] is None and isinstance(out["o"], str)
    json.dumps(out, allow_nan=False).encode("utf-8")
    big = jsonsafe.normalise({"x": "y" * 1000}, 256)
    assert big["truncated"] is True and big["original_bytes"] > 256


def test_repair_treats_subclasses_keys_and_nesting_as_the_plain_types() -> None:
    """Plain str/int/float/dict take a shorter path than the rest; both end the same:
    enum members kept or masked like their values, tuples as lists, keys as text (a
    surrogate in a key repaired, a secret in one masked), dicts cut at the same depth as
    lists, ASCII and non-ASCII text alike."""

    class Colour(enum.StrEnum):
        RED = "sk-abcdefghijkl"

    class Level(enum.IntEnum):
        HIGH = 3

    deep_dict: object = "x"
    deep_list: object = "x"
    for _ in range(40):
        deep_dict, deep_list = {"k": deep_dict}, [deep_list]
    out = jsonsafe.repair(
        {
            "enum": Colour.RED,
            "level": Level.HIGH,
            "tuple": ("a", 1.5, math.inf),
            7: "seven",
            "k\ud800": "\u00e9t\u00e9 \ud800 sk-abcdefghijkl",
            "sk-abcdefghijkl": True,
            "dict": deep_dict,
            "list": deep_list,
        }
    )
    assert out["enum"] == REDACTED and out["level"] == 3
    assert out["tuple"] == ["a", 1.5, None]
    assert out["7"] == "seven"
    assert out["k\ufffd"] == f"\u00e9t\u00e9 \ufffd {REDACTED}"
    assert out[REDACTED] is True

    def depth_of_marker(value: object) -> int:
        depth = 0
        while value != jsonsafe.TOO_DEEP:
            value = value["k"] if isinstance(value, dict) else value[0]  # type: ignore[index]
            depth += 1
        return depth

    assert depth_of_marker(out["dict"]) == depth_of_marker(out["list"]) == jsonsafe.MAX_DEPTH - 1
    json.dumps(out, allow_nan=False).encode("utf-8")


def test_decode_stored_never_raises() -> None:
    """Whatever a stored payload column holds, it decodes to a dict."""
    assert jsonsafe.decode_stored('{"k": "\\ud800"}') == {"k": "\ufffd"}
    assert jsonsafe.decode_stored("[" * 5000 + "]" * 5000)["unreadable"] is True
    assert jsonsafe.decode_stored("[1]") == {"value": [1]}
    assert jsonsafe.decode_stored(None) == {}
