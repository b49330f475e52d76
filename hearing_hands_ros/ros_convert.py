"""rclpy messages <-> core data (numpy arrays, int ns times). Used by the nodes; needs ROS.

Times are int nanoseconds of ROS time; positions [m]; quaternions (x, y, z, w); contact events
are :class:`hearing_hands_ros.events.ContactEvent` (times in s from the path start).
"""
from __future__ import annotations

import array
from typing import Sequence

import numpy as np
from audio_common_msgs.msg import AudioData, AudioDataStamped, AudioInfo
from builtin_interfaces.msg import Duration, Time
from geometry_msgs.msg import Point, Pose, PoseStamped, Quaternion
from hearing_hands_msgs.msg import ContactEvent as ContactEventMsg
from hearing_hands_msgs.msg import ContactAnomaly as ContactAnomalyMsg
from hearing_hands_msgs.msg import ContactAnomalyArray, ContactEventArray, ExecutionStatus
from nav_msgs.msg import Path
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Header
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from . import audio as A
from . import images as I
from .events import KINDS, ContactEvent
from .monitor import KINDS as MONITOR_KINDS
from .monitor import Anomaly, PathOutcome

NS = 1_000_000_000


def ns_to_stamp(t_ns: int) -> Time:
    t_ns = int(t_ns)
    return Time(sec=t_ns // NS, nanosec=t_ns % NS)


def stamp_to_ns(stamp) -> int:
    """builtin_interfaces/Time (rclpy or rosbags) -> int ns."""
    return int(stamp.sec) * NS + int(stamp.nanosec)


def header(t_ns: int, frame_id: str = '') -> Header:
    return Header(stamp=ns_to_stamp(t_ns), frame_id=frame_id)


def audio_chunk_msg(samples: np.ndarray, t_ns: int, frame_id: str = 'wrist_mic') -> AudioDataStamped:
    """float samples ``(N,)`` or ``(N, C)`` in [-1, 1] -> S16LE AudioDataStamped stamped with the
    time of the first sample."""
    return AudioDataStamped(header=header(t_ns, frame_id),
                            audio=AudioData(data=array.array('B', A.encode_s16le(samples))))


def audio_from_msg(msg: AudioDataStamped, fmt: A.AudioFormat) -> tuple[int, np.ndarray]:
    """AudioDataStamped -> (time of first sample [ns], float32 mono (N,))."""
    return stamp_to_ns(msg.header.stamp), A.to_mono(A.decode(msg.audio.data, fmt))


def audio_info_msg(sample_rate: int, channels: int = 1) -> AudioInfo:
    """AudioInfo of what :func:`audio_chunk_msg` publishes: S16LE 'wave'."""
    return AudioInfo(**A.AudioFormat(channels, sample_rate, 'S16LE', 'wave').info_fields())


def image_msg(arr: np.ndarray, t_ns: int, frame_id: str = 'wrist_camera_optical') -> Image:
    """uint8 (H, W, 3) -> rgb8, uint8 (H, W) -> mono8, uint16 (H, W) -> mono16 Image."""
    f = I.rgb_to_image_msg_fields(arr)
    f['data'] = array.array('B', f['data'])
    return Image(header=header(t_ns, frame_id), **f)


def camera_info_msg(info: dict, t_ns: int) -> CameraInfo:
    """dict(width, height, K (9), D, frame_id[, distortion_model, P]) -> CameraInfo (R = I,
    P = [K | 0] unless given)."""
    K = np.asarray(info['K'], np.float64).reshape(3, 3)
    P = np.asarray(info['P'], np.float64).reshape(12) if 'P' in info else np.c_[K, np.zeros(3)].reshape(12)
    return CameraInfo(header=header(t_ns, info.get('frame_id', 'wrist_camera_optical')),
                      width=int(info['width']), height=int(info['height']),
                      distortion_model=info.get('distortion_model', 'plumb_bob'),
                      d=[float(v) for v in info.get('D', [0.0] * 5)], k=K.reshape(9).tolist(),
                      r=np.eye(3).reshape(9).tolist(), p=P.tolist())


def _pose(position, orientation) -> Pose:
    p, q = np.asarray(position, float), np.asarray(orientation, float)
    return Pose(position=Point(x=p[0], y=p[1], z=p[2]), orientation=Quaternion(x=q[0], y=q[1], z=q[2], w=q[3]))


def pose_msg(position, orientation, t_ns: int, frame_id: str = 'world') -> PoseStamped:
    return PoseStamped(header=header(t_ns, frame_id), pose=_pose(position, orientation))


def pose_from_msg(msg: PoseStamped) -> tuple[int, np.ndarray, np.ndarray]:
    p, q = msg.pose.position, msg.pose.orientation
    return stamp_to_ns(msg.header.stamp), np.array([p.x, p.y, p.z]), np.array([q.x, q.y, q.z, q.w])


def joint_state_msg(names: Sequence[str], positions: Sequence[float], t_ns: int) -> JointState:
    return JointState(header=header(t_ns), name=list(names), position=[float(v) for v in positions])


def path_msg(times_ns, positions, orientations, frame_id: str = 'world', stamp_ns: int | None = None) -> Path:
    """Planned path: pose i stamped ``times_ns[i]``; header stamp ``stamp_ns`` (default the first
    pose's time)."""
    times_ns = [int(t) for t in times_ns]
    stamp = times_ns[0] if stamp_ns is None and times_ns else (stamp_ns or 0)
    return Path(header=header(stamp, frame_id),
                poses=[pose_msg(p, q, t, frame_id) for t, p, q in zip(times_ns, positions, orientations)])


def path_from_msg(msg: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """Path -> (times_ns int64 (M,), positions (M, 3), orientations (M, 4) xyzw, frame_id)."""
    ps = msg.poses
    times = np.array([stamp_to_ns(p.header.stamp) for p in ps], np.int64)
    pos = np.array([(p.pose.position.x, p.pose.position.y, p.pose.position.z) for p in ps], float).reshape(-1, 3)
    quat = np.array([(p.pose.orientation.x, p.pose.orientation.y, p.pose.orientation.z, p.pose.orientation.w)
                     for p in ps], float).reshape(-1, 4)
    return times, pos, quat, msg.header.frame_id


def gripper_plan_msg(times_ns, apertures, stamp_ns: int, joint: str = 'gripper_aperture') -> JointTrajectory:
    """The gripper's plan along a path: the finger opening ``apertures`` [m] at ``times_ns``, as a
    JointTrajectory of one joint stamped ``stamp_ns`` (the path's stamp)."""
    points = []
    for t, a in zip(times_ns, apertures):
        d = int(t) - int(stamp_ns)
        points.append(JointTrajectoryPoint(positions=[float(a)],
                                           time_from_start=Duration(sec=d // NS, nanosec=d % NS)))
    return JointTrajectory(header=header(int(stamp_ns)), joint_names=[joint], points=points)


def gripper_plan_from_msg(msg: JointTrajectory, joint: str) -> tuple[int, np.ndarray, np.ndarray]:
    """JointTrajectory -> (its stamp [ns], times_ns int64 (G,), the opening of ``joint`` (G,)
    [m]); ValueError when it does not name the joint or its points are unusable."""
    names = list(msg.joint_names)
    if joint not in names:
        raise ValueError(f'gripper plan names no joint {joint!r} (it has {names})')
    i = names.index(joint)
    if not msg.points or any(len(p.positions) <= i for p in msg.points):
        raise ValueError(f'gripper plan has points without a position for {joint!r}')
    stamp = stamp_to_ns(msg.header.stamp)
    times = np.array([stamp + stamp_to_ns(p.time_from_start) for p in msg.points], np.int64)
    aps = np.array([p.positions[i] for p in msg.points], np.float64)
    if not np.isfinite(aps).all() or np.any(np.diff(times) < 0):
        raise ValueError('gripper plan has non-finite openings or times out of order')
    return stamp, times, aps


#: ContactEvent.kind (the message's KIND_* constants) of each ``events.KINDS`` name.
_KIND_CODES = {'impact': ContactEventMsg.KIND_IMPACT, 'slide': ContactEventMsg.KIND_SLIDE}


def contact_event_msg(event: ContactEvent, start_ns: int) -> ContactEventMsg:
    """One predicted contact -> hearing_hands_msgs/ContactEvent, stamped at ``start_ns`` plus its
    time."""
    if event.kind not in _KIND_CODES:
        raise ValueError(f'unknown contact kind {event.kind!r} (expected one of {KINDS})')
    p = np.asarray(event.position, float).reshape(3)
    return ContactEventMsg(
        stamp=ns_to_stamp(int(start_ns) + int(round(float(event.time) * NS))),
        time_from_start=float(event.time), time_std=float(event.time_std),
        probability=float(event.probability), peak_db=float(event.peak_db),
        kind=_KIND_CODES[event.kind], duration=float(event.duration), material=str(event.material),
        material_names=[str(k) for k in event.material_probs],
        material_probs=[float(v) for v in event.material_probs.values()],
        position=Point(x=float(p[0]), y=float(p[1]), z=float(p[2])))


def contact_event_from_msg(msg: ContactEventMsg) -> ContactEvent:
    """hearing_hands_msgs/ContactEvent -> :class:`ContactEvent` (time from ``time_from_start``)."""
    kinds = {code: name for name, code in _KIND_CODES.items()}
    if msg.kind not in kinds:
        raise ValueError(f'unknown contact kind code {msg.kind} (expected one of {sorted(kinds)})')
    if len(msg.material_names) != len(msg.material_probs):
        raise ValueError(f'{len(msg.material_names)} material names but {len(msg.material_probs)} '
                         'probabilities')
    return ContactEvent(time=float(msg.time_from_start), time_std=float(msg.time_std),
                        probability=float(msg.probability), peak_db=float(msg.peak_db),
                        kind=kinds[msg.kind], material=msg.material,
                        material_probs={k: float(v) for k, v in zip(msg.material_names, msg.material_probs)},
                        position=np.array([msg.position.x, msg.position.y, msg.position.z]),
                        duration=float(msg.duration))


def contact_events_msg(events: Sequence[ContactEvent], start_ns: int, frame_id: str, p_contact: float,
                       peak_db: float) -> ContactEventArray:
    """The predicted contacts of one path -> ContactEventArray: header stamp = the path start
    ``start_ns``, frame = the path's frame; each event stamped at the start plus its time."""
    return ContactEventArray(header=header(start_ns, frame_id), p_contact=float(p_contact),
                             peak_db=float(peak_db),
                             events=[contact_event_msg(e, start_ns) for e in events])


def contact_events_from_msg(msg: ContactEventArray) -> tuple[int, str, float, float, list[ContactEvent]]:
    """ContactEventArray -> (path start [ns], frame_id, p_contact, peak_db, events)."""
    return (stamp_to_ns(msg.header.stamp), msg.header.frame_id, float(msg.p_contact), float(msg.peak_db),
            [contact_event_from_msg(e) for e in msg.events])


def contact_anomaly_msg(a: Anomaly, start_ns: int, frame_id: str) -> ContactAnomalyMsg:
    """A monitor's :class:`~hearing_hands_ros.monitor.Anomaly` of the path that started at
    ``start_ns`` -> hearing_hands_msgs/ContactAnomaly, stamped when it was decided."""
    if a.kind not in MONITOR_KINDS:
        raise ValueError(f'unknown anomaly type {a.kind!r} (expected one of {MONITOR_KINDS})')
    decided = int(start_ns) + int(round(float(a.decided_at) * NS))
    msg = ContactAnomalyMsg(header=header(decided, frame_id), path_stamp=ns_to_stamp(start_ns),
                            type=MONITOR_KINDS.index(a.kind), type_name=a.kind,
                            time_from_start=float(a.time), confidence=float(a.confidence),
                            has_expected=a.expected is not None, has_heard=a.heard_time is not None)
    if a.expected is not None:
        msg.expected = contact_event_msg(a.expected, start_ns)
    if a.heard_time is not None:
        msg.heard_time_from_start = float(a.heard_time)
        msg.heard_peak_db = float(a.heard_db)
        msg.heard_material = a.heard_material or ''
    return msg


def contact_anomaly_from_msg(msg: ContactAnomalyMsg) -> Anomaly:
    """hearing_hands_msgs/ContactAnomaly -> :class:`~hearing_hands_ros.monitor.Anomaly`."""
    if msg.type >= len(MONITOR_KINDS):
        raise ValueError(f'unknown anomaly type code {msg.type}')
    start = stamp_to_ns(msg.path_stamp)
    return Anomaly(MONITOR_KINDS[msg.type], float(msg.time_from_start), float(msg.confidence),
                   expected=contact_event_from_msg(msg.expected) if msg.has_expected else None,
                   heard_time=float(msg.heard_time_from_start) if msg.has_heard else None,
                   heard_db=float(msg.heard_peak_db) if msg.has_heard else None,
                   heard_material=(msg.heard_material or None) if msg.has_heard else None,
                   decided_at=(stamp_to_ns(msg.header.stamp) - start) / NS)


def contact_anomalies_msg(anomalies: Sequence[Anomaly], start_ns: int, frame_id: str) -> ContactAnomalyArray:
    """Anomalies of one path decided together -> ContactAnomalyArray (stamped at the latest)."""
    msgs = [contact_anomaly_msg(a, start_ns, frame_id) for a in anomalies]
    stamp = max((stamp_to_ns(m.header.stamp) for m in msgs), default=int(start_ns))
    return ContactAnomalyArray(header=header(stamp, frame_id), anomalies=msgs)


def execution_status_msg(outcome: PathOutcome, expected: Sequence[ContactEvent], frame_id: str) -> ExecutionStatus:
    """A monitor's :class:`~hearing_hands_ros.monitor.PathOutcome` -> ExecutionStatus."""
    return ExecutionStatus(
        header=header(outcome.start_ns, frame_id),
        status=ExecutionStatus.AS_EXPECTED if outcome.ok else ExecutionStatus.ANOMALOUS,
        expected_contacts=int(outcome.expected), heard_contacts=len(outcome.heard),
        heard_times_from_start=[float(h.time) for h in outcome.heard],
        heard_peak_db=[float(h.peak_db) for h in outcome.heard],
        expected=[contact_event_msg(e, outcome.start_ns) for e in expected],
        anomalies=[contact_anomaly_msg(a, outcome.start_ns, frame_id) for a in outcome.anomalies])
