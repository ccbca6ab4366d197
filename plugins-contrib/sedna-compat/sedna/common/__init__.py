"""Sedna's ``sedna.common``: config (``Context``, ``BaseConfig``), ``ClassFactory``, ``FileOps``,
``LOGGER``."""
