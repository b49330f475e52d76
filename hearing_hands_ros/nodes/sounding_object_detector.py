"""``sounding_object_detector``: which object in the wrist-camera frame made that sound?

Subscribes ``image`` (sensor_msgs/Image; ``image/compressed`` with ``use_compressed:=true``),
``camera_info`` (CameraInfo), ``joint_states`` (the gripper aperture), ``gripper_pose``
(geometry_msgs/PoseStamped, optional: it places objects for the object sound memory),
``audio_stamped`` (AudioDataStamped) and ``audio_info`` (AudioInfo, from a latched publisher or
a volatile one that republishes, as ``audio_capture`` does). A lifecycle node: the model loads
on configure, the subscriptions exist while active, cleanup frees the model; ``autostart``
(default true) configures and activates it at start. The processing is
:class:`hearing_hands_ros.detector_pipeline.DetectorPipeline`: audio callbacks only decode and
push the chunk (ring buffer + streaming onset detector); each onset
becomes a pending event. A worker thread (not the executor's) waits until the event's audio
window has arrived, pairs it with the frame nearest the onset, runs the model (ONNX Runtime or
torch) and answers with ``look_match.sounding_candidates``, as ``evaluate detector`` scores it.
It publishes:

* ``sounding_objects`` (vision_msgs/Detection2DArray): one detection per candidate object (bbox
  in camera pixels, score = P(it made the sound)); header = onset time + camera frame id;
* ``sounding_object_mask`` (sensor_msgs/Image mono8, same stamp): score-weighted candidate masks;
* ``~/debug_image`` (rgb8): mask, boxes, scores and the window's spectrogram strip;
* ``/diagnostics``: backend, latency, dropped frames/events, input errors.

Bad input (unknown encodings, truncated data, odd audio sizes, missing/changing AudioInfo,
stamps going backwards or far in the future) drops only that message, with a throttled warning
and a diagnostics entry. A missing or corrupt model keeps the node alive in ERROR state.
"""
from __future__ import annotations

import queue
import time

import cv2
import numpy as np
from audio_common_msgs.msg import AudioDataStamped, AudioInfo
from geometry_msgs.msg import PoseStamped
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, JointState
from vision_msgs.msg import Detection2D, Detection2DArray, ObjectHypothesisWithPose

from hearing_hands_ros import audio as A
from hearing_hands_ros import images as I
from hearing_hands_ros import ros_convert as rc
from hearing_hands_ros.detector_pipeline import Answer, DetectorPipeline, InputError, PipelineConfig
from hearing_hands_ros.models.detector import DetectorConfig, torch_loader
from hearing_hands_ros.models.look_match import ContactRule, LookConfig, load_look_match
from hearing_hands_ros.nodes.common import (AUDIO_SUB_QOS, AUTOSTART, SENSOR_QOS, InfoRepeats, ModelNode,
                                            run_node)
from hearing_hands_ros.overlay import debug_overlay
from hearing_hands_ros.paths import model_path
from hearing_hands_ros.errors import ModelError
from hearing_hands_ros.runtime import load_bundle

NS = 1_000_000_000


def default_model_path() -> str:
    """The shipped model (source checkout's models/, else the installed share folder)."""
    return str(model_path('sounding_object_detector.onnx'))


PARAMS = {
    **AUTOSTART,
    'model_path': ('', 'Detector bundle (.onnx + .json); empty = the shipped default model.'),
    'backend': ('auto', 'auto | cuda | tensorrt | cpu (ONNX Runtime) | torch.'),
    'threads': (2, 'CPU threads for inference (0 = runtime default).'),
    'onset_threshold_db': (12.0, 'Onset threshold above the adaptive noise floor [dB].'),
    'audio_window_s': (0.0, 'Audio after the onset given to the model [s]; 0 = the model\'s own.'),
    'max_frame_age_s': (0.1, 'Max |frame stamp - onset| of the paired frame [s]; else the event '
                             'is dropped.'),
    'score_threshold': (0.0, 'Publish only detections with at least this score.'),
    'min_area': (0.004, 'Candidates cover at least this fraction of the frame.'),
    'max_area': (0.8, 'Candidate segments cover at most this fraction of the frame (a larger '
                      'one means the table model failed).'),
    'T_tcp_camera': ([0.0, -0.075, 0.068, 0.9220290376453586, 0.0, 0.0, -0.3871207224352294],
                     'Wrist camera (optical frame) in the gripper TCP frame: x y z qx qy qz qw '
                     '(the robot URDF; default: the sound world).'),
    'aperture_joint': ('gripper_aperture', 'joint_states name of the gripper opening [m].'),
    'default_aperture': (0.0, 'Gripper opening [m] assumed until joint_states names it.'),
    'table_refit_s': (2.0, 'Refit the table colour model on the recent frames this often [s].'),
    'publish_debug_image': (True, 'Publish ~/debug_image.'),
    'use_compressed': (False, 'Subscribe image/compressed (CompressedImage) instead of image.'),
    'ring_seconds': (4.0, 'Audio history kept [s].'),
    'frame_history': (30, 'Camera frames kept for pairing with onsets.'),
    'max_future_s': (10.0, 'Drop messages stamped this far ahead of the node clock [s]; 0 = off.'),
    'event_timeout_s': (1.0, 'Give up waiting for an event\'s audio after this wall time [s].'),
    'sound_memory_size': (32, 'Object sound memory: lone touches remembered (look + sound) to '
                              'decide later touches between two objects; 0 = off.'),
}


