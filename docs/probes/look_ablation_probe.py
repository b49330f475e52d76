"""Ad-hoc probe (not part of the package): what made the look match work, the camera's 128 px or
the finer audio grid? The look match's statistics (the same 31 numbers as
``models/look_match.look_features``), trained with the same cross-event InfoNCE on the automatic
touched-object masks of the detector's training cache, at 64 or 128 px and with the slots' audio
features (64 bands, 512-point FFT, 5 ms hop) or the fine ones (24 bands, 128-point FFT, 2 ms
hop). Scored on the ambiguous events of the evaluation cache: the struck object against the
other object nearest the contact through their ground-truth masks ('GT-pair'), and through the
two automatic segments nearest the contact ('segments'; ground truth only to score). Chance 0.5.

    OMP_NUM_THREADS=1 .venv/bin/python docs/probes/look_ablation_probe.py runs/events.npz \
        out/detector_test_cache.npz {64|128} {default|fine}

Both caches are the event caches (v5) of the README recipe (``train detector`` / ``evaluate
detector --cache``; the 80-episode set was used for the README's figures).
"""
import sys
import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
cv2.setNumThreads(1); torch.set_num_threads(1)
from hearing_hands_ros.automask import TableModel, object_segments

def look(img, mask):
    m2 = cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    if m2.sum() < 6:
        m2 = mask
    if m2.sum() < 3:
        return None
    f = img.astype(np.float32) / 255.0
    g = f.mean(2)
    gx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3); gy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3)
    lap = np.abs(cv2.Laplacian(f, cv2.CV_32F, ksize=3))
    blur = cv2.GaussianBlur(f, (0, 0), 1.5)
    lap2 = np.abs(cv2.Laplacian(blur, cv2.CV_32F, ksize=3))
    hi = np.abs(f - blur)                                       # fine speckle
    hsv = cv2.cvtColor(f, cv2.COLOR_RGB2HSV)
    px, hv = f[m2], hsv[m2]
    hue = hv[:, 0] / 360 * 2 * np.pi
    grey = px.mean(1)
    ax, ay = np.abs(gx[m2]), np.abs(gy[m2])
    mag = np.hypot(ax, ay) + 1e-6
    ang = np.arctan2(gy[m2], gx[m2]) * 2                         # orientation (doubled angle)
    coh = np.hypot((mag * np.cos(ang)).sum(), (mag * np.sin(ang)).sum()) / mag.sum()
    return np.concatenate([
        px.mean(0), px.std(0), lap[m2].mean(0), lap[m2].std(0), lap2[m2].mean(0), hi[m2].mean(0),
        [hv[:, 1].mean(), hv[:, 2].mean(), (hv[:, 1] * np.cos(hue)).mean(), (hv[:, 1] * np.sin(hue)).mean(),
         hv[:, 1].std(), np.percentile(grey, 10), np.percentile(grey, 90), np.percentile(grey, 50),
         mag.mean(), mag.std(), coh, (mag > 0.3).mean(), np.log(mask.sum())]]).astype(np.float32)

K = {}
def training_events(tr):
    S, L = [], []
    for i in range(len(tr[K['img']])):
        f = look(tr[K['img']][i], tr[K['auto']][i] & ~tr[K['grip']][i])
        if f is not None:
            S.append(tr[K['snd']][i].astype(np.float32).ravel()); L.append(f)
    return np.stack(S), np.stack(L)

def majority(mask, lab):
    v = lab[mask]; v = v[(v != 0) & (v != 255)]
    return int(np.bincount(v).argmax()) if len(v) else -1

