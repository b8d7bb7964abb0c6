"""A Windows program that only exits with a given code: 1,024 bytes of PE32+ (x64) with one
section, no imports, its entry point `mov eax, CODE; ret` (returning from an executable's
entry point ends the process with that value, on Windows and in Wine).

It stands in for powershell.exe in a Wine prefix, whose own powershell.exe is a stub that
always exits 0: with it, an MSI's handling of each engine exit code (5, applied and reboot
required, to msiexec's 3010; a failure to 1603 and a rolled-back install) is observed end to
end under Wine's msiexec rather than only read from the tables."""

from __future__ import annotations

import struct

SECTION_ALIGNMENT, FILE_ALIGNMENT = 0x1000, 0x200


def exit_code_exe(code: int) -> bytes:
    text = b"\xb8" + struct.pack("<I", code) + b"\xc3"  # mov eax, code; ret
    dos = b"MZ" + b"\0" * 58 + struct.pack("<I", 0x40)  # e_lfanew: the PE header right after
    # COFF: x64, one section, a 240-byte optional header; executable, large-address aware
    coff = struct.pack("<HHIIIHH", 0x8664, 1, 0, 0, 0, 240, 0x0022)
    # PE32+ standard fields: code size, entry point and base of code at the section's RVA
    optional = struct.pack("<HBBIIIII", 0x20B, 14, 0, FILE_ALIGNMENT, 0, 0, SECTION_ALIGNMENT,
                           SECTION_ALIGNMENT)
    # image base, alignments, OS/image/subsystem versions 6.0, image and header sizes, console
    # subsystem, NX-compatible and terminal-server aware (not relocatable: no .reloc)
    optional += struct.pack("<QIIHHHHHHIIIIHH", 0x140000000, SECTION_ALIGNMENT, FILE_ALIGNMENT,
                            6, 0, 0, 0, 6, 0, 0, 2 * SECTION_ALIGNMENT, FILE_ALIGNMENT, 0, 3,
                            0x8100)
    optional += struct.pack("<QQQQII", 0x100000, 0x1000, 0x100000, 0x1000, 0, 16) + bytes(128)
    section = struct.pack("<8sIIIIIIHHI", b".text", len(text), SECTION_ALIGNMENT,
                          FILE_ALIGNMENT, FILE_ALIGNMENT, 0, 0, 0, 0, 0x60000020)
    head = dos + b"PE\0\0" + coff + optional + section
    return head.ljust(FILE_ALIGNMENT, b"\0") + text.ljust(FILE_ALIGNMENT, b"\0")
