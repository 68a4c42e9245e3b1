"""The ``tokenflow`` command line: one module per group of subcommands, registered in COMMAND_MODULES."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from tokenflow_rag._version import __version__
from tokenflow_rag.errors import TokenFlowError

# Each module defines ``register(subparsers)`` adding its subcommands, each with ``func=handler``.
COMMAND_MODULES = (
    "tokenflow_rag.cli.core",
    "tokenflow_rag.cli.train",
    "tokenflow_rag.cli.evaluate",
    "tokenflow_rag.cli.bench",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tokenflow", description="Intent-aware retrieval: fewer prompt tokens, same answers."
    )
    parser.add_argument("--version", action="version", version=f"tokenflow_rag {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log decisions (intents, k, fallback)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # a command group not built yet in this checkout
                continue
            raise
        module.register(sub)
    return parser


def add_result_options(parser: argparse.ArgumentParser) -> None:
    """``--progress``, ``--out FILE`` and ``--json``: how a measuring command reports its result."""
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bars on stderr (default: when stderr is a terminal)",
    )
    parser.add_argument("--out", metavar="FILE", help="also write the JSON result to FILE")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def emit(data: Any, *, as_json: bool, text: Callable[[Any], str] | None = None) -> None:
    """Print ``data`` as JSON (``--json``) or through ``text`` for people."""
    if as_json:
        print(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        print(text(data) if text else data)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except TokenFlowError as exc:
        print(f"tokenflow {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `tokenflow ... | head`: the reader has what it wanted; exit quietly
        _silence_stdout_if_broken()
        return 1
    except OSError as exc:  # unreadable input, disk full, a closed pipe: one line, not a traceback
        _silence_stdout_if_broken()
        print(f"tokenflow {args.command}: error: {_describe_os_error(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _describe_os_error(exc: OSError) -> str:
    """``Permission denied: '/data/x.json'`` (the reason, then the file(s) it concerns)."""
    if not exc.strerror:
        return str(exc) or type(exc).__name__
    files = [repr(str(f)) for f in (exc.filename, exc.filename2) if f is not None]
    return f"{exc.strerror}: {' -> '.join(files)}" if files else exc.strerror


def _silence_stdout_if_broken() -> None:
    """When stdout itself failed (disk full, closed pipe), send what is left to /dev/null, so the flush
    at exit does not print a second error."""
    try:
        sys.stdout.flush()
    except OSError:
        try:
            fd = os.open(os.devnull, os.O_WRONLY)
            os.dup2(fd, sys.stdout.fileno())
            os.close(fd)
        except (OSError, ValueError):  # stdout without a file descriptor (e.g. captured): nothing to flush
            pass


if __name__ == "__main__":
    sys.exit(main())
