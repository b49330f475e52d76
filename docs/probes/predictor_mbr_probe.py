"""Ad-hoc probe: minimum-Bayes-risk choice among K noise draws of one run's student.

For every window it draws K samples (noise seed = window index + 1000 s, s = 0..K-1, as the
sampler probe's SEED), scores each draw alone (the single-draw figures, averaged over draws) and
the draw an MBR rule picks: the one with the least summed distance to the other draws, measured
either on the vocoded audio's STFT magnitude (the evaluation's own STFT distance) or on the
student's mel as magnitude (exp(mel / 2), no vocoder needed). Material by the fifth run's judge;
STFT distance also against the fifth run's regression, with the sampler probe's 95 % episode
bootstrap of distance / regression - 1.

    .venv/bin/python docs/probes/predictor_mbr_probe.py SET OUT.json RUN K
"""
import json
import sys

import numpy as np
import torch

from hearing_hands_ros.audio import log_mel, stft_mag
from hearing_hands_ros.data import predictor_dataset as D
from hearing_hands_ros.eval import predictor_metrics as E
from hearing_hands_ros.models import flow
from hearing_hands_ros.models.predictor import bind, regression_predict
from hearing_hands_ros.models.predictor_run import load_run

sys.path.insert(0, 'docs/probes')
from predictor_sampler_probe import (episode_bootstrap, meta_rows, score,  # noqa: E402
                                     summary_line, window_set)


def mbr_pick(arrays: list[np.ndarray]) -> int:
    """Index of the array with the least summed mean squared distance to the others."""
    dist = np.array([[np.mean((a - c) ** 2) for c in arrays] for a in arrays])   # (K, K)
    return int(np.argmin(dist.sum(1)))


def main(setname, out, run, k):
    torch.set_num_threads(1)
    base = load_run('runs/pred5/predictor.pt')
    cfg, judge = base['cfg'], base['judge']
    data, idx = window_set(setname, cfg)
    nets = load_run(run)
    model, voc = nets['student'], nets['vocoder']
    steps = 2
    rows = {s: [] for s in range(k)}
    audio = {s: [] for s in range(k)}
    picks, reg_stft = {}, []
    for n, i in enumerate(idx):
        frames = int(data.valid[i])
        real = data.audio_float(i, frames)
        b = D.full_batch(data, [i], frames)
        xs, mags = [], []
        with torch.no_grad():
            r = voc(base['regression'].denormalize_mel(regression_predict(base['regression'], b)))
            reg_stft.append(E.stft_distance(r.numpy()[0][:len(real)], real))
            vel = bind(model, b['traj'], b['image'], b['crops'], b.get('looks'))
            for s in range(k):
                g = torch.Generator().manual_seed(n + 1000 * s)
                x0 = torch.randn(b['mel'].shape, generator=g)
                x1 = flow.euler_sample(vel, x0, steps, 1.0, 0.0)
                mel = model.denormalize_mel(x1)
                mags.append(torch.exp(mel / 2)[0].numpy())
                xs.append(voc(mel).numpy()[0][:len(real)])
        for s in range(k):
            rows[s].append(E.window_metrics(xs[s], real, data.meta[i]['contacts'], cfg.sample_rate))
            audio[s].append(xs[s])
        stft = [stft_mag(x, 512, 128) for x in xs]
        for kk in sorted({2, 4, k} & set(range(2, k + 1))):
            picks.setdefault(f'mbr_stft_k{kk}', []).append(mbr_pick(stft[:kk]))
            picks.setdefault(f'mbr_mel_k{kk}', []).append(mbr_pick(mags[:kk]))
        if n % 20 == 0:
            print(setname, n, len(idx), flush=True)
    meta = [data.meta[i] for i in idx]
    judged = {s: judge.classify([log_mel(x, cfg.sample_rate) for x in audio[s]]) for s in range(k)}
    res = {}
    for s in range(k):
        res[f'draw{s}'] = score(rows[s], judged[s], meta, steps)
    for label, pk in picks.items():
        r = [rows[p][w] for w, p in enumerate(pk)]
        j = tuple([judged[p][h][w] for w, p in enumerate(pk)] for h in (0, 1))
        res[label] = dict(score(r, j, meta, steps * int(label.split('k')[-1])), picks=pk)
    episodes = np.array([m['episode'] for m in meta])
    for label, agg in res.items():
        lo, mid, hi = episode_bootstrap(agg['per_window_stft'], reg_stft, episodes)
        agg['stft_vs_regression_ci95'] = [lo, mid, hi]
        print(summary_line(setname, label, agg, f' ({mid:+.1%}, {lo:+.1%} .. {hi:+.1%})'),
              flush=True)
    res['regression_per_window_stft'] = reg_stft
    res['_meta'] = meta_rows(meta)
    json.dump(res, open(out, 'w'))


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
