"""``hearing-hands train predictor``: train the contact-sound predictor from rosbag2 episodes.

    hearing-hands train predictor --data data/sim/train --out runs/predictor
    torchrun --nproc_per_node 2 -m hearing_hands_ros.train.predictor --data ... --out ...   # DDP

Stages (``--stages``, in this order; each resumable):

``vocoder``     Vocos-style mel -> waveform on 1 s crops of the recorded audio (multi-resolution
                STFT + mel loss).
``regression``  the same network trained to output the mel directly (MSE): the evaluation's
                regression baseline, and the flow's prior.
``flow``        the rectified-flow teacher: velocity net on random 3.2 s crops of the windows,
                logit-normal t (``--t-mean``; ``--t-uniform`` of the batch uniform instead), 10 %
                condition dropout, EMA weights. With ``--prior`` it refines the regression net,
                frozen inside it: the regression's mel is an input and the start of its output
                (CorrDiff-style), so the sampler's first step already knows *when* the contacts
                sound (the plain flow never learned that here; README, *Predictor quality*).
``reflow``      guidance distillation + reflow: couplings (noise, teacher sample: 25 CFG 4.5 steps
                by default, ``--teacher-steps/-guidance/-rescale``) on training crops; a student
                initialised from the teacher learns their straight lines, so 1-4 unguided steps
                sample it. What it was distilled from is kept in the summary and the bundle.
``judge``       the material/action classifier used by the evaluation, on real audio only.

The run folder holds ``predictor.pt`` (config + every trained net, the bundle's torch backend
and the evaluation's baselines), ``checkpoints/<stage>.pt`` (model, EMA, optimiser, step, RNG:
``--resume`` continues), ``log.csv`` (stage, step, loss, lr, seconds), ``summary.json``
(data summary, normalisation, held-out combinations) and ``args.json``.

A stage named in ``--stages`` is trained anew (the student from the run's teacher) unless
``--resume`` finds its checkpoint; the nets of the other stages are kept from ``predictor.pt``.
So ``--stages reflow --teacher-guidance 2.5`` on a copy of a run distils its teacher again.
"""
from __future__ import annotations

import argparse
import copy
import csv
import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch

from hearing_hands_ros.errors import UserError
from hearing_hands_ros.models import flow
from hearing_hands_ros.models.judge import AudioJudge, judge_loss, label_sets
from hearing_hands_ros.models.predictor import (N_VIEW_LOOK, PredictorConfig, VelocityNet, bind,
                                                count_parameters, regression_predict)
from hearing_hands_ros.models.predictor_run import load_run, save_run
from hearing_hands_ros.models.vocoder import MelSpectrogram, Vocoder, vocoder_loss

HELP = 'train the contact-sound predictor (vocoder, rectified flow, reflow, baselines) from rosbags'
STAGES = ('vocoder', 'regression', 'flow', 'reflow', 'judge')
NET_OF_STAGE = {'vocoder': 'vocoder', 'flow': 'teacher', 'reflow': 'student',
                'regression': 'regression', 'judge': 'judge'}
