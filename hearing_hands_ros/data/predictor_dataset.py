"""Training windows for the contact-sound predictor, built from rosbag2 episodes.

One window per planned path (``nav_msgs/Path`` on the path topic): it starts at the path's first
stamp and covers the path plus ``tail_seconds`` of ringing (at most ``max_seconds``). Each
window holds, at the audio frame rate (100 frames/s)::

    traj    (T, 18)          trajectory features (planned poses + the finger opening: ``gripper``)
    image   (3, S, S) uint8  wrist-camera frame at plan start (last frame at or before it)
    crops   (K, 3, s, s) u8  local views where the path projects into that frame
    looks   (K, 33) f32      what each local view points at (``predictor.view_looks``)
    mel     (64, T) f16      log-mel of the recorded audio (``audio.log_mel``)
    audio   (N,) int16       the recorded audio, N = (T - 1) * 160
    valid   int              frames that belong to the window (the rest is padding to T = 801)

plus per-window metadata: episode, action type, target object's material and shape, and the
ground-truth contacts inside the window (times relative to the window start). The finger opening
(``gripper``) is 'recorded' (the joint states while the path ran: what the robot did, not what it
knew when it planned), 'plan' (the gripper's plan along the path, ``/planned_gripper``, where
the bag has one, else the opening at the path's start: what the nodes get live) or 'none' (the
opening at the path's start, held: a robot that publishes no gripper plan). Windows are stored
padded to ``max_frames`` so a data set is a handful of stacked arrays. Per-episode results are
cached as ``.npz`` files keyed by the bag's content stamp and the window settings.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from hearing_hands_ros import trajectory as tr
from hearing_hands_ros.audio import log_mel
from hearing_hands_ros.models import predictor as P

CACHE_VERSION = 3
GRIPPER_SOURCES = ('recorded', 'plan', 'none')    # where a window's finger opening comes from
ARRAYS = ('traj', 'image', 'crops', 'mel', 'audio', 'valid', 'looks')
NO_MATERIAL = 'none'


@dataclass
class PredictorData:
    """Stacked windows (W of them) and their metadata."""

    traj: np.ndarray        # (W, T, 18) float32
    image: np.ndarray       # (W, 3, S, S) uint8
    crops: np.ndarray       # (W, K, 3, s, s) uint8
    mel: np.ndarray         # (W, 64, T) float16
    audio: np.ndarray       # (W, N) int16
    valid: np.ndarray       # (W,) int64 frames in the window
    looks: np.ndarray       # (W, K, N_VIEW_LOOK) float32
    meta: list = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.valid)

    def subset(self, idx) -> 'PredictorData':
        idx = np.asarray(idx, dtype=np.int64)
        return PredictorData(*(getattr(self, a)[idx] for a in ARRAYS),
                             meta=[self.meta[i] for i in idx])

    @staticmethod
    def concat(parts: list['PredictorData']) -> 'PredictorData':
        parts = [p for p in parts if len(p)]
        if not parts:
            raise ValueError('no windows: the bags hold no planned paths with audio')
        return PredictorData(*(np.concatenate([getattr(p, a) for p in parts]) for a in ARRAYS),
                             meta=[m for p in parts for m in p.meta])

    def audio_float(self, i: int, frames: int | None = None) -> np.ndarray:
        """float32 audio of window ``i`` over its valid frames (or ``frames``)."""
        n = ((frames or int(self.valid[i])) - 1) * P.PredictorConfig.hop
        return self.audio[i, :n].astype(np.float32) / 32767.0

    def labels(self, key: str) -> list[str]:
        return [m[key] for m in self.meta]

    def combos(self) -> set[str]:
        """``material:shape`` of every target object."""
        return {c for c in map(combo, self.meta) if c}


def combo(meta: dict) -> str | None:
    """``material:shape`` of a window's target object (None for a window without one)."""
    return None if meta['material'] == NO_MATERIAL else f"{meta['material']}:{meta['shape']}"


