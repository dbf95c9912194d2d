"""Load a user's model file (``predict(inputs)``) and check or serve it."""

from __future__ import annotations

import importlib.util
import os
import sys
import traceback
from types import ModuleType

from . import rpc

MODEL_FILE_NAMES = ("model.py", "predict.py")


class ModelLoadError(Exception):
    """The model artifact cannot be used; the message is meant for the user.

    ``detail`` (a traceback or the offending source line) is printed before the
    one-line message, so the message is the last line of the output.
    """

    def __init__(self, message: str, detail: str = ""):
        super().__init__(message)
        self.detail = detail


def resolve_model_file(path: str) -> str:
    """A ``.py`` file, or a directory containing model.py / predict.py."""
    if not path:
        raise ModelLoadError("no model path given (set CLIPPER_MODEL_PATH)")
    path = os.path.abspath(path)
    if os.path.isdir(path):
        for name in MODEL_FILE_NAMES:
            candidate = os.path.join(path, name)
            if os.path.isfile(candidate):
                return candidate
        raise ModelLoadError(f"directory {path} contains neither {' nor '.join(MODEL_FILE_NAMES)}")
    if not os.path.exists(path):
        raise ModelLoadError(f"model path {path} does not exist")
    if not path.endswith(".py"):
        raise ModelLoadError(f"model file {path} is not a .py file")
    return path


def _module_name(file: str) -> str:
    stem = os.path.splitext(os.path.basename(file))[0]
    if stem.isidentifier() and stem not in sys.modules:
        return stem  # lets pickles that reference e.g. ``model.MyClass`` resolve
    return "clipper_user_model"


def load_model(path: str):
    """Import the model file and return its ``predict`` callable.

    The file's directory is put first on sys.path and becomes the working
    directory, so the file can import or open sibling artifacts.
    """
    file = resolve_model_file(path)
    directory = os.path.dirname(file)
    if directory not in sys.path:
        sys.path.insert(0, directory)
    os.chdir(directory)
    name = _module_name(file)
    spec = importlib.util.spec_from_file_location(name, file)
    module: ModuleType = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    rpc.loading_model = True  # a module-level serve() call must not start serving here
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        sys.modules.pop(name, None)
        where = f"{exc.filename or file}, line {exc.lineno}"
        if exc.offset:
            where += f", column {exc.offset}"
        detail = f"    {exc.text.strip()}" if exc.text else ""
        raise ModelLoadError(f"syntax error in {where}: {exc.msg}", detail) from None
    except ImportError as exc:
        sys.modules.pop(name, None)
        raise ModelLoadError(f"import error while loading {file}: {exc}", _user_traceback()) from None
    except (Exception, SystemExit) as exc:  # a model file may even call sys.exit()
        sys.modules.pop(name, None)
        raise ModelLoadError(
            f"loading {file} raised {type(exc).__name__}: {exc}", _user_traceback()
        ) from None
    finally:
        rpc.loading_model = False
    predict = getattr(module, "predict", None)
    if predict is None:
        raise ModelLoadError(f"{file} does not define predict(inputs)")
    if not callable(predict):
        raise ModelLoadError(
            f"{file} defines predict, but it is a {type(predict).__name__}, not a function"
        )
    return predict


def _user_traceback() -> str:
    """The traceback of the exception being handled, without the loader's own frames."""
    exc = sys.exc_info()[1]
    frames = [
        f for f in traceback.extract_tb(exc.__traceback__)
        if f.filename != __file__ and not f.filename.startswith("<frozen")
    ]
    lines = ["Traceback (most recent call last):\n", *traceback.format_list(frames)]
    lines += traceback.format_exception_only(type(exc), exc)
    return "".join(lines).rstrip()
