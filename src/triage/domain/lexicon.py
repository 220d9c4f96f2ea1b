"""The word lists the classifiers read, as data: `triage/data/lexicon/<language>/<part>.yaml`.

A linguist reviews one language's folder without reading Python; a test prints the coverage
table (concept x language) and fails when a concept lacks entries in one of `LANGUAGES`.
Each concept is a list of cue phrases: a word or words as a client writes them, "word*" for
any ending, or `{phrase: weight}` where a phrase is weaker evidence than its concept's usual
weight. Phrases are folded like the text they are matched on (`triage.domain.text.fold`).

Inflections need no hand listing: a phrase without "*" also matches a word whose lemma it is
in the conversation's language, so "reklama" matches "reklamou" and "reklamę". The lemmas come
from `<language>/lemmas.json`, built from simplemma's dictionaries for the product's own
vocabulary by `scripts/lexicon_lemmas.py` (`make lexicon`): a lookup, where loading simplemma
itself would cost seconds per language and process. The `common/` folder holds what belongs
to no language (brand names, tickers).

Reading the package's own data files once is the only I/O here; nothing else is cached.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources

import yaml

from triage.domain.text import fold

#: The languages the product speaks: the 24 official EU languages, then Norwegian,
#: Icelandic, Russian, Ukrainian, Turkish and Arabic.
LANGUAGES: tuple[str, ...] = (
    "bg", "hr", "cs", "da", "nl", "en", "et", "fi", "fr", "de", "el", "hu",
    "ga", "it", "lv", "lt", "mt", "pl", "pt", "ro", "sk", "sl", "es", "sv",
    "no", "is", "ru", "uk", "tr", "ar",
)  # fmt: skip
COMMON = "common"

#: simplemma's code for each language it lemmatises (Maltese has no lemmatiser: stems only).
LEMMATISER = {lang: lang for lang in LANGUAGES if lang not in ("mt", "hr", "no")} | {
    "hr": "hbs",
    "no": "nb",
}
#: Languages close enough that a detector confuses them on a short text and clients borrow
#: each other's words: reading one, the classifiers also read its neighbours' words.
NEIGHBOURS: dict[str, frozenset[str]] = {
    lang: frozenset(group - {lang})
    for group in (
        {"cs", "sk", "sl", "hr", "pl"},
        {"da", "no", "sv", "is"},
        {"ru", "uk", "bg"},
        {"es", "pt"},
        {"lv", "lt"},
        {"et", "fi"},
        {"nl", "de"},
    )
    for lang in group
}
#: Telegram language codes and detector codes that name one of LANGUAGES.
_ALIASES = {"nb": "no", "nn": "no", "sr": "hr", "bs": "hr", "sh": "hr", "gr": "el"}


class LexiconError(ValueError):
    """A lexicon data file that cannot be used, naming the file and the field."""


@dataclass(frozen=True)
class Cue:
    """One phrase of a concept: folded words, prefix match of the last word, weight, language."""

    phrase: str
    star: bool
    weight: float
    language: str


def language_code(tag: str | None) -> str | None:
    """One of LANGUAGES for an IETF tag ("pt-BR" -> "pt", "nb" -> "no"), else None."""
    if not tag:
        return None
    base = tag.replace("_", "-").split("-")[0].strip().lower()
    base = _ALIASES.get(base, base)
    return base if base in LANGUAGES else None


def _read(language: str, part: str) -> Mapping[str, list[tuple[str, float | None]]]:
    node = resources.files("triage").joinpath("data", "lexicon", language, f"{part}.yaml")
    if not node.is_file():
        return {}
    doc = yaml.load(node.read_text(encoding="utf-8"), Loader=yaml.BaseLoader)
    where = f"triage/data/lexicon/{language}/{part}.yaml"
    if doc is None:
        return {}
    if not isinstance(doc, Mapping):
        raise LexiconError(f"{where}: must be a mapping of concept -> list of phrases")
    return {str(k): _entries(v, f"{where}: {k}") for k, v in doc.items()}


def _entries(value: object, where: str) -> list[tuple[str, float | None]]:
    if not isinstance(value, list):
        raise LexiconError(f"{where}: must be a list of phrases")
    out: list[tuple[str, float | None]] = []
    for item in value:
        if isinstance(item, str):
            out.append((item, None))
        elif isinstance(item, Mapping) and len(item) == 1:
            ((phrase, weight),) = item.items()
            try:
                out.append((str(phrase), float(weight)))
            except ValueError:
                raise LexiconError(f"{where}: {phrase}: weight must be a number") from None
        else:
            raise LexiconError(f"{where}: {item!r}: use a string or {{phrase: weight}}")
    return out


@cache
def cues(part: str, concept: str, default_weight: float = 1.0) -> tuple[Cue, ...]:
    """Every language's phrases for one concept of one part, in language order."""
    out: list[Cue] = []
    seen: set[tuple[str, bool]] = set()
    for language in (*LANGUAGES, COMMON):
        for raw, weight in _read_cached(language, part).get(concept, ()):
            star = raw.endswith("*")
            phrase = fold(raw.rstrip("*"))
            if not phrase or (phrase, star) in seen:
                continue
            seen.add((phrase, star))
            out.append(Cue(phrase, star, default_weight if weight is None else weight, language))
    return tuple(out)