# --- statistics -----------------------------------------------------------------------------
def normalization(data: PredictorData) -> dict:
    """Per-bin mel mean/std and per-feature trajectory mean/std over valid frames; per-statistic
    look mean/std over the local views that found a segment."""
    mask = np.arange(data.mel.shape[-1])[None] < data.valid[:, None]           # (W, T)
    mel = data.mel.astype(np.float32).transpose(1, 0, 2)[:, mask]               # (M, F)
    traj = data.traj[mask]                                                       # (F, D)
    traj_std = traj.std(0)
    found = data.looks[..., 0] > 0                                               # (W, K)
    looks = data.looks[found][:, 2:] if found.any() else np.zeros((2, P.N_VIEW_LOOK - 2))
    return dict(look_mean=looks.mean(0).round(5).tolist(),
                look_std=np.maximum(looks.std(0), 1e-3).round(5).tolist(),
                mel_mean=mel.mean(1).round(4).tolist(),
                mel_std=np.maximum(mel.std(1), 0.5).round(4).tolist(),
                traj_mean=traj.mean(0).round(5).tolist(),
                traj_std=np.where(traj_std < 1e-4, 1.0, traj_std).round(5).tolist())


# --- building ---------------------------------------------------------------------------------
def _action_of(truth: dict | None, t_start: float, tol: float = 0.02) -> dict | None:
    """The action of the path that starts at ``t_start``. An action published as two paths
    (``contact_start``: approach, then contact motion) owns only its contact motion; its
    approach is a motion without a target, labelled ``idle``."""
    if not truth:
        return None
    for a in truth.get('actions', []):
        cs = a.get('contact_start')
        if cs is not None and abs(float(cs) - t_start) < tol:
            return a
        if abs(float(a['start']) - t_start) < tol:
            return a if cs is None else dict(a, type='idle', target=None)
    return None


