"""Clipper RPC (version 3) over ZeroMQ: the wire codec and the container client loop.

The frontend binds a ROUTER socket; every model container connects a DEALER.
Every message starts with an empty delimiter frame; integers are little-endian.

Container -> frontend
    heartbeat      [""] [u32 2]
    registration   [""] [u32 0] [name] [version] [input type, decimal text] [u32 3]
                   optionally [JSON {"extensions": [...], "replica_id": ..., "secret": ...}]
    response       [""] [u32 1] [msg id] [u64 header len] [header] [output]...
    response+status (extension "status", once the frontend accepted it)
                   [""] [u32 3] [msg id] [u64 header len] [header] [output]... [status bytes]
    tensors        (extension "tensors", once the frontend accepted it)
                   [""] [u32 4] [msg id] [u64 header len] [header] [output]... [status bytes]
                   [JSON {"compute_us": n, "tensors": [{"datatype", "shape"}...], "tensor_index": [...]}]
    header = u64 count, then one u64 byte length per output.

Frontend -> container
    heartbeat      [""] [u32 3] [u32 2] [u32 heartbeat type]
    accepted       [""] [u32 3] [u32 2] [u32 2] [JSON {"accepted": [...]}]
                   (type 2 without the JSON frame, from older frontends, accepts "status" only)
    frontends      [""] [u32 3] [u32 2] [u32 3] [JSON {"frontends": ["host:port", ...], "self": ...}]
                   (extension "frontends" only: the cluster's frontends, see docs/rpc.md)
    predict        [""] [u32 3] [u32 1] [u32 msg id] [u32 0] [u64 header len]
                   [header: u64 input type, u64 count, u64 length per input] [input]...
"""

from __future__ import annotations

import json
import logging
import re
import os
import signal
import socket
import struct
import threading
import time
import traceback
from dataclasses import dataclass
from typing import Callable, Sequence, Union

import numpy as np
import zmq

log = logging.getLogger("clipper_container")

RPC_VERSION = 3

# message types
MSG_NEW_CONTAINER = 0
MSG_CONTAINER_CONTENT = 1
MSG_HEARTBEAT = 2
MSG_CONTAINER_CONTENT_WITH_STATUS = 3  # extension "status"
MSG_TENSORS = 4  # extension "tensors"

# heartbeat types (frontend -> container)
HB_KEEPALIVE = 0
HB_SEND_METADATA = 1
HB_EXTENSIONS_ACCEPTED = 2  # extension negotiation
HB_FRONTENDS = 3  # extension "frontends": a JSON frame with the cluster's frontends follows

REQUEST_PREDICT = 0

# input types
INPUT_BYTES, INPUT_INTS, INPUT_FLOATS, INPUT_DOUBLES, INPUT_STRINGS = range(5)
INPUT_TYPE_NAMES = {
    INPUT_BYTES: "bytes",
    INPUT_INTS: "ints",
    INPUT_FLOATS: "floats",
    INPUT_DOUBLES: "doubles",
    INPUT_STRINGS: "strings",
}
_INPUT_TYPE_ALIASES = {
    "byte": INPUT_BYTES,
    "int": INPUT_INTS,
    "integers": INPUT_INTS,
    "float": INPUT_FLOATS,
    "double": INPUT_DOUBLES,
    "string": INPUT_STRINGS,
    "str": INPUT_STRINGS,
}
# wire dtype (little-endian) -> native dtype handed to predict()
_NUMERIC_DTYPES = {
    INPUT_INTS: (np.dtype("<i4"), np.int32),
    INPUT_FLOATS: (np.dtype("<f4"), np.float32),
    INPUT_DOUBLES: (np.dtype("<f8"), np.float64),
}

STATUS_OK = 0
STATUS_ERROR = 1

EXTENSION_STATUS = "status"
EXTENSION_FRONTENDS = "frontends"
# Not declared by default: CLIPPER_EXTENSIONS=status,tensors makes numpy array outputs travel as tensors.
EXTENSION_TENSORS = "tensors"
SUPPORTED_EXTENSIONS = (EXTENSION_STATUS, EXTENSION_FRONTENDS, EXTENSION_TENSORS)

# numpy (kind, item size) -> V2 datatype of a tensor output
_TENSOR_DATATYPES = {
    ("b", 1): "BOOL", ("i", 1): "INT8", ("i", 2): "INT16", ("i", 4): "INT32", ("i", 8): "INT64",
    ("u", 1): "UINT8", ("u", 2): "UINT16", ("u", 4): "UINT32", ("u", 8): "UINT64",
    ("f", 2): "FP16", ("f", 4): "FP32", ("f", 8): "FP64",
}

DEFAULT_HEARTBEAT_INTERVAL = 1.0
DEFAULT_HEARTBEAT_TIMEOUT = 5.0


class ConfigError(ValueError):
    """Invalid container configuration (environment or arguments)."""


