"""Ad-hoc probe (not part of the package): can a *hand-written* description of an object's look,
matched to the event sound by self-supervised contrastive learning, pick the struck object of an
ambiguous pair?

Training (self-supervised, what a robot has): for every contact event of the detector's training
cache, the look of the *automatic* mask of the touched object (gripper pixels excluded) as 20
numbers (mean/spread of RGB, of the Laplacian magnitude, saturation/value/hue vector, dark and
bright percentiles, log area), and the event's log-mel. Two small MLPs embed them; a symmetric
InfoNCE over 128 events per batch pulls each sound toward its own object's look.
Test: each ambiguous event of the evaluation cache; the pair is the struck object and the other
object nearest the contact pixel (ground-truth masks: evaluation only); the pick is the object
whose look matches the sound better. Chance 0.5.

Caches (written by the README recipe): ``hearing-hands train detector --data $TRAIN ... --cache
runs/events.npz`` and ``hearing-hands evaluate detector ... --cache out/detector_test_cache.npz``.

    OMP_NUM_THREADS=1 .venv/bin/python docs/probes/look_features_probe.py runs/events.npz \
        out/detector_test_cache.npz [models/sounding_object_detector.onnx]

With a detector bundle as third argument it also scores the realistic pipeline on every
ambiguous test event: the bundle's candidate regions (as ``evaluate detector`` extracts them),
the two nearest the contact point (the ``nearest_gripper`` baseline's ranking) as the pair, and
the look match deciding between them; a hit is the ``evaluate detector`` criterion (the chosen
region's majority label is the struck object).
"""
import sys

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

cv2.setNumThreads(1)
torch.set_num_threads(1)


def look(img: np.ndarray, mask: np.ndarray) -> np.ndarray | None:
    """uint8 RGB (H,W,3) + bool mask (H,W) -> 20 look statistics (None if under 3 pixels)."""
    if mask.sum() < 3:
        return None
    img = img.astype(np.float32) / 255.0
    lap = np.abs(cv2.Laplacian(img, cv2.CV_32F, ksize=3))      # texture: local contrast
    hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)
    px, lp, hv = img[mask], lap[mask], hsv[mask]
    hue = hv[:, 0] / 360 * 2 * np.pi
    grey = px.mean(1)
    return np.concatenate([
        px.mean(0), px.std(0), lp.mean(0), lp.std(0),
        [hv[:, 1].mean(), hv[:, 2].mean(), (hv[:, 1] * np.cos(hue)).mean(),
         (hv[:, 1] * np.sin(hue)).mean(), np.percentile(grey, 10), np.percentile(grey, 90),
         np.log(mask.sum())]]).astype(np.float32)


def training_events(tr: dict) -> tuple[np.ndarray, np.ndarray]:
    sounds, looks = [], []
    for i in range(len(tr['image'])):
        f = look(tr['image'][i], tr['automask'][i] & ~tr['gripper'][i])
        if f is not None:
            sounds.append(tr['logmel'][i].astype(np.float32).ravel())
            looks.append(f)
    return np.stack(sounds), np.stack(looks)


def ambiguous_pairs(te: dict) -> tuple[np.ndarray, np.ndarray]:
    """Sound (N, M*T) and looks (N, 2, 20) of [struck, nearest other] per ambiguous event."""
    sounds, looks = [], []
    yy, xx = np.mgrid[:te['labels'].shape[1], :te['labels'].shape[2]]
    for i in range(len(te['image'])):
        if te['scenario'][i] != 'ambiguous' or te['target'][i] < 0:
            continue
        lab, grip, (u, v), struck = te['labels'][i], te['gripper'][i], te['contact_uv'][i], te['target'][i]
        ids = [k for k in np.unique(lab) if k not in (0, 255) and ((lab == k) & ~grip).sum() >= 3]
        if struck not in ids or len(ids) < 2:
            continue
        dist = {k: np.min(np.hypot(xx[lab == k] - u, yy[lab == k] - v)) for k in ids}
        other = min((k for k in ids if k != struck), key=dist.get)
        sounds.append(te['logmel'][i].astype(np.float32).ravel())
        looks.append(np.stack([look(te['image'][i], (lab == k) & ~grip) for k in (struck, other)]))
    return np.stack(sounds), np.stack(looks)


