"""Precomputed matchers for the classifiers: cue phrases and register names.

The classifiers read folded text (`triage.domain.text.fold`): words of letters and digits
separated by single spaces (and " , " between the clauses of a sentence). On such text a cue
regex `\\b{phrase}\\b` (or `\\b{phrase}\\w*` for a phrase ending in "*") matches exactly where
the phrase's words equal consecutive words of the text (the last one as a prefix for "*"), so
`PhraseIndex` finds every cue of a list in one pass over the words, with a dict lookup per word,
instead of one regex pass per cue (hundreds of them per sentence).

`NameIndex` does the same for the names of a company profile's register and close links, built
once per profile (`per_profile`): a sentence only looks at the names that share an anchor with
it (a trigram of the name for a whole-word match; for a match with typos, one of the name's
pieces that must survive the typos, or a one-deletion variant of its first word), then checks
those few candidates exactly as a loop over every name would. The filters only drop names that
cannot match, so the hits are the same (tests/test_matching.py compares with a plain loop).

Nothing here caches a classification: the indexes depend on the cue lists (built at import) and
on the profile (built once per profile object), never on the text classified.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA

_ASCII_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")

# --- cue phrases -----------------------------------------------------------------------------


class PhraseIndex:
    """A list of folded cue phrases, matched on the words of folded text.

    Phrase i is (words, star): it matches at word position p when its words equal the text's
    words p, p+1, ... (the last one only as a prefix when `star`). That is where the regex
    `\\bw1\\s+w2...\\b` (or `...\\w*` with star) matches on folded text: folded words are runs of
    `\\w` characters, so `\\b` falls exactly at their ends, and `\\s+` only spans the single space
    between two words of a clause (never the " , " between clauses).
    """

    def __init__(self, phrases: Iterable[tuple[str, bool]]) -> None:
        self.phrases: tuple[tuple[tuple[str, ...], bool], ...] = tuple(
            (tuple(text.split()), star) for text, star in phrases
        )
        #: First word -> phrases that need it exactly (all but the one-word "*" stems).
        self._first: dict[str, list[int]] = {}
        #: One-word "*" stems by their first two letters (one-letter stems under "").
        self._stems: dict[str, list[tuple[str, int]]] = {}
        for i, (words, star) in enumerate(self.phrases):
            if not words:
                raise ValueError(f"empty cue phrase at {i}")
            if star and len(words) == 1:
                stem = words[0]
                self._stems.setdefault(stem[:2] if len(stem) >= 2 else "", []).append((stem, i))
            else:
                self._first.setdefault(words[0], []).append(i)
        self._short_stems = self._stems.get("", [])

    def size(self, i: int) -> int:
        """How many words phrase i has."""
        return len(self.phrases[i][0])

    def matches(self, words: Sequence[str]) -> dict[int, list[int]]:
        """Phrase index -> the word positions where it matches, in order.

        Positions of a phrase of several words may overlap; `re.finditer` would not report
        the overlapping ones, so callers that go past the first match use one-word phrases.
        """
        found: dict[int, list[int]] = {}
        n = len(words)
        first = self._first
        stems = self._stems
        phrases = self.phrases
        for p, word in enumerate(words):
            cands = first.get(word)
            if cands is not None:
                for i in cands:
                    parts, star = phrases[i]
                    k = len(parts)
                    if k > 1:
                        if p + k > n:
                            continue
                        ok = True
                        for j in range(1, k - 1):
                            if words[p + j] != parts[j]:
                                ok = False
                                break
                        if not ok:
                            continue
                        last = words[p + k - 1]
                        if not (last.startswith(parts[-1]) if star else last == parts[-1]):
                            continue
                    found.setdefault(i, []).append(p)
            stemmed = stems.get(word[:2])
            if stemmed is not None:
                for stem, i in stemmed:
                    if word.startswith(stem):
                        found.setdefault(i, []).append(p)
            for stem, i in self._short_stems:
                if word.startswith(stem):
                    found.setdefault(i, []).append(p)
        return found

    def first_matches(self, words: Sequence[str]) -> list[tuple[int, int]]:
        """(phrase index, first word position) for every phrase that matches, by phrase."""
        return sorted((i, at[0]) for i, at in self.matches(words).items())


def cue_phrase(folded: str, star: bool) -> str:
    """The regex a cue phrase stands for on folded text (the reference the index matches)."""
    import re

    body = re.escape(folded).replace(r"\ ", r"\s+")
    return rf"\b{body}\w*" if star else rf"\b{body}\b"


# --- per-profile precomputation --------------------------------------------------------------

_T = TypeVar("_T")
_K = TypeVar("_K")


@dataclass
class _Slot:
    ref: weakref.ref[object]
    values: dict[str, object] = field(default_factory=dict)


_CACHE: dict[int, _Slot] = {}
_LOCK = threading.Lock()


def _forget(key: int) -> Callable[[weakref.ref[object]], None]:
    def drop(ref: weakref.ref[object]) -> None:
        with _LOCK:
            slot = _CACHE.get(key)
            if slot is not None and slot.ref is ref:
                del _CACHE[key]

    return drop


def per_profile(owner: _K, name: str, build: Callable[[_K], _T]) -> _T:
    """`build(owner)`, computed once per owner object (by identity) and name.

    Company profiles are frozen (pydantic `frozen=True`, tuples all the way down), so what is
    derived from one cannot go stale; the entry goes when the profile is garbage collected.
    """
    key = id(owner)
    slot = _CACHE.get(key)
    if slot is None or slot.ref() is not owner:
        slot = _Slot(weakref.ref(owner, _forget(key)))
        with _LOCK:
            _CACHE[key] = slot
    try:
        return slot.values[name]  # type: ignore[return-value]
    except KeyError:
        value = build(owner)
        slot.values[name] = value
        return value


# --- register and close-link names -----------------------------------------------------------


def find_name(key: str, sentence: str) -> int | None:
    """Where a folded name stands in a folded sentence as whole words, or None.

    Whole words means no ASCII letter or digit right before or after it.
    """
    if len(key) < 2:
        return None
    start = 0
    while (i := sentence.find(key, start)) >= 0:
        j = i + len(key)
        if (i == 0 or sentence[i - 1] not in _ASCII_ALNUM) and (
            j == len(sentence) or sentence[j] not in _ASCII_ALNUM
        ):
            return i
        start = i + 1
    return None


def fuzzy_eligible(key: str) -> bool:
    """Whether a folded name is distinctive enough to be matched with typos."""
    return len(key) >= 8 and all(len(w) >= 3 for w in key.split())


def _windows(words: Sequence[str], n: int) -> list[str]:
    """The runs of n words of a sentence, joined (fewer words when the sentence is shorter)."""
    return [" ".join(words[i : i + n]) for i in range(0, max(0, len(words) - n) + 1)]


def ratio_hit(key: str, windows: list[str]) -> bool:
    """Whether one of the windows is within `fuzz.ratio` 90 of the name."""
    return process.extractOne(key, windows, scorer=fuzz.ratio, score_cutoff=90) is not None


def osa_hit(parts: Sequence[str], windows: list[str]) -> bool:
    """Every word of a several-word name within one edit ("crypto clara" ~ "cripto klara")."""
    size = len(parts)
    for window_text in windows:
        window = window_text.split()
        if len(window) == size and all(
            a == b or (OSA.distance(a, b) <= 1 and (len(a) >= 5 or a[:1] == b[:1]))
            for a, b in zip(parts, window, strict=True)
        ):
            return True
    return False


def fuzzy_hit(key: str, words: Sequence[str]) -> bool:
    """A distinctive name written with a typo ("Cripto Klara", "Web 3 Sumit") in a folded
    sentence's words, the two-letter prefilter aside: the plain definition `NameIndex` keeps
    to (a window of one word fewer, as many or one more within ratio 90, or every word within
    one edit)."""
    parts = key.split()
    size = len(parts)
    for n in (size - 1, size, size + 1):
        if n and ratio_hit(key, _windows(words, n)):
            return True
    if size < 2 or any(len(w) < 4 for w in parts):
        return False
    return osa_hit(parts, _windows(words, size))


def _max_typos(key: str) -> int:
    """The most Indel edits between a name and a text within `fuzz.ratio` 90 of it.

    ratio >= 90 means d <= (len(key) + len(w)) / 10, and since d >= len(w) - len(key),
    d <= 2 * len(key) / 9.
    """
    return (2 * len(key)) // 9


def _pieces(key: str) -> tuple[str, ...]:
    """Pieces of a name of which at least one is whole in any text within ratio 90 of it: each
    inserted or deleted character breaks at most one of `_max_typos + 1` consecutive pieces,
    and the window compared is a substring of the sentence."""
    count = _max_typos(key) + 1
    size, extra = divmod(len(key), count)
    out: list[str] = []
    at = 0
    for i in range(count):
        step = size + (1 if i < extra else 0)
        out.append(key[at : at + step])
        at += step
    return tuple(out)


def _trigrams(text: str) -> list[str]:
    return [text[i : i + 3] for i in range(len(text) - 2)]


def _bigrams(text: str) -> list[str]:
    return [text[i : i + 2] for i in range(len(text) - 1)]


def _letters(text: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for ch in text:
        out[ch] = out.get(ch, 0) + 1
    return out


def _deletions(word: str) -> set[str]:
    """The word and every word one deletion away: two words within one OSA edit (substitution,
    insertion, deletion or swap of neighbours) always share one of these."""
    return {word, *(word[:i] + word[i + 1 :] for i in range(len(word)))}


@dataclass(frozen=True)
class _Name:
    owner: int
    name: str
    key: str
    parts: tuple[str, ...]
    #: Long and distinctive enough to be matched with typos; and word by word (OSA).
    fuzzy: bool
    osa: bool
    prefixes: frozenset[str]
    pieces: tuple[str, ...]
    #: At most `typos` of the name's characters can be missing from a text within ratio 90 of
    #: it (each is one deletion), and at least `need` of its bigrams must be there (an edit
    #: breaks at most two, so (len - 1) - 2 * typos survive).
    typos: int
    charset: frozenset[str]
    letters: tuple[tuple[str, int], ...]
    bigrams: tuple[str, ...]
    need: int
    first_deletions: frozenset[str]


def _name(owner: int, name: str, key: str) -> _Name:
    parts = tuple(key.split())
    fuzzy = fuzzy_eligible(key)
    osa = fuzzy and len(parts) >= 2 and all(len(w) >= 4 for w in parts)
    return _Name(
        owner=owner,
        name=name,
        key=key,
        parts=parts,
        fuzzy=fuzzy,
        osa=osa,
        prefixes=frozenset(w[:2] for w in parts),
        pieces=_pieces(key) if fuzzy else (),
        typos=_max_typos(key),
        charset=frozenset(key),
        letters=tuple(_letters(key).items()) if fuzzy else (),
        bigrams=tuple(_bigrams(key)) if fuzzy else (),
        need=(len(key) - 1) - 2 * _max_typos(key) if fuzzy else 0,
        first_deletions=frozenset(_deletions(parts[0])) if osa else frozenset(),
    )


#: Below this many names the index is not worth its lookups: every name is checked directly.
_SCAN_BELOW = 48


class NameIndex:
    """Names (register entries', close links') folded once, with anchors to find candidates.

    `hits(sentence)` gives, per owner (entry or link, in order), the first of its names found
    in a folded sentence: as whole words (`find_name`) or, for distinctive names, with typos
    (`fuzzy_hit` on the sentence without its clause commas, for names with a word starting
    with the same two letters as one of the sentence's) -- the same as looping over every owner
    and name, only without looking at the names that cannot be there: a name is in a sentence
    only if its rarest trigram is; within ratio 90 only if one of its pieces is, and enough of
    its letters and bigrams; word by word only if its first word shares a one-deletion variant
    with one of the sentence's words.
    """

    def __init__(self, owners: Sequence[Sequence[str]], fold: Callable[[str], str]) -> None:
        names: list[_Name] = []
        for owner, owner_names in enumerate(owners):
            for name in owner_names:
                key = fold(name)
                if key:
                    names.append(_name(owner, name, key))
        self.names: tuple[_Name, ...] = tuple(names)
        self.scan = len(names) < _SCAN_BELOW
        self._exact2: dict[str, list[int]] = {}
        self._exact3: dict[str, list[int]] = {}
        self._pieces: dict[str, list[int]] = {}
        self._piece_sizes: tuple[int, ...] = ()
        self._osa: dict[str, list[int]] = {}
        if self.scan:
            return
        # The rarest trigram of each name as its anchor (a name in a text has all of them).
        counts: dict[str, int] = {}
        grams = [set(_trigrams(n.key)) for n in names]
        for gs in grams:
            for g in gs:
                counts[g] = counts.get(g, 0) + 1
        sizes: set[int] = set()
        for idx, (n, gs) in enumerate(zip(names, grams, strict=True)):
            if len(n.key) == 2:
                self._exact2.setdefault(n.key, []).append(idx)
            elif gs:
                anchor = min(sorted(gs), key=lambda g: counts[g])
                self._exact3.setdefault(anchor, []).append(idx)
            for piece in n.pieces:
                self._pieces.setdefault(piece, []).append(idx)
                sizes.add(len(piece))
            for variant in n.first_deletions:
                self._osa.setdefault(variant, []).append(idx)
        self._piece_sizes = tuple(sorted(sizes))

    @staticmethod
    def _grams(text: str, sizes: Iterable[int], index: dict[str, list[int]]) -> set[int]:
        out: set[int] = set()
        get = index.get
        for size in sizes:
            for i in range(len(text) - size + 1):
                ids = get(text[i : i + size])
                if ids is not None:
                    out.update(ids)
        return out

    def hits(self, sentence: str | Sentence) -> list[tuple[int, str, int | None]]:
        """(owner, name, position of the whole-word match or None for a fuzzy one), per owner
        with a hit, in order; the name is its first in the owner's list that is found."""
        if not self.names:
            return []
        view = sentence if isinstance(sentence, Sentence) else Sentence(sentence)
        text, plain = view.text, view.plain
        names = self.names
        exact: set[int] | None = None
        ratio: set[int] | None = None
        osa: set[int] | None = None
        candidates: Iterable[int]
        if self.scan:
            candidates = range(len(names))
        else:
            exact = self._grams(text, (3,), self._exact3)
            if self._exact2:
                exact |= self._grams(text, (2,), self._exact2)
            ratio = self._grams(plain, self._piece_sizes, self._pieces)
            osa = set()
            if self._osa:
                get = self._osa.get
                for variant in view.deletions():
                    ids = get(variant)
                    if ids is not None:
                        osa.update(ids)
            candidates = sorted(exact | ratio | osa)
        out: list[tuple[int, str, int | None]] = []
        done = -1
        for idx in candidates:
            n = names[idx]
            if n.owner == done:
                continue
            at = None
            if (exact is None or idx in exact) and n.key in text:
                at = find_name(n.key, text)
            if at is None:
                if not n.fuzzy or view.prefixes.isdisjoint(n.prefixes):
                    continue
                if not (self._ratio_hit(n, idx, ratio, view) or self._osa_hit(n, idx, osa, view)):
                    continue
            out.append((n.owner, n.name, at))
            done = n.owner
        return out

    @staticmethod
    def _ratio_hit(n: _Name, idx: int, ratio: set[int] | None, view: Sentence) -> bool:
        if ratio is not None:
            if idx not in ratio:
                return False
        elif not any(p in view.plain for p in n.pieces):
            return False
        if len(n.charset - view.charset) > n.typos:
            return False
        letters = view.letters()
        missing = 0
        for ch, count in n.letters:
            there = letters.get(ch, 0)
            if count > there:
                missing += count - there
        if missing > n.typos:
            return False
        bigrams = view.bigrams()
        if sum(g in bigrams for g in n.bigrams) < n.need:
            return False
        size = len(n.parts)
        return ratio_hit(n.key, view.windows(size - 1, size, size + 1))

    @staticmethod
    def _osa_hit(n: _Name, idx: int, osa: set[int] | None, view: Sentence) -> bool:
        if not n.osa:
            return False
        if osa is not None:
            if idx not in osa:
                return False
        elif not view.near(n.parts[0]):
            return False
        return osa_hit(n.parts, view.windows(len(n.parts)))


class Sentence:
    """A folded sentence as the name matchers read it, each view computed once."""

    def __init__(self, text: str) -> None:
        self.text = text
        #: Without the clause commas: typos are looked for across clauses.
        self.plain = text.replace(" , ", " ")
        self.words = self.plain.split()
        self.prefixes = {w[:2] for w in self.words}
        self.charset = frozenset(self.plain)
        self._letters: dict[str, int] | None = None
        self._bigrams: set[str] | None = None
        self._deletions: set[str] | None = None
        self._windows: dict[tuple[int, ...], list[str]] = {}

    def letters(self) -> dict[str, int]:
        if self._letters is None:
            self._letters = _letters(self.plain)
        return self._letters

    def bigrams(self) -> set[str]:
        if self._bigrams is None:
            self._bigrams = set(_bigrams(self.plain))
        return self._bigrams

    def deletions(self) -> set[str]:
        if self._deletions is None:
            self._deletions = {v for w in self.words for v in _deletions(w)}
        return self._deletions

    def near(self, word: str) -> bool:
        """Whether a word of the sentence is within one OSA edit of `word`."""
        hit = process.extractOne(word, self.words, scorer=OSA.distance, score_cutoff=1)
        return hit is not None

    def windows(self, *sizes: int) -> list[str]:
        got = self._windows.get(sizes)
        if got is None:
            got = self._windows[sizes] = [w for n in sizes if n for w in _windows(self.words, n)]
        return got


def token_sequences(
    owners: Sequence[Sequence[str]], fold: Callable[[str], str]
) -> dict[str, list[tuple[tuple[str, ...], int]]]:
    """First word -> (the name's words, owner) for every folded name, in order."""
    out: dict[str, list[tuple[tuple[str, ...], int]]] = {}
    for owner, names in enumerate(owners):
        for name in names:
            parts = tuple(fold(name).split())
            if parts:
                out.setdefault(parts[0], []).append((parts, owner))
    return out


def first_owner_named(
    index: dict[str, list[tuple[tuple[str, ...], int]]], words: Sequence[str]
) -> int | None:
    """The first owner one of whose names is a run of whole words of a folded text, or None
    (what `re.search(rf"\\b{name}\\b", text)` per owner and name in order finds first)."""
    best: int | None = None
    n = len(words)
    for p, word in enumerate(words):
        cands = index.get(word)
        if cands is None:
            continue
        for parts, owner in cands:
            if best is not None and owner >= best:
                continue
            k = len(parts)
            if p + k <= n and tuple(words[p : p + k]) == parts:
                best = owner
    return best
