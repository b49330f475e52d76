"""Ad-hoc probe: score one run's nets under several samplers on a window set, without the
evaluation's 25-step teacher row (minutes instead of half an hour). Torch sampling, noise seed =
window index, so figures differ slightly from ``evaluate predictor`` (ONNX, its own noise).
Material is named by the fifth run's judge, so rows compare across runs.

    .venv/bin/python docs/probes/predictor_sampler_probe.py SET OUT.json LABEL=RUN:NET:STEPS:TEMP[:T0[:CFG[:RESCALE[:SEED]]]] ...

SET: ``val`` (the unseen-combination windows of the training folders, as ``--unseen-only
--max-windows 160``) or a folder name under data/sim (``test``, ``test_amb``). NET: student,
teacher or regression. T0 > 0 starts the flow at t = T0 from the regression's mel (SDEdit).
RESCALE: guidance rescale in [0, 1] (``models.flow.combine_guidance``). SEED: noise seed
offset (noise seed = window index + 1000 SEED; 0 by default): the spread of one sampler's figures
over noise draws.
Example (README, *Predictor quality*):

    R=runs/pred9/predictor.pt
    .venv/bin/python docs/probes/predictor_sampler_probe.py val out/probe_p9.json \\
        student=$R:student:2:1 teacher4=$R:teacher:4:1 teacher4_cfg2=$R:teacher:4:1:0:2
"""
import json
import sys

import numpy as np
import torch

from hearing_hands_ros.audio import log_mel
from hearing_hands_ros.data import predictor_dataset as D
from hearing_hands_ros.eval import predictor_metrics as E
from hearing_hands_ros.models import flow
from hearing_hands_ros.models.predictor import bind, regression_predict
from hearing_hands_ros.models.predictor_run import load_run

TRAIN_P = ['data/sim/train', 'data/sim/train_amb', 'data/sim/train_more']


def main(setname, out, specs):
    torch.set_num_threads(1)
    base = load_run('runs/pred5/predictor.pt')
    cfg, judge, base_reg = base['cfg'], base['judge'], base['regression']
    data, idx = window_set(setname, cfg)
    res = {}
    for label, spec in specs:
        run, net, steps, temp, *rest = spec.split(':')
        t0 = float(rest[0]) if rest else 0.0
        guidance = float(rest[1]) if len(rest) > 1 else 1.0
        rescale = float(rest[2]) if len(rest) > 2 else 0.0
        seed = int(rest[3]) if len(rest) > 3 else 0
        nets = load_run(run)
        model, voc = nets[net], nets['vocoder']
        rows, audio = [], []
        for n, i in enumerate(idx):
            frames = int(data.valid[i])
            real = data.audio_float(i, frames)
            b = D.full_batch(data, [i], frames)
            with torch.no_grad():
                if net == 'regression':
                    x1 = regression_predict(model, b)
                else:
                    g = torch.Generator().manual_seed(n + 1000 * seed)
                    x0 = torch.randn(b['mel'].shape, generator=g)
                    vel = bind(model, b['traj'], b['image'], b['crops'], b.get('looks'))
                    if t0 > 0:
                        x = (1 - t0) * x0 * float(temp) + t0 * regression_predict(base_reg, b)
                        ts = np.linspace(t0, 1, int(steps) + 1)
                        for ta, tb in zip(ts[:-1], ts[1:]):
                            x = x + (tb - ta) * flow.guided_velocity(
                                vel, x, torch.full((1,), float(ta)), guidance, rescale)
                        x1 = x
                    else:
                        x1 = flow.euler_sample(vel, x0 * float(temp), int(steps), guidance, rescale)
                x = voc(model.denormalize_mel(x1)).numpy()[0][:len(real)]
            rows.append(E.window_metrics(x, real, data.meta[i]['contacts'], cfg.sample_rate))
            audio.append(x)
        judged = judge.classify([log_mel(x, cfg.sample_rate) for x in audio])
        res[label] = score(rows, judged, [data.meta[i] for i in idx])
        print(summary_line(setname, label, res[label]), flush=True)
    res['_meta'] = meta_rows([data.meta[i] for i in idx])
    if 'regression' in res:                 # how sure is a difference in STFT distance?
        episodes = np.array([m['episode'] for m in res['_meta']])
        for label in [k for k in res if k not in ('regression', '_meta')]:
            lo, mid, hi = episode_bootstrap(res[label]['per_window_stft'],
                                            res['regression']['per_window_stft'], episodes)
            res[label]['stft_vs_regression_ci95'] = [lo, mid, hi]
            print(f'{label:14s} STFT distance / regression - 1: {mid:+.1%} '
                  f'(95 % episode bootstrap {lo:+.1%} .. {hi:+.1%})')
    json.dump(res, open(out, 'w'))


def window_set(setname, cfg):
    """(windows, indices) of a probe set: ``val`` = 160 shuffled unseen-combination windows of the
    training folders (as ``--unseen-only --max-windows 160``), else every window of data/sim/SET."""
    if setname == 'val':
        data = D.load_windows(TRAIN_P, cfg, cache_dir='runs/pred5_cache', progress=False)
        seen = set(json.load(open('runs/pred5/summary.json'))['combos'])
        idx = np.array([i for i in range(len(data)) if D.combo(data.meta[i]) not in seen | {None}])
        return data, np.random.default_rng(0).permutation(idx)[:160]
    data = D.load_windows([f'data/sim/{setname}'], cfg, cache_dir='runs/pred5_cache',
                          progress=False)
    return data, np.arange(len(data))


def score(rows, judged, meta, nfe=0):
    """The evaluation's aggregate of per-window metrics plus ``per_window_stft``."""
    agg = E.aggregate(rows, judged, meta, nfe)
    agg['per_window_stft'] = [r['stft_distance'] for r in rows]
    return agg


def summary_line(setname, label, agg, extra=''):
    return (f"{setname} {label:14s} stft {agg['stft_distance']:.5f}{extra} material "
            f"{agg['material_accuracy']:.3f} onset_f1 {agg['onset_f1']:.3f} "
            f"loudness_err {agg['loudness_error_db']:.1f} dB")


def meta_rows(meta):
    """What the JSON keeps of each window, for per-window analysis and the bootstrap."""
    return [dict(action=m['action'], material=m['material'], episode=m['episode']) for m in meta]


def episode_bootstrap(a, ref, episodes, n=2000, seed=0):
    """Percentiles (2.5, 50, 97.5) of mean(a) / mean(ref) - 1 over episodes resampled with
    replacement (windows of one episode share a scene, so they are resampled together)."""
    a, ref = np.asarray(a), np.asarray(ref)
    rng = np.random.default_rng(seed)
    groups = [np.nonzero(episodes == e)[0] for e in np.unique(episodes)]
    ratios = []
    for _ in range(n):
        pick = np.concatenate([groups[g] for g in rng.integers(0, len(groups), len(groups))])
        ratios.append(a[pick].mean() / ref[pick].mean() - 1)
    return tuple(float(v) for v in np.percentile(ratios, [2.5, 50, 97.5]))


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2], [a.split('=', 1) for a in sys.argv[3:]])
