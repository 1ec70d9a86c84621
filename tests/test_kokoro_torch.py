"""Kokoro's decoder replayed in torch: it renders what the int8 graph renders, and its gradient points uphill."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from synthesis.engines.assets import read_checked
from synthesis.engines.conversion import resample
from synthesis.engines.kokoro import REINSTALL, SAMPLE_RATE, QualityEngine, resample_tensor
from synthesis.engines.kokoro_torch import TimbreDecoder
from voicegate.audio.embedding import embed, embed_differentiable

FIXTURES = Path(__file__).parent / "fixtures" / "librispeech"
SENTENCE = "We walked along the river until evening."


@pytest.fixture(scope="module")
def engine() -> QualityEngine:
    return QualityEngine()


@pytest.fixture(scope="module")
def decoder(engine: QualityEngine) -> TimbreDecoder:
    assets = engine.config.assets
    return TimbreDecoder(read_checked(assets.resolved()[0], assets.model_sha256, REINSTALL), "cpu")


def _prepared(engine: QualityEngine, decoder: TimbreDecoder, timbre: np.ndarray, pitch: float):
    tokens = engine.token_chunks(SENTENCE)[0]
    style = engine.model().style(timbre, pitch, len(tokens))
    return tokens, decoder.sentence(np.array([[0, *tokens, 0]], np.int64), style, engine.config.speed)


def test_replay_renders_what_the_graph_renders(engine: QualityEngine, decoder: TimbreDecoder) -> None:
    timbre = engine.model().pack_timbres["jm_kumo"]
    tokens, sentence = _prepared(engine, decoder, timbre, 0.8)
    graph = engine.speak(tokens, timbre, 0.8)
    with torch.no_grad():
        replay = decoder.render(sentence, torch.from_numpy(timbre)).numpy()
    assert replay.shape == graph.shape
    assert np.corrcoef(replay, graph)[0, 1] > 0.98  # the same samples but for the odd 8-bit rounding flip
    assert abs(np.std(replay) / np.std(graph) - 1) < 0.05


def test_a_step_along_the_replays_gradient_raises_the_graphs_speaker_cosine(engine: QualityEngine,
                                                                             decoder: TimbreDecoder) -> None:
    target = embed(sf.read(FIXTURES / "1688-142285-0006.flac", dtype="float32")[0])
    start = np.asarray(engine.base_voice().timbre, np.float32)
    tokens, sentence = _prepared(engine, decoder, start, 0.5)
    timbre = torch.from_numpy(start).requires_grad_()
    audio = resample_tensor(decoder.render(sentence, timbre), SAMPLE_RATE, 16_000)
    (embed_differentiable(audio) @ torch.from_numpy(target)).backward()
    step = 0.05 * timbre.grad.numpy() / float(timbre.grad.abs().max())

    def graph_cosine(t: np.ndarray) -> float:
        return float(embed(resample(engine.speak(tokens, t, 0.5), SAMPLE_RATE, 16_000)) @ target)

    here = graph_cosine(start)  # measured: 0.497; 0.516 uphill, 0.447 downhill
    assert graph_cosine(start + step) > here + 0.005
    assert graph_cosine(start - step) < here - 0.005
