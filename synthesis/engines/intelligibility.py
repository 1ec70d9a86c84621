"""The intelligibility guard of a fitted voice conversion: the fit maximizes speaker similarity only, and the
part of the conversion that buys the most similarity (envelope detail from the nearest target frames,
``VoiceConversion.knn_mix``) can also swap one speech sound for another. So after the fit, fixed guard sentences
as the base voice renders them are converted with and without that detail, and the offline recognizer
transcribes both; the kNN mix is backed off until the voice reads as well as without the detail, within a margin.

Framework-free: the recognizer comes in as a function (16 kHz samples -> text).

Measured (bench/clone_quality.py, 5 test-other speakers; docs/engines.md): without the guard WER 13.3% (base
voice 2.5%, one speaker at 31%) at normalized similarity 0.35; with it WER 3.6% at 0.23; with the conversion's
reach as well, 4.5% at 0.28. The quality engine checks its conversion the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from synthesis.engines.conversion import FIT_SAMPLE_RATE, VoiceConversion, resample
from voicegate.audio.statement import word_error_rate

logger = logging.getLogger(__name__)

Transcriber = Callable[[np.ndarray], str]  # 16 kHz (n,) float32 -> recognized text


def recognizer_in(model_dir: Path) -> Transcriber:
    """The offline recognizer (Whisper base, hash-checked weights assembled in ``model_dir``) as a function."""
    from voicegate.audio import asr

    config = asr.AsrConfig(cache_root=Path(model_dir))
    return lambda samples_16k: asr.transcribe(samples_16k, config).text


# Everyday words and a few longer ones, none of them in the clone-quality benchmark's sentences; the base voice
# reads nearly all of them right with Whisper base (a word now and then in the seventh and eighth). About 85 words.
GUARD_SENTENCES = (
    "We will call you back later this afternoon.",
    "Thank you for waiting, your order is on its way.",
    "She left her keys on the kitchen table this morning.",
    "The train to the city leaves every twenty minutes.",
    "Your prescription will be ready at the pharmacy counter on Monday.",
    "The museum opens its new exhibition about ancient pottery next spring.",
    "Several customers complained that the delivery arrived completely damaged.",
    "My grandfather repaired the wooden bicycle in his garage.",
    "The orchestra practiced the difficult symphony until midnight.",
)
# Each sentence is spoken this many times, with the sampling noise the service speaks with: the detail can break a
# word in one rendering and not in the next (the deterministic rendering read right where noisy ones read 27-70%
# wrong), so the guard listens to what the service would send. The renderings are made once per engine.
RENDERINGS = 2
MARGIN = 0.03  # WER the kNN detail may add on the guard renderings (about five words of 170)
MIX_FRACTIONS = (1.0, 0.5, 0.25)  # of the fitted kNN mix, tried largest first; then none


@dataclass(frozen=True)
class Guard:
    """Guard sentences as the base voice speaks them, at ``sample_rate``, and the recognizer that listens."""

    texts: Sequence[str]
    base_audio: Sequence[np.ndarray]
    sample_rate: int
    transcribe: Transcriber
    margin: float = MARGIN

    def wer(self, conversion: VoiceConversion) -> float:
        """Mean WER of the guard sentences spoken through ``conversion``."""
        errors = []
        for text, audio in zip(self.texts, self.base_audio):
            spoken = resample(conversion.apply(audio, self.sample_rate), self.sample_rate, FIT_SAMPLE_RATE)
            errors.append(word_error_rate(text, self.transcribe(spoken)))
        return float(np.mean(errors))

    def checked(self, conversion: VoiceConversion) -> VoiceConversion:
        """``conversion`` with the largest kNN mix (of MIX_FRACTIONS of its own) whose guard WER is within the
        margin of the same conversion's without kNN detail (the only part the guard moves), else without it.
        The WER reached is kept in the state (``guard_wer``)."""
        without = replace(conversion, knn_mix=0.0)
        without.guard_wer = self.wer(without)
        chosen = without
        for fraction in MIX_FRACTIONS if conversion.knn_mix > 0.0 else ():
            candidate = replace(conversion, knn_mix=conversion.knn_mix * fraction)
            candidate.guard_wer = self.wer(candidate)
            if candidate.guard_wer <= without.guard_wer + self.margin:
                chosen = candidate
                break
        logger.info("intelligibility guard: kNN mix %.2f -> %.2f, WER %.3f (%.3f without kNN detail)",
                    conversion.knn_mix, chosen.knn_mix, chosen.guard_wer, without.guard_wer)
        return chosen
