"""``hearing-hands evaluate monitor``: does the execution monitor hear the actions that went wrong?

Each bag is replayed in stamp order through the monitor core the ``contact_monitor`` node runs
(:func:`replay`: a path gets the latest camera frame at its stamp, audio chunks arrive when
their last sample is due), so the figures are the node's. Faults come from the episodes'
ground truth (``simulate --faults P``: the target moved or removed before contact, an obstacle
on the path, a grasped object slipping); an action is one trial. Methods:

* ``model``: expected contacts from the contact-event model (``Planner.expect``);
* ``kinematic``: expected contacts from the hand-written rule on the path alone;

  each optionally calibrated on normal runs (``--calibration SOURCE FILE``, from
  ``hearing-hands train monitor``), as the node's ``calibration`` parameter does;
* ``loudness_rule``: no prediction: any onset louder than ``--loud-db`` is an anomaly, and so is
  a contact motion (the second path of an action, which the planner meant to touch) in which
  nothing is heard.

Per method: ``fault_auc`` (an action's score = its most confident anomaly, 0 without one),
``precision`` and ``recall`` at the default threshold (``min_confidence``),
``false_alarms_per_100_actions`` (normal actions with an anomaly at that threshold),
``false_alarms_per_100_clean_actions`` (the same, less the normal actions whose ground truth
shows they still touched otherwise than planned: :func:`went_otherwise`; a diagnostic, the
headline figure counts every action without an injected fault as normal),
``latency_ms_p50``/``p95`` (from the fault's effect to the first anomaly's decision on the
audio clock), ``latency_after_window_ms_p95`` (``MISSING`` only: after the expected window
closed) and ``recall_by_kind``, each with an episode-bootstrap interval where it is a rate.

    hearing-hands evaluate monitor --data data/faults/test --json out/monitor.json
"""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hearing_hands_ros.audio import NS
from hearing_hands_ros.errors import UserError
from hearing_hands_ros.eval.event_metrics import auc
from hearing_hands_ros.monitor import ExecutionMonitor, MonitorConfig

HELP = 'evaluate the execution monitor (fault detection) on held-out fault episodes'
METHODS = ('model', 'kinematic', 'loudness_rule')
LOUD_DB = -6.0               # [dBFS] the loudness rule's fixed level (chosen on validation)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument('--data', nargs='+', required=True, help='held-out rosbag2 fault episodes')
    p.add_argument('--json', type=Path, required=True, help='output JSON')
    p.add_argument('--model', default=None, help='predictor bundle (default: the shipped one)')
    p.add_argument('--methods', nargs='+', choices=METHODS, default=list(METHODS))
    p.add_argument('--material-check', action='store_true',
                   help='also report WRONG_MATERIAL with the shipped sound classifier')
    p.add_argument('--calibration', nargs=2, action='append', metavar=('SOURCE', 'FILE'), default=[],
                   help='calibrate a method\'s expected events (hearing-hands train monitor), e.g. '
                        '--calibration kinematic runs/monitor_kinematic.json')
    p.add_argument('--loud-db', type=float, default=LOUD_DB,
                   help='the loudness rule\'s level [dBFS]')
    p.add_argument('--bootstrap', type=int, default=1000, help='episode resamples per interval')
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--no-progress', action='store_true')


# --- replay -----------------------------------------------------------------------------------
@dataclass
class Decision:
    """One anomaly of a replay, with the path it belongs to (absolute stamps [ns])."""

    path_ns: int
    kind: str
    confidence: float
    decided_ns: int
    window_end_ns: int | None = None     # MISSING: when its expected window closed


@dataclass
class Replay:
    """What a monitor decided over one episode."""

    paths: list = field(default_factory=list)        # [(start_ns, end_ns)]
    decisions: list = field(default_factory=list)    # [Decision]
    outcomes: list = field(default_factory=list)     # [monitor.PathOutcome]


def _decisions(found, cfg: MonitorConfig) -> list[Decision]:
    out = []
    for start_ns, a in found:
        end = None
        if a.kind == 'MISSING' and a.expected is not None:
            end = start_ns + int(cfg.window(a.expected)[1] * NS)
        out.append(Decision(start_ns, a.kind, float(a.confidence),
                            start_ns + int(round(a.decided_at * NS)), end))
    return out


CHUNK = 512                  # samples per replayed audio chunk (32 ms at 16 kHz, as recorded)


