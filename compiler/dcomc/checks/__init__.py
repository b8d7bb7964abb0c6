"""Stage 3: whole-spec rules the models cannot express, every problem reported with its span.
"""
