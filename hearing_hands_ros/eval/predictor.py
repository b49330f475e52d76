"""``hearing-hands evaluate predictor``: held-out episodes, metrics, baselines, JSON, pictures.

    hearing-hands evaluate predictor --data data/sim/test --json out/eval_predictor.json

Methods (one JSON entry each, same windows): ``model`` (the exported bundle at its default step
count, through ONNX Runtime like the node), ``model_25step_cfg`` (the flow teacher, 25 Euler steps,
CFG 4.5: the Hearing Hands recipe), ``regression`` (same network trained by direct regression),
``retrieval`` (the training clip whose trajectory features are nearest); with ``--second-take``
also ``second_take``, a second recording of the same motions. The metrics of each, per window over
its valid frames, averaged: ``eval/predictor_metrics.py`` (distances, onsets, loudness, the judge's
material and action accuracy) and ``eval/contact_judge.py`` (``material_accuracy_contact``).

Modules: ``predictor_metrics`` (metrics and their definitions), ``contact_judge`` (the second
judge), ``predictor_baselines`` (retrieval and the run's torch nets), ``predictor_figures`` (the
spectrogram pictures); this one parses the arguments, runs the methods and writes JSON and table.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from hearing_hands_ros.audio import log_mel
from hearing_hands_ros.errors import UserError
from hearing_hands_ros.eval.contact_judge import contact_accuracy, fit_contact_judge, judge_contacts
from hearing_hands_ros.eval.predictor_baselines import regress_torch, retrieve, sample_torch
from hearing_hands_ros.eval.predictor_figures import spectrogram_figure
from hearing_hands_ros.eval.predictor_metrics import DEFINITIONS, aggregate, window_metrics

HELP = 'evaluate the contact-sound predictor on held-out episodes against baselines'
METRICS = ('stft_distance', 'envelope_distance', 'onset_f1', 'onset_error_ms',
           'material_accuracy', 'material_accuracy_contact', 'action_accuracy',
           'loudness_error_db', 'network_evaluations')


def second_take_windows(bags, test, idx, cfg, cache, progress: bool):
    """The windows of ``bags`` (a second take of the test episodes: same scenes and motions,
    another sound seed) in the order of ``test``'s windows ``idx``, or None without ``bags``.
    Raises UserError when a window has no twin (other episodes, or another simulator)."""
    if not bags:
        return None
    from hearing_hands_ros.data import predictor_dataset as D
    other = D.load_windows(bags, cfg, cache_dir=cache, progress=progress)
    where = {(m['episode'], m['start_ns']): j for j, m in enumerate(other.meta)}
    keys = [(test.meta[i]['episode'], test.meta[i]['start_ns']) for i in idx]
    missing = [k for k in keys if k not in where]
    if missing:
        raise UserError(f'--second-take: {len(missing)} of {len(keys)} windows have no twin (first: '
                        f'{missing[0][0]} at {missing[0][1]} ns); record the same seeds with '
                        'simulate --sound-seed-offset')
    twins = other.subset([where[k] for k in keys])
    if any(twins.meta[n]['contacts'] != test.meta[i]['contacts'] for n, i in enumerate(idx)):
        raise UserError('--second-take: the twin windows hold other contacts (another motion)')
    return twins


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument('--data', nargs='+', required=True, help='held-out rosbag2 episodes (folders)')
    p.add_argument('--model', default=None, help='predictor bundle (default: the shipped model)')
    p.add_argument('--run', default=None,
                   help='training run .pt with the baselines and judge (default: MODEL.pt, which '
                        'holds them only when exported with --with-baselines)')
    p.add_argument('--train-data', nargs='+', default=None,
                   help='training bags for the retrieval baseline (default: the bags recorded in '
                        'the model metadata)')
    p.add_argument('--json', type=Path, required=True, help='output JSON')
    p.add_argument('--figures', type=Path, default=None, help='spectrogram folder (default: beside JSON)')
    p.add_argument('--max-windows', type=int, default=0, help='evaluate at most this many (0 = all)')
    p.add_argument('--steps', type=int, default=None, help='model steps (default: metadata)')
    p.add_argument('--temperature', type=float, default=None,
                   help='model sampler noise scale (default: metadata; the 25-step guided '
                        'baseline always samples at 1)')
    p.add_argument('--sweep-temperature', type=float, nargs='*', default=[],
                   help='also score the model at these temperatures (methods model_t<T>), '
                        'to choose the default on validation data')
    p.add_argument('--unseen-only', action='store_true',
                   help='evaluate only windows whose material:shape the model never trained on '
                        '(validation on the training folders\' held-out combinations)')
    p.add_argument('--second-take', nargs='+', default=None, metavar='BAGS',
                   help='the same episodes recorded again with another sound seed (simulate '
                        '--sound-seed-offset): adds the reference row second_take, what a real '
                        'recording of the same motion scores')
    p.add_argument('--backend', default='cpu')
    p.add_argument('--cache', default=None, help='window cache folder')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--no-progress', action='store_true')


def run(args) -> int:
    from tqdm import tqdm

    from hearing_hands_ros.data import predictor_dataset as D
    from hearing_hands_ros.models.predictor import network_evaluations
    from hearing_hands_ros.models.predictor_run import load_run
    from hearing_hands_ros.planner import TEMPERATURE_RANGE, Planner, default_model_path
    torch.set_num_threads(max(1, args.threads))
    sweep = {f'model_t{t:g}': float(t) for t in args.sweep_temperature}
    lo, hi = TEMPERATURE_RANGE
    if any(not lo <= t <= hi for t in sweep.values()):
        raise UserError(f'--sweep-temperature values must lie in [{lo:g}, {hi:g}]')
    model_path = Path(args.model) if args.model else default_model_path()
    planner = Planner(model_path, backend=args.backend, steps=args.steps, threads=args.threads,
                      temperature=args.temperature)
    run_path = Path(args.run) if args.run else model_path.with_suffix('.pt')
    if not run_path.exists():
        raise UserError(f'baselines checkpoint {run_path} not found; pass --run RUN/predictor.pt')
    nets = load_run(run_path)
    missing = [k for k in ('teacher', 'regression', 'vocoder', 'judge') if nets.get(k) is None]
    if missing:
        raise UserError(f'{run_path} lacks {", ".join(missing)} (the shipped bundle keeps only the '
                        f'student): pass --run RUN/predictor.pt, or export with --with-baselines')
    cfg = nets['cfg']
    cache = args.cache or str(Path(args.json).parent / 'cache')
    test = D.load_windows(args.data, cfg, cache_dir=cache, progress=not args.no_progress)
    train_bags = args.train_data or planner.meta.get('training_data', {}).get('bags', [])
    train_bags = [b for b in train_bags if Path(b).exists()]
    if not train_bags:
        raise UserError('retrieval needs the training bags: pass --train-data')
    train = D.load_windows(train_bags, cfg, cache_dir=cache, progress=not args.no_progress)
    hold = planner.meta.get('training_data', {}).get('holdout_combos', [])
    train = train.subset(D.split_holdout(train, hold)[0])
    seen = set(planner.meta.get('training_data', {}).get('combos', []))

    def unseen_combo(m: dict) -> bool:                  # a target object never trained on
        return D.combo(m) not in seen | {None}

    idx = np.arange(len(test))
    if args.unseen_only:
        idx = np.array([i for i in idx if unseen_combo(test.meta[i])], int)
        if not len(idx):
            raise UserError('--unseen-only: no window of these bags holds an unseen combination')
    if args.max_windows:
        idx = np.random.default_rng(args.seed).permutation(idx)[:args.max_windows]
    sr = cfg.sample_rate
    take2 = second_take_windows(args.second_take, test, idx, cfg, cache, not args.no_progress)
    methods = ('model', 'model_25step_cfg', 'regression', 'retrieval', *sweep,
               *(('second_take',) if take2 is not None else ()))
    rows = {m: [] for m in methods}
    audio = {m: [] for m in methods}
    nearest = retrieve(train, test, idx)
    figures = 0
    timing = {m: 0.0 for m in methods}             # sweep entries stay 0: not timed
    for n, i in enumerate(tqdm(idx, desc='evaluate', disable=args.no_progress, dynamic_ncols=True)):
        frames = int(test.valid[i])
        real = test.audio_float(i, frames)
        b = D.full_batch(test, [i], frames)
        t0 = time.perf_counter()
        pred = planner.predict_features(b['traj'].numpy(), b['image'].numpy(), b['crops'].numpy(),
                                        seed=args.seed + n, looks=b['looks'].numpy())[0]
        timing['model'] += time.perf_counter() - t0
        outs = {m: planner.predict_features(b['traj'].numpy(), b['image'].numpy(), b['crops'].numpy(),
                                            seed=args.seed + n, temperature=t,
                                            looks=b['looks'].numpy())[0].audio
                for m, t in sweep.items()}
        t0 = time.perf_counter()
        outs |= {'model': pred.audio,
                 'model_25step_cfg': sample_torch(nets['teacher'], nets['vocoder'], b, 25, 4.5,
                                                  args.seed + n)[0]}
        timing['model_25step_cfg'] += time.perf_counter() - t0
        outs['regression'] = regress_torch(nets['regression'], nets['vocoder'], b)[0]
        j = nearest[n]
        outs['retrieval'] = train.audio_float(j, min(frames, train.mel.shape[-1]))
        outs['retrieval'] = np.pad(outs['retrieval'], (0, max(0, len(real) - len(outs['retrieval']))))
        if take2 is not None:
            outs['second_take'] = take2.audio_float(n, frames)
        for m in methods:
            x = outs[m][:len(real)]
            rows[m].append(window_metrics(x, real, test.meta[i]['contacts'], sr))
            audio[m].append(x)
        if figures < 6 and test.meta[i]['contacts']:             # not the silent approaches
            figures += 1
            fig_dir = args.figures or Path(args.json).with_suffix('').parent / 'predictor_figures'
            fig_dir.mkdir(parents=True, exist_ok=True)
            mt = test.meta[i]
            spectrogram_figure(fig_dir / f'window_{n:02d}_{mt["action"]}_{mt["material"]}.png',
                               real, {m: audio[m][-1] for m in methods[:4]}, mt['contacts'],
                               f'{mt["episode"]} t={mt["start"]:.2f}s {mt["action"]} on {mt["material"]} {mt["shape"]}')
            import soundfile as sf
            sf.write(fig_dir / f'window_{n:02d}_recorded.wav', real, sr)
            sf.write(fig_dir / f'window_{n:02d}_model.wav', np.clip(audio['model'][-1], -1, 1), sr)
    judge = nets['judge']
    meta = [test.meta[i] for i in idx]
    nfe = {'model': planner.network_evaluations,
           'model_25step_cfg': network_evaluations(25, 4.5, cfg.prior),
           'regression': 1, 'retrieval': 0, 'second_take': 0,
           **{m: planner.network_evaluations for m in sweep}}
    bags = sorted({m.get('bag', m['episode']) for m in meta})
    result = dict(episodes=len(bags), episode_bags=bags, windows=len(idx), methods={})
    unseen = [k for k, m in enumerate(meta) if unseen_combo(m)]
    contact_judge = fit_contact_judge(train, sr)
    for m in methods:
        judged = judge.classify([log_mel(x, sr) for x in audio[m]])
        named = judge_contacts(contact_judge, audio[m], meta, sr)
        result['methods'][m] = aggregate(rows[m], judged, meta, nfe[m])
        result['methods'][m]['material_accuracy_contact'] = contact_accuracy(named, meta)
        result['methods'][m]['seconds_per_clip'] = round(timing[m] / max(1, len(idx)), 4)
        if unseen:
            result['methods'][m]['unseen_combos'] = aggregate(
                [rows[m][k] for k in unseen], ([judged[0][k] for k in unseen],
                                               [judged[1][k] for k in unseen]),
                [meta[k] for k in unseen], nfe[m])
            result['methods'][m]['unseen_combos']['material_accuracy_contact'] = contact_accuracy(
                [named[k] for k in unseen], [meta[k] for k in unseen])
    real = [test.audio_float(i) for i in idx]                          # valid frames
    real_judged = judge.classify([log_mel(x, sr) for x in real])
    result['judge_on_real_audio'] = {k: v for k, v in aggregate(
        [dict(stft_distance=0, envelope_distance=0, hits=0, n_pred=0, n_true=0, errs=[],
              loudness_error_db=0)] * len(idx), real_judged, meta, 0).items()
        if k in ('material_accuracy', 'action_accuracy')}
    result['judge_on_real_audio']['material_accuracy_contact'] = contact_accuracy(
        judge_contacts(contact_judge, real, meta, sr), meta)
    result['unseen_combo_windows'] = len(unseen)
    result['model'] = dict(path=str(model_path), steps=planner.steps, guidance=planner.guidance,
                           temperature=planner.temperature, backend=planner.backend)
    result['definitions'] = {k: v for k, v in DEFINITIONS.items()}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1))
    print(format_table(result))
    print(f'wrote {args.json}')
    return 0


def format_table(result: dict) -> str:
    cols = METRICS
    lines = [f'{"method":<18}' + ''.join(f'{c[:12]:>13}' for c in cols)]
    for m, v in result['methods'].items():
        cells = []
        for c in cols:
            x = v.get(c)
            cells.append(f'{"-" if x is None else (f"{x:.4g}" if isinstance(x, float) else x):>13}')
        lines.append(f'{m:<18}' + ''.join(cells))
    return '\n'.join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog='python -m hearing_hands_ros.eval.predictor', description=HELP)
    add_arguments(p)
    return run(p.parse_args(argv))


if __name__ == '__main__':
    raise SystemExit(main())
