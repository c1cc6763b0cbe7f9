"""The `keras-cmr` console script's entry point, outside the package on purpose.

`import keras_cmr` registers every class with Keras' serialization, so it imports Keras and
its backend: seconds, and C++ start-up lines on stderr. The command's parser needs only
framework-free modules of the package (`keras_cmr.cli`'s argument builders, which import
`keras_cmr.methods`, `keras_cmr.config` and `keras_cmr.options`), but Python runs a
package's `__init__` before any module inside it. This module therefore puts the `keras_cmr`
package in `sys.modules` with its `__init__` not yet run, builds the parser and parses the
command line there, makes the command's framework-free checks (a finished run that only
--overwrite may replace, ...), and runs `__init__` only for a command that runs, with the
start-up lines held back (`keras_cmr.cli.quiet`). `--help`, usage errors and those refusals
import no framework; the package itself has one way of being imported.
"""

import contextlib
import importlib.util
import sys

PACKAGE = "keras_cmr"
# The keras_cmr module whose `__init__` has not run yet, while there is one.
_pending_package = None


def main(argv=None):
    """Runs `keras-cmr` with `argv` (default: sys.argv); returns the exit status."""
    _import_package_without_init()
    from keras_cmr.cli import main as command
    from keras_cmr.cli import quiet

    args = command.parse(argv)
    status = command.check(args)
    if status:
        return status
    with contextlib.nullcontext() if args.verbose else quiet.start_up_lines_filtered():
        _run_package_init()
        quiet.import_tensorflow_if_used(args.command)
    return command.run(args)


def _import_package_without_init():
    """Puts the keras_cmr package in `sys.modules` without running its `__init__`, unless it
    is imported already: its modules can then be imported, the package's own code waits."""
    global _pending_package
    if PACKAGE not in sys.modules:
        _pending_package = importlib.util.module_from_spec(importlib.util.find_spec(PACKAGE))
        sys.modules[PACKAGE] = _pending_package


def _run_package_init():
    """Runs the `__init__` that `_import_package_without_init` held back (once)."""
    global _pending_package
    package, _pending_package = _pending_package, None
    if package is not None:
        package.__spec__.loader.exec_module(package)


if __name__ == "__main__":
    sys.exit(main())
