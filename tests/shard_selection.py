"""A pytest plugin that keeps one shard of the collected test files: `-p shard_selection`
with KERAS_CMR_TEST_SHARD="i/n" (shard i of n, 0-based).

A file's tests stay together (module fixtures run once). The files are dealt heaviest first,
each to the shard holding the least work so far, so every shard gets a similar share of the
suite, and shard i of n is the same set wherever the same files are collected. A file's work
is its seconds on this backend in `file_seconds.json` (measured by `run_all_backends.py
--record-seconds`), or, for a file not measured there, its size in bytes at the measured
files' seconds per byte. A shard left without files passes (the others ran the tests);
collecting nothing at all still fails.

With KERAS_CMR_TEST_SECONDS=PATH the plugin writes {file: seconds} of the tests it ran (setup,
call and teardown, files relative to the root directory) to PATH as JSON.
"""

import collections
import json
import os

import pytest

SHARD_VARIABLE = "KERAS_CMR_TEST_SHARD"
SECONDS_VARIABLE = "KERAS_CMR_TEST_SECONDS"
SECONDS_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "file_seconds.json")
_EMPTY_SHARD = pytest.StashKey[bool]()
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


def pytest_collection_modifyitems(config, items):
    text = os.environ.get(SHARD_VARIABLE)
    if not text:
        return
    index, count = parse_shard(text)
    root = str(config.rootpath)
    measured = measured_seconds(os.environ.get("KERAS_BACKEND", ""))
    seconds = {os.path.join(root, name): value for name, value in measured.items()}
    shards = deal_files([str(item.path) for item in items], count, seconds)
    kept = [item for item in items if shards[str(item.path)] == index]
    dropped = [item for item in items if shards[str(item.path)] != index]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    items[:] = kept
    config.stash[_EMPTY_SHARD] = not kept and bool(dropped)


def pytest_runtest_logreport(report):
    if os.environ.get(SECONDS_VARIABLE):
        _seconds_by_file[report.nodeid.split("::")[0]] += report.duration


def pytest_sessionfinish(session, exitstatus):
    if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED and session.config.stash.get(
            _EMPTY_SHARD, False):
        session.exitstatus = pytest.ExitCode.OK
    path = os.environ.get(SECONDS_VARIABLE)
    if path:
        with open(path, "w") as stream:
            json.dump(dict(_seconds_by_file), stream)
