"""Text normalisation shared by every classifier.

Client text arrives with typos, accents, look-alike letters from other scripts, zero-width and
bidi control characters. Everything is matched on a *folded* form: NFKC, control characters
removed, mixed-script look-alikes mapped to Latin (a UTS #39 style skeleton, so "Gеrmany" with a
Cyrillic "е" reads as "germany"), case-folded, diacritics stripped, punctuation turned to spaces.

`fold` is idempotent (folding a folded text changes nothing): each word is folded until it is
stable, because case-folding can itself create a mixed-script word ("PΊ" -> "pι").
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from confusable_homoglyphs import confusables as _confusables  # type: ignore[import-untyped]

#: Longest text any classifier looks at; Telegram caps messages at 4,096 characters.
MAX_TEXT = 4096

_LATIN_HOMOGLYPH: dict[str, str] = {}
for _char, _entries in _confusables.confusables_data.items():
    if len(_char) != 1 or not _char.isalpha() or _char.isascii():
        continue
    for _entry in _entries:
        _target = _entry.get("c", "")
        if len(_target) == 1 and _target.isascii() and _target.isalpha():
            _LATIN_HOMOGLYPH[_char] = _target
            break

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_SPACES = re.compile(r"[^\S\n]+")
_ASCII_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_ASCII_WORD = re.compile(r"[a-z0-9]+")
_NEWLINES = re.compile(r"\s*\n\s*")
#: Punctuation that ends a clause: negation and "currently in" do not reach past it.
_CLAUSE_BREAK = re.compile(r"[,.;:!?()\[\]\"«»“”„…\n]|\s[-–—]\s")
#: Folding a word converges within a few rounds; the bound only guards against surprises.
_MAX_ROUNDS = 6
#: A sentence (ends at . ! ? ; a line break, or their Arabic and CJK forms) and what separates
#: the clauses inside one: the classifiers scope negation, hedging and corrections by them.
SENTENCE = re.compile(r"[^.!?;\n؟؛。]+[.!?;\n؟؛。]*")
CLAUSE = re.compile(r"[,:()\[\]\"«»“”„…،]|\s[-–—]\s")


def _is_control(ch: str) -> bool:
    # Cf: zero-width joiners, bidi overrides, soft hyphen; Cc: other control characters.
    return unicodedata.category(ch) in ("Cf", "Cc", "Co", "Cs") and ch not in "\n\t"


def _control_class() -> re.Pattern[str]:
    """One regex for every character `_is_control` removes (built from unicodedata, so it
    follows the running Python's Unicode version)."""
    ranges: list[tuple[int, int]] = []
    scan = [(0, 0x30000), (0xE0000, 0xE1000)]
    for lo, hi in scan:
        for cp in range(lo, hi):
            if 0xD800 <= cp <= 0xDFFF or 0xE000 <= cp <= 0xF8FF:
                continue  # added as whole blocks below
            if _is_control(chr(cp)):
                if ranges and ranges[-1][1] == cp - 1:
                    ranges[-1] = (ranges[-1][0], cp)
                else:
                    ranges.append((cp, cp))
    # Surrogates, the private use area and the two private use planes.
    ranges += [(0xD800, 0xDFFF), (0xE000, 0xF8FF), (0xF0000, 0xFFFFD), (0x100000, 0x10FFFD)]
    body = "".join(
        re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}"
        for a, b in ranges
    )
    return re.compile(f"[{body}]")


_CONTROL = _control_class()


@lru_cache(maxsize=65536)
def _script(ch: str) -> str:
    name = unicodedata.name(ch, "")
    return name.split(" ", 1)[0] if name else ""


def _skeleton_word(word: str) -> str:
    """Map look-alike letters to Latin when a word mixes Latin with another script."""
    if all(ord(ch) < 0x250 for ch in word):
        # Basic Latin to Latin Extended-B: after NFKC every letter there is Latin (the
        # ordinal indicators, the only other letters, are folded to "a" and "o" by NFKC).
        return word
    scripts = {_script(ch) for ch in word if ch.isalpha()}
    if "LATIN" not in scripts or len(scripts) < 2:
        return word
    return "".join(_LATIN_HOMOGLYPH.get(ch, ch) for ch in word)


