"""Synthesis latency over HTTP on loopback, with the bare engine call in this process as the baseline.

Starts the service as `make run` does (uvicorn + ASGI app, SQLite, a private data dir), creates an
organization, a verified voice owner, an active profile with a voice fitted from --data clips, and a key;
then measures time to first audio byte (TTFB) for a 3-sentence request, p50 and p95 over N requests, the
real-time factor, gateway overhead over the bare engine, and 4 concurrent streams. Bare calls and HTTP requests
alternate, and the load average is printed at the start and the end: the figures are only comparable at similar load.

    .venv/bin/python bench/synthesis_latency.py [--data DIR] [--requests 50] [--engine fast] [--engine quality]
        [--quick-fit] [--json]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEXT = (
    "Good morning, this is your bank calling about a recent payment. "
    "We noticed a transfer of two hundred dollars to a new account. "
    "If you made this payment, no action is needed."
)
PURPOSE = "support-calls"


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _setup_django(data_dir: Path) -> None:
    os.environ["VOICEGATE_DATA_DIR"] = str(data_dir)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voicegate.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _clips(data: Path, count: int = 3) -> list:
    from voicegate.audio.decode import decode_audio

    files = sorted(p for p in data.rglob("*") if p.suffix.lower() in {".flac", ".wav"})[:count]
    if not files:
        raise SystemExit(f"no .flac/.wav files under {data}")
    return [decode_audio(p.read_bytes()).samples for p in files]


def _authorized_profile(engine_name: str, clips: list, quick_fit: bool) -> tuple[int, str, bytes]:
    from dataclasses import replace

    from django.utils import timezone

    from governance import apikeys, biometrics
    from governance.models import BiometricBlob, ConsentArtifact, IdentityVerification, Organization, VoiceOwner, VoiceProfile
    from synthesis import registry
    from synthesis.engines.search import FitConfig
    from synthesis.models import FittedVoice

    quick = {"fast": {"fit": FitConfig(generations=1, popsize=4)}, "quality": {"timbre_steps": 1}}

    now = timezone.now()
    org = Organization.objects.create(name="Bench Org", slug=f"bench-{int(time.time())}")
    owner = VoiceOwner.objects.create(organization=org, full_name="Bench Speaker")
    IdentityVerification.objects.create(owner=owner, method="document", status="approved", decided_at=now)
    profile = VoiceProfile.objects.create(owner=owner, name="bench voice", status="active")
    ConsentArtifact.objects.create(
        profile=profile, statement_text="bench", purposes=[PURPOSE], valid_from=now - timedelta(days=1),
        valid_until=now + timedelta(days=1), verification_status="verified", content_sha256="0" * 64,
    )
    engine = registry.get(engine_name)
    if quick_fit:  # a one-step search: the same kind of state, so the same speed, minutes sooner
        engine = type(engine)(replace(engine.config, **quick[engine_name]))  # type: ignore[call-arg, attr-defined]
    state = engine.fit_voice(clips)
    FittedVoice.objects.create(profile=profile, engine=engine_name, state=biometrics.store(owner, BiometricBlob.Kind.VOICE_STATE, state))
    _, secret = apikeys.create_key(org, name="bench", actions=["synthesize"], purposes=[PURPOSE], profiles=[profile],
                                   rate_limit_per_minute=100_000, actor="bench")
    return profile.pk, secret, state


def _bare_run(engine: object, state: bytes) -> tuple[float, float, int]:
    """One bare engine call: (time to the first chunk in ms, total seconds, audio bytes as 16-bit PCM)."""
    started = time.perf_counter()
    samples, first_at = 0, None
    for chunk in engine.stream(TEXT, state):  # type: ignore[attr-defined]
        first_at = first_at or time.perf_counter() - started
        samples += chunk.size
    return (first_at or 0.0) * 1000, time.perf_counter() - started, samples * 2


def _one_request(port: int, body: bytes, secret: str) -> tuple[float, float, int]:
    """(time to first audio byte after the header, total seconds, audio bytes)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    started = time.perf_counter()
    conn.request("POST", "/api/v1/synthesize", body, {"Authorization": f"Api-Key {secret}", "Content-Type": "application/json"})
    response = conn.getresponse()
    if response.status != 200:
        raise RuntimeError(f"HTTP {response.status}: {response.read()[:300]!r}")
    first_byte, received = None, 0
    while chunk := response.read1(65536):
        received += len(chunk)
        if first_byte is None and received > 0:
            first_byte = time.perf_counter() - started
    conn.close()
    return (first_byte or 0.0) * 1000, time.perf_counter() - started, received


