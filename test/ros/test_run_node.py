"""``run_node``: a node's process ends cleanly however the stop reaches it.

A signal makes rclpy shut the context down from its signal handler; when that lands while the
executor builds its wait set, rclpy raises ``RCLError`` (a ``RuntimeError``) from ``spin`` instead
of ``ExternalShutdownException``. That is a clean stop, not a crash; any other ``RuntimeError``
is a bug and must still surface. Each case runs in a fresh interpreter (``run_node`` owns the
default context).
"""
import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip('rclpy')

SCRIPT = textwrap.dedent('''
    import rclpy
    from rclpy.node import Node
    from hearing_hands_ros.nodes.common import run_node

    class Stopper(Node):
        def __init__(self):
            super().__init__('run_node_probe')
            self.create_timer(0.05, self.tick)

        def tick(self):
            if {shutdown}:
                rclpy.shutdown()   # what rclpy's signal handler does
            raise RuntimeError('failed to initialize wait set: the given context is not valid')

    raise SystemExit(run_node(Stopper, []))
''')


def _run(shutdown: bool, domain: int) -> subprocess.CompletedProcess:
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST')
    return subprocess.run([sys.executable, '-c', SCRIPT.format(shutdown=shutdown)], env=env,
                          capture_output=True, text=True, timeout=60)


def test_wait_set_error_after_shutdown_is_a_clean_stop():
    r = _run(True, 88)
    assert r.returncode == 0, r.stderr
    assert 'Traceback' not in r.stderr


def test_runtime_error_while_the_context_is_live_still_surfaces():
    r = _run(False, 89)
    assert r.returncode != 0
    assert 'RuntimeError' in r.stderr
