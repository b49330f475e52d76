"""Sound events from rosbag2 episodes -> detector training/evaluation samples, cached as .npz.

Per episode (``bags.read_episode``):

1. onsets detected in the recorded audio (``audio.detect_onsets``: what the node does live);
2. per onset: the camera frame nearest the onset, the log-mel of the audio window around it,
   the gripper pose at the onset -> the automatic mask of the touched object (``automask``);
3. for *evaluation only*: the ground-truth sound event within ``match_tol_s`` of the onset (its
   sounding object id) and the ground-truth label image of that frame. Training never reads them.

Arrays (E events) in the cache: ``image`` uint8 (E,S,S,3), ``logmel`` float16 (E,M,T), ``automask``
bool (E,S,S), ``contact_uv`` float32 (E,2) (projected contact in S-pixel coordinates),
``labels`` uint8 (E,S,S), ``target`` int16 (E,) (sounding object id, -1 unmatched),
``gripper`` bool (E,S,S) (static pixels = the robot's own fingers),
``auto_iou`` float32 (E,) (automask vs the target's true mask, full resolution, -1 unknown),
``episode`` int32 (E,), ``onset_ns`` int64 (E,), ``scenario`` str (E,) (the episode's, but
'ambiguous' for every strike at the gap of the ambiguous pair: the ``alternating`` scenario mixes
both), ``gap_strike`` bool (E,), plus ``episodes`` names.
For the look match (``models.look_match``), at its own size L and audio grid: ``look_image`` uint8
(E,L,L,3), ``look_gripper`` / ``look_automask`` bool (E,L,L), ``look_labels`` uint8 (E,L,L),
``look_uv`` float32 (E,2), ``look_sound`` float16 (E,M',T'), ``look_segments`` uint8 (E,L,L) (the
frame's automatic object segments with the table model the node would use at that event:
``automask.TableSchedule``, causal), ``look_tcp`` float64 (E,7) (TCP position and quaternion
xyzw at the onset) and ``look_camera`` float64 (E,16) (K at the look size (9), T_tcp_camera (7)):
what ``automask.segment_locator`` places the candidates with for the object sound memory.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..audio import detect_onsets
from ..automask import (AutoMaskConfig, TableModel, TableSchedule, auto_mask, gripper_pixels,
                        mask_iou, min_segment_px, object_segments)
from ..models.detector import DetectorConfig, audio_input, image_input
from ..models.look_match import LookConfig, sound_features

NS = 1_000_000_000
CACHE_VERSION = 7
# the fields of DetectorConfig that decide the cached events (image and audio layout); the
# network's own settings (slots, widths, variant) do not, so every model shares one cache
INPUT_FIELDS = ('image_size', 'sample_rate', 'n_mels', 'n_fft', 'hop', 'window_pre_s',
                'window_post_s')


@dataclass
class DatasetOptions:
    onset_threshold_db: float = 12.0
    match_tol_s: float = 0.03
    # camera extrinsics on the hand (TCP frame); None = read the truth file's camera.T_tcp_camera
    # (a robot passes the value from its URDF).
    T_tcp_camera: tuple | None = None
    automask: AutoMaskConfig = field(default_factory=AutoMaskConfig)
    look: LookConfig = field(default_factory=LookConfig)
    # the candidate segments' table model, as the node fits it (automask.TableSchedule; the
    # node's table_refit_s and frame_history)
    table_refit_s: float = 2.0
    table_history: int = 30


def _pose_at(ep, t_ns: int) -> tuple[np.ndarray, np.ndarray]:
    """Gripper TCP pose (position, quat xyzw) nearest in time to ``t_ns``."""
    stamps = np.asarray(ep.pose_stamps_ns)
    i = int(np.clip(np.searchsorted(stamps, t_ns), 1, len(stamps) - 1))
    i = i - 1 if abs(stamps[i - 1] - t_ns) <= abs(stamps[i] - t_ns) else i
    return np.asarray(ep.positions[i], float), np.asarray(ep.orientations[i], float)


def _aperture_at(ep, t_ns: int) -> float:
    stamps = np.asarray(getattr(ep, 'aperture_stamps_ns', []))
    if len(stamps) == 0:
        return 0.04
    return float(ep.apertures[int(np.argmin(np.abs(stamps - t_ns)))])


def _camera_extrinsics(ep, opts: DatasetOptions):
    if opts.T_tcp_camera is not None:
        return tuple(np.asarray(x, float) for x in opts.T_tcp_camera)
    cam = (ep.truth or {}).get('camera', {}).get('T_tcp_camera')
    if cam is None:
        raise ValueError('camera extrinsics unknown: pass T_tcp_camera (from the robot URDF) '
                         'or keep the truth file beside the bag')
    return np.asarray(cam['position'], float), np.asarray(cam['orientation'], float)


def _truth_events(truth: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ground-truth sound events: times [ns], sounding object id (the first id >= 1) and whether
    the event's action was a strike at the gap of the ambiguous pair."""
    start = int((truth or {}).get('start_time_ns', 0))
    actions = (truth or {}).get('actions', [])
    times, ids, gap = [], [], []
    for c in (truth or {}).get('contacts', []):
        objs = [o for o in c.get('objects', []) if o >= 1]
        if objs:
            times.append(int(c['stamp_ns']) if c.get('stamp_ns') else start + int(round(c['time'] * NS)))
            ids.append(objs[0])
            a = c.get('action')
            params = actions[a].get('params', {}) if a is not None and 0 <= a < len(actions) else {}
            gap.append(bool(params.get('ambiguous', False)))
    return np.asarray(times, np.int64), np.asarray(ids, np.int64), np.asarray(gap, bool)


