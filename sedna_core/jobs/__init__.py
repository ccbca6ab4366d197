"""The four jobs (Sedna's paradigms). Import each from its own module, or from ``sedna_core``."""
