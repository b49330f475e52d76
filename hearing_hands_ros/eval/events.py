"""``hearing-hands evaluate events``: what a planner is told about its paths, scored on held-out
episodes: will a path make an audible contact, when, how loud, on what.

Every path window of the bags is scored against the contacts heard in its own recording
(``data.event_dataset``: onsets and levels found in the audio, slide-aware, up to the next path's
start): no labels are needed except the struck material. Methods:

* ``model``: the contact-event model (``models/contact_events`` or ``--model``), without the
  intended contact;
* ``model_with_contact``: the same, told the height of the surface each path means to touch
  (taken from the recording: the planned TCP height at the first heard contact);
* ``kinematic``: a hand-written rule from the path alone (``models/kinematic_events.py``);
* ``end_to_end_flow``: the contacts heard in the audio the rectified-flow predictor renders
  (``models/contact_sound_predictor``, with ``--predictor``; its onsets as events);
* ``second_take`` (``--second-take BAGS``: the same motions recorded again): the ceiling.

Metrics per method (``eval/event_metrics.py``): contact_auc, event_f1 and event_ap at +-25 ms,
onset_error_ms, first_onset_error_ms, loudness_spearman, event_level_error_db,
material_accuracy (with the majority-material rate beside it), each with an episode-bootstrap
95 % interval; an episode is one trial.

    hearing-hands evaluate events --data data/sim/test --json out/eval_events.json
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from hearing_hands_ros.errors import UserError
from hearing_hands_ros.events import ContactEvent
from hearing_hands_ros.eval.event_metrics import METRICS, Window, summarize
from hearing_hands_ros.models.kinematic_events import kinematic_predictions

HELP = 'evaluate the contact-event model and its baselines on held-out episodes'


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument('--data', nargs='+', required=True, help='held-out rosbag2 episodes')
    p.add_argument('--json', type=Path, required=True, help='output JSON')
    p.add_argument('--model', default=None,
                   help='contact-event bundle (default: models/contact_events.onnx)')
    p.add_argument('--predictor', action='store_true',
                   help='also score the rectified-flow predictor\'s rendered audio '
                        '(end_to_end_flow; about 0.2 s a window)')
    p.add_argument('--second-take', nargs='+', default=None,
                   help='the same episodes recorded again (simulate --sound-seed-offset): ceiling')
    p.add_argument('--targets', choices=('audio', 'truth'), default='audio',
                   help='score against the contacts heard in the recording, or ground truth')
    p.add_argument('--gripper', choices=('plan', 'recorded', 'none'), default='plan',
                   help="the finger opening along each path: 'plan' (the bag's /planned_gripper, "
                        "else the opening at the path start: what the nodes get live), "
                        "'recorded' (the joint states while the path ran) or 'none' (the "
                        "opening at the path start, held)")
    p.add_argument('--cache', default=None, help='window cache folder (default: beside JSON)')
    p.add_argument('--bootstrap', type=int, default=1000, help='episode resamples per interval')
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--no-progress', action='store_true')


def windows(ed, predicted: list[list[ContactEvent]]) -> list[Window]:
    """Score windows of an ``EventData`` with one method's events."""
    from hearing_hands_ros.models.events import MATERIALS
    out = []
    for i, pred in enumerate(predicted):
        m = ed.meta[i].get('material')
        out.append(Window(list(pred), list(ed.heard[i]), m if m in MATERIALS else None,
                          ed.meta[i].get('bag', ed.meta[i]['episode'])))
    return out


def load_events_bundle(bundle_path, threads: int = 1):
    """The contact-event bundle (CPU) and its checked config."""
    from hearing_hands_ros.models import events as E
    from hearing_hands_ros.runtime import load_bundle
    bundle = load_bundle(bundle_path, 'events', backend='cpu', threads=threads,
                         expect={'materials': list(E.MATERIALS)})
    return bundle, E.checked_config(bundle.meta)


def event_model_predictions(bundle, ed, with_contact: bool) -> list:
    """A loaded event bundle's events for every window (optionally told the intended contact)."""
    from hearing_hands_ros.models import events as E
    cfg = E.checked_config(bundle.meta)
    x = E.with_contact(ed.inputs, ed.contact_z) if with_contact else ed.inputs
    out = []
    for s in range(0, len(x), 32):
        out += E.decode_batch(bundle.run({'inputs': x[s:s + 32]}), x[s:s + 32],
                              ed.valid[s:s + 32], cfg)
    return out


