"""``ml-model-exporter``: wires config, engine, collector and HTTP server together.

Exit codes: 0 ok, 2 bad usage or config (one line per problem, naming its key path),
1 unexpected failure. SIGTERM and SIGINT write a checkpoint and exit 0.
"""

from __future__ import annotations

import argparse
import glob
import logging
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from prometheus_client import CollectorRegistry

from exporter import __version__
from exporter.collectors.collector import ExporterCollector
from exporter.collectors.drift import MonitorCollector
from exporter.config import Config, ConfigError, ModelConfig, config_from_mapping, load_config
from exporter.demo.config import DEFAULT_DRIFT_AFTER, demo_config
from exporter.ingest.engine import Engine
from exporter.monitor.build import build_monitors, monitor_factory
from exporter.monitor.describe import describe
from exporter.monitor.monitor import Monitor
from exporter.runtime import configure_process
from exporter.state.checkpoint import CheckpointError
from exporter.web.server import ExporterHTTPServer
from exporter.web.web_config import WebConfig, load_web_config, split_listen_address

DEFAULT_LISTEN = ":9747"
log = logging.getLogger("ml_model_exporter")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ml-model-exporter",
        description="Prometheus exporter for ML models: tails prediction logs into "
        "model-quality, data-quality and drift metrics.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add_common(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--log.level",
            dest="log_level",
            default="info",
            choices=("debug", "info", "warn", "error"),
            help="log verbosity (default: info)",
        )

    run = commands.add_parser("run", help="tail the configured logs and serve /metrics")
    run.add_argument("--config.file", dest="config_file", required=True, type=Path)
    run.add_argument("--web.listen-address", dest="listen", default=DEFAULT_LISTEN)
    run.add_argument("--web.config.file", dest="web_config", type=Path, default=None)
    run.set_defaults(handler=run_command)
    add_common(run)

    demo = commands.add_parser("demo", help="simulated model with drift; no files needed")
    demo.add_argument("--web.listen-address", dest="listen", default=DEFAULT_LISTEN)
    demo.add_argument(
        "--duration", type=float, default=None, help="stop after S seconds (default: run until ^C)"
    )
    demo.add_argument(
        "--drift-after",
        dest="drift_after",
        type=float,
        default=DEFAULT_DRIFT_AFTER,
        help=f"seconds until the inputs drift (default: {DEFAULT_DRIFT_AFTER:g})",
    )
    demo.add_argument(
        "--dir", dest="demo_dir", type=Path, default=None, help="where to write the demo logs"
    )
    demo.set_defaults(handler=demo_command)
    add_common(demo)

    check = commands.add_parser("check", help="validate the config and print what is monitored")
    check.add_argument("--config.file", dest="config_file", required=True, type=Path)
    check.set_defaults(handler=check_command)
    add_common(check)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper().replace("WARN", "WARNING"),
        format="%(asctime)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    configure_process()
    try:
        return args.handler(args)  # argparse requires one of the commands
    except ConfigError as err:
        for problem in err.problems:
            print(f"error: {problem}", file=sys.stderr)
        return 2
    except CheckpointError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def check_command(args: argparse.Namespace) -> int:
    """Validate the config, fit the references, and print what each model monitors."""
    config = load_config(args.config_file)
    monitors = build_monitors(config)  # reference problems: ConfigError, exit 2
    print(f"config OK: {args.config_file}")
    print(f"state_dir: {config.state_dir}")
    for model in config.models:
        print(f"model {model.name!r} ({model.task})")
        for line in _monitored(model, monitors.get(model.name)):
            print(f"  {line}")
    return 0


