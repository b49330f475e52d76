"""``hearing-hands evaluate predictor``: held-out episodes, metrics, baselines, JSON, pictures.

    hearing-hands evaluate predictor --data data/sim/test --json out/eval_predictor.json

Methods (one JSON entry each, same windows): ``model`` (the exported bundle at its default step
count, through ONNX Runtime like the node), ``model_25step_cfg`` (the flow teacher, 25 Euler steps,
CFG 4.5: the Hearing Hands recipe), ``regression`` (same network trained by direct regression),
``retrieval`` (the training clip whose trajectory features are nearest); with ``--second-take``
also ``second_take``, a second recording of the same motions. The metrics of each, per window over
its valid frames, averaged: ``eval/predictor_metrics.py`` (distances, onsets, loudness, the judge's
material and action accuracy) and ``eval/contact_judge.py`` (``material_accuracy_contact``).

What the files do not allow is skipped, and ``result['skipped']`` (and the table) says why:
``model_25step_cfg`` and ``regression`` need the teacher and regression nets of the run
checkpoint (``--run RUN/predictor.pt``; the shipped ``MODEL.pt`` holds only the student, the
vocoder and the judge), ``retrieval`` and ``material_accuracy_contact`` need training bags
(``--train-data``, or the bags named in the model metadata that are here), the whole-clip judge's
``material_accuracy`` and ``action_accuracy`` need its ``judge``. The ``model`` row always runs.

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
from hearing_hands_ros.eval.predictor_baselines import missing_nets, regress_torch, retrieve, sample_torch
from hearing_hands_ros.eval.predictor_figures import spectrogram_figure
from hearing_hands_ros.eval.predictor_metrics import DEFINITIONS, aggregate, window_metrics

HELP = 'evaluate the contact-sound predictor on held-out episodes against baselines'
METRICS = ('stft_distance', 'envelope_distance', 'onset_f1', 'onset_error_ms',
           'material_accuracy', 'material_accuracy_contact', 'action_accuracy',
           'loudness_error_db', 'network_evaluations')
#: the model and its baselines, in the order of the table and of the spectrogram pictures
BASELINES = ('model', 'model_25step_cfg', 'regression', 'retrieval')


def second_take_windows(bags, test, idx, cfg, cache, progress: bool):
    """The windows of ``bags`` (a second take of the test episodes: same scenes and motions,
    another sound seed) in the order of ``test``'s windows ``idx``, or None without ``bags``.
    Raises UserError when a window has no twin (other episodes, or another simulator)."""
    if not bags:
        return None
    other = load_windows(bags, '--second-take', cfg, cache, progress)
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
                        'holds the teacher and regression baselines only when exported with '
                        '--with-baselines; without them those rows are skipped)')
    p.add_argument('--train-data', nargs='+', default=None,
                   help='training bags for the retrieval baseline and the per-contact judge '
                        '(default: the bags recorded in the model metadata that exist; without '
                        'any, both are skipped)')
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


def load_windows(bags, option: str, cfg, cache, progress: bool):
    """The windows of ``bags``; bags that do not exist or hold no windows are the user's mistake
    (UserError naming ``option``)."""
    from hearing_hands_ros.data import predictor_dataset as D
    try:
        return D.load_windows(bags, cfg, cache_dir=cache, progress=progress)
    except FileNotFoundError as exc:
        raise UserError(f'{option}: {exc}') from None
    except ValueError as exc:
        if not str(exc).startswith('no windows'):              # D.PredictorData.concat's
            raise
        raise UserError(f'{option} {" ".join(map(str, bags))}: {exc}') from None


def training_windows(args, meta: dict, cfg, cache) -> tuple[object | None, str | None]:
    """(the training windows, outside the held-out combinations, or None; why there are none).
    ``--train-data`` must exist; of the bags named in the model metadata, those here are used."""
    from hearing_hands_ros.data import predictor_dataset as D
    named = meta.get('training_data', {}).get('bags') or []
    bags = args.train_data or [b for b in named if Path(b).exists()]
    if not bags:
        where = (f' (none of the {len(named)} bags named in the model metadata is here)'
                 if named else '')
        return None, f'no training bags: pass --train-data{where}'
    train = load_windows(bags, '--train-data', cfg, cache, not args.no_progress)
    train = train.subset(D.split_holdout(train, meta.get('training_data', {})
                                         .get('holdout_combos', []))[0])
    if not len(train):
        return None, 'every training window is of a held-out combination: pass --train-data'
    return train, None


def skipped_figures(nets: dict, run_path: Path, no_train: str | None) -> dict[str, str]:
    """Why the judges' figures cannot be computed: the whole-clip judge is a net of the run
    checkpoint, the per-contact one is fitted on the training bags."""
    out = {}
    if nets.get('judge') is None:
        why = (f'the run checkpoint {run_path} holds no judge (pass --run RUN/predictor.pt from a '
               'training run with the judge stage)')
        out |= {'material_accuracy': why, 'action_accuracy': why}
    if no_train:
        out['material_accuracy_contact'] = f'the per-contact judge is fitted on training bags; {no_train}'
    return out


def score(rows, judged, named, meta, nfe: int, keep=None) -> dict:
    """The figures of one method over windows ``keep`` (all: None): ``judged`` (the whole-clip
    judge's names) or ``named`` (the per-contact judge's) None when that judge is skipped."""
    def pick(xs):
        return xs if keep is None else [xs[k] for k in keep]
    out = aggregate(pick(rows), (pick(judged[0]), pick(judged[1])) if judged else ([], []),
                    pick(meta), nfe)
    if judged is None:
        del out['material_accuracy'], out['action_accuracy']
    if named is not None:
        out['material_accuracy_contact'] = contact_accuracy(pick(named), pick(meta))
    return out


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
        raise UserError(f'run checkpoint {run_path} not found; pass --run RUN/predictor.pt')
    nets = load_run(run_path)
    cfg = nets['cfg']
    cache = args.cache or str(Path(args.json).parent / 'cache')
    test = load_windows(args.data, '--data', cfg, cache, not args.no_progress)
    train, no_train = training_windows(args, planner.meta, cfg, cache)
    skipped = missing_nets(nets, run_path) | ({'retrieval': no_train} if no_train else {})
    skipped |= skipped_figures(nets, run_path, no_train)
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
    pictured = tuple(m for m in BASELINES if m not in skipped)     # model and the baselines
    methods = (*pictured, *sweep, *(('second_take',) if take2 is not None else ()))
    rows = {m: [] for m in methods}
    audio = {m: [] for m in methods}
    nearest = retrieve(train, test, idx) if 'retrieval' in methods else None
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
        outs['model'] = pred.audio
        if 'model_25step_cfg' in methods:
            t0 = time.perf_counter()
            outs['model_25step_cfg'] = sample_torch(nets['teacher'], nets['vocoder'], b, 25, 4.5,
                                                    args.seed + n)[0]
            timing['model_25step_cfg'] += time.perf_counter() - t0
        if 'regression' in methods:
            outs['regression'] = regress_torch(nets['regression'], nets['vocoder'], b)[0]
        if 'retrieval' in methods:
            x = train.audio_float(nearest[n], min(frames, train.mel.shape[-1]))
            outs['retrieval'] = np.pad(x, (0, max(0, len(real) - len(x))))
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
                               real, {m: audio[m][-1] for m in pictured}, mt['contacts'],
                               f'{mt["episode"]} t={mt["start"]:.2f}s {mt["action"]} on {mt["material"]} {mt["shape"]}')
            import soundfile as sf
            sf.write(fig_dir / f'window_{n:02d}_recorded.wav', real, sr)
            sf.write(fig_dir / f'window_{n:02d}_model.wav', np.clip(audio['model'][-1], -1, 1), sr)
    judge = nets.get('judge')
    meta = [test.meta[i] for i in idx]
    nfe = {'model': planner.network_evaluations,
           'model_25step_cfg': network_evaluations(25, 4.5, cfg.prior),
           'regression': 1, 'retrieval': 0, 'second_take': 0,
           **{m: planner.network_evaluations for m in sweep}}
    bags = sorted({m.get('bag', m['episode']) for m in meta})
    result = dict(episodes=len(bags), episode_bags=bags, windows=len(idx), methods={},
                  skipped=skipped)
    unseen = [k for k, m in enumerate(meta) if unseen_combo(m)]
    per_contact = train is not None
    contact_judge = fit_contact_judge(train, sr) if per_contact else None

    def judged_by_both(clips):
        return (judge.classify([log_mel(x, sr) for x in clips]) if judge is not None else None,
                judge_contacts(contact_judge, clips, meta, sr) if per_contact else None)

    for m in methods:
        judged, named = judged_by_both(audio[m])
        result['methods'][m] = score(rows[m], judged, named, meta, nfe[m])
        result['methods'][m]['seconds_per_clip'] = round(timing[m] / max(1, len(idx)), 4)
        if unseen:
            result['methods'][m]['unseen_combos'] = score(rows[m], judged, named, meta, nfe[m],
                                                          keep=unseen)
    real = [test.audio_float(i) for i in idx]                          # valid frames
    no_metrics = dict(stft_distance=0, envelope_distance=0, hits=0, n_pred=0, n_true=0, errs=[],
                      loudness_error_db=0)
    on_real = {k: v for k, v in score([no_metrics] * len(idx), *judged_by_both(real), meta, 0).items()
               if k in ('material_accuracy', 'action_accuracy', 'material_accuracy_contact')}
    if on_real:
        result['judge_on_real_audio'] = on_real
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
    """The methods that ran, one row each, then one line per skipped method or figure."""
    cols = METRICS
    lines = [f'{"method":<18}' + ''.join(f'{c[:12]:>13}' for c in cols)]
    for m, v in result['methods'].items():
        cells = []
        for c in cols:
            x = v.get(c)
            cells.append(f'{"-" if x is None else (f"{x:.4g}" if isinstance(x, float) else x):>13}')
        lines.append(f'{m:<18}' + ''.join(cells))
    lines += [f'skipped {k}: {why}' for k, why in result.get('skipped', {}).items()]
    return '\n'.join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog='python -m hearing_hands_ros.eval.predictor', description=HELP)
    add_arguments(p)
    return run(p.parse_args(argv))


if __name__ == '__main__':
    raise SystemExit(main())
