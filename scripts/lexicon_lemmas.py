"""Build the lemma tables the classifiers read: `triage/data/lexicon/<lang>/lemmas.json`.

A classifier matches a cue phrase on the client's words as written and on their lemmas, so
"reklama" also matches "reklamou" and "Lontoo" matches "Lontoossa". Loading a lemmatiser's
dictionaries at run time costs seconds per language and process (simplemma decodes millions
of forms); the product only ever asks for the lemmas of its own vocabulary. So this script
reads simplemma's dictionary for each language once and keeps, folded, every form whose lemma
is a word of the lexicon (any part) or a one-word place name of the gazetteer. Each table also
records the hash of the vocabulary it was built from; `tests/test_lexicon.py` fails when the
lexicon or gazetteer changed without a rebuild (`make lexicon`).

usage: python scripts/lexicon_lemmas.py [LANG ...]     (all thirty by default; a few minutes)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from triage.domain.lexicon import LANGUAGES, LEMMATISER, lexicon_words, vocabulary_hash
from triage.domain.text import fold_word
from triage.geodata import load_gazetteer

DATA = Path(__file__).resolve().parents[1] / "src" / "triage" / "data" / "lexicon"


def vocabulary() -> frozenset[str]:
    """The lexicon's words and the gazetteer's one-word place names, folded."""
    places = {name for name in load_gazetteer().names if " " not in name}
    return lexicon_words() | places


def build(language: str, words: frozenset[str]) -> dict[str, str]:
    """Folded form -> folded lemma, for the forms whose lemma is one of `words`."""
    from simplemma.strategies.dictionaries.dictionary_factory import DefaultDictionaryFactory

    code = LEMMATISER.get(language)
    if code is None:
        return {}
    table: dict[str, str] = {}
    for form, lemma in DefaultDictionaryFactory().get_dictionary(code).items():
        key, base = fold_word(form), fold_word(lemma)
        if key != base and base in words and " " not in key and key not in table:
            table[key] = base
    return table


def main(languages: list[str]) -> None:
    words = vocabulary()
    stamp = vocabulary_hash(words)
    for language in languages:
        table = build(language, words)
        doc = {"vocabulary": stamp, "forms": dict(sorted(table.items()))}
        out = DATA / language / "lemmas.json"
        out.write_text(json.dumps(doc, ensure_ascii=False, separators=(",", ":")) + "\n")
        print(f"{language}: {len(table)} forms", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:] or list(LANGUAGES))
