"""The migration's error: a knowledge-base error with what to do about it."""

from sedna_core.errors import KnowledgeBaseError

__all__ = ["MigrationError"]


class MigrationError(KnowledgeBaseError):
    """A Sedna knowledge base cannot be imported (not local, unreadable, or incomplete)."""
