"""rosbag2 (MCAP) episodes: write the simulator's event stream, read any bag back into numpy.

Uses ``rosbags`` only (no rclpy). Layout written by :func:`write_episode` (docs/contract.md)::

    out_dir/<name>/               rosbag2 folder: metadata.yaml + <name>.mcap
    out_dir/<name>.truth.json     ground truth
    out_dir/<name>.masks.npz      labels uint8 (T,H,W), stamps_ns int64 (T,),
                                  camera_positions (T,3), camera_orientations (T,4) xyzw in world
"""
from __future__ import annotations

import json
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime
from rosbags.rosbag2 import Reader, StoragePlugin, Writer

from .. import audio as A
from .. import images as I
from .. import trajectory as tr
from ..errors import MissingInputError
from .typestore import register_bag_types, typestore

NS = 1_000_000_000
DEFAULT_START_NS = 1_767_225_600 * NS


@dataclass
class TopicNames:
    """Topic names of an episode (contract defaults; all overridable)."""

    image: str = '/wrist_camera/image_raw'
    camera_info: str = '/wrist_camera/camera_info'
    audio: str = '/audio/audio_stamped'
    audio_info: str = '/audio/audio_info'
    pose: str = '/gripper/pose'
    joint_states: str = '/gripper/joint_states'
    path: str = '/planned_path'
    gripper_plan: str = '/planned_gripper'


@dataclass
class FrameIds:
    world: str = 'world'
    camera: str = 'wrist_camera_optical'
    mic: str = 'wrist_mic'


def _qos(reliable: bool, transient: bool = False, depth: int = 10) -> Qos:
    zero = QosTime(0, 0)   # 0 = rmw default (infinite)
    return Qos(QosHistory.KEEP_LAST, depth,
               QosReliability.RELIABLE if reliable else QosReliability.BEST_EFFORT,
               QosDurability.TRANSIENT_LOCAL if transient else QosDurability.VOLATILE,
               zero, zero, QosLiveliness.AUTOMATIC, zero, False)


QOS_SENSOR = _qos(reliable=False, depth=5)
QOS_DEFAULT = _qos(reliable=True)
QOS_LATCHED = _qos(reliable=True, transient=True, depth=1)
QOS_AUDIO = _qos(reliable=True, depth=100)      # like ros-drivers audio_capture


def _stamp_ns(stamp) -> int:
    return int(stamp.sec) * NS + int(stamp.nanosec)


def _jsonable(o: Any):
    if isinstance(o, dict):
        return {str(k): _jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_jsonable(v) for v in o]
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, np.generic):
        return o.item()
    return o


def _param(world, name: str, default):
    for src in (getattr(world, 'config', None), getattr(world, 'cfg', None), world):
        if src is not None and getattr(src, name, None) is not None:
            return getattr(src, name)
    return default


