"""Labelled English test calls for the conversation detectors (`callqa eval detectors`, tests).

Each call is assembled from scripted parts -- opening, the customer's need, identity check, an
optional hold, dead air, interruption, forbidden phrase, angry customer, long explanation,
further help, satisfaction check, closing -- rendered as a stereo 8 kHz telephone call with
`callqa.synth` (piper voices), and written with a label file listing every event the detectors
should find (type, role, start/end from the synthesis truth) and the call-level figures (hold
durations, dead air, interruptions).

Which parts a call gets is a fixed pattern over the call index (so any prefix of the set covers
every feature), and the wording is picked by a seeded RNG: the same seed gives the same calls,
byte for byte. Lines are drawn from small pools on purpose: synthesis costs about real time on a
busy CPU and `callqa.synth.tts.speak` memoises (voice, text), so reuse keeps 30 calls affordable.

Label conventions (what the evaluation compares against):
- text events span the turn that carries them; `optional` lists events a detector may also
  report there without being wrong (the greeting line "how can I help you" is need discovery too);
- a music hold spans the music; a silent hold spans the silence between the last word before
  and the first word after (nothing else in the audio marks where a silent hold starts);
- dead air spans the silence; an interruption spans the overlap and belongs to the interrupter;
- long_monologue follows the detector's policy (agent turns, pauses < 3 s, customer backchannels
  allowed) at the default threshold of 30 s.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from callqa.synth.labels import CallLabels, labels_from_truth, labels_path, relabel_rendered
from callqa.synth.mix import render_call
from callqa.synth.script import CallScript, DeadAir, Hold, tagged_turn

DEFAULT_N = 30

COMPANIES = [
    ("Acme Energy", "Sarah"),
    ("Brightline Telecom", "Daniel"),
    ("Parcelway", "Emma"),
    ("Northbank", "James"),
    ("Citywater", "Priya"),
]

# scenario: (neutral need, details, explanation, customer reaction)
SCENARIOS = {
    "billing": (
        "Hi, my bill this month is almost twice what I normally pay, and I'd like to know why.",
        "Sure, it's four four seven two nine one.",
        "The reason is that your last two bills were estimated, and this one used your actual meter reading, "
        "so it caught up on the difference.",
        "Oh, I see. So it's a one off, not a price rise?",
    ),
    "broadband": (
        "Hello, my internet keeps dropping out every evening and I work from home.",
        "Yes, it's three three zero nine one eight.",
        "This is happening because there's a fault at the local exchange. I've booked an engineer for Friday morning.",
        "Okay, Friday works for me.",
    ),
    "delivery": (
        "Hi, my parcel was due on Tuesday and it still hasn't arrived.",
        "The tracking number is P W seven seven three zero one five.",
        "The reason is that the label was damaged at the depot. I've booked it on tomorrow's first delivery run.",
        "Right, tomorrow is fine.",
    ),
    "address": (
        "Hi, I'm moving house next month and I need to change the address on my account.",
        "It's five five eight eight one two, and I was born on the third of March.",
        "What I've done is schedule the move for the first of next month, and your new address is on the account.",
        "Lovely, that's great.",
    ),
}
ANGRY_NEED = [
    "This is the third time I'm calling about this. Nobody has called me back and it's ridiculous.",
    "I'm really fed up. I've been waiting for weeks and nothing has been fixed. This is unacceptable.",
]
ANGRY_FOLLOWUP = [
    "Nobody told me any of that! This is absolutely useless.",
    "That's not good enough. I've wasted hours on this already!",
]
ESCALATION = "I want to speak to a manager, right now."
FORBIDDEN = [
    "Look, that's not my problem. You'll have to call the courier yourself.",
    "Calm down, I already told you the engineer is booked.",
]
EMPATHY_ID = "I'm really sorry to hear that. Can I take your account number, please?"
PLAIN_ID = [
    "Can I take your account number, please?",
    "For security, can you confirm your full name and date of birth?",
]
HOLD_ASK = [
    "Thank you. Could you please hold for a moment while I check that?",
    "Thanks. I'm going to put you on hold for a moment while I look into it.",
]
HOLD_OK = "Sure, no problem."
HOLD_THANKS = ["Thank you for holding.", "Thanks for waiting."]
NO_THANKS = "Right."
AFTER_DEAD_AIR = "Okay, I've found it."
UNDERSTAND = "Does that make sense?"
UNDERSTAND_REPLY = "Yes, that makes sense."
FURTHER_HELP = "Is there anything else I can help you with today?"
FURTHER_REPLY = "No, that's everything, thanks."
SATISFACTION = "Are you happy with how we've resolved this today?"
SATISFACTION_REPLY = "Yes, I am, thank you."
CLOSING = "Thank you for calling {company}. Have a lovely day."
NO_CLOSING_END = "Okay. Bye."
LONG_EXPLANATION = [
    "Let me explain how this works, because it's a little complicated.",
    "When your account was opened, we set your payments using an estimate of how much energy a home like yours "
    "would use.",
    "Over the winter your usage went up, but because we never received a meter reading, the estimate stayed "
    "where it was.",
    "When the engineer read the meter last month, the system compared the real figure with all of the estimates "
    "and billed the difference in one go.",
    "That's why this bill is so much higher. From now on, if you send us a reading every month, your bills will "
    "follow your real usage.",
]
INTERRUPTED_AGENT = (
    "What I can do is book an engineer to come out and look at the line, but the earliest appointment we have is"
)
CUSTOMER_INTERRUPTS = "Hang on, I can't wait that long!"
AGENT_AFTER_INTERRUPT = "I understand. I'll put you on the cancellation list for an earlier slot."
CUSTOMER_RAMBLES = (
    "So the thing is, I called last week and the person I spoke to said it would all be sorted by now, "
    "and then I got another letter saying"
)
AGENT_INTERRUPTS = "Sorry, let me stop you there, I need to check your account first."

GREETINGS = {
    "standard": "Thank you for calling {company}, my name is {agent}, how can I help you today?",
    "paraphrased": "Hi there, you've reached {company} customer support, {agent} speaking. What can I do for you?",
    "absent": "Yeah, go ahead.",
}

# Feature patterns over the call index (periods are co-prime so combinations vary).
HOLD_PATTERN = [
    "announced_music",
    None,
    "unannounced_silence",
    None,
    "announced_silence",
    None,
    "unannounced_music",
    None,
    "announced_music_unthanked",
    None,
]
GREETING_PATTERN = ["standard", "standard", "paraphrased", "standard", "absent", "standard", "paraphrased"]


@dataclass
class CallSpec:
    stem: str
    scenario: str
    company: str
    agent_name: str
    greeting: str  # standard | paraphrased | absent
    hold: str | None
    hold_s: float
    dead_air_s: float | None
    interruption: str | None  # who interrupts: customer | agent
    forbidden: bool
    angry: bool
    escalation: bool
    long_monologue: bool
    understanding: bool
    further_help: bool
    satisfaction: bool
    closing: bool
    voices: dict[str, str]


def call_specs(n: int = DEFAULT_N, seed: int = 0) -> list[CallSpec]:
    """The first `n` call specifications for `seed` (deterministic)."""
    specs: list[CallSpec] = []
    for i in range(n):
        rng = random.Random(f"{seed}:spec:{i}")  # per call, so one call's draws never shift another's
        hold = HOLD_PATTERN[i % len(HOLD_PATTERN)]
        if hold is None:
            hold_s = 0.0
        elif "music" in hold:
            hold_s = round(rng.uniform(6.0, 12.0), 1)
        elif hold == "announced_silence":
            hold_s = round(rng.uniform(11.0, 13.0), 1)
        else:
            hold_s = round(rng.uniform(21.0, 23.0), 1)
        dead_air = round(rng.uniform(6.0, 9.0), 1) if (hold is None and i % 4 == 1) else None
        company, agent = COMPANIES[i % len(COMPANIES)]
        angry = i % 4 == 2 or i % 10 == 7
        long_monologue = i % 10 == 5
        # the customer's interruption cuts into the agent's explanation, which a monologue call replaces
        interruption = {1: "customer", 3: "agent", 5: "customer"}.get(i % 6)
        if long_monologue and interruption == "customer":
            interruption = None
        specs.append(
            CallSpec(
                stem=f"call{i:02d}",
                scenario=list(SCENARIOS)[i % len(SCENARIOS)],
                company=company,
                agent_name=agent,
                greeting=GREETING_PATTERN[i % len(GREETING_PATTERN)],
                hold=hold,
                hold_s=hold_s,
                dead_air_s=dead_air,
                interruption=interruption,
                forbidden=i % 5 == 3,
                angry=angry,
                escalation=angry and i % 8 == 2,
                long_monologue=long_monologue,
                # fewer closing questions on calls that already run long (holds, long explanations)
                understanding=i % 3 == 0 and hold is None,
                further_help=i % 6 != 4,
                satisfaction=i % 4 == 3 and i % 10 != 5,
                closing=i % 7 != 6,
                voices={"agent": "joe_high", "customer": "joe"} if i % 3 else {"agent": "joe", "customer": "joe_mid"},
            )
        )
    return specs


_a = partial(tagged_turn, "agent")
_c = partial(tagged_turn, "customer")


def build_script(spec: CallSpec, seed: int = 0) -> CallScript:
    """The call's turns, holds and silences, each turn tagged with the events it should produce."""
    rng = random.Random(f"{seed}:{spec.stem}")
    need, details, explanation, reaction = SCENARIOS[spec.scenario]
    angry_kw = {"rate": 1.12, "gain_db": 3.0}
    items: list[Any] = []
    g = GREETINGS[spec.greeting].format(company=spec.company, agent=spec.agent_name)
    if spec.greeting == "absent":
        items.append(_a(g, gap=0.4, opt=("need_discovery",)))
    else:
        items.append(_a(g, "greeting", "need_discovery", gap=0.4))
    if spec.angry:
        items.append(
            _c(rng.choice(ANGRY_NEED), "complaint", "negative_emotion", opt=("escalation_request",), **angry_kw)
        )
        items.append(_a(EMPATHY_ID, "empathy", "identity_verification"))
    else:
        items.append(_c(need, opt=("complaint",)))
        items.append(_a(rng.choice(PLAIN_ID), "identity_verification"))
    if spec.interruption == "agent":
        items.append(_c(CUSTOMER_RAMBLES, opt=("complaint",)))
        items.append(
            _a(AGENT_INTERRUPTS, "interruption", gap=0.0, overlap_s=1.2, opt=("identity_verification", "empathy"))
        )
    items.append(_c(details))

    if spec.hold:
        announced = spec.hold.startswith("announced")
        thanked = announced and not spec.hold.endswith("unthanked")
        kind = "music" if "music" in spec.hold else "silence"
        if announced:
            items.append(_a(rng.choice(HOLD_ASK), "hold_announced"))
            items.append(_c(HOLD_OK))
        items.append(Hold(spec.hold_s, kind, gap_before_s=0.6))
        items.append(
            _a(rng.choice(HOLD_THANKS) if thanked else NO_THANKS, *(("hold_thanked",) if thanked else ()), gap=0.6)
        )
    elif spec.dead_air_s:
        items.append(DeadAir(spec.dead_air_s))
        items.append(_a(AFTER_DEAD_AIR))

    if spec.long_monologue:
        for k, sentence in enumerate(LONG_EXPLANATION):
            # one explanation across three sentences: found if the detector finds it in any of them
            tags = ("span:solution_explained",) if k in (2, 3, 4) else ()
            items.append(_a(sentence, *tags, gap=0.5, opt=("solution_explained", "empathy")))
    elif spec.interruption == "customer":
        items.append(_a(INTERRUPTED_AGENT, "solution_explained"))
        items.append(
            _c(CUSTOMER_INTERRUPTS, "interruption", gap=0.0, overlap_s=1.2, opt=("complaint", "negative_emotion"))
        )
        items.append(_a(AGENT_AFTER_INTERRUPT, "solution_explained", opt=("empathy",)))
    else:
        items.append(_a(explanation, "solution_explained"))

    if spec.angry:
        items.append(_c(rng.choice(ANGRY_FOLLOWUP), "complaint", "negative_emotion", **angry_kw))
        if spec.escalation:
            items.append(
                _c(ESCALATION, "escalation_request", opt=("negative_emotion", "complaint"), gap=0.4, **angry_kw)
            )
        if spec.forbidden:
            items.append(_a(rng.choice(FORBIDDEN), "forbidden_phrase", opt=("solution_explained",)))
        else:
            items.append(_a("I completely understand, and I apologise.", "empathy"))
    else:
        items.append(_c(reaction, opt=("understanding_confirmed",)))
        if spec.forbidden:
            items.append(_a(rng.choice(FORBIDDEN), "forbidden_phrase", opt=("solution_explained",)))
            items.append(_c("Okay, fine."))
    if spec.understanding:
        items.append(_a(UNDERSTAND, "understanding_confirmed"))
        items.append(_c(UNDERSTAND_REPLY, opt=("understanding_confirmed",)))
    if spec.satisfaction:
        items.append(_a(SATISFACTION, "satisfaction_check", opt=("understanding_confirmed",)))
        items.append(_c(SATISFACTION_REPLY))
    if spec.further_help:
        items.append(_a(FURTHER_HELP, "further_help_offered"))
        items.append(_c(FURTHER_REPLY))
    if spec.closing:
        items.append(_a(CLOSING.format(company=spec.company), "closing", opt=("greeting",)))
    else:
        items.append(_c(NO_CLOSING_END, gap=0.5))
    return CallScript(items, voices=dict(spec.voices), lead_in_s=0.5, tail_s=0.8)


