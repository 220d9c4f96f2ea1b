"""Where does the client live? Free text -> country or territory -> EU, EEA, outside, or unknown.

Pure: the place names come in a `Gazetteer` built from the data packages by `triage.geodata`.
The rules (DOMAIN.md R1 and section 7):

- residence, seat or physical presence counts, never nationality or language ("Ich bin
  Deutscher, wohne in Dubai" is Dubai);
- typos are tolerated ("Östereich", "Austrailia", "polsa", "Frnace") through a deletion index
  and an edit distance that counts a transposition as one edit;
- a name that is both an EU/EEA place and a larger place elsewhere ("Valencia", "Córdoba",
  "Granada") is ambiguous; the reading inside the EU wins only when it is the larger one;
- in a sentence, a word counts as a town only when the client wrote it like a place name
  (capitalised, after "in"/"w"/"à", or as the whole answer), so "ihren" or "Reisen" are not
  towns in Ukraine or Korea;
- "I'd rather not say", nothing found, places in different zones, an EU/EEA phone number beside
  a non-EU answer, VPN or travel hints: the zone is UNKNOWN, never OUTSIDE (fail closed);
- "I live in Munich, right now I'm travelling in Thailand": the place introduced as home is the
  residence, the other one is travel (a reason for a person to look);
- the Telegram language and the phone prefix corroborate or contradict; they never decide.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import phonenumbers
from rapidfuzz.distance import OSA

from triage.domain.codes import IN_SCOPE, Zone, zone_of_code
from triage.domain.text import Token, fold, tokens

#: Common words of the supported languages that also spell a place ("Nice", "Split", "Best").
#: They never match a town in a sentence unless written like one, and never match fuzzily.
STOPWORDS = frozenset(
    """
    a about above after again against all also am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers him his how i if in into is it its just me more
    most my myself no nor not now of off on once only or other our out over own same she should
    so some such than that the their them then there these they this those through to too under
    until up very was we were what when where which while who whom why will with would you your
    yours live living lives lived based resident residing reside located stay staying moved move
    city country town capital near north south east west central centre center island islands
    republic state region province company firm business registered seat office headquarters
    office nice split best mobile reading bath sale deal hope kind born gap hell ham leer bad
    wells date mons ede orange victoria bitcoin crypto ether ethereum tether custody exchange
    google search sales trade order side part home work working flat house apartment street
    money euro euros dollar dollars hello thanks thank please maybe sure know dont rather say
    tell would prefer private secret ich und der die das ein eine einer wohne wohnen lebe leben
    bin aus bei mit nach von zu im am auf seit aber nicht kein keine stadt land je tu il elle
    nous vous ils et ou de du des le la les un une au aux en dans chez pour par sur vis habite
    habiter ville pays yo vivo vive en el los las y o del con por para ciudad io abito vivo
    di da con per il lo gli le citta paese eu moro vivo em no na nos nas do da dos das com
    cidade ik woon wonen leef het een en van met voor stad ja mieszkam zyje w we z na do od
    miasto kraj jag bor i pa med fran till stad land
    """.split()
)

#: Kinds of gazetteer entry, strongest first (see `triage.geodata`).
_KIND_RANK = {"edge": 0, "alias": 1, "country": 2, "region": 3, "city": 4, "area": 5}
#: How precisely a kind of entry locates someone ("Funchal, Portugal" is Funchal).
_SPECIFICITY = {"city": 4, "edge": 3, "alias": 3, "region": 2, "country": 1, "area": 0}
_STRONG = frozenset({"edge", "alias", "country"})
#: A town this size counts even when written in lower case in a sentence.
_BIG_CITY = 100_000


def _alternation(phrases: Iterable[str]) -> str:
    """A regex alternation of phrases in their folded form (any script), longest first."""
    keys = {fold(p) for p in phrases}
    return "|".join(re.escape(k).replace(r"\ ", " ") for k in sorted(keys, key=len, reverse=True))


_REFUSAL = re.compile(
    r"\b(rather not|prefer not|prefere not|won t (say|tell)|will not (say|tell)"
    r"|not (going|willing) to"
    r" (say|tell|share)|none of your business|not your business|no comment|private|confidential"
    r"|keine angabe|mochte ich nicht|will ich nicht|sag ich nicht|geht (euch|sie|dich) nichts an"
    r"|lieber nicht|je prefere ne pas|prefere ne pas|je ne (veux|souhaite) pas|pas vos affaires"
    r"|prefiero no|no quiero decir|no es asunto|preferisco non|non voglio dire|prefiro nao"
    r"|nao quero dizer|liever niet|wil ik niet|zeg ik niet|wole nie|nie chce (mowic|podawac)"
    r"|vill inte (saga|beratta)|helst inte|"
    + _alternation(["не скажу", "не хочу говорить", "предпочитаю не", "не хочу казати"])
    + r")\b"
)
_VPN = re.compile(
    r"\b(vpn|proxy|proxies|tor browser|tor network|geo ?block\w*|blocked|gesperrt"
    r"|bloque\w*|bloccat\w*|geblokkeerd|zablokowan\w*|blockerad\w*|"
    + _alternation(["впн", "заблокирован", "заблоковано"])
    + r")\b"
)
_TRAVEL_WORDS = (
    r"travel\w*|on holiday|on vacation|on a trip|currently|right now|at the moment|for now"
    r"|temporarily|visiting|digital nomad|nomad|business trip|for a few (days|weeks|months)"
    r"|reise\w*|im urlaub|auf urlaub|derzeit|zurzeit|gerade|voruebergehend|vorubergehend"
    r"|fur ein paar (tage|wochen|monate)|en voyage|en vacances|actuellement|en ce moment"
    r"|pour quelques (jours|semaines|mois)|de viaje|de vacaciones|actualmente|ahora mismo"
    r"|por unas semanas|in viaggio|in vacanza|attualmente|al momento|per qualche settimana"
    r"|em viagem|de ferias|atualmente|neste momento|op reis|op vakantie|momenteel|tijdelijk"
    r"|voor een paar weken|w podrozy|na wakacjach|obecnie|tymczasowo|pa resa|pa semester"
    r"|just nu|tillfalligt|"
    + _alternation(["сейчас", "временно", "в командировке", "в отпуске", "зараз", "тимчасово"])
)
_TRAVEL = re.compile(rf"\b({_TRAVEL_WORDS})\b")
_DUAL = re.compile(
    r"\b(half the year|half of the year|split my time|between .{2,40} and|both .{2,40} and"
    r"|two countries|dual residen\w*|halbe jahr|halbjahr|zwischen .{2,40} und|entre .{2,40} et"
    r"|moitie de l annee|entre .{2,40} y|mitad del ano|tra .{2,40} e|meta dell anno"
    r"|entre .{2,40} e|tussen .{2,40} en|pomiedzy .{2,40} a|mellan .{2,40} och)\b"
)
_COMPANY = re.compile(
    r"\b(company|companies|firm|entity|business|corporation|fund|foundation|spv|holding|llc|ltd"
    r"|limited|inc|gmbh|ag|bv|nv|sa|sarl|sas|srl|spa|oy|ab|as|aps|sp zoo|unternehmen|firma"
    r"|gesellschaft|societe|entreprise|empresa|sociedad|societa|azienda|bedrijf|spolka|bolag"
    r"|foretag|" + _alternation(["компания", "фирма", "компанія"]) + r")\b"
)
_SEAT = re.compile(
    r"\b(registered|incorporated|seat|domiciled|headquartered|head office|hq|sitz|registriert"
    r"|gegrundet|siege|immatricul\w*|enregistr\w*|sede|registrad\w*|constituid\w*|registrat\w*"
    r"|gevestigd|geregistreerd|siedziba|zarejestrowan\w*|sate|registrerat)\b"
)
_MANAGED = re.compile(
    r"\b(managed|run|runs|operated|directors?|management|i run it|we run it|operate|run from"
    r"|geleitet|verwaltet|gefuhrt|geschaftsfuhr\w*|dirig\w*|gere\w*|gestit\w*|gestionad\w*"
    r"|geleid|zarzadzan\w*|leds|drivs|owner|owned|beneficial owner|ubo)\b"
)
#: Words before a place that make it a place of origin, not of residence.
_ORIGIN = frozenset(
    """born originally formerly previously grew raised citizen citizenship passport nationality
    geboren ursprunglich fruher staatsburger pass ne nee originaire nationalite passeport nacido
    nacida originario originaria nacionalidad pasaporte nato nata cittadino passaporto nascido
    nascida origem passaporte geboren oorspronkelijk vroeger paspoort urodzony urodzona
    obywatel paszport fodd ursprungligen tidigare medborgare pass""".split()
)
#: Words right before a name that make it a place ("in", "à", "w", "i", "в").
_LOCATIVE = frozenset(
    fold(w)
    for w in """in im i at near a à au aux en em no na nel nella nello ad te bij w we pod
    pa på nahe bei près cerca vicino perto u в у во під под из from to nach naar do till
    v ve""".split()
)
#: Words that introduce where someone lives now.
_RESIDENCE_CUES = (
    r"i live in|i m living in|i am living in|i live at|live in|living in|i m based in"
    r"|i am based in"
    r"|based in|based out of|resident in|residing in|i reside in|we live in|moved to|relocated to"
    r"|my home is in|home is in|i m in|i am in|we are in|we re in|located in|our company is in"
    r"|registered in|incorporated in|headquartered in|i live|we live|fled to|escaped to"
    r"|now live in|now living in|settled in|emigrated to|geflohen nach|ausgewandert nach"
    r"|refugie a|refugie en|emigre a|emigre en|huido a|emigrado a|emigrato in|emigrei para"
    r"|gevlucht naar|geemigreerd naar|uciekl\w* do|wyemigrowal\w* do|flydde till|emigrerade till"
    r"|ich wohne in|ich lebe in|wohne in|lebe in|wohnhaft in|ansassig in|umgezogen nach"
    r"|ziehe nach|gezogen nach"
    r"|wir wohnen in|sitz in|mit sitz in|wohne|lebe"
    r"|j habite a|j habite en|j habite au|j habite aux|j habite|je vis a|je vis en"
    r"|je vis au|je vis|habite a|habite en|vis a"
    r"|je reside a|je reside en|installe a|installe en|demenage a|demenage en|base a|base en"
    r"|vivo en|resido en|vivo a|vivo in|abito a|abito in|risiedo a|risiedo in|vivo em|moro em"
    r"|moro no|moro na|moro|resido em|ik woon in|ik woon|woon in|wonen in|ik leef in"
    r"|gevestigd in"
    r"|mieszkam w|mieszkam we|mieszkam na|mieszkam|zyje w|przeprowadzilem sie do"
    r"|przeprowadzilam sie do"
    r"|jag bor i|bor i|jag bor pa|bor pa|flyttade till|jeg bor i|jeg bor pa|"
    + _alternation(
        [
            "я живу в",
            "я живу у",
            "живу в",
            "живу у",
            "проживаю в",
            "мешкаю в",
            "переехал в",
            "переїхав до",
        ]
    )
)
_RESIDENCE_CUE_RE = re.compile(rf"\b(?:{_RESIDENCE_CUES})\b")


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
    #: Introduced as where the client lives ("I live in ...", "wohne in ...").
    resident: bool = False
    #: In a clause about travel or a temporary stay ("currently in ...").
    travel: bool = False
    line: int = 0


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
            p.kind in ("country", "region", "alias")
            or (p.kind == "city" and p.population >= 15_000)
            for p in places
        ):
            out.append(key)
    return tuple(dict.fromkeys(out))


def _filler(word: str) -> bool:
    return word in STOPWORDS or len(word) <= 2 or word.isdigit()


def _candidates(toks: list[Token], gz: Gazetteer) -> list[_Hit]:
    """Every place name the words could be, before deciding which ones the client meant."""
    words = [t.folded for t in toks]
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
            found = _Hit(i, i + size, key, places, False, 1.0, line=toks[i].line)
            break
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


def _meant(hit: _Hit, toks: list[Token], whole: bool, alone: bool, cased: bool) -> bool:
    """Whether the client wrote this name as a place, not as an ordinary word.

    `whole`: the hit's clause says nothing but place names ("Innsbruck, Tirol"); `alone`: it is
    the only name in its clause. `cased`: the text mixes upper and lower case, so a capital
    letter means something.
    """
    places = hit.places
    curated = any(p.kind in ("edge", "alias") for p in places)
    country = any(p.kind == "country" and p.main for p in places)
    if not hit.fuzzy and (curated or country):
        return True
    first = toks[hit.start]
    initial = hit.start == 0 or toks[hit.start - 1].clause != first.clause
    capital = cased and first.capitalised
    stop = hit.end - hit.start == 1 and hit.key in STOPWORDS
    if whole and not stop and (not hit.fuzzy or capital or not cased):
        # A clause of nothing but place names; a corrected spelling must still look like one.
        return True
    before = toks[hit.start - 1].folded if hit.start > 0 else ""
    locative = before in _LOCATIVE and not initial
    cities = [p for p in places if p.kind == "city"]
    big = any(p.population >= _BIG_CITY for p in cities) or any(
        p.kind in ("region", "country") for p in places
    )
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


def _spans(regex: re.Pattern[str], words: list[str]) -> list[tuple[int, int]]:
    """Token spans [start, end) of the regex matches in the folded words."""
    text = " ".join(words)
    offsets, pos = [], 0
    for w in words:
        offsets.append(pos)
        pos += len(w) + 1
    # bisect_left(offsets, c) counts the words that start before character c.
    return [
        (bisect_left(offsets, m.start() + 1) - 1, bisect_left(offsets, m.end()))
        for m in regex.finditer(text)
    ]


def _mark(hits: list[_Hit], toks: list[Token]) -> list[_Hit]:
    """Origin ("born in"), residence ("I live in") and travel ("currently in") around a hit."""
    words = [t.folded for t in toks]
    cues = _spans(_RESIDENCE_CUE_RE, words)
    travel = _spans(_TRAVEL, words)
    out = []
    for h in hits:
        clause = toks[h.start].clause
        before = {t.folded for t in toks[max(0, h.start - 4) : h.start] if t.clause == clause}
        resident = any(
            0 <= h.start - end <= 2 and toks[max(0, end - 1)].clause == clause for _, end in cues
        )
        away = any(
            toks[min(s, len(toks) - 1)].clause == clause and -6 <= s - h.start <= 6
            for s, _ in travel
        )
        out.append(
            _Hit(
                h.start,
                h.end,
                h.key,
                h.places,
                h.fuzzy,
                h.score,
                bool(before & _ORIGIN),
                resident,
                away and not resident,
                h.line,
            )
        )
    return out


def _find_places(toks: list[Token], gz: Gazetteer) -> list[_Hit]:
    raw = _candidates(toks, gz)
    covered = {i for h in raw for i in range(h.start, h.end)}
    bare = {t.clause for t in toks} - {
        t.clause for i, t in enumerate(toks) if i not in covered and not _filler(t.folded)
    }
    letters = "".join(t.original for t in toks)
    cased = letters != letters.lower() and letters != letters.upper()
    per_clause: dict[int, int] = defaultdict(int)
    for h in raw:
        per_clause[toks[h.start].clause] += 1
    kept = [
        h
        for h in raw
        if _meant(
            h,
            toks,
            toks[h.start].clause in bare,
            per_clause[toks[h.start].clause] == 1,
            cased,
        )
    ]
    return _mark(kept, toks)


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


def _explicit_part(toks: list[Token]) -> list[Token]:
    """The words right after "I live in ..." (for messages that answer another question)."""
    words = [t.folded for t in toks]
    spans = _spans(_RESIDENCE_CUE_RE, words)
    if not spans:
        return []
    end = spans[0][1]
    return [t for t in toks[end : end + 6] if t.clause == toks[min(end, len(toks) - 1)].clause]


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
    # A misspelt word read as a non-EU city may as well be an EU town we do not know.
    if hit.fuzzy and best.kind == "city":
        return None
    return best


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
    toks = list(tokens(text))
    if not toks:
        return _unknown((), ("no residence given",))
    if explicit_only:
        toks = _explicit_part(toks)
        if not toks:
            return _unknown((), ("no residence stated in this message",))
    folded = " ".join(t.folded for t in toks)
    signals: list[str] = []
    reasons: list[str] = []
    hits = _find_places(toks, gazetteer)
    if _REFUSAL.search(folded) and not [h for h in hits if not h.fuzzy]:
        return _unknown(("refused",), ("the client would rather not say where they live",))
    if _VPN.search(folded):
        signals.append("vpn")
        reasons.append("the client mentions a VPN, a proxy or geo-blocking")
    if _TRAVEL.search(folded):
        signals.append("travel")
        reasons.append("the client is travelling or only temporarily somewhere")

    residence_hits = [h for h in hits if not h.origin]
    if not residence_hits and hits:
        residence_hits = hits  # "born in Lyon" and nothing else: still the only place given
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

    company = bool(_COMPANY.search(folded)) and bool(
        _SEAT.search(folded) or _MANAGED.search(folded)
    )
    if not company and not _DUAL.search(folded):
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
        elif _DUAL.search(folded) or not signals:
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
    doubts = {"vpn", "travel", "phone_conflict", "ambiguous"} & set(signals)
    if zone is Zone.OUTSIDE and doubts:
        return _unknown(signals, reasons, codes, label)
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