DEFAULT_HOLDOUT = ('glass:cup', 'metal:bowl', 'wood:box', 'ceramic:plate')
EXAMPLES = ('examples:\n'
            '  hearing-hands train predictor --data data/sim/train --out runs/predictor\n'
            '  hearing-hands train predictor --data data/sim --out runs/p --stages flow,reflow --resume\n'
            '  torchrun --nproc_per_node 2 -m hearing_hands_ros.train.predictor --data d --out r')


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument('--data', nargs='+', required=True, help='rosbag2 episode folders (or parents)')
    p.add_argument('--out', type=Path, required=True, help='run folder')
    p.add_argument('--stages', default=','.join(STAGES),
                   help=f'comma-separated subset of {",".join(STAGES)}')
    p.add_argument('--holdout-combos', default=','.join(DEFAULT_HOLDOUT),
                   help='material:shape pairs kept out of training (episodes containing any are '
                        'skipped) so the evaluation can test unseen combinations; "" for none')
    p.add_argument('--vocoder-steps', type=int, default=1500)
    p.add_argument('--flow-steps', type=int, default=3500)
    p.add_argument('--reflow-pairs', type=int, default=768, help='teacher samples for reflow')
    p.add_argument('--reflow-steps', type=int, default=1200)
    p.add_argument('--regression-steps', type=int, default=1200)
    p.add_argument('--judge-steps', type=int, default=600)
    p.add_argument('--teacher-steps', type=int, default=25, help='Euler steps of the teacher')
    p.add_argument('--teacher-guidance', type=float, default=4.5, help='CFG scale of the teacher')
    p.add_argument('--batch', type=int, default=16)
    p.add_argument('--segment-seconds', type=float, default=3.2, help='training crop length')
    p.add_argument('--lr', type=float, default=2e-3)
    p.add_argument('--p-drop', type=float, default=0.1, help='condition dropout (CFG)')
    p.add_argument('--init', type=Path, default=None, metavar='RUN_PT',
                   help='start the trained stages from this run\'s nets (fine-tuning; same network)')
    p.add_argument('--channels', default='96,128,192', help='U-Net widths per level')
    p.add_argument('--view-looks', action=argparse.BooleanOptionalAction, default=True,
                   help='condition also on the look of the object segment each local view points '
                        'at (--no-view-looks: the crops only, the older network)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--threads', type=int, default=2, help='torch CPU threads per process')
    p.add_argument('--device', default='auto', help='auto | cpu | cuda')
    p.add_argument('--cache', default=None, help='window cache folder (default OUT/cache)')
    p.add_argument('--resume', action='store_true', help='continue unfinished stages, skip done ones')
    p.add_argument('--ckpt-every', type=int, default=250)
    p.add_argument('--log-every', type=int, default=25)
    p.add_argument('--no-progress', action='store_true')
    p.add_argument('--image-topic', default='/wrist_camera/image_raw')
    p.add_argument('--camera-info-topic', default='/wrist_camera/camera_info')
    p.add_argument('--audio-topic', default='/audio/audio_stamped')
    p.add_argument('--audio-info-topic', default='/audio/audio_info')
    p.add_argument('--pose-topic', default='/gripper/pose')
    p.add_argument('--joint-states-topic', default='/gripper/joint_states')
    p.add_argument('--path-topic', default='/planned_path')
    x = p.add_argument_group('experimental (no shipped model uses these)')
    x.add_argument('--t-mean', type=float, default=0.0,
                   help='[experimental] location of the logit-normal flow times (negative: more '
                        'weight on the noise end)')
    x.add_argument('--t-uniform', type=float, default=0.0,
                   help='[experimental] share of flow times drawn uniformly on [0, 1] instead')
    x.add_argument('--velocity-skip', action=argparse.BooleanOptionalAction, default=False,
                   help='[experimental] flow stage: the velocity is the network output minus its '
                        'input')
    x.add_argument('--prior', action=argparse.BooleanOptionalAction, default=False,
                   help='[experimental] flow stage: the teacher refines the run\'s regression net '
                        '(frozen, an input and the start of its output; CorrDiff-style; implies '
                        '--velocity-skip). Needs the regression stage first')
    x.add_argument('--teacher-rescale', type=float, default=0.0,
                   help='[experimental] guidance rescale in [0, 1] of the teacher\'s samples for '
                        'reflow (0: plain CFG; 1: the guided sample keeps the conditional one\'s '
                        'spread, models.flow)')


def topics_from_args(args):
    from hearing_hands_ros.data.bags import TopicNames
    return TopicNames(image=args.image_topic, camera_info=args.camera_info_topic,
                      audio=args.audio_topic, audio_info=args.audio_info_topic,
                      pose=args.pose_topic, joint_states=args.joint_states_topic,
                      path=args.path_topic)


