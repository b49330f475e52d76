"""``sim_robot``: the sound world as a live robot (wrist camera, wrist microphone, gripper).

Runs ``SoundWorld`` episodes and publishes their event stream on the contract topics, paced to
the node's clock times ``speed`` (0 = as fast as possible), with the QoS real drivers use:

=============================  ==================================  ===============================
topic                          type                                QoS
=============================  ==================================  ===============================
``wrist_camera/image_raw``     sensor_msgs/Image (rgb8)            sensor data (like usb_cam)
``wrist_camera/camera_info``   sensor_msgs/CameraInfo              sensor data
``audio/audio_stamped``        audio_common_msgs/AudioDataStamped  reliable, depth 100
``audio/audio_info``           audio_common_msgs/AudioInfo         reliable, volatile, depth 1,
                                                                   republished (like audio_capture)
``gripper/pose``               geometry_msgs/PoseStamped           sensor data
``gripper/joint_states``       sensor_msgs/JointState              sensor data
``planned_gripper``            trajectory_msgs/JointTrajectory     reliable (the finger opening
                                                                   along the path, stamped as it,
                                                                   published just before it)
``planned_path``               nav_msgs/Path                       reliable
``/diagnostics``               diagnostic_msgs/DiagnosticArray     default
=============================  ==================================  ===============================

Stamps are the node clock at the episode's start plus the event's episode time. Rename topics
with remapping (``--ros-args -r audio/audio_stamped:=mic/audio``); parameters are in
``config/sim_robot.yaml``.
"""
from __future__ import annotations

import collections
import threading
import time

from audio_common_msgs.msg import AudioDataStamped, AudioInfo
from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Path
from rclpy.node import Node
from rclpy.task import Future
from sensor_msgs.msg import CameraInfo, Image, JointState
from trajectory_msgs.msg import JointTrajectory

from hearing_hands_ros import ros_convert as rc
from hearing_hands_ros.sim.scene import SCENARIOS
from hearing_hands_ros.nodes.common import (AUDIO_QOS, INFO_QOS, RELIABLE_QOS, SENSOR_QOS,
                                            Diagnostics, declare_params, run_node)

#: name -> (default, description); config/sim_robot.yaml sets the same names.
PARAMS = {
    'scenario': ('mixed', "Scene family: 'mixed' (varied materials), 'ambiguous' (two adjacent "
                          'objects of nearly equal height: only the sound tells which one was struck) or '
                          "'alternating' (the same pair, struck alone and at the gap in turn)."),
    'seed': (0, 'Seed of the first episode; episode k uses seed + k.'),
    'episodes': (1, 'Number of episodes to play; 0 = loop forever (new seed each time).'),
    'n_actions': (0, 'Scripted actions per episode; 0 = the scenario default.'),
    'faults': (0.0, 'Share of the actions in [0, 1] that go wrong after their paths were published '
                    '(target moved or removed, an obstacle on the path, a grasped object slips).'),
    'script': ('', "A fixed action list instead of the scenario's random one: 'type target [fault]' "
                   "entries separated by commas, e.g. 'tap 1, tap 1 removed' (target = object id; "
                   "fault: moved | removed | obstacle | slip); empty = random."),
    'width': (128, 'Wrist-camera image width [px].'),
    'height': (128, 'Wrist-camera image height [px].'),
    'fps': (30.0, 'Wrist-camera frame rate [Hz].'),
    'sample_rate': (16000, 'Microphone sample rate [Hz].'),
    'chunk_samples': (512, 'Samples per AudioDataStamped chunk.'),
    'speed': (1.0, 'Playback speed relative to the node clock; 0 = as fast as possible.'),
    'start_delay': (1.0, 'Seconds (wall) before the first episode, so subscribers can connect.'),
    'pause_between_episodes': (1.0, 'Seconds (node clock) between episodes.'),
    'exit_when_done': (False, 'Shut the node down after the last episode (else keep running '
                              'so latched topics and diagnostics stay available).'),
    'world_frame_id': ('world', 'Frame of gripper poses and planned paths.'),
    'camera_frame_id': ('wrist_camera_optical', 'Optical frame of the wrist camera.'),
    'mic_frame_id': ('wrist_mic', 'Frame of the wrist microphone.'),
    'hardware_id': ('sim_robot', 'hardware_id reported on /diagnostics.'),
    'audio_info_period_s': (5.0, 'Republish audio/audio_info this often [s] (reliable, volatile, '
                                 'depth 1, as audio_capture does; also at each episode start); '
                                 '0 = only at episode starts.'),
}


