"""Labelled Mandarin test calls (`callqa eval detectors --lang zh`, tests), spoken by Kokoro-82M.

The Mandarin counterpart of `callqa.callgen`: each call is assembled from the steps of a Chinese
contact centre's script (标准开场白, 核实身份, an optional 请稍等 hold with music or a silent line,
dead air, overtalk, 解决方案, 复述确认, 禁语, 投诉 and escalation, 满意度邀评, 结束语), every
step's wording drawn per call from the pools in `callqa.synth.script_zh`, rendered with the two
Mandarin voices of the optional zh-tts extra (`zh_female`, `zh_male`) as 8 kHz telephone audio
(stereo µ-law WAV, stereo MP3 or mono µ-law WAV, by call index), with a label file beside each call
in the format of `callqa.synth.labels` (the same label conventions as the English set).

Which steps a call gets is a fixed pattern over the call index, so any prefix of four calls has a
music hold, a silent hold, dead air, both kinds of interruption, 禁语, a complaint with escalation,
a mono and an MP3 call; the same seed gives the same scripts.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from callqa.synth import script_zh as zh
from callqa.synth.labels import CallLabels, labels_from_truth, labels_path, relabel_rendered
from callqa.synth.mix import render_call
from callqa.synth.script import CallScript, DeadAir, Hold, tagged_turn

DEFAULT_N_ZH = 20
HOLD_PATTERN = ["announced_music", None, "announced_silence", "unannounced_music", None, "announced_music_unthanked"]
GREETING_PATTERN = ["standard", "standard", "partial", "standard", "absent", "standard", "standard"]
# (suffix, codec, stereo)
FORMATS: dict[str, tuple[str, str, bool]] = {
    "stereo": (".wav", "pcm_mulaw", True),
    "stereo_mp3": (".mp3", "libmp3lame", True),
    "mono": (".wav", "pcm_mulaw", False),
}
FORMAT_PATTERN = ["stereo", "stereo_mp3", "mono", "stereo", "stereo", "mono", "stereo", "stereo_mp3"]


@dataclass
class CallSpecZh:
    stem: str
    scenario: str
    company: str
    surname: str
    agent_id: str
    greeting: str  # standard | partial | absent
    hold: str | None
    hold_s: float
    dead_air_s: float | None
    interruption: str | None  # who interrupts: customer | agent
    forbidden: bool
    angry: bool
    escalation: bool
    restate: bool
    further_help: bool
    satisfaction: bool
    closing: bool
    format: str  # a key of FORMATS
    voices: dict[str, str]


def call_specs_zh(n: int = DEFAULT_N_ZH, seed: int = 0) -> list[CallSpecZh]:
    """The first `n` Mandarin call specifications for `seed` (deterministic)."""
    specs = []
    for i in range(n):
        rng = random.Random(f"{seed}:zh-spec:{i}")
        hold = HOLD_PATTERN[i % len(HOLD_PATTERN)]
        if hold is None:
            hold_s = 0.0
        elif "music" in hold:
            hold_s = round(rng.uniform(6.0, 12.0), 1)
        else:  # announced silence: past the detector's 10 s for an announced silent line
            hold_s = round(rng.uniform(11.5, 13.0), 1)
        company, surname, agent_id = zh.COMPANIES_ZH[i % len(zh.COMPANIES_ZH)]
        angry = i % 5 in (2, 4)
        specs.append(
            CallSpecZh(
                stem=f"zh_call{i:02d}",
                scenario=list(zh.SCENARIOS_ZH)[i % len(zh.SCENARIOS_ZH)],
                company=company,
                surname=surname,
                agent_id=agent_id,
                greeting=GREETING_PATTERN[i % len(GREETING_PATTERN)],
                hold=hold,
                hold_s=hold_s,
                dead_air_s=round(rng.uniform(6.0, 9.0), 1) if hold is None and i % 3 == 1 else None,
                interruption={1: "customer", 2: "agent"}.get(i % 5),
                forbidden=i % 4 == 1 or i % 5 == 4,
                angry=angry,
                escalation=angry and i % 5 == 2,
                restate=i % 2 == 0,
                further_help=i % 4 != 3,
                satisfaction=i % 3 != 1,
                closing=i % 6 != 3,
                format=FORMAT_PATTERN[i % len(FORMAT_PATTERN)],
                voices={"agent": "zh_female", "customer": "zh_male"}
                if i % 2 == 0
                else {"agent": "zh_male", "customer": "zh_female"},
            )
        )
    return specs


_a = partial(tagged_turn, "agent")
_c = partial(tagged_turn, "customer")


def build_script_zh(spec: CallSpecZh, seed: int = 0) -> CallScript:
    """The call's turns, holds and silences, each turn tagged with the events it should produce."""
    rng = random.Random(f"{seed}:zh:{spec.stem}")
    sc = zh.SCENARIOS_ZH[spec.scenario]
    angry_kw: dict[str, Any] = {"rate": 1.1, "gain_db": 3.0}
    items: list[Any] = []
    g = rng.choice(zh.GREETINGS_ZH[spec.greeting]).format(company=spec.company, id=spec.agent_id, surname=spec.surname)
    items.append(_a(g, gap=0.4) if spec.greeting == "absent" else _a(g, "greeting", "need_discovery", gap=0.4))
    if spec.angry:
        # "我都打了三次电话了" is also a repeat contact: not what these calls measure, never wrong there
        need = rng.choice(zh.ANGRY_NEED_ZH)
        items.append(_c(need, "complaint", "negative_emotion", opt=("repeat_contact_mention",), **angry_kw))
        items.append(_a(rng.choice(zh.EMPATHY_IDENTITY_ZH), "empathy", "identity_verification"))
    else:
        items.append(_c(rng.choice(sc["need"]), opt=("complaint", "negative_emotion")))
        items.append(_a(rng.choice(zh.IDENTITY_ZH), "identity_verification"))
    if spec.interruption == "agent":
        items.append(_c(rng.choice(zh.CUSTOMER_RAMBLES_ZH), opt=("complaint", "negative_emotion")))
        items.append(
            _a(
                rng.choice(zh.AGENT_INTERRUPTS_ZH),
                "interruption",
                gap=0.0,
                overlap_s=1.2,
                opt=("identity_verification", "empathy"),
            )
        )
    items.append(_c(rng.choice(sc["details"])))

    if spec.hold:
        announced = spec.hold.startswith("announced")
        thanked = announced and not spec.hold.endswith("unthanked")
        if announced:
            items.append(_a(rng.choice(zh.HOLD_ASK_ZH), "hold_announced"))
            items.append(_c(rng.choice(zh.HOLD_OK_ZH)))
        items.append(Hold(spec.hold_s, "music" if "music" in spec.hold else "silence", gap_before_s=0.6))
        if thanked:
            items.append(_a(rng.choice(zh.HOLD_THANKS_ZH), "hold_thanked"))
        else:
            items.append(_a(rng.choice(zh.NO_THANKS_ZH)))
    elif spec.dead_air_s:
        items.append(DeadAir(spec.dead_air_s))
        items.append(_a(rng.choice(zh.AFTER_DEAD_AIR_ZH)))

    if spec.interruption == "customer":
        items.append(_a(rng.choice(zh.INTERRUPTED_AGENT_ZH), "solution_explained"))
        items.append(
            _c(
                rng.choice(zh.CUSTOMER_INTERRUPTS_ZH),
                "interruption",
                gap=0.0,
                overlap_s=1.2,
                opt=("complaint", "negative_emotion"),
            )
        )
        items.append(_a(rng.choice(zh.AGENT_AFTER_INTERRUPT_ZH), "solution_explained", opt=("empathy",)))
    else:
        items.append(_a(rng.choice(sc["solution"]), "solution_explained"))

    if spec.angry:
        items.append(_c(rng.choice(zh.ANGRY_FOLLOWUP_ZH), "complaint", "negative_emotion", **angry_kw))
        if spec.escalation:
            items.append(
                _c(
                    rng.choice(zh.ESCALATION_ZH),
                    "escalation_request",
                    opt=("complaint", "negative_emotion"),
                    gap=0.4,
                    **angry_kw,
                )
            )
    else:
        items.append(_c(rng.choice(sc["reaction"])))
    if spec.forbidden:
        items.append(_a(rng.choice(zh.FORBIDDEN_ZH), "forbidden_phrase"))
        items.append(_c(rng.choice(zh.AFTER_FORBIDDEN_ZH), opt=("complaint", "negative_emotion")))
    elif spec.angry:
        items.append(_a(rng.choice(zh.EMPATHY_ZH), "empathy"))
    if spec.restate:
        items.append(_a(rng.choice(sc["restate"]), "understanding_confirmed", opt=("solution_explained",)))
        items.append(_c("对，是这样。", opt=("understanding_confirmed",)))
    if spec.satisfaction:
        items.append(_a(rng.choice(zh.SATISFACTION_ZH), "satisfaction_check"))
        items.append(_c(rng.choice(zh.SATISFACTION_REPLY_ZH)))
    if spec.further_help:
        items.append(_a(rng.choice(zh.FURTHER_HELP_ZH), "further_help_offered"))
        items.append(_c(rng.choice(zh.FURTHER_REPLY_ZH)))
    if spec.closing:
        items.append(_a(rng.choice(zh.CLOSING_ZH), "closing", opt=("greeting",)))
    else:
        items.append(_c(rng.choice(zh.NO_CLOSING_END_ZH), gap=0.5))
    return CallScript(items, voices=dict(spec.voices), language="zh", lead_in_s=0.5, tail_s=0.8)


