"""How did the client find the firm? Their own words -> channel, register entry, confidence.

The client's answer is evidence (DOMAIN.md R4), so it is read, never offered as a tick-box.
Each recognised cue becomes a `SourceSignal`: its channel, the words that matched, whether the
client negated it ("not an ad", "keine Werbung", "reklam değil") or corrected it later ("search
engine ... sorry, I meant your ad"), whether they hedged ("I think it was an ad?"), and the
register entry it points to. The words are data (`triage/data/lexicon/*/sources.yaml` and
`clauses.yaml`, in every language the product speaks); this module only adds the structure:
sentences, clauses, the reach of a negation, what a correction replaces. It must never decide
(the policy weighs the signals), never treat an unrecognised answer as genuine initiative, and
never do I/O beyond the lexicon's one read of its data files.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache

from triage.domain import lexicon
from triage.domain.codes import GENUINE, MARKETING_CHANNEL, SOLICITING, Channel, MarketingKind
from triage.domain.lexicon import LANGUAGES, cues, language_code, lemmas
from triage.domain.matching import NameIndex, PhraseIndex, Sentence, per_profile
from triage.domain.profile import CompanyProfile, MarketingEntry
from triage.domain.text import CLAUSE, MAX_TEXT, SENTENCE, clean, fold

#: The usual confidence of each channel's cues (a cue's own weight in the data overrides it).
_CHANNELS: dict[Channel, float] = {
    Channel.AD: 0.9,
    Channel.INFLUENCER: 0.9,
    Channel.REFERRAL: 0.9,
    Channel.EVENT: 0.8,
    Channel.SOCIAL: 0.9,
    Channel.PRESS: 0.8,
    Channel.FIRM_CONTACT: 0.9,
    Channel.ORGANIC_SEARCH: 0.75,
    Channel.OWN_RESEARCH: 0.8,
    Channel.WORD_OF_MOUTH: 0.85,
}
#: "Your stand", "your talk": the firm itself was at the event (its own marketing, R3).
_FIRM_PRESENCE = 0.9
#: Clause words (clauses.yaml) and the source flags' words (sources.yaml) this module reads.
_CLAUSE_CONCEPTS = (
    "negation",
    "negation_after",
    "contrast",
    "hedge",
    "correction",
    "addition",
    "yes",
    "no",
)
_FLAG_CONCEPTS = (
    "self_certification",
    "link_or_code",
    "name_search",
    "normal_result",
    "linked",
    "pub_venue",
    "returning_client",
)
#: How far back (in words of its clause) a negation reaches a cue, and forward a negation
#: written after it ("Werbung war es nicht").
_NEGATION_REACH = 6
_AFTER_REACH = 3


@dataclass(frozen=True)
class _Word:
    """One cue of the combined index: its concept (a channel's value or a clause concept)."""

    concept: str
    channel: Channel | None
    weight: float
    size: int
    #: Languages in which this phrase is only a weak cue (a common word of another language:
    #: it counts only when the conversation is in one of them), empty when it always counts.
    weak_in: frozenset[str]
    #: Languages in which it is no such word at all (weight 0: Portuguese "no" is "in the").
    void_in: frozenset[str] = frozenset()
    #: For a clause word: the languages whose lists have it (Czech "ne" negates; in Italian
    #: "ne" is "of it"). Empty for cues, which count in any language.
    listed_in: frozenset[str] = frozenset()


def _raw_entries(part: str, concept: str) -> dict[tuple[str, bool], dict[str, float]]:
    """(folded phrase, star) -> language -> weight, every language kept (`cues` keeps one)."""
    out: dict[tuple[str, bool], dict[str, float]] = {}
    for language in (*LANGUAGES, lexicon.COMMON):
        entries = lexicon.raw_entries(language, part, concept)
        for raw, weight in entries:
            phrase = fold(raw.rstrip("*"))
            if phrase:
                got = out.setdefault((phrase, raw.endswith("*")), {})
                got[language] = 1.0 if weight is None else float(weight)
    return out


#: Greek and Arabic letters: scripts only one of the thirty languages writes.
_ONE_LANGUAGE_SCRIPT = re.compile(r"[\u0370-\u03ff\u0600-\u06ff]")


def _build_words() -> tuple[PhraseIndex, tuple[_Word, ...]]:
    """Every phrase this module looks for, in one index: one pass over a sentence's words."""
    keys: list[tuple[str, bool]] = []
    words: list[_Word] = []
    for channel, usual in _CHANNELS.items():
        # Words for a genuine initiative count in the conversation's language (and English):
        # Spanish "prima" (a cousin) is Italian "before". Words for solicitation count in any
        # language, so that a misread language can only ever send a client to a person.
        langs = _raw_entries("sources", channel.value) if channel in GENUINE else {}
        for cue in cues("sources", channel.value, usual):
            # A word in a script only one of our languages writes (Arabic, Greek) cannot be
            # another language's homograph: it counts whatever language the client is read in.
            own_script = any(_ONE_LANGUAGE_SCRIPT.match(ch) for ch in cue.phrase)
            listed = (
                frozenset() if own_script else frozenset(langs.get((cue.phrase, cue.star), {}))
            )
            keys.append((cue.phrase, cue.star))
            words.append(
                _Word(
                    channel.value,
                    channel,
                    cue.weight,
                    len(cue.phrase.split()),
                    frozenset(),
                    listed_in=listed,
                )
            )
    for cue in cues("sources", "firm_presence", _FIRM_PRESENCE):
        keys.append((cue.phrase, cue.star))
        words.append(
            _Word("firm_presence", Channel.EVENT, cue.weight, len(cue.phrase.split()), frozenset())
        )
    for part, concepts in (("clauses", _CLAUSE_CONCEPTS), ("sources", _FLAG_CONCEPTS)):
        for concept in concepts:
            for (phrase, star), by_lang in _raw_entries(part, concept).items():
                # A weight below 1 in clauses.yaml: a common word of another language.
                void = frozenset(lang for lang, w in by_lang.items() if w <= 0)
                strong = part == "sources" or any(w >= 1 for w in by_lang.values())
                weak = (
                    frozenset()
                    if strong
                    else frozenset(lang for lang, w in by_lang.items() if w > 0)
                )
                listed = frozenset(by_lang) if part == "clauses" else frozenset()
                keys.append((phrase, star))
                words.append(_Word(concept, None, 1.0, len(phrase.split()), weak, void, listed))
    return PhraseIndex(keys), tuple(words)


_INDEX, _WORDS = _build_words()
#: Whose clause words (and genuine-initiative words) a conversation in one language reads: its
#: own, its neighbours' (a detector confuses Slovak and Czech), English and common.
_READ_ALSO = defaultdict(
    lambda: frozenset({"en", lexicon.COMMON}),
    {
        lang: frozenset({lang, "en", lexicon.COMMON}) | lexicon.NEIGHBOURS.get(lang, frozenset())
        for lang in LANGUAGES
    },
)


def _platform_aliases(key: str) -> tuple[str, ...]:
    return tuple(c.phrase for c in cues("sources", f"platform_{key}"))


@dataclass(frozen=True)
class _Hit:
    """A phrase found in a sentence: which one, from which word, how many words."""

    word: _Word
    at: int
    size: int


class _Reading:
    """One sentence's words (folded, "," between clauses) and what the lexicon finds in them.

    Phrases are matched on the folded words and on their lemmas in the conversation's language
    (the two lists are aligned word for word); a hit in either counts.
    """

    def __init__(self, clauses: Sequence[str], language: str | None) -> None:
        words: list[str] = []
        lemma_words: list[str] = []
        for clause in clauses:
            folded = fold(clause).split()
            if not folded:
                continue
            if words:
                words.append(",")
                lemma_words.append(",")
            words.extend(folded)
            if language is not None:
                found = lemmas(clause, language)
                lemma_words.extend(found if len(found) == len(folded) else folded)
        self.words = words
        self.text = " ".join(words)
        self.language = language
        hits: dict[tuple[int, int], _Hit] = {}
        views = [words] if language is None or lemma_words == words else [words, lemma_words]
        for n, view in enumerate(views):
            for i, positions in _INDEX.matches(view).items():
                word = _WORDS[i]
                # Lemmas find inflected cues; the short clause words are read as written
                # (Swedish "er" lemmatises to "ni", a negation elsewhere).
                if n and word.channel is None and word.concept not in _FLAG_CONCEPTS:
                    continue
                if (word.weak_in and language not in word.weak_in) or language in word.void_in:
                    continue
                if (
                    language is not None
                    and word.listed_in
                    and not word.listed_in & _READ_ALSO[language]
                ):
                    # A clause word counts in the conversation's language (and English, which
                    # clients mix in), not because another language has the same spelling.
                    continue
                for at in positions:
                    hits.setdefault((i, at), _Hit(word, at, word.size))
        self.hits = sorted(hits.values(), key=lambda h: (h.at, -h.size))
        self._by_concept: dict[str, list[_Hit]] = {}
        for hit in self.hits:
            self._by_concept.setdefault(hit.word.concept, []).append(hit)
        self.clause_of = _clause_numbers(words)

    def of(self, concept: str) -> list[_Hit]:
        """The hits of one concept, in order."""
        return self._by_concept.get(concept, [])

    def has(self, concept: str) -> bool:
        return concept in self._by_concept

    def starts(self, concept: str) -> set[int]:
        return {h.at for h in self.of(concept)}

    def clause_words(self, at: int) -> tuple[int, int]:
        """The first and last word positions of the clause of word `at`."""
        n = self.clause_of[at]
        first = at
        while first > 0 and self.clause_of[first - 1] == n and self.words[first - 1] != ",":
            first -= 1
        last = at
        while last + 1 < len(self.words) and self.words[last + 1] != ",":
            last += 1
        return first, last


def _clause_numbers(words: Sequence[str]) -> list[int]:
    out: list[int] = []
    n = 0
    for w in words:
        if w == ",":
            n += 1
        out.append(n)
    return out


def _negated(reading: _Reading, at: int, size: int) -> bool:
    """Whether the client negated the cue at word `at` within its clause.

    A negation before it reaches it unless a contrast word stands between ("not until your ad",
    "keine Werbung, aber"); one of the words that negate what precedes them ("Werbung war es
    nicht", "reklam değil") reaches back a few words when it ends the clause.
    """
    first, last = reading.clause_words(at)
    negators = reading.starts("negation")
    contrast = reading.starts("contrast")
    for p in range(at - 1, max(first, at - _NEGATION_REACH) - 1, -1):
        if p in contrast:
            break
        if p in negators:
            return True
    end = at + size
    for hit in reading.of("negation_after"):
        if end <= hit.at <= end + _AFTER_REACH and hit.at + hit.size - 1 == last:
            if (
                hit.at + hit.size - 1 <= last
                and not any(end <= p < hit.at for p in contrast)
                and not _cue_between(reading, end, hit.at)
                and not _cue_between(reading, hit.at + hit.size, last + 1)
            ):
                return True
    return False


def _cue_between(reading: _Reading, start: int, stop: int) -> bool:
    return any(h.word.channel is not None and start <= h.at < stop for h in reading.hits)


@dataclass(frozen=True)
class SourceSignal:
    """One cue of how the client found the firm."""

    channel: Channel
    matched: str
    confidence: float
    negated: bool = False
    hedged: bool = False
    #: The register entry this cue points to, if any.
    entry_id: str | None = None
    #: The client took it back later ("... sorry, I meant your ad"); `negated` is set too.
    corrected: bool = False
    #: The client says the firm itself was there ("your stand", "your talk at the summit").
    firm_present: bool = False


@dataclass(frozen=True)
class SourceFinding:
    """Everything the client's words say about how they found the firm."""

    channel: Channel
    confidence: float
    signals: tuple[SourceSignal, ...] = ()
    #: self_certification, no_link_or_code, name_search, organic_result, linked (the client
    #: ties the request to what they name: "that's why I'm writing", R7), firm_presence (the
    #: firm itself was at an event: its own marketing), corrected (the client corrected
    #: themselves and an earlier cue was taken back)
    flags: frozenset[str] = frozenset()
    #: (code as written, register entry id)
    referral_codes: tuple[tuple[str, str], ...] = ()


def find_referral_codes(text: str, profile: CompanyProfile) -> list[tuple[str, str]]:
    """Referral codes of the register's patterns anywhere in a text: (code, entry id)."""
    return _find_codes(clean(text)[:MAX_TEXT], _index(profile))


def _find_codes(text: str, index: _ProfileIndex) -> list[tuple[str, str]]:
    if not index.codes or (index.any_code is not None and index.any_code.search(text) is None):
        return []
    found: list[tuple[str, str]] = []
    for regex, entry_id in index.codes:
        for m in regex.finditer(text):
            found.append((m.group(0), entry_id))
    return found


def _answer_reading(text: str, language: str | None) -> _Reading:
    return _Reading(CLAUSE.split(clean(text)[:MAX_TEXT]), language_code(language))


def is_hedged(text: str, language: str | None = None) -> bool:
    """Whether an answer is a "maybe" rather than a plain yes or no."""
    return _answer_reading(text, language).has("hedge")


def answer_yes_no(text: str, language: str | None = None) -> bool | None:
    """A plain yes or no in any supported language; None when neither, both, or a maybe."""
    reading = _answer_reading(text, language)
    if reading.has("hedge"):
        return None  # "not sure" holds "sure"; "chyba tak" is a maybe, not a yes
    yes = {h.at for h in reading.of("yes")}
    # "No one" / "nobody" are a no; "no" inside "not sure" was caught as a hedge above.
    no = {p for h in reading.of("no") for p in range(h.at, h.at + h.size)}
    yes -= no
    if bool(yes) == bool(no):
        return None
    return bool(yes)


@lru_cache(maxsize=256)
def _channel_pattern(channel: str) -> re.Pattern[str]:
    """A register channel as written by clients: any ending ("Telegramie"), other scripts."""
    key = fold(channel)
    names = [key, *(fold(a) for a in _platform_aliases(key))]
    parts = [re.escape(n) + (r"\w*" if len(n) >= 4 else "") for n in dict.fromkeys(names) if n]
    return re.compile(r"\b(?:" + "|".join(parts) + r")\b")


_BACKREFERENCE = re.compile(r"\\[1-9]|\\g<|\(\?P=|\(\?\(|\(\?[aiLmsux-]+\)")


@dataclass(frozen=True)
class _ProfileIndex:
    """What classify_source needs from a profile, derived once per profile object."""

    #: The register's names per entry, and the close links' names per link.
    register: NameIndex
    links: NameIndex
    #: The referral-code patterns, compiled, per entry; and all of them in one pattern (None
    #: when they cannot be combined), to skip texts without any code in one search.
    codes: tuple[tuple[re.Pattern[str], str], ...]
    any_code: re.Pattern[str] | None
    firm: str
    firm_first: str
    link_keys: tuple[str, ...]
    referral_entries: tuple[MarketingEntry, ...]
    #: Per channel, the ad and social entries _attach_register may point a cue at, in order.
    by_channel: dict[Channel, tuple[MarketingEntry, ...]]


def _build_index(profile: CompanyProfile) -> _ProfileIndex:
    codes: list[tuple[re.Pattern[str], str]] = []
    patterns: list[str] = []
    for entry in profile.marketing:
        regex = entry.code_regex()
        if regex is not None and entry.code_pattern is not None:
            codes.append((regex, entry.id))
            patterns.append(entry.code_pattern)
    any_code: re.Pattern[str] | None = None
    if len(codes) > 1 and not any(_BACKREFERENCE.search(p) for p in patterns):
        # Whether any code is anywhere, in one search: the patterns without an alternation
        # share `MarketingEntry.code_regex`'s whole-word guards; the others are taken whole.
        simple = "|".join(f"(?:{p})" for p in patterns if "|" not in p)
        alternatives = [
            f"(?:{r.pattern})" for (r, _id), p in zip(codes, patterns, strict=True) if "|" in p
        ]
        if simple:
            alternatives.insert(0, rf"(?<![A-Za-z0-9])(?:{simple})(?![A-Za-z0-9])")
        try:
            any_code = re.compile("|".join(alternatives), re.IGNORECASE)
        except re.error:
            any_code = None
    by_channel: dict[Channel, list[MarketingEntry]] = {}
    for entry in profile.marketing:
        # A platform identifies an ad campaign or the firm's own account, never a person
        # or an event: a YouTuber is not the firm's paid YouTuber by being on YouTube.
        if entry.kind in (MarketingKind.AD, MarketingKind.SOCIAL):
            by_channel.setdefault(MARKETING_CHANNEL[entry.kind], []).append(entry)
    firm = fold(profile.name)
    return _ProfileIndex(
        register=NameIndex([_entry_names(e) for e in profile.marketing], fold),
        links=NameIndex([(link.name, *link.aliases) for link in profile.close_links], fold),
        codes=tuple(codes),
        any_code=any_code,
        firm=firm,
        firm_first=firm.split()[0] if firm else "",
        link_keys=tuple(
            k
            for link in profile.close_links
            for k in (fold(n) for n in (link.name, *link.aliases))
            if k
        ),
        referral_entries=tuple(e for e in profile.marketing if e.kind is MarketingKind.REFERRAL),
        by_channel={k: tuple(v) for k, v in by_channel.items()},
    )


def _index(profile: CompanyProfile) -> _ProfileIndex:
    return per_profile(profile, "sources", _build_index)


def _names_firm(index: _ProfileIndex, sentence: str) -> bool:
    """Whether the client typed the firm's own name (not a closely linked entity's)."""
    for key in index.link_keys:
        if key in sentence:
            return False
    firm, first = index.firm, index.firm_first
    return bool(firm) and (
        firm in sentence or (len(first) >= 5 and f" {first} " in f" {sentence} ")
    )


def _entry_names(entry: MarketingEntry) -> list[str]:
    return [n for n in entry.names if fold(n)]


def _entry_signal(
    entry: MarketingEntry, matched: str, negated: bool, hedged: bool, conf: float
) -> SourceSignal:
    channel = MARKETING_CHANNEL[entry.kind]
    if entry.kind is MarketingKind.SEO:
        channel = Channel.ORGANIC_SEARCH
    return SourceSignal(channel, matched, conf, negated, hedged, entry.id)


@dataclass(frozen=True)
class _Sentence:
    reading: _Reading
    question: bool


def _sentences(raw: str, language: str | None) -> list[_Sentence]:
    """The sentences of a cleaned text, each read clause by clause.

    Commas and colons end a clause: "Not from an ad: I searched your name" and "keine Werbung,
    ich habe euch gegoogelt" negate the ad and nothing after it.
    """
    out: list[_Sentence] = []
    for m in SENTENCE.finditer(raw):
        chunk = m.group(0)
        reading = _Reading(CLAUSE.split(chunk), language)
        if reading.words:
            out.append(_Sentence(reading, chunk.rstrip().endswith(("?", "؟"))))
    return out


def _word_at(text: str, char: int) -> int:
    """The word position of a character position in a folded sentence."""
    return text.count(" ", 0, char)


@dataclass
class _Found:
    """A signal with where it stands: (sentence, word), for corrections."""

    signal: SourceSignal
    where: tuple[int, int]


def classify_source(
    text: str, profile: CompanyProfile, language: str | None = None
) -> SourceFinding:
    """Read the client's own words on how they found the firm (answers joined by newlines,
    oldest first); `language` is the conversation's, for lemmas and its own weak words."""
    index = _index(profile)
    lang = language_code(language)
    raw = clean(text)[:MAX_TEXT]
    codes = tuple(_find_codes(raw, index))
    flags: set[str] = set()
    found: list[_Found] = []
    matched_entries: set[str] = set()
    sentences = _sentences(raw, lang)
    marketing = profile.marketing
    links = profile.close_links
    corrections: list[tuple[int, int]] = []

    for s, sent in enumerate(sentences):
        reading = sent.reading
        hedged = reading.has("hedge") or sent.question
        plain = reading.text.replace(" , ", " ")
        if reading.has("self_certification"):
            flags.add("self_certification")
        if reading.has("returning_client"):
            flags.add("returning_client")
        if _no_link(reading):
            flags.add("no_link_or_code")
        if reading.has("name_search") or _names_firm(index, plain):
            flags.add("name_search")
        if reading.has("normal_result"):
            flags.add("organic_result")
        corrections.extend((s, at) for at in _correction_marks(reading, first=s == 0))
        here = len(found)

        # 1. Closely linked entities (R10): by name, typos tolerated for long names.
        view = Sentence(reading.text)
        for owner, _name, char in index.links.hits(view):
            at = _word_at(reading.text, char) if char is not None else 0
            neg = char is not None and _negated(reading, at, len(fold(_name).split()))
            sig = SourceSignal(Channel.CLOSE_LINK, links[owner].name, 0.9, neg, hedged)
            found.append(_Found(sig, (s, at)))

        # 2. The register: entries named in the client's words.
        for owner, name, char in index.register.hits(view):
            at = _word_at(reading.text, char) if char is not None else 0
            neg = char is not None and _negated(reading, at, len(fold(name).split()))
            entry = marketing[owner]
            found.append(_Found(_entry_signal(entry, name, neg, hedged, 0.9), (s, at)))
            matched_entries.add(entry.id)

        # 3. Generic cues, found in one pass over the words (and their lemmas).
        seen: set[str] = set()
        pub = reading.starts("pub_venue")
        for hit in reading.hits:
            word = hit.word
            if word.channel is None:
                continue
            key = f"{word.concept}:{hit.at}"
            matched = " ".join(reading.words[hit.at : hit.at + hit.size])
            if matched in ("pub", "pubs") and hit.at - 1 in pub:
                continue  # "met a friend in a pub" is not "une pub"
            if key in seen or matched in seen:
                continue
            seen.update((key, matched))
            sig = SourceSignal(
                word.channel,
                matched,
                word.weight,
                _negated(reading, hit.at, hit.size),
                hedged,
                firm_present=word.concept == "firm_presence",
            )
            found.append(_Found(sig, (s, hit.at)))
        if reading.has("linked") and any(
            not f.signal.negated and f.signal.channel in SOLICITING for f in found[here:]
        ):
            flags.add("linked")

    if _apply_corrections(found, corrections):
        flags.add("corrected")
    signals = [f.signal for f in found]
    if any(s.firm_present and not s.negated for s in signals):
        flags.add("firm_presence")
    text_folded = " ".join(s.reading.text.replace(" , ", " ") for s in sentences)
    signals = _attach_register(signals, index, text_folded, matched_entries)
    signals = _refine(signals, flags)
    for code, entry_id in codes:
        signals.append(SourceSignal(Channel.REFERRAL, code, 1.0, False, False, entry_id))
    primary = _primary(signals)
    if primary is None:
        return SourceFinding(Channel.UNKNOWN, 0.0, tuple(signals), frozenset(flags), codes)
    confidence = primary.confidence * (0.5 if primary.hedged else 1.0)
    return SourceFinding(primary.channel, confidence, tuple(signals), frozenset(flags), codes)


def _no_link(reading: _Reading) -> bool:
    """ "No link or code", "ohne Code", "без ссылки": a negation just before a link word."""
    negators = reading.starts("negation")
    for hit in reading.of("link_or_code"):
        first, _last = reading.clause_words(hit.at)
        if any(p in negators for p in range(max(first, hit.at - 3), hit.at)):
            return True
    return False


def _correction_marks(reading: _Reading, *, first: bool) -> list[int]:
    """Where the client starts correcting themselves in a sentence ("sorry, I meant", "no
    wait", "actually"): a correction word opening a clause (after a "no" at most), or a
    clause that is nothing but a "no" after something was said ("an ad, no, a friend")."""
    marks: list[int] = []
    no_words = {p for h in reading.of("no") for p in range(h.at, h.at + h.size)}
    for hit in reading.of("correction"):
        start, _last = reading.clause_words(hit.at)
        if all(p in no_words for p in range(start, hit.at)) and hit.at - start <= 1:
            if not _adds(reading, hit.at):
                marks.append(hit.at)
    n = len(reading.words)
    at = 0
    while at < n:
        start, last = reading.clause_words(at)
        clause = range(start, last + 1)
        if (start > 0 or not first) and clause and all(p in no_words for p in clause):
            marks.append(start)
        at = last + 2
    return sorted(set(marks))


def _adds(reading: _Reading, at: int) -> bool:
    """Whether the clause of a correction word adds ("actually I also saw your ad")."""
    start, last = reading.clause_words(at)
    return any(start <= h.at <= last for h in reading.of("addition"))


def _apply_corrections(found: list[_Found], marks: list[tuple[int, int]]) -> bool:
    """Take back what a correction replaces: every cue before it, when the client says after
    it (before the next correction) what it was instead. Returns whether any was taken back."""
    changed = False
    for k, mark in enumerate(marks):
        stop = marks[k + 1] if k + 1 < len(marks) else None
        instead = [
            f
            for f in found
            if f.where >= mark and (stop is None or f.where < stop) and not f.signal.negated
        ]
        if not instead:
            continue
        for f in found:
            if f.where < mark and not f.signal.negated:
                f.signal = replace(f.signal, negated=True, corrected=True)
                changed = True
    return changed


def _attach_register(
    signals: list[SourceSignal],
    index: _ProfileIndex,
    text: str,
    already: set[str],
) -> list[SourceSignal]:
    """Point generic cues at the register entry they describe ("ad on Telegram").

    A platform named anywhere in the answer ("reklamę na Telegramie", "рекламу в Телеграме")
    ties the cue to the entry that ran there; a referral cue with no code is tied to the firm's
    referral programme when the register has exactly one.
    """
    out: list[SourceSignal] = []
    ads = any(s.channel is Channel.AD and not s.negated for s in signals)
    referral_entries = index.referral_entries
    named: dict[str, bool] = {}
    for sig in signals:
        if sig.entry_id is not None or sig.channel not in SOLICITING:
            out.append(sig)
            continue
        if sig.channel is Channel.SOCIAL and ads:
            continue  # "your Telegram ad": the platform of the ad, not the firm's channel
        best: MarketingEntry | None = None
        # Only ad and social entries: a platform identifies an ad campaign or the firm's own
        # account, never a person or an event (a YouTuber is not the firm's paid YouTuber by
        # being on YouTube).
        for entry in index.by_channel.get(sig.channel, ()):
            if entry.id in already:
                continue
            # "a Telegram group" is someone's group; "your Telegram channel" is the firm's.
            if entry.kind is MarketingKind.SOCIAL and sig.confidence < 0.8:
                continue
            if entry.channel:
                there = named.get(entry.channel)
                if there is None:
                    there = named[entry.channel] = bool(
                        _channel_pattern(entry.channel).search(text)
                    )
                if there:
                    best = entry
                    break
        confidence = max(sig.confidence, 0.85)
        if best is None and sig.channel is Channel.REFERRAL and len(referral_entries) == 1:
            best, confidence = referral_entries[0], sig.confidence
        if best is not None:
            out.append(replace(sig, confidence=confidence, entry_id=best.id))
        else:
            out.append(sig)
    return out


def _refine(signals: list[SourceSignal], flags: set[str]) -> list[SourceSignal]:
    """Drop cues that other, more specific cues explain."""
    live = [s for s in signals if not s.negated]
    channels = {s.channel for s in live}
    out: list[SourceSignal] = []
    for sig in signals:
        # "a friend told me, no link or code": a referral word without a code is no referral.
        if sig.channel is Channel.REFERRAL and "no_link_or_code" in flags and sig.confidence < 1:
            continue
        # "your Telegram channel" named by a register entry: the entry signal carries it.
        if sig.entry_id is None and any(
            s.entry_id is not None and s.channel is sig.channel for s in live
        ):
            continue
        # "your Telegram ad": the platform names where the ad ran, not the firm's channel.
        if sig.channel is Channel.SOCIAL and sig.entry_id is None and Channel.AD in channels:
            continue
        # A search engine and "post"/"social media" words: search wins unless possessive.
        if (
            sig.channel is Channel.SOCIAL
            and sig.confidence < 0.6
            and (
                channels & {Channel.ORGANIC_SEARCH, Channel.PRESS, Channel.INFLUENCER, Channel.AD}
            )
        ):
            continue
        # "youtube" next to a named influencer or a possessive channel is not a new cue.
        if (
            sig.channel is Channel.INFLUENCER
            and sig.entry_id is None
            and sig.confidence < 0.8
            and (
                any(s.channel is Channel.INFLUENCER and s.entry_id for s in live)
                or Channel.SOCIAL in channels
            )
        ):
            continue
        # "search results" beside a named search ad: the ad is what they saw.
        if (
            sig.channel is Channel.ORGANIC_SEARCH
            and "organic_result" not in flags
            and any(s.channel is Channel.AD for s in live)
        ):
            sig = replace(sig, confidence=min(sig.confidence, 0.5))
        if sig.channel is Channel.ORGANIC_SEARCH and "name_search" in flags:
            sig = replace(sig, confidence=max(sig.confidence, 0.9))
        out.append(sig)
    return out


_PRIORITY = (
    Channel.CLOSE_LINK,
    Channel.FIRM_CONTACT,
    Channel.REFERRAL,
    Channel.AD,
    Channel.INFLUENCER,
    Channel.EVENT,
    Channel.SOCIAL,
    Channel.PRESS,
    Channel.ORGANIC_SEARCH,
    Channel.OWN_RESEARCH,
    Channel.WORD_OF_MOUTH,
)


def _primary(signals: list[SourceSignal]) -> SourceSignal | None:
    """The signal that best describes the source: solicitation first (fail closed)."""
    live = [s for s in signals if not s.negated and s.confidence >= 0.5]
    if not live:
        live = [s for s in signals if not s.negated]
    if not live:
        return None
    return min(
        live,
        key=lambda s: (_PRIORITY.index(s.channel), s.entry_id is None, -s.confidence),
    )
