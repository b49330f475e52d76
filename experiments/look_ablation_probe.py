r"""Which part of the look match matters: the camera's 128 px, or the finer audio grid?

Backs the detector card's ablation (``docs/detector.md``): on the automatic segments the fine
audio grid adds about 0.08 and 128 px about 0.04 on top.

The look match's 31 look statistics (``models.look_match.look_features``) and the event sound,
embedded by two small MLPs and trained with the look match's cross-event InfoNCE on the automatic
masks of the touched objects of the detector's training event cache, at the slots' 64 px or the
camera's 128 px (``--size``), with the slots' audio features (64 bands, 512-point FFT, 5 ms hop)
or the look match's fine ones (24 bands, 128-point FFT, 2 ms hop) (``--audio``). Scored on the
ambiguous events of the evaluation event cache, the struck object against:

* ``GT-pair``: the other object nearest the contact, both through their ground-truth masks;
* ``segments``: the two automatic object segments nearest the contact (what the robot has;
  ground truth only to score).

Chance is 0.5. The caches are those of the recipes: ``runs/detector/dataset.npz`` written by
``recipes/train_detector.args`` and ``out/detector_test_cache.npz`` by
``recipes/evaluate_detector.args``::

    OMP_NUM_THREADS=1 python experiments/look_ablation_probe.py runs/detector/dataset.npz \
        out/detector_test_cache.npz --size 128 --audio fine
"""
from __future__ import annotations

import argparse

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hearing_hands_ros.automask import min_segment_px
from hearing_hands_ros.data.detector_dataset import segment_labels
from hearing_hands_ros.models.look_match import look_features

#: cache fields of one image size: the slots' input (64 px) or the look match's (128 px)
IMAGE_FIELDS = {
    64: dict(image='image', automask='automask', gripper='gripper', labels='labels',
             uv='contact_uv'),
    128: dict(image='look_image', automask='look_automask', gripper='look_gripper',
              labels='look_labels', uv='look_uv'),
}
#: cache field of the event sound: the slots' log-mel or the look match's finer one
SOUND_FIELDS = {'slots': 'logmel', 'fine': 'look_sound'}
NOT_AN_OBJECT = (0, 255)          # label values of the table and the gripper


def load_cache(path) -> dict:
    """An event cache (``data.detector_dataset``) as a dict of its per-event arrays."""
    with np.load(path) as f:
        return {k: f[k] for k in f.files if f[k].ndim}


def select(cache: dict, size: int, audio: str) -> dict:
    """The cache's events under one configuration, with the fields named image, automask,
    gripper, labels, uv and sound (plus episode, scenario, target as they are)."""
    out = {name: cache[key] for name, key in IMAGE_FIELDS[size].items()}
    out['sound'] = cache[SOUND_FIELDS[audio]]
    for key in ('episode', 'scenario', 'target'):
        out[key] = cache[key]
    return out


def training_pairs(events: dict) -> tuple[np.ndarray, np.ndarray]:
    """Sounds (N, A) and the looks (N, 31) of their automatic touched-object masks, fingers cut
    out; events whose mask is too small are left out."""
    sounds, looks = [], []
    for i in range(len(events['image'])):
        look = look_features(events['image'][i], events['automask'][i] & ~events['gripper'][i])
        if look is not None:
            sounds.append(events['sound'][i].astype(np.float32).ravel())
            looks.append(look)
    return np.stack(sounds), np.stack(looks)


def majority_label(region: np.ndarray, labels: np.ndarray) -> int:
    """The object label covering most of ``region`` (-1 when it covers none)."""
    v = labels[region]
    v = v[~np.isin(v, NOT_AN_OBJECT)]
    return int(np.bincount(v).argmax()) if len(v) else -1


def _distance(region: np.ndarray, u: float, v: float) -> float:
    ys, xs = np.nonzero(region)
    return float(np.min(np.hypot(xs - u, ys - v)))


def ambiguous_pairs(events: dict) -> tuple[list, list]:
    """Per labelled ambiguous event: ``gt`` items (sound, looks (2, 31) of [struck, other
    nearest object] by their true masks) and ``segments`` items (sound, looks (2, 31) of the two
    automatic segments nearest the contact or None, [is each the struck object])."""
    size = events['image'].shape[1]
    seg = segment_labels(events, 6, min_segment_px(size), 'image', 'gripper')
    gt, segments = [], []
    for i in range(len(events['image'])):
        if events['scenario'][i] != 'ambiguous' or events['target'][i] < 0:
            continue
        img, lab, grip = events['image'][i], events['labels'][i], events['gripper'][i]
        (u, v), struck = events['uv'][i], int(events['target'][i])
        sound = events['sound'][i].astype(np.float32).ravel()
        ids = [int(k) for k in np.unique(lab)
               if k not in NOT_AN_OBJECT and ((lab == k) & ~grip).sum() >= 3]
        if struck in ids and len(ids) >= 2:
            other = min((k for k in ids if k != struck), key=lambda k: _distance(lab == k, u, v))
            looks = [look_features(img, (lab == k) & ~grip) for k in (struck, other)]
            if all(x is not None for x in looks):
                gt.append((sound, np.stack(looks)))
        near = sorted((k for k in range(1, int(seg[i].max()) + 1) if (seg[i] == k).any()),
                      key=lambda k: _distance(seg[i] == k, u, v))[:2]
        hits = [majority_label(seg[i] == k, lab) == struck for k in near]
        looks = [look_features(img, seg[i] == k) for k in near]
        ok = len(looks) == 2 and all(x is not None for x in looks)
        segments.append((sound, np.stack(looks) if ok else None, hits))
    return gt, segments


