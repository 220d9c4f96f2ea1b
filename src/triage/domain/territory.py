"""Where does the client live? Free text -> country or territory -> EU, EEA, outside, or unknown.

Pure: the place names come in a `Gazetteer` built from the data packages by `triage.geodata`.
The rules (DOMAIN.md R1 and section 7):

- residence, seat or physical presence counts, never nationality or language ("Ich bin
  Deutscher, wohne in Dubai" is Dubai);
- typos are tolerated ("Östereich", "Austrailia", "polsa") through a deletion index and
  rapidfuzz scoring, but a fuzzy match that could be an EU place or a non-EU place is ambiguous;
- "I'd rather not say", nothing found, places in different zones, an EU/EEA phone number beside
  a non-EU answer, VPN or travel hints: the zone is UNKNOWN, never OUTSIDE (fail closed);
- the Telegram language and the phone prefix corroborate or contradict; they never decide.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import phonenumbers
from rapidfuzz.distance import Levenshtein

from triage.domain.codes import IN_SCOPE, Zone, zone_of_code
from triage.domain.text import fold

#: Common words of the supported languages that also spell a place ("Nice", "Split", "Best").
#: They never match a place on their own in free text, and never match fuzzily.
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
    google search sales trade order
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

_REFUSAL = re.compile(
    r"\b(rather not|prefer not|prefere not|won t (say|tell)|will not (say|tell)"
    r"|not (going|willing) to"
    r" (say|tell|share)|none of your business|not your business|no comment|private|confidential"
    r"|keine angabe|mochte ich nicht|will ich nicht|sag ich nicht|geht (euch|sie|dich) nichts an"
    r"|lieber nicht|je prefere ne pas|prefere ne pas|je ne (veux|souhaite) pas|pas vos affaires"
    r"|prefiero no|no quiero decir|no es asunto|preferisco non|non voglio dire|prefiro nao"
    r"|nao quero dizer|liever niet|wil ik niet|zeg ik niet|wole nie|nie chce (mowic|podawac)"
    r"|vill inte (saga|beratta)|helst inte)\b"
)
_VPN = re.compile(
    r"\b(vpn|proxy|proxies|tor browser|tor network|geo ?block\w*|blocked|gesperrt"
    r"|bloque\w*|bloccat\w*|geblokkeerd|zablokowan\w*|blockerad\w*)\b"
)
_TRAVEL = re.compile(
    r"\b(travel\w*|on holiday|on vacation|on a trip|currently in|right now in|at the moment in"
    r"|for now in|temporarily|visiting|digital nomad|nomad|business trip|reise\w*|im urlaub"
    r"|derzeit in|zurzeit in|gerade in|voruebergehend|en voyage|en vacances|actuellement a"
    r"|de viaje|de vacaciones|actualmente en|in viaggio|in vacanza|attualmente a|em viagem"
    r"|de ferias|atualmente em|op reis|op vakantie|momenteel in|w podrozy|na wakacjach"
    r"|obecnie w|pa resa|pa semester|just nu i)\b"
)
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
    r"|foretag)\b"
)
_SEAT = re.compile(
    r"\b(registered|incorporated|seat|domiciled|headquartered|head office|hq|sitz|registriert"
    r"|gegrundet|siege|immatricul\w*|enregistr\w*|sede|registrad\w*|constituid\w*|registrat\w*"
    r"|gevestigd|geregistreerd|siedziba|zarejestrowan\w*|sate|registrerat)\b"
)
_MANAGED = re.compile(
    r"\b(managed|run|operated|directors?|management|i run it|we run it|operate|run from"
    r"|geleitet|verwaltet|gefuhrt|geschaftsfuhrung|dirig\w*|gere\w*|gestit\w*|gestionad\w*"
    r"|geleid|zarzadzan\w*|leds|drivs)\b"
)
#: Words before a place that make it a place of origin, not of residence.
_ORIGIN = frozenset(
    """born originally formerly previously grew raised citizen citizenship passport nationality
    geboren ursprunglich fruher staatsburger pass ne nee originaire nationalite passeport nacido
    nacida originario originaria nacionalidad pasaporte nato nata cittadino passaporto nascido
    nascida origem passaporte geboren oorspronkelijk vroeger paspoort urodzony urodzona
    obywatel paszport fodd ursprungligen tidigare medborgare pass""".split()
)
#: Words that introduce where someone lives now (for "explicit" mentions in any message).
_RESIDENCE_CUES = (
    r"i live in|i m living in|i am living in|i live at|live in|living in|i m based in"
    r"|i am based in"
    r"|based in|based out of|resident in|residing in|i reside in|we live in|moved to|relocated to"
    r"|my home is in|home is in|i m in|i am in|we are in|we re in|located in|our company is in"
    r"|registered in|incorporated in|headquartered in"
    r"|ich wohne in|ich lebe in|wohne in|lebe in|wohnhaft in|ansassig in|umgezogen nach"
    r"|ziehe nach"
    r"|wir wohnen in|sitz in|mit sitz in"
    r"|j habite a|j habite en|j habite au|j habite aux|j habite|je vis a|je vis en"
    r"|je vis au|je vis"
    r"|je reside a|je reside en|installe a|installe en|demenage a|demenage en|base a|base en"
    r"|vivo en|resido en|vivo a|vivo in|abito a|abito in|risiedo a|risiedo in|vivo em|moro em"
    r"|moro no|moro na|resido em|ik woon in|ik woon|woon in|wonen in|ik leef in|gevestigd in"
    r"|mieszkam w|mieszkam we|mieszkam na|zyje w|przeprowadzilem sie do|przeprowadzilam sie do"
    r"|jag bor i|bor i|jag bor pa|bor pa|flyttade till"
)
_RESIDENCE_CUE_RE = re.compile(rf"\b(?:{_RESIDENCE_CUES})\b")


@dataclass(frozen=True)
class Place:
    """One gazetteer entry: the code it belongs to, its kind, size and a label for people."""

    code: str
    kind: str
    population: int
    label: str


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

    start: int  # word index
    end: int
    key: str
    places: tuple[Place, ...]
    fuzzy: bool
    score: float
    origin: bool = False


def _best_place(places: tuple[Place, ...], language: str | None, gz: Gazetteer) -> Place:
    lang = (language or "").split("-")[0].lower()

    def rank(p: Place) -> tuple[int, int, int]:
        speaks = 0 if lang and lang in gz.languages.get(p.code, frozenset()) else 1
        return (_KIND_RANK.get(p.kind, 9), speaks, -p.population)

    return min(places, key=rank)


def _zones(places: Iterable[Place]) -> set[Zone]:
    return {zone_of_code(p.code) for p in places if p.code}


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
    scored = [(Levenshtein.distance(word, k), k) for k in found]
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


def _find_places(words: list[str], gz: Gazetteer, *, allow_city_stopwords: bool) -> list[_Hit]:
    hits: list[_Hit] = []
    i, n = 0, len(words)
    while i < n:
        found: _Hit | None = None
        for size in range(min(gz.max_words, n - i), 0, -1):
            key = " ".join(words[i : i + size])
            places = gz.names.get(key)
            if not places:
                continue
            if size == 1 and key in STOPWORDS:
                strong = [p for p in places if p.kind in ("edge", "alias", "country")]
                if not strong and not allow_city_stopwords:
                    continue
                if not strong and key in {"in", "i", "a", "as", "de", "no", "to"}:
                    continue
            if (
                size == 1
                and key in gz.nationalities
                and not any(p.kind in ("edge", "alias", "country") for p in places)
            ):
                continue
            found = _Hit(i, i + size, key, places, False, 1.0)
            break
        if found is None:
            word = words[i]
            keys, score = _fuzzy_lookup(word, gz)
            fuzzy_keys = keys
            if not keys:
                fuzzy_keys = _stem_lookup(word, gz)
                score = 0.85 if fuzzy_keys else 0.0
            if fuzzy_keys:
                places = tuple(p for k in fuzzy_keys for p in gz.names.get(k, ()))
                if places:
                    found = _Hit(i, i + 1, "/".join(fuzzy_keys), places, True, score)
        if found is not None:
            before = set(words[max(0, found.start - 4) : found.start])
            origin = bool(before & _ORIGIN)
            hits.append(
                _Hit(
                    found.start,
                    found.end,
                    found.key,
                    found.places,
                    found.fuzzy,
                    found.score,
                    origin,
                )
            )
            i = found.end
        else:
            i += 1
    return hits


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
    folded = fold(text)
    if not folded:
        return _unknown((), ("no residence given",))
    signals: list[str] = []
    reasons: list[str] = []
    if explicit_only:
        cue = _RESIDENCE_CUE_RE.search(folded)
        if cue is None:
            return _unknown((), ("no residence stated in this message",))
        folded = folded[cue.end() :].strip()
        # Only the words right after the cue, up to the end of the sentence-ish chunk.
        folded = " ".join(folded.split()[:6])
        if not folded:
            return _unknown((), ("no residence stated in this message",))
    words = folded.split()
    short = len(words) <= 4
    hits = _find_places(words, gazetteer, allow_city_stopwords=short or explicit_only)
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
        nat = [gazetteer.nationalities[w] for w in words if w in gazetteer.nationalities]
        if nat:
            return _unknown(
                ("nationality_only",),
                (f"the client names a nationality or language ({nat[0]}), not a residence",),
                nat,
            )
        return _unknown(signals, reasons or ["no place recognised"])

    # Resolve each hit to the places it can mean; a name that can be EU or not is ambiguous.
    chosen: list[tuple[_Hit, Place]] = []

    def named_elsewhere(hit: _Hit) -> set[str]:
        return {
            p.code
            for h in residence_hits
            if h is not hit and (not h.fuzzy or h.score >= 0.8)
            for p in h.places
            if p.kind in ("country", "alias", "edge")
        }

    ambiguous: list[str] = []
    for hit in residence_hits:
        places = hit.places
        # A country named in the same answer settles which "Melbourne" or "Valencia" it is.
        same_country = tuple(p for p in places if p.code in named_elsewhere(hit))
        if same_country:
            places = same_country
        best = _best_place(places, language, gazetteer)
        if hit.fuzzy:
            # A corrected spelling that could be an EU/EEA place or not is not settled.
            zones = _zones(places)
            if len(zones) > 1 and (zones & IN_SCOPE) and (zones - IN_SCOPE):
                ambiguous.append(hit.key)
                continue
            # A misspelt word read as a non-EU city may as well be an EU town we do not know.
            if zone_of_code(best.code) not in IN_SCOPE and best.kind == "city":
                ambiguous.append(hit.key)
                continue
        elif zone_of_code(best.code) not in IN_SCOPE and best.kind != "area":
            # "Granada" is Grenada in Spanish and a Spanish city; "Córdoba" is in Spain and in
            # Argentina. An EU/EEA reading of real size means the client must say which.
            floor = max(50_000, best.population // 30)
            rival = [
                p
                for p in places
                if zone_of_code(p.code) in IN_SCOPE
                and p.kind != "area"
                and (p.population >= floor or p.kind in ("country", "alias", "edge"))
            ]
            if rival:
                ambiguous.append(hit.key)
                continue
        chosen.append((hit, best))
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

    codes = list(dict.fromkeys(p.code for _, p in chosen if p.code))
    zones_found = {zone_of_code(c) for c in codes}
    fuzzy = any(h.fuzzy for h, _ in chosen)
    if fuzzy:
        signals.append("fuzzy")
    # The most specific place named (a city, an island) gives the label and the code.
    primary_hit, primary = max(
        chosen, key=lambda hp: (bool(hp[1].code), not hp[0].fuzzy, _SPECIFICITY.get(hp[1].kind, 0))
    )
    code = primary.code if primary.code else (codes[0] if codes else None)
    if code is None:
        return _unknown(signals, [*reasons, "no country recognised"])
    label = primary.label

    if len(zones_found) > 1 or (ambiguous and zones_found - IN_SCOPE):
        company = bool(_COMPANY.search(folded))
        if company and (_SEAT.search(folded) or _MANAGED.search(folded)):
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
