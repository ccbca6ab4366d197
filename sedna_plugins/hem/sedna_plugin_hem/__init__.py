"""Hard-example miners for sedna-core: Threshold, IBT, CrossEntropy, Random, CloudOnly, EdgeOnly, Confidence, Margin, Entropy."""

__version__ = "0.1.0"
