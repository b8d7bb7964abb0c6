"""`dcomc explain`: the knowledge base of DCOM errors and the analyses that point a cause at a
plan.
"""