def _monitored(model: ModelConfig, monitor: Monitor | None) -> list[str]:
    """What ``check`` says of a model: its logs, columns, monitors, windows, thresholds."""
    lines = []
    for kind, source in (("predictions", model.predictions), ("outcomes", model.outcomes)):
        if source is not None:
            matches = glob.glob(source.path)
            found = f"{len(matches)} file(s) now" if matches else "no file yet"
            lines.append(f"{kind}: {source.path} [{source.format}] ({found})")
    columns = model.columns
    lines.append(
        f"columns: timestamp={columns.timestamp} prediction={columns.prediction} "
        f"actual={columns.actual} id={columns.id} model_version={columns.model_version}"
    )
    if model.task == "binary":
        lines.append(f"positive class {model.positive_class!r} when score >= {model.threshold:g}")
    lines.extend(describe(model, monitor))
    lines.append(f"windows: {', '.join(w.name for w in model.windows)}")
    thresholds = ", ".join(f"{k}={v:g}" for k, v in sorted(model.thresholds.items()))
    lines.append(f"thresholds: {thresholds}")
    return lines


def run_command(args: argparse.Namespace) -> int:
    config = load_config(args.config_file)
    web = load_web_config(args.web_config) if args.web_config else None
    return serve(config, args.listen, web)


def serve(
    config: Config,
    listen: str,
    web: WebConfig | None = None,
    *,
    before_step: Callable[[], object] | None = None,
    duration: float | None = None,
    banner: Callable[[int], None] | None = None,
) -> int:
    """Run the engine until SIGTERM/SIGINT (or ``duration``), serving /metrics meanwhile."""
    host, port = split_listen_address(listen)
    monitors = build_monitors(config)
    engine = Engine(config, monitor_factory=monitor_factory(monitors))
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ExporterCollector(engine.snapshot, extra=[MonitorCollector(monitors)]))
    try:
        server = ExporterHTTPServer((host, port), registry, lambda: engine.ready, web)
    except (OSError, OverflowError, ValueError) as err:  # a host with a NUL is a ValueError
        raise ConfigError([f"--web.listen-address: cannot listen on {listen}: {err}"]) from None
    server.start_background()
    log.info(
        "ml-model-exporter %s listening on %s (state in %s)",
        __version__,
        listen,
        config.state_dir,
    )
    if banner:
        banner(server.port)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    deadline = None if duration is None else time.monotonic() + duration
    try:
        while not stop.is_set():
            if before_step:
                before_step()
            try:
                engine.step()
                engine.maybe_checkpoint()
            except Exception:  # nothing in one poll may end the exporter
                log.exception("ingest step failed; retrying")
            if deadline is not None and time.monotonic() >= deadline:
                break
            stop.wait(config.poll_interval)
    finally:
        saved = engine.close()
        server.shutdown()
        server.server_close()
    if not saved:
        log.error(
            "stopped WITHOUT a final checkpoint (%s not writable); at the next start the "
            "lines read since the last checkpoint that was written are read again",
            config.state_dir,
        )
        return 1
    log.info("stopped; checkpoint written to %s", config.state_dir)
    return 0


def demo_command(args: argparse.Namespace) -> int:
    from exporter.demo.simulator import DemoSimulator  # noqa: PLC0415 - trains a model

    directory = args.demo_dir or Path(tempfile.mkdtemp(prefix="ml-model-exporter-demo-"))
    directory.mkdir(parents=True, exist_ok=True)
    simulator = DemoSimulator(directory, drift_after=args.drift_after)
    config = config_from_mapping(demo_config(directory), base_dir=directory)

    def banner(port: int) -> None:
        host, _ = split_listen_address(args.listen)
        shown = host if host not in ("", "0.0.0.0", "::") else "localhost"
        lines = [
            "ml-model-exporter demo",
            f"  logs:    {directory}",
            f"  metrics: http://{shown}:{port}/metrics",
            "  what will happen:",
            *(f"    {line}" for line in simulator.story()),
            "  stop with Ctrl-C",
        ]
        print("\n".join(lines), flush=True)

    return serve(
        config,
        args.listen,
        before_step=simulator.step,
        duration=args.duration,
        banner=banner,
    )


def run() -> None:
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    run()