class ProtocolError(ValueError):
    """A frontend message that cannot be understood.

    ``msg_id``/``count`` are set when enough of a prediction request was
    readable to answer it with an error instead of dropping it.
    """

    def __init__(self, message: str, msg_id: bytes | None = None, count: int | None = None):
        super().__init__(message)
        self.msg_id = msg_id
        self.count = count


def parse_input_type(value: Union[str, int]) -> int:
    """Accept an input type code (0-4, int or digit string) or a name such as ``doubles``."""
    if isinstance(value, int) and not isinstance(value, bool):
        code = value
    else:
        text = str(value).strip().lower()
        if text.isdigit():
            code = int(text)
        else:
            names = {v: k for k, v in INPUT_TYPE_NAMES.items()}
            names.update(_INPUT_TYPE_ALIASES)
            if text not in names:
                raise ConfigError(
                    f"unknown input type {value!r}; expected one of "
                    f"{', '.join(INPUT_TYPE_NAMES.values())} or 0-4"
                )
            code = names[text]
    if code not in INPUT_TYPE_NAMES:
        raise ConfigError(f"input type code {code} out of range 0-4")
    return code


# --------------------------------------------------------------------------- codec


def _u32(value: int) -> bytes:
    return struct.pack("<I", value)


def _u64(value: int) -> bytes:
    return struct.pack("<Q", value)


def encode_heartbeat() -> list[bytes]:
    return [b"", _u32(MSG_HEARTBEAT)]


def encode_leaving() -> list[bytes]:
    """A replica that stops on purpose says so (extension "frontends"): a heartbeat with a JSON frame."""
    return [b"", _u32(MSG_HEARTBEAT), b'{"leaving":true}']


def encode_registration(
    name: str, version: str, input_type: int, extensions: Sequence[str] = (),
    replica_id: str | None = None, secret: str | None = None,
) -> list[bytes]:
    frames = [
        b"",
        _u32(MSG_NEW_CONTAINER),
        name.encode("utf-8"),
        version.encode("utf-8"),
        str(input_type).encode("ascii"),
        _u32(RPC_VERSION),
    ]
    if extensions or replica_id or secret:
        extra = {"extensions": list(extensions)}
        if replica_id:
            extra["replica_id"] = replica_id  # lets a resource manager match process and replica
        if secret:
            extra["secret"] = secret  # proves the resource manager started this replica
        frames.append(json.dumps(extra).encode("utf-8"))
    return frames


def encode_response(
    msg_id: bytes, outputs: Sequence[bytes], statuses: Sequence[int] | None = None
) -> list[bytes]:
    """A prediction response; with ``statuses`` it uses the "status" extension (type 3)."""
    header = _u64(len(outputs)) + b"".join(_u64(len(o)) for o in outputs)
    msg_type = MSG_CONTAINER_CONTENT if statuses is None else MSG_CONTAINER_CONTENT_WITH_STATUS
    frames = [b"", _u32(msg_type), bytes(msg_id), _u64(len(header)), header, *outputs]
    if statuses is not None:
        if len(statuses) != len(outputs):
            raise ValueError("one status per output required")
        frames.append(bytes(statuses))
    return frames


def encode_tensor_response(
    msg_id: bytes, answers: Sequence[tuple], compute_us: float | None = None
) -> list[bytes]:
    """A "tensors" response (type 4) from (status, payload[, layout]) answers; layout is
    {"datatype", "shape"} for a tensor output, absent or None for text. Each distinct layout is
    written once in the JSON trailer; "tensor_index" only when outputs do not all share one."""
    layouts: list[dict] = []
    keys: dict = {}
    index = []
    for answer in answers:
        layout = answer[2] if len(answer) > 2 else None
        if answer[0] != STATUS_OK or layout is None:
            index.append(-1)
            continue
        key = (layout["datatype"], tuple(layout["shape"]))
        if key not in keys:
            keys[key] = len(layouts)
            layouts.append({"datatype": layout["datatype"], "shape": list(layout["shape"])})
        index.append(keys[key])
    trailer: dict = {}
    if compute_us is not None:
        trailer["compute_us"] = max(0, round(compute_us))
    if layouts:
        trailer["tensors"] = layouts
    implied = not layouts or (
        len(layouts) == 1 and all(a[0] != STATUS_OK or k == 0 for a, k in zip(answers, index))
    )
    if not implied:
        trailer["tensor_index"] = index
    outputs = [a[1] for a in answers]
    header = _u64(len(outputs)) + b"".join(_u64(len(o)) for o in outputs)
    statuses = bytes(a[0] for a in answers)
    return [b"", _u32(MSG_TENSORS), bytes(msg_id), _u64(len(header)), header, *outputs, statuses,
            json.dumps(trailer).encode("utf-8")]


