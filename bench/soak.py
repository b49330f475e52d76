"""Soak both model nodes at twice the sound world's sensor rates (not a test; minutes long).

The detector and the predictor run as their own processes (shipped models, CPU, the default
``threads``). This process plays the robot over real DDS for ``--minutes``:

* wrist camera: 128x128 rgb8 at 2 x 30 = 60 fps (``image``, sensor data);
* wrist microphone: 32 kHz mono S16LE (2 x 16 kHz) in 512-sample chunks, 62.5 chunks/s, reliable,
  with an impact every ``--event-period`` seconds, stamped as a driver stamps them;
* ``camera_info`` with every frame, ``joint_states`` at 100 Hz;
* a planned tap path every ``--path-period`` seconds.

It reports, per node, the resident memory after the first minute and over the last minute (growth
target < 5 %) and its peak; detections answered per impact sent; predictions answered per path
sent; and the audio chunks lost: sent by this process minus received by the detector, plus the
gaps its ring buffer filled (target 0).

    .venv/bin/python bench/soak.py [--minutes 10] [--json out/soak.json]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')

from fuzz_nodes import NODES, Fuzzer  # noqa: E402

NS = 1_000_000_000
SR, CHUNK, FPS = 32000, 512, 60.0


def rss_mb(pid: int, field: str = 'VmRSS') -> float:
    for line in Path(f'/proc/{pid}/status').read_text().splitlines():
        if line.startswith(field + ':'):
            return int(line.split()[1]) / 1024
    return float('nan')


def soak(minutes: float, event_period: float, path_period: float, domain_id: int,
         log_dir: Path) -> dict:
    """Run the soak described in the module docstring; returns its report."""
    import rclpy
    from audio_common_msgs.msg import AudioDataStamped, AudioInfo
    from diagnostic_msgs.msg import DiagnosticArray
    from nav_msgs.msg import Path as PathMsg
    from rclpy.executors import SingleThreadedExecutor
    from sensor_msgs.msg import CameraInfo, Image, JointState
    from tqdm import tqdm
    from vision_msgs.msg import Detection2DArray

    from hearing_hands_ros import ros_convert as rc
    from hearing_hands_ros.nodes.common import (AUDIO_QOS, INFO_QOS, RELIABLE_QOS, SENSOR_QOS)

    env = dict(os.environ, ROS_DOMAIN_ID=str(domain_id), PYTHONUNBUFFERED='1')
    procs = {}
    for which in ('detector', 'predictor'):
        with open(log_dir / f'{which}.log', 'w') as log:
            procs[which] = subprocess.Popen(
                [sys.executable, '-m', NODES[which][0], '--ros-args', '-p', 'backend:=cpu'],
                stdout=log, stderr=subprocess.STDOUT, env=env)
    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=domain_id)
    node = rclpy.create_node('soak_robot', context=ctx)
    pub_img = node.create_publisher(Image, 'image', SENSOR_QOS)
    pub_cam = node.create_publisher(CameraInfo, 'camera_info', SENSOR_QOS)
    pub_js = node.create_publisher(JointState, 'joint_states', SENSOR_QOS)
    pub_audio = node.create_publisher(AudioDataStamped, 'audio_stamped', AUDIO_QOS)
    pub_info = node.create_publisher(AudioInfo, 'audio_info', INFO_QOS)
    pub_path = node.create_publisher(PathMsg, 'planned_path', RELIABLE_QOS)
    got = {'detections': 0, 'predictions': 0}
    status: dict = {'detector': {}, 'predictor': {}}

    def on_diag(msg):
        for s in msg.status:
            key = {'sounding_object_detector': 'detector',
                   'contact_sound_predictor': 'predictor'}.get(s.name.split(':')[0])
            if key:
                status[key].update({kv.key: kv.value for kv in s.values})

    node.create_subscription(DiagnosticArray, '/diagnostics', on_diag, 10)
    node.create_subscription(Detection2DArray, 'sounding_objects',
                             lambda m: got.__setitem__('detections', got['detections'] + 1), 10)
    node.create_subscription(AudioDataStamped, 'predicted_audio',
                             lambda m: got.__setitem__('predictions', got['predictions'] + 1), 10)
    ex = SingleThreadedExecutor(context=ctx)
    ex.add_node(node)
    threading.Thread(target=ex.spin, daemon=True).start()
    clock = node.get_clock()
    fz = Fuzzer(0, lambda: clock.now().nanoseconds)
    report: dict = {'minutes': minutes, 'camera_fps': FPS, 'audio_rate_hz': SR,
                    'audio_chunk_samples': CHUNK}
    try:
        end = time.monotonic() + 90
        while time.monotonic() < end and not all(s.get('lifecycle') == 'active'
                                                 for s in status.values()):
            time.sleep(0.2)
        for pub in (pub_img, pub_audio, pub_path):
            while pub.get_subscription_count() == 0 and time.monotonic() < end:
                time.sleep(0.05)
        image = fz.valid_image()
        cam = fz.valid_camera_info()
        rng = np.random.default_rng(0)
        t0_wall = time.monotonic()
        t0_ros = clock.now().nanoseconds
        duration = minutes * 60.0
        n_chunks = n_frames = n_paths = n_events = n_js = 0
        next_event, next_path, next_info = 2.0, 1.0, 0.0
        samples: dict = {w: [] for w in procs}            # (t [s], RSS MB)
        next_rss = 0.0
        bar = tqdm(total=int(duration), desc='soak', unit='s')
        while True:
            now = time.monotonic() - t0_wall
            if now >= duration or any(p.poll() is not None for p in procs.values()):
                break
            due = min((n_chunks + 1) * CHUNK / SR, n_frames / FPS, n_js / 100.0)
            if due > now:
                time.sleep(min(due - now, 0.005))
                continue
            if now >= next_info:                           # audio_capture republishes
                pub_info.publish(rc.audio_info_msg(SR))
                next_info += 5.0
            if (n_chunks + 1) * CHUNK / SR <= now:
                t_chunk = n_chunks * CHUNK / SR
                x = rng.normal(0, 1e-3, CHUNK).astype(np.float32)
                if t_chunk >= next_event:
                    k = int((next_event - t_chunk) * SR)
                    t = np.arange(CHUNK - k) / SR
                    x[k:] += (0.5 * np.exp(-t / 0.02) * np.sin(2 * np.pi * 1800 * t)).astype(np.float32)
                    n_events += 1
                    next_event += event_period
                pub_audio.publish(rc.audio_chunk_msg(x, t0_ros + int(t_chunk * NS)))
                n_chunks += 1
            if n_frames / FPS <= now:
                image.header.stamp = rc.ns_to_stamp(t0_ros + int(n_frames / FPS * NS))
                cam.header.stamp = image.header.stamp
                pub_img.publish(image)
                pub_cam.publish(cam)
                n_frames += 1
            if n_js / 100.0 <= now:
                pub_js.publish(rc.joint_state_msg(['gripper_aperture'], [0.03],
                                                  t0_ros + int(n_js / 100.0 * NS)))
                n_js += 1
            if now >= next_path:
                pub_path.publish(fz.valid_planned_path())
                n_paths += 1
                next_path += path_period
            if now >= next_rss:
                for w, p in procs.items():
                    samples[w].append((now, rss_mb(p.pid)))
                next_rss += 5.0
                bar.update(int(now) - bar.n)
        bar.close()
        time.sleep(3.0)                                    # the last answers and diagnostics
        report['sent'] = {'audio_chunks': n_chunks, 'frames': n_frames, 'impacts': n_events,
                          'paths': n_paths, 'joint_states': n_js}
        report['answered'] = dict(got)
        det = status['detector']
        received = int(det.get('audio_chunks', 0))
        gaps = int(det.get('audio_ring.gaps', 0))
        report['audio_chunks_received'] = received
        report['audio_ring_gaps'] = gaps
        report['dropped_audio_chunks'] = n_chunks - received + gaps
        report['detector_counters'] = {k: det.get(k) for k in ('events', 'detections_published',
                                                               'dropped_events', 'dropped_frames')}
        report['detector_event_latency_ms'] = {k[len('event.'):]: float(v) for k, v in det.items()
                                               if k.startswith('event.')}
        report['predictor_counters'] = {k: status['predictor'].get(k)
                                        for k in ('paths', 'predictions', 'dropped_paths')}
        report['memory'] = {}
        for w, p in procs.items():
            s = np.array(samples[w])
            if len(s) == 0:
                continue
            first = s[(s[:, 0] >= 60) & (s[:, 0] < 120), 1] if duration >= 180 else s[:2, 1]
            last = s[s[:, 0] >= s[-1, 0] - 60, 1]
            base = float(np.mean(first)) if len(first) else float(s[0, 1])
            report['memory'][w] = {
                'rss_after_1_min_mb': round(base, 1),
                'rss_last_min_mb': round(float(np.mean(last)), 1),
                'growth_percent': round(100 * (float(np.mean(last)) - base) / base, 2),
                'peak_rss_mb': round(rss_mb(p.pid, 'VmHWM'), 1) if p.poll() is None else None}
        report['crashed'] = {w: p.poll() is not None for w, p in procs.items()}
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
        report['tracebacks_in_logs'] = sum((log_dir / f'{w}.log').read_text(errors='replace')
                                           .count('Traceback') for w in procs)
        ex.shutdown(timeout_sec=2)
        node.destroy_node()
        rclpy.shutdown(context=ctx)
    return report


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--minutes', type=float, default=10.0)
    ap.add_argument('--event-period', type=float, default=2.0, help='seconds between impacts')
    ap.add_argument('--path-period', type=float, default=2.0, help='seconds between paths')
    ap.add_argument('--domain', type=int, default=92)
    ap.add_argument('--json', type=Path)
    args = ap.parse_args(argv)
    log_dir = Path(tempfile.mkdtemp(prefix='soak_'))
    r = soak(args.minutes, args.event_period, args.path_period, args.domain, log_dir)
    print(json.dumps(r, indent=1))
    print(f'node logs: {log_dir}')
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(r, indent=1))
    ok = (not any(r.get('crashed', {True: True}).values()) and r.get('dropped_audio_chunks') == 0
          and all(m['growth_percent'] < 5 for m in r.get('memory', {}).values()))
    return 0 if ok else 1


if __name__ == '__main__':
    raise SystemExit(main())