def audio_chunks(ep) -> list[tuple[int, np.ndarray]]:
    """An episode's audio as the microphone sent it: ``(first sample's stamp [ns], samples)``
    in ``CHUNK``-sample pieces."""
    sr = ep.sample_rate
    return [(ep.audio_start_ns + (k * NS) // sr, ep.audio[k:k + CHUNK])
            for k in range(0, len(ep.audio), CHUNK)]


def planner_expect(planner, source: str):
    """``expect(traj, rgb, K, aperture) -> (events, sliding)`` for :func:`replay`, as the node's
    ``expected_source`` asks ``Planner.expect``."""
    def expect(traj, rgb, K, aperture):
        return planner.expect([traj], rgb, K=K, aperture=aperture, source=source)[0]
    return expect


def replay(ep, expect, cfg: MonitorConfig, tail_s: float = 0.3, classify=None,
           calibration=None) -> Replay:
    """Feed one recorded episode (``data.bags.Episode``) through :class:`ExecutionMonitor` as
    the node gets it: ``expect(traj, rgb, K, aperture) -> (events, sliding)`` for each path at
    its stamp, with the latest camera frame and aperture then; audio in 32 ms chunks, each when
    its last sample is due, and the gripper's plan along the path where the bag has one;
    ``classify``: the sound classifier for ``WRONG_MATERIAL`` (or None)."""
    from hearing_hands_ros import trajectory as tr
    sr = ep.sample_rate
    mon = ExecutionMonitor(sr, cfg, tail_s=tail_s, classify=classify, calibration=calibration)
    K = None if ep.camera_info is None else np.asarray(ep.camera_info['K'], float).reshape(3, 3)
    out = Replay()

    def push(t0, x):
        found, done = mon.push_audio(t0, x)
        out.decisions += _decisions(found, cfg)
        out.outcomes += done
    chunks = audio_chunks(ep)
    k = 0
    for stamp, times, pos, quat in sorted(ep.paths, key=lambda p: p[0]):
        while k < len(chunks) and chunks[k][0] + (CHUNK * NS) // sr <= stamp:   # due by then
            push(*chunks[k])
            k += 1
        i = int(np.searchsorted(ep.image_stamps_ns, stamp, side='right')) - 1
        rgb = ep.images[max(i, 0)]
        traj = tr.Trajectory.from_stamps_ns(times, pos, quat, frame_id='world', origin_ns=int(times[0]),
                                            apertures=ep.planned_apertures(stamp, times))
        events, sliding = expect(traj, rgb, K, ep.aperture_at(stamp))
        out.paths.append((int(times[0]), int(times[-1])))
        out.decisions += _decisions(mon.add_path(int(times[0]), int(times[0]), int(times[-1]),
                                                 events, sliding), cfg)
    for chunk in chunks[k:]:
        push(*chunk)
    push(ep.audio_start_ns + (len(chunks) * CHUNK * NS) // sr,        # silence: judge the last
         np.zeros(int((tail_s + 0.1) * sr), np.float32))
    return out


def loudness_replay(ep, contact_paths: set, loud_db: float, tail_s: float = 0.3) -> Replay:
    """The ``loudness_rule`` baseline over one episode: every onset louder than ``loud_db``,
    and every contact motion (path stamps in ``contact_paths``) with no onset heard in it."""
    from hearing_hands_ros.events import HeardStream
    stream = HeardStream(ep.sample_rate)
    heard = [h for t0, x in audio_chunks(ep) for h in stream.push(t0, x)]
    out = Replay(paths=[(int(p[1][0]), int(p[1][-1])) for p in sorted(ep.paths, key=lambda p: p[0])])
    tail = int(tail_s * NS)
    for start, end in out.paths:
        nxt = min([s for s, _ in out.paths if s > start], default=end + tail)
        inside = [h for h in heard if start <= h.time * NS < min(nxt, end + tail)]
        for h in inside:
            score = float(np.clip((h.peak_db - loud_db) / 20.0 + 0.5, 0.0, 1.0))
            out.decisions.append(Decision(start, 'LOUD', score, int(h.time * NS) + 32_000_000))
        if start in contact_paths and not inside:
            out.decisions.append(Decision(start, 'MISSING', 1.0, end + tail, end + tail))
    return out


def load_calibration(source: str, path=None):
    """The monitor's calibration (``hearing-hands train monitor``) for ``source`` from ``path``,
    else ``models/contact_monitor_<source>.json``; None where there is none."""
    from hearing_hands_ros.monitor import Calibration
    from hearing_hands_ros.paths import model_path
    path = Path(path) if path else model_path(f'contact_monitor_{source}.json')
    if not path.is_file():
        return None
    try:
        return Calibration.from_dict(json.loads(path.read_text()))
    except (ValueError, KeyError, TypeError) as e:
        raise UserError(f'{path}: {e}') from None


def material_classifier(sr: int, path=None):
    """``samples -> {material: probability}`` of the shipped sound classifier (what the node's
    ``material_check`` runs)."""
    from hearing_hands_ros.eval.sound_classifier import PRE, SoundClassifier
    from hearing_hands_ros.paths import model_path
    path = path or model_path('material_classifier.json')
    if not Path(path).is_file():
        raise UserError(f'material classifier {path} not found')
    clf = SoundClassifier.load(path)

    def classify(x: np.ndarray) -> dict:
        p = clf.predict_proba(clf.features(x, sr, [PRE]))[0]
        return {str(c): float(v) for c, v in zip(clf.classes_, p)}
    return classify


# --- scoring ----------------------------------------------------------------------------------
GRIPPER = -1                 # the gripper's id in the ground truth's contacts


def went_otherwise(truth: dict, action: dict) -> list[str]:
    """Why an action with no injected fault still did not touch what it planned, from the ground
    truth's gripper contacts: 'idle contact' (an idle motion touched something), 'approach
    contact' (the approach did, before the contact motion), 'other object' (the contact motion
    touched an object besides its target), 'target untouched'. Empty when it went as planned."""
    mine = [c for c in truth.get('contacts', []) if c.get('gripper') and c.get('action') == action['index']]
    if action['type'] == 'idle':
        return ['idle contact'] if mine else []
    target, start = action.get('target'), action.get('contact_start')
    why = []
    if start is not None and any(c['time'] < start - 0.01 for c in mine):
        why.append('approach contact')
    if any(target not in c['objects'] and GRIPPER in c['objects'] and 0 not in c['objects'] for c in mine):
        why.append('other object')
    if not any(target in c['objects'] for c in mine):
        why.append('target untouched')
    return why


def action_trials(truth: dict, rep: Replay, threshold: float) -> list[dict]:
    """One trial per action: its fault (or None), its score (most confident anomaly of its
    paths), whether it raised an anomaly at ``threshold``, and the first such one's latency."""
    t0 = int(truth['start_time_ns'])
    faults = {f['action']: f for f in truth.get('faults', [])}
    trials = []
    for a in truth['actions']:
        lo, hi = t0 + int(a['start'] * NS), t0 + int(a['end'] * NS)
        paths = {s for s, _ in rep.paths if lo - 1_000_000 <= s < hi}
        mine = sorted((d for d in rep.decisions if d.path_ns in paths), key=lambda d: d.decided_ns)
        f = faults.get(a['index'])
        hit = [d for d in mine if d.confidence >= threshold]
        latency = after = None
        if f is not None and hit:
            effect = f.get('effect_time')
            effect_ns = t0 + int((effect if effect is not None else f['time']) * NS)
            latency = (hit[0].decided_ns - effect_ns) / 1e6
            if hit[0].window_end_ns is not None:
                after = (hit[0].decided_ns - hit[0].window_end_ns) / 1e6
        trials.append(dict(action=a['index'], type=a['type'], fault=None if f is None else f['kind'],
                           score=max((d.confidence for d in mine), default=0.0), alarm=bool(hit),
                           kinds=sorted({d.kind for d in hit}), latency_ms=latency,
                           after_window_ms=after, otherwise=[] if f else went_otherwise(truth, a)))
    return trials


def _rates(trials: list[dict]) -> dict:
    faulty = [t for t in trials if t['fault']]
    normal = [t for t in trials if not t['fault']]
    alarms = [t for t in trials if t['alarm']]
    tp = sum(t['alarm'] for t in faulty)
    clean = [t for t in normal if not t.get('otherwise')]
    return dict(precision=tp / len(alarms) if alarms else None,
                false_alarms_per_100_clean_actions=100.0 * sum(t['alarm'] for t in clean) / len(clean)
                if clean else None,
                recall=tp / len(faulty) if faulty else None,
                false_alarms_per_100_actions=100.0 * sum(t['alarm'] for t in normal) / len(normal)
                if normal else None,
                fault_auc=auc([t['score'] for t in trials], [bool(t['fault']) for t in trials]))


def summarize(per_episode: list[list[dict]], n_boot: int = 1000, seed: int = 0) -> dict:
    """The method's figures over episodes (each a list of action trials), with intervals from
    resampling episodes."""
    trials = [t for ep in per_episode for t in ep]
    out = _rates(trials)
    lat = [t['latency_ms'] for t in trials if t['latency_ms'] is not None]
    after = [t['after_window_ms'] for t in trials if t['after_window_ms'] is not None]
    out.update(latency_ms_p50=float(np.percentile(lat, 50)) if lat else None,
               latency_ms_p95=float(np.percentile(lat, 95)) if lat else None,
               latency_after_window_ms_p95=float(np.percentile(after, 95)) if after else None)
    kinds = sorted({t['fault'] for t in trials if t['fault']})
    out['recall_by_kind'] = {k: float(np.mean([t['alarm'] for t in trials if t['fault'] == k]))
                             for k in kinds}
    out['faults_by_kind'] = {k: sum(t['fault'] == k for t in trials) for k in kinds}
    out['actions'] = len(trials)
    out['faulty_actions'] = sum(bool(t['fault']) for t in trials)
    out['normal_actions_gone_otherwise'] = sum(bool(t.get('otherwise')) for t in trials)
    rng = np.random.default_rng(seed)
    boots = {k: [] for k in ('fault_auc', 'precision', 'recall', 'false_alarms_per_100_actions')}
    for _ in range(n_boot if len(per_episode) > 1 else 0):
        pick = rng.integers(0, len(per_episode), len(per_episode))
        r = _rates([t for i in pick for t in per_episode[i]])
        for k in boots:
            if r[k] is not None:
                boots[k].append(r[k])
    out['ci95'] = {k: [float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))]
                   for k, v in boots.items() if v}
    return out


