"""``hearing-hands evaluate predictor``: held-out episodes, metrics, baselines, JSON, pictures.

    hearing-hands evaluate predictor --data data/sim/test --json out/eval_predictor.json

Methods (one JSON entry each, same windows): ``model`` (the exported bundle at its default step
count, through ONNX Runtime like the node), ``model_25step_cfg`` (the flow teacher, 25 Euler steps,
CFG 4.5: the Hearing Hands recipe), ``regression`` (same network trained by direct regression),
``retrieval`` (the training clip whose trajectory features are nearest). Metrics, per window over
its valid frames, averaged:

``stft_distance``      mean squared difference of magnitude STFTs (n_fft 512, hop 128), as the
                       "STFT distance" of RegNet / Hearing Hands / 2.5D-sound (which use the
                       complex STFT; magnitudes here, since phase of a generated sound is arbitrary)
``envelope_distance``  RMS difference of the Hilbert envelopes (|analytic signal|) of the two
                       waveforms, each smoothed over 5 ms (ENV of Morgado et al. 2018)
``onset_f1``           F1 of onsets (``audio.detect_onsets``) of the generated audio against the
                       ground-truth contacts (gripper contacts and impacts), +-25 ms, one-to-one
``onset_error_ms``     median |time error| of matched onsets
``material_accuracy``  the judge (a classifier trained only on real recorded audio) names the
                       target object's material from the generated audio
``material_accuracy_contact``  a second judge: the per-contact sound classifier
                       (``eval/sound_classifier.py``: ring-out features, level-invariant) fitted on
                       the training windows' recorded contacts names the material of the sound
                       at the target's first ground-truth contact (the generated onset nearest to
                       it within 100 ms, else that time)
``action_accuracy``    same for the action type
``loudness_error_db``  |peak 10 ms RMS level (dBFS) generated - real|
``network_evaluations``  network calls per clip
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy.signal import hilbert
from torch import nn

from hearing_hands_ros.audio import detect_onsets, log_mel, stft_mag
from hearing_hands_ros.planner import peak_level_db

HELP = 'evaluate the contact-sound predictor on held-out episodes against baselines'
METRICS = ('stft_distance', 'envelope_distance', 'onset_f1', 'onset_error_ms',
           'material_accuracy', 'material_accuracy_contact', 'action_accuracy',
           'loudness_error_db', 'network_evaluations')
TOL_S = 0.025


# --- the judge --------------------------------------------------------------------------------
class AudioJudge(nn.Module):
    """Log-mel (B, M, T) + mask (B, T) -> material and action logits. Conv2d stack over the
    spectrogram, masked mean+max pooling over time."""

    def __init__(self, n_mels: int = 64, materials=(), actions=(), width: int = 24):
        super().__init__()
        self.config = dict(n_mels=n_mels, materials=list(materials), actions=list(actions), width=width)
        w = width
        self.conv = nn.Sequential(nn.Conv2d(1, w, 3, stride=2, padding=1), nn.GELU(),
                                  nn.Conv2d(w, w, 3, padding=1), nn.GELU(), nn.MaxPool2d((2, 1)),
                                  nn.Conv2d(w, 2 * w, 3, padding=1), nn.GELU(), nn.MaxPool2d((2, 1)))
        self.proj = nn.Linear(2 * w * (n_mels // 8), 128)
        self.material = nn.Linear(256, max(1, len(materials)))
        self.action = nn.Linear(256, max(1, len(actions)))

    def forward(self, mel, mask):
        h = self.conv(((mel + 10.0) / 4.0)[:, None])                       # (B, C, M/8, T/2)
        mask = mask[:, ::2]
        h = F.gelu(self.proj(h.flatten(1, 2).transpose(1, 2)))              # (B, T, 128)
        m = mask[:, :, None]
        mean = (h * m).sum(1) / m.sum(1).clamp_min(1)
        mx = h.masked_fill(m == 0, -1e4).max(1).values
        z = torch.cat([mean, mx], 1)
        return self.material(z), self.action(z)

    @torch.no_grad()
    def classify(self, mels: list[np.ndarray]) -> tuple[list[str], list[str]]:
        """log-mels (M, T_i) -> (materials, actions) names."""
        out_m, out_a = [], []
        for mel in mels:
            x = torch.from_numpy(mel[None].astype(np.float32))
            lm, la = self(x, torch.ones(1, mel.shape[1]))
            out_m.append(self.config['materials'][int(lm.argmax())] if self.config['materials'] else '')
            out_a.append(self.config['actions'][int(la.argmax())] if self.config['actions'] else '')
        return out_m, out_a


def label_sets(data) -> tuple[list[str], list[str]]:
    from hearing_hands_ros.data.predictor_dataset import NO_MATERIAL
    mats = sorted({m['material'] for m in data.meta if m['material'] != NO_MATERIAL})
    acts = sorted({m['action'] for m in data.meta})
    return mats, acts


def judge_loss(judge: nn.Module, data, idx, rng, device) -> torch.Tensor:
    """Cross-entropy on real windows (random gain +-6 dB so loudness alone does not decide)."""
    base = getattr(judge, 'module', judge)
    mats, acts = base.config['materials'], base.config['actions']
    t_max = data.mel.shape[-1]
    mel = torch.from_numpy(data.mel[idx].astype(np.float32))
    mel = mel + torch.from_numpy(rng.uniform(-1.4, 1.4, (len(idx), 1, 1)).astype(np.float32))
    mask = torch.from_numpy((np.arange(t_max)[None] < data.valid[idx, None]).astype(np.float32))
    ym = torch.tensor([mats.index(data.meta[i]['material']) if data.meta[i]['material'] in mats
                       else -100 for i in idx])
    ya = torch.tensor([acts.index(data.meta[i]['action']) if data.meta[i]['action'] in acts
                       else -100 for i in idx])
    lm, la = judge(mel.to(device), mask.to(device))
    loss = F.cross_entropy(la, ya.to(device), ignore_index=-100)
    if (ym >= 0).any():
        loss = loss + F.cross_entropy(lm, ym.to(device), ignore_index=-100)
    return loss


# --- the second judge: one contact, ring-out features ---------------------------------------------
def target_contact_time(meta: dict) -> float | None:
    """Time [s from the window start] of the first ground-truth contact of the window's target
    material, or None."""
    for c in meta['contacts']:
        if meta['material'] in c.get('materials', []):
            return float(c['time'])
    return None


def fit_contact_judge(train, sr: int):
    """Per-contact material classifier fitted on the training windows' *recorded* audio (one
    clip per window: its target's first contact)."""
    from hearing_hands_ros.data.predictor_dataset import NO_MATERIAL
    from hearing_hands_ros.eval.sound_classifier import SoundClassifier, clip_features
    X, y = [], []
    for i, m in enumerate(train.meta):
        t = target_contact_time(m)
        if m['material'] == NO_MATERIAL or t is None:
            continue
        X.append(clip_features(train.audio_float(i), sr, t))
        y.append(m['material'])
    if len(set(y)) < 2:
        return None
    return SoundClassifier().fit(np.stack(X), np.asarray(y))