@cache
def entries(part: str, concept: str, default_weight: float = 1.0) -> tuple[Cue, ...]:
    """Every language's phrases for one concept, each with its own language and weight (a
    phrase two languages share appears once per language: "ne" negates in Czech, not in
    French)."""
    out: list[Cue] = []
    for language in (*LANGUAGES, COMMON):
        for raw, weight in _read_cached(language, part).get(concept, ()):
            phrase = fold(raw.rstrip("*"))
            if phrase:
                w = default_weight if weight is None else weight
                out.append(Cue(phrase, raw.endswith("*"), w, language))
    return tuple(out)


@cache
def _read_cached(language: str, part: str) -> Mapping[str, list[tuple[str, float | None]]]:
    return _read(language, part)


def raw_entries(language: str, part: str, concept: str) -> list[tuple[str, float | None]]:
    """One language's phrases of a concept as written in its file, with their weights."""
    return list(_read_cached(language, part).get(concept, ()))


def raw_concepts(language: str, part: str) -> tuple[str, ...]:
    """The concepts one language's file of a part defines (common/ has its own)."""
    return tuple(_read_cached(language, part))


def concepts(part: str) -> tuple[str, ...]:
    """The concepts of a part, as the English file names them (English is the reference)."""
    return tuple(_read_cached("en", part))


def coverage(parts: Iterable[str]) -> dict[tuple[str, str], dict[str, int]]:
    """(part, concept) -> language -> number of phrases, for the coverage test and table."""
    table: dict[tuple[str, str], dict[str, int]] = {}
    for part in parts:
        for concept in concepts(part):
            row = table.setdefault((part, concept), {})
            for language in LANGUAGES:
                row[language] = len(_read_cached(language, part).get(concept, ()))
    return table


#: The parts of every language's lexicon.
PARTS = ("clauses", "sources", "services", "gate", "places")


def lexicon_words() -> frozenset[str]:
    """Every folded word of every phrase of every part and language (not "*" stems): the
    vocabulary whose inflected forms the lemma tables keep."""
    out: set[str] = set()
    for language in (*LANGUAGES, COMMON):
        for part in PARTS:
            for entries in _read_cached(language, part).values():
                for raw, _weight in entries:
                    if not raw.endswith("*"):
                        out.update(fold(raw).split())
    return frozenset(out)


def vocabulary_hash(words: Iterable[str]) -> str:
    """A short hash of a vocabulary, stored in each lemma table to tell when it is stale."""
    return hashlib.sha256("\n".join(sorted(words)).encode()).hexdigest()[:16]


@cache
def lemma_table(language: str) -> Mapping[str, str]:
    """Folded form -> folded lemma for one language's vocabulary ({} without a table)."""
    node = resources.files("triage").joinpath("data", "lexicon", language, "lemmas.json")
    if not node.is_file():
        return {}
    forms: dict[str, str] = json.loads(node.read_text(encoding="utf-8"))["forms"]
    return forms


#: Irish eclipsis: the letters written before a word's first letter ("bhfógra" is "fógra").
_ECLIPSIS = (("bhf", "f"), ("ng", "g"), ("nd", "d"), ("mb", "b"), ("gc", "c"), ("dt", "t"),
             ("bp", "p"), ("ts", "s"))  # fmt: skip


def irish_base(word: str) -> str:
    """An Irish word without its initial mutation: eclipsis ("bhfógra" -> "fógra") or
    lenition ("chara" -> "cara"); the word itself when it has none."""
    for prefix, base in _ECLIPSIS:
        if word.startswith(prefix) and len(word) > len(prefix) + 2:
            return base + word[len(prefix) :]
    if len(word) > 4 and word[1] == "h" and word[0] in "bcdfgmpst":
        return word[0] + word[2:]
    return word


def lemmas(text: str, language: str | None) -> list[str]:
    """The lemma of each folded word of `text` (aligned with `fold(text).split()`), or the
    word itself where the lemma table of the language does not know it. Irish words lose
    their initial mutation first (the dictionaries list "fógra", clients write "bhfógra")."""
    words = fold(text).split()
    code = language_code(language)
    table = lemma_table(code) if code in LEMMATISER else {}
    if code == "ga":
        bases = [irish_base(w) for w in words]
        return [table.get(w) or table.get(b, b) for w, b in zip(words, bases, strict=True)]
    if not table:
        return words
    return [table.get(w, w) for w in words]


def phrases(found: Sequence[Cue]) -> list[tuple[str, bool]]:
    """The (phrase, star) pairs a `PhraseIndex` is built from."""
    return [(c.phrase, c.star) for c in found]
