"""Ad-hoc probe: a sampler that switches velocity models part-way along the flow.

The first part of the Euler path (t < SWITCH) follows model A, the rest model B; both must share
the flow state (the same normalised mel). Material is thought to be decided early (README,
*Guided, at the conditional sample's spread*), contact timing and level late, so A = the fifth
run's teacher (names the material) and B = the prior teacher (places the contacts) asks whether
one path can have both. Torch sampling, noise seed = window index + 1000 SEED, judged by the
fifth run's judge, as ``predictor_sampler_probe.py``.

    .venv/bin/python docs/probes/predictor_switch_probe.py SET OUT.json \\
        LABEL=RUNA:NETA:GA:RSA@RUNB:NETB:GB:RSB:STEPS:SWITCH[:SEED] ...
"""
import json
import sys

import torch

from hearing_hands_ros.audio import log_mel
from hearing_hands_ros.data import predictor_dataset as D
from hearing_hands_ros.eval import predictor_metrics as E
from hearing_hands_ros.models import flow
from hearing_hands_ros.models.predictor import bind
from hearing_hands_ros.models.predictor_run import load_run

sys.path.insert(0, 'docs/probes')
from predictor_sampler_probe import meta_rows, score, summary_line, window_set  # noqa: E402


def main(setname, out, specs):
    torch.set_num_threads(1)
    base = load_run('runs/pred5/predictor.pt')
    cfg, judge = base['cfg'], base['judge']
    data, idx = window_set(setname, cfg)
    res, runs = {}, {}
    for label, spec in specs:
        a, b = spec.split('@')
        run_a, net_a, g_a, rs_a = a.split(':')
        run_b, net_b, g_b, rs_b, steps, switch, *seed = b.split(':')
        seed = int(seed[0]) if seed else 0
        for r in (run_a, run_b):
            runs.setdefault(r, load_run(r))
        ma, mb = runs[run_a][net_a], runs[run_b][net_b]
        assert torch.allclose(ma.mel_mean, mb.mel_mean) and torch.allclose(ma.mel_std, mb.mel_std)
        voc = runs[run_b]['vocoder']
        rows, audio = [], []
        for n, i in enumerate(idx):
            frames = int(data.valid[i])
            real = data.audio_float(i, frames)
            bt = D.full_batch(data, [i], frames)
            cond = (bt['traj'], bt['image'], bt['crops'], bt.get('looks'))
            va, vb = bind(ma, *cond), bind(mb, *cond)
            with torch.no_grad():
                g = torch.Generator().manual_seed(n + 1000 * seed)
                x = torch.randn(bt['mel'].shape, generator=g)
                ts = flow.time_grid(int(steps))
                for t0, t1 in zip(ts[:-1], ts[1:]):
                    t = torch.full((1,), t0)
                    if t0 < float(switch):
                        v = flow.guided_velocity(va, x, t, float(g_a), float(rs_a))
                    else:
                        v = flow.guided_velocity(vb, x, t, float(g_b), float(rs_b))
                    x = x + (t1 - t0) * v
                wav = voc(mb.denormalize_mel(x)).numpy()[0][:len(real)]
            rows.append(E.window_metrics(wav, real, data.meta[i]['contacts'], cfg.sample_rate))
            audio.append(wav)
        judged = judge.classify([log_mel(x, cfg.sample_rate) for x in audio])
        res[label] = score(rows, judged, [data.meta[i] for i in idx])
        print(summary_line(setname, label, res[label]), flush=True)
    res['_meta'] = meta_rows([data.meta[i] for i in idx])
    json.dump(res, open(out, 'w'))


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2], [a.split('=', 1) for a in sys.argv[3:]])
