"""Model adapters (ASR, diarization, emotion, embeddings, VAD) and the getters that find them offline."""
