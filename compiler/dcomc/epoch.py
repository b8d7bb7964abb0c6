"""SOURCE_DATE_EPOCH (reproducible-builds.org): the one timestamp a build may carry.

Unset or empty, a build carries no time of its own. Set, it must be a whole number of seconds
since 1970-01-01 UTC: the specification asks a build to stop on a malformed value rather than
guess, and a build that silently ignored it would not be the reproducible one it was asked for.
"""

from __future__ import annotations

import os

LATEST = 253402300799  # 9999-12-31T23:59:59Z: the last second a manifest date can show


class EpochError(ValueError):
    """SOURCE_DATE_EPOCH is set to something that is not a usable timestamp."""


def source_date_epoch() -> int | None:
    text = os.environ.get("SOURCE_DATE_EPOCH", "")
    if not text:
        return None
    if not (text.isascii() and text.isdigit()):
        raise EpochError(f"SOURCE_DATE_EPOCH={text!r} is not a whole number of seconds since "
                         "1970-01-01 UTC (reproducible-builds.org)")
    value = int(text)
    if value > LATEST:
        raise EpochError(f"SOURCE_DATE_EPOCH={text} is after the year 9999")
    return value
