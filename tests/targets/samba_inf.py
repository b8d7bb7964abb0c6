"""Run by Debian's /usr/bin/python3 (which has python3-samba): parse INF security templates
with Samba's own parser (samba.gp_parse.gp_inf) and print what it read as JSON, one line per
file named on the command line (one process for a batch)."""

import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from samba.gp_parse.gp_inf import GptTmplInfParser


def read(path: str) -> dict:
    parser = GptTmplInfParser()
    parser.parse(Path(path).read_bytes())
    out = {}
    for name, section in parser.sections.items():
        root = ET.Element("s")
        section.build_xml(root)
        params = []
        for param in root.findall("Parameter"):
            key = param.find("Key")
            values = [v.text for v in param.findall("Value")]
            params.append({"key": key.text if key is not None else None, "values": values})
        if params:
            out[name] = params
    return out


def main() -> None:
    for path in sys.argv[1:]:
        sys.stdout.write(json.dumps(read(path)) + "\n")


main()