def judge_contacts(clf, clips: list[np.ndarray], meta: list[dict], sr: int,
                   search_s: float = 0.1) -> list[str | None]:
    """Material named by ``clf`` for each clip at its target contact (None: no target contact)."""
    out = []
    for x, m in zip(clips, meta):
        t = target_contact_time(m)
        if t is None or clf is None:
            out.append(None)
            continue
        on = detect_onsets(x, sr)
        near = on[np.abs(on - t) <= search_s]
        if len(near):
            t = float(near[np.argmin(np.abs(near - t))])
        out.append(str(clf.predict_audio(x, sr, t)[0]))
    return out


def contact_accuracy(named: list[str | None], meta: list[dict]) -> float | None:
    ok = [n == m['material'] for n, m in zip(named, meta) if n is not None]
    return float(np.mean(ok)) if ok else None


# --- metrics ----------------------------------------------------------------------------------
def stft_distance(pred: np.ndarray, real: np.ndarray) -> float:
    n = min(len(pred), len(real))
    a, b = stft_mag(pred[:n], 512, 128), stft_mag(real[:n], 512, 128)
    return float(np.mean((a - b) ** 2))


def envelope(x: np.ndarray, sr: int = 16000, smooth_s: float = 0.005) -> np.ndarray:
    env = np.abs(hilbert(x.astype(np.float64)))
    k = max(1, int(smooth_s * sr))
    return np.convolve(env, np.ones(k) / k, mode='same')


def envelope_distance(pred: np.ndarray, real: np.ndarray, sr: int = 16000) -> float:
    n = min(len(pred), len(real))
    return float(np.sqrt(np.mean((envelope(pred[:n], sr) - envelope(real[:n], sr)) ** 2)))


