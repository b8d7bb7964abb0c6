"""Incremental builds (issue 18): a build into an existing bundle reuses every host whose inputs
did not change (its files, hard-linked, so a reused file keeps its inode), emits the others,
and gives the bundle a full build into an empty folder gives, byte for byte, with and without
MSIs. A host's artifacts name its own inputs hash, not the spec file's."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from dcomc.cli import main
from dcomc.emit import bundle, forked, reuse
from dcomc.pipeline import compile_file
from dcomc.readback import drift
from dcomc_targets import EmitContext, Options, base, msi, wix, wixsite
from tools import require

ROOT = Path(__file__).resolve().parents[2]
SITE = ("reg", "secedit", "firewall", "powershell", "wix")  # a host's folders
SITE_FILES = {"manifest.json", "REVIEW.md", "review.html"}  # what every build writes again
SIGNATURE = "manifest.json.p7s"  # and a signed one
FLIP = "HMI0003"  # the host whose own setting the tests change


def spec_text(hosts: int, *, flipped: bool = False, address: str | None = None) -> str:
    """A plant of `hosts` hosts (one server per cell of 5), each with its own machine setting,
    so that one host can change alone; the edit keeps every line where it was (the data files
    name each resource's line in the spec)."""
    servers = {f"srv{i}": {"product": "kepserverex-v6", "service_account": "opcsvc",
                           "launch": {"OPC Users": ["local_launch", "remote_launch",
                                                    "local_activation", "remote_activation"]},
                           "access": {"OPC Users": ["local_access", "remote_access"]}}
               for i in range(max(1, hosts // 5))}
    host_map: dict[str, Any] = {}
    for i in range(hosts):
        cell = min(i // 5, len(servers) - 1)
        role = {"servers": [f"srv{cell}"]} if i % 5 == 0 else {"clients": [f"hmi{cell}"]}
        name = f"SRV{i:04d}" if i % 5 == 0 else f"HMI{i:04d}"
        host_map[name] = {"address": f"10.9.{i // 200}.{10 + i % 200}", **role,
                          "machine": {"network_discovery": flipped and name == FLIP}}
        if address is not None and name == FLIP:
            host_map[name]["address"] = address
    return yaml.safe_dump({
        "dcomc": 1,
        "site": {"name": "incremental", "identity": "workgroup"},
        "accounts": {"users": {"opcuser": {"password": "prompt"},
                               "opcsvc": {"password": "prompt", "member_of": ["Administrators"]}},
                     "groups": {"OPC Users": {"members": ["opcuser", "opcsvc"]}}},
        "servers": servers,
        "clients": {f"hmi{j}": {"executable": "C:\\HMI\\hmi.exe", "run_as": "opcuser",
                                "calls": [f"srv{j}"]} for j in range(len(servers))},
        "hosts": host_map,
    })


def build(spec: Path, out: Path, *, msis: bool = False, reuse_hosts: bool = True,
          options: Options | None = None) -> dict[str, Any]:
    result = bundle.build(compile_file(spec), options or Options(), spec.name, out,
                          bundle.MsiRequest("1.0.0") if msis else None,
                          reuse_hosts=reuse_hosts)
    return result.manifest


def files(out: Path) -> dict[str, tuple[str, int]]:
    """Every file of a bundle: its sha256 and inode (a reused file is the same inode)."""
    return {p.relative_to(out).as_posix(): (hashlib.sha256(p.read_bytes()).hexdigest(),
                                            p.stat().st_ino)
            for p in sorted(out.rglob("*")) if p.is_file()}


def same_bytes(a: Path, b: Path) -> None:
    fa, fb = files(a), files(b)
    assert sorted(fa) == sorted(fb)
    assert [rel for rel in fa if fa[rel][0] != fb[rel][0]] == []


def relinked(before: dict[str, tuple[str, int]], after: dict[str, tuple[str, int]],
             ) -> set[str]:
    """The hosts any of whose files is a new file (not the previous bundle's, linked)."""
    return {rel.split("/")[0] for rel in after
            if rel not in SITE_FILES | {SIGNATURE}
            and (rel not in before or before[rel][1] != after[rel][1])}


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    path = tmp_path / "site.yaml"
    path.write_text(spec_text(15), encoding="utf-8")
    return path


def test_one_host_changed_rebuilds_that_host_alone(spec: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    build(spec, out)
    before = files(out)
    spec.write_text(spec_text(15, flipped=True), encoding="utf-8")
    build(spec, out)
    after = files(out)
    build(spec, tmp_path / "full", reuse_hosts=False)
    same_bytes(out, tmp_path / "full")  # byte for byte the full build
    assert relinked(before, after) == {FLIP}  # every other host's files reused
    changed = sorted(rel for rel in after if before[rel][0] != after[rel][0])
    flipped = [rel for rel in changed if rel.startswith(f"{FLIP}/")]
    assert sorted(set(changed) - set(flipped)) == sorted(SITE_FILES)
    # the data file, .reg, .inf, netsh, firewall .wxs and product .wxs name the host's inputs
    # (the network discovery setting itself is in some of them); the engine, entry point and
    # the WiX script are the same bytes on every host
    assert len(flipped) == 7
    assert not any(rel.endswith(("DcomConfig.psm1", "Invoke-DcomConfig.ps1", "dcomc-apply.js"))
                   for rel in flipped)


def test_another_hosts_address_changes_the_hosts_that_name_it(spec: Path, tmp_path: Path,
                                                              ) -> None:
    """An address reaches the host and the server whose `site` firewall scope lists it: both
    are emitted again (their inputs changed), nothing else."""
    out = tmp_path / "out"
    build(spec, out)
    before = files(out)
    spec.write_text(spec_text(15, address="10.9.7.7"), encoding="utf-8")
    build(spec, out)
    assert relinked(before, files(out)) == {FLIP, "SRV0000"}
    build(spec, tmp_path / "full", reuse_hosts=False)
    same_bytes(out, tmp_path / "full")


def test_manifest_and_artifacts_name_each_hosts_inputs(spec: Path, tmp_path: Path) -> None:
    manifest = build(spec, tmp_path / "out", options=Options(product_version="2.1.0"))
    compiled = compile_file(spec)
    ctx = EmitContext(compiled.plan, Options(), spec.name, compiled.sha256)
    assert manifest["options"]["product_version"] == "2.1.0"  # what reaches artifacts
    assert manifest["options"]["replace_machine_limits"] is False
    assert "self_contained" not in manifest["options"]  # a refusal, never other bytes
    assert manifest["spec"] == {"name": spec.name, "sha256": compiled.sha256}  # site level
    for host in compiled.plan.hosts:
        inputs = manifest["hosts"][host.name]["inputs"]
        assert inputs == ctx.inputs_sha256(host)
        psd1 = (tmp_path / "out" / host.name / "powershell" / f"{host.name}.psd1").read_text(
            encoding="utf-8-sig")
        assert f"InputsSha256 = '{inputs}'" in psd1
        assert f"(host inputs sha256 {inputs[:16]})" in psd1
        assert compiled.sha256 not in psd1
    assert len({e["inputs"] for e in manifest["hosts"].values()}) == len(compiled.plan.hosts)


def test_unrelated_spec_edit_rebuilds_no_host(spec: Path, tmp_path: Path) -> None:
    """A comment changes the spec's hash, which only the site-level files name."""
    out = tmp_path / "out"
    build(spec, out)
    before = files(out)
    spec.write_text(spec.read_text(encoding="utf-8") + "# reviewed\n", encoding="utf-8")
    build(spec, out)
    after = files(out)
    assert relinked(before, after) == set()
    assert {rel for rel in after if before[rel][0] != after[rel][0]} == SITE_FILES


@pytest.mark.parametrize("spoil", ["edit", "remove", "symlink", "manifest", "engine"])
def test_a_file_not_as_listed_rebuilds_its_host(spec: Path, tmp_path: Path, spoil: str) -> None:
    out = tmp_path / "out"
    build(spec, out)
    target = out / "HMI0007" / "reg" / "HMI0007.reg"
    if spoil == "engine":  # a large file, the same on every host: another file in one of them
        engine = out / "HMI0007" / "powershell" / "DcomConfig.psm1"
        data = engine.read_bytes()
        engine.unlink()
        engine.write_bytes(data[:-1] + b"#")
    elif spoil == "edit":
        target.write_bytes(target.read_bytes() + b"\r\n")
    elif spoil == "remove":
        target.unlink()
    elif spoil == "symlink":  # the same bytes, but not a file of the bundle
        elsewhere = tmp_path / "elsewhere.reg"
        shutil.copyfile(target, elsewhere)
        target.unlink()
        target.symlink_to(elsewhere)
    else:  # the manifest says another hash: the file is not the one it lists
        data = json.loads((out / "manifest.json").read_bytes())
        data["hosts"]["HMI0007"]["artifacts"][0]["sha256"] = "0" * 64
        (out / "manifest.json").write_text(json.dumps(data), encoding="utf-8")
    before = files(out)
    build(spec, out)
    assert relinked(before, files(out)) == {"HMI0007"}
    build(spec, tmp_path / "full", reuse_hosts=False)
    same_bytes(out, tmp_path / "full")
    if spoil == "symlink":
        assert not target.is_symlink()


@pytest.mark.parametrize("fork", [True, False])
def test_a_stale_file_found_while_linking_rebuilds_its_host(
        spec: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fork: bool) -> None:
    """The reused hosts' files are linked and checked while the build goes on (a forked child
    where one runs beside, else in the build's process before emission): a file not as listed
    is found either way, the build starts again, and that host alone is emitted."""
    monkeypatch.setattr(forked, "usable", lambda: fork)
    started: list[bool] = []
    start = bundle._Reuser.start

    def recording(self: Any) -> None:
        start(self)
        started.append(self._child is not None)

    monkeypatch.setattr(bundle._Reuser, "start", recording)
    out = tmp_path / "out"
    build(spec, out)
    target = out / "SRV0005" / "firewall" / "SRV0005.netsh"
    target.write_bytes(target.read_bytes() + b"rem edited\r\n")
    before = files(out)
    build(spec, out)
    assert started == [False, fork, fork]  # nothing to take yet; then found stale; retried
    assert relinked(before, files(out)) == {"SRV0005"}
    build(spec, tmp_path / "full", reuse_hosts=False)
    same_bytes(out, tmp_path / "full")


def test_a_failed_build_stops_the_linking_child(spec: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A build that fails while the child still links reused files kills it before the
    staging folder is removed: nothing lands beside OUT after the build has failed."""
    require(forked.usable(), "fork and two cores")
    out = tmp_path / "out"
    build(spec, out)
    before = files(out)
    link = reuse.link

    def slow(prev: Any, kept: Any, tmp: Path) -> bool:
        time.sleep(0.05)
        return link(prev, kept, tmp)

    def fail(*_: Any, **__: Any) -> None:
        raise OSError(28, "No space left on device")

    children: list[int] = []
    start = forked.Child.__init__

    def recording(self: forked.Child, work: Any) -> None:
        start(self, work)
        children.append(self._pid)

    monkeypatch.setattr(reuse, "link", slow)
    monkeypatch.setattr(bundle, "_finish", fail)
    monkeypatch.setattr(forked.Child, "__init__", recording)
    with pytest.raises(OSError, match="No space"):
        build(spec, out)
    (pid,) = children
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # the child is not running, nor left unreaped
    time.sleep(0.3)  # what a child still running would have linked by now
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "site.yaml"]  # no staging
    assert files(out) == before


def test_a_path_outside_the_host_is_never_linked(spec: Path, tmp_path: Path) -> None:
    """The previous manifest is not trusted to name files: a host whose entry lists a path
    outside its folder is emitted again, and the file is not taken into the bundle."""
    out = tmp_path / "out"
    build(spec, out)
    data = json.loads((out / "manifest.json").read_bytes())
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"secret")
    data["hosts"]["HMI0001"]["artifacts"].append(
        {"kind": "x", "path": "HMI0001/../../secret.txt",
         "sha256": hashlib.sha256(b"secret").hexdigest()})
    (out / "manifest.json").write_text(json.dumps(data), encoding="utf-8")
    before = files(out)
    build(spec, out)
    assert relinked(before, files(out)) == {"HMI0001"}
    assert not any(p.read_bytes() == b"secret" for p in out.rglob("*") if p.is_file())


def test_changed_templates_or_version_rebuild_every_host(spec: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    build(spec, out)
    hosts = {h.name for h in compile_file(spec).plan.hosts}
    before = files(out)
    monkeypatch.setattr(base, "templates_sha256", lambda: "another engine")
    build(spec, out)
    after = files(out)
    assert relinked(before, after) == hosts
    build(spec, tmp_path / "full", reuse_hosts=False)
    same_bytes(out, tmp_path / "full")
    monkeypatch.setattr(bundle, "__version__", "9.9.9")  # another dcomc wrote the bundle
    build(spec, out)
    assert relinked(after, files(out)) == hosts


def test_options_are_inputs(spec: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    build(spec, out)
    before = files(out)
    build(spec, out, options=Options(replace_machine_limits=True))
    assert relinked(before, files(out)) == {h.name for h in compile_file(spec).plan.hosts}
    build(spec, tmp_path / "full", reuse_hosts=False,
          options=Options(replace_machine_limits=True))
    same_bytes(out, tmp_path / "full")


def test_templates_hash_covers_the_engine_not_the_review(tmp_path: Path) -> None:
    copy = tmp_path / "templates"
    shutil.copytree(base.templates_dir(), copy)
    first = base.folder_sha256(copy, skip=("review",))
    assert first == base.templates_sha256()
    review = next((copy / "review").iterdir())
    review.write_bytes(review.read_bytes() + b"\n")
    assert base.folder_sha256(copy, skip=("review",)) == first
    part = sorted((copy / "powershell" / "engine").glob("*.ps1"))[-1]
    part.write_bytes(part.read_bytes() + b"\n")
    assert base.folder_sha256(copy, skip=("review",)) != first


def test_no_reuse_option_emits_every_host(spec: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    for extra in ([], ["--no-reuse"]):
        result = CliRunner().invoke(main, ["build", str(spec), "-o", str(out), "--no-msi",
                                           *extra])
        assert result.exit_code == 0, result.output
        if not extra:
            before = files(out)
    hosts = {h.name for h in compile_file(spec).plan.hosts}
    rebuilt = files(out)
    assert relinked(before, rebuilt) == hosts
    result = CliRunner().invoke(main, ["build", str(spec), "-o", str(out), "--no-msi"])
    assert result.exit_code == 0, result.output
    assert relinked(rebuilt, files(out)) == set()


def test_reused_file_is_not_written_through(spec: Path, tmp_path: Path) -> None:
    """A host linked from the previous bundle and then found unusable is written as new files:
    the previous bundle's files (kept if the build fails) are never written into."""
    out = tmp_path / "out"
    build(spec, out)
    keep = tmp_path / "kept"
    shutil.copytree(out, keep)  # the previous bundle's bytes
    data = json.loads((out / "manifest.json").read_bytes())
    data["hosts"][FLIP]["artifacts"][-1]["sha256"] = "0" * 64  # found unusable at the end
    (out / "manifest.json").write_text(json.dumps(data), encoding="utf-8")
    old = out.resolve()
    linked = {rel: (old / rel).stat().st_ino for rel in files(out) if rel.startswith(FLIP)}
    monkeypatch_swap = bundle._swap

    def check_before_swap(tmp: Path, target: Path) -> None:
        for rel, inode in linked.items():  # the previous files: untouched
            assert (target / rel).stat().st_ino == inode
            assert (target / rel).read_bytes() == (keep / rel).read_bytes()
        monkeypatch_swap(tmp, target)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(bundle, "_swap", check_before_swap)
        build(spec, out)
    assert all(files(out)[rel][1] != inode for rel, inode in linked.items())  # new files
    same_bytes(out, keep)


def test_drift_tells_a_report_of_an_older_build_of_the_host(spec: Path, tmp_path: Path) -> None:
    """The report repeats the data file's InputsSha256: another host's change leaves the PC's
    bundle current; its own makes it stale."""
    compiled = compile_file(spec)
    ctx = EmitContext(compiled.plan, Options(), spec.name, compiled.sha256)
    hosts = {h.name: h for h in compiled.plan.hosts}

    def report(name: str, inputs: str) -> drift.Report:
        return drift.Report(tmp_path / "r.json", name, compiled.plan.site, name,
                            None, spec.name, inputs, None, None, ())

    spec.write_text(spec_text(15, flipped=True), encoding="utf-8")
    newer = compile_file(spec)
    current = drift.drift(newer, spec, report("HMI0001", ctx.inputs_sha256(hosts["HMI0001"])))
    assert current.stale == ()
    stale = drift.drift(newer, spec, report(FLIP, ctx.inputs_sha256(hosts[FLIP])))
    assert len(stale.stale) == 1 and "built from other inputs for HMI0003" in stale.stale[0]


# --- with MSIs (wixl): a small site, MSIs take a second each --------------------------------


def test_msis_of_unchanged_hosts_are_reused(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    require(not msi.missing_tools(), "wixl/msitools")
    spec = tmp_path / "site.yaml"
    spec.write_text(spec_text(5), encoding="utf-8")
    out = tmp_path / "out"
    manifest = build(spec, out, msis=True)
    assert manifest["tools"] == {"wixl": reuse.wixl_version()}
    before = files(out)
    spec.write_text(spec_text(5, flipped=True), encoding="utf-8")
    build(spec, out, msis=True)
    after = files(out)
    assert relinked(before, after) == {FLIP}
    msis = sorted(rel for rel in after if rel.endswith(".msi"))
    assert len(msis) == 5
    assert [rel for rel in msis if before[rel][1] != after[rel][1]] == [f"{FLIP}/{FLIP}.msi"]
    build(spec, tmp_path / "full", msis=True, reuse_hosts=False)
    same_bytes(out, tmp_path / "full")

    # another date: every MSI is built again (its dates), from the hosts' reused files
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    build(spec, out, msis=True)
    dated = files(out)
    assert {rel for rel in dated if dated[rel][1] != after[rel][1]} - SITE_FILES == set(msis)
    build(spec, tmp_path / "full-dated", msis=True, reuse_hosts=False)
    same_bytes(out, tmp_path / "full-dated")

    # without MSIs: the hosts' files reused, no MSI left
    build(spec, out)
    plain = files(out)
    assert not any(rel.endswith(".msi") for rel in plain)
    assert relinked(dated, plain) == set()
    build(spec, tmp_path / "full-plain", reuse_hosts=False)
    same_bytes(out, tmp_path / "full-plain")


def test_an_option_that_changes_an_msis_files_changes_its_package_code(tmp_path: Path) -> None:
    """--replace-machine-limits changes the .reg every MSI (and the site package) carries: the
    MSIs then differ, and two different MSIs never share a PackageCode (Windows Installer
    caches a package by it). Without the option the code is what it always was."""
    require(not msi.missing_tools(), "wixl/msitools")
    spec = tmp_path / "site.yaml"
    spec.write_text(spec_text(2), encoding="utf-8")
    compiled = compile_file(spec)
    ctx = EmitContext(compiled.plan, Options(), spec.name, compiled.sha256)
    host = compiled.plan.hosts[0]
    codes = {}
    for name, options in (("plain", Options(site_package=True)),
                          ("replaced", Options(site_package=True, replace_machine_limits=True))):
        out = tmp_path / name
        build(spec, out, msis=True, options=options)
        codes[name] = [_package_code(out / host.name / f"{host.name}.msi"),
                       _package_code(next((out / "_site").glob("*.msi")))]
    assert codes["plain"][0] == wix.product_codes(compiled.plan.site, host.name, "1.0.0",
                                                  ctx.inputs_sha256(host))["package"]
    assert codes["plain"][1] == wixsite.site_codes(compiled.plan.site, "1.0.0",
                                                   compiled.sha256)["package"]
    assert codes["replaced"][0] != codes["plain"][0]
    assert codes["replaced"][1] != codes["plain"][1]


def _package_code(path: Path) -> str:
    """An MSI's PackageCode: its summary information's revision number (msiinfo)."""
    out = subprocess.run(["msiinfo", "suminfo", str(path)], capture_output=True, text=True,
                         check=True).stdout
    found = re.search(r"Revision number \(UUID\): (\{[0-9A-F-]{36}\})", out)
    assert found is not None, out
    return found[1]


# --- signed: a signature is reused only from a bundle signed the same way ---------------------


def test_signed_files_are_reused_only_when_signed_alike(tmp_path: Path) -> None:
    from dcomc.emit import sign
    from unit.test_sign import make_pki

    pki = make_pki(tmp_path / "pki")
    spec = tmp_path / "site.yaml"
    spec.write_text(spec_text(5), encoding="utf-8")
    hosts = {h.name for h in compile_file(spec).plan.hosts}

    def signed(out: Path, name: str = "signer", *, reuse_hosts: bool = True) -> dict[str, Any]:
        settings = sign.SignSettings(pki.cert(name), str(pki.key(name)))
        with sign.Signer(settings) as signer:
            return bundle.build(compile_file(spec), Options(), spec.name, out,
                                signer=signer, reuse_hosts=reuse_hosts).manifest

    out = tmp_path / "out"
    signed(out)
    before = files(out)
    spec.write_text(spec_text(5, flipped=True), encoding="utf-8")
    manifest = signed(out)
    assert manifest["signature"]["inputs"]
    assert relinked(before, files(out)) == {FLIP}
    signed(tmp_path / "full", reuse_hosts=False)
    same_bytes(out, tmp_path / "full")
    # a file changed with the manifest (which lists its new hash): the manifest's signature no
    # longer holds, so nothing is taken from the bundle, and the build repairs the file
    target = out / "HMI0001" / "reg" / "HMI0001.reg"
    target.write_bytes(target.read_bytes() + b"\r\n")
    data = json.loads((out / "manifest.json").read_bytes())
    for art in data["hosts"]["HMI0001"]["artifacts"]:
        if art["path"] == "HMI0001/reg/HMI0001.reg":
            art["sha256"] = hashlib.sha256(target.read_bytes()).hexdigest()
    (out / "manifest.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    before = files(out)
    signed(out)
    assert relinked(before, files(out)) == hosts
    same_bytes(out, tmp_path / "full")
    for name in ("other", None):  # another certificate, or none: every host signed anew
        before = files(out)
        if name is None:
            build(spec, out)
        else:
            signed(out, name)
        assert relinked(before, files(out)) == hosts


@pytest.mark.parametrize("kind", ["fifo", "symlink", "nested"])
def test_a_manifest_that_is_no_file_of_a_bundle_is_not_read(tmp_path: Path, kind: str) -> None:
    """A FIFO would block the build, a link may point anywhere, JSON nested too deep would
    exhaust the parser: nothing is reused, the build does not hang or fail on it."""
    out = tmp_path / "out"
    out.mkdir()
    manifest = out / "manifest.json"
    if kind == "fifo":
        os.mkfifo(manifest)
    elif kind == "symlink":
        (tmp_path / "elsewhere.json").write_text('{"hosts": {}}', encoding="utf-8")
        manifest.symlink_to(tmp_path / "elsewhere.json")
    else:
        manifest.write_text("[" * 100000 + "]" * 100000, encoding="utf-8")
    assert reuse.previous(out, {}, None, None) is None


def test_manifest_is_written_as_json_writes_it() -> None:
    """The manifest's own serializer (faster) gives json.dumps(indent=2)'s bytes exactly."""
    value = {"format": 1, "site": "plänt \"7\"\n\u2028\x01", "empty": {}, "none": [],
             "flags": [True, False, None, -3, 1.5, 10**20], "tuple": ("a", {"b": []}),
             "hosts": {"HMI01": {"roles": ["client"], "artifacts": [
                 {"kind": "reg", "path": "HMI01/reg/HMI01.reg", "sha256": "0" * 64}]}}}
    expected = json.dumps(value, indent=2, ensure_ascii=False) + "\n"
    assert bundle._manifest_bytes(value) == expected.encode()
    with pytest.raises(TypeError):
        bundle._manifest_bytes({"x": {1, 2}})


def test_only_bytes_that_repeat_are_kept_in_memory(spec: Path, tmp_path: Path) -> None:
    """The engine is compared, not hashed, on every host after the first; a file listed once
    (a host's data file, its MSI) is never held: 10,000 MSIs would be a gigabyte."""
    out = tmp_path / "out"
    build(spec, out)
    compiled = compile_file(spec)
    ctx = EmitContext(compiled.plan, Options(), spec.name, compiled.sha256)
    prev = reuse.previous(out, {}, None, None)
    assert prev is not None
    staging = tmp_path / "staging"
    staging.mkdir()
    for host in compiled.plan.hosts:
        kept = reuse.planned(prev, host.name, ctx.inputs_sha256(host), msi=False)
        assert kept is not None and reuse.link(prev, kept, staging)
    engine = hashlib.sha256((out / "SRV0000/powershell/DcomConfig.psm1").read_bytes())
    assert set(prev.seen) == {engine.hexdigest()}
    assert engine.hexdigest() in prev.repeated
    psd1 = hashlib.sha256((out / "SRV0000/powershell/SRV0000.psd1").read_bytes()).hexdigest()
    assert psd1 not in prev.repeated