def episode_events(ep, cfg: DetectorConfig, opts: DatasetOptions | None = None) -> dict:
    """All sound events of one episode as arrays (see the module docstring)."""
    opts = opts or DatasetOptions()
    sr = int(ep.sample_rate)
    audio = np.asarray(ep.audio, np.float32)
    if sr != cfg.sample_rate:
        from ..audio import resample
        audio, sr = resample(audio, sr, cfg.sample_rate), cfg.sample_rate
    onsets = ep.audio_start_ns + np.round(
        detect_onsets(audio, sr, threshold_db=opts.onset_threshold_db) * NS).astype(np.int64)
    images, stamps = np.asarray(ep.images), np.asarray(ep.image_stamps_ns, np.int64)
    K = np.asarray(ep.camera_info['K'], float).reshape(3, 3)
    T_tcp_cam = _camera_extrinsics(ep, opts)
    table = TableModel.fit(images, k=opts.automask.table_clusters)     # training targets only
    L = opts.look.look_size
    schedule = TableSchedule(opts.table_refit_s, opts.table_history, opts.automask.table_clusters)
    look_frames = np.stack([image_input(im, L) for im in images]) if len(images) else images
    gt_t, gt_id, gt_gap = _truth_events(ep.truth)
    labels_all = getattr(ep, 'labels', None)
    label_stamps = getattr(ep, 'label_stamps_ns', None)
    s = cfg.image_size
    pre, post = int(round(cfg.window_pre_s * sr)), int(round(cfg.window_post_s * sr))
    rows = []
    for t_ns in onsets:
        f = int(np.argmin(np.abs(stamps - t_ns)))
        rgb = images[f]
        pose, aperture = _pose_at(ep, int(t_ns)), _aperture_at(ep, int(t_ns))
        gripper = gripper_pixels(pose, T_tcp_cam, K, aperture, rgb.shape[:2], opts.automask)
        mask, uv = auto_mask(rgb, pose, T_tcp_cam, K, None, opts.automask, aperture, table)
        k0 = int(round((t_ns - ep.audio_start_ns) * sr / NS))
        win = np.zeros(pre + post, np.float32)
        lo, hi = max(0, k0 - pre), min(len(audio), k0 + post)
        if hi > lo:
            win[lo - (k0 - pre):hi - (k0 - pre)] = audio[lo:hi]
        target, gap, lab_full = -1, False, None
        if len(gt_t):
            j = int(np.argmin(np.abs(gt_t - t_ns)))
            if abs(gt_t[j] - t_ns) <= opts.match_tol_s * NS:
                target, gap = int(gt_id[j]), bool(gt_gap[j])
        if labels_all is not None and len(labels_all):
            ls = stamps if label_stamps is None else np.asarray(label_stamps)
            lab_full = np.asarray(labels_all[int(np.argmin(np.abs(ls - stamps[f])))])
        h, w = rgb.shape[:2]

        def nearest(x, n):
            return cv2.resize(x.astype(np.uint8), (n, n), interpolation=cv2.INTER_NEAREST)

        look_gripper = nearest(gripper, L) > 0
        rows.append(dict(
            look_image=look_frames[f], look_gripper=look_gripper,
            look_segments=object_segments(look_frames[f], schedule.model(int(stamps[f]), stamps, look_frames),
                                          look_gripper, min_segment_px(L)),
            look_automask=nearest(mask, L) > 0,
            look_labels=nearest(lab_full, L) if lab_full is not None else np.zeros((L, L), np.uint8),
            look_uv=np.array([uv[0] * L / w, uv[1] * L / h], np.float32),
            look_sound=sound_features(win, opts.look).astype(np.float16),
            image=image_input(rgb, s),
            gripper=cv2.resize(gripper.astype(np.uint8), (s, s), interpolation=cv2.INTER_NEAREST) > 0,
            logmel=audio_input(win, cfg).astype(np.float16),
            automask=cv2.resize(mask.astype(np.uint8), (s, s), interpolation=cv2.INTER_NEAREST) > 0,
            contact_uv=np.array([uv[0] * s / w, uv[1] * s / h], np.float32),
            labels=(cv2.resize(lab_full, (s, s), interpolation=cv2.INTER_NEAREST)
                    if lab_full is not None else np.zeros((s, s), np.uint8)),
            target=target, gap_strike=gap,
            look_tcp=np.r_[pose[0], pose[1]].astype(np.float64),
            look_camera=np.r_[(K * np.array([[L / w], [L / h], [1.0]])).ravel(),
                              np.asarray(T_tcp_cam[0], float), np.asarray(T_tcp_cam[1], float)],
            auto_iou=(mask_iou(mask, lab_full == target) if lab_full is not None and target > 0
                      else -1.0),
            onset_ns=int(t_ns)))
    return _stack(rows, cfg, opts.look)


