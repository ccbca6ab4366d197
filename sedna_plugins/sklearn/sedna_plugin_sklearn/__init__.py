"""scikit-learn backend for sedna-core: models stored with skops."""

__version__ = "0.1.0"
