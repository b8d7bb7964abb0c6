"""The site package (`dcomc build --site-msi`): one WiX Product for the whole site, for Group
Policy software installation, Configuration Manager and Intune, which assign one package to
many PCs rather than one package per PC.

It carries the engine, the entry script and EVERY host's data file (plans hold no secret: the
passwords are asked for at install time, as in the host MSIs) and applies the plan of one host,
chosen before LaunchConditions, in both sequences, by properties Windows Installer sets itself
(type 51 actions, so a reviewer reads the whole choice in the CustomAction table):

1. `DcomcWanted` = `DCOMC_HOST` when it is given (public and Secure: imaging, a PC renamed
   later, a test), else, on a maintenance run of this product (uninstall, repair), the `Host`
   the detection key recorded at install (read by AppSearch into `DCOMC_INSTALLED_HOST`), else
   `ComputerName` (the NetBIOS name, as the host MSIs check it);
2. one action per host sets `DcomcHost` to the host whose name equals `DcomcWanted` without
   case (`~=`; host names are unique without case, E-check), and one per host with passwords
   sets `DcomcAccounts` to the indexes of the accounts it needs (";1;3;");
3. `DcomcDataFile` = `[DcomcHost].psd1`, which the engine's command lines (and Prepare, for a
   site with passwords) name; and, when DCOMC_HOST chose the host, `DcomcForce` = `-Force`:
   the engine refuses a data file whose host is not the PC's name unless told (its Rollback,
   which restores the PC's own backup, takes it whatever the PC is called now).
A PC whose name is not a host stops at the launch condition `Installed OR DcomcHost` with a
message in the MSI log, before anything changes. Passwords: `DCOMC_ACCOUNT_<n>` lists every
account any host needs (`site_accounts`); a launch condition per account asks for
`DCOMC_PASSWORD_<n>` only on a PC whose host needs it (`DcomcAccounts >< ";n;"`, the substring
operator). Everything else — the actions that run Apply, Rollback and the uninstall, reboots
(3010), the detection key, major upgrades — is the host MSIs' (wix.py), with the data file
named by property. Its codes are the site's own: it upgrades itself, never a host MSI, and the
two kinds must not be installed on one PC (they share the detection key; the docs say so).

The .wxs names its sources relative to the bundle's folder (wixl runs there): the engine of the
first host (the same bytes on every host) and each host's data file, where the host folders
hold them; its own files are in the bundle's `_site/` folder, a name no host can have.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dcomc import __version__
from dcomc.diagnostics import Span
from dcomc.plan.model import HostPlan, LocalUser, ServiceLogon, SitePlan
from dcomc_targets.base import EmitContext, template_bytes
from dcomc_targets.quoting import QuoteError, msi_formatted
from dcomc_targets.wix import (
    APPLY_JS,
    BACKUP_NAME,
    CABINET,
    DETECTION_COMPONENT,
    INSTALLDIR,
    REBOOT_DEFAULT,
    REBOOT_KEY,
    SITE_PACKAGE_FOUND,
    WIX_NS,
    PayloadFile,
    _preprocessed,
    _sequence,
    _Wxs,
    _xml,
    common_conditions,
    condition_string,
    custom_action_rows,
    guid,
    kind_search,
    parse_product,
    password_accounts,
    powershell_search,
    reboot_key,
    sequence_rows,
)

FOLDER = "_site"  # in the bundle: not a host name (those are letters, digits and hyphens)
HOST_PROPERTY = "DCOMC_HOST"
INSTALLED_HOST = "DCOMC_INSTALLED_HOST"
WANTED = "DcomcWanted"
SELECTED = "DcomcHost"
NEEDS = "DcomcAccounts"
DATA_FILE = "DcomcDataFile"
INPUTS = "DcomcInputs"  # the chosen host's inputs hash, for the detection key
FORCE = "DcomcForce"  # read by the EXE route's command line and by Prepare (dcomc-apply.js)
# After AppSearch (50), which reads INSTALLED_HOST, and before LaunchConditions (100). Every
# host's action has the same number: their conditions exclude each other.
CHOOSE, CHOOSE_HOST, CHOOSE_ACCOUNTS, CHOOSE_FILE = (51, 52, 53), 60, 61, 62


def paths(site: str) -> tuple[str, str, str]:
    """The site package's product .wxs, JScript and MSI, relative to the bundle folder."""
    return (f"{FOLDER}/wix/{site}.wxs", f"{FOLDER}/wix/{APPLY_JS}", f"{FOLDER}/{site}.msi")


