"""The review report: self-contained HTML and Markdown naming every host, opening and lint."""

from __future__ import annotations

import copy
import hashlib
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jinja2 import Environment, FileSystemLoader
from lxml import etree

from dcomc.emit import bundle, review
from dcomc.emit.review import md_escape
from dcomc.pipeline import Compiled, compile_file
from dcomc.plan.classes import host_classes
from dcomc.plan.model import FirewallRule, FirewallRuleGroup
from dcomc_targets import EmitContext, Options
from tools import require

ROOT = Path(__file__).resolve().parents[2]


def reports(compiled: Compiled) -> dict[str, bytes]:
    files = bundle.emit(compiled, Options(), "site.yaml").files
    return {"html": files["review.html"], "md": files["REVIEW.md"]}


@pytest.mark.parametrize("name", ["plant7-workgroup.yaml", "plant9-domain.yaml"])
def test_html_names_every_host_opening_and_lint(name: str) -> None:
    compiled = compile_file(ROOT / "examples" / name)
    html = reports(compiled)["html"]
    doc = etree.fromstring(html, etree.HTMLParser())
    text = " ".join(doc.itertext())
    for host in compiled.plan.hosts:
        assert doc.xpath(f"//tr[@id='host-{host.name}']"), host.name
        for rule in host.of_kind(FirewallRule):
            assert rule.name in text
        for group in host.of_kind(FirewallRuleGroup):
            assert group.group in text
    for finding in compiled.findings:
        assert finding.code in text and finding.message in text
    assert doc.xpath("//svg//line"), "the flow diagram has arrows"
    # self-contained: no script, stylesheet link, image or any external reference
    assert not doc.xpath("//script | //link | //img | //iframe")
    assert b"http://" not in html.replace(b'xmlns="http://www.w3.org/2000/svg"', b"")
    assert b"https://" not in html


def test_permission_matrix_and_secrets() -> None:
    compiled = compile_file(ROOT / "examples" / "plant7-workgroup.yaml")
    doc = etree.fromstring(reports(compiled)["html"], etree.HTMLParser())
    heading = doc.xpath("//h3[text()='Permissions: AppID kepware']")[0]
    table = heading.getnext()
    rows = {r.xpath("string(td[1])"): [c.text for c in r.xpath("td")[1:]]
            for r in table.xpath("tr[td]")}
    assert rows["OPC Users (SID resolved on the PC)"] == ["✓"] * 6
    assert "Passwords of: opcsvc, opcuser" in " ".join(doc.itertext())


def test_the_apply_step_keeps_passwords_off_command_lines() -> None:
    """With MSIs built, each class with passwords names the properties and where they may be
    given: asked for at install, in a transform kept off the share or typed at the PC, never
    in a command line (a deployment tool's install command is stored and audited)."""
    compiled = compile_file(ROOT / "examples" / "plant7-workgroup.yaml")
    ctx = EmitContext(compiled.plan, Options(), "site.yaml", compiled.sha256)
    files = review.render(review.build_view(compiled.plan, ctx, compiled.findings, {},
                                            msis_built=True))
    html = "".join(etree.fromstring(files["review.html"], etree.HTMLParser()).itertext())
    for report in (html, files["REVIEW.md"].decode().replace("`", "")):
        text = " ".join(report.split())
        assert ("DCOMC_PASSWORD_2 = password of opcuser (asked for at install: in a transform "
                "kept off the share, or typed at the PC; never in a command line, see "
                'docs/deployment.md, "Passwords and Group Policy")') in text
        assert "install command" not in text


def test_markdown_has_the_same_content_and_escapes_values(tmp_path: Path) -> None:
    spec = yaml.safe_load((ROOT / "examples" / "plant7-workgroup.yaml").read_text())
    spec = copy.deepcopy(spec)
    name = "OPC `Users`_#1"
    spec["accounts"]["groups"][name] = spec["accounts"]["groups"].pop("OPC Users")
    # the same rights as the example's group, so that every flow still verifies
    for acl in (spec["servers"]["kepware"]["launch"], spec["servers"]["kepware"]["access"],
                spec["machine"]["server"]["dcom"]["launch_limits"]):
        acl[name] = acl.pop("OPC Users")
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    md = reports(compile_file(path))["md"].decode()
    # a value with markup characters is a code span whose fence outlasts its backticks
    assert "``local group 'OPC `Users`_#1'``" in md and "OPC \\`" not in md
    for line in md.splitlines():
        if line.startswith("| ") and "Principal" not in line:
            cells = line.count(" |")
            assert cells >= 2, line
    assert "## 7.1 Class 1: server, 1 host" in md


