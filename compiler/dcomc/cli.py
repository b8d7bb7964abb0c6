"""The `dcomc` command line. Exit codes: 0 success, 2 errors in the input, 1 anything else.

Diagnostics go to stderr as `file:line:col: severity: message [CODE]`, coloured on a terminal
only; with `--json` (and `check --format json|sarif`) they are part of the JSON on stdout, and
an error adds one summary line on stderr, with the same exit code.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import re
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import click

from dcomc import __version__
from dcomc.diagnostics import (
    CONTROL_CHARS,
    NONCHARACTERS,
    CompileError,
    Diagnostics,
    Severity,
    cut,
    escaped,
    plural,
)
from dcomc.emit.render import plan_data, plan_text
from dcomc.front import catalog
from dcomc.front.spec import json_schema
from dcomc.pipeline import Compiled, compile_file
from dcomc.plan import lint
from dcomc.windows import sd as sdcodec
from dcomc.windows import sdbinary
from dcomc_targets import Options

EXIT_INPUT = 2

# The spec commands check their SPEC themselves: a missing file or a folder is the loader's E001
# (with its place, in every output format), a FIFO or device one line (it would block the read).
SPEC_ARG = click.argument("spec_path", metavar="SPEC", type=click.Path(path_type=Path))


def _versions(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    """`--version`: dcomc's and the versions of what a build runs, for a bug report."""
    if not value or ctx.resilient_parsing:
        return
    click.echo(f"dcomc {__version__}")
    click.echo(f"Python {platform.python_version()}")
    click.echo(f"wixl {_tool_version(['wixl', '--version'])}")
    click.echo(f"msitools (msiinfo) {_tool_version(['msiinfo', '--version'])}")
    ctx.exit()


