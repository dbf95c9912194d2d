"""Python model containers for Clipper (RPC version 3 over ZeroMQ).

    from clipper_container import serve

    def predict(inputs):          # one output per input
        return [len(x) for x in inputs]

    serve(predict)                # configured by CLIPPER_* environment variables
"""

from .rpc import ConfigError, ModelContainer, ProtocolError, serve

__all__ = ["serve", "ModelContainer", "ConfigError", "ProtocolError"]
