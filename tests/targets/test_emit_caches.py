"""The writers' per-process caches (issue 18) give the bytes the uncached code gives."""

from __future__ import annotations

import errno
import hashlib
import random
import uuid
from pathlib import Path

import pytest

from dcomc.emit import review
from dcomc.pipeline import Compiled, compile_file
from dcomc_targets import EmitContext, Options, powershell
from dcomc_targets.wix import GUID_NAMESPACE, guid
from dcomc_targets.wixfirewall import GUID_NAMESPACE as FIREWALL_NAMESPACE

HOSTILE = Path(__file__).parents[1] / "engine" / "hostile-names.yaml"


def test_wix_guid_is_uuid5() -> None:
    rng = random.Random(18)
    alphabet = "aZ0 -\\{}$(ä€😀\x00"
    for _ in range(5000):
        parts = tuple("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 9)))
                      for _ in range(rng.randint(1, 4)))
        namespace = rng.choice([GUID_NAMESPACE, FIREWALL_NAMESPACE])
        expected = "{" + str(uuid.uuid5(namespace, "\0".join(parts))).upper() + "}"
        assert guid(*parts, namespace=namespace) == expected


def _data_files(compiled: Compiled) -> dict[str, str]:
    ctx = EmitContext(compiled.plan, Options(), "site.yaml", compiled.sha256)
    return {h.name: powershell._data_literal(h, ctx) for h in compiled.plan.hosts}


def test_data_file_literals_cached_are_rendered(plant7: Compiled, plant9: Compiled) -> None:
    """Each resource's literal is cached without its Source (the spec line differs between
    equal resources of two hosts): the data files are render(host_data) all the same, from
    an empty cache and from a full one."""
    for compiled in (plant7, plant9, compile_file(HOSTILE)):
        ctx = EmitContext(compiled.plan, Options(), "site.yaml", compiled.sha256)
        expected = {h.name: powershell.render(powershell.host_data(h, ctx))
                    for h in compiled.plan.hosts}
        powershell._RESOURCES.clear()
        assert _data_files(compiled) == expected
        assert _data_files(compiled) == expected  # every literal from the cache
        assert powershell._RESOURCES
        assert all(parts is not None for parts in powershell._RESOURCES.values())


def test_data_file_sources_differ_where_resources_are_equal(plant7: Compiled) -> None:
    """Two equal resources of two hosts with other places in the spec each keep their own
    Source line (one cache entry serves both)."""
    ctx = EmitContext(plant7.plan, Options(), "site.yaml", plant7.sha256)
    seen: dict[object, tuple[str, object]] = {}
    pair = None
    for host in plant7.plan.hosts:
        for r in host.resources:
            other = seen.setdefault(r, (host.name, r))
            if other[0] != host.name and other[1].prov.span != r.prov.span:  # type: ignore[attr-defined]
                pair = (other, (host.name, r))
    assert pair is not None, "the example has no equal resources with other sources"
    powershell._RESOURCES.clear()
    texts = {h.name: powershell._data_literal(h, ctx) for h in plant7.plan.hosts}
    for name, resource in pair:
        span = resource.prov.span  # type: ignore[attr-defined]
        assert f"Source = 'site.yaml:{span.line}:{span.col}'" in texts[name]


def test_md_text_cached_is_md_text() -> None:
    values = ["", "opcsvc", "10.7.3.10", "local_user:opcsvc", "C:\\Program Files", "a|b *c*",
              " lead", "trail ", "`tick`", "1. item", "www.example.com", "x\ny", 12, None,
              "ÄÖÜ", "abc123", "-", "§5.1 step 4"]
    for value in values:
        first = review.md_text(value)
        assert review.md_text(value) == first
        text = "" if value is None else str(value).replace("\r", " ").replace("\n", " ")
        assert (first == text) == review._plain(text)


def test_engine_written_once_and_linked(plant7: Compiled, tmp_path: Path) -> None:
    """The engine, the same large file on every host, is one file linked into each host
    folder: its bytes as the manifest lists them."""
    from dcomc.emit import bundle

    result = bundle.build(plant7, Options(), "site.yaml", tmp_path / "out")
    engines = sorted((tmp_path / "out").glob("*/powershell/DcomConfig.psm1"))
    assert len(engines) == len(plant7.plan.hosts) > 1
    assert len({p.stat().st_ino for p in engines}) == 1
    assert engines[0].stat().st_nlink == len(engines)
    listed = {a["path"]: a["sha256"] for h in result.manifest["hosts"].values()
              for a in h["artifacts"]}
    for path in engines:
        rel = path.relative_to(tmp_path / "out").as_posix()
        assert hashlib.sha256(path.read_bytes()).hexdigest() == listed[rel]


def test_engine_copied_where_links_fail(plant7: Compiled, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from dcomc.emit import bundle

    def no_links(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EPERM, "no hard links on this file system")

    monkeypatch.setattr(bundle.os, "link", no_links)
    bundle.build(plant7, Options(), "site.yaml", tmp_path / "out")
    engines = sorted((tmp_path / "out").glob("*/powershell/DcomConfig.psm1"))
    assert len({p.stat().st_ino for p in engines}) == len(engines) > 1
    assert len({p.read_bytes() for p in engines}) == 1


def test_inspect_reads_a_linked_file_once(plant7: Compiled, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """inspect reads the engine, linked into every host folder, once; every file's result
    is what it is in a copy of the bundle without links."""
    import shutil

    from dcomc.emit import bundle
    from dcomc.readback import inspect

    bundle.build(plant7, Options(), "site.yaml", tmp_path / "out")
    shutil.copytree(tmp_path / "out", tmp_path / "copy")  # copies: no links
    read: list[str] = []
    real = inspect.read_regular

    def counted(path: Path, what: str) -> bytes:
        read.append(path.name)
        return real(path, what)

    monkeypatch.setattr(inspect, "read_regular", counted)
    linked = {p.relative_to(tmp_path / "out").as_posix(): inspect.inspect_file(p)
              for p in inspect.files_of([tmp_path / "out"])}
    assert read.count("DcomConfig.psm1") == 1
    copied = {p.relative_to(tmp_path / "copy").as_posix(): inspect.inspect_file(p)
              for p in inspect.files_of([tmp_path / "copy"])}
    assert linked == copied
    assert read.count("DcomConfig.psm1") == 1 + len(plant7.plan.hosts)
