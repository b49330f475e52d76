"""``hearing-hands train look-match``: teach the detector which looks go with which sounds.

    hearing-hands train look-match --data $TRAIN --val $VAL --detector models/sounding_object_detector.onnx \
        --out runs/look_match

Episodes -> cached events (``data.detector_dataset``, shared with ``train detector``) -> per
event the fine log-mel of the sound and the look statistics of the *automatic* mask of the touched
object (gripper pixels left out) -> cross-event InfoNCE (``models.look_match.info_nce``). No
ground truth is read for training.

With ``--val EPISODES`` (labelled, as for ``train detector``) and ``--detector BUNDLE`` every
``--val-every`` steps the whole pipeline is scored on the validation events: the detector's slots
score the automatic segments, the look match rescores them with each weight of ``--weights``,
and the label covering most of the top segment must be the struck object (mean over scenarios,
as ``train detector`` scores). The best (step, weight) is kept as ``best.pt``; ``last.pt`` is the
last step, ``log.csv`` one row per evaluation. Attach the result to a detector bundle with
``hearing-hands export look-match``. A few minutes on one CPU core.
"""
from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np
import torch

from ..errors import UserError
from ..models.look_match import (LookConfig, LookMatch, info_nce, look_features, save_checkpoint)

HELP = 'train the look match (which object looks like the sound) from rosbag2 episodes'


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument('--data', nargs='+', required=True, help='rosbag2 episode folders (or parents)')
    p.add_argument('--out', required=True, help='run folder (best.pt, last.pt, log.csv, args.json)')
    p.add_argument('--val', nargs='*', default=None, help='labelled validation episodes')
    p.add_argument('--detector', default=None,
                   help='detector bundle whose slots score the segments during validation '
                        '(default: the shipped one)')
    p.add_argument('--weights', type=float, nargs='+', default=[0.05, 0.1, 0.15, 0.25, 0.5],
                   help='look-match weights tried on validation')
    p.add_argument('--steps', type=int, default=3000)
    p.add_argument('--batch', type=int, default=128)
    p.add_argument('--lr', type=float, default=1e-3)
    p.add_argument('--val-every', type=int, default=250)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--cache', default=None,
                   help='event cache .npz (default OUT/dataset.npz; the one of train detector '
                        'serves as well)')
    p.add_argument('--no-progress', action='store_true')


def touched_looks(data: dict) -> tuple[np.ndarray, np.ndarray]:
    """Training pairs: sounds (N, A) float32 and the looks of their touched objects (N, F)."""
    sounds, looks = [], []
    for i in range(len(data['look_image'])):
        f = look_features(data['look_image'][i], data['look_automask'][i] & ~data['look_gripper'][i])
        if f is not None:
            sounds.append(data['look_sound'][i].astype(np.float32).ravel())
            looks.append(f)
    if not looks:
        return np.zeros((0, 0), np.float32), np.zeros((0, 0), np.float32)
    return np.stack(sounds), np.stack(looks)


class Validation:
    """The pipeline's accuracy on labelled events for a look match and a list of weights."""

    def __init__(self, val: dict, detector):
        from ..data.detector_dataset import look_segments
        from ..eval.detector import run_bundle
        from ..models.look_match import segment_regions
        self.val = val
        self.scores, self.masks = run_bundle(detector, val)
        self.segments = look_segments(val)
        # the frame half of every answer (segments, their looks) does not change during training
        self.regions = [segment_regions(seg, img) for seg, img in zip(self.segments, val['look_image'])]

    def __call__(self, net: LookMatch, weights: list[float]) -> dict[float, dict]:
        from types import SimpleNamespace

        from ..eval.detector import score_events
        from ..models.look_match import runner, sounding_candidates
        v = self.val
        look = SimpleNamespace(run=runner(net))
        out = {}
        for w in weights:
            cands = [sounding_candidates(s, m, seg, img, snd.astype(np.float32).ravel(), look, w,
                                         regions=r)
                     for s, m, seg, img, snd, r in zip(self.scores, self.masks, self.segments,
                                                       v['look_image'], v['look_sound'], self.regions)]
            correct = np.asarray(score_events(cands, v['look_labels'], v['target'])['correct'], float)
            res = {str(sc): float(correct[v['scenario'] == sc].mean()) for sc in np.unique(v['scenario'])}
            res['score'] = float(np.mean(list(res.values())))
            out[w] = res
        return out


