"""``sounding_object_detector``: which object in the wrist-camera frame made that sound?

Subscribes ``image`` (sensor_msgs/Image; ``image/compressed`` with ``use_compressed:=true``),
``camera_info`` (CameraInfo), ``joint_states`` (the gripper aperture), ``audio_stamped``
(AudioDataStamped) and ``audio_info`` (AudioInfo, transient local). Audio
callbacks only decode, push the samples into a ring buffer and run the streaming onset detector;
each onset becomes a pending event. A worker thread (not the executor's) waits until the audio
window ``[onset - pre, onset + post]`` has arrived, pairs it with the frame nearest the onset,
runs the model (ONNX Runtime or torch) and answers with ``look_match.sounding_candidates``, as
``evaluate detector`` scores it: the frame's automatic object segments (a table colour model
fitted on the recent frames; the fingers cut out from the gripper geometry: ``camera_info``,
``T_tcp_camera``, aperture), scored by the slots and, when the bundle carries one, rescored by
the look match. It publishes:

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

import collections
import queue
import threading
import time
from pathlib import Path

import cv2
import numpy as np
from audio_common_msgs.msg import AudioDataStamped, AudioInfo
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, JointState
from vision_msgs.msg import Detection2D, Detection2DArray, ObjectHypothesisWithPose

from hearing_hands_ros import audio as A
from hearing_hands_ros import images as I
from hearing_hands_ros import ros_convert as rc
from hearing_hands_ros.automask import (AutoMaskConfig, TableModel, gripper_pixels, min_segment_px,
                                        object_segments)
from hearing_hands_ros.models.detector import DetectorConfig, audio_input, image_input, torch_loader
from hearing_hands_ros.models.look_match import (LookConfig, load_look_match, segment_regions,
                                                 sound_features, sounding_candidates)
from hearing_hands_ros.nodes.common import (LATCHED_QOS, SENSOR_QOS, Diagnostics, declare_params,
                                            run_node)
from hearing_hands_ros.paths import model_path
from hearing_hands_ros.runtime import ModelError, load_bundle

NS = 1_000_000_000
#: Best effort (matches reliable and best-effort publishers) but deep: chunks are never dropped
#: by the subscription queue while a callback is busy.
AUDIO_SUB_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=200,
                           reliability=ReliabilityPolicy.BEST_EFFORT)


def default_model_path() -> str:
    """The shipped model (source checkout's models/, else the installed share folder)."""
    return str(model_path('sounding_object_detector.onnx'))


PARAMS = {
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
}


class SoundingObjectDetector(Node):
    def __init__(self, **kwargs):
        super().__init__('sounding_object_detector', **kwargs)
        self.p = declare_params(self, PARAMS)
        self.diag = Diagnostics(self, hardware_id='wrist_camera+wrist_mic')
        self.bundle = None
        self.cfg: DetectorConfig | None = None
        self._load_model()
        self._lock = threading.Lock()
        self.fmt: A.AudioFormat | None = None
        self.ring: A.AudioRingBuffer | None = None
        self.onsets: A.OnsetDetector | None = None
        self._last_audio_ns: int | None = None
        self._last_image_ns: int | None = None
        self.frames: collections.deque = collections.deque(maxlen=max(2, int(self.p.frame_history)))
        self._events: queue.Queue = queue.Queue(maxsize=64)
        self._stop = threading.Event()
        self.look, self.look_weight, self.look_cfg = None, 0.0, LookConfig()
        self._load_look()
        self.K: np.ndarray | None = None
        self._info_size: tuple[int, int] | None = None
        self.aperture = float(self.p.default_aperture)
        self._table: TableModel | None = None
        self._table_t = -np.inf
        self.pub_det = self.create_publisher(Detection2DArray, 'sounding_objects', 10)
        self.pub_mask = self.create_publisher(Image, 'sounding_object_mask', 10)
        self.pub_debug = self.create_publisher(Image, '~/debug_image', 10)
        audio_group = MutuallyExclusiveCallbackGroup()
        self.create_subscription(AudioInfo, 'audio_info', self.on_audio_info, LATCHED_QOS,
                                 callback_group=audio_group)
        self.create_subscription(AudioDataStamped, 'audio_stamped', self.on_audio, AUDIO_SUB_QOS,
                                 callback_group=audio_group)
        if self.p.use_compressed:
            self.create_subscription(CompressedImage, 'image/compressed', self.on_image, SENSOR_QOS,
                                     callback_group=MutuallyExclusiveCallbackGroup())
        else:
            self.create_subscription(Image, 'image', self.on_image, SENSOR_QOS,
                                     callback_group=MutuallyExclusiveCallbackGroup())
        self.create_subscription(CameraInfo, 'camera_info', self.on_camera_info, SENSOR_QOS)
        self.create_subscription(JointState, 'joint_states', self.on_joint_states, SENSOR_QOS)
        for key in ('events', 'detections_published', 'dropped_events', 'dropped_frames',
                    'audio_chunks'):
            self.diag.count(key, 0)
        self.worker = threading.Thread(target=self._work, name='detector_inference', daemon=True)
        self.worker.start()

    # --- model ---------------------------------------------------------------------------
    def _load_model(self) -> None:
        path = self.p.model_path or default_model_path()
        try:
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
            if self.cfg.frames != meta.get('frames') or mel_dims[2:] != [self.cfg.n_mels, self.cfg.frames]:
                raise ModelError(f'{path}: audio layout in metadata is inconsistent; re-export it')
            if self.p.audio_window_s > 0:
                self.cfg.window_post_s = float(self.p.audio_window_s)
            self.diag.set_value('backend', self.bundle.backend)
            self.diag.set_value('model', str(self.bundle.path))
            self.get_logger().info(f'model {self.bundle.path} on {self.bundle.backend} '
                                   f'({self.cfg.variant}, {meta.get("num_slots")} slots)')
        except ModelError as e:
            self.bundle, self.cfg = None, None
            self.diag.set_value('backend', 'none')
            self.diag.set_status(Diagnostics.ERROR, f'model not loaded: {e}')
            self.get_logger().error(f'model not loaded: {e}; the node runs but detects nothing')

    def _load_look(self) -> None:
        if self.bundle is None:
            return
        try:
            self.look, self.look_weight = load_look_match(self.bundle, self.p.backend,
                                                          int(self.p.threads), spin=False)
            if self.look is not None:
                self.look_cfg = LookConfig.from_dict(self.look.meta['config'])
                c, d = self.look_cfg, self.cfg
                if (c.sample_rate, c.window_pre_s) != (d.sample_rate, d.window_pre_s):
                    raise ModelError('the look match and the detector disagree on the audio '
                                     'window; re-export them together')
                self.get_logger().info(f'look match {self.look.path} (weight {self.look_weight:g})')
        except ModelError as e:
            self.look, self.look_weight = None, 0.0
            self.diag.report_input_error('look_match', f'look match not loaded: {e}; slots alone')
        self.diag.set_value('look_match', str(self.look.path) if self.look else 'none')

    # --- inputs --------------------------------------------------------------------------
    def on_camera_info(self, msg: CameraInfo) -> None:
        K = np.asarray(msg.k, float).reshape(3, 3)
        if not np.isfinite(K).all() or K[0, 0] <= 0 or K[1, 1] <= 0 or msg.width == 0 or msg.height == 0:
            self.diag.report_input_error('bad_camera_info', 'CameraInfo without valid intrinsics '
                                         '(K, width, height); ignored')
            return
        with self._lock:
            self.K, self._info_size = K, (int(msg.height), int(msg.width))

    def on_joint_states(self, msg: JointState) -> None:
        if self.p.aperture_joint in msg.name:
            i = list(msg.name).index(self.p.aperture_joint)
            if i < len(msg.position) and np.isfinite(msg.position[i]):
                with self._lock:
                    self.aperture = float(msg.position[i])

    def _gripper_mask(self, shape: tuple[int, int]) -> np.ndarray:
        """The fingers in the frame (bool, frame size) from the gripper geometry; none without
        camera_info. The camera rides on the hand, so the TCP pose itself does not matter."""
        with self._lock:
            K, size, aperture = self.K, self._info_size, self.aperture
        if K is None:
            self.diag.set_value('fingers', 'not cut out: no camera_info yet')
            self.get_logger().warn('no camera_info yet: the fingers are not cut out of the object '
                                   'segments', throttle_duration_sec=10.0)
            return np.zeros(shape, bool)
        self.diag.set_value('fingers', f'cut out (aperture {aperture:.3f} m)')
        if size != shape:                         # intrinsics of another resolution: rescale
            K = K * np.array([[shape[1] / size[1]], [shape[0] / size[0]], [1.0]])
        t = np.asarray(self.p.T_tcp_camera, float)
        pose = (np.zeros(3), np.array([0.0, 0.0, 0.0, 1.0]))
        return gripper_pixels(pose, (t[:3], t[3:]), K, aperture, shape, AutoMaskConfig())

    def _table_model(self, frames: list, size: int) -> TableModel:
        """The table colour model, fitted on the recent frames: on the first event, then refitted
        every ``table_refit_s`` between events (``_refit_table``), never while one waits."""
        if self._table is None:
            self._fit_table(frames, size)
        return self._table

    def _fit_table(self, frames: list, size: int) -> None:
        self._table = TableModel.fit(np.stack([image_input(f, size) for _, f, _ in frames]))
        self._table_t = time.monotonic()

    def _refit_table(self) -> None:
        if self.bundle is None or time.monotonic() - self._table_t < self.p.table_refit_s:
            return
        with self._lock:
            frames = list(self.frames)
        if frames:
            self._fit_table(frames, self.look_cfg.look_size)

    def _future(self, t_ns: int) -> bool:
        lim = self.p.max_future_s
        return lim > 0 and t_ns > self.get_clock().now().nanoseconds + lim * NS

    def on_audio_info(self, msg: AudioInfo) -> None:
        try:
            fmt = A.AudioFormat.from_info(msg)
        except A.AudioFormatError as e:
            with self._lock:
                self.fmt = None
            self.diag.report_input_error('bad_audio_info', str(e))
            return
        with self._lock:
            if self.fmt is not None and fmt != self.fmt:
                self.diag.report_input_error(
                    'audio_info_changed', f'AudioInfo changed mid-stream ({self.fmt} -> {fmt}); '
                    'audio history reset')
            if fmt != self.fmt:
                self.fmt = fmt
                self._reset_audio()

    def _reset_audio(self) -> None:
        sr = self.cfg.sample_rate if self.cfg else self.fmt.sample_rate
        self.ring = A.AudioRingBuffer(sr, float(self.p.ring_seconds))
        self.onsets = A.OnsetDetector(sr, threshold_db=float(self.p.onset_threshold_db))
        self._last_audio_ns = None

    def on_audio(self, msg: AudioDataStamped) -> None:
        self.diag.count('audio_chunks')
        with self._lock:
            fmt = self.fmt
        if fmt is None:
            self.diag.report_input_error('audio_info_missing', 'audio before a valid AudioInfo on '
                                         'audio_info; chunk dropped')
            return
        try:
            t0, x = rc.audio_from_msg(msg, fmt)
        except (ValueError, TypeError) as e:
            self.diag.report_input_error('bad_audio', f'{e}; chunk dropped')
            return
        if len(x) == 0:
            self.diag.report_input_error('bad_audio', 'empty audio chunk dropped')
            return
        if self._future(t0):
            self.diag.report_input_error('audio_stamp_future', 'audio stamped > max_future_s ahead '
                                         'of the node clock; chunk dropped')
            return
        mono = A.to_mono(x)
        sr = self.cfg.sample_rate if self.cfg else fmt.sample_rate
        if fmt.sample_rate != sr:
            mono = A.resample(mono, fmt.sample_rate, sr)
        with self._lock:
            if self._last_audio_ns is not None and t0 < self._last_audio_ns:
                self.diag.report_input_error('audio_stamp_backwards', 'audio stamp went backwards; '
                                             'chunk dropped')
                return
            self._last_audio_ns = t0
            self.ring.push(t0, mono)
            found = self.onsets.push(t0, mono)
        for onset in found:
            self.diag.count('events')
            try:
                self._events.put_nowait((onset, time.monotonic()))
            except queue.Full:
                self.diag.count('dropped_events')

    def on_image(self, msg) -> None:
        try:
            rgb = I.compressed_to_rgb(msg) if isinstance(msg, CompressedImage) else I.image_to_rgb(msg)
        except (I.ImageError, ValueError, cv2.error) as e:
            self.diag.report_input_error('bad_image', f'{e}; frame dropped')
            self.diag.count('dropped_frames')
            return
        t = rc.stamp_to_ns(msg.header.stamp)
        if self._future(t):
            self.diag.report_input_error('image_stamp_future', 'image stamped > max_future_s ahead '
                                         'of the node clock; frame dropped')
            self.diag.count('dropped_frames')
            return
        with self._lock:
            if self._last_image_ns is not None and t < self._last_image_ns:
                self.diag.report_input_error('image_stamp_backwards', 'image stamp went backwards; '
                                             'frame history reset')
                self.frames.clear()
            self._last_image_ns = t
            self.frames.append((t, rgb, msg.header.frame_id))

    # --- inference (worker thread) -------------------------------------------------------
    def _work(self) -> None:
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
                state = self._ready(onset, t_wall)
                try:
                    if state == 'wait':
                        still.append((onset, t_wall))
                        if onset not in prepared:         # while its audio is still arriving
                            prepared[onset] = self._prepare(onset)
                    elif state == 'go':
                        self._detect(onset, t_wall, prepared.pop(onset, None))
                except Exception as e:  # never let the worker die
                    self.diag.count('dropped_events')
                    self.get_logger().error(f'inference failed: {e!r}')
            keep = {o for o, _ in still}
            prepared = {o: v for o, v in prepared.items() if o in keep}
            pending = still
            if not pending:
                self._refit_table()                      # between events only

    def _ready(self, onset: int, t_wall: float) -> str:
        if self.bundle is None:
            self.diag.count('dropped_events')
            return 'drop'
        cfg = self.cfg
        with self._lock:
            latest = self.ring.latest_ns if self.ring else None
        if latest is not None and latest >= onset + int(cfg.window_post_s * NS):
            return 'go'
        if time.monotonic() - t_wall > self.p.event_timeout_s:
            return 'go'                                   # use what arrived (zero-padded)
        return 'wait'

    def _nearest_frame(self, onset: int):
        with self._lock:
            frames = list(self.frames)
        if not frames:
            return None, frames
        return min(frames, key=lambda f: abs(f[0] - onset)), frames

    def _prepare(self, onset: int):
        """The frame half of an event's answer (segments, their looks), from the frame nearest
        the onset so far; ``_detect`` reuses it if no nearer frame arrives meanwhile."""
        frame, frames = self._nearest_frame(onset)
        if frame is None or abs(frame[0] - onset) > self.p.max_frame_age_s * NS:
            return None
        try:
            return frame[0], self._regions(frame[1], frames)
        except Exception as e:  # _detect computes it again and reports what goes wrong there
            self.get_logger().warn(f'preparing the frame failed: {e!r}', throttle_duration_sec=5.0)
            return None

    def _regions(self, rgb: np.ndarray, frames: list):
        L = self.look_cfg.look_size
        rgb_l = image_input(rgb, L)
        grip = cv2.resize(self._gripper_mask(rgb.shape[:2]).astype(np.uint8), (L, L),
                          interpolation=cv2.INTER_NEAREST) > 0
        segments = object_segments(rgb_l, self._table_model(frames, L), grip, min_segment_px(L))
        regions = segment_regions(segments, rgb_l if self.look is not None else None,
                                  self.p.min_area, self.p.max_area)
        return rgb_l, segments, regions

    def _detect(self, onset: int, t_wall: float, prepared=None) -> None:
        cfg = self.cfg
        with self._lock:
            win = self.ring.window(onset - int(cfg.window_pre_s * NS), onset + int(cfg.window_post_s * NS))
        frame, frames = self._nearest_frame(onset)
        if frame is None:
            self.diag.count('dropped_events')
            self.diag.report_input_error('no_frame', 'sound event without any camera frame')
            return
        t_img, rgb, frame_id = frame
        if abs(t_img - onset) > self.p.max_frame_age_s * NS:
            self.diag.count('dropped_events')
            self.diag.report_input_error('stale_frame', f'nearest frame is {abs(t_img - onset) / 1e6:.0f} '
                                         'ms from the onset (> max_frame_age_s); event dropped')
            return
        t0 = time.perf_counter()
        mel = audio_input(win, cfg)
        img = image_input(rgb, cfg.image_size).astype(np.float32).transpose(2, 0, 1)[None] / 255.0
        feeds = {'image': np.ascontiguousarray(img), 'logmel': mel[None, None]}
        out = self.bundle.run({k: v for k, v in feeds.items() if k in self.bundle.meta['inputs']})
        scores, masks = out['scores'][0], out['masks'][0]
        if prepared is not None and prepared[0] == t_img:
            rgb_l, segments, regions = prepared[1]
        else:
            rgb_l, segments, regions = self._regions(rgb, frames)
        sound = sound_features(win, self.look_cfg).ravel() if self.look is not None else None
        cands = sounding_candidates(scores, masks, segments, rgb_l, sound, self.look, self.look_weight,
                                    self.p.min_area, self.p.max_area, regions=regions)
        self.diag.record_latency('model', time.perf_counter() - t0)
        self._publish(onset, rgb, frame_id, cands, self.look_cfg.look_size, mel)
        self.diag.record_latency('event', time.monotonic() - t_wall)

    def _publish(self, onset, rgb, frame_id, cands, s, mel) -> None:
        h, w = rgb.shape[:2]
        sx, sy = w / s, h / s
        header = rc.header(onset, frame_id)
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
        soft = cv2.resize(np.clip(soft, 0, 1).astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
        mask_msg = rc.image_msg(np.round(soft * 255).astype(np.uint8), onset, frame_id)
        self.pub_mask.publish(mask_msg)
        if self.p.publish_debug_image:
            self.pub_debug.publish(rc.image_msg(debug_overlay(rgb, cands, mel, sx, sy), onset, frame_id))

    def close(self) -> None:
        self._stop.set()
        if self.worker.is_alive():
            self.worker.join(timeout=2.0)


def debug_overlay(rgb: np.ndarray, cands: list, mel: np.ndarray, sx: float, sy: float,
                  scale: int = 3) -> np.ndarray:
    """Frame (upscaled) with the top candidate tinted, every box with its score, and the event's
    log-mel spectrogram as a strip underneath."""
    img = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    h, w = img.shape[:2]
    if cands:
        m = cv2.resize(cands[0]['mask'].astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0
        img[m] = (0.55 * img[m] + 0.45 * np.array([255, 40, 40])).astype(np.uint8)
    for i, c in enumerate(cands):
        x0, y0, x1, y1 = c['bbox']
        p0 = (int(x0 * sx * scale), int(y0 * sy * scale))
        p1 = (int(x1 * sx * scale) - 1, int(y1 * sy * scale) - 1)
        colour = (255, 60, 60) if i == 0 else (255, 255, 0)
        cv2.rectangle(img, p0, p1, colour, 1)
        cv2.putText(img, f"{c['score']:.2f}", (p0[0] + 2, p0[1] + 12), cv2.FONT_HERSHEY_SIMPLEX,
                    0.4, colour, 1)
    m = mel - mel.min()
    m = (255 * m / max(float(m.max()), 1e-6)).astype(np.uint8)[::-1]
    strip = cv2.applyColorMap(cv2.resize(m, (w, max(16, h // 4)), interpolation=cv2.INTER_NEAREST),
                              cv2.COLORMAP_MAGMA)[..., ::-1]
    return np.ascontiguousarray(np.concatenate([img, strip], axis=0))


def main(args=None) -> int:
    return run_node(SoundingObjectDetector, args)


if __name__ == '__main__':
    raise SystemExit(main())
