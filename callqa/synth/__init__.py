"""Synthesise two-party call recordings whose ground truth is known to the sample.

Used by `callqa demo` (which must run offline on a fresh machine from PyPI packages alone) and by
tests of later stages (decode, ASR, hold/dead-air/overtalk detectors, diarization, scoring).
Import from the submodules:

- `script`: what is said and when (Turn, Hold, DeadAir, CallScript);
- `tts`: voices and speech synthesis (piper, optional espeak-ng), memoised per utterance;
- `music`: synthetic hold music;
- `mix`: a script laid out on the timeline and rendered (mix_call, render_call);
- `audio`: encoding to a file with PyAV (write_audio);
- `truth`: the ground-truth record written beside each call (CallTruth, truth_path);
- `demo`: the eight demo calls (`data/demo_calls.yaml`, two Mandarin) and their writer (`python -m callqa.synth`);
- `tts_zh`: Mandarin voices (Kokoro-82M, the optional zh-tts extra), cached per sentence on disk.
"""
