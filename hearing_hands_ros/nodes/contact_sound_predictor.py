"""``contact_sound_predictor`` node: hear a planned gripper motion before the robot makes it.

Subscribes ``planned_path`` (nav_msgs/Path: TCP poses in the scene frame stamped with their planned
times), ``image`` (wrist camera; the latest frame is the scene context), optionally
``camera_info`` (intrinsics; else the model's, scaled to the image size), ``planned_gripper``
(trajectory_msgs/JointTrajectory: the finger opening along the path, stamped as the path; where
the fingers close and open is where grasps and drops sound) and ``joint_states`` (the latest
gripper aperture, held along a path that has no gripper plan). Publishes, for each path, ``predicted_contact_events``
(hearing_hands_msgs/ContactEventArray: when, how likely, how loud, impact or slide, on what
material and where each audible contact is expected; stamp = the path's first pose time, frame =
the path's frame) first, then ``predicted_audio`` (AudioDataStamped, S16LE, same stamp); also
``predicted_audio_info`` (AudioInfo, transient local), ``predicted_contacts`` (MarkerArray: one
sphere per predicted contact at the planned TCP position, sized and coloured by loudness, opaque
as it is likely) and ``/diagnostics``. Inference runs on a worker thread through
:class:`hearing_hands_ros.planner.Planner` (ONNX Runtime: CUDA when present, else CPU; or torch).
Bad paths or a missing image are reported (log + diagnostics) and skipped.

A lifecycle node: the model loads on configure (a model that does not load leaves it unconfigured,
with ERROR on ``/diagnostics``), paths are taken while active, cleanup frees the model;
``autostart`` (default true) configures and activates it at start.
"""
from __future__ import annotations

import queue
import threading
import time
from pathlib import Path

import numpy as np
from audio_common_msgs.msg import AudioDataStamped, AudioInfo
from hearing_hands_msgs.msg import ContactEventArray
from nav_msgs.msg import Path as PathMsg
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from sensor_msgs.msg import CameraInfo, Image, JointState
from trajectory_msgs.msg import JointTrajectory
from visualization_msgs.msg import Marker, MarkerArray

from hearing_hands_ros import ros_convert as rc
from hearing_hands_ros import trajectory as tr
from hearing_hands_ros.events import p_contact as contact_probability
from hearing_hands_ros.images import ImageError, image_to_rgb
from hearing_hands_ros.nodes.common import (AUTOSTART, GRIPPER_PLAN_PARAMS, LATCHED_QOS,
                                            RELIABLE_QOS, SENSOR_QOS, GripperPlans, ModelNode,
                                            run_node)

NS = 1_000_000_000

PARAMS = {
    **AUTOSTART,
    'model_path': ('', 'Predictor bundle (.onnx + .json); empty = the shipped default model.'),
    'backend': ('auto', 'auto | cuda | tensorrt | cpu (ONNX Runtime) | torch.'),
    'threads': (2, 'CPU threads for inference (0 = runtime default).'),
    'steps': (0, 'Euler sampling steps; 0 = the model default (few-step).'),
    'guidance': (0.0, 'Classifier-free guidance scale; 0 = the model default.'),
    'temperature': (-1.0, 'Sampler noise scale in [0, 2] (lower = closer to the average sound); '
                          '-1 = the model default.'),
    'max_path_duration': (8.0, 'Longest planned path accepted [s] (at most the model\'s limit).'),
    'wav_output_dir': ('', 'If set, also write every prediction as WAV into this folder.'),
    'seed': (0, 'Noise seed of the sampler (predictions are deterministic per path).'),
    'aperture': (0.04, 'Gripper opening used when no joint_states arrived [m].'),
    'aperture_joint': ('gripper_aperture', 'Joint name of the gripper opening in joint_states and '
                                           'planned_gripper.'),
    **GRIPPER_PLAN_PARAMS,
    'chunk_samples': (0, 'Publish predicted audio in chunks of this many samples; 0 = one message.'),
    'queue_size': (4, 'Paths waiting for inference; older ones are dropped when full.'),
    'predict_audio': (True, 'Also render the predicted audio (false: contact events only, much '
                            'faster; needs a contact_events bundle beside the model).'),
}


