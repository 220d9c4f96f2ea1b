"""Text normalisation shared by every classifier.

Client text arrives with typos, accents, look-alike letters from other scripts, zero-width and
bidi control characters. Everything is matched on a *folded* form: NFKC, control characters
removed, mixed-script look-alikes mapped to Latin (a UTS #39 style skeleton, so "Gеrmany" with a
Cyrillic "е" reads as "germany"), case-folded, diacritics stripped, punctuation turned to spaces.
"""

from __future__ import annotations

import re
import unicodedata
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
_SPACES = re.compile(r"\s+")


def _is_control(ch: str) -> bool:
    # Cf: zero-width joiners, bidi overrides, soft hyphen; Cc: other control characters.
    return unicodedata.category(ch) in ("Cf", "Cc", "Co", "Cs") and ch not in "\n\t"


def _script(ch: str) -> str:
    name = unicodedata.name(ch, "")
    return name.split(" ", 1)[0] if name else ""


def _skeleton_word(word: str) -> str:
    """Map look-alike letters to Latin when a word mixes Latin with another script."""
    scripts = {_script(ch) for ch in word if ch.isalpha()}
    if "LATIN" not in scripts or len(scripts) < 2:
        return word
    return "".join(_LATIN_HOMOGLYPH.get(ch, ch) for ch in word)


def clean(text: str) -> str:
    """NFKC, controls removed, mixed-script look-alikes mapped to Latin, spaces collapsed."""
    text = unicodedata.normalize("NFKC", text[: MAX_TEXT * 2])
    text = "".join(ch for ch in text if not _is_control(ch))
    text = _WORD.sub(lambda m: _skeleton_word(m.group(0)), text)
    return _SPACES.sub(" ", text).strip()[:MAX_TEXT]


@lru_cache(maxsize=65536)
def fold_word(word: str) -> str:
    """Case-fold and strip diacritics from one word ("Österreich" -> "osterreich")."""
    decomposed = unicodedata.normalize("NFKD", word.casefold())
    out = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return out.replace("ø", "o").replace("æ", "ae").replace("ł", "l").replace("đ", "d")


def fold(text: str) -> str:
    """The matching form of a text: cleaned, folded, punctuation as single spaces."""
    words = _WORD.findall(clean(text))
    return " ".join(fold_word(w) for w in words)


def words(text: str) -> list[str]:
    """Folded words of a text, in order."""
    return fold(text).split()


def has_content(text: str) -> bool:
    """Whether a text contains at least one letter or digit after cleaning."""
    return any(ch.isalnum() for ch in clean(text))
