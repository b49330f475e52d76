"""Shared helpers for every hearing_hands_ros node: QoS profiles, parameters, diagnostics, main().

Typical node (module-level ``PARAMS``: test_package checks config/<node>.yaml against it)::

    PARAMS = {'threshold': (0.5, 'Onset threshold (linear amplitude).')}

    class MyNode(Node):
        def __init__(self, **node_kwargs):
            super().__init__('my_node', **node_kwargs)
            self.p = declare_params(self, PARAMS)
            self.diag = Diagnostics(self, hardware_id='wrist_mic')
            ...
            self.diag.report_input_error('bad_audio_info', 'AudioInfo says mp3; set format:=wave')

    def main(args=None):
        return run_node(MyNode, args)
"""
from __future__ import annotations

import collections
import threading
import time
import types
from typing import Any, Callable, Mapping

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import (DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy,
                       qos_profile_sensor_data)

# --- QoS profiles ----------------------------------------------------------------------------
#: Best effort, volatile, keep last 5: cameras (usb_cam, realsense), poses, joint states.
SENSOR_QOS: QoSProfile = qos_profile_sensor_data
#: Reliable + transient local, depth 1: "latched" once-published info (AudioInfo).
LATCHED_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                         reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL)
#: Reliable, volatile, depth 10: commands and plans (nav_msgs/Path).
RELIABLE_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10,
                          reliability=ReliabilityPolicy.RELIABLE,
                          durability=DurabilityPolicy.VOLATILE)
#: Reliable, depth 100: audio chunk streams, like ros-drivers audio_capture.
AUDIO_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100,
                       reliability=ReliabilityPolicy.RELIABLE,
                       durability=DurabilityPolicy.VOLATILE)


# --- Parameters ------------------------------------------------------------------------------
def declare_params(node: Node, spec: Mapping[str, tuple[Any, str]]) -> types.SimpleNamespace:
    """Declare ``spec`` (name -> (default, description)) on ``node`` and return their values.

    Every parameter gets a ``ParameterDescriptor`` with its description, so
    ``ros2 param describe`` explains it. Defaults must not be None (the type comes from them).
    Returns a namespace with one attribute per parameter (dots become underscores).
    """
    values = {}
    for name, (default, description) in spec.items():
        param = node.declare_parameter(name, default, ParameterDescriptor(description=description))
        values[name.replace('.', '_')] = param.value
    return types.SimpleNamespace(**values)


