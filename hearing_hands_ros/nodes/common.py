"""Shared helpers for every hearing_hands_ros node: QoS profiles, parameters, diagnostics, main().

Typical model node (module-level ``PARAMS``: test_package checks config/<node>.yaml against it)::

    PARAMS = {'threshold': (0.5, 'Onset threshold (linear amplitude).')}

    class MyNode(ModelNode):
        def __init__(self, **node_kwargs):
            super().__init__('my_node', PARAMS, hardware_id='wrist_mic', **node_kwargs)
            self.start()                  # configure + activate when `autostart` is true

        def configure(self): ...          # load the model, create publishers
        def activate(self): ...           # create subscriptions, start the worker
        def deactivate(self): ...         # stop the worker (subscriptions are destroyed for you)
        def cleanup(self): ...            # free the model

    def main(args=None):
        return run_node(MyNode, args)
"""
from __future__ import annotations

import collections
import queue
import threading
import time
import types
from typing import Any, Callable, Mapping

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.node import Node
from rclpy.qos import (DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy,
                       qos_profile_sensor_data)

try:                                   # Iron and later
    from rclpy.event_handler import SubscriptionEventCallbacks
except ImportError:                    # Humble
    from rclpy.qos_event import SubscriptionEventCallbacks

from hearing_hands_ros import ros_convert as rc
from hearing_hands_ros import trajectory as tr
from hearing_hands_ros.errors import ModelError

# --- QoS profiles ----------------------------------------------------------------------------
#: Best effort, volatile, keep last 5: cameras (usb_cam, realsense), poses, joint states.
SENSOR_QOS: QoSProfile = qos_profile_sensor_data
#: Reliable + transient local, depth 1: "latched" once-published info (AudioInfo).
LATCHED_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                         reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL)
#: Reliable + volatile, depth 1: info republished every few seconds, as ros-drivers
#: ``audio_capture`` publishes ``audio_info`` (and ``sim_robot`` does).
INFO_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                      reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.VOLATILE)
#: Reliable, volatile, depth 10: commands and plans (nav_msgs/Path).
RELIABLE_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10,
                          reliability=ReliabilityPolicy.RELIABLE,
                          durability=DurabilityPolicy.VOLATILE)
#: Reliable, depth 100: audio chunk streams, like ros-drivers audio_capture.
AUDIO_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100,
                       reliability=ReliabilityPolicy.RELIABLE,
                       durability=DurabilityPolicy.VOLATILE)
#: Audio chunk subscriptions: best effort (matches reliable and best-effort publishers) but deep,
#: so chunks are never dropped by the subscription queue while a callback is busy.
AUDIO_SUB_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=200,
                           reliability=ReliabilityPolicy.BEST_EFFORT)
#: An AudioInfo equal to the last one and this close after it is the same message, delivered on
#: both the latched and the volatile subscription [s].
INFO_REPEAT_S = 0.5


def subscribe_info(node: Node, msg_type, topic: str, callback, callback_group=None) -> list:
    """Subscribe a slow "info" topic (AudioInfo) from latched *and* from volatile publishers.

    Under DDS rules a transient-local subscription does not match a volatile publisher (the
    ``audio_capture`` driver), and a volatile one never receives a latched publisher's message
    sent before it joined. So both are created, on the same callback: a latched publisher's
    message may arrive twice, which an info callback must take in its stride. The
    incompatible-QoS event of the pair's unmatched half is expected and silenced.
    """
    quiet = SubscriptionEventCallbacks(incompatible_qos=lambda _event: None)
    return [node.create_subscription(msg_type, topic, callback, qos, callback_group=callback_group,
                                     event_callbacks=quiet)
            for qos in (LATCHED_QOS, INFO_QOS)]


class GripperPlans:
    """The gripper's plans along recent paths (``planned_gripper``), by the stamp of the path
    each belongs to: the path callback and its worker thread meet here."""

    KEPT = 32                                         # plans kept, oldest dropped first

    def __init__(self):
        self._plans: dict = {}                         # stamp ns -> (times_ns, openings [m])
        self._cv = threading.Condition()

    def take(self, msg, joint: str, diag: 'Diagnostics') -> None:
        """A planned_gripper message (trajectory_msgs/JointTrajectory): kept, or dropped with
        its reason on ``diag``."""
        try:
            stamp, times, openings = rc.gripper_plan_from_msg(msg, joint)
        except ValueError as e:
            diag.report_input_error('bad_gripper_plan', f'{e}; gripper plan ignored')
            return
        diag.count('gripper_plans')
        self.add(stamp, times, openings)

    def add(self, stamp_ns: int, times_ns, openings) -> None:
        with self._cv:
            self._plans[int(stamp_ns)] = (times_ns, openings)
            while len(self._plans) > self.KEPT:
                self._plans.pop(next(iter(self._plans)))
            self._cv.notify_all()

    def get(self, stamp_ns: int, wait_s: float):
        """The plan of the path stamped ``stamp_ns``, waiting up to ``wait_s`` for it once any
        plan has arrived (none ever: None at once, so a robot without one loses no time)."""
        with self._cv:
            if not self._plans:
                return None
            self._cv.wait_for(lambda: stamp_ns in self._plans, timeout=max(0.0, float(wait_s)))
            return self._plans.get(stamp_ns)

    def apertures(self, stamp_ns: int, times_ns, wait_s: float):
        """The opening (M,) [m] at a path's pose stamps ``times_ns`` from the plan of the path
        stamped ``stamp_ns`` (waiting as :meth:`get`); None without one."""
        plan = self.get(stamp_ns, wait_s)
        return None if plan is None else tr.plan_apertures(times_ns, *plan)

    def clear(self) -> None:
        with self._cv:
            self._plans.clear()


