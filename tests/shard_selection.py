"""A pytest plugin that keeps one shard of the test files: `-p shard_selection` with
KERAS_CMR_TEST_SHARD="i/n" (shard i of n, 0-based).

The test files under the given paths are dealt before collection, so a process imports only
its own shard's test modules. A file's tests stay together (module fixtures run once). The
files are dealt heaviest first, each to the shard holding the least work so far, so every
shard gets a similar share of the suite, and shard i of n is the same set wherever the same
files are given. A file's work is its seconds on this backend in `file_seconds.json` (measured
by `run_all_backends.py --record-seconds`), or, for a file not measured there, its size in
bytes at the measured files' seconds per byte. A shard left without files passes (the others
ran the tests); collecting nothing at all still fails.

With KERAS_CMR_TEST_SECONDS=PATH the plugin writes {file: seconds} of the tests it ran (setup,
call and teardown, files relative to the root directory) to PATH as JSON.
"""

import collections
import fnmatch
import json
import os
import pathlib

import pytest

SHARD_VARIABLE = "KERAS_CMR_TEST_SHARD"
SECONDS_VARIABLE = "KERAS_CMR_TEST_SECONDS"
SECONDS_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "file_seconds.json")
_SHARD = pytest.StashKey[tuple]()  # (this shard's files, every dealt file)
_seconds_by_file = collections.Counter()  # this process's session only


def parse_shard(text):
    """(index, count) of "i/n"; ValueError unless 0 <= i < n."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise ValueError(f"{SHARD_VARIABLE} must read 'i/n' (e.g. '0/2'), got {text!r}") from None
    if not 0 <= index < count:
        raise ValueError(f"{SHARD_VARIABLE}={text!r}: the shard index must be in [0, {count})")
    return index, count


def measured_seconds(backend, path=SECONDS_FILE):
    """{file relative to the repository root: seconds} of `backend` in `path` ({} without)."""
    if not os.path.exists(path):
        return {}
    with open(path) as stream:
        return json.load(stream).get(backend, {})


def deal_files(paths, count, seconds=None):
    """{path: shard}: `paths` dealt into `count` shards of similar total work, a path's work
    being `seconds[path]` where given, else its size in bytes at the given paths' seconds per
    byte (1 when none is given)."""
    paths = sorted(set(paths))
    seconds = {path: seconds[path] for path in paths if path in (seconds or {})}
    sizes = {path: os.path.getsize(path) for path in paths}
    measured_bytes = sum(sizes[path] for path in seconds)
    rate = sum(seconds.values()) / measured_bytes if measured_bytes else 1.0
    work = {path: seconds.get(path, sizes[path] * rate) for path in paths}
    totals = [0.0] * count
    shards = {}
    for path in sorted(paths, key=lambda p: (-work[p], p)):
        shard = totals.index(min(totals))
        shards[path] = shard
        totals[shard] += work[path]
    return shards


def given_test_files(args, patterns, base):
    """The absolute paths of the files named in `args` (pytest's arguments, relative to
    `base`) and of the files matching `patterns` under the folders named there."""
    files = set()
    for arg in args:
        path = pathlib.Path(base, arg.split("::")[0])
        if path.is_dir():
            files.update(str(found) for found in path.rglob("*.py")
                         if any(fnmatch.fnmatch(found.name, pattern) for pattern in patterns))
        elif path.is_file():
            files.add(str(path))
    return {os.path.abspath(name) for name in files}


def pytest_configure(config):
    text = os.environ.get(SHARD_VARIABLE)
    if not text:
        return
    index, count = parse_shard(text)
    base = (config.rootpath if config.args_source == pytest.Config.ArgsSource.TESTPATHS
            else config.invocation_params.dir)
    files = given_test_files(config.args, config.getini("python_files"), base)
    root = str(config.rootpath)
    measured = measured_seconds(os.environ.get("KERAS_BACKEND", ""))
    seconds = {os.path.join(root, name): value for name, value in measured.items()}
    shards = deal_files(files, count, seconds)
    config.stash[_SHARD] = ({path for path, shard in shards.items() if shard == index}, files)


def pytest_ignore_collect(collection_path, config):
    kept, files = config.stash.get(_SHARD, (None, ()))
    path = os.path.abspath(collection_path)
    if path in files and path not in kept:
        return True
    return None


def pytest_runtest_logreport(report):
    if os.environ.get(SECONDS_VARIABLE):
        _seconds_by_file[report.nodeid.split("::")[0]] += report.duration


def pytest_sessionfinish(session, exitstatus):
    kept, files = session.config.stash.get(_SHARD, (None, ()))
    if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED and files and not kept:
        session.exitstatus = pytest.ExitCode.OK
    path = os.environ.get(SECONDS_VARIABLE)
    if path:
        with open(path, "w") as stream:
            json.dump(dict(_seconds_by_file), stream)
