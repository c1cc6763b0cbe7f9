"""The kinds of label noise of `keras_cmr.datasets.noise` (defined there), in a module that
imports nothing, so that the command line offers them without importing a framework."""

NOISE_KINDS = ("symmetric", "asymmetric")