def site_codes(site: str, version: str, spec_sha: str) -> dict[str, str]:
    """The site package's codes: its own upgrade code, so it upgrades itself only."""
    site = site.lower()  # as the host MSIs' codes: a site renamed in case is the same site
    return {"product": guid("site-product", site, version),
            "upgrade": guid("site-upgrade", site),
            "package": guid("site-package", site, version, spec_sha)}


def site_accounts(plan: SitePlan) -> tuple[str, ...]:
    """Every account a host of the site needs a password for, in host order: DCOMC_ACCOUNT_n."""
    return tuple(dict.fromkeys(a for host in plan.hosts for a in password_accounts(host)))


def payload(plan: SitePlan) -> tuple[PayloadFile, ...]:
    """The files the package installs, by their path in the bundle: the engine once (every
    host's copy is the same), then each host's data file."""
    first = plan.hosts[0].name
    files = [PayloadFile("DcomcEngine", "DcomConfig.psm1", f"{first}/powershell/DcomConfig.psm1"),
             PayloadFile("DcomcEntry", "Invoke-DcomConfig.ps1",
                         f"{first}/powershell/Invoke-DcomConfig.ps1")]
    files += [PayloadFile(f"DcomcData{n}", f"{h.name}.psd1", f"{h.name}/powershell/{h.name}.psd1")
              for n, h in enumerate(plan.hosts, 1)]
    return tuple(files)


def choice_rows(plan: SitePlan, ctx: EmitContext) -> list[tuple[dict[str, str], int, str]]:
    """The type 51 actions that choose the host: (CustomAction attributes, sequence, condition),
    in order (see the module's docstring). With the host, its inputs hash (`DcomcInputs`),
    which the detection key records as a host MSI does."""
    def sets(action: str, prop: str, value: str) -> dict[str, str]:
        return {"Id": action, "Property": prop, "Value": value, "Impersonate": "yes"}

    first, installed, computer = CHOOSE
    rows = [(sets("DcomcWantHost", WANTED, f"[{HOST_PROPERTY}]"), first, HOST_PROPERTY),
            (sets("DcomcWantInstalled", WANTED, f"[{INSTALLED_HOST}]"), installed,
             f"NOT {WANTED} AND Installed AND {INSTALLED_HOST}"),
            (sets("DcomcWantComputer", WANTED, "[ComputerName]"), computer, f"NOT {WANTED}"),
            (sets("DcomcForceHost", FORCE, "-Force"), computer, HOST_PROPERTY)]
    for n, host in enumerate(plan.hosts, 1):
        rows.append((sets(f"DcomcHost{n}", SELECTED, msi_formatted(host.name)), CHOOSE_HOST,
                     f"{WANTED} ~= {condition_string(host.name)}"))
    for n, (host, needs) in enumerate(_needs(plan), 1):
        chosen = f"{SELECTED} = {condition_string(host.name)}"
        rows.append((sets(f"DcomcInputs{n}", INPUTS, ctx.inputs_sha256(host)), CHOOSE_ACCOUNTS,
                     chosen))
        if needs:
            rows.append((sets(f"DcomcAccounts{n}", NEEDS, needs), CHOOSE_ACCOUNTS, chosen))
    rows.append((sets("DcomcSetDataFile", DATA_FILE, f"[{SELECTED}].psd1"), CHOOSE_FILE,
                 SELECTED))
    return rows


def _needs(plan: SitePlan) -> list[tuple[HostPlan, str]]:
    """Each host and the `DcomcAccounts` value of its accounts (";1;3;", the indexes of
    `site_accounts`), "" for a host that needs no password."""
    index = {account: n for n, account in enumerate(site_accounts(plan), 1)}
    needs = [(host, [str(index[a]) for a in password_accounts(host)]) for host in plan.hosts]
    return [(host, f";{';'.join(numbers)};" if numbers else "") for host, numbers in needs]