def episode_windows(ep, cfg: P.PredictorConfig, T_tcp_camera=None,
                    frame_id: str = 'world', gripper: str = 'recorded') -> PredictorData:
    """All windows of one :class:`~hearing_hands_ros.data.bags.Episode`; ``gripper``: one of
    ``GRIPPER_SOURCES`` (module docstring)."""
    if gripper not in GRIPPER_SOURCES:
        raise ValueError(f'gripper must be one of {GRIPPER_SOURCES}, not {gripper!r}')
    truth = ep.truth or {}
    if T_tcp_camera is None:
        ext = (truth.get('camera') or {}).get('T_tcp_camera')
        if ext is None:
            raise ValueError(f'{ep.path}: no camera extrinsics (truth camera.T_tcp_camera); '
                             'pass the TCP->camera pose')
        T_tcp_camera = (ext['position'], ext['orientation'])
    if ep.camera_info is None or not len(ep.images):
        raise ValueError(f'{ep.path}: no camera images / CameraInfo in the bag')
    if ep.audio_start_ns is None:
        raise ValueError(f'{ep.path}: no audio in the bag')
    if ep.sample_rate != cfg.sample_rate:
        from hearing_hands_ros.audio import resample
        audio = resample(ep.audio, ep.sample_rate, cfg.sample_rate)
    else:
        audio = ep.audio
    K = np.asarray(ep.camera_info['K'], dtype=np.float64).reshape(3, 3)
    origin = int(truth.get('start_time_ns') or ep.audio_start_ns)
    t_max = cfg.max_frames
    n_samples = (t_max - 1) * cfg.hop
    objects = {int(o['id']): o for o in truth.get('objects', [])}
    ap_t = (ep.aperture_stamps_ns - origin) / 1e9
    out = {a: [] for a in ARRAYS}
    meta = []
    for stamp_ns, times_ns, pos, quat in ep.paths:
        try:
            traj = tr.validate(tr.Trajectory.from_stamps_ns(times_ns, pos, quat, frame_id=frame_id,
                                                            origin_ns=origin),
                               frame_id=frame_id, max_duration=None)
        except tr.TrajectoryError:
            continue
        t0 = traj.start
        valid = tr.n_frames_for(traj.duration, cfg.tail_seconds, cfg.frame_rate, t_max)
        if gripper == 'recorded':
            feats = tr.features(traj, t_max, cfg.frame_rate, t0=t0,
                                aperture_track=(ap_t, ep.apertures) if len(ap_t) else None)
        else:
            feats = tr.features(_planned_opening(traj, ep, stamp_ns, times_ns, gripper == 'plan'),
                                t_max, cfg.frame_rate, t0=t0)
        j = int(np.searchsorted(ep.image_stamps_ns, int(times_ns[0]), side='right')) - 1
        rgb = ep.images[max(j, 0)]
        crops, uv = P.local_views(rgb, feats, K, T_tcp_camera, cfg)
        looks = P.view_looks(P.scene_segments(rgb, feats, K, T_tcp_camera, cfg), uv,
                             (rgb.shape[1], rgb.shape[0]))
        k0 = int(round((int(times_ns[0]) - ep.audio_start_ns) * cfg.sample_rate / 1e9))
        seg = np.zeros(n_samples, np.float32)
        lo, hi = max(k0, 0), min(k0 + n_samples, len(audio))
        if hi <= lo:
            continue
        seg[lo - k0:hi - k0] = audio[lo:hi]
        act = _action_of(truth, t0)
        obj = objects.get(int(act['target'])) if act and act.get('target') is not None else None
        t_end = t0 + (valid - 1) / cfg.frame_rate
        contacts = [dict(time=round(float(c['time']) - t0, 5), materials=c.get('materials', []),
                         kind=c.get('kind', 'impact'), impulse=float(c.get('impulse', 0.0)),
                         position=c.get('position'), duration=float(c.get('duration', 0.0)))
                    for c in truth.get('contacts', []) if t0 <= float(c['time']) < t_end]
        out['traj'].append(feats)
        out['image'].append(np.round(P.global_view(rgb, cfg) * 255).astype(np.uint8))
        out['crops'].append(np.round(crops * 255).astype(np.uint8))
        out['mel'].append(log_mel(seg, cfg.sample_rate, cfg.n_mels, cfg.n_fft, cfg.hop).astype(np.float16))
        out['audio'].append(np.round(np.clip(seg, -1, 1) * 32767).astype(np.int16))
        out['valid'].append(valid)
        out['looks'].append(looks)
        meta.append(dict(episode=ep.path.name, bag=str(ep.path), start_ns=int(times_ns[0]), start=round(t0, 5),
                         duration=round(traj.duration, 4),
                         action=act['type'] if act else 'unknown',
                         material=obj['material'] if obj else NO_MATERIAL,
                         shape=obj['shape'] if obj else NO_MATERIAL,
                         episode_combos=sorted(f"{o['material']}:{o['shape']}" for o in objects.values()),
                         contacts=contacts))
    if not meta:
        return _empty(cfg)
    return PredictorData(*(np.stack(out[a]) for a in ARRAYS), meta=meta)


def _planned_opening(traj: tr.Trajectory, ep, stamp_ns: int, times_ns, use_plan: bool) -> tr.Trajectory:
    """``traj`` with the finger opening a node gets live: the bag's gripper plan along the path
    (``use_plan``), else the joint state's opening at its start, held (``Episode.aperture_at``)."""
    ap = ep.planned_apertures(stamp_ns, times_ns) if use_plan else None
    if ap is None:
        ap = np.full(len(times_ns), ep.aperture_at(times_ns[0]))
    return tr.Trajectory(traj.times, traj.positions, traj.orientations, ap, traj.frame_id)


