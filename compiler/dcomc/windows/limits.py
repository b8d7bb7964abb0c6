"""Windows' default machine launch limit (MachineLaunchRestriction when the value is absent), as
Microsoft documents it: the one definition the lint (W616) and the flow verifier judge by.

docs/windows.md#machine-limits: Administrators and Distributed COM Users may launch and
activate locally and remotely, Everyone only locally ("DCOM Security Enhancements in Windows XP
Service Pack 2 and Windows Server 2003 Service Pack 1"). Windows 10/11 is *observed* to grant
Performance Log Users (and app containers) too, but Microsoft does not say so: a check that
counted on it would pass a flow that fails on a PC without that entry, so only the documented
entries count (the .reg's complete value, regfile.DEFAULT_LIMITS, is the observed one, and a
test checks that it grants at least these).
"""

from __future__ import annotations

from types import MappingProxyType

from dcomc.windows import sd

EVERYONE = "S-1-1-0"
ADMINISTRATORS = "S-1-5-32-544"
DCOM_USERS = "S-1-5-32-562"
_ALL = (sd.COM_RIGHTS_EXECUTE | sd.COM_RIGHTS_EXECUTE_LOCAL | sd.COM_RIGHTS_EXECUTE_REMOTE
        | sd.COM_RIGHTS_ACTIVATE_LOCAL | sd.COM_RIGHTS_ACTIVATE_REMOTE)
_LOCAL = sd.COM_RIGHTS_EXECUTE | sd.COM_RIGHTS_EXECUTE_LOCAL | sd.COM_RIGHTS_ACTIVATE_LOCAL

# SID -> the COM launch rights the default limit grants it (read-only: one definition)
DEFAULT_LAUNCH_LIMIT = MappingProxyType({ADMINISTRATORS: _ALL, DCOM_USERS: _ALL,
                                         EVERYONE: _LOCAL})
