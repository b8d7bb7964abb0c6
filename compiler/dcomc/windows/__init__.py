"""Windows' own encodings the compiler reads and writes: SIDs and security descriptors (SDDL and
binary).
"""
