"""XML written as text: the bytes lxml writes for the same tree, without building one.

`etree.tostring(root, xml_declaration=True, encoding="utf-8", pretty_print=True)` of an
element tree and `Element.tostring()` of the same tree built here are the same bytes
(tests/targets/test_xmltext.py compares them on random trees and values). Building an lxml
tree of every .wxs of every host and serializing it was a quarter of a 10,000-host build
(issue 18); this writer escapes each value once, as it is added, and joins strings.

What it reproduces of libxml2's serializer: two spaces of indentation per level; an element
without children and text as `<a/>`, with text only as `<a>text</a>`; children each on their
own line, unless the element has text (a text node turns formatting off for its whole
subtree); `&`, `<`, `>` escaped in text, and `"`, TAB, LF and CR in attribute values too
(as character references); everything else, non-ASCII included, as it is in UTF-8. What lxml
refuses, this refuses with lxml's error: characters XML cannot hold (ValueError), a comment
with `--` or a trailing `-`, a processing instruction with `?>`. Namespaces are plain text:
the root's declarations are attributes (`xmlns`, `xmlns:fire`) and a prefixed tag is written
with its prefix (`fire:RemoteAddress`).
"""

from __future__ import annotations

import re

DECLARATION = "<?xml version='1.0' encoding='utf-8'?>\n"
INDENT = "  "
# What XML 1.0 cannot hold that Python's str can (lxml's own check: C0 controls but TAB, LF
# and CR, and U+FFFE/U+FFFF); a lone surrogate fails at the UTF-8 encoding, as in lxml.
_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_LXML_INVALID = ("All strings must be XML compatible: Unicode or ASCII, no NULL bytes or control "
                 "characters")
_ATTR_SPECIAL = re.compile('[&<>"\t\n\r\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]')
_TEXT_SPECIAL = re.compile("[&<>\r\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _valid(value: str) -> str:
    if _INVALID.search(value) is not None:
        raise ValueError(_LXML_INVALID)
    return value


def attribute(value: str) -> str:
    """An attribute value, escaped as libxml2 escapes it (without the quotes)."""
    if _ATTR_SPECIAL.search(value) is None:
        return value
    _valid(value)
    return (value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;").replace("\t", "&#9;").replace("\n", "&#10;")
            .replace("\r", "&#13;"))


def text(value: str) -> str:
    """Element text, escaped as libxml2 escapes it."""
    if _TEXT_SPECIAL.search(value) is None:
        return value
    _valid(value)
    return (value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace("\r", "&#13;"))


def attributes(attrs: dict[str, str]) -> str:
    """` name="value"` for each attribute, in order; the names as they are."""
    return "".join([f' {name}="{attribute(value)}"' for name, value in attrs.items()])


def comment(body: str) -> str:
    """`<!--body-->`; refused as lxml's etree.Comment refuses it."""
    _valid(body)
    if "--" in body or body.endswith("-"):
        raise ValueError("Comment may not contain '--' or end with '-'")
    return f"<!--{body}-->"


def instruction(target: str, body: str) -> str:
    """`<?target body?>`; refused as lxml's etree.ProcessingInstruction refuses it."""
    _valid(body)
    if "?>" in body:
        raise ValueError("PI text must not contain '?>'")
    return f"<?{target} {body}?>" if body else f"<?{target}?>"


class Element:
    """An element being written: its start tag's text (attributes escaped once), its escaped
    text, and its children (elements, or comments and instructions as finished text)."""

    __slots__ = ("children", "head", "tag", "text")

    def __init__(self, tag: str, attrs: dict[str, str] | None = None,
                 content: str | None = None) -> None:
        self.tag = tag
        self.head = f"<{tag}{attributes(attrs)}" if attrs else f"<{tag}"
        self.text = None if content is None else text(content)
        self.children: list[Element | str] = []

    def sub(self, tag: str, attrs: dict[str, str] | None = None,
            content: str | None = None) -> Element:
        """A new last child (etree.SubElement), returned."""
        child = Element(tag, attrs, content)
        self.children.append(child)
        return child

    def tostring(self) -> bytes:
        """The document with this element as its root, as lxml's pretty_print writes it."""
        out = [DECLARATION]
        self._write(out, "\n", True)
        out.append("\n")
        return "".join(out).encode("utf-8")

    def _write(self, out: list[str], newline: str, formatted: bool) -> None:
        """Append this element's text; `newline` is a line break and this element's
        indentation, for the lines of its children and its end tag."""
        out.append(self.head)
        if self.text is None and not self.children:
            out.append("/>")
            return
        out.append(">")
        if self.text is not None:
            out.append(self.text)
            formatted = False
        inner = newline + INDENT if formatted else ""
        for child in self.children:
            if isinstance(child, str):  # a comment or processing instruction, as text
                out.append(inner + child)
            elif not child.children:  # a leaf, written here: most elements are
                out.append(f"{inner}{child.head}/>" if child.text is None else
                           f"{inner}{child.head}>{child.text}</{child.tag}>")
            else:
                out.append(inner)
                child._write(out, inner, formatted)
        if formatted and self.children:
            out.append(newline)
        out.append(f"</{self.tag}>")


def element(tag: str, head: str, content: str | None) -> Element:
    """An Element from its start tag's text (`<tag` and its attributes, escaped) and its
    escaped text: for a writer that keeps them (wix._Wxs, once per distinct element)."""
    made = Element.__new__(Element)
    made.tag, made.head, made.text, made.children = tag, head, content, []
    return made
