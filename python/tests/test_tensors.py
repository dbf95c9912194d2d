"""The "tensors" extension in clipper_container (docs/rpc.md): the accepted list, message type 4.

Run from the repository root:  /usr/bin/python3 -m unittest discover -s python/tests
"""

from __future__ import annotations

import json
import os
import sys
import unittest

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from clipper_container import rpc  # noqa: E402
from test_rpc import U32, U64, ContainerTestCase  # noqa: E402


def parse_tensor_response(frames: list[bytes], msg_id: int):
    """Returns (outputs as bytes, statuses, trailer) of a type 4 response."""
    assert U32.unpack(frames[0])[0] == 4, f"expected a tensors response, got type {U32.unpack(frames[0])[0]}"
    assert frames[1] == U32.pack(msg_id)
    header = frames[3]
    count = U64.unpack_from(header, 0)[0]
    outputs = frames[4 : 4 + count]
    assert [len(o) for o in outputs] == [U64.unpack_from(header, 8 * (i + 1))[0] for i in range(count)]
    assert len(frames) == 6 + count
    return outputs, list(frames[4 + count]), json.loads(frames[5 + count])


class TensorCodecTest(unittest.TestCase):
    def test_accepted_list(self):
        hb = [b"", U32.pack(3), U32.pack(2), U32.pack(2)]
        self.assertEqual(rpc.parse_message(hb), rpc.Heartbeat(2))
        self.assertEqual(rpc.parse_message(hb + [b'{"accepted": ["status", "tensors"]}']), rpc.Heartbeat(2, ("status", "tensors")))
        for bad in (b"nope", b"{}", b'{"accepted": [1]}'):
            with self.assertRaises(rpc.ProtocolError):
                rpc.parse_message(hb + [bad])

    def test_tensor_output(self):
        data, layout = rpc.tensor_output(np.array([[1, 2], [3, 4]], dtype=">i4"))  # big-endian in, little-endian out
        self.assertEqual(layout, {"datatype": "INT32", "shape": [2, 2]})
        self.assertEqual(data, np.array([1, 2, 3, 4], dtype="<i4").tobytes())
        self.assertEqual(rpc.tensor_output(np.float32(1.5)), None, "a numpy scalar is text")
        self.assertEqual(rpc.tensor_output(np.array(["a"])), None, "a string array is text")
        self.assertEqual(rpc.tensor_output(np.array([True]))[1]["datatype"], "BOOL")
        self.assertEqual(rpc.tensor_output(np.arange(6.0)[::2])[0], np.array([0.0, 2.0, 4.0]).tobytes(), "strided arrays are made contiguous")

    def test_encode_tensor_response(self):
        answers = [
            (0, b"\x00" * 8, {"datatype": "FP32", "shape": [2]}),
            (1, b"bad input"),
            (0, b"\x00" * 8, {"datatype": "FP32", "shape": [2]}),
        ]
        frames = rpc.encode_tensor_response(b"\x07\x00\x00\x00", answers, 812.4)
        outputs, statuses, trailer = parse_tensor_response(frames[1:], 7)
        self.assertEqual(frames[0], b"")
        self.assertEqual((outputs[1], statuses), (b"bad input", [0, 1, 0]))
        self.assertEqual(trailer, {"compute_us": 812, "tensors": [{"datatype": "FP32", "shape": [2]}]})
        mixed = rpc.encode_tensor_response(b"\x01\x00\x00\x00", [answers[0], (0, b'"text"'), (0, b"\x00" * 8, {"datatype": "INT64", "shape": []})])
        self.assertEqual(parse_tensor_response(mixed[1:], 1)[2], {
            "tensors": [{"datatype": "FP32", "shape": [2]}, {"datatype": "INT64", "shape": []}], "tensor_index": [0, -1, 1],
        })


class TensorExtensionTest(ContainerTestCase):
    def accept(self, identity, accepted: list[str] | None):
        frames = [U32.pack(3), U32.pack(2), U32.pack(2)]
        if accepted is not None:
            frames.append(json.dumps({"accepted": accepted}).encode())
        self.frontend.send(identity, *frames)

    def test_numpy_arrays_travel_as_tensors_once_accepted(self):
        self.start(CLIPPER_EXTENSIONS="status,tensors")
        identity, frames = self.frontend.handshake()
        self.assertEqual(json.loads(frames[5]), {"extensions": ["status", "tensors"]})
        self.accept(identity, ["status", "tensors"])
        self.frontend.send(identity, *self.frontend.request_frames(5, 4, [b"numpy", b"b", b"c"]))
        _, response = self.frontend.recv_non_heartbeat()
        outputs, statuses, trailer = parse_tensor_response(response, 5)
        self.assertEqual(statuses, [0, 0, 0])
        self.assertEqual(outputs, [b"1.5", np.arange(3, dtype="<i8").tobytes(), b'{"p": 0.25}'])
        self.assertEqual(trailer["tensors"], [{"datatype": "INT64", "shape": [3]}])
        self.assertEqual(trailer["tensor_index"], [-1, 0, -1])
        self.assertGreaterEqual(trailer["compute_us"], 0)

    def test_type_2_without_a_list_means_status_only(self):
        self.start(CLIPPER_EXTENSIONS="status,tensors")
        identity, _ = self.frontend.handshake()
        self.accept(identity, None)
        msg_type, outputs, statuses = self.frontend.predict(identity, 6, 4, [b"numpy", b"b"])
        self.assertEqual((msg_type, outputs, statuses), (3, ["1.5", "[0, 1, 2]"], [0, 0]))

    def test_a_list_without_tensors(self):
        self.start(CLIPPER_EXTENSIONS="status,tensors")
        identity, _ = self.frontend.handshake()
        self.accept(identity, ["status"])
        self.assertEqual(self.frontend.predict(identity, 7, 4, [b"numpy", b"b"])[0], 3)


if __name__ == "__main__":
    unittest.main()
