"""Fuzz the model nodes with randomized malformed messages over real DDS (not a test; the test
suite runs a short version, ``test/test_fuzz_nodes.py``).

Each node runs as its own process (``python -m hearing_hands_ros.nodes.<node>``, the shipped
model, CPU), so a crash of any kind, a segfault included, shows as the process ending. For every
input topic, ``--n`` malformed messages (encodings, sizes, steps, truncation, NaN/inf, broken or
changing AudioInfo, stamps backwards or far ahead, bad paths and gripper plans, CameraInfo and
JointState of the wrong shape) are published, one valid message of each topic every ``--valid-every``, in random
topic order, at about ``--rate`` messages per second. Afterwards valid input must still be
answered (a detection for a sound event, predicted audio for a path).

Reports per node: crashes (target 0), tracebacks in the node's log, whether it still answers
valid input (target yes), the input errors it counted (from ``/diagnostics``), and its peak RSS.

    .venv/bin/python bench/fuzz_nodes.py [--nodes detector predictor monitor] [--n 10000] [--json OUT]
"""
from __future__ import annotations

import argparse
import array
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')

NS = 1_000_000_000
SR, CHUNK = 16000, 512
ENCODINGS = ['rgb8', 'bgr8', 'rgba8', 'bgra8', 'mono8', 'mono16', '8UC3', '16UC1', '32FC1',
             'yuv422', 'bayer_rggb8', 'jpeg', '', 'RGB8', 'rgb16', '\u00e9\u00e9']
NODES = {
    'detector': ('hearing_hands_ros.nodes.sounding_object_detector',
                 ['image', 'camera_info', 'joint_states', 'gripper_pose', 'audio_stamped', 'audio_info']),
    'predictor': ('hearing_hands_ros.nodes.contact_sound_predictor',
                  ['planned_path', 'planned_gripper', 'image', 'camera_info', 'joint_states']),
    'monitor': ('hearing_hands_ros.nodes.contact_monitor',
                ['planned_path', 'planned_gripper', 'image', 'camera_info', 'joint_states',
                 'audio_stamped', 'audio_info']),
}


