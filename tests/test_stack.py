"""The pinned model stack installs as a working set: torchaudio's compiled ops run on the pinned torch."""

import numpy as np
import torch
import torchaudio


def test_torchaudio_compiled_extension_loads_with_the_pinned_torch():
    from torchaudio._extension import _IS_TORCHAUDIO_EXT_AVAILABLE

    assert _IS_TORCHAUDIO_EXT_AVAILABLE
    assert torch.__version__.startswith("2.14.1") and torchaudio.__version__.startswith("2.11.0")


def test_torchaudio_resamples_and_computes_lfcc():
    wave = torch.sin(torch.linspace(0, 440 * 2 * np.pi, 16000)).unsqueeze(0)
    assert torchaudio.functional.resample(wave, 16000, 22050).shape == (1, 22050)
    assert torchaudio.transforms.LFCC(sample_rate=16000)(wave).shape[1] == 40


def test_resemblyzer_encoder_loads_from_its_wheel_and_embeds():
    from resemblyzer import VoiceEncoder

    encoder = VoiceEncoder("cpu", verbose=False)
    embedding = encoder.embed_utterance(np.random.default_rng(0).normal(0, 0.1, 32000).astype(np.float32))
    assert embedding.shape == (256,) and abs(float(np.linalg.norm(embedding)) - 1) < 1e-3
