"""The word lists are data, in every language the product speaks (triage/data/lexicon)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from triage.domain.lexicon import (
    LANGUAGES,
    LEMMATISER,
    PARTS,
    concepts,
    coverage,
    cues,
    entries,
    language_code,
    lemma_table,
    lemmas,
    vocabulary_hash,
)

DATA = Path(__file__).resolve().parents[1] / "src" / "triage" / "data" / "lexicon"


def _table() -> str:
    table = coverage(PARTS)
    head = "concept".ljust(34) + " ".join(lang.rjust(3) for lang in LANGUAGES)
    rows = [
        f"{part}.{concept}".ljust(34) + " ".join(str(n).rjust(3) for n in by_lang.values())
        for (part, concept), by_lang in table.items()
    ]
    return "\n".join([head, *rows])


def test_every_concept_has_entries_in_every_language() -> None:
    table = coverage(PARTS)
    print(_table())  # the coverage table, shown with -s or on failure
    missing = [
        f"{part}.{concept}: {lang}"
        for (part, concept), by_lang in table.items()
        for lang, n in by_lang.items()
        if n == 0
    ]
    assert not missing, "concepts without entries:\n" + "\n".join(missing) + "\n" + _table()


@pytest.mark.parametrize("part", PARTS)
def test_each_part_defines_concepts(part: str) -> None:
    assert concepts(part), f"triage/data/lexicon/en/{part}.yaml defines no concept"
    for concept in concepts(part):
        assert cues(part, concept), f"{part}.{concept} is empty"


def test_language_codes_from_telegram_tags() -> None:
    assert language_code("pt-BR") == "pt"
    assert language_code("nb") == "no"
    assert language_code("uk") == "uk"
    assert language_code("ja") is None
    assert language_code(None) is None
    assert len(LANGUAGES) == 30


def test_lemmas_align_with_folded_words() -> None:
    text = "Viděl jsem vaši reklamou, l'adresse"
    from triage.domain.text import fold

    assert len(lemmas(text, "cs")) == len(fold(text).split())
    assert "reklama" in lemmas("viděl jsem reklamu", "cs")
    assert "lontoo" in lemmas("asun Lontoossa", "fi")
    assert lemmas("abc", None) == ["abc"]


def _script() -> object:
    path = Path(__file__).resolve().parents[1] / "scripts" / "lexicon_lemmas.py"
    spec = importlib.util.spec_from_file_location("lexicon_lemmas", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_lemma_tables_are_built_from_the_current_vocabulary() -> None:
    """An edit of a lexicon (or of the gazetteer) without `make lexicon` fails here."""
    stamp = vocabulary_hash(_script().vocabulary())  # type: ignore[attr-defined]
    stale = []
    for language in LEMMATISER:
        doc = json.loads((DATA / language / "lemmas.json").read_text(encoding="utf-8"))
        if doc["vocabulary"] != stamp:
            stale.append(language)
        assert lemma_table(language), f"{language}: empty lemma table"
    assert not stale, f"lemma tables built from an older vocabulary: {stale}; run make lexicon"


def test_no_word_both_negates_and_ends_a_negation() -> None:
    """A word in a language's `negation` and `contrast` lists would cancel itself (Spanish
    "sin" negates; only "sin embargo" is a contrast)."""
    clashes = []
    for language in LANGUAGES:
        negators = {c.phrase for c in entries("clauses", "negation") if c.language == language}
        contrast = {c.phrase for c in entries("clauses", "contrast") if c.language == language}
        clashes += [f"{language}: {w}" for w in sorted(negators & contrast)]
    assert not clashes, clashes