GRIPPER_PLAN_PARAMS = {
    'gripper_plan_wait_s': (0.2, 'Once a gripper plan has arrived on planned_gripper, how long a '
                                 'path waits for the one stamped as it is before it goes on '
                                 'without [s].'),
}


# --- Parameters ------------------------------------------------------------------------------
class InfoRepeats:
    """Tells the second copy of an AudioInfo apart: a latched publisher's message arrives on
    both halves of :func:`subscribe_info`."""

    def __init__(self, window_s: float = INFO_REPEAT_S):
        self.window_s = window_s
        self._last: tuple | None = None               # (fields, monotonic time)

    def seen(self, msg) -> bool:
        """Is ``msg`` the same AudioInfo as the last one, just received? (Otherwise it is
        remembered.)"""
        key = (msg.channels, msg.sample_rate, msg.sample_format, msg.bitrate, msg.coding_format)
        now = time.monotonic()
        if self._last is not None and self._last[0] == key and now - self._last[1] < self.window_s:
            return True
        self._last = (key, now)
        return False

    def reset(self) -> None:
        self._last = None


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


# --- Lifecycle --------------------------------------------------------------------------------
AUTOSTART = {'autostart': (True, 'Configure and activate at start (false: wait for `ros2 lifecycle '
                                 'set <node> configure`, then `activate`).')}


