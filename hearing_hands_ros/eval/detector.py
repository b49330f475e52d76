"""``hearing-hands evaluate detector``: the detector and its baselines on held-out episodes.

    hearing-hands evaluate detector --data data/sim/test --json out/eval_detector.json

Events = onsets detected in the audio that match a ground-truth sound event (within 30 ms) whose
sounding object is visible in the frame. Per method, each event yields candidate regions with
scores; the top one is the prediction. Every learned method answers as the node does
(``look_match.sounding_candidates``): the candidates are the frame's automatic object segments
(non-table, non-finger regions, ``automask.object_segments``, at the look size, 128 px here),
scored by the method's own output (slot probability mass on the segment; global_av: its map's
peak there); the model then rescores them with its look match. So the methods share one set of
regions and differ only in how they rank them.

* ``accuracy``: the object covering most of the top candidate's pixels (ground-truth labels) is
  the one that made the sound. The robot's own fingers count as an object here, so a region that
  is mostly fingers is a miss, for every method (table pixels are ignored).
  ``ambiguous_accuracy``: the same on the "ambiguous" scenario.
* ``mask_iou``: IoU of the top candidate's region with that object's true mask.
* ``average_precision``: candidates of all events pooled by score; a candidate is a true positive
  when its IoU with the sounding object's mask is >= 0.5 (one per event); AP over events.

Methods: ``model`` (slots + audio + look match), ``vision_only`` (same network, no audio, no
look match), ``global_av`` (audio-visual, no slots: a per-pixel map), ``nearest_gripper``
(geometry only: of the model's candidates, the one whose centroid is nearest to the gripper's
projected contact point), ``nearest_pixel`` (the same, by the region's nearest pixel: on the
ambiguous scenario the touched top edge is right at the fingertips, so this rule exploits the
contact geometry itself), ``random`` (a random one of those candidates). ``--no-look`` scores the
model's slots alone. A frame without any segment falls back to the slots' regions (at most 30 %
of the frame, not mostly fingers).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from ..models.detector import extract_candidates
from ..paths import model_path

HELP = 'evaluate the sounding-object detector and its baselines on held-out episodes'
DEFAULT_MODEL = model_path('sounding_object_detector.onnx')
METHODS = ('model', 'random', 'nearest_gripper', 'nearest_pixel', 'vision_only', 'global_av')


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument('--model', default=str(DEFAULT_MODEL), help='detector bundle (.onnx)')
    p.add_argument('--vision-only', default=None,
                   help='vision-only bundle (default: MODEL_vision_only.onnx beside the model)')
    p.add_argument('--global-av', default=None,
                   help='global audio-visual bundle (default: MODEL_global_av.onnx beside it)')
    p.add_argument('--data', nargs='+', required=True, help='held-out rosbag2 episodes')
    p.add_argument('--json', required=True, help='output JSON')
    p.add_argument('--pictures', default=None,
                   help='folder for hit/miss pictures (default: JSON name + _pictures)')
    p.add_argument('--cache', default=None, help='.npz event cache (default: none)')
    p.add_argument('--backend', default='cpu')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--no-look', action='store_true',
                   help="score the model without its look match (the slots' scores alone)")


# --- metrics ---------------------------------------------------------------------------------
def _iou(a: np.ndarray, b: np.ndarray) -> float:
    u = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / u) if u else 0.0


def _object_of(region: np.ndarray, labels: np.ndarray) -> int:
    """The label covering most of ``region``, table (0) left out, the robot's fingers
    (``sim.scene.GRIPPER_LABEL``) included."""
    ids = labels[region]
    ids = ids[ids >= 1]
    return int(np.bincount(ids).argmax()) if len(ids) else 0


def average_precision(scores: list[float], tps: list[bool], n_pos: int) -> float:
    """All-point interpolated AP of pooled detections (VOC style)."""
    if n_pos == 0:
        return float('nan')
    order = np.argsort(-np.asarray(scores, float), kind='stable')
    tp = np.asarray(tps, float)[order]
    if len(tp) == 0:
        return 0.0
    ctp = np.cumsum(tp)
    recall = ctp / n_pos
    precision = ctp / np.arange(1, len(tp) + 1)
    mrec = np.r_[0.0, recall, 1.0]
    mpre = np.r_[0.0, precision, 0.0]
    for i in range(len(mpre) - 2, -1, -1):
        mpre[i] = max(mpre[i], mpre[i + 1])
    i = np.nonzero(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


def score_events(cands: list[list[dict]], labels: np.ndarray, target: np.ndarray) -> dict:
    """Per-event outcomes of one method: correct (E,), iou (E,), pooled (score, tp) lists."""
    correct, ious, scores, tps = [], [], [], []
    for c, lab, t in zip(cands, labels, target):
        truth = lab == t
        if c:
            correct.append(_object_of(c[0]['mask'], lab) == t)
            ious.append(_iou(c[0]['mask'], truth))
        else:
            correct.append(False)
            ious.append(0.0)
        hit = False
        for x in c:                                  # sorted by score
            tp = not hit and _iou(x['mask'], truth) >= 0.5
            hit |= tp
            scores.append(x['score'])
            tps.append(tp)
    return {'correct': np.array(correct), 'iou': np.array(ious), 'scores': scores, 'tps': tps}


def summarize(res: dict, ambiguous: np.ndarray) -> dict:
    """Metrics of one method overall, on the ambiguous and on the other (mixed) events."""
    ev = np.asarray(res['event'], int)
    scores, tps = np.asarray(res['scores'], float), np.asarray(res['tps'], bool)
    out = {}
    for prefix, m in (('', np.ones_like(ambiguous)), ('ambiguous_', ambiguous),
                      ('mixed_', ~ambiguous)):
        if not m.any():
            out.update({f'{prefix}accuracy': None, f'{prefix}mask_iou': None,
                        f'{prefix}average_precision': None})
            continue
        pooled = m[ev] if len(ev) else np.zeros(0, bool)
        out[f'{prefix}accuracy'] = float(res['correct'][m].mean())
        out[f'{prefix}mask_iou'] = float(res['iou'][m].mean())
        out[f'{prefix}average_precision'] = average_precision(
            list(scores[pooled]), list(tps[pooled]), int(m.sum()))
    return out


def paired_difference(a: np.ndarray, b: np.ndarray, groups: np.ndarray, n: int = 2000,
                      seed: int = 0) -> dict:
    """Mean of a - b (per-event 0/1 correctness of two methods on the same events) with a 95 %
    interval from a cluster bootstrap over ``groups`` (episodes: events of one episode share the
    scene, so they are resampled together)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    ids, inv = np.unique(np.asarray(groups), return_inverse=True)
    sums = np.bincount(inv, a - b, minlength=len(ids))                 # per-episode sums
    counts = np.bincount(inv, minlength=len(ids)).astype(float)
    pick = np.random.default_rng(seed).integers(0, len(ids), (n, len(ids)))
    boot = sums[pick].sum(1) / np.maximum(counts[pick].sum(1), 1.0)
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return {'difference': float((a - b).mean()), 'ci95': [float(lo), float(hi)]}


