"""Scaling out: scoring on a Ray cluster (``inspector score --engine ray``) and its helpers.

Nothing here is imported unless asked for: ``inspector score`` without ``--engine``
never imports Ray.
"""
