"""python3 -m clipper_container [--check PATH | PATH]

Without --check: load predict() from PATH (default $CLIPPER_MODEL_PATH) and serve
it to the frontend configured by the CLIPPER_* environment variables.
With --check: only import the model and report whether it defines predict();
exit status 0 if usable, 2 otherwise (message on stderr).
"""

from __future__ import annotations

import argparse
import os
import sys

from .launcher import ModelLoadError, load_model
from .rpc import ConfigError, ModelContainer, _configure_logging


def _report(exc: Exception, prefix: str = "") -> None:
    """Details first, the one-line cause last (callers may keep only the tail of stderr)."""
    detail = getattr(exc, "detail", "")
    if detail:
        print(detail, file=sys.stderr)
    print(f"clipper_container: {prefix}{exc}", file=sys.stderr)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m clipper_container", description=__doc__.split("\n\n")[1])
    parser.add_argument("--check", metavar="PATH", help="verify that PATH defines predict() and exit")
    parser.add_argument("path", nargs="?", help="model file or directory (default: $CLIPPER_MODEL_PATH)")
    args = parser.parse_args(argv)

    if args.check is not None:
        try:
            load_model(args.check)
        except ModelLoadError as exc:
            _report(exc, "model check failed: ")
            return 2
        print(f"ok: {args.check} defines predict(inputs)")
        return 0

    _configure_logging()
    try:
        predict = load_model(args.path or os.environ.get("CLIPPER_MODEL_PATH", ""))
        container = ModelContainer(predict)
    except (ModelLoadError, ConfigError) as exc:
        _report(exc)
        return 2
    container.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