def _properties(plan: SitePlan) -> list[dict[str, str]]:
    accounts = site_accounts(plan)
    hidden = [f"DCOMC_PASSWORD_{n}" for n in range(1, len(accounts) + 1)]
    rows = [{"Id": "MsiHiddenProperties", "Value": ";".join([*hidden, "DcomcApply"])},
            {"Id": "REBOOT", "Value": REBOOT_DEFAULT},
            {"Id": "DcomcRebootKey", "Value": REBOOT_KEY + plan.site},
            {"Id": HOST_PROPERTY, "Secure": "yes"}]  # no value: given at install, or not
    for n, account in enumerate(accounts, 1):
        rows.append({"Id": f"DCOMC_ACCOUNT_{n}", "Value": account, "Secure": "yes"})
        rows.append({"Id": f"DCOMC_PASSWORD_{n}", "Secure": "yes"})
    if accounts:
        rows.append({"Id": "DcomcBackupName", "Value": BACKUP_NAME})
    return rows


def _conditions(plan: SitePlan) -> list[tuple[str, str]]:
    site = msi_formatted(plan.site)
    rows = [*common_conditions(),
            (f"Installed OR {SELECTED}",
             f"This PC ([ComputerName]) is not a host of the dcomc site {site} (looked for "
             f"[{WANTED}]): install the package on a PC of the site, or name the host with "
             f"{HOST_PROPERTY}=<host>."),
            # a Host in the key without the SpecSha256 only this package writes: a host's MSI
            (f"Installed OR NOT {INSTALLED_HOST} OR {SITE_PACKAGE_FOUND}",
             f"This PC's own MSI of the dcomc site {site} (host [{INSTALLED_HOST}]) is installed "
             "and configures it already: uninstall it before installing the site package (one "
             "kind of dcomc package per PC).")]
    for n, account in enumerate(site_accounts(plan), 1):
        rows.append((f'Installed OR NOT ({NEEDS} >< ";{n};") OR DCOMC_PASSWORD_{n}',
                     f"The PC [{SELECTED}] needs the password of {msi_formatted(account)} in "
                     f"DCOMC_PASSWORD_{n} (it is never stored)."))
    return rows


def detection_values(plan: SitePlan, version: str, spec_sha: str) -> list[tuple[str, str, str]]:
    """(name, WiX type, value) of the detection key's values: the host MSIs' (wix.py), with the
    host the package chose."""
    if plan.site.startswith("#"):
        raise QuoteError(f"registry value Site: cannot start with '#': {plan.site!r}")
    return [("Site", "string", msi_formatted(plan.site)), ("Host", "string", f"[{SELECTED}]"),
            ("ProductVersion", "string", msi_formatted(version)),
            ("InputsSha256", "string", f"[{INPUTS}]"), ("SpecSha256", "string", spec_sha),
            ("Generator", "string", msi_formatted(f"dcomc {__version__}")),
            ("RebootRequired", "integer", "1")]


def product_xml(plan: SitePlan, ctx: EmitContext, version: str) -> bytes:
    codes = site_codes(plan.site, version, ctx.spec_sha256)
    wxs, script, msi = paths(plan.site)
    doc = _Wxs([
        "WiX Product: the site package (build with wixl -a x64 in the bundle folder: "
        f"wixl -a x64 -o {msi} {wxs})",
        f"Site {plan.site}: {len(plan.hosts)} hosts. Generated by dcomc {ctx.version} from "
        f"{ctx.spec_name} (sha256 {ctx.spec_sha256[:16]}). Do not edit: change the spec and "
        "rebuild.",
        "Installs on any PC of the site and applies the plan of the host named like the PC "
        f"(ComputerName), or the host given in {HOST_PROPERTY}; stops before any change on "
        "another PC.",
        "Passwords: DCOMC_PASSWORD_<n> for the account in DCOMC_ACCOUNT_<n>, asked for only "
        "where the chosen host needs it; never stored in the MSI, hidden from its log, never "
        "on a command line."])
    product = doc.e(doc.root, "Product", Id=codes["product"], Name=f"dcomc {plan.site} (site)",
                    Language="1033", Version=version, Manufacturer="dcomc",
                    UpgradeCode=codes["upgrade"])
    doc.e(product, "Package", InstallerVersion="500", Compressed="yes",
          InstallScope="perMachine",
          Description=f"Secure OPC DCOM configuration of the site {plan.site}")
    doc.e(product, "Media", Id="1", Cabinet=CABINET, EmbedCab="yes")
    doc.e(product, "MajorUpgrade", DowngradeErrorMessage="A newer dcomc configuration of this "
          "site is already installed.")
    for row in _properties(plan):
        doc.e(product, "Property", row)
    _searches(doc, product, plan.site)
    for condition, message in _conditions(plan):
        doc.e(product, "Condition", text=condition, Message=message)
    _payload(doc, product, plan, version, ctx.spec_sha256)
    _actions(doc, product, plan, ctx, script)
    return doc.tostring()


