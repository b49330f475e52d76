"""Automatic masks: contact projection + GrabCut on synthetic wrist-camera frames (no labels used)."""
import cv2
import numpy as np

from hearing_hands_ros.automask import (AutoMaskConfig, TableModel, auto_mask, gripper_pixels,
                                        mask_iou, object_segments, project_contact, static_pixels)
from hearing_hands_ros.images import intrinsics

K = intrinsics(128, 128, 70.0)
TCP = (np.array([0.3, -0.1, 0.06]), np.array([0.0, 0.0, 0.0, 1.0]))      # z up along the wrist


# the sound world's wrist camera: behind and above the finger tips, looking down at them
T_TCP_CAM = (np.array([0.0, -0.075, 0.068]), np.array([0.9220290376453586, 0.0, 0.0, -0.3871207224352294]))


def scene(seed=0):
    rng = np.random.default_rng(seed)
    img = np.clip(rng.normal([150, 120, 90], 8, (128, 128, 3)), 0, 255).astype(np.uint8)  # table
    labels = np.zeros((128, 128), np.uint8)
    uv, _ = project_contact(TCP, T_TCP_CAM, K)
    c = (int(round(uv[0])), int(round(uv[1])))
    cv2.ellipse(labels, c, (18, 12), 20, 0, 360, 1, -1)                      # touched object
    cv2.circle(labels, (c[0] + 38, c[1] - 5), 14, 2, -1)                      # its neighbour
    labels[gripper_pixels(TCP, T_TCP_CAM, K, 0.04, (128, 128), AutoMaskConfig(gripper_margin_px=0))] = 255
    img[labels == 1] = np.clip(rng.normal([60, 90, 200], 6, ((labels == 1).sum(), 3)), 0, 255)
    img[labels == 2] = np.clip(rng.normal([200, 60, 60], 6, ((labels == 2).sum(), 3)), 0, 255)
    img[labels == 255] = 40
    return img, labels, uv


def test_contact_projects_through_camera_extrinsics():
    uv, z = project_contact(TCP, T_TCP_CAM, K)
    # centred left-right, 7.5 cm in front of and 6.8 cm below the camera
    assert abs(uv[0] - 64) < 1e-6 and 0.05 < z < 0.12
    uv2, _ = project_contact(TCP, T_TCP_CAM, K, contact_offset=(0.0, 0.0, -0.03))   # lower point
    assert uv2[1] > uv[1]


def test_grabcut_mask_matches_the_touched_object():
    img, labels, _ = scene()
    mask, uv = auto_mask(img, TCP, T_TCP_CAM, K, exclude=labels == 255)
    assert mask_iou(mask, labels == 1) > 0.8
    assert not (mask & (labels == 2)).any() and not (mask & (labels == 255)).any()


def test_static_pixels_find_the_gripper():
    frames = []
    for s in range(12):
        img, labels, _ = scene(s)
        frames.append(np.roll(img, 7 * s, axis=1))    # the scene moves, the gripper does not
        frames[-1][labels == 255] = 40
    still = static_pixels(np.stack(frames))
    assert mask_iou(still, labels == 255) > 0.9


def test_failures_give_empty_masks():
    img, _, _ = scene()
    mask, _ = auto_mask(img, TCP, (np.array([0, 0, 0.1]), np.array([0, 0, 0, 1.0])), K)  # behind
    assert not mask.any()
    flat = np.full((128, 128, 3), 120, np.uint8)                              # nothing to segment
    mask, _ = auto_mask(flat, TCP, T_TCP_CAM, K, cfg=AutoMaskConfig(max_area_frac=0.3))
    assert mask.sum() == 0 or mask.mean() <= 0.3
    assert mask_iou(np.zeros((4, 4), bool), np.zeros((4, 4), bool)) == 1.0


def test_gripper_pixels_from_geometry():
    m = gripper_pixels(TCP, T_TCP_CAM, K, aperture=0.04, shape=(128, 128))
    uv, _ = project_contact(TCP, T_TCP_CAM, K)
    assert 0.01 < m.mean() < 0.5
    # the finger tips sit left and right of the TCP pixel, the gap between them is free
    assert not m[int(uv[1]), int(uv[0])]
    wider = gripper_pixels(TCP, T_TCP_CAM, K, aperture=0.08, shape=(128, 128))
    cols = np.nonzero(m[int(uv[1]) - 3])[0]
    cols_w = np.nonzero(wider[int(uv[1]) - 3])[0]
    assert np.ptp(cols_w) > np.ptp(cols)


def test_table_model_picks_the_touched_region():
    img, labels, _ = scene()
    table = TableModel.fit(np.stack([img] * 4), k=4)
    assert mask_iou(table.is_table(img), labels == 0) > 0.9
    mask, _ = auto_mask(img, TCP, T_TCP_CAM, K, exclude=labels == 255, table=table)
    assert mask_iou(mask, labels == 1) > 0.9