def _empty(cfg: P.PredictorConfig) -> PredictorData:
    t = cfg.max_frames
    k = P.n_views(t, cfg)
    return PredictorData(np.zeros((0, t, cfg.traj_dim), np.float32),
                         np.zeros((0, 3, cfg.image_size, cfg.image_size), np.uint8),
                         np.zeros((0, k, 3, cfg.crop_size, cfg.crop_size), np.uint8),
                         np.zeros((0, cfg.n_mels, t), np.float16),
                         np.zeros((0, (t - 1) * cfg.hop), np.int16), np.zeros(0, np.int64),
                         np.zeros((0, k, P.N_VIEW_LOOK), np.float32), [])


def _cache_key(bag: Path, cfg: P.PredictorConfig, topics, gripper: str = 'recorded') -> str:
    stat = [(p.name, p.stat().st_size, int(p.stat().st_mtime)) for p in sorted(bag.iterdir())
            if p.is_file()]
    keys = ('sample_rate', 'hop', 'n_fft', 'n_mels', 'frame_rate', 'image_size', 'crop_size',
            'crop_frac', 'frames_per_crop', 'max_seconds', 'tail_seconds', 'look_size')
    blob = json.dumps([CACHE_VERSION, str(bag.resolve()), stat, {k: getattr(cfg, k) for k in keys},
                       repr(topics)] + ([] if gripper == 'recorded' else [gripper]), sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


def load_windows(bags, cfg: P.PredictorConfig | None = None, cache_dir=None, topics=None,
                 T_tcp_camera=None, progress: bool = True, gripper: str = 'recorded') -> PredictorData:
    """Windows of every episode in ``bags`` (folders or bag paths), cached in ``cache_dir``;
    ``gripper``: where the finger opening comes from (module docstring)."""
    from tqdm import tqdm

    from hearing_hands_ros.data.bags import TopicNames, list_episodes, read_episode
    cfg = cfg or P.PredictorConfig()
    topics = topics or TopicNames()
    episodes = list_episodes(bags)
    if not episodes:
        raise FileNotFoundError(f'no rosbag2 episodes found in {bags}')
    cache = Path(cache_dir).expanduser() if cache_dir else None
    if cache:
        cache.mkdir(parents=True, exist_ok=True)
    parts = []
    for bag in tqdm(episodes, desc='windows', unit='ep', disable=not progress, dynamic_ncols=True):
        f = cache / f'{bag.name}-{_cache_key(bag, cfg, topics, gripper)}.npz' if cache else None
        if f is not None and f.exists():
            with np.load(f, allow_pickle=False) as z:
                parts.append(PredictorData(*(z[a] for a in ARRAYS),
                                           meta=json.loads(str(z['meta']))))
            continue
        data = episode_windows(read_episode(bag, topics), cfg, T_tcp_camera, gripper=gripper)
        if f is not None:
            np.savez(f, **{a: getattr(data, a) for a in ARRAYS}, meta=json.dumps(data.meta))
        parts.append(data)
    return PredictorData.concat(parts)


def split_holdout(data: PredictorData, holdout_combos) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, held_out): held-out windows come from episodes with any object whose
    ``material:shape`` is in ``holdout_combos``, so those combinations are never trained on."""
    hold = set(holdout_combos or ())
    test = np.array([bool(hold & set(m['episode_combos'])) for m in data.meta], dtype=bool)
    return np.flatnonzero(~test), np.flatnonzero(test)


# --- batches ----------------------------------------------------------------------------------
def segment_batch(data: PredictorData, idx, frames: int, rng: np.random.Generator,
                  aperture_dropout: float = 0.5) -> dict[str, torch.Tensor]:
    """Random crops of ``frames`` frames (a multiple of ``frames_per_crop``) from windows ``idx``.

    Returns float tensors: mel (B, M, L), traj (B, L, D), image (B, 3, S, S), crops (B, L/fpc,
    3, s, s), looks (B, L/fpc, N_VIEW_LOOK) and mask (B, 1, L) (1 on valid frames). With
    probability ``aperture_dropout`` the aperture track is replaced by its value at the crop
    start (the node may only know that).
    """
    fpc = P.PredictorConfig.frames_per_crop
    if frames % fpc:
        raise ValueError(f'segment frames must be a multiple of {fpc}')
    t_max = data.mel.shape[-1]
    idx = np.asarray(idx)
    offs = []
    for i in idx:
        hi = max(0, min(int(data.valid[i]) - frames, t_max - frames)) // fpc
        offs.append(int(rng.integers(0, hi + 1)) * fpc)
    sl = [slice(o, o + frames) for o in offs]
    mel = np.stack([data.mel[i, :, s] for i, s in zip(idx, sl)]).astype(np.float32)
    traj = np.stack([data.traj[i, s] for i, s in zip(idx, sl)])
    k = frames // fpc
    crops = np.stack([data.crops[i, o // fpc:o // fpc + k] for i, o in zip(idx, offs)])
    looks = np.stack([data.looks[i, o // fpc:o // fpc + k] for i, o in zip(idx, offs)])
    mask = np.stack([(np.arange(frames) + o < data.valid[i]) for i, o in zip(idx, offs)])
    drop_ap = rng.random(len(idx)) < aperture_dropout
    traj[drop_ap, :, 15] = traj[drop_ap, :1, 15]
    traj[drop_ap, :, 16] = 0.0
    return dict(mel=torch.from_numpy(mel), traj=torch.from_numpy(traj),
                image=torch.from_numpy(data.image[idx].astype(np.float32) / 255.0),
                crops=torch.from_numpy(crops.astype(np.float32) / 255.0),
                looks=torch.from_numpy(looks.astype(np.float32)),
                mask=torch.from_numpy(mask[:, None].astype(np.float32)))


def full_batch(data: PredictorData, idx, frames: int) -> dict[str, torch.Tensor]:
    """Windows ``idx`` from their start, ``frames`` long (for sampling and evaluation)."""
    idx = np.asarray(idx)
    k = P.n_views(frames, P.PredictorConfig())
    return dict(mel=torch.from_numpy(data.mel[idx, :, :frames].astype(np.float32)),
                traj=torch.from_numpy(data.traj[idx, :frames].copy()),
                image=torch.from_numpy(data.image[idx].astype(np.float32) / 255.0),
                crops=torch.from_numpy(data.crops[idx, :k].astype(np.float32) / 255.0),
                looks=torch.from_numpy(data.looks[idx, :k].astype(np.float32)),
                mask=torch.from_numpy((np.arange(frames)[None] < data.valid[idx, None])[:, None]
                                      .astype(np.float32)))


def audio_segments(data: PredictorData, n: int, samples: int, rng: np.random.Generator,
                   event_fraction: float = 0.7) -> torch.Tensor:
    """(n, samples) float audio crops for the vocoder; most start just before a contact."""
    hop = P.PredictorConfig.hop
    out = np.zeros((n, samples), np.float32)
    for j in range(n):
        i = int(rng.integers(len(data)))
        n_valid = (int(data.valid[i]) - 1) * hop
        contacts = data.meta[i]['contacts']
        if contacts and rng.random() < event_fraction:
            c = contacts[int(rng.integers(len(contacts)))]['time']
            start = int((c - rng.uniform(0.05, 0.6)) * P.PredictorConfig.sample_rate)
        else:
            start = int(rng.integers(0, max(1, n_valid - samples)))
        start = int(np.clip(start, 0, data.audio.shape[1] - samples))
        out[j] = data.audio[i, start:start + samples].astype(np.float32) / 32767.0
    return torch.from_numpy(out)


def window_frames(valid: int, multiple: int = 1) -> int:
    """Frames to generate for a window (rounded up to ``multiple``)."""
    return int(math.ceil(valid / multiple) * multiple)
