"""How did the client find the firm? Their own words -> channel, register entry, confidence.

The client's answer is evidence (DOMAIN.md R4), so it is read, never offered as a tick-box.
Each recognised cue becomes a `SourceSignal`: its channel, the words that matched, whether the
client negated it ("not an ad", "keine Werbung", "pas une pub"), whether they hedged ("I think it
was an ad?"), and the entry of the firm's marketing register it points to. The policy weighs the
signals; this module only reads. Pure: no I/O, no clock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rapidfuzz import fuzz

from triage.domain.codes import MARKETING_CHANNEL, SOLICITING, Channel, MarketingKind
from triage.domain.profile import CompanyProfile, MarketingEntry
from triage.domain.text import MAX_TEXT, clean, fold

# Cue phrases per channel, folded (lower case, no accents), in en de fr es it pt nl pl sv.
# Each is (phrase, confidence). Phrases are matched on word boundaries; a trailing "*" matches
# any ending ("recherch*").
_CUES: dict[Channel, tuple[tuple[str, float], ...]] = {
    Channel.AD: (
        ("ad", 0.9),
        ("ads", 0.9),
        ("advert*", 0.9),
        ("sponsored", 0.9),
        ("sponsor post", 0.9),
        ("banner", 0.8),
        ("promoted", 0.8),
        ("paid post", 0.9),
        ("commercial", 0.7),
        ("anzeige*", 0.9),
        ("werbung", 0.9),
        ("werbe*", 0.9),
        ("reklame", 0.9),
        ("gesponsert*", 0.9),
        ("publicite*", 0.9),
        ("pub", 0.7),
        ("pubs", 0.7),
        ("annonce*", 0.8),
        ("sponsorise*", 0.9),
        ("anuncio*", 0.9),
        ("publicidad", 0.9),
        ("patrocinad*", 0.9),
        ("pubblicita", 0.9),
        ("annunci*", 0.8),
        ("sponsorizzat*", 0.9),
        ("publicidade", 0.9),
        ("advertentie*", 0.9),
        ("reclame", 0.9),
        ("gesponsord*", 0.9),
        ("reklam*", 0.9),
        ("ogloszeni*", 0.8),
        ("sponsorowan*", 0.9),
        ("annons*", 0.9),
        ("sponsrad*", 0.9),
    ),
    Channel.INFLUENCER: (
        ("influencer*", 0.9),
        ("youtuber*", 0.9),
        ("youtube", 0.7),
        ("tiktok*", 0.7),
        ("tik tok", 0.7),
        ("streamer*", 0.8),
        ("podcast*", 0.7),
        ("blogger*", 0.7),
        ("creator*", 0.7),
        ("content creator*", 0.9),
        ("kol", 0.8),
        ("twitch", 0.7),
        ("influenceuse*", 0.9),
        ("influenciador*", 0.9),
        ("influencerk*", 0.9),
    ),
    Channel.REFERRAL: (
        ("referral*", 0.9),
        ("referred", 0.8),
        ("ref link", 0.9),
        ("ref code", 0.9),
        ("invite code", 0.9),
        ("invitation code", 0.9),
        ("promo code", 0.9),
        ("bonus code", 0.9),
        ("affiliate*", 0.9),
        ("partner link", 0.9),
        ("empfehlungs*", 0.9),
        ("einladungs*", 0.9),
        ("werbecode", 0.9),
        ("gutschein*", 0.8),
        ("parrain*", 0.9),
        ("code promo", 0.9),
        ("lien d affiliation", 0.9),
        ("referido*", 0.9),
        ("codigo de invitacion", 0.9),
        ("afiliad*", 0.9),
        ("codice invito", 0.9),
        ("codice referral", 0.9),
        ("affiliat*", 0.9),
        ("codigo de convite", 0.9),
        ("indicacao", 0.8),
        ("uitnodigingscode", 0.9),
        ("verwijzing*", 0.8),
        ("kod polecajacy", 0.9),
        ("polecen*", 0.8),
        ("reflink", 0.9),
        ("varvning*", 0.9),
        ("inbjudningskod", 0.9),
    ),
    Channel.EVENT: (
        ("conference*", 0.8),
        ("event", 0.8),
        ("events", 0.8),
        ("summit", 0.8),
        ("meetup*", 0.8),
        ("meet up", 0.8),
        ("booth", 0.9),
        ("stand", 0.6),
        ("expo", 0.8),
        ("exhibition", 0.8),
        ("trade fair", 0.8),
        ("hackathon*", 0.8),
        ("roadshow*", 0.9),
        ("webinar*", 0.8),
        ("workshop*", 0.7),
        ("keynote", 0.8),
        ("panel", 0.6),
        ("konferenz*", 0.8),
        ("messe", 0.8),
        ("veranstaltung*", 0.8),
        ("messestand", 0.9),
        ("salon", 0.6),
        ("evenement*", 0.8),
        ("conferencia*", 0.8),
        ("evento*", 0.8),
        ("feria", 0.8),
        ("fiera", 0.8),
        ("conferenza", 0.8),
        ("congresso", 0.8),
        ("beurs", 0.8),
        ("congres", 0.8),
        ("konferencj*", 0.8),
        ("wydarzeni*", 0.8),
        ("targi*", 0.8),
        ("konferens*", 0.8),
    ),
    Channel.SOCIAL: (
        ("your channel", 0.9),
        ("your telegram", 0.9),
        ("your twitter", 0.9),
        ("your x account", 0.9),
        ("your post*", 0.9),
        ("your tweet*", 0.9),
        ("your instagram", 0.9),
        ("your linkedin", 0.9),
        ("your facebook", 0.9),
        ("your discord", 0.9),
        ("your youtube", 0.9),
        ("your page", 0.8),
        ("your account", 0.8),
        ("you posted", 0.9),
        ("you tweeted", 0.9),
        ("your community", 0.9),
        ("your group", 0.8),
        ("euren kanal", 0.9),
        ("eurem kanal", 0.9),
        ("ihren kanal", 0.9),
        ("ihrem kanal", 0.9),
        ("euer post", 0.9),
        ("euren post", 0.9),
        ("votre chaine", 0.9),
        ("votre canal", 0.9),
        ("votre compte", 0.8),
        ("votre post", 0.9),
        ("votre publication", 0.9),
        ("vuestro canal", 0.9),
        ("su canal", 0.5),
        ("vostro canale", 0.9),
        ("vosso canal", 0.9),
        ("seu canal", 0.8),
        ("jullie kanaal", 0.9),
        ("jullie post", 0.9),
        ("wasz kanal", 0.9),
        ("waszym kanale", 0.9),
        ("er kanal", 0.9),
        ("ert inlagg", 0.9),
        ("twitter", 0.5),
        ("instagram", 0.5),
        ("facebook", 0.5),
        ("linkedin", 0.5),
        ("telegram channel", 0.6),
        ("telegram group", 0.6),
        ("social media", 0.5),
        ("reddit", 0.5),
        ("discord", 0.5),
        ("soziale medien", 0.5),
        ("reseaux sociaux", 0.5),
        ("redes sociales", 0.5),
        ("social network", 0.5),
        ("post", 0.4),
    ),
    Channel.PRESS: (
        ("article*", 0.8),
        ("press", 0.8),
        ("newspaper*", 0.8),
        ("magazine*", 0.8),
        ("news", 0.7),
        ("interview*", 0.7),
        ("journalist*", 0.8),
        ("coindesk", 0.8),
        ("cointelegraph", 0.8),
        ("the block", 0.7),
        ("decrypt", 0.6),
        ("bloomberg", 0.8),
        ("reuters", 0.8),
        ("financial times", 0.8),
        ("artikel", 0.8),
        ("presse*", 0.8),
        ("zeitung*", 0.8),
        ("zeitschrift*", 0.8),
        ("bericht", 0.6),
        ("journal", 0.7),
        ("articulo*", 0.8),
        ("prensa", 0.8),
        ("periodico*", 0.8),
        ("revista*", 0.8),
        ("articolo*", 0.8),
        ("stampa", 0.8),
        ("giornale*", 0.8),
        ("artigo*", 0.8),
        ("imprensa", 0.8),
        ("jornal*", 0.8),
        ("krant*", 0.8),
        ("tijdschrift*", 0.8),
        ("artykul*", 0.8),
        ("prasa", 0.8),
        ("prasie", 0.8),
        ("gazet*", 0.8),
        ("tidning*", 0.8),
        ("nyhet*", 0.7),
    ),
    Channel.FIRM_CONTACT: (
        ("you contacted me", 0.95),
        ("you emailed me", 0.95),
        ("you called me", 0.95),
        ("you messaged me", 0.95),
        ("you wrote to me", 0.95),
        ("you reached out", 0.95),
        ("reached out to me", 0.9),
        ("contacted me", 0.85),
        ("emailed me", 0.85),
        ("called me", 0.85),
        ("messaged me", 0.85),
        ("wrote to me", 0.85),
        ("dm d me", 0.85),
        ("dmed me", 0.85),
        ("sent me an email", 0.85),
        ("cold call*", 0.95),
        ("cold email*", 0.95),
        ("your sales*", 0.9),
        ("your salesman", 0.95),
        ("your sales rep*", 0.95),
        ("your representative", 0.95),
        ("your agent", 0.9),
        ("your account manager", 0.95),
        ("your team contacted", 0.95),
        ("your employee", 0.9),
        ("someone from your", 0.85),
        ("your newsletter", 0.9),
        ("hat mich kontaktiert", 0.9),
        ("hat mich angeschrieben", 0.9),
        ("hat mich angerufen", 0.9),
        ("haben mich kontaktiert", 0.9),
        ("habt mich kontaktiert", 0.95),
        ("mich angeschrieben", 0.85),
        ("mich angerufen", 0.85),
        ("euer vertrieb*", 0.95),
        ("ihr vertrieb*", 0.95),
        ("vertriebler*", 0.9),
        ("kaltakquise", 0.95),
        ("m a contacte", 0.9),
        ("m ont contacte", 0.9),
        ("vous m avez contacte", 0.95),
        ("m a appele", 0.9),
        ("m a ecrit", 0.85),
        ("votre commercial", 0.95),
        ("votre equipe commerciale", 0.95),
        ("me contacto", 0.9),
        ("me contactaron", 0.9),
        ("me llamo", 0.8),
        ("me escribio", 0.85),
        ("vuestro comercial", 0.95),
        ("su comercial", 0.9),
        ("mi ha contattato", 0.9),
        ("mi avete contattato", 0.95),
        ("mi ha chiamato", 0.9),
        ("mi ha scritto", 0.85),
        ("vostro commerciale", 0.95),
        ("me contactou", 0.9),
        ("me contataram", 0.9),
        ("me ligou", 0.85),
        ("me escreveu", 0.85),
        ("vosso comercial", 0.95),
        ("heeft me gebeld", 0.9),
        ("heeft mij gebeld", 0.9),
        ("heeft me gemaild", 0.9),
        ("heeft contact met me", 0.9),
        ("jullie verkoper", 0.95),
        ("handlowiec", 0.95),
        ("handlowca", 0.95),
        ("przedstawiciel*", 0.9),
        ("napisal do mnie", 0.9),
        ("napisala do mnie", 0.9),
        ("zadzwonil do mnie", 0.9),
        ("zadzwonila do mnie", 0.9),
        ("skontaktowal sie", 0.9),
        ("kontaktade mig", 0.9),
        ("ringde mig", 0.9),
        ("mejlade mig", 0.9),
        ("er saljare", 0.95),
    ),
    Channel.ORGANIC_SEARCH: (
        ("google*", 0.75),
        ("googled", 0.8),
        ("gegoogelt", 0.8),
        ("googelte", 0.8),
        ("googlade", 0.8),
        ("bing", 0.75),
        ("duckduckgo", 0.75),
        ("ecosia", 0.75),
        ("yahoo", 0.7),
        ("brave search", 0.75),
        ("search engine", 0.8),
        ("searched", 0.75),
        ("search for", 0.7),
        ("searching", 0.7),
        ("search result*", 0.75),
        ("looked up", 0.6),
        ("typed", 0.6),
        ("gesucht", 0.75),
        ("suche", 0.6),
        ("suchmaschine", 0.8),
        ("eingegeben", 0.6),
        ("recherche", 0.6),
        ("cherche", 0.7),
        ("tape", 0.5),
        ("moteur de recherche", 0.8),
        ("busque", 0.75),
        ("buscando", 0.7),
        ("busqueda", 0.7),
        ("buscador", 0.8),
        ("cercato", 0.75),
        ("cercando", 0.7),
        ("ricerca", 0.6),
        ("motore di ricerca", 0.8),
        ("pesquisei", 0.75),
        ("pesquisa", 0.6),
        ("procurei", 0.75),
        ("gezocht", 0.75),
        ("zoeken", 0.6),
        ("zoekmachine", 0.8),
        ("szukalem", 0.75),
        ("szukalam", 0.75),
        ("wyszukiw*", 0.75),
        ("wyszukal*", 0.75),
        ("sokte", 0.75),
        ("sokning", 0.7),
        ("sokmotor", 0.8),
    ),
    Channel.OWN_RESEARCH: (
        ("my own research", 0.9),
        ("own research", 0.9),
        ("did some research", 0.85),
        ("researched", 0.8),
        ("research", 0.6),
        ("compared", 0.8),
        ("comparison", 0.8),
        ("comparing", 0.8),
        ("reviews", 0.6),
        ("review site*", 0.7),
        ("github", 0.8),
        ("rfp", 0.9),
        ("tender", 0.8),
        ("due diligence", 0.8),
        ("shortlist*", 0.8),
        ("coingecko", 0.7),
        ("coinmarketcap", 0.7),
        ("looked you up", 0.8),
        ("looked for providers", 0.85),
        ("list of", 0.5),
        ("directory", 0.6),
        ("register of", 0.7),
        ("myself", 0.5),
        ("on my own", 0.5),
        ("recherchiert", 0.8),
        ("verglichen", 0.8),
        ("vergleich*", 0.7),
        ("selbst gesucht", 0.8),
        ("compare", 0.7),
        ("mes propres recherches", 0.9),
        ("comparatif", 0.8),
        ("investigue", 0.8),
        ("compare precios", 0.7),
        ("comparativa", 0.8),
        ("confrontato", 0.8),
        ("comparei", 0.8),
        ("vergeleken", 0.8),
        ("zelf gezocht", 0.8),
        ("porownywal*", 0.8),
        ("porownanie", 0.8),
        ("jamforde", 0.8),
        ("jamforelse", 0.8),
    ),
    Channel.WORD_OF_MOUTH: (
        ("friend*", 0.85),
        ("colleague*", 0.85),
        ("coworker*", 0.85),
        ("co worker*", 0.85),
        ("family", 0.8),
        ("brother", 0.85),
        ("sister", 0.85),
        ("father", 0.85),
        ("mother", 0.85),
        ("cousin", 0.85),
        ("wife", 0.85),
        ("husband", 0.85),
        ("partner told", 0.8),
        ("word of mouth", 0.9),
        ("someone i know", 0.8),
        ("acquaintance", 0.8),
        ("business partner", 0.8),
        ("my accountant", 0.8),
        ("my lawyer", 0.8),
        ("recommended", 0.6),
        ("recommendation", 0.6),
        ("told me", 0.6),
        ("mentioned", 0.6),
        ("freund*", 0.85),
        ("kollege*", 0.85),
        ("kollegin*", 0.85),
        ("bekannte*", 0.85),
        ("bruder", 0.85),
        ("schwester", 0.85),
        ("familie", 0.8),
        ("empfohlen", 0.6),
        ("mundpropaganda", 0.9),
        ("ami", 0.85),
        ("amie", 0.85),
        ("amis", 0.85),
        ("copain", 0.85),
        ("copine", 0.85),
        ("collegue*", 0.85),
        ("frere", 0.85),
        ("soeur", 0.85),
        ("bouche a oreille", 0.9),
        ("recommande", 0.6),
        ("amigo*", 0.85),
        ("amiga*", 0.85),
        ("colega*", 0.85),
        ("hermano", 0.85),
        ("hermana", 0.85),
        ("conocido", 0.85),
        ("boca a boca", 0.9),
        ("recomendo", 0.6),
        ("amico", 0.85),
        ("amica", 0.85),
        ("amici", 0.85),
        ("collega", 0.85),
        ("fratello", 0.85),
        ("passaparola", 0.9),
        ("consigliato", 0.6),
        ("irmao", 0.85),
        ("irma", 0.85),
        ("vriend*", 0.85),
        ("collega s", 0.85),
        ("kennis", 0.8),
        ("broer", 0.85),
        ("zus", 0.85),
        ("mond tot mond", 0.9),
        ("aanbevolen", 0.6),
        ("noemde", 0.6),
        ("przyjaciel*", 0.85),
        ("kolega", 0.85),
        ("kolezanka", 0.85),
        ("znajom*", 0.85),
        ("brat", 0.85),
        ("siostra", 0.85),
        ("polecil*", 0.6),
        ("vanner", 0.85),
        ("min van", 0.85),
        ("kollega", 0.85),
        ("kompis", 0.85),
        ("bror", 0.85),
        ("syster", 0.85),
        ("rekommender*", 0.6),
    ),
    Channel.CLOSE_LINK: (),
}

#: Phrases that say "on my own initiative": self-certification proves nothing (R4), and next to
#: any solicitation signal it is itself a reason to look.
_SELF_CERT = re.compile(
    r"\b(own initiative|on my own accord|of my own accord|i came on my own|my own free will"
    r"|unsolicited|eigene(r|n)? initiative|aus eigenem antrieb|propre initiative"
    r"|de moi meme|iniciativa propia|por mi cuenta|mia iniziativa|iniziativa personale"
    r"|iniciativa propria|eigen initiatief|wlasnej inicjatywy|eget initiativ)\b"
)
_NEGATORS = frozenset(
    """not no never nobody none neither nor without wasn isn didn don doesn hadn haven nothing
    kein keine keinen keiner keinem nicht nie niemand ohne weder pas ni jamais sans aucun
    aucune personne rien non nunca nadie sin ningun ninguna tampoco mai nessuno senza nessun
    nessuna nem nao nunca ninguem sem nenhum nenhuma niet geen nooit niemand zonder noch nie
    zaden zadna zadnego nikt bez ani inte ingen aldrig utan varken""".split()
)
_HEDGES = re.compile(
    r"\b(i think|i believe|maybe|perhaps|probably|possibly|not sure|unsure|i guess|i suppose"
    r"|might have|may have|could have been|or maybe|i don t remember|can t remember|don t recall"
    r"|not certain|somewhere|ich glaube|ich denke|vielleicht|wahrscheinlich|weiss nicht"
    r"|nicht sicher|irgendwo|je crois|je pense|peut etre|probablement|pas sur|je ne sais plus"
    r"|quelque part|creo|quizas|quiza|tal vez|a lo mejor|no estoy seguro|no se|en algun"
    r"|credo|penso|forse|probabilmente|non sono sicuro|non ricordo|da qualche parte|acho"
    r"|talvez|provavelmente|nao tenho certeza|nao sei|algures|ik denk|misschien"
    r"|waarschijnlijk|weet niet|niet zeker|ergens|chyba|moze|prawdopodobnie|nie pamietam"
    r"|nie jestem pewien|nie jestem pewna|gdzies|jag tror|kanske|troligen|vet inte"
    r"|inte saker|nagonstans)\b"
)
_NO_LINK = re.compile(
    r"\b(no|without|kein|keinen|ohne|sans|aucun|pas de|sin|ningun|senza|nessun|sem|nenhum"
    r"|geen|zonder|bez|zadnego|ingen|utan)\s+(\w+\s+)?(link|links|code|codes|lien|codigo"
    r"|codice|kod|koden|referral|ref|affiliate|invite)\b"
)
_ENGLISH_PUB = frozenset({"a", "the", "in", "at", "local", "irish", "english", "this", "that"})
_SENTENCE = re.compile(r"[.!?;\n]+")
#: Words that make a search engine mention a search for the firm itself ("your name").
_NAME_SEARCH = re.compile(
    r"\b(your name|your company name|your firm|your website|your site|the name|euren namen"
    r"|ihren namen|eurem namen|ihrem namen|euer name|euren name|den namen|eure seite"
    r"|eure website|votre nom"
    r"|vuestro nombre|su nombre|vostro nome|il nome|vosso nome|o nome|jullie naam|de naam"
    r"|wasza nazwe|nazwe firmy|ert namn|namnet)\b"
)
_NORMAL_RESULT = re.compile(
    r"\b(normal|organic|regular|unpaid|non sponsored|not sponsored|first result|top result"
    r"|natural)\b"
)

_YES = frozenset(
    "yes yeah yep yup sure correct right ja jawohl genau doch oui ouais si sim claro certo "
    "esatto tak owszem jo japp absolutely indeed affirmative".split()
)
_NO = frozenset(
    "no nope nah never nobody none nein nee niemand nie non nunca nadie mai nessuno nao "
    "niet neen nej ingen nikt negative".split()
)


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


@dataclass(frozen=True)
class SourceFinding:
    """Everything the client's words say about how they found the firm."""

    channel: Channel
    confidence: float
    signals: tuple[SourceSignal, ...] = ()
    #: self_certification, no_link_or_code, name_search, organic_result
    flags: frozenset[str] = frozenset()
    #: (code as written, register entry id)
    referral_codes: tuple[tuple[str, str], ...] = ()


