"""A deliberately broken sedna plugin (tests only)."""
