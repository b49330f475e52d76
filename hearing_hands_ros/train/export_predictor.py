"""``hearing-hands export predictor``: a training run -> ONNX bundle the node and planner load.

    hearing-hands export predictor --run runs/predictor --out models/contact_sound_predictor

Writes ``NAME.onnx`` (velocity network of the few-step student, or the teacher with
``--net teacher``, plus the vocoder: see ``models.predictor.ExportGraph``), ``NAME.json``
(metadata the loaders validate: sample rate, frame rate, feature layout, default steps and
guidance, camera rig, sound prototypes, training-data summary, metrics) and ``NAME.pt`` (the run's
nets in float16: the ``torch`` backend; with ``--with-baselines`` also the evaluation's baselines).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from hearing_hands_ros import trajectory as tr
from hearing_hands_ros.errors import UserError
from hearing_hands_ros.models import flow
from hearing_hands_ros.models import predictor as P
from hearing_hands_ros.models.predictor_run import load_run, save_run
from hearing_hands_ros.planner import TEMPERATURE_RANGE
from hearing_hands_ros.runtime import save_metadata

HELP = 'export a trained contact-sound predictor to ONNX + metadata'
VERSION = '1.0'


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument('--run', type=Path, required=True, help='training run folder (or its predictor.pt)')
    p.add_argument('--out', type=Path, default=Path('models/contact_sound_predictor'),
                   help='bundle path without suffix')
    p.add_argument('--net', choices=['student', 'teacher'], default='student',
                   help='student: few-step reflowed net (guidance baked in); teacher: the flow model')
    p.add_argument('--steps', type=int, default=None, help='default steps (student 2, teacher 25)')
    p.add_argument('--guidance', type=float, default=None, help='default CFG (student 1, teacher 4.5)')
    p.add_argument('--temperature', type=float, default=1.0,
                   help='default sampler noise scale (1 = training noise; see evaluate --temperature)')
    p.add_argument('--metrics', type=Path, default=None, help='evaluation JSON to embed')
    p.add_argument('--with-baselines', action='store_true',
                   help='also keep the teacher and regression nets in NAME.pt (bigger bundle; by '
                        'default evaluate takes them from the run: --run RUN/predictor.pt)')
    x = p.add_argument_group('experimental (no shipped model uses these)')
    x.add_argument('--guidance-rescale', type=float, default=0.0,
                   help='[experimental] guidance rescale in [0, 1] when the bundle is sampled '
                        'with CFG (teacher, or a guidance override; '
                        'models.flow.combine_guidance)')


def export(run_pt: Path, out: Path, net_name: str = 'student', steps: int | None = None,
           guidance: float | None = None, metrics: dict | None = None,
           baselines: bool = False, temperature: float = 1.0,
           guidance_rescale: float = 0.0) -> Path:
    if not run_pt.is_file():
        raise UserError(f'training run checkpoint {run_pt} not found')
    nets = load_run(run_pt)
    cfg, summary = nets['cfg'], nets['summary']
    net = nets.get(net_name) or (nets.get('teacher') if net_name == 'student' else None)
    if net is None or nets.get('vocoder') is None:
        raise UserError(f'{run_pt} lacks a trained {net_name} and vocoder; run the training stages')
    distilled = net is nets.get('student')
    steps = steps or (2 if distilled else 25)
    guidance = guidance if guidance is not None else (1.0 if distilled else 4.5)
    lo, hi = TEMPERATURE_RANGE
    if not lo <= temperature <= hi:
        raise UserError(f'--temperature {temperature:g} is outside [{lo:g}, {hi:g}]')
    lo, hi = flow.RESCALE_RANGE
    if not lo <= guidance_rescale <= hi:
        raise UserError(f'--guidance-rescale {guidance_rescale:g} is outside [{lo:g}, {hi:g}]')
    if not summary.get('camera'):
        raise UserError('the run has no camera rig (intrinsics + T_tcp_camera); retrain with truth')
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx_path = out.with_suffix('.onnx')
    inputs = P.export_onnx(net, nets['vocoder'], onnx_path)
    save_metadata(onnx_path, 'predictor', inputs=inputs, outputs=list(P.ONNX_OUTPUTS),
                  version=VERSION, sample_rate=cfg.sample_rate, frame_rate=cfg.frame_rate,
                  hop=cfg.hop, n_fft=cfg.n_fft, n_mels=cfg.n_mels,
                  feature_layout=list(tr.FEATURE_LAYOUT), frame_id='world',
                  steps=steps, guidance=guidance, temperature=temperature,
                  guidance_rescale=guidance_rescale,
                  distilled_from=summary.get('reflow') if distilled else None, net=net_name if distilled else 'teacher',
                  image_size=cfg.image_size, crop_size=cfg.crop_size, crop_frac=cfg.crop_frac,
                  frames_per_crop=cfg.frames_per_crop, look_dim=cfg.look_dim, look_size=cfg.look_size,
                  velocity_skip=cfg.velocity_skip, prior=cfg.prior,
                  max_path_duration=cfg.max_seconds - cfg.tail_seconds,
                  tail_seconds=cfg.tail_seconds, camera=summary['camera'],
                  mel_mean=[round(float(v), 5) for v in cfg.mel_mean],
                  mel_std=[round(float(v), 5) for v in cfg.mel_std],
                  prototypes=summary.get('prototypes', {}),
                  training_data={k: summary.get(k) for k in
                                 ('bags', 'episodes', 'windows', 'seconds', 'combos',
                                  'holdout_combos', 'materials', 'actions')},
                  parameters={k: P.count_parameters(v) for k, v in nets.items()
                              if isinstance(v, torch.nn.Module)}, metrics=metrics or {})
    # the shipped .pt holds what the torch backend and the planner need (float16); the 25-step
    # teacher and the regression baseline only serve the evaluation, which can read the run
    names = ('vocoder', 'teacher', 'student', 'regression', 'judge') if baselines else \
        ('vocoder', 'student' if distilled else 'teacher', 'judge')
    keep = {k: nets.get(k) for k in names}
    save_run(out.with_suffix('.pt'), cfg, keep, summary, half=True)
    return onnx_path


def tiny_bundle(out: Path, seed: int = 0, steps: int = 2, looks: bool = True,
                events: bool = True) -> Path:
    """An untrained, tiny predictor bundle (random weights) for tests and smoke runs; with
    ``looks`` it takes the local views' segment looks as the trained models do, with ``events``
    a tiny contact-event bundle lies beside it (``contact_events``, as the planner looks for)."""
    from hearing_hands_ros.images import intrinsics
    from hearing_hands_ros.models.judge import AudioJudge
    from hearing_hands_ros.models.vocoder import Vocoder
    torch.manual_seed(seed)
    cfg = P.PredictorConfig(channels=(16, 24, 32), blocks=1, cond_dim=16, vis_dim=8,
                            look_dim=P.N_VIEW_LOOK if looks else 0)
    nets = {'vocoder': Vocoder(dim=16, blocks=1), 'student': P.VelocityNet(cfg),
            'teacher': P.VelocityNet(cfg), 'regression': P.VelocityNet(cfg),
            'judge': AudioJudge(materials=['glass', 'wood'], actions=['tap', 'scrape'], width=4)}
    for name in ('student', 'teacher', 'regression'):
        for prm in nets[name].parameters():
            prm.data += 0.05 * torch.randn_like(prm)
    camera = dict(width=128, height=128, K=intrinsics(128, 128).reshape(-1).tolist(),
                  frame_id='wrist_camera_optical',
                  T_tcp_camera=dict(position=[0.0, -0.075, 0.068],
                                    orientation=[0.9220290376453586, 0.0, 0.0, -0.3871207224352294]))
    rng = np.random.default_rng(seed)
    protos = {'scale': [1.0] * (cfg.n_mels + 3),
              'material': {m: rng.normal(size=cfg.n_mels + 3).tolist() for m in ('glass', 'wood')},
              'action': {a: rng.normal(size=cfg.n_mels + 3).tolist() for a in ('tap', 'scrape')}}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    run_pt = out.parent / f'{out.name}_run.pt'
    save_run(run_pt, cfg, nets, dict(camera=camera, prototypes=protos, bags=[], episodes=[],
                                     windows=0, combos=[], holdout_combos=[]))
    path = export(run_pt, out, 'student', steps=steps, baselines=True)
    run_pt.unlink()
    if events:
        from hearing_hands_ros.train.export_events import tiny_events_bundle
        tiny_events_bundle(out.parent / 'contact_events', seed)
    return path


def run(args) -> int:
    run_pt = args.run / 'predictor.pt' if args.run.is_dir() else args.run
    metrics = json.loads(args.metrics.read_text()) if args.metrics else None
    path = export(run_pt, args.out, args.net, args.steps, args.guidance,
                  metrics.get('methods') if metrics else None, args.with_baselines,
                  args.temperature, args.guidance_rescale)
    size = sum(p.stat().st_size for p in (path, path.with_suffix('.json'), path.with_suffix('.pt')))
    print(f'wrote {path} (+ .json, .pt): {size / 1e6:.1f} MB')
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog='python -m hearing_hands_ros.train.export_predictor', description=HELP)
    add_arguments(p)
    return run(p.parse_args(argv))


if __name__ == '__main__':
    raise SystemExit(main())
