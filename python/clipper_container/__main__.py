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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m clipper_container", description=__doc__.split("\n\n")[1])
    parser.add_argument("--check", metavar="PATH", help="verify that PATH defines predict() and exit")
    parser.add_argument("path", nargs="?", help="model file or directory (default: $CLIPPER_MODEL_PATH)")
    args = parser.parse_args(argv)

    if args.check is not None:
        try:
            load_model(args.check)
        except ModelLoadError as exc:
            print(f"clipper_container: model check failed: {exc}", file=sys.stderr)
            return 2
        print(f"ok: {args.check} defines predict(inputs)")
        return 0

    _configure_logging()
    try:
        predict = load_model(args.path or os.environ.get("CLIPPER_MODEL_PATH", ""))
        container = ModelContainer(predict)
    except (ModelLoadError, ConfigError) as exc:
        print(f"clipper_container: {exc}", file=sys.stderr)
        return 2
    container.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
