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
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np

from ..models.detector import extract_candidates
from ..paths import model_path

HELP = 'evaluate the sounding-object detector and its baselines on held-out episodes'
DEFAULT_MODEL = model_path('sounding_object_detector.onnx')
METHODS = ('model', 'model_memory', 'random', 'nearest_gripper', 'nearest_pixel', 'vision_only', 'global_av')


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
    p.add_argument('--contact-radius', type=float, default=None,
                   help="contact rule radius [look-size px] (default: the detector bundle's; 0: "
                        "no contact rule)")
    p.add_argument('--contact-weight', type=float, default=None,
                   help="look-match weight inside the contact set (default: the bundle's)")
    p.add_argument('--memory-size', type=int, default=32,
                   help='object sound memory of the model_memory method [entries] (0: skip it)')


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


def episode_accuracy(correct: np.ndarray, episode: np.ndarray, n: int = 2000, seed: int = 0) -> dict:
    """Accuracy with an episode as one trial: the mean over episodes of each episode's share of
    correct events (every strike of an ambiguous episode hits the same object, so its events are
    not independent), with a 95 % interval from resampling episodes."""
    ids, inv = np.unique(np.asarray(episode), return_inverse=True)
    if not len(ids):
        return {'accuracy': None, 'ci95': None, 'episodes': 0}
    per = np.bincount(inv, np.asarray(correct, float)) / np.bincount(inv)
    boot = per[np.random.default_rng(seed).integers(0, len(per), (n, len(per)))].mean(1)
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return {'accuracy': float(per.mean()), 'ci95': [float(lo), float(hi)], 'episodes': int(len(ids))}


def by_episode(metrics: dict, sel: dict) -> dict:
    """``episode_accuracy`` of every method on the ambiguous and on the mixed episodes."""
    amb = sel['scenario'] == 'ambiguous'
    out = {}
    for name, m in metrics.items():
        if m is None:
            continue
        out[name] = {f'{sc}_accuracy': episode_accuracy(m['correct'][mask], sel['episode'][mask])
                     for sc, mask in (('ambiguous', amb), ('mixed', ~amb)) if mask.any()}
    return out


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
    from ..models.look_match import nearest_pixel_distance
    out = []
    for c in cands:
        ys, xs = np.nonzero(c['mask'])
        d = nearest_pixel_distance(c['mask'], uv) if rule == 'pixel' else float(
            np.hypot(xs.mean() + 0.5 - uv[0], ys.mean() + 0.5 - uv[1]))
        out.append({**c, 'score': 1.0 / (1.0 + d)})
    return sorted(out, key=lambda c: -c['score'])


def _locator(sel: dict, i: int):
    """``automask.segment_locator`` of event i (look-size masks), from the cached TCP pose and
    camera; None where the cache has none."""
    from ..automask import segment_locator
    if 'look_tcp' not in sel:
        return None
    tcp, cam = sel['look_tcp'][i], sel['look_camera'][i]
    size = sel['look_image'].shape[1]
    return segment_locator((tcp[:3], tcp[3:]), (cam[9:12], cam[12:]), cam[:9].reshape(3, 3),
                           (size, size), size)


def labelled_events(data: dict) -> dict:
    """The per-event arrays of a data set (``build_dataset``) restricted to the events whose
    ground-truth sounding object is known and visible in the frame."""
    labels, target = data['labels'], data['target'].astype(int)
    keep = np.array([t > 0 and (lab == t).any() for lab, t in zip(labels, target)], bool)
    return {k: v[keep] for k, v in data.items() if k != 'episodes' and len(v) == len(keep)}


def evaluate(data: dict, bundles: dict, seed: int = 0, look=None, look_weight: float = 0.0,
             contact=None, memory_cfg=None) -> tuple[dict, dict]:
    """bundles: method -> loaded bundle (or None); look: the model's ``look_match`` bundle (None:
    slots alone); contact: the model's ``look_match.ContactRule`` (None: none); memory_cfg: a
    ``sound_memory.MemoryConfig`` to score ``model_memory`` too (needs the look match and the
    contact rule). Returns
    (per-method metrics, per-method per-event candidates) over the events with a visible
    ground-truth sounding object. Every learned method answers with the same
    candidates, the frame's automatic object segments (``look_match.sounding_candidates``), so
    they differ only in how they score them; regions, labels and pictures are at the look size."""
    from ..data.detector_dataset import look_segments
    from ..models.look_match import segment_regions, sounding_candidates
    from ..models.sound_memory import SoundMemory
    sel = labelled_events(data)
    view = {**sel, 'image': sel['look_image'], 'labels': sel['look_labels'],
            'gripper': sel['look_gripper'], 'contact_uv': sel['look_uv']}
    segments = look_segments(sel)
    ambiguous = sel['scenario'] == 'ambiguous'
    rng = np.random.default_rng(seed)

    # the frame half of every answer (segments, their looks), once for all methods
    regions = [segment_regions(seg, img if look is not None else None)
               for seg, img in zip(segments, view['image'])]

    def answer(outputs, with_look: bool, remember: bool = False) -> list[list[dict]]:
        """Every event's candidates; with ``remember``, with an object sound memory as the node
        runs it: each episode's events in time order, the memory filled by its lone touches (a
        new memory per episode: a new scene)."""
        s, m = outputs
        out, memory = [], None
        for i in range(len(s)):
            if remember and (memory is None or sel['episode'][i] != sel['episode'][i - 1]):
                memory = SoundMemory(memory_cfg)
            sound = sel['look_sound'][i].astype(np.float32).ravel()
            c = sounding_candidates(s[i], m[i], segments[i], view['image'][i], sound,
                                    look if with_look else None, look_weight if with_look else 0.0,
                                    regions=regions[i], contact=contact if with_look else None,
                                    contact_uv=view['contact_uv'][i], memory=memory,
                                    locate=_locator(sel, i) if remember else None)
            if memory is not None:
                memory.observe(c, sound)
            out.append(object_like(c, view['gripper'][i], max_area=1.0))
        return out

    cands: dict[str, list] = {}
    if bundles.get('model') is not None:
        outputs = run_bundle(bundles['model'], sel)
        cands['model'] = answer(outputs, True)
        if look is not None and contact is not None and memory_cfg is not None and memory_cfg.size:
            cands['model_memory'] = answer(outputs, True, remember=True)
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


