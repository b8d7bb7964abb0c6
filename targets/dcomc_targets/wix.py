"""WiX project per host, for wixl (msitools): a Product and an embeddable payload Fragment.

- `wix/DcomConfig.wxs` — a Fragment: the payload (engine, entry script, the host's data file,
  .reg, .inf, netsh script) in one ComponentGroup that an OEM adds to its own product with a
  single `<ComponentGroupRef Id="DcomcPayload"/>`. It installs to
  `[ProgramFiles64Folder]dcomc\\<site>\\`.
- `wix/<HOST>.wxs` — the Product: install runs Apply as a deferred, no-impersonate custom
  action; a rollback action runs Rollback; uninstall runs Rollback from the backup install
  took (named `msi`, accumulated over upgrades) and never blocks the uninstall (its failure is
  logged; the engine keeps the backup for a retry); a major upgrade re-applies. Launch
  conditions: administrator, 64-bit Windows 8 / Server 2012 or later with Windows PowerShell
  5.1, the computer the package is for, and every password the host needs.

Passwords (route, see README): public properties `DCOMC_PASSWORD_<n>` (accounts listed in
`DCOMC_ACCOUNT_<n>`; both Secure, so a managed install passes them to the server side), asked
for at install: in a transform kept off the share, or typed at the PC; never in a command line
(a deployment tool stores its install command and process auditing shows it: docs/deployment.md,
"Passwords and Group Policy"). They never enter the MSI file.
`MsiHiddenProperties` hides them and the custom action data that carries them from the MSI
log. Two 64-bit JScript actions (`dcomc-apply.js`) carry them: `Prepare` (immediate) reads
the properties and sets the deferred action's data, every variable field Base64 of UTF-16LE
(so TAB separates fields whatever a password holds); `Apply` (deferred) starts PowerShell
WITHOUT them on its command line and writes `Base64(account) TAB Base64(password) LF` lines
(UTF-16LE, as the data carries them) to its standard input. A host that needs no password
gets a plain EXE custom action instead. An unattended install without a needed password stops
at the launch condition, before anything changes.

Every value reaches the .wxs through the WiX preprocessor's escape (`quoting.wix_preprocessor`),
or, if it holds `$(` (which wixl cannot escape), through a `<?define?>`: an account `opcuser$`
or `$(env.HOME)` arrives in the MSI as written. Both are wixl's: candle would read a run of
three or more `$`, and a `$(` in a define, otherwise (quoting.py says why no escape suits both).

wixl 0.101 quirks handled here (wixl-notes): explicit sequence numbers, `Win64="yes"` on
every component with `-a x64`, relative `Source` paths (wixl runs in the host folder),
`Impersonate` written on every action. What it cannot write, the .wxs still says (for the
WiX toolset and the reader) and msi.py patches into the MSI: the rollback action's type, the
64-bit script bit of the JScript actions and the Secure properties (`wixl_input`: wixl reads a
copy without the attributes it does not know).
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from lxml import etree

from dcomc import __version__
from dcomc.plan.model import HostPlan, LocalUser, ServiceLogon
from dcomc_targets import xmltext
from dcomc_targets.base import Artifact, EmitContext, template_bytes
from dcomc_targets.quoting import (
    QuoteError,
    msi_formatted,
    wix_define,
    wix_preprocessor,
    wix_undefine,
    wix_unpreprocessed,
    xml_comment,
)

WIX_NS = "http://schemas.microsoft.com/wix/2006/wi"
GUID_NAMESPACE = uuid.UUID("5a0c3c9e-6f0b-4a7e-9d55-0dc0c0dc0c02")
PAYLOAD_GROUP = "DcomcPayload"
INSTALLDIR = "DCOMC_INSTALLDIR"
BACKUP_NAME = "msi"
CABINET = "dcomc.cab"
APPLY_JS = "dcomc-apply.js"
PS_FLAGS = "-NoProfile -NonInteractive -ExecutionPolicy Bypass"
# Deferred (0x400) + rollback (0x100) + no impersonation (0x800) + ignore exit code (0x40) +
# EXE with Property (50): what wixl cannot write (it emits an immediate action).
ROLLBACK_TYPE = 3442
# What wixl 0.101 writes instead (the same without deferred and rollback); the patch refuses
# any other value, so a changed wixl is noticed instead of patched blindly.
WIXL_ROLLBACK_TYPES = frozenset({2162})
# msidbCustomActionType64BitScript: a script action without it runs in the 32-bit script host,
# where [System64Folder] is redirected to SysWOW64 (32-bit PowerShell). wixl 0.101 has no
# Win64 on CustomAction: msi.py adds the bit (docs: "64-Bit Custom Actions").
SCRIPT_64BIT = 0x1000
SEQUENCE = {  # explicit numbers: wixl misplaces After=/Before= chains
    "SetPowerShellExe": 1001, "SetCmdExe": 1002, "DcomcUninstall": 1700, "SetDcomcApply": 6580,
    "DcomcApplyRollback": 6585, "DcomcApply": 6590, "DcomcCheckReboot": 6610,
}  # fmt: skip
# Reboots (dcomc-apply.js says why this way): the standard ScheduleReboot action, after
# InstallFinalize (6600) and CheckReboot, when the engine's last Apply exited 5; REBOOT defaults
# to ReallySuppress (the reboot is scheduled, msiexec returns 3010, nothing reboots unless the
# caller sets REBOOT=Force). Only a public property set by CheckReboot triggers it.
SCHEDULE_REBOOT = ("ScheduleReboot", 6620, 'DCOMC_REBOOT_REQUIRED AND NOT REMOVE~="ALL"')
REBOOT_DEFAULT = "ReallySuppress"
# Major upgrades: the old product removed inside the new installation's script, right after
# InstallInitialize (WiX's afterInstallInitialize; the docs of RemoveExistingProducts): a failed
# upgrade rolls the removal back too. wixl has no MajorUpgrade/@Schedule and puts the action
# after InstallFinalize, where the old product's removal deleted the payload the new one had
# just installed (its components have other GUIDs: they are per version), leaving no engine
# for uninstall. An explicit row replaces wixl's.
REMOVE_EXISTING = ("RemoveExistingProducts", 1550)
REBOOT_KEY = "SOFTWARE\\dcomc\\"  # + the site: HKLM, 64-bit view
# The detection key (README, Fleet deployment): the Registry table writes these values of the
# site's key, the key RebootRequired is in, so that Windows Installer removes them on uninstall
# (and restores them on a rollback) like any resource it installed. One component whose GUID
# does not depend on the version, as the component rules ask of one that keeps its resources:
# should RemoveExistingProducts ever run after the new product wrote the values (wixl's own
# place for it, see REMOVE_EXISTING), the old product's removal would otherwise take them away.
DETECTION_COMPONENT = "DcomcDetectionC"
INSTALLING = 'NOT REMOVE~="ALL"'
UNINSTALLING = 'REMOVE~="ALL" AND NOT UPGRADINGPRODUCTCODE'
# What wixl 0.101 puts in SecureCustomProperties for a MajorUpgrade (builder.vala); the Secure
# properties are added to it by msi.py, through the donor property (see `wixl_input`).
WIXL_SECURE = ("WIX_DOWNGRADE_DETECTED", "WIX_UPGRADE_DETECTED")
SECURE_DONOR = "DcomcSecureCustomProperties"
# Windows PowerShell 5.1, read by AppSearch (64-bit view) for the launch condition.
POWERSHELL_VERSION = "DCOMC_POWERSHELL_VERSION"
POWERSHELL_KEY = "SOFTWARE\\Microsoft\\PowerShell\\3\\PowerShellEngine"


@dataclass(frozen=True, slots=True, order=True)
class PayloadFile:
    id: str
    name: str
    source: str


@dataclass(frozen=True, slots=True)
class WixContent:
    """What the two .wxs files say, in the plan's terms (read back by `parse_product`)."""

    product_code: str
    upgrade_code: str
    version: str
    accounts: tuple[str, ...]  # DCOMC_ACCOUNT_1.. in order
    actions: tuple[tuple[str, str], ...]  # (custom action id, its command or call)
    flags: tuple[tuple[str, str], ...]  # (custom action id, Execute/Impersonate/Return/Win64)
    sequence: tuple[tuple[str, int, str], ...]  # (action, number, condition)
    hidden: tuple[str, ...]
    secure: tuple[str, ...]  # properties marked Secure, in order
    properties: tuple[tuple[str, str], ...]  # (id, value) of every Property with a value
    conditions: tuple[tuple[str, str], ...]  # launch conditions: (condition, message)
    registry: tuple[tuple[str, str, str, str], ...]  # (key, name, type, value) as in the MSI


