"""WiX project per host, for wixl (msitools): a Product and an embeddable payload Fragment.

- `wix/DcomConfig.wxs` — a Fragment: the payload (engine, entry script, the host's data file,
  .reg, .inf, netsh script) in one ComponentGroup that an OEM adds to its own product with a
  single `<ComponentGroupRef Id="DcomcPayload"/>`. It installs to
  `[ProgramFiles64Folder]dcomc\\<site>\\`.
- `wix/<HOST>.wxs` — the Product: install runs Apply as a deferred, no-impersonate custom
  action; a rollback action runs Rollback; uninstall runs Rollback from the backup install
  took (named `msi`, accumulated over upgrades); a major upgrade re-applies. Launch conditions:
  administrator, Windows 7 / Server 2008 R2 or later, and every password the host needs.

Passwords (route, see README): public properties `DCOMC_PASSWORD_<n>` (accounts listed in
`DCOMC_ACCOUNT_<n>`), given at install time (msiexec UI or command line, or a transform).
They never enter the MSI file. `MsiHiddenProperties` hides them and the custom action data
that carries them from the MSI log. A JScript deferred action (`dcomc-apply.js`) starts
PowerShell WITHOUT them on its command line and writes them to its standard input. A host
that needs no password gets a plain EXE custom action instead. An unattended install without
a needed password stops at the launch condition, before anything changes.

wixl 0.101 quirks handled here (wixl-notes): explicit sequence numbers, `Win64="yes"` on
every component with `-a x64`, relative `Source` paths (wixl runs in the host folder),
`Impersonate` written on every action; the rollback action's type is patched by msi.py.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from lxml import etree

from dcomc.model import HostPlan, LocalUser, ServiceLogon
from dcomc_targets.base import Artifact, EmitContext, template_bytes
from dcomc_targets.quoting import msi_formatted, msi_unformatted

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
SEQUENCE = {  # explicit numbers: wixl misplaces After=/Before= chains
    "SetPowerShellExe": 1001, "DcomcUninstall": 1700, "SetDcomcApply": 6580,
    "DcomcApplyRollback": 6585, "DcomcApply": 6590,
}  # fmt: skip
INSTALLING = 'NOT REMOVE~="ALL"'
UNINSTALLING = 'REMOVE~="ALL" AND NOT UPGRADINGPRODUCTCODE'


@dataclass(frozen=True, slots=True, order=True)
class PayloadFile:
    id: str
    name: str
    source: str


@dataclass(frozen=True, slots=True)
class WixContent:
    """What the two .wxs files say, in the plan's terms (read back by `parse_wix`)."""

    product_code: str
    upgrade_code: str
    version: str
    accounts: tuple[str, ...]  # DCOMC_ACCOUNT_1.. in order
    actions: tuple[tuple[str, str], ...]  # (custom action id, its command or call)
    sequence: tuple[tuple[str, int, str], ...]  # (action, number, condition)
    hidden: tuple[str, ...]


def guid(*parts: str, namespace: uuid.UUID = GUID_NAMESPACE) -> str:
    """A GUID derived from names: the same site, host and version give the same GUID."""
    return "{" + str(uuid.uuid5(namespace, "\0".join(parts))).upper() + "}"


def windows_names(site: str, host: str) -> tuple[str, str]:
    """Site and host as the codes derive from them: Windows compares computer and folder names
    without case, so `hmi01` in a later spec is still the PC HMI01, and its MSI must upgrade
    the one installed instead of installing beside it. Lower-case site, upper-case host, as
    they are usually written (their codes stay what they were)."""
    return site.lower(), host.upper()