# --- run context ------------------------------------------------------------------------------
class Context:
    """Device, DDP rank, logging and checkpoints shared by the stages."""

    def __init__(self, args):
        self.args = args
        self.world = int(os.environ.get('WORLD_SIZE', '1'))
        self.rank = int(os.environ.get('RANK', '0'))
        want = args.device
        self.device = torch.device('cuda' if want == 'auto' and torch.cuda.is_available()
                                   else ('cpu' if want == 'auto' else want))
        if self.device.type == 'cuda' and self.world > 1:
            torch.cuda.set_device(int(os.environ.get('LOCAL_RANK', '0')))
            self.device = torch.device('cuda', torch.cuda.current_device())
        if self.world > 1:
            import torch.distributed as dist
            dist.init_process_group('nccl' if self.device.type == 'cuda' else 'gloo')
        torch.set_num_threads(max(1, args.threads))
        self.out = Path(args.out)
        self.ckpt_dir = self.out / 'checkpoints'
        if self.main:
            self.ckpt_dir.mkdir(parents=True, exist_ok=True)
        self._log = None

    @property
    def main(self) -> bool:
        return self.rank == 0

    def wrap(self, module: torch.nn.Module) -> torch.nn.Module:
        """DDP-wrap for training when distributed."""
        if self.world == 1:
            return module
        from torch.nn.parallel import DistributedDataParallel as DDP
        return DDP(module, device_ids=[self.device.index] if self.device.type == 'cuda' else None)

    def log(self, stage: str, step: int, loss: float, lr: float, seconds: float) -> None:
        if not self.main:
            return
        path = self.out / 'log.csv'
        new = not path.exists()
        with path.open('a', newline='') as f:
            w = csv.writer(f)
            if new:
                w.writerow(['stage', 'step', 'loss', 'lr', 'seconds'])
            w.writerow([stage, step, f'{loss:.6f}', f'{lr:.3g}', f'{seconds:.1f}'])

    def barrier(self):
        if self.world > 1:
            import torch.distributed as dist
            dist.barrier()


def cosine_lr(step: int, total: int, base: float, warmup: int = 100) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    return base * 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))


def train_loop(ctx: Context, stage: str, model: torch.nn.Module, loss_fn, steps: int, lr: float,
               ema: torch.nn.Module | None = None, ema_decay: float = 0.999) -> None:
    """Generic loop: AdamW + cosine LR, grad clip 1, optional EMA, checkpoints, resume, CSV."""
    from tqdm import tqdm
    args = ctx.args
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    ckpt = ctx.ckpt_dir / f'{stage}.pt'
    start = 0
    if args.resume and ckpt.exists():
        state = torch.load(ckpt, map_location=ctx.device, weights_only=False)
        model.load_state_dict(state['model'])
        opt.load_state_dict(state['opt'])
        if ema is not None and state.get('ema') is not None:
            ema.load_state_dict(state['ema'])
        start = int(state['step'])
        torch.set_rng_state(state['torch_rng'])
    if start >= steps:
        return
    wrapped = ctx.wrap(model)

    def save(step):
        if ctx.main:
            torch.save(dict(model=model.state_dict(), opt=opt.state_dict(), step=step,
                            ema=ema.state_dict() if ema is not None else None,
                            torch_rng=torch.get_rng_state()), ckpt.with_suffix('.tmp'))
            os.replace(ckpt.with_suffix('.tmp'), ckpt)

    bar = tqdm(range(start, steps), desc=stage, disable=args.no_progress or not ctx.main,
               dynamic_ncols=True, initial=start, total=steps)
    t0, running = time.perf_counter(), None
    model.train()
    for step in bar:
        for g in opt.param_groups:
            g['lr'] = cosine_lr(step, steps, lr)
        loss = loss_fn(wrapped, step)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if ema is not None:
            with torch.no_grad():
                d = min(ema_decay, (1 + step) / (10 + step))
                for pe, pm in zip(ema.parameters(), model.parameters()):
                    pe.lerp_(pm, 1 - d)
        val = loss.item()
        running = val if running is None else 0.95 * running + 0.05 * val
        bar.set_postfix(loss=f'{running:.4f}')
        if (step + 1) % args.log_every == 0 or step + 1 == steps:
            ctx.log(stage, step + 1, running, opt.param_groups[0]['lr'], time.perf_counter() - t0)
        if (step + 1) % args.ckpt_every == 0 or step + 1 == steps:
            save(step + 1)
    model.eval()


# --- stages -----------------------------------------------------------------------------------
def stage_vocoder(ctx, data, vocoder: Vocoder, rng) -> None:
    from hearing_hands_ros.data.predictor_dataset import audio_segments
    mel_fn = MelSpectrogram(vocoder.config['sample_rate'], vocoder.config['n_fft'],
                            vocoder.config['hop'], vocoder.config['n_mels']).to(ctx.device)

    def loss_fn(model, step):
        audio = audio_segments(data, ctx.args.batch, 16000, rng).to(ctx.device)
        return vocoder_loss(model, mel_fn, audio)
    train_loop(ctx, 'vocoder', vocoder, loss_fn, ctx.args.vocoder_steps, ctx.args.lr)


