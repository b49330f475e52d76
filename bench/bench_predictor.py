"""Contact-sound predictor speed: 8 s of audio for one path and for a batch of 16 candidate paths,
by sampling step count, on this machine's CPU (2 threads) and on the GPU when ONNX Runtime has
CUDA. Reports latency percentiles, real-time factor (audio seconds / compute seconds) and the
speed-up over the 25-step guided recipe (50 network evaluations) measured in the same run.

    .venv/bin/python bench/bench_predictor.py [--model models/contact_sound_predictor.onnx]
        [--repeats 10] [--json out/bench_predictor.json]

Targets: 8 s in < 0.4 s on 2 CPU cores at the default step count; < 20 ms on a GPU. With a
contact_events bundle beside the predictor, also events only (``predict(audio=False)``) on one
CPU thread: one path p50 < 10 ms, a batch of 16 < 40 ms.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hearing_hands_ros import trajectory as tr  # noqa: E402
from hearing_hands_ros.models import predictor as P  # noqa: E402
from hearing_hands_ros.planner import Planner, default_model_path  # noqa: E402
from hearing_hands_ros.runtime import available_backends  # noqa: E402


def paths(n: int, seconds: float = 7.5) -> list[tr.Trajectory]:
    """Make candidate taps of 7.5 s each, plus a 0.5 s tail (8 s of audio), different targets."""
    out = []
    for i in range(n):
        t = np.linspace(0.0, seconds, 200)
        z = 0.15 - 0.1 * np.clip(np.sin(np.pi * t / seconds), 0, 1)
        pos = np.stack([np.full_like(t, 0.01 * i), 0.02 * np.sin(t), z], 1)
        out.append(tr.Trajectory(t, pos, np.tile(Rotation.from_euler('x', np.pi).as_quat(), (len(t), 1))))
    return out


def bench(planner: Planner, batch: int, steps: int, guidance: float, repeats: int) -> dict:
    ps = paths(batch)
    rgb = np.random.default_rng(0).integers(0, 255, (128, 128, 3), dtype=np.uint8)
    planner.predict(ps, rgb, steps=steps, guidance=guidance)                # warm-up
    lat = []
    for r in range(repeats):
        t0 = time.perf_counter()
        preds = planner.predict(ps, rgb, seed=r, steps=steps, guidance=guidance)
        lat.append(time.perf_counter() - t0)
    audio_s = sum(p.duration for p in preds)
    lat = np.asarray(lat)
    return dict(batch=batch, steps=steps, guidance=guidance,
                network_evaluations=P.network_evaluations(steps, guidance, bool(planner.meta.get('prior'))),
                audio_seconds_per_path=round(preds[0].duration, 3),
                p50_ms=round(float(np.percentile(lat, 50)) * 1e3, 2),
                p90_ms=round(float(np.percentile(lat, 90)) * 1e3, 2),
                p99_ms=round(float(np.percentile(lat, 99)) * 1e3, 2),
                rtf=round(audio_s / float(np.median(lat)), 1))


def bench_events(planner: Planner, batch: int, repeats: int, fresh_image: bool) -> dict:
    """Events only (``predict(audio=False)``): the event model plus the plan-start view's
    segments, computed anew for every call (``fresh_image``: a new image each call) or kept from
    the previous call with the same image (a planner ranking candidates from one view)."""
    ps = paths(batch)
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (128, 128, 3), dtype=np.uint8)
    planner.predict(ps, rgb, audio=False)                                    # warm-up
    lat = []
    for _ in range(repeats):
        if fresh_image:
            rgb = rng.integers(0, 255, (128, 128, 3), dtype=np.uint8)
        t0 = time.perf_counter()
        planner.predict(ps, rgb, audio=False)
        lat.append(time.perf_counter() - t0)
    lat = np.asarray(lat)
    return dict(batch=batch, fresh_image=fresh_image,
                p50_ms=round(float(np.percentile(lat, 50)) * 1e3, 2),
                p90_ms=round(float(np.percentile(lat, 90)) * 1e3, 2),
                p99_ms=round(float(np.percentile(lat, 99)) * 1e3, 2))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--model', default=None, help='bundle (default: the shipped model)')
    ap.add_argument('--repeats', type=int, default=10)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--json', type=Path, default=None)
    args = ap.parse_args()
    model = Path(args.model) if args.model else default_model_path()
    if not model.exists():
        from hearing_hands_ros.train.export_predictor import tiny_bundle
        print(f'{model} not found: timing an untrained model of the default size instead')
        model = tiny_bundle(Path('/tmp/bench_predictor/contact_sound_predictor'))
    results = {}
    backends = ['cpu'] + (['cuda'] if 'cuda' in available_backends() else [])
    for backend in backends:
        planner = Planner(model, backend=backend, threads=args.threads if backend == 'cpu' else 0)
        default = planner.steps
        rows = []
        for batch in (1, 16):
            reps = args.repeats if batch == 1 else max(3, args.repeats // 3)
            for steps, g in sorted({(1, 1.0), (2, 1.0), (4, 1.0), (default, planner.guidance)}) + [(25, 4.5)]:
                rows.append(bench(planner, batch, steps, g, reps))
        for batch in (1, 16):
            recipe = next(r for r in rows if r['batch'] == batch and r['steps'] == 25)
            for r in rows:
                if r['batch'] == batch:
                    r['speedup_vs_25step_cfg'] = round(recipe['p50_ms'] / r['p50_ms'], 1)
        results[backend] = dict(default_steps=default, rows=rows)
        if planner.events is not None:
            ev_planner = Planner(model, backend=backend, threads=1 if backend == 'cpu' else 0)
            ev_rows = [bench_events(ev_planner, b, max(20, args.repeats * 3), fresh)
                       for b in (1, 16) for fresh in (False, True)]
            results[backend]['events_only'] = ev_rows
            print(f'\n{backend}: events only (audio=False), 1 thread')
            print(f'{"batch":>5} {"view":>10} {"p50 ms":>9} {"p90 ms":>9} {"p99 ms":>9}')
            for r in ev_rows:
                print(f'{r["batch"]:>5} {"new" if r["fresh_image"] else "same":>10} '
                      f'{r["p50_ms"]:>9.2f} {r["p90_ms"]:>9.2f} {r["p99_ms"]:>9.2f}')
        print(f'\n{backend} ({planner.backend}, {args.threads if backend == "cpu" else "-"} threads), '
              f'model {model.name}, default {default} step(s)')
        print(f'{"batch":>5} {"steps":>5} {"cfg":>4} {"NFE":>4} {"p50 ms":>9} {"p90 ms":>9} {"p99 ms":>9} '
              f'{"RTF":>7} {"speed-up":>9}')
        for r in rows:
            print(f'{r["batch"]:>5} {r["steps"]:>5} {r["guidance"]:>4g} {r["network_evaluations"]:>4} '
                  f'{r["p50_ms"]:>9.1f} {r["p90_ms"]:>9.1f} {r["p99_ms"]:>9.1f} {r["rtf"]:>7.1f} '
                  f'{r["speedup_vs_25step_cfg"]:>8.1f}x')
        one = next(r for r in rows if r['batch'] == 1 and r['steps'] == default)
        target = 400 if backend == 'cpu' else 20
        print(f'target: 8 s of audio in < {target} ms at the default step count: '
              f'{one["p50_ms"]:.1f} ms -> {"MET" if one["p50_ms"] < target else "NOT MET"}')
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
