"""A pytest plugin that keeps one shard of the collected test files: `-p shard_selection`
with KERAS_CMR_TEST_SHARD="i/n" (shard i of n, 0-based).

A file's tests stay together (module fixtures run once). The files are dealt largest first,
each to the shard holding the fewest bytes so far, so every shard gets a similar share of the
suite, and shard i of n is the same set wherever the same files are collected. A shard left
without files passes (the others ran the tests); collecting nothing at all still fails.
"""

import os

import pytest

SHARD_VARIABLE = "KERAS_CMR_TEST_SHARD"
_EMPTY_SHARD = pytest.StashKey[bool]()


def parse_shard(text):
    """(index, count) of "i/n"; ValueError unless 0 <= i < n."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise ValueError(f"{SHARD_VARIABLE} must read 'i/n' (e.g. '0/2'), got {text!r}") from None
    if not 0 <= index < count:
        raise ValueError(f"{SHARD_VARIABLE}={text!r}: the shard index must be in [0, {count})")
    return index, count


def deal_files(paths, count):
    """{path: shard}: `paths` dealt into `count` shards of similar total size in bytes."""
    totals = [0] * count
    shards = {}
    for path in sorted(set(paths), key=lambda p: (-os.path.getsize(p), p)):
        shard = totals.index(min(totals))
        shards[path] = shard
        totals[shard] += os.path.getsize(path)
    return shards


def pytest_collection_modifyitems(config, items):
    text = os.environ.get(SHARD_VARIABLE)
    if not text:
        return
    index, count = parse_shard(text)
    shards = deal_files([str(item.path) for item in items], count)
    kept = [item for item in items if shards[str(item.path)] == index]
    dropped = [item for item in items if shards[str(item.path)] != index]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    items[:] = kept
    config.stash[_EMPTY_SHARD] = not kept and bool(dropped)


def pytest_sessionfinish(session, exitstatus):
    if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED and session.config.stash.get(
            _EMPTY_SHARD, False):
        session.exitstatus = pytest.ExitCode.OK
