"""The ``tokenflow`` command line: one module per group of subcommands, registered in COMMAND_MODULES."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import math
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tokenflow_rag._version import __version__
from tokenflow_rag.errors import ConfigError, TokenFlowError

# Each module defines ``register(subparsers)`` adding its subcommands, each with ``func=handler``.
COMMAND_MODULES = (
    "tokenflow_rag.cli.core",
    "tokenflow_rag.cli.train",
    "tokenflow_rag.cli.evaluate",
    "tokenflow_rag.cli.bench",
)


_VERBOSE_HELP = "log decisions (intents, k, fallback)"


class _CommandParser(argparse.ArgumentParser):
    """A subcommand's parser: it takes ``-v`` too, so ``tokenflow classify TEXT -v`` works like
    ``tokenflow -v classify TEXT``. Its default is SUPPRESS: a subcommand without ``-v`` leaves the value
    set before the subcommand alone (argparse copies every default a subparser sets over the parent's)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=_VERBOSE_HELP)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tokenflow", description="Intent-aware retrieval: fewer prompt tokens, same answers."
    )
    parser.add_argument("--version", action="version", version=f"tokenflow_rag {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help=_VERBOSE_HELP)
    # Nested subcommands (tokenflow eval classify) inherit the parser class, and with it -v.
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_CommandParser)
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


# Option checks, run by the handlers before any work. The messages name the flag the user typed; the
# library's own messages name its parameters ("r must be ..." for --lora-r) and stay as they are.
Check = tuple[Callable[[Any], bool], str]
POSITIVE_INT: Check = (lambda v: v >= 1, "a positive integer")
NON_NEGATIVE_INT: Check = (lambda v: v >= 0, "an integer >= 0")
FRACTION: Check = (lambda v: 0 < v < 1, "a number in (0, 1)")  # NaN fails every comparison: refused too
POSITIVE_NUMBER: Check = (lambda v: 0 < v < math.inf, "a positive number")


def at_least(n: int) -> Check:
    return (lambda v: v >= n, f"an integer >= {n}")


def check_options(args: argparse.Namespace, **checks: Check) -> None:
    """``check_options(args, budget=POSITIVE_INT)``: ``--budget must be a positive integer, got -5``."""
    for dest, (ok, expected) in checks.items():
        value = getattr(args, dest, None)
        if value is not None and not ok(value):
            shown = f"{value:g}" if isinstance(value, float) else str(value)
            raise ConfigError(f"{flag_name(dest)} must be {expected}, got {shown}")


def flag_name(dest: str) -> str:
    """The option as typed: ``k`` -> ``-k``, ``lora_r`` -> ``--lora-r``."""
    return f"-{dest}" if len(dest) == 1 else "--" + dest.replace("_", "-")


def check_out_file(path: str | None, flag: str, *, example: str = "result.json") -> None:
    """Refuse an output file that could not be written, before the run that makes its content: a failed
    write after a long run loses the result (and the error would name a temporary file)."""
    if path is None:
        return
    target = Path(path)
    if target.is_dir() or path.endswith(("/", os.sep)):
        raise ConfigError(f"{flag} {path} is a directory; give a file name, e.g. {target / example}")
    _check_parents(target, flag)


def check_out_dir(path: str, flag: str, *, marker: str, kind: str) -> None:
    """Refuse an output directory that saving would fail on or wipe (see ``check_replaceable_dir``), before
    the work, naming the flag."""
    from tokenflow_rag._io import check_replaceable_dir

    try:
        check_replaceable_dir(Path(path), marker, kind)
    except ConfigError as exc:
        raise ConfigError(f"{flag} {exc}") from None
    _check_parents(Path(path), flag)


def check_out_folder(path: str | None, flag: str) -> None:
    """A folder written into (results, a cache): not a file, and creatable or writable."""
    if path is None:
        return
    target = Path(path)
    if target.exists():
        if not target.is_dir():
            raise ConfigError(f"{flag} {path} is a file; give a folder")
        if not os.access(target, os.W_OK | os.X_OK):
            raise ConfigError(f"{flag} {path}: cannot write into it (permission denied)")
        return
    _check_parents(target, flag)


def check_in_files(paths: Sequence[str] | None, name: str) -> None:
    """Input files that must be files: ``DEV data/: is a directory`` rather than 'does not exist'."""
    for path in paths or ():
        if Path(path).is_dir():
            raise ConfigError(f"{name} {path} is a directory; pass the .jsonl or .csv file(s) in it")
        if not Path(path).exists():
            raise ConfigError(f"{name} {path}: no such file")


def _check_parents(target: Path, flag: str) -> None:
    """The nearest existing folder above ``target`` must be a directory we may write into."""
    for parent in target.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"{flag} {target}: cannot create it, {parent} is a file")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise ConfigError(f"{flag} {target}: cannot write into {parent} (permission denied)")
            return


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
    # "tokenflow eval classify: error: ...", not "tokenflow eval: ...": the command as typed
    command = " ".join(c for c in (args.command, getattr(args, "eval_command", None)) if c)
    # A warning for a person reads like an error does: one line, not a source location and code line.
    previous_format = warnings.formatwarning
    warnings.formatwarning = lambda message, *_, **__: f"tokenflow {command}: warning: {message}\n"
    try:
        return int(args.func(args) or 0)
    except TokenFlowError as exc:
        print(f"tokenflow {command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `tokenflow ... | head`: the reader has what it wanted; exit quietly
        _silence_stdout_if_broken()
        return 1
    except OSError as exc:  # unreadable input, disk full, a closed pipe: one line, not a traceback
        _silence_stdout_if_broken()
        print(f"tokenflow {command}: error: {_describe_os_error(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        warnings.formatwarning = previous_format


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