def contact_rule(bundle, args):
    """The detector bundle's contact rule, with ``--contact-radius`` / ``--contact-weight``
    overriding it (a radius of 0: none)."""
    from ..models.look_match import ContactRule
    rule = ContactRule.from_meta(bundle.meta.get('look_match')) or ContactRule()
    if args.contact_radius is not None:
        rule.radius_px = args.contact_radius
    if args.contact_weight is not None:
        rule.weight = args.contact_weight
    return rule if rule.radius_px > 0 else None


def run(args) -> int:
    from .. import runtime
    from ..data.detector_dataset import build_dataset
    from ..models.detector import DetectorConfig
    from ..models.look_match import load_look_match
    from ..models.sound_memory import MemoryConfig
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
    contact = None if look is None else contact_rule(bundles['model'], args)
    cfg = DetectorConfig.from_dict(bundles['model'].meta['config'])
    data = build_dataset(args.data, cfg, cache=args.cache)
    if not len(data.get('image', [])):
        print('error: no sound events found in the data')
        return 1
    memory = MemoryConfig(size=args.memory_size)
    metrics, extra = evaluate(data, bundles, seed=args.seed, look=look, look_weight=weight,
                              contact=contact, memory_cfg=memory)
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
           'by_episode': by_episode(metrics, sel),
           'model_minus_baseline': model_vs_baselines(metrics, sel),
           'models': {k: str(v) for k, v in paths.items()},
           'look_match': None if look is None else {
               'bundle': str(look.path), 'weight': weight,
               'contact_rule': None if contact is None else asdict(contact)}}
    jp = Path(args.json)
    jp.parent.mkdir(parents=True, exist_ok=True)
    jp.write_text(json.dumps(out, indent=2) + '\n')
    pics = Path(args.pictures) if args.pictures else jp.with_name(jp.stem + '_pictures')
    for name in ('model', 'model_memory', 'nearest_gripper', 'vision_only'):
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
    for name, d in out['by_episode'].items():
        print(f'{name} per episode: ' + ', '.join(
            f"{k} {v['accuracy']:.3f} [{v['ci95'][0]:.3f}, {v['ci95'][1]:.3f}] ({v['episodes']} episodes)"
            for k, v in d.items()))
    print(f'wrote {jp} and pictures in {pics}')
    return 0


# --- replay: a recording through the node's own pipeline -------------------------------------
def replay_episode(ep, pipe, chunk: int = 512) -> list:
    """Feed a recorded episode (``bags.read_episode``) through a ``DetectorPipeline`` as the node
    is fed: camera_info first, then frames, poses, apertures and audio chunks of ``chunk``
    samples in stamp order; each onset is answered as soon as its audio window has arrived.
    Returns the ``Answer``s in onset order. What the node would publish, without DDS."""
    from .. import audio as A
    from ..detector_pipeline import InputError
    info = ep.camera_info or {}
    if info.get('K') is not None:
        pipe.set_camera(np.asarray(info['K'], float), int(info['height']), int(info['width']))
    pipe.set_format(ep.audio_format or A.AudioFormat(1, int(ep.sample_rate), 'F32LE', 'wave'))
    sr = int(ep.sample_rate)
    stream = [(int(t), 0, ('frame', i)) for i, t in enumerate(ep.image_stamps_ns)]
    stream += [(int(t), 1, ('pose', i)) for i, t in enumerate(ep.pose_stamps_ns)]
    stream += [(int(t), 1, ('aperture', i)) for i, t in enumerate(ep.aperture_stamps_ns)]
    stream += [(int(ep.audio_start_ns) + int(round(c * 1e9 / sr)), 2, ('audio', c))
               for c in range(0, len(ep.audio) - chunk + 1, chunk)]
    answers, pending = [], []
    for _, _, (kind, i) in sorted(stream, key=lambda s: (s[0], s[1])):
        if kind == 'frame':
            pipe.push_frame(int(ep.image_stamps_ns[i]), ep.images[i], 'camera')
        elif kind == 'pose':
            pipe.set_pose(int(ep.pose_stamps_ns[i]), ep.positions[i], ep.orientations[i])
        elif kind == 'aperture':
            pipe.set_aperture(float(ep.apertures[i]))
        else:
            t0 = int(ep.audio_start_ns) + int(round(i * 1e9 / sr))
            pending += pipe.push_audio(t0, np.asarray(ep.audio[i:i + chunk], np.float32))
        for onset in [o for o in pending if pipe.ready(o, 0.0)]:
            pending.remove(onset)
            try:
                answers.append(pipe.detect(onset))
            except InputError:
                pass
            pipe.refit_table()
    return answers