class SimRobot(Node):
    """Publishes ``SoundWorld`` episodes live; the simulation runs in a background thread."""

    def __init__(self, **node_kwargs):
        super().__init__('sim_robot', **node_kwargs)
        self.p = declare_params(self, PARAMS)
        self._check_params()
        self.pub = {
            'image': self.create_publisher(Image, 'wrist_camera/image_raw', SENSOR_QOS),
            'camera_info': self.create_publisher(CameraInfo, 'wrist_camera/camera_info',
                                                 SENSOR_QOS),
            'audio': self.create_publisher(AudioDataStamped, 'audio/audio_stamped', AUDIO_QOS),
            'audio_info': self.create_publisher(AudioInfo, 'audio/audio_info', INFO_QOS),
            'pose': self.create_publisher(PoseStamped, 'gripper/pose', SENSOR_QOS),
            'joint_states': self.create_publisher(JointState, 'gripper/joint_states', SENSOR_QOS),
            'path': self.create_publisher(Path, 'planned_path', RELIABLE_QOS),
            'gripper_plan': self.create_publisher(JointTrajectory, 'planned_gripper', RELIABLE_QOS),
        }
        self.diag = Diagnostics(self, hardware_id=self.p.hardware_id)
        self.diag.set_value('state', 'starting')
        if self.p.audio_info_period_s > 0:     # as audio_capture: volatile, republished
            self.create_timer(self.p.audio_info_period_s, self._publish_audio_info)
        self.done_future = Future()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._play, name='sim_robot', daemon=True)
        self._thread.start()

    def _publish_audio_info(self) -> None:
        self.pub['audio_info'].publish(rc.audio_info_msg(self.p.sample_rate))

    def _check_params(self) -> None:
        p = self.p
        problems = []
        if p.scenario not in SCENARIOS:
            problems.append(f"scenario must be one of {', '.join(SCENARIOS)}, not {p.scenario!r}")
        if not (16 <= p.width <= 4096 and 16 <= p.height <= 4096):
            problems.append(f'width and height must be in [16, 4096], not {p.width}x{p.height}')
        if not 0 < p.fps <= 240:
            problems.append(f'fps must be in (0, 240], not {p.fps}')
        if not 8000 <= p.sample_rate <= 192000:
            problems.append(f'sample_rate must be in [8000, 192000], not {p.sample_rate}')
        if not 0.0 <= p.faults <= 1.0:
            problems.append(f'faults must be in [0, 1], not {p.faults}')
        try:
            self.script = parse_script(p.script)
        except ValueError as e:
            problems.append(f'script: {e}')
        if p.chunk_samples < 1 or p.episodes < 0 or p.speed < 0 or p.n_actions < 0 \
                or p.start_delay < 0:
            problems.append('chunk_samples must be >= 1; episodes, n_actions, speed and '
                            'start_delay >= 0')
        if problems:
            raise ValueError('; '.join(problems))

    # -- simulation thread ----------------------------------------------------------------------
    def _config(self, episode: int):
        from hearing_hands_ros.sim.world import SimConfig
        p = self.p
        return SimConfig(scenario=p.scenario, seed=p.seed + episode,
                         n_actions=p.n_actions or None, width=p.width, height=p.height,
                         fps=p.fps, sample_rate=p.sample_rate, chunk_samples=p.chunk_samples,
                         faults=p.faults)

    def _play(self) -> None:
        episode = 0
        try:
            from hearing_hands_ros.sim.world import SoundWorld
            self._publish_audio_info()
            self._stop.wait(self.p.start_delay)
            while not self._stop.is_set() and (self.p.episodes == 0 or episode < self.p.episodes):
                self.diag.set_value('state', f'building episode {episode}')
                self._publish_audio_info()         # also for subscribers that joined late
                self._play_episode(SoundWorld(self._config(episode), script=self.script), episode)
                if self._stop.is_set():
                    return
                episode += 1
                self.diag.count('episodes')
                if self.p.episodes == 0 or episode < self.p.episodes:
                    self._stop.wait(self.p.pause_between_episodes / self.p.speed
                                    if self.p.speed else 0.0)
            if not self._stop.is_set():
                self.diag.set_value('state', 'finished')
                self.get_logger().info(f'played {episode} episode(s)')
        except Exception as exc:  # noqa: BLE001 - report on diagnostics, keep the node alive
            if self._stop.is_set() or not self.context.ok():
                return  # shutting down: publishers may already be gone
            self.diag.set_status(Diagnostics.ERROR, f'simulation failed: {exc}')
            self.get_logger().error(f'simulation failed in episode {episode}: {exc!r}')
            raise
        finally:
            if self.p.exit_when_done and not self.done_future.done():
                self.done_future.set_result(True)

    def _play_episode(self, world, episode: int) -> None:
        """Publish one episode. Each event goes out when the node clock reaches its time (scaled
        by ``speed``); an audio chunk, like a real microphone's, once its last sample is due."""
        start_ns = self.get_clock().now().nanoseconds
        self.episode_start_ns = start_ns      # stamp of episode time 0 (for tools and demos)
        wall0 = time.perf_counter()
        info = dict(world.camera_info(), frame_id=self.p.camera_frame_id)
        self.diag.set_value('state', f'playing episode {episode} (seed {self.p.seed + episode})')
        self.diag.set_value('episode', episode)
        self.get_logger().info(f'episode {episode}: scenario {self.p.scenario}, '
                               f'seed {self.p.seed + episode}')
        audio = collections.deque()           # (end time, event): chunks waiting for their end
        t = 0.0
        for ev in world.run():
            t = ev.t
            if ev.kind == 'audio':
                audio.append((ev.t + len(ev.samples) / self.p.sample_rate, ev))
                continue
            while audio and audio[0][0] <= ev.t:
                self._publish_at(audio.popleft(), start_ns, info)
            self._publish_at((ev.t, ev), start_ns, info)
            if self._stop.is_set():
                return
        while audio and not self._stop.is_set():
            self._publish_at(audio.popleft(), start_ns, info)
        wall = time.perf_counter() - wall0
        self.diag.set_value('real_time_factor', f'{t / max(wall, 1e-9):.2f}')

    def _publish_at(self, due_event, start_ns: int, info: dict) -> None:
        """Wait until the node clock reaches start + due / speed (speed 0: no wait); publish."""
        due, ev = due_event
        if self.p.speed > 0:
            clock, target_ns = self.get_clock(), start_ns + int(due / self.p.speed * 1e9)
            while not self._stop.is_set():
                late_ns = clock.now().nanoseconds - target_ns
                if late_ns >= 0:
                    self.diag.record_latency('publish_lag', late_ns * 1e-9)
                    break
                time.sleep(min(-late_ns * 1e-9, 0.05))
        if not self._stop.is_set():
            self._publish(ev, start_ns, info)

    def _publish(self, ev, start_ns: int, info: dict) -> None:
        """Convert one simulator event to its message(s) and publish them."""
        p = self.p
        stamp_ns = start_ns + int(round(ev.t * 1e9))
        if ev.kind == 'image':
            self.pub['image'].publish(rc.image_msg(ev.rgb, stamp_ns, p.camera_frame_id))
            self.pub['camera_info'].publish(rc.camera_info_msg(info, stamp_ns))
        elif ev.kind == 'audio':
            self.pub['audio'].publish(rc.audio_chunk_msg(ev.samples, stamp_ns, p.mic_frame_id))
        elif ev.kind == 'pose':
            self.pub['pose'].publish(
                rc.pose_msg(ev.position, ev.orientation, stamp_ns, p.world_frame_id))
            self.pub['joint_states'].publish(
                rc.joint_state_msg(['gripper_aperture'], [ev.aperture], stamp_ns))
        elif ev.kind == 'path':
            times_ns = [start_ns + int(round(t * 1e9)) for t in ev.times]
            if ev.apertures is not None:
                self.pub['gripper_plan'].publish(rc.gripper_plan_msg(times_ns, ev.apertures, stamp_ns))
            self.pub['path'].publish(rc.path_msg(times_ns, ev.positions, ev.orientations,
                                                 p.world_frame_id, stamp_ns=stamp_ns))
        else:
            return
        self.diag.count(f'published.{ev.kind}')

    def close(self) -> None:
        """Stop the simulation thread (called by ``run_node`` on shutdown)."""
        self._stop.set()
        self._thread.join(timeout=5.0)


def parse_script(text: str) -> list | None:
    """``'tap 1, tap 1 removed'`` -> ``[('tap', 1), ('tap', 1, 'removed')]`` (empty: None)."""
    from hearing_hands_ros.sim.actions import ACTION_TYPES
    from hearing_hands_ros.sim.faults import script_entry
    if not text.strip():
        return None
    out = []
    for item in text.split(','):
        words = item.split()
        if len(words) not in (2, 3) or words[0] not in ACTION_TYPES or not words[1].isdigit():
            raise ValueError(f"bad entry {item.strip()!r}: expected 'type target [fault]' with type "
                             f'one of {", ".join(ACTION_TYPES)}')
        out.append(script_entry((words[0], int(words[1]), *words[2:])))
    return [e[:2] if e[2] is None else e for e in out]


def main(args=None) -> int:
    """Entry point of ``ros2 run hearing_hands_ros sim_robot``."""
    return run_node(SimRobot, args)


if __name__ == '__main__':
    raise SystemExit(main())
