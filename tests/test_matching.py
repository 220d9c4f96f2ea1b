"""The precomputed matchers find exactly what a plain loop over every cue and name finds.

`triage.domain.matching` replaces one regex per cue and a loop over every register name per
sentence by indexes built once (per module, per profile). These tests hold them to the plain
definitions they replace, over the example profile and the 1,000-entry register the benchmark
generates: names as written, with typos (a letter changed, dropped, added, swapped), inflected,
run together, several words, referral codes.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
import yaml
from bench.classifiers import generated_register
from hypothesis import given, settings
from hypothesis import strategies as st
from rapidfuzz import fuzz
from rapidfuzz.distance import OSA

from triage.domain import gate, sources
from triage.domain.lexicon import concepts, cues
from triage.domain.matching import (
    NameIndex,
    PhraseIndex,
    cue_phrase,
    find_name,
    first_owner_named,
    per_profile,
    token_sequences,
)
from triage.domain.profile import CompanyProfile, parse_profile
from triage.domain.sources import classify_source, find_referral_codes
from triage.domain.text import clean, fold

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "company.yaml"


def _example_doc() -> dict[str, object]:
    doc = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    assert isinstance(doc, dict)
    return doc


@pytest.fixture(scope="module")
def big_profile() -> CompanyProfile:
    """The example firm with the benchmark's generated register: 1,000 entries."""
    doc = _example_doc()
    own = list(doc.get("marketing") or [])  # type: ignore[call-overload]
    big = dict(doc, marketing=own + generated_register(1000 - len(own)))
    return parse_profile(big, source="generated")


# --- the plain definitions -------------------------------------------------------------------


def reference_fuzzy(key: str, words: list[str], prefixes: frozenset[str]) -> bool:
    """The typo match as it was written before the index: every window, every name."""
    parts = key.split()
    if len(key) < 8 or any(len(w) < 3 for w in parts):
        return False
    if not any(w[:2] in prefixes for w in parts):
        return False
    size = len(parts)
    for n in {size - 1, size, size + 1} - {0}:
        for i in range(0, max(0, len(words) - n) + 1):
            if fuzz.ratio(key, " ".join(words[i : i + n]), score_cutoff=90):
                return True
    if size < 2 or any(len(w) < 4 for w in parts):
        return False
    for i in range(0, max(0, len(words) - size) + 1):
        window = words[i : i + size]
        if len(window) == size and all(
            a == b or (OSA.distance(a, b) <= 1 and (len(a) >= 5 or a[:1] == b[:1]))
            for a, b in zip(parts, window, strict=True)
        ):
            return True
    return False


_KEYS: dict[int, list[list[tuple[str, str]]]] = {}


def reference_hits(
    owners: Sequence[Sequence[str]], sentence: str
) -> list[tuple[int, str, int | None]]:
    """Per owner in order, its first name found whole or with typos: the loop of old."""
    keys = _KEYS.get(id(owners))
    if keys is None:
        keys = _KEYS[id(owners)] = [[(n, fold(n)) for n in names] for names in owners]
    plain = sentence.replace(" , ", " ")
    words = plain.split()
    prefixes = frozenset(w[:2] for w in words)
    out: list[tuple[int, str, int | None]] = []
    for owner, names in enumerate(keys):
        for name, key in names:
            if not key:
                continue
            at = find_name(key, sentence)
            if at is None and not reference_fuzzy(key, words, prefixes):
                continue
            out.append((owner, name, at))
            break
    return out


_OWNERS: dict[int, tuple[CompanyProfile, list[tuple[str, ...]]]] = {}


def _owners(profile: CompanyProfile) -> list[tuple[str, ...]]:
    """The register's names per entry (one list per profile, so the reference folds once)."""
    got = _OWNERS.get(id(profile))
    if got is None or got[0] is not profile:
        got = _OWNERS[id(profile)] = (profile, [entry.names for entry in profile.marketing])
    return got[1]


# --- texts -----------------------------------------------------------------------------------

_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def _typo(rng: random.Random, text: str) -> str:
    if len(text) < 3:
        return text
    i = rng.randrange(len(text))
    op = rng.randrange(4)
    if op == 0:
        return text[:i] + rng.choice(_LETTERS) + text[i + 1 :]
    if op == 1:
        return text[:i] + text[i + 1 :]
    if op == 2:
        return text[:i] + rng.choice(_LETTERS) + text[i:]
    if i < len(text) - 1:
        return text[:i] + text[i + 1] + text[i] + text[i + 2 :]
    return text