def model_vs_baselines(metrics: dict, sel: dict) -> dict:
    """Accuracy of the model minus each baseline's on the same events, overall and ambiguous,
    with episode-bootstrap 95 % intervals (an interval above 0: the model is better)."""
    if metrics.get('model') is None:
        return {}
    amb = sel['scenario'] == 'ambiguous'
    out = {}
    for name, m in metrics.items():
        if name == 'model' or m is None:
            continue
        a, b = metrics['model']['correct'], m['correct']
        out[name] = {'accuracy': paired_difference(a, b, sel['episode'])}
        if amb.any():
            out[name]['ambiguous_accuracy'] = paired_difference(a[amb], b[amb], sel['episode'][amb])
    return out


# --- methods ---------------------------------------------------------------------------------
def run_bundle(bundle, data: dict, batch: int = 64) -> tuple[np.ndarray, np.ndarray]:
    scores, masks = [], []
    for i in range(0, len(data['image']), batch):
        img = data['image'][i:i + batch].astype(np.float32).transpose(0, 3, 1, 2) / 255.0
        mel = data['logmel'][i:i + batch].astype(np.float32)[:, None]
        feeds = {'image': np.ascontiguousarray(img), 'logmel': mel}
        out = bundle.run({k: v for k, v in feeds.items() if k in bundle.meta['inputs']})
        scores.append(out['scores'])
        masks.append(out['masks'])
    return np.concatenate(scores), np.concatenate(masks)


def object_like(cands: list[dict], gripper: np.ndarray, max_area: float = 0.3) -> list[dict]:
    return [c for c in cands if c['mask'].mean() <= max_area
            and (c['mask'] & gripper).sum() <= 0.5 * c['mask'].sum()]


def scored_candidates(scores: np.ndarray, masks: np.ndarray, gripper: np.ndarray) -> list[list[dict]]:
    """Per event, a bundle's object-like candidates, best first: what every method is scored
    on (and the checkpoint choice in training). scores (E,K), masks (E,K,S,S), gripper (E,S,S)."""
    return [object_like(extract_candidates(a, b), g) for a, b, g in zip(scores, masks, gripper)]


