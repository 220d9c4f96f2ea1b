"""What does the client want? Free text -> a MiCA Art. 3(1)(16) service, or NON_MICA.

The catalogue is DOMAIN.md section 3; the firm's own products (company profile) map named
offers to a code. Anything outside MiCA's crypto-asset services (derivatives, staking and earn,
lending, tokenised securities) is NON_MICA and goes to a person (R9); the asset categories
(stablecoin, derivatives, lending, staking) and requests to skip identity checks are flags
(DOMAIN.md section 6). The words are data (`triage/data/lexicon/*/services.yaml`, and the
clause words of `clauses.yaml`); this module adds the structure: clauses, the reach of a
negation, what a correction replaces. It must never guess a service from nothing (no cue means
no code, and a person decides) and does no I/O beyond the lexicon's one read of its files.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from triage.domain import lexicon
from triage.domain.codes import ServiceCode
from triage.domain.lexicon import LANGUAGES, language_code, lemmas
from triage.domain.matching import PhraseIndex, per_profile
from triage.domain.profile import CompanyProfile, Product
from triage.domain.text import CLAUSE, MAX_TEXT, SENTENCE, clean, fold

S = ServiceCode

#: The service concepts of services.yaml: the code each stands for and its usual confidence.
_CODES: dict[str, tuple[ServiceCode, float]] = {
    "custody": (S.CUSTODY, 0.9),
    "exch_fiat": (S.EXCH_FIAT, 0.75),
    "exch_crypto": (S.EXCH_CRYPTO, 0.75),
    "execution": (S.EXECUTION, 0.85),
    "platform": (S.PLATFORM, 0.85),
    "placing": (S.PLACING, 0.85),
    "rto": (S.RTO, 0.85),
    "advice": (S.ADVICE, 0.85),
    "portfolio": (S.PORTFOLIO, 0.9),
    "transfer": (S.TRANSFER, 0.8),
    "non_mica": (S.NON_MICA, 0.9),
    "staking": (S.NON_MICA, 0.95),
    "lending": (S.NON_MICA, 0.95),
    "derivatives": (S.NON_MICA, 0.95),
}
#: Asset categories outside MiCA's services, each also a flag (a later message naming one no
#: earlier inquiry had is a new request, Art. 61(2)).
_CATEGORIES = frozenset({"staking", "lending", "derivatives"})
#: Context and flag concepts; common/services.yaml adds one `coin_<ticker>` concept per asset.
_CONTEXT = ("stablecoin", "no_kyc", "fiat", "crypto")
#: "I don't want", "istemiyorum": negates the cues of its clause (services.yaml).
_REFUSE = "refuse"
_PRODUCT = "product"
_COIN = "coin_"
#: Clients write English clause words in any language ("not", "but").
_LINGUA_FRANCA = "en"
_ASSET_WORDS = frozenset({"stablecoin", "crypto"})
#: Cues this weak or weaker count only in a text about crypto-assets; a code scored below
#: `_GUESS` is no reading of the request at all ("trade fair").
_WEAK = 0.7
_GUESS = 0.55
#: Clause words (clauses.yaml) this module reads.
_CLAUSE_CONCEPTS = ("negation", "negation_after", "contrast", "correction", "addition", "no")
#: How far back (in words of its clause) a negation reaches a cue, and forward one written
#: after it at the end of its clause ("staking nicht").
_NEGATION_REACH = 5
_AFTER_REACH = 3
#: What a correction replaces: the same kind of thing said again after it.
_GROUP_SERVICE = "service"
_GROUP_ASSET = "asset"
_GROUP_MONEY = "money"


@dataclass(frozen=True)
class _Word:
    """One phrase of the combined index: its concept, confidence and reach."""

    concept: str
    weight: float
    size: int
    #: Clause words only: languages in which it counts only in a conversation in one of them
    #: (a common word of another language), empty when it always counts; and where it is void.
    weak_in: frozenset[str] = frozenset()
    void_in: frozenset[str] = frozenset()
    #: Clause words only: the languages it is a word of (in a conversation in another
    #: language it is some other word: Slovenian "ni" negates, Swedish "ni" is "you").
    languages: frozenset[str] = frozenset()

    def counts_in(self, language: str | None) -> bool:
        """Whether the phrase is read in a conversation in `language` (None: unknown)."""
        if (self.weak_in and language not in self.weak_in) or language in self.void_in:
            return False
        if not self.languages or language is None:
            return True
        return language in self.languages or _LINGUA_FRANCA in self.languages

    @property
    def group(self) -> str | None:
        if self.concept in _CODES or self.concept == _PRODUCT:
            return _GROUP_SERVICE
        if self.concept == "stablecoin" or self.concept.startswith(_COIN):
            return _GROUP_ASSET
        if self.concept == "fiat":
            return _GROUP_MONEY
        return None


def _raw(part: str, concept: str) -> dict[tuple[str, bool], dict[str, float | None]]:
    """(folded phrase, star) -> language -> weight as written, every language kept."""
    out: dict[tuple[str, bool], dict[str, float | None]] = {}
    for language in (*LANGUAGES, lexicon.COMMON):
        for raw, weight in lexicon.raw_entries(language, part, concept):
            phrase = fold(raw.rstrip("*"))
            if phrase:
                out.setdefault((phrase, raw.endswith("*")), {})[language] = weight
    return out


def _service_concepts() -> tuple[str, ...]:
    coins = [c for c in lexicon.raw_concepts(lexicon.COMMON, "services") if c.startswith(_COIN)]
    return (*_CODES, *_CONTEXT, _REFUSE, *coins)


def _build() -> tuple[PhraseIndex, tuple[_Word, ...]]:
    """Every phrase this module looks for, in one index: one pass over the words."""
    keys: list[tuple[str, bool]] = []
    words: list[_Word] = []
    for concept in _service_concepts():
        usual = _CODES[concept][1] if concept in _CODES else 1.0
        for (phrase, star), by_lang in _raw("services", concept).items():
            weight = max(usual if w is None else w for w in by_lang.values())
            keys.append((phrase, star))
            words.append(_Word(concept, weight, len(phrase.split())))
    for concept in _CLAUSE_CONCEPTS:
        for (phrase, star), by_lang in _raw("clauses", concept).items():
            weights = {lang: 1.0 if w is None else w for lang, w in by_lang.items()}
            void = frozenset(lang for lang, w in weights.items() if w <= 0)
            strong = any(w >= 1 for w in weights.values())
            langs = frozenset(lang for lang, w in weights.items() if w > 0)
            weak = frozenset() if strong else langs
            keys.append((phrase, star))
            words.append(_Word(concept, 1.0, len(phrase.split()), weak, void, langs))
    return PhraseIndex(keys), tuple(words)


_INDEX, _WORDS = _build()


@dataclass(frozen=True)
class ServiceFinding:
    """The service a text asks for (or mentions), with every code it touches."""

    code: ServiceCode | None
    #: Every code the text mentions, strongest first (the gate uses all of them).
    codes: tuple[ServiceCode, ...] = ()
    #: The firm's product the text names, if any.
    product: str | None = None
    #: stablecoin, derivatives, lending, staking (asset categories), no_kyc
    flags: frozenset[str] = frozenset()
    confidence: float = 0.0


@dataclass
class _Hit:
    """A phrase found in the text: which one, from which word, and what became of it."""

    word: _Word
    at: int
    size: int
    negated: bool = False
    #: Taken back by a later correction ("USDC ... no, sorry, BTC").
    corrected: bool = False
    product: Product | None = None

    @property
    def live(self) -> bool:
        return not (self.negated or self.corrected)


class _Reading:
    """The text's words (folded; "," between clauses, "." between sentences) and the phrases
    found in them, on the folded words and on their lemmas in the conversation's language."""

    def __init__(self, text: str, language: str | None) -> None:
        words: list[str] = []
        lemma_words: list[str] = []
        for m in SENTENCE.finditer(clean(text)[:MAX_TEXT]):
            for c, clause in enumerate(CLAUSE.split(m.group(0))):
                folded = fold(clause).split()
                if not folded:
                    continue
                if words:
                    sep = "," if c else "."
                    words.append(sep)
                    lemma_words.append(sep)
                words.extend(folded)
                if language is not None:
                    lemma_list = lemmas(clause, language)
                    same = len(lemma_list) == len(folded)
                    lemma_words.extend(lemma_list if same else folded)
        self.words = words
        self.text = " ".join(words)
        found: dict[tuple[int, int], _Hit] = {}
        views = [words] if language is None or lemma_words == words else [words, lemma_words]
        for view in views:
            for i, positions in _INDEX.matches(view).items():
                word = _WORDS[i]
                if not word.counts_in(language):
                    continue
                for at in positions:
                    found.setdefault((i, at), _Hit(word, at, word.size))
        self.hits = sorted(found.values(), key=lambda h: (h.at, -h.size))
        self.starts: dict[str, set[int]] = {}
        self._of: dict[str, list[_Hit]] = {}
        for hit in self.hits:
            self.starts.setdefault(hit.word.concept, set()).add(hit.at)
            self._of.setdefault(hit.word.concept, []).append(hit)

    def of(self, concept: str) -> list[_Hit]:
        return self._of.get(concept, [])

    def clause(self, at: int) -> tuple[int, int]:
        """The first and last word positions of the clause of word `at`."""
        first = at
        while first > 0 and self.words[first - 1] not in ",.":
            first -= 1
        last = at
        while last + 1 < len(self.words) and self.words[last + 1] not in ",.":
            last += 1
        return first, last


