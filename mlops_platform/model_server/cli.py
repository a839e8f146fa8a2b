"""`mlops serve`: run the model server as a plain process (the image runs the same code).

Heavy imports (uvicorn, mlflow, sklearn) stay inside `main`, so `mlops --help` stays instant.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from types import FrameType


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model-uri",
        help="MLflow model: models:/name@alias, models:/name/version, runs:/..., or a local "
        "path (default: $MLOPS_SERVE_MODEL_URI)",
    )
    parser.add_argument("--host", help="address to bind (default: $MLOPS_SERVE_HOST or 127.0.0.1)")
    parser.add_argument("--port", type=int, help="TCP port (default: $MLOPS_SERVE_PORT or 8080)")


def main(args: argparse.Namespace) -> int:
    from mlops_platform.model_server.settings import Settings, SettingsError

    try:
        settings = Settings.from_env(model_uri=args.model_uri, host=args.host, port=args.port)
    except SettingsError as exc:
        print(f"mlops serve: {exc}", file=sys.stderr)
        return 2
    if not settings.model_uri:
        print("mlops serve: --model-uri (or MLOPS_SERVE_MODEL_URI) is required", file=sys.stderr)
        return 2
    return serve(settings)


def serve(settings: object) -> int:
    """Run until SIGTERM/SIGINT (exit 0 after draining) or a model that cannot be served (exit 1).

    A model that is not there yet (not registered, no alias, tracking server down) is waited
    for, not a failure: the server stays live and not ready meanwhile.
    """
    import uvicorn

    from mlops_platform.model_server import tracing as otel
    from mlops_platform.model_server.app import SERVER_VERSION, ModelServerApp
    from mlops_platform.model_server.protocol import protocol_class
    from mlops_platform.model_server.settings import (
        Settings,
        apply_mlflow_client_defaults,
        otel_environ,
    )

    assert isinstance(settings, Settings)
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    applied = apply_mlflow_client_defaults()
    if applied:
        logging.getLogger(__name__).info(
            "MLflow client: %s (this server retries loading the model itself)",
            ", ".join(f"{k}={v}" for k, v in applied.items()),
        )
    try:
        tracing = otel.from_env(SERVER_VERSION, otel_environ())  # None unless OTEL_* turn it on
    except otel.TracingConfigError as exc:
        print(f"mlops serve: {exc}", file=sys.stderr)
        return 2
    failure: list[str] = []

    class DrainingServer(uvicorn.Server):
        # uvicorn stops accepting and waits for in-flight requests on SIGTERM; the app must
        # additionally turn not-ready at that moment, so probes see the drain.
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            app.begin_drain()
            super().handle_exit(sig, frame)

    def on_fatal(message: str) -> None:
        failure.append(message)
        server.should_exit = True

    app = ModelServerApp(settings, on_fatal=on_fatal, tracing=tracing)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        http=protocol_class(settings.header_timeout_seconds, settings.body_timeout_seconds),
        # uvicorn annotates int; it hands the value to call_later, which takes float
        timeout_keep_alive=settings.idle_timeout_seconds,  # type: ignore[arg-type]
        limit_concurrency=settings.max_connections,
        loop="uvloop",
        lifespan="on",
        access_log=False,
        log_level=settings.log_level,
        # uvicorn annotates int; it hands the value to asyncio.wait_for, which takes float
        timeout_graceful_shutdown=settings.drain_seconds,  # type: ignore[arg-type]
        server_header=False,
        proxy_headers=False,
        date_header=False,
        backlog=4096,
    )
    server = DrainingServer(config)
    # The event loop and the predict thread share the GIL; by default a thread that wants it
    # may wait 5 ms for the other to yield, which alone would eat a 10 ms p99 budget.
    sys.setswitchinterval(0.0005)
    # uvicorn re-raises a captured SIGTERM after its graceful shutdown, restoring the handler
    # that was there before; a no-op one lets a drained server exit 0 instead of by signal.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda _sig, _frame: None)
    server.run()
    if failure:
        print(f"mlops serve: start-up failed: {failure[0]}", file=sys.stderr)
        return 1
    return 0
