"""Pace of the conversation: speaking rate, the agent's longest monologue, interruptions.

- Speaking rate is words per minute of the party's own speaking time (characters per minute for
  Mandarin, which has no word spaces and whose Whisper "words" are arbitrary character groups).
- A monologue is the agent holding the floor: agent turns joined across pauses shorter than
  `monologue_max_pause_s` unless the customer took a real turn in between (a backchannel such as
  "mm-hmm" does not take the floor).
- An interruption is a party starting a real turn while the other is mid-turn and both then talk
  for at least `interruption_min_overlap_s`. On a stereo call the overlap is checked in the audio
  of both channels (a Whisper word end can drift into the silence after it); on a mono call the
  word times are all there is, plus the diarizer's turns: Whisper often drops the words of the party
  being talked over (zh_call02: the customer's "一条短信说" under the agent's "不好意思打断一下" left no
  word overlap at all, while the diarizer's turns overlapped 0.6 s), so on a diarized call a real turn
  that starts inside a diarized overlap its speaker began counts with that overlap. The overlapped
  stretch itself is the diarization stage's `overtalk`.
"""

from __future__ import annotations

from callqa.config.settings import PaceSettings
from callqa.pipeline.evidence import quote
from callqa.pipeline.linescan import both_active
from callqa.pipeline.textmatch import is_cjk
from callqa.pipeline.types import HOP_S, Event, LineScan, Overtalk, Utterance, new_event_id

DETECTOR_VERSION = "pace/1"
_BRIDGE_S = 0.2
_CONTINUE_S = 0.3  # a turn's next words this soon after it are the same turn cut in two, not a new one
# a turn whose first word lies in a diarized overlap its speaker began (or this soon before it) started that
# overlap: Whisper's first word can come late when the overlapped words went to the other party (zh_call02:
# the agent's turn began 27.79 s in the diarizer, its first own word at 28.34 s, the overlap ran to 28.38 s)
_DIARIZED_START_S = 0.5


def _is_zh(language: str | None) -> bool:
    return (language or "").lower().split("-")[0] in ("zh", "yue", "cmn")


def speech_units(u: Utterance, language: str | None) -> int:
    if _is_zh(language):
        return sum(1 for ch in u.text if is_cjk(ch))
    return len(u.words)


def is_backchannel(u: Utterance, settings: PaceSettings) -> bool:
    return len(u.words) <= settings.backchannel_max_words and (u.end - u.start) <= settings.backchannel_max_s


def rate_metrics(utterances: list[Utterance], language: str | None) -> dict[str, float | None]:
    """Speaking rate per role: units per minute of that role's own turn time."""
    out: dict[str, float | None] = {}
    for role in ("agent", "customer"):
        turns = [u for u in utterances if u.role == role and u.words]
        secs = sum(u.end - u.start for u in turns)
        units = sum(speech_units(u, language) for u in turns)
        # under ~5 s of speech a rate says more about one sentence than about the speaker
        out[f"rate_{role}"] = round(units / (secs / 60.0), 1) if secs >= 5.0 and units else None
    return out


def _monologues(utterances: list[Utterance], settings: PaceSettings) -> list[tuple[float, float, list[Utterance]]]:
    runs: list[tuple[float, float, list[Utterance]]] = []
    cur: list[Utterance] = []
    floor_taken = False
    for u in sorted((u for u in utterances if u.words), key=lambda u: u.start):
        if u.role == "agent":
            if cur and (u.start - max(x.end for x in cur) > settings.monologue_max_pause_s or floor_taken):
                runs.append((cur[0].start, max(x.end for x in cur), cur))
                cur = []
            cur.append(u)
            floor_taken = False
        elif cur and not is_backchannel(u, settings):
            floor_taken = True
    if cur:
        runs.append((cur[0].start, max(x.end for x in cur), cur))
    return runs


def detect_monologues(
    call_id: str, utterances: list[Utterance], settings: PaceSettings
) -> tuple[list[Event], dict[str, float | None]]:
    if not any(u.role == "agent" for u in utterances):
        return [], {"longest_monologue_agent_s": None}
    runs = _monologues(utterances, settings)
    longest = max((e - s for s, e, _ in runs), default=0.0)
    events: list[Event] = []
    for n, (s, e, turns) in enumerate(r for r in runs if r[1] - r[0] >= settings.long_monologue_s):
        words = [w.text for u in turns for w in u.words]
        evidence = f'agent spoke for {e - s:.1f} s without the customer taking a turn: "{quote(words, 12)}"'
        spk = turns[0].speaker
        events.append(
            Event(
                "long_monologue",
                s,
                e,
                spk,
                "agent",
                evidence,
                0.9,
                DETECTOR_VERSION,
                {"duration_s": round(e - s, 2), "n_words": len(words), "utt_seqs": [u.seq for u in turns]},
                new_event_id(call_id, "long_monologue", s, e, spk, n),
            )
        )
    return events, {"longest_monologue_agent_s": round(longest, 2)}


def _both_active_s(scan: LineScan | None, ch_a: int | None, ch_b: int | None, t0: float, t1: float) -> float | None:
    """Seconds in [t0, t1] where channels a and b are both active; None when it cannot be measured."""
    if (
        scan is None
        or ch_a is None
        or ch_b is None
        or ch_a == ch_b
        or max(ch_a, ch_b) >= scan.active.shape[0]
        or t1 <= t0
    ):
        return None
    a, b = scan.frame(t0), scan.frame(t1)
    return float(both_active(scan.active, ch_a, ch_b, a, b, _BRIDGE_S).sum()) * HOP_S


