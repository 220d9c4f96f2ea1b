"""Item 3: microseconds per answer for the three classifiers (and the outbound gate).

The answers are the clients' own words of the visible scenarios (several languages), plus a few
more written here; each is classified as the engine does it, one classifier at a time:
territory (`classify_residence` with the real gazetteer), source (`classify_source`) and
service (`classify_service`). Two profiles: the example company (examples/company.yaml, eight
marketing entries) and the same company with a generated register of 1,000 marketing entries
(influencers, ads, events, referral codes... with names, regions and dates).

The gate (`judge`) is timed the same way on the outbound texts of the scenarios, for a client
served EU-restricted (the gate's longest path: every register name is checked).
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import yaml

from bench.common import Config, percentile
from bench.profiling import maybe_profile

REPO = Path(__file__).resolve().parents[1]

#: More answers in the clients' own words, so the corpus is not only the visible scenarios'.
EXTRA = {
    "source": [
        "A friend told me about you",
        "I searched your name on Google",
        "saw an ad on youtube i think",
        "my colleague recommended Northwind",
        "I came across a post on Twitter",
        "Clara mentioned you in her video",
        "my brother used the code NW-7Q2K",
        "don't remember honestly",
        "Ich habe euren Namen bei Google gesucht",
        "J'ai vu votre publicité sur Telegram",
    ],
    "residence": [
        "I live in Singapore",
        "Hong Kong",
        "I'm based in Dubai, UAE",
        "Berlin, Germany",
        "I live in Vienna but I'm from Serbia",
        "Toulouse",
        "we are a company in Zug, Switzerland",
        "currently in Lisbon for work, I live in Brazil",
        "München",
        "don't want to say",
    ],
    "service": [
        "I want to buy bitcoin with dollars",
        "custody of my bitcoin please",
        "I'd like to swap ETH for USDT",
        "sell 80k USDT for HKD",
        "staking / earn on my ETH",
        "a trading account for BTC and ETH",
        "advice on my crypto portfolio",
        "send USDT to my wallet abroad",
        "Verwahrung von 3 BTC",
        "vendre de l'ETH contre des euros",
    ],
}

_FIRST = ["Anna", "Marco", "Sofia", "Lukas", "Chloe", "Mateo", "Elif", "Jonas", "Ines", "Piotr"]
_LAST = ["Kovacs", "Rossi", "Novak", "Dubois", "Silva", "Berg", "Moreau", "Costa", "Ilic", "Popa"]
_MEDIA = [
    "Daily",
    "Crypto",
    "Chain",
    "Block",
    "Coin",
    "Ledger",
    "Satoshi",
    "Token",
    "Hash",
    "DeFi",
]
_THINGS = ["Digest", "Times", "Weekly", "Insider", "Radar", "Journal", "Pulse", "Wire", "Hub"]
_CITIES = ["Berlin", "Madrid", "Warsaw", "Prague", "Athens", "Dublin", "Milan", "Tallinn", "Riga"]
_EVENTS = ["Blockchain Week", "Crypto Summit", "Fintech Forum", "Web3 Days", "Token Expo"]
_REGIONS = ["DE", "FR", "ES", "IT", "PL", "NL", "SG", "HK", "AE", "GB", "CH", "WORLD", "EU"]
_KINDS = ["ad", "social", "influencer", "event", "sponsorship", "referral", "email", "press"]


def _scenario_answers() -> dict[str, list[str]]:
    """The clients' answers in the visible scenarios (shared/ beside the checkout or examples/)."""
    shared = REPO.parent / "shared" / "scenarios" / "visible.yaml"
    path = shared if shared.exists() else REPO / "examples" / "visible.yaml"
    out: dict[str, list[str]] = {"source": [], "residence": [], "service": [], "outbound": []}
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return out
    for sc in doc.get("scenarios", []) if isinstance(doc, dict) else []:
        answers = sc.get("answers") or {}
        for slot in ("source", "residence", "service"):
            if isinstance(answers.get(slot), str):
                out[slot].append(answers[slot])
        for step in sc.get("later") or []:
            send = step.get("send") if isinstance(step, dict) else None
            if isinstance(send, dict) and isinstance(send.get("text"), str):
                out["outbound"].append(send["text"])
    return out


def corpus() -> dict[str, list[str]]:
    """The answers per classifier, and outbound texts for the gate."""
    found = _scenario_answers()
    for slot, extra in EXTRA.items():
        found[slot] = [*found[slot], *extra]
    if not found["outbound"]:
        found["outbound"] = ["The custody fee is 0.2 % a year.", "Earn 7% APY with Yield Vault!"]
    return found


