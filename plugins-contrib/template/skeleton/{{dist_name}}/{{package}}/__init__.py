"""{{ dist_name }}: the {{ algorithm_name }} hard-example miner for sedna-core."""

from {{ package }}.miner import {{ class_name }}

__all__ = ["{{ class_name }}"]
__version__ = "0.1.0"
