"""The live tour of ``hearing-hands demo``: the models on the sound world, with pictures.

``demo_live`` runs the ``sim_robot`` and ``sounding_object_detector`` nodes on loopback DDS and
draws what the detector found against the ground truth; ``demo_side_by_side`` predicts the sound of
recorded planned paths and writes predicted vs recorded spectrograms and WAVs; ``demo_monitor``
runs ``sim_robot`` and ``contact_monitor`` on a normal and a faulty action and draws the timeline.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from hearing_hands_ros.eval.predictor_figures import spectrogram_figure


#: A node's input names remapped onto the topics sim_robot publishes.
SIM_REMAPS = ['--ros-args', '-r', 'image:=wrist_camera/image_raw',
              '-r', 'camera_info:=wrist_camera/camera_info',
              '-r', 'joint_states:=gripper/joint_states', '-r', 'gripper_pose:=gripper/pose',
              '-r', 'audio_stamped:=audio/audio_stamped', '-r', 'audio_info:=audio/audio_info']


def _play(ctx, sim, nodes, settle_s: float) -> None:
    """Spin ``sim`` and ``nodes`` until sim's episodes are over and ``settle_s`` more; then
    close and destroy them all and shut ``ctx`` down. One single-threaded executor per node:
    rclpy's MultiThreadedExecutor spends most of its time re-scanning its futures when three busy
    nodes share it (measured with py-spy)."""
    import threading
    import time

    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    executors = [SingleThreadedExecutor(context=ctx) for _ in range(len(nodes) + 1)]
    for ex, n in zip(executors, (sim, *nodes)):
        ex.add_node(n)
        threading.Thread(target=ex.spin, daemon=True).start()
    try:
        while not sim.done_future.done():
            time.sleep(0.1)
        time.sleep(settle_s)
    finally:
        for ex in executors:
            ex.shutdown(timeout_sec=2)
        for n in (*nodes, sim):
            if hasattr(n, 'close'):
                n.close()
        for n in (sim, *nodes):
            n.destroy_node()
        rclpy.shutdown(context=ctx)


# --- the detector, live on sim_robot ------------------------------------------------------------
def demo_live(out_dir: Path, model: Path, seed: int = 0, n_actions: int = 4,
              scenarios: tuple[str, ...] = ('ambiguous', 'mixed'), speed: float = 2.0,
              domain_id: int = 42) -> list[Path]:
    """Run ``sim_robot`` and ``sounding_object_detector`` (with ``model``) as real nodes on loopback
    DDS in this process, one short episode per scenario (default: an ambiguous one, then a mixed
    one); write ``detections.png`` (each detection: the frame at the onset, the top candidate's
    box and score, the truly struck object outlined in yellow) and ``detections.md``. The ground
    truth comes from replaying the same seed offline (the simulator is deterministic); it is used
    for the overlay and the hit/miss column only."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tiles, rows, summary = [], [], []
    for scenario in scenarios:
        t, r, n_det, n_contacts = _demo_episode(model, scenario, seed, n_actions, speed, domain_id)
        offline = _offline_hits(model, scenario, seed, n_actions, out_dir / 'episodes')
        tiles += t
        rows += [(scenario,) + row[:5] for row in r]
        scored = [row for row in r if row[4] in ('hit', 'miss')]
        summary.append(
            f'{scenario}: {n_det} detection arrays from {n_contacts} ground-truth object contacts '
            f'({len(r) - len(scored)} of the arrays shown answer an onset with no contact within '
            f'30 ms); live, the top detection is the struck object in {sum(row[4] == "hit" for row in scored)} of '
            f'{len(scored)} by the box rule and {sum(row[5] for row in scored)} of {len(scored)} '
            f'by the label rule; offline (`evaluate detector` on the same episode): '
            f'{offline["box"]} and {offline["label"]} of {offline["events"]}')
    written = []
    if tiles:
        per_row = 4
        tiles += [np.zeros_like(tiles[0])] * (-len(tiles) % per_row)
        grid = np.concatenate([np.concatenate(tiles[i:i + per_row], axis=1)
                               for i in range(0, len(tiles), per_row)], axis=0)
        png = out_dir / 'detections.png'
        cv2.imwrite(str(png), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
        written.append(png)
    md = out_dir / 'detections.md'
    md.write_text(
        f'# Sounding-object detector, live on sim_robot (seed {seed})\n\n'
        + ''.join(f'- {line}.\n' for line in summary) +
        '\nBox: top detection (green hit, red miss); yellow outline: the struck object (ground '
        'truth, replayed offline). Box rule: the top box overlaps the struck object\'s box with '
        'IoU >= 0.5; label rule: the object covering most of the top region (the box live, the '
        'mask offline, table left out) is the struck one, as `evaluate detector` counts.\n\n'
        '![detections](detections.png)\n\n'
        '| scenario | t [s] | struck material | kind | top score | result |\n|---|---|---|---|---|---|\n'
        + ''.join(f'| {sc} | {t:.2f} | {m} | {k} | {s:.2f} | {r} |\n' for sc, t, m, k, s, r in rows))
    written.append(md)
    return written


def _demo_episode(model: Path, scenario: str, seed: int, n_actions: int, speed: float,
                  domain_id: int):
    """One live episode: returns (tiles, rows, detection arrays, ground-truth contacts)."""
    import os

    import rclpy
    from rclpy.parameter import Parameter
    from sensor_msgs.msg import Image
    from vision_msgs.msg import Detection2DArray

    from hearing_hands_ros import ros_convert as rc
    from hearing_hands_ros.images import image_to_rgb
    from hearing_hands_ros.nodes.common import SENSOR_QOS
    from hearing_hands_ros.nodes.sim_robot import SimRobot
    from hearing_hands_ros.nodes.sounding_object_detector import SoundingObjectDetector as DetectorNode
    from hearing_hands_ros.sim.world import SimConfig, SoundWorld

    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    domain = int(os.environ.get('ROS_DOMAIN_ID', domain_id))
    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=domain)
    params = dict(scenario=scenario, seed=int(seed), episodes=1, n_actions=int(n_actions),
                  speed=float(speed), start_delay=1.0, exit_when_done=True)
    sim = SimRobot(context=ctx, parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])
    det = DetectorNode(context=ctx, parameter_overrides=[Parameter('model_path', value=str(model))],
                       cli_args=SIM_REMAPS)
    tap = rclpy.create_node('demo_collector', context=ctx)
    detections, frames = [], {}
    tap.create_subscription(Detection2DArray, 'sounding_objects', detections.append, 50)
    tap.create_subscription(Image, 'wrist_camera/image_raw',
                            lambda m: frames.__setitem__(rc.stamp_to_ns(m.header.stamp), m), SENSOR_QOS)
    _play(ctx, sim, (det, tap), settle_s=1.5)     # the last events' audio windows and inference

    # Ground truth: the same episode replayed offline (labels per frame, contacts).
    world = SoundWorld(SimConfig(scenario=scenario, seed=int(seed), n_actions=int(n_actions)))
    labels = {round(ev.t, 4): ev.labels for ev in world.run() if ev.kind == 'image'}
    label_t = np.array(sorted(labels))
    start_ns = sim.episode_start_ns
    contacts = [c for c in world.truth['contacts'] if c['objects'][0] > 0]
    tiles, rows = [], []
    for msg in detections[:12]:
        t_ns = rc.stamp_to_ns(msg.header.stamp)
        t = (t_ns - start_ns) / 1e9
        near = min(contacts, key=lambda c: abs(c['time'] - t), default=None)
        if near is None or abs(near['time'] - t) > 0.03 or not frames:
            rows.append((t, '-', '-', msg.detections[0].results[0].hypothesis.score
                         if msg.detections else 0.0, 'no ground-truth contact within 30 ms'))
            continue
        k = min(frames, key=lambda s: abs(s - t_ns))
        img = image_to_rgb(frames[k]).copy()
        lab = labels[label_t[np.argmin(np.abs(label_t - (k - start_ns) / 1e9))]]
        truth = (lab == near['objects'][0]).astype(np.uint8)
        hit = False
        if msg.detections:
            top = msg.detections[0]
            cx, cy = top.bbox.center.position.x, top.bbox.center.position.y
            w, h = top.bbox.size_x, top.bbox.size_y
            x0, y0, x1, y1 = (int(round(v)) for v in (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2))
            box = np.zeros_like(truth)
            box[max(y0, 0):max(y1, 0), max(x0, 0):max(x1, 0)] = 1
            hit = _box_iou(box, truth) >= 0.5              # IoU with the struck object's box
            colour = (0, 220, 0) if hit else (230, 40, 40)
            cv2.rectangle(img, (x0, y0), (x1 - 1, y1 - 1), colour, 1)
        img = cv2.resize(img, None, fx=3, fy=3, interpolation=cv2.INTER_NEAREST)
        cnt, _ = cv2.findContours(cv2.resize(truth, img.shape[1::-1], interpolation=cv2.INTER_NEAREST),
                                  cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(img, cnt, -1, (255, 255, 0), 1)
        score = msg.detections[0].results[0].hypothesis.score if msg.detections else 0.0
        cv2.putText(img, f't={t:.2f}s {near["materials"][0]} p={score:.2f}', (3, 12),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1)
        tiles.append(img)
        on_box = lab[max(y0, 0):max(y1, 0), max(x0, 0):max(x1, 0)] if msg.detections else lab[:0]
        owners = on_box[(on_box > 0)]
        by_label = bool(len(owners)) and int(np.bincount(owners).argmax()) == near['objects'][0]
        rows.append((t, near['materials'][0], near['kind'], score, 'hit' if hit else 'miss', by_label))
    return tiles, rows, len(detections), len(contacts)


def _offline_hits(model: Path, scenario: str, seed: int, n_actions: int, out: Path) -> dict:
    """The same episode recorded to a bag and scored by ``evaluate detector`` (with the object
    sound memory, as the node runs): its events and how many it gets right by the label rule and
    by the box rule."""
    from hearing_hands_ros import runtime
    from hearing_hands_ros.data.bags import write_episode
    from hearing_hands_ros.data.detector_dataset import build_dataset
    from hearing_hands_ros.eval.detector import evaluate
    from hearing_hands_ros.models.detector import DetectorConfig
    from hearing_hands_ros.models.look_match import ContactRule, load_look_match
    from hearing_hands_ros.models.sound_memory import MemoryConfig
    from hearing_hands_ros.sim.world import SimConfig, SoundWorld
    bag = write_episode(SoundWorld(SimConfig(scenario=scenario, seed=int(seed), n_actions=int(n_actions))),
                        out, f'live_{scenario}', overwrite=True)
    b = runtime.load_bundle(model, 'detector')
    look, weight = load_look_match(b)
    data = build_dataset([bag], DetectorConfig.from_dict(b.meta['config']), progress=False)
    if not len(data.get('image', [])):
        return {'events': 0, 'label': 0, 'box': 0}
    rule = ContactRule.from_meta(b.meta['look_match']) if look is not None else None
    metrics, extra = evaluate(data, {'model': b}, look=look, look_weight=weight, contact=rule,
                              memory_cfg=MemoryConfig())
    name = 'model_memory' if 'model_memory' in extra['cands'] else 'model'
    sel, box = extra['sel'], 0
    for c, lab, t in zip(extra['cands'][name], sel['labels'], sel['target']):
        if c:
            box += int(_box_iou(c[0]['mask'], lab == t) >= 0.5)
    return {'events': len(sel['target']), 'label': int(metrics[name]['correct'].sum()), 'box': box}


def _box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of the bounding boxes of two masks."""
    def box(m):
        ys, xs = np.nonzero(m)
        return (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) if len(xs) else (0, 0, 0, 0)
    (a0, a1, a2, a3), (b0, b1, b2, b3) = box(a), box(b)
    inter = max(0, min(a2, b2) - max(a0, b0)) * max(0, min(a3, b3) - max(a1, b1))
    union = (a2 - a0) * (a3 - a1) + (b2 - b0) * (b3 - b1) - inter
    return inter / union if union > 0 else 0.0


# --- the predictor, before each planned path -------------------------------------------------
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


# --- the monitor, live on sim_robot ----------------------------------------------------------
#: The demo's actions: a hit on object 1, then the same hit after object 1 was taken away.
MONITOR_SCRIPT = 'hit 1, hit 1 removed'


def demo_monitor(out_dir: Path, seed: int = 0, script: str = MONITOR_SCRIPT, speed: float = 2.0,
                 domain_id: int = 43, params: dict | None = None) -> tuple[list[Path], dict]:
    """Run ``sim_robot`` (a scripted episode: a normal action, then a faulty one) and
    ``contact_monitor`` as real nodes on loopback DDS in this process; write ``monitor.png``
    (the timeline: expected windows, the microphone, the anomalies, the fault) and ``monitor.md``
    (one row per path: its action, status and anomalies). Returns (files, what was received:
    ``status`` and ``anomalies`` messages, ``truth``)."""
    import os

    import rclpy
    from audio_common_msgs.msg import AudioDataStamped
    from hearing_hands_msgs.msg import ContactAnomalyArray, ExecutionStatus
    from rclpy.parameter import Parameter

    from hearing_hands_ros import audio as A
    from hearing_hands_ros import ros_convert as rc
    from hearing_hands_ros.eval.monitor_figures import monitor_timeline
    from hearing_hands_ros.nodes.common import AUDIO_QOS
    from hearing_hands_ros.nodes.contact_monitor import ContactMonitor
    from hearing_hands_ros.nodes.sim_robot import SimRobot
    from hearing_hands_ros.sim.world import SimConfig, SoundWorld

    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=int(os.environ.get('ROS_DOMAIN_ID', domain_id)))
    sim_params = dict(scenario='mixed', seed=int(seed), episodes=1, script=script,
                      speed=float(speed), start_delay=1.5, exit_when_done=True)
    sim = SimRobot(context=ctx, parameter_overrides=[Parameter(k, value=v) for k, v in sim_params.items()])
    mon = ContactMonitor(context=ctx, parameter_overrides=[Parameter(k, value=v) for k, v in
                                                           {'backend': 'cpu', **(params or {})}.items()],
                         cli_args=SIM_REMAPS)
    tap = rclpy.create_node('demo_monitor_collector', context=ctx)
    got = {'status': [], 'anomalies': [], 'audio': []}
    tap.create_subscription(ExecutionStatus, 'execution_status', got['status'].append, 50)
    tap.create_subscription(ContactAnomalyArray, 'contact_anomalies', got['anomalies'].append, 50)
    tap.create_subscription(AudioDataStamped, 'audio/audio_stamped', got['audio'].append, AUDIO_QOS)
    _play(ctx, sim, (mon, tap), settle_s=1.0)     # the last path's tail is judged

    # the ground truth of the same episode, replayed offline (the simulator is deterministic)
    from hearing_hands_ros.nodes.sim_robot import parse_script
    world = SoundWorld(SimConfig(scenario='mixed', seed=int(seed)), script=parse_script(script))
    for _ in world.run():
        pass
    truth, start_ns = world.truth, sim.episode_start_ns
    fmt = A.AudioFormat(1, 16000, 'S16LE', 'wave')
    chunks = sorted((rc.audio_from_msg(m, fmt) for m in got['audio']), key=lambda c: c[0])
    x0, x = A.assemble_chunks(chunks, 16000)[:2] if chunks else (start_ns, np.zeros(0, np.float32))
    paths, anomalies, rows, heard = [], [], [], []
    starts = [rc.stamp_to_ns(st.header.stamp) for st in got['status']] + [start_ns + int(truth['duration'] * 1e9)]
    for st, s, nxt in zip(got['status'], starts, starts[1:]):
        action = ([a for a in truth['actions'] if a['start'] - 1e-3 <= (s - start_ns) / 1e9] or [None])[-1]
        label = '-' if action is None else f'action {action["index"]}: {action["type"]}' + (
            f' ({action["fault"]})' if action.get('fault') else '')
        paths.append((s, nxt, label, [rc.contact_event_from_msg(e) for e in st.expected]))
        found = [rc.contact_anomaly_from_msg(a) for a in st.anomalies]
        anomalies += [(s, a) for a in found]
        heard += [s + int(t * 1e9) for t in st.heard_times_from_start]
        rows.append((round((s - start_ns) / 1e9, 2), label, 'AS_EXPECTED' if st.status == st.AS_EXPECTED
                     else 'ANOMALOUS', ', '.join(f'{a.kind} ({a.confidence:.2f})' for a in found) or '-'))
    faults = [(start_ns + int(f['effect_time'] * 1e9) if f.get('effect_time') is not None
               else start_ns + int(f['time'] * 1e9), f'{f["kind"]} (action {f["action"]})')
              for f in truth.get('faults', [])]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    png = monitor_timeline(x, 16000, x0, paths, anomalies, out_dir / 'monitor.png', faults=faults, heard=heard,
                           title=f'contact_monitor live on sim_robot: {script} (seed {seed})')
    md = out_dir / 'monitor.md'
    md.write_text(f'# Execution monitor, live on sim_robot (seed {seed}, script `{script}`)\n\n'
                  '![timeline](monitor.png)\n\n| path start [s] | action | status | anomalies |\n'
                  '|---|---|---|---|\n' + ''.join(f'| {t} | {a} | {s} | {an} |\n' for t, a, s, an in rows))
    return [png, md], dict(status=got['status'], anomalies=got['anomalies'], truth=truth,
                           start_ns=start_ns, rows=rows)
