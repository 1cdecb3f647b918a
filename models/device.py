"""Where faster-whisper runs: the configured device, or CUDA when CTranslate2 sees a GPU."""

from __future__ import annotations

from callqa.config.settings import ASRSettings


def choose_device(settings: ASRSettings) -> tuple[str, str]:
    """(device, compute_type): CUDA with float16 when CTranslate2 sees a GPU, else CPU int8."""
    device = settings.device
    if device == "auto":
        import ctranslate2

        try:
            device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
        except Exception:  # a CUDA driver that fails to initialise means no usable GPU
            device = "cpu"
    compute = settings.compute_type
    if compute in ("auto", "default", ""):
        compute = "float16" if device == "cuda" else "int8"
    return device, compute
