"""Sedna's ``sedna.service``: the servers (``sedna.service.server``)."""
