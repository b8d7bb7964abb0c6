"""Stages 1-2: reading a spec file (YAML with spans) into the typed spec, and what the spec may
name (the product catalog).
"""