# --- Diagnostics -----------------------------------------------------------------------------
class Diagnostics:
    """Publishes one ``DiagnosticStatus`` for a node on ``/diagnostics`` about once a second.

    Level is OK, WARN while input errors were reported within ``warn_hold_s`` (message = the
    last error), or whatever ``set_status`` forced (e.g. ERROR when a model failed to load).
    Key-values: every counter (``count``), every value (``set_value``), input errors per kind,
    and p50/p90/p99/max of every latency series (``record_latency``, in milliseconds).
    """

    OK, WARN, ERROR = DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR

    def __init__(self, node: Node, hardware_id: str = '', name: str | None = None,
                 period_s: float = 1.0, warn_hold_s: float = 10.0, throttle_s: float = 5.0,
                 latency_window: int = 1000):
        self.node = node
        self.name = name or f'{node.get_name()}: status'
        self.hardware_id = hardware_id
        self.warn_hold_s = warn_hold_s
        self.throttle_s = throttle_s
        self._lock = threading.Lock()
        self.counters: collections.Counter[str] = collections.Counter()
        self.values: dict[str, str] = {}
        self.input_errors: collections.Counter[str] = collections.Counter()
        self._latencies: dict[str, collections.deque] = collections.defaultdict(
            lambda: collections.deque(maxlen=latency_window))
        self._forced: tuple[int, str] | None = None
        self._last_error: tuple[float, str] | None = None
        self._last_logged: dict[str, float] = {}
        self.publisher = node.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self.timer = node.create_timer(period_s, self.publish)

    def count(self, key: str, n: int = 1) -> None:
        """Add ``n`` to counter ``key``."""
        with self._lock:
            self.counters[key] += n

    def set_value(self, key: str, value: Any) -> None:
        """Show ``key: value`` in the diagnostics (any value, shown with str())."""
        with self._lock:
            self.values[key] = str(value)

    def record_latency(self, key: str, seconds: float) -> None:
        """Add one latency sample to series ``key`` (reported as percentiles in ms)."""
        with self._lock:
            self._latencies[key].append(seconds)

    def set_status(self, level: int | None, message: str = '') -> None:
        """Force ``level`` (OK/WARN/ERROR) with ``message``; ``None`` returns to automatic."""
        with self._lock:
            self._forced = None if level is None else (level, message)

    def report_input_error(self, kind: str, message: str) -> None:
        """Count a bad input of ``kind``, log it (at most once per ``throttle_s`` per kind) and
        turn the diagnostics to WARN with this message for ``warn_hold_s``."""
        now = time.monotonic()
        with self._lock:
            self.input_errors[kind] += 1
            n = self.input_errors[kind]
            self._last_error = (now, f'{kind}: {message}')
            log = now - self._last_logged.get(kind, -float('inf')) >= self.throttle_s
            if log:
                self._last_logged[kind] = now
        if log:
            self.node.get_logger().warning(f'{kind}: {message} ({n} so far)')

    def status(self) -> DiagnosticStatus:
        """The current status message (what ``publish`` sends)."""
        with self._lock:
            level, message = self.OK, 'OK'
            if self._last_error and time.monotonic() - self._last_error[0] < self.warn_hold_s:
                level, message = self.WARN, self._last_error[1]
            if self._forced is not None and self._forced[0] >= level:
                level, message = self._forced
            kv = [KeyValue(key=k, value=str(v)) for k, v in sorted(self.counters.items())]
            kv += [KeyValue(key=k, value=v) for k, v in sorted(self.values.items())]
            kv += [KeyValue(key=f'input_errors.{k}', value=str(v))
                   for k, v in sorted(self.input_errors.items())]
            for key, series in sorted(self._latencies.items()):
                kv += [KeyValue(key=f'{key}.{name}_ms', value=f'{v * 1e3:.2f}')
                       for name, v in percentiles(series).items()]
        return DiagnosticStatus(level=level, name=self.name, message=message,
                                hardware_id=self.hardware_id, values=kv)

    def publish(self) -> None:
        """Publish the status now (the timer calls this every period)."""
        msg = DiagnosticArray(status=[self.status()])
        msg.header.stamp = self.node.get_clock().now().to_msg()
        self.publisher.publish(msg)


def percentiles(series, qs=(50, 90, 99)) -> dict[str, float]:
    """``{'p50': .., 'p90': .., 'p99': .., 'max': ..}`` of a sequence (empty -> {})."""
    data = sorted(series)
    if not data:
        return {}
    out = {f'p{q}': data[min(len(data) - 1, int(round(q / 100 * (len(data) - 1))))] for q in qs}
    out['max'] = data[-1]
    return out


# --- main() ----------------------------------------------------------------------------------
def run_node(node_factory: Callable[[], Node], args: list[str] | None = None) -> int:
    """Run one node until Ctrl-C (or until its ``done_future`` completes, if it has one).

    ``rclpy.init`` with ``args``, spin a ``SingleThreadedExecutor``, and shut down cleanly.
    Our nodes do their slow work (simulation, inference) on threads of their own, so callbacks
    only convert and buffer; rclpy's MultiThreadedExecutor would spend most of the GIL re-scanning
    its futures under camera + audio rates (measured with py-spy: audio chunks were lost).
    A node that cannot start (e.g. bad parameters: ``ValueError``) logs the reason and
    returns 1, without a traceback.
    """
    rclpy.init(args=args)
    node = None
    try:
        try:
            node = node_factory()
        except ValueError as exc:
            rclpy.logging.get_logger('hearing_hands_ros').fatal(f'cannot start node: {exc}')
            return 1
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        done = getattr(node, 'done_future', None)
        if done is not None:
            executor.spin_until_future_complete(done)
        else:
            executor.spin()
        return 0
    except (KeyboardInterrupt, ExternalShutdownException):
        return 0
    finally:
        if node is not None:
            close = getattr(node, 'close', None)
            if close is not None:
                close()
            node.destroy_node()
        rclpy.try_shutdown()