def _batch(ctx, data, rng, frames):
    from hearing_hands_ros.data.predictor_dataset import segment_batch
    idx = rng.integers(0, len(data), ctx.args.batch)
    return {k: v.to(ctx.device) for k, v in segment_batch(data, idx, frames, rng).items()}


def _velocity(model, b):
    return bind(model, b['traj'], b['image'], b['crops'], b.get('looks'))


def stage_flow(ctx, data, net: VelocityNet, ema: VelocityNet, rng, frames: int) -> None:
    def loss_fn(model, step):
        b = _batch(ctx, data, rng, frames)
        x1 = net.normalize_mel(b['mel'])
        return flow.flow_loss(_velocity(model, b), x1, p_drop=ctx.args.p_drop, mask=b['mask'],
                              t_mean=ctx.args.t_mean, t_uniform=ctx.args.t_uniform)
    train_loop(ctx, 'flow', net, loss_fn, ctx.args.flow_steps, ctx.args.lr, ema=ema)


def make_reflow_pairs(ctx, data, teacher: VelocityNet, rng, frames: int) -> dict:
    """Teacher couplings on random training crops: conditions, noise x0 and sample x1_hat."""
    from tqdm import tqdm
    path = ctx.ckpt_dir / 'reflow_pairs.pt'
    if ctx.args.resume and path.exists():
        return torch.load(path, weights_only=False)
    n, bs = ctx.args.reflow_pairs, 32
    parts = []
    teacher.eval()
    for _ in tqdm(range(math.ceil(n / bs)), desc='reflow pairs', dynamic_ncols=True,
                  disable=ctx.args.no_progress or not ctx.main):
        from hearing_hands_ros.data.predictor_dataset import segment_batch
        idx = rng.integers(0, len(data), bs)
        b = {k: v.to(ctx.device) for k, v in segment_batch(data, idx, frames, rng).items()}
        x0 = torch.randn_like(b['mel'])
        _, x1 = flow.reflow_pairs(_velocity(teacher, b), x0, ctx.args.teacher_steps,
                                  ctx.args.teacher_guidance, ctx.args.teacher_rescale)
        parts.append({**{k: v.cpu() for k, v in b.items() if k != 'mel'}, 'x0': x0.cpu(),
                      'x1': x1.cpu()})
    pairs = {k: torch.cat([p[k] for p in parts])[:n] for k in parts[0]}
    if ctx.main:
        torch.save(pairs, path)
    return pairs


def stage_reflow(ctx, data, teacher, student, rng, frames) -> None:
    pairs = make_reflow_pairs(ctx, data, teacher, rng, frames)
    n = len(pairs['x0'])

    def loss_fn(model, step):
        i = torch.from_numpy(rng.integers(0, n, ctx.args.batch))
        b = {k: v[i].to(ctx.device) for k, v in pairs.items()}
        # uniform t covers the few-step grid points (0, 0.5, ...) as well as the middle
        t = torch.rand(len(i), device=ctx.device)
        return flow.flow_loss(_velocity(model, b), b['x1'], x0=b['x0'], p_drop=0.0,
                              mask=b['mask'], t=t)
    train_loop(ctx, 'reflow', student, loss_fn, ctx.args.reflow_steps, ctx.args.lr * 0.5)


def stage_regression(ctx, data, net, rng, frames) -> None:
    def loss_fn(model, step):
        b = _batch(ctx, data, rng, frames)
        err = (regression_predict(model, b) - net.normalize_mel(b['mel'])) ** 2
        m = b['mask'].expand_as(err)
        return (err * m).sum() / m.sum().clamp_min(1)
    train_loop(ctx, 'regression', net, loss_fn, ctx.args.regression_steps, ctx.args.lr)


def stage_judge(ctx, data, judge, rng) -> None:
    def loss_fn(model, step):
        idx = rng.integers(0, len(data), ctx.args.batch)
        return judge_loss(model, data, idx, rng, ctx.device)
    train_loop(ctx, 'judge', judge, loss_fn, ctx.args.judge_steps, 1e-3)