def _start_server(port: int, env: dict[str, str]) -> subprocess.Popen:
    server = subprocess.Popen(
        [str(ROOT / ".venv/bin/uvicorn"), "voicegate.asgi:application", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            http.client.HTTPConnection("127.0.0.1", port, timeout=2).request("GET", "/api/v1/schema/")
            return server
        except OSError:
            time.sleep(0.5)
    server.kill()
    raise SystemExit(f"the server did not start: {server.stderr.read()[-2000:]!r}")


def _bare_and_http(port: int, engine_name: str, profile: int, secret: str, state: bytes, requests: int) -> tuple[dict[str, float], dict[str, float]]:
    """The bare engine and the HTTP request, one of each in turn: on a shared machine both then see the same load,
    which comes and goes over minutes (measuring one after the other once made the overhead 80 ms or -130 ms)."""
    from synthesis import registry

    engine = registry.get(engine_name)
    body = json.dumps({"profile": profile, "text": TEXT, "purpose": PURPOSE, "engine": engine_name, "format": "pcm"}).encode()
    _one_request(port, body, secret)  # warm the server's engine
    _bare_run(engine, state)
    bare, http = [], []
    for _ in range(requests):
        bare.append(_bare_run(engine, state))
        http.append(_one_request(port, body, secret))
    return _summary(bare, engine.sample_rate), _summary(http, engine.sample_rate)


def _summary(runs: list[tuple[float, float, int]], rate: int) -> dict[str, float]:
    ttfb = [r[0] for r in runs]
    rtf = [r[1] / (r[2] / 2 / rate) for r in runs]
    return {"ttfb_p50_ms": statistics.median(ttfb), "ttfb_p95_ms": _percentile(ttfb, 0.95), "rtf": statistics.median(rtf)}


def _concurrent(port: int, engine: str, profile: int, secret: str, streams: int, rate: int) -> dict[str, object]:
    body = json.dumps({"profile": profile, "text": TEXT, "purpose": PURPOSE, "engine": engine, "format": "pcm"}).encode()
    results: list[tuple[float, float, int]] = []
    threads = [threading.Thread(target=lambda: results.append(_one_request(port, body, secret))) for _ in range(streams)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ttfb = [r[0] for r in results]
    keeps_up = [r[1] <= r[2] / 2 / rate for r in results]  # finished before the audio would have finished playing
    return {"streams": streams, "ttfb_p95_ms": _percentile(ttfb, 0.95), "keep_up": sum(keeps_up), "rtf_max": max(r[1] / (r[2] / 2 / rate) for r in results)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/librispeech/test-other/1688")
    parser.add_argument("--engine", action="append", dest="engines")
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--quick-fit", action="store_true",
                        help="fit the bench voice with a one-generation search (speed does not depend on how well "
                             "the voice was fitted; the quality engine's full fit takes minutes)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    engines = args.engines or ["fast"]
    data_dir = Path(tempfile.mkdtemp(prefix="voicegate-bench-"))
    os.environ["VOICEGATE_ENGINES"] = ",".join(engines)
    _setup_django(data_dir)
    clips = _clips(args.data)
    env = {**os.environ, "VOICEGATE_DATA_DIR": str(data_dir), "VOICEGATE_ENGINES": ",".join(engines)}
    server = _start_server(args.port, env)
    results: dict[str, object] = {}
    load_start = os.getloadavg()
    try:
        from synthesis import registry

        for name in engines:
            profile, secret, state = _authorized_profile(name, clips, args.quick_fit)
            rate = registry.get(name).sample_rate
            bare, gateway = _bare_and_http(args.port, name, profile, secret, state, args.requests)
            results[name] = {
                "bare_engine": bare,
                "http": gateway,
                "gateway_overhead_p50_ms": gateway["ttfb_p50_ms"] - bare["ttfb_p50_ms"],
                "concurrent": _concurrent(args.port, name, profile, secret, 4, rate),
            }
    finally:
        server.terminate()
        server.wait(timeout=30)
    load = {"start": load_start, "end": os.getloadavg()}
    _print(results, args.requests, load)
    if args.json:
        print(json.dumps({"requests": args.requests, "load_average": load, "engines": results}))


def _print(results: dict[str, object], requests: int, load: dict[str, tuple[float, float, float]]) -> None:
    print(f"\nSynthesis latency, 3-sentence request, {requests} requests over HTTP on loopback (baseline: bare engine)")
    print("load average (1, 5, 15 min) at the start " + ", ".join(f"{v:.2f}" for v in load["start"])
          + "; at the end " + ", ".join(f"{v:.2f}" for v in load["end"]))
    print(f"{'engine':8} {'measure':22} {'bare engine':>12} {'over HTTP':>12}")
    for name, r in results.items():
        for key, label in (("ttfb_p50_ms", "first audio p50 (ms)"), ("ttfb_p95_ms", "first audio p95 (ms)"), ("rtf", "real-time factor")):
            print(f"{name:8} {label:22} {r['bare_engine'][key]:12.3f} {r['http'][key]:12.3f}")
        print(f"{name:8} {'gateway overhead p50':22} {'':12} {r['gateway_overhead_p50_ms']:12.1f}")
        c = r["concurrent"]
        print(f"{name:8} {'4 streams: p95 first':22} {'':12} {c['ttfb_p95_ms']:12.1f}  keep up: {c['keep_up']}/4, worst RTF {c['rtf_max']:.3f}")


if __name__ == "__main__":
    main()