def _searches(doc: _Wxs, product: Any, site: str) -> None:
    """Windows PowerShell's version and the host the installed package chose (AppSearch)."""
    powershell_search(doc, product)
    doc.e(doc.e(product, "Property", Id=INSTALLED_HOST), "RegistrySearch",
          Id="DcomcInstalledHost", Root="HKLM", Key=reboot_key(site), Name="Host",
          Type="raw", Win64="yes")
    kind_search(doc, product, site, SITE_PACKAGE_FOUND, "SpecSha256")


def _payload(doc: _Wxs, product: Any, plan: SitePlan, version: str, spec_sha: str) -> None:
    """The install folder, a component per file, the detection key, one feature."""
    site = plan.site.lower()
    top = doc.e(doc.e(product, "Directory", Id="TARGETDIR", Name="SourceDir"), "Directory",
                Id="ProgramFiles64Folder", Name="PFiles64")
    folder = doc.e(doc.e(top, "Directory", Id="DcomcRoot", Name="dcomc"), "Directory",
                   Id=INSTALLDIR, Name=plan.site)
    feature = doc.e(product, "Feature", Id="DcomcMain", Level="1")
    for f in payload(plan):
        component = doc.e(folder, "Component", Id=f"{f.id}C", Win64="yes",
                          Guid=guid("site-component", site, version, f.name.lower()))
        doc.e(component, "File", Id=f.id, Name=f.name, Source=f.source, KeyPath="yes")
        doc.e(feature, "ComponentRef", Id=f"{f.id}C")
    detection = doc.e(folder, "Component", Id=DETECTION_COMPONENT, Win64="yes",
                      Guid=guid("site-component", site, "DcomcDetection"))
    key = reboot_key(plan.site)
    for n, (name, kind, value) in enumerate(detection_values(plan, version, spec_sha)):
        attrs = {"Root": "HKLM", "Key": key, "Name": name, "Type": kind, "Value": value}
        doc.e(detection, "RegistryValue", attrs | ({"KeyPath": "yes"} if n == 0 else {}))
    doc.e(feature, "ComponentRef", Id=DETECTION_COMPONENT)


def action_rows(plan: SitePlan) -> tuple[list[dict[str, str]], list[tuple[str, int, str]]]:
    """The CustomAction elements that run the engine, and their InstallExecuteSequence rows:
    the host MSIs' (wix.py), the data file named by property. A chosen host that needs no
    password runs the plain EXE action, as its own MSI would; where a host needs passwords,
    the JScript pair runs instead (`DcomcAccounts` is set only for such a host): the two routes
    have the same sequence number and exclusive conditions."""
    rows = custom_action_rows(f"[{DATA_FILE}]", False, plan.site, f"[{FORCE}]")
    if not site_accounts(plan):
        return rows, _sequence(rows)
    exe = next(r for r in rows if r["Id"] == "DcomcApply")
    exe["Id"] = "DcomcApplyExe"
    scripted = custom_action_rows(f"[{DATA_FILE}]", True, plan.site, f"[{FORCE}]")
    rows += [r for r in scripted if r["Id"] in ("SetDcomcApply", "DcomcApply")]
    guarded = []
    for action, number, condition in _sequence(scripted):
        if action not in ("SetDcomcApply", "DcomcApply"):
            guarded.append((action, number, condition))
            continue
        guarded.append((action, number, f"{condition} AND {NEEDS}"))
        if action == "DcomcApply":  # the EXE route, at the same number
            guarded.append(("DcomcApplyExe", number, f"{condition} AND NOT {NEEDS}"))
    return rows, guarded


def _actions(doc: _Wxs, product: Any, plan: SitePlan, ctx: EmitContext, script: str) -> None:
    rows, engine_rows = action_rows(plan)
    choice = choice_rows(plan, ctx)
    doc.e(product, "Binary", Id="DcomcApplyJs", SourceFile=script)
    for row in [*(attrs for attrs, _, _ in choice), *rows]:
        doc.e(product, "CustomAction", row)
    for table in ("InstallUISequence", "InstallExecuteSequence"):
        sequence = doc.e(product, table)
        for attrs, number, condition in choice:
            doc.e(sequence, "Custom", text=condition, Action=attrs["Id"], Sequence=str(number))
    sequence_rows(doc, sequence, engine_rows)  # InstallExecuteSequence, the last table