def tensor_output(value):
    """(raw little-endian bytes, layout) for a numeric numpy array, else None (sent as text)."""
    if not isinstance(value, np.ndarray):
        return None
    datatype = _TENSOR_DATATYPES.get((value.dtype.kind, value.dtype.itemsize))
    if datatype is None:
        return None
    little = np.ascontiguousarray(value, dtype=value.dtype.newbyteorder("<"))
    return little.tobytes(), {"datatype": datatype, "shape": [int(d) for d in value.shape]}


@dataclass(frozen=True)
class Heartbeat:
    kind: int
    # heartbeat type 2: the extensions the frontend accepted (None: no list sent, "status" only)
    accepted: tuple | None = None


@dataclass(frozen=True)
class Frontends:
    """The cluster's frontends ("host:port" each); ``self_address`` is the sender's own entry."""
    frontends: list
    self_address: str | None


_ADDRESS = re.compile(r"^(?:\[([^\]]+)\]|([^:\s]+)):([0-9]{1,5})$")


def parse_address(text: str) -> tuple[str, int] | None:
    """``host:port`` or ``[v6]:port`` -> (host, port); None when malformed."""
    m = _ADDRESS.match(text.strip())
    if not m or not 0 < int(m.group(3)) < 65536:
        return None
    return (m.group(1) or m.group(2), int(m.group(3)))


def format_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _canonical(text: str) -> str:
    a = parse_address(text)
    return format_address(*a) if a else text


def parse_frontends_env(text: str) -> list[str]:
    """CLIPPER_FRONTENDS: ``host:port,host:port`` (blanks ignored) -> canonical addresses."""
    out = []
    for item in (t.strip() for t in text.split(",")):
        if not item:
            continue
        a = parse_address(item)
        if a is None:
            raise ConfigError(f"CLIPPER_FRONTENDS: {item!r} is not host:port")
        out.append(format_address(*a))
    return out


@dataclass(frozen=True)
class PredictRequest:
    msg_id: bytes  # the 4 id bytes, echoed verbatim in the response
    input_type: int
    inputs: list  # raw bytes of each input