def _tool_version(command: list[str]) -> str:
    try:
        proc = subprocess.run(command, capture_output=True, text=True, errors="replace",
                              timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "not found"
    found = re.search(r"\d+(?:\.\d+)+", proc.stdout + proc.stderr)
    return found.group() if found else "(version unknown)"


class _Cli(click.Group):
    """The command group, with click's usage errors in dcomc's one-line form: click prints
    usage, a hint and the error on three lines, which a CI log or a wrapper script reading
    `error:` lines would take for three problems (issue 17: one diagnostic, one line)."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False
        try:
            code = super().main(*args, **kwargs)
        except click.exceptions.NoArgsIsHelpError as exc:
            exc.show()  # plain `dcomc`: the help, as click shows it, exit 2
            sys.exit(EXIT_INPUT)
        except click.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx is not None else "dcomc"
            _input_error(f"{exc.format_message().rstrip('.')} (see `{where} --help`)")
        except click.ClickException as exc:
            _input_error(exc.format_message())
        except click.Abort:
            _echo("aborted", err=True, fg="red")
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


@click.group(cls=_Cli, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_versions,
              help="Show the versions of dcomc, Python, wixl and msitools, and exit.")
def main() -> None:
    """Compile a site spec for secure OPC Classic DCOM into per-host artifacts."""


# --- output: colour, diagnostics, JSON ---------------------------------------------------------

SEVERITY_COLOURS = {Severity.ERROR: "red", Severity.WARNING: "yellow", Severity.NOTE: "cyan"}
DIFF_COLOURS = {"+": "green", "~": "yellow", "-": "red", "!": "red"}


def colour(err: bool = False) -> bool:
    """Colour for stdout (or stderr): NO_COLOR (any value) turns it off, FORCE_COLOR on (unless
    0 or false); otherwise only on a terminal, never into a file, a pipe or a CI log."""
    if "NO_COLOR" in os.environ:
        return False
    force = os.environ.get("FORCE_COLOR")
    if force:
        return force.lower() not in ("0", "false")
    stream = sys.stderr if err else sys.stdout
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and os.environ.get("TERM") != "dumb"


def _echo(text: str, *, err: bool = False, fg: str | None = None) -> None:
    """One line of output, in `fg` when that stream gets colour."""
    if fg and colour(err):
        click.echo(click.style(text, fg=fg, bold=fg == "red"), err=err, color=True)
    else:
        click.echo(text, err=err)


def _severity_style() -> Callable[[Severity], str] | None:
    if not colour(err=True):
        return None
    return lambda sev: click.style(str(sev), fg=SEVERITY_COLOURS[sev], bold=True)


def _print_diagnostics(diags: Diagnostics) -> None:
    style = _severity_style()
    for line in diags.lines(style=style):
        click.echo(line, err=True, color=True if style else None)


def _diag_json(diags: Diagnostics) -> list[dict[str, Any]]:
    return [d.json() for d in diags.sorted()]


def _message_json(message: str) -> dict[str, Any]:
    """An error of a command rather than of a place in a spec (a missing file, an unknown
    code), in the shape of a diagnostic."""
    return {"file": None, "line": None, "col": None, "severity": "error", "code": None,
            "message": message}


def _echo_json(data: dict[str, Any], diagnostics: list[dict[str, Any]]) -> None:
    click.echo(json_text({**data, "diagnostics": diagnostics}))


def _fail(diags: Diagnostics, *, as_json: bool = False, writes: bool = False,
          also: str | None = None) -> NoReturn:
    """Stop on errors (exit 2): every diagnostic, `also` (an error of the command rather than of
    the spec), then a count; "nothing written" only from a command that would have written."""
    count = diags.error_count + (also is not None)
    summary = plural(count, "error") + ("; nothing written" if writes else "")
    if as_json:
        _echo_json({}, _diag_json(diags) + ([_message_json(also)] if also else []))
        _echo(f"error: {summary} (listed in the JSON output)", err=True, fg="red")
    else:
        _print_diagnostics(diags)
        if also:
            _echo(f"error: {also}", err=True, fg="red")
        _echo(summary, err=True, fg="red")
    sys.exit(EXIT_INPUT)


def _compile(path: Path, *, strict: bool = False, self_contained: bool = False,
             show: bool = True, as_json: bool = False, writes: bool = False,
             flow_errors: bool = True) -> Compiled:
    """The compiled spec, its warnings printed (unless `as_json`: they go into the JSON);
    on errors, _fail."""
    _require_spec_file(path, as_json)
    try:
        compiled = compile_file(path, strict=strict, self_contained=self_contained,
                                flow_errors=flow_errors)
    except CompileError as exc:
        _fail(exc.diagnostics, as_json=as_json, writes=writes)
    if show and not as_json:
        _print_diagnostics(compiled.diagnostics)
    return compiled


def _require_spec_file(path: Path, as_json: bool) -> None:
    try:
        mode = path.stat().st_mode
    except (OSError, ValueError):
        return  # missing or unreachable: the loader's E001 says why, at the file's place
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        _input_error(f"{path}: the spec is not a regular file (a FIFO or a device)",
                     as_json=as_json)


STRICT = click.option("--strict", is_flag=True, help="Treat lint warnings as errors.")
SELF_CONTAINED = click.option(
    "--self-contained", is_flag=True,
    help="Refuse what the .reg, .inf or WiX firewall file cannot carry ahead of time (an AppID "
         "or SID known only on the PC), for sites that deploy those files alone (E401).")


@main.command()
@SPEC_ARG
@STRICT
@SELF_CONTAINED
@click.option("--format", "fmt", type=click.Choice(["text", "json", "sarif"]), default="text",
              show_default=True, help="text for people; json, or SARIF 2.1.0 for CI systems "
              "that annotate the spec (GitHub code scanning, GitLab, Azure DevOps).")
def check(spec_path: Path, strict: bool, self_contained: bool, fmt: str) -> None:
    """Check and lint SPEC; print every problem as file:line:col, exit 2 on an error."""
    if fmt == "text":
        compiled = _compile(spec_path, strict=strict, self_contained=self_contained)
        warnings = len(compiled.diagnostics)  # errors would have stopped _compile
        extra = f", {plural(warnings, 'warning')}" if warnings else ""
        _echo(f"{escaped(str(spec_path))}: ok ({plural(len(compiled.plan.hosts), 'host')}"
              f"{extra})", fg="green")
        return
    _check_machine_readable(spec_path, strict, self_contained, fmt)


def _check_machine_readable(spec_path: Path, strict: bool, self_contained: bool,
                            fmt: str) -> None:
    from dcomc.emit.sarif import sarif_log

    _require_spec_file(spec_path, as_json=False)  # JSON or SARIF only describe a spec
    hosts: int | None = None
    try:
        compiled = compile_file(spec_path, strict=strict, self_contained=self_contained)
        diags, hosts = compiled.diagnostics, len(compiled.plan.hosts)
    except CompileError as exc:
        diags = exc.diagnostics
    if fmt == "sarif":
        click.echo(json_text(sarif_log(diags)))
    else:
        _echo_json({"spec": str(spec_path), "ok": not diags.has_errors, "hosts": hosts},
                   _diag_json(diags))
    if diags.has_errors:
        _echo(f"error: {escaped(str(spec_path))}: {plural(diags.error_count, 'error')} "
              f"(listed in the {fmt.upper()} output)", err=True, fg="red")
        sys.exit(EXIT_INPUT)


@main.command()
@SPEC_ARG
@click.option("--host", "host_names", multiple=True, help="Only this host (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def plan(spec_path: Path, host_names: tuple[str, ...], as_json: bool) -> None:
    """Show the per-host plan of resources, in the order they are applied."""
    compiled = _compile(spec_path, as_json=as_json)
    hosts = list(compiled.plan.hosts)
    if host_names:
        try:
            hosts = [compiled.plan.host(name) for name in host_names]
        except KeyError as exc:
            known = ", ".join(h.name for h in compiled.plan.hosts)
            _input_error(f"no host {exc} in the spec (hosts: {known})", as_json=as_json)
    if as_json:
        _echo_json(plan_data(compiled.plan, hosts), _diag_json(compiled.diagnostics))
    else:
        click.echo(plan_text(compiled.plan, hosts), nl=False)


def _sign_option(name: str, env: str, help_text: str, **kwargs: Any) -> Any:
    return click.option(name, envvar=env, show_envvar=True, help=help_text, **kwargs)


_SIGNING = (  # outermost first; each also from its DCOMC_SIGN_* variable, for CI
    _sign_option("--sign", "DCOMC_SIGN", "Sign with this certificate: a PKCS#12 (.pfx) file, "
                 "or a PEM certificate (its chain may follow) with --sign-key.",
                 metavar="CERT", type=click.Path(dir_okay=False, path_type=Path)),
    _sign_option("--sign-key", "DCOMC_SIGN_KEY", "The PEM key of a PEM certificate, or with "
                 "--pkcs11-module the key's id or pkcs11: URI on the token.", metavar="KEY"),
    _sign_option("--sign-chain", "DCOMC_SIGN_CHAIN", "PEM intermediate certificates to "
                 "include in the signatures.", metavar="FILE",
                 type=click.Path(dir_okay=False, path_type=Path)),
    _sign_option("--sign-pass-env", "DCOMC_SIGN_PASS_ENV", "The name of the environment "
                 "variable holding the key's password or token PIN (else it is asked for "
                 "when needed); never the password itself.", metavar="VAR"),
    _sign_option("--timestamp", "DCOMC_SIGN_TIMESTAMP", "RFC 3161 timestamp server URL; "
                 "without it the signatures are reproducible.", metavar="URL"),
    _sign_option("--pkcs11-module", "DCOMC_SIGN_PKCS11_MODULE", "PKCS#11 module of a "
                 "hardware token (osslsigncode -pkcs11module).", metavar="MODULE"),
    _sign_option("--pkcs11-engine", "DCOMC_SIGN_PKCS11_ENGINE", "OpenSSL engine for the "
                 "token (osslsigncode -pkcs11engine).", metavar="ENGINE"),
)


def SIGN_OPTIONS(function: Any) -> Any:  # noqa: N802  (a decorator, named like the others)
    for option in reversed(_SIGNING):
        function = option(function)
    return function


@main.command()
@SPEC_ARG
@click.option("-o", "--out", "out", type=click.Path(file_okay=False, path_type=Path),
              help="Output folder (default: build/<site>).")
@STRICT
@SELF_CONTAINED
@click.option("--replace-machine-limits", is_flag=True,
              help="Write MachineAccess/LaunchRestriction into the .reg as complete values "
                   "(Windows' default + the spec's additions) instead of merging on the PC.")
@click.option("--no-msi", is_flag=True, help="Do not build the MSIs (the WiX projects are "
              "still written).")
@click.option("--no-reuse", is_flag=True, help="Emit every host again: reuse no host's files "
              "from the bundle in OUT (by default a host whose inputs did not change is "
              "taken from it, its files checked against its manifest).")
@click.option("--product-version", default="1.0.0", show_default=True,
              help="ProductVersion of the MSIs; raise it so that a major upgrade re-applies.")
@click.option("--site-msi", is_flag=True,
              help="Also build the site package: one MSI for every PC of the site (Group "
                   "Policy, Configuration Manager, Intune) that applies the plan of the host "
                   "named like the PC (or DCOMC_HOST).")
@SIGN_OPTIONS
def build(spec_path: Path, out: Path | None, strict: bool, self_contained: bool,
          replace_machine_limits: bool, no_msi: bool, no_reuse: bool, product_version: str,
          site_msi: bool, **signing: Any) -> None:
    """Compile SPEC into a per-host bundle of artifacts (atomically; nothing on error)."""
    from dcomc.emit import bundle
    from dcomc_targets import msi

    # --strict judges the lint warnings below, with everything else, in one list
    compiled = _compile(spec_path, show=not strict, writes=True)
    out = out or bundle.default_out(compiled.plan.site)
    try:
        refusal = bundle.check_out(out, spec_path)
    except OSError as exc:
        _fail(_unwritable(bundle, out, exc), writes=True)
    if refusal.has_errors:
        _fail(refusal, writes=True)
    options = Options(self_contained=self_contained, replace_machine_limits=replace_machine_limits,
                      product_version=_product_version(product_version),
                      site_package=site_msi)
    errors = Diagnostics()
    if site_msi:
        _warn_site_passwords(compiled)
    # every reason to refuse, at once: lint warnings and what only the PC can resolve
    judged = lint.Findings(compiled.findings if strict else [], compiled.findings.pending)
    lint.report(judged, errors, strict=strict, self_contained=self_contained)
    missing = _missing_msi_tools(no_msi)
    refused = errors.has_errors or missing is not None
    request = None if no_msi or refused else bundle.MsiRequest(options.product_version)
    _check_epoch(msi_dates=request is not None)
    settings = None if refused else _sign_settings(**signing)
    try:
        if refused:  # emit in memory only, for the rest of the list
            result = bundle.emit(compiled, options, spec_path.name)
        else:
            with _signer(settings) as signer:
                result = _build_with_progress(bundle, compiled, options, spec_path.name, out,
                                              request, signer, reuse_hosts=not no_reuse)
    except CompileError as exc:
        errors.extend(exc.diagnostics)
    except OSError as exc:  # the output folder cannot be written (the previous one is intact)
        errors.extend(_unwritable(bundle, out, exc))
    except msi.MsiError as exc:
        _not_written(exc, 1)
    if errors.has_errors or missing:
        _fail(errors, writes=True, also=missing)
    count = sum(len(h["artifacts"]) for h in result.manifest["hosts"].values())
    _echo(f"wrote {escaped(str(out))}: {plural(len(compiled.plan.hosts), 'host')}, "
          f"{plural(count, 'artifact')}", fg="green")


def _warn_site_passwords(compiled: Compiled) -> None:
    """W440: the site package asks for passwords on some PCs, which Group Policy cannot give
    (README, Fleet deployment). A warning, at the first account that needs one: the package is
    still right for the other routes."""
    from dcomc_targets import wixsite

    hosts = wixsite.needs_passwords(compiled.plan)
    if not hosts:
        return
    names = [h.name for h in hosts]
    found = Diagnostics()
    found.warning(wixsite.password_span(hosts[0]), "W440",
                  f"the site package asks for passwords at install on {plural(len(names), 'host')}"
                  f" ({', '.join(names[:5])}{', ...' if len(names) > 5 else ''}): Group Policy "
                  "cannot assign it to them; give the passwords in a transform kept off the "
                  "share, or use their own MSIs or the PowerShell entry point")
    _print_diagnostics(found)


def _not_written(exc: Exception, code: int) -> NoReturn:
    """A tool's or the environment's refusal (wixl, SOURCE_DATE_EPOCH): one line, escaped (it
    may quote a file or tool output), and exit `code`."""
    _echo(f"error: {escaped(str(exc))}; nothing written", err=True, fg="red")
    sys.exit(code)


def _missing_msi_tools(no_msi: bool) -> str | None:
    """Why the MSIs asked for (no --no-msi) cannot be made, or None: such a build fails rather
    than leave a bundle without the artifact a deployment would look for."""
    from dcomc_targets import msi

    missing = [] if no_msi else msi.missing_tools()
    if not missing:
        return None
    return f"{', '.join(missing)} not found: install msitools/wixl or pass --no-msi"


def _check_epoch(*, msi_dates: bool) -> None:
    """A malformed SOURCE_DATE_EPOCH (or one an MSI cannot store) stops the build before
    anything is emitted: a build asked to be reproducible must not silently be another one."""
    from dcomc.epoch import EpochError, source_date_epoch
    from dcomc_targets import msi

    try:
        if msi_dates:
            msi.build_epoch()  # reads SOURCE_DATE_EPOCH itself, and checks a cabinet's years
        else:
            source_date_epoch()
    except (EpochError, msi.MsiError) as exc:
        _not_written(exc, EXIT_INPUT)


def _unwritable(bundle: Any, out: Path, exc: OSError) -> Diagnostics:
    found: Diagnostics | None = bundle.unwritable(out, exc)
    if found is None:
        raise exc  # not about the output folder: a bug or a damaged installation, shown whole
    return found


def _product_version(text: str) -> str:
    parts = text.split(".")
    if not 2 <= len(parts) <= 4 or not all(p.isdigit() and int(p) < 65536 for p in parts) or (
            int(parts[0]) > 255 or int(parts[1]) > 255):
        _input_error(f"--product-version {text!r} is not an MSI version (major.minor.build, "
                     "major and minor at most 255)")
    return text


def _build_with_progress(bundle: Any, compiled: Any, options: Options, spec_name: str,
                         out: Path, request: Any, signer: Any = None, *,
                         reuse_hosts: bool = True) -> Any:
    from rich.progress import Progress

    if request is None:
        return bundle.build(compiled, options, spec_name, out, signer=signer,
                            reuse_hosts=reuse_hosts)
    hosts = len(compiled.plan.hosts)
    with Progress(transient=True, disable=not sys.stderr.isatty()) as progress:
        task = progress.add_task("building MSIs", total=hosts)
        request = bundle.MsiRequest(request.version, lambda _host: progress.advance(task))
        return bundle.build(compiled, options, spec_name, out, request, signer,
                            reuse_hosts=reuse_hosts)


# --- signing (issue 14): build --sign, sign, verify --------------------------------------------


def _sign_settings(sign: Path | None, sign_key: str | None, sign_chain: Path | None,
                   sign_pass_env: str | None, timestamp: str | None,
                   pkcs11_module: str | None, pkcs11_engine: str | None) -> Any:
    """The signing settings, with the password from the variable named or asked for; None
    without --sign. The password never comes from the command line."""
    from dcomc.emit import sign as signing

    if sign is None:
        if sign_key or sign_chain or timestamp or pkcs11_module:
            _input_error("--sign-key, --sign-chain, --timestamp and --pkcs11-* need --sign CERT")
        return None
    settings = signing.SignSettings(sign, sign_key, sign_chain, None, timestamp,
                                    pkcs11_module, pkcs11_engine)
    if pkcs11_module and not sign_key:
        _input_error("--pkcs11-module needs --sign-key: the key's id or pkcs11: URI")
    if sign_pass_env:
        password = os.environ.get(sign_pass_env)
        if password is None:
            _input_error(f"--sign-pass-env {sign_pass_env}: that environment variable is not "
                         "set [E410]")
        return dataclasses.replace(settings, password=password)
    try:
        needed = signing.needs_password(settings)
    except signing.SignError as exc:
        _input_error(f"{exc} [{exc.code}]")
    if not needed:
        return settings
    if not sys.stdin.isatty():
        _input_error("the signing key is protected: name the environment variable holding its "
                     "password with --sign-pass-env [E410]")
    return dataclasses.replace(settings, password=click.prompt(
        "Password of the signing key", hide_input=True, err=True))


@contextmanager
def _signer(settings: Any) -> Iterator[Any]:
    """A Signer for `settings` (None: None); a signing error is one line, exit 2."""
    from dcomc.emit import sign as signing

    if settings is None:
        yield None
        return
    try:
        with signing.Signer(settings) as signer:
            yield signer
    except signing.SignError as exc:
        _echo(escaped(f"error: {exc} [{exc.code}]; nothing written"), err=True, fg="red")
        sys.exit(EXIT_INPUT)


# The read-back commands check their paths themselves (one line, exit 2, also for a missing
# one): click's own check would print its usage text, and allows FIFOs and devices.
READ_PATH = click.Path(path_type=Path)


@main.command("inspect")
@click.argument("paths", nargs=-1, required=True, type=READ_PATH)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def inspect_cmd(paths: tuple[Path, ...], as_json: bool) -> None:
    """Read artifacts (or whole bundle folders) back: registry values with descriptors as
    SDDL and principal x rights, INF sections, firewall rules."""
    from dcomc.readback.files import InputError, is_folder
    from dcomc.readback.inspect import files_of, inspect_file, render_text
    from dcomc_targets.readerror import ReadError

    named = {path for path in paths if not is_folder(path)}
    results: dict[str, Any] = {}
    failed: list[str] = []  # one line each; every file is read before any is reported
    for path in files_of(list(paths)):
        try:
            results[str(path)] = inspect_file(path)
        except InputError as exc:  # names the file itself
            failed.append(f"error: {exc}")
        except ReadError as exc:  # knows its line and column
            failed.append(exc.located(str(path)))
        except ValueError as exc:  # UnicodeDecodeError, SDError, QuoteError... are ValueErrors
            failed.append(f"{path}: error: {exc}")
        else:
            if path in named and results[str(path)].get("kind") == "unknown":
                del results[str(path)]
                failed.append(f"error: {path}: not an artifact dcomc reads ({KNOWN_ARTIFACTS})")
    if as_json:
        _echo_json({"files": results}, [_message_json(cut(line)) for line in failed])
    else:
        lines: list[str] = []
        for name, content in results.items():
            lines.append(f"== {name} ({content.get('kind')})")
            rest = {k: v for k, v in content.items() if k != "kind"}
            lines += render_text(rest, 1)
        if lines:
            _echo_lines(lines)
    for line in failed:
        _echo(escaped(cut(line)), err=True, fg="red")
    if len(failed) + len(results) > 1 and failed:  # one file: its line says it all
        _echo(f"error: {plural(len(failed), 'file')} of {len(results) + len(failed)} not read",
              err=True, fg="red")
    if failed:
        sys.exit(EXIT_INPUT)


# What `inspect` recognises; a file of a bundle folder that is none of them is listed as unknown
KNOWN_ARTIFACTS = ("a .reg, secedit .inf, netsh script, WiX .wxs, PowerShell .psd1/.psm1/.ps1, "
                   ".msi or manifest.json")


def _input_error(message: str, prefix: str = "error: ", *, as_json: bool = False) -> NoReturn:
    """A malformed input: one line on stderr (escaped: an input may hold a newline or an
    escape sequence; cut if very long) and exit 2; with `as_json`, the JSON too."""
    message = cut(message)
    if as_json:
        _echo_json({}, [_message_json(message)])
    _echo(cut(escaped(prefix + message)), err=True, fg="red")
    sys.exit(EXIT_INPUT)


def _echo_lines(lines: list[str], style: Callable[[str], str | None] | None = None) -> None:
    """Text read from an input, one visible line per line: controls, bidi characters and
    lone surrogates escaped (they would drive the terminal or fail to print). `style` picks
    a colour per line, used on a terminal only."""
    if style is None or not colour():
        click.echo("\n".join(escaped(line) for line in lines))
        return
    shown = [escaped(line) for line in lines]
    click.echo("\n".join(click.style(line, fg=fg) if (fg := style(line)) else line
                         for line in shown), color=True)


def _diff_colour(line: str) -> str | None:
    """+ added (green), ~ changed (yellow), - removed and ! tampered (red), at any indent."""
    sign = line.lstrip()[:2]
    return DIFF_COLOURS.get(sign[0]) if len(sign) == 2 and sign[1] == " " else None


# The line feed is left out: the only raw one in json's output is the indentation's (json
# escapes those in strings), and matching each of a large output's million lines cost seconds.
_JSON_CONTROLS = CONTROL_CHARS.replace(r"\x00-\x1f", r"\x00-\x09\x0b-\x1f", 1)
assert _JSON_CONTROLS != CONTROL_CHARS, "CONTROL_CHARS no longer starts with the C0 range"
_JSON_UNSAFE = re.compile(f"[{_JSON_CONTROLS}{NONCHARACTERS}]")
# The same class's ASCII members: matching the whole class costs about 20x more per character
# (2 s for the 44 MB of a 10,000-host plan), and most outputs are ASCII (str.isascii is cheap).
_JSON_UNSAFE_ASCII = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")
# A text with a few non-ASCII characters (a `§` in every resource's guide section) is searched
# for them with this small class, and matched against the whole class only if one is unsafe
# (`dcomc inspect --json` of 1,000 hosts: 1.2 of its 5.6 s went to the whole class).
_NON_ASCII = re.compile(r"[^\x00-\x7f]")


def json_text(data: Any) -> str:
    """`data` as indented JSON whose every character prints: what json leaves raw in strings
    (C1 controls, bidi and other invisible characters, lone surrogates) as \\u escapes."""
    text = json.dumps(data, indent=2, ensure_ascii=False)  # controls in strings escaped
    unsafe = _JSON_UNSAFE_ASCII
    if not text.isascii() and any(_JSON_UNSAFE.match(char)  # each distinct one, once
                                  for char in set(_NON_ASCII.findall(text))):
        unsafe = _JSON_UNSAFE
    return unsafe.sub(lambda m: _json_escape(ord(m.group())), text)


def _json_escape(code: int) -> str:
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


@main.command()
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write to this file instead of standard output.")
def schema(output: Path | None) -> None:
    """Print the JSON Schema of the spec format (for `# yaml-language-server: $schema=`)."""
    text = json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"
    if output:
        try:
            output.write_text(text, encoding="utf-8")
        except OSError as exc:
            _input_error(f"cannot write {output}: {exc.strerror or exc}")
    else:
        click.echo(text, nl=False)


@main.command("catalog")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--from", "from_captures", is_flag=True,
              help="Print catalog entries (unverified) for the servers the CAPTUREs found.")
@click.argument("capture_paths", metavar="[CAPTURE.json...]", nargs=-1, type=READ_PATH)
def catalog_cmd(as_json: bool, from_captures: bool, capture_paths: tuple[Path, ...]) -> None:
    """List the built-in catalog of OPC products (the `product:` key); with --from, catalog
    entries for the OPC servers that captures of PCs found (`-Mode Capture`), marked
    unverified, for contributors to check and add."""
    if from_captures or capture_paths:
        _captured_catalog(capture_paths, from_captures, as_json)
        return
    products = catalog.products()
    if as_json:
        _echo_json({"products": {k: p.model_dump() for k, p in products.items()}}, [])
        return
    for key, p in products.items():
        flag = "verified" if p.verified else "UNVERIFIED"
        click.echo(f"{key}  [{flag}]  {p.name}")
        for field in ("progid", "clsid", "appid", "executable", "service", "bitness"):
            value = getattr(p, field)
            shown = value if value is not None else "unknown (resolved on the PC or not used)"
            click.echo(f"    {field:<11} {shown}")
        click.echo(f"    {'source':<11} {p.source}")


def _captured_catalog(paths: tuple[Path, ...], from_captures: bool, as_json: bool) -> None:
    """`catalog --from`: entries for the captured servers and OPCEnum (exit 2 on a bad
    capture, on captures without --from and on --from without captures)."""
    if not from_captures or not paths:
        _input_error("catalog: give --from with one or more captures (dcomc catalog --from "
                     "CAPTURE.json...)", as_json=as_json)
    with _comparing(as_json=as_json):
        captures = _captures(paths)
    found = [(c.computer, str(c.data.get("Time")), server) for c in captures
             for server in [*c.servers(), c.data.get("OpcEnum")] if isinstance(server, dict)]
    entries = catalog.captured_entries(found)
    if as_json:
        _echo_json({"products": entries}, [])
    else:
        click.echo(catalog.entries_text(entries), nl=False)


@main.group()
def sd() -> None:
    """Decode and encode COM security descriptors (AppID and machine Launch/Access values)."""


@sd.command("decode", context_settings={"ignore_unknown_options": True})  # "-01..." is a VALUE
@click.argument("value", metavar="HEX|@FILE|-")
@click.option("--kind", type=click.Choice(["launch", "access"]), default=None,
              help="Name the rights as launch or access rights (default: both).")
def sd_decode(value: str, kind: str | None) -> None:
    """Print the SDDL and a principal x COM rights table of a binary descriptor.

    VALUE is hex, the `hex:` value of a `reg export` (continuation lines included, or the
    whole exported file), or a `reg query` output line (`Name  REG_BINARY  0100...`), given
    inline, from @FILE, or from standard input with -. Descriptors with a SACL or ACEs COM
    does not use are shown ACE by ACE.
    """
    from dcomc.readback.files import InputError

    kinds: list[sdcodec.RightsKind] = ["launch", "access"] if kind is None else (
        ["launch"] if kind == "launch" else ["access"])
    try:
        data = sdbinary.read_hex_input(_read_value(value))
        desc = sdbinary.read_binary(data)  # any descriptor: a SACL, every ACE type
        sddl = sdcodec.to_sddl(desc)
        com = sdcodec.dacl_is_com(desc)
        tables = [(k, sdcodec.rights_table(desc, k)) for k in kinds] if com else []
    except (sdcodec.SDError, InputError) as exc:
        _input_error(str(exc))
    lines = [sddl]
    for k, table in tables:
        lines += ["", f"{k} rights:"]
        lines += [f"  {allow:<5} {principal:<40} {', '.join(rights)}"
                  for principal, allow, rights in table]
    # a SACL, or a DACL beyond COM's rules: every such ACE as it is, none left out
    items = [i for i in sdcodec.describe(desc, kinds[0]) if not com or i["acl"] == "SACL"]
    if items:
        lines += ["", "SACL:" if com else "ACEs (not a launch/access ACL as COM reads it):"]
        lines += [_ace_line(item) for item in items]
    _echo_lines(lines)


def _ace_line(item: dict[str, Any]) -> str:
    detail = item.get("rights") or item.get("policy") or []
    return (f"  {item['acl']} {item['type']:<16} {item['principal']:<40} {item['mask']}"
            f"{' ' + item['flags'] if item['flags'] else ''}"
            f"{' (' + ', '.join(detail) + ')' if detail else ''}")


def _read_value(value: str) -> str:
    """The text of VALUE: inline, from standard input (-) or @FILE (a regular file), in
    UTF-8 or UTF-16 with its BOM (as `reg export` writes); InputError otherwise. Either
    file is read up to the same cap (files.MAX_BYTES): a pipe may never end."""
    from dcomc.readback.files import MAX_BYTES, InputError, decode_text, read_regular

    if value == "-":
        raw, where = sys.stdin.buffer.read(MAX_BYTES + 1), "standard input"
        if len(raw) > MAX_BYTES:  # read_regular's words for @FILE
            raise InputError(f"{where}: the value is larger than {MAX_BYTES // 2**20} MiB; "
                             "refused")
    elif value.startswith("@"):
        raw, where = read_regular(Path(value[1:]), "the value file"), value[1:]
    else:
        return value
    try:
        return decode_text(raw)
    except UnicodeDecodeError as exc:
        raise InputError(f"{where}: not UTF-8 or UTF-16 text ({exc})") from None


@sd.command("encode")
@click.argument("sddl")
def sd_encode(sddl: str) -> None:
    """Print the self-relative binary form of SDDL as hex (the layout Windows writes)."""
    try:
        click.echo(sdbinary.sddl_to_binary(sddl).hex())
    except sdcodec.SDError as exc:
        _input_error(str(exc))


@main.command("diff")
@click.argument("old", type=READ_PATH)
@click.argument("new", type=READ_PATH)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def diff_cmd(old: Path, new: Path, as_json: bool) -> None:
    """Compare two plans, each a spec (.yaml) or a built bundle folder: hosts and resources
    added (+), removed (-) and changed (~). Exit 0 when identical, 1 when they differ, 2 on
    bad input."""
    from dcomc.readback import compare

    with _comparing(as_json=as_json):
        sides = [compare.load_side(path) for path in (old, new)]
        result = compare.diff(sides[0], sides[1])
    _show(as_json, compare.diff_json(result), compare.diff_text(result), _diff_colour)
    sys.exit(0 if result.identical else 1)


@contextmanager
def _comparing(what: str = "a spec", *, as_json: bool = False) -> Iterator[None]:
    """Bad input of diff and drift: a clear message and exit 2 (with --json: the spec's
    diagnostics in the JSON, the one line on stderr)."""
    from dcomc.readback.files import InputError

    try:
        yield
    except InputError as exc:
        _input_error(str(exc), as_json=as_json)
    except CompileError as exc:
        message = f"{what} has errors; nothing compared"
        if as_json:
            _echo_json({}, [*_diag_json(exc.diagnostics), _message_json(message)])
        else:
            _print_diagnostics(exc.diagnostics)
        _echo(f"error: {message}", err=True, fg="red")
        sys.exit(EXIT_INPUT)


def _show(as_json: bool, data: Any, text: str,
          style: Callable[[str], str | None] | None = None) -> None:
    if as_json:
        _echo_json(data, [])
    else:
        _echo_lines(text.removesuffix("\n").split("\n"), style)


@main.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path), default="site.yaml")
@click.option("--force", is_flag=True, help="Replace an existing file.")
def init(path: Path, force: bool) -> None:
    """Write a commented starter spec (default site.yaml) that passes `dcomc check`."""
    from dcomc.front.init import init_text

    if path.exists() and not force:
        _input_error(f"{path} exists; pass --force to replace it")
    try:
        path.write_text(init_text(), encoding="utf-8", newline="\n")
    except OSError as exc:
        _input_error(f"cannot write {path}: {exc.strerror or exc}")
    click.echo(f"wrote {escaped(str(path))}: edit it, then run `dcomc check "
               f"{escaped(str(path))}`")


@main.command("drift")
@click.argument("spec_path", metavar="SPEC", type=READ_PATH)
@click.argument("report_paths", metavar="REPORT...", nargs=-1, required=True, type=READ_PATH)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def drift_cmd(spec_path: Path, report_paths: tuple[Path, ...], as_json: bool) -> None:
    """Compare a PC's report (`Invoke-DcomConfig.ps1 -Mode Report -Path x.json`) with its
    host's plan: drifted, missing and extra resources, and a stale bundle. A folder of reports
    (or several report files), one per PC, is the whole site: each host in sync, drifted or
    without a report, matched by the computer name in each report, and reports of computers
    the spec does not have. Exit 0 when there is no drift, 1 when there is, 2 on bad input."""
    from dcomc.readback import drift
    from dcomc.readback.files import require_regular

    with _comparing("the spec", as_json=as_json):
        require_regular(spec_path, "the spec")  # a FIFO would block the loader
        compiled = compile_file(spec_path)
        outcome = drift.drift_reports(compiled, spec_path, report_paths)
    _show(as_json, outcome.data, outcome.text)
    sys.exit(1 if outcome.has_drift else 0)


@main.command("explain", context_settings={"ignore_unknown_options": True})
@click.argument("code")
@click.option("--spec", "spec_path", type=click.Path(path_type=Path),
              help="Point each cause at this spec's hosts and resources.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def explain_cmd(code: str, spec_path: Path | None, as_json: bool) -> None:
    """Explain a DCOM error code (0x80070005, 80070005, 2147942405, -2147024891) or event id
    (10036): its likely causes, where each shows in a plan, and what to check on the PC."""
    from dcomc.explain import knowledge
    from dcomc.explain import report as explain

    found = explain.lookup(code)
    if found is None:
        _unknown_code(code, knowledge.known_codes(), as_json)
    # the flow verifier's findings are what explain explains, not a reason to stop
    compiled = _compile(spec_path, as_json=as_json, flow_errors=False) if spec_path else None
    spec = str(spec_path) if spec_path else None
    if as_json:
        data = explain.explain_json(found[0], found[1], compiled, spec)
        _echo_json(data, _diag_json(compiled.diagnostics) if compiled else [])
    else:
        click.echo(explain.explain_text(found[0], found[1], compiled, spec), nl=False)


def _unknown_code(code: str, known: list[str], as_json: bool) -> NoReturn:
    message = f"unknown code {code!r}"
    if as_json:
        _echo_json({"known_codes": known}, [_message_json(message)])
        _echo(escaped(f"error: {message}"), err=True, fg="red")
    else:
        _echo(escaped(f"error: {message}; known codes:"), err=True, fg="red")
        for entry in known:
            click.echo(f"  {entry}", err=True)
    sys.exit(EXIT_INPUT)


@main.command("sign")
@click.argument("bundle_path", metavar="BUNDLE", type=READ_PATH)
@click.option("--spec", "spec_path", required=True, type=click.Path(path_type=Path),
              help="The spec the bundle was built from (its review is rendered again).")
@SIGN_OPTIONS
def sign_cmd(bundle_path: Path, spec_path: Path, **signing: Any) -> None:
    """Sign a bundle built earlier without --sign: the same bytes as `build --sign`."""
    from dcomc.emit import bundle
    from dcomc_targets import msi

    if signing.get("sign") is None:
        _input_error("dcomc sign needs --sign CERT (or DCOMC_SIGN)")
    if bundle.check_out(bundle_path).has_errors or not (bundle_path / bundle.MANIFEST).is_file():
        _input_error(f"{bundle_path}: not a dcomc bundle (no {bundle.MANIFEST})")
    compiled = _compile(spec_path, writes=True)
    with _signer(_sign_settings(**signing)) as signer:
        try:
            result = bundle.sign_existing(bundle_path, compiled, signer)
        except msi.MsiError as exc:  # the MSIs are built again from the signed scripts
            _not_written(exc, 1)
    count = sum(len(h["artifacts"]) for h in result.manifest["hosts"].values())
    _echo(f"signed {escaped(str(bundle_path))}: {plural(count, 'artifact')}, by "
          f"{escaped(signer.info.subject)} (sha256 {signer.info.sha256})", fg="green")


@main.command("verify")
@click.argument("bundle_path", metavar="BUNDLE", type=READ_PATH)
@click.option("--ca", type=READ_PATH, help="Trust the roots in this PEM file, for the "
              "signer and the timestamp server (default: the system's certificate store).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def verify_cmd(bundle_path: Path, ca: Path | None, as_json: bool) -> None:
    """Check a signed bundle before installing it: every file listed and unchanged, every
    signature valid and by one code-signing certificate that chains to --ca. Exit 0 when all
    hold, 1 when a check fails (each named), 2 on bad input."""
    from dcomc.emit.sign import SignError
    from dcomc.readback import verify
    from dcomc.readback.files import require_regular

    with _comparing("the bundle", as_json=as_json):
        if ca is not None:
            require_regular(ca, "the CA file")
        try:
            result = verify.verify(bundle_path, ca)
        except SignError as exc:
            _input_error(f"{exc} [{exc.code}]", as_json=as_json)
    _show(as_json, result.json(), result.text(), _verify_colour)
    sys.exit(0 if result.ok else 1)


def _verify_colour(line: str) -> str | None:
    if line.startswith("FAIL") or line.endswith("do not install this bundle"):
        return "red"
    return "green" if line.startswith("ok:") else None


# --- import (issue 16): captures of brownfield PCs -> a starting spec -----------------------------

def _captures(paths: tuple[Path, ...]) -> list[Any]:
    """The captures, or every problem of all of them, one line each on stderr, before the
    summary line `_comparing` prints (exit 2, nothing written)."""
    from dcomc.readback.capture import CaptureError, load_captures

    try:
        return load_captures(paths)
    except CaptureError as exc:
        for line in exc.details:
            _echo(cut(escaped(line)), err=True, fg="red")
        raise


@main.command("import")
@click.argument("capture_paths", metavar="CAPTURE...", nargs=-1, required=True, type=READ_PATH)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the spec to this file (default: standard output).")
@click.option("--force", is_flag=True, help="Replace an existing output file.")
def import_cmd(capture_paths: tuple[Path, ...], output: Path | None, force: bool) -> None:
    """Write a commented site spec reproducing what the captures of brownfield PCs show
    (`Invoke-DcomConfig.ps1 -Mode Capture -Path x.json`, docs/capture.md), then check it: its
    lints say at once what is insecure in the running site. Exit 2 on a bad capture."""
    import tempfile

    from dcomc.front.importer import import_text

    with _comparing("the imported spec"):
        captures = _captures(capture_paths)
        seen: dict[str, Path] = {}
        for capture in captures:
            if capture.computer.upper() in seen:
                _input_error(f"{capture.path}: a second capture of {capture.computer} "
                             f"(also {seen[capture.computer.upper()]}): give one per PC")
            seen[capture.computer.upper()] = capture.path
    text = import_text(captures)
    if output is not None and output.exists() and not force:
        _input_error(f"{output} exists; pass --force to replace it")
    with tempfile.TemporaryDirectory() as folder:
        target = output or Path(folder) / "imported.yaml"
        try:
            target.write_text(text, encoding="utf-8", newline="\n")
        except OSError as exc:
            _input_error(f"cannot write {target}: {exc.strerror or exc}")
        if output is None:
            click.echo(text, nl=False)
        compiled = _compile(target)
    found = len(compiled.diagnostics)
    where = escaped(str(output)) if output else "the spec"
    _echo(f"{where}: {plural(len(compiled.plan.hosts), 'host')} imported, passes check"
          + (f" with {plural(found, 'warning')}" if found else ""), err=output is None,
          fg="green")