def _negated(reading: _Reading, at: int, size: int) -> bool:
    """Whether the client negated the cue at word `at` within its clause ("I don't want
    staking", "kein Staking, nur Verwahrung"; "staking nicht" at the end of the clause)."""
    starts = reading.starts
    if not ("negation" in starts or _REFUSE in starts or "negation_after" in starts):
        return False
    first, last = reading.clause(at)
    negators = starts.get("negation", set()) | starts.get(_REFUSE, set())
    contrast = starts.get("contrast", set())
    for p in range(at - 1, max(first, at - _NEGATION_REACH) - 1, -1):
        if p in contrast:
            break
        if p in negators:
            return True
    end = at + size
    for hit in [*reading.of("negation_after"), *reading.of(_REFUSE)]:
        if end <= hit.at <= end + _AFTER_REACH and hit.at + hit.size - 1 == last:
            between = range(end, hit.at)
            if not any(p in contrast for p in between) and not any(
                h.word.group is not None and h.at in between for h in reading.hits
            ):
                return True
    return False


def _correction_marks(reading: _Reading) -> list[int]:
    """Where the client starts correcting themselves ("sorry, I meant", "no wait", "actually"):
    a correction word opening a clause (after a "no" at most) that adds nothing ("actually
    also"), or a clause that is nothing but a "no" after something was said."""
    marks: list[int] = []
    no_words = {p for h in reading.of("no") for p in range(h.at, h.at + h.size)}
    additions = reading.starts.get("addition", set())
    for hit in reading.of("correction"):
        start, last = reading.clause(hit.at)
        if hit.at - start <= 1 and all(p in no_words for p in range(start, hit.at)):
            if not any(start <= p <= last for p in additions):
                marks.append(hit.at)
    at, n = 0, len(reading.words)
    while at < n:
        start, last = reading.clause(at)
        if start > 0 and all(p in no_words for p in range(start, last + 1)):
            marks.append(start)
        at = last + 2
    return sorted(set(marks))


