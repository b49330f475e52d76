"""``hearing-hands train events``: the contact-event model (``models/events.py``) from rosbags.

Targets come from the recorded audio by default (``--targets audio``: the contacts heard in each
path window, no labels needed); ``--targets truth`` uses a bag's ground-truth contacts. The
material head learns only where the bags are labelled. The intended-contact input is taken from
the recording (the planned TCP height at the first heard contact) and dropped for
``--contact-dropout`` of the windows, so the model works with and without it. The checkpoint with
the best impact F1 (+-25 ms, without the intended contact) on ``--val`` is kept.

    hearing-hands train events --data data/sim/train --val data/sim/val --out runs/events
    hearing-hands export events --run runs/events --out models/contact_events
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from hearing_hands_ros.errors import UserError
from hearing_hands_ros.events import match_times
from hearing_hands_ros.models import events as E

HELP = 'train the contact-event model (when, how loud, on what a path sounds) from rosbags'
TOL_S = 0.025


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument('--data', nargs='+', required=True, help='training rosbag2 episodes (folders)')
    p.add_argument('--val', nargs='+', required=True,
                   help='validation episodes: every choice (checkpoint) is made on them')
    p.add_argument('--out', type=Path, required=True, help='run folder')
    p.add_argument('--targets', choices=('audio', 'truth'), default='audio',
                   help='contacts heard in the recording (no labels) or ground truth')
    p.add_argument('--steps', type=int, default=3000)
    p.add_argument('--batch', type=int, default=32)
    p.add_argument('--lr', type=float, default=2e-3)
    p.add_argument('--width', type=int, default=64, help='channels of the network')
    p.add_argument('--rule-inputs', action='store_true',
                   help='also feed the kinematic rule\'s events frame by frame (models/kinematic_events.py)')
    p.add_argument('--contact-dropout', type=float, default=0.5,
                   help='share of windows trained without the intended contact')
    p.add_argument('--onset-weight', type=float, default=5.0,
                   help='weight of an onset frame against the frames without one')
    p.add_argument('--shift', type=float, default=0.05,
                   help='random horizontal shift of each training path [m] (where on the table a '
                        'motion happens should not matter)')
    p.add_argument('--eval-every', type=int, default=250)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--gripper', choices=('plan', 'recorded', 'none'), default='plan',
                   help="the finger opening along each path: 'plan' (the bag's /planned_gripper, "
                        "else the opening at the path start: what the nodes get live), "
                        "'recorded' (the joint states while the path ran) or 'none' (the "
                        "opening at the path start, held)")
    p.add_argument('--cache', default=None, help='window cache folder (default: OUT/cache)')
    p.add_argument('--no-progress', action='store_true')


def normalisation(d) -> tuple[np.ndarray, np.ndarray]:
    """Per-input mean and std over the valid frames (contact inputs: as given with contact)."""
    x = E.with_contact(d.inputs, d.contact_z)
    mask = np.arange(x.shape[1])[None, :] < d.valid[:, None]
    rows = x[mask]
    mean, std = rows.mean(0), rows.std(0)
    mean[-2], std[-2] = 0.0, 1.0                 # the flag stays 0/1
    return mean.astype(np.float32), np.maximum(std, 1e-3).astype(np.float32)


def loss_fn(net: E.EventNet, d, idx: np.ndarray, rng, args) -> torch.Tensor:
    give = rng.random(len(idx)) >= args.contact_dropout
    # the batch's frames, not the padding, rounded so few distinct shapes reach the kernels
    t_len = min(d.inputs.shape[1], int(np.ceil(d.valid[idx].max() / 64) * 64))
    x = E.with_contact(d.inputs[idx, :t_len], d.contact_z[idx], give)
    x[:, :, 0:2] += rng.uniform(-args.shift, args.shift, (len(idx), 1, 2)).astype(np.float32)
    x = torch.from_numpy(x)
    onset, slide, level, material = net(x)
    t = torch.arange(x.shape[1])[None, :]
    mask = (t < torch.from_numpy(d.valid[idx])[:, None]).float()
    on_t, sl_t = torch.from_numpy(d.onset[idx, :t_len]), torch.from_numpy(d.slide[idx, :t_len])
    w = mask * (1.0 + (args.onset_weight - 1.0) * on_t)
    loss = (F.binary_cross_entropy_with_logits(onset, on_t, reduction='none') * w).sum() / mask.sum()
    loss = loss + (F.binary_cross_entropy_with_logits(slide, sl_t, reduction='none')
                   * mask).sum() / mask.sum()
    lv = torch.from_numpy(d.level[idx, :t_len])
    has = torch.isfinite(lv)
    if has.any():
        loss = loss + F.smooth_l1_loss(level[has], lv[has], beta=3.0) / 10.0
        m = torch.from_numpy(d.material[idx])[:, None].expand_as(lv)
        sel = has & (m >= 0)
        if sel.any():
            loss = loss + F.cross_entropy(material[sel], m[sel])
    return loss


@torch.no_grad()
def predict(net: E.EventNet, inputs: np.ndarray, valid: np.ndarray, batch: int = 64) -> list:
    """Events of every window (list of ContactEvent lists) with the torch network."""
    out = []
    for s in range(0, len(inputs), batch):
        outs = net(torch.from_numpy(inputs[s:s + batch]))
        out += E.decode_batch({k: o.numpy() for k, o in zip(E.ONNX_OUTPUTS, outs)},
                              inputs[s:s + batch], valid[s:s + batch], net.cfg)
    return out


def impact_f1(pred: list, heard: list, threshold: float = 0.5, tol: float = TOL_S) -> float:
    """F1 of predicted impacts (probability >= threshold) against heard impact onsets."""
    hits = n_pred = n_true = 0
    for p, h in zip(pred, heard):
        pt = [e.time for e in p if e.kind == 'impact' and e.probability >= threshold]
        ht = [e.time for e in h if e.kind == 'impact']
        hits += len(match_times(np.array(pt), np.array(ht), tol))
        n_pred, n_true = n_pred + len(pt), n_true + len(ht)
    return 2 * hits / max(1, n_pred + n_true)


def run(args) -> int:
    from tqdm import tqdm

    from hearing_hands_ros.data import event_dataset as ED
    from hearing_hands_ros.data import predictor_dataset as D
    from hearing_hands_ros.models.predictor import PredictorConfig
    torch.manual_seed(args.seed)
    torch.set_num_threads(max(1, args.threads))
    torch.set_flush_denormal(True)             # tiny activations must not slow the CPU down
    rng = np.random.default_rng(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    cache = args.cache or str(args.out / 'cache')
    pcfg = PredictorConfig()
    cfg = E.EventConfig(width=args.width, frames_per_crop=pcfg.frames_per_crop,
                        rule_inputs=args.rule_inputs)
    try:
        train_w = D.load_windows(args.data, pcfg, cache_dir=cache, progress=not args.no_progress,
                                 gripper=args.gripper)
        val_w = D.load_windows(args.val, pcfg, cache_dir=cache, progress=not args.no_progress,
                               gripper=args.gripper)
    except (FileNotFoundError, ValueError) as e:
        raise UserError(str(e)) from None
    train = ED.build(train_w, cfg, args.targets, pcfg.sample_rate)
    val = ED.build(val_w, cfg, args.targets, pcfg.sample_rate)
    del train_w, val_w
    mean, std = normalisation(train)
    net = E.EventNet(cfg, mean, std)
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    warm = max(1, args.steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(       # warm-up, then cosine to zero
        opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + np.cos(np.pi * s / args.steps)))
    best, history, t0 = -1.0, [], time.time()
    summary = dict(targets=args.targets, gripper=args.gripper, steps=args.steps, train_bags=[str(b) for b in args.data],
                   val_bags=[str(b) for b in args.val], train_windows=len(train),
                   val_windows=len(val))
    bar = tqdm(range(1, args.steps + 1), desc='train events', disable=args.no_progress,
               dynamic_ncols=True)
    for step in bar:
        net.train()
        idx = rng.integers(0, len(train), args.batch)
        loss = loss_fn(net, train, idx, rng, args)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % args.eval_every == 0 or step == args.steps:
            net.eval()
            f1 = impact_f1(predict(net, val.inputs, val.valid), val.heard)
            given = E.with_contact(val.inputs, val.contact_z)
            f1_c = impact_f1(predict(net, given, val.valid), val.heard)
            history.append(dict(step=step, loss=loss.item(), val_impact_f1=round(f1, 4),
                                val_impact_f1_with_contact=round(f1_c, 4)))
            bar.set_postfix(loss=f"{loss.item():.3f}", f1=f'{f1:.3f}', f1_contact=f'{f1_c:.3f}')
            if f1 > best:
                best = f1
                E.save_checkpoint(args.out / 'events.pt', net, dict(summary, best=history[-1]))
    summary.update(best=max(history, key=lambda h: h['val_impact_f1']), history=history,
                   seconds=round(time.time() - t0, 1))
    (args.out / 'summary.json').write_text(json.dumps(summary, indent=1))
    print(f'best validation impact F1 {summary["best"]["val_impact_f1"]:.3f} (step '
          f'{summary["best"]["step"]}); wrote {args.out / "events.pt"}')
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog='hearing-hands train events', description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                fromfile_prefix_chars='@')
    add_arguments(p)
    return run(p.parse_args(argv))


if __name__ == '__main__':
    raise SystemExit(main())