# --- the camera rig -----------------------------------------------------------------------------
def camera_from_bags(bags) -> dict | None:
    """Camera intrinsics + TCP->camera extrinsics of the rig, from the first episode's truth."""
    from hearing_hands_ros.data.bags import list_episodes
    for bag in list_episodes(bags):
        f = bag.parent / f'{bag.name}.truth.json'
        if f.exists():
            cam = json.loads(f.read_text()).get('camera') or {}
            if 'T_tcp_camera' in cam and 'K' in cam:
                return {k: cam[k] for k in ('width', 'height', 'K', 'T_tcp_camera', 'frame_id')
                        if k in cam}
    return None


# --- main ---------------------------------------------------------------------------------------
def run(args) -> int:
    from hearing_hands_ros.data import predictor_dataset as D
    stages = [s.strip() for s in args.stages.split(',') if s.strip()]
    bad = [s for s in stages if s not in STAGES]
    if bad:
        raise UserError(f'unknown stage(s) {", ".join(bad)}; choose from {", ".join(STAGES)}')
    lo, hi = flow.RESCALE_RANGE
    if not lo <= args.teacher_rescale <= hi:
        raise UserError(f'--teacher-rescale {args.teacher_rescale:g} is outside [{lo:g}, {hi:g}]')
    ctx = Context(args)
    ctx.out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(args.seed + ctx.rank)
    rng = np.random.default_rng(args.seed + 1000 * ctx.rank)
    cfg = PredictorConfig(channels=tuple(int(c) for c in args.channels.split(',')),
                          look_dim=N_VIEW_LOOK if args.view_looks else 0)
    frames = int(round(args.segment_seconds * cfg.frame_rate / cfg.frames_per_crop)) * cfg.frames_per_crop
    try:
        data = D.load_windows(args.data, cfg, cache_dir=args.cache or ctx.out / 'cache',
                              topics=topics_from_args(args), progress=not args.no_progress and ctx.main)
    except FileNotFoundError as e:
        raise UserError(str(e)) from None
    holdout = [c for c in args.holdout_combos.split(',') if c]
    train_idx, held = D.split_holdout(data, holdout)
    if len(train_idx) == 0:
        raise UserError('every episode holds a held-out material:shape combination; '
                        'pass --holdout-combos "" or more episodes')
    data = data.subset(train_idx)
    norm = D.normalization(data)
    run_file = ctx.out / 'predictor.pt'
    prev = load_run(run_file, ctx.device) if run_file.exists() else {}
    if prev:
        cfg = prev['cfg']
    else:
        cfg = PredictorConfig(**{**cfg.to_dict(), **norm, 'channels': cfg.channels})
    materials, actions = label_sets(data)
    summary = dict(prev.get('summary', {}))
    summary.update(episodes=sorted({m['episode'] for m in data.meta}), windows=len(data),
                   skipped_holdout_windows=int(len(held)), holdout_combos=holdout,
                   combos=sorted(data.combos()), materials=materials, actions=actions,
                   bags=[str(Path(b).resolve()) for b in args.data],
                   seconds=round(float(data.valid.sum()) / cfg.frame_rate, 1))
    if ctx.main:
        (ctx.out / 'args.json').write_text(json.dumps({k: str(v) for k, v in vars(args).items()
                                                       if not k.startswith('_')}, indent=1))
        print(f'{len(data)} training windows ({summary["seconds"]} s) from '
              f'{len(summary["episodes"])} episodes; {len(held)} held-out windows skipped')

    from hearing_hands_ros.planner import build_prototypes
    summary['prototypes'] = build_prototypes(data)
    summary['camera'] = summary.get('camera') or camera_from_bags(args.data)
    if ctx.world > 1:                                    # each rank trains on its own shard
        data = data.subset(np.arange(ctx.rank, len(data), ctx.world))
    nets = {k: prev.get(k) for k in ('vocoder', 'teacher', 'student', 'regression', 'judge')}
    dev = ctx.device
    init, dropped = {}, set()
    if args.init is not None:
        if not Path(args.init).exists():
            raise UserError(f'--init: {args.init} not found')
        init = load_run(args.init, dev)
        if not prev:
            cfg = init['cfg']                      # its network and normalisation
        elif init['cfg'].to_dict() != cfg.to_dict():
            raise UserError(f'--init: {args.init} has another network or normalisation than {run_file}')

    kind = {'velocity_skip': bool(args.velocity_skip or args.prior), 'prior': bool(args.prior)}
    if 'flow' in stages and any(getattr(cfg, k) != v for k, v in kind.items()):
        cfg = PredictorConfig.from_dict({**cfg.to_dict(), **kind})
        if nets['student'] is not None and 'reflow' not in stages:
            print('the velocity parameterisation changed: the old student is dropped; '
                  'train --stages reflow next')
        nets['student'] = None                     # distilled from a teacher of the other kind
        dropped.add('student')
        summary.pop('reflow', None)

    if init and any(getattr(init['cfg'], k) != getattr(cfg, k) for k in kind):
        raise UserError(f'--init: {args.init} is a run with ' + ', '.join(
            f'{k}={getattr(init["cfg"], k)}' for k in kind) + '; pass the same --prior / --velocity-skip')

    def start(name, module):                       # a fresh net, or the --init run's one
        if init.get(name) is not None:
            module.load_state_dict(init[name].state_dict())
        return module
    if 'vocoder' in stages:
        nets['vocoder'] = start('vocoder', Vocoder(n_mels=cfg.n_mels, n_fft=cfg.n_fft, hop=cfg.hop,
                                                   sample_rate=cfg.sample_rate).to(dev))
        stage_vocoder(ctx, data, nets['vocoder'], rng)
    if 'regression' in stages:
        nets['regression'] = start('regression', VelocityNet(cfg.plain()).to(dev))
        stage_regression(ctx, data, nets['regression'], rng, frames)
    if 'flow' in stages:
        teacher = start('teacher', VelocityNet(cfg).to(dev))
        if cfg.prior:                              # the run's regression (or --init's) inside
            reg = nets['regression'] or init.get('regression')
            if reg is None and init.get('teacher') is None:
                raise UserError('--prior needs the run\'s regression net: train --stages regression '
                                'first (or leave out --prior)')
            if reg is not None:
                teacher.prior_net.load_state_dict(reg.state_dict())
        ema = copy.deepcopy(teacher)
        work = copy.deepcopy(teacher)
        stage_flow(ctx, data, work, ema, rng, frames)
        nets['teacher'] = ema
    if 'reflow' in stages:
        if nets['teacher'] is None:
            raise UserError('stage reflow needs the flow stage first (or a run with a teacher)')
        student = copy.deepcopy(nets['teacher'])
        stage_reflow(ctx, data, nets['teacher'], student, rng, frames)
        nets['student'] = student
        summary['reflow'] = dict(pairs=args.reflow_pairs, steps=args.reflow_steps,   # for export
                                 teacher_steps=args.teacher_steps,
                                 teacher_guidance=args.teacher_guidance,
                                 teacher_rescale=args.teacher_rescale)
    if 'judge' in stages:
        nets['judge'] = AudioJudge(n_mels=cfg.n_mels, materials=materials, actions=actions).to(dev)
        stage_judge(ctx, data, nets['judge'], rng)
    if ctx.main:
        if run_file.exists():       # another process may have saved other stages meanwhile
            trained = {NET_OF_STAGE[s] for s in stages}
            now = load_run(run_file, dev)
            nets |= {k: now[k] for k in nets
                     if k not in trained | dropped and now.get(k) is not None}
            if 'reflow' not in stages and 'student' not in dropped and now['summary'].get('reflow'):
                summary['reflow'] = now['summary']['reflow']
        summary['parameters'] = {k: count_parameters(v) for k, v in nets.items() if v is not None}
        save_run(run_file, cfg, {k: v for k, v in nets.items()}, summary)
        (ctx.out / 'summary.json').write_text(json.dumps(summary, indent=1))
        print(f'saved {run_file}; export with: hearing-hands export predictor --run {ctx.out}')
    ctx.barrier()
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog='python -m hearing_hands_ros.train.predictor', description=HELP)
    add_arguments(p)
    return run(p.parse_args(argv))


if __name__ == '__main__':
    raise SystemExit(main())