def _apply_corrections(hits: list[_Hit], marks: list[int]) -> None:
    """Take back what a correction replaces: the earlier cues of each kind (service, asset,
    money) that the client names again after it, before the next correction."""
    for k, mark in enumerate(marks):
        stop = marks[k + 1] if k + 1 < len(marks) else None
        groups = {
            h.word.group for h in hits if h.live and h.at >= mark and (stop is None or h.at < stop)
        }
        groups.discard(None)
        for h in hits:
            if h.at < mark and h.live and h.word.group in groups:
                h.corrected = True


def _product_patterns(
    profile: CompanyProfile,
) -> tuple[tuple[Product, tuple[tuple[str, re.Pattern[str]], ...]], ...]:
    """Each product with its folded names as whole-word patterns, compiled once per profile."""
    out = []
    for product in profile.products:
        names = []
        for name in (product.name, *product.aliases):
            key = fold(name)
            if key:
                names.append((key, re.compile(rf"(?<![a-z0-9]){re.escape(key)}(?![a-z0-9])")))
        out.append((product, tuple(names)))
    return tuple(out)


def _products(reading: _Reading, profile: CompanyProfile) -> list[_Hit]:
    """The firm's products named in the text, the longest name of each first."""
    found: list[_Hit] = []
    for product, names in per_profile(profile, "services.products", _product_patterns):
        for key, pattern in names:
            m = pattern.search(reading.text)
            if m:
                at = reading.text.count(" ", 0, m.start())
                word = _Word(_PRODUCT, 0.95, len(key.split()))
                found.append(_Hit(word, at, word.size, product=product))
                break
    return found