def nearest_gripper(cands: list[dict], uv: np.ndarray, rule: str = 'centroid') -> list[dict]:
    """Rescore by closeness of each region to the projected contact point ``uv`` (pixels):
    distance to the region's centroid (``rule='centroid'``) or to its nearest pixel ('pixel')."""
    out = []
    for c in cands:
        ys, xs = np.nonzero(c['mask'])
        d2 = (xs + 0.5 - uv[0]) ** 2 + (ys + 0.5 - uv[1]) ** 2
        d = float(np.sqrt(d2.min())) if rule == 'pixel' else float(
            np.hypot(xs.mean() + 0.5 - uv[0], ys.mean() + 0.5 - uv[1]))
        out.append({**c, 'score': 1.0 / (1.0 + d)})
    return sorted(out, key=lambda c: -c['score'])


def labelled_events(data: dict) -> dict:
    """The per-event arrays of a data set (``build_dataset``) restricted to the events whose
    ground-truth sounding object is known and visible in the frame."""
    labels, target = data['labels'], data['target'].astype(int)
    keep = np.array([t > 0 and (lab == t).any() for lab, t in zip(labels, target)], bool)
    return {k: v[keep] for k, v in data.items() if k != 'episodes' and len(v) == len(keep)}


def evaluate(data: dict, bundles: dict, seed: int = 0, look=None, look_weight: float = 0.0
             ) -> tuple[dict, dict]:
    """bundles: method -> loaded bundle (or None); look: the model's ``look_match`` bundle (None:
    slots alone). Returns (per-method metrics, per-method per-event candidates) over the events
    with a visible ground-truth sounding object. Every learned method answers with the same
    candidates, the frame's automatic object segments (``look_match.sounding_candidates``), so
    they differ only in how they score them; regions, labels and pictures are at the look size."""
    from ..data.detector_dataset import look_segments
    from ..models.look_match import segment_regions, sounding_candidates
    sel = labelled_events(data)
    view = {**sel, 'image': sel['look_image'], 'labels': sel['look_labels'],
            'gripper': sel['look_gripper'], 'contact_uv': sel['look_uv']}
    segments = look_segments(sel)
    ambiguous = sel['scenario'] == 'ambiguous'
    rng = np.random.default_rng(seed)

    # the frame half of every answer (segments, their looks), once for all methods
    regions = [segment_regions(seg, img if look is not None else None)
               for seg, img in zip(segments, view['image'])]

    def answer(outputs, with_look: bool) -> list[list[dict]]:
        s, m = outputs
        return [object_like(sounding_candidates(
                    s[i], m[i], segments[i], view['image'][i],
                    sel['look_sound'][i].astype(np.float32).ravel(),
                    look if with_look else None, look_weight if with_look else 0.0,
                    regions=regions[i]),
                    view['gripper'][i], max_area=1.0) for i in range(len(s))]

    cands: dict[str, list] = {}
    if bundles.get('model') is not None:
        outputs = run_bundle(bundles['model'], sel)
        cands['model'] = answer(outputs, True)
        objs = answer(outputs, False) if look is not None else cands['model']
        cands['random'] = [sorted([{**x, 'score': float(rng.random())} for x in c],
                                  key=lambda x: -x['score']) for c in objs]
        for name, rule in (('nearest_gripper', 'centroid'), ('nearest_pixel', 'pixel')):
            cands[name] = [nearest_gripper(c, uv, rule) for c, uv in zip(objs, view['contact_uv'])]
    for name in ('vision_only', 'global_av'):
        if bundles.get(name) is not None:
            cands[name] = answer(run_bundle(bundles[name], sel), False)
    metrics = {}
    for name in METHODS:
        if name not in cands:
            metrics[name] = None
            continue
        res = score_events(cands[name], view['labels'], sel['target'])
        res['event'] = [i for i, c in enumerate(cands[name]) for _ in c]
        metrics[name] = summarize(res, ambiguous)
        metrics[name]['correct'] = res['correct']
    return metrics, {'cands': cands, 'sel': view}


