"""``contact_monitor`` node: hear, while a planned motion runs, that it went otherwise than planned.

Subscribes ``planned_path`` (nav_msgs/Path, poses stamped with their planned times, published
before the motion), ``planned_gripper`` (optional: trajectory_msgs/JointTrajectory of the finger
opening along the path, header stamped as the path; where and when the fingers close and open
is where grasps and drops sound), ``image`` and ``camera_info`` (the wrist camera: the latest
frame is the plan-start view the prediction sees), ``joint_states`` (the gripper aperture, held
along a path that has no gripper plan), ``audio_stamped``
(AudioDataStamped) and ``audio_info`` (AudioInfo, latched or republished, as the other nodes).
For each path it predicts the contacts it should make (:meth:`Planner.expect`: the contact-event
model, or the kinematic rule with ``expected_source: kinematic``) and runs
:class:`hearing_hands_ros.monitor.ExecutionMonitor` on the microphone. Publishes:

* ``contact_anomalies`` (hearing_hands_msgs/ContactAnomalyArray) the moment one is decided:
  ``UNEXPECTED`` (a contact heard outside every expected window) in the chunk that holds its
  onset, ``MISSING`` in the first chunk past the expected window's end, ``LOUDER``/``QUIETER``
  at the matched onset;
* ``execution_status`` (hearing_hands_msgs/ExecutionStatus) once per path, when its end plus
  ``tail_s`` has been heard: ``AS_EXPECTED`` or ``ANOMALOUS`` with its anomalies;
* ``/diagnostics``: counts, the latency from a chunk's arrival to its anomaly, bad input.

Decisions follow the audio clock (stamps), not the wall clock: a replayed bag gives what the
live run gave (``evaluate monitor`` runs the same core). A lifecycle node: the model loads on
configure, subscriptions exist while active, ``autostart`` (default true). Bad input (unknown
encodings, odd audio sizes, missing AudioInfo, bad paths, no image yet) is logged (throttled),
counted on ``/diagnostics`` and dropped; the node keeps running.
"""
from __future__ import annotations

import queue
import threading
import time

import numpy as np
from audio_common_msgs.msg import AudioDataStamped, AudioInfo
from hearing_hands_msgs.msg import ContactAnomalyArray, ExecutionStatus
from nav_msgs.msg import Path as PathMsg
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from sensor_msgs.msg import CameraInfo, Image, JointState
from trajectory_msgs.msg import JointTrajectory

from hearing_hands_ros import audio as A
from hearing_hands_ros import ros_convert as rc
from hearing_hands_ros import trajectory as tr
from hearing_hands_ros.errors import ModelError
from hearing_hands_ros.images import ImageError, image_to_rgb
from hearing_hands_ros.monitor import ExecutionMonitor, MonitorConfig
from hearing_hands_ros.nodes.common import (AUDIO_SUB_QOS, AUTOSTART, GRIPPER_PLAN_PARAMS,
                                            RELIABLE_QOS, SENSOR_QOS, GripperPlans, InfoRepeats,
                                            ModelNode, run_node)