def heard_as_predicted(heard: list) -> list[ContactEvent]:
    """Heard events (of a rendered or re-recorded sound) as certain predicted events."""
    return [ContactEvent(e.time, 0.0, 1.0, e.peak_db, e.kind, '', {}, np.full(3, np.nan),
                         e.duration) for e in heard]


def run(args) -> int:
    from tqdm import tqdm

    from hearing_hands_ros.data import event_dataset as ED
    from hearing_hands_ros.data import predictor_dataset as D
    from hearing_hands_ros.models import events as E
    from hearing_hands_ros.models.predictor import PredictorConfig
    from hearing_hands_ros.paths import model_path
    model = Path(args.model) if args.model else model_path('contact_events.onnx')
    if not model.with_suffix('.json').is_file():
        raise UserError(f'contact-event bundle {model} not found')
    pcfg = PredictorConfig()
    cache = args.cache or str(Path(args.json).parent / 'cache')
    try:
        data = D.load_windows(args.data, pcfg, cache_dir=cache, progress=not args.no_progress,
                              gripper=args.gripper)
    except (FileNotFoundError, ValueError) as e:
        raise UserError(str(e)) from None
    bundle, cfg = load_events_bundle(model, args.threads)
    ed = ED.build(data, cfg, args.targets, pcfg.sample_rate)
    methods, skipped = {}, {}
    methods['model'] = event_model_predictions(bundle, ed, False)
    methods['model_with_contact'] = event_model_predictions(bundle, ed, True)
    methods['kinematic'] = kinematic_predictions(data.traj, ed.valid)
    if args.predictor:
        from hearing_hands_ros.events import heard_events
        from hearing_hands_ros.planner import Planner
        planner = Planner(backend='cpu', threads=args.threads)
        flow = []
        for i in tqdm(range(len(data)), desc='flow audio', disable=args.no_progress):
            b = D.full_batch(data, [i], int(data.valid[i]))
            pred = planner.predict_features(b['traj'].numpy(), b['image'].numpy(),
                                            b['crops'].numpy(), seed=i, looks=b['looks'].numpy())[0]
            n = int(ed.valid[i])
            flow.append(heard_as_predicted([e for e in heard_events(pred.audio, pcfg.sample_rate)
                                            if e.time * pcfg.frame_rate < n]))
        methods['end_to_end_flow'] = flow
    else:
        skipped['end_to_end_flow'] = 'pass --predictor to render the flow predictor\'s audio'
    if args.second_take:
        take2 = D.load_windows(args.second_take, pcfg, cache_dir=cache, progress=not args.no_progress,
                               gripper=args.gripper)
        if len(take2) != len(data):
            raise UserError('--second-take must hold the same episodes as --data')
        ed2 = ED.build(take2, E.EventConfig(), args.targets, pcfg.sample_rate)   # heard only
        methods['second_take'] = [heard_as_predicted(h) for h in ed2.heard]
    else:
        skipped['second_take'] = 'pass --second-take BAGS (the same motions recorded again)'
    skipped['events_oracle'] = 'the audio generator is not conditioned on events yet'
    result = dict(episodes=len({m.get('bag', m['episode']) for m in ed.meta}), windows=len(ed),
                  gripper=args.gripper,
                  targets=args.targets, model=str(model), methods={}, skipped=skipped,
                  training=bundle.meta.get('training', {}))
    for name, pred in methods.items():
        result['methods'][name] = summarize(windows(ed, pred), n_boot=args.bootstrap)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1))
    print(format_table(result))
    print(f'wrote {args.json}')
    return 0


def format_table(result: dict) -> str:
    """The methods' figures as a text table."""
    names = [m for m in METRICS if any(r.get(m) is not None for r in result['methods'].values())]
    lines = [f'{result["windows"]} windows of {result["episodes"]} episodes '
             f'(targets: {result["targets"]})',
             f'{"method":<20}' + ''.join(f'{n[:14]:>15}' for n in names)]
    for method, r in result['methods'].items():
        cells = ''.join(f'{"-" if r.get(n) is None else f"{r[n]:.3f}":>15}' for n in names)
        lines.append(f'{method:<20}{cells}')
    lines += [f'skipped {k}: {v}' for k, v in result['skipped'].items()]
    return '\n'.join(lines)