_FRAMES = (
    "I saw {} last week",
    "not {} but a friend told me",
    "{}",
    "maybe it was {}?",
    "It was {}'s post on telegram",
    "through {}, that's why I'm writing",
    "my brother, {} and a colleague",
    "ich habe {} gesehen, keine Werbung",
    "an ad from {} on youtube",
    "J'ai vu {} au salon",
)


def _variants(rng: random.Random, name: str) -> Iterator[str]:
    yield name
    yield name.lower()
    yield name + "s"  # inflected: "Clara's", "Summits"
    yield name.replace(" ", "")  # run together
    yield _typo(rng, name)
    yield _typo(rng, _typo(rng, name))
    yield _typo(rng, _typo(rng, _typo(rng, name)))
    words = name.split()
    if len(words) > 1:
        yield " ".join(_typo(rng, w) for w in words)  # a typo in every word
        yield " ".join(words[:-1])  # the last word left out
        yield " ".join([*words[:1], "the", *words[1:]])  # a word added


def _sentences_for(profile: CompanyProfile, count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    names = [n for entry in profile.marketing for n in entry.names]
    names += [n for link in profile.close_links for n in (link.name, *link.aliases)]
    out: list[str] = []
    for name in rng.sample(names, min(count, len(names))):
        for variant in _variants(rng, name):
            out.append(rng.choice(_FRAMES).format(variant))
    return out


def _folded_sentences(text: str) -> list[str]:
    return [s.reading.text for s in sources._sentences(clean(text)[:4096], None)]


# --- the register index ----------------------------------------------------------------------


def test_register_index_finds_what_the_loop_finds_over_1000_entries(
    big_profile: CompanyProfile,
) -> None:
    index = NameIndex(_owners(big_profile), fold)
    assert not index.scan
    texts = _sentences_for(big_profile, 60, seed=3)
    found = 0
    for text in texts:
        for sentence in _folded_sentences(text):
            expected = reference_hits(_owners(big_profile), sentence)
            assert index.hits(sentence) == expected, sentence
            found += bool(expected)
    # The sample must exercise the matches, not only their absence.
    assert found > len(texts) // 2


def test_typos_and_inflections_are_still_found_over_1000_entries(
    big_profile: CompanyProfile,
) -> None:
    index = NameIndex(_owners(big_profile), fold)
    cases = {
        "I follow Crypto Clara": "crypto-clara",
        "cripto klara told me about you": "crypto-clara",
        "saw you at the Lisbon Web3 Sumit": "lisbon-summit-2026",
        "Singapore Fintech Festivall booth": "sff-2025",
        "your telegram chanel": "northwind-news",
    }
    for text, entry_id in cases.items():
        hit_ids = {
            big_profile.marketing[owner].id
            for sentence in _folded_sentences(text)
            for owner, _n, _at in index.hits(sentence)
        }
        assert entry_id in hit_ids, text


def test_small_register_scans_and_agrees(profile: CompanyProfile) -> None:
    index = NameIndex(_owners(profile), fold)
    assert index.scan
    for text in _sentences_for(profile, 40, seed=5):
        for sentence in _folded_sentences(text):
            assert index.hits(sentence) == reference_hits(_owners(profile), sentence)


_SOUP = (
    "crypto clara cripto klara lisbon web3 summit sumit bonus link invite code partner anna "
    "kovacs annakovacs berlin blockchain week 2024 coin digest article ad 12 357 northwind "
    "labs news telegram channel a the , of in"
).split()


@settings(max_examples=80, deadline=None)
@given(st.lists(st.sampled_from(_SOUP), min_size=1, max_size=9))
def test_register_index_on_word_soup(big_profile: CompanyProfile, soup: list[str]) -> None:
    index = per_profile(big_profile, "test.register", lambda p: NameIndex(_owners(p), fold))
    for sentence in _folded_sentences(" ".join(soup)):
        assert index.hits(sentence) == reference_hits(_owners(big_profile), sentence)


# --- referral codes ----------------------------------------------------------------------------


def test_referral_codes_as_the_loop_finds_them(big_profile: CompanyProfile) -> None:
    rng = random.Random(11)
    texts = ["my brother used the code NW-7Q2K", "no code", "g003-ab12 and G999-ZZZZ"]
    for entry in big_profile.marketing:
        if entry.code_pattern and entry.id.startswith("gen-"):
            code = entry.code_pattern.replace("[A-Z0-9]{4}", "".join(rng.sample("AB12CD34", 4)))
            texts += [f"I used {code}", f"code {code.lower()}, thanks", f"x{code}"]
    for text in texts:
        expected = [
            (m.group(0), entry.id)
            for entry in big_profile.marketing
            if (regex := entry.code_regex()) is not None
            for m in regex.finditer(clean(text)[:4096])
        ]
        assert find_referral_codes(text, big_profile) == expected, text
    assert any(find_referral_codes(t, big_profile) for t in texts[3:])


# --- cue phrases -------------------------------------------------------------------------------


#: Every cue phrase of the sources' and services' lexicons, in all thirty languages.
_CUES = sorted(
    {
        (c.phrase, c.star)
        for part in ("sources", "services")
        for concept in concepts(part)
        for c in cues(part, concept)
    }
)
_VOCAB = sorted({w for phrase, _star in _CUES for w in phrase.split()})
_INDEX = PhraseIndex(_CUES)
_RES = [re.compile(cue_phrase(p, star)) for p, star in _CUES]


def _check_index(index: PhraseIndex, regexes: list[re.Pattern[str]], sentence: str) -> None:
    words = sentence.split()
    starts: dict[int, int] = {}
    offset = 0
    for i, w in enumerate(words):
        offset = sentence.index(w, offset) if i else 0
        starts[offset] = i
        offset += len(w)
    got = index.matches(words)
    for i, regex in enumerate(regexes):
        expected = [starts[m.start()] for m in regex.finditer(sentence)]
        at = got.get(i, [])
        if index.size(i) == 1:
            assert at == expected, (sentence, regex.pattern)
        else:
            assert at[:1] == expected[:1], (sentence, regex.pattern)
        for p in at[:1]:
            m = regex.search(sentence)
            assert m is not None and m.group(0) == " ".join(words[p : p + index.size(i)])


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.sampled_from(_VOCAB),
            st.builds(
                lambda w, e: w + e, st.sampled_from(_VOCAB), st.sampled_from("s e en a y".split())
            ),
            st.sampled_from([",", "pub", "a", "the", "in", "not", "no"]),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_cue_index_matches_where_each_cue_regex_matches(parts: list[str]) -> None:
    sentence = " ".join(parts).replace(" , , ", " , ").strip(" ,")
    if not sentence:
        return
    _check_index(_INDEX, _RES, sentence)
    _check_index(_INDEX, _RES, fold(sentence))


# --- the gate's names --------------------------------------------------------------------------


def test_gate_names_the_first_entry_the_regex_loop_would(big_profile: CompanyProfile) -> None:
    index = token_sequences(_owners(big_profile), fold)
    patterns = [
        (i, re.compile(rf"\b{re.escape(fold(n))}\b"))
        for i, entry in enumerate(big_profile.marketing)
        for n in entry.names
        if fold(n)
    ]
    for text in _sentences_for(big_profile, 80, seed=9):
        folded = fold(text)
        expected = next((i for i, regex in patterns if regex.search(folded)), None)
        assert first_owner_named(index, folded.split()) == expected, text


def test_gate_reason_for_a_named_entry(big_profile: CompanyProfile) -> None:
    entry = big_profile.marketing[500]
    reason = gate.promotional_content(f"Thanks! {entry.names[0]}", big_profile, ())
    assert reason.startswith("names marketing activity") or reason.startswith("promotional")


# --- per profile, not per text -----------------------------------------------------------------


def test_index_is_built_once_per_profile_object(profile: CompanyProfile) -> None:
    calls: list[int] = []

    def build(p: CompanyProfile) -> int:
        calls.append(1)
        return len(p.marketing)

    assert per_profile(profile, "test.count", build) == len(profile.marketing)
    assert per_profile(profile, "test.count", build) == len(profile.marketing)
    assert len(calls) == 1
    other = profile.model_copy(update={"marketing": profile.marketing[:2]})
    assert per_profile(other, "test.count", build) == 2
    assert len(calls) == 2


def test_classifications_follow_the_profile_not_a_cache(profile: CompanyProfile) -> None:
    text = "I follow Crypto Clara on YouTube"
    with_clara = classify_source(text, profile)
    assert any(s.entry_id == "crypto-clara" for s in with_clara.signals)
    without = profile.model_copy(
        update={"marketing": tuple(e for e in profile.marketing if e.id != "crypto-clara")}
    )
    assert not any(s.entry_id == "crypto-clara" for s in classify_source(text, without).signals)
