"""Where does the client live? Free text -> country or territory -> EU, EEA, outside, human.

Pure: place names come in a `Gazetteer` (built by `triage.geodata`), the words around them
("I live in", "registered in", "on holiday", "born in", "I'd rather not say", VPN) from
`triage/data/lexicon/<language>/places.yaml`, corrections and negation from `clauses.yaml`,
all matched on folded words and on their lemmas in the client's language. Residence, seat or
physical presence counts (DOMAIN.md R1), never nationality or language; a correction replaces
what it corrects; an EU/EEA seat decides for its company; the territories of DOMAIN.md section 7
keep their own zone in every script. It must never settle OUTSIDE on doubt: a refusal, nothing
recognised, places in two zones, a second home in the EU/EEA, a company vehicle, VPN, travel or
an EU/EEA phone beside a non-EU answer all give UNKNOWN, and the phone and the Telegram language
only corroborate or contradict, never decide.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache

import phonenumbers
from rapidfuzz.distance import OSA

from triage.domain.codes import IN_SCOPE, Zone, zone_of_code
from triage.domain.lexicon import (
    Cue,
    concepts,
    cues,
    irish_base,
    language_code,
    lemmas,
    phrases,
    raw_entries,
)
from triage.domain.matching import PhraseIndex
from triage.domain.text import Token, fold, tokens

#: The vocabulary around place names (triage/data/lexicon/<language>/places.yaml).
_PART = "places"


@dataclass(frozen=True)
class _Vocabulary:
    """One concept's cue phrases, every language, matched in one pass over the words."""

    cues: tuple[Cue, ...]
    index: PhraseIndex


@cache
def _vocabulary(part: str, concept: str) -> _Vocabulary:
    found = cues(part, concept)
    return _Vocabulary(found, PhraseIndex(phrases(found)))


@cache
def _own(part: str, concept: str, language: str) -> frozenset[tuple[str, bool]]:
    """The (phrase, star) pairs one language's file lists for a concept.

    `cues` keeps a phrase once, under the first language that lists it ("ei" is Estonian and
    Finnish), so the language of a `Cue` cannot say whether another language has it too.
    """
    raw = raw_entries(language, part, concept)
    return frozenset((fold(p.rstrip("*")), p.endswith("*")) for p, _ in raw)


def _words_of(part: str, concept: str) -> frozenset[str]:
    """The one-word phrases of a concept, folded (for set lookups)."""
    return frozenset(c.phrase for c in cues(part, concept) if " " not in c.phrase and not c.star)


#: Common words of the supported languages that also spell a place ("Nice", "Split", "Best").
#: They never match a town in a sentence unless written like one, and never match fuzzily.
STOPWORDS = _words_of(_PART, "stopwords")


@cache
def _locatives(language: str | None) -> frozenset[str]:
    """Words right before a name that make it a place ("in", "à", "w", "в"): the client's
    language and English (all languages when it is unknown: Romanian "am" is "I have")."""
    if language is None:
        return _words_of(_PART, "locative")
    return frozenset(
        p for lang in (language, "en") for p, star in _own(_PART, "locative", lang) if not star
    )


#: Kinds of gazetteer entry, strongest first (see `triage.geodata`).
_KIND_RANK = {"edge": 0, "alias": 1, "country": 2, "region": 3, "city": 4, "area": 5}
#: How precisely a kind of entry locates someone ("Funchal, Portugal" is Funchal).
_SPECIFICITY = {"city": 4, "edge": 3, "alias": 3, "region": 2, "country": 1, "area": 0}
_STRONG = frozenset({"edge", "alias", "country"})
#: A town this size counts even when written in lower case in a sentence.
_BIG_CITY = 100_000


@dataclass(frozen=True)
class Place:
    """One gazetteer entry: the code it belongs to, its kind, size and a label for people.

    `main` is False for a city's alternate name ("Lisboa" for Lisbon in the English data), which
    is weaker evidence than its own name ("Zaragoza" is also an alternate name of a Mexican city
    five times the size of the Spanish one).
    """

    code: str
    kind: str
    population: int
    label: str
    main: bool = True

    @property
    def weight(self) -> int:
        """How much this reading counts when several places share a name."""
        return self.population if self.main else self.population // 10


@dataclass(frozen=True)
class Gazetteer:
    """Place names, folded, with the indexes the classifier needs. Built by `triage.geodata`."""

    names: Mapping[str, tuple[Place, ...]]
    max_words: int
    #: deletion variant -> names it comes from (one deletion), for typo-tolerant lookup.
    fuzzy_index: Mapping[str, tuple[str, ...]]
    #: first five letters -> names, for inflected forms ("Warszawie", "Krakowie").
    stems: Mapping[str, tuple[str, ...]]
    #: nationality or language word -> country code: evidence of nationality, not residence.
    nationalities: Mapping[str, str]
    #: words that never match a place fuzzily (nationalities, language names).
    ignore: frozenset[str]
    labels: Mapping[str, str]
    #: official languages per code (corroboration only).
    languages: Mapping[str, frozenset[str]]
    codes: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class ResidenceFinding:
    """Where the client lives, as far as the text says, with how sure and why."""

    code: str | None
    zone: Zone
    confidence: float
    place: str | None
    #: Why a person should look: refused, fuzzy, nationality_only, ambiguous, conflict,
    #: dual_residence, travel, vpn, phone_conflict, company_vehicle, language_mismatch.
    signals: tuple[str, ...]
    reasons: tuple[str, ...]
    candidates: tuple[str, ...]