def _cue_regex(phrase: str) -> str:
    star = phrase.endswith("*")
    body = re.escape(phrase.rstrip("*")).replace(r"\ ", r"\s+")
    return rf"\b{body}\w*" if star else rf"\b{body}\b"


_CUE_RES: tuple[tuple[Channel, re.Pattern[str], float, str], ...] = tuple(
    (channel, re.compile(_cue_regex(phrase)), conf, phrase.rstrip("*"))
    for channel, cues in _CUES.items()
    for phrase, conf in cues
)


def find_referral_codes(text: str, profile: CompanyProfile) -> list[tuple[str, str]]:
    """Referral codes of the register's patterns anywhere in a text: (code, entry id)."""
    found: list[tuple[str, str]] = []
    text = clean(text)[:MAX_TEXT]
    for entry in profile.marketing:
        regex = entry.code_regex()
        if regex is None:
            continue
        for m in regex.finditer(text):
            found.append((m.group(0), entry.id))
    return found


def answer_yes_no(text: str) -> bool | None:
    """A plain yes or no in any supported language; None when neither or both."""
    words = set(fold(text).split())
    yes, no = bool(words & _YES), bool(words & _NO)
    if yes == no:
        return None
    return yes


def _negated(words_before: list[str]) -> bool:
    return bool(set(words_before[-3:]) & _NEGATORS)


