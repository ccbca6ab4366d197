"""The ``sedna`` command."""
