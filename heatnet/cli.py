"""The one wrapper every tool's main() goes through: a HeatnetError becomes one `error:` line on
stderr and exit code 2, Ctrl-C exit code 130. Imports no torch, so `--help` answers at once.

    @tool
    def main() -> int:
        args = parser.parse_args()
        ...  # raise heatnet.errors.ConfigError("--out x: ...") for a known problem
"""
from __future__ import annotations

import functools
import os
import sys
from typing import Callable

from heatnet.errors import HeatnetError


def tool(main: Callable[[], int | None]) -> Callable[[], int]:
    @functools.wraps(main)
    def run() -> int:
        try:
            return main() or 0
        except HeatnetError as e:
            if os.environ.get("RANK", "0") == "0" or not e.same_in_every_process:
                print(f"error: {e}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            return 130

    return run


def fail(message: str) -> None:
    """A known problem found in a tool's own arguments: one `error:` line and exit code 2."""
    from heatnet.errors import ConfigError

    raise ConfigError(message)


def parse_list(text: str | None, kind: type, flag: str, what: str) -> tuple:
    """A comma-separated option (`--shifts 1,2`) as a tuple of `kind`; () when not given; a
    one-line error naming the flag and `what` it expects otherwise."""
    try:
        return tuple(kind(item) for item in text.split(",")) if text else ()
    except ValueError:
        fail(f"{flag} expects comma-separated {what}, got {text!r}")
