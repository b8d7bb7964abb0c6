"""Stages 4-5: lowering the spec to the sorted per-host plan, and the lint rules that read the
plan.
"""
