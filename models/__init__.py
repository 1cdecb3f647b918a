"""Model adapters (ASR, diarization, emotion, embeddings, VAD) and the resolver that finds them offline."""