def candidate_pairs(te: dict, bundle_path: str) -> tuple[list, list, np.ndarray]:
    """Per ambiguous labelled event: (sound, [look of the 2 candidates nearest the contact],
    [is each the struck object]) and the nearest_gripper baseline's hits."""
    from hearing_hands_ros.eval.detector import (_object_of, labelled_events, nearest_gripper,
                                                 object_like, run_bundle)
    from hearing_hands_ros.models.detector import extract_candidates
    from hearing_hands_ros.runtime import load_bundle
    sel = labelled_events({k: v for k, v in te.items() if v.ndim})
    scores, masks = run_bundle(load_bundle(bundle_path, 'detector', backend='cpu'), sel)
    out, base = [], []
    for i in np.nonzero(sel['scenario'] == 'ambiguous')[0]:
        cands = object_like(extract_candidates(scores[i], masks[i]), sel['gripper'][i])
        ranked = nearest_gripper(cands, sel['contact_uv'][i])
        hit = [_object_of(c['mask'], sel['labels'][i]) == sel['target'][i] for c in ranked[:2]]
        base.append(bool(hit[0]) if hit else False)
        looks = [look(sel['image'][i], c['mask'] & ~sel['gripper'][i]) for c in ranked[:2]]
        if len(ranked) >= 2 and all(f is not None for f in looks):
            out.append((sel['logmel'][i].astype(np.float32).ravel(), np.stack(looks), hit))
        else:                                       # one candidate (or no look): geometry decides
            out.append((None, None, hit[:1] or [False]))
    return out, np.array(base)


def main(train_cache: str, test_cache: str, bundle: str | None = None, seeds: int = 3,
         steps: int = 3000) -> None:
    tr, te = dict(np.load(train_cache)), dict(np.load(test_cache))
    A, V = training_events(tr)
    TA, TV = ambiguous_pairs(te)
    print(f'{len(A)} training events, {len(TA)} ambiguous test pairs')
    am, asd, vm, vsd = A.mean(0), A.std(0) + 1e-3, V.mean(0), V.std(0) + 1e-3
    if bundle:
        pairs, base = candidate_pairs(te, bundle)
        either = np.mean([any(h) for _, _, h in pairs])
        print(f'{len(pairs)} ambiguous events through {bundle}: nearest_gripper {base.mean():.3f}, '
              f'struck object among its two nearest candidates {either:.3f}')
    A, V = torch.tensor((A - am) / asd), torch.tensor((V - vm) / vsd)
    TA, TV = torch.tensor((TA - am) / asd), torch.tensor((TV - vm) / vsd)
    for seed in range(seeds):
        torch.manual_seed(seed)
        fa = nn.Sequential(nn.Linear(A.shape[1], 128), nn.ReLU(), nn.Dropout(0.2), nn.Linear(128, 32))
        fv = nn.Sequential(nn.Linear(V.shape[1], 64), nn.ReLU(), nn.Linear(64, 32))
        opt = torch.optim.Adam([*fa.parameters(), *fv.parameters()], 1e-3, weight_decay=1e-4)
        for step in range(steps + 1):
            fa.train()
            idx = torch.randint(0, len(A), (128,))
            a = F.normalize(fa(A[idx]), dim=-1)
            v = F.normalize(fv(V[idx] + 0.05 * torch.randn_like(V[idx])), dim=-1)
            sim, lbl = 10 * a @ v.t(), torch.arange(128)
            loss = 0.5 * (F.cross_entropy(sim, lbl) + F.cross_entropy(sim.t(), lbl))
            opt.zero_grad()
            loss.backward()
            opt.step()
            if step % 1000 == 0:
                fa.eval()
                with torch.no_grad():
                    score = torch.einsum('be,bke->bk', F.normalize(fa(TA), dim=-1),
                                         F.normalize(fv(TV), dim=-1))
                acc = (score.argmax(1) == 0).float().mean().item()
                line = (f'seed {seed} step {step:4d}  InfoNCE {loss.item():.2f} (ln 128 = 4.85)  '
                        f'pair accuracy {acc:.3f}')
                if bundle:
                    hits = []
                    for snd, lk, hit in pairs:
                        if snd is None:
                            hits.append(bool(hit[0]))
                            continue
                        with torch.no_grad():
                            a = F.normalize(fa(torch.tensor((snd - am) / asd)[None]), dim=-1)
                            v = F.normalize(fv(torch.tensor((lk - vm) / vsd)), dim=-1)
                        hits.append(bool(hit[int((v @ a[0]).argmax())]))
                    line += f'  detector candidates: ambiguous accuracy {np.mean(hits):.3f}'
                print(line)


if __name__ == '__main__':
    main(*sys.argv[1:4])