class _Msgs:
    """Builders of rosbags message objects."""

    def __init__(self, ts):
        self.t = ts.types

    def header(self, t_ns: int, frame_id: str):
        T = self.t
        return T['std_msgs/msg/Header'](
            stamp=T['builtin_interfaces/msg/Time'](sec=t_ns // NS, nanosec=t_ns % NS), frame_id=frame_id)

    def pose(self, p, q):
        T = self.t
        return T['geometry_msgs/msg/Pose'](
            position=T['geometry_msgs/msg/Point'](x=float(p[0]), y=float(p[1]), z=float(p[2])),
            orientation=T['geometry_msgs/msg/Quaternion'](x=float(q[0]), y=float(q[1]),
                                                          z=float(q[2]), w=float(q[3])))

    def pose_stamped(self, t_ns, frame_id, p, q):
        return self.t['geometry_msgs/msg/PoseStamped'](header=self.header(t_ns, frame_id), pose=self.pose(p, q))

    def image(self, t_ns, frame_id, rgb):
        f = I.rgb_to_image_msg_fields(rgb)
        f['data'] = np.frombuffer(f['data'], np.uint8)
        return self.t['sensor_msgs/msg/Image'](header=self.header(t_ns, frame_id), **f)

    def camera_info(self, t_ns, info: dict):
        K = np.asarray(info['K'], np.float64).reshape(9)
        P = np.zeros((3, 4))
        P[:, :3] = K.reshape(3, 3)
        T = self.t
        return T['sensor_msgs/msg/CameraInfo'](
            header=self.header(t_ns, info.get('frame_id', 'wrist_camera_optical')),
            height=int(info['height']), width=int(info['width']),
            distortion_model=info.get('distortion_model', 'plumb_bob'),
            d=np.asarray(info.get('D', [0.0] * 5), np.float64), k=K,
            r=np.eye(3).reshape(9), p=P.reshape(12), binning_x=0, binning_y=0,
            roi=T['sensor_msgs/msg/RegionOfInterest'](x_offset=0, y_offset=0, height=0, width=0,
                                                      do_rectify=False))

    def audio(self, t_ns, frame_id, samples):
        data = np.frombuffer(A.encode_s16le(samples), np.uint8)
        return self.t['audio_common_msgs/msg/AudioDataStamped'](
            header=self.header(t_ns, frame_id), audio=self.t['audio_common_msgs/msg/AudioData'](data=data))

    def audio_info(self, fmt: A.AudioFormat):
        return self.t['audio_common_msgs/msg/AudioInfo'](**fmt.info_fields())

    def joint_state(self, t_ns, names, positions):
        empty = np.zeros(0, np.float64)
        return self.t['sensor_msgs/msg/JointState'](
            header=self.header(t_ns, ''), name=list(names),
            position=np.asarray(positions, np.float64), velocity=empty, effort=empty)

    def path(self, t_ns, frame_id, times_ns, positions, orientations):
        poses = [self.pose_stamped(int(t), frame_id, p, q)
                 for t, p, q in zip(times_ns, positions, orientations)]
        return self.t['nav_msgs/msg/Path'](header=self.header(t_ns, frame_id), poses=poses)

    def gripper_plan(self, t_ns, times_ns, apertures, joint: str = 'gripper_aperture'):
        """trajectory_msgs/JointTrajectory of the finger opening along a path stamped ``t_ns``."""
        T, empty = self.t, np.zeros(0, np.float64)
        points = [T['trajectory_msgs/msg/JointTrajectoryPoint'](
            positions=np.array([float(a)]), velocities=empty, accelerations=empty, effort=empty,
            time_from_start=T['builtin_interfaces/msg/Duration'](sec=int(t - t_ns) // NS,
                                                                  nanosec=int(t - t_ns) % NS))
            for t, a in zip(times_ns, apertures)]
        return T['trajectory_msgs/msg/JointTrajectory'](header=self.header(t_ns, ''),
                                                        joint_names=[joint], points=points)


def write_episode(world, out_dir, name: str, topics: TopicNames = TopicNames(),
                  frames: FrameIds = FrameIds(), overwrite: bool = False) -> Path:
    """Run ``world`` (contract event stream) and record it as ``out_dir/name`` (rosbag2, MCAP),
    plus ``name.truth.json`` and ``name.masks.npz`` beside it. Returns the bag folder.

    Images are rgb8 with a CameraInfo of the same stamp; audio is S16LE mono chunks stamped with
    their first sample; AudioInfo is written once at the episode start. The offered QoS recorded
    per topic is what ``sim_robot`` publishes with: sensor data (best effort, depth 5) for images,
    camera info, pose and joint states; reliable depth 100 for audio (like audio_capture);
    reliable transient local depth 1 for AudioInfo; reliable depth 10 for the planned path and
    the gripper's plan along it (``planned_gripper``, JointTrajectory, the same stamp, written
    just before the path).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    bag = out_dir / name
    if bag.exists():
        if not overwrite:
            raise FileExistsError(f'{bag} exists (pass overwrite=True to replace it)')
        shutil.rmtree(bag)
    start_ns = int(_param(world, 'start_time_ns', DEFAULT_START_NS))
    sr = int(_param(world, 'sample_rate', 16000))
    cam = dict(world.camera_info())
    cam_frame = cam.setdefault('frame_id', frames.camera)
    fmt = A.AudioFormat(1, sr, 'S16LE', 'wave')
    ts = typestore()
    m = _Msgs(ts)
    to_ns = lambda t: start_ns + int(round(float(t) * NS))  # noqa: E731

    labels, label_ns, cam_pos, cam_quat = [], [], [], []
    writer = Writer(bag, version=9, storage_plugin=StoragePlugin.MCAP)
    writer.open()
    try:
        def conn(topic, typ, qos):
            return writer.add_connection(topic, typ, typestore=ts, offered_qos_profiles=[qos])
        c_img = conn(topics.image, 'sensor_msgs/msg/Image', QOS_SENSOR)
        c_cam = conn(topics.camera_info, 'sensor_msgs/msg/CameraInfo', QOS_SENSOR)
        c_aud = conn(topics.audio, 'audio_common_msgs/msg/AudioDataStamped', QOS_AUDIO)
        c_inf = conn(topics.audio_info, 'audio_common_msgs/msg/AudioInfo', QOS_LATCHED)
        c_pose = conn(topics.pose, 'geometry_msgs/msg/PoseStamped', QOS_SENSOR)
        c_js = conn(topics.joint_states, 'sensor_msgs/msg/JointState', QOS_SENSOR)
        c_path = conn(topics.path, 'nav_msgs/msg/Path', QOS_DEFAULT)
        c_grip = conn(topics.gripper_plan, 'trajectory_msgs/msg/JointTrajectory', QOS_DEFAULT)

        def put(c, t_ns, msg):
            writer.write(c, t_ns, ts.serialize_cdr(msg, c.msgtype))

        put(c_inf, start_ns, m.audio_info(fmt))
        for ev in world.run():
            t_ns = to_ns(ev.t)
            if ev.kind == 'image':
                put(c_img, t_ns, m.image(t_ns, cam_frame, ev.rgb))
                put(c_cam, t_ns, m.camera_info(t_ns, cam))
                if getattr(ev, 'labels', None) is not None:
                    labels.append(np.asarray(ev.labels, np.uint8))
                    label_ns.append(t_ns)
                    pose = getattr(ev, 'camera_pose', None)
                    cam_pos.append(np.asarray(pose[0], float) if pose is not None else np.full(3, np.nan))
                    cam_quat.append(np.asarray(pose[1], float) if pose is not None else np.full(4, np.nan))
            elif ev.kind == 'audio':
                put(c_aud, t_ns, m.audio(t_ns, frames.mic, np.asarray(ev.samples, np.float32)))
            elif ev.kind == 'pose':
                put(c_pose, t_ns, m.pose_stamped(t_ns, frames.world, ev.position, ev.orientation))
                put(c_js, t_ns, m.joint_state(t_ns, ['gripper_aperture'], [float(ev.aperture)]))
            elif ev.kind == 'path':
                times = [to_ns(t) for t in ev.times]
                if getattr(ev, 'apertures', None) is not None:
                    put(c_grip, t_ns, m.gripper_plan(t_ns, times, ev.apertures))
                put(c_path, t_ns, m.path(t_ns, frames.world, times, ev.positions, ev.orientations))
            else:
                raise ValueError(f'unknown world event kind {ev.kind!r}')
    except BaseException:
        writer.close()
        shutil.rmtree(bag, ignore_errors=True)
        raise
    writer.close()

    truth = _jsonable(dict(getattr(world, 'truth', {}) or {}))
    for c in truth.get('contacts', []):
        if not c.get('stamp_ns') and 'time' in c:
            c['stamp_ns'] = to_ns(c['time'])
    (out_dir / f'{name}.truth.json').write_text(json.dumps(truth, indent=1))
    h, w = int(cam['height']), int(cam['width'])
    np.savez_compressed(
        out_dir / f'{name}.masks.npz',
        labels=np.stack(labels) if labels else np.zeros((0, h, w), np.uint8),
        stamps_ns=np.asarray(label_ns, np.int64),
        camera_positions=np.asarray(cam_pos, np.float64).reshape(-1, 3),
        camera_orientations=np.asarray(cam_quat, np.float64).reshape(-1, 4))
    return bag


@dataclass
class Episode:
    """All streams of one bag as numpy arrays. Stamps are int64 ROS times [ns]."""

    path: Path
    image_stamps_ns: np.ndarray                     # (T,)
    images: np.ndarray                              # (T, H, W, 3) uint8 RGB
    camera_info: dict | None                        # width, height, K (9), D, P, frame_id, ...
    audio: np.ndarray                               # (N,) float32 mono at sample_rate
    audio_start_ns: int | None                      # time of audio[0]; audio[k] at + k / sample_rate
    sample_rate: int
    audio_format: A.AudioFormat | None              # from AudioInfo (None if the bag had none)
    pose_stamps_ns: np.ndarray                      # (P,)
    positions: np.ndarray                           # (P, 3) [m] in world
    orientations: np.ndarray                        # (P, 4) xyzw
    aperture_stamps_ns: np.ndarray                  # (J,)
    apertures: np.ndarray                           # (J,) [m]
    paths: list = field(default_factory=list)       # [(stamp_ns, times_ns (M,), pos (M,3), quat (M,4))]
    # the gripper's plan along each path: its stamp -> (times_ns (G,), finger opening (G,) [m])
    gripper_plans: dict = field(default_factory=dict)
    truth: dict | None = None
    labels: np.ndarray | None = None                # (T, H, W) uint8
    label_stamps_ns: np.ndarray | None = None       # (T,)
    camera_positions: np.ndarray | None = None      # (T, 3), from masks.npz when present
    camera_orientations: np.ndarray | None = None   # (T, 4)
    audio_stats: dict = field(default_factory=dict)  # gaps / overlaps found while joining chunks
    topics: dict = field(default_factory=dict)      # topic -> (msgtype, count) of the whole bag

    @property
    def audio_end_ns(self) -> int | None:
        if self.audio_start_ns is None:
            return None
        return self.audio_start_ns + (len(self.audio) * NS + self.sample_rate // 2) // self.sample_rate

    def aperture_at(self, t_ns: int) -> float:
        """The finger opening [m] of the last joint state at or before ``t_ns`` (the first one
        before any; ``trajectory.DEFAULT_APERTURE`` in a bag without joint states)."""
        if not len(self.apertures):
            return tr.DEFAULT_APERTURE
        j = int(np.searchsorted(self.aperture_stamps_ns, int(t_ns), side='right')) - 1
        return float(self.apertures[max(j, 0)])

    def planned_apertures(self, stamp_ns: int, times_ns) -> np.ndarray | None:
        """The opening (M,) [m] at a path's pose stamps from the gripper's plan along the path
        stamped ``stamp_ns``; None when the bag has no plan for it."""
        plan = self.gripper_plans.get(int(stamp_ns))
        return None if plan is None else tr.plan_apertures(times_ns, *plan)


def _sorted(stamps, *arrays):
    order = np.argsort(np.asarray(stamps, np.int64), kind='stable')
    return (np.asarray(stamps, np.int64)[order],) + tuple(a[order] for a in arrays)


def read_episode(bag_dir, topics: TopicNames = TopicNames()) -> Episode:
    """Read a rosbag2 folder (MCAP or sqlite3) into an :class:`Episode`.

    Images may be any encoding images.py supports, or CompressedImage (also found on
    ``<image>/compressed``). Audio chunks are decoded per the bag's AudioInfo, joined in stamp
    order, gaps zero-filled. ``truth``/``labels`` come from ``<bag>.truth.json`` /
    ``<bag>.masks.npz`` beside the folder when present.
    """
    bag = Path(bag_dir)
    if bag.is_file():
        bag = bag.parent
    ts = typestore()
    img_stamps, imgs, cam_info, info_msg = [], [], None, None
    chunks, pose_t, pos, quat, ap_t, aps, paths = [], [], [], [], [], [], []
    gripper_plans = {}
    with Reader(bag) as reader:
        register_bag_types(ts, reader.connections)
        all_topics = {c.topic: c.msgtype for c in reader.connections}
        counts = {t: (i.msgtype, i.msgcount) for t, i in reader.topics.items()}
        image_topic = topics.image
        if image_topic not in all_topics and image_topic + '/compressed' in all_topics:
            image_topic += '/compressed'
        wanted = {image_topic, topics.camera_info, topics.audio, topics.audio_info, topics.pose,
                  topics.joint_states, topics.path, topics.gripper_plan}
        conns = [c for c in reader.connections if c.topic in wanted]
        for conn, _, raw in reader.messages(connections=conns):
            msg = ts.deserialize_cdr(raw, conn.msgtype)
            topic = conn.topic
            if topic == image_topic:
                img_stamps.append(_stamp_ns(msg.header.stamp))
                imgs.append(I.msg_to_rgb(msg))
            elif topic == topics.camera_info:
                if cam_info is None:
                    cam_info = dict(width=int(msg.width), height=int(msg.height),
                                    K=[float(v) for v in msg.k], D=[float(v) for v in msg.d],
                                    P=[float(v) for v in msg.p], distortion_model=msg.distortion_model,
                                    frame_id=msg.header.frame_id)
            elif topic == topics.audio_info:
                info_msg = info_msg or msg
            elif topic == topics.audio:
                chunks.append((_stamp_ns(msg.header.stamp), msg.audio.data))
            elif topic == topics.pose:
                pose_t.append(_stamp_ns(msg.header.stamp))
                p, q = msg.pose.position, msg.pose.orientation
                pos.append((p.x, p.y, p.z))
                quat.append((q.x, q.y, q.z, q.w))
            elif topic == topics.joint_states:
                names = list(msg.name)
                i = names.index('gripper_aperture') if 'gripper_aperture' in names else 0
                if len(msg.position) > i:
                    ap_t.append(_stamp_ns(msg.header.stamp))
                    aps.append(float(msg.position[i]))
            elif topic == topics.path:
                ps = msg.poses
                paths.append((_stamp_ns(msg.header.stamp),
                              np.array([_stamp_ns(x.header.stamp) for x in ps], np.int64),
                              np.array([(x.pose.position.x, x.pose.position.y, x.pose.position.z)
                                        for x in ps], np.float64).reshape(-1, 3),
                              np.array([(x.pose.orientation.x, x.pose.orientation.y,
                                         x.pose.orientation.z, x.pose.orientation.w)
                                        for x in ps], np.float64).reshape(-1, 4)))
            elif topic == topics.gripper_plan:
                names = list(msg.joint_names)
                i = names.index('gripper_aperture') if 'gripper_aperture' in names else 0
                t_ns = _stamp_ns(msg.header.stamp)
                pts = [p for p in msg.points if len(p.positions) > i]
                gripper_plans[t_ns] = (
                    np.array([t_ns + _stamp_ns(p.time_from_start) for p in pts], np.int64),
                    np.array([float(p.positions[i]) for p in pts], np.float64))

    truth_file, masks_file = bag.parent / f'{bag.name}.truth.json', bag.parent / f'{bag.name}.masks.npz'
    truth = json.loads(truth_file.read_text()) if truth_file.exists() else None

    fmt = A.AudioFormat.from_info(info_msg) if info_msg is not None else None
    if fmt is None and chunks:
        sr = int(((truth or {}).get('audio') or {}).get('sample_rate', 16000))
        warnings.warn(f'{bag}: no AudioInfo on {topics.audio_info}; assuming mono S16LE {sr} Hz')
        fmt_dec = A.AudioFormat(1, sr)
    else:
        fmt_dec = fmt or A.AudioFormat()
    start, audio, stats = A.assemble_chunks(
        [(t, A.to_mono(A.decode(d, fmt_dec))) for t, d in chunks], fmt_dec.sample_rate)

    img_stamps_a, imgs_a = _sorted(img_stamps, np.arange(len(imgs)))
    if imgs:
        images = np.stack([imgs[i] for i in imgs_a])
    else:
        h, w = (cam_info['height'], cam_info['width']) if cam_info else (0, 0)
        images = np.zeros((0, h, w, 3), np.uint8)
    pose_t, pos, quat = _sorted(pose_t, np.asarray(pos, np.float64).reshape(-1, 3),
                                np.asarray(quat, np.float64).reshape(-1, 4))
    ap_t, aps = _sorted(ap_t, np.asarray(aps, np.float64))
    ep = Episode(path=bag, image_stamps_ns=img_stamps_a, images=images, camera_info=cam_info,
                 audio=audio, audio_start_ns=start, sample_rate=fmt_dec.sample_rate, audio_format=fmt,
                 pose_stamps_ns=pose_t, positions=pos, orientations=quat, aperture_stamps_ns=ap_t,
                 apertures=aps, paths=sorted(paths, key=lambda p: p[0]), gripper_plans=gripper_plans,
                 truth=truth,
                 audio_stats=stats, topics=counts)
    if masks_file.exists():
        with np.load(masks_file) as z:
            ep.labels, ep.label_stamps_ns = z['labels'], z['stamps_ns'].astype(np.int64)
            if 'camera_positions' in z:
                ep.camera_positions, ep.camera_orientations = z['camera_positions'], z['camera_orientations']
    return ep


def list_episodes(paths: str | Path | Iterable[str | Path]) -> list[Path]:
    """Bag folders named by ``paths``: a bag folder (has metadata.yaml), a file inside one, or a
    parent folder searched recursively. Sorted within each argument, duplicates removed."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    out: list[Path] = []
    for p in map(Path, paths):
        if not p.exists():
            raise MissingInputError(f'no such bag or folder: {p}')
        if p.is_file():
            p = p.parent
        found = [p] if (p / 'metadata.yaml').exists() else sorted(
            m.parent for m in p.rglob('metadata.yaml'))
        out += [f for f in found if f not in out]
    return out
