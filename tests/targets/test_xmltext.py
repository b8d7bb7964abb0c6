"""xmltext writes the bytes lxml writes for the same tree, and refuses what lxml refuses."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from dcomc_targets import xmltext
from dcomc_targets.quoting import wix_define, xml_comment
from dcomc_targets.wix import _Wxs

NS = "http://schemas.microsoft.com/wix/2006/wi"
FIRE = "http://schemas.microsoft.com/wix/FirewallExtension"
NSMAP: Any = {None: NS, "fire": FIRE}

# Values that XML can hold, weighted towards what escaping and formatting are about.
VALUES = st.text(st.one_of(st.sampled_from('&<>"\'\t\n\r -$[]{}?!äß€\u2028😀'),
                           st.characters(blacklist_categories=("Cs",),
                                         blacklist_characters="\ufffe\uffff",
                                         min_codepoint=0x20)), max_size=12)
NAMES = st.sampled_from(["Id", "Name", "Value", "Guid", "Win64"])
TAGS = st.sampled_from(["Product", "Component", "fire:FirewallException", "fire:RemoteAddress"])
COMMENT = st.text(st.sampled_from("ab -~<>&"), max_size=8).filter(
    lambda t: "--" not in t and not t.endswith("-"))


@st.composite
def trees(draw: Any, depth: int = 0) -> tuple[Any, ...]:
    """(tag, attributes, text or None, children); a child is a tree or ("#comment", body)."""
    tag = draw(TAGS)
    attrs = draw(st.dictionaries(NAMES, VALUES, max_size=3))
    content = draw(st.none() | VALUES)
    children: list[Any] = []
    if depth < 3:
        for _ in range(draw(st.integers(0, 3))):
            if draw(st.booleans()):
                children.append(draw(trees(depth + 1)))
            else:
                children.append(("#comment", draw(COMMENT)))
    return tag, attrs, content, children


def _qname(tag: str) -> str:
    prefix, _, local = tag.rpartition(":")
    return f"{{{FIRE if prefix else NS}}}{local}"


def _lxml(tree: tuple[Any, ...], parent: Any = None) -> Any:
    tag, attrs, content, children = tree
    element = (etree.Element(_qname(tag), attrs, nsmap=NSMAP) if parent is None
               else etree.SubElement(parent, _qname(tag), attrs))
    element.text = content
    for child in children:
        if child[0] == "#comment":
            element.append(etree.Comment(child[1]))
        else:
            _lxml(child, element)
    return element


def _ours(tree: tuple[Any, ...], parent: xmltext.Element | None = None) -> xmltext.Element:
    tag, attrs, content, children = tree
    if parent is None:
        element = xmltext.Element(tag, {"xmlns": NS, "xmlns:fire": FIRE, **attrs}, content)
    else:
        element = parent.sub(tag, attrs, content)
    for child in children:
        if child[0] == "#comment":
            element.children.append(xmltext.comment(child[1]))
        else:
            _ours(child, element)
    return element


@settings(max_examples=400, deadline=None, database=None)
@given(trees())
def test_same_bytes_as_lxml(tree: tuple[Any, ...]) -> None:
    ours = _ours(tree).tostring()
    theirs = etree.tostring(_lxml(tree), xml_declaration=True, encoding="utf-8",
                            pretty_print=True)
    assert ours == theirs


def test_instruction_and_comment_as_lxml() -> None:
    root = etree.Element(f"{{{NS}}}Wix", nsmap={None: NS})
    root.append(etree.Comment(" a-~ "))
    root.append(etree.ProcessingInstruction("define", 'x = "$(y)"'))
    etree.SubElement(root, f"{{{NS}}}Empty").text = ""
    ours = xmltext.Element("Wix", {"xmlns": NS})
    ours.children += [xmltext.comment(" a-~ "), xmltext.instruction("define", 'x = "$(y)"')]
    ours.sub("Empty", None, "")
    assert ours.tostring() == etree.tostring(root, xml_declaration=True, encoding="utf-8",
                                             pretty_print=True)


@pytest.mark.parametrize("bad", ["\x00", "a\x0bb", "\ufffe", "\uffff", "x\x1f"])
def test_refuses_what_lxml_refuses(bad: str) -> None:
    with pytest.raises(ValueError) as lxml_error:
        etree.Element("a", b=bad)
    with pytest.raises(ValueError) as ours:
        xmltext.attributes({"b": bad})
    assert str(ours.value) == str(lxml_error.value)
    with pytest.raises(ValueError):
        xmltext.text(bad)
    with pytest.raises(ValueError):
        xmltext.comment(bad)


def test_refuses_comment_and_instruction_lxml_cannot_write() -> None:
    for body in ("a--b", "a-"):
        with pytest.raises(ValueError):
            etree.Comment(body)
        with pytest.raises(ValueError, match="--"):
            xmltext.comment(body)
    with pytest.raises(ValueError):
        etree.ProcessingInstruction("define", "a ?> b")
    with pytest.raises(ValueError, match=r"\?>"):
        xmltext.instruction("define", "a ?> b")


def test_surrogate_fails_at_encoding_as_in_lxml() -> None:
    with pytest.raises(UnicodeEncodeError):
        etree.Element("a", b="\ud800")
    with pytest.raises(UnicodeEncodeError):
        xmltext.Element("a", {"b": "\ud800"}).tostring()


class _LxmlWxs:
    """wix._Wxs as it was, on lxml trees: the reference the text writer must match."""

    def __init__(self, comments: list[str]) -> None:
        self.root = etree.Element(f"{{{NS}}}Wix", nsmap={None: NS})  # type: ignore[dict-item]
        for line in comments:
            self.root.append(etree.Comment(f" {xml_comment(line)} "))
        self._defines: dict[str, str] = {}

    literal = _Wxs.literal  # the values are the writer's (escaping is not on trial here)

    def e(self, parent: Any, tag: str, attrs: dict[str, str] | None = None,
          text: str | None = None, **more: str) -> Any:
        values = {**(attrs or {}), **more}
        element = etree.SubElement(parent, f"{{{NS}}}{tag}",
                                   {k: self.literal(v) for k, v in values.items()})
        if text is not None:
            element.text = self.literal(text)
        return element

    def tostring(self) -> bytes:
        at = sum(1 for child in self.root if isinstance(child, etree._Comment))
        for offset, (value, name) in enumerate(self._defines.items()):
            self.root.insert(at + offset, etree.ProcessingInstruction(
                "define", wix_define(name, value)))
        return etree.tostring(self.root, xml_declaration=True, encoding="utf-8",
                              pretty_print=True)


# What a .wxs value can be: wixl's `$` and `$(` (escaped, or a define), XML's specials, text.
WXS_VALUES = st.text(st.sampled_from(list("$()&<>\"'ab -[]{}ä€")), max_size=10)


@settings(max_examples=300, deadline=None, database=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.sampled_from(["Property", "Condition", "Custom"]),
                          st.dictionaries(st.sampled_from(["Id", "Value", "Message"]),
                                          WXS_VALUES, max_size=3),
                          st.none() | WXS_VALUES), max_size=12),
       st.lists(st.text(st.sampled_from(list("ab -~$(")), max_size=8), max_size=3))
def test_wxs_writer_is_the_lxml_writer(elements: list[Any], comments: list[str]) -> None:
    """wix._Wxs (text) and the lxml writer it replaced give the same bytes for the same calls:
    defines for `$(` after the comments, each value escaped for wixl and XML."""
    ours, theirs = _Wxs(comments), _LxmlWxs(comments)
    made: list[tuple[Any, Any]] = [(ours.root, theirs.root)]
    for parent, tag, attrs, text in elements:
        a, b = made[parent % len(made)]
        made.append((ours.e(a, tag, attrs, text), theirs.e(b, tag, attrs, text)))
    assert ours.tostring() == theirs.tostring()
