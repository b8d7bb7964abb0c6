"""The names of a bundle's own files, read by the bundle writer and by every command that reads
a bundle back (diff, verify, sign), so that neither side has to import the other."""

from __future__ import annotations

MANIFEST = "manifest.json"
