"""What does the client want? Free text -> a MiCA Art. 3(1)(16) service, or NON_MICA.

The catalogue is DOMAIN.md section 3; the firm's own products (company profile) map named
offers to a code. Anything outside MiCA's crypto-asset services (derivatives, staking and earn,
lending, tokenised securities) is NON_MICA and goes to a person (R9); stablecoins and requests to
skip identity checks are flagged (DOMAIN.md section 6). Pure: no I/O, no clock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from triage.domain.codes import ServiceCode
from triage.domain.matching import PhraseIndex, per_profile
from triage.domain.profile import CompanyProfile, Product
from triage.domain.text import MAX_TEXT, fold

S = ServiceCode

# Cue phrases per code, folded, en de fr es it pt nl pl sv; "*" matches any ending.
_CUES: dict[ServiceCode, tuple[tuple[str, float], ...]] = {
    S.CUSTODY: (
        ("хранен*", 0.9),
        ("хранить", 0.85),
        ("хранилищ*", 0.8),
        ("зберіган*", 0.9),
        ("зберігати", 0.85),
        ("opbevar*", 0.9),
        ("oppbevar*", 0.9),
        ("uschov*", 0.9),
        ("uloz*", 0.6),
        ("orzes*", 0.9),
        ("megorz*", 0.9),
        ("custodie", 0.9),
        ("pastrare", 0.8),
        ("φυλαξ*", 0.9),
        ("θεματοφυλακ*", 0.9),
        ("saklama", 0.85),
        ("saklamak", 0.85),
        ("custodian service", 0.9),
        ("keep them safe", 0.8),
        ("keep it safe", 0.8),
        ("securely store", 0.85),
        ("sicher aufbewahren", 0.9),
        ("mettre en securite", 0.85),
        ("en securite", 0.7),
        ("conserver mes", 0.85),
        ("custody", 0.9),
        ("custodian", 0.9),
        ("custodial", 0.9),
        ("safekeeping", 0.9),
        ("safe keeping", 0.9),
        ("keep my", 0.6),
        ("store my", 0.8),
        ("storing", 0.7),
        ("storage", 0.7),
        ("cold storage", 0.9),
        ("hold my", 0.7),
        ("keep safe", 0.8),
        ("safe place", 0.7),
        ("wallet for", 0.6),
        ("vault", 0.7),
        ("verwahr*", 0.9),
        ("aufbewahr*", 0.9),
        ("aufheben", 0.7),
        ("lagern", 0.7),
        ("garder mes", 0.85),
        ("garder", 0.6),
        ("conserver", 0.7),
        ("conservation", 0.7),
        ("garde de", 0.8),
        ("conservation de", 0.85),
        ("custodia", 0.9),
        ("guardar", 0.85),
        ("custodiar", 0.9),
        ("custodire", 0.9),
        ("conservare", 0.8),
        ("deposito", 0.6),
        ("custodia de", 0.9),
        ("guarda", 0.7),
        ("bewaren", 0.9),
        ("bewaring", 0.9),
        ("bewaard", 0.85),
        ("bewaarder", 0.9),
        ("przechowywa*", 0.9),
        ("przechowac", 0.9),
        ("przechowanie", 0.9),
        ("forvar*", 0.9),
        ("forvaring", 0.9),
    ),
    S.EXCH_FIAT: (
        ("купить", 0.75),
        ("купить", 0.75),
        ("продать", 0.75),
        ("покупк*", 0.7),
        ("продаж*", 0.7),
        ("купити", 0.75),
        ("продати", 0.75),
        ("kobe", 0.75),
        ("saelge", 0.75),
        ("kjope", 0.75),
        ("selge", 0.75),
        ("koupit", 0.75),
        ("prodat", 0.75),
        ("megvenni", 0.75),
        ("vasarol*", 0.75),
        ("eladni", 0.75),
        ("elad", 0.7),
        ("cumpar*", 0.75),
        ("vand", 0.7),
        ("vinde", 0.7),
        ("αγορ*", 0.75),
        ("πουλ*", 0.75),
        ("πωλ*", 0.75),
        ("satin al*", 0.75),
        ("satmak", 0.75),
        ("almak", 0.7),
        ("buy", 0.75),
        ("buying", 0.75),
        ("purchase", 0.75),
        ("sell", 0.75),
        ("selling", 0.75),
        ("cash out", 0.85),
        ("off ramp", 0.9),
        ("on ramp", 0.9),
        ("fiat", 0.8),
        ("kaufen", 0.75),
        ("kauf", 0.7),
        ("verkaufen", 0.75),
        ("verkauf", 0.7),
        ("auszahlen", 0.7),
        ("acheter", 0.75),
        ("achat", 0.75),
        ("vendre", 0.75),
        ("vente", 0.75),
        ("comprar", 0.75),
        ("compra", 0.7),
        ("vender", 0.75),
        ("venta", 0.75),
        ("comprare", 0.75),
        ("acquistare", 0.75),
        ("vendere", 0.75),
        ("vendita", 0.75),
        ("compre", 0.7),
        ("venda", 0.75),
        ("kopen", 0.75),
        ("koop", 0.7),
        ("verkopen", 0.75),
        ("verkoop", 0.75),
        ("kupic", 0.75),
        ("kupno", 0.75),
        ("kupie", 0.75),
        ("sprzedac", 0.75),
        ("sprzedaz", 0.75),
        ("sprzedam", 0.75),
        ("kopa", 0.75),
        ("kop", 0.6),
        ("salja", 0.75),
        ("forsaljning", 0.75),
    ),
    S.EXCH_CRYPTO: (
        ("обменять", 0.75),
        ("обмен*", 0.7),
        ("обміняти", 0.75),
        ("обмін*", 0.7),
        ("veksle", 0.75),
        ("bytte", 0.75),
        ("smenit", 0.75),
        ("vymen*", 0.75),
        ("csere*", 0.75),
        ("schimb*", 0.75),
        ("ανταλλαγ*", 0.75),
        ("takas", 0.75),
        ("donustur*", 0.7),
        ("swap", 0.85),
        ("swapping", 0.85),
        ("convert", 0.7),
        ("exchange", 0.6),
        ("trade", 0.5),
        ("tauschen", 0.75),
        ("umtauschen", 0.8),
        ("wechseln", 0.7),
        ("echanger", 0.75),
        ("echange", 0.7),
        ("convertir", 0.7),
        ("intercambiar", 0.75),
        ("cambiar", 0.7),
        ("scambiare", 0.75),
        ("convertire", 0.7),
        ("cambiare", 0.7),
        ("trocar", 0.75),
        ("troca", 0.7),
        ("converter", 0.7),
        ("ruilen", 0.75),
        ("omwisselen", 0.75),
        ("wisselen", 0.7),
        ("wymienic", 0.75),
        ("wymiana", 0.75),
        ("zamienic", 0.75),
        ("byta", 0.75),
        ("vaxla", 0.75),
    ),
    S.EXECUTION: (
        ("otc", 0.85),
        ("block trade", 0.9),
        ("large order", 0.85),
        ("big order", 0.85),
        ("order execution", 0.95),
        ("execute orders", 0.95),
        ("execute my order*", 0.95),
        ("execution", 0.8),
        ("execute", 0.7),
        ("best execution", 0.95),
        ("desk", 0.5),
        ("auftragsausfuhrung", 0.95),
        ("ausfuhrung", 0.8),
        ("orderausfuhrung", 0.95),
        ("execution d ordres", 0.95),
        ("ejecucion", 0.85),
        ("ejecucion de ordenes", 0.95),
        ("esecuzione", 0.85),
        ("esecuzione di ordini", 0.95),
        ("execucao", 0.85),
        ("uitvoering", 0.85),
        ("orderuitvoering", 0.95),
        ("wykonanie", 0.8),
        ("wykonywanie zlecen", 0.95),
        ("utforande", 0.85),
    ),
    S.PLATFORM: (
        ("trading platform", 0.9),
        ("exchange account", 0.8),
        ("spot trading", 0.85),
        ("order book", 0.85),
        ("your platform", 0.75),
        ("your exchange", 0.7),
        ("trade on", 0.7),
        ("handelsplattform", 0.9),
        ("handelsplatz", 0.85),
        ("plateforme de trading", 0.9),
        ("plateforme de negociation", 0.9),
        ("plataforma de trading", 0.9),
        ("plataforma de negociacion", 0.9),
        ("piattaforma di trading", 0.9),
        ("plataforma de negociacao", 0.9),
        ("handelsplatform", 0.9),
        ("platforma handlowa", 0.9),
        ("handelsplattform", 0.9),
    ),
    S.PLACING: (
        ("token sale", 0.9),
        ("ico", 0.85),
        ("ieo", 0.85),
        ("list our token", 0.9),
        ("list my token", 0.9),
        ("listing our token", 0.9),
        ("token listing", 0.85),
        ("launch our token", 0.9),
        ("placing", 0.8),
        ("placement", 0.8),
        ("underwrit*", 0.85),
        ("platzierung", 0.9),
        ("emission", 0.7),
        ("placement de", 0.85),
        ("colocacion", 0.85),
        ("collocamento", 0.9),
        ("colocacao", 0.9),
        ("plaatsing", 0.9),
        ("plasowanie", 0.9),
        ("placering", 0.85),
    ),
    S.RTO: (
        ("transmit my order*", 0.9),
        ("transmission of orders", 0.95),
        ("reception and transmission", 0.95),
        ("route my order*", 0.9),
        ("order routing", 0.9),
        ("pass on my order*", 0.85),
        ("broker", 0.7),
        ("brokerage", 0.7),
        ("annahme und ubermittlung", 0.95),
        ("auftragsvermittlung", 0.9),
        ("makler", 0.7),
        ("reception et transmission", 0.95),
        ("courtier", 0.7),
        ("recepcion y transmision", 0.95),
        ("corredor", 0.6),
        ("ricezione e trasmissione", 0.95),
        ("rececao e transmissao", 0.95),
        ("corretora", 0.6),
        ("ontvangst en doorgifte", 0.95),
        ("przyjmowanie i przekazywanie", 0.95),
        ("mottagande och vidarebefordran", 0.95),
        ("makelaar", 0.7),
        ("maklerskie", 0.7),
        ("maklare", 0.7),
    ),
    S.ADVICE: (
        ("advice", 0.85),
        ("advise", 0.85),
        ("adviser", 0.85),
        ("advisor", 0.85),
        ("advisory", 0.85),
        ("recommend which", 0.8),
        ("what should i buy", 0.85),
        ("consulting", 0.75),
        ("consultation", 0.75),
        ("beratung", 0.85),
        ("beraten", 0.85),
        ("anlageberatung", 0.95),
        ("empfehlung welche", 0.8),
        ("conseil", 0.8),
        ("conseiller", 0.8),
        ("asesoramiento", 0.85),
        ("asesor", 0.8),
        ("consejo", 0.8),
        ("consulenza", 0.85),
        ("consulente", 0.8),
        ("consiglio", 0.8),
        ("aconselhamento", 0.85),
        ("consultoria", 0.8),
        ("conselho", 0.8),
        ("advies", 0.85),
        ("adviseur", 0.85),
        ("doradztwo", 0.85),
        ("doradca", 0.85),
        ("porada", 0.8),
        ("radgivning", 0.85),
        ("radgivare", 0.85),
        ("rad om", 0.7),
    ),
    S.PORTFOLIO: (
        ("portfolio management", 0.95),
        ("manage my portfolio", 0.95),
        ("manage your portfolio", 0.95),
        ("manage our portfolio", 0.95),
        ("managed portfolio*", 0.95),
        ("manage my crypto", 0.9),
        ("manage my assets", 0.9),
        ("manage my investments", 0.9),
        ("manage it for me", 0.85),
        ("discretionary", 0.85),
        ("wealth management", 0.85),
        ("asset management", 0.85),
        ("managed account*", 0.9),
        ("portfolio", 0.6),
        ("vermogensverwaltung", 0.9),
        ("portfolioverwaltung", 0.95),
        ("portfoliomanagement", 0.95),
        ("depotverwaltung", 0.9),
        ("verwalten", 0.6),
        ("gestion de portefeuille", 0.95),
        ("gestion de patrimoine", 0.85),
        ("gestion sous mandat", 0.95),
        ("gerer mon portefeuille", 0.95),
        ("gestion de cartera", 0.95),
        ("gestionar mi cartera", 0.95),
        ("gestione del portafoglio", 0.95),
        ("gestione patrimoniale", 0.9),
        ("gestire il mio portafoglio", 0.95),
        ("gestao de carteira", 0.95),
        ("gestao de patrimonio", 0.9),
        ("gerir a minha carteira", 0.95),
        ("vermogensbeheer", 0.95),
        ("portefeuillebeheer", 0.95),
        ("beheer van mijn", 0.85),
        ("zarzadzanie portfelem", 0.95),
        ("zarzadzac moim portfelem", 0.95),
        ("portfoljforvaltning", 0.95),
        ("forvalta min portfolj", 0.95),
        ("kapitalforvaltning", 0.9),
    ),
    S.TRANSFER: (
        ("перевод*", 0.75),
        ("перевести", 0.8),
        ("отправить", 0.75),
        ("переказ*", 0.75),
        ("надіслати", 0.75),
        ("overfor*", 0.8),
        ("sende", 0.7),
        ("prevod*", 0.75),
        ("atutal*", 0.75),
        ("transfera", 0.8),
        ("μεταφορ*", 0.8),
        ("transfer etmek", 0.8),
        ("gondermek", 0.75),
        ("transfer", 0.8),
        ("transfers", 0.8),
        ("send crypto", 0.85),
        ("send my", 0.7),
        ("send btc", 0.85),
        ("send eth", 0.85),
        ("send usdt", 0.85),
        ("withdraw", 0.7),
        ("remittance", 0.85),
        ("remit", 0.8),
        ("move my", 0.7),
        ("uberweis*", 0.8),
        ("ubertrag*", 0.8),
        ("senden", 0.7),
        ("schicken", 0.7),
        ("transferer", 0.8),
        ("transfert", 0.8),
        ("envoyer", 0.75),
        ("virement", 0.75),
        ("transferir", 0.8),
        ("transferencia", 0.8),
        ("enviar", 0.75),
        ("trasferire", 0.8),
        ("trasferimento", 0.8),
        ("inviare", 0.75),
        ("transferencia de", 0.8),
        ("overmaken", 0.8),
        ("overboeken", 0.8),
        ("overdracht", 0.8),
        ("versturen", 0.75),
        ("przelac", 0.8),
        ("przelew", 0.8),
        ("przeslac", 0.8),
        ("wyslac", 0.75),
        ("overfora", 0.8),
        ("overforing", 0.8),
        ("skicka", 0.75),
    ),
    S.NON_MICA: (
        ("stake", 0.9),
        ("staken", 0.9),
        ("staked", 0.9),
        ("стейкинг*", 0.95),
        ("стейкінг*", 0.95),
        ("стейк*", 0.9),
        ("фьючерс*", 0.95),
        ("ф ючерс*", 0.95),
        ("фючерс*", 0.95),
        ("кредит", 0.9),
        ("в кредит", 0.9),
        ("кредитное плечо", 0.95),
        ("кредитне плече", 0.95),
        ("займ*", 0.9),
        ("позик*", 0.9),
        ("плеч*", 0.9),
        ("маржин*", 0.9),
        ("дериватив*", 0.95),
        ("опцион*", 0.95),
        ("опціон*", 0.95),
        ("доходност*", 0.85),
        ("прибутков*", 0.85),
        ("un pret", 0.9),
        ("pret en", 0.9),
        ("pret garanti", 0.9),
        ("pret contre", 0.9),
        ("emprunter", 0.95),
        ("emprest*", 0.95),
        ("juros", 0.85),
        ("prestar", 0.9),
        ("prestare", 0.9),
        ("lenen", 0.9),
        ("uitlenen", 0.9),
        ("pozycz*", 0.95),
        ("lana ut", 0.9),
        ("utlaning", 0.95),
        ("options on", 0.95),
        ("options sur", 0.95),
        ("optionen auf", 0.95),
        ("optionsschein*", 0.95),
        ("opciones sobre", 0.95),
        ("opcoes sobre", 0.95),
        ("opzioni su", 0.95),
        ("opzioni call", 0.95),
        ("opzioni put", 0.95),
        ("opties op", 0.95),
        ("opcje na", 0.95),
        ("optioner pa", 0.95),
        ("call option*", 0.95),
        ("put option*", 0.95),
        ("bitcoin options", 0.95),
        ("btc options", 0.95),
        ("eth options", 0.95),
        ("crypto options", 0.95),
        ("options trading", 0.95),
        ("contratos futuros", 0.95),
        ("futuros", 0.95),
        ("kontrakty", 0.9),
        ("kontrakt terminowy", 0.95),
        ("terminowe", 0.9),
        ("opbevaring med rente", 0.9),
        ("udlan", 0.95),
        ("gearing", 0.9),
        ("hitel", 0.9),
        ("hitelt", 0.9),
        ("παραγωγα", 0.95),
        ("kolcson*", 0.9),
        ("tokeattetel*", 0.95),
        ("hatarido*", 0.9),
        ("imprumut*", 0.95),
        ("pujck*", 0.95),
        ("uver*", 0.9),
        ("δανει*", 0.95),
        ("μοχλευσ*", 0.95),
        ("kaldirac*", 0.95),
        ("vadeli", 0.9),
        ("masternode*", 0.9),
        ("liquidity mining", 0.95),
        ("yield farming", 0.95),
        ("cloud mining", 0.95),
        ("mining pool", 0.9),
        ("tokenised fund*", 0.9),
        ("tokenized fund*", 0.9),
        ("tokenised bond*", 0.95),
        ("tokenized bond*", 0.95),
        ("staking", 0.95),
        ("stake", 0.9),
        ("earn", 0.85),
        ("yield", 0.9),
        ("interest on", 0.85),
        ("apy", 0.9),
        ("savings account", 0.8),
        ("lending", 0.95),
        ("lend", 0.9),
        ("loan", 0.95),
        ("loans", 0.95),
        ("borrow*", 0.95),
        ("credit line", 0.9),
        ("margin", 0.9),
        ("leverage*", 0.95),
        ("leveraged", 0.95),
        ("derivative*", 0.95),
        ("futures", 0.95),
        ("perpetual*", 0.95),
        ("perps", 0.95),
        ("crypto options", 0.95),
        ("call options", 0.95),
        ("put options", 0.95),
        ("option trading", 0.95),
        ("cfd", 0.95),
        ("cfds", 0.95),
        ("swaps contract*", 0.9),
        ("tokenised stock*", 0.95),
        ("tokenized stock*", 0.95),
        ("tokenised securit*", 0.95),
        ("tokenized securit*", 0.95),
        ("security token*", 0.9),
        ("mining", 0.8),
        ("hebel", 0.95),
        ("kredit", 0.9),
        ("darlehen", 0.95),
        ("zinsen", 0.85),
        ("derivat*", 0.95),
        ("termingeschaft*", 0.95),
        ("verleihen", 0.9),
        ("pret crypto", 0.9),
        ("emprunt*", 0.95),
        ("levier", 0.95),
        ("produits derives", 0.95),
        ("rendement", 0.85),
        ("interets", 0.85),
        ("prestamo*", 0.95),
        ("apalancamiento", 0.95),
        ("derivados", 0.95),
        ("rendimiento", 0.85),
        ("intereses", 0.85),
        ("prestito", 0.95),
        ("prestiti", 0.95),
        ("effetto leva", 0.95),
        ("derivati", 0.95),
        ("rendimento", 0.85),
        ("interessi", 0.85),
        ("emprestimo*", 0.95),
        ("alavancagem", 0.95),
        ("lening*", 0.95),
        ("hefboom", 0.95),
        ("rente", 0.8),
        ("pozyczk*", 0.95),
        ("kredyt*", 0.9),
        ("dzwigni*", 0.95),
        ("instrumenty pochodne", 0.95),
        ("odsetki", 0.85),
        ("lan", 0.8),
        ("havstang", 0.95),
        ("ranta", 0.8),
        ("derivat", 0.95),
    ),
}


def _alternation(phrases: str) -> str:
    """A regex alternation of "|"-separated phrases in their folded form (any script)."""
    keys = {fold(p) for p in phrases.split("|") if fold(p)}
    return "|".join(re.escape(k).replace(r"\ ", " ") for k in sorted(keys, key=len, reverse=True))


_FIAT = re.compile(
    r"\b(eur|euro|euros|euro s|usd|dollar|dollars|gbp|pound|pounds|chf|franken|francs|sek"
    r"|kronor|kronen|dkk|nok|pln|zloty|zlotych|zlotowki|zlotowek|czk|huf|forint|ron|lei|bgn"
    r"|hkd|sgd|aed|dirham|jpy|yen|cny|yuan|aud|cad|brl|reais|real|mxn|pesos|inr|rupees|try"
    r"|lira|cash|fiat|bank account|bankkonto|compte bancaire|cuenta bancaria|conto bancario"
    r"|conta bancaria|bankrekening|konto bankowe|bankkonto|sepa|wire|kr|kroner|koruna|koruny"
    r"|korun|zl|zlotowki|cfp|xpf|"
    + _alternation(
        "евро|евро|доллар|доллары|долларов|рубли|рублей|гривны|гривень|гривні|злотые|наличные"
        "|готівка|ευρω|δολαρια|лир|лева|лв"
    )
    + r")\b"
)
_CRYPTO = re.compile(
    r"\b(btc|bitcoin|bitcoins|eth|ether|ethereum|sol|solana|xrp|ripple|ada|cardano|dot"
    r"|polkadot|ltc|litecoin|doge|dogecoin|bnb|trx|tron|avax|matic|polygon|link|chainlink"
    r"|xlm|atom|ton|usdt|usdc|dai|eurc|eure|pyusd|fdusd|tusd|busd|crypto|cryptos|krypto"
    r"|kryptos|cripto|criptos|cryptomonnaie\w*|criptomoneda\w*|criptovalut\w*|kryptowalut\w*"
    r"|kryptowahrung\w*|coins?|tokens?|altcoins?|stablecoins?|sats|satoshi|"
    + _alternation(
        "биткоин|биткоины|биткоинов|биткойн|біткоїн|біткоїни|біткоїнів|эфир|ефір|μπιτκοιν"
    )
    + r")\b"
)
_STABLE = re.compile(
    r"\b(usdt|usdc|dai|eurc|eure|pyusd|fdusd|tusd|busd|tether|stablecoin\w*|stable coin\w*"
    r"|e money token\w*|emt|emts|euro coin|usd coin)\b"
)
_NO_KYC = re.compile(
    r"\b(no kyc|without kyc|skip kyc|avoid kyc|no id|without id|without identification"
    r"|anonymous\w*|anonymously|no questions asked|no verification|without verification"
    r"|ohne kyc|ohne ausweis|ohne verifizierung|anonym|sans kyc|sans piece d identite"
    r"|anonyme\w*|sin kyc|sin verificacion|anonim\w*|senza kyc|senza verifica|sem kyc"
    r"|sem verificacao|zonder kyc|zonder verificatie|bez kyc|bez weryfikacji|utan kyc"
    r"|utan verifiering|uden kyc|uten kyc|kyc nelkul|fara kyc|bez overeni|no docs|no documents|"
    + _alternation("без kyc|без верификации|без верифікації|анонимно|анонімно|без документов")
    + r")\b"
)
_NEGATORS = frozenset(
    fold(w)
    for w in "not no don dont never without nicht kein keine keinen ohne ne pas non sans sin nao "
    "sem senza niet geen zonder nie bez inte utan ikke uden не ні без nem".split()
)
#: Words that end a negation's reach ("no staking, but custody").
_CONTRAST = frozenset(
    "but just only rather instead aber sondern nur mais seulement plutot pero sino solo ma "
    "solo mas apenas maar alleen ale tylko men bara".split()
)


@dataclass(frozen=True)
class ServiceFinding:
    """The service a text asks for (or mentions), with every code it touches."""

    code: ServiceCode | None
    #: Every code the text mentions, strongest first (the gate uses all of them).
    codes: tuple[ServiceCode, ...] = ()
    #: The firm's product the text names, if any.
    product: str | None = None
    #: stablecoin, no_kyc
    flags: frozenset[str] = frozenset()
    confidence: float = 0.0


#: The cues once each: (code, confidence, folded phrase, "*" phrase), in the order above.
_CUE_LIST: tuple[tuple[ServiceCode, float, str, bool], ...] = tuple(
    dict.fromkeys(
        (code, conf, fold(phrase.rstrip("*")), phrase.endswith("*"))
        for code, cues in _CUES.items()
        for phrase, conf in cues
        if fold(phrase.rstrip("*"))
    )
)
#: All the cues matched in one pass over the words (one regex per cue would be one pass each).
_CUE_INDEX = PhraseIndex((phrase, star) for _c, _conf, phrase, star in _CUE_LIST)


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


def _negated(folded: str, start: int) -> bool:
    """A negator up to four words before a cue ("I don't need staking", "no staking")."""
    return _negated_words(folded[:start].split()[-4:])


def _negated_words(before: list[str]) -> bool:
    """A negator among the (up to four) words before a cue, after any "but"."""
    for word in reversed(before[-4:]):
        if word in _CONTRAST:
            return False
        if word in _NEGATORS:
            return True
    return False


def classify_service(text: str, profile: CompanyProfile) -> ServiceFinding:
    """The service the client asks for, NON_MICA for anything outside MiCA, or None."""
    folded = fold(text[: MAX_TEXT * 2])
    if not folded:
        return ServiceFinding(None)
    scores: dict[ServiceCode, float] = {}
    product_name: str | None = None
    product_code: ServiceCode | None = None
    for product, names in per_profile(profile, "services.products", _product_patterns):
        for key, pattern in names:
            m = pattern.search(folded)
            if m and not _negated(folded, m.start()):
                # The longest name wins ("Yield Vault" over "Vault").
                if product_name is None or len(key) > len(fold(product_name)):
                    product_name, product_code = product.name, product.service
                scores[product.service] = max(scores.get(product.service, 0.0), 0.95)
                break
    words = folded.split()
    for i, at in _CUE_INDEX.first_matches(words):
        if _negated_words(words[:at][-4:]):
            continue
        code, conf, _phrase, _star = _CUE_LIST[i]
        scores[code] = max(scores.get(code, 0.0), conf)

    # Buying or selling against money is exchange for funds; crypto against crypto is (d).
    fiat = bool(_FIAT.search(folded))
    cryptos = {m.group(0) for m in _CRYPTO.finditer(folded)} - {
        "crypto",
        "cryptos",
        "coin",
        "coins",
        "token",
        "tokens",
    }
    if S.EXCH_CRYPTO in scores and fiat:
        scores[S.EXCH_FIAT] = max(scores.get(S.EXCH_FIAT, 0.0), scores.pop(S.EXCH_CRYPTO) + 0.1)
    if S.EXCH_FIAT in scores and not fiat and len(cryptos) >= 2:
        # "sell BTC for ETH"
        scores[S.EXCH_CRYPTO] = max(scores.get(S.EXCH_CRYPTO, 0.0), scores.pop(S.EXCH_FIAT))
    if S.EXCH_CRYPTO in scores and scores[S.EXCH_CRYPTO] < 0.7 and len(cryptos) >= 2:
        scores[S.EXCH_CRYPTO] = 0.8
    if S.EXECUTION in scores and (S.EXCH_FIAT in scores or S.EXCH_CRYPTO in scores):
        # "sell 40 BTC through your OTC desk": the desk executes the order.
        if scores[S.EXECUTION] >= 0.8:
            scores.pop(S.EXCH_FIAT, None)
            scores.pop(S.EXCH_CRYPTO, None)
    if S.PORTFOLIO in scores and scores[S.PORTFOLIO] < 0.7 and len(scores) > 1:
        scores.pop(S.PORTFOLIO)
    if S.EXCH_CRYPTO in scores and scores[S.EXCH_CRYPTO] <= 0.6 and len(scores) > 1:
        scores.pop(S.EXCH_CRYPTO)

    flags: set[str] = set()
    if _STABLE.search(folded):
        flags.add("stablecoin")
    if _NO_KYC.search(folded):
        flags.add("no_kyc")
    if not scores:
        return ServiceFinding(None, flags=frozenset(flags))
    ranked = sorted(scores.items(), key=lambda kv: (-kv[1], list(S).index(kv[0])))
    codes = tuple(code for code, _ in ranked)
    # Anything outside MiCA in the request sends it to a person (R9), whatever else it says.
    if S.NON_MICA in scores:
        return ServiceFinding(
            S.NON_MICA, codes, product_name, frozenset(flags), scores[S.NON_MICA]
        )
    code = product_code if product_code is not None else ranked[0][0]
    return ServiceFinding(code, codes, product_name, frozenset(flags), scores[code])
