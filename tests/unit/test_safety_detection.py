"""Crisis-signal detection as pure rules: what must flag (spellings, slang, repeated letters, leetspeak, both
languages), what must not (ordinary sentences), and the borderline rules written down in safety_phrases.txt."""

from __future__ import annotations

import pytest

from shared.domain.safety import Category, default_phrases, detect, hotline_card, normalise, parse_phrases

IDEATION, SELF_HARM, DISTRESS = Category.SUICIDAL_IDEATION, Category.SELF_HARM, Category.ACUTE_DISTRESS

TRUE_POSITIVES = [
    # Indonesian, as written
    ("aku pengen mati", IDEATION),
    ("rasanya aku ingin mati saja", IDEATION),
    ("aku mau mati aja", IDEATION),
    ("aku udah ga kuat lagi", DISTRESS),
    ("aku kepikiran bunuh diri", IDEATION),
    ("aku ingin mengakhiri hidup", IDEATION),
    ("pengen menyakiti diri sendiri", SELF_HARM),
    ("kemarin aku sayat tangan lagi", SELF_HARM),
    ("lebih baik mati daripada begini terus", IDEATION),
    ("hidup ga ada gunanya", IDEATION),
    ("aku ga pengen hidup lagi", IDEATION),
    ("pengen tidur selamanya dan ga bangun lagi", IDEATION),
    ("dia bilang mau minum racun", IDEATION),
    # spelling variants and slang
    ("pgn mati", IDEATION),
    ("pingin mati", IDEATION),
    ("kepengen mati", IDEATION),
    ("pengen bgt mati", IDEATION),
    ("ingin cepet mati", IDEATION),
    ("mending mati aj", IDEATION),
    ("gw udah gak kuat lg", DISTRESS),
    ("udah nggak kuat lagi ya tuhan", DISTRESS),
    ("aku enggak sanggup lagi hiks", DISTRESS),
    ("ngga tahan lagi", DISTRESS),
    ("gk kuat hidup", IDEATION),
    ("pengen bundir", IDEATION),
    ("bunuhdiri aja kali ya", IDEATION),
    ("aku mau bunuh dri", IDEATION),
    ("pengen ngakhirin hidup", IDEATION),
    ("mau akhiri hidupku", IDEATION),
    ("aku nyakitin diri lagi", SELF_HARM),
    ("aku suka nyilet tangan", SELF_HARM),
    ("pengen nyayat tgn", SELF_HARM),
    ("aku ngelukain diriku sendiri", SELF_HARM),
    ("pengen mampus aja", IDEATION),
    ("gatau lagi, pengen mati aja", IDEATION),
    ("gatau harus gimana lagi pengen mati aja", IDEATION),
    # repeated letters, case, accents, punctuation, invisible characters
    ("pengen mattiii", IDEATION),
    ("PENGEN MATIIIII!!!", IDEATION),
    ("pengennnn matiiii...", IDEATION),
    ("ga kuaaat lagiii", DISTRESS),
    ("bunuuuh diriii", IDEATION),
    ("pèngèn mâti", IDEATION),
    ("bu\u200bnuh diri", IDEATION),
    ("bunuh-diri", IDEATION),
    ("pengen... mati aja", IDEATION),
    ("aku… pengen mati", IDEATION),
    # leetspeak
    ("p3ng3n m4t1", IDEATION),
    ("bunuh d1r1", IDEATION),
    ("1ng1n m4ti", IDEATION),
    ("k1ll mys3lf", IDEATION),
    ("k!ll myself", IDEATION),
    ("su1c1d3", IDEATION),
    ("$elf harm", SELF_HARM),
    # English
    ("I want to kill myself", IDEATION),
    ("i just want to die", IDEATION),
    ("I wanna die", IDEATION),
    ("I want to end my life", IDEATION),
    ("I'm thinking about suicide", IDEATION),
    ("i feel suicidal", IDEATION),
    ("everyone would be better off without me", IDEATION),
    ("there is no reason to live", IDEATION),
    ("I don't want to live anymore", IDEATION),
    ("i want to end it all tonight", IDEATION),
    ("I've been cutting myself again", SELF_HARM),
    ("I cut myself", SELF_HARM),
    ("sometimes I want to hurt myself", SELF_HARM),
    ("self-harm is the only thing that helps", SELF_HARM),
    ("i can't go on", DISTRESS),
    ("I cannot take it anymore", DISTRESS),
    ("kms", IDEATION),
    ("i want to unalive myself", IDEATION),
    ("I want to diiiie", IDEATION),
    # the most urgent category wins
    ("aku udah ga kuat lagi, pengen mati aja", IDEATION),
    ("aku sayat tangan, pengen bunuh diri", IDEATION),
    # decided borderline: figurative or third-person talk of suicide still flags
    ("pengen mati aja rasanya ngerjain skripsi ini", IDEATION),
    ("artis itu katanya bunuh diri", IDEATION),
    ("pengen mati aja wkwkwk", IDEATION),
    ("I can't take it anymore, this traffic is a joke haha", DISTRESS),
]