# --- pictures --------------------------------------------------------------------------------
def contact_sheet(sel: dict, cands: list[list[dict]], correct: np.ndarray, path: Path,
                  n: int = 8, scale: int | None = None) -> None:
    """Two rows: hits (green) and misses (red): predicted region filled, true object outlined."""
    scale = scale or max(1, 192 // sel['image'].shape[1])
    tiles = []
    for want in (True, False):
        idx = np.nonzero(correct == want)[0][:n]
        row = []
        for i in idx:
            img = cv2.resize(sel['image'][i], None, fx=scale, fy=scale,
                             interpolation=cv2.INTER_NEAREST)
            colour = np.array([0, 200, 0] if want else [230, 30, 30], np.float32)
            if cands[i]:
                m = cv2.resize(cands[i][0]['mask'].astype(np.uint8), img.shape[1::-1],
                               interpolation=cv2.INTER_NEAREST) > 0
                img[m] = (0.5 * img[m] + 0.5 * colour).astype(np.uint8)
                cv2.putText(img, f"{cands[i][0]['score']:.2f}", (2, 12), cv2.FONT_HERSHEY_SIMPLEX,
                            0.4, (255, 255, 255), 1)
            truth = cv2.resize((sel['labels'][i] == sel['target'][i]).astype(np.uint8),
                               img.shape[1::-1], interpolation=cv2.INTER_NEAREST)
            contours, _ = cv2.findContours(truth, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
            cv2.drawContours(img, contours, -1, (255, 255, 0), 1)
            tag = str(sel['scenario'][i])[:3]
            cv2.putText(img, tag, (2, img.shape[0] - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                        (255, 255, 255), 1)
            row.append(img)
        size = sel['image'].shape[1] * scale
        row += [np.zeros((size, size, 3), np.uint8)] * (n - len(row))
        tiles.append(np.concatenate(row, axis=1))
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(np.concatenate(tiles, axis=0), cv2.COLOR_RGB2BGR))


def run(args) -> int:
    from .. import runtime
    from ..data.detector_dataset import build_dataset
    from ..models.detector import DetectorConfig
    from ..models.look_match import load_look_match
    model_path = Path(args.model).with_suffix('.onnx')
    stem = model_path.with_suffix('')
    paths = {'model': model_path,
             'vision_only': Path(args.vision_only) if args.vision_only else Path(f'{stem}_vision_only.onnx'),
             'global_av': Path(args.global_av) if args.global_av else Path(f'{stem}_global_av.onnx')}
    bundles = {}
    for name, p in paths.items():
        if name != 'model' and not p.is_file():
            print(f'note: no {name} bundle at {p}; that baseline is skipped')
            bundles[name] = None
            continue
        bundles[name] = runtime.load_bundle(p, 'detector', backend=args.backend)
    look, weight = (None, 0.0) if args.no_look else load_look_match(bundles['model'], args.backend)
    cfg = DetectorConfig.from_dict(bundles['model'].meta['config'])
    data = build_dataset(args.data, cfg, cache=args.cache)
    if not len(data.get('image', [])):
        print('error: no sound events found in the data')
        return 1
    metrics, extra = evaluate(data, bundles, seed=args.seed, look=look, look_weight=weight)
    sel = extra['sel']
    auto = data['auto_iou'][data['auto_iou'] >= 0]
    out = {'episodes': int(len(data['episodes'])),
           'events': int(len(sel['target'])),
           'ambiguous_events': int((sel['scenario'] == 'ambiguous').sum()),
           'onsets_detected': int(len(data['target'])),
           'onsets_matched': int((data['target'] > 0).sum()),
           'automask_iou': float(auto.mean()) if len(auto) else None,
           'automask_iou_by_scenario': {
               sc: float(data['auto_iou'][(data['scenario'] == sc) & (data['auto_iou'] >= 0)].mean())
               for sc in np.unique(data['scenario'])
               if ((data['scenario'] == sc) & (data['auto_iou'] >= 0)).any()},
           'methods': {k: (None if v is None else {kk: vv for kk, vv in v.items() if kk != 'correct'})
                       for k, v in metrics.items()},
           'model_minus_baseline': model_vs_baselines(metrics, sel),
           'models': {k: str(v) for k, v in paths.items()},
           'look_match': None if look is None else {'bundle': str(look.path), 'weight': weight}}
    jp = Path(args.json)
    jp.parent.mkdir(parents=True, exist_ok=True)
    jp.write_text(json.dumps(out, indent=2) + '\n')
    pics = Path(args.pictures) if args.pictures else jp.with_name(jp.stem + '_pictures')
    for name in ('model', 'nearest_gripper', 'vision_only'):
        if metrics.get(name) is not None:
            contact_sheet(sel, extra['cands'][name], metrics[name]['correct'], pics / f'{name}.png')
            amb = sel['scenario'] == 'ambiguous'
            if amb.any():
                sub = {k: v[amb] for k, v in sel.items()}
                contact_sheet(sub, [c for c, a in zip(extra['cands'][name], amb) if a],
                              metrics[name]['correct'][amb], pics / f'{name}_ambiguous.png')
    print(json.dumps(out['methods'], indent=1))
    for name, d in out['model_minus_baseline'].items():
        print(f'model - {name}: ' + ', '.join(
            f"{k} {v['difference']:+.3f} [{v['ci95'][0]:+.3f}, {v['ci95'][1]:+.3f}]" for k, v in d.items()))
    print(f'wrote {jp} and pictures in {pics}')
    return 0