def _distinct_assets(hits: Sequence[_Hit]) -> int:
    """How many different crypto-assets the live cues name ("BTC" and "bitcoin" are one)."""
    return len({h.word.concept for h in hits if h.live and h.word.concept.startswith(_COIN)})


def _covers(outer: _Hit, hit: _Hit) -> bool:
    """Whether a longer cue of another concept takes a cue's words: "bank transfer" is money,
    not a transfer; "kredi kartı" a card, not a loan. A service cue keeps the asset it names
    ("send USDT" still names a stablecoin)."""
    return (
        outer.size > hit.size
        and outer.word.concept != hit.word.concept
        and outer.at <= hit.at
        and hit.at + hit.size <= outer.at + outer.size
        and not (outer.word.concept in _CODES and hit.word.concept not in _CODES)
    )


def _inside(hit: _Hit, spans: Sequence[_Hit]) -> bool:
    return any(s.at <= hit.at and hit.at + hit.size <= s.at + s.size for s in spans)


def classify_service(
    text: str, profile: CompanyProfile, language: str | None = None
) -> ServiceFinding:
    """The service the client asks for, NON_MICA for anything outside MiCA, or None; the
    answers are joined by newlines, oldest first, and a correction replaces what it corrects.
    `language` is the conversation's, for lemmas and its own weak clause words."""
    reading = _Reading(text[: MAX_TEXT * 2], language_code(language))
    if not reading.words:
        return ServiceFinding(None)
    products = _products(reading, profile)
    # A cue inside a longer cue of another concept is that cue's ("bank transfer" is money,
    # "e-money token" a stablecoin); inside a product's name, the product's.
    cues = [h for h in reading.hits if h.word.concept not in (*_CLAUSE_CONCEPTS, _REFUSE)]
    longer = [h for h in cues if h.size > 1]
    if longer:
        cues = [h for h in cues if not any(_covers(o, h) for o in longer)]
    mica_products = [p for p in products if p.product and p.product.service is not S.NON_MICA]
    cues = [h for h in cues if not (h.word.concept in _CODES and _inside(h, mica_products))]
    hits = sorted([*cues, *products], key=lambda h: (h.at, -h.size))
    for h in hits:
        if h.word.concept != "no_kyc":
            h.negated = _negated(reading, h.at, h.size)
    _apply_corrections(hits, _correction_marks(reading))
    live = [h for h in hits if h.live]

    scores: dict[ServiceCode, float] = {}
    product: Product | None = None
    # A weak cue ("send", "exchange", "keep my") is a request only about crypto-assets: "they
    # sent me an email" asks for no transfer.
    about_crypto = any(
        h.product is not None or h.word.concept in _ASSET_WORDS or h.word.concept.startswith(_COIN)
        for h in live
    )
    for h in live:
        if h.word.weight <= _WEAK and not about_crypto and h.product is None:
            continue
        if h.product is not None:
            if product is None or len(h.product.name) > len(product.name):
                product = h.product  # the longest name wins ("Yield Vault" over "Vault")
            scores[h.product.service] = max(scores.get(h.product.service, 0.0), 0.95)
        elif h.word.concept in _CODES:
            code = _CODES[h.word.concept][0]
            scores[code] = max(scores.get(code, 0.0), h.word.weight)
    _refine(
        scores, fiat=any(h.word.concept == "fiat" for h in live), assets=_distinct_assets(hits)
    )
    scores = {code: score for code, score in scores.items() if score >= _GUESS}

    flags = {h.word.concept for h in live if h.word.concept in _CATEGORIES}
    if any(h.word.concept == "stablecoin" for h in live):
        flags.add("stablecoin")
    if any(h.word.concept == "no_kyc" for h in hits):
        flags.add("no_kyc")  # fail closed: a red flag stays, whatever surrounds it
    if not scores:
        return ServiceFinding(None, flags=frozenset(flags))
    ranked = sorted(scores.items(), key=lambda kv: (-kv[1], list(S).index(kv[0])))
    codes = tuple(code for code, _ in ranked)
    name = product.name if product is not None else None
    # Anything outside MiCA in the request sends it to a person (R9), whatever else it says.
    if S.NON_MICA in scores:
        return ServiceFinding(S.NON_MICA, codes, name, frozenset(flags), scores[S.NON_MICA])
    code = product.service if product is not None else ranked[0][0]
    return ServiceFinding(code, codes, name, frozenset(flags), scores[code])