@dataclass(frozen=True)
class GeneratedCall:
    audio: Path
    labels_path: Path
    labels: CallLabels


def generate_calls(
    out_dir: str | Path, n: int = DEFAULT_N, seed: int = 0, *, only: list[str] | None = None, reuse: bool = True
) -> list[GeneratedCall]:
    """Render the first `n` labelled calls into `out_dir` (stereo 8 kHz µ-law WAV, agent left).

    With reuse, a call whose audio and labels already exist for the same spec and seed is not
    rendered again (rendering is the slow part).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    out: list[GeneratedCall] = []
    for k, spec in enumerate(call_specs(n, seed)):
        if only is not None and spec.stem not in only:
            continue
        audio = out_dir / f"{spec.stem}.wav"
        lp = labels_path(audio)
        labels = relabel_rendered(spec, build_script(spec, seed), audio, seed) if reuse else None
        if labels is not None:
            out.append(GeneratedCall(audio, lp, labels))
            continue
        out.append(GeneratedCall(audio, lp, _render_labelled(spec, audio, seed, seed * 100 + k)))
    return out


def _render_labelled(spec: CallSpec, audio: Path, seed: int, render_seed: int) -> CallLabels:
    """Render `spec`'s call as a stereo telephone recording (agent left, mu-law) and write its labels beside it."""
    truth = render_call(
        build_script(spec, seed),
        audio,
        sample_rate=8000,
        stereo=True,
        agent_channel=0,
        codec="pcm_mulaw",
        telephone=True,
        noise_floor_dbfs=-60.0,
        seed=render_seed,
        write_truth=True,
    )
    labels = labels_from_truth(spec, truth, audio.name, seed)
    labels.write(labels_path(audio))
    return labels


def long_hold_call(out_path: str | Path, hold_s: float = 60.0, seed: int = 0) -> tuple[Path, CallLabels]:
    """One call with `hold_s` of announced, thanked hold music (Whisper's hallucination test)."""
    spec = CallSpec(
        "long_hold",
        "address",
        "Acme Energy",
        "Tom",
        "standard",
        "announced_music",
        hold_s,
        None,
        None,
        False,
        False,
        False,
        False,
        False,
        True,
        False,
        True,
        {"agent": "joe_high", "customer": "joe"},
    )
    out_path = Path(out_path)
    return out_path, _render_labelled(spec, out_path, seed, seed)