FALSE_POSITIVES = [
    # "mati" (off, dead battery, bored, numb) and other dying figures of speech
    "mati lampu di rumah",
    "hp aku mati",
    "hp aku mau mati, baterai tinggal 2%",
    "ketawa sampai mati gaya",
    "aku mati gaya di rumah",
    "tolong matiin lampunya ya",
    "pengen matiin hp seharian",
    "aku mati rasa sama dia",
    "mobilnya mogok, mesinnya mati",
    "tanaman aku mati semua",
    "ikan cupang aku mati kemarin",
    "jangan lupa matikan kompor",
    "berjuang mati-matian buat ujian",
    "aku ingin mati-matian belajar",
    "hidup segan mati tak mau",
    "takut mati lampu pas hujan",
    "capek banget kerja hari ini",
    "deadline bikin pusing",
    "aku capek, pengen istirahat",
    "lagi sedih aja, pengen cerita",
    "ga kuat lagi nahan ketawa",
    "aku gak kuat lagi makan pedes",
    "udah ga tahan lagi pengen pipis",
    "ga sanggup lagi bayar cicilan rumah segini",
    "aku gak kuat jalan jauh",
    "pengen pergi liburan ke bali",
    "pengen tidur aja seharian",
    "pengen ngilang dari grup chat kantor",
    "hidup di jakarta mahal banget",
    "aku pengen hidup lebih sehat",
    "semangat hidup aku lagi naik",
    "aku ingin menikmati hidup",
    "gol bunuh diri di menit 90 bikin kalah",
    "berita bom bunuh diri itu serem",
    "dia mau mengakhiri hidup membujang bulan depan",
    "aku sayang sama diri sendiri",
    "aku lagi belajar mencintai diri sendiri",
    "jari aku kena pisau pas masak",
    "aku potong rambut kemarin",
    "tangan aku pegal habis nyuci",
    "aku tidak ingin mati muda, makanya olahraga",
    "aku nggak akan bunuh diri kok, tenang aja",
    "aku tidak pernah kepikiran untuk bunuh diri",
    "racun tikus di gudang udah habis",
    "nadi aku cepat banget habis lari",
    "kerjaan ini bikin aku gila",
    "sakit hati banget sama dia",
    "pengen makan bakso",
    "besok aku ada ujian",
    "makasih ya udah dengerin aku",
    "aku butuh teman ngobrol",
    "nomorku 081234567890",
    # English
    "I could die laughing",
    "I'm dying to see that movie",
    "this heat is killing me",
    "my phone died",
    "I'm dead tired",
    "I would kill for a coffee right now",
    "she is killing it at work",
    "I cut myself a slice of cake",
    "I cut myself shaving this morning",
    "I burned myself on the stove",
    "I hurt myself at the gym",
    "in the end it all worked out",
    "at the end of my life I want to have no regrets",
    "I want to live a better life",
    "I don't want to die, I want to get better",
    "I would never kill myself",
    "I'm not suicidal, just tired",
    "we watched suicide squad last night",
    "the deadline is a suicide mission",
    "I want to dye my hair blue",
    "dead line, dead battery, dead end",
    "I can't go on the trip next week",
    "I can finally take a day off",
    "kill the lights please",
    "the plants are dying",
]


