"""Detectors: one module per family; each returns a list of callqa.pipeline.types.Event.

EVENT_TYPES and METRICS are the shared vocabulary between detectors and scorecards: a scorecard
that names an event or metric that no detector produces is rejected when it is loaded, instead of
silently failing every call. A detector that emits a new type adds it here, with what it means.
"""

EVENT_DESCRIPTIONS: dict[str, str] = {
    # script compliance (agent)
    "greeting": "opening greeting (data: has_name, has_company)",
    "identity_verification": "agent asks security/identity questions",
    "need_discovery": "agent asks what the customer needs",
    "understanding_confirmed": "agent checks the customer understood / agrees",
    "solution_explained": "agent explains the cause or the solution",
    "further_help_offered": "agent offers further help before closing",
    "satisfaction_check": "agent checks the customer is satisfied",
    "closing": "scripted closing",
    # language conduct
    "forbidden_phrase": "agent uses a forbidden phrase",
    "empathy": "agent expresses empathy or apology",
    "escalation_request": "customer asks for a manager / to complain formally",
    "complaint": "customer complaint marker",
    "transfer": "agent transfers the call to another team or tier (an escalation-funnel and effort cue)",
    "repeat_contact_mention": "customer says they have called before about this (an effort cue)",
    "customer_repeat": "customer restates what they said in an earlier turn (an effort cue; data: earlier, score)",
    # hold
    "hold_announced": "agent asks the customer to hold",
    "hold": "hold span measured from the audio (data: announced, thanked, kind)",
    "hold_thanked": "agent thanks the customer for holding",
    "hold_unannounced": "a hold with no announcement before it",
    # silence, overlap, pace
    "dead_air": "nobody speaks for at least N s outside holds",
    "overtalk": "both parties speak at once (data: who started, duration)",
    "interruption": "a party starts speaking while the other is mid-turn",
    "long_monologue": "agent speaks uninterrupted longer than N s",
    # emotion
    "negative_emotion": "utterance with negative emotion/sentiment",
}
EVENT_TYPES: frozenset[str] = frozenset(EVENT_DESCRIPTIONS)

# Call-level metrics (call_metrics table); scorecard threshold rules may name these.
METRIC_DESCRIPTIONS: dict[str, str] = {
    "duration_s": "recording length",
    "talk_s": "time anyone is speaking",
    "talk_s_agent": "agent talk time",
    "talk_s_customer": "customer talk time",
    "talk_ratio_agent": "agent share of attributed talk time (0..1)",
    "speech_share": "talk time / duration",
    "n_utterances": "number of speaker turns",
    "n_words": "number of words",
    "hold_count": "number of holds",
    "hold_total_s": "total hold time",
    "hold_max_s": "longest hold",
    "dead_air_count": "number of dead-air spans",
    "dead_air_total_s": "total dead air",
    "overtalk_total_s": "total overlapped speech",
    "interruptions_agent": "times the agent talked over the customer",
    "interruptions_customer": "times the customer talked over the agent",
    "rate_agent": "agent speaking rate (words/min; characters/min for Mandarin)",
    "rate_customer": "customer speaking rate",
    "longest_monologue_agent_s": "longest uninterrupted agent stretch",
    "customer_emotion_start": "customer sentiment over the first turns (-1..1)",
    "customer_emotion_end": "customer sentiment over the last turns (-1..1)",
    "negative_emotion_count": "customer turns with negative emotion",
}
METRICS: frozenset[str] = frozenset(METRIC_DESCRIPTIONS)