def _name_pattern(name: str) -> re.Pattern[str] | None:
    key = fold(name)
    if len(key) < 2:
        return None
    return re.compile(rf"(?<![a-z0-9]){re.escape(key)}(?![a-z0-9])")


def _names_firm(profile: CompanyProfile, sentence: str) -> bool:
    """Whether the client typed the firm's own name (not a closely linked entity's)."""
    firm = fold(profile.name)
    for link in profile.close_links:
        for name in (link.name, *link.aliases):
            key = fold(name)
            if key and key in sentence:
                return False
    first = firm.split()[0] if firm else ""
    return bool(firm) and (
        firm in sentence or (len(first) >= 5 and f" {first} " in f" {sentence} ")
    )


def _entry_names(entry: MarketingEntry) -> list[str]:
    return [n for n in entry.names if fold(n)]


def _fuzzy_name_hit(name: str, sentence: str) -> bool:
    """A distinctive register name written with a typo ("Crypto Klara", "Web 3 Sumit")."""
    key = fold(name)
    if len(key) < 8 or any(len(w) < 3 for w in key.split()):
        return False
    size = len(key.split())
    words = sentence.split()
    for n in {size - 1, size, size + 1} - {0}:
        for i in range(0, max(0, len(words) - n) + 1):
            if fuzz.ratio(key, " ".join(words[i : i + n]), score_cutoff=90):
                return True
    return False


