"""Every text the backend itself writes for a person (push titles and bodies, a session's system messages, a
receipt's labels), in each language a person may choose (`locale`).

One JSON file per language beside this module (`id.json`, `en.json`), each mapping the same keys to a text with
`{placeholders}`: adding a language is adding one file (tests/unit/test_texts.py fails when a file misses a key
another has, when their placeholders differ, or when code names a key no file has). Indonesian is the default: a
person who never chose, or chose a language we no longer have, reads Indonesian.

Code builds a text through `text(key, locale, **params)`; a text every reader sees whatever their language (a
session's system message) is stored in all languages at once (`by_locale`) beside its key and params.
"""

from __future__ import annotations

import json
import string
from collections.abc import Mapping
from functools import cache
from pathlib import Path

DEFAULT_LOCALE = "id"
TEXTS_DIR = Path(__file__).parent


@cache
def catalogues() -> dict[str, dict[str, str]]:
    """Each language's texts, by locale (the file's name)."""
    return {path.stem: json.loads(path.read_text(encoding="utf-8")) for path in sorted(TEXTS_DIR.glob("*.json"))}


def locales() -> tuple[str, ...]:
    """The languages a person may choose, the default first."""
    return (DEFAULT_LOCALE, *sorted(locale for locale in catalogues() if locale != DEFAULT_LOCALE))


def is_locale(value: str) -> bool:
    return value in catalogues()


def locale_or_default(value: str | None) -> str:
    """The language a text is written in for someone who chose `value` (None: never chose)."""
    return value if value is not None and is_locale(value) else DEFAULT_LOCALE


def placeholders(template: str) -> frozenset[str]:
    """The `{names}` a text takes."""
    return frozenset(name for _, name, _, _ in string.Formatter().parse(template) if name)


def text(key: str, locale: str | None, **params: object) -> str:
    """The text `key` in the language `locale` (the default language for an unknown one), its placeholders filled
    from `params`. Raises KeyError for a key no language has, or a placeholder not given."""
    template = catalogues()[locale_or_default(locale)][key]
    return template.format_map({name: str(value) for name, value in params.items()})


def by_locale(key: str, params: Mapping[str, object] | None = None) -> dict[str, str]:
    """The text `key` in every language, by locale."""
    return {locale: text(key, locale, **(params or {})) for locale in locales()}
