"""Benchmark of the sounding-object detector (not a test; ``make bench`` runs it).

1. Model latency: ONNX Runtime (``--threads`` CPU threads, or the GPU when lent) on one event,
   p50/p99 over ``--reps`` runs; the torch backend too. Answer latency: the model plus what the
   node does after it (automatic object segments of the frame, their look statistics, the look
   match: ``look_match.sounding_candidates``), on a frame with two objects.
2. End to end through real DDS: a publisher streams a 30 fps camera (128x128 rgb8, with its
   camera_info and a gripper pose per frame, so the contact rule and the sound memory run) and
   16 kHz audio in 512-sample S16LE chunks in real time, with an impact every ``--period`` seconds; the
   latency is (detection received) - (publish time of the audio chunk containing the onset).
   Reports p50/p99, events detected vs sent, dropped frames/events/audio chunks (the node's
   diagnostics counters and its ring buffer's gap count), and peak memory (max RSS of this process,
   which holds both nodes).

    .venv/bin/python bench/bench_detector.py [--model models/sounding_object_detector.onnx] [--seconds 20]
Targets: p99 end-to-end < 100 ms on 2 CPU cores, zero dropped audio chunks; GPU p99 < 30 ms.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')

from hearing_hands_ros import runtime  # noqa: E402
from hearing_hands_ros.models.detector import (DetectorConfig, SoundingObjectDetector,  # noqa: E402
                                               export_onnx, torch_loader)

SR, CHUNK, FPS = 16000, 512, 30.0


def pct(xs, q):
    return float(np.percentile(np.asarray(xs) * 1e3, q)) if len(xs) else float('nan')


def model_latency(path, backend, threads, reps):
    b = runtime.load_bundle(path, 'detector', backend=backend, threads=threads,
                            torch_loader=torch_loader)
    cfg = DetectorConfig.from_dict(b.meta['config'])
    feeds = {'image': np.random.rand(1, 3, cfg.image_size, cfg.image_size).astype(np.float32),
             'logmel': np.random.randn(1, 1, cfg.n_mels, cfg.frames).astype(np.float32)}
    feeds = {k: v for k, v in feeds.items() if k in b.meta['inputs']}
    for _ in range(10):
        b.run(feeds)
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        b.run(feeds)
        ts.append(time.perf_counter() - t)
    return {'backend': b.backend, 'p50_ms': pct(ts, 50), 'p99_ms': pct(ts, 99)}


def end_to_end(path, backend, threads, seconds, period, domain_id):
    import rclpy
    from audio_common_msgs.msg import AudioDataStamped, AudioInfo
    from geometry_msgs.msg import PoseStamped
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter
    from sensor_msgs.msg import CameraInfo, Image
    from vision_msgs.msg import Detection2DArray

    from hearing_hands_ros import ros_convert as rc
    from hearing_hands_ros.nodes.common import AUDIO_QOS, LATCHED_QOS, SENSOR_QOS
    from hearing_hands_ros.nodes.sounding_object_detector import SoundingObjectDetector as Node

    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=domain_id)
    node = Node(context=ctx, parameter_overrides=[
        Parameter('model_path', value=str(path)), Parameter('backend', value=backend),
        Parameter('threads', value=threads), Parameter('publish_debug_image', value=True)])
    robot = rclpy.create_node('bench_robot', context=ctx)
    pub_img = robot.create_publisher(Image, 'image', SENSOR_QOS)
    pub_audio = robot.create_publisher(AudioDataStamped, 'audio_stamped', AUDIO_QOS)
    pub_info = robot.create_publisher(AudioInfo, 'audio_info', LATCHED_QOS)
    pub_cam = robot.create_publisher(CameraInfo, 'camera_info', SENSOR_QOS)
    pub_pose = robot.create_publisher(PoseStamped, 'gripper_pose', SENSOR_QOS)
    received = {}
    robot.create_subscription(Detection2DArray, 'sounding_objects',
                              lambda m: received.setdefault(rc.stamp_to_ns(m.header.stamp),
                                                            time.monotonic()), 10)
    # One single-threaded executor per node (as if in two processes): rclpy's
    # MultiThreadedExecutor spends most of its time re-scanning its futures under this load.
    executors = [SingleThreadedExecutor(context=ctx) for _ in range(2)]
    for ex_, n_ in zip(executors, (node, robot)):
        ex_.add_node(n_)
        threading.Thread(target=ex_.spin, daemon=True).start()
    end = time.monotonic() + 10
    while time.monotonic() < end and not (pub_audio.get_subscription_count() and
                                          robot.count_publishers('sounding_objects')):
        time.sleep(0.05)
    pub_info.publish(rc.audio_info_msg(SR))
    time.sleep(0.5)

    rng = np.random.default_rng(0)
    n = int(seconds * SR)
    x = rng.normal(0, 1e-3, n).astype(np.float32)
    onsets = np.arange(0.5, seconds - 0.3, period)
    for s in onsets:
        k = int(s * SR) + int(rng.integers(0, CHUNK))          # anywhere inside a chunk
        t = np.arange(min(n - k, SR // 4)) / SR
        f = rng.uniform(500, 4000)
        x[k:k + len(t)] += (0.5 * np.exp(-t / 0.04) * np.sin(2 * np.pi * f * t)).astype(np.float32)
    onset_idx = [int(s * SR) for s in onsets]
    img = scene_frame()
    t0_ns = robot.get_clock().now().nanoseconds
    cam = {'width': 128, 'height': 128, 'K': [91.4, 0, 63.5, 0, 91.4, 63.5, 0, 0, 1.0]}
    sent_chunk_time = {}                                       # chunk index -> publish monotonic
    start = time.monotonic()
    next_frame, frames = 0.0, 0
    for c in range(0, n - CHUNK + 1, CHUNK):
        while next_frame <= (c + CHUNK) / SR:
            pub_img.publish(rc.image_msg(img, t0_ns + int(next_frame * 1e9)))
            pub_cam.publish(rc.camera_info_msg(cam, t0_ns + int(next_frame * 1e9)))   # as drivers do
            pub_pose.publish(rc.pose_msg([0.0, 0.0, 0.1], [0.0, 0.0, 0.0, 1.0], t0_ns + int(next_frame * 1e9)))
            next_frame += 1 / FPS
            frames += 1
        delay = start + (c + CHUNK) / SR - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        pub_audio.publish(rc.audio_chunk_msg(x[c:c + CHUNK], t0_ns + int(c / SR * 1e9)))
        sent_chunk_time[c // CHUNK] = time.monotonic()
    time.sleep(1.5)
    lat = []
    for k in onset_idx:
        want = t0_ns + int(k / SR * 1e9)
        got = [s for s in received if abs(s - want) < 30_000_000]
        if got:
            # chunk containing the true onset (the detector may place it a few samples early)
            lat.append(received[got[0]] - sent_chunk_time[(k + 8) // CHUNK])
    st = node.diag.status()
    diag = {kv.key: kv.value for kv in st.values}
    ring = node.pipe.audio_stats() if node.pipe else {}
    for ex_ in executors:
        ex_.shutdown(timeout_sec=2)
    node.close()
    node.destroy_node()
    robot.destroy_node()
    rclpy.shutdown(context=ctx)
    return {'events_sent': len(onsets), 'events_detected': len(lat),
            'p50_ms': pct(lat, 50), 'p99_ms': pct(lat, 99), 'max_ms': pct(lat, 100),
            'frames_sent': frames, 'audio_chunks_sent': len(sent_chunk_time),
            'audio_chunks_received': int(diag.get('audio_chunks', 0)),
            'audio_gaps_in_ring_buffer': int(ring.get('gaps', 0)),
            'dropped_frames': int(diag.get('dropped_frames', 0)),
            'dropped_events': int(diag.get('dropped_events', 0)),
            'node_model_p99_ms': float(diag.get('model.p99_ms', 'nan')),
            'backend': diag.get('backend')}


def scene_frame() -> np.ndarray:
    """A table with two objects, with a camera's pixel noise (a flat synthetic colour would
    give k-means of the table model duplicate centres)."""
    img = np.full((128, 128, 3), (150, 120, 90), np.float32)
    img[30:70, 20:60] = (40, 80, 200)
    img[40:80, 70:110] = (200, 200, 190)
    img += np.random.default_rng(0).normal(0, 3, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def answer_latency(path, backend, threads, reps):
    from hearing_hands_ros.automask import (AutoMaskConfig, TableModel, gripper_pixels, min_segment_px,
                                            object_segments)
    from hearing_hands_ros.models.detector import image_input
    from hearing_hands_ros.models.look_match import LookConfig, load_look_match, sounding_candidates
    b = runtime.load_bundle(path, 'detector', backend=backend, threads=threads, torch_loader=torch_loader,
                            spin=False)                      # as the node loads it
    look, weight = load_look_match(b, backend, threads, spin=False)
    cfg = DetectorConfig.from_dict(b.meta['config'])
    lcfg = LookConfig.from_dict(look.meta['config']) if look else LookConfig()
    rgb = scene_frame()
    L = lcfg.look_size
    rgb_l = image_input(rgb, L)
    table = TableModel.fit(rgb_l[None])
    K = np.array([[91.4, 0, 63.5], [0, 91.4, 63.5], [0, 0, 1.0]])
    T = ((0.0, -0.075, 0.068), (0.9220290376453586, 0.0, 0.0, -0.3871207224352294))
    grip = gripper_pixels((np.zeros(3), np.array([0, 0, 0, 1.0])), T, K, 0.0, (L, L), AutoMaskConfig())
    feeds = {'image': image_input(rgb, cfg.image_size).astype(np.float32).transpose(2, 0, 1)[None] / 255.0,
             'logmel': np.random.randn(1, 1, cfg.n_mels, cfg.frames).astype(np.float32)}
    feeds = {k: v for k, v in feeds.items() if k in b.meta['inputs']}
    sound = np.random.randn(lcfg.n_sound).astype(np.float32)
    ts, n = [], 0
    for i in range(reps + 10):
        t = time.perf_counter()
        out = b.run(feeds)
        seg = object_segments(rgb_l, table, grip, min_segment_px(L))
        cands = sounding_candidates(out['scores'][0], out['masks'][0], seg, rgb_l, sound, look, weight)
        if i >= 10:
            ts.append(time.perf_counter() - t)
        n = len(cands)
    return {'backend': b.backend, 'look_match': look is not None, 'candidates': n,
            'p50_ms': pct(ts, 50), 'p99_ms': pct(ts, 99)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--model', default=str(ROOT / 'models' / 'sounding_object_detector.onnx'))
    p.add_argument('--backend', default='auto')
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--reps', type=int, default=200)
    p.add_argument('--seconds', type=float, default=20.0)
    p.add_argument('--period', type=float, default=0.5)
    p.add_argument('--domain-id', type=int, default=69)
    p.add_argument('--json', default=None)
    args = p.parse_args()
    path = Path(args.model)
    if not path.is_file():   # no shipped model yet: an untrained one of the default size
        path = export_onnx(SoundingObjectDetector(DetectorConfig()).eval(),
                           Path(tempfile.mkdtemp()) / 'untrained.onnx')
        print(f'note: {args.model} not found; timing an untrained default-size model')
    res = {'model': str(path), 'cpu_cores': os.cpu_count(),
           'model_latency': {'onnx': model_latency(path, args.backend, args.threads, args.reps),
                             'torch': model_latency(path, 'torch', args.threads, args.reps // 4)},
           'answer_latency': answer_latency(path, args.backend, args.threads, args.reps)}
    res['end_to_end'] = end_to_end(path, args.backend, args.threads, args.seconds, args.period,
                                   args.domain_id)
    res['peak_rss_mb'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(res, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2) + '\n')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
