"""The texts the backend writes for people (shared/domain/texts): every language file has every key with the same
placeholders, every key the code names exists, and a person's `locale` chooses the language (Indonesian by default).
Adding a language is adding one file: these tests then check it like the others."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest

from shared.domain import texts
from shared.domain.billing_history import RECEIPT_LABELS
from shared.domain.chat import NewMessage, message_document
from shared.domain.documents import MessageDocument
from shared.domain.safety import hotline_card, hotline_message
from shared.domain.session import time_left, time_left_text

ROOT = Path(__file__).resolve().parents[2]
# A text key as code names it: a string literal starting with one of the catalogues' prefixes.
_KEY_IN_CODE = re.compile(r"""["']((?:push|system|receipt)\.[a-z_]+(?:\.[a-z_]+)*)["']""")
_PREFIXED_IN_CODE = re.compile(r"""f["']((?:push|system|receipt)\.[a-z_.]*)\{""")


def _every_key() -> set[str]:
    return {key for catalogue in texts.catalogues().values() for key in catalogue}


def test_there_are_indonesian_and_english_and_indonesian_is_the_default() -> None:
    assert texts.locales()[0] == texts.DEFAULT_LOCALE == "id"
    assert {"id", "en"} <= set(texts.locales())


@pytest.mark.parametrize("locale", sorted(texts.catalogues()))
def test_each_language_has_every_key_some_language_has(locale: str) -> None:
    missing = _every_key() - set(texts.catalogues()[locale])
    assert not missing, f"{locale}.json misses {sorted(missing)}"


@pytest.mark.parametrize("locale", sorted(set(texts.catalogues()) - {texts.DEFAULT_LOCALE}))
def test_each_text_takes_the_same_placeholders_in_every_language(locale: str) -> None:
    default = texts.catalogues()[texts.DEFAULT_LOCALE]
    differing = {
        key: (sorted(texts.placeholders(default[key])), sorted(texts.placeholders(text)))
        for key, text in texts.catalogues()[locale].items()
        if key in default and texts.placeholders(text) != texts.placeholders(default[key])
    }
    assert not differing, f"{locale}.json's placeholders differ from id.json's: {differing}"


@pytest.mark.parametrize("locale", sorted(texts.catalogues()))
def test_no_text_is_empty_and_every_file_is_flat_text(locale: str) -> None:
    for key, text in texts.catalogues()[locale].items():
        assert isinstance(text, str) and text.strip(), (locale, key)


def _code_files() -> list[Path]:
    return [path for folder in ("shared", "functions") for path in (ROOT / folder).rglob("*.py")]


def test_every_key_the_code_names_is_in_the_files() -> None:
    named: dict[str, Path] = {}
    for path in _code_files():
        for key in _KEY_IN_CODE.findall(path.read_text(encoding="utf-8")):
            named.setdefault(key, path)
    # A push names the pair `<key>.title`, `<key>.body` by its stem.
    missing = {
        key: str(path.relative_to(ROOT))
        for key, path in named.items()
        if key not in _every_key() and not {f"{key}.title", f"{key}.body"} <= _every_key()
    }
    assert not missing, f"named in code but in no text file: {missing}"
    assert "push.matched" in named and "system.hotline_card" in named, "the scan finds the code's keys"


def test_every_key_built_from_a_prefix_has_its_texts() -> None:
    prefixes = {prefix for path in _code_files() for prefix in _PREFIXED_IN_CODE.findall(path.read_text("utf-8"))}
    assert "receipt.item." in prefixes and "receipt." in prefixes
    assert all(key in _every_key() for key in ("receipt.item.session", "receipt.item.extension"))
    assert all(f"receipt.{label}" in _every_key() for label in RECEIPT_LABELS)


def test_a_text_is_written_in_the_language_asked_with_its_placeholders_filled() -> None:
    assert texts.text("push.matched.body", "id", name="Anisa") == "Anisa siap mendengarkan"
    assert texts.text("push.matched.body", "en", name="Anisa") == "Anisa is ready to listen"
    assert texts.by_locale("push.extension_request.body", {"minutes": 10}) == {
        "id": "+10 menit",
        "en": "+10 minutes",
    }


def test_a_locale_we_do_not_have_reads_the_default_language() -> None:
    assert texts.locale_or_default(None) == "id"
    assert texts.locale_or_default("fr") == "id"
    assert texts.text("push.no_mitra.title", "fr") == texts.text("push.no_mitra.title", "id")
    assert not texts.is_locale("fr") and texts.is_locale("en")


def test_a_missing_key_or_placeholder_is_an_error_not_a_blank() -> None:
    with pytest.raises(KeyError):
        texts.text("push.nothing_like_this.title", "id")
    with pytest.raises(KeyError):
        texts.text("push.matched.body", "en")


def test_the_time_left_warning_in_both_languages() -> None:
    assert time_left(timedelta(minutes=5)) == ("system.time_left_minutes", {"minutes": "5"})
    assert time_left_text(timedelta(minutes=5)) == "Sesi tinggal 5 menit lagi."
    assert time_left_text(timedelta(minutes=5), "en") == "5 minutes left in this session."
    assert time_left_text(timedelta(seconds=40), "en") == "40 seconds left in this session."


def test_a_system_message_document_carries_its_text_in_every_language() -> None:
    card = hotline_message("m1", "s1", "119 ext 8")

    document = message_document(card).data

    assert document["text"] == hotline_card("119 ext 8"), "text stays the default language's, as before"
    assert (document["text_key"], document["params"]) == ("system.hotline_card", {"hotline_numbers": "119 ext 8"})
    assert document["text_by_locale"]["id"] == document["text"]
    assert (
        document["text_by_locale"]["en"].startswith("You are not alone")
        and "119 ext 8" in document["text_by_locale"]["en"]
    )
    MessageDocument.model_validate(document)  # the contract's model takes it


def test_a_persons_message_document_has_no_text_key() -> None:
    message = NewMessage("m2", "s1", "text", "client", "uid-c", "halo")
    assert "text_key" not in message_document(message).data and "text_by_locale" not in message_document(message).data