def match_onsets(pred: np.ndarray, true: np.ndarray, tol: float = TOL_S):
    """Greedy one-to-one matching by time; returns (hits, errors [s])."""
    pred, true = np.sort(pred), np.sort(true)
    used = np.zeros(len(pred), bool)
    errs = []
    for t in true:
        if not len(pred):
            break
        d = np.abs(pred - t)
        d[used] = np.inf
        j = int(np.argmin(d))
        if d[j] <= tol:
            used[j] = True
            errs.append(pred[j] - t)
    return len(errs), np.asarray(errs)


def true_onsets(contacts: list[dict], merge_s: float = 0.02) -> np.ndarray:
    """Ground-truth sound onsets: contact events, merged when closer than ``merge_s``."""
    times = sorted(float(c['time']) for c in contacts)
    out = []
    for t in times:
        if not out or t - out[-1] > merge_s:
            out.append(t)
    return np.asarray(out)


def window_metrics(pred: np.ndarray, real: np.ndarray, contacts: list[dict], sr: int) -> dict:
    po = detect_onsets(pred, sr)
    to = true_onsets(contacts)
    hits, errs = match_onsets(po, to)
    return dict(stft_distance=stft_distance(pred, real), envelope_distance=envelope_distance(pred, real, sr),
                hits=hits, n_pred=len(po), n_true=len(to), errs=errs.tolist(),
                loudness_error_db=abs(peak_level_db(pred) - peak_level_db(real)))


def aggregate(rows: list[dict], judged: tuple[list, list], meta: list[dict], nfe: int) -> dict:
    from hearing_hands_ros.data.predictor_dataset import NO_MATERIAL
    hits = sum(r['hits'] for r in rows)
    n_pred, n_true = sum(r['n_pred'] for r in rows), sum(r['n_true'] for r in rows)
    prec = hits / n_pred if n_pred else (1.0 if not n_true else 0.0)
    rec = hits / n_true if n_true else 1.0
    errs = np.abs(np.concatenate([np.asarray(r['errs']) for r in rows])) if rows else np.zeros(0)
    mats, acts = judged
    mat_ok = [m == w['material'] for m, w in zip(mats, meta) if w['material'] != NO_MATERIAL]
    act_ok = [a == w['action'] for a, w in zip(acts, meta)]
    return dict(stft_distance=float(np.mean([r['stft_distance'] for r in rows])),
                envelope_distance=float(np.mean([r['envelope_distance'] for r in rows])),
                onset_f1=float(2 * prec * rec / (prec + rec)) if prec + rec else 0.0,
                onset_error_ms=float(np.median(errs) * 1e3) if len(errs) else None,
                material_accuracy=float(np.mean(mat_ok)) if mat_ok else None,
                action_accuracy=float(np.mean(act_ok)) if act_ok else None,
                loudness_error_db=float(np.mean([r['loudness_error_db'] for r in rows])),
                network_evaluations=nfe)


# --- baselines --------------------------------------------------------------------------------
def retrieval_features(data, i: int, frames: int | None = None) -> np.ndarray:
    """Trajectory descriptor for nearest-neighbour retrieval: standardised-free summary of the
    features at 10 frames/s over the first 8 s (padded with the last row)."""
    t = data.traj[i, :frames or int(data.valid[i])]
    t = t[::10]
    out = np.zeros((81, t.shape[1]), np.float32)
    out[:len(t)] = t
    out[len(t):] = t[-1]
    return out.reshape(-1)


def retrieve(train, test, test_idx) -> list[int]:
    """Index of the nearest training window (L2 on standardised descriptors) per test window."""
    a = np.stack([retrieval_features(train, i) for i in range(len(train))])
    mu, sd = a.mean(0), a.std(0) + 1e-3
    a = (a - mu) / sd
    out = []
    for i in test_idx:
        q = (retrieval_features(test, i) - mu) / sd
        out.append(int(np.argmin(((a - q) ** 2).sum(1))))
    return out


@torch.no_grad()
def sample_torch(net, vocoder, batch, steps: int, guidance: float, seed: int) -> np.ndarray:
    """Audio (B, N) from a torch velocity net (flow) with Euler steps and CFG."""
    from hearing_hands_ros.models import flow
    g = torch.Generator().manual_seed(seed)
    x0 = torch.randn(batch['mel'].shape, generator=g)
    from hearing_hands_ros.models.predictor import bind
    vel = bind(net, batch['traj'], batch['image'], batch['crops'], batch.get('looks'))
    x1 = flow.euler_sample(vel, x0, steps, guidance)
    return vocoder(net.denormalize_mel(x1)).numpy()


@torch.no_grad()
def regress_torch(net, vocoder, batch) -> np.ndarray:
    from hearing_hands_ros.train.predictor import regression_predict
    return vocoder(net.denormalize_mel(regression_predict(net, batch))).numpy()


