"""End-to-end tests of clipper_container against a fake frontend (a real ZeroMQ ROUTER).

Run from the repository root:  /usr/bin/python3 -m unittest discover -s python/tests
"""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest

import numpy as np
import zmq

PYTHON_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, PYTHON_DIR)

from clipper_container import rpc  # noqa: E402  (codec unit tests only)

U32 = struct.Struct("<I")
U64 = struct.Struct("<Q")

ECHO_MODEL = """
import json
import numpy as np

def describe(x):
    if isinstance(x, np.ndarray):
        return {"kind": "ndarray", "dtype": str(x.dtype), "value": x.tolist(), "writable": bool(x.flags.writeable)}
    if isinstance(x, str):
        return {"kind": "str", "value": x}
    if isinstance(x, bytes):
        return {"kind": "bytes", "hex": x.hex()}
    return {"kind": type(x).__name__}

def predict(inputs):
    first = inputs[0] if inputs else None
    if first == "raise":
        raise ValueError("boom")
    if first == "wrongcount":
        return [1] * (len(inputs) + 1)
    if first == "unserialisable":
        return [object() if i == 1 else "fine" for i in range(len(inputs))]
    if first == "numpy":
        return [np.float32(1.5), np.arange(3, dtype=np.int64), {"p": np.float64(0.25)}][: len(inputs)]
    if first == "plain":
        return ["as is: " + x for x in inputs]
    if first == "slow":
        import time; time.sleep(float(inputs[1]))
        return ["slept"] * len(inputs)
    return [describe(x) for x in inputs]
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FakeFrontend:
    """A minimal Clipper frontend written directly from the wire-format description."""

    def __init__(self, port: int | None = None):
        self.ctx = zmq.Context()
        self.router = self.ctx.socket(zmq.ROUTER)
        self.router.setsockopt(zmq.LINGER, 0)
        if port is None:
            self.router.bind("tcp://127.0.0.1:*")
            port = int(self.router.getsockopt(zmq.LAST_ENDPOINT).decode().rsplit(":", 1)[1])
        else:
            self.router.bind(f"tcp://127.0.0.1:{port}")
        self.port = port
        self.heartbeats = []  # identities of heartbeats skipped by recv_non_heartbeat

    def close(self):
        self.router.close(linger=0)
        self.ctx.term()

    def recv(self, timeout: float = 5.0):
        if not self.router.poll(int(timeout * 1000)):
            raise AssertionError(f"nothing received from the container within {timeout}s")
        identity, delimiter, *frames = self.router.recv_multipart()
        assert delimiter == b"", "first frame after identity must be the empty delimiter"
        return identity, frames

    def recv_non_heartbeat(self, timeout: float = 5.0):
        deadline = time.monotonic() + timeout
        while True:
            identity, frames = self.recv(max(0.01, deadline - time.monotonic()))
            if frames == [U32.pack(2)]:
                self.heartbeats.append(identity)
                continue
            return identity, frames

    def send(self, identity: bytes, *frames: bytes):
        self.router.send_multipart([identity, b"", *frames])

    def send_heartbeat(self, identity: bytes, kind: int):
        self.send(identity, U32.pack(3), U32.pack(2), U32.pack(kind))

    def expect_heartbeat(self, timeout: float = 5.0) -> bytes:
        identity, frames = self.recv(timeout)
        assert frames == [U32.pack(2)], f"expected a heartbeat, got {frames}"
        return identity

    def handshake(self, accept_extensions: bool = False):
        """Heartbeat -> send-metadata -> registration [-> extensions accepted]."""
        identity = self.expect_heartbeat()
        self.send_heartbeat(identity, 1)
        reg_identity, frames = self.recv_non_heartbeat()
        assert reg_identity == identity
        if accept_extensions:
            self.send_heartbeat(identity, 2)
        return identity, frames

    @staticmethod
    def request_frames(msg_id: int, input_type: int, payloads: list[bytes]) -> list[bytes]:
        header = U64.pack(input_type) + U64.pack(len(payloads)) + b"".join(U64.pack(len(p)) for p in payloads)
        return [U32.pack(3), U32.pack(1), U32.pack(msg_id), U32.pack(0), U64.pack(len(header)), header, *payloads]

    def predict(self, identity, msg_id, input_type, payloads, frames=None, timeout=5.0):
        self.send(identity, *(frames or self.request_frames(msg_id, input_type, payloads)))
        _, response = self.recv_non_heartbeat(timeout)
        return parse_response(response, msg_id)


def parse_response(frames: list[bytes], msg_id: int):
    """Returns (message type, outputs as str, statuses or None)."""
    msg_type = U32.unpack(frames[0])[0]
    assert msg_type in (1, 3), f"unexpected response type {msg_type}"
    assert frames[1] == U32.pack(msg_id), "msg id must be echoed"
    header_len = U64.unpack(frames[2])[0]
    header = frames[3]
    assert len(header) == header_len
    count = U64.unpack_from(header, 0)[0]
    assert header_len == 8 * (count + 1)
    lengths = [U64.unpack_from(header, 8 * (i + 1))[0] for i in range(count)]
    outputs = frames[4 : 4 + count]
    assert [len(o) for o in outputs] == lengths
    statuses = None
    if msg_type == 3:
        assert len(frames) == 5 + count
        statuses = list(frames[4 + count])
        assert len(statuses) == count
    else:
        assert len(frames) == 4 + count
    return msg_type, [o.decode("utf-8") for o in outputs], statuses


class ContainerProcess:
    """`python3 -m clipper_container` in a subprocess with stderr captured to a file."""

    def __init__(self, port, model_path, input_type="strings", **env_extra):
        self.stderr = tempfile.NamedTemporaryFile(prefix="container-", suffix=".log", delete=False)
        env = dict(os.environ)
        env.update(
            PYTHONPATH=PYTHON_DIR,
            CLIPPER_MODEL_NAME="echo",
            CLIPPER_MODEL_VERSION="7",
            CLIPPER_INPUT_TYPE=input_type,
            CLIPPER_IP="127.0.0.1",
            CLIPPER_PORT=str(port),
            CLIPPER_MODEL_PATH=model_path,
        )
        env.update({k: str(v) for k, v in env_extra.items()})
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "clipper_container"],
            env=env, stdout=subprocess.DEVNULL, stderr=self.stderr, cwd=tempfile.gettempdir(),
        )

    def log(self) -> str:
        with open(self.stderr.name, encoding="utf-8", errors="replace") as f:
            return f.read()

    def terminate(self, sig=signal.SIGTERM, timeout=5.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()

    def close(self):
        self.terminate()
        self.stderr.close()
        os.unlink(self.stderr.name)


class ContainerTestCase(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.model = os.path.join(self.tmp.name, "echo_model.py")
        with open(self.model, "w") as f:
            f.write(ECHO_MODEL)
        self.frontend = FakeFrontend()
        self.addCleanup(self.tmp.cleanup)
        self.addCleanup(self.frontend.close)

    def start(self, **kwargs) -> ContainerProcess:
        container = ContainerProcess(self.frontend.port, self.model, **kwargs)
        self.addCleanup(container.close)
        return container


class HandshakeTest(ContainerTestCase):
    def test_registration_frames(self):
        self.start(input_type="doubles")
        identity, frames = self.frontend.handshake()
        self.assertEqual(frames[0], U32.pack(0))
        self.assertEqual(frames[1:5], [b"echo", b"7", b"3", U32.pack(3)])
        self.assertEqual(json.loads(frames[5]), {"extensions": ["status"]})
        self.assertEqual(len(frames), 6)

    def test_replica_id_in_registration(self):
        self.start(CLIPPER_REPLICA_ID="echo-7-r1", CLIPPER_PARENT_PID=os.getpid())
        _, frames = self.frontend.handshake()
        self.assertEqual(json.loads(frames[5]), {"extensions": ["status"], "replica_id": "echo-7-r1"})

    def test_exits_when_parent_is_gone(self):
        container = self.start(CLIPPER_PARENT_PID=os.getpid() + 1000000)  # not our parent
        self.assertEqual(container.proc.wait(5), 0)
        self.assertIn("parent process", container.log())

    def test_input_type_digit_and_no_extensions(self):
        self.start(input_type="1", CLIPPER_EXTENSIONS="")
        _, frames = self.frontend.handshake()
        self.assertEqual(frames, [U32.pack(0), b"echo", b"7", b"1", U32.pack(3)])

    def test_heartbeats_keep_coming(self):
        self.start(CLIPPER_HEARTBEAT_MS=100)
        identity = self.frontend.expect_heartbeat()
        for _ in range(3):  # unregistered: only heartbeats, every ~0.1 s
            self.assertEqual(self.frontend.expect_heartbeat(timeout=1.0), identity)

    def test_reregisters_on_metadata_request(self):
        self.start()
        identity, first = self.frontend.handshake()
        self.frontend.send_heartbeat(identity, 1)
        again_identity, again = self.frontend.recv_non_heartbeat()
        self.assertEqual(again_identity, identity)
        self.assertEqual(again, first)

    def test_sigterm_exits_cleanly(self):
        container = self.start()
        self.frontend.handshake()
        started = time.monotonic()
        self.assertEqual(container.terminate(signal.SIGTERM), 0)
        self.assertLess(time.monotonic() - started, 2.0)
        self.assertIn("shutting down", container.log())

    def test_sigterm_during_predict_finishes_the_batch(self):
        container = self.start()
        identity, _ = self.frontend.handshake()
        self.frontend.send(identity, *self.frontend.request_frames(3, 4, [b"slow", b"0.8"]))
        time.sleep(0.3)
        container.proc.send_signal(signal.SIGTERM)
        _, response = self.frontend.recv_non_heartbeat()
        self.assertEqual(parse_response(response, 3)[1], ["slept", "slept"])
        self.assertEqual(container.proc.wait(5), 0)

    def test_sigint_exits_cleanly(self):
        container = self.start()
        self.frontend.handshake()
        self.assertEqual(container.terminate(signal.SIGINT), 0)


class PredictTest(ContainerTestCase):
    def setUp(self):
        super().setUp()
        self.container = self.start()
        self.identity, _ = self.frontend.handshake()

    def predict(self, input_type, payloads, msg_id=41):
        msg_type, outputs, statuses = self.frontend.predict(self.identity, msg_id, input_type, payloads)
        self.assertEqual(msg_type, 1)
        self.assertIsNone(statuses)
        return outputs

    def test_strings(self):
        outputs = self.predict(4, ["héllo".encode(), b"", "wörld ✓".encode()])
        self.assertEqual(
            [json.loads(o) for o in outputs],
            [{"kind": "str", "value": "héllo"}, {"kind": "str", "value": ""}, {"kind": "str", "value": "wörld ✓"}],
        )

    def test_bytes(self):
        outputs = self.predict(0, [b"\x00\xff\x10", b"abc"])
        self.assertEqual([json.loads(o) for o in outputs], [{"kind": "bytes", "hex": "00ff10"}, {"kind": "bytes", "hex": "616263"}])

    def test_ints(self):
        payloads = [np.array([1, -2, 2**31 - 1], dtype="<i4").tobytes(), np.array([7], dtype="<i4").tobytes()]
        outputs = [json.loads(o) for o in self.predict(1, payloads)]
        self.assertEqual(outputs[0], {"kind": "ndarray", "dtype": "int32", "value": [1, -2, 2**31 - 1], "writable": True})
        self.assertEqual(outputs[1]["value"], [7])

    def test_floats(self):
        payload = np.array([0.5, -1.25, 3.0], dtype="<f4").tobytes()
        (out,) = [json.loads(o) for o in self.predict(2, [payload])]
        self.assertEqual(out, {"kind": "ndarray", "dtype": "float32", "value": [0.5, -1.25, 3.0], "writable": True})

    def test_doubles(self):
        payloads = [np.array([0.1, 2.5e300], dtype="<f8").tobytes(), b""]
        outputs = [json.loads(o) for o in self.predict(3, payloads)]
        self.assertEqual(outputs[0]["dtype"], "float64")
        self.assertEqual(outputs[0]["value"], [0.1, 2.5e300])
        self.assertEqual(outputs[1]["value"], [])

    def test_msg_id_echoed_and_str_output_sent_as_is(self):
        outputs = self.predict(4, [b"plain", b"x"], msg_id=0xDEADBEEF)
        self.assertEqual(outputs, ["as is: plain", "as is: x"])

    def test_numpy_outputs_serialised(self):
        outputs = self.predict(4, [b"numpy", b"b", b"c"])
        self.assertEqual(outputs, ["1.5", "[0, 1, 2]", '{"p": 0.25}'])

    def test_empty_batch(self):
        self.assertEqual(self.predict(4, []), [])

    def test_merged_frames_are_understood(self):
        frames = self.frontend.request_frames(5, 4, [b"plain", b"y"])
        merged = [b"".join(frames[:5]), frames[5], frames[6] + frames[7]]
        _, outputs, _ = self.frontend.predict(self.identity, 5, 4, None, frames=merged)
        self.assertEqual(outputs, ["as is: plain", "as is: y"])

    def test_missing_header_length_frame_is_understood(self):
        frames = self.frontend.request_frames(6, 4, [b"plain"])
        del frames[4]
        _, outputs, _ = self.frontend.predict(self.identity, 6, 4, None, frames=frames)
        self.assertEqual(outputs, ["as is: plain"])

    def test_errors_without_extension_are_json_and_serving_continues(self):
        cases = [
            ([b"raise", b"b"], "predict raised ValueError: boom"),
            ([b"wrongcount", b"b"], "predict returned 3 outputs for 2 inputs"),
        ]
        for i, (payloads, message) in enumerate(cases):
            outputs = self.predict(4, payloads, msg_id=100 + i)
            self.assertEqual([json.loads(o) for o in outputs], [{"error": message}] * len(payloads))
        outputs = self.predict(4, [b"unserialisable", b"b"], msg_id=200)
        self.assertEqual(outputs[0], "fine")
        self.assertIn("output 1 cannot be serialised", json.loads(outputs[1])["error"])
        # still serving
        self.assertEqual(self.predict(4, [b"plain"], msg_id=201), ["as is: plain"])
        log = self.container.log()
        self.assertIn("Traceback", log)
        self.assertIn("ValueError: boom", log)
        self.assertIn("predict returned 3 outputs for 2 inputs", log)

    def test_undecodable_input_is_an_error(self):
        outputs = self.predict(1, [b"\x01\x00\x00\x00", b"\x01\x02\x03"])
        for o in outputs:
            self.assertIn("input 1 cannot be decoded as ints", json.loads(o)["error"])

class ExtensionTest(ContainerTestCase):
    def test_status_extension_accepted(self):
        self.start()
        identity, _ = self.frontend.handshake(accept_extensions=True)
        msg_type, outputs, statuses = self.frontend.predict(identity, 1, 4, [b"plain", b"z"])
        self.assertEqual((msg_type, outputs, statuses), (3, ["as is: plain", "as is: z"], [0, 0]))

        msg_type, outputs, statuses = self.frontend.predict(identity, 2, 4, [b"raise", b"z"])
        self.assertEqual((msg_type, statuses), (3, [1, 1]))
        self.assertEqual(outputs, ["predict raised ValueError: boom"] * 2)

        _, outputs, statuses = self.frontend.predict(identity, 3, 4, [b"wrongcount"])
        self.assertEqual((outputs, statuses), (["predict returned 2 outputs for 1 inputs"], [1]))

        _, outputs, statuses = self.frontend.predict(identity, 4, 4, [b"unserialisable", b"z", b"z"])
        self.assertEqual(statuses, [0, 1, 0])
        self.assertEqual(outputs[0], "fine")
        self.assertTrue(outputs[1].startswith("output 1 cannot be serialised: TypeError"))

    def test_status_extension_not_accepted(self):
        self.start()
        identity, frames = self.frontend.handshake(accept_extensions=False)
        self.assertEqual(len(frames), 6)  # offered...
        msg_type, outputs, statuses = self.frontend.predict(identity, 1, 4, [b"raise"])
        self.assertEqual((msg_type, statuses), (1, None))  # ...but not used
        self.assertEqual(json.loads(outputs[0]), {"error": "predict raised ValueError: boom"})

    def test_acceptance_without_offer_is_ignored(self):
        self.start(CLIPPER_EXTENSIONS="")
        identity, frames = self.frontend.handshake(accept_extensions=True)
        self.assertEqual(len(frames), 5)
        msg_type, _, statuses = self.frontend.predict(identity, 1, 4, [b"plain"])
        self.assertEqual((msg_type, statuses), (1, None))

    def test_reregistration_resets_negotiation(self):
        self.start()
        identity, _ = self.frontend.handshake(accept_extensions=True)
        self.assertEqual(self.frontend.predict(identity, 1, 4, [b"plain"])[0], 3)
        self.frontend.send_heartbeat(identity, 1)  # e.g. a restarted frontend
        self.frontend.recv_non_heartbeat()  # registration
        self.assertEqual(self.frontend.predict(identity, 2, 4, [b"plain"])[0], 1)


class ReconnectTest(ContainerTestCase):
    def test_reconnects_after_frontend_silence(self):
        container = self.start(CLIPPER_HEARTBEAT_MS=100, CLIPPER_FRONTEND_TIMEOUT_MS=800)
        first, _ = self.frontend.handshake(accept_extensions=True)
        # Say nothing more: within ~1 s a heartbeat arrives from a new socket.
        deadline = time.monotonic() + 4
        while True:
            identity = self.frontend.expect_heartbeat(timeout=max(0.01, deadline - time.monotonic()))
            if identity != first:
                break
        self.frontend.send_heartbeat(identity, 1)
        again, frames = self.frontend.recv_non_heartbeat()
        self.assertEqual(again, identity)
        self.assertEqual(frames[:2], [U32.pack(0), b"echo"])
        # negotiation is per session: the new socket starts without the extension
        self.assertEqual(self.frontend.predict(identity, 1, 4, [b"plain"])[0], 1)
        self.assertIn("reconnecting", container.log())

    def test_no_reconnect_while_frontend_answers(self):
        self.start(CLIPPER_HEARTBEAT_MS=100, CLIPPER_FRONTEND_TIMEOUT_MS=500)
        identity, _ = self.frontend.handshake()
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            self.assertEqual(self.frontend.expect_heartbeat(timeout=1.0), identity)
            self.frontend.send_heartbeat(identity, 0)

    def test_container_started_before_frontend(self):
        self.frontend.close()
        port = free_port()
        container = ContainerProcess(port, self.model, CLIPPER_HEARTBEAT_MS=100, CLIPPER_FRONTEND_TIMEOUT_MS=500)
        self.addCleanup(container.close)
        time.sleep(1.0)  # the container is already retrying / reconnecting
        self.frontend = FakeFrontend(port)
        self.addCleanup(self.frontend.close)
        identity, _ = self.frontend.handshake()
        self.assertEqual(self.frontend.predict(identity, 1, 4, [b"plain"])[1], ["as is: plain"])

    def test_long_predict_is_not_taken_for_frontend_silence(self):
        # A quiet 1.5 s predict with a 1 s timeout must not make the container reconnect.
        self.start(CLIPPER_FRONTEND_TIMEOUT_MS=1000, CLIPPER_HEARTBEAT_MS=200)
        identity, _ = self.frontend.handshake()
        _, outputs, _ = self.frontend.predict(identity, 9, 4, [b"slow", b"1.5"])
        self.assertEqual(outputs, ["slept", "slept"])
        self.frontend.send_heartbeat(identity, 0)
        self.assertEqual(self.frontend.expect_heartbeat(timeout=1.0), identity)


class CheckTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)

    def write(self, name, text):
        path = os.path.join(self.tmp.name, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(textwrap.dedent(text))
        return path

    def check(self, path):
        result = subprocess.run(
            [sys.executable, "-m", "clipper_container", "--check", path],
            env=dict(os.environ, PYTHONPATH=PYTHON_DIR),
            capture_output=True, text=True, timeout=30,
        )
        return result.returncode, result.stderr

    def test_valid_file(self):
        code, err = self.check(self.write("ok.py", "def predict(inputs):\n    return inputs\n"))
        self.assertEqual((code, err), (0, ""))

    def test_syntax_error(self):
        code, err = self.check(self.write("bad.py", "import os\n\ndef predict(inputs)\n    return inputs\n"))
        self.assertEqual(code, 2)
        last = err.strip().splitlines()[-1]  # the frontend keeps the tail of stderr
        self.assertIn("syntax error", last)
        self.assertIn("line 3", last)

    def test_missing_predict(self):
        code, err = self.check(self.write("nop.py", "def predicts(inputs):\n    return inputs\n"))
        self.assertEqual(code, 2)
        self.assertIn("does not define predict", err)

    def test_predict_not_callable(self):
        code, err = self.check(self.write("nc.py", "predict = 3\n"))
        self.assertEqual(code, 2)
        self.assertIn("not a function", err)

    def test_import_error(self):
        code, err = self.check(self.write("imp.py", "import no_such_module_xyz\ndef predict(x):\n    return x\n"))
        self.assertEqual(code, 2)
        self.assertIn("import error", err.strip().splitlines()[-1])
        self.assertIn("no_such_module_xyz", err.strip().splitlines()[-1])
        self.assertIn("line 1", err)

    def test_exception_at_import(self):
        code, err = self.check(self.write("exc.py", "raise RuntimeError('bad weights')\n"))
        self.assertEqual(code, 2)
        self.assertIn("RuntimeError: bad weights", err)

    def test_module_level_serve_call_does_not_block(self):
        path = self.write("srv.py", "from clipper_container import serve\ndef predict(x):\n    return x\nserve(predict)\n")
        self.assertEqual(self.check(path)[0], 0)

    def test_missing_path_and_empty_directory(self):
        self.assertEqual(self.check(os.path.join(self.tmp.name, "nope.py"))[0], 2)
        os.makedirs(os.path.join(self.tmp.name, "empty"))
        code, err = self.check(os.path.join(self.tmp.name, "empty"))
        self.assertEqual(code, 2)
        self.assertIn("model.py", err)

    def test_directory_with_sibling_artifacts_serves(self):
        directory = os.path.join(self.tmp.name, "m")
        self.write("m/helpers.py", "SCALE = 3\n")
        self.write(
            "m/predict.py",
            """
            import os, pickle
            from helpers import SCALE
            with open(os.path.join(os.path.dirname(__file__), "weights.pkl"), "rb") as f:
                WEIGHTS = pickle.load(f)
            def predict(inputs):
                return [float((x * WEIGHTS).sum() * SCALE) for x in inputs]
            """,
        )
        with open(os.path.join(directory, "weights.pkl"), "wb") as f:
            import pickle
            pickle.dump(np.array([1.0, 2.0]), f)
        self.assertEqual(self.check(directory)[0], 0)

        frontend = FakeFrontend()
        self.addCleanup(frontend.close)
        container = ContainerProcess(frontend.port, directory, input_type="doubles")
        self.addCleanup(container.close)
        identity, _ = frontend.handshake()
        payload = np.array([1.0, 1.0], dtype="<f8").tobytes()
        self.assertEqual(frontend.predict(identity, 1, 3, [payload])[1], ["9.0"])

    def test_launcher_refuses_bad_config(self):
        path = self.write("ok.py", "def predict(inputs):\n    return inputs\n")
        env = dict(os.environ, PYTHONPATH=PYTHON_DIR, CLIPPER_MODEL_PATH=path, CLIPPER_MODEL_NAME="m",
                   CLIPPER_INPUT_TYPE="tensors")
        result = subprocess.run([sys.executable, "-m", "clipper_container"], env=env,
                                capture_output=True, text=True, timeout=30)
        self.assertEqual(result.returncode, 2)
        self.assertIn("unknown input type", result.stderr)


class CodecTest(unittest.TestCase):
    def test_parse_spec_layout(self):
        frames = FakeFrontend.request_frames(0x01020304, 3, [b"\x00" * 8, b""])
        request = rpc.parse_message([b"", *frames])
        self.assertEqual(request.msg_id, U32.pack(0x01020304))
        self.assertEqual(request.input_type, 3)
        self.assertEqual(request.inputs, [b"\x00" * 8, b""])

    def test_heartbeat(self):
        self.assertEqual(rpc.parse_message([b"", U32.pack(3), U32.pack(2), U32.pack(1)]), rpc.Heartbeat(1))

    def test_wrong_version_rejected(self):
        with self.assertRaises(rpc.ProtocolError):
            rpc.parse_message([b"", U32.pack(2), U32.pack(2), U32.pack(0)])

    def test_truncated_request_reports_id_and_count(self):
        frames = FakeFrontend.request_frames(9, 4, [b"abc", b"de"])
        with self.assertRaises(rpc.ProtocolError) as ctx:
            rpc.parse_message(frames[:-1])
        self.assertEqual((ctx.exception.msg_id, ctx.exception.count), (U32.pack(9), 2))

    def test_encode_response(self):
        frames = rpc.encode_response(b"\x01\x00\x00\x00", [b"ab", b""], [0, 1])
        self.assertEqual(
            frames,
            [b"", U32.pack(3), b"\x01\x00\x00\x00", U64.pack(24), U64.pack(2) + U64.pack(2) + U64.pack(0), b"ab", b"", b"\x00\x01"],
        )

    def test_nan_is_not_serialisable(self):
        with self.assertRaises(ValueError):
            rpc.serialize_output(float("nan"))


if __name__ == "__main__":
    unittest.main()