def _refine(scores: dict[ServiceCode, float], *, fiat: bool, assets: int) -> None:
    """What the context says about the cues: money, how many assets, a desk, a payout."""
    # Exchanging against money is exchange for funds (c); crypto against crypto is (d).
    if S.EXCH_CRYPTO in scores and fiat:
        got = min(0.95, scores.pop(S.EXCH_CRYPTO) + 0.1)
        scores[S.EXCH_FIAT] = max(scores.get(S.EXCH_FIAT, 0.0), got)
    if S.EXCH_FIAT in scores and not fiat and assets >= 2:
        # "sell BTC for ETH"
        scores[S.EXCH_CRYPTO] = max(scores.get(S.EXCH_CRYPTO, 0.0), scores.pop(S.EXCH_FIAT))
    if S.EXCH_CRYPTO in scores and scores[S.EXCH_CRYPTO] < 0.7 and assets >= 2:
        scores[S.EXCH_CRYPTO] = 0.8
    if S.EXECUTION in scores and scores[S.EXECUTION] >= 0.8:
        # "sell 40 BTC through your OTC desk": the desk executes the order.
        scores.pop(S.EXCH_FIAT, None)
        scores.pop(S.EXCH_CRYPTO, None)
    if S.PORTFOLIO in scores and scores[S.PORTFOLIO] < 0.7 and len(scores) > 1:
        scores.pop(S.PORTFOLIO)
    if S.EXCH_CRYPTO in scores and scores[S.EXCH_CRYPTO] <= 0.6 and len(scores) > 1:
        scores.pop(S.EXCH_CRYPTO)
    exchange = max(scores.get(S.EXCH_FIAT, 0.0), scores.get(S.EXCH_CRYPTO, 0.0))
    if S.TRANSFER in scores and exchange:
        # "sell BTC and send the euros to my bank": the payout of the exchange, not (j).
        scores[S.TRANSFER] = min(scores[S.TRANSFER], exchange - 0.01)
