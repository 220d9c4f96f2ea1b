"""Which language a client writes in, from the text itself (lingua, made for short texts).

Telegram's `language_code` is the language of the client's app, not always the one they write
in: a Czech client with an English phone writes Czech. The engine asks this module once per
conversation until a message is long enough to tell. The detector knows every language lingua
knows, so a text in a language the product does not speak is recognised as such (and goes to
a person) instead of being forced into the nearest of ours. Pure: no I/O beyond lingua's own
model files, loaded lazily and once.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from triage.domain.lexicon import LANGUAGES, language_code
from triage.domain.text import fold

#: Below this the detector's best guess is not taken (lingua's relative confidence, 0..1).
CONFIDENT = 0.9
#: Fewer letters than this say too little about a language ("ok", "hi", "BTC", a city).
MIN_LETTERS = 20


@dataclass(frozen=True)
class Detected:
    """The language of a text: an ISO 639-1 code, whether the product speaks it, how sure."""

    code: str
    supported: bool
    confidence: float


#: Languages we do not speak, in scripts of their own, so that the trigram models cannot take
#: a short text of ours for one of them (measured on the tuned corpus: with Macedonian,
#: Belarusian, Vietnamese or Afrikaans among the candidates, one short Russian, Ukrainian or
#: English answer in fifteen was read as one of those).
_OTHERS = ("ja", "zh", "ko", "he", "fa", "hi", "th", "ka", "hy")


@cache
def _detector() -> Any:
    from lingua import IsoCode639_1, Language, LanguageDetectorBuilder

    wanted = {"nb" if c == "no" else c for c in LANGUAGES} | set(_OTHERS)
    known = [
        Language.from_iso_code_639_1(getattr(IsoCode639_1, code.upper()))
        for code in sorted(wanted)
        if hasattr(IsoCode639_1, code.upper())
    ]
    return LanguageDetectorBuilder.from_languages(*known).with_low_accuracy_mode().build()


def detect(text: str) -> Detected | None:
    """The language of `text`, or None when the text is too short or the guess too weak."""
    letters = sum(ch.isalpha() for ch in fold(text))
    if letters < MIN_LETTERS:
        return None
    values = _detector().compute_language_confidence_values(text[:1000])
    if not values:
        return None
    best = values[0]
    if best.value < CONFIDENT:
        return None
    iso = best.language.iso_code_639_1.name.lower()
    ours = language_code(iso)
    return Detected(ours or iso, ours is not None, float(best.value))