class ContactSoundPredictor(ModelNode):
    """Lifecycle shell around :class:`hearing_hands_ros.planner.Planner` (module docstring)."""

    def __init__(self, **kwargs):
        super().__init__('contact_sound_predictor', PARAMS, 'wrist_camera', **kwargs)
        self.planner = None
        self._lock = threading.Lock()
        self._image: tuple[int, np.ndarray] | None = None
        self._K: np.ndarray | None = None
        self._aperture: float = float(self.p.aperture)
        self._gripper_plans = GripperPlans()
        self._jobs: queue.Queue = queue.Queue(maxsize=max(1, int(self.p.queue_size)))
        for key in ('paths', 'predictions', 'dropped_paths', 'paths_out_of_view'):
            self.diag.count(key, 0)
        self.start()

    # --- lifecycle ------------------------------------------------------------------------
    def configure(self) -> None:
        """Load the predictor (the planner API); create the publishers."""
        from hearing_hands_ros.planner import Planner, default_model_path
        path = self.p.model_path or str(default_model_path())
        self.planner = Planner(path, backend=self.p.backend, steps=int(self.p.steps) or None,
                               guidance=float(self.p.guidance) or None, threads=int(self.p.threads),
                               temperature=None if float(self.p.temperature) < 0
                               else float(self.p.temperature))
        self.max_duration = min(float(self.p.max_path_duration), self.planner.max_path_duration)
        self._aperture = float(self.p.aperture)
        self._jobs = queue.Queue(maxsize=max(1, int(self.p.queue_size)))
        self.pub_events = self.publisher(ContactEventArray, 'predicted_contact_events', 10)
        self.pub_audio = self.publisher(AudioDataStamped, 'predicted_audio', 10)
        self.pub_info = self.publisher(AudioInfo, 'predicted_audio_info', LATCHED_QOS)
        self.pub_contacts = self.publisher(MarkerArray, 'predicted_contacts', 10)
        self.diag.set_value('backend', self.planner.backend)
        self.diag.set_value('model', str(self.planner.bundle.path))
        self.diag.set_value('steps', self.planner.steps)
        self.diag.set_value('network_evaluations', self.planner.network_evaluations)
        self.get_logger().info(f'model {self.planner.bundle.path} on {self.planner.backend}, '
                               f'{self.planner.steps} step(s), guidance {self.planner.guidance:g}, '
                               f'temperature {self.planner.temperature:g}')

    def activate(self) -> None:
        """Announce the audio format, subscribe, start the inference thread."""
        self.pub_info.publish(rc.audio_info_msg(self.planner.sample_rate))
        group = MutuallyExclusiveCallbackGroup()
        self.subscribe(PathMsg, 'planned_path', self.on_path, RELIABLE_QOS, callback_group=group)
        self.subscribe(JointTrajectory, 'planned_gripper', self.on_gripper_plan, RELIABLE_QOS)
        self.subscribe(Image, 'image', self.on_image, SENSOR_QOS,
                       callback_group=MutuallyExclusiveCallbackGroup())
        self.subscribe(CameraInfo, 'camera_info', self.on_camera_info, SENSOR_QOS)
        self.subscribe(JointState, 'joint_states', self.on_joint_states, SENSOR_QOS)
        self.start_worker(self._work, 'predictor_inference')

    def deactivate(self) -> None:
        """Stop the inference thread; paths still queued are dropped."""
        self.stop_worker(self._jobs, 'dropped_paths', timeout=5.0)
        self._gripper_plans.clear()

    def cleanup(self) -> None:
        """Free the model."""
        self.planner = None

    # --- inputs ---------------------------------------------------------------------------
    def on_image(self, msg: Image) -> None:
        try:
            rgb = image_to_rgb(msg)
        except (ImageError, ValueError) as e:
            self.diag.report_input_error('bad_image', f'{e}; frame ignored')
            return
        with self._lock:
            self._image = (rc.stamp_to_ns(msg.header.stamp), rgb)

    def on_camera_info(self, msg: CameraInfo) -> None:
        K = np.asarray(msg.k, dtype=np.float64).reshape(3, 3)
        if K[0, 0] > 0 and K[1, 1] > 0 and np.isfinite(K).all():
            with self._lock:
                self._K = K

    def on_joint_states(self, msg: JointState) -> None:
        names = list(msg.name)
        if self.p.aperture_joint in names:
            i = names.index(self.p.aperture_joint)
            if i < len(msg.position) and np.isfinite(msg.position[i]):
                self._aperture = float(msg.position[i])

    def on_gripper_plan(self, msg: JointTrajectory) -> None:
        self._gripper_plans.take(msg, self.p.aperture_joint, self.diag)

    def on_path(self, msg: PathMsg) -> None:
        self.diag.count('paths')
        times, pos, quat, frame = rc.path_from_msg(msg)
        if not frame and msg.poses:
            frame = msg.poses[0].header.frame_id
        traj = tr.Trajectory.from_stamps_ns(times, pos, quat, frame_id=frame,
                                            origin_ns=int(times[0]) if len(times) else 0)
        start_ns = int(times[0]) if len(times) else 0
        try:
            traj = tr.validate(traj, self.planner.frame_id, self.max_duration)
        except tr.TrajectoryError as e:
            self.diag.report_input_error('bad_path', f'{e}; path skipped')
            return
        # a full queue drops its oldest path: newer plans win
        self.enqueue(self._jobs, (start_ns, rc.stamp_to_ns(msg.header.stamp), times, frame, traj,
                                  time.perf_counter()), 'dropped_paths', 'inference')

    # --- inference ------------------------------------------------------------------------
    def _work(self) -> None:
        self.serve(self._jobs, self._predict, 'inference_failed')

    def _predict(self, start_ns: int, stamp_ns: int, times, frame: str, traj: tr.Trajectory,
                 t_received: float) -> None:
        with self._lock:
            image, K = self._image, self._K
        if image is None:
            self.diag.report_input_error('no_image', 'no camera image received on image yet; '
                                         'path skipped')
            return
        traj.apertures = self._gripper_plans.apertures(stamp_ns, times, self.p.gripper_plan_wait_s)
        t0 = time.perf_counter()
        audio = bool(self.p.predict_audio) or self.planner.events is None
        pred = self.planner.predict([traj], image[1], K=K, seed=int(self.p.seed),
                                    aperture=self._aperture, audio=audio)[0]
        self.diag.record_latency('inference', time.perf_counter() - t0)
        self.diag.record_latency('path_to_audio', time.perf_counter() - t_received)
        self._publish(start_ns, frame, pred)
        self.diag.count('predictions')
        self.diag.set_value('last_onsets', ' '.join(f'{o:.3f}' for o in pred.onsets) or '-')
        self.diag.set_value('last_peak_db', f'{pred.peak_db:.1f}')
        self.diag.set_value('last_material', pred.material)
        self.diag.set_value('last_path_in_view', f'{pred.in_view:.2f}')
        if pred.in_view < 0.5:
            self.diag.count('paths_out_of_view')
            self.get_logger().warning(
                f'planned path mostly outside the camera view ({pred.in_view:.0%} of it in the '
                'latest image): the prediction cannot see what it will touch; plan the contact '
                'motion from a pose whose camera view shows the target', throttle_duration_sec=5.0)
        if self.p.wav_output_dir and getattr(pred, 'audio', None) is not None:
            self._write_wav(start_ns, pred)

    def _publish(self, start_ns: int, frame: str, pred) -> None:
        """The prediction of one path: its contact events, its audio, its contact markers."""
        events = getattr(pred, 'events', None)
        if events is not None:
            p_contact = getattr(pred, 'p_contact', None)
            if p_contact is None:
                p_contact = contact_probability(events)
            self.pub_events.publish(rc.contact_events_msg(events, start_ns, frame, p_contact, pred.peak_db))
        audio = getattr(pred, 'audio', None)
        if audio is not None and len(audio):
            sr = pred.sample_rate
            n = int(self.p.chunk_samples) or len(audio)
            for k in range(0, len(audio), n):
                t_ns = start_ns + (k * NS + sr // 2) // sr
                self.pub_audio.publish(rc.audio_chunk_msg(audio[k:k + n], t_ns, 'wrist_mic'))
        if events is not None:
            contacts = [(e.time, e.position, e.peak_db, e.probability, e.material) for e in events]
        else:
            contacts = [(t, p, lv, None, pred.material)
                        for t, p, lv in zip(pred.onsets, pred.contact_positions, pred.onset_levels_db)]
        self.pub_contacts.publish(contact_markers(contacts, start_ns, frame))

    def _write_wav(self, start_ns: int, pred) -> None:
        try:
            import soundfile as sf
            out = Path(self.p.wav_output_dir).expanduser()
            out.mkdir(parents=True, exist_ok=True)
            sf.write(out / f'predicted_{start_ns}.wav', pred.audio, pred.sample_rate)
        except (OSError, RuntimeError) as e:
            self.diag.report_input_error('wav_output', f'cannot write WAV: {e}')


def contact_markers(contacts, start_ns: int, frame: str) -> MarkerArray:
    """``predicted_contacts``: a DELETEALL, then a sphere per contact ``(time [s from the path
    start], position (3,), peak_db, probability or None, material)`` at its position, stamped at
    its time, sized and coloured from quiet blue (-60 dBFS) to loud red (0 dBFS), as opaque as it
    is likely. Contacts without a finite position are left out."""
    arr = MarkerArray()
    clear = Marker(action=Marker.DELETEALL)
    clear.header.frame_id = frame
    clear.ns = 'predicted_contacts'
    arr.markers.append(clear)
    for i, (t, p, lv, prob, material) in enumerate(contacts):
        p = np.asarray(p, float).reshape(3)
        if not np.isfinite(p).all():
            continue
        m = Marker(type=Marker.SPHERE, action=Marker.ADD, id=i, ns='predicted_contacts')
        m.header = rc.header(start_ns + int(round(float(t) * NS)), frame)
        m.pose.position.x, m.pose.position.y, m.pose.position.z = (float(v) for v in p)
        m.pose.orientation.w = 1.0
        loud = float(np.clip((lv + 60.0) / 60.0, 0.0, 1.0))          # -60 dBFS .. 0 dBFS
        m.scale.x = m.scale.y = m.scale.z = 0.01 + 0.04 * loud
        m.color.r, m.color.g, m.color.b = loud, 0.2, 1.0 - loud
        m.color.a = 0.9 if prob is None else float(np.clip(0.1 + 0.9 * prob, 0.1, 1.0))
        m.text = f'{lv:.0f} dBFS {material}' + ('' if prob is None else f' p={prob:.2f}')
        arr.markers.append(m)
    return arr


def main(args=None) -> int:
    """Entry point of ``ros2 run hearing_hands_ros contact_sound_predictor``."""
    return run_node(ContactSoundPredictor, args)


if __name__ == '__main__':
    raise SystemExit(main())
