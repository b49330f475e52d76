"""``hearing-hands train detector``: train the sounding-object detector (or a baseline variant).

    hearing-hands train detector --data data/sim/train --out runs/detector --minutes 15
    torchrun --nproc_per_node 2 -m hearing_hands_ros.train.detector --data ... --out ...   # DDP

Episodes -> cached events (``data.detector_dataset``) -> minibatches with light augmentation
(horizontal flip, brightness, audio gain) -> ``detector_loss``. The run folder holds ``dataset.npz`` (cache),
``last.pt`` (model + optimiser + step: ``--resume`` continues from it), ``log.csv`` (one row per
``--log-every`` steps) and ``args.json``. Ground truth is never read for training: targets come
from the automatic masks.

The saved model is an exponential moving average of the weights (``--ema``). With ``--val
EPISODES`` (held-out episodes *with* ground truth, e.g. a few recorded and labelled by hand on a
robot) it is scored every ``--val-every`` steps (detection accuracy, mean over the scenarios
present) and the best one is kept as ``best.pt``: the choice of checkpoint never sees the test
episodes.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from ..models.detector import (VARIANTS, DetectorConfig, SoundingObjectDetector, detector_loss,
                               load_checkpoint, save_checkpoint)


HELP = 'train the sounding-object detector (or a baseline variant) from rosbag2 episodes'


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument('--data', nargs='+', required=True, help='rosbag2 episode folders (or parents)')
    p.add_argument('--out', required=True, help='run folder (checkpoints, log, dataset cache)')
    p.add_argument('--variant', default='slots', choices=VARIANTS)
    p.add_argument('--init', default=None,
                   help='start from this checkpoint (matching weights), e.g. vision_only from slots')
    p.add_argument('--steps', type=int, default=100000, help='max optimisation steps')
    p.add_argument('--minutes', type=float, default=15.0, help='stop after this wall time')
    p.add_argument('--batch', type=int, default=32)
    p.add_argument('--lr', type=float, default=4e-4)
    p.add_argument('--match-dropout', type=float, default=0.3,
                   help='fraction of events trained on the visual prior alone (slots variant)')
    p.add_argument('--prior-dropout', type=float, default=0.3,
                   help='fraction of events trained on the audio-visual match alone (slots variant)')
    p.add_argument('--mask-weight', type=float, default=12.0,
                   help='weight of the automatic-mask guidance (pulls the sounding slot onto the '
                        'touched object and off the fingers)')
    p.add_argument('--gain-jitter-db', type=float, default=6.0,
                   help='random gain of the event audio (+-dB), so loudness alone is not a cue')
    p.add_argument('--num-slots', type=int, default=6)
    p.add_argument('--image-size', type=int, default=64)
    p.add_argument('--n-mels', type=int, default=DetectorConfig.n_mels, help='audio log-mel bands')
    p.add_argument('--n-fft', type=int, default=DetectorConfig.n_fft, help='audio FFT size')
    p.add_argument('--hop', type=int, default=DetectorConfig.hop, help='audio hop [samples]')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--threads', type=int, default=2, help='torch CPU threads per process')
    p.add_argument('--device', default='auto', help='auto | cpu | cuda')
    p.add_argument('--resume', action='store_true', help='continue from OUT/last.pt')
    p.add_argument('--cache', default=None,
                   help='event cache .npz (default OUT/dataset.npz); runs on the same episodes '
                        '(e.g. the baselines) can share one')
    p.add_argument('--ema', type=float, default=0.998, help='weight EMA decay (0 = off)')
    p.add_argument('--val', nargs='*', default=None,
                   help='labelled validation episodes: keep the best checkpoint as OUT/best.pt')
    p.add_argument('--val-every', type=int, default=200)
    p.add_argument('--ckpt-every', type=int, default=200)
    p.add_argument('--log-every', type=int, default=20)
    p.add_argument('--no-progress', action='store_true')
    for name, default in (('image', '/wrist_camera/image_raw'),
                          ('camera-info', '/wrist_camera/camera_info'),
                          ('audio', '/audio/audio_stamped'), ('audio-info', '/audio/audio_info'),
                          ('pose', '/gripper/pose')):
        p.add_argument(f'--{name}-topic', default=default)
    x = p.add_argument_group('experimental (no shipped model uses these)')
    x.add_argument('--train-only', default=None,
                   help='[experimental] comma-separated parameter prefixes to train, the rest '
                        'frozen (e.g. "prior_head" for a vision-only head on fixed slots)')
    x.add_argument('--segment-weight', type=float, default=0.0,
                   help='[experimental] weight of the automatic object segments (every non-table, '
                        'non-gripper region of the frame pulls one slot onto itself; 0 = off)')
    x.add_argument('--segment-data', nargs='*', default=None,
                   help='[experimental] more episodes used only for the reconstruction and '
                        'segment terms (no touched-object target), e.g. recordings where the '
                        'fingers work between two objects and the automatic mask cannot tell '
                        'which was touched')
    x.add_argument('--slot-init', default='learned', choices=('learned', 'gaussian'),
                   help='[experimental] initial slots: one learned vector per slot (the shipped '
                        'models), or a shared Gaussian')


def topics_from_args(args):
    from ..data.bags import TopicNames
    return TopicNames(image=args.image_topic, camera_info=args.camera_info_topic,
                      audio=args.audio_topic, audio_info=args.audio_info_topic, pose=args.pose_topic)


class Batches:
    """Random minibatches of event arrays, sharded over DDP ranks, with augmentation."""

    def __init__(self, data: dict, batch: int, seed: int, rank: int = 0, world: int = 1,
                 gain_jitter_db: float = 0.0, segments: np.ndarray | None = None,
                 touch: np.ndarray | None = None):
        self.data, self.segments, self.touch = data, segments, touch
        self.ids = np.arange(1, int(segments.max(initial=0)) + 1) if segments is not None else None
        self.gain = gain_jitter_db * np.log(10.0) / 10.0                 # dB -> ln(power)
        self.idx = np.arange(len(data['image']))[rank::world]
        self.batch = batch
        self.rng = np.random.default_rng(seed + 1000 * rank)

    def __next__(self) -> tuple[torch.Tensor, ...]:
        i = self.rng.choice(self.idx, size=min(self.batch, len(self.idx)), replace=False)
        img = self.data['image'][i].astype(np.float32) / 255.0           # (B,S,S,3)
        am = self.data['automask'][i].astype(np.float32)                 # (B,S,S)
        flip = self.rng.random(len(i)) < 0.5
        img[flip], am[flip] = img[flip, :, ::-1], am[flip, :, ::-1]
        seg = None
        if self.segments is not None:                                    # (B,J,S,S) one-hot
            lab = self.segments[i]
            lab[flip] = lab[flip, :, ::-1]
            seg = lab[:, None] == self.ids[None, :, None, None]
            seg = torch.from_numpy(seg.astype(np.float32))
        img = np.clip(img * self.rng.uniform(0.85, 1.15, (len(i), 1, 1, 1)), 0, 1).astype(np.float32)
        mel = self.data['logmel'][i].astype(np.float32)[:, None]         # (B,1,M,T)
        mel += self.rng.uniform(-self.gain, self.gain, (len(i), 1, 1, 1)).astype(np.float32)
        valid = am.reshape(len(i), -1).sum(1) > 0
        if self.touch is not None:
            valid &= self.touch[i]
        return (torch.from_numpy(np.ascontiguousarray(img.transpose(0, 3, 1, 2))),
                torch.from_numpy(mel), torch.from_numpy(np.ascontiguousarray(am)),
                torch.from_numpy(valid), seg)


def validation_accuracy(net: SoundingObjectDetector, val: dict, batch: int = 64) -> dict:
    """Detection accuracy of ``net`` on labelled events (``build_dataset`` arrays), per scenario,
    and their mean ('score')."""
    from ..eval.detector import score_events, scored_candidates
    scores, masks = [], []
    net.eval()
    with torch.no_grad():
        for i in range(0, len(val['image']), batch):
            img = torch.from_numpy(val['image'][i:i + batch].astype(np.float32).transpose(0, 3, 1, 2) / 255)
            mel = torch.from_numpy(val['logmel'][i:i + batch].astype(np.float32))[:, None]
            s, m = net.infer(img.to(net.log_scale.device), mel.to(net.log_scale.device))
            scores.append(s.cpu().numpy())
            masks.append(m.cpu().numpy())
    net.train()
    scores, masks = np.concatenate(scores), np.concatenate(masks)
    cands = scored_candidates(scores, masks, val['gripper'])
    correct = np.asarray(score_events(cands, val['labels'], val['target'])['correct'], float)
    out = {str(sc): float(correct[val['scenario'] == sc].mean()) for sc in np.unique(val['scenario'])}
    out['score'] = float(np.mean(list(out.values())))
    return out


def run(args) -> int:
    from ..data.detector_dataset import build_dataset, concat_events, mel_stats, segment_labels
    from ..eval.detector import labelled_events
    world = int(os.environ.get('WORLD_SIZE', '1'))
    rank = int(os.environ.get('RANK', '0'))
    torch.set_num_threads(max(1, args.threads))
    dev = args.device
    if dev == 'auto':
        dev = 'cuda' if torch.cuda.is_available() else 'cpu'
    if world > 1:
        import torch.distributed as dist
        dist.init_process_group('nccl' if dev == 'cuda' else 'gloo')
        if dev == 'cuda':
            torch.cuda.set_device(int(os.environ.get('LOCAL_RANK', '0')))
    device = torch.device(dev, torch.cuda.current_device()) if dev == 'cuda' else torch.device('cpu')
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(args.seed)

    cfg = DetectorConfig(variant=args.variant, num_slots=args.num_slots, slot_init=args.slot_init,
                         image_size=args.image_size,
                         n_mels=args.n_mels, n_fft=args.n_fft, hop=args.hop)
    cache = Path(args.cache) if args.cache else out / 'dataset.npz'
    if world > 1 and rank != 0:
        torch.distributed.barrier()              # rank 0 builds the cache first
    data = build_dataset(args.data, cfg, cache=cache, progress=rank == 0 and not args.no_progress,
                         topics=topics_from_args(args))
    if world > 1 and rank == 0:
        torch.distributed.barrier()
    n = len(data.get('image', []))
    if n < 2:
        print(f'error: only {n} sound events found in {args.data}; need more episodes')
        return 1
    cfg.mel_mean, cfg.mel_std = mel_stats(data['logmel'])
    touch = None
    if args.segment_data:
        extra = build_dataset(args.segment_data, cfg, cache=cache.with_name(cache.stem + '_seg.npz'),
                              progress=rank == 0 and not args.no_progress,
                              topics=topics_from_args(args))
        touch = np.r_[np.ones(n, bool), np.zeros(len(extra.get('image', [])), bool)]
        data = concat_events(data, extra)
        n = len(data['image'])
    segments = segment_labels(data) if args.segment_weight > 0 else None
    net = SoundingObjectDetector(cfg)
    if args.init:
        src, _ = load_checkpoint(args.init)
        own = net.state_dict()
        same = {k: v for k, v in src.state_dict().items() if k in own and own[k].shape == v.shape}
        net.load_state_dict(same, strict=False)
    if args.train_only:
        prefixes = tuple(s.strip() for s in args.train_only.split(',') if s.strip())
        for name, p in net.named_parameters():
            p.requires_grad = name.startswith(prefixes)
    net.to(device)
    params = [p for p in net.parameters() if p.requires_grad]
    ema = None
    if args.ema > 0:
        ema = torch.optim.swa_utils.AveragedModel(
            net, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(args.ema))
    val = None
    if args.val and rank == 0:
        val = labelled_events(build_dataset(args.val, cfg, cache=cache.with_name(cache.stem + '_val.npz'),
                                            progress=not args.no_progress,
                                            topics=topics_from_args(args)))
        print(f'validation: {len(val["target"])} labelled events from {len(args.val)} path(s)')
    best, validated = -1.0, -1
    opt = torch.optim.Adam(params, lr=args.lr)
    step = 0
    last = out / 'last.pt'
    if args.resume and last.is_file():
        ck = torch.load(str(last), map_location=device, weights_only=False)
        net.load_state_dict(ck.get('raw', ck['state_dict']))
        if ema is not None and 'ema' in ck:
            ema.load_state_dict(ck['ema'])
        opt.load_state_dict(ck['optimizer'])
        step = int(ck['step'])
        if rank == 0:
            print(f'resumed from {last} at step {step}')
    model = net
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(
            net, device_ids=[device.index] if dev == 'cuda' else None, find_unused_parameters=True)
    batches = Batches(data, args.batch, args.seed + step, rank, world, args.gain_jitter_db,
                      segments, touch)
    valid_frac = float((data['automask'].reshape(n, -1).sum(1) > 0).mean())
    if rank == 0:
        (out / 'args.json').write_text(json.dumps(vars(args), indent=2, default=str) + '\n')
        if touch is not None:
            print(f'{int((~touch).sum())} of the events are for the segment term only')
        print(f'{n} events ({valid_frac:.0%} with an automatic mask), variant {cfg.variant}, '
              f'{sum(p.numel() for p in params)} trainable parameters, device {device}, '
              f'{world} process(es)')
    log_f = open(out / 'log.csv', 'a', newline='') if rank == 0 else None
    writer = None
    bar = None
    if rank == 0 and not args.no_progress:
        from tqdm import tqdm
        bar = tqdm(total=args.steps, initial=step, desc=f'train {cfg.variant}', unit='step')
    t0 = time.time()
    summary = {'events': n, 'automask_fraction': valid_frac}

    def averaged() -> SoundingObjectDetector:
        return net if ema is None else ema.module

    def checkpoint():
        nonlocal best, validated
        if rank != 0:
            return
        extra = {} if ema is None else {'ema': ema.state_dict()}
        save_checkpoint(out / 'last.tmp', averaged(), optimizer=opt.state_dict(), step=step,
                        training=summary, raw=net.state_dict(), **extra)
        os.replace(out / 'last.tmp', last)
        if val is not None and len(val['target']) and validated != step:
            validated = step
            acc = validation_accuracy(averaged(), val)
            with open(out / 'val.csv', 'a') as f:
                f.write(f'{step},{json.dumps(acc)}\n')
            if acc['score'] > best:
                best = acc['score']
                summary['validation'] = {**acc, 'step': step}
                save_checkpoint(out / 'best.tmp', averaged(), step=step, training=summary)
                os.replace(out / 'best.tmp', out / 'best.pt')

    net.train()
    stop = False
    while step < args.steps and not stop:
        warm = min(1.0, (step + 1) / 200)
        for g in opt.param_groups:
            g['lr'] = args.lr * warm
        img, mel, am, valid, seg = (None if t is None else t.to(device) for t in next(batches))
        outs = model(img, mel)
        loss, parts = detector_loss(net, outs, img, am, valid,
                                    weights={'mask': args.mask_weight, 'seg': args.segment_weight},
                                    match_dropout=args.match_dropout,
                                    prior_dropout=args.prior_dropout, segments=seg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if ema is not None:
            ema.update_parameters(net)
        step += 1
        elapsed = (time.time() - t0) / 60
        stop_now = torch.tensor(float(elapsed >= args.minutes))
        if world > 1:                                # all ranks stop at the same step
            torch.distributed.all_reduce(stop_now)
        stop = bool(stop_now.item() > 0)
        if rank == 0:
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f'{loss.item():.3f}', **{k: f'{v:.3f}' for k, v in parts.items()})
            if step % args.log_every == 0 or stop:
                row = {'step': step, 'minutes': round(elapsed, 3), 'loss': loss.item(), **parts}
                if writer is None:
                    writer = csv.DictWriter(log_f, fieldnames=['step', 'minutes', 'loss', 'rec', 'ce',
                                                               'mask', 'nce', 'seg'],
                                            extrasaction='ignore')
                    if log_f.tell() == 0:
                        writer.writeheader()
                writer.writerow(row)
                log_f.flush()
            if step % args.ckpt_every == 0 or (val is not None and step % args.val_every == 0):
                checkpoint()
    summary.update(steps=step, minutes=round((time.time() - t0) / 60, 2))
    checkpoint()
    if bar is not None:
        bar.close()
    if log_f is not None:
        log_f.close()
        print(f'done: {step} steps; checkpoint {last}')
    if world > 1:
        torch.distributed.destroy_process_group()
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(p)
    return run(p.parse_args(argv))


if __name__ == '__main__':
    raise SystemExit(main())