def _clause_of(folded: str, start: int) -> str:
    """The sentence of a folded text around a position."""
    bounds = [0, *(m.end() for m in _SENTENCE.finditer(folded)), len(folded)]
    prev = max(b for b in bounds if b <= start)
    nxt = min((b for b in bounds if b > start), default=len(folded))
    return folded[prev:nxt]


def _entry_signal(
    entry: MarketingEntry, matched: str, negated: bool, hedged: bool, conf: float
) -> SourceSignal:
    channel = MARKETING_CHANNEL[entry.kind]
    if entry.kind is MarketingKind.SEO:
        channel = Channel.ORGANIC_SEARCH
    return SourceSignal(channel, matched, conf, negated, hedged, entry.id)


def classify_source(text: str, profile: CompanyProfile) -> SourceFinding:
    """Read the client's own words on how they found the firm."""
    raw = clean(text)[:MAX_TEXT]
    codes = tuple(find_referral_codes(raw, profile))
    # Keep sentence punctuation for hedging and negation scope, fold the rest.
    sentences = [fold(s) for s in re.split(r"[.!;\n]+", raw) if fold(s)]
    questions = {fold(s) for s in re.split(r"(?<=\?)", raw) if s.strip().endswith("?")}
    flags: set[str] = set()
    signals: list[SourceSignal] = []
    matched_entries: set[str] = set()

    for sentence in sentences:
        hedged = bool(_HEDGES.search(sentence)) or any(sentence in q for q in questions)
        if _SELF_CERT.search(sentence):
            flags.add("self_certification")
        if _NO_LINK.search(sentence):
            flags.add("no_link_or_code")
        if _NAME_SEARCH.search(sentence) or _names_firm(profile, sentence):
            flags.add("name_search")
        if _NORMAL_RESULT.search(sentence):
            flags.add("organic_result")

        # 1. Closely linked entities (R10): by name, typos tolerated for long names.
        for link in profile.close_links:
            for name in (link.name, *link.aliases):
                pat = _name_pattern(name)
                m = pat.search(sentence) if pat else None
                if m is None and not _fuzzy_name_hit(name, sentence):
                    continue
                before = sentence[: m.start()].split() if m else []
                signals.append(
                    SourceSignal(Channel.CLOSE_LINK, link.name, 0.9, _negated(before), hedged)
                )
                break

        # 2. The register: entries named in the client's words.
        for entry in profile.marketing:
            for name in _entry_names(entry):
                pat = _name_pattern(name)
                m = pat.search(sentence) if pat else None
                if m is None and not _fuzzy_name_hit(name, sentence):
                    continue
                before = sentence[: m.start()].split() if m else []
                signals.append(_entry_signal(entry, name, _negated(before), hedged, 0.9))
                matched_entries.add(entry.id)
                break

        # 3. Generic cues.
        for channel, regex, conf, phrase in _CUE_RES:
            for m in regex.finditer(sentence):
                before = sentence[: m.start()].split()
                if phrase in ("pub", "pubs") and before and before[-1] in _ENGLISH_PUB:
                    continue  # "met a friend in a pub" is not "une pub"
                signals.append(SourceSignal(channel, m.group(0), conf, _negated(before), hedged))
                break

    signals = _attach_register(signals, profile, sentences, matched_entries)
    signals = _refine(signals, flags)
    for code, entry_id in codes:
        signals.append(SourceSignal(Channel.REFERRAL, code, 1.0, False, False, entry_id))
    primary = _primary(signals)
    if primary is None:
        return SourceFinding(Channel.UNKNOWN, 0.0, tuple(signals), frozenset(flags), codes)
    confidence = primary.confidence * (0.5 if primary.hedged else 1.0)
    return SourceFinding(primary.channel, confidence, tuple(signals), frozenset(flags), codes)


