"""Build the labelled text-call JSON files from the hand-written source transcripts.

    python tests/data/build_text_calls.py            # rewrites tests/data/{zh_calls,en_calls_text}/*.json

Each `source.txt` holds dialogues written as ASR would output them, with the events each turn
must produce in braces. Word timings follow a steady speaking rate (Mandarin ~4.5 characters/s,
English ~3 words/s) and Whisper's habits (punctuation glued to the word before it; Mandarin
"words" of one or two characters), so evidence spans can be checked against times.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SETS = {"zh": HERE / "zh_calls", "en": HERE / "en_calls_text"}
ONCE = {"greeting", "closing"}  # one event per call: the tagged turns are alternatives
SEC_PER_UNIT = {"zh": 0.22, "en": 0.32}
GAP_S = 0.6
_TAG = re.compile(r"\{([^}]*)\}\s*$")
_CJK = re.compile(r"[\u3400-\u9fff]")


def _zh_words(text: str) -> list[str]:
    """Mandarin split the way Whisper emits it: 1-2 character pieces, digits/Latin runs whole."""
    words: list[str] = []
    for chunk in text.split():
        buf = ""
        i = 0
        while i < len(chunk):
            ch = chunk[i]
            if _CJK.match(ch):
                if buf and not _CJK.match(buf[-1]):
                    words.append(buf)
                    buf = ""
                buf += ch
                if len(buf) == 2:
                    words.append(buf)
                    buf = ""
            elif ch.isalnum():
                if buf and _CJK.match(buf[-1]):
                    words.append(buf)
                    buf = ""
                buf += ch
            else:  # punctuation sticks to the word before it
                if buf:
                    buf += ch
                    words.append(buf)
                    buf = ""
                elif words:
                    words[-1] += ch
            i += 1
        if buf:
            words.append(buf)
    return words


def _units(word: str, lang: str) -> int:
    if lang == "zh":
        return max(1, sum(1 for c in word if c.isalnum()))
    return 1


def _parse_tags(raw: str) -> list[tuple[str, dict]]:
    out = []
    for m in re.finditer(r"(\w+)(?:\(([^)]*)\))?", raw):
        typ, args = m.group(1), m.group(2)
        data = {}
        if typ == "greeting":
            flags = {a.strip() for a in (args or "").split(",") if a.strip()}
            data = {"has_name": "name" in flags, "has_company": "company" in flags}
        out.append((typ, data))
    return out


def parse_source(path: Path, lang: str) -> list[dict]:
    calls: list[dict] = []
    call: dict | None = None
    t = 0.0
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("==="):
            cid, domain, company, desc = [p.strip() for p in line[3:].split("|")]
            call = {
                "call_id": cid,
                "language": lang,
                "domain": domain,
                "company": company,
                "description": desc,
                "utterances": [],
                "labels": [],
            }
            calls.append(call)
            t = 0.5
            continue
        assert call is not None, f"{path}: a turn before the first === header"
        if line.startswith("HOLD"):
            t += float(line.split()[1])
            continue
        who, _, rest = line.partition(":")
        role = {"A": "agent", "C": "customer"}[who.strip()]
        tags = []
        m = _TAG.search(rest)
        if m:
            tags = _parse_tags(m.group(1))
            rest = rest[: m.start()]
        text = rest.strip()
        raw_words = _zh_words(text) if lang == "zh" else text.split()
        if call["utterances"]:
            t += GAP_S
        words = []
        for w in raw_words:
            d = _units(w, lang) * SEC_PER_UNIT[lang]
            words.append([round(t, 3), round(t + d, 3), w])
            t += d
        seq = len(call["utterances"])
        call["utterances"].append(
            {
                "seq": seq,
                "speaker": "ch0" if role == "agent" else "ch1",
                "role": role,
                "start": words[0][0],
                "end": words[-1][1],
                "text": text,
                "words": words,
            }
        )
        for typ, data in tags:
            label = next((lb for lb in call["labels"] if lb["type"] == typ and typ in ONCE), None)
            if label is None:
                call["labels"].append({"type": typ, "role": role, "utts": [seq], "data": data})
            else:
                label["utts"].append(seq)
    return calls


def _dumps(call: dict) -> str:
    """Readable and small: one line per utterance and per label."""
    one = lambda x: json.dumps(x, ensure_ascii=False)  # noqa: E731
    head = ",\n".join(f" {one(k)}: {one(v)}" for k, v in call.items() if k not in ("utterances", "labels"))
    utts = ",\n".join(f"  {one(u)}" for u in call["utterances"])
    labels = ",\n".join(f"  {one(lb)}" for lb in call["labels"])
    return f'{{\n{head},\n "utterances": [\n{utts}\n ],\n "labels": [\n{labels}\n ]\n}}\n'


def main(argv: list[str]) -> int:
    for lang, d in SETS.items():
        calls = parse_source(d / "source.txt", lang)
        for old in d.glob("*.json"):
            old.unlink()
        for c in calls:
            (d / f"{c['call_id']}.json").write_text(_dumps(c), encoding="utf-8")
        n_labels = sum(len(c["labels"]) for c in calls)
        print(f"{lang}: {len(calls)} calls, {n_labels} labels -> {d}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