def generated_register(size: int = 1000, seed: int = 61) -> list[dict[str, Any]]:
    """`size` marketing entries (plus the example's own), deterministic."""
    rng = random.Random(seed)
    entries: list[dict[str, Any]] = []
    for i in range(size):
        kind = _KINDS[i % len(_KINDS)]
        if kind == "influencer":
            person = f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"
            names = [person, person.replace(" ", ""), f"{person.split()[0]} Crypto {i}"]
        elif kind in ("event", "sponsorship"):
            names = [f"{rng.choice(_CITIES)} {rng.choice(_EVENTS)} {2020 + i % 7}"]
        elif kind == "press":
            names = [f"{rng.choice(_MEDIA)} {rng.choice(_THINGS)} article {i}"]
        elif kind == "referral":
            names = [f"partner invite {i}", f"bonus link {i}"]
        else:
            names = [f"{rng.choice(_MEDIA)} {rng.choice(_THINGS)} {kind} {i}"]
        start = date(2024, 1, 1).toordinal() + rng.randrange(0, 900)
        entry: dict[str, Any] = {
            "id": f"gen-{i:04d}",
            "kind": kind,
            "names": names,
            "regions": sorted({rng.choice(_REGIONS) for _ in range(rng.randint(1, 3))}),
            "start": date.fromordinal(start).isoformat(),
            "end": date.fromordinal(start + rng.randrange(1, 400)).isoformat(),
            "paid": rng.random() < 0.7,
        }
        if kind in ("ad", "social", "influencer"):
            entry["channel"] = rng.choice(["telegram", "youtube", "google", "x", "instagram"])
        if kind in ("event", "sponsorship"):
            entry["location"] = rng.choice(["DE", "ES", "PL", "SG", "AE"])
        if kind == "referral" and i % 3 == 0:
            entry["code_pattern"] = f"G{i:03d}-[A-Z0-9]{{4}}"
        entries.append(entry)
    return entries


def profiles() -> dict[str, Any]:
    """The example profile and the same with 1,000 generated register entries."""
    from triage.domain.profile import parse_profile
    from triage.settings import DEFAULT_PROFILE, read_yaml

    doc = dict(read_yaml(Path(DEFAULT_PROFILE)))  # type: ignore[arg-type]
    visible = parse_profile(doc, source=str(DEFAULT_PROFILE))
    own = list(doc.get("marketing") or [])
    big = dict(doc, marketing=own + generated_register(1000 - len(own)))
    return {"visible_profile": visible, "register_1000": parse_profile(big, source="generated")}


def time_calls(
    fn: Callable[[str], Any], texts: Sequence[str], passes: int, budget_s: float
) -> dict[str, float]:
    """Microseconds per call: up to `passes` passes over `texts`, stopping once `budget_s` is
    spent (but never before 8 answers); the first 3 answers are a warm-up, not counted."""
    for t in texts[:3]:
        fn(t)
    samples: list[float] = []
    started = time.perf_counter()
    for _ in range(passes):
        for t in texts:
            t0 = time.perf_counter_ns()
            fn(t)
            samples.append((time.perf_counter_ns() - t0) / 1000)
            if len(samples) >= 8 and time.perf_counter() - started > budget_s:
                break
        else:
            continue
        break
    return {
        "median_us": round(statistics.median(samples), 1),
        "mean_us": round(statistics.fmean(samples), 1),
        "p99_us": round(percentile(samples, 99), 1),
        "calls": len(samples),
    }


async def run(cfg: Config, *, profile: bool = False) -> dict[str, Any]:
    """Per-classifier timings for both profiles; the headline is the slowest classifier."""
    from triage.domain.codes import MessageKind, Outcome, Sender, ServiceCode, Zone
    from triage.domain.gate import OutboundMessage, RecipientFacts, judge
    from triage.domain.services import classify_service
    from triage.domain.sources import classify_source
    from triage.domain.territory import classify_residence
    from triage.geodata import load_gazetteer

    gazetteer = load_gazetteer()
    texts = corpus()
    now = datetime.now(UTC)
    facts = RecipientFacts(
        zone=Zone.EU,
        outcomes=(Outcome.SERVE_EU_RESTRICTED,),
        served=(ServiceCode.CUSTODY,),
        requested=(ServiceCode.CUSTODY,),
        last_client_message_at=now,
    )
    out: dict[str, Any] = {"answers": {k: len(v) for k, v in texts.items()}, "by_classifier": {}}
    budget = 1.0 if cfg.quick else 8.0
    out["budget_s_per_classifier"] = budget
    headline: dict[str, float] = {}
    for name, prof in profiles().items():
        per: dict[str, dict[str, float]] = {
            "territory": time_calls(
                lambda t: classify_residence(t, gazetteer, language="en"),
                texts["residence"],
                cfg.classifier_passes,
                budget,
            ),
        }
        with maybe_profile(profile, f"classifiers_{name}", "source + service, one pass each"):
            per["source"] = time_calls(
                lambda t, p=prof: classify_source(t, p),
                texts["source"],
                cfg.classifier_passes,
                budget,
            )
            per["service"] = time_calls(
                lambda t, p=prof: classify_service(t, p),
                texts["service"],
                cfg.classifier_passes,
                budget,
            )
        per["gate"] = time_calls(
            lambda t, p=prof: judge(
                OutboundMessage(Sender.SALES, MessageKind.REPLY, t, now, reply=True), facts, p
            ),
            texts["outbound"],
            cfg.classifier_passes,
            budget,
        )
        out["by_classifier"][name] = per
        out[f"marketing_entries_{name}"] = len(prof.marketing)
        # The headline per profile: the slowest of the three classifiers, median us per answer
        # (the median: a shared machine's noise moves the mean; the mean and p99 are kept too).
        headline[name] = max(per[c]["median_us"] for c in ("territory", "source", "service"))
    out["visible_profile"] = headline["visible_profile"]
    out["register_1000"] = headline["register_1000"]
    out["targets_us"] = {"visible_profile": 200, "register_1000": 1000}
    return out
