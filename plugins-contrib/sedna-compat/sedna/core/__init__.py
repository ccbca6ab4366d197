"""Sedna's paradigms (``sedna.core.*``), backed by sedna-core's jobs."""
