#!/usr/bin/env python3
"""Speed of the sound world: real-time factor, where the time goes, peak memory; then bag writing.

    .venv/bin/python bench/bench_sim.py                       # 3 episodes, default 128x128 camera
    .venv/bin/python bench/bench_sim.py --episodes 5 --width 256 --height 256 --scenario ambiguous

Real-time factor (RTF) = simulated seconds / wall seconds (> 1: faster than real time).
Part 1 consumes ``SoundWorld.run()`` only, timing MuJoCo physics (``mujoco.mj_step``), rendering
(``SoundWorld._render``: RGB + segmentation) and audio synthesis (``ModalSynth.render``) by
wrapping them; "other" is contact bookkeeping, planning and event queueing. Part 2 records the
same episodes with ``write_episode`` (simulation + rosbag2/MCAP + truth + masks). Not a test.
"""
from __future__ import annotations

import argparse
import functools
import os
import resource
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault('MUJOCO_GL', 'osmesa')

import numpy as np  # noqa: E402

TIMES: dict[str, float] = defaultdict(float)


def timed(name, fn):
    """Wrap ``fn`` so its wall time accumulates in ``TIMES[name]``."""
    @functools.wraps(fn)
    def wrapper(*a, **kw):
        t0 = time.perf_counter()
        try:
            return fn(*a, **kw)
        finally:
            TIMES[name] += time.perf_counter() - t0
    return wrapper


def instrument():
    import mujoco

    from hearing_hands_ros.sim import modal, world
    mujoco.mj_step = timed('physics', mujoco.mj_step)
    world.SoundWorld._render = timed('render', world.SoundWorld._render)
    modal.ModalSynth.render = timed('synthesis', modal.ModalSynth.render)


def pct(x, qs=(50, 90, 100)):
    return ' '.join(f'p{q}={np.percentile(x, q):.2f}' for q in qs)


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--episodes', type=int, default=3)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--scenario', default='mixed', choices=['mixed', 'ambiguous'])
    ap.add_argument('--width', type=int, default=128)
    ap.add_argument('--height', type=int, default=128)
    ap.add_argument('--fps', type=float, default=30.0)
    ap.add_argument('--no-bags', action='store_true', help='skip part 2 (bag writing)')
    args = ap.parse_args()

    instrument()
    from hearing_hands_ros.data.bags import write_episode
    from hearing_hands_ros.sim.world import SimConfig, SoundWorld

    def config(i):
        return SimConfig(scenario=args.scenario, seed=args.seed + i, width=args.width,
                         height=args.height, fps=args.fps)

    print(f'sound world: {args.episodes} {args.scenario} episode(s), camera {args.width}x{args.height}'
          f' @ {args.fps:g} Hz, {os.cpu_count()} CPU(s), MUJOCO_GL={os.environ["MUJOCO_GL"]}')
    rtf, sim_total, wall_total, build_total = [], 0.0, 0.0, 0.0
    for i in range(args.episodes):
        TIMES.clear()
        t0 = time.perf_counter()
        world = SoundWorld(config(i))
        build = time.perf_counter() - t0
        TIMES.clear()                       # settling physics belongs to "build"
        counts = defaultdict(int)
        t1 = time.perf_counter()
        for ev in world.run():
            counts[ev.kind] += 1
        run = time.perf_counter() - t1
        sim = float(world.truth['duration'])
        rtf.append(sim / run)
        sim_total, wall_total, build_total = sim_total + sim, wall_total + run, build_total + build
        other = run - sum(TIMES.values())
        share = ', '.join(f'{k} {v / run:.0%}' for k, v in sorted(TIMES.items())) + f', other {other / run:.0%}'
        print(f'  episode {i}: {sim:5.1f} s sim in {run:5.1f} s (RTF {sim / run:5.2f}; build {build:.2f} s)'
              f' | {share} | {counts["image"]} frames, {counts["audio"]} chunks, '
              f'{len(world.truth["contacts"])} contacts')
    print(f'simulation: RTF {sim_total / wall_total:.2f} overall ({pct(rtf)} per episode), '
          f'scene build {build_total / args.episodes:.2f} s/episode, peak RSS {peak_mb():.0f} MB')

    if args.no_bags:
        return
    rtf_bag, size = [], 0
    with tempfile.TemporaryDirectory() as tmp:
        sim_total = wall_total = 0.0
        for i in range(args.episodes):
            t0 = time.perf_counter()
            world = SoundWorld(config(i))
            bag = write_episode(world, tmp, f'episode_{i:04d}')
            wall = time.perf_counter() - t0
            sim = float(world.truth['duration'])
            rtf_bag.append(sim / wall)
            sim_total, wall_total = sim_total + sim, wall_total + wall
            size += sum(f.stat().st_size for f in Path(tmp).glob(f'episode_{i:04d}*') if f.is_file())
            size += sum(f.stat().st_size for f in bag.iterdir())
    print(f'recording (simulate + write bag, truth, masks; incl. scene build): RTF '
          f'{sim_total / wall_total:.2f} overall ({pct(rtf_bag)} per episode), '
          f'{size / sim_total / 1e6:.2f} MB per simulated second, peak RSS {peak_mb():.0f} MB')


if __name__ == '__main__':
    main()