def _read_input_header(body: bytes, start: int, declared_len: int | None):
    """Try to read ``u64 input type, u64 count, u64 len...`` at ``start`` such that the
    inputs exactly fill the rest of ``body``. Returns (input type, lengths, data offset)."""
    if len(body) - start < 16:
        return None
    input_type, count = struct.unpack_from("<QQ", body, start)
    header_len = 16 + 8 * count
    if len(body) - start < header_len:
        return None
    # the declared length is specified in bytes; also accept a count of u64 words
    if declared_len is not None and declared_len not in (header_len, header_len // 8):
        return None
    lengths = struct.unpack_from(f"<{count}Q", body, start + 16)
    data_start = start + header_len
    if data_start + sum(lengths) != len(body):
        return None
    return input_type, list(lengths), data_start


def parse_message(frames: Sequence[bytes]) -> Union[Heartbeat, PredictRequest]:
    """Decode one frontend message (frames as received by the DEALER).

    Parsing is tolerant of framing: the fields are read from the concatenation of
    all frames, so a frontend that merges several fields into one frame (or splits
    them differently) is understood as long as the field order is the one above.
    The ``u64 header length`` field may also be absent. The leading empty
    delimiter frame may be absent too.
    """
    frames = [bytes(f) for f in frames]
    if frames and frames[0] == b"":
        frames = frames[1:]
    data = b"".join(frames)
    if len(data) < 8:
        raise ProtocolError(f"message too short ({len(data)} bytes)")
    version, msg_type = struct.unpack_from("<II", data, 0)
    if version != RPC_VERSION:
        raise ProtocolError(f"unsupported RPC version {version} (this container speaks {RPC_VERSION})")

    if msg_type == MSG_HEARTBEAT:
        kind = struct.unpack_from("<I", data, 8)[0] if len(data) >= 12 else HB_KEEPALIVE
        if kind == HB_FRONTENDS:
            return _parse_frontends(data[12:])
        if kind == HB_EXTENSIONS_ACCEPTED and len(data) > 12:
            return Heartbeat(kind, _parse_accepted(data[12:]))
        return Heartbeat(kind)
    if msg_type != MSG_CONTAINER_CONTENT:
        raise ProtocolError(f"unexpected message type {msg_type} from frontend")
    if len(data) < 16:
        raise ProtocolError(f"prediction request too short ({len(data)} bytes)")

    msg_id = data[8:12]
    (request_type,) = struct.unpack_from("<I", data, 12)
    if request_type != REQUEST_PREDICT:
        raise ProtocolError(f"unsupported request type {request_type}", msg_id=msg_id)
    body = data[16:]

    layout = None
    if len(body) >= 8:
        (declared,) = struct.unpack_from("<Q", body, 0)
        layout = _read_input_header(body, 8, declared)
    if layout is None:  # no header-length field
        layout = _read_input_header(body, 0, None)
    if layout is None:
        count = None
        if len(body) >= 24:
            (maybe_count,) = struct.unpack_from("<Q", body, 16)
            count = maybe_count if maybe_count <= 1_000_000 else None
        raise ProtocolError(
            f"malformed prediction request (msg id {msg_id.hex()}): input header and "
            f"input lengths do not match the {len(body)} bytes received",
            msg_id=msg_id,
            count=count,
        )
    input_type, lengths, offset = layout
    if input_type not in INPUT_TYPE_NAMES:
        raise ProtocolError(f"unknown input type {input_type}", msg_id=msg_id, count=len(lengths))
    inputs = []
    for n in lengths:
        inputs.append(data[16 + offset : 16 + offset + n])
        offset += n
    return PredictRequest(msg_id=msg_id, input_type=input_type, inputs=inputs)


def _parse_accepted(body: bytes) -> tuple:
    try:
        parsed = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ProtocolError("extensions accepted: the frame is not JSON") from None
    listed = parsed.get("accepted") if isinstance(parsed, dict) else None
    if not isinstance(listed, list) or not all(isinstance(e, str) for e in listed):
        raise ProtocolError('extensions accepted: expected {"accepted": [names]}')
    return tuple(listed)


def _parse_frontends(body: bytes) -> Frontends:
    try:
        parsed = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ProtocolError("frontends: the frame is not JSON") from None
    listed = parsed.get("frontends") if isinstance(parsed, dict) else None
    if not isinstance(listed, list) or not all(isinstance(a, str) and parse_address(a) for a in listed):
        raise ProtocolError('frontends: expected a list of "host:port" addresses')
    me = parsed.get("self")
    return Frontends([_canonical(a) for a in listed], _canonical(me) if isinstance(me, str) and parse_address(me) else None)


def decode_input(input_type: int, raw: bytes):
    """bytes -> bytes, strings -> str, ints/floats/doubles -> 1-D numpy array."""
    if input_type == INPUT_BYTES:
        return bytes(raw)
    if input_type == INPUT_STRINGS:
        return bytes(raw).decode("utf-8")
    wire, native = _NUMERIC_DTYPES[input_type]
    if len(raw) % wire.itemsize:
        raise ValueError(f"{len(raw)} bytes is not a whole number of {wire.itemsize}-byte values")
    return np.frombuffer(raw, dtype=wire).astype(native)  # writable native-order copy


def _json_default(obj):
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def serialize_output(value) -> bytes:
    """str is sent as is; anything else as JSON (numpy values converted, NaN/Infinity refused)."""
    if isinstance(value, str):
        return value.encode("utf-8")
    return json.dumps(value, default=_json_default, allow_nan=False).encode("utf-8")


def evaluate(predict: Callable[[list], list], inputs: list, tensors: bool = False) -> list[tuple]:
    """Run ``predict`` on a batch; return one (status, payload) per input.

    With ``tensors`` a numeric numpy array output is answered (status, raw bytes, layout)
    (see tensor_output); everything else as before.

    Failures never propagate: they are logged (with traceback) and turned into
    error outputs whose payload is the error message.
    """
    n = len(inputs)

    def batch_error(message: str):
        return [(STATUS_ERROR, message.encode("utf-8"))] * n

    try:
        result = predict(inputs)
    except Exception as exc:
        log.error("predict raised on a batch of %d input(s):\n%s", n, traceback.format_exc().rstrip())
        detail = str(exc)
        return batch_error(f"predict raised {type(exc).__name__}" + (f": {detail}" if detail else ""))
    if isinstance(result, (tuple, np.ndarray)) and np.ndim(result) >= 1:
        result = list(result)
    if not isinstance(result, list):
        message = f"predict must return a list with one output per input, got {type(result).__name__}"
        log.error("%s", message)
        return batch_error(message)
    if len(result) != n:
        message = f"predict returned {len(result)} outputs for {n} inputs"
        log.error("%s", message)
        return batch_error(message)
    answers = []
    for i, value in enumerate(result):
        try:
            tensor = tensor_output(value) if tensors else None
            answers.append((STATUS_OK, *tensor) if tensor else (STATUS_OK, serialize_output(value)))
        except Exception as exc:
            message = f"output {i} cannot be serialised: {type(exc).__name__}: {exc}"
            log.error("%s", message)
            answers.append((STATUS_ERROR, message.encode("utf-8")))
    return answers


# --------------------------------------------------------------------------- client


def _curve_client_keys(server_key: str) -> tuple[bytes, bytes, bytes]:
    """(server public key, our public key, our secret key), all z85, for a CURVE client."""
    if not zmq.has("curve"):
        raise ConfigError(
            "CLIPPER_RPC_SERVER_KEY is set but this libzmq has no CURVE support"
        )
    key = server_key.strip().encode("ascii", "replace")
    if len(key) != 40:
        raise ConfigError("CLIPPER_RPC_SERVER_KEY must be a 40-character z85 CurveZMQ public key")
    public, secret = zmq.curve_keypair()
    return key, public, secret


def _env_seconds_from_ms(env, key: str, default: float) -> float:
    raw = env.get(key)
    if raw in (None, ""):
        return default
    try:
        value = float(raw) / 1000.0
    except ValueError:
        raise ConfigError(f"{key}={raw!r} is not a number of milliseconds") from None
    if value <= 0:
        raise ConfigError(f"{key} must be positive, got {raw}")
    return value


class ModelContainer:
    """A Clipper model container: connects to the frontend and serves ``predict``.

    Arguments left as None are read from the environment (CLIPPER_MODEL_NAME,
    CLIPPER_MODEL_VERSION, CLIPPER_INPUT_TYPE, CLIPPER_IP, CLIPPER_PORT,
    CLIPPER_HEARTBEAT_MS, CLIPPER_FRONTEND_TIMEOUT_MS, CLIPPER_EXTENSIONS,
    CLIPPER_REPLICA_ID, CLIPPER_REPLICA_SECRET, CLIPPER_RPC_SERVER_KEY,
    CLIPPER_PARENT_PID, CLIPPER_FRONTENDS, CLIPPER_READY_FILE). Durations given
    as arguments are in seconds; the environment variables are in milliseconds.

    Several frontends (docs/rpc.md, "Several frontends"): besides the primary
    (ip:port) the container keeps one independent connection to each frontend
    in ``frontends`` (CLIPPER_FRONTENDS) and, with the "frontends" extension
    (declared by default when CLIPPER_FRONTENDS is set), to those a frontend
    lists; it drops connections other than the primary that the latest list
    does not name. ``ready_file`` (CLIPPER_READY_FILE) exists while a frontend
    that accepted the registration is heard from.

    ``secret`` is the per-replica secret the resource manager hands out; it is
    sent in the registration's extension frame. ``server_key`` is the
    frontend's CurveZMQ public key (z85): when set, the container makes its
    own keypair and connects as a CURVE client.
    """

    def __init__(
        self,
        predict: Callable[[list], list],
        *,
        name: str | None = None,
        version: str | None = None,
        input_type: Union[str, int, None] = None,
        ip: str | None = None,
        port: int | None = None,
        heartbeat_interval: float | None = None,
        heartbeat_timeout: float | None = None,
        extensions: Sequence[str] | None = None,
        replica_id: str | None = None,
        secret: str | None = None,
        server_key: str | None = None,
        parent_pid: int | None = None,
        frontends: Sequence[str] | None = None,
        ready_file: str | None = None,
        env=None,
    ):
        env = os.environ if env is None else env
        if not callable(predict):
            raise ConfigError("predict must be callable")
        self.predict = predict
        self.name = name if name is not None else env.get("CLIPPER_MODEL_NAME", "")
        if not self.name:
            raise ConfigError("model name missing (set CLIPPER_MODEL_NAME)")
        self.version = str(version if version is not None else env.get("CLIPPER_MODEL_VERSION", "1"))
        if input_type is None:
            input_type = env.get("CLIPPER_INPUT_TYPE", "")
            if not input_type:
                raise ConfigError("input type missing (set CLIPPER_INPUT_TYPE)")
        self.input_type = parse_input_type(input_type)
        self.ip = ip or env.get("CLIPPER_IP") or "127.0.0.1"
        if port is None:
            raw = env.get("CLIPPER_PORT") or "7000"
            try:
                port = int(raw)
            except ValueError:
                raise ConfigError(f"CLIPPER_PORT={raw!r} is not a port number") from None
        if not 0 < int(port) < 65536:
            raise ConfigError(f"port {port} out of range")
        self.port = int(port)
        self.heartbeat_interval = heartbeat_interval or _env_seconds_from_ms(
            env, "CLIPPER_HEARTBEAT_MS", DEFAULT_HEARTBEAT_INTERVAL
        )
        self.heartbeat_timeout = heartbeat_timeout or _env_seconds_from_ms(
            env, "CLIPPER_FRONTEND_TIMEOUT_MS", DEFAULT_HEARTBEAT_TIMEOUT
        )
        self.replica_id = replica_id if replica_id is not None else env.get("CLIPPER_REPLICA_ID") or None
        self.secret = secret if secret is not None else env.get("CLIPPER_REPLICA_SECRET") or None
        server_key = server_key if server_key is not None else env.get("CLIPPER_RPC_SERVER_KEY") or None
        self.curve = _curve_client_keys(server_key) if server_key else None
        if parent_pid is None:
            raw = env.get("CLIPPER_PARENT_PID") or "0"
            try:
                parent_pid = int(raw)
            except ValueError:
                raise ConfigError(f"CLIPPER_PARENT_PID={raw!r} is not a process id") from None
        self.parent_pid = parent_pid  # exit when this process is no longer our parent
        if frontends is None:
            frontends = parse_frontends_env(env.get("CLIPPER_FRONTENDS", ""))
        else:
            frontends = parse_frontends_env(",".join(frontends))
        self.frontends = list(frontends)
        self.ready_file = ready_file if ready_file is not None else env.get("CLIPPER_READY_FILE") or None
        if extensions is None:
            # "frontends" only in a cluster (CLIPPER_FRONTENDS set), or when asked for by name.
            default = [EXTENSION_STATUS] + ([EXTENSION_FRONTENDS] if self.frontends else [])
            raw = env.get("CLIPPER_EXTENSIONS", ",".join(default))
            extensions = [e.strip() for e in raw.split(",") if e.strip()]
        unknown = [e for e in extensions if e not in SUPPORTED_EXTENSIONS]
        if unknown:
            raise ConfigError(f"unsupported extension(s) {unknown}; supported: {list(SUPPORTED_EXTENSIONS)}")
        self.extensions = list(extensions)

        self.address = f"tcp://{format_address(self.ip, self.port)}"
        self._stop = threading.Event()
        self._warned_input_type = False
        self._connections: dict[str, _Connection] = {}
        self._ready = False  # the readiness file exists (as far as we know)
        self.sessions = 0  # number of sockets opened so far (1 + reconnects), all frontends

    # -- control ---------------------------------------------------------

    def stop(self) -> None:
        """Ask serve_forever() to return (safe from other threads and signal handlers)."""
        self._stop.set()

    def serve_forever(self) -> None:
        """Serve until stop() or SIGTERM/SIGINT (when run in the main thread)."""
        context = zmq.Context()
        wake_r = wake_w = None
        previous = {}
        old_wakeup = -1
        if threading.current_thread() is threading.main_thread():
            wake_r, wake_w = socket.socketpair()
            wake_r.setblocking(False)
            wake_w.setblocking(False)
            old_wakeup = signal.set_wakeup_fd(wake_w.fileno(), warn_on_full_buffer=False)
            for sig in (signal.SIGTERM, signal.SIGINT):
                previous[sig] = signal.signal(sig, self._on_signal)
        log.info(
            "serving model %s:%s (input type %s) via %s",
            self.name, self.version, INPUT_TYPE_NAMES[self.input_type], self.address,
        )
        self._connections = {}
        self._add(format_address(self.ip, self.port), primary=True)
        for address in self.frontends:
            self._add(address, primary=False)
        try:
            while not self._stop.is_set():
                if self.parent_pid and os.getppid() != self.parent_pid:
                    log.warning("parent process %d is gone; shutting down", self.parent_pid)
                    self._stop.set()
                    break
                self._step(context, wake_r)
        finally:
            for conn in self._connections.values():
                conn.leave(EXTENSION_FRONTENDS in self.extensions)
                conn.close()
            self._connections = {}
            self._remove_ready_file()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            if wake_w is not None:
                signal.set_wakeup_fd(old_wakeup)
                wake_r.close()
                wake_w.close()
            context.term()
            log.info("container stopped")

    def _on_signal(self, signum, _frame) -> None:
        if self._stop.is_set():  # second signal: give up on the in-flight batch
            raise SystemExit(1)
        log.info("received %s, shutting down", signal.Signals(signum).name)
        self._stop.set()

    # -- connections -----------------------------------------------------

    def _add(self, address: str, primary: bool) -> None:
        if address in self._connections or self._stop.is_set():
            return
        if not primary:
            log.info("connecting to frontend %s", address)
        self._connections[address] = _Connection(address, primary)

    def _drop(self, conn: "_Connection", why: str) -> None:
        if conn.primary:
            return
        log.info("leaving frontend %s: %s", conn.address, why)
        conn.close()
        self._connections.pop(conn.address, None)

    def _step(self, context, wake_r) -> None:
        """One turn of the loop: heartbeats, timeouts and reconnections, then the messages that arrived."""
        now = time.monotonic()
        poller = zmq.Poller()
        polled = {}
        deadline = now + 0.25  # bounded wait so that stop() from another thread is noticed
        for conn in list(self._connections.values()):
            if conn.sock is None:
                self._open(context, conn)
            if now >= conn.next_heartbeat:
                try:
                    # never block: with no session (e.g. a CURVE handshake that keeps
                    # failing) a blocking send would hang here, deaf to SIGTERM
                    conn.sock.send_multipart(encode_heartbeat(), zmq.NOBLOCK)
                except zmq.Again:
                    pass
                conn.next_heartbeat = now + self.heartbeat_interval
            if now - conn.last_heard > self.heartbeat_timeout:
                log.warning(
                    "no message from the frontend for %.1fs; reconnecting to %s",
                    now - conn.last_heard, conn.endpoint,
                )
                conn.close()  # reopened at the next turn, with a new socket
                continue
            deadline = min(deadline, conn.next_heartbeat, conn.last_heard + self.heartbeat_timeout)
            poller.register(conn.sock, zmq.POLLIN)
            polled[conn.sock] = conn
        if wake_r is not None:
            poller.register(wake_r.fileno(), zmq.POLLIN)
        events = dict(poller.poll(max(1, int((deadline - now) * 1000))))
        if wake_r is not None and wake_r.fileno() in events:
            try:
                wake_r.recv(4096)
            except BlockingIOError:
                pass
        for sock, conn in polled.items():
            if sock not in events:
                continue
            while not self._stop.is_set() and conn.sock is sock:
                try:
                    frames = sock.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                self._handle(conn, frames)
                # time spent inside predict() does not count as frontend silence
                conn.last_heard = time.monotonic()
        self._check_readiness()

    def _open(self, context, conn: "_Connection") -> None:
        sock = context.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        if ":" in conn.host:
            sock.setsockopt(zmq.IPV6, 1)
        if self.curve is not None:
            server_key, public, secret = self.curve
            sock.curve_serverkey = server_key
            sock.curve_publickey = public
            sock.curve_secretkey = secret
        sock.connect(conn.endpoint)
        self.sessions += 1
        conn.sock = sock
        conn.registered = conn.accepted = conn.status_enabled = False
        conn.last_heard = conn.next_heartbeat = time.monotonic()  # the container speaks first

    def _handle(self, conn: "_Connection", frames) -> None:
        sock = conn.sock
        try:
            message = parse_message(frames)
        except ProtocolError as exc:
            if exc.msg_id is not None and exc.count is not None:
                log.error("%s; answering %d error output(s)", exc, exc.count)
                answers = [(STATUS_ERROR, str(exc).encode("utf-8"))] * exc.count
                sock.send_multipart(self._encode_answers(conn, exc.msg_id, answers))
            else:
                log.warning("ignoring frontend message: %s", exc)
            return
        if isinstance(message, Heartbeat) and message.kind == HB_SEND_METADATA:
            log.info("frontend %s requested metadata; registering %s:%s", conn.address, self.name, self.version)
            conn.registered = True
            conn.accepted = False
            conn.status_enabled = conn.tensors_enabled = False  # renegotiated on every registration
            sock.send_multipart(
                encode_registration(
                    self.name, self.version, self.input_type, self.extensions, self.replica_id,
                    self.secret,
                )
            )
            return
        if conn.registered:  # any answer after the registration: it was accepted
            conn.accepted = True
            self._touch_ready_file()
        if isinstance(message, Frontends):
            if EXTENSION_FRONTENDS in self.extensions:
                self._on_frontends(conn, message)
            else:
                log.warning("frontend sent its frontends, though the extension was not declared; ignoring")
        elif isinstance(message, Heartbeat):
            self._handle_heartbeat(conn, message)
        else:
            self._handle_predict(conn, message)

    def _handle_heartbeat(self, conn: "_Connection", message: Heartbeat) -> None:
        kind = message.kind
        if kind == HB_EXTENSIONS_ACCEPTED:
            # only what we declared; a frontend that sends no list accepted "status" alone
            accepted = [e for e in (message.accepted or (EXTENSION_STATUS,)) if e in self.extensions]
            if EXTENSION_STATUS in accepted or EXTENSION_TENSORS in accepted:
                if not (conn.status_enabled or conn.tensors_enabled):
                    log.info("frontend accepted extension(s): %s", ", ".join(accepted))
                conn.status_enabled = EXTENSION_STATUS in accepted
                conn.tensors_enabled = EXTENSION_TENSORS in accepted
            else:
                log.warning("frontend accepted extensions that were not offered; ignoring")
        elif kind != HB_KEEPALIVE:
            log.warning("unknown heartbeat type %d; treating it as keep-alive", kind)

    def _on_frontends(self, sender: "_Connection", message: Frontends) -> None:
        """Connect to the listed frontends we lack; drop the unlisted ones (never the primary)."""
        if message.self_address:
            sender.learned_self = message.self_address
        wanted = set(message.frontends)
        # a frontend reached by two addresses (its advertised one and the one we were given): keep one
        groups: dict[str, list] = {}
        for conn in self._connections.values():
            groups.setdefault(conn.learned_self or conn.address, []).append(conn)
        for group in groups.values():
            if len(group) > 1:
                keep = next((c for c in group if c.primary), None) or next((c for c in group if c.learned_self), group[0])
                for conn in group:
                    if conn is not keep:
                        self._drop(conn, "another connection reaches the same frontend")
        known = set()
        for conn in self._connections.values():
            known.add(conn.address)
            if conn.learned_self:
                known.add(conn.learned_self)
        for address in sorted(wanted - known):
            self._add(address, primary=False)
        for conn in list(self._connections.values()):
            if not conn.primary and conn.address not in wanted and conn.learned_self not in wanted:
                self._drop(conn, "no longer a frontend of the cluster")

    # -- readiness file --------------------------------------------------

    def _touch_ready_file(self) -> None:
        if not self.ready_file:
            return
        try:
            with open(self.ready_file, "a"):
                os.utime(self.ready_file)
            self._ready = True
        except OSError as exc:
            log.error("cannot write the readiness file %s: %s", self.ready_file, exc)

    def _check_readiness(self) -> None:
        if self._ready and not any(c.live(self.heartbeat_timeout) for c in self._connections.values()):
            self._remove_ready_file()

    def _remove_ready_file(self) -> None:
        if not self.ready_file:
            return
        self._ready = False
        try:
            os.unlink(self.ready_file)
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.error("cannot remove the readiness file %s: %s", self.ready_file, exc)

    # -- predictions -----------------------------------------------------

    def _handle_predict(self, conn: "_Connection", request: PredictRequest) -> None:
        if request.input_type != self.input_type and not self._warned_input_type:
            self._warned_input_type = True
            log.warning(
                "request input type %s differs from the registered type %s; decoding as %s",
                INPUT_TYPE_NAMES[request.input_type],
                INPUT_TYPE_NAMES[self.input_type],
                INPUT_TYPE_NAMES[request.input_type],
            )
        inputs = []
        compute_us = None
        try:
            for i, raw in enumerate(request.inputs):
                inputs.append(decode_input(request.input_type, raw))
        except ValueError as exc:
            message = (
                f"input {i} cannot be decoded as {INPUT_TYPE_NAMES[request.input_type]}: {exc}"
            )
            log.error("%s", message)
            answers = [(STATUS_ERROR, message.encode("utf-8"))] * len(request.inputs)
        else:
            started = time.perf_counter()
            answers = evaluate(self.predict, inputs, conn.tensors_enabled) if inputs else []
            compute_us = (time.perf_counter() - started) * 1e6
        conn.sock.send_multipart(self._encode_answers(conn, request.msg_id, answers, compute_us))

    def _encode_answers(self, conn: "_Connection", msg_id: bytes, answers: list[tuple], compute_us: float | None = None) -> list[bytes]:
        if conn.tensors_enabled:
            return encode_tensor_response(msg_id, answers, compute_us)
        if conn.status_enabled:
            return encode_response(msg_id, [a[1] for a in answers], [a[0] for a in answers])
        outputs = [
            a[1] if a[0] == STATUS_OK else json.dumps({"error": a[1].decode("utf-8")}).encode("utf-8")
            for a in answers
        ]
        return encode_response(msg_id, outputs)


class _Connection:
    """One frontend: its socket (None between sessions) and what this session has negotiated."""

    def __init__(self, address: str, primary: bool):
        self.address = address  # canonical "host:port"
        self.host, self.port = parse_address(address)
        self.endpoint = f"tcp://{format_address(self.host, self.port)}"
        self.primary = primary
        self.learned_self: str | None = None  # the frontend's own name for itself ("self")
        self.sock = None
        self.registered = False
        self.accepted = False
        self.status_enabled = False  # this frontend accepted the "status" extension
        self.tensors_enabled = False  # this frontend accepted the "tensors" extension
        self.last_heard = 0.0
        self.next_heartbeat = 0.0

    def live(self, timeout: float) -> bool:
        return self.sock is not None and self.accepted and time.monotonic() - self.last_heard <= timeout

    def leave(self, announce: bool) -> None:
        """Tell an accepting frontend we are going, so it stops sending batches now, not at its heartbeat timeout."""
        if not announce or self.sock is None or not self.accepted:
            return
        try:
            self.sock.send_multipart(encode_leaving(), zmq.NOBLOCK)
            self.sock.close(linger=500)
            self.sock = None
        except zmq.ZMQError:
            pass

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close(linger=0)
            self.sock = None
        self.registered = self.accepted = self.status_enabled = self.tensors_enabled = False


def _configure_logging() -> None:
    root = logging.getLogger()
    if not root.handlers:
        level = os.environ.get("CLIPPER_LOG_LEVEL", "INFO").upper()
        logging.basicConfig(
            level=getattr(logging, level, logging.INFO),
            format="%(asctime)s clipper_container %(levelname)s %(message)s",
        )


# set by the launcher while it imports a model file
loading_model = False


def serve(predict: Callable[[list], list], **options) -> None:
    """Serve ``predict(inputs: list) -> list`` as a Clipper model container.

    Configuration comes from the CLIPPER_* environment variables unless given as
    keyword arguments (see ModelContainer). Returns after SIGTERM/SIGINT.
    """
    _configure_logging()
    if loading_model:
        log.warning("serve() called while `python3 -m clipper_container` imports the model; "
                    "ignored (the launcher serves predict itself)")
        return
    ModelContainer(predict, **options).serve_forever()