def guid(*parts: str, namespace: uuid.UUID = GUID_NAMESPACE) -> str:
    """A GUID derived from names: the same site, host and version give the same GUID: uuid5
    of the parts joined by NUL, in braces, upper case. Computed here as uuid.uuid5 does (SHA-1
    of the namespace and the name, version 5, RFC 4122 variant) without its UUID object, a
    third of its cost: a 10,000-host build makes 200,000 (test_wix_guid_is_uuid5)."""
    digest = bytearray(hashlib.sha1(namespace.bytes + "\0".join(parts).encode("utf-8"),
                                    usedforsecurity=False).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # variant RFC 4122
    x = digest.hex().upper()
    return f"{{{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}}}"


def windows_names(site: str, host: str) -> tuple[str, str]:
    """Site and host as the codes derive from them: Windows compares computer and folder names
    without case, so `hmi01` in a later spec is still the PC HMI01, and its MSI must upgrade
    the one installed instead of installing beside it. Lower-case site, upper-case host, as
    they are usually written (their codes stay what they were)."""
    return site.lower(), host.upper()


def product_codes(site: str, host: str, version: str, inputs_sha: str) -> dict[str, str]:
    site, host = windows_names(site, host)
    return {
        "product": guid("product", site, host, version),
        "upgrade": guid("upgrade", site, host),  # stable across versions: major upgrades
        "package": guid("package", site, host, version, inputs_sha),
    }


def payload_files(host: str) -> tuple[PayloadFile, ...]:
    """The bundle files an installed PC needs, by their path in the host folder."""
    return (
        PayloadFile("DcomcEngine", "DcomConfig.psm1", "powershell/DcomConfig.psm1"),
        PayloadFile("DcomcEntry", "Invoke-DcomConfig.ps1", "powershell/Invoke-DcomConfig.ps1"),
        PayloadFile("DcomcData", f"{host}.psd1", f"powershell/{host}.psd1"),
        PayloadFile("DcomcReg", f"{host}.reg", f"reg/{host}.reg"),
        PayloadFile("DcomcInf", f"{host}.inf", f"secedit/{host}.inf"),
        PayloadFile("DcomcNetsh", f"{host}.netsh", f"firewall/{host}.netsh"),
    )


def password_accounts(host: HostPlan) -> tuple[str, ...]:
    """Accounts whose password Apply may need: users it creates, service Log On accounts."""
    names = [u.name for u in host.of_kind(LocalUser)]
    names += [s.account.name for s in host.of_kind(ServiceLogon)]
    return tuple(dict.fromkeys(names))


def reboot_tail(reg: str, key: str) -> str:
    """What cmd.exe runs after the engine: records its verdict (RebootRequired) and exits 0 only
    for the engine's 0 and 5 (dcomc-apply.js, rebootTail: the same text)."""
    write = f'"{reg}" add "{key}" /v RebootRequired /t REG_DWORD /f /reg:64 /d '
    return (" & if not errorlevel 0 (exit 3) else if errorlevel 6 (exit 3) else if errorlevel 5 "
            f"({write}1 >nul 2>&1 && exit 0 || exit 3) else if errorlevel 1 (exit 3) else "
            f"({write}0 >nul 2>&1 && exit 0 || exit 3)")


def apply_command(data_file: str, site: str, switch: str = "") -> str:
    """cmd.exe's arguments (the action's exe is [DCOMCCMDEXE]): the engine on `data_file` (a
    Formatted name in the install folder), then the tail that maps its exit code 5 (applied,
    reboot required) to success and a recorded reboot. An EXE action fails the install on any
    exit code but 0, and cannot tell 5 from a failure. The folder is Program Files unless an
    administrator sets DCOMC_INSTALLDIR: a `%` in it would be expanded by cmd.exe (the JScript
    route refuses it; this route cannot check)."""
    return ('/d /v:off /s /c ""[POWERSHELLEXE]" ' + engine_command(data_file, "Apply", switch)
            + reboot_tail("[System64Folder]reg.exe", "HKLM\\" + reboot_key(site)) + '"')


def reboot_key(site: str) -> str:
    """The site's key under HKLM (64-bit view), whose RebootRequired the Apply action writes."""
    return REBOOT_KEY + msi_formatted(site)


def detection_values(host: HostPlan, site: str, version: str,
                     inputs_sha: str) -> list[tuple[str, str, str]]:
    """(name, WiX type, value) of the detection key's values, Formatted as the Registry table
    reads them. RebootRequired starts at 1 and Apply, which runs later in the same
    installation, overwrites it with its verdict: a path that wrote the table but did not run
    Apply would then ask for a reboot too many, not hide one (as CheckReboot does)."""
    rows = [("Site", "string", site), ("Host", "string", host.name),
            ("ProductVersion", "string", version), ("InputsSha256", "string", inputs_sha),
            ("Generator", "string", f"dcomc {__version__}")]
    for name, _, value in rows:
        if value.startswith("#"):  # the Registry table would read #1 as a DWORD, #x as binary
            raise QuoteError(f"registry value {name}: cannot start with '#': {value!r}")
    return [(name, kind, msi_formatted(value)) for name, kind, value in rows] + [
        ("RebootRequired", "integer", "1")]


def data_file(host: HostPlan) -> str:
    """The host's data file in the install folder, Formatted (the site package names it with a
    property instead)."""
    return f"{msi_formatted(host.name)}.psd1"


def engine_command(data_file: str, mode: str, switch: str = "") -> str:
    """PowerShell's arguments (Formatted) that run the installed engine in `mode` on the data
    file `data_file` (Formatted) and the MSI's backup, then `switch` (Formatted: the site
    package's [DcomcForce])."""
    return (f'{PS_FLAGS} -File "[{INSTALLDIR}]Invoke-DcomConfig.ps1" -Mode {mode} '
            f'-DataFile "[{INSTALLDIR}]{data_file}" -BackupName {BACKUP_NAME}'
            + (f" {switch}" if switch else ""))


def condition_string(value: str) -> str:
    """A string literal of an MSI condition: in quotes, which it has no escape for."""
    if '"' in value or any(ord(c) < 0x20 for c in value):
        raise QuoteError(f"MSI condition: cannot quote {value!r}")
    return f'"{value}"'


def _properties(host: HostPlan, site: str) -> list[dict[str, str]]:
    """The Property elements (attributes in order), but the PowerShell search."""
    accounts = password_accounts(host)
    hidden = [f"DCOMC_PASSWORD_{n}" for n in range(1, len(accounts) + 1)]
    rows = [{"Id": "MsiHiddenProperties", "Value": ";".join([*hidden, "DcomcApply"])},
            {"Id": "REBOOT", "Value": REBOOT_DEFAULT},
            {"Id": "DcomcRebootKey", "Value": REBOOT_KEY + site}]
    for n, account in enumerate(accounts, 1):
        # Property values are plain text (not Formatted): the account as it is, which
        # Prepare reads with Session.Property.
        rows.append({"Id": f"DCOMC_ACCOUNT_{n}", "Value": account, "Secure": "yes"})
        rows.append({"Id": f"DCOMC_PASSWORD_{n}", "Secure": "yes"})  # no value: never stored
    if accounts:  # what Prepare needs besides standard properties and the install folder
        rows.append({"Id": "DcomcDataFile", "Value": f"{host.name}.psd1"})
        rows.append({"Id": "DcomcBackupName", "Value": BACKUP_NAME})
    return rows


def _conditions(host: HostPlan, site: str) -> list[tuple[str, str]]:
    """Launch conditions (condition, message), in order."""
    rows = [
        *common_conditions(),
        (f"Installed OR ComputerName ~= {condition_string(host.name)}",
         f"This package configures the PC {msi_formatted(host.name)} of the dcomc site "
         f"{msi_formatted(site)}, not [ComputerName]: install the MSI built for this PC."),
    ]
    rows.append((f"Installed OR NOT {SITE_PACKAGE_FOUND}",
                 f"The site package of the dcomc site {msi_formatted(site)} is installed on this "
                 "PC and configures it already: uninstall it before installing this PC's own MSI "
                 "(one kind of dcomc package per PC)."))
    for n, account in enumerate(password_accounts(host), 1):
        rows.append((f"Installed OR DCOMC_PASSWORD_{n}",
                     f"Give the password of {msi_formatted(account)} in DCOMC_PASSWORD_{n} "
                     "(it is never stored)."))
    return rows


def common_conditions() -> list[tuple[str, str]]:
    """The launch conditions of every dcomc MSI: administrator, Windows, PowerShell."""
    # Windows PowerShell: the engine needs 5.1 (Set-StrictMode 3, CIM and NetSecurity cmdlets,
    # classes of .NET 4.5). Windows Installer does not compare versions in conditions (docs,
    # "Conditional Statement Syntax": "the installer will not do direct comparisons of the
    # Version data type in conditional statements"); a string `>=` would be lexical. Windows
    # PowerShell stopped at 5.1 (PowerShell 6 and later install beside it, under other keys),
    # so the engine key holds 3.0, 4.0, 5.0.x or 5.1.x, and "starts with 5.1." (`<<`) is exact.
    # The floor 602 (Windows 8 / Server 2012: VersionNT in "Operating System Property Values")
    # is where NetSecurity exists and WMF 5.1 installs on servers (2012, 2012 R2; 8.1 is 603);
    # Windows 7 / 2008 R2 (601) may have 5.1 but not NetSecurity (audit m13).
    return [
        ("Privileged", "dcomc must be installed by an administrator."),
        ("VersionNT64 >= 602", "dcomc needs 64-bit Windows 8 / Server 2012 or later."),
        (f'Installed OR {POWERSHELL_VERSION} << "5.1."',
         "dcomc needs Windows PowerShell 5.1 (part of Windows 10 and Server 2016 and later; "
         "Windows Management Framework 5.1 on Server 2012 and 2012 R2 and Windows 8.1)."),
    ]


def _custom_action_rows(host: HostPlan, site: str) -> list[dict[str, str]]:
    """The CustomAction elements (attributes in order) the Product holds."""
    return custom_action_rows(data_file(host), bool(password_accounts(host)), site)


def custom_action_rows(data_file: str, passwords: bool, site: str,
                       switch: str = "") -> list[dict[str, str]]:
    """The CustomAction elements (attributes in order) of a product that runs the engine on
    `data_file` (Formatted), through the JScript actions when it takes `passwords`; Apply
    with `switch` (Formatted; the JScript route reads it from DcomcForce itself)."""
    rows = [{"Id": "SetPowerShellExe", "Property": "POWERSHELLEXE",
             "Value": "[System64Folder]WindowsPowerShell\\v1.0\\powershell.exe",
             "Impersonate": "yes"}]
    rows.append({"Id": "SetCmdExe", "Property": "DCOMCCMDEXE",
                 "Value": "[System64Folder]cmd.exe", "Impersonate": "yes"})
    if passwords:
        rows += [
            {"Id": "SetDcomcApply", "BinaryKey": "DcomcApplyJs", "JScriptCall": "Prepare",
             "Impersonate": "yes", "Return": "check", "Win64": "yes"},
            {"Id": "DcomcApply", "BinaryKey": "DcomcApplyJs", "JScriptCall": "Apply",
             "Execute": "deferred", "Impersonate": "no", "Return": "check", "Win64": "yes"},
        ]
    else:
        rows.append({"Id": "DcomcApply", "Property": "DCOMCCMDEXE",
                     "ExeCommand": apply_command(data_file, site, switch), "Execute": "deferred",
                     "Impersonate": "no", "Return": "check"})
    rollback = engine_command(data_file, "Rollback")
    rows += [
        {"Id": "DcomcApplyRollback", "Property": "POWERSHELLEXE",
         "ExeCommand": rollback, "Execute": "rollback", "Impersonate": "no", "Return": "ignore"},
        # never "check": a failed restore must not make the product impossible to remove
        # (the engine logs it and keeps the backup for a retry, audit M8)
        {"Id": "DcomcUninstall", "Property": "POWERSHELLEXE",
         "ExeCommand": rollback, "Execute": "deferred", "Impersonate": "no", "Return": "ignore"},
        {"Id": "DcomcCheckReboot", "BinaryKey": "DcomcApplyJs", "JScriptCall": "CheckReboot",
         "Impersonate": "yes", "Return": "check", "Win64": "yes"},
    ]
    return rows


_FLAGS = ("Execute", "Impersonate", "Return", "Win64")


def _describe(attrs: dict[str, str]) -> tuple[tuple[str, str], tuple[str, str]]:
    """(id, command or call) and (id, flags) of a CustomAction, from its attributes."""
    action = attrs.get("Id", "")
    if attrs.get("JScriptCall"):
        command = f"JScript {APPLY_JS}:{attrs['JScriptCall']}"
    else:
        command = attrs.get("ExeCommand") or attrs.get("Value") or ""
    flags = " ".join(f"{k}={attrs[k]}" for k in _FLAGS if k in attrs)
    return (action, command), (action, flags)


# --- writer ------------------------------------------------------------------------------------


class _Wxs:
    """One .wxs being written. Every attribute value and text passes through the WiX
    preprocessor's escape; a value that cannot (it holds `$(`) is kept in a `<?define?>`
    at the top of the file and referred to as `$(var.DcomcLiteral<n>)`. Written as text
    (xmltext: the bytes lxml's pretty_print writes), each value escaped once per process:
    most are the same on every host (issue 18)."""

    def __init__(self, comments: list[str]) -> None:
        self.root = xmltext.Element("Wix", {"xmlns": WIX_NS})
        for line in comments:  # read back by quoting.xml_uncomment (a site named "a---b")
            self.root.children.append(comment_line(line))
        self._defines: dict[str, str] = {}  # value -> variable name

    def literal(self, value: str) -> str:
        if "$(" not in value:
            return wix_preprocessor(value)
        name = self._defines.get(value)
        if name is None:
            name = self._defines[value] = f"DcomcLiteral{len(self._defines) + 1}"
        return f"$(var.{name})"

    def e(self, parent: xmltext.Element, tag: str, attrs: dict[str, str] | None = None,
          text: str | None = None, **more: str) -> xmltext.Element:
        values = ({**attrs, **more} if more else attrs) if attrs else more
        items = tuple(values.items())
        head = _start_tag(tag, items)
        if head is None:  # a value holds `$(`: its define's name is this document's
            head = f"<{tag}" + "".join([f' {k}="{xmltext.attribute(self.literal(v))}"'
                                        for k, v in items])
        content = None
        if text is not None:
            content = _text(text) if "$(" not in text else self.literal(text)
        element = xmltext.element(tag, head, content)
        parent.children.append(element)
        return element

    def tostring(self) -> bytes:
        children = self.root.children
        at = sum(1 for child in children if isinstance(child, str) and child.startswith("<!--"))
        children[at:at] = [xmltext.instruction("define", wix_define(name, value))
                           for value, name in self._defines.items()]
        return self.root.tostring()


# Start tags and texts once per process, not once per host: most elements are the same on
# every host (issue 18). Bounded; not for a value with `$(`, whose rendering (a define's name)
# depends on the document.
@lru_cache(maxsize=2048)
def _start_tag(tag: str, items: tuple[tuple[str, str], ...]) -> str | None:
    """`<tag a="v" ...` with every value through wixl's preprocessor escape and XML's; None if
    a value holds `$(`."""
    if any("$(" in value for _, value in items):
        return None
    return f"<{tag}" + "".join([f' {name}="{_attribute(value)}"' for name, value in items])


def _attribute(value: str) -> str:
    """xmltext.attribute(wix_preprocessor(value)), which is `value` itself when it holds
    nothing either escapes or refuses (one search instead of four: most values are plain)."""
    if _PLAIN_VALUE.search(value) is None:
        return value
    return xmltext.attribute(wix_preprocessor(value))


# What wix_preprocessor refuses or changes (controls, `$`) and what XML escapes or refuses.
_PLAIN_VALUE = re.compile('[\x00-\x1f\x7f-\x9f$&<>"\ufffe\uffff]')


@lru_cache(maxsize=256)  # the header's lines: most are the same in every host's files
def comment_line(line: str) -> str:
    """`<!-- line -->`, the line through quoting.xml_comment (read back by xml_uncomment): a
    header line of a .wxs (this module's and the firewall fragment's)."""
    return xmltext.comment(f" {xml_comment(line)} ")


@lru_cache(maxsize=4096)
def _text(value: str) -> str:
    return xmltext.text(wix_preprocessor(value))


def fragment_xml(host: HostPlan, ctx: EmitContext, version: str) -> bytes:
    doc = _Wxs([*ctx.header_lines(host, "WiX Fragment: the dcomc payload"),
                f'Embed: <ComponentGroupRef Id="{PAYLOAD_GROUP}"/> in your Product; it '
                "installs to [ProgramFiles64Folder]dcomc\\<site>\\.",
                "If your product defines ProgramFiles64Folder itself, move the Directory "
                f"{INSTALLDIR} under your definition."])
    fragment = doc.e(doc.root, "Fragment")
    top = doc.e(doc.e(fragment, "DirectoryRef", Id="TARGETDIR"), "Directory",
                Id="ProgramFiles64Folder", Name="PFiles64")
    doc.e(doc.e(top, "Directory", Id="DcomcRoot", Name="dcomc"), "Directory", Id=INSTALLDIR,
          Name=ctx.plan.site)
    files = doc.e(doc.e(doc.root, "Fragment"), "DirectoryRef", Id=INSTALLDIR)
    group = doc.e(doc.e(doc.root, "Fragment"), "ComponentGroup", Id=PAYLOAD_GROUP)
    for f in payload_files(host.name):
        comp = doc.e(files, "Component", Id=f"{f.id}C", Win64="yes",
                     Guid=guid("component", *windows_names(ctx.plan.site, host.name), version,
                               f.id))
        doc.e(comp, "File", Id=f.id, Name=f.name, Source=f.source, KeyPath="yes")
        doc.e(group, "ComponentRef", Id=f"{f.id}C")
    return doc.tostring()


def product_xml(host: HostPlan, ctx: EmitContext, version: str) -> bytes:
    codes = product_codes(ctx.plan.site, host.name, version, ctx.inputs_sha256(host))
    doc = _Wxs([*ctx.header_lines(host, "WiX Product (build with wixl -a x64)"),
                "Passwords: DCOMC_PASSWORD_<n> for the account in DCOMC_ACCOUNT_<n>; "
                "never stored in the MSI, hidden from its log, never on a command line."])
    product = doc.e(doc.root, "Product", Id=codes["product"],
                    Name=f"dcomc {ctx.plan.site} {host.name}", Language="1033",
                    Version=version, Manufacturer="dcomc", UpgradeCode=codes["upgrade"])
    doc.e(product, "Package", InstallerVersion="500", Compressed="yes",
          InstallScope="perMachine", Description=f"Secure OPC DCOM configuration of {host.name}")
    doc.e(product, "Media", Id="1", Cabinet=CABINET, EmbedCab="yes")
    doc.e(product, "MajorUpgrade", DowngradeErrorMessage="A newer dcomc configuration of this "
          "PC is already installed.")
    for row in _properties(host, ctx.plan.site):
        doc.e(product, "Property", row)
    powershell_search(doc, product)
    kind_search(doc, product, ctx.plan.site, SITE_PACKAGE_FOUND, "SpecSha256")
    for condition, message in _conditions(host, ctx.plan.site):
        doc.e(product, "Condition", text=condition, Message=message)
    doc.e(product, "Directory", Id="TARGETDIR", Name="SourceDir")
    # registry only: the folder is where a component must be, nothing is created in it
    detection = doc.e(doc.e(product, "DirectoryRef", Id=INSTALLDIR), "Component",
                      Id=DETECTION_COMPONENT, Win64="yes",
                      Guid=guid("component", *windows_names(ctx.plan.site, host.name),
                                "DcomcDetection"))
    key = reboot_key(ctx.plan.site)
    for n, (name, kind, value) in enumerate(
            detection_values(host, ctx.plan.site, version, ctx.inputs_sha256(host))):
        attrs = {"Root": "HKLM", "Key": key, "Name": name, "Type": kind, "Value": value}
        doc.e(detection, "RegistryValue", attrs | ({"KeyPath": "yes"} if n == 0 else {}))
    feature = doc.e(product, "Feature", Id="DcomcMain", Level="1")
    doc.e(feature, "ComponentGroupRef", Id=PAYLOAD_GROUP)
    doc.e(feature, "ComponentRef", Id=DETECTION_COMPONENT)
    _custom_actions(doc, product, host, ctx.plan.site)
    return doc.tostring()


def _custom_actions(doc: _Wxs, product: xmltext.Element, host: HostPlan, site: str) -> None:
    rows = _custom_action_rows(host, site)
    doc.e(product, "CustomAction", rows[0])
    # every MSI: CheckReboot is JScript (Prepare and Apply too, for a host with passwords)
    doc.e(product, "Binary", Id="DcomcApplyJs", SourceFile=f"wix/{APPLY_JS}")
    for row in rows[1:]:
        doc.e(product, "CustomAction", row)
    table = doc.e(product, "InstallExecuteSequence")
    sequence_rows(doc, table, _sequence(rows))


# One kind of package per PC: a host's own MSI and the site package write the same detection
# key (HKLM\SOFTWARE\dcomc\<site>), and uninstalling either removes the values both wrote.
# Only the site package writes SpecSha256: read by AppSearch, it tells which kind is there.
SITE_PACKAGE_FOUND = "DCOMC_SITE_PACKAGE_SPEC"


def kind_search(doc: _Wxs, product: xmltext.Element, site: str, prop: str, name: str) -> None:
    """The AppSearch of one value of the site's detection key (64-bit view) into `prop`."""
    doc.e(doc.e(product, "Property", Id=prop), "RegistrySearch",
          Id=f"Dcomc{name}Found", Root="HKLM", Key=reboot_key(site), Name=name, Type="raw",
          Win64="yes")


def powershell_search(doc: _Wxs, product: xmltext.Element) -> None:
    """The AppSearch of Windows PowerShell's version (64-bit view), for the launch condition."""
    doc.e(doc.e(product, "Property", Id=POWERSHELL_VERSION), "RegistrySearch",
          Id="DcomcPowerShellVersion", Root="HKLM", Key=POWERSHELL_KEY,
          Name="PowerShellVersion", Type="raw", Win64="yes")


def sequence_rows(doc: _Wxs, table: xmltext.Element, rows: list[tuple[str, int, str]]) -> None:
    """The InstallExecuteSequence rows of the custom actions (action, number, condition), then
    the standard actions dcomc places itself (ScheduleReboot, RemoveExistingProducts)."""
    for action, number, condition in rows:
        doc.e(table, "Custom", text=condition or None, Action=action, Sequence=str(number))
    action, number, condition = SCHEDULE_REBOOT
    doc.e(table, action, text=condition, Sequence=str(number))
    action, number = REMOVE_EXISTING
    doc.e(table, action, Sequence=str(number))


def _sequence(rows: list[dict[str, str]]) -> list[tuple[str, int, str]]:
    """The InstallExecuteSequence rows of the custom actions `rows` (_custom_action_rows)."""
    present = {row["Id"] for row in rows}
    conditions = {"SetPowerShellExe": "", "SetCmdExe": "", "DcomcUninstall": UNINSTALLING}
    return [(a, SEQUENCE[a], conditions.get(a, INSTALLING))
            for a in sorted(SEQUENCE, key=SEQUENCE.__getitem__) if a in present]


# --- what wixl 0.101 cannot read ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WixlInput:
    """A product .wxs as wixl 0.101 can build it, and what msi.py must patch afterwards.

    wixl knows neither `Win64` on CustomAction nor `Secure` on Property (strict, it aborts on
    an unknown attribute): its copy goes without them. The 64-bit script bit is then added to
    each such action's type (`script_types`: the type wixl writes, the type wanted). A Secure
    property must be listed in SecureCustomProperties, which wixl writes itself (for the
    MajorUpgrade) and refuses from the .wxs: the copy gets a donor Property holding the whole
    list, and the patch swaps the two values (`secure`: what wixl writes, the list wanted),
    two cells of the Property table, the donor keeping wixl's own list."""

    data: bytes
    script_types: tuple[tuple[str, int, int], ...]
    secure: tuple[str, str] | None


def _wixl_script_type(action: etree._Element) -> int:
    """The CustomAction type wixl 0.101 writes for a JScript call (builder.vala)."""
    returns = {None: 0, "check": 0, "ignore": 0x40, "asyncWait": 0x80, "asyncNoWait": 0xC0}
    execute = {None: 0, "immediate": 0, "deferred": 0x400}
    if not action.get("JScriptCall") or action.get("Return") not in returns or \
            action.get("Execute") not in execute:
        raise ValueError(f"Win64 on CustomAction {action.get('Id')!r}: only JScript calls, "
                         "immediate or deferred, are patched")
    impersonate = 0 if action.get("Impersonate") == "yes" else 0x800
    return 5 | returns[action.get("Return")] | execute[action.get("Execute")] | impersonate


def wixl_input(data: bytes) -> WixlInput:
    """The product .wxs `data` as wixl reads it, and the patches that make its MSI say what
    the .wxs says (see WixlInput). ValueError on an attribute that cannot be patched."""
    root = _xml(data)
    ns = f"{{{WIX_NS}}}"
    types: list[tuple[str, int, int]] = []
    for action in root.iter(f"{ns}CustomAction"):
        if action.attrib.pop("Win64", "no") == "yes":
            wixl = _wixl_script_type(action)
            types.append((action.get("Id", ""), wixl, wixl | SCRIPT_64BIT))
    secure = [p.get("Id", "") for p in root.iter(f"{ns}Property")
              if p.attrib.pop("Secure", "no") == "yes"]
    swap = None
    if secure:
        product = root.find(f"{ns}Product")
        if product is None or product.find(f"{ns}MajorUpgrade") is None:
            raise ValueError("Secure properties need the MajorUpgrade's SecureCustomProperties")
        wanted = ";".join([*WIXL_SECURE, *secure])
        etree.SubElement(product, f"{ns}Property", Id=SECURE_DONOR, Value=wanted)
        swap = (";".join(WIXL_SECURE), wanted)
    return WixlInput(etree.tostring(root, xml_declaration=True, encoding="utf-8"),
                     tuple(types), swap)


class WixTarget:
    name: str = "wix"
    kinds: tuple[str, ...] = ("wix-product", "wix-fragment", "wix-script")

    def emit(self, host: HostPlan, ctx: EmitContext) -> list[Artifact]:
        version = ctx.options.product_version
        artifacts = [
            Artifact(f"wix/{host.name}.wxs", "wix-product", product_xml(host, ctx, version)),
            Artifact("wix/DcomConfig.wxs", "wix-fragment", fragment_xml(host, ctx, version)),
        ]
        script = template_bytes("wix", APPLY_JS)  # every MSI: CheckReboot
        artifacts.append(Artifact(f"wix/{APPLY_JS}", "wix-script", script))
        return artifacts

    def expected(self, host: HostPlan, ctx: EmitContext) -> WixContent:
        version = ctx.options.product_version
        codes = product_codes(ctx.plan.site, host.name, version, ctx.inputs_sha256(host))
        rows = _custom_action_rows(host, ctx.plan.site)
        described = [_describe(row) for row in rows]
        properties = _properties(host, ctx.plan.site)
        hidden = next(p["Value"] for p in properties if p["Id"] == "MsiHiddenProperties")
        return WixContent(
            codes["product"], codes["upgrade"], version, password_accounts(host),
            tuple(sorted(a for a, _ in described)), tuple(sorted(f for _, f in described)),
            tuple(_sequence(rows)), tuple(hidden.split(";")),
            tuple(p["Id"] for p in properties if p.get("Secure") == "yes"),
            tuple(sorted((p["Id"], p["Value"]) for p in properties if "Value" in p)),
            tuple(_conditions(host, ctx.plan.site)),
            tuple((f"HKLM\\{reboot_key(ctx.plan.site)}", name, kind, value) for name, kind, value
                  in detection_values(host, ctx.plan.site, version, ctx.inputs_sha256(host))))

    def covers(self, host: HostPlan, ctx: EmitContext) -> set[str]:
        return {r.id for r in host.resources}  # the MSI runs the engine on every resource

    def read(self, data: bytes) -> WixContent:
        root = _xml(data)
        product = root.find(f"{{{WIX_NS}}}Product")
        if product is None:
            raise ValueError("WiX: no Product element")
        p = parse_product(product)
        return WixContent(p["product_code"], p["upgrade_code"], p["version"],
                          tuple(p["accounts"]), tuple(p["actions"]), tuple(p["flags"]),
                          tuple(p["sequence"]), tuple(p["hidden"]), tuple(p["secure"]),
                          tuple(p["properties"]), tuple(p["conditions"]),
                          tuple(p["registry"]))

    def sniff(self, data: bytes, name: str) -> bool:
        return name.endswith(".wxs") and b"http://schemas.microsoft.com/wix/FirewallExtension" \
            not in data[:4096]

    def inspect(self, data: bytes) -> Any:
        root = _xml(data)
        product = root.find(f"{{{WIX_NS}}}Product")
        if product is None:
            return {"kind": "wix-fragment", "files": [vars_(f) for f in read_fragment(data)]}
        content = parse_product(product)
        return {"kind": "wix-product", **{k: v for k, v in content.items() if k != "files"}}


def vars_(f: PayloadFile) -> dict[str, str]:
    return {"id": f.id, "name": f.name, "source": f.source}


# --- reader ------------------------------------------------------------------------------------


def _xml(data: bytes) -> etree._Element:
    return etree.fromstring(data, parser=etree.XMLParser(resolve_entities=False,
                                                          no_network=True))


def _preprocessed(element: etree._Element) -> Callable[[str | None], str]:
    """What wixl's preprocessor makes of a value of the document `element` is in: its own
    `<?define?>`s substituted, `$$` read as wixl reads it (quoting.wix_unpreprocessed)."""
    defines = dict(wix_undefine(pi.text or "")
                   for pi in element.getroottree().getroot().iter(etree.PI)
                   if isinstance(pi, etree._ProcessingInstruction) and pi.target == "define")
    return lambda value: wix_unpreprocessed(value or "", defines)


def parse_product(product: etree._Element) -> dict[str, Any]:
    """The Product as wixl builds it: every value as wixl's preprocessor reads it."""
    ns = f"{{{WIX_NS}}}"
    value = _preprocessed(product)

    def attrs(element: etree._Element) -> dict[str, str]:
        return {str(k): value(str(v)) for k, v in element.attrib.items()}

    described = [_describe(attrs(ca)) for ca in product.iter(f"{ns}CustomAction")]
    properties = [attrs(p) for p in product.iter(f"{ns}Property")]
    values = {p.get("Id", ""): p["Value"] for p in properties if "Value" in p}
    numbered = [(_number(k.rsplit("_", 1)[1], k), v) for k, v in values.items()
                if k.startswith("DCOMC_ACCOUNT_")]
    sequence = [(value(c.get("Action")), _number(value(c.get("Sequence")) or "0", "Sequence"),
                 value(c.text)) for c in product.iter(f"{ns}Custom")]
    return {
        "product_code": value(product.get("Id")),
        "upgrade_code": value(product.get("UpgradeCode")),
        "version": value(product.get("Version")),
        "accounts": [v for _, v in sorted(numbered)],
        "actions": sorted(a for a, _ in described),
        "flags": sorted(f for _, f in described),
        "sequence": sequence,
        "hidden": values.get("MsiHiddenProperties", "").split(";"),
        "secure": [p.get("Id", "") for p in properties if p.get("Secure") == "yes"],
        "properties": sorted(values.items()),
        "conditions": [(value(c.text), value(c.get("Message")))
                       for c in product.iter(f"{ns}Condition")],
        "registry": [(f"{value(r.get('Root'))}\\{value(r.get('Key'))}", value(r.get("Name")),
                      value(r.get("Type")), value(r.get("Value")))
                     for r in product.iter(f"{ns}RegistryValue")],
    }


def _number(text: str, what: str) -> int:
    """A small decimal number of the .wxs (an account's index, a sequence number)."""
    if not text.isdecimal() or len(text) > 9:
        raise ValueError(f"WiX: {what[:40]!r} is not a number: {text[:20]!r}")
    return int(text)


def read_fragment(data: bytes) -> tuple[PayloadFile, ...]:
    """The payload files of the fragment, in order."""
    root = _xml(data)
    value = _preprocessed(root)
    return tuple(PayloadFile(value(f.get("Id")), value(f.get("Name")), value(f.get("Source")))
                 for f in root.iter(f"{{{WIX_NS}}}File"))