def run(args) -> int:
    from tqdm import tqdm

    from hearing_hands_ros.data.bags import list_episodes, read_episode
    from hearing_hands_ros.planner import Planner
    try:
        bags = list_episodes(args.data)
    except (FileNotFoundError, ValueError) as e:
        raise UserError(str(e)) from None
    if not bags:
        raise UserError(f'no rosbag2 episodes in {" ".join(map(str, args.data))}')
    planner = Planner(args.model, backend='cpu', threads=args.threads) \
        if set(args.methods) & {'model', 'kinematic'} else None
    cfg = MonitorConfig(min_confidence=0.0)          # every score; the threshold is applied here
    classify = material_classifier(16000) if args.material_check else None
    threshold = MonitorConfig().min_confidence
    per = {m: [] for m in args.methods}
    given = dict(args.calibration)
    calibrations = {m: load_calibration(m, given[m]) if m in given else None
                    for m in args.methods if m != 'loudness_rule'}
    for bag in tqdm(bags, desc='episodes', unit='ep', disable=args.no_progress):
        ep = read_episode(bag)
        if ep.truth is None:
            raise UserError(f'{bag}: no ground truth beside it (simulate with --faults P)')
        for m in args.methods:
            if m == 'loudness_rule':
                t0 = int(ep.truth['start_time_ns'])
                contact = {t0 + int(round(a['contact_start'] * NS)) for a in ep.truth['actions']
                           if a.get('contact_start') is not None}
                contact = {s for s, *_ in ep.paths if any(abs(s - c) < 2_000_000 for c in contact)}
                rep = loudness_replay(ep, contact, args.loud_db)
            else:
                rep = replay(ep, planner_expect(planner, m), cfg, classify=classify,
                             calibration=calibrations[m])
            per[m].append(action_trials(ep.truth, rep, threshold))
    result = dict(episodes=len(bags), threshold=threshold, loud_db=args.loud_db,
                  material_check=bool(args.material_check),
                  calibrated={m: c is not None for m, c in calibrations.items()}, methods={
        m: summarize(per[m], args.bootstrap) for m in args.methods})
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1))
    print(format_table(result))
    print(f'wrote {args.json}')
    return 0


def format_table(result: dict) -> str:
    """The methods' figures as a text table."""
    cols = ('fault_auc', 'precision', 'recall', 'false_alarms_per_100_actions', 'latency_ms_p50',
            'latency_ms_p95')
    first = next(iter(result['methods'].values()))
    lines = [f'{first["actions"]} actions ({first["faulty_actions"]} faulty) of '
             f'{result["episodes"]} episodes',
             f'{"method":<15}' + ''.join(f'{c[:12]:>13}' for c in cols) + '  recall by kind']
    for name, r in result['methods'].items():
        cells = ''.join(f'{r[c]:>13.3f}' if r[c] is not None else f'{"-":>13}' for c in cols)
        kinds = ' '.join(f'{k} {v:.2f}' for k, v in r['recall_by_kind'].items())
        lines.append(f'{name:<15}{cells}  {kinds}')
    return '\n'.join(lines)