def name_key(text: str) -> str:
    """The matching form of a place name: folded words joined by single spaces."""
    return fold(text)


def _deletions(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


def build_deletion_index(keys: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """Index every key under itself and its one-letter deletions (symmetric delete)."""
    index: dict[str, set[str]] = defaultdict(set)
    for key in keys:
        index[key].add(key)
        for variant in _deletions(key):
            index[variant].add(key)
    return {k: tuple(sorted(v)) for k, v in index.items()}


def build_stem_index(keys: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """Index single-word names by their first five letters, for inflected forms."""
    index: dict[str, set[str]] = defaultdict(set)
    for key in keys:
        if len(key) >= 5:
            index[key[:5]].add(key)
    return {k: tuple(sorted(v)) for k, v in index.items()}


@dataclass(frozen=True)
class _Hit:
    """A place name found in the text."""

    start: int  # token index
    end: int
    key: str
    places: tuple[Place, ...]
    fuzzy: bool
    score: float
    origin: bool = False
    #: Introduced as where the client lives ("I live in ...", "... yaşıyorum").
    resident: bool = False
    #: In a clause about travel or a temporary stay ("currently in ...").
    travel: bool = False
    line: int = 0
    #: Found through the word's lemma ("Lontoossa" -> Lontoo), not as written.
    inflected: bool = False
    #: Introduced as a company's seat ("registered in ...", "Sitz in ...").
    seat: bool = False
    #: Negated in its clause ("ei oo enää asuntoa Suomessa", "not in Germany any more").
    negated: bool = False


def _rank(p: Place, lang: str, gz: Gazetteer) -> tuple[int, int, int]:
    speaks = 0 if lang and lang in gz.languages.get(p.code, frozenset()) else 1
    return (_KIND_RANK.get(p.kind, 9), -p.weight, speaks)


def _best_place(places: tuple[Place, ...], language: str | None, gz: Gazetteer) -> Place:
    """The likeliest reading of a name: the strongest kind, then the largest place.

    The client's language only breaks ties: it must never make "Paris" a South African town.
    """
    lang = (language or "").split("-")[0].lower()
    return min(places, key=lambda p: _rank(p, lang, gz))


def _eu_rival(best: Place, places: Iterable[Place]) -> bool:
    """Whether a non-EU reading has an EU/EEA namesake big enough that the client may mean it.

    Fail closed: a town of 5,000 inside the EU is a rival unless the other place is more than a
    hundred times its size ("Belém" in Lisbon against Belém in Brazil is a question for the
    client; a hamlet named like a capital is not). A region counts as a large place; a name from
    another language's list ("Rusko", Czech for Russia) is weaker than any town's own name.
    """
    weight = 500_000 if best.kind == "region" else best.weight
    for p in places:
        if zone_of_code(p.code) not in IN_SCOPE or p.kind == "area":
            continue
        if p.kind in _STRONG or p.kind == "region":
            return True
        if p.main and (not best.main or p.population >= max(5_000, weight // 100)):
            return True
        if not p.main and p.population >= max(50_000, weight // 3):
            return True
    return False


def _fuzzy_lookup(word: str, gz: Gazetteer) -> tuple[tuple[str, ...], float]:
    """Names within a small edit distance of `word`, and the similarity of the best (0..1)."""
    if len(word) < 5 or word in STOPWORDS or word in gz.ignore:
        return (), 0.0
    found: set[str] = set(gz.fuzzy_index.get(word, ()))
    for variant in _deletions(word):
        found.update(gz.fuzzy_index.get(variant, ()))
    if not found:
        return (), 0.0
    limit = 1 if len(word) < 7 else 2
    scored = [(OSA.distance(word, k), k) for k in found]
    scored = [(d, k) for d, k in scored if d <= limit]
    if not scored:
        return (), 0.0
    best = min(d for d, _ in scored)
    keys = tuple(sorted(k for d, k in scored if d == best))
    return keys, 1.0 - best / max(len(word), 4)


def _stem_lookup(word: str, gz: Gazetteer) -> tuple[str, ...]:
    """Names the word is an inflection of ("warszawie" -> "warszawa")."""
    if len(word) < 6 or word in STOPWORDS or word in gz.ignore:
        return ()
    out = []
    for key in gz.stems.get(word[:5], ()):
        common = 0
        for a, b in zip(word, key, strict=False):
            if a != b:
                break
            common += 1
        # Keep most of the name, and change at most a short ending.
        if common >= max(5, len(key) - 2) and len(word) - common <= 4 and key != word:
            out.append(key)
    return tuple(out)


#: Case endings of place names and the endings of the name itself, folded ("Pradze" -> "praga",
#: "Празі" -> "прага", "Praze" -> "praha", "Brně" -> "brno", "Риге" -> "рига"). Slavic
#: locatives soften the last consonant (г/g -> з/dz/z, к/k -> ц/c), so a prefix match misses
#: them; only names of some size are accepted this way, and only where written like a place.
_CASE_ENDINGS: tuple[tuple[str, str], ...] = tuple(
    (fold(a), fold(b))
    for a, b in (
        ("dze", "ga"),
        ("ze", "ha"),
        ("ze", "ga"),
        ("ce", "ka"),
        ("ii", "ia"),
        ("ie", "a"),
        ("ie", ""),
        ("e", "a"),
        ("e", "o"),
        ("e", ""),
        ("i", "a"),
        ("y", "a"),
        ("u", ""),
        ("iu", ""),
        ("zi", "ga"),
        ("зі", "га"),
        ("ці", "ка"),
        ("сі", "са"),
        ("ві", "ва"),
        ("і", "а"),
        ("і", ""),
        ("е", "а"),
        ("е", ""),
        ("е", "я"),
        ("и", "я"),
        ("у", ""),
        ("ы", "а"),
        ("єві", "ів"),
        ("ові", "ів"),
        ("ban", ""),
        ("ben", ""),
        ("ba", ""),
        ("be", ""),
    )
)


def _case_lookup(word: str, gz: Gazetteer) -> tuple[str, ...]:
    """Names the word is a case form of, by its ending ("празі" -> "прага")."""
    if len(word) < 4 or word in STOPWORDS or word in gz.ignore:
        return ()
    out: list[str] = []
    for ending, base in _CASE_ENDINGS:
        if not word.endswith(ending) or len(word) - len(ending) < 3:
            continue
        key = word[: len(word) - len(ending)] + base
        places = gz.names.get(key, ())
        if any(
            p.kind in ("country", "region", "alias", "edge")
            or (p.kind == "city" and p.population >= 15_000)
            for p in places
        ):
            out.append(key)
    return tuple(dict.fromkeys(out))


def _filler(word: str) -> bool:
    return word in STOPWORDS or len(word) <= 2 or word.isdigit()


#: Irish mutates the first letter of a name: lenition ("Cheanada" for Ceanada) and eclipsis
#: ("nGaillimh", "bhFrainc", "gCorcaigh"); the gazetteer holds the plain form.
@dataclass(frozen=True)
class _Text:
    """The words of an answer as written (folded) and as lemmas, with the client's language."""

    toks: list[Token]
    words: list[str]
    lemmas: list[str]
    language: str | None
    memo: dict[tuple[str, str, bool], list[tuple[int, int]]] = field(
        default_factory=dict, compare=False, repr=False
    )

    def spans(
        self, concept: str, part: str = _PART, *, own: bool = False
    ) -> list[tuple[int, int]]:
        """Token spans [start, end) of a concept's cues, on the words and on their lemmas.

        A cue weighted below 1 is a common word of another language: it counts only in its own
        language. With `own`, so do short words and stems (English when the language is
        unknown): "no" is "in the" in Portuguese, "anne*" (Turkish "mother") starts "annee".
        """
        key = (part, concept, own)
        if key in self.memo:
            return self.memo[key]
        vocab = _vocabulary(part, concept)
        lang = self.language or "en"
        found: set[tuple[int, int]] = set()
        for view in (self.words, self.lemmas):
            for i, starts in vocab.index.matches(view).items():
                cue = vocab.cues[i]
                loose = own and (cue.star or len(cue.phrase) < 5)
                if (cue.weight < 1 or loose) and cue.language != lang:
                    if (cue.phrase, cue.star) not in _own(part, concept, lang):
                        continue
                size = vocab.index.size(i)
                found.update((s, s + size) for s in starts)
            if self.lemmas is self.words:
                break
        self.memo[key] = out = sorted(found)
        return out

    def has(self, concept: str, part: str = _PART) -> bool:
        return bool(self.spans(concept, part))

    def sliced(self, start: int, end: int) -> _Text:
        return _Text(self.toks[start:end], self.words[start:end], self.lemmas[start:end],
                     self.language)  # fmt: skip


def _read(text: str, language: str | None) -> _Text:
    toks = list(tokens(text))
    words = [t.folded for t in toks]
    lang = language_code(language)
    lems = lemmas(text, lang) if lang else words
    if len(lems) != len(words):
        lems = words
    return _Text(toks, words, lems, lang)


def _candidates(text: _Text, gz: Gazetteer) -> list[_Hit]:
    """Every place name the words could be, before deciding which ones the client meant."""
    toks, words = text.toks, text.words
    hits: list[_Hit] = []
    i, n = 0, len(words)
    while i < n:
        found: _Hit | None = None
        for size in range(min(gz.max_words, n - i), 0, -1):
            if toks[i].line != toks[i + size - 1].line:
                continue
            key = " ".join(words[i : i + size])
            places = gz.names.get(key)
            if not places:
                continue
            if size == 1 and key in {"in", "i", "a", "as", "de", "no", "to", "am", "is"}:
                if not any(p.kind in _STRONG for p in places):
                    continue
            if (
                size == 1
                and key in gz.nationalities
                and not any(p.kind in _STRONG for p in places)
            ):
                continue
            lemma = text.lemmas[i] if size == 1 else key
            if lemma != key and lemma not in STOPWORDS and gz.names.get(lemma):
                # "Tartus" is Tartus in Syria and "in Tartu": both readings stand.
                places = places + gz.names[lemma]
            found = _Hit(i, i + size, key, places, False, 1.0, line=toks[i].line)
            break
        if found is None:
            found = _inflected(i, text, gz)
        if found is None:
            word = words[i]
            keys, score = _fuzzy_lookup(word, gz)
            fuzzy_keys = keys
            if not keys:
                fuzzy_keys = _stem_lookup(word, gz) or _case_lookup(word, gz)
                score = 0.85 if fuzzy_keys else 0.0
            if fuzzy_keys:
                places = tuple(p for k in fuzzy_keys for p in gz.names.get(k, ()))
                if places:
                    found = _Hit(
                        i, i + 1, "/".join(fuzzy_keys), places, True, score, line=toks[i].line
                    )
        if found is not None:
            hits.append(found)
            i = found.end
        else:
            i += 1
    return hits


def _inflected(i: int, text: _Text, gz: Gazetteer) -> _Hit | None:
    """A name found through the word's lemma ("lontoossa" -> "lontoo") or Irish mutation."""
    word = text.words[i]
    if len(word) < 4 or word in STOPWORDS or word in gz.ignore:
        return None
    for key in (text.lemmas[i], irish_base(word) if text.language == "ga" else word):
        if key == word or len(key) < 3 or key in STOPWORDS or key in gz.nationalities:
            continue
        places = gz.names.get(key)
        if places:
            return _Hit(i, i + 1, key, places, False, 0.95, line=text.toks[i].line, inflected=True)
    return None


def _meant(
    hit: _Hit,
    toks: list[Token],
    whole: bool,
    alone: bool,
    cased: bool,
    cue: tuple[bool, bool],
    locatives: frozenset[str],
) -> bool:
    """Whether the client wrote this name as a place, not as an ordinary word.

    `whole`: the hit's clause says nothing but place names ("Innsbruck, Tirol"); `alone`: it is
    the only name in its clause. `cased`: the text mixes upper and lower case, so a capital
    letter means something. `cue`: a residence or seat cue stands right before it, right after
    it (languages that put the verb last: "Lontoossa asun", "Innsbruck'ta yaşıyorum").
    """
    places = hit.places
    curated = any(p.kind in ("edge", "alias") for p in places)
    country = any(p.kind == "country" and p.main for p in places)
    if not hit.fuzzy and not hit.inflected and (curated or country):
        return True
    first = toks[hit.start]
    initial = hit.start == 0 or toks[hit.start - 1].clause != first.clause
    capital = cased and first.capitalised
    stop = hit.end - hit.start == 1 and hit.key in STOPWORDS
    if whole and not stop and (not hit.fuzzy or capital or not cased):
        # A clause of nothing but place names; a corrected spelling must still look like one.
        return True
    before = toks[hit.start - 1].folded if hit.start > 0 else ""
    locative = (before in locatives and not initial) or cue[0]
    cities = [p for p in places if p.kind == "city"]
    big = any(p.population >= _BIG_CITY for p in cities) or any(
        p.kind in ("region", "country", "edge", "alias") for p in places
    )
    if hit.inflected:
        return locative or capital or cue[1] or (not cased and big)
    if hit.fuzzy:
        return locative or (capital and (big or not initial))
    if stop:
        # "Nice" alone is the town; "moro em Faro" is "I live in Faro".
        return (whole and alone) or (capital and locative)
    if hit.end - hit.start > 1:
        return capital or locative or not cased
    if all(p.kind == "country" for p in places):
        # Only names from other languages' lists ("Čada"): written like a name, or nothing.
        return capital and not initial
    main = any(p.main for p in cities) or any(p.kind == "region" for p in places)
    if locative:
        return main or capital or big
    if capital:
        return big or (not initial and main)
    return not cased and big and main


def _near(hit: _Hit, spans: Sequence[tuple[int, int]], toks: list[Token], before: int,
          after: int) -> bool:  # fmt: skip
    """Whether a cue ends at most `before` words before the hit or starts at most `after` words
    after it, in the hit's clause."""
    clause = toks[hit.start].clause
    for s, e in spans:
        if 0 <= hit.start - e <= before and toks[max(0, e - 1)].clause == clause:
            return True
        if 0 <= s - hit.end <= after and s < len(toks) and toks[s].clause == clause:
            return True
    return False


def _mark(hits: list[_Hit], text: _Text) -> list[_Hit]:
    """Origin ("born in"), residence ("I live in"), seat, travel and negation around a hit."""
    toks = text.toks
    residence = text.spans("residence")
    seat = text.spans("seat")
    origin = text.spans("origin")
    travel = text.spans("travel")
    # A negation that is also a locative of the language ("no" is "in the" in Portuguese)
    # does not scope a place name.
    locatives = _locatives(text.language)
    negation = [
        (s, e)
        for s, e in text.spans("negation", "clauses", own=True)
        if not (e - s == 1 and text.words[s] in locatives)
    ]
    out = []
    for h in hits:
        clause = toks[h.start].clause
        resident = _near(h, residence, toks, 2, 2)
        away = any(
            toks[min(s, len(toks) - 1)].clause == clause and -6 <= s - h.start <= 6
            for s, _ in travel
        )
        negated = any(0 <= h.start - e <= 4 and toks[s].clause == clause for s, e in negation)
        out.append(
            _Hit(
                h.start,
                h.end,
                h.key,
                h.places,
                h.fuzzy,
                h.score,
                origin=_near(h, origin, toks, 4, 1) and not _after_home(h, origin, residence),
                resident=resident,
                travel=away and not resident,
                line=h.line,
                inflected=h.inflected,
                seat=_near(h, seat, toks, 3, 2),
                negated=negated,
            )
        )
    return out


def _after_home(hit: _Hit, origin: Sequence[tuple[int, int]],
                residence: Sequence[tuple[int, int]]) -> bool:  # fmt: skip
    """Whether a residence cue stands between the origin cue before a hit and the hit ("I'm
    from Belgrade but living in Vienna": Vienna is home, Belgrade the origin)."""
    before = [e for _, e in origin if e <= hit.start]
    if not before:
        return False
    last = max(before)
    return any(last <= s and e <= hit.start for s, e in residence)


#: Words of these concepts are the client's vocabulary, not a place ("na verdade" is
#: "actually", not Verdal in Norway; "vill inte säga" is "rather not say", not Saga in Japan).
_VOCABULARY_SPANS = (
    *((_PART, c) for c in ("residence", "seat", "travel", "moved", "origin", "refusal", "vpn",
                           "dual_residence", "company", "managed")),
    ("clauses", "correction"),
    ("clauses", "negation"),
    ("clauses", "hedge"),
)  # fmt: skip


def _find_places(text: _Text, gz: Gazetteer) -> list[_Hit]:
    toks = text.toks
    raw = _candidates(text, gz)
    covered = {i for h in raw for i in range(h.start, h.end)}
    bare = {t.clause for t in toks} - {
        t.clause for i, t in enumerate(toks) if i not in covered and not _filler(t.folded)
    }
    letters = "".join(t.original for t in toks)
    cased = letters != letters.lower() and letters != letters.upper()
    per_clause: dict[int, int] = defaultdict(int)
    for h in raw:
        per_clause[toks[h.start].clause] += 1
    cues = text.spans("residence") + text.spans("seat")
    vocabulary = {
        i
        for part, concept in _VOCABULARY_SPANS
        for s, e in text.spans(concept, part)
        for i in range(s, e)
    }
    kept = [
        h
        for h in raw
        if not (
            (h.fuzzy or h.inflected or all(p.kind not in ("edge", "alias") for p in h.places))
            and all(i in vocabulary for i in range(h.start, h.end))
        )
        and _meant(
            h,
            toks,
            toks[h.start].clause in bare,
            per_clause[toks[h.start].clause] == 1,
            cased,
            (_near(h, cues, toks, 2, -1), _near(h, cues, toks, -1, 1)),
            _locatives(text.language),
        )
    ]
    return _mark(kept, text)


def _corrected(hits: list[_Hit], text: _Text) -> tuple[list[_Hit], bool]:
    """Drop the places a later correction or move replaces ("Riga... sorry, now Tallinn").

    A correction ("no wait, I mean", clauses.yaml) or a move ("I moved", places.yaml) between
    two places, in the same answer or a later one, leaves only the places after it. A move
    inside a clause about travel ("right now I'm in Bangkok") replaces nothing.
    """
    travel_clauses = {text.toks[s].clause for s, _ in text.spans("travel") if s < len(text.toks)}
    marks = [s for s, _ in text.spans("correction", "clauses")]
    marks += [s for s, _ in text.spans("moved") if text.toks[s].clause not in travel_clauses]
    cut = -1
    for m in sorted(marks):
        later = [h for h in hits if h.start >= m and not (h.travel or h.negated)]
        if later and any(h.end <= m for h in hits):
            cut = m
    if cut < 0:
        return hits, False
    return [h for h in hits if h.start >= cut], True


def _next_to_name(hits: list[_Hit]) -> list[_Hit]:
    """A misspelt name right beside a place named exactly: the exact one's country decides.

    "Vilnius, Lituanija", "Lisboa, Portgual", "Backy Petrovec, Srbsko": a spelling-corrected
    reading next to an exact name (at most two words apart) that names another country is a
    misreading, not a second place; one that names the same country keeps only its readings.
    A corrected name the client introduced as home ("I live in ...") is never dropped.
    """
    exact = [
        (h, codes)
        for h in hits
        if not h.fuzzy
        and len(codes := {p.code for p in h.places if p.code}) == 1
        and any(p.kind != "area" for p in h.places)
    ]
    if not exact:
        return hits
    out = []
    for h in hits:
        named: set[str] = set()
        for e, codes in exact:
            if e.line == h.line and (0 <= h.start - e.end <= 2 or 0 <= e.start - h.end <= 2):
                named |= codes
        if h.fuzzy and named and not h.resident:
            same = tuple(p for p in h.places if p.code in named)
            if not same:
                continue
            h = _Hit(h.start, h.end, h.key, same, h.fuzzy, h.score, h.origin, h.resident,
                     h.travel, h.line, h.inflected, h.seat, h.negated)  # fmt: skip
        out.append(h)
    return out


def _not_home(hits: list[_Hit], text: _Text) -> list[_Hit]:
    """Leave out places that are not where the client lives, when another place remains.

    A place in a clause about family ("my parents are in Sofia"), right after a word for a part
    of town ("colonia Roma"), or in a clause about a VPN ("the VPN is set to Canada").
    """
    toks = text.toks
    family = {toks[s].clause for s, _ in text.spans("family", own=True)}
    vpn = {toks[s].clause for s, _ in text.spans("vpn")}
    districts = text.spans("district", own=True)
    district_ends = {e for _, e in districts}
    kept = [
        h
        for h in hits
        if not (
            (toks[h.start].clause in family and not h.resident)
            or toks[h.start].clause in vpn
            or h.start in district_ends
            or (h.start, h.end) in districts
        )
    ]
    return kept if kept else hits


def phone_country(phone: str | None) -> str | None:
    """The country of a phone number's prefix (ISO code), or None."""
    if not phone:
        return None
    try:
        number = phonenumbers.parse(phone if phone.startswith("+") else "+" + phone, None)
    except phonenumbers.NumberParseException:
        return None
    region = phonenumbers.region_code_for_number(number)
    return None if not region or region == "ZZ" else str(region)


def _unknown(
    signals: Iterable[str],
    reasons: Iterable[str],
    candidates: Iterable[str] = (),
    place: str | None = None,
) -> ResidenceFinding:
    return ResidenceFinding(
        code=None,
        zone=Zone.UNKNOWN,
        confidence=0.0,
        place=place,
        signals=tuple(dict.fromkeys(signals)),
        reasons=tuple(reasons),
        candidates=tuple(dict.fromkeys(candidates)),
    )


def _explicit_part(text: _Text) -> _Text | None:
    """The words around "I live in ..." (for messages that answer another question): up to six
    after the cue and, for languages that put the verb last ("Innsbruck'ta yaşıyorum"), three
    before it, in the cue's clause."""
    toks = text.toks
    family = {toks[s].clause for s, _ in text.spans("family", own=True)}
    # "My brother lives in Hong Kong" says nothing about the client.
    spans = [(s, e) for s, e in text.spans("residence") if toks[s].clause not in family]
    if not spans:
        return None
    start, end = spans[0]
    clause = toks[start].clause
    lo = start
    while lo > max(0, start - 3) and toks[lo - 1].clause == clause:
        lo -= 1
    hi = end
    after = toks[min(end, len(toks) - 1)].clause
    while hi < min(len(toks), end + 6) and toks[hi].clause == after:
        hi += 1
    part = text.sliced(lo, hi)
    return part if part.toks else None


def _resolve(hit: _Hit, others: list[_Hit], language: str | None, gz: Gazetteer) -> Place | None:
    """The place a hit means, or None when it can be inside or outside the EU/EEA."""
    named = {
        p.code
        for h in others
        if h is not hit and (not h.fuzzy or h.score >= 0.8)
        for p in h.places
        if p.kind in _STRONG
    }
    places = hit.places
    # A country named in the same answer settles which "Melbourne" or "Valencia" it is.
    same_country = tuple(p for p in places if p.code in named)
    if same_country:
        places = same_country
    best = _best_place(places, language, gz)
    if zone_of_code(best.code) in IN_SCOPE or best.kind == "area":
        return best
    if _eu_rival(best, places):
        return None
    # A misspelt word read as a non-EU city may as well be an EU town we do not know, unless
    # a name written exactly puts it in that country ("Londyne, Walthamstow").
    confirmed = {
        p.code
        for h in others
        if h is not hit and not h.fuzzy and len({q.code for q in h.places}) == 1
        for p in h.places
    }
    if hit.fuzzy and best.kind == "city" and best.code not in confirmed:
        return None
    return best


@cache
def _channel_words() -> frozenset[str]:
    """The words of the sources' and services' lexicons (Google, Telegram, bitcoin...)."""
    return frozenset(
        word
        for part in ("sources", "services")
        for concept in concepts(part)
        for cue in cues(part, concept)
        for word in cue.phrase.split()
    )


def places_named(
    text: str, gazetteer: Gazetteer, *, language: str | None = None
) -> tuple[str, ...]:
    """The countries of the places an answer other than the residence one names as where
    something happened ("your ad, when I was in Recife", "your stand in Istanbul").

    Stricter than a residence reading, because any word of a long answer may spell a town
    ("Kuba" the influencer, Danish "inde"): only names written exactly, introduced by a
    locative word ("in", "w", "в") or a travel clause, or inflected for place and written as
    a name ("Helsingissä"); never a place of origin or a negated one.
    """
    read = _read(text, language)
    if not read.toks:
        return ()
    hits = _find_places(read, gazetteer)
    locatives = _locatives(read.language)
    channels = _channel_words()
    out: list[str] = []
    for hit in hits:
        if hit.fuzzy or hit.origin or hit.negated:
            continue
        if all(w in channels for w in read.words[hit.start : hit.end]):
            continue  # "på Google", "on Telegram": a channel, not a town of that name
        introduced = hit.start > 0 and read.words[hit.start - 1] in locatives
        # A word read as a place through its lemma must be written as a name ("teidän" is
        # "your", its lemma "sinä" also a town).
        named = hit.inflected and read.toks[hit.start].capitalised
        if not (introduced or hit.travel or named):
            continue
        place = _resolve(hit, hits, read.language, gazetteer)
        if place is not None and place.code and place.code not in out:
            out.append(place.code)
    return tuple(out)


def classify_residence(
    text: str,
    gazetteer: Gazetteer,
    *,
    language: str | None = None,
    phone: str | None = None,
    explicit_only: bool = False,
) -> ResidenceFinding:
    """Where the client lives or their company has its seat, from their own words.

    With `explicit_only` (any message other than the answer to the residence question) only a
    place introduced as the residence ("I live in Vienna", "wohne in Graz") counts.
    """
    read = _read(text, language)
    if not read.toks:
        return _unknown((), ("no residence given",))
    if explicit_only:
        part = _explicit_part(read)
        if part is None:
            return _unknown((), ("no residence stated in this message",))
        read = part
    toks = read.toks
    signals: list[str] = []
    reasons: list[str] = []
    hits = _find_places(read, gazetteer)
    if read.has("refusal") and not [h for h in hits if not h.fuzzy]:
        return _unknown(("refused",), ("the client would rather not say where they live",))
    if read.has("vpn"):
        signals.append("vpn")
        reasons.append("the client mentions a VPN, a proxy or geo-blocking")
    if read.has("travel"):
        signals.append("travel")
        reasons.append("the client is travelling or only temporarily somewhere")

    residence_hits = [h for h in hits if not h.origin]
    if not residence_hits and hits:
        residence_hits = hits  # "born in Lyon" and nothing else: still the only place given
    residence_hits, corrected = _corrected(residence_hits, read)
    if corrected:
        reasons.append("the client corrected an earlier place; the later one counts")
    affirmed = [h for h in residence_hits if not h.negated]
    if affirmed and len(affirmed) < len(residence_hits):
        reasons.append("a place the client says they no longer live in is left out")
        residence_hits = affirmed
    residence_hits = _next_to_name(_not_home(residence_hits, read))
    if not residence_hits:
        nat = [
            gazetteer.nationalities[t.folded] for t in toks if t.folded in gazetteer.nationalities
        ]
        if nat:
            return _unknown(
                ("nationality_only",),
                (f"the client names a nationality or language ({nat[0]}), not a residence",),
                nat,
            )
        return _unknown(signals, reasons or ["no place recognised"])

    chosen: list[tuple[_Hit, Place]] = []
    ambiguous: list[str] = []
    for hit in residence_hits:
        place = _resolve(hit, residence_hits, language, gazetteer)
        if place is None:
            ambiguous.append(hit.key)
        else:
            chosen.append((hit, place))
    if ambiguous and not chosen:
        cands = [p.code for h in residence_hits for p in h.places]
        return _unknown(
            [*signals, "ambiguous"],
            [*reasons, f"'{ambiguous[0]}' can be a place inside or outside the EU/EEA"],
            cands,
        )
    if ambiguous:
        signals.append("ambiguous")
        reasons.append(f"'{ambiguous[0]}' can be a place inside or outside the EU/EEA")

    company = read.has("company") and (read.has("seat") or read.has("managed"))
    dual = read.has("dual_residence") or _between(read, [h for h, _ in chosen])
    if company:
        chosen = _seat_decides(chosen, read, reasons)
    elif not dual:
        chosen = _home_over_travel(chosen, toks, signals, reasons)
    codes = list(dict.fromkeys(p.code for _, p in chosen if p.code))
    zones_found = {zone_of_code(c) for c in codes}
    fuzzy = any(h.fuzzy for h, _ in chosen)
    if fuzzy:
        signals.append("fuzzy")
    # The most specific place named (a city, an island) gives the label and the code.
    primary_hit, primary = max(
        chosen,
        key=lambda hp: (bool(hp[1].code), not hp[0].fuzzy, _SPECIFICITY.get(hp[1].kind, 0)),
    )
    code = primary.code if primary.code else (codes[0] if codes else None)
    if code is None:
        return _unknown(signals, [*reasons, "no country recognised"])
    label = primary.label

    if len(zones_found) > 1 or (ambiguous and zones_found - IN_SCOPE):
        if company:
            signals.append("company_vehicle")
            reasons.append("a company registered in one place and run from another")
        elif dual or not signals:
            # Two homes, one of them in the EU/EEA: never settled here (DOMAIN.md 8).
            signals.append("dual_residence")
            reasons.append("the client names places in different zones")
        else:
            signals.append("conflict")
            reasons.append("the client names places in different zones")
        return _unknown(signals, reasons, codes, label)
    zone = zone_of_code(code)
    confidence = min(h.score for h, _ in chosen)
    if fuzzy:
        reasons.append(f"'{primary_hit.key.split('/')[0]}' read as {label} (spelling corrected)")
    else:
        reasons.append(f"place named: {label}")

    phone_cc = phone_country(phone)
    if phone_cc is not None:
        phone_zone = zone_of_code(phone_cc)
        if phone_zone in IN_SCOPE and zone not in IN_SCOPE:
            signals.append("phone_conflict")
            reasons.append(f"phone number from {phone_cc}, an EU/EEA country")
        elif phone_zone not in IN_SCOPE and zone in IN_SCOPE:
            reasons.append(f"phone number from {phone_cc} (does not change an EU/EEA residence)")
    lang = (language or "").split("-")[0].lower()
    if lang and gazetteer.languages.get(code) and lang not in gazetteer.languages[code]:
        if lang != "en":
            signals.append("language_mismatch")

    # Fail closed: any of these beside a non-EU answer means a person decides (DOMAIN.md 6).
    doubts = {"vpn", "travel", "phone_conflict", "ambiguous", "dual_residence"} & set(signals)
    if zone is Zone.OUTSIDE and (doubts or (dual and len(chosen) > 1)):
        return _unknown(signals, reasons, codes, label)
    if zone is Zone.OUTSIDE and dual and _in_scope_named(hits):
        # Two homes, one in the EU/EEA, whatever was left out on the way (DOMAIN.md 8).
        return _unknown(
            [*signals, "dual_residence"], [*reasons, "a second home in the EU/EEA"], codes, label
        )
    if zone is Zone.OUTSIDE and fuzzy and confidence < 0.75:
        return _unknown(
            [*signals, "ambiguous"], [*reasons, "spelling too far off to be sure"], codes, label
        )
    return ResidenceFinding(
        code=code,
        zone=zone,
        confidence=confidence if zone is not Zone.HUMAN else 1.0,
        place=label,
        signals=tuple(dict.fromkeys(signals)),
        reasons=tuple(reasons),
        candidates=tuple(codes),
    )


def _in_scope_named(hits: list[_Hit]) -> bool:
    """Whether any place named outside an origin clause has an EU/EEA reading."""
    return any(
        zone_of_code(p.code) in IN_SCOPE
        for h in hits
        if not (h.origin or h.negated)
        for p in h.places
        if p.code
    )


def _between(text: _Text, hits: list[_Hit]) -> bool:
    """ "Between X and Y": a between-cue before two places of one answer."""
    for s, _ in text.spans("between"):
        line = text.toks[s].line
        if len([h for h in hits if h.start > s and h.line == line]) >= 2:
            return True
    return False


def _seat_decides(
    chosen: list[tuple[_Hit, Place]], text: _Text, reasons: list[str]
) -> list[tuple[_Hit, Place]]:
    """A company seated in the EU/EEA whose writer lives elsewhere: the seat decides.

    The client is the company ("our seat is in Vienna, I live in Dubai"). Only when every place
    outside the EU/EEA is the writer's own home: a non-EU vehicle, office or management stays a
    question for a person (DOMAIN.md 6).
    """
    seats = [(h, p) for h, p in chosen if h.seat]
    if not seats or any(zone_of_code(p.code) not in IN_SCOPE for _, p in seats):
        return chosen
    vehicle = text.spans("company") + text.spans("managed")
    for h, p in chosen:
        if zone_of_code(p.code) in IN_SCOPE or h.seat:
            continue
        # "... but I live in Dubai" is the writer's home; "a subsidiary in Dubai" is not.
        if not h.resident or _near(h, vehicle, text.toks, 3, 1):
            return chosen
    reasons.append("the company's seat is in the EU/EEA; the client is the company")
    return [(h, p) for h, p in chosen if zone_of_code(p.code) in IN_SCOPE]


def _home_over_travel(
    chosen: list[tuple[_Hit, Place]], toks: list[Token], signals: list[str], reasons: list[str]
) -> list[tuple[_Hit, Place]]:
    """Keep the home place when one answer names home and a place of travel or a workplace.

    Only within one answer (line): two answers that name different zones stay a conflict. A
    home outside the EU/EEA beside an EU/EEA place is never settled here: "I live in Dubai, I'm
    in Paris for a few weeks" goes to a person (a client situated in the Union, DOMAIN.md 6).
    """
    zones = {zone_of_code(p.code) for _, p in chosen}
    if len(zones) < 2 or len({h.line for h, _ in chosen}) > 1:
        return chosen
    home = [(h, p) for h, p in chosen if not h.travel]
    away = [(h, p) for h, p in chosen if h.travel]
    if away and home and len({zone_of_code(p.code) for _, p in home}) == 1:
        home_zone = zone_of_code(home[0][1].code)
        if home_zone in IN_SCOPE or all(zone_of_code(p.code) not in IN_SCOPE for _, p in away):
            if "travel" not in signals:
                signals.append("travel")
                reasons.append("the client is travelling or only temporarily somewhere")
            return home
    marked = [(h, p) for h, p in chosen if h.resident]
    clauses = {toks[h.start].clause for h, _ in marked}
    others = [h for h, _ in chosen if not h.resident]
    if (
        marked
        and len({zone_of_code(p.code) for _, p in marked}) == 1
        and not any(toks[h.start].clause in clauses for h in others)
    ):
        if zone_of_code(marked[0][1].code) in IN_SCOPE:
            reasons.append("the client names other places, but says they live here")
            return marked
    return chosen
