"""dcomc: compile a site spec for secure OPC Classic DCOM into per-host artifacts.

Pipeline (one module per stage): load → spec → check → lower → (targets) emit.
"""

__version__ = "0.1.0"