PARAMS = {
    **AUTOSTART,
    'model_path': ('', 'Predictor bundle (.onnx + .json) with its contact_events bundle beside '
                       'it; empty = the shipped default model.'),
    'expected_source': ('kinematic', "Where a path's expected contacts come from: 'model' (the "
                                     "contact-event model, sees the wrist camera) or 'kinematic' "
                                     '(a hand-written rule from the path alone; the default, chosen '
                                     'on validation, docs/monitor.md).'),
    'calibration': ('', 'How often each sort of expected contact is heard in normal runs, from '
                        '`hearing-hands train monitor` (.json); empty = uncalibrated (on the '
                        'sound world calibrating lowered fault AUC, docs/monitor.md).'),
    'backend': ('auto', 'auto | cuda | tensorrt | cpu (ONNX Runtime) | torch.'),
    'threads': (1, 'CPU threads for the event model (0 = runtime default).'),
    'tolerance_s': (0.03, 'Always added to an expected contact\'s time window, either side [s] '
                          '(with spread_k, chosen on validation: an onset much earlier than '
                          'planned is an obstacle, not the planned contact).'),
    'spread_k': (1.5, 'Window half-width in units of the predicted time spread.'),
    'level_margin_db': (20.0, 'A matched contact louder or quieter than predicted by more than '
                              'this is LOUDER / QUIETER [dB].'),
    'near_s': (10.0, 'A MISSING while onsets this close to it matched other expected contacts, '
                     'or an UNEXPECTED onset this close to a required expected contact, is more '
                     'likely a promised contact that was not real or a timing error: its '
                     'confidence is multiplied by near_weight [s] (10 = anywhere in the path).'),
    'near_weight': (0.3, 'See near_s.'),
    'min_probability': (0.5, 'Expected contacts less likely than this are not required (their '
                             'absence is no MISSING).'),
    'min_confidence': (0.8, 'Anomalies less confident than this are not published (chosen on '
                            'validation: 11 false alarms per 100 normal actions, recall 0.73).'),
    'material_check': (False, 'Also report WRONG_MATERIAL: classify the sound of each matched '
                              'contact (0.42 s after its onset) and compare with the expected '
                              'material (off by default: the expected material is too often '
                              'wrong; see docs/monitor.md).'),
    'material_classifier': ('', 'Sound classifier (.json/.npz) for material_check; empty = the '
                                'shipped models/material_classifier.json.'),
    'onset_threshold_db': (12.0, 'Onset detector threshold above the adaptive noise floor [dB].'),
    'tail_s': (0.3, 'A path is judged this long after its last pose [s] (its sounds ring out).'),
    'aperture': (0.04, 'Gripper opening used when no joint_states arrived [m].'),
    'aperture_joint': ('gripper_aperture', 'Joint name of the gripper opening in joint_states and '
                                           'planned_gripper.'),
    **GRIPPER_PLAN_PARAMS,
    'max_path_duration': (8.0, 'Longest planned path accepted [s] (at most the model\'s limit).'),
    'max_future_s': (5.0, 'Audio stamped more than this ahead of the node clock is dropped [s] '
                          '(a wrong clock would otherwise close every path at once).'),
    'queue_size': (8, 'Paths waiting for their prediction; the oldest is dropped when full.'),
}
COUNTERS = ('paths', 'paths_judged', 'paths_anomalous', 'anomalies', 'audio_chunks',
            'heard_onsets', 'dropped_paths', 'gripper_plans', 'paths_without_gripper_plan')


