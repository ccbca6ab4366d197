"""Sedna's ``LOGGER``: a standard-library logger, printed through sedna-core's log setup.

Sedna's ``LOGGER.info("round %s", n)`` calls keep working; the lines come out in sedna-core's
format (``SEDNA_LOG_FORMAT``) at ``LOG_LEVEL``.
"""

from __future__ import annotations

import logging

from sedna_core.log import configure_logging

__all__ = ["LOGGER", "Logger", "sedna_logger"]


class Logger:
    """Sedna's logger holder: ``Logger(name).logger``."""

    def __init__(self, level: str | None = None, name: str = "sedna") -> None:
        configure_logging(level)
        self.logger = logging.getLogger(name)


sedna_logger = Logger()
LOGGER = sedna_logger.logger