# --- pictures ----------------------------------------------------------------------------------
def spectrogram_figure(path: Path, real: np.ndarray, preds: dict[str, np.ndarray], contacts,
                       title: str, sr: int = 16000) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    rows = [('recorded', real)] + list(preds.items())
    fig, axes = plt.subplots(len(rows), 1, figsize=(8, 1.6 * len(rows)), sharex=True)
    for ax, (name, x) in zip(axes, rows):
        lm = log_mel(x, sr)
        ax.imshow(lm, origin='lower', aspect='auto', extent=(0, len(x) / sr, 0, lm.shape[0]),
                  vmin=-14, vmax=2, cmap='magma')
        for c in true_onsets(contacts):
            ax.axvline(c, color='c', lw=0.6, alpha=0.8)
        ax.set_ylabel(name, fontsize=8)
        ax.set_yticks([])
    axes[0].set_title(title, fontsize=9)
    axes[-1].set_xlabel('time from plan start [s] (cyan: ground-truth contacts)')
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def demo_side_by_side(bags, out: Path, model=None, max_paths: int = 4, seed: int = 0) -> list[Path]:
    """For the planned paths of recorded episodes: predict each sound from what was known at plan
    start (the path and the camera frame), then write predicted vs recorded spectrograms and WAVs
    side by side into ``out``. Returns the written files (for ``make demo``)."""
    import soundfile as sf

    from hearing_hands_ros.data import predictor_dataset as D
    from hearing_hands_ros.planner import Planner
    planner = Planner(model, backend='cpu')
    data = D.load_windows(bags, planner.cfg, progress=False)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = []
    touching = [i for i in range(len(data)) if data.meta[i]['contacts']]   # not the approaches
    for i in (touching or list(range(len(data))))[:max_paths]:
        frames = int(data.valid[i])
        b = D.full_batch(data, [i], frames)
        pred = planner.predict_features(b['traj'].numpy(), b['image'].numpy(), b['crops'].numpy(),
                                        seed=seed, looks=b['looks'].numpy())[0]
        real = data.audio_float(i, frames)
        m = data.meta[i]
        stem = out / f'{m["episode"]}_path{i:02d}_{m["action"]}'
        spectrogram_figure(stem.with_suffix('.png'), real, {'predicted': pred.audio}, m['contacts'],
                           f'{m["episode"]} path {i}: {m["action"]} on {m["material"]} {m["shape"]} '
                           f'(predicted: sounds like {pred.material}, {pred.action})')
        sf.write(f'{stem}_recorded.wav', real, planner.sample_rate)
        sf.write(f'{stem}_predicted.wav', pred.audio, planner.sample_rate)
        files += [stem.with_suffix('.png'), Path(f'{stem}_recorded.wav'), Path(f'{stem}_predicted.wav')]
    return files


# --- command ------------------------------------------------------------------------------------
def second_take_windows(bags, test, idx, cfg, cache, progress: bool):
    """The windows of ``bags`` (a second take of the test episodes: same scenes and motions,
    another sound seed) in the order of ``test``'s windows ``idx``, or None without ``bags``.
    Raises UserError when a window has no twin (other episodes, or another simulator)."""
    if not bags:
        return None
    from hearing_hands_ros.cli import UserError
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

    from hearing_hands_ros.cli import UserError
    from hearing_hands_ros.data import predictor_dataset as D
    from hearing_hands_ros.planner import TEMPERATURE_RANGE, Planner, default_model_path
    from hearing_hands_ros.models.predictor import network_evaluations
    from hearing_hands_ros.train.predictor import load_run
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


DEFINITIONS = {
    'stft_distance': 'mean squared difference of magnitude STFTs (n_fft 512, hop 128, Hann)',
    'envelope_distance': 'RMS difference of 5 ms-smoothed Hilbert envelopes',
    'onset_f1': 'F1 of detected onsets vs ground-truth contacts (merged within 20 ms), +-25 ms',
    'onset_error_ms': 'median |error| of matched onsets [ms]',
    'material_accuracy': 'judge (trained on real audio only) names the target material',
    'material_accuracy_contact': 'per-contact ring-out classifier (fitted on recorded training '
                                 'contacts only) names the target material at its first contact',
    'action_accuracy': 'judge names the action type',
    'loudness_error_db': '|peak 10 ms RMS level generated - recorded| [dB]',
    'network_evaluations': 'network calls per clip (CFG counts 2 per step; a model with a '
                           'regression prior counts it at every step)',
}


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