class ContactMonitor(ModelNode):
    """Lifecycle shell around :class:`ExecutionMonitor` (module docstring)."""

    def __init__(self, **kwargs):
        super().__init__('contact_monitor', PARAMS, 'wrist_camera+wrist_mic', **kwargs)
        self.planner = None
        self.monitor: ExecutionMonitor | None = None
        self._lock = threading.Lock()           # the monitor: audio callback and path worker
        self._image: np.ndarray | None = None
        self._K: np.ndarray | None = None
        self._aperture = float(self.p.aperture)
        self._format: A.AudioFormat | None = None
        self._info_repeats = InfoRepeats()
        self._expected: dict = {}               # path start ns -> (frame, expected events)
        self._gripper_plans = GripperPlans()
        self._jobs: queue.Queue = queue.Queue(maxsize=max(1, int(self.p.queue_size)))
        for key in COUNTERS:
            self.diag.count(key, 0)
        self.start()

    # --- lifecycle ------------------------------------------------------------------------
    def configure(self) -> None:
        """Load the event model (the planner API); create the publishers."""
        from hearing_hands_ros.planner import EXPECT_SOURCES, Planner, default_model_path
        if self.p.expected_source not in EXPECT_SOURCES:
            raise ModelError(f'expected_source must be one of {EXPECT_SOURCES}, '
                             f'not {self.p.expected_source!r}')
        self.planner = Planner(self.p.model_path or str(default_model_path()),
                               backend=self.p.backend, threads=int(self.p.threads))
        if self.p.expected_source == 'model' and self.planner.events is None:
            raise ModelError('no contact_events bundle beside the model: use expected_source '
                             "'kinematic' or export one (hearing-hands export events)")
        self.max_duration = min(float(self.p.max_path_duration), self.planner.max_path_duration)
        self.cfg = MonitorConfig(tolerance_s=float(self.p.tolerance_s), spread_k=float(self.p.spread_k),
                                 level_margin_db=float(self.p.level_margin_db),
                                 near_s=float(self.p.near_s), near_weight=float(self.p.near_weight),
                                 min_probability=float(self.p.min_probability),
                                 min_confidence=float(self.p.min_confidence))
        from hearing_hands_ros.errors import UserError
        from hearing_hands_ros.eval.monitor import load_calibration
        self.calibration = None
        if self.p.calibration:
            try:
                self.calibration = load_calibration(self.p.expected_source, self.p.calibration)
            except UserError as e:
                raise ModelError(str(e)) from None
            if self.calibration is None:
                raise ModelError(f'calibration {self.p.calibration} not found')
        self.diag.set_value('calibrated', str(self.calibration is not None).lower())
        self.classify = None
        if self.p.material_check:
            from hearing_hands_ros.eval.monitor import material_classifier
            try:                                # loads it; made again for the audio's rate
                self.classify = material_classifier(16000, self.p.material_classifier or None)
            except (UserError, OSError, ValueError, KeyError) as e:
                raise ModelError(f'material classifier: {e}') from None
        self.monitor = None                     # made when the audio format is known
        self.pub_anomalies = self.publisher(ContactAnomalyArray, 'contact_anomalies', RELIABLE_QOS)
        self.pub_status = self.publisher(ExecutionStatus, 'execution_status', RELIABLE_QOS)
        self.diag.set_value('expected_source', self.p.expected_source)
        self.diag.set_value('model', str(self.planner.bundle.path))
        self.diag.set_value('backend', self.planner.backend)

    def activate(self) -> None:
        """Subscribe; start the prediction thread."""
        audio_group = MutuallyExclusiveCallbackGroup()
        self.subscribe_info(AudioInfo, 'audio_info', self.on_audio_info, audio_group)
        self.subscribe(AudioDataStamped, 'audio_stamped', self.on_audio, AUDIO_SUB_QOS,
                       callback_group=audio_group)
        self.subscribe(PathMsg, 'planned_path', self.on_path, RELIABLE_QOS)
        self.subscribe(JointTrajectory, 'planned_gripper', self.on_gripper_plan, RELIABLE_QOS)
        self.subscribe(Image, 'image', self.on_image, SENSOR_QOS)
        self.subscribe(CameraInfo, 'camera_info', self.on_camera_info, SENSOR_QOS)
        self.subscribe(JointState, 'joint_states', self.on_joint_states, SENSOR_QOS)
        self.start_worker(self._work, 'monitor_prediction')

    def deactivate(self) -> None:
        """Stop the prediction thread; paths being monitored are forgotten."""
        self.stop_worker(self._jobs, 'dropped_paths')
        with self._lock:
            self.monitor = None
            self._expected.clear()
        self._gripper_plans.clear()

    def cleanup(self) -> None:
        """Free the model."""
        self.planner = None

    # --- camera and gripper ----------------------------------------------------------------
    def on_image(self, msg: Image) -> None:
        try:
            rgb = image_to_rgb(msg)
        except (ImageError, ValueError) as e:
            self.diag.report_input_error('bad_image', f'{e}; frame ignored')
            return
        self._image = rgb

    def on_camera_info(self, msg: CameraInfo) -> None:
        K = np.asarray(msg.k, dtype=np.float64).reshape(3, 3)
        if K[0, 0] > 0 and K[1, 1] > 0 and np.isfinite(K).all():
            self._K = K

    def on_joint_states(self, msg: JointState) -> None:
        names = list(msg.name)
        if self.p.aperture_joint in names:
            i = names.index(self.p.aperture_joint)
            if i < len(msg.position) and np.isfinite(msg.position[i]):
                self._aperture = float(msg.position[i])

    def on_gripper_plan(self, msg: JointTrajectory) -> None:
        self._gripper_plans.take(msg, self.p.aperture_joint, self.diag)

    # --- paths -----------------------------------------------------------------------------
    def on_path(self, msg: PathMsg) -> None:
        self.diag.count('paths')
        times, pos, quat, frame = rc.path_from_msg(msg)
        if not frame and msg.poses:
            frame = msg.poses[0].header.frame_id
        try:
            if not len(times):
                raise tr.TrajectoryError('path has no poses')
            traj = tr.validate(tr.Trajectory.from_stamps_ns(times, pos, quat, frame_id=frame,
                                                            origin_ns=int(times[0])),
                               self.planner.frame_id, self.max_duration)
        except tr.TrajectoryError as e:
            self.diag.report_input_error('bad_path', f'{e}; path not monitored')
            return
        self.enqueue(self._jobs, (rc.stamp_to_ns(msg.header.stamp), times, frame, traj, self._image,
                                  self._K, self._aperture), 'dropped_paths', 'prediction')

    def _work(self) -> None:
        self.serve(self._jobs, self._expect, 'prediction_failed')

    def _expect(self, stamp_ns, times, frame, traj, image, K, aperture) -> None:
        source = self.p.expected_source
        if image is None and source == 'model':
            self.diag.report_input_error('no_image', 'no camera image received on image yet; '
                                         'path not monitored')
            return
        start_ns, end_ns = int(times[0]), int(times[-1])
        traj.apertures = self._gripper_plans.apertures(stamp_ns, times, self.p.gripper_plan_wait_s)
        if traj.apertures is None:
            self.diag.count('paths_without_gripper_plan')
        t0 = time.perf_counter()
        (events, sliding), = self.planner.expect([traj], image, K=K, aperture=aperture,
                                                 source=source)
        self.diag.record_latency('prediction', time.perf_counter() - t0)
        with self._lock:
            if self.monitor is None:
                self.diag.report_input_error('audio_info_missing', 'path before a valid '
                                             'AudioInfo on audio_info; not monitored')
                return
            self._expected[start_ns] = (frame, events)
            found = self.monitor.add_path(start_ns, start_ns, end_ns, events, sliding)
        self._publish(found, [])

    # --- audio -----------------------------------------------------------------------------
    def on_audio_info(self, msg: AudioInfo) -> None:
        if self._info_repeats.seen(msg):
            return
        try:
            fmt = A.AudioFormat.from_info(msg)
        except A.AudioFormatError as e:
            self.diag.report_input_error('bad_audio_info', str(e))
            return
        with self._lock:
            if fmt == self._format and self.monitor is not None:
                return
            if self._format is not None and fmt != self._format:
                self.diag.report_input_error('audio_info_changed', f'AudioInfo changed mid-stream '
                                             f'({self._format} -> {fmt}); monitoring restarts')
            self._format = fmt
            if self.classify is not None:
                from hearing_hands_ros.eval.monitor import material_classifier
                self.classify = material_classifier(fmt.sample_rate, self.p.material_classifier or None)
            self.monitor = ExecutionMonitor(fmt.sample_rate, self.cfg, tail_s=float(self.p.tail_s),
                                            threshold_db=float(self.p.onset_threshold_db),
                                            classify=self.classify, calibration=self.calibration)
            self._expected.clear()

    def on_audio(self, msg: AudioDataStamped) -> None:
        t_arrival = time.perf_counter()
        self.diag.count('audio_chunks')
        with self._lock:
            if self.monitor is None:
                self.diag.report_input_error('audio_info_missing', 'audio before a valid '
                                             'AudioInfo on audio_info; chunk dropped')
                return
            try:
                t0, x = rc.audio_from_msg(msg, self._format)
                if t0 - self.get_clock().now().nanoseconds > self.p.max_future_s * 1e9:
                    self.diag.report_input_error('audio_stamp_future', 'audio stamped more than '
                                                 'max_future_s ahead of the node clock; chunk dropped')
                    return
                anomalies, done = self.monitor.push_audio(t0, x)
            except (ValueError, TypeError) as e:
                self.diag.report_input_error('bad_audio', f'{e}; chunk dropped')
                return
        self._publish(anomalies, done, t_arrival)

    # --- output ----------------------------------------------------------------------------
    def _publish(self, anomalies: list, done: list, t_arrival: float | None = None) -> None:
        by_path: dict = {}
        for key, a in anomalies:
            by_path.setdefault(key, []).append(a)
        for start_ns, found in by_path.items():
            frame = self._expected.get(start_ns, ('', []))[0]
            self.pub_anomalies.publish(rc.contact_anomalies_msg(found, start_ns, frame))
            self.diag.count('anomalies', len(found))
            for a in found:
                self.diag.count(f'anomalies.{a.kind}')
            if t_arrival is not None:
                self.diag.record_latency('chunk_to_anomaly', time.perf_counter() - t_arrival)
        for outcome in done:
            frame, events = self._expected.pop(outcome.key, ('', []))
            self.pub_status.publish(rc.execution_status_msg(outcome, events, frame))
            self.diag.count('paths_judged')
            self.diag.count('heard_onsets', len(outcome.heard))
            if not outcome.ok:
                self.diag.count('paths_anomalous')
                kinds = ', '.join(sorted({a.kind for a in outcome.anomalies}))
                self.get_logger().warning(f'path at {outcome.start_ns * 1e-9:.3f} s: {kinds}',
                                          throttle_duration_sec=1.0)


def main(args=None) -> int:
    """Entry point of ``ros2 run hearing_hands_ros contact_monitor``."""
    return run_node(ContactMonitor, args)


if __name__ == '__main__':
    raise SystemExit(main())
