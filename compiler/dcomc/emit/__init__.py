"""Stage 6: the bundle on disk: artifacts through the target registry, the review report, the plan
as text.
"""