def _stack(rows: list[dict], cfg: DetectorConfig, look: LookConfig) -> dict:
    s, m, t = cfg.image_size, cfg.n_mels, cfg.frames
    L = look.look_size
    empty = {'look_image': (np.uint8, (0, L, L, 3)), 'look_gripper': (bool, (0, L, L)),
             'look_automask': (bool, (0, L, L)), 'look_labels': (np.uint8, (0, L, L)),
             'look_uv': (np.float32, (0, 2)), 'look_segments': (np.uint8, (0, L, L)),
             'look_tcp': (np.float64, (0, 7)), 'look_camera': (np.float64, (0, 16)), 'look_sound': (np.float16, (0, look.n_mels, look.frames)),
             'image': (np.uint8, (0, s, s, 3)), 'logmel': (np.float16, (0, m, t)),
             'automask': (bool, (0, s, s)), 'gripper': (bool, (0, s, s)), 'contact_uv': (np.float32, (0, 2)),
             'labels': (np.uint8, (0, s, s)), 'target': (np.int16, (0,)),
             'auto_iou': (np.float32, (0,)), 'onset_ns': (np.int64, (0,)), 'gap_strike': (bool, (0,))}
    return {k: (np.stack([r[k] for r in rows]).astype(dt) if rows else np.zeros(shape, dt))
            for k, (dt, shape) in empty.items()}


def _fingerprint(bag: str) -> list:
    """(name, size, mtime) of a bag folder's files and its ground-truth siblings, so a cache is
    rebuilt when an episode is re-recorded into the same folder."""
    b = Path(bag)
    files = sorted(p for p in b.iterdir() if p.is_file()) if b.is_dir() else [b]
    files += [p for p in (b.with_name(b.name + '.truth.json'), b.with_name(b.name + '.masks.npz'))
              if p.is_file()]
    return [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in files]


