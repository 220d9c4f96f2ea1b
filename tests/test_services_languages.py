"""The service classifier in all thirty languages: plain requests, categories, negation per
clause, corrections, short follow-up questions, and never a crash."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from triage.domain.codes import ServiceCode
from triage.domain.lexicon import LANGUAGES, concepts, cues
from triage.domain.profile import CompanyProfile
from triage.domain.services import classify_service

S = ServiceCode

#: (buy bitcoin with euros, keep my coins safe, send USDT to my wallet, manage my crypto
#: portfolio, advice on what to buy), as a client would type them.
PLAIN: dict[str, tuple[str, str, str, str, str]] = {
    "bg": (
        "искам да купя биткойн с евро",
        "искам съхранение на моите монети",
        "искам да изпратя USDT към моя портфейл",
        "управление на портфейла ми с крипто",
        "трябва ми съвет какво да купя",
    ),
    "hr": (
        "želim kupiti bitcoin za eure",
        "trebam sigurnu pohranu za svoje kriptovalute",
        "želim poslati USDT na moj novčanik",
        "upravljanje portfeljem kriptovaluta",
        "treba mi savjet što kupiti",
    ),
    "cs": (
        "chci koupit bitcoin za eura",
        "potřebuju úschovu svých kryptoměn",
        "chci poslat USDT na moji peněženku",
        "správa portfolia kryptoměn",
        "potřebuju poradit co koupit",
    ),
    "da": (
        "jeg vil købe bitcoin for euro",
        "sikker opbevaring af mine coins",
        "jeg vil sende USDT til min wallet",
        "porteføljepleje af min krypto",
        "jeg vil have rådgivning om hvad jeg skal købe",
    ),
    "nl": (
        "ik wil bitcoin kopen met euro's",
        "mijn munten veilig bewaren",
        "USDT versturen naar mijn wallet",
        "vermogensbeheer voor mijn crypto",
        "advies over wat ik moet kopen",
    ),
    "en": (
        "I want to buy bitcoin with euros",
        "keep my coins safe",
        "send USDT to my wallet",
        "manage my crypto portfolio",
        "advice on what to buy",
    ),
    "et": (
        "tahan osta bitcoini eurode eest",
        "minu müntide turvaline hoidmine",
        "saata USDT minu rahakotti",
        "minu krüptoportfelli haldamine, portfellihaldus",
        "vajan nõustamist, mida osta",
    ),
    "fi": (
        "haluan ostaa bitcoinia euroilla",
        "kolikoideni säilytys turvassa",
        "haluan lähettää USDT:tä lompakkooni",
        "kryptosalkkuni salkunhoito",
        "neuvoja mitä ostaa",
    ),
    "fr": (
        "je veux acheter du bitcoin avec des euros",
        "garder mes cryptos en sécurité",
        "envoyer des USDT vers mon wallet",
        "gestion de portefeuille crypto",
        "des conseils sur quoi acheter",
    ),
    "de": (
        "ich möchte Bitcoin mit Euro kaufen",
        "meine Coins sicher aufbewahren",
        "USDT an meine Wallet senden",
        "Vermögensverwaltung für meine Kryptos",
        "Beratung, was ich kaufen soll",
    ),
    "el": (
        "θέλω να αγοράσω bitcoin με ευρώ",
        "φύλαξη των νομισμάτων μου",
        "θέλω να στείλω USDT στο πορτοφόλι μου",
        "διαχείριση χαρτοφυλακίου κρυπτο",
        "συμβουλές για το τι να αγοράσω",
    ),
    "hu": (
        "bitcoint szeretnék vásárolni euróért",
        "az érméim biztonságos tárolása",
        "USDT-t szeretnék küldeni a tárcámba",
        "kripto portfóliókezelés",
        "tanácsot kérek, mit vegyek",
    ),
    "ga": (
        "ba mhaith liom bitcoin a cheannach le euro",
        "mo bhoinn a choimeád go sábháilte",
        "USDT a sheoladh chuig mo sparán",
        "bainistiú punainne do mo crypto",
        "comhairle faoi cad ba cheart dom a cheannach",
    ),
    "it": (
        "voglio comprare bitcoin con euro",
        "custodia delle mie monete",
        "inviare USDT al mio wallet",
        "gestione del portafoglio cripto",
        "consulenza su cosa comprare",
    ),
    "lv": (
        "gribu nopirkt bitcoin par eiro",
        "manu monētu droša glabāšana",
        "nosūtīt USDT uz manu maku",
        "kripto portfeļa pārvaldīšana",
        "vajag padomu ko pirkt",
    ),
    "lt": (
        "noriu pirkti bitcoin už eurus",
        "mano monetų saugojimas",
        "noriu pervesti USDT į mano piniginę",
        "kripto portfelio valdymas",
        "reikia patarimo ką pirkti",
    ),
    "mt": (
        "nixtieq nixtri bitcoin għal ewro",
        "kustodja tal-muniti tiegħi",
        "nibgħat USDT lill-wallet tiegħi",
        "immaniġġjar tal-portafoll tal-kripto",
        "parir x'nixtri",
    ),
    "pl": (
        "chcę kupić bitcoina za euro",
        "przechowywanie moich kryptowalut",
        "chcę wysłać USDT na mój portfel",
        "zarządzanie portfelem kryptowalut",
        "potrzebuję porady co kupić",
    ),
    "pt": (
        "quero comprar bitcoin com euros",
        "guardar as minhas moedas em segurança",
        "enviar USDT para a minha wallet",
        "gestão de carteira de cripto",
        "aconselhamento sobre o que comprar",
    ),
    "ro": (
        "vreau să cumpăr bitcoin cu euro",
        "păstrarea monedelor mele în siguranță",
        "vreau să trimit USDT în portofelul meu",
        "administrarea portofoliului meu cripto",
        "am nevoie de sfaturi ce să cumpăr",
    ),
    "sk": (
        "chcem kúpiť bitcoin za eurá",
        "úschova mojich kryptomien",
        "chcem poslať USDT na moju peňaženku",
        "správa portfólia kryptomien",
        "potrebujem poradiť čo kúpiť",
    ),
    "sl": (
        "želim kupiti bitcoin za evre",
        "varna hramba mojih kovancev",
        "želim poslati USDT na mojo denarnico",
        "upravljanje portfelja kripto",
        "potrebujem nasvet, kaj kupiti",
    ),
    "es": (
        "quiero comprar bitcoin con euros",
        "guardar mis monedas seguras",
        "enviar USDT a mi wallet",
        "gestión de cartera de cripto",
        "asesoramiento sobre qué comprar",
    ),
    "sv": (
        "jag vill köpa bitcoin med euro",
        "förvara mina coins säkert",
        "skicka USDT till min wallet",
        "portföljförvaltning av min krypto",
        "rådgivning om vad jag ska köpa",
    ),
    "no": (
        "jeg vil kjøpe bitcoin for euro",
        "trygg oppbevaring av myntene mine",
        "sende USDT til lommeboka mi",
        "porteføljeforvaltning av krypto",
        "rådgivning om hva jeg skal kjøpe",
    ),
    "is": (
        "ég vil kaupa bitcoin fyrir evrur",
        "geyma myntirnar mínar örugglega, vörslu",
        "senda USDT í veskið mitt",
        "eignastýring fyrir rafmyntir",
        "ráðgjöf um hvað á ég að kaupa",
    ),
    "ru": (
        "хочу купить биткоин за евро",
        "хранение моих монет",
        "отправить USDT на мой кошелек",
        "управление портфелем криптовалют",
        "нужен совет что купить",
    ),
    "uk": (
        "хочу купити біткоїн за євро",
        "зберігання моїх монет",
        "надіслати USDT на мій гаманець",
        "управління портфелем криптовалют",
        "потрібна порада що купити",
    ),
    "tr": (
        "euro ile bitcoin satın almak istiyorum",
        "coinlerimin güvenli saklaması",
        "cüzdanıma USDT göndermek istiyorum",
        "kripto portföy yönetimi",
        "ne almalıyım, danışmanlık",
    ),
    "ar": (
        "أريد شراء بيتكوين باليورو",
        "حفظ عملاتي بأمان",
        "أريد إرسال USDT إلى محفظتي",
        "إدارة المحفظة للعملات الرقمية",
        "أحتاج نصيحة ماذا أشتري",
    ),
}
EXPECTED = (S.EXCH_FIAT, S.CUSTODY, S.TRANSFER, S.PORTFOLIO, S.ADVICE)


def test_the_table_covers_every_language() -> None:
    assert sorted(PLAIN) == sorted(LANGUAGES)


@pytest.mark.parametrize("language", LANGUAGES)
def test_plain_requests_in_every_language(language: str, profile: CompanyProfile) -> None:
    for text, code in zip(PLAIN[language], EXPECTED, strict=True):
        found = classify_service(text, profile, language=language)
        assert found.code is code, (language, text, found)
        # Without the conversation's language the words themselves still carry it.
        assert classify_service(text, profile).code is code, (language, text)
    send = classify_service(PLAIN[language][2], profile, language=language)
    assert "stablecoin" in send.flags


@pytest.mark.parametrize(
    ("text", "flag"),
    [
        ("and can I stake my ETH with you?", "staking"),
        ("do you also do USDC?", "stablecoin"),
        ("what APY do you pay on ETH?", "staking"),
        ("can I borrow against my BTC?", "lending"),
        ("do you have perpetual futures with 20x leverage?", "derivatives"),
        ("kann ich bei euch auch staken?", "staking"),
        ("a máte i staking?", "staking"),
        ("у вас есть фьючерсы с плечом?", "derivatives"),
        ("можно взять кредит под залог биткоина?", "lending"),
        ("¿también tenéis USDC?", "stablecoin"),
        ("faites-vous du prêt contre des bitcoins ?", "lending"),
        ("ποια απόδοση δίνετε στο staking;", "staking"),
        ("имате ли фючърси с ливъридж?", "derivatives"),
        ("onko teillä lainaa bitcoinia vastaan?", "lending"),
        ("hitelt is adtok bitcoin fedezetre?", "lending"),
        ("هل لديكم رافعة مالية؟", "derivatives"),
    ],
)
def test_short_follow_up_questions_name_their_category(
    text: str, flag: str, profile: CompanyProfile
) -> None:
    found = classify_service(text, profile)
    assert flag in found.flags, found
    if flag != "stablecoin":
        assert found.code is S.NON_MICA  # R9


def test_could_you_manage_my_portfolio(profile: CompanyProfile) -> None:
    assert classify_service("could you manage my portfolio?", profile).code is S.PORTFOLIO


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("I don't want staking, just custody", "en"),
        ("kein Staking, nur die Verwahrung", "de"),
        ("pas de staking, seulement la garde de mes bitcoins", "fr"),
        ("no quiero staking, solo custodia", "es"),
        ("non voglio lo staking, solo la custodia", "it"),
        ("não quero staking, só custódia", "pt"),
        ("geen staking, alleen bewaring", "nl"),
        ("nie chcę stakingu, tylko przechowywanie", "pl"),
        ("ingen staking, bara förvaring", "sv"),
        ("ikke staking, kun opbevaring", "da"),
        ("ikke staking, bare oppbevaring", "no"),
        ("ekki staking, bara vörslu", "is"),
        ("ei stakingia, vain säilytys", "fi"),
        ("mitte staking, ainult hoiustamine", "et"),
        ("nevajag staking, tikai glabāšana", "lv"),
        ("nenoriu staking, tik saugojimas", "lt"),
        ("nechci staking, jen úschovu", "cs"),
        ("nechcem staking, len úschovu", "sk"),
        ("ne želim stakinga, samo hrambo", "sl"),
        ("ne želim staking, samo pohranu", "hr"),
        ("nem kell staking, csak a megőrzés", "hu"),
        ("nu vreau staking, doar custodie", "ro"),
        ("níl staking uaim, ach coimeád", "ga"),
        ("mhux staking, biss kustodja", "mt"),
        ("не хочу стейкинг, только хранение", "ru"),
        ("не хочу стейкінг, лише зберігання", "uk"),
        ("не искам стейкинг, само съхранение", "bg"),
        ("δεν θέλω staking, μόνο φύλαξη", "el"),
        ("staking istemiyorum, sadece saklama", "tr"),
        ("لا أريد ستيكينج، فقط حفظ", "ar"),
    ],
)
def test_negation_is_scoped_to_its_clause(
    text: str, language: str, profile: CompanyProfile
) -> None:
    found = classify_service(text, profile, language=language)
    assert found.code is S.CUSTODY, (language, found)
    assert "staking" not in found.flags


def test_the_table_of_negations_covers_every_language() -> None:
    languages = {
        language
        for _text, language in test_negation_is_scoped_to_its_clause.pytestmark[0].args[1]  # type: ignore[attr-defined]
    }
    assert languages == set(LANGUAGES)


@pytest.mark.parametrize(
    ("text", "code", "stablecoin"),
    [
        ("buy USDC... no, sorry, BTC with euros", S.EXCH_FIAT, False),
        ("staking\nsorry, I meant custody", S.CUSTODY, False),
        ("USDC kaufen, nein warte, Bitcoin mit Euro", S.EXCH_FIAT, False),
        ("1 BTC eladása forintra... bocs, euróra", S.EXCH_FIAT, False),
        ("I want staking, actually no, just custody of my BTC", S.CUSTODY, False),
        ("custody, and actually also USDT", S.CUSTODY, True),
    ],
)
def test_a_correction_replaces_what_it_corrects(
    text: str, code: ServiceCode, stablecoin: bool, profile: CompanyProfile
) -> None:
    found = classify_service(text, profile)
    assert found.code is code, found
    assert ("stablecoin" in found.flags) is stablecoin


def test_a_product_mapped_to_a_mica_code_takes_its_category_words(
    profile: CompanyProfile,
) -> None:
    product = profile.products[0].model_copy(
        update={"name": "Flex Earn", "aliases": (), "service": S.CUSTODY}
    )
    firm = profile.model_copy(update={"products": (product,)})
    found = classify_service("I want Flex Earn for my BTC", firm)
    assert found.code is S.CUSTODY and found.product == "Flex Earn"
    assert classify_service("I want to earn yield on my BTC", firm).code is S.NON_MICA


@pytest.mark.parametrize(
    "text",
    ["a friend recommended you", "they sent me an email", "I saw you at a trade fair", "ok"],
)
def test_words_that_are_no_request(text: str, profile: CompanyProfile) -> None:
    assert classify_service(text, profile).code is None


@pytest.mark.parametrize(
    ("text", "language", "code"),
    [
        # A common word of one language is no cue of another's concept.
        ("rad bi prodal nekaj ETH za evre", "sl", S.EXCH_FIAT),  # "rad" is not Swedish "råd"
        ("kan ni förvara resten av mina btc också?", "sv", S.CUSTODY),  # "ni" is "you"
        ("quel est le taux de change pour vendre mes BTC ?", "fr", S.EXCH_FIAT),
        ("prodati 1 BTC za 2 dana", "hr", S.EXCH_FIAT),  # "dana" is days, not a loan
        ("Bitcoin mit meiner Kreditkarte kaufen", "de", S.EXCH_FIAT),
        ("kupić bitcoina kartą kredytową", "pl", S.EXCH_FIAT),
        ("geyma myntirnar mínar örugglega", "is", S.CUSTODY),  # "mínar" is no mining
    ],
)
def test_words_of_other_languages_do_not_collide(
    text: str, language: str, code: ServiceCode, profile: CompanyProfile
) -> None:
    found = classify_service(text, profile, language=language)
    assert found.code is code, found


def _words(language: str) -> list[str]:
    out: list[str] = []
    for part in ("clauses", "services"):
        for concept in concepts(part):
            out += [c.phrase for c in cues(part, concept) if c.language == language]
    return out or ["?"]


@pytest.mark.parametrize("language", LANGUAGES)
def test_property_never_raises_in_any_language(language: str, profile: CompanyProfile) -> None:
    words = _words(language)

    @settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        parts=st.lists(
            st.one_of(st.sampled_from(words), st.text(max_size=10), st.sampled_from(",.?\n")),
            max_size=14,
        )
    )
    def check(parts: list[str]) -> None:
        found = classify_service(" ".join(parts), profile, language=language)
        assert 0.0 <= found.confidence <= 1.0
        assert found.code is None or found.code in found.codes
        if S.NON_MICA in found.codes:
            assert found.code is S.NON_MICA
        assert found.flags <= {"stablecoin", "derivatives", "lending", "staking", "no_kyc"}

    check()