def test_episode_events_from_a_fake_episode():
    from types import SimpleNamespace
    from hearing_hands_ros.data.detector_dataset import episode_events
    from hearing_hands_ros.models.detector import DetectorConfig
    img, labels, _ = scene()
    sr, start = 16000, 10**18
    x = np.random.default_rng(0).normal(0, 1e-3, 2 * sr).astype(np.float32)
    for s in (0.5, 1.3):
        t = np.arange(2000) / sr
        x[int(s * sr):int(s * sr) + 2000] += 0.5 * np.exp(-t / 0.03) * np.sin(2e4 * t)
    stamps = start + (np.arange(60) * 1e9 / 30).astype(np.int64)
    ep = SimpleNamespace(
        sample_rate=sr, audio=x, audio_start_ns=start, images=np.stack([img] * 60),
        image_stamps_ns=stamps, camera_info={'K': K.ravel().tolist()},
        pose_stamps_ns=stamps, positions=np.tile(TCP[0], (60, 1)),
        orientations=np.tile(TCP[1], (60, 1)), aperture_stamps_ns=stamps,
        apertures=np.full(60, 0.04), labels=np.stack([labels] * 60), label_stamps_ns=stamps,
        truth={'start_time_ns': start, 'scenario': 'mixed',
               'camera': {'T_tcp_camera': {'position': T_TCP_CAM[0].tolist(),
                                           'orientation': T_TCP_CAM[1].tolist()}},
               'contacts': [{'time': 0.5, 'objects': [1, -1]}, {'time': 1.3, 'objects': [1, 0]}]})
    cfg = DetectorConfig()
    ev = episode_events(ep, cfg)
    assert list(ev['target']) == [1, 1]
    assert ev['image'].shape == (2, 64, 64, 3) and ev['logmel'].shape == (2, 64, cfg.frames)
    assert (ev['auto_iou'] > 0.5).all() and ev['automask'].any(axis=(1, 2)).all()
    assert np.abs(ev['onset_ns'] - (start + np.array([5e8, 1.3e9]))).max() < 10e6


def test_object_segments_split_two_objects_on_either_side_of_the_fingers():
    """Two touching objects with the fingers over the seam: the fingers are cut out, so each
    object is its own segment, and neither holds finger pixels."""
    img, labels, uv = scene()
    u, v = int(round(uv[0])), int(round(uv[1]))
    labels[:] = 0
    labels[v - 12:v + 12, u - 30:u] = 1                                      # left of the seam
    labels[v - 12:v + 12, u:u + 30] = 2                                      # right of it
    grip = gripper_pixels(TCP, T_TCP_CAM, K, 0.0, (128, 128), AutoMaskConfig(gripper_margin_px=0))
    rng = np.random.default_rng(1)
    img = np.clip(rng.normal([150, 120, 90], 8, (128, 128, 3)), 0, 255).astype(np.uint8)
    img[labels == 1], img[labels == 2] = (60, 90, 200), (200, 60, 60)
    img[grip] = 40
    seam = np.zeros_like(grip)
    seam[:, u - 2:u + 2] = True                                              # fingers over the seam
    img[seam & (labels > 0)] = 40
    table = TableModel.fit(img[None], k=4)
    seg = object_segments(img, table, grip | (seam & (labels > 0)))
    assert seg.max() == 2
    for j in (1, 2):                                  # each segment is one object, not both
        assert len({int(x) for x in np.unique(labels[seg == j])} - {0}) == 1
    for obj in (1, 2):
        assert max(mask_iou(seg == j, (labels == obj) & ~seam & ~grip) for j in (1, 2)) > 0.75
    assert not (seg[grip] > 0).any()


def test_table_schedule_is_causal_and_the_node_fits_what_a_recording_fits():
    """``TableSchedule``: an event's table model comes from the frames up to its refit tick, never
    a later one; the detector pipeline, fed the frames one by one as the node is, fits the very
    model that ``evaluate detector`` fits from the whole recording."""
    from hearing_hands_ros.automask import TableSchedule
    from hearing_hands_ros.detector_pipeline import DetectorPipeline, PipelineConfig
    from hearing_hands_ros.models.detector import DetectorConfig
    rng = np.random.default_rng(1)
    n, dt = 150, 33_333_333                                     # 5 s at 30 fps
    stamps = 10**18 + dt * np.arange(n, dtype=np.int64)
    base = np.linspace([150, 120, 90], [80, 140, 170], n)       # the table colour drifts
    frames = np.clip(base[:, None, None] + rng.normal(0, 6, (n, 128, 128, 3)), 0, 255).astype(np.uint8)
    sched = TableSchedule(2.0, 30)
    for t in (stamps[5], stamps[70], stamps[140]):
        k, idx = sched.pick(int(t), stamps)
        assert stamps[idx].max() <= sched.tick_ns(k) <= t and len(idx) <= 30
    pipe = DetectorPipeline(None, DetectorConfig(), PipelineConfig(table_refit_s=2.0, frame_history=30))
    recording = TableSchedule(2.0, 30)
    events = {10, 75, 100, 148}                     # frame indices paired with an onset
    for i, (t, f) in enumerate(zip(stamps, frames)):
        pipe.push_frame(int(t), f, 'camera')
        if i - 1 in events:                         # the node answers one frame after the onset
            te = int(stamps[i - 1])
            live = pipe._table_at(te, list(pipe.frames))
            offline = recording.model(te, stamps, frames)
            np.testing.assert_allclose(live.centres, offline.centres)
        elif i % 20 == 0:
            pipe.refit_table()                      # between events
