"""Speaker-embedding latency: voicegate.audio.embedding vs the bare resemblyzer call, in the same run.

Measures, on a 10 s clip of real speech (the first LibriSpeech train-clean-100 utterance, cut to 10 s):
  - baseline_cold: ``VoiceEncoder().embed_utterance(preprocess_wav(wav))``, the call as documented (builds the model);
  - baseline_warm: the same with one VoiceEncoder built beforehand;
  - embed: ``embedding.embed(wav)`` on the process singleton (hash-checked weights, loaded once);
  - cache_hit: ``EmbeddingCache.get`` of a stored profile embedding;
  - load: the one-time hash check + load.
Median of --repeats runs each. Also checks that embed() and the baseline agree (cosine).

    .venv/bin/python bench/embedding.py [--data ../shared/data] [--repeats 10] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from voicegate.audio import embedding


def _clip(data: Path) -> np.ndarray:
    path = min((data / "librispeech" / "train-clean-100").glob("*.flac"))
    wav, rate = sf.read(path, dtype="float32")
    assert rate == 16_000 and len(wav) >= 10 * rate, path
    return wav[: 10 * rate]


def _median_s(fn: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def run(data: Path, repeats: int) -> dict[str, Any]:
    from resemblyzer import VoiceEncoder, preprocess_wav

    wav = _clip(data)
    t0 = time.perf_counter()
    embedding.get_encoder()
    load_s = time.perf_counter() - t0
    warm = VoiceEncoder(verbose=False)
    for _ in range(2):  # warm both paths (librosa/numba, oneDNN/cuDNN)
        warm.embed_utterance(preprocess_wav(wav))
        embedding.embed(wav)
    cache = embedding.EmbeddingCache(256)
    vec = embedding.embed(wav)
    for i in range(256):
        cache.put(i, "blob", vec)
    return {
        "device": "cuda:" + torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
        "torch_threads": torch.get_num_threads(),
        "clip_s": len(wav) / 16_000,
        "repeats": repeats,
        "load_s": load_s,
        "baseline_cold_s": _median_s(lambda: VoiceEncoder(verbose=False).embed_utterance(preprocess_wav(wav)),
                                     max(3, repeats // 3)),
        "baseline_warm_s": _median_s(lambda: warm.embed_utterance(preprocess_wav(wav)), repeats),
        "embed_s": _median_s(lambda: embedding.embed(wav), repeats),
        "cache_hit_s": _median_s(lambda: cache.get(128, "blob"), max(repeats, 1000)),
        "cosine_embed_vs_baseline": embedding.cosine(vec, warm.embed_utterance(preprocess_wav(wav))),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1] / ".." / "shared" / "data")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if not (args.data / "librispeech").is_dir():
        sys.exit(f"no LibriSpeech under {args.data}; see shared/data/README.md")
    r = run(args.data, args.repeats)
    if args.json:
        print(json.dumps(r))
        return
    print(f"device {r['device']}, {r['torch_threads']} threads, {r['clip_s']:.0f} s clip, median of {r['repeats']}")
    print(f"  load (sha256 + weights, once per process) {r['load_s'] * 1e3:9.1f} ms")
    print(f"  baseline VoiceEncoder().embed_utterance   {r['baseline_cold_s'] * 1e3:9.1f} ms")
    print(f"  baseline, encoder built beforehand        {r['baseline_warm_s'] * 1e3:9.1f} ms")
    print(f"  embedding.embed (singleton)               {r['embed_s'] * 1e3:9.1f} ms")
    print(f"  EmbeddingCache hit                        {r['cache_hit_s'] * 1e6:9.2f} us")
    print(f"  cosine(embed, baseline) = {r['cosine_embed_vs_baseline']:.6f}")


if __name__ == "__main__":
    main()
