"""Ad-hoc probe (not part of the package): how much of the target's material can the plan-start
wrist-camera view tell at all? This bounds the material accuracy any predictor can reach from
the scene, whatever its sampler.

For every contact motion (a path window whose target has a material and at least one true
contact), at the local view that holds its first contact (ground truth only to pick the view):
  crop  - the predictor's own 16 px local view there (``models.predictor.local_views``): mean and
          std colour of the crop and of its centre;
  look  - what the view points at (``models.predictor.view_looks``, the predictor's ``looks``
          input): found flag, distance and the 31 look statistics of the automatic object segment
          nearest the view centre, at 128 px, fingers cut out, table model fitted on that frame.
A softmax-linear classifier is fitted on the training folders' windows whose episode holds no
held-out material:shape combination and scored on the held-out-combination windows of the
training folders ('unseen'), ``data/sim/test`` and ``data/sim/test_amb``. Chance: 1/8.

    OMP_NUM_THREADS=1 .venv/bin/python docs/probes/predictor_view_material_probe.py [CACHE]

CACHE is the predictor's window cache folder (built on first use; ``runs/pred5_cache`` in the
README recipe).
"""
import sys

import numpy as np
import torch

from hearing_hands_ros.data import predictor_dataset as D
from hearing_hands_ros.train.predictor import DEFAULT_HOLDOUT

torch.set_num_threads(1)
TRAIN = ['data/sim/train', 'data/sim/train_amb', 'data/sim/train_more']


def contact_views(data, idx):
    """(crop features (N, 12), looks (N, 33), materials (N,)) at each window's first contact."""
    crops, looks, mats = [], [], []
    for i in idx:
        m = data.meta[i]
        if m['material'] == D.NO_MATERIAL or not m['contacts']:
            continue
        k = min(int(m['contacts'][0]['time'] * 100) // 20, data.crops.shape[1] - 1)
        c = data.crops[i, k].astype(np.float32) / 255
        centre = c[:, 4:12, 4:12]
        crops.append(np.concatenate([c.mean((1, 2)), c.std((1, 2)), centre.mean((1, 2)),
                                     centre.std((1, 2))]))
        looks.append(data.looks[i, k])
        mats.append(m['material'])
    return np.stack(crops), np.stack(looks), np.array(mats)


def linear_accuracy(X, y, tests):
    mu, sd = X.mean(0), X.std(0) + 1e-6
    classes = sorted(set(y))
    target = torch.tensor([classes.index(c) for c in y])
    torch.manual_seed(0)
    lin = torch.nn.Linear(X.shape[1], len(classes))
    opt = torch.optim.Adam(lin.parameters(), 1e-2, weight_decay=1e-3)
    Xt = torch.tensor((X - mu) / sd, dtype=torch.float32)
    for _ in range(800):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(lin(Xt), target).backward()
        opt.step()
    out = []
    for Xs, ys in tests:
        pred = lin(torch.tensor((Xs - mu) / sd, dtype=torch.float32)).argmax(1).numpy()
        out.append(float(np.mean([classes[p] == c for p, c in zip(pred, ys)])))
    return out


def main():
    cache = sys.argv[1] if len(sys.argv) > 1 else 'runs/pred5_cache'
    train = D.load_windows(TRAIN, cache_dir=cache)
    seen, unseen = D.split_holdout(train, DEFAULT_HOLDOUT)
    test = D.load_windows(['data/sim/test'], cache_dir=cache)
    amb = D.load_windows(['data/sim/test_amb'], cache_dir=cache)
    fit = contact_views(train, seen)
    sets = [contact_views(train, unseen), contact_views(test, range(len(test))),
            contact_views(amb, range(len(amb)))]
    print(f'contact windows: train {len(fit[2])}, unseen {len(sets[0][2])}, test {len(sets[1][2])}, '
          f'test_amb {len(sets[2][2])}; a segment found at the contact view: '
          + ', '.join(f'{s[1][:, 0].mean():.2f}' for s in [fit] + sets))
    for j, name in ((0, 'crop colour'), (1, 'segment look')):
        acc = linear_accuracy(fit[j], fit[2], [(s[j], s[2]) for s in sets])
        print(f'{name:13s} unseen {acc[0]:.3f}  test {acc[1]:.3f}  test_amb {acc[2]:.3f}')


if __name__ == '__main__':
    main()
