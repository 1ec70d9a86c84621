"""Speed of the `fast` engine: time to first chunk and real-time factor, fitted voice vs the base voice (baseline).

first chunk: wall time from stream() to the first chunk, for a text whose first sentence is short;
RTF:         wall time / audio duration for a ~20 s paragraph, whole stream consumed.
Medians of --repeats runs after one warm-up. The voice is fitted on the test fixture clips of speaker 1688.

    .venv/bin/python bench/synthesis_engine_speed.py [--repeats 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from synthesis.engines.piper import FastEngine

SHORT_FIRST = "Hello there. The rest of this message follows after a short pause, as promised."
PARAGRAPH = ("Thank you for calling. Your order number is 4512, placed on March 3rd, 2024. It shipped yesterday "
             "at 4:15 pm and should arrive within 3 to 5 business days. If you have questions, write to "
             "help@example.com or visit www.example.com/orders. We appreciate your patience, and we hope you "
             "enjoy your purchase. Have a wonderful day.")


def _measure(engine: FastEngine, text: str, state: bytes) -> tuple[float, float, float]:
    """(seconds to first chunk, total seconds, audio seconds)."""
    t0 = time.perf_counter()
    first = None
    samples = 0
    for chunk in engine.stream(text, state):
        if first is None:
            first = time.perf_counter() - t0
        samples += chunk.size
    return float(first or 0.0), time.perf_counter() - t0, samples / engine.sample_rate


def run(repeats: int) -> dict[str, Any]:
    import torch

    torch.set_num_threads(1)
    engine = FastEngine()
    clips = [sf.read(p, dtype="float32")[0] for p in sorted((ROOT / "tests/fixtures/librispeech").glob("1688-*.flac"))]
    t0 = time.perf_counter()
    state = engine.fit_voice(clips)
    fit_s = time.perf_counter() - t0
    out: dict[str, Any] = {"cpus": os.cpu_count(), "load_avg_1m": os.getloadavg()[0], "fit_s": fit_s}
    for name, voice in (("base", b""), ("fast", state)):
        _measure(engine, SHORT_FIRST, voice)  # warm-up
        firsts = [_measure(engine, SHORT_FIRST, voice)[0] for _ in range(repeats)]
        runs = [_measure(engine, PARAGRAPH, voice) for _ in range(repeats)]
        out[name] = {"first_chunk_s": float(np.median(firsts)),
                     "paragraph_first_chunk_s": float(np.median([r[0] for r in runs])),
                     "rtf": float(np.median([r[1] / r[2] for r in runs])), "audio_s": runs[0][2]}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args.repeats)
    print(f"{os.cpu_count()} CPUs, load average {result['load_avg_1m']:.1f}; fit {result['fit_s']:.1f} s")
    print(f"{'voice':<18}{'first chunk':>13}{'first (para)':>14}{'RTF':>8}")
    for name, label in (("base", "base (Piper joe)"), ("fast", "fast (fitted)")):
        r = result[name]
        print(f"{label:<18}{r['first_chunk_s'] * 1000:>10.0f} ms{r['paragraph_first_chunk_s'] * 1000:>11.0f} ms"
              f"{r['rtf']:>8.3f}")
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
