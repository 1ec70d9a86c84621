"""Quality-gate measurements on real speech and degraded copies of it.

For each utterance: clean; white noise at 20/10/5/0 dB SNR; hard clipping (gain x2 and x5 into full scale); a second
speaker mixed over the second half at 0 and -6 dB and over the whole clip at 0 dB; the first 2.5 s only. Every copy is
written as 16-bit WAV and goes through the real path (decode_audio -> assess). Prints, per split and condition, the
median [p5, p95] of each check's value and the accept rate per check and overall under the thresholds in force.

Split: thresholds are tuned on train-clean-100 (251 speakers, one utterance each); test-other (5 speakers x 10
utterances) is only reported.

    .venv/bin/python bench/quality_gate.py [--data ../shared/data] [--limit N] [--json]
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from voicegate.audio import embedding, quality
from voicegate.audio.decode import AudioRejected, decode_audio

RATE = 16_000
CHECKS = ("speech_duration", "snr", "clipping", "single_speaker")


def _load(path: Path) -> np.ndarray:
    x, sr = sf.read(path, dtype="float32")
    assert sr == RATE
    return x


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))) + 1e-12)


def _fit(x: np.ndarray) -> np.ndarray:
    """Scale down (never up) so the mix stays under full scale: only the clipping condition may clip."""
    peak = float(np.max(np.abs(x)))
    return x * (0.95 / peak) if peak > 0.95 else x


def _conditions(x: np.ndarray, other: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    out = {"clean": x}
    for snr in (20, 10, 5, 0):
        noise = rng.standard_normal(len(x)).astype(np.float32)
        out[f"noise_{snr}dB"] = _fit(x + noise * (_rms(x) / _rms(noise)) * 10 ** (-snr / 20))
    peak = float(np.max(np.abs(x)))
    for gain in (2, 5):
        out[f"clip_x{gain}"] = np.clip(x / peak * gain, -1.0, 1.0)
    other = np.resize(other, len(x))  # loop the other voice to cover the clip
    half = len(x) // 2
    for db in (0, -6):
        second = np.zeros_like(x)
        second[half:] = other[: len(x) - half] * (_rms(x) / _rms(other)) * 10 ** (db / 20)
        out[f"voice2_half_{db}dB"] = _fit(x + second)
    out["voice2_full_0dB"] = _fit(x + other * (_rms(x) / _rms(other)))
    out["short_2.5s"] = x[: int(2.5 * RATE)]
    return out


def _wav(x: np.ndarray) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x, RATE, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def _measure(x: np.ndarray, th: quality.QualityThresholds) -> dict[str, float | None]:
    try:
        report = quality.assess(decode_audio(_wav(x), "clip.wav"), th)
    except AudioRejected as exc:
        return {"rejected_at_decode": exc.reason_code}  # type: ignore[dict-item]
    return {c.name: c.value for c in report.checks}


def _files(data: Path, split: str, limit: int | None) -> list[Path]:
    files = sorted((data / "librispeech" / split).rglob("*.flac"))
    return files[:limit] if limit else files


def _speaker(path: Path) -> str:
    return path.name.split("-")[0]


def run(data: Path, limit: int | None, th: quality.QualityThresholds) -> dict[str, dict[str, list]]:
    rng = np.random.default_rng(0)
    results: dict[str, dict[str, list]] = {}
    for split in ("train-clean-100", "test-other"):
        files = _files(data, split, limit)
        per_cond: dict[str, list] = {}
        for i, f in enumerate(files):
            # The second voice: the next file by another speaker (deterministic).
            other = next(g for g in files[i + 1:] + files[:i] if _speaker(g) != _speaker(f))
            for cond, y in _conditions(_load(f), _load(other), rng).items():
                per_cond.setdefault(cond, []).append(_measure(y, th))
        results[split] = per_cond
    return results


def _passes(name: str, v: float | None, th: quality.QualityThresholds) -> bool:
    limit = {"speech_duration": th.min_speech_s, "snr": th.min_snr_db, "clipping": th.max_clipping_ratio,
             "single_speaker": th.min_speaker_similarity}[name]
    return v is None or (v <= limit if name == "clipping" else v >= limit)


def summarize(results: dict[str, dict[str, list]], th: quality.QualityThresholds) -> dict[str, dict]:
    table: dict[str, dict] = {}
    for split, per_cond in results.items():
        for cond, rows in per_cond.items():
            row: dict[str, object] = {"n": len(rows)}
            ok_all = np.ones(len(rows), bool)
            for name in CHECKS:
                vals = [r.get(name) for r in rows]
                got = np.array([v for v in vals if v is not None], float)
                row[name] = [float(np.median(got)), float(np.percentile(got, 5)), float(np.percentile(got, 95))] \
                    if got.size else None
                ok = np.array([("rejected_at_decode" not in r) and _passes(name, r.get(name), th) for r in rows])
                row[f"{name}_pass"] = float(ok.mean())
                ok_all &= ok
            row["accept"] = float(ok_all.mean())
            table[f"{split}/{cond}"] = row
    return table


def _print(table: dict[str, dict], th: quality.QualityThresholds, seconds: float) -> None:
    print(f"thresholds: speech >= {th.min_speech_s} s, snr >= {th.min_snr_db} dB, clipping <= "
          f"{th.max_clipping_ratio}, single_speaker >= {th.min_speaker_similarity}  ({seconds:.0f} s)")
    print(f"{'split/condition':36} {'n':>4} {'speech s':>18} {'snr dB':>18} {'clip %':>20} {'spk cos':>18}"
          f"  pass: dur  snr clip  spk | accept")
    for key, row in table.items():
        cells = []
        for name in CHECKS:
            m = row[name]
            scale = 100 if name == "clipping" else 1
            cells.append("-" if m is None else f"{m[0] * scale:.3g} [{m[1] * scale:.3g},{m[2] * scale:.3g}]")
        rates = " ".join(f"{row[f'{n}_pass']:4.0%}" for n in CHECKS)
        print(f"{key:36} {row['n']:>4} {cells[0]:>18} {cells[1]:>18} {cells[2]:>20} {cells[3]:>18}  "
              f"{rates} | {row['accept']:5.0%}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1] / ".." / "shared" / "data")
    ap.add_argument("--limit", type=int, default=None, help="first N files per split (quick runs)")
    ap.add_argument("--json", action="store_true", help="print the table (and raw values) as JSON")
    args = ap.parse_args()
    if not (args.data / "librispeech").is_dir():
        sys.exit(f"no LibriSpeech under {args.data}; see shared/data/README.md")
    th = quality.QualityThresholds()
    embedding.embed(np.zeros(RATE * 2, np.float32) + 1e-3)  # load and warm the encoder outside the timing
    t0 = time.perf_counter()
    results = run(args.data, args.limit, th)
    table = summarize(results, th)
    if args.json:
        print(json.dumps({"thresholds": th.__dict__, "table": table, "raw": results}, default=float))
    else:
        _print(table, th, time.perf_counter() - t0)


if __name__ == "__main__":
    main()