def run(args) -> int:
    from .. import runtime
    from ..data.detector_dataset import build_dataset
    from ..eval.detector import labelled_events
    from ..models.detector import DetectorConfig, torch_loader as det_loader
    from ..paths import model_path
    torch.set_num_threads(max(1, args.threads))
    torch.manual_seed(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / 'args.json').write_text(json.dumps(vars(args), indent=2, default=str) + '\n')
    det_path = args.detector or str(model_path('sounding_object_detector.onnx'))
    detector = runtime.load_bundle(det_path, 'detector', backend='cpu', torch_loader=det_loader)
    dcfg = DetectorConfig.from_dict(detector.meta['config'])
    cache = Path(args.cache) if args.cache else out / 'dataset.npz'
    data = build_dataset(args.data, dcfg, cache=cache, progress=not args.no_progress)
    sounds, looks = touched_looks(data)
    if len(sounds) < 2:
        raise UserError(f'only {len(sounds)} events with an automatic mask in --data; the '
                        'cross-event loss needs at least 2')
    batch = min(args.batch, len(sounds))
    cfg = LookConfig()
    if sounds.shape[1] != cfg.n_sound:
        raise UserError(f'the cache holds sound features of size {sounds.shape[1]}, the look match '
                        f'wants {cfg.n_sound}; rebuild the cache')
    validate = None
    if args.val:
        vdata = build_dataset(args.val, dcfg, cache=cache.with_name(cache.stem + '_val.npz'),
                              progress=not args.no_progress)
        validate = Validation(labelled_events(vdata), detector)
    net = LookMatch(cfg)
    net.set_stats(sounds, looks)
    opt = torch.optim.Adam(net.parameters(), args.lr, weight_decay=1e-4)
    S, V = torch.from_numpy(sounds), torch.from_numpy(looks)
    std = net.look_std
    best = {'score': -1.0}
    log = open(out / 'log.csv', 'w', newline='')
    writer = csv.writer(log)
    writer.writerow(['step', 'loss', 'weight', 'val_score', 'val_by_scenario', 'seconds'])
    t0 = time.time()
    from tqdm import tqdm
    bar = tqdm(range(1, args.steps + 1), desc='look match', unit='step', disable=args.no_progress)
    for step in bar:
        net.train()
        idx = torch.randperm(len(S))[:batch]                          # distinct events
        look = V[idx] + 0.05 * std * torch.randn_like(V[idx])       # small jitter of the statistics
        loss = info_nce(net, S[idx], look)
        opt.zero_grad()
        loss.backward()
        opt.step()
        bar.set_postfix(loss=f'{loss.item():.2f}')
        if step % args.val_every and step != args.steps:
            continue
        row_w, row_s, row_sc = '', '', ''
        if validate is not None:
            res = validate(net, args.weights)
            w = max(res, key=lambda k: res[k]['score'])
            row_w, row_s, row_sc = w, f"{res[w]['score']:.4f}", json.dumps(res[w])
            if res[w]['score'] > best['score']:
                best = {'score': res[w]['score'], 'weight': w, 'step': step, 'by_scenario': res[w]}
                save_checkpoint(out / 'best.pt', net, weight=w, validation=best)
            bar.write(f'step {step}: loss {loss.item():.3f}, validation {res[w]["score"]:.3f} at weight {w} '
                      f'({", ".join(f"{k} {v:.3f}" for k, v in res[w].items() if k != "score")})')
        writer.writerow([step, f'{loss.item():.4f}', row_w, row_s, row_sc, f'{time.time() - t0:.1f}'])
        log.flush()
    log.close()
    save_checkpoint(out / 'last.pt', net, weight=best.get('weight', 1.0), validation=best)
    if validate is None:
        save_checkpoint(out / 'best.pt', net, weight=1.0, validation={})
        print(f'no --val: {out}/best.pt is the last step with weight 1')
    else:
        print(f"best validation {best['score']:.3f} at step {best['step']}, weight {best['weight']} "
              f'-> {out}/best.pt')
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(p)
    return run(p.parse_args(argv))


if __name__ == '__main__':
    raise SystemExit(main())
