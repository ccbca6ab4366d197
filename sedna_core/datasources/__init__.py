"""Datasets as jobs and backends take them: ``BaseDataSource`` and Sedna's file parsers.

::

    from sedna_core.datasources import TxtDataParse
    train = TxtDataParse(data_type="train").parse("/data/train_index.txt")
    train.x, train.y, len(train)
"""

from sedna_core.datasources._base import DATA_TYPES, BaseDataSource, as_x, as_xy
from sedna_core.datasources._csv import CSVDataParse
from sedna_core.datasources._txt import TxtDataParse

__all__ = ["DATA_TYPES", "BaseDataSource", "CSVDataParse", "TxtDataParse", "as_x", "as_xy"]