class Embeddings(nn.Module):
    """The look match's two embeddings: sound MLP (A -> 256 -> 32), look MLP (31 -> 128 -> 32)."""

    def __init__(self, n_sound: int, n_look: int):
        super().__init__()
        self.sound = nn.Sequential(nn.Linear(n_sound, 256), nn.ReLU(), nn.Dropout(0.2),
                                   nn.Linear(256, 32))
        self.look = nn.Sequential(nn.Linear(n_look, 128), nn.ReLU(), nn.Linear(128, 32))

    def forward(self, sound: torch.Tensor, looks: torch.Tensor) -> torch.Tensor:
        """Cosine similarity of each sound (B, A) with its candidates' looks (B, K, F): (B, K)."""
        a = F.normalize(self.sound(sound), dim=-1)
        v = F.normalize(self.look(looks), dim=-1)
        return torch.einsum('be,bke->bk', a, v)


def train_and_score(sounds: np.ndarray, looks: np.ndarray, gt: list, segments: list,
                    seed: int = 0, steps: int = 2000, every: int = 1000,
                    batch: int = 128) -> list[dict]:
    """InfoNCE training on (sounds, looks); every ``every`` steps one row: step, loss and the
    share of ``gt`` pairs and of ``segments`` events whose struck object scores higher (NaN
    without such events; an event without two segment looks counts its nearest segment)."""
    am, asd = sounds.mean(0), sounds.std(0) + 1e-3
    vm, vsd = looks.mean(0), looks.std(0) + 1e-3

    def norm_a(x):
        return torch.tensor((x - am) / asd, dtype=torch.float32)

    def norm_v(x):
        return torch.tensor((x - vm) / vsd, dtype=torch.float32)
    A, V = norm_a(sounds), norm_v(looks)
    torch.manual_seed(seed)
    net = Embeddings(A.shape[1], V.shape[1])
    opt = torch.optim.Adam(net.parameters(), 1e-3, weight_decay=1e-4)
    rows = []
    for step in range(steps + 1):
        net.train()
        idx = torch.randint(0, len(A), (batch,))
        a = F.normalize(net.sound(A[idx]), dim=-1)
        v = F.normalize(net.look(V[idx] + 0.05 * torch.randn_like(V[idx])), dim=-1)
        sim, target = 10 * a @ v.t(), torch.arange(batch)
        loss = 0.5 * (F.cross_entropy(sim, target) + F.cross_entropy(sim.t(), target))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step and step % every == 0:
            net.eval()
            with torch.no_grad():
                rows.append(dict(seed=seed, step=step, loss=float(loss),
                                 gt_pair=_pair_accuracy(net, gt, norm_a, norm_v),
                                 segments=_segment_accuracy(net, segments, norm_a, norm_v)))
    return rows


def _pair_accuracy(net, gt, norm_a, norm_v) -> float:
    if not gt:
        return float('nan')
    s = net(norm_a(np.stack([x for x, _ in gt])), norm_v(np.stack([x for _, x in gt])))
    return float((s.argmax(1) == 0).float().mean())


def _segment_accuracy(net, segments, norm_a, norm_v) -> float:
    if not segments:
        return float('nan')
    hits = []
    for sound, looks, hit in segments:
        if looks is None:
            hits.append(bool(hit[0]) if hit else False)
        else:
            pick = int(net(norm_a(sound[None]), norm_v(looks[None]))[0].argmax())
            hits.append(bool(hit[pick]))
    return float(np.mean(hits))


def segment_baselines(segments: list) -> tuple[float, float]:
    """Shares of events whose nearest automatic segment is the struck object, and whose two
    nearest include it."""
    return (float(np.mean([bool(h[0]) if h else False for _, _, h in segments])),
            float(np.mean([any(h) for _, _, h in segments])))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('train_cache', help='event cache of the training episodes (train detector)')
    p.add_argument('test_cache', help='event cache of the held-out episodes (evaluate detector)')
    p.add_argument('--size', type=int, choices=sorted(IMAGE_FIELDS), default=128,
                   help='image size of the look statistics [px]')
    p.add_argument('--audio', choices=sorted(SOUND_FIELDS), default='fine',
                   help="sound features: the slots' log-mel or the look match's finer one")
    p.add_argument('--seeds', type=int, default=1, help='training seeds 0..SEEDS-1')
    p.add_argument('--steps', type=int, default=2000)
    p.add_argument('--every', type=int, default=1000, help='score every this many steps')
    p.add_argument('--threads', type=int, default=1, help='torch and OpenCV threads')
    args = p.parse_args(argv)
    cv2.setNumThreads(args.threads)
    torch.set_num_threads(args.threads)
    print(f'config {args.size} px, {args.audio} audio', flush=True)
    sounds, looks = training_pairs(select(load_cache(args.train_cache), args.size, args.audio))
    gt, segments = ambiguous_pairs(select(load_cache(args.test_cache), args.size, args.audio))
    nearest, either = segment_baselines(segments)
    print(f'{len(sounds)} training events, {len(gt)} GT pairs, {len(segments)} ambiguous events; '
          f'segments: nearest hit {nearest:.3f}, either {either:.3f}', flush=True)
    for seed in range(args.seeds):
        for row in train_and_score(sounds, looks, gt, segments, seed, args.steps, args.every):
            print(f'seed {row["seed"]} step {row["step"]} InfoNCE {row["loss"]:.2f} '
                  f'GT-pair {row["gt_pair"]:.3f} segments {row["segments"]:.3f}', flush=True)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