@dataclass(frozen=True)
class GeneratedCallZh:
    audio: Path
    labels_path: Path
    labels: CallLabels
    spec: CallSpecZh


def audio_name(spec: CallSpecZh) -> str:
    return spec.stem + FORMATS[spec.format][0]


def generate_calls_zh(
    out_dir: str | Path, n: int = DEFAULT_N_ZH, seed: int = 0, *, reuse: bool = True
) -> list[GeneratedCallZh]:
    """Render the first `n` labelled Mandarin calls into `out_dir` (needs the zh-tts extra).

    With reuse, a call whose audio, truth and labels exist for the same spec and seed is not
    rendered again; its labels are rebuilt from the truth with the script's current tags.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    out = []
    for k, spec in enumerate(call_specs_zh(n, seed)):
        audio = out_dir / audio_name(spec)
        lp = labels_path(audio)
        labels = relabel_rendered(spec, build_script_zh(spec, seed), audio, seed) if reuse else None
        if labels is None:
            suffix, codec, stereo = FORMATS[spec.format]
            truth = render_call(
                build_script_zh(spec, seed),
                audio,
                sample_rate=8000,
                stereo=stereo,
                agent_channel=0,
                codec=codec,
                telephone=True,
                noise_floor_dbfs=-60.0,
                seed=seed * 100 + k,
                write_truth=True,
            )
            labels = labels_from_truth(spec, truth, audio.name, seed)
            labels.write(lp)
        out.append(GeneratedCallZh(audio, lp, labels, spec))
    return out