def product_codes(site: str, host: str, version: str, spec_sha: str) -> dict[str, str]:
    site, host = windows_names(site, host)
    return {
        "product": guid("product", site, host, version),
        "upgrade": guid("upgrade", site, host),  # stable across versions: major upgrades
        "package": guid("package", site, host, version, spec_sha),
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


def _apply_command(host: HostPlan) -> str:
    return (f'{PS_FLAGS} -File "[{INSTALLDIR}]Invoke-DcomConfig.ps1" -Mode Apply '
            f'-DataFile "[{INSTALLDIR}]{msi_formatted(host.name)}.psd1" -BackupName {BACKUP_NAME}')


def _rollback_command(host: HostPlan) -> str:
    return (f'{PS_FLAGS} -File "[{INSTALLDIR}]Invoke-DcomConfig.ps1" -Mode Rollback '
            f'-DataFile "[{INSTALLDIR}]{msi_formatted(host.name)}.psd1" -BackupName {BACKUP_NAME}')


def _apply_data(host: HostPlan, accounts: tuple[str, ...]) -> str:
    """CustomActionData of the JScript action: TAB-separated, passwords last."""
    fields = ["[POWERSHELLEXE]", f"[{INSTALLDIR}]Invoke-DcomConfig.ps1",
              f"[{INSTALLDIR}]{msi_formatted(host.name)}.psd1", BACKUP_NAME]
    for n, account in enumerate(accounts, 1):
        fields += [msi_formatted(account), f"[DCOMC_PASSWORD_{n}]"]
    return "\t".join(fields)


def expected_actions(host: HostPlan) -> tuple[tuple[str, str], ...]:
    accounts = password_accounts(host)
    apply = (("DcomcApply", f"JScript {APPLY_JS}:Apply"),
             ("SetDcomcApply", _apply_data(host, accounts))) if accounts else (
             ("DcomcApply", _apply_command(host)),)
    return (
        ("SetPowerShellExe", "[System64Folder]WindowsPowerShell\\v1.0\\powershell.exe"),
        *apply,
        ("DcomcApplyRollback", _rollback_command(host)),
        ("DcomcUninstall", _rollback_command(host)),
    )


# --- writer ------------------------------------------------------------------------------------


def _e(parent: etree._Element | None, tag: str, **attrs: str) -> etree._Element:
    if parent is None:
        return etree.Element(f"{{{WIX_NS}}}{tag}", attrs, nsmap={None: WIX_NS})  # type: ignore[dict-item]
    return etree.SubElement(parent, f"{{{WIX_NS}}}{tag}", attrs)


def _comments(root: etree._Element, lines: list[str]) -> None:
    for line in lines:
        root.append(etree.Comment(" " + line.replace("--", "- -") + " "))


def fragment_xml(host: HostPlan, ctx: EmitContext, version: str) -> bytes:
    root = _e(None, "Wix")
    _comments(root, [*ctx.header_lines(host, "WiX Fragment: the dcomc payload"),
                     f'Embed: <ComponentGroupRef Id="{PAYLOAD_GROUP}"/> in your Product; it '
                     "installs to [ProgramFiles64Folder]dcomc\\<site>\\.",
                     "If your product defines ProgramFiles64Folder itself, move the Directory "
                     f"{INSTALLDIR} under your definition."])
    fragment = _e(root, "Fragment")
    top = _e(_e(fragment, "DirectoryRef", Id="TARGETDIR"), "Directory",
             Id="ProgramFiles64Folder", Name="PFiles64")
    _e(_e(top, "Directory", Id="DcomcRoot", Name="dcomc"), "Directory", Id=INSTALLDIR,
       Name=ctx.plan.site)
    files = _e(_e(root, "Fragment"), "DirectoryRef", Id=INSTALLDIR)
    group = _e(_e(root, "Fragment"), "ComponentGroup", Id=PAYLOAD_GROUP)
    for f in payload_files(host.name):
        comp = _e(files, "Component", Id=f"{f.id}C", Win64="yes",
                  Guid=guid("component", *windows_names(ctx.plan.site, host.name), version, f.id))
        _e(comp, "File", Id=f.id, Name=f.name, Source=f.source, KeyPath="yes")
        _e(group, "ComponentRef", Id=f"{f.id}C")
    return etree.tostring(root, xml_declaration=True, encoding="utf-8", pretty_print=True)


def product_xml(host: HostPlan, ctx: EmitContext, version: str) -> bytes:
    codes = product_codes(ctx.plan.site, host.name, version, ctx.spec_sha256)
    root = _e(None, "Wix")
    _comments(root, [*ctx.header_lines(host, "WiX Product (build with wixl -a x64)"),
                     "Passwords: DCOMC_PASSWORD_<n> for the account in DCOMC_ACCOUNT_<n>; "
                     "never stored in the MSI, hidden from its log, never on a command line."])
    product = _e(root, "Product", Id=codes["product"], Name=f"dcomc {ctx.plan.site} {host.name}",
                 Language="1033", Version=version, Manufacturer="dcomc",
                 UpgradeCode=codes["upgrade"])
    _e(product, "Package", InstallerVersion="500", Compressed="yes", InstallScope="perMachine",
       Description=f"Secure OPC DCOM configuration of {host.name}")
    _e(product, "Media", Id="1", Cabinet=CABINET, EmbedCab="yes")
    _e(product, "MajorUpgrade", DowngradeErrorMessage="A newer dcomc configuration of this "
       "PC is already installed.")
    _launch_conditions(product, host)
    _e(product, "Directory", Id="TARGETDIR", Name="SourceDir")
    _e(_e(product, "Feature", Id="DcomcMain", Level="1"), "ComponentGroupRef", Id=PAYLOAD_GROUP)
    _custom_actions(product, host)
    return etree.tostring(root, xml_declaration=True, encoding="utf-8", pretty_print=True)


def _launch_conditions(product: etree._Element, host: HostPlan) -> None:
    accounts = password_accounts(host)
    hidden = [f"DCOMC_PASSWORD_{n}" for n in range(1, len(accounts) + 1)]
    _e(product, "Property", Id="MsiHiddenProperties", Value=";".join([*hidden, "DcomcApply"]))
    for n, account in enumerate(accounts, 1):
        _e(product, "Property", Id=f"DCOMC_ACCOUNT_{n}", Value=msi_formatted(account))
    _e(product, "Condition", Message="dcomc must be installed by an administrator."
       ).text = "Privileged"
    _e(product, "Condition", Message="dcomc needs 64-bit Windows 7 / Server 2008 R2 or later."
       ).text = "VersionNT64 >= 601"
    for n, account in enumerate(accounts, 1):
        _e(product, "Condition", Message=f"Give the password of {msi_formatted(account)} in "
           f"DCOMC_PASSWORD_{n} (it is never stored).").text = f"Installed OR DCOMC_PASSWORD_{n}"


def _custom_actions(product: etree._Element, host: HostPlan) -> None:
    accounts = password_accounts(host)
    _e(product, "CustomAction", Id="SetPowerShellExe", Property="POWERSHELLEXE",
       Value="[System64Folder]WindowsPowerShell\\v1.0\\powershell.exe", Impersonate="yes")
    sequence = [("SetPowerShellExe", "")]
    if accounts:
        _e(product, "Binary", Id="DcomcApplyJs", SourceFile=f"wix/{APPLY_JS}")
        _e(product, "CustomAction", Id="SetDcomcApply", Property="DcomcApply",
           Value=_apply_data(host, accounts), Impersonate="yes")
        _e(product, "CustomAction", Id="DcomcApply", BinaryKey="DcomcApplyJs",
           JScriptCall="Apply", Execute="deferred", Impersonate="no", Return="check")
        sequence.append(("SetDcomcApply", INSTALLING))
    else:
        _e(product, "CustomAction", Id="DcomcApply", Property="POWERSHELLEXE",
           ExeCommand=_apply_command(host), Execute="deferred", Impersonate="no",
           Return="check")
    _e(product, "CustomAction", Id="DcomcApplyRollback", Property="POWERSHELLEXE",
       ExeCommand=_rollback_command(host), Execute="rollback", Impersonate="no", Return="ignore")
    _e(product, "CustomAction", Id="DcomcUninstall", Property="POWERSHELLEXE",
       ExeCommand=_rollback_command(host), Execute="deferred", Impersonate="no", Return="check")
    sequence += [("DcomcApplyRollback", INSTALLING), ("DcomcApply", INSTALLING),
                 ("DcomcUninstall", UNINSTALLING)]
    table = _e(product, "InstallExecuteSequence")
    for action, condition in sorted(sequence, key=lambda item: SEQUENCE[item[0]]):
        custom = _e(table, "Custom", Action=action, Sequence=str(SEQUENCE[action]))
        if condition:
            custom.text = condition


class WixTarget:
    name: str = "wix"
    kinds: tuple[str, ...] = ("wix-product", "wix-fragment", "wix-script")

    def emit(self, host: HostPlan, ctx: EmitContext) -> list[Artifact]:
        version = ctx.options.product_version
        artifacts = [
            Artifact(f"wix/{host.name}.wxs", "wix-product", product_xml(host, ctx, version)),
            Artifact("wix/DcomConfig.wxs", "wix-fragment", fragment_xml(host, ctx, version)),
        ]
        if password_accounts(host):
            script = template_bytes("wix", APPLY_JS)
            artifacts.append(Artifact(f"wix/{APPLY_JS}", "wix-script", script))
        return artifacts

    def expected(self, host: HostPlan, ctx: EmitContext) -> WixContent:
        version = ctx.options.product_version
        codes = product_codes(ctx.plan.site, host.name, version, ctx.spec_sha256)
        accounts = password_accounts(host)
        actions = expected_actions(host)
        order = sorted(SEQUENCE, key=SEQUENCE.__getitem__)
        conditions = {"SetPowerShellExe": "", "DcomcUninstall": UNINSTALLING}
        sequence = tuple((a, SEQUENCE[a], conditions.get(a, INSTALLING)) for a in order
                         if a in dict(actions))
        hidden = tuple(f"DCOMC_PASSWORD_{n}" for n in range(1, len(accounts) + 1))
        return WixContent(codes["product"], codes["upgrade"], version, accounts,
                          tuple(sorted(actions)), sequence, (*hidden, "DcomcApply"))

    def covers(self, host: HostPlan, ctx: EmitContext) -> set[str]:
        return {r.id for r in host.resources}  # the MSI runs the engine on every resource

    def read(self, data: bytes) -> WixContent:
        root = _xml(data)
        product = root.find(f"{{{WIX_NS}}}Product")
        if product is None:
            raise ValueError("WiX: no Product element")
        p = parse_product(product)
        return WixContent(p["product_code"], p["upgrade_code"], p["version"],
                          tuple(p["accounts"]), tuple(p["actions"]), tuple(p["sequence"]),
                          tuple(p["hidden"]))

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


def parse_product(product: etree._Element) -> dict[str, Any]:
    ns = f"{{{WIX_NS}}}"
    actions: list[tuple[str, str]] = []
    for ca in product.iter(f"{ns}CustomAction"):
        if ca.get("JScriptCall"):
            actions.append((ca.get("Id", ""), f"JScript {APPLY_JS}:{ca.get('JScriptCall')}"))
        else:
            actions.append((ca.get("Id", ""), ca.get("ExeCommand") or ca.get("Value") or ""))
    properties = {p.get("Id", ""): p.get("Value", "") for p in product.iter(f"{ns}Property")}
    numbered = [(int(k.rsplit("_", 1)[1]), v) for k, v in properties.items()
                if k.startswith("DCOMC_ACCOUNT_")]
    accounts = [msi_unformatted(v) for _, v in sorted(numbered)]
    sequence = [(c.get("Action", ""), int(c.get("Sequence", "0")), c.text or "")
                for c in product.iter(f"{ns}Custom")]
    return {
        "product_code": product.get("Id", ""),
        "upgrade_code": product.get("UpgradeCode", ""),
        "version": product.get("Version", ""),
        "accounts": accounts,
        "actions": sorted(actions),
        "sequence": sequence,
        "hidden": properties.get("MsiHiddenProperties", "").split(";"),
    }


def read_fragment(data: bytes) -> tuple[PayloadFile, ...]:
    """The payload files of the fragment, in order."""
    return tuple(PayloadFile(f.get("Id", ""), f.get("Name", ""), f.get("Source", ""))
                 for f in _xml(data).iter(f"{{{WIX_NS}}}File"))