def clean(text: str) -> str:
    """NFKC, controls removed, mixed-script look-alikes mapped to Latin, spaces collapsed.

    Line breaks are kept (one per break): they separate answers and sentences.
    """
    text = text[: MAX_TEXT * 2]
    if text.isascii():
        # The same without per-word work: NFKC and look-alikes leave ASCII as it is, and the
        # only ASCII characters `_CONTROL` removes are `_ASCII_CONTROL`'s.
        text = _ASCII_CONTROL.sub("", text)
    else:
        text = unicodedata.normalize("NFKC", text)
        text = _CONTROL.sub("", text)
        text = _WORD.sub(lambda m: _skeleton_word(m.group(0)), text)
    text = _NEWLINES.sub("\n", _SPACES.sub(" ", text))
    return text.strip()[:MAX_TEXT].strip()


@lru_cache(maxsize=65536)
def fold_word(word: str) -> str:
    """Case-fold and strip diacritics from one word ("Österreich" -> "osterreich")."""
    decomposed = unicodedata.normalize("NFKD", word.casefold())
    out = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return out.replace("ø", "o").replace("æ", "ae").replace("ł", "l").replace("đ", "d")


@lru_cache(maxsize=65536)
def _fold_token(word: str) -> tuple[str, ...]:
    """The folded words one word of cleaned text becomes, each a fixed point of folding."""
    parts: tuple[str, ...] = (word,)
    for _ in range(_MAX_ROUNDS):
        nxt: list[str] = []
        for part in parts:
            once = fold_word(_skeleton_word(part))
            if once.isascii():
                # Lower-case ASCII letters and digits are already a fixed point.
                nxt.extend(_ASCII_WORD.findall(once))
                continue
            once = _CONTROL.sub("", unicodedata.normalize("NFKC", once))
            nxt.extend(_WORD.findall(_skeleton_word(once)))
        if tuple(nxt) == parts:
            break
        parts = tuple(nxt)
    return parts


def _cap(folded: list[str]) -> list[str]:
    """Keep the folded words within MAX_TEXT characters (folding can lengthen: "ß" -> "ss")."""
    total, out = 0, list[str]()
    for w in folded:
        total += len(w) + (1 if out else 0)
        if total > MAX_TEXT:
            break
        out.append(w)
    return out


@lru_cache(maxsize=4096)
def fold(text: str) -> str:
    """The matching form of a text: cleaned, folded, punctuation as single spaces."""
    if text.isascii():
        # The same result without per-character Unicode work: NFKC, look-alikes, case-folding
        # and diacritics do nothing to ASCII, and lower() is casefold() there.
        cleaned = _ASCII_CONTROL.sub("", text[: MAX_TEXT * 2])
        cleaned = _NEWLINES.sub("\n", _SPACES.sub(" ", cleaned)).strip()[:MAX_TEXT].strip()
        return " ".join(_cap(_ASCII_WORD.findall(cleaned.lower())))
    out = [f for w in _WORD.findall(clean(text)) for f in _fold_token(w)]
    return " ".join(_cap(out))


def words(text: str) -> list[str]:
    """Folded words of a text, in order."""
    return fold(text).split()


def has_content(text: str) -> bool:
    """Whether a text contains at least one letter or digit after cleaning."""
    return any(ch.isalnum() for ch in clean(text))


@dataclass(frozen=True)
class Token:
    """One folded word with where it came from: the word as written, its clause and line."""

    folded: str
    original: str
    #: Clauses are separated by punctuation (commas too) and by line breaks.
    clause: int
    #: Lines are separated by line breaks (the engine joins several answers with them).
    line: int

    @property
    def capitalised(self) -> bool:
        """Whether the client wrote the word with a capital (or in a script without case)."""
        first = self.original[:1]
        return bool(first) and (first.isupper() or first.istitle() or not first.islower())


@lru_cache(maxsize=1024)
def tokens(text: str) -> tuple[Token, ...]:
    """The folded words of a text with their original spelling, clause and line.

    ``" ".join(t.folded for t in tokens(x)) == fold(x)`` for every text.
    """
    cleaned = clean(text)
    out: list[Token] = []
    clause = line = 0
    prev_end = 0
    for m in _WORD.finditer(cleaned):
        gap = cleaned[prev_end : m.start()]
        if out and _CLAUSE_BREAK.search(gap):
            clause += 1
        line += gap.count("\n")
        prev_end = m.end()
        for f in _fold_token(m.group(0)):
            out.append(Token(f, m.group(0), clause, line))
    kept = _cap([t.folded for t in out])
    return tuple(out[: len(kept)])
