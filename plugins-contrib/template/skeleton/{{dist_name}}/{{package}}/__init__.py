"""{{ dist_name }}: a sedna-core plugin.

It registers ``{{ algorithm_name }}``, of kind ``{{ kind }}``.
"""

from .{{ module }} import {{ class_name }}

__all__ = ["{{ class_name }}"]
__version__ = "0.1.0"
