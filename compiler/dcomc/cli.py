"""The `dcomc` command line. Exit codes: 0 success, 2 errors in the input, 1 anything else."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import click

from dcomc import __version__
from dcomc.diagnostics import CONTROL_CHARS, NONCHARACTERS, CompileError, Diagnostics, escaped
from dcomc.emit.render import plan_json, plan_text
from dcomc.front import catalog
from dcomc.front.spec import json_schema
from dcomc.pipeline import Compiled, compile_file
from dcomc.plan import lint
from dcomc.windows import sd as sdcodec
from dcomc.windows import sdbinary
from dcomc_targets import Options

EXIT_INPUT = 2

SPEC_ARG = click.argument(
    "spec_path", metavar="SPEC", type=click.Path(exists=True, dir_okay=False, path_type=Path)
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dcomc")
def main() -> None:
    """Compile a site spec for secure OPC Classic DCOM into per-host artifacts."""


def _print_diagnostics(diags: Diagnostics) -> None:
    for line in diags.lines():
        click.echo(line, err=True)


def _fail(exc: CompileError) -> NoReturn:
    _print_diagnostics(exc.diagnostics)
    errors = sum(1 for d in exc.diagnostics.items if d.severity == "error")
    click.echo(f"{errors} error(s); nothing written", err=True)
    sys.exit(EXIT_INPUT)


def _compile(path: Path, *, strict: bool = False, show: bool = True) -> Compiled:
    try:
        compiled = compile_file(path, strict=strict)
    except CompileError as exc:
        _fail(exc)
    if show:
        _print_diagnostics(compiled.diagnostics)
    return compiled


STRICT = click.option("--strict", is_flag=True,
                      help="Treat lint warnings (and, for build, anything left to resolve on "
                           "the PC) as errors.")


@main.command()
@SPEC_ARG
@STRICT
def check(spec_path: Path, strict: bool) -> None:
    """Check and lint SPEC; print every problem as file:line:col, exit 2 on an error."""
    compiled = _compile(spec_path, strict=strict)
    hosts = len(compiled.plan.hosts)
    click.echo(f"{spec_path}: ok ({hosts} hosts)")


@main.command()
@SPEC_ARG
@click.option("--host", "host_names", multiple=True, help="Only this host (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def plan(spec_path: Path, host_names: tuple[str, ...], as_json: bool) -> None:
    """Show the per-host plan of resources, in the order they are applied."""
    compiled = _compile(spec_path)
    hosts = list(compiled.plan.hosts)
    if host_names:
        try:
            hosts = [compiled.plan.host(name) for name in host_names]
        except KeyError as exc:
            known = ", ".join(h.name for h in compiled.plan.hosts)
            click.echo(f"error: no host {exc} in the spec (hosts: {known})", err=True)
            sys.exit(EXIT_INPUT)
    render = plan_json if as_json else plan_text
    click.echo(render(compiled.plan, hosts), nl=as_json)


@main.command()
@SPEC_ARG
@click.option("-o", "--out", "out", type=click.Path(file_okay=False, path_type=Path),
              help="Output folder (default: build/<site>).")
@STRICT
@click.option("--replace-machine-limits", is_flag=True,
              help="Write MachineAccess/LaunchRestriction into the .reg as complete values "
                   "(Windows' default + the spec's additions) instead of merging on the PC.")
@click.option("--no-msi", is_flag=True, help="Do not build the MSIs (the WiX projects are "
              "still written).")
@click.option("--product-version", default="1.0.0", show_default=True,
              help="ProductVersion of the MSIs; raise it so that a major upgrade re-applies.")
def build(spec_path: Path, out: Path | None, strict: bool, replace_machine_limits: bool,
          no_msi: bool, product_version: str) -> None:
    """Compile SPEC into a per-host bundle of artifacts (atomically; nothing on error)."""
    from dcomc.emit import bundle
    from dcomc_targets import msi

    # --strict judges the lint warnings below, with everything else, in one list
    compiled = _compile(spec_path, show=not strict)
    out = out or bundle.default_out(compiled.plan.site)
    try:
        refusal = bundle.check_out(out, spec_path)
    except OSError as exc:
        _fail(CompileError(_unwritable(bundle, out, exc)))
    if refusal.has_errors:
        _fail(CompileError(refusal))
    options = Options(strict=strict, replace_machine_limits=replace_machine_limits,
                      product_version=_product_version(product_version))
    errors = Diagnostics()
    if strict:  # every reason to refuse, at once: lint warnings and what the PC must resolve
        lint.report(compiled.findings, errors, strict=True)
    request = None
    if not no_msi and not errors.has_errors:
        if msi.missing_tools():
            click.echo(msi.INSTALL_HINT, err=True)
        else:
            request = bundle.MsiRequest(options.product_version)
    _check_epoch(msi_dates=request is not None)
    try:
        if errors.has_errors:  # refused already: emit in memory only, for the rest of the list
            result = bundle.emit(compiled, options, spec_path.name)
        else:
            result = _build_with_progress(bundle, compiled, options, spec_path.name, out, request)
    except CompileError as exc:
        errors.extend(exc.diagnostics)
    except OSError as exc:  # the output folder cannot be written (the previous one is intact)
        errors.extend(_unwritable(bundle, out, exc))
    except msi.MsiError as exc:
        click.echo(f"error: {exc}; nothing written", err=True)
        sys.exit(1)
    if errors.has_errors:
        _fail(CompileError(errors))
    count = sum(len(h["artifacts"]) for h in result.manifest["hosts"].values())
    click.echo(f"wrote {out}: {len(compiled.plan.hosts)} hosts, {count} artifacts")


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
        click.echo(f"error: {exc}; nothing written", err=True)
        sys.exit(EXIT_INPUT)


def _unwritable(bundle: Any, out: Path, exc: OSError) -> Diagnostics:
    found: Diagnostics | None = bundle.unwritable(out, exc)
    if found is None:
        raise exc  # not about the output folder: a bug or a damaged installation, shown whole
    return found


def _product_version(text: str) -> str:
    parts = text.split(".")
    if not 2 <= len(parts) <= 4 or not all(p.isdigit() and int(p) < 65536 for p in parts) or (
            int(parts[0]) > 255 or (len(parts) > 1 and int(parts[1]) > 255)):
        click.echo(f"error: --product-version {text!r} is not an MSI version (major.minor.build, "
                   "major and minor at most 255)", err=True)
        sys.exit(EXIT_INPUT)
    return text


def _build_with_progress(bundle: Any, compiled: Any, options: Options, spec_name: str,
                         out: Path, request: Any) -> Any:
    from rich.progress import Progress

    if request is None:
        return bundle.build(compiled, options, spec_name, out)
    hosts = len(compiled.plan.hosts)
    with Progress(transient=True, disable=not sys.stderr.isatty()) as progress:
        task = progress.add_task("building MSIs", total=hosts)
        request = bundle.MsiRequest(request.version, lambda _host: progress.advance(task))
        return bundle.build(compiled, options, spec_name, out, request)


# The read-back commands check their paths themselves (one line, exit 2, also for a missing
# one): click's own check would print its usage text, and allows FIFOs and devices.
READ_PATH = click.Path(path_type=Path)


@main.command("inspect")
@click.argument("paths", nargs=-1, required=True, type=READ_PATH)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def inspect_cmd(paths: tuple[Path, ...], as_json: bool) -> None:
    """Read artifacts (or whole bundle folders) back: registry values with descriptors as
    SDDL and principal x rights, INF sections, firewall rules."""
    from dcomc.readback.compare import InputError
    from dcomc.readback.inspect import files_of, inspect_file, render_text

    results: dict[str, Any] = {}
    for path in files_of(list(paths)):
        try:
            results[str(path)] = inspect_file(path)
        except InputError as exc:  # names the file itself
            _input_error(str(exc))
        except ValueError as exc:  # UnicodeDecodeError, SDError, QuoteError... are ValueErrors
            _input_error(f"{path}: error: {exc}", prefix="")
    if as_json:
        click.echo(json_text(results))
        return
    lines: list[str] = []
    for name, content in results.items():
        lines.append(f"== {name} ({content.get('kind')})")
        rest = {k: v for k, v in content.items() if k != "kind"}
        lines += render_text(rest, 1)
    _echo_lines(lines)


MAX_MESSAGE = 500  # characters of an error line; a message may quote a huge input


def _input_error(message: str, prefix: str = "error: ") -> NoReturn:
    """A malformed input: one line on stderr (escaped: an input may hold a newline or an
    escape sequence; cut if very long) and exit 2."""
    line = escaped(prefix + message)
    click.echo(line if len(line) <= MAX_MESSAGE else line[: MAX_MESSAGE - 3] + "...", err=True)
    sys.exit(EXIT_INPUT)


def _echo_lines(lines: list[str]) -> None:
    """Text read from an input, one visible line per line: controls, bidi characters and
    lone surrogates escaped (they would drive the terminal or fail to print)."""
    click.echo("\n".join(escaped(line) for line in lines))


_JSON_UNSAFE = re.compile(f"[{CONTROL_CHARS}{NONCHARACTERS}]")


def json_text(data: Any) -> str:
    """`data` as indented JSON whose every character prints: what json leaves raw in strings
    (C1 controls, bidi and other invisible characters, lone surrogates) as \\u escapes."""
    text = json.dumps(data, indent=2, ensure_ascii=False)  # controls in strings escaped
    return _JSON_UNSAFE.sub(lambda m: m.group() if m.group() == "\n" else  # the indentation's
                            _json_escape(ord(m.group())), text)


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
            click.echo(f"error: cannot write {output}: {exc.strerror or exc}", err=True)
            sys.exit(EXIT_INPUT)
    else:
        click.echo(text, nl=False)


@main.command("catalog")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def catalog_cmd(as_json: bool) -> None:
    """List the built-in catalog of OPC products (the `product:` key)."""
    products = catalog.products()
    if as_json:
        data = {k: p.model_dump() for k, p in products.items()}
        click.echo(json.dumps(data, indent=2))
        return
    for key, p in products.items():
        flag = "verified" if p.verified else "UNVERIFIED"
        click.echo(f"{key}  [{flag}]  {p.name}")
        for field in ("progid", "clsid", "appid", "executable", "service", "bitness"):
            value = getattr(p, field)
            shown = value if value is not None else "unknown (resolved on the PC or not used)"
            click.echo(f"    {field:<11} {shown}")
        click.echo(f"    {'source':<11} {p.source}")


@main.group()
def sd() -> None:
    """Decode and encode COM security descriptors (AppID and machine Launch/Access values)."""


@sd.command("decode", context_settings={"ignore_unknown_options": True})  # "-01..." is a VALUE
@click.argument("value", metavar="HEX|@FILE|-")
@click.option("--kind", type=click.Choice(["launch", "access"]), default=None,
              help="Name the rights as launch or access rights (default: both).")
def sd_decode(value: str, kind: str | None) -> None:
    """Print the SDDL and a principal x COM rights table of a binary descriptor.

    VALUE is hex, or the `hex:` data of a `reg export` (continuation lines included), given
    inline, from @FILE, or from standard input with -.
    """
    from dcomc.readback.compare import InputError

    kinds: list[sdcodec.RightsKind] = ["launch", "access"] if kind is None else (
        ["launch"] if kind == "launch" else ["access"])
    try:
        data = sdbinary.read_hex_input(_read_value(value))
        desc = sdbinary.from_binary(data)
        sdcodec.validate_com(desc)
        sddl = sdcodec.to_sddl(desc)
        tables = [(k, sdcodec.rights_table(desc, k)) for k in kinds]
    except (sdcodec.SDError, InputError) as exc:
        _input_error(str(exc))
    lines = [sddl]
    for k, table in tables:
        lines += ["", f"{k} rights:"]
        lines += [f"  {allow:<5} {principal:<40} {', '.join(rights)}"
                  for principal, allow, rights in table]
    _echo_lines(lines)


def _read_value(value: str) -> str:
    """The text of VALUE: inline, from standard input (-) or @FILE (a regular file), in
    UTF-8 or UTF-16 with its BOM (as `reg export` writes); InputError otherwise."""
    from dcomc.readback.compare import InputError, decode_text, read_regular

    if value == "-":
        raw, where = sys.stdin.buffer.read(), "standard input"
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
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_INPUT)


@main.command("diff")
@click.argument("old", type=READ_PATH)
@click.argument("new", type=READ_PATH)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def diff_cmd(old: Path, new: Path, as_json: bool) -> None:
    """Compare two plans, each a spec (.yaml) or a built bundle folder: hosts and resources
    added (+), removed (-) and changed (~). Exit 0 when identical, 1 when they differ, 2 on
    bad input."""
    from dcomc.readback import compare

    with _comparing():
        sides = [compare.load_side(path) for path in (old, new)]
        result = compare.diff(sides[0], sides[1])
    _show(as_json, compare.diff_json(result), compare.diff_text(result))
    sys.exit(0 if result.identical else 1)


@contextmanager
def _comparing(what: str = "a spec") -> Iterator[None]:
    """Bad input of diff and drift: a clear message and exit 2."""
    from dcomc.readback import compare

    try:
        yield
    except compare.InputError as exc:
        _input_error(str(exc))
    except CompileError as exc:
        _print_diagnostics(exc.diagnostics)
        _input_error(f"{what} has errors; nothing compared")


def _show(as_json: bool, data: Any, text: str) -> None:
    if as_json:
        click.echo(json_text(data))
    else:
        _echo_lines(text.removesuffix("\n").split("\n"))


@main.command("drift")
@click.argument("spec_path", metavar="SPEC", type=READ_PATH)
@click.argument("report_path", metavar="REPORT.json", type=READ_PATH)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def drift_cmd(spec_path: Path, report_path: Path, as_json: bool) -> None:
    """Compare a PC's report (`Invoke-DcomConfig.ps1 -Mode Report -Path x.json`) with its
    host's plan: drifted, missing and extra resources, and a stale bundle. Exit 0 when there
    is no drift, 1 when there is, 2 on bad input."""
    from dcomc.readback import compare, drift

    with _comparing("the spec"):
        report = drift.load_report(report_path)
        compare.require_regular(spec_path, "the spec")  # a FIFO would block the loader
        compiled = compile_file(spec_path)
        result = drift.drift(compiled, spec_path, report)
    _show(as_json, drift.drift_json(result), drift.drift_text(result))
    sys.exit(1 if result.has_drift else 0)


@main.command("explain", context_settings={"ignore_unknown_options": True})
@click.argument("code")
@click.option("--spec", "spec_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Point each cause at this spec's hosts and resources.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def explain_cmd(code: str, spec_path: Path | None, as_json: bool) -> None:
    """Explain a DCOM error code (0x80070005, 80070005, 2147942405, -2147024891) or event id
    (10036): its likely causes, where each shows in a plan, and what to check on the PC."""
    from dcomc.explain import knowledge
    from dcomc.explain import report as explain

    found = explain.lookup(code)
    if found is None:
        click.echo(f"error: unknown code {code!r}; known codes:", err=True)
        for known in knowledge.known_codes():
            click.echo(f"  {known}", err=True)
        sys.exit(EXIT_INPUT)
    compiled = _compile(spec_path) if spec_path else None
    spec = str(spec_path) if spec_path else None
    if as_json:
        data = explain.explain_json(found[0], found[1], compiled, spec)
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        click.echo(explain.explain_text(found[0], found[1], compiled, spec), nl=False)
