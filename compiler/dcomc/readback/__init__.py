"""Commands that read what dcomc or Windows wrote: inspect, diff, drift.
"""