class ModelNode(LifecycleNode):
    """A lifecycle node that holds a model (the ROS convention, as in ros2/demos lifecycle_py).

    * configure: read the parameters, load the model, create the publishers (``configure``);
      a model that does not load fails the transition: the node stays unconfigured, alive, with
      ERROR on ``/diagnostics``, and can be configured again once ``model_path`` is fixed;
    * activate: create the subscriptions and start inference (``activate``);
    * deactivate: destroy the subscriptions (done here), stop inference (``deactivate``);
    * cleanup: free the model and the publishers (``cleanup``);
    * shutdown: from any state, whatever of the above is still held.

    ``/diagnostics`` is published in every state and names the state (``lifecycle``).
    ``autostart`` (default true) runs configure + activate from ``start()``.
    """

    def __init__(self, name: str, params: Mapping[str, tuple[Any, str]], hardware_id: str = '',
                 **node_kwargs):
        super().__init__(name, **node_kwargs)
        self._param_spec = {**AUTOSTART, **params}
        self.p = declare_params(self, self._param_spec)
        self.diag = Diagnostics(self, hardware_id=hardware_id)
        self.lifecycle_state = 'unconfigured'
        self.diag.set_value('lifecycle', self.lifecycle_state)
        self._own_subscriptions: list = []
        self._own_publishers: list = []
        self._stop = threading.Event()
        self.worker: threading.Thread | None = None

    # -- what a node implements ---------------------------------------------------------------
    def configure(self) -> None:
        """Load the model and create the publishers; raise ``ModelError`` if it cannot load."""

    def activate(self) -> None:
        """Create the subscriptions (with ``subscribe``) and start inference."""

    def deactivate(self) -> None:
        """Stop inference (the subscriptions are already gone)."""

    def cleanup(self) -> None:
        """Free the model and what ``configure`` made (publishers from ``publisher`` are
        destroyed for you)."""

    # -- helpers --------------------------------------------------------------------------------
    def subscribe(self, *args, **kwargs):
        """``create_subscription`` that ``deactivate`` undoes."""
        sub = self.create_subscription(*args, **kwargs)
        self._own_subscriptions.append(sub)
        return sub

    def subscribe_info(self, msg_type, topic: str, callback, callback_group=None) -> None:
        """``subscribe_info`` (latched + volatile) that ``deactivate`` undoes."""
        self._own_subscriptions += subscribe_info(self, msg_type, topic, callback, callback_group)

    def start_worker(self, target: Callable[[], None], name: str) -> None:
        """Start the inference thread (``target`` loops until ``self._stop`` is set)."""
        self._stop.clear()
        self.worker = threading.Thread(target=target, name=name, daemon=True)
        self.worker.start()

    def stop_worker(self, pending, dropped_key: str, timeout: float = 2.0) -> None:
        """Stop the inference thread; what still waits in the queue ``pending`` is dropped and
        counted as ``dropped_key``."""
        self._stop.set()
        if self.worker is not None and self.worker.is_alive():
            self.worker.join(timeout=timeout)
        self.worker = None
        while not pending.empty():
            pending.get_nowait()
            self.diag.count(dropped_key)

    def enqueue(self, jobs: queue.Queue, job, dropped_key: str, what: str) -> None:
        """Put ``job`` on the bounded queue ``jobs``; when it is full the oldest waiting job is
        dropped (newer requests win), counted as ``dropped_key`` and reported as ``busy``."""
        while True:
            try:
                jobs.put_nowait(job)
                return
            except queue.Full:
                try:
                    jobs.get_nowait()
                except queue.Empty:
                    continue
                self.diag.count(dropped_key)
                self.diag.report_input_error('busy', f'{what} queue full; the oldest waiting '
                                             'path was dropped')

    def serve(self, jobs: queue.Queue, handle: Callable, error_key: str) -> None:
        """The worker loop (``start_worker``'s target): ``handle(*job)`` for each job until
        stopped; one that fails is reported as ``error_key`` and the loop goes on."""
        while not self._stop.is_set():
            try:
                job = jobs.get(timeout=0.1)
            except queue.Empty:
                continue
            try:
                handle(*job)
            except Exception as e:  # noqa: BLE001 - one bad request must not stop the node
                self.diag.report_input_error(error_key, f'{type(e).__name__}: {e}')

    def publisher(self, msg_type, topic: str, qos):
        """Create a lifecycle publisher: it sends only while active; ``cleanup`` destroys it."""
        pub = self.create_lifecycle_publisher(msg_type, topic, qos)
        self._own_publishers.append(pub)
        return pub

    def start(self) -> None:
        """Configure and activate now when ``autostart`` is true (end of a node's ``__init__``)."""
        if self.p.autostart and self.trigger_configure() == TransitionCallbackReturn.SUCCESS:
            self.trigger_activate()

    # -- transitions ----------------------------------------------------------------------------
    def _state(self, label: str) -> TransitionCallbackReturn:
        self.lifecycle_state = label
        self.diag.set_value('lifecycle', label)
        self.get_logger().info(f'lifecycle: {label}')
        return TransitionCallbackReturn.SUCCESS

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.p = types.SimpleNamespace(**{n.replace('.', '_'): self.get_parameter(n).value
                                          for n in self._param_spec})
        try:
            self.configure()
        except (ModelError, ValueError, OSError) as e:
            self._release()
            self.diag.set_value('backend', 'none')
            self.diag.set_status(Diagnostics.ERROR, f'model not loaded: {e}')
            self.get_logger().error(f'model not loaded: {e}; the node stays unconfigured (fix '
                                    'model_path, then `ros2 lifecycle set` configure)')
            return TransitionCallbackReturn.FAILURE
        self.diag.set_status(None)
        return self._state('inactive')

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        super().on_activate(state)                # activates the lifecycle publishers
        self.activate()
        return self._state('active')

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._unsubscribe()
        self.deactivate()
        super().on_deactivate(state)
        return self._state('inactive')

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        return self._state('unconfigured')

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        if self._own_subscriptions:
            self._unsubscribe()
            self.deactivate()
        self._release()
        return self._state('finalized')

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.on_shutdown(state)
        self.diag.set_status(Diagnostics.ERROR, 'a lifecycle transition raised; see the log')
        return self._state('unconfigured')

    def _unsubscribe(self) -> None:
        for sub in self._own_subscriptions:
            self.destroy_subscription(sub)
        self._own_subscriptions = []

    def _release(self) -> None:
        self.cleanup()
        for pub in self._own_publishers:
            self.destroy_lifecycle_publisher(pub)
        self._own_publishers = []

    def close(self) -> None:
        """Stop whatever still runs (``run_node`` calls this before destroying the node)."""
        if self._own_subscriptions:
            self._unsubscribe()
            self.deactivate()


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
    except RuntimeError:
        # A signal shuts the context down from rclpy's signal handler; if that lands while the
        # executor builds its wait set, rclpy raises RCLError (a RuntimeError) instead of
        # ExternalShutdownException (ros2/rclpy#398, ros2/ros2cli#854). That is a clean stop.
        if rclpy.ok():
            raise
        return 0
    finally:
        if node is not None:
            close = getattr(node, 'close', None)
            if close is not None:
                close()
            node.destroy_node()
        rclpy.try_shutdown()
