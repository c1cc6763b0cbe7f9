"""The `keras-cmr` console script's entry point, outside the package on purpose.

Importing anything inside `keras_cmr` runs `keras_cmr/__init__.py` first, which imports every
subpackage and so a deep-learning framework (seconds, and C++ start-up lines on stderr). This
module imports the command in the package's lazy mode (`KERAS_CMR_LAZY_IMPORT=1`, set for the
import only), so `keras-cmr --help` and `keras-cmr COMMAND --help` import no framework; a
command that runs loads the framework itself (`keras_cmr.cli.main.main`).
"""

import os
import sys

LAZY_IMPORT_VARIABLE = "KERAS_CMR_LAZY_IMPORT"  # as keras_cmr.LAZY_IMPORT_VARIABLE


def main(argv=None):
    previous = os.environ.get(LAZY_IMPORT_VARIABLE)
    os.environ[LAZY_IMPORT_VARIABLE] = "1"
    try:
        from keras_cmr.cli.main import main as run_command
    finally:
        # Child processes and later imports see the user's setting again.
        if previous is None:
            del os.environ[LAZY_IMPORT_VARIABLE]
        else:
            os.environ[LAZY_IMPORT_VARIABLE] = previous
    return run_command(argv)


if __name__ == "__main__":
    sys.exit(main())
