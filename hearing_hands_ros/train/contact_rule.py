"""``hearing-hands train contact-rule``: choose the detector's contact rule on validation episodes.

    hearing-hands train contact-rule --data data/sim/train_amb data/sim/val_mixed \
        --detector models/sounding_object_detector.onnx

Between two objects at the fingertips the slots' mass carries no information about which one
sounded; the contact rule (``models.look_match.ContactRule``) lets the look match alone share the
probability of the candidates within a radius of the projected contact point. This command tries
every radius and weight of the grid on labelled validation episodes (the only step here that needs
ground truth: a robot team's hand-labelled episodes), as ``evaluate detector`` scores the model,
and writes the best into the detector bundle's metadata (``look_match``: ``contact_radius_px``,
``contact_weight``); the node and ``evaluate detector`` then use it. The score is the mean of the
ambiguous and the mixed accuracy, each counted with an episode as one trial
(``eval.detector.episode_accuracy``), so that neither scenario is traded away for the other.
Radius 0 (no rule) is always in the grid: if nothing beats it, none is written.
"""
from __future__ import annotations

import argparse
import json

import numpy as np

from ..errors import UserError
from ..paths import model_path

HELP = "choose the detector's contact rule (radius, look weight) on labelled validation episodes"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument('--data', nargs='+', required=True, help='labelled validation episodes (rosbag2)')
    p.add_argument('--detector', default=str(model_path('sounding_object_detector.onnx')),
                   help='detector bundle (.onnx) with a look match; its metadata is updated')
    p.add_argument('--radii', type=float, nargs='+', default=[2.0, 4.0, 6.0, 8.0, 12.0],
                   help='contact-set radii tried [look-size px]')
    p.add_argument('--weights', type=float, nargs='+', default=[0.25, 0.5, 1.0, 2.0],
                   help='look-match weights inside the contact set tried')
    p.add_argument('--outside', type=float, nargs='+', default=[1.0, 0.3, 0.1, 0.01],
                   help='factors on the candidates outside a non-empty contact set tried')
    p.add_argument('--cache', default=None, help='.npz event cache (default: none)')
    p.add_argument('--dry-run', action='store_true', help='print the grid, write nothing')


def score(metrics: dict, sel: dict) -> dict:
    """Episode-counted ambiguous and mixed accuracy of the model and their mean (``score``)."""
    from ..eval.detector import by_episode
    d = by_episode({'model': metrics['model']}, sel)['model']
    parts = [v['accuracy'] for v in d.values()]
    return {**{k: round(v['accuracy'], 4) for k, v in d.items()}, 'score': float(np.mean(parts))}


def grid(data: dict, bundle, look, weight: float, radii: list[float], weights: list[float],
         outside: list[float] = (1.0,)) -> list[dict]:
    """Every (radius, weight, outside) of the grid, and radius 0, scored on ``data``
    (``build_dataset``)."""
    from ..eval.detector import evaluate
    from ..models.look_match import ContactRule
    rows = []
    for r, w, o in [(0.0, 0.0, 1.0)] + [(r, w, o) for r in radii for w in weights for o in outside]:
        rule = ContactRule(r, w, o) if r > 0 else None
        metrics, extra = evaluate(data, {'model': bundle}, look=look, look_weight=weight, contact=rule)
        rows.append({'radius_px': r, 'weight': w, 'outside': o, **score(metrics, extra['sel'])})
    return rows


def run(args) -> int:
    from .. import runtime
    from ..data.detector_dataset import build_dataset
    from ..models.detector import DetectorConfig
    from ..models.look_match import load_look_match
    onnx_path, meta_path = runtime.bundle_paths(args.detector)
    bundle = runtime.load_bundle(onnx_path, 'detector')
    look, weight = load_look_match(bundle)
    if look is None:
        raise UserError(f'{onnx_path} has no look match; export one first (export look-match)')
    data = build_dataset(args.data, DetectorConfig.from_dict(bundle.meta['config']), cache=args.cache)
    if not len(data.get('image', [])):
        raise UserError('no sound events found in the validation data')
    rows = grid(data, bundle, look, weight, args.radii, args.weights, args.outside)
    print(f"{'radius':>7} {'weight':>7} {'outside':>8} {'ambiguous':>10} {'mixed':>7} {'score':>7}")
    for r in rows:
        print(f"{r['radius_px']:7.1f} {r['weight']:7.2f} {r['outside']:8.2f} "
              f"{r.get('ambiguous_accuracy', float('nan')):10.3f} "
              f"{r.get('mixed_accuracy', float('nan')):7.3f} {r['score']:7.3f}")
    best = max(rows, key=lambda r: r['score'])
    if args.dry_run:
        return 0
    meta = runtime.read_metadata(onnx_path)
    ref = {k: v for k, v in meta['look_match'].items() if not k.startswith('contact_')}
    if best['radius_px'] > 0:
        scores = {k: v for k, v in best.items() if k not in ('radius_px', 'weight', 'outside')}
        ref.update(contact_radius_px=best['radius_px'], contact_weight=best['weight'],
                   contact_outside=best['outside'],
                   contact_validation={'episodes': int(len(np.unique(data['episode']))), **scores})
    meta['look_match'] = ref
    meta_path.write_text(json.dumps(meta, indent=2) + '\n')
    chosen = (f"contact rule radius {best['radius_px']:g} px, weight {best['weight']:g}, outside "
              f"{best['outside']:g}" if best['radius_px'] > 0 else 'no contact rule (none beat radius 0)')
    print(f'wrote {meta_path}: {chosen}')
    return 0