def test_md_escape() -> None:
    assert md_escape("a|b`c*d_e<f>[g]\nh") == "a\\|b\\`c\\*d\\_e\\<f\\>\\[g\\] h"


def test_review_renders_in_headless_chromium(tmp_path: Path) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    require(browser is not None, "chromium")
    assert browser is not None
    from PIL import Image

    html = tmp_path / "review.html"
    html.write_bytes(reports(compile_file(ROOT / "examples" / "plant9-domain.yaml"))["html"])
    png = tmp_path / "review.png"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
                    "--window-size=1280,1600", f"--screenshot={png}", html.as_uri()],
                   capture_output=True, timeout=120, check=False)
    assert png.is_file(), "chromium wrote no screenshot"
    image = Image.open(png).convert("RGB")
    colors = image.getcolors(maxcolors=1_000_000) or []
    assert len(colors) > 20, "the page rendered blank"
    dark = sum(count for count, (r, g, b) in colors if r + g + b < 200)
    assert dark > 500, "no text on the page"


def test_compiled_templates_are_cached_only_in_a_safe_folder(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The bytecode cache lives in a private temp folder; where Jinja finds none safe (another
    owner, wrong mode), the templates are compiled each run instead of failing the build."""
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    cache = review._bytecode_cache.__wrapped__()
    assert cache is not None
    folder = tmp_path / f"_jinja2-cache-{os.getuid()}"
    assert folder.is_dir() and folder.stat().st_mode & 0o777 == 0o700
    # a folder of this name that another user owns is refused
    monkeypatch.setattr("os.getuid", lambda: tmp_path.stat().st_uid + 1)
    assert review._bytecode_cache.__wrapped__() is None


def test_a_damaged_or_unwritable_template_cache_never_fails_a_render(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "page.j2").write_text("{% for x in items %}<{{ x }}>{% endfor %}")
    store = tmp_path / "cache"
    store.mkdir()

    def render() -> str:
        env = Environment(loader=FileSystemLoader(str(tmp_path / "t")),
                          bytecode_cache=review._TolerantCache(str(store)))
        return env.get_template("page.j2").render(items=[1, 2])

    assert render() == "<1><2>"
    entries = list(store.iterdir())
    assert len(entries) == 1  # compiled once, kept
    assert render() == "<1><2>" and list(store.iterdir()) == entries  # and used
    # another dcomc (its environment options) or Jinja version: another entry, never this one
    with monkeypatch.context() as other:
        other.setattr(review._TolerantCache, "SALT", "another version")
        assert render() == "<1><2>"
        assert len(list(store.iterdir())) == 2
    (set(store.iterdir()) - set(entries)).pop().unlink()
    for damage in (b"", b"j2\x00garbage", entries[0].read_bytes()[:40]):
        entries[0].write_bytes(damage)
        assert render() == "<1><2>"
    entries[0].unlink()

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("tempfile.NamedTemporaryFile", full)
    assert render() == "<1><2>"
    assert list(store.iterdir()) == []


# --- hostile values cannot reshape REVIEW.md (issue 17) ----------------------------------------

HOSTILE_MD = [
    "~~~", "```", "~~~ rest", "&rlm;", "&#x202E;x&amp;", "    indented code", " - item", "- item",
    "+ item", "* item", "1. one", "2) two", "---", "===", "***", "> quote", "# heading",
    "<b>bold</b>", "<!-- c -->", "[a](http://evil.example)", "![i](x.png)", "[x]: /url",
    "http://evil.example/x", "https://evil.example", "www.evil.example", "opc@evil.example",
    "| a | b |", "a\\", "\\*x\\*", "`code`", "**b** _i_ ~~s~~", "<http://x.example>",
]


@pytest.fixture(scope="module")
def plant7_view() -> Any:
    md = pytest.importorskip("markdown_it")
    compiled = compile_file(ROOT / "examples" / "plant7-workgroup.yaml")
    ctx = EmitContext(compiled.plan, Options(), "site.yaml", compiled.sha256)
    view = review.build_view(compiled.plan, ctx, compiled.findings, {})
    parser = md.MarkdownIt("commonmark").enable("table").enable("strikethrough")
    return view, parser


def _shape(parser: Any, text: str) -> tuple[list[str], list[str]]:
    """The block and inline token types of a Markdown text, and its literal text pieces: a
    code span is literal text (the report writes values with markup characters as one), so
    it counts as "text" in the shape."""
    kinds: list[str] = []
    texts: list[str] = []
    for token in parser.parse(text):
        kinds.append(token.type)
        for child in token.children or []:
            literal = child.type in ("text", "code_inline")
            kinds.append("text" if literal else child.type)
            if literal:
                texts.append(child.content)
    return kinds, texts


@pytest.mark.parametrize("value", HOSTILE_MD)
def test_no_value_reshapes_the_markdown(plant7_view: Any, value: str) -> None:
    view, parser = plant7_view
    placed = copy.deepcopy(view)
    base = copy.deepcopy(view)
    base["description"] = "plain"
    placed["description"] = value  # the first line of a paragraph
    placed["classes"][0].manual.append(value)  # a list item
    base["classes"][0].manual.append("plain")
    placed["classes"][0].openings[0]["remote"] = value  # a table cell
    base["classes"][0].openings[0]["remote"] = "plain"
    md_text = review.render(placed)["REVIEW.md"].decode()
    kinds, texts = _shape(parser, md_text)
    base_kinds, _ = _shape(parser, review.render(base)["REVIEW.md"].decode())
    assert [k for k in kinds if k != "text"] == [k for k in base_kinds if k != "text"]
    # outside a table GFM keeps the backslash of a code span's `\|` (cells need it): shown
    assert sum(t.count(value) + t.count(value.replace("|", "\\|")) for t in texts) >= 3, texts[:3]


@given(st.text(st.sampled_from("~`&;#<>[]()!*_-+=|\\:/.@ 1aw"), min_size=1, max_size=12))
@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_no_punctuation_reshapes_the_description(plant7_view: Any, value: str) -> None:
    view, parser = plant7_view
    placed = copy.copy(view)
    placed["description"] = value
    kinds, _texts = _shape(parser, review.render(placed)["REVIEW.md"].decode())
    base = copy.copy(view)
    base["description"] = "plain"
    base_kinds, _ = _shape(parser, review.render(base)["REVIEW.md"].decode())
    assert [k for k in kinds if k != "text"] == [k for k in base_kinds if k != "text"]


def test_md_escape_breaks_bare_links_and_line_start_markers() -> None:
    assert md_escape("see http://x.example, www.y.example, a@b.example &rlm;") == (
        "see http:\\//x.example, www\\.y.example, a\\@b.example \\&rlm;")
    assert md_escape("- x") == "\\- x" and md_escape("12) x") == "12\\) x"
    assert md_escape("10.7.3.10") == "10.7.3.10" and md_escape("-x") == "-x"
    assert md_escape("  two") == "&#32; two"


# --- host classes and the approval document (issue 13, items 1 and 2) --------------------------

def many_hmis(tmp_path: Path, count: int, **changes: Any) -> Path:
    """plant7 grown to `count` hosts by copies of HMI01; `changes` replace hosts' entries."""
    spec = yaml.safe_load((ROOT / "examples" / "plant7-workgroup.yaml").read_text())
    for i in range(3, count):
        spec["hosts"][f"HMI{i:03d}"] = {"address": f"10.7.{4 + i // 250}.{i % 250 + 1}",
                                        "clients": ["hmi"]}
    spec["hosts"].update(changes)
    path = tmp_path / "many.yaml"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    return path


def test_host_classes_group_hosts_whose_plans_differ_only_in_name_and_address(
        tmp_path: Path) -> None:
    plan = compile_file(ROOT / "examples" / "plant7-workgroup.yaml").plan
    classes = host_classes(plan)
    assert [[h.name for h in c.hosts] for c in classes] == [["SCADA01"], ["HMI01", "HMI02"]]
    assert [c.number for c in classes] == [1, 2] and classes[0].servers
    assert classes[1].resources == plan.host("HMI02").resources
    # plant9: every host plans something else, so every host is its own class
    plan9 = compile_file(ROOT / "examples" / "plant9-domain.yaml").plan
    assert sorted(len(c.hosts) for c in host_classes(plan9)) == [1] * len(plan9.hosts)
    # an HMI that also runs the server differs: a class of its own, and applied with servers
    odd = compile_file(many_hmis(tmp_path, 40, HMI007={
        "address": "10.7.4.8", "clients": ["hmi"], "servers": ["kepware"]})).plan
    found = host_classes(odd)
    assert [len(c.hosts) for c in found] == [1, 1, 38]
    assert [c.first.name for c in found[:2]] == ["HMI007", "SCADA01"]
    assert all(c.servers for c in found[:2]) and not found[2].servers
    assert sum(len(c.hosts) for c in found) == len(odd.hosts)


def test_a_300_host_site_reads_like_a_3_host_site(tmp_path: Path) -> None:
    compiled = compile_file(many_hmis(tmp_path, 300))
    files = reports(compiled)
    doc = etree.fromstring(files["html"], etree.HTMLParser())
    assert len(doc.xpath("//section/h2[starts-with(@id, 'class-')]")) == 2
    assert len(doc.xpath("//tr[starts-with(@id, 'host-')]")) == 300
    # the changes are listed once per class, not once per host
    assert len(doc.xpath("//h3[starts-with(., 'Changes on every PC')]")) == 2
    assert len(doc.xpath("//svg//rect")) == 2  # the diagram draws classes
    summary = " ".join(doc.xpath("//div[@class='card'][2]//p[1]//text()"))
    assert "(299 in all)" in summary and "HMI150" not in summary
    small = reports(compile_file(ROOT / "examples" / "plant7-workgroup.yaml"))
    # was 85 times (2.2 MB); mostly the 300 per-host hash rows now (the page heights, at
    # most 3 times the 3-host page, are measured in test_review_browser.py)
    assert len(files["html"]) < 13 * len(small["html"])


def test_the_approval_document_has_its_sections_and_links() -> None:
    compiled = compile_file(ROOT / "examples" / "plant7-workgroup.yaml")
    files = reports(compiled)
    doc = etree.fromstring(files["html"], etree.HTMLParser())
    assert doc.xpath("//meta[@name='viewport']")
    targets = {a.get("href")[1:] for a in doc.xpath("//nav//a")}
    ids = set(doc.xpath("//@id"))
    assert targets <= ids and {"summary", "apply", "backout", "prerequisites", "signoff",
                               "artifacts", "class-1", "class-2"} <= targets
    text = " ".join(doc.itertext())
    for phrase in ("OPC Core Components", "servers installed first", "-Mode Apply",
                   "-Mode Test", "-Mode Rollback", "Reboot the PC", "review it once",
                   "The MSIs were not built", "IT security review"):
        assert phrase in text, phrase
    # the summary comes before everything else, and the servers' class is applied first
    headings = doc.xpath("//h2/@id")
    assert headings[0] == "summary" and headings.index("class-1") < headings.index("class-2")
    engine = bundle.emit(compiled, Options(), "site.yaml").files[
        "SCADA01/powershell/DcomConfig.psm1"]
    assert hashlib.sha256(engine).hexdigest() in text
    privileged = doc.xpath("//li[@class='priv']/text()")
    assert privileged and all("Administrators" in p for p in privileged)
    md = files["md"].decode()
    assert "PRIVILEGED: opcsvc" in md and "## 9. Sign-off" in md and "-Mode Rollback" in md
    assert "(#71-class-1-server-1-host)" in md and "## 7.1 Class 1: server, 1 host" in md


def test_review_md_reads_as_plain_text() -> None:
    md = reports(compile_file(ROOT / "examples" / "plant7-workgroup.yaml"))["md"].decode()
    assert "\\_" not in md and "\\\\" not in md and "&#" not in md
    assert "program C:\\Program Files (x86)\\Example HMI\\hmi.exe`" in md
    assert "| local_user:opcsvc |" not in md and "| `local_user:opcsvc` |" in md


@pytest.mark.parametrize(("value", "written"), [
    ("opcsvc", "opcsvc"), ("10.7.3.10", "10.7.3.10"), ("Packaging line 3, plant 7",
                                                       "Packaging line 3, plant 7"),
    ("local_user", "`local_user`"), ("C:\\Program Files", "`C:\\Program Files`"),
    ("a`b", "``a`b``"), ("```", "```` ``` ````"), ("1. one", "`1. one`"), ("-x", "-x"),
    ("- x", "`- x`"), ("a|b", "`a\\|b`"), (" lead", "`  lead `"), ("www.x.example",
                                                                  "`www.x.example`"),
    ("a\nb", "a b"), ("", ""),
])
def test_md_text(value: str, written: str) -> None:
    # as a table cell: that is where a code span's `|` needs its backslash
    assert review._pipes("| " + review.md_text(value)) == "| " + written


def test_a_pipe_in_a_code_span_is_escaped_in_a_table_row_only() -> None:
    """GFM splits a table row at `|` before it reads code spans, and drops the backslash of
    `\\|` there; in a paragraph the backslash would show (`a\\|b`)."""
    span = review.md_text("a|b")
    assert review._pipes(f"| {span} |\nsite: {span}") == "| `a\\|b` |\nsite: `a|b`"


def test_bundle_digest_is_the_sha256sum_listing_sorted_by_path() -> None:
    arts = [{"path": "b/x", "sha256": "1" * 64}, {"path": "a/y", "sha256": "2" * 64}]
    listing = f"{'2' * 64}  a/y\n{'1' * 64}  b/x\n"
    assert review.bundle_digest(arts) == hashlib.sha256(listing.encode()).hexdigest()
    assert review.bundle_digest(arts[::-1]) == review.bundle_digest(arts)