def emit(plan: SitePlan, ctx: EmitContext) -> dict[str, bytes]:
    """The site package's WiX files by their path in the bundle."""
    wxs, script, _ = paths(plan.site)
    return {wxs: product_xml(plan, ctx, ctx.options.product_version),
            script: template_bytes("wix", APPLY_JS)}


# --- reader ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SiteContent:
    """What the site .wxs says, in the plan's terms: read back by `read`, computed from the plan
    by `expected`."""

    product_code: str
    upgrade_code: str
    version: str
    hosts: tuple[str, ...]  # the hosts it can choose, in order
    needs: tuple[tuple[str, str], ...]  # (host, ";1;3;") of the hosts with passwords
    accounts: tuple[str, ...]
    files: tuple[tuple[str, str], ...]  # (installed name, source in the bundle)
    conditions: tuple[tuple[str, str], ...]
    actions: tuple[tuple[str, str], ...]
    registry: tuple[tuple[str, str, str, str], ...]


def expected(plan: SitePlan, ctx: EmitContext) -> SiteContent:
    version = ctx.options.product_version
    codes = site_codes(plan.site, version, ctx.spec_sha256)
    choice = choice_rows(plan, ctx)
    rows, _ = action_rows(plan)
    hosts = [h.name for h in plan.hosts]
    needs = tuple((host.name, value) for host, value in _needs(plan) if value)
    described = _described([*(a for a, _, _ in choice), *rows])
    return SiteContent(
        codes["product"], codes["upgrade"], version, tuple(hosts), needs, site_accounts(plan),
        tuple((f.name, f.source) for f in payload(plan)), tuple(_conditions(plan)),
        tuple(described),
        tuple((f"HKLM\\{reboot_key(plan.site)}", n, k, v)
              for n, k, v in detection_values(plan, version, ctx.spec_sha256)))


def read(data: bytes) -> SiteContent:
    """The site .wxs as wixl builds it (wix.parse_product reads what the two kinds share)."""
    root = _xml(data)
    product = root.find(f"{{{WIX_NS}}}Product")
    if product is None:
        raise ValueError("WiX: no Product element")
    p = parse_product(product)
    value = _preprocessed(product)
    actions = {value(a.get("Id")): {str(k): value(str(v)) for k, v in a.attrib.items()}
               for a in product.iter(f"{{{WIX_NS}}}CustomAction")}
    hosts = tuple(a["Value"] for i, a in actions.items() if _numbered(i, "DcomcHost"))
    conditions = {value(c.get("Action")): value(c.text)
                  for c in product.iter(f"{{{WIX_NS}}}Custom")}
    needs = tuple((conditions[i].split(" = ", 1)[1].strip('"'), a["Value"])
                  for i, a in actions.items() if _numbered(i, "DcomcAccounts"))
    files = tuple((value(f.get("Name")), value(f.get("Source")))
                  for f in product.iter(f"{{{WIX_NS}}}File"))
    described = _described(list(actions.values()))
    return SiteContent(p["product_code"], p["upgrade_code"], p["version"], hosts, needs,
                       tuple(p["accounts"]), files, tuple(p["conditions"]), tuple(described),
                       tuple(p["registry"]))


def _described(actions: list[dict[str, str]]) -> list[tuple[str, str]]:
    """(id, its command, value or JScript call) of each CustomAction, sorted: what `expected`
    and `read` compare."""
    return sorted({(a.get("Id", ""), a.get("ExeCommand") or a.get("Value") or
                    (f"JScript {APPLY_JS}:{a['JScriptCall']}" if "JScriptCall" in a else ""))
                   for a in actions})


def _numbered(action: str, prefix: str) -> bool:
    return action.startswith(prefix) and action[len(prefix):].isdecimal()


def needs_passwords(plan: SitePlan) -> list[HostPlan]:
    """The hosts whose install asks for passwords: a package that Group Policy cannot assign
    to them (no property reaches a GPO-assigned install but through a transform)."""
    return [h for h in plan.hosts if password_accounts(h)]


def password_span(host: HostPlan) -> Span | None:
    """Where the spec asks for the first password `host` needs (a user dcomc creates, or a
    service's Log On account)."""
    spans: list[Span | None] = [r.prov.span for r in host.of_kind(LocalUser)]
    spans += [r.prov.span for r in host.of_kind(ServiceLogon)]
    return spans[0] if spans else None