@pytest.mark.parametrize(("text", "category"), TRUE_POSITIVES)
def test_risk_expressions_are_found_however_they_are_typed(text: str, category: Category | None) -> None:
    signal = detect(text)

    assert (signal.category if signal else None) == category


@pytest.mark.parametrize("text", FALSE_POSITIVES)
def test_ordinary_sentences_do_not_flag(text: str) -> None:
    assert detect(text) is None


def test_the_false_positive_corpus_is_large_enough() -> None:
    assert len(FALSE_POSITIVES) >= 60
    assert len(set(FALSE_POSITIVES)) == len(FALSE_POSITIVES)


def test_a_signal_names_the_list_entry_not_the_message() -> None:
    signal = detect("Aku P3NGEN mattiii bgt, sumpah")

    assert signal is not None
    assert signal.phrase == "pengen mati"
    assert "sumpah" not in signal.phrase


def test_normalisation_undoes_case_slang_repeats_and_leetspeak() -> None:
    assert normalise("Aku udah GAK KUAT lagiii. Capek") == [("aku", "sudah", "tidak", "kuat", "lagi"), ("capek",)]
    assert normalise("pengen... mati") == [("ingin", "mati")], "a trailing-off pause does not end the clause"
    assert normalise("p3ng3n m4t1!!") == [("ingin", "mati")]
    assert normalise("jam 4, nomor 119") == [("jam",), ("nomor",)]


@pytest.mark.parametrize(
    ("text", "flags"),
    [
        ("ga kuat lagi", True),
        ("ga kuat lagi nahan ketawa", False),
        ("ga kuat lagi, nahan ketawa", True),
        ("I cut myself again tonight", True),
        ("I cut myself while cooking", False),
    ],
)
def test_clause_final_phrases_need_to_end_their_clause(text: str, flags: bool) -> None:
    assert (detect(text) is not None) is flags


@pytest.mark.parametrize(
    ("text", "flags"),
    [
        ("aku ga pengen mati", False),
        ("I am not going to kill myself", False),
        ("aku tidak tahu kenapa aku ingin mati", True),
        ("I don't know why I want to die", True),
        ("ga ada yang ngerti, aku pengen mati", True),
        ("bukan aku yang mau bunuh diri", True),
    ],
)
def test_a_negation_cancels_only_the_phrase_it_reaches(text: str, flags: bool) -> None:
    assert (detect(text) is not None) is flags


def test_the_shipped_list_covers_every_category_and_both_languages() -> None:
    phrases = default_phrases().phrases
    entries = {phrase.entry for phrase in phrases}

    assert {phrase.category for phrase in phrases} == set(Category)
    assert {"pengen mati", "bunuh diri", "ga kuat lagi", "kill myself", "want to die", "self harm"} <= entries
    assert default_phrases().masks


def test_a_list_is_parsed_with_its_rules_and_refuses_nonsense() -> None:
    listing = parse_phrases(["# comment", "[self_harm]", "sayat tangan", "ga kuat lagi $", "[not_a_signal]", "x y"])

    assert [(p.words, p.clause_final) for p in listing.phrases] == [
        (("sayat", "tangan"), False),
        (("tidak", "kuat", "lagi"), True),
    ]
    assert listing.masks == (("x", "y"),)
    with pytest.raises(ValueError, match="before any"):
        parse_phrases(["pengen mati"])
    with pytest.raises(ValueError, match="unknown category"):
        parse_phrases(["[sadness]", "sedih"])


def test_the_hotline_card_carries_the_configured_numbers() -> None:
    card = hotline_card("119 ext 8 (SEJIWA), 112")

    assert "119 ext 8 (SEJIWA), 112" in card
    assert detect(card) is None, "the card itself must never look like a signal"
