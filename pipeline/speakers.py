"""The speakers stage: turn ASR words into speaker turns (utterances).

Stereo call recordings put each party on its own channel, so channel = speaker and the two
parties never blur into one transcript line. Mono calls get a single speaker until diarization
assigns words to speaker turns.

Turns are cut from words, not Whisper segments: on a channel that is silent while the other
party talks, Whisper happily runs one segment across the silence, which would glue two of the
agent's turns (and the customer's reply between them) into one line.
"""

from __future__ import annotations

from collections.abc import Sequence

from callqa.pipeline.textmatch import is_cjk
from callqa.pipeline.types import Transcript, Utterance, Word


def speaker_for_channel(channel: int, n_channels: int) -> str:
    return f"ch{channel}" if n_channels > 1 else "spk0"


def _tight(ch: str) -> bool:
    # CJK characters and full-width punctuation are written without spaces between them
    return is_cjk(ch) or "\u3000" <= ch <= "\u303f" or "\uff00" <= ch <= "\uffef"


def join_with_offsets(words: Sequence[Word]) -> tuple[str, list[tuple[int, int] | None]]:
    """The words' text as an utterance shows it, with each word's [start, end) characters in it
    (None for a word with no text); redaction maps PII found in the text back to the words."""
    out = ""
    offs: list[tuple[int, int] | None] = []
    for w in words:
        t = w.text.strip()
        if not t:
            offs.append(None)
            continue
        if out and not (_tight(out[-1]) and _tight(t[0])):
            out += " "
        offs.append((len(out), len(out) + len(t)))
        out += t
    return out, offs


def join_words(words: Sequence[Word]) -> str:
    """Whisper words carry their own punctuation; Chinese characters are joined without spaces."""
    return join_with_offsets(words)[0]


def utterance_of(speaker: str, channel: int | None, words: list[Word], seq: int) -> Utterance:
    probs = [w.probability for w in words]
    return Utterance(
        seq=seq,
        speaker=speaker,
        start=round(words[0].start, 3),
        end=round(max(w.end for w in words), 3),
        text=join_words(words),
        words=list(words),
        channel=channel,
        asr_confidence=round(sum(probs) / len(probs), 4) if probs else None,
    )


def _gap_runs(words: list[Word], max_gap_s: float) -> list[list[Word]]:
    runs: list[list[Word]] = []
    cur: list[Word] = []
    for w in words:
        if cur and w.start - max(x.end for x in cur[-3:]) > max_gap_s:
            runs.append(cur)
            cur = []
        cur.append(w)
    if cur:
        runs.append(cur)
    return runs


def utterances_by_channel(
    transcript: Transcript, n_channels: int, max_gap_s: float = 1.5, min_reply_words: int = 3
) -> list[Utterance]:
    """Each channel's words split into turns, then ordered in time.

    A turn ends at a pause longer than max_gap_s, or at any pause in which the other party finished
    a reply of at least `min_reply_words` words: an agent who is interrupted, lets the customer finish
    and then goes on has taken two turns ("...the earliest is Monday" / "Hang on, I can't wait that
    long." / "I understand. I'll put you on the cancellation list."), and each turn is scored on
    its own. Shorter replies ("mm-hmm", "yeah") are backchannels and do not cut the turn.
    """
    by_channel: dict[int, list[Word]] = {}
    for w in transcript.words:
        by_channel.setdefault(w.channel, []).append(w)
    for words in by_channel.values():
        words.sort(key=lambda w: (w.start, w.end))
    gap_runs = {ch: _gap_runs(words, max_gap_s) for ch, words in by_channel.items()}
    # where each channel's replies (gap runs long enough not to be backchannels) end
    reply_ends = {
        ch: sorted(max(w.end for w in r) for r in rs if len(r) >= min_reply_words) for ch, rs in gap_runs.items()
    }

    runs: list[tuple[int, list[Word]]] = []
    for ch, ch_runs in gap_runs.items():
        others = sorted(t for o, ends in reply_ends.items() if o != ch for t in ends)
        for run in ch_runs:
            cur: list[Word] = []
            for w in run:
                if cur:
                    prev_end = max(x.end for x in cur[-3:])
                    # (against the word's end: Whisper stretches the first word after a pause back into it)
                    if any(prev_end < t < w.end for t in others):
                        runs.append((ch, cur))
                        cur = []
                cur.append(w)
            if cur:
                runs.append((ch, cur))
    runs.sort(key=lambda r: (r[1][0].start, r[0]))
    return [
        utterance_of(speaker_for_channel(ch, n_channels), ch if n_channels > 1 else None, words, i)
        for i, (ch, words) in enumerate(runs)
    ]