def build_dataset(bag_dirs: list[str | Path], cfg: DetectorConfig, cache: str | Path | None = None,
                  opts: DatasetOptions | None = None, progress: bool = True,
                  topics=None) -> dict:
    """Events of all episodes, concatenated; cached in ``cache`` (.npz) when given and reused when
    the cache was built from the same episode files (names, sizes, times) with the same settings."""
    from .bags import TopicNames, list_episodes, read_episode
    opts = opts or DatasetOptions()
    topics = topics or TopicNames()
    bag_dirs = [str(b) for b in list_episodes(bag_dirs)]
    # the events depend on the inputs' layout, not on the network: one cache serves every variant
    inputs = {k: v for k, v in cfg.to_dict().items() if k in INPUT_FIELDS}
    key = json.dumps({'v': CACHE_VERSION, 'bags': bag_dirs, 'files': [_fingerprint(b) for b in bag_dirs],
                      'cfg': inputs,
                      'opts': repr(opts), 'topics': repr(topics)}, sort_keys=True)
    if cache is not None and Path(cache).is_file():
        with np.load(cache, allow_pickle=False) as z:
            if str(z['key']) == key:
                return {k: z[k] for k in z.files if k != 'key'}
    parts, names, scen = [], [], []
    it = bag_dirs
    if progress:
        from tqdm import tqdm
        it = tqdm(bag_dirs, desc='episodes', unit='ep')
    for i, bag in enumerate(it):
        ep = read_episode(bag, topics)
        ev = episode_events(ep, cfg, opts)
        n = len(ev['target'])
        ev['episode'] = np.full(n, i, np.int32)
        sc = str((ep.truth or {}).get('scenario', 'unknown'))
        # per event: a strike at the gap of the ambiguous pair is 'ambiguous' in any scenario
        ev['scenario'] = np.where(ev['gap_strike'] | (sc == 'ambiguous'), 'ambiguous', sc).astype('<U16')
        parts.append(ev)
        names.append(Path(bag).name)
        scen.append(sc)
    data = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]} if parts else {}
    data['episodes'] = np.array(names, dtype='<U256')
    if cache is not None:
        Path(cache).parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(cache).with_name(Path(cache).name + '.tmp.npz')  # a killed run leaves no half file
        np.savez_compressed(tmp, key=np.array(key), **data)
        os.replace(tmp, cache)
    return data


def mel_stats(logmel: np.ndarray) -> tuple[float, float]:
    """Mean and std of log-mel values (the model normalises its audio input with them)."""
    x = np.asarray(logmel, np.float32)
    return float(x.mean()), float(x.std() + 1e-6)


def segment_labels(data: dict, table_clusters: int = 6, min_area_px: int = 6, image_key: str = 'image',
                   gripper_key: str = 'gripper') -> np.ndarray:
    """Automatic object segments of every cached event frame (``automask.object_segments``),
    uint8 (E,S,S), 0 = none; at the model's input size, or at the look size with
    ``image_key='look_image', gripper_key='look_gripper'``. The table colour model is fitted per
    episode on that episode's event frames (a node fits it on its recent frames). Cheap, so it is
    computed when it is needed rather than stored in the cache."""
    images, gripper, episode = data[image_key], data[gripper_key], data['episode']
    out = np.zeros(images.shape[:3], np.uint8)
    for e in np.unique(episode):
        idx = np.nonzero(episode == e)[0]
        table = TableModel.fit(images[idx], k=table_clusters)
        for i in idx:
            out[i] = object_segments(images[i], table, gripper[i], min_area_px)
    return out


def look_segments(data: dict, table_clusters: int = 6) -> np.ndarray:
    """The candidate segments at the look size: those the cache holds (fitted as the node fits
    them, ``TableSchedule``), else ``segment_labels`` (min area scaled from 6 px at 64 px)."""
    if 'look_segments' in data:
        return data['look_segments']
    size = data['look_image'].shape[1]
    return segment_labels(data, table_clusters, min_segment_px(size), 'look_image',
                          'look_gripper')


def concat_events(a: dict, b: dict) -> dict:
    """Two ``build_dataset`` results as one (episode indices of ``b`` shifted after ``a``'s)."""
    if not len(b.get('image', [])):
        return a
    shift = len(a['episodes'])
    out = {k: np.concatenate([a[k], b[k] + shift if k == 'episode' else b[k]])
           for k in a if k != 'episodes'}
    out['episodes'] = np.concatenate([a['episodes'], b['episodes']])
    return out
