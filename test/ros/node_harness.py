"""The one node-test harness: a node under test and a peer node on real DDS (loopback, the test's
own domain), spun by one executor thread, with waiting, diagnostics and lifecycle helpers.

Used through the ``node_harness`` fixture (``test/ros/conftest.py``), or subclassed by a node's
own harness that adds the publishers and subscriptions of its topics.
"""
import threading
import time

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rclpy.executors import MultiThreadedExecutor
from rclpy.parameter import Parameter

TRANSITIONS = {'configure': Transition.TRANSITION_CONFIGURE,
               'activate': Transition.TRANSITION_ACTIVATE,
               'deactivate': Transition.TRANSITION_DEACTIVATE,
               'cleanup': Transition.TRANSITION_CLEANUP,
               'shutdown': Transition.TRANSITION_UNCONFIGURED_SHUTDOWN}


class NodeHarness:
    """``node_cls(**params)`` in a fresh context on ``domain_id``, and a peer node ``peer``.

    Without ``node_cls`` only the context and the peer exist; ``start_node`` adds the node under
    test later (after the peer has subscribed to what it will publish first).
    """

    def __init__(self, domain_id: int, node_cls=None, params: dict | None = None,
                 peer: str = 'peer', cli_args: list | None = None):
        self.ctx = rclpy.Context()
        rclpy.init(context=self.ctx, domain_id=domain_id)
        self.peer = rclpy.create_node(peer, context=self.ctx)
        self.diagnostics: list = []
        self.peer.create_subscription(DiagnosticArray, '/diagnostics', self.diagnostics.append, 10)
        self.ex = MultiThreadedExecutor(num_threads=4, context=self.ctx)
        self.ex.add_node(self.peer)
        self.thread = threading.Thread(target=self.ex.spin, daemon=True)
        self.thread.start()
        self.node = None
        if node_cls is not None:
            self.start_node(node_cls, params, cli_args)

    def start_node(self, node_cls, params: dict | None = None, cli_args: list | None = None):
        """Create the node under test in this context and spin it."""
        overrides = [Parameter(k, value=v) for k, v in (params or {}).items()]
        self.node = node_cls(context=self.ctx, parameter_overrides=overrides,
                             **({'cli_args': cli_args} if cli_args else {}))
        self.ex.add_node(self.node)
        return self.node

    # --- waiting -------------------------------------------------------------------------
    @staticmethod
    def wait_for(cond, timeout: float = 15.0) -> bool:
        """Poll ``cond`` until it is true or ``timeout`` [s] passed; returns its last value."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if cond():
                return True
            time.sleep(0.02)
        return bool(cond())

    # --- diagnostics ---------------------------------------------------------------------
    def last_status(self, name: str | None = None):
        """The newest DiagnosticStatus received on DDS from the node (or ``name``)."""
        name = name or self.node.get_name()
        for m in reversed(self.diagnostics):
            for s in m.status:
                if s.name.startswith(name):
                    return s
        return None

    def status_values(self) -> dict:
        """Key-values of ``last_status()`` ({} before one arrived)."""
        st = self.last_status()
        return {} if st is None else {kv.key: kv.value for kv in st.values}

    def diag_values(self) -> dict:
        """The node's diagnostics now (level, message and key-values), without DDS."""
        st = self.node.diag.status()
        return {'level': st.level, 'message': st.message, **{kv.key: kv.value for kv in st.values}}

    # --- lifecycle over DDS (the services `ros2 lifecycle` calls) -----------------------
    def _call(self, srv_type, service: str, request, timeout: float = 15.0):
        client = self.peer.create_client(srv_type, f'/{self.node.get_name()}/{service}')
        try:
            assert client.wait_for_service(timeout_sec=timeout), f'no {service} service'
            future = client.call_async(request)
            assert self.wait_for(future.done, timeout), f'{service} did not answer'
            return future.result()
        finally:
            self.peer.destroy_client(client)

    def lifecycle_state(self) -> str:
        """The node's lifecycle state label, asked over its ``get_state`` service."""
        return self._call(GetState, 'get_state', GetState.Request()).current_state.label

    def change_state(self, transition: str) -> bool:
        """Ask for ``transition`` (configure, activate, ...) over ``change_state``; success?"""
        req = ChangeState.Request()
        req.transition.id = TRANSITIONS[transition]
        return self._call(ChangeState, 'change_state', req).success

    def close(self) -> None:
        """Stop spinning, stop the node's threads, destroy everything."""
        self.ex.shutdown(timeout_sec=2)
        if self.node is not None:
            close = getattr(self.node, 'close', None)
            if close is not None:
                close()
            self.node.destroy_node()
        self.peer.destroy_node()
        rclpy.shutdown(context=self.ctx)
