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
from functools import lru_cache

from triage.domain.codes import MARKETING_CHANNEL, SOLICITING, Channel, MarketingKind
from triage.domain.matching import NameIndex, PhraseIndex, Sentence, per_profile
from triage.domain.profile import CompanyProfile, MarketingEntry
from triage.domain.text import MAX_TEXT, clean, fold

# Cue phrases per channel, folded (lower case, no accents), in en de fr es it pt nl pl sv.
# Each is (phrase, confidence). Phrases are matched on word boundaries; a trailing "*" matches
# any ending ("recherch*").
_CUES: dict[Channel, tuple[tuple[str, float], ...]] = {
    Channel.AD: (
        ("sponsor", 0.85),
        ("sponsors", 0.85),
        ("sponsoring", 0.85),
        ("sponsorship", 0.8),
        ("patrocin*", 0.85),
        ("реклам*", 0.9),
        ("рекламн*", 0.9),
        ("реклам", 0.9),
        ("reclam*", 0.9),
        ("hirdetes*", 0.9),
        ("διαφημ*", 0.9),
        ("annonse*", 0.9),
        ("reklaam*", 0.9),
        ("mainos*", 0.9),
        ("oglas*", 0.8),
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
        ("блогер*", 0.9),
        ("блоггер*", 0.9),
        ("инфлюенсер*", 0.9),
        ("ютубер*", 0.9),
        ("ютуб*", 0.7),
        ("тикток*", 0.7),
        ("інфлюенсер*", 0.9),
        ("influenszer*", 0.9),
        ("vlogger*", 0.8),
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
        ("реферальн*", 0.9),
        ("промокод*", 0.9),
        ("партнерск* ссылк*", 0.9),
        ("реферальн* код*", 0.9),
        ("henvisning*", 0.8),
        ("kod polecajacy", 0.9),
        ("kod polecenia", 0.9),
        ("referral*", 0.9),
        ("referred", 0.5),
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
        ("конференци*", 0.8),
        ("выставк*", 0.8),
        ("мероприяти*", 0.8),
        ("конференці*", 0.8),
        ("захід", 0.6),
        ("konference*", 0.8),
        ("konferenci*", 0.8),
        ("rendezveny*", 0.8),
        ("συνεδρι*", 0.8),
        ("etkinlik*", 0.8),
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
        ("ваш канал", 0.9),
        ("вашем канале", 0.9),
        ("вашего канала", 0.9),
        ("ваш телеграм", 0.9),
        ("ваш пост", 0.9),
        ("ваш канал", 0.9),
        ("вашому каналі", 0.9),
        ("jeres kanal", 0.9),
        ("jeres opslag", 0.9),
        ("your official", 0.9),
        ("your feed", 0.8),
        ("your story", 0.8),
        ("your stories", 0.8),
        ("vuestra cuenta", 0.9),
        ("votre fil", 0.8),
        ("euren account", 0.9),
        ("eurem account", 0.9),
        ("euren post", 0.9),
        ("eurem post", 0.9),
        ("vostro profilo", 0.9),
        ("vosso perfil", 0.9),
        ("your channel", 0.9),
        ("your telegram channel", 0.9),
        ("your telegram group", 0.9),
        ("your telegram post*", 0.9),
        ("follow your", 0.9),
        ("following your", 0.9),
        ("i follow you", 0.9),
        ("following you", 0.85),
        ("post by your", 0.85),
        ("posts by your", 0.85),
        ("your ceo s post*", 0.9),
        ("your founder s post*", 0.9),
        ("folge euch", 0.9),
        ("folge ihnen", 0.9),
        ("je vous suis sur", 0.9),
        ("os sigo", 0.9),
        ("vi seguo", 0.9),
        ("sigo voces", 0.9),
        ("ik volg jullie", 0.9),
        ("obserwuje was", 0.9),
        ("jag foljer er", 0.9),
        ("подписан на вас", 0.9),
        ("подписан на ваш", 0.9),
        ("підписаний на вас", 0.9),
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
        ("telegram channel", 0.55),
        ("telegram group", 0.55),
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
        ("стать*", 0.8),
        ("газет*", 0.8),
        ("журнал*", 0.8),
        ("новост*", 0.7),
        ("новин*", 0.7),
        ("интервью", 0.7),
        ("інтерв*", 0.7),
        ("cikk*", 0.8),
        ("ujsag*", 0.8),
        ("articol*", 0.8),
        ("ziar*", 0.8),
        ("clanek", 0.8),
        ("clanku", 0.8),
        ("noviny", 0.8),
        ("αρθρο*", 0.8),
        ("εφημεριδ*", 0.8),
        ("haber*", 0.7),
        ("artikel", 0.8),
        ("avisen", 0.8),
        ("observador", 0.8),
        ("handelsblatt", 0.8),
        ("les echos", 0.8),
        ("el pais", 0.8),
        ("il sole", 0.8),
        ("rzeczpospolita", 0.8),
        ("dagens industri", 0.8),
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
        ("email from you", 0.9),
        ("email from your team", 0.9),
        ("email from your company", 0.9),
        ("email from your firm", 0.9),
        ("email from your sales team", 0.9),
        ("email from one of you", 0.9),
        ("e mail from you", 0.9),
        ("e mail from your team", 0.9),
        ("e mail from your company", 0.9),
        ("e mail from your firm", 0.9),
        ("e mail from your sales team", 0.9),
        ("e mail from one of you", 0.9),
        ("mail from you", 0.9),
        ("mail from your team", 0.9),
        ("mail from your company", 0.9),
        ("mail from your firm", 0.9),
        ("mail from your sales team", 0.9),
        ("mail from one of you", 0.9),
        ("message from you", 0.9),
        ("message from your team", 0.9),
        ("message from your company", 0.9),
        ("message from your firm", 0.9),
        ("message from your sales team", 0.9),
        ("message from one of you", 0.9),
        ("dm from you", 0.9),
        ("dm from your team", 0.9),
        ("dm from your company", 0.9),
        ("dm from your firm", 0.9),
        ("dm from your sales team", 0.9),
        ("dm from one of you", 0.9),
        ("sms from you", 0.9),
        ("sms from your team", 0.9),
        ("sms from your company", 0.9),
        ("sms from your firm", 0.9),
        ("sms from your sales team", 0.9),
        ("sms from one of you", 0.9),
        ("text from you", 0.9),
        ("text from your team", 0.9),
        ("text from your company", 0.9),
        ("text from your firm", 0.9),
        ("text from your sales team", 0.9),
        ("text from one of you", 0.9),
        ("call from you", 0.9),
        ("call from your team", 0.9),
        ("call from your company", 0.9),
        ("call from your firm", 0.9),
        ("call from your sales team", 0.9),
        ("call from one of you", 0.9),
        ("letter from you", 0.9),
        ("letter from your team", 0.9),
        ("letter from your company", 0.9),
        ("letter from your firm", 0.9),
        ("letter from your sales team", 0.9),
        ("letter from one of you", 0.9),
        ("newsletter from you", 0.9),
        ("newsletter from your team", 0.9),
        ("newsletter from your company", 0.9),
        ("newsletter from your firm", 0.9),
        ("newsletter from your sales team", 0.9),
        ("newsletter from one of you", 0.9),
        ("invitation from you", 0.9),
        ("invitation from your team", 0.9),
        ("invitation from your company", 0.9),
        ("invitation from your firm", 0.9),
        ("invitation from your sales team", 0.9),
        ("invitation from one of you", 0.9),
        ("invite from you", 0.9),
        ("invite from your team", 0.9),
        ("invite from your company", 0.9),
        ("invite from your firm", 0.9),
        ("invite from your sales team", 0.9),
        ("invite from one of you", 0.9),
        ("e mail von euch", 0.9),
        ("e mail von ihnen", 0.9),
        ("e mail von eurer firma", 0.9),
        ("e mail von ihrer firma", 0.9),
        ("e mail von eurem team", 0.9),
        ("e mail von ihrem team", 0.9),
        ("email von euch", 0.9),
        ("email von ihnen", 0.9),
        ("email von eurer firma", 0.9),
        ("email von ihrer firma", 0.9),
        ("email von eurem team", 0.9),
        ("email von ihrem team", 0.9),
        ("mail von euch", 0.9),
        ("mail von ihnen", 0.9),
        ("mail von eurer firma", 0.9),
        ("mail von ihrer firma", 0.9),
        ("mail von eurem team", 0.9),
        ("mail von ihrem team", 0.9),
        ("nachricht von euch", 0.9),
        ("nachricht von ihnen", 0.9),
        ("nachricht von eurer firma", 0.9),
        ("nachricht von ihrer firma", 0.9),
        ("nachricht von eurem team", 0.9),
        ("nachricht von ihrem team", 0.9),
        ("anruf von euch", 0.9),
        ("anruf von ihnen", 0.9),
        ("anruf von eurer firma", 0.9),
        ("anruf von ihrer firma", 0.9),
        ("anruf von eurem team", 0.9),
        ("anruf von ihrem team", 0.9),
        ("einladung von euch", 0.9),
        ("einladung von ihnen", 0.9),
        ("einladung von eurer firma", 0.9),
        ("einladung von ihrer firma", 0.9),
        ("einladung von eurem team", 0.9),
        ("einladung von ihrem team", 0.9),
        ("brief von euch", 0.9),
        ("brief von ihnen", 0.9),
        ("brief von eurer firma", 0.9),
        ("brief von ihrer firma", 0.9),
        ("brief von eurem team", 0.9),
        ("brief von ihrem team", 0.9),
        ("mail de votre part", 0.9),
        ("mail de vous", 0.9),
        ("mail de votre equipe", 0.9),
        ("mail de votre societe", 0.9),
        ("email de votre part", 0.9),
        ("email de vous", 0.9),
        ("email de votre equipe", 0.9),
        ("email de votre societe", 0.9),
        ("message de votre part", 0.9),
        ("message de vous", 0.9),
        ("message de votre equipe", 0.9),
        ("message de votre societe", 0.9),
        ("appel de votre part", 0.9),
        ("appel de vous", 0.9),
        ("appel de votre equipe", 0.9),
        ("appel de votre societe", 0.9),
        ("invitation de votre part", 0.9),
        ("invitation de vous", 0.9),
        ("invitation de votre equipe", 0.9),
        ("invitation de votre societe", 0.9),
        ("courrier de votre part", 0.9),
        ("courrier de vous", 0.9),
        ("courrier de votre equipe", 0.9),
        ("courrier de votre societe", 0.9),
        ("correo de vosotros", 0.9),
        ("correo de ustedes", 0.9),
        ("correo de vuestra parte", 0.9),
        ("correo de vuestro equipo", 0.9),
        ("correo de su empresa", 0.9),
        ("correo vuestro", 0.9),
        ("email de vosotros", 0.9),
        ("email de ustedes", 0.9),
        ("email de vuestra parte", 0.9),
        ("email de vuestro equipo", 0.9),
        ("email de su empresa", 0.9),
        ("email vuestro", 0.9),
        ("mensaje de vosotros", 0.9),
        ("mensaje de ustedes", 0.9),
        ("mensaje de vuestra parte", 0.9),
        ("mensaje de vuestro equipo", 0.9),
        ("mensaje de su empresa", 0.9),
        ("mensaje vuestro", 0.9),
        ("llamada de vosotros", 0.9),
        ("llamada de ustedes", 0.9),
        ("llamada de vuestra parte", 0.9),
        ("llamada de vuestro equipo", 0.9),
        ("llamada de su empresa", 0.9),
        ("llamada vuestro", 0.9),
        ("invitacion de vosotros", 0.9),
        ("invitacion de ustedes", 0.9),
        ("invitacion de vuestra parte", 0.9),
        ("invitacion de vuestro equipo", 0.9),
        ("invitacion de su empresa", 0.9),
        ("invitacion vuestro", 0.9),
        ("mail da voi", 0.9),
        ("mail dal vostro team", 0.9),
        ("mail dalla vostra azienda", 0.9),
        ("mail da parte vostra", 0.9),
        ("email da voi", 0.9),
        ("email dal vostro team", 0.9),
        ("email dalla vostra azienda", 0.9),
        ("email da parte vostra", 0.9),
        ("messaggio da voi", 0.9),
        ("messaggio dal vostro team", 0.9),
        ("messaggio dalla vostra azienda", 0.9),
        ("messaggio da parte vostra", 0.9),
        ("chiamata da voi", 0.9),
        ("chiamata dal vostro team", 0.9),
        ("chiamata dalla vostra azienda", 0.9),
        ("chiamata da parte vostra", 0.9),
        ("invito da voi", 0.9),
        ("invito dal vostro team", 0.9),
        ("invito dalla vostra azienda", 0.9),
        ("invito da parte vostra", 0.9),
        ("email de voces", 0.9),
        ("email vossa", 0.9),
        ("email vosso", 0.9),
        ("email da vossa equipa", 0.9),
        ("email da vossa empresa", 0.9),
        ("mensagem de voces", 0.9),
        ("mensagem vossa", 0.9),
        ("mensagem vosso", 0.9),
        ("mensagem da vossa equipa", 0.9),
        ("mensagem da vossa empresa", 0.9),
        ("chamada de voces", 0.9),
        ("chamada vossa", 0.9),
        ("chamada vosso", 0.9),
        ("chamada da vossa equipa", 0.9),
        ("chamada da vossa empresa", 0.9),
        ("convite de voces", 0.9),
        ("convite vossa", 0.9),
        ("convite vosso", 0.9),
        ("convite da vossa equipa", 0.9),
        ("convite da vossa empresa", 0.9),
        ("mail van jullie", 0.9),
        ("mail van u", 0.9),
        ("mail van jullie team", 0.9),
        ("e mail van jullie", 0.9),
        ("e mail van u", 0.9),
        ("e mail van jullie team", 0.9),
        ("bericht van jullie", 0.9),
        ("bericht van u", 0.9),
        ("bericht van jullie team", 0.9),
        ("telefoontje van jullie", 0.9),
        ("telefoontje van u", 0.9),
        ("telefoontje van jullie team", 0.9),
        ("uitnodiging van jullie", 0.9),
        ("uitnodiging van u", 0.9),
        ("uitnodiging van jullie team", 0.9),
        ("mail od was", 0.9),
        ("mail od waszej firmy", 0.9),
        ("mail od waszego zespolu", 0.9),
        ("e mail od was", 0.9),
        ("e mail od waszej firmy", 0.9),
        ("e mail od waszego zespolu", 0.9),
        ("wiadomosc od was", 0.9),
        ("wiadomosc od waszej firmy", 0.9),
        ("wiadomosc od waszego zespolu", 0.9),
        ("telefon od was", 0.9),
        ("telefon od waszej firmy", 0.9),
        ("telefon od waszego zespolu", 0.9),
        ("zaproszenie od was", 0.9),
        ("zaproszenie od waszej firmy", 0.9),
        ("zaproszenie od waszego zespolu", 0.9),
        ("mejl fran er", 0.9),
        ("mejl fran ert foretag", 0.9),
        ("mejl fran ert team", 0.9),
        ("mail fran er", 0.9),
        ("mail fran ert foretag", 0.9),
        ("mail fran ert team", 0.9),
        ("meddelande fran er", 0.9),
        ("meddelande fran ert foretag", 0.9),
        ("meddelande fran ert team", 0.9),
        ("samtal fran er", 0.9),
        ("samtal fran ert foretag", 0.9),
        ("samtal fran ert team", 0.9),
        ("inbjudan fran er", 0.9),
        ("inbjudan fran ert foretag", 0.9),
        ("inbjudan fran ert team", 0.9),
        ("introducer", 0.55),
        ("introduced me", 0.55),
        ("introducing broker", 0.55),
        ("intermediary", 0.55),
        ("vermittler", 0.55),
        ("apporteur d affaires", 0.55),
        ("intermediario", 0.55),
        ("tussenpersoon", 0.55),
        ("posrednik", 0.55),
        ("mellanhand", 0.55),
        ("works for you", 0.9),
        ("working for you", 0.9),
        ("works at your", 0.9),
        ("works with you", 0.8),
        ("one of your employees", 0.95),
        ("your staff", 0.9),
        ("arbeitet bei euch", 0.9),
        ("arbeitet bei ihnen", 0.9),
        ("eurer mitarbeiter", 0.9),
        ("euer mitarbeiter", 0.9),
        ("ihr mitarbeiter", 0.9),
        ("travaille chez vous", 0.9),
        ("un de vos employes", 0.95),
        ("trabaja con vosotros", 0.9),
        ("trabaja para vosotros", 0.9),
        ("trabaja en vuestra", 0.9),
        ("lavora per voi", 0.9),
        ("lavora da voi", 0.9),
        ("trabalha convosco", 0.9),
        ("trabalha para voces", 0.9),
        ("werkt bij jullie", 0.9),
        ("werkt voor jullie", 0.9),
        ("pracuje u was", 0.9),
        ("pracuje dla was", 0.9),
        ("jobbar hos er", 0.9),
        ("jobbar for er", 0.9),
        ("мне написал", 0.9),
        ("мне позвонил", 0.9),
        ("мне звонил", 0.9),
        ("написали мне", 0.9),
        ("ваш менеджер", 0.95),
        ("ваш сотрудник", 0.95),
        ("мені написав", 0.9),
        ("мені зателефонував", 0.9),
        ("ваш менеджер", 0.95),
        ("kontaktede mig", 0.9),
        ("ringede til mig", 0.9),
        ("kontaktet meg", 0.9),
        ("ringte meg", 0.9),
        ("kontaktoval* me", 0.9),
        ("megkeresett", 0.9),
        ("m-a contactat", 0.9),
        ("m a contactat", 0.9),
        ("your newsletters", 0.9),
        ("euer newsletter", 0.9),
        ("eurem newsletter", 0.9),
        ("votre newsletter", 0.9),
        ("vuestra newsletter", 0.9),
        ("la vostra newsletter", 0.9),
        ("jullie nieuwsbrief", 0.9),
        ("wasz newsletter", 0.9),
        ("ert nyhetsbrev", 0.9),
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
        ("qwant", 0.75),
        ("startpage", 0.75),
        ("yandex", 0.7),
        ("baidu", 0.7),
        ("kagi", 0.75),
        ("гугл*", 0.75),
        ("яндекс*", 0.7),
        ("искал*", 0.75),
        ("поиск*", 0.7),
        ("шукав", 0.75),
        ("шукала", 0.75),
        ("пошук*", 0.7),
        ("googlede", 0.8),
        ("sogte", 0.75),
        ("sokte", 0.75),
        ("kerestem", 0.75),
        ("rakerestem", 0.8),
        ("kereso*", 0.7),
        ("am cautat", 0.75),
        ("cautare", 0.7),
        ("hledal*", 0.75),
        ("vyhledav*", 0.7),
        ("αναζητ*", 0.75),
        ("γκουγκλ*", 0.75),
        ("aradim", 0.75),
        ("arama", 0.6),
        ("opgezocht", 0.75),
        ("gegoogeld", 0.8),
        ("gegoogled", 0.8),
        ("googlato", 0.8),
        ("googleado", 0.8),
        ("pesquisa no google", 0.8),
        ("wpisalem", 0.6),
        ("wpisalam", 0.6),
        ("wygooglowal*", 0.8),
        ("tapé", 0.6),
        ("tape", 0.5),
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
        ("api docs", 0.8),
        ("documentation", 0.7),
        ("whitepaper", 0.7),
        ("white paper", 0.7),
        ("dune", 0.5),
        ("crunchbase", 0.7),
        ("сравнивал*", 0.8),
        ("сам нашел", 0.8),
        ("сам нашёл", 0.8),
        ("сам знайшов", 0.8),
        ("selv fundet", 0.8),
        ("sammenlign*", 0.8),
        ("osszehasonlit*", 0.8),
        ("am comparat", 0.8),
        ("porovnaval*", 0.8),
        ("selbst gefunden", 0.8),
        ("moi meme", 0.6),
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
        ("buddy", 0.85),
        ("mate", 0.7),
        ("neighbour", 0.85),
        ("neighbor", 0.85),
        ("boss", 0.8),
        ("tax adviser", 0.8),
        ("tax advisor", 0.8),
        ("accountant", 0.8),
        ("lawyer", 0.8),
        ("steuerberater*", 0.8),
        ("berater", 0.7),
        ("anwalt", 0.8),
        ("nachbar*", 0.85),
        ("erwahnt", 0.6),
        ("erzahlt", 0.6),
        ("chef", 0.7),
        ("comptable", 0.8),
        ("avocat", 0.8),
        ("voisin*", 0.85),
        ("gestor", 0.7),
        ("abogado", 0.8),
        ("vecino", 0.85),
        ("commercialista", 0.8),
        ("avvocato", 0.8),
        ("vicino di casa", 0.85),
        ("contabilista", 0.8),
        ("advogado", 0.8),
        ("vizinho", 0.85),
        ("boekhouder", 0.8),
        ("advocaat", 0.8),
        ("buurman", 0.85),
        ("buurvrouw", 0.85),
        ("ksiegow*", 0.8),
        ("prawnik", 0.8),
        ("sasiad*", 0.85),
        ("revisor", 0.8),
        ("advokat", 0.8),
        ("granne", 0.85),
        ("друг", 0.85),
        ("друга", 0.85),
        ("другу", 0.85),
        ("подруга", 0.85),
        ("подруги", 0.85),
        ("друзья", 0.85),
        ("друзі", 0.85),
        ("знаком*", 0.85),
        ("знайом*", 0.85),
        ("коллег*", 0.85),
        ("колег*", 0.85),
        ("посоветовал*", 0.6),
        ("порекомендовал*", 0.6),
        ("порадив", 0.6),
        ("порадила", 0.6),
        ("порекомендував", 0.6),
        ("en ven", 0.85),
        ("min ven", 0.85),
        ("veninde", 0.85),
        ("venner", 0.85),
        ("en venn", 0.85),
        ("min venn", 0.85),
        ("anbefal*", 0.6),
        ("kamarad*", 0.85),
        ("pritel*", 0.85),
        ("kolega", 0.85),
        ("barat", 0.85),
        ("baratom", 0.85),
        ("baratja", 0.85),
        ("ismeros*", 0.85),
        ("kollega*", 0.85),
        ("ajanl*", 0.6),
        ("prieten*", 0.85),
        ("coleg", 0.85),
        ("colegul", 0.85),
        ("recomand*", 0.6),
        ("φιλος", 0.85),
        ("φιλη", 0.85),
        ("φιλοι", 0.85),
        ("συναδελφ*", 0.85),
        ("arkadas*", 0.85),
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


def _alternation(phrases: str) -> str:
    """A regex alternation of "|"-separated phrases in their folded form (any script)."""
    keys = {fold(p) for p in phrases.split("|") if fold(p)}
    return "|".join(re.escape(k).replace(r"\ ", " ") for k in sorted(keys, key=len, reverse=True))


#: Phrases that say "on my own initiative": self-certification proves nothing (R4), and next to
#: any solicitation signal it is itself a reason to look.
_SELF_CERT = re.compile(
    r"\b(own initiative|own exclusive initiative|exclusive initiative|on my own accord"
    r"|of my own accord|i came on my own|my own free will|of my own volition|reverse solicitation"
    r"|unsolicited|eigene(r|n)? initiative|aus eigenem antrieb|propre initiative"
    r"|de moi meme|iniciativa propia|por mi cuenta|mia iniziativa|iniziativa personale"
    r"|iniciativa propria|eigen initiatief|wlasnej inicjatywy|eget initiativ|"
    + _alternation("по собственной инициативе|з власної ініціативи|egen drift")
    + r")\b"
)
_NEGATORS = frozenset(
    fold(w)
    for w in """not no never nobody none neither nor without wasn isn didn don doesn hadn haven
    nothing kein keine keinen keiner keinem nicht nie niemand ohne weder pas ni jamais sans aucun
    aucune personne rien non nunca nadie sin ningun ninguna tampoco mai nessuno senza nessun
    nessuna nem nao nunca ninguem sem nenhum nenhuma niet geen nooit niemand zonder noch nie
    zaden zadna zadnego nikt bez ani inte ingen aldrig utan varken ikke uden uten aldri ingen
    не нет ни без ні нема немає nincs nelkul δεν οχι χωρις degil yok nebyl nebyla nebylo zadny
    zadna zadne""".split()
)
#: Words that end the reach of a negation ("no ads, but your post", "not until your ad").
_CONTRAST = frozenset(
    fold(w)
    for w in """but however though instead rather just only until till then aber sondern doch
    nur bis dann mais plutot seulement jusqu puis pero sino solo hasta luego ma bensi solo
    finche poi mas porem apenas ate depois maar alleen tot toen ale lecz tylko dopoki potem
    men bara tills sedan но а лише тільки поки потом потім""".split()
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
    r"|inte saker|nagonstans|"
    + _alternation(
        "кажется|наверное|может быть|возможно|не уверен|не уверена|не помню|где-то|здається"
        "|мабуть|можливо|не впевнений|не впевнена|не пам'ятаю|десь|jeg tror|maske|maaske"
        "|maybe|mozna|asi|myslim|talan|azt hiszem|nem vagyok biztos|poate|cred|nu sunt sigur"
        "|ισως|νομιζω|galiba|sanirim|belki|ehkä|luulen"
    )
    + r")\b"
)
_NO_LINK = re.compile(
    r"\b(no|without|kein|keinen|ohne|sans|aucun|pas de|sin|ningun|senza|nessun|sem|nenhum"
    r"|geen|zonder|bez|zadnego|ingen|utan|intet|uden|uten|"
    + _alternation("без|не було|nincs")
    + r")\s+(\w+\s+)?(link|links|code|codes|lien|liens|codigo|codice|kod|koden|kode|referral"
    r"|ref|affiliate|invite|"
    + _alternation("ссылки|ссылок|кода|посилання|коду|linket|koden")
    + r")\b"
)
_ENGLISH_PUB = frozenset({"a", "the", "in", "at", "local", "irish", "english", "this", "that"})
#: Words that make a search engine mention a search for the firm itself ("your name").
_NAME_SEARCH = re.compile(
    r"\b(your name|your company name|your firm|your website|your site|the name|euren namen"
    r"|ihren namen|eurem namen|ihrem namen|euer name|euren name|den namen|eure seite"
    r"|eure website|votre nom"
    r"|vuestro nombre|su nombre|vostro nome|il nome|vosso nome|o nome|jullie naam|de naam"
    r"|wasza nazwe|wasza nazwa|waszej nazwy|nazwe firmy|ert namn|namnet|"
    + _alternation("по названию|ваше название|вашу компанию|за назвою|jeres navn|cegnev|numele")
    + r")\b"
)
_NORMAL_RESULT = re.compile(
    r"\b(normal|organic|regular|unpaid|non sponsored|not sponsored|first result|top result"
    r"|natural|resultado normal|risultato normale|resultat normal|resultat naturel"
    r"|organisch|naturlich|zwykly wynik)\b"
)
#: Words that tie the request to what the client names ("that's why I'm writing", R7).
_LINKED = re.compile(
    r"\b(that s why|that is why|which is why|because of|thanks to|due to|so i decided"
    r"|and now i|since then|after seeing|after i saw|reason i|deshalb|daher|deswegen|darum"
    r"|wegen|dank|seitdem|c est pour ca|c est pourquoi|grace a|a cause de|suite a"
    r"|por eso|por ello|gracias a|debido a|desde entonces|per questo|grazie a|a causa di"
    r"|da allora|por isso|gracas a|desde entao|daarom|dankzij|sindsdien|dlatego|dzieki"
    r"|z powodu|od tego czasu|darfor|tack vare|sedan dess|"
    + _alternation("поэтому|благодаря|из-за|тому|завдяки|через це")
    + r")\b"
)

_YES = frozenset(
    fold(w)
    for w in "yes yeah yep yup sure correct right ja jawohl genau doch oui ouais si sim claro "
    "certo esatto tak owszem jo japp absolutely indeed affirmative да ага так ano igen ναι "
    "evet".split()
)
_NO = frozenset(
    fold(w)
    for w in "no nope nah never nobody none nein nee niemand nie non nunca nadie mai nessuno "
    "nao niet neen nej ingen nikt negative нет ні никто ніхто nei nem όχι hayir hayır".split()
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
    #: self_certification, no_link_or_code, name_search, organic_result, linked (the client
    #: ties the request to what they name: "that's why I'm writing", R7)
    flags: frozenset[str] = frozenset()
    #: (code as written, register entry id)
    referral_codes: tuple[tuple[str, str], ...] = ()


#: The cues once each: (channel, confidence, folded phrase, "*" phrase), in the order above.
_CUE_LIST: tuple[tuple[Channel, float, str, bool], ...] = tuple(
    dict.fromkeys(
        (channel, conf, fold(phrase.rstrip("*")), phrase.endswith("*"))
        for channel, cues in _CUES.items()
        for phrase, conf in cues
        if fold(phrase.rstrip("*"))
    )
)
#: All the cues matched in one pass over a sentence's words (`\b{phrase}\b` or, for "*",
#: `\b{phrase}\w*` per cue, as regexes, would take one pass each).
_CUE_INDEX = PhraseIndex((phrase, star) for _c, _conf, phrase, star in _CUE_LIST)
_PUB_CUES = frozenset(
    i for i, (_c, _conf, phrase, _s) in enumerate(_CUE_LIST) if phrase in ("pub", "pubs")
)


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


#: "Maybe", not "I don't know": a hedged answer to a yes/no question a person should look at.
_UNSURE = re.compile(
    r"\b(maybe|perhaps|possibly|probably|i think so|i believe so|might have|may have|not sure"
    r"|vielleicht|wahrscheinlich|ich glaube|nicht sicher|peut etre|probablement|je crois|pas sur"
    r"|quizas|tal vez|a lo mejor|creo que si|no estoy seguro|forse|probabilmente|credo di si"
    r"|non sono sicuro|talvez|provavelmente|acho que sim|misschien|waarschijnlijk|ik denk het"
    r"|niet zeker|chyba|moze|prawdopodobnie|kanske|troligen|jag tror det|inte saker"
    r"|может быть|возможно|наверное|кажется|не уверен|можливо|мабуть|здається)\b"
)


def is_hedged(text: str) -> bool:
    """Whether an answer is a "maybe" rather than a yes, a no or an "I don't know"."""
    return bool(_UNSURE.search(fold(text)))


def answer_yes_no(text: str) -> bool | None:
    """A plain yes or no in any supported language; None when neither, both, or a maybe."""
    if is_hedged(text):
        return None  # "not sure" holds "sure"; "chyba tak" is a maybe, not a yes
    words = set(fold(text).split())
    yes, no = bool(words & _YES), bool(words & _NO)
    if yes == no:
        return None
    return yes


def _negated(words_before: list[str]) -> bool:
    """Whether a negator stands shortly before a cue, with no "but"/"until" in between."""
    for word in reversed(words_before[-6:]):
        if word in _CONTRAST:
            return False
        if word in _NEGATORS:
            return True
    return False


#: How clients write the platforms of the register in other scripts.
_CHANNEL_ALIASES: dict[str, tuple[str, ...]] = {
    "telegram": ("телеграм", "телеграмм", "τελεγκραμ"),
    "google": ("гугл", "γκουγκλ"),
    "youtube": ("ютуб", "γιουτιουμπ"),
    "instagram": ("инстаграм", "інстаграм"),
    "facebook": ("фейсбук", "фэйсбук"),
    "twitter": ("твиттер", "твітер"),
    "tiktok": ("тикток", "тікток"),
    "linkedin": ("линкедин", "лінкедін"),
    "x": ("twitter", "твиттер", "твітер"),
}


@lru_cache(maxsize=256)
def _channel_pattern(channel: str) -> re.Pattern[str]:
    """A register channel as written by clients: any ending ("Telegramie"), other scripts."""
    key = fold(channel)
    names = [key, *(fold(a) for a in _CHANNEL_ALIASES.get(key, ()))]
    parts = [re.escape(n) + (r"\w*" if len(n) >= 4 else "") for n in names if n]
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


_SENTENCE = re.compile(r"[^.!?;\n]+[.!?;\n]*")
_CLAUSE = re.compile(r"[,:()\[\]\"«»“”„]|\s[-–—]\s")


def _sentences(raw: str) -> list[tuple[str, bool]]:
    """The sentences of a cleaned text, folded, each with whether it was a question.

    Commas and colons end a clause for negation: "Not from an ad: I searched your name" and
    "keine Werbung, ich habe euch gegoogelt" negate the ad and nothing after it.
    """
    out: list[tuple[str, bool]] = []
    for m in _SENTENCE.finditer(raw):
        chunk = m.group(0)
        clauses = [fold(c) for c in _CLAUSE.split(chunk)]
        folded = " , ".join(c for c in clauses if c)
        if folded:
            out.append((folded, chunk.rstrip().endswith("?")))
    return out


def _before(sentence: str, start: int) -> list[str]:
    """The words of a sentence's clause before a position (clauses are split by " , ")."""
    words = sentence[:start].split()
    if "," in words:
        words = words[len(words) - words[::-1].index(",") :]
    return words


def _clause_before(words: list[str], at: int) -> list[str]:
    """The words of a sentence (its words, "," between clauses) in the clause before word
    `at`."""
    before = words[:at]
    if "," in before:
        before = before[len(before) - before[::-1].index(",") :]
    return before


def classify_source(text: str, profile: CompanyProfile) -> SourceFinding:
    """Read the client's own words on how they found the firm."""
    index = _index(profile)
    raw = clean(text)[:MAX_TEXT]
    codes = tuple(_find_codes(raw if raw.isascii() else clean(raw)[:MAX_TEXT], index))
    flags: set[str] = set()
    signals: list[SourceSignal] = []
    matched_entries: set[str] = set()
    sentences = _sentences(raw)
    marketing = profile.marketing
    links = profile.close_links

    for sentence, question in sentences:
        hedged = bool(_HEDGES.search(sentence)) or question
        plain = sentence.replace(" , ", " ")
        if _SELF_CERT.search(plain):
            flags.add("self_certification")
        if _NO_LINK.search(plain):
            flags.add("no_link_or_code")
        if _NAME_SEARCH.search(plain) or _names_firm(index, plain):
            flags.add("name_search")
        if _NORMAL_RESULT.search(plain):
            flags.add("organic_result")
        found_here = len(signals)

        # 1. Closely linked entities (R10): by name, typos tolerated for long names.
        view = Sentence(sentence)
        for owner, _name, at in index.links.hits(view):
            before = _before(sentence, at) if at is not None else []
            link = links[owner]
            signals.append(
                SourceSignal(Channel.CLOSE_LINK, link.name, 0.9, _negated(before), hedged)
            )

        # 2. The register: entries named in the client's words.
        for owner, name, at in index.register.hits(view):
            before = _before(sentence, at) if at is not None else []
            entry = marketing[owner]
            signals.append(_entry_signal(entry, name, _negated(before), hedged, 0.9))
            matched_entries.add(entry.id)

        # 3. Generic cues, all in one pass over the words.
        words = sentence.split()
        for i, at_list in sorted(_CUE_INDEX.matches(words).items()):
            channel, conf, _phrase, _star = _CUE_LIST[i]
            for at in at_list if i in _PUB_CUES else at_list[:1]:
                before = _clause_before(words, at)
                if i in _PUB_CUES and before and before[-1] in _ENGLISH_PUB:
                    continue  # "met a friend in a pub" is not "une pub"
                matched = " ".join(words[at : at + _CUE_INDEX.size(i)])
                signals.append(SourceSignal(channel, matched, conf, _negated(before), hedged))
                break
        if _LINKED.search(plain) and any(
            not sig.negated and sig.channel in SOLICITING for sig in signals[found_here:]
        ):
            flags.add("linked")

    text_folded = " ".join(s.replace(" , ", " ") for s, _ in sentences)
    signals = _attach_register(signals, index, text_folded, matched_entries)
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
            out.append(
                SourceSignal(
                    sig.channel, sig.matched, confidence, sig.negated, sig.hedged, best.id
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