def _attach_register(
    signals: list[SourceSignal],
    profile: CompanyProfile,
    sentences: list[str],
    already: set[str],
) -> list[SourceSignal]:
    """Point generic cues at the register entry they describe ("ad on Telegram")."""
    out: list[SourceSignal] = []
    text = " ".join(sentences)
    ads = any(s.channel is Channel.AD and not s.negated for s in signals)
    for sig in signals:
        if sig.entry_id is not None or sig.channel not in SOLICITING:
            out.append(sig)
            continue
        if sig.channel is Channel.SOCIAL and ads:
            continue  # "your Telegram ad": the platform of the ad, not the firm's channel
        best: MarketingEntry | None = None
        for entry in profile.marketing:
            if MARKETING_CHANNEL[entry.kind] is not sig.channel or entry.id in already:
                continue
            if entry.channel and re.search(rf"\b{re.escape(fold(entry.channel))}\b", text):
                best = entry
                break
        if best is not None:
            out.append(
                SourceSignal(
                    sig.channel,
                    sig.matched,
                    max(sig.confidence, 0.85),
                    sig.negated,
                    sig.hedged,
                    best.id,
                )
            )
        else:
            out.append(sig)
    return out


def _refine(signals: list[SourceSignal], flags: set[str]) -> list[SourceSignal]:
    """Drop cues that other, more specific cues explain."""
    live = [s for s in signals if not s.negated]
    channels = {s.channel for s in live}
    out: list[SourceSignal] = []
    for sig in signals:
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
            sig = SourceSignal(
                sig.channel,
                sig.matched,
                min(sig.confidence, 0.5),
                sig.negated,
                sig.hedged,
                sig.entry_id,
            )
        if sig.channel is Channel.ORGANIC_SEARCH and "name_search" in flags:
            sig = SourceSignal(
                sig.channel,
                sig.matched,
                max(sig.confidence, 0.9),
                sig.negated,
                sig.hedged,
                sig.entry_id,
            )
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
