"""Benchmark of the execution monitor (not a test; ``make bench`` runs it).

1. Expectation latency: ``Planner.expect`` on one planned path (the contact-event model, and the
   kinematic rule), p50/p99 over ``--reps`` runs on ``--threads`` CPU threads.
2. End to end through real DDS: a publisher streams a 30 fps camera (128x128 rgb8) and 16 kHz
   audio in 512-sample S16LE chunks in real time, with a planned path every ``--period`` seconds
   (a transit high above the table: no contact expected) and a click inside each path (an
   UNEXPECTED contact). The latency is (anomaly received) - (publish time of the audio chunk
   holding the onset). Reports p50/p99, anomalies received vs clicks sent, audio chunks sent vs
   received by the node, paths judged, the node's prediction latency, and peak memory (max RSS
   of this process, which holds both nodes).

    .venv/bin/python bench/bench_monitor.py [--seconds 20] [--source model]
Target: heard onset -> anomaly p99 < 50 ms on 2 CPU cores, zero dropped audio chunks.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')

from hearing_hands_ros import trajectory as tr  # noqa: E402

SR, CHUNK, FPS = 16000, 512, 30.0
NS = 1_000_000_000


def pct(xs, q):
    return float(np.percentile(np.asarray(xs) * 1e3, q)) if len(xs) else float('nan')


def transit(start_ns: int, seconds: float, n: int = 26):
    """A planned path high above the table (a transit: it should touch nothing)."""
    t = np.linspace(0.0, seconds, n)
    pos = np.stack([0.05 * t / seconds - 0.025, np.zeros(n), np.full(n, 0.25)], 1)
    quat = np.tile([0.0, 0.0, 0.0, 1.0], (n, 1))
    return start_ns + (t * NS).astype(np.int64), pos, quat


def expect_latency(source: str, threads: int, reps: int) -> dict:
    from bench_detector import scene_frame
    from hearing_hands_ros.planner import Planner
    planner = Planner(backend='cpu', threads=threads)
    times, pos, quat = transit(0, 1.0)
    traj = tr.Trajectory.from_stamps_ns(times, pos, quat, frame_id='world', origin_ns=0)
    rgb = scene_frame()
    ts = []
    for i in range(reps + 5):
        rgb[0, 0, 0] = i % 256                       # a new frame each time (no segment cache)
        t = time.perf_counter()
        planner.expect([traj], rgb, source=source)
        if i >= 5:
            ts.append(time.perf_counter() - t)
    return {'source': source, 'p50_ms': pct(ts, 50), 'p99_ms': pct(ts, 99)}


def end_to_end(source: str, threads: int, seconds: float, period: float, domain_id: int) -> dict:
    import rclpy
    from audio_common_msgs.msg import AudioDataStamped, AudioInfo
    from bench_detector import scene_frame
    from hearing_hands_msgs.msg import ContactAnomalyArray, ExecutionStatus
    from nav_msgs.msg import Path as PathMsg
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter
    from sensor_msgs.msg import CameraInfo, Image

    from hearing_hands_ros import ros_convert as rc
    from hearing_hands_ros.nodes.common import AUDIO_QOS, LATCHED_QOS, RELIABLE_QOS, SENSOR_QOS
    from hearing_hands_ros.nodes.contact_monitor import ContactMonitor

    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=domain_id)
    node = ContactMonitor(context=ctx, parameter_overrides=[
        Parameter('backend', value='cpu'), Parameter('threads', value=threads),
        Parameter('expected_source', value=source)])
    robot = rclpy.create_node('bench_robot', context=ctx)
    pub_img = robot.create_publisher(Image, 'image', SENSOR_QOS)
    pub_cam = robot.create_publisher(CameraInfo, 'camera_info', SENSOR_QOS)
    pub_audio = robot.create_publisher(AudioDataStamped, 'audio_stamped', AUDIO_QOS)
    pub_info = robot.create_publisher(AudioInfo, 'audio_info', LATCHED_QOS)
    pub_path = robot.create_publisher(PathMsg, 'planned_path', RELIABLE_QOS)
    anomalies, statuses = [], []
    robot.create_subscription(ContactAnomalyArray, 'contact_anomalies',
                              lambda m: anomalies.append((time.monotonic(), m)), 10)
    robot.create_subscription(ExecutionStatus, 'execution_status', statuses.append, 10)
    executors = [SingleThreadedExecutor(context=ctx) for _ in range(2)]   # as in two processes
    for ex_, n_ in zip(executors, (node, robot)):
        ex_.add_node(n_)
        threading.Thread(target=ex_.spin, daemon=True).start()
    end = time.monotonic() + 10
    while time.monotonic() < end and not (pub_audio.get_subscription_count()
                                          and pub_path.get_subscription_count()):
        time.sleep(0.05)
    pub_info.publish(rc.audio_info_msg(SR))
    time.sleep(0.5)

    rng = np.random.default_rng(0)
    n = int(seconds * SR)
    x = rng.normal(0, 1e-3, n).astype(np.float32)
    path_starts = np.arange(0.5, seconds - period - 0.5, period)
    clicks = []
    for s in path_starts:
        k = int((s + rng.uniform(0.3, 0.7) * period) * SR)        # inside the path
        t = np.arange(min(n - k, SR // 4)) / SR
        f = rng.uniform(500, 4000)
        x[k:k + len(t)] += (0.3 * np.exp(-t / 0.03) * np.sin(2 * np.pi * f * t)).astype(np.float32)
        clicks.append(k)
    img = scene_frame()
    cam = {'width': 128, 'height': 128, 'K': [91.4, 0, 63.5, 0, 91.4, 63.5, 0, 0, 1.0]}
    t0_ns = robot.get_clock().now().nanoseconds
    sent = {}
    start = time.monotonic()
    next_frame, frames, next_path = 0.0, 0, 0
    for c in range(0, n - CHUNK + 1, CHUNK):
        while next_frame <= (c + CHUNK) / SR:
            pub_img.publish(rc.image_msg(img, t0_ns + int(next_frame * 1e9)))
            pub_cam.publish(rc.camera_info_msg(cam, t0_ns + int(next_frame * 1e9)))
            next_frame += 1 / FPS
            frames += 1
        while next_path < len(path_starts) and path_starts[next_path] <= (c + CHUNK) / SR + 0.2:
            times, pos, quat = transit(t0_ns + int(path_starts[next_path] * 1e9), period)
            pub_path.publish(rc.path_msg(times, pos, quat, 'world'))   # 0.2 s before it runs
            next_path += 1
        delay = start + (c + CHUNK) / SR - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        pub_audio.publish(rc.audio_chunk_msg(x[c:c + CHUNK], t0_ns + int(c / SR * 1e9)))
        sent[c // CHUNK] = time.monotonic()
    time.sleep(1.5)
    lat = []
    for k in clicks:
        want = t0_ns + int(k / SR * 1e9)
        got = [t for t, m in anomalies for a in m.anomalies if a.type_name == 'UNEXPECTED'
               and abs(rc.stamp_to_ns(a.path_stamp) + int(a.heard_time_from_start * 1e9) - want) < 5_000_000]
        if got:
            lat.append(got[0] - sent[(k + 8) // CHUNK])
    diag = {kv.key: kv.value for kv in node.diag.status().values}
    for ex_ in executors:
        ex_.shutdown(timeout_sec=2)
    node.destroy_node()
    robot.destroy_node()
    rclpy.shutdown(context=ctx)
    return {'source': source, 'clicks_sent': len(clicks), 'unexpected_received': len(lat),
            'p50_ms': pct(lat, 50), 'p99_ms': pct(lat, 99), 'max_ms': pct(lat, 100),
            'paths_sent': len(path_starts), 'paths_judged': int(diag.get('paths_judged', 0)),
            'frames_sent': frames, 'audio_chunks_sent': len(sent),
            'audio_chunks_received': int(diag.get('audio_chunks', 0)),
            'node_prediction_p99_ms': float(diag.get('prediction.p99_ms', 'nan'))}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--source', choices=('model', 'kinematic'), default='kinematic')
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--reps', type=int, default=100)
    p.add_argument('--seconds', type=float, default=20.0)
    p.add_argument('--period', type=float, default=1.0)
    p.add_argument('--domain-id', type=int, default=68)
    p.add_argument('--json', default=None)
    args = p.parse_args()
    sys.path.insert(0, str(ROOT / 'bench'))
    res = {'cpu_cores': os.cpu_count(),
           'expect_latency': [expect_latency(s, args.threads, args.reps) for s in ('model', 'kinematic')],
           'end_to_end': end_to_end(args.source, args.threads, args.seconds, args.period,
                                    args.domain_id)}
    res['peak_rss_mb'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(res, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2) + '\n')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
