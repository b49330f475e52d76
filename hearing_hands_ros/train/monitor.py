"""``hearing-hands train monitor``: calibrate the execution monitor on recordings of normal runs.

    hearing-hands train monitor --data bags/normal --source kinematic --out runs/monitor_kinematic.json

Replays each bag through the monitor (as ``evaluate monitor`` does) and counts, per sort of
expected contact (``monitor.Calibration``: its kind and stated probability), how often one was
heard. No labels: the recordings only need to be of runs in which nothing went wrong (the
ground truth is not read). The node takes it as its ``calibration`` parameter and
``evaluate monitor`` as ``--calibration SOURCE FILE``. On the sound world it lowered the fault AUC
on validation (docs/monitor.md), so nothing calibrated is shipped.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from hearing_hands_ros.errors import UserError

HELP = 'calibrate the execution monitor on recordings of normal runs (no labels)'


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument('--data', nargs='+', required=True, help='rosbag2 episodes of normal runs')
    p.add_argument('--out', type=Path, required=True, help='output calibration (.json)')
    p.add_argument('--source', choices=('model', 'kinematic'), default='kinematic',
                   help='where the expected contacts come from (as the node\'s expected_source)')
    p.add_argument('--model', default=None, help='predictor bundle (default: the shipped one)')
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--no-progress', action='store_true')


def fit(bags, planner, source: str, progress: bool = True):
    """A :class:`~hearing_hands_ros.monitor.Calibration` from normal runs."""
    from tqdm import tqdm

    from hearing_hands_ros.data.bags import read_episode
    from hearing_hands_ros.eval.monitor import planner_expect, replay
    from hearing_hands_ros.monitor import Calibration, MonitorConfig
    cal = Calibration(source=source)
    cfg = MonitorConfig(min_probability=0.0, min_confidence=1.1)     # every event, no reports
    for bag in tqdm(bags, desc='episodes', unit='ep', disable=not progress):
        for outcome in replay(read_episode(bag), planner_expect(planner, source), cfg).outcomes:
            cal.add(outcome.results)
    return cal


def run(args) -> int:
    from hearing_hands_ros.data.bags import list_episodes
    from hearing_hands_ros.planner import Planner
    try:
        bags = list_episodes(args.data)
    except (FileNotFoundError, ValueError) as e:
        raise UserError(str(e)) from None
    if not bags:
        raise UserError(f'no rosbag2 episodes in {" ".join(map(str, args.data))}')
    planner = Planner(args.model, backend='cpu', threads=args.threads)
    cal = fit(bags, planner, args.source, progress=not args.no_progress)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({**cal.to_dict(), 'episodes': len(bags)}, indent=1) + '\n')
    total = sum(n for _, n in cal.counts.values())
    heard = sum(h for h, _ in cal.counts.values())
    print(f'{len(bags)} episodes: {total} expected contacts, {heard} heard; '
          f'{len(cal.counts)} sorts -> {args.out}')
    return 0
