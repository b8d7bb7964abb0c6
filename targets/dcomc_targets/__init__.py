"""Artifact targets: one module per kind, each with its writer and its reader.

The registry below is the only list of targets: the bundle, `dcomc inspect`, and the golden
and round-trip tests all iterate it, so adding a target is one module plus one line here.
"""

from __future__ import annotations

from dcomc_targets.base import Artifact, EmitContext, Options, Target
from dcomc_targets.netsh import NetshTarget
from dcomc_targets.powershell import PowerShellTarget
from dcomc_targets.regfile import RegTarget
from dcomc_targets.secedit import SeceditTarget
from dcomc_targets.wix import WixTarget
from dcomc_targets.wixfirewall import WixFirewallTarget

TARGETS: tuple[Target, ...] = (
    RegTarget(),
    SeceditTarget(),
    NetshTarget(),
    WixFirewallTarget(),
    PowerShellTarget(),
    WixTarget(),
)

__all__ = ["TARGETS", "Artifact", "EmitContext", "Options", "Target", "by_name"]


def by_name(name: str) -> Target:
    for target in TARGETS:
        if target.name == name:
            return target
    raise KeyError(name)
