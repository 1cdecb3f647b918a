"""The speakers stage: turn ASR segments into speaker turns (utterances).

Stereo call recordings put each party on its own channel, so channel = speaker and the two
parties never blur into one transcript line. Mono calls get a single speaker until diarization
assigns words to speaker turns.
"""

from __future__ import annotations

from callqa.pipeline.types import Segment, Transcript, Utterance, Word


def speaker_for_channel(channel: int, n_channels: int) -> str:
    return f"ch{channel}" if n_channels > 1 else "spk0"


def _merge(speaker: str, channel: int | None, segs: list[Segment], seq: int) -> Utterance:
    words: list[Word] = [w for s in segs for w in s.words]
    text = " ".join(s.text.strip() for s in segs if s.text.strip())
    probs = [w.probability for w in words]
    start = min([s.start for s in segs] + [w.start for w in words])
    end = max([s.end for s in segs] + [w.end for w in words])
    return Utterance(
        seq=seq,
        speaker=speaker,
        start=round(start, 3),
        end=round(end, 3),
        text=text,
        words=words,
        channel=channel,
        asr_confidence=round(sum(probs) / len(probs), 4) if probs else None,
    )


def utterances_by_channel(transcript: Transcript, n_channels: int, max_gap_s: float = 1.5) -> list[Utterance]:
    """Consecutive segments of one speaker become one turn unless a pause longer than max_gap_s
    or the other party's speech separates them."""
    segs = sorted((s for s in transcript.segments if s.words or s.text.strip()), key=lambda s: (s.start, s.channel))
    out: list[Utterance] = []
    group: list[Segment] = []
    for seg in segs:
        if group:
            prev = group[-1]
            same = seg.channel == prev.channel
            if not same or seg.start - max(g.end for g in group) > max_gap_s:
                ch = group[0].channel
                out.append(_merge(speaker_for_channel(ch, n_channels), ch if n_channels > 1 else None, group, len(out)))
                group = []
        group.append(seg)
    if group:
        ch = group[0].channel
        out.append(_merge(speaker_for_channel(ch, n_channels), ch if n_channels > 1 else None, group, len(out)))
    return out
