"""The approval document in a real browser and with real MSIs (issue 13, items 1 and 2).

review.html of plant7 (built with wixl) and of a generated 300-host site is laid out by
headless Chromium at 1400 and 420 px wide: no horizontal overflow, the summary above the fold,
and the 300-host page at most 3 times as tall as the 3-host one (before host classes: 6,029 px
and 578,251 px at 1400 px). One Chromium launch per page measures both widths: the page is
loaded twice, in two frames of those widths, by a wrapper page. Every MSI's sha256 is in
review.html and REVIEW.md and is the sha256 of the MSI on disk.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from lxml import etree

from dcomc.cli import main
from dcomc.emit import bundle, review
from dcomc.pipeline import compile_file
from dcomc_targets import EmitContext, Options, msi
from tools import require

ROOT = Path(__file__).resolve().parents[2]
PLANT7 = ROOT / "examples" / "plant7-workgroup.yaml"
WIDTHS = {1400: 900, 420: 800}  # frame width: its height, the fold

# Injected into a copy of the page: its layout, posted to the wrapper page.
PROBE = """<script>addEventListener('load', () => {
  const d = document.documentElement, s = document.getElementById('summary');
  parent.postMessage({width: innerWidth, scrollWidth: d.scrollWidth, height: d.scrollHeight,
                      summaryTop: s.getBoundingClientRect().top}, '*');
});</script>"""
WRAPPER = """<!DOCTYPE html><html><body><pre id="out">[]</pre>{frames}<script>
const found = [];
addEventListener('message', e => {{ found.push(e.data);
  document.getElementById('out').textContent = JSON.stringify(found); }});
</script></body></html>"""


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    require(found is not None, "chromium")
    assert found is not None
    return found


def layout(html: bytes, folder: Path) -> dict[int, dict[str, float]]:
    """The page's layout at each of WIDTHS, from one headless Chromium run."""
    browser = chromium()
    folder.mkdir()
    (folder / "page.html").write_bytes(html.replace(b"</body>", PROBE.encode() + b"</body>"))
    frames = "".join(f'<iframe src="page.html" width="{w}" height="{h}"></iframe>'
                     for w, h in WIDTHS.items())
    (folder / "wrapper.html").write_text(WRAPPER.format(frames=frames), encoding="utf-8")
    run = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--allow-file-access-from-files", f"--user-data-dir={folder / 'profile'}",
         "--window-size=1900,1000", "--virtual-time-budget=20000", "--dump-dom",
         (folder / "wrapper.html").as_uri()],
        capture_output=True, text=True, timeout=120, check=False)
    out = etree.fromstring(run.stdout or "<html/>", etree.HTMLParser()).xpath("//pre[@id='out']")
    measured = json.loads(out[0].text) if out else []
    assert len(measured) == len(WIDTHS), f"chromium measured {measured}: {run.stderr[-500:]}"
    return {int(m["width"]): m for m in measured}


def many_hmis(tmp_path: Path, count: int) -> Path:
    """plant7 grown to `count` hosts by copies of HMI01."""
    spec = yaml.safe_load(PLANT7.read_text())
    for i in range(3, count):
        spec["hosts"][f"HMI{i:03d}"] = {"address": f"10.7.{4 + i // 250}.{i % 250 + 1}",
                                        "clients": ["hmi"]}
    path = tmp_path / "site300.yaml"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """plant7 built with its MSIs, by the real wixl."""
    require(not msi.missing_tools(), "wixl/msitools")
    out = tmp_path_factory.mktemp("review") / "out"
    bundle.build(compile_file(PLANT7), Options(), PLANT7.name, out, bundle.MsiRequest("1.0.0"))
    return out


def test_every_msi_hash_is_in_the_approved_document(built: Path) -> None:
    html = (built / "review.html").read_bytes()
    text = " ".join(etree.fromstring(html, etree.HTMLParser()).itertext())
    md = (built / "REVIEW.md").read_text(encoding="utf-8")
    msis = sorted(built.glob("*/*.msi"))
    assert len(msis) == 3
    for path in msis:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert digest in text and digest in md, path.name
        assert f"| {path.parent.name} |" in md.split(digest)[0].rsplit("\n", 1)[-1]
    assert "The MSIs were not built" not in text
    manifest = json.loads((built / "manifest.json").read_text())
    listed = {r["path"]: r["sha256"] for r in manifest["review"]}
    assert listed["review.html"] == hashlib.sha256(html).hexdigest()


def test_the_bundle_digest_is_what_the_documented_command_computes(built: Path) -> None:
    """The command the report gives, run on the bundle folder, prints the report's digest."""
    require(shutil.which("sha256sum") is not None, "coreutils")
    run = subprocess.run("find */ -type f | LC_ALL=C sort | xargs -d '\\n' sha256sum | sha256sum",
                         shell=True, cwd=built, capture_output=True, text=True, check=True)
    digest = run.stdout.split()[0]
    assert f"Bundle digest: {digest}" in (built / "REVIEW.md").read_text(encoding="utf-8")
    assert digest in (built / "review.html").read_text(encoding="utf-8")


def test_a_build_without_msis_says_so(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["build", str(PLANT7), "-o", str(tmp_path / "o"),
                                       "--no-msi"])
    assert result.exit_code == 0, result.output
    assert not list((tmp_path / "o").glob("*/*.msi"))
    md = (tmp_path / "o" / "REVIEW.md").read_text(encoding="utf-8")
    assert "The MSIs were not built with this bundle" in md
    assert "msiexec" not in md  # the apply procedure is PowerShell only


def site_300_page(tmp_path: Path) -> bytes:
    """The 300-host site's review.html as a build with MSIs writes it: its manifest entries
    plus one MSI per host (building 300 MSIs with wixl would take minutes; the report only
    lists their hashes, which test_every_msi_hash_is_in_the_approved_document checks)."""
    compiled = compile_file(many_hmis(tmp_path, 300))
    assert len(compiled.plan.hosts) == 300
    manifest = bundle.emit(compiled, Options(), "site300.yaml").manifest
    listed = {name: [*entry["artifacts"], {"kind": "msi", "path": f"{name}/{name}.msi",
                                           "sha256": hashlib.sha256(name.encode()).hexdigest()}]
              for name, entry in manifest["hosts"].items()}
    ctx = EmitContext(compiled.plan, Options(), "site300.yaml", compiled.sha256)
    view = review.build_view(compiled.plan, ctx, compiled.findings, listed, msis_built=True)
    return review.render(view)["review.html"]


def test_layout_at_1400_and_420_px_and_300_hosts(built: Path, tmp_path: Path) -> None:
    small = layout((built / "review.html").read_bytes(), tmp_path / "plant7")
    large = layout(site_300_page(tmp_path), tmp_path / "site300")
    print(f"page heights: plant7 {small[1400]['height']} / {small[420]['height']} px, "
          f"300 hosts {large[1400]['height']} / {large[420]['height']} px (1400 / 420 px wide)")
    for page in (small, large):
        for width, fold in WIDTHS.items():
            measured: dict[str, Any] = page[width]
            assert measured["scrollWidth"] <= width, (width, measured)  # no horizontal scroll
            assert measured["summaryTop"] < fold / 2, (width, measured)  # summary above the fold
    assert large[1400]["height"] <= 3 * small[1400]["height"]
