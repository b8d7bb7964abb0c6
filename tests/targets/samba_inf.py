"""Run by Debian's /usr/bin/python3 (which has python3-samba): parse an INF security template
with Samba's own parser (samba.gp_parse.gp_inf) and print what it read as JSON."""

import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from samba.gp_parse.gp_inf import GptTmplInfParser


def main() -> None:
    parser = GptTmplInfParser()
    parser.parse(Path(sys.argv[1]).read_bytes())
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
    json.dump(out, sys.stdout)


main()
