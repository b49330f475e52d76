r"""How much of the target's material can the plan-start wrist-camera view tell at all?

Backs the predictor card's view-material figure (``docs/predictor.md``): it bounds the material
accuracy any predictor can reach from the scene, whatever its sampler.

For every contact motion (a path window whose target has a material and at least one true
contact), at the local view that holds its first contact (ground truth only to pick the view):

* ``crop colour``: the predictor's own 16 px local view there (``models.predictor.local_views``):
  mean and spread of the colour of the crop and of its centre (12 numbers);
* ``segment look``: what the view points at (``models.predictor.view_looks``, the predictor's
  ``looks`` input): found flag, distance and the 31 look statistics of the automatic object
  segment nearest the view centre, at 128 px, fingers cut out.

A softmax-linear classifier is fitted on the training folders' windows whose episode holds no
held-out material:shape combination, and scored on the training folders' held-out-combination
windows (``unseen``) and on each test folder. Chance: 1/8. The window cache is the one of
``recipes/train_predictor_flow.args`` (built on first use)::

    OMP_NUM_THREADS=1 python experiments/predictor_view_material_probe.py \
        --cache runs/predictor_cache
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from hearing_hands_ros.data import predictor_dataset as D
from hearing_hands_ros.models.predictor import PredictorConfig
from hearing_hands_ros.train.predictor import DEFAULT_HOLDOUT

TRAIN = ('data/sim/train', 'data/sim/train_amb', 'data/sim/train_more')
TEST = ('data/sim/test', 'data/sim/test_amb')
FEATURES = ('crop colour', 'segment look')


def contact_views(data: D.PredictorData, idx) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Crop colour features (N, 12), view looks (N, 1 + 1 + 31) and target materials (N,) at the
    local view of the first contact of each window in ``idx`` that has a material and a contact."""
    crops, looks, materials = [], [], []
    for i in idx:
        meta = data.meta[i]
        if meta['material'] == D.NO_MATERIAL or not meta['contacts']:
            continue
        k = min(int(meta['contacts'][0]['time'] * PredictorConfig.frame_rate)
                // PredictorConfig.frames_per_crop, data.crops.shape[1] - 1)
        c = data.crops[i, k].astype(np.float32) / 255
        s = c.shape[-1]
        centre = c[:, s // 4:3 * s // 4, s // 4:3 * s // 4]
        crops.append(np.concatenate([c.mean((1, 2)), c.std((1, 2)), centre.mean((1, 2)),
                                     centre.std((1, 2))]))
        looks.append(data.looks[i, k])
        materials.append(meta['material'])
    n_look = data.looks.shape[-1]
    return (np.stack(crops) if crops else np.zeros((0, 12), np.float32),
            np.stack(looks) if looks else np.zeros((0, n_look), np.float32), np.array(materials))


def linear_accuracy(X: np.ndarray, y: np.ndarray, tests: list, steps: int = 800) -> list[float]:
    """Fit a softmax-linear classifier on standardised (X, y) and return its accuracy on each
    (X, y) of ``tests`` (NaN for an empty one)."""
    mu, sd = X.mean(0), X.std(0) + 1e-6
    classes = sorted(set(y))
    target = torch.tensor([classes.index(c) for c in y])
    torch.manual_seed(0)
    lin = torch.nn.Linear(X.shape[1], len(classes))
    opt = torch.optim.Adam(lin.parameters(), 1e-2, weight_decay=1e-3)
    Xt = torch.tensor((X - mu) / sd, dtype=torch.float32)
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(lin(Xt), target).backward()
        opt.step()
    out = []
    with torch.no_grad():
        for Xs, ys in tests:
            if not len(ys):
                out.append(float('nan'))
                continue
            pred = lin(torch.tensor((Xs - mu) / sd, dtype=torch.float32)).argmax(1).numpy()
            out.append(float(np.mean([classes[p] == c for p, c in zip(pred, ys)])))
    return out


def view_material(train: D.PredictorData, tests: dict, holdout=DEFAULT_HOLDOUT,
                  steps: int = 800) -> dict:
    """The whole probe on loaded windows: ``train`` (split by ``holdout``) and ``tests`` (name ->
    windows). Returns ``windows`` (set -> contact windows), ``found`` (set -> share of views with
    a segment) and, per feature of ``FEATURES``, set -> accuracy; the sets are ``fit``, ``unseen``
    and the test names."""
    seen, unseen = D.split_holdout(train, holdout)
    fit = contact_views(train, seen)
    sets = {'unseen': contact_views(train, unseen)}
    sets |= {name: contact_views(data, range(len(data))) for name, data in tests.items()}
    everything = {'fit': fit, **sets}
    out = {'windows': {k: len(v[2]) for k, v in everything.items()},
           'found': {k: float(v[1][:, 0].mean()) if len(v[2]) else float('nan')
                     for k, v in everything.items()}}
    for j, name in enumerate(FEATURES):
        acc = linear_accuracy(fit[j], fit[2], [(s[j], s[2]) for s in sets.values()], steps)
        out[name] = dict(zip(sets, acc))
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--cache', default='runs/predictor_cache',
                   help="the predictor's window cache folder (built on first use)")
    p.add_argument('--train', nargs='+', default=list(TRAIN), help='training episode folders')
    p.add_argument('--test', nargs='+', default=list(TEST),
                   help='held-out episode folders, each scored on its own')
    p.add_argument('--holdout-combos', default=','.join(DEFAULT_HOLDOUT),
                   help='material:shape pairs held out of the fit (as train predictor)')
    p.add_argument('--threads', type=int, default=1, help='torch CPU threads')
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    train = D.load_windows(args.train, cache_dir=args.cache)
    tests = {Path(t).name: D.load_windows([t], cache_dir=args.cache) for t in args.test}
    holdout = [c for c in args.holdout_combos.split(',') if c]
    result = view_material(train, tests, holdout)
    print('contact windows: ' + ', '.join(f'{k} {n}' for k, n in result['windows'].items())
          + '; a segment found at the contact view: '
          + ', '.join(f'{k} {f:.2f}' for k, f in result['found'].items()))
    for name in FEATURES:
        print(f'{name:13s} ' + '  '.join(f'{k} {a:.3f}' for k, a in result[name].items()))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