def _continuation(turns: list[Utterance], k: int) -> Utterance | None:
    """The same speaker's next turn when it follows turns[k] without a pause, else None.

    Turns are cut where the other party's reply ends, so an interruption that starts before the
    interrupted party stops comes out as a short head and the rest: zh_call16's "等一下，我等不了那么久"
    over the agent's last second became "一下我" (2 words, 0.9 s: a backchannel by size) and
    "等不了那么久" (starting after the agent had stopped), and the interruption was missed."""
    x = turns[k]
    for y in turns[k + 1 :]:
        if y.start - x.end > _CONTINUE_S:
            return None
        if y.speaker == x.speaker:
            return y
    return None


def _diarized_overlap(
    overlaps: list[Overtalk], x: Utterance, turns: list[Utterance], settings: PaceSettings
) -> tuple[Overtalk, Utterance] | None:
    """The diarizer's overlap that turn x's speaker began as x started, and the turn it talked over."""
    xs = x.words[0].start
    for o in overlaps:
        if o.started_by != x.speaker or not o.start - _DIARIZED_START_S <= xs <= o.end:
            continue
        if o.duration < settings.interruption_min_overlap_s:
            continue
        before = [y for y in turns if y.speaker == o.talked_over and y.words and y.words[0].start < xs - 0.2]
        if before:
            return o, before[-1]
    return None


def _interruption(
    call_id: str, x: Utterance, nxt: Utterance | None, y: Utterance, xs: float, overlap: float, confidence: float
) -> Event:
    cut = [w.text for w in y.words if w.start < xs]
    said = [w.text for w in x.words] + ([w.text for w in nxt.words] if nxt is not None else [])
    evidence = (
        f'{x.role} started "{quote(said, 10)}" at {xs:.1f} s while {y.role} was saying '
        f'"{quote(cut, 10, head=False)}" ({overlap:.1f} s of overlap)'
    )
    end = round(xs + max(overlap, 0.01), 3)
    return Event(
        "interruption",
        round(xs, 3),
        end,
        x.speaker,
        x.role,
        evidence,
        confidence,
        DETECTOR_VERSION,
        {
            "interrupted_speaker": y.speaker,
            "interrupted_role": y.role,
            "overlap_s": round(overlap, 2),
            "utt_seq": x.seq,
            "interrupted_utt_seq": y.seq,
        },
        new_event_id(call_id, "interruption", xs, end, x.speaker),
    )


def detect_interruptions(
    call_id: str,
    utterances: list[Utterance],
    scan: LineScan | None,
    settings: PaceSettings,
    diarized_overlaps: list[Overtalk] | None = None,
) -> tuple[list[Event], dict[str, float | None]]:
    """`interruption` events (speaker = who started talking over whom) and counts per role.

    `diarized_overlaps`: on a diarized mono call, the overlaps of the diarizer's turns (find_overtalk)."""
    turns = sorted((u for u in utterances if u.words), key=lambda u: u.start)
    events: list[Event] = []
    counts = {"agent": 0, "customer": 0}
    for k, x in enumerate(turns):
        nxt = _continuation(turns, k)
        if is_backchannel(x, settings) and nxt is None:
            continue
        xs = x.words[0].start
        found = None
        for y in turns:
            if y.speaker == x.speaker or y.words[0].start >= xs - 0.2:
                continue
            # y was talking when x began (a word running up to x's start) and kept talking after it
            was_talking = any(w.start < xs and w.end > xs - 0.5 for w in y.words)
            after = [w for w in y.words if w.end > xs]
            if not was_talking or not after:
                continue
            y_end = max(w.end for w in after)
            word_overlap = min(y_end, x.end) - xs
            audio_overlap = _both_active_s(scan, x.channel, y.channel, xs, min(y_end, x.end) + 0.2)
            overlap = audio_overlap if audio_overlap is not None else word_overlap
            if overlap < settings.interruption_min_overlap_s:
                continue
            found = _interruption(call_id, x, nxt, y, xs, overlap, 0.85 if audio_overlap is not None else 0.7)
            break
        if found is None and diarized_overlaps:
            hit = _diarized_overlap(diarized_overlaps, x, turns, settings)
            if hit is not None:
                o, y = hit
                found = _interruption(call_id, x, nxt, y, xs, o.duration, 0.6)
        if found is not None:
            events.append(found)
            if x.role in counts:
                counts[x.role] += 1
    known = any(u.role in counts for u in utterances)
    metrics: dict[str, float | None] = {
        "interruptions_agent": float(counts["agent"]) if known else None,
        "interruptions_customer": float(counts["customer"]) if known else None,
    }
    return events, metrics


def detect_pace(
    call_id: str,
    utterances: list[Utterance],
    scan: LineScan | None,
    language: str | None,
    settings: PaceSettings | None = None,
    diarized_overlaps: list[Overtalk] | None = None,
) -> tuple[list[Event], dict[str, float | None]]:
    """Monologue and interruption events plus rate, monologue and interruption metrics."""
    settings = settings or PaceSettings()
    metrics = rate_metrics(utterances, language)
    mono_events, mono_metrics = detect_monologues(call_id, utterances, settings)
    int_events, int_metrics = detect_interruptions(call_id, utterances, scan, settings, diarized_overlaps)
    metrics.update(mono_metrics)
    metrics.update(int_metrics)
    return mono_events + int_events, metrics