def ambiguous_pairs(te):
    """Per ambiguous labelled event: sound, GT pair looks [struck, other]; segment pair looks + hits."""
    img, lab_k, grip_k, uv_k = K['img'], K['lab'], K['grip'], K['uv']
    yy, xx = np.mgrid[:te[lab_k].shape[1], :te[lab_k].shape[2]]
    seg = np.zeros(te[img].shape[:3], np.uint8)
    for e in np.unique(te['episode']):
        idx = np.nonzero(te['episode'] == e)[0]
        table = TableModel.fit(te[img][idx], k=6)
        for i in idx:
            seg[i] = object_segments(te[img][i], table, te[grip_k][i], K['min'])
    gt, sg = [], []
    for i in range(len(te[img])):
        if te['scenario'][i] != 'ambiguous' or te['target'][i] < 0:
            continue
        lab, grip, (u, v), struck = te[lab_k][i], te[grip_k][i], te[uv_k][i], te['target'][i]
        snd = te[K['snd']][i].astype(np.float32).ravel()
        ids = [k for k in np.unique(lab) if k not in (0, 255) and ((lab == k) & ~grip).sum() >= 3]
        if struck in ids and len(ids) >= 2:
            dist = {k: np.min(np.hypot(xx[lab == k] - u, yy[lab == k] - v)) for k in ids}
            other = min((k for k in ids if k != struck), key=dist.get)
            lk = [look(te[img][i], (lab == k) & ~grip) for k in (struck, other)]
            if all(x is not None for x in lk):
                gt.append((snd, np.stack(lk)))
        # automatic segments: the two nearest the contact
        ks = [k for k in range(1, seg[i].max() + 1) if (seg[i] == k).sum() > 0]
        d = sorted(ks, key=lambda k: np.min(np.hypot(xx[seg[i] == k] - u, yy[seg[i] == k] - v)))
        hits = [majority(seg[i] == k, lab) == struck for k in d[:2]]
        lk = [look(te[img][i], seg[i] == k) for k in d[:2]]
        sg.append((snd, np.stack(lk) if len(lk) == 2 and all(x is not None for x in lk) else None, hits))
    return gt, sg

def main(train_cache, test_cache, seeds=2, steps=3000):
    tr = {k: v for k, v in np.load(train_cache).items() if v.ndim}
    te = {k: v for k, v in np.load(test_cache).items() if v.ndim}
    A, V = training_events(tr)
    gt, sg = ambiguous_pairs(te)
    print(f'{len(A)} training events, {len(gt)} GT pairs, {len(sg)} ambiguous events; '
          f'segments: nearest hit {np.mean([h[0] if h else False for _,_,h in sg]):.3f}, '
          f'either {np.mean([any(h) for _,_,h in sg]):.3f}', flush=True)
    am, asd, vm, vsd = A.mean(0), A.std(0) + 1e-3, V.mean(0), V.std(0) + 1e-3
    A, V = torch.tensor((A - am) / asd), torch.tensor((V - vm) / vsd)
    GA = torch.tensor((np.stack([s for s, _ in gt]) - am) / asd)
    GV = torch.tensor((np.stack([l for _, l in gt]) - vm) / vsd)
    for seed in range(seeds):
        torch.manual_seed(seed)
        fa = nn.Sequential(nn.Linear(A.shape[1], 256), nn.ReLU(), nn.Dropout(0.2), nn.Linear(256, 32))
        fv = nn.Sequential(nn.Linear(V.shape[1], 128), nn.ReLU(), nn.Linear(128, 32))
        opt = torch.optim.Adam([*fa.parameters(), *fv.parameters()], 1e-3, weight_decay=1e-4)
        for step in range(steps + 1):
            fa.train()
            idx = torch.randint(0, len(A), (128,))
            a = F.normalize(fa(A[idx]), dim=-1)
            v = F.normalize(fv(V[idx] + 0.05 * torch.randn_like(V[idx])), dim=-1)
            sim, lbl = 10 * a @ v.t(), torch.arange(128)
            loss = 0.5 * (F.cross_entropy(sim, lbl) + F.cross_entropy(sim.t(), lbl))
            opt.zero_grad(); loss.backward(); opt.step()
            if step % 1000 == 0 and step:
                fa.eval()
                with torch.no_grad():
                    s = torch.einsum('be,bke->bk', F.normalize(fa(GA), dim=-1), F.normalize(fv(GV), dim=-1))
                    acc = (s.argmax(1) == 0).float().mean().item()
                    hits = []
                    for snd, lk, h in sg:
                        if lk is None:
                            hits.append(bool(h[0]) if h else False); continue
                        a1 = F.normalize(fa(torch.tensor((snd - am) / asd)[None]), dim=-1)
                        v1 = F.normalize(fv(torch.tensor((lk - vm) / vsd)), dim=-1)
                        hits.append(bool(h[int((v1 @ a1[0]).argmax())]))
                print(f'seed {seed} step {step} InfoNCE {loss.item():.2f} GT-pair {acc:.3f} '
                      f'segments {np.mean(hits):.3f}', flush=True)

if __name__ == '__main__':
    px, aud = sys.argv[3], sys.argv[4]
    if px == '128':
        K.update(img='look_image', auto='look_automask', grip='look_gripper', lab='look_labels', uv='look_uv', min=24)
    else:
        K.update(img='image', auto='automask', grip='gripper', lab='labels', uv='contact_uv', min=6)
    K['snd'] = 'look_sound' if aud == 'fine' else 'logmel'
    print('config', px, aud, flush=True)
    main(sys.argv[1], sys.argv[2], 1, 2000)
