"""XGBoost backend for sedna-core: native JSON/UBJ model files."""

__version__ = "0.1.0"