# --- malformed messages ------------------------------------------------------------------
class Fuzzer:
    """Random malformed (and valid) messages of every input topic; ``now_ns`` is ROS time."""

    def __init__(self, seed: int, now_ns):
        self.rng = np.random.default_rng(seed)
        self.now_ns = now_ns
        self._audio_t = None
        self._valid_times = None                     # pose stamps of the last valid path

    def _pick(self, options):
        return options[int(self.rng.integers(len(options)))]

    def stamp(self):
        """A stamp: mostly now, else zero, backwards, slightly or far ahead, odd nanoseconds."""
        from builtin_interfaces.msg import Time
        now = self.now_ns()
        kind = self._pick(['now'] * 4 + ['zero', 'back', 'ahead', 'far', 'max', 'nanos'])
        t = {'now': now, 'zero': 0, 'back': now - int(self.rng.integers(1, 3600)) * NS,
             'ahead': now + int(self.rng.integers(1, 9)) * NS,
             'far': now + int(self.rng.integers(11, 10 ** 6)) * NS,
             'max': (2 ** 31 - 1) * NS, 'nanos': now}[kind]
        nanosec = int(self.rng.integers(NS, 2 ** 32)) if kind == 'nanos' else t % NS
        return Time(sec=int(max(-2 ** 31, min(2 ** 31 - 1, t // NS))), nanosec=nanosec)

    def _bytes(self, n: int) -> array.array:
        return array.array('B', self.rng.integers(0, 256, int(n), dtype=np.uint8).tobytes())

    def image(self):
        from sensor_msgs.msg import Image
        enc = self._pick(ENCODINGS)
        h = int(self._pick([0, 1, 2, 3, 17, 64, 128, 240, 481, 4000, 65535]))
        w = int(self._pick([0, 1, 2, 5, 33, 128, 320, 641, 4000, 65535]))
        bpp = self._pick([1, 2, 3, 4, 6])
        step = int(self._pick([w * bpp, 0, w * bpp - 1, w * bpp + 7, 1, 2 ** 31]))
        full = min(h * max(step, 1), 300_000)
        n = int(self._pick([full, 0, full // 2, full + 13, 1, int(self.rng.integers(0, 4096))]))
        msg = Image(height=h, width=w, encoding=enc, is_bigendian=int(self.rng.integers(2)),
                    step=max(0, min(step, 2 ** 32 - 1)), data=self._bytes(min(n, 300_000)))
        msg.header.stamp = self.stamp()
        msg.header.frame_id = self._pick(['wrist_camera_optical', '', 'x' * 300])
        return msg

    def valid_image(self):
        from hearing_hands_ros import ros_convert as rc
        img = np.full((128, 128, 3), (150, 120, 90), np.uint8)
        img[30:70, 20:60] = (40, 80, 200)
        img[60:100, 70:110] = (200, 60, 60)
        return rc.image_msg(img, self.now_ns())

    def camera_info(self):
        from sensor_msgs.msg import CameraInfo
        vals = [float('nan'), float('inf'), -float('inf'), 0.0, -500.0, 1e300, 1e-300, 100.0]
        msg = CameraInfo(width=int(self._pick([0, 1, 128, 2 ** 32 - 1])),
                         height=int(self._pick([0, 1, 128, 2 ** 32 - 1])),
                         distortion_model=self._pick(['plumb_bob', '', 'nonsense']))
        msg.k = [float(self._pick(vals)) for _ in range(9)]
        msg.d = [float(self._pick(vals)) for _ in range(int(self.rng.integers(0, 20)))]
        msg.header.stamp = self.stamp()
        return msg

    def valid_camera_info(self):
        from sensor_msgs.msg import CameraInfo
        msg = CameraInfo(width=128, height=128, distortion_model='plumb_bob')
        msg.k = [91.4, 0.0, 64.0, 0.0, 91.4, 64.0, 0.0, 0.0, 1.0]
        msg.header.stamp = self.stamp()
        return msg

    def joint_states(self):
        from sensor_msgs.msg import JointState
        k = int(self._pick([0, 1, 2, 50]))
        names = [self._pick(['gripper_aperture', 'elbow', '', 'gripper_aperture ']) for _ in range(k)]
        vals = [float('nan'), float('inf'), -1.0, 0.0, 0.04, 1e9]
        pos = [float(self._pick(vals)) for _ in range(int(self._pick([0, max(0, k - 1), k, k + 3])))]
        msg = JointState(name=names, position=pos,
                         velocity=[float(self._pick(vals)) for _ in range(int(self.rng.integers(4)))])
        msg.header.stamp = self.stamp()
        return msg

    def valid_joint_states(self):
        from hearing_hands_ros import ros_convert as rc
        return rc.joint_state_msg(['gripper_aperture'], [0.03], self.now_ns())

    def gripper_pose(self):
        from geometry_msgs.msg import PoseStamped
        vals = [float('nan'), float('inf'), -float('inf'), 0.0, 1.0, -1e300, 1e300, 0.1]
        msg = PoseStamped()
        msg.header.stamp = self.stamp()
        msg.header.frame_id = self._pick(['world', '', 'map'])
        p, q = msg.pose.position, msg.pose.orientation
        p.x, p.y, p.z = (float(self._pick(vals)) for _ in range(3))
        q.x, q.y, q.z, q.w = (float(self._pick(vals)) for _ in range(4))
        return msg

    def valid_gripper_pose(self):
        from hearing_hands_ros import ros_convert as rc
        return rc.pose_msg([0.0, 0.0, 0.1], [0.0, 0.0, 0.0, 1.0], self.now_ns())

    def audio_info(self):
        from audio_common_msgs.msg import AudioInfo
        return AudioInfo(channels=int(self._pick([0, 1, 2, 7, 255])),
                         sample_rate=int(self._pick([0, 1, 8000, 16000, 44100, 48000, 2 ** 32 - 1])),
                         sample_format=self._pick(['S16LE', 'S16BE', 'F32LE', 'S24LE', 'U8', '', 'S8',
                                                   'garbage']),
                         bitrate=int(self._pick([0, 128, 2 ** 32 - 1])),
                         coding_format=self._pick(['wave', 'mp3', 'flac', '', 'WAVE']))

    def valid_audio_info(self):
        from hearing_hands_ros import ros_convert as rc
        return rc.audio_info_msg(SR)

    def audio_stamped(self):
        from audio_common_msgs.msg import AudioDataStamped
        n = int(self._pick([0, 1, 3, 511, 1024, 1025, 4096, 200_000]))
        msg = AudioDataStamped()
        kind = self._pick(['random', 'nan'])
        if kind == 'nan':                      # NaN / inf as float32 (an F32LE stream)
            x = self.rng.choice(np.array([np.nan, np.inf, -np.inf, 1e38], np.float32), n // 4 + 1)
            msg.audio.data = array.array('B', x.tobytes()[:n])
        else:
            msg.audio.data = self._bytes(n)
        msg.header.stamp = self.stamp()
        return msg

    def valid_audio_stamped(self, impact: bool = False):
        from hearing_hands_ros import ros_convert as rc
        x = self.rng.normal(0, 1e-3, CHUNK).astype(np.float32)
        if impact:
            t = np.arange(CHUNK - 100) / SR
            x[100:] += (0.5 * np.exp(-t / 0.02) * np.sin(2 * np.pi * 1800 * t)).astype(np.float32)
        t0 = self.now_ns()
        if self._audio_t is not None and t0 < self._audio_t + CHUNK * NS // SR:
            t0 = self._audio_t + CHUNK * NS // SR
        self._audio_t = t0
        return rc.audio_chunk_msg(x, t0)

    def planned_path(self):
        from nav_msgs.msg import Path
        from geometry_msgs.msg import PoseStamped
        n = int(self._pick([0, 1, 2, 25, 400, 5000]))
        now = self.now_ns()
        kind = self._pick(['nan', 'inf', 'unsorted', 'dup', 'zero', 'long', 'frame', 'quat',
                           'far', 'ok'])
        t = now + np.cumsum(self.rng.uniform(0.001, 0.1, n) * NS).astype(np.int64)
        if kind == 'unsorted':
            self.rng.shuffle(t)
        if kind == 'dup' and n > 1:
            t[1] = t[0]
        if kind == 'zero':
            t[:] = 0
        if kind == 'long' and n:
            t[-1] = now + 10 ** 6 * NS
        if kind == 'far':
            t = t + 10 ** 7 * NS
        pos = self.rng.uniform(-0.5, 0.5, (n, 3))
        quat = np.tile([1.0, 0.0, 0.0, 0.0], (n, 1))
        if kind == 'nan' and n:
            pos[int(self.rng.integers(n)), 2] = np.nan
        if kind == 'inf' and n:
            quat[int(self.rng.integers(n)), 3] = np.inf
        if kind == 'quat':
            quat[:] = 0.0
        msg = Path()
        msg.header.frame_id = 'map' if kind == 'frame' else self._pick(['world', ''])
        msg.header.stamp = self.stamp()
        for ti, p, q in zip(t, pos, quat):
            ps = PoseStamped()
            ps.header.stamp.sec, ps.header.stamp.nanosec = int(ti // NS), int(ti % NS)
            ps.header.frame_id = self._pick(['world', '', 'map'])
            ps.pose.position.x, ps.pose.position.y, ps.pose.position.z = (float(v) for v in p)
            (ps.pose.orientation.x, ps.pose.orientation.y, ps.pose.orientation.z,
             ps.pose.orientation.w) = (float(v) for v in q)
            msg.poses.append(ps)
        return msg

    def planned_gripper(self):
        from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint
        n = int(self._pick([0, 1, 3, 50, 5000]))
        kind = self._pick(['nan', 'inf', 'unsorted', 'no_joint', 'empty_point', 'names', 'ok'])
        msg = JointTrajectory()
        msg.header.stamp = self.stamp()
        msg.joint_names = {'no_joint': [], 'names': ['a', 'b', 'gripper_aperture']}.get(
            kind, ['gripper_aperture'])
        for k in range(n):
            a = float(self.rng.uniform(-1.0, 1.0))
            if kind == 'nan' and k == n // 2:
                a = float('nan')
            if kind == 'inf' and k == n // 2:
                a = float('inf')
            pt = JointTrajectoryPoint(positions=[] if kind == 'empty_point' else [a] * len(msg.joint_names or [0]))
            d = int(self.rng.integers(0, 10 * NS)) if kind == 'unsorted' else k * NS // 50
            pt.time_from_start.sec, pt.time_from_start.nanosec = d // NS, d % NS
            msg.points.append(pt)
        return msg

    def valid_planned_path(self):
        from hearing_hands_ros import ros_convert as rc
        n, dur = 25, 1.2
        t = np.linspace(0.0, dur, n)
        pos = np.stack([np.zeros(n), np.zeros(n), 0.15 - 0.1 * np.sin(np.pi * t / dur)], 1)
        quat = np.tile([1.0, 0.0, 0.0, 0.0], (n, 1))
        start = self.now_ns() + NS
        self._valid_times = start + (t * NS).astype(np.int64)
        return rc.path_msg(self._valid_times, pos, quat, frame_id='world')

    def valid_planned_gripper(self):
        """The gripper's plan along the last valid path (closing at its low point)."""
        from hearing_hands_ros import ros_convert as rc
        if self._valid_times is None:
            self.valid_planned_path()
        times = self._valid_times
        openings = np.interp(np.linspace(0.0, 1.0, len(times)), [0.0, 0.4, 0.6, 1.0], [0.06, 0.06, 0.0, 0.0])
        return rc.gripper_plan_msg(times, openings, int(times[0]))


# --- one node under fuzz ---------------------------------------------------------------------
def _types():
    from audio_common_msgs.msg import AudioDataStamped, AudioInfo
    from geometry_msgs.msg import PoseStamped
    from nav_msgs.msg import Path
    from sensor_msgs.msg import CameraInfo, Image, JointState
    from trajectory_msgs.msg import JointTrajectory
    return {'image': Image, 'camera_info': CameraInfo, 'joint_states': JointState,
            'gripper_pose': PoseStamped, 'audio_stamped': AudioDataStamped, 'audio_info': AudioInfo,
            'planned_path': Path, 'planned_gripper': JointTrajectory}


def _qos(topic):
    from hearing_hands_ros.nodes.common import AUDIO_QOS, LATCHED_QOS, RELIABLE_QOS, SENSOR_QOS
    return {'audio_stamped': AUDIO_QOS, 'audio_info': LATCHED_QOS,
            'planned_path': RELIABLE_QOS, 'planned_gripper': RELIABLE_QOS}.get(topic, SENSOR_QOS)


def peak_rss_mb(pid: int) -> float:
    """VmHWM of a running process [MB]."""
    for line in Path(f'/proc/{pid}/status').read_text().splitlines():
        if line.startswith('VmHWM:'):
            return int(line.split()[1]) / 1024
    return float('nan')


def fuzz_node(which: str, n: int, seed: int = 0, valid_every: int = 10, rate: float = 1000.0,
              domain_id: int = 88, log_dir: Path | None = None, progress: bool = True) -> dict:
    """Run one node as a process, fuzz each of its input topics with ``n`` messages, then check
    that it still answers valid input. Returns the report (see the module docstring)."""
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.executors import SingleThreadedExecutor

    module, topics = NODES[which]
    log_dir = Path(log_dir or tempfile.mkdtemp(prefix='fuzz_'))
    log_path = log_dir / f'{which}.log'
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain_id), ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST',
               PYTHONUNBUFFERED='1')
    with open(log_path, 'w') as log:
        proc = subprocess.Popen([sys.executable, '-m', module, '--ros-args', '-p', 'backend:=cpu',
                                 '-p', 'threads:=1'], stdout=log, stderr=subprocess.STDOUT, env=env)
    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=domain_id)
    node = rclpy.create_node('fuzzer', context=ctx)
    types = _types()
    pubs = {t: node.create_publisher(types[t], t, _qos(t)) for t in topics}
    status: dict = {}
    answers: list = []

    def on_diag(msg):
        for s in msg.status:
            if s.hardware_id and s.name.split(':')[0] in ('sounding_object_detector',
                                                          'contact_sound_predictor',
                                                          'contact_monitor'):
                status.update({kv.key: kv.value for kv in s.values}, _level=s.level)

    node.create_subscription(DiagnosticArray, '/diagnostics', on_diag, 10)
    if which == 'detector':
        from vision_msgs.msg import Detection2DArray
        node.create_subscription(Detection2DArray, 'sounding_objects', answers.append, 10)
    elif which == 'monitor':
        from hearing_hands_msgs.msg import ExecutionStatus
        node.create_subscription(ExecutionStatus, 'execution_status', answers.append, 10)
    else:
        from audio_common_msgs.msg import AudioDataStamped
        node.create_subscription(AudioDataStamped, 'predicted_audio', answers.append, 10)
    ex = SingleThreadedExecutor(context=ctx)
    ex.add_node(node)
    threading.Thread(target=ex.spin, daemon=True).start()
    fz = Fuzzer(seed, lambda: node.get_clock().now().nanoseconds)
    report = {'node': which, 'topics': topics, 'malformed_per_topic': n, 'sent': {}, 'valid_sent': {}}
    try:
        end = time.monotonic() + 60
        while time.monotonic() < end and status.get('lifecycle') != 'active':
            if proc.poll() is not None:
                break
            time.sleep(0.1)
        if status.get('lifecycle') != 'active':
            raise RuntimeError(f'{which} did not become active (see {log_path})')
        for t in topics:
            end = time.monotonic() + 10
            while pubs[t].get_subscription_count() == 0 and time.monotonic() < end:
                time.sleep(0.05)
        order = np.repeat(np.arange(len(topics)), n)
        fz.rng.shuffle(order)
        sent = dict.fromkeys(topics, 0)
        valid = dict.fromkeys(topics, 0)
        t_start = time.monotonic()
        bar = None
        if progress:
            from tqdm import tqdm
            bar = tqdm(total=len(order), desc=f'fuzz {which}', unit='msg')
        for k, ti in enumerate(order):
            t = topics[ti]
            pubs[t].publish(getattr(fz, t)())
            sent[t] += 1
            if sent[t] % valid_every == 0:
                pubs[t].publish(getattr(fz, 'valid_' + t)())
                valid[t] += 1
            if bar is not None and k % 100 == 0:
                bar.update(100)
            delay = t_start + (k + 1) / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if k % 500 == 0 and proc.poll() is not None:
                break
        if bar is not None:
            bar.close()
        report['sent'], report['valid_sent'] = sent, valid
        report['fuzz_seconds'] = round(time.monotonic() - t_start, 1)
        report['still_answers'] = proc.poll() is None and _answers_valid(which, fz, pubs, answers)
    finally:
        report['crashed'] = proc.poll() is not None
        report['exit_code'] = proc.returncode
        report['peak_rss_mb'] = round(peak_rss_mb(proc.pid), 1) if proc.poll() is None else None
        time.sleep(1.2)                                   # one more diagnostics period
        errors = {k[len('input_errors.'):]: int(v) for k, v in status.items()
                  if k.startswith('input_errors.')}
        report['input_errors_counted'] = dict(sorted(errors.items()))
        report['input_errors_total'] = sum(errors.values())
        counters = ('audio_chunks', 'events', 'dropped_events', 'dropped_frames', 'paths',
                    'predictions', 'dropped_paths', 'paths_judged', 'anomalies')
        report['node_counters'] = {k: status[k] for k in counters if k in status}
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        text = log_path.read_text(errors='replace')
        report['tracebacks_in_log'] = text.count('Traceback')
        report['log'] = str(log_path)
        ex.shutdown(timeout_sec=2)
        node.destroy_node()
        rclpy.shutdown(context=ctx)
    return report


def _answers_valid(which: str, fz: Fuzzer, pubs: dict, answers: list, timeout: float = 40.0) -> bool:
    """Valid input until the node answers it (stamps accepted just ahead of the clock during
    the fuzz make the first valid seconds look like going backwards: it keeps trying)."""
    n0 = len(answers)
    end = time.monotonic() + timeout
    if which == 'detector':
        pubs['camera_info'].publish(fz.valid_camera_info())
        while time.monotonic() < end and len(answers) == n0:
            pubs['audio_info'].publish(fz.valid_audio_info())
            for c in range(32):                            # one second: camera 30 Hz, audio
                pubs['image'].publish(fz.valid_image())
                pubs['audio_stamped'].publish(fz.valid_audio_stamped(impact=c == 16))
                time.sleep(CHUNK / SR)
            time.sleep(0.3)
    elif which == 'monitor':                                # a path, and audio until it is judged
        while time.monotonic() < end and len(answers) == n0:
            pubs['audio_info'].publish(fz.valid_audio_info())
            pubs['image'].publish(fz.valid_image())
            path = fz.valid_planned_path()
            pubs['planned_gripper'].publish(fz.valid_planned_gripper())
            pubs['planned_path'].publish(path)
            for _ in range(100):                           # 3.2 s of audio in real time
                pubs['audio_stamped'].publish(fz.valid_audio_stamped())
                time.sleep(CHUNK / SR)
                if len(answers) > n0:
                    break
    else:
        while time.monotonic() < end and len(answers) == n0:
            pubs['image'].publish(fz.valid_image())
            time.sleep(0.1)
            path = fz.valid_planned_path()
            pubs['planned_gripper'].publish(fz.valid_planned_gripper())
            pubs['planned_path'].publish(path)
            t = time.monotonic() + 3.0
            while time.monotonic() < t and len(answers) == n0:
                time.sleep(0.05)
    return len(answers) > n0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--nodes', nargs='+', default=list(NODES), choices=list(NODES))
    ap.add_argument('--n', type=int, default=10000, help='malformed messages per input topic')
    ap.add_argument('--valid-every', type=int, default=10)
    ap.add_argument('--rate', type=float, default=1000.0, help='messages per second')
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--domain', type=int, default=88)
    ap.add_argument('--json', type=Path)
    args = ap.parse_args(argv)
    reports = [fuzz_node(w, args.n, args.seed, args.valid_every, args.rate, args.domain + i)
               for i, w in enumerate(args.nodes)]
    print(f'{"node":10s} {"msgs":>8s} {"crashed":>8s} {"tracebacks":>10s} {"answers":>8s} '
          f'{"errors seen":>11s} {"peak RSS":>9s}')
    for r in reports:
        print(f'{r["node"]:10s} {sum(r["sent"].values()):8d} {str(r["crashed"]):>8s} '
              f'{r["tracebacks_in_log"]:10d} {str(r.get("still_answers")):>8s} '
              f'{r["input_errors_total"]:11d} {r["peak_rss_mb"] or float("nan"):7.0f} MB')
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(reports, indent=1))
    ok = all(not r['crashed'] and r['tracebacks_in_log'] == 0 and r.get('still_answers')
             for r in reports)
    return 0 if ok else 1


if __name__ == '__main__':
    raise SystemExit(main())
