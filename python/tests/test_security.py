"""The container's side of RPC security: the per-replica secret, CurveZMQ, input type names.

Run from the repository root:  /usr/bin/python3 -m unittest discover -s python/tests
"""

from __future__ import annotations

import json
import struct
import time
import unittest

import zmq

from test_rpc import ContainerTestCase, FakeFrontend

from clipper_container import rpc

U32 = struct.Struct("<I")


class CurveFrontend(FakeFrontend):
    """The fake frontend of test_rpc, speaking CURVE as the server end."""

    def __init__(self):  # noqa: D401 - same fields as FakeFrontend, options set before bind
        self.ctx = zmq.Context()
        self.public, secret = zmq.curve_keypair()
        self.router = self.ctx.socket(zmq.ROUTER)
        self.router.setsockopt(zmq.LINGER, 0)
        self.router.curve_server = True
        self.router.curve_secretkey = secret
        self.router.curve_publickey = self.public
        self.router.bind("tcp://127.0.0.1:*")
        self.port = int(self.router.getsockopt(zmq.LAST_ENDPOINT).decode().rsplit(":", 1)[1])
        self.heartbeats = []


class SecretTest(ContainerTestCase):
    def test_secret_goes_in_the_extension_frame(self):
        self.start(CLIPPER_REPLICA_ID="echo:7#0", CLIPPER_REPLICA_SECRET="s3cret")
        _, frames = self.frontend.handshake()
        self.assertEqual(
            json.loads(frames[5]),
            {"extensions": ["status"], "replica_id": "echo:7#0", "secret": "s3cret"},
        )

    def test_no_secret_no_secret_field(self):
        self.start(CLIPPER_REPLICA_ID="echo:7#0")
        _, frames = self.frontend.handshake()
        self.assertNotIn("secret", json.loads(frames[5]))

    def test_secret_alone_still_sends_the_frame(self):
        frames = rpc.encode_registration("m", "1", 3, (), None, "s")
        self.assertEqual(json.loads(frames[6]), {"extensions": [], "secret": "s"})


class InputTypeNameTest(ContainerTestCase):
    def test_every_name_registers_its_code(self):
        for code, name in enumerate(["bytes", "ints", "floats", "doubles", "strings"]):
            with self.subTest(name=name):
                self.assertEqual(rpc.parse_input_type(name), code)
                self.assertEqual(rpc.parse_input_type(str(code)), code)
        for bad in ("5", "-1", "1e300", "tensors"):
            with self.subTest(bad=bad), self.assertRaises(rpc.ConfigError):
                rpc.parse_input_type(bad)

    def test_name_in_environment(self):
        self.start(input_type="floats")
        _, frames = self.frontend.handshake()
        self.assertEqual(frames[3], b"2")


@unittest.skipUnless(zmq.has("curve"), "this libzmq has no CURVE support")
class CurveTest(ContainerTestCase):
    def setUp(self):
        super().setUp()
        self.frontend.close()
        self.frontend = CurveFrontend()
        self.addCleanup(self.frontend.close)

    def test_registers_and_predicts_over_curve(self):
        self.start(CLIPPER_RPC_SERVER_KEY=self.frontend.public.decode(), CLIPPER_REPLICA_SECRET="x",
                   CLIPPER_REPLICA_ID="echo:7#0")
        identity, frames = self.frontend.handshake(accept_extensions=True)
        self.assertEqual(frames[1:4], [b"echo", b"7", b"4"])
        self.assertEqual(json.loads(frames[5])["secret"], "x")
        _, outputs, statuses = self.frontend.predict(identity, 5, 4, [b"plain", b"hi"])
        self.assertEqual(outputs, ["as is: plain", "as is: hi"])
        self.assertEqual(statuses, [0, 0])

    def test_a_plain_container_gets_nowhere(self):
        self.start()  # no CLIPPER_RPC_SERVER_KEY: a plain ZMTP client
        with self.assertRaises(AssertionError):
            self.frontend.recv(timeout=1.5)

    def test_sigterm_while_no_session_can_be_made(self):
        # a plain container against a CURVE port never gets a session; it must still stop
        container = self.start(CLIPPER_FRONTEND_TIMEOUT_MS=1500)
        time.sleep(3)  # past a reconnect
        self.assertEqual(container.terminate(timeout=5), 0)

    def test_a_wrong_server_key_gets_nowhere(self):
        other, _ = zmq.curve_keypair()
        self.start(CLIPPER_RPC_SERVER_KEY=other.decode())
        with self.assertRaises(AssertionError):
            self.frontend.recv(timeout=1.5)

    def test_malformed_server_key_is_a_config_error(self):
        container = self.start(CLIPPER_RPC_SERVER_KEY="short")
        self.assertEqual(container.proc.wait(5), 2)
        self.assertIn("CLIPPER_RPC_SERVER_KEY", container.log())


if __name__ == "__main__":
    unittest.main()