COUNTERS = ('events', 'detections_published', 'dropped_events', 'dropped_frames', 'audio_chunks')


class SoundingObjectDetector(ModelNode):
    """Lifecycle shell around one :class:`DetectorPipeline` (see the module docstring)."""

    def __init__(self, **kwargs):
        super().__init__('sounding_object_detector', PARAMS, 'wrist_camera+wrist_mic', **kwargs)
        self.bundle = None
        self.cfg: DetectorConfig | None = None
        self.pipe: DetectorPipeline | None = None
        self._events: queue.Queue = queue.Queue(maxsize=64)
        self._info_repeats = InfoRepeats()
        for key in COUNTERS:
            self.diag.count(key, 0)
        self.start()

    # --- lifecycle -----------------------------------------------------------------------
    def configure(self) -> None:
        """Load the detector bundle (and its look match); create the publishers."""
        path = self.p.model_path or default_model_path()
        # spin=False: the runtime's threads sleep after a run, so the segments and the look
        # match that follow get the cores (spinning doubled the answer time on 2 cores)
        self.bundle = load_bundle(path, 'detector', backend=self.p.backend,
                                  threads=int(self.p.threads), torch_loader=torch_loader,
                                  spin=False)
        meta = self.bundle.meta
        if 'config' not in meta:
            raise ModelError(f'{path}: metadata lacks the detector config; re-export it')
        self.cfg = DetectorConfig.from_dict(meta['config'])
        mel_dims = list(meta['inputs'].get('logmel', ['b', 1, self.cfg.n_mels, self.cfg.frames]))
        if self.cfg.frames != meta.get('frames') or mel_dims[2:] != [self.cfg.n_mels,
                                                                     self.cfg.frames]:
            raise ModelError(f'{path}: audio layout in metadata is inconsistent; re-export it')
        if self.p.audio_window_s > 0:
            self.cfg.window_post_s = float(self.p.audio_window_s)
        look, weight, look_cfg = self._load_look()
        contact = ContactRule.from_meta(meta.get('look_match')) if look is not None else None
        self.diag.set_value('contact_rule', 'none' if contact is None else
                            f'radius {contact.radius_px:g} px, weight {contact.weight:g}')
        self.pipe = DetectorPipeline(self.bundle, self.cfg, PipelineConfig.from_params(self.p),
                                     look, weight, look_cfg, contact)
        self.diag.set_value('backend', self.bundle.backend)
        self.diag.set_value('model', str(self.bundle.path))
        self.get_logger().info(f'model {self.bundle.path} on {self.bundle.backend} '
                               f'({self.cfg.variant}, {meta.get("num_slots")} slots)')
        self.pub_det = self.publisher(Detection2DArray, 'sounding_objects', 10)
        self.pub_mask = self.publisher(Image, 'sounding_object_mask', 10)
        self.pub_debug = self.publisher(Image, '~/debug_image', 10)

    def _load_look(self):
        look, weight, look_cfg = None, 0.0, LookConfig()
        try:
            look, weight = load_look_match(self.bundle, self.p.backend, int(self.p.threads),
                                           spin=False)
            if look is not None:
                look_cfg = LookConfig.from_dict(look.meta['config'])
                c, d = look_cfg, self.cfg
                if (c.sample_rate, c.window_pre_s) != (d.sample_rate, d.window_pre_s):
                    raise ModelError('the look match and the detector disagree on the audio '
                                     'window; re-export them together')
                self.get_logger().info(f'look match {look.path} (weight {weight:g})')
        except ModelError as e:
            look, weight, look_cfg = None, 0.0, LookConfig()
            self.diag.report_input_error('look_match', f'look match not loaded: {e}; slots alone')
        self.diag.set_value('look_match', str(look.path) if look else 'none')
        return look, weight, look_cfg

    def activate(self) -> None:
        """Subscribe the sensors and start the inference thread."""
        self._info_repeats.reset()
        audio_group = MutuallyExclusiveCallbackGroup()
        self.subscribe_info(AudioInfo, 'audio_info', self.on_audio_info, audio_group)
        self.subscribe(AudioDataStamped, 'audio_stamped', self.on_audio, AUDIO_SUB_QOS,
                       callback_group=audio_group)
        image_type, topic = ((CompressedImage, 'image/compressed') if self.p.use_compressed
                             else (Image, 'image'))
        self.subscribe(image_type, topic, self.on_image, SENSOR_QOS,
                       callback_group=MutuallyExclusiveCallbackGroup())
        self.subscribe(CameraInfo, 'camera_info', self.on_camera_info, SENSOR_QOS)
        self.subscribe(JointState, 'joint_states', self.on_joint_states, SENSOR_QOS)
        self.subscribe(PoseStamped, 'gripper_pose', self.on_pose, SENSOR_QOS)
        self.start_worker(self._work, 'detector_inference')

    def deactivate(self) -> None:
        """Stop the inference thread; events still waiting are dropped."""
        self.stop_worker(self._events, 'dropped_events')

    def cleanup(self) -> None:
        """Free the model, its look match and the stream's history."""
        self.pipe, self.bundle, self.cfg = None, None, None

    # --- inputs --------------------------------------------------------------------------
    def _future(self, t_ns: int) -> bool:
        lim = self.p.max_future_s
        return lim > 0 and t_ns > self.get_clock().now().nanoseconds + lim * NS

    def on_camera_info(self, msg: CameraInfo) -> None:
        try:
            self.pipe.set_camera(msg.k, msg.height, msg.width)
        except (InputError, ValueError) as e:
            self.diag.report_input_error(getattr(e, 'kind', 'bad_camera_info'), str(e))

    def on_joint_states(self, msg: JointState) -> None:
        names = list(msg.name)
        if self.p.aperture_joint in names:
            i = names.index(self.p.aperture_joint)
            if i < len(msg.position):
                self.pipe.set_aperture(float(msg.position[i]))

    def on_pose(self, msg: PoseStamped) -> None:
        t_ns, p, q = rc.pose_from_msg(msg)
        try:
            self.pipe.set_pose(t_ns, p, q)
        except InputError as e:
            self.diag.report_input_error(e.kind, str(e))

    def on_audio_info(self, msg: AudioInfo) -> None:
        # a latched publisher's message comes on both halves of the info pair: take it once
        if self._info_repeats.seen(msg):
            return
        try:
            fmt = A.AudioFormat.from_info(msg)
        except A.AudioFormatError as e:
            self.pipe.clear_format()
            self.diag.report_input_error('bad_audio_info', str(e))
            return
        old = self.pipe.format
        if self.pipe.set_format(fmt):
            self.diag.report_input_error('audio_info_changed', f'AudioInfo changed mid-stream '
                                         f'({old} -> {fmt}); audio history reset')

    def on_audio(self, msg: AudioDataStamped) -> None:
        self.diag.count('audio_chunks')
        if self.diag.counters['audio_chunks'] % 32 == 0:        # about once a second
            for key, value in self.pipe.audio_stats().items():
                self.diag.set_value(f'audio_ring.{key}', value)
        fmt = self.pipe.format
        if fmt is None:
            self.diag.report_input_error('audio_info_missing', 'audio before a valid AudioInfo on '
                                         'audio_info; chunk dropped')
            return
        try:
            t0, x = rc.audio_from_msg(msg, fmt)
            if self._future(t0):
                raise InputError('audio_stamp_future', 'audio stamped > max_future_s ahead of the '
                                 'node clock; chunk dropped')
            found = self.pipe.push_audio(t0, x)
        except InputError as e:
            self.diag.report_input_error(e.kind, str(e))
            return
        except (ValueError, TypeError) as e:
            self.diag.report_input_error('bad_audio', f'{e}; chunk dropped')
            return
        for onset in found:
            self.diag.count('events')
            try:
                self._events.put_nowait((onset, time.monotonic()))
            except queue.Full:
                self.diag.count('dropped_events')

    def on_image(self, msg) -> None:
        try:
            rgb = I.compressed_to_rgb(msg) if isinstance(msg, CompressedImage) else I.image_to_rgb(msg)
            t = rc.stamp_to_ns(msg.header.stamp)
            if self._future(t):
                raise InputError('image_stamp_future', 'image stamped > max_future_s ahead of the '
                                 'node clock; frame dropped')
        except InputError as e:
            self.diag.report_input_error(e.kind, str(e))
            self.diag.count('dropped_frames')
            return
        except (I.ImageError, ValueError, cv2.error) as e:
            self.diag.report_input_error('bad_image', f'{e}; frame dropped')
            self.diag.count('dropped_frames')
            return
        try:
            self.pipe.push_frame(t, rgb, msg.header.frame_id)
        except InputError as e:                   # kept, but the history before it was reset
            self.diag.report_input_error(e.kind, str(e))

    # --- inference (worker thread) -------------------------------------------------------
    def _work(self) -> None:
        pipe = self.pipe
        pending: list = []
        prepared: dict = {}                               # onset -> the frame half of its answer
        while not self._stop.is_set():
            try:
                pending.append(self._events.get(timeout=0.005))
                continue                                  # collect everything queued first
            except queue.Empty:
                pass
            still = []
            for onset, t_wall in pending:
                try:
                    if not pipe.ready(onset, time.monotonic() - t_wall):
                        still.append((onset, t_wall))
                        if onset not in prepared:         # while its audio is still arriving
                            prepared[onset] = pipe.prepare(onset)
                    else:
                        answer = pipe.detect(onset, prepared.pop(onset, None))
                        self.diag.record_latency('model', answer.model_s)
                        self._publish(answer)
                        self.diag.record_latency('event', time.monotonic() - t_wall)
                except InputError as e:
                    self.diag.count('dropped_events')
                    self.diag.report_input_error(e.kind, str(e))
                except Exception as e:  # noqa: BLE001 - never let the worker die
                    self.diag.count('dropped_events')
                    self.get_logger().error(f'inference failed: {e!r}')
            keep = {o for o, _ in still}
            prepared = {o: v for o, v in prepared.items() if o in keep}
            pending = still
            if not pending:
                pipe.refit_table()                        # between events only
            self.diag.set_value('fingers', pipe.fingers)
            if pipe.fingers.startswith('not cut out'):
                self.get_logger().warning('no camera_info yet: the fingers are not cut out of the '
                                          'object segments', throttle_duration_sec=10.0)

    def _publish(self, answer: Answer) -> None:
        rgb, cands, s = answer.rgb, answer.candidates, answer.look_size
        h, w = rgb.shape[:2]
        sx, sy = w / s, h / s
        header = rc.header(answer.onset_ns, answer.frame_id)
        arr = Detection2DArray(header=header)
        for c in cands:
            if c['score'] < self.p.score_threshold:
                continue
            x0, y0, x1, y1 = c['bbox']
            d = Detection2D(header=header, id=f"object_{c['slot']}")
            d.bbox.center.position.x = (x0 + x1) / 2 * sx
            d.bbox.center.position.y = (y0 + y1) / 2 * sy
            d.bbox.size_x, d.bbox.size_y = (x1 - x0) * sx, (y1 - y0) * sy
            hyp = ObjectHypothesisWithPose()
            hyp.hypothesis.class_id = 'sounding_object'
            hyp.hypothesis.score = float(c['score'])
            d.results.append(hyp)
            arr.detections.append(d)
        self.pub_det.publish(arr)
        self.diag.count('detections_published')
        soft = np.zeros((s, s), np.float32)
        for c in cands:
            soft[c['mask']] += c['score']
        soft = cv2.resize(np.clip(soft, 0, 1).astype(np.float32), (w, h),
                          interpolation=cv2.INTER_LINEAR)
        self.pub_mask.publish(rc.image_msg(np.round(soft * 255).astype(np.uint8), answer.onset_ns,
                                           answer.frame_id))
        if self.p.publish_debug_image:
            picture = debug_overlay(rgb, cands, answer.mel, sx, sy)
            self.pub_debug.publish(rc.image_msg(picture, answer.onset_ns, answer.frame_id))


def main(args=None) -> int:
    """Entry point of ``ros2 run hearing_hands_ros sounding_object_detector``."""
    return run_node(SoundingObjectDetector, args)


if __name__ == '__main__':
    raise SystemExit(main())
