"""Redaction through the real flow: a synthesised call in which the customer reads out a card number
and a phone number goes through TTS -> ASR -> detectors -> redaction -> DuckDB; afterwards no raw
PII string is left in any text column of any table, the redacted audio copy beeps over the spoken
digits, the nightly run publishes its Prefect artifact and builds the report from the redacted data."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import numpy as np
import pytest
import yaml
from scipy.io import wavfile

from callqa.flows.nightly import run_nightly
from callqa.synth.mix import render_call
from callqa.synth.script import CallScript, Turn

pytestmark = pytest.mark.slow

CARD = "4539148803436467"  # Luhn-valid
PHONE = "07700900123"
EN = {
    "zero": "0",
    "oh": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
}


def _spell(d: str) -> str:
    words = ["oh" if c == "0" else list(EN)[int(c) + 1] if c != "0" else "zero" for c in d]
    return ", ".join(" ".join(words[i : i + 4]) for i in range(0, len(words), 4))


@pytest.fixture(scope="module")
def run(tmp_path_factory, asr_model_settings):
    root = tmp_path_factory.mktemp("redact_flow")
    calls = root / "calls"
    calls.mkdir()
    script = CallScript(
        [
            Turn(
                "agent",
                "Thank you for calling Acme Energy, my name is Sarah. Can I take the card number please?",
                gap_before_s=0.4,
            ),
            Turn("customer", f"Yes, it is {_spell(CARD)}."),
            Turn("agent", "Thank you. And a phone number we can reach you on?"),
            Turn("customer", f"My mobile is {_spell(PHONE)}."),
            Turn("agent", "Lovely, that is all updated for you."),
        ],
        voices={"agent": "joe_high", "customer": "joe"},
    )
    truth = render_call(script, calls / "payment.wav", sample_rate=8000, stereo=True, telephone=True, write_truth=False)
    cfg = root / "settings.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "models": {"cache_dir": str(asr_model_settings.cache_dir)},
                "redaction": {"audio": "beep", "audio_dir": str(root / "redacted")},
                "report": {"out_dir": str(root / "report")},
            }
        )
    )
    db = root / "qa.duckdb"
    summary = run_nightly(calls, db, cfg, workers=1)
    return {"root": root, "db": db, "summary": summary, "truth": truth}


def _normalise(text: str) -> str:
    """Digits as the test reads them, independently of callqa: digit words to digits, separators out."""
    t = text.lower()
    t = re.sub(r"\b(" + "|".join(EN) + r")\b", lambda m: EN[m.group(1)], t)
    return re.sub(r"[\s,.\-()/]+", "", t)


def test_no_raw_pii_in_any_text_column_of_any_table(run):
    assert run["summary"]["processed"] == 1, run["summary"]
    con = duckdb.connect(str(run["db"]), read_only=True)
    try:
        cols = con.execute("""SELECT table_name, column_name FROM information_schema.columns c
                              JOIN information_schema.tables t USING (table_catalog, table_schema, table_name)
                              WHERE t.table_type = 'BASE TABLE' AND t.table_schema = 'main'
                                AND (data_type LIKE 'VARCHAR%' OR data_type LIKE 'JSON%'
                                     OR data_type LIKE '%[]')""").fetchall()
        assert len(cols) > 30
        scanned = 0
        for table, col in cols:
            for (value,) in con.execute(
                f'SELECT CAST("{col}" AS VARCHAR) FROM "{table}" WHERE "{col}" IS NOT NULL'
            ).fetchall():
                scanned += 1
                flat = _normalise(value)
                for secret in (CARD, PHONE, CARD[:8], CARD[8:], PHONE[-7:]):
                    assert secret not in flat, f"{table}.{col} leaks {secret}: {value[:200]!r}"
        assert scanned > 50
        text = " ".join(r[0] for r in con.execute("SELECT text FROM utterances ORDER BY seq").fetchall())
        words = [r[0].strip() for r in con.execute("SELECT word FROM words").fetchall()]
    finally:
        con.close()
    # the PII was heard and replaced, not merely misheard: its type tokens are there
    assert re.search(r"\[(CARD|DIGITS)\]", text) and "[PHONE]" in text, text
    assert any(w in ("[CARD]", "[DIGITS]") for w in words) and "[PHONE]" in words
    # ordinary speech is left as it was (base hears the brand as "Acne"/"Agni" on this voice)
    assert "Thank you for calling" in text and "My name is Sarah" in text


def test_redacted_audio_copy_beeps_where_the_digits_were_spoken(run):
    con = duckdb.connect(str(run["db"]), read_only=True)
    try:
        meta = con.execute("SELECT metadata FROM calls").fetchone()[0]
        spans = con.execute("""SELECT min(w.start_s), max(w.end_s) FROM words w
                               WHERE trim(w.word) IN ('[CARD]', '[DIGITS]', '[PHONE]')
                               GROUP BY w.utt_seq ORDER BY 1""").fetchall()
    finally:
        con.close()
    import json

    meta = json.loads(meta)
    assert meta["redaction"]["spans"] >= 2
    sr, data = wavfile.read(meta["redacted_audio"])
    assert sr == 16000 and data.ndim == 2
    for a, b in spans:
        seg = data[int((a + 0.2) * sr) : int((b - 0.2) * sr), 1].astype(np.float64)  # the customer's channel
        spec = np.abs(np.fft.rfft(seg))
        peak = np.fft.rfftfreq(seg.size, 1 / sr)[np.argmax(spec)]
        assert abs(peak - 1000) < 5, (a, b, peak)
        # nearly all the energy is the tone: the voice under it is gone
        band = (np.fft.rfftfreq(seg.size, 1 / sr) > 980) & (np.fft.rfftfreq(seg.size, 1 / sr) < 1020)
        assert spec[band].__pow__(2).sum() / spec.__pow__(2).sum() > 0.95


def test_run_artifact_and_report_are_published(run):
    from prefect.client.orchestration import get_client

    report = run["summary"]["report"]
    assert report and Path(report).is_file()
    assert "calls processed" in Path(report).read_text(encoding="utf-8")
    assert "payment.wav" in (Path(report).parent / "calls.html").read_text(encoding="utf-8")
    page = next((Path(report).parent / "calls").glob("*.html")).read_text(encoding="utf-8")
    assert "[PHONE]" in page and "redacted copy" in page and ".redacted.wav" in page
    with get_client(sync_client=True) as client:
        # the REST filter route itself: prefect 3.8's read_artifacts() sends nulls its own server rejects
        resp = client.request(
            "POST",
            "/artifacts/filter",
            json={
                "artifacts": {"key": {"any_": ["callqa-nightly-run"]}},
                "limit": 50,
                "offset": 0,
                "sort": "CREATED_DESC",
            },
        )
    arts = resp.json()
    mine = [a for a in arts if run["summary"]["run_id"] in (a["data"] or "")]
    assert mine, [a["description"] for a in arts]
    md = mine[0]["data"]
    assert "| 1 | 0 | 1 | 0 |" in md and report in md
