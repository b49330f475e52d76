"""How good would the execution monitor be with perfect expectations? (docs/monitor.md, "What
limits it".)

A fault episode and the same seed simulated without faults are bit for bit the same up to the
first fault. So, for every action up to and including an episode's first fault, the contacts heard
in the fault-free run's replay of the same path are what an ideal predictor would have expected.
This scores the monitor (its shipped configuration) with those expectations ("oracle") and with
the kinematic rule and the event model, on the same actions:

    python experiments/monitor_oracle_probe.py --faults data/mon/val --clean data/mon/val_nofault
"""
from __future__ import annotations

import argparse
import collections

import numpy as np

NS = 1_000_000_000


def oracle_expect(clean_heard: dict, kinematic):
    """``expect(traj, rgb, K, aperture)`` from the heard events of each path of the fault-free
    run (``clean_heard``: path start [ns] -> [HeardEvent], times from the path start), for the
    path that starts at ``start_ns``."""
    from hearing_hands_ros.events import ContactEvent

    def expect(traj, rgb, K, aperture, start_ns):
        events = [ContactEvent(h.time, 0.005, 0.95, h.peak_db, 'impact', '')
                  for h in clean_heard.get(start_ns, [])]
        return events, kinematic(traj, rgb, K, aperture)[1]
    return expect


def probe(fault_bags, clean_bags, planner) -> dict:
    """Action trials per expectation source over paired episodes (up to each first fault)."""
    from hearing_hands_ros.data.bags import read_episode
    from hearing_hands_ros.eval.monitor import action_trials, planner_expect, replay
    from hearing_hands_ros.monitor import MonitorConfig
    cfg = MonitorConfig(min_confidence=0.0)

    def source(name):
        return planner_expect(planner, name)
    out = collections.defaultdict(list)
    for fb, cb in zip(fault_bags, clean_bags):
        ep, clean = read_episode(fb), read_episode(cb)
        heard = {o.key: o.heard for o in replay(clean, source('kinematic'), cfg).outcomes}
        first = min([f['action'] for f in ep.truth['faults']], default=10 ** 9)
        starts = {np.asarray(p[2], float).tobytes(): int(p[1][0]) for p in ep.paths}
        oracle = oracle_expect(heard, source('kinematic'))
        sources = {'oracle': lambda traj, rgb, K, ap: oracle(
                       traj, rgb, K, ap, starts[np.asarray(traj.positions, float).tobytes()]),
                   'kinematic': source('kinematic'), 'model': source('model')}
        for name, expect in sources.items():
            out[name] += [t for t in action_trials(ep.truth, replay(ep, expect, cfg), 0.5)
                          if t['action'] <= first]
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--faults', nargs='+', required=True, help='fault episodes (simulate --faults)')
    p.add_argument('--clean', nargs='+', required=True, help='the same seeds without faults')
    p.add_argument('--threshold', type=float, default=0.8)
    args = p.parse_args(argv)
    from hearing_hands_ros.data.bags import list_episodes
    from hearing_hands_ros.eval.event_metrics import auc
    from hearing_hands_ros.planner import Planner
    clean = list_episodes(args.clean)
    trials = probe(list_episodes(args.faults)[:len(clean)], clean, Planner(backend='cpu', threads=1))
    for name, flat in trials.items():
        normal = [t['score'] >= args.threshold for t in flat if not t['fault']]
        faulty = [t['score'] >= args.threshold for t in flat if t['fault']]
        print(f'{name:<10} {len(flat)} actions ({len(faulty)} faulty): fault AUC '
              f'{auc([t["score"] for t in flat], [bool(t["fault"]) for t in flat]):.3f}, '
              f'false alarms / 100 {100 * np.mean(normal):.1f}, recall {np.mean(faulty):.2f}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
