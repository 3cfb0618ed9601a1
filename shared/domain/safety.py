"""Crisis signals in a client's message: undo the ways people type, then look for the maintained list of risk
expressions (Indonesian and English: suicidal ideation, self-harm, acute distress); and what a signal raises: an
alert in the control center, a push to the admins on duty, the hotline card in the client's session.

The list and its matching rules are in `safety_phrases.txt`, beside this module; the normalisation rules (slang,
leetspeak, negation) are here. Nothing here touches a message's storage: a hit only tells the caller which category
and which list entry matched, never the message's own words. The rules PostgreSQL enforces (a message is flagged
once, an alert acknowledged once) are enforced by the safety repository (shared/adapters/postgres/safety.py).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from functools import cache
from pathlib import Path

from shared.domain import texts
from shared.domain.accounts import alias
from shared.domain.chat import NewMessage
from shared.domain.documents import AlertDocument, alert_path
from shared.domain.events import DocumentWrite, TopicMessage, ts
from shared.domain.notify import push

PHRASES_FILE = Path(__file__).with_name("safety_phrases.txt")


class Category(StrEnum):
    SUICIDAL_IDEATION = "suicidal_ideation"
    SELF_HARM = "self_harm"
    ACUTE_DISTRESS = "acute_distress"


# When a message matches several phrases, the alert names the most urgent category.
_URGENCY = (Category.SUICIDAL_IDEATION, Category.SELF_HARM, Category.ACUTE_DISTRESS)
_NOT_A_SIGNAL = "not_a_signal"
_CLAUSE_FINAL = "$"


@dataclass(frozen=True)
class Phrase:
    words: tuple[str, ...]
    category: Category
    # Counts only when it ends its clause, so "ga kuat lagi" flags and "ga kuat lagi nahan ketawa" does not.
    clause_final: bool
    entry: str


@dataclass(frozen=True)
class Signal:
    category: Category
    # The list entry that matched (e.g. "pengen mati"), never the message's own words.
    phrase: str


# -- normalisation ---------------------------------------------------------------------------------------------------

# Only inside a word that has letters: "m4t1" is "mati", "119" stays a number.
_LEET = str.maketrans("01345789@$!|", "oieastbgasii")
_WORDISH = re.compile(r"[a-z0-9@$!|]+")
_CLAUSE_BREAK = re.compile(r"[.!?;,:\n\r()\[\]{}\"]+")
# A trailing-off "..." is a pause inside one thought ("pengen... mati aja"), not the end of a clause.
_PAUSE = re.compile(r"\.{2,}|…")
_WORD = re.compile(r"[a-z]+(?:-[a-z]+)*")
_REPEATS = re.compile(r"([a-z])\1+")
_CONTRACTIONS = (
    (re.compile(r"\bcan'?t\b"), "can not"),
    (re.compile(r"\bwon'?t\b"), "will not"),
    (re.compile(r"n't\b"), " not"),
)

# What people type (right), read as (left). Keys and variants are collapsed like every word ("nggak" is "ngak").
_SLANG_VARIANTS = {
    "ingin": "pengen pgn pingin pengin kepengen kepingin pgen pngen",
    "tidak": "ga gak nggak ngga enggak engga gk g gx ndak nda kagak tdk tak gag",
    "tidak tahu": "gatau gatahu gktau gatw gataw",
    "tahu": "tau tw",
    "bunuh diri": "bundir bunuhdiri",
    "bunuh": "bnh",
    "diri": "dri diriku dirimu dirinya",
    "hidup": "hdp idup hidupku hidupmu hidupnya",
    "lagi": "lg",
    "saja": "aja aj",
    "banget": "bgt bngt",
    "sudah": "udah udh sdh dah",
    "cepat": "cepet cpt",
    "tangan": "tgn",
    "mau": "mo",
    "mati": "mampus modar",
    "menyakiti": "nyakitin nyakiti menyakitin sakitin sakiti",
    "melukai": "ngelukain lukain lukai ngelukai",
    "sayat": "nyayat menyayat sayatin nyayatin nyilet menyilet silet",
    "mengakhiri": "ngakhirin ngakhiri akhirin mengakhirin",
    "menghilang": "ngilang ilang hilang",
    "aku": "gw gue gua aq sy ak",
    "want to": "wanna",
    "going to": "gonna",
    "can not": "cannot",
    "do not": "dont",
    "did not": "didnt",
    "kill myself": "kms",
    "kill": "unalive",
    "suicide": "sewerslide",
    "self harm": "selfharm",
}
# Hyphenated words that must stay whole: "mati-matian" (all-out) is not "mati".
_WHOLE = {"mati-matian": "matimatian"}


def _word_set(listed: str) -> frozenset[str]:
    return frozenset(listed.split())


# May sit between a phrase's words: "ingin cepat mati", "pengen banget mati", "want to just die".
_SOFTENERS = _word_set("saja sih deh nih dong banget beneran rasanya cepat segera lagi just really so")
# May follow a clause-final phrase: "aku udah ga kuat lagi ya tuhan", "cut myself again tonight".
_TRAILERS = _SOFTENERS | _word_set(
    """ya yah kok lah kan aku sudah beneran serius jujur hiks huhu tuhan allah astaga sekarang hari ini malam
       again anymore tonight today now please seriously honestly"""
)
_NEGATIONS = _word_set("tidak bukan not never")
# A negation reaches a phrase across these: "tidak pernah kepikiran untuk bunuh diri", "not going to kill myself".
_NEGATION_BRIDGE = _SOFTENERS | _word_set(
    """pernah akan mau ingin berniat niat kepikiran pikir berpikir mikir untuk sampai
       going to want would will ever plan planning thinking of about am be i aku"""
)
_NEGATION_REACH = 4
_MASK = ""


def _collapse(word: str) -> str:
    return _REPEATS.sub(r"\1", word)


_SLANG = {
    _collapse(variant): tuple(_collapse(word) for word in canonical.split())
    for canonical, variants in _SLANG_VARIANTS.items()
    for variant in variants.split()
}


def _undo_leet(match: re.Match[str]) -> str:
    run = match.group(0)
    if not any(char.isalpha() for char in run):
        return run
    # "!" and "|" stand for "i" only inside a word; at its edges they are punctuation ("mati!!", "kill myself!").
    start = len(run) - len(run.lstrip("!|"))
    end = len(run.rstrip("!|"))
    return run[:start] + run[start:end].translate(_LEET) + run[end:]


def _plain(text: str) -> str:
    """Lowercase, without accents, invisible characters or contractions; leetspeak undone."""
    decomposed = unicodedata.normalize("NFKD", text)
    kept = "".join(
        char for char in decomposed if not unicodedata.combining(char) and unicodedata.category(char) != "Cf"
    )
    lowered = kept.casefold().replace("\u2019", "'").replace("\u2018", "'")
    for pattern, replacement in _CONTRACTIONS:
        lowered = pattern.sub(replacement, lowered)
    return _WORDISH.sub(_undo_leet, lowered)


def _words(clause: str) -> Iterator[str]:
    for raw in _WORD.findall(clause):
        for word in [_WHOLE[raw]] if raw in _WHOLE else raw.split("-"):
            canonical = _collapse(word)
            yield from _SLANG.get(canonical, (canonical,))


def normalise(text: str) -> list[tuple[str, ...]]:
    """The message as clauses of canonical words: "Aku udah GAK KUAT lagiii!" → [("aku", "sudah", "tidak", "kuat",
    "lagi")]."""
    clauses = (tuple(_words(clause)) for clause in _CLAUSE_BREAK.split(_PAUSE.sub(" ", _plain(text))))
    return [clause for clause in clauses if clause]


# -- the list --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PhraseList:
    by_first_word: dict[str, tuple[Phrase, ...]]
    masks: tuple[tuple[str, ...], ...]

    @property
    def phrases(self) -> list[Phrase]:
        return [phrase for group in self.by_first_word.values() for phrase in group]


def parse_phrases(lines: Iterable[str]) -> PhraseList:
    """`[category]` headers, one phrase per line, `#` comments; a trailing ` $` marks a clause-final phrase."""
    section: str | None = None
    phrases: dict[tuple[str, ...], Phrase] = {}
    masks: list[tuple[str, ...]] = []
    for number, raw in enumerate(lines, start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            if section != _NOT_A_SIGNAL and section not in set(Category):
                raise ValueError(f"line {number}: unknown category [{section}]")
            continue
        if section is None:
            raise ValueError(f"line {number}: a phrase before any [category]")
        clause_final = line.endswith(f" {_CLAUSE_FINAL}")
        entry = line.removesuffix(_CLAUSE_FINAL).strip()
        words = tuple(word for clause in normalise(entry) for word in clause)
        if not words:
            raise ValueError(f"line {number}: {entry!r} has no words")
        if section == _NOT_A_SIGNAL:
            masks.append(words)
        else:
            phrases.setdefault(words, Phrase(words, Category(section), clause_final, entry))
    grouped: dict[str, list[Phrase]] = {}
    for phrase in phrases.values():
        grouped.setdefault(phrase.words[0], []).append(phrase)
    return PhraseList({word: tuple(group) for word, group in grouped.items()}, tuple(masks))


@cache
def default_phrases() -> PhraseList:
    return parse_phrases(PHRASES_FILE.read_text(encoding="utf-8").splitlines())


# -- matching --------------------------------------------------------------------------------------------------------


def detect(text: str, phrases: PhraseList | None = None) -> Signal | None:
    """The most urgent signal in the message, or None."""
    listing = phrases or default_phrases()
    found = [signal for clause in normalise(text) for signal in _signals(_masked(clause, listing.masks), listing)]
    if not found:
        return None
    return min(found, key=lambda signal: _URGENCY.index(signal.category))


def _masked(clause: tuple[str, ...], masks: tuple[tuple[str, ...], ...]) -> list[str]:
    words = list(clause)
    for mask in masks:
        for start in range(len(words) - len(mask) + 1):
            if tuple(words[start : start + len(mask)]) == mask:
                words[start : start + len(mask)] = [_MASK] * len(mask)
    return words


def _signals(words: list[str], listing: PhraseList) -> Iterator[Signal]:
    for start, word in enumerate(words):
        for phrase in listing.by_first_word.get(word, ()):
            end = _match_end(words, start, phrase.words)
            if end is None or _negated(words, start):
                continue
            if phrase.clause_final and not all(rest in _TRAILERS for rest in words[end:]):
                continue
            yield Signal(phrase.category, phrase.entry)


def _match_end(words: list[str], start: int, wanted: tuple[str, ...]) -> int | None:
    """Where the phrase ends if it starts at `start`, softeners allowed between its words."""
    position = start
    for index, word in enumerate(wanted):
        if index > 0:
            while position < len(words) and words[position] != word and words[position] in _SOFTENERS:
                position += 1
        if position >= len(words) or words[position] != word:
            return None
        position += 1
    return position


def _negated(words: list[str], start: int) -> bool:
    for position in range(start - 1, max(-1, start - 1 - _NEGATION_REACH), -1):
        if words[position] in _NEGATIONS:
            return True
        if words[position] not in _NEGATION_BRIDGE:
            return False
    return False


# -- checking a message ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SentMessage:
    sender_role: str
    # None once erased (a deletion or retention).
    text: str | None


def needs_check(message: SentMessage) -> bool:
    """A client's words are checked, while they are kept; a mitra's are not (asking "do you think of ending your
    life?" is their work)."""
    return message.sender_role == "client" and message.text is not None


@dataclass(frozen=True)
class FlaggedSession:
    """The session of a flagged message, its row locked until the flag is raised."""

    client_id: str
    alias_number: int


@dataclass(frozen=True)
class Flag:
    """A crisis signal raised on a message: once per message, however often it is checked
    (`SafetyRepository.flag_once`)."""

    alert_id: str
    created_at: datetime


@dataclass(frozen=True)
class Alert:
    """A flag as the control center lists it: which session and client, the category that matched, and who is on
    it; never the message's words (an admin reads the transcript, audited, when needed)."""

    alert_id: str
    session_id: str
    # None for a flag of a report (then `report_id` names it).
    message_id: str | None
    client_id: str
    alias_number: int
    category: Category
    created_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    # Kept in PostgreSQL and the audit log only, never in the alert document.
    note: str | None
    report_id: str | None = None

    @property
    def client_alias(self) -> str:
        return alias(self.alias_number)


# -- what the client sees --------------------------------------------------------------------------------------------


def hotline_card(hotline_numbers: str, locale: str = texts.DEFAULT_LOCALE) -> str:
    """The system message shown in the client's session after a signal: warm, short, with the numbers to call
    (`system.hotline_card` in shared/domain/texts)."""
    return texts.text("system.hotline_card", locale, hotline_numbers=hotline_numbers)


def hotline_message(message_id: str, session_id: str, hotline_numbers: str) -> NewMessage:
    """The hotline card as a system message of the session. Shown once per session
    (`SafetyRepository.hotline_shown`): repeating it after every message would drown the conversation."""
    return NewMessage(
        message_id=message_id,
        session_id=session_id,
        kind="system",
        sender_role="system",
        sender_uid=None,
        text=hotline_card(hotline_numbers),
        text_key="system.hotline_card",
        params={"hotline_numbers": hotline_numbers},
    )


# -- what the control center sees ------------------------------------------------------------------------------------


def alert_raised(
    flag: Flag,
    *,
    session_id: str,
    message_id: str | None,
    client_alias: str,
    category: Category,
    report_id: str | None = None,
) -> DocumentWrite:
    """The alert's document in `admin_alerts`, which the control center listens to (admins only, firestore.rules):
    ids, the client's alias and the category, never the message's words. A flag of a message names the message; a
    flag of a report of a crisis (shared/services/reports.py) names the report instead."""
    return DocumentWrite.at(
        alert_path(flag.alert_id),
        AlertDocument(
            alert_id=flag.alert_id,
            session_id=session_id,
            client_alias=client_alias,
            category=category.value,
            status="open",
            created_at=ts(flag.created_at),
            # A flag names its message, or else its report.
            **({"message_id": message_id} if report_id is None else {"report_id": report_id}),
        ),
        merge=False,
    )


@dataclass(frozen=True)
class AlertRecipients:
    """Who a crisis alert is pushed to, and whether that is an escalation."""

    uids: list[str]
    # Nobody was on duty, so every admin is pushed (and the signal is logged at ERROR for the on-call page).
    escalated: bool


def alert_recipients(*, on_duty: list[str], every_admin: list[str]) -> AlertRecipients:
    """The admins on duty (`admins.on_duty`, switched in the control center) are pushed. A crisis signal must not
    wait unseen: when no admin is on duty, it is escalated to every admin."""
    if on_duty:
        return AlertRecipients(on_duty, escalated=False)
    return AlertRecipients(every_admin, escalated=True)


def alert_pushes(alert_id: str, *, session_id: str, client_alias: str, to: AlertRecipients) -> list[TopicMessage]:
    """One push to the alert's recipients (none when there is no admin at all: the control center lists it)."""
    if not to.uids:
        return []
    data = {"type": "safety_alert", "alert_id": alert_id, "session_id": session_id}
    text_key = "push.safety_alert"
    if to.escalated:
        data["escalated"] = "true"
        text_key = "push.safety_alert_escalated"
    return [
        push(
            dedup_key=f"safety:{alert_id}",
            recipients=to.uids,
            data=data,
            text_key=text_key,
            params={"alias": client_alias},
        )
    ]


def alert_acknowledged(alert_id: str, *, by: str, at: datetime) -> DocumentWrite:
    """Someone is on it. Only the first acknowledgement counts (`SafetyRepository.acknowledge_if_open`); its note
    stays in PostgreSQL, since it may say more about the client than the alert document should."""
    return DocumentWrite.at(
        alert_path(alert_id),
        AlertDocument(alert_id=alert_id, status="acknowledged", acknowledged_by=by, acknowledged_at=ts(at)),
    )
