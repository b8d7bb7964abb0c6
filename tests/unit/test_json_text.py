"""json_text: the whole unsafe class is searched only when a non-ASCII character is unsafe, and
the output is the same as escaping with the whole class every time."""

from __future__ import annotations

import json

from dcomc.cli import _JSON_UNSAFE, _json_escape, json_text


def _reference(data: object) -> str:
    text = json.dumps(data, indent=2, ensure_ascii=False)
    return _JSON_UNSAFE.sub(lambda m: _json_escape(ord(m.group())), text)


def test_json_text_is_the_whole_class_escape() -> None:
    values = ["plain", "§5.1 step 4", "ä\u0085", "a\u202eb", "x\ud800", "ä\ufffe", "\x1b[31m",
              "ä\x1b", "\U0001f600\u200b", "Größe", "\x7f", "\u2028"]
    for value in values:
        for data in ({"v": value}, {"v": value, "w": "§"}, {"v": ["§", value, "plain"]}):
            assert json_text(data) == _reference(data)
    assert "\\u202e" in json_text({"v": "§ a\u202eb"})
    assert "§" in json_text({"v": "§ a\u202eb"})
