"""Compiled (numba) passes of `keras_cmr.evaluation.ranking`: order keys, and ranks from them.

A block of float32 scores is ranked in three passes: `order_keys` turns each score and its
relevance into one int32 key, numpy's `keys.sort(axis=1)` sorts them by value, and
`relevant_ranks` reads the relevant items' ranks off the sorted keys, re-ranking items of equal
score by gallery index. numpy needed about ten element-wise calls for the same work (2x the
row sort; benchmarks/README.md, evaluation, "third session"); each kernel here is one pass.

Relevance comes either from class codes (`query_codes[row] == gallery_codes[column]`, with
`relevant` None) or from a bool `relevant` array (with both codes None). The kernels release
the GIL, so the ranking threads of `ranking` run them in parallel.

The kernels are plain Python functions until the first call of `order_keys` or
`relevant_ranks` hands them to numba (`_compile`): `import numba` alone took 0.23-0.34 s (our
measurement), which every `import keras_cmr` would otherwise pay.
"""

import threading

import numpy as np

# Rows with more tie groups than this are re-sorted whole (stably) instead of scanned once per
# group: a scan took 1 us at 10k columns and 3-5 us at 40k, the re-sort 70 us and 2 ms (our
# measurement), so the two meet near 64 groups.
_MAX_TIE_GROUPS = 64
# Scores compared per step when scanning a row for a tied value (vectorised any-equal).
_SCAN_STEP = 64
# The names of the kernels that `_compile` replaces by numba dispatchers, and whether it has.
_KERNELS = []
_compiled = False
_compile_lock = threading.Lock()


def _kernel(function):
    """Marks `function` for `numba.njit(nogil=True, cache=True)` in `_compile`."""
    _KERNELS.append(function.__name__)
    return function


def _compile():
    """Replaces each kernel of this module by its numba dispatcher, once per process; the
    kernels then call each other's dispatchers (numba reads this module's globals)."""
    global _compiled
    with _compile_lock:  # the ranking threads may make the first calls together
        if _compiled:
            return
        import numba
        from numba.extending import overload

        overload(_is_relevant, jit_options={"nogil": True})(_is_relevant_for)
        kernels = globals()
        for name in _KERNELS:
            kernels[name] = numba.njit(nogil=True, cache=True)(kernels[name])
        _compiled = True


def _is_relevant(query_codes, gallery_codes, relevant, row, column):
    """Whether gallery item `column` is relevant to query `row`, inside the kernels."""
    raise NotImplementedError("compiled only: see the overload below")


# numba compiles one of the two per call's types (its branch pruning on `is None` did not
# remove the other branch's code, which then failed to type). `_compile` registers it.
def _is_relevant_for(query_codes, gallery_codes, relevant, row, column):
    from numba.core import types

    if isinstance(relevant, types.NoneType):
        return lambda query_codes, gallery_codes, relevant, row, column: (
            gallery_codes[column] == query_codes[row])
    return lambda query_codes, gallery_codes, relevant, row, column: relevant[row, column]


@_kernel
def _order_value(bits):
    """An int of the same order as the float32 with these bits: its magnitude bits m, negated
    for a negative float, so -0.0 and +0.0 both get 0 (they tie)."""
    magnitude = np.int32(bits & np.int32(0x7FFFFFFF))
    return np.int32(-magnitude) if bits < 0 else magnitude


def order_keys(bits, query_codes, gallery_codes, relevant, keys):
    """Writes int32 keys 2 * v + rel of the float32 scores whose bits are `bits` into `keys`.

    v is `_order_value` of the score (|cos| < 2 leaves its top bit free for the shift) and rel
    1 for a relevant item, so that a value sort puts a relevant item after the irrelevant ones
    of equal score. Returns how many items are relevant.
    """
    if not _compiled:
        _compile()
    return _order_keys(bits, query_codes, gallery_codes, relevant, keys)


@_kernel
def _order_keys(bits, query_codes, gallery_codes, relevant, keys):
    """The kernel of `order_keys`."""
    n_rows, n_columns = bits.shape
    total = 0
    for row in range(n_rows):
        for column in range(n_columns):
            rel = np.int32(_is_relevant(query_codes, gallery_codes, relevant, row, column))
            keys[row, column] = (_order_value(bits[row, column]) << 1) | rel
            total += rel
    return total


def relevant_ranks(keys, bits, query_codes, gallery_codes, relevant, counts, precision_sums,
                   rows, ranks, k):
    """Ranks of the relevant items from the row-sorted `keys` of `order_keys`.

    Writes `counts` (relevant items per row), `precision_sums` (per row, the sum of k / rank
    over its relevant items, in the order below) and, for every relevant item in row-major order
    and within a row best rank last, its `rows` index, its 1-based `ranks` (descending by score,
    equal scores by gallery index, lowest first) and `k` (relevant items at or above it).
    `bits` are the scores' bits in gallery order; `ranks` needs one slot more than the relevant
    items (the scan writes every column there and advances past the relevant ones only).
    """
    if not _compiled:
        _compile()
    _relevant_ranks(keys, bits, query_codes, gallery_codes, relevant, counts, precision_sums,
                    rows, ranks, k)


@_kernel
def _relevant_ranks(keys, bits, query_codes, gallery_codes, relevant, counts, precision_sums,
                    rows, ranks, k):
    """The kernel of `relevant_ranks`."""
    n_rows, n_columns = keys.shape
    end = 0
    for row in range(n_rows):
        start = end
        row_keys = keys[row]
        for column in range(n_columns):
            ranks[end] = column
            end += row_keys[column] & 1
        # A relevant key 2v+1 right after an irrelevant 2v starts a tie group: equal scores
        # that the value sort did not order by gallery index.
        groups = 0
        for hit in range(start, end):
            column = ranks[hit]
            if column > 0 and row_keys[column - 1] == row_keys[column] - 1:
                groups += 1
        if groups > _MAX_TIE_GROUPS:
            _stable_columns(bits, query_codes, gallery_codes, relevant, row, ranks[start:end])
        elif groups:
            hit = start
            while hit < end:
                column = ranks[hit]
                if column > 0 and row_keys[column - 1] == row_keys[column] - 1:
                    hit += _reorder_tie_group(row_keys, bits[row], query_codes, gallery_codes,
                                              relevant, row, ranks, hit, end)
                else:
                    hit += 1
        counts[row] = end - start
        precision_sum = 0.0
        for hit in range(start, end):
            rows[hit] = row
            ranks[hit] = n_columns - ranks[hit]  # ascending columns are descending ranks
            k[hit] = end - hit
            precision_sum += k[hit] / ranks[hit]
        precision_sums[row] = precision_sum


@_kernel
def _reorder_tie_group(row_keys, row_bits, query_codes, gallery_codes, relevant, row, columns,
                       first_hit, end):
    """Hands the columns of one tie group to its members by gallery index, in `columns`.

    The group's relevant items are the hits `first_hit`, `first_hit + 1`, ... (of `columns`,
    ascending) whose key is that of `first_hit`; the group keeps its columns, the member of
    lowest gallery index taking the highest. Returns how many relevant items the group has.
    """
    key = row_keys[columns[first_hit]]
    n_hits = 1
    while first_hit + n_hits < end and row_keys[columns[first_hit + n_hits]] == key:
        n_hits += 1
    top_column = columns[first_hit] + n_hits - 1
    # The group's float32 bits: equal to a member's bits, or, for the value 0, to them
    # without the sign bit (-0.0 ties with +0.0).
    value = np.int32(key >> 1)
    target = value if value >= 0 else np.int32((-value) | np.int32(-(2**31)))
    mask = np.int32(-1) if value != 0 else np.int32(0x7FFFFFFF)
    n_columns = len(row_bits)
    # (first hit, hits, top column, members so far, relevant members so far)
    group = (first_hit, n_hits, top_column, 0, 0)
    whole_steps = n_columns - n_columns % _SCAN_STEP
    for step in range(0, whole_steps, _SCAN_STEP):
        # A fixed-length any-equal compiles to vector compares (3-5x faster than a loop with a
        # variable end, our measurement at 40k).
        found = np.int32(0)
        for offset in range(_SCAN_STEP):
            found |= np.int32(((row_bits[step + offset] ^ target) & mask) == 0)
        if found:
            group = _hand_out(row_bits, target, mask, query_codes, gallery_codes, relevant, row,
                              columns, step, step + _SCAN_STEP, group)
    _hand_out(row_bits, target, mask, query_codes, gallery_codes, relevant, row, columns,
              whole_steps, n_columns, group)
    return n_hits


@_kernel
def _hand_out(row_bits, target, mask, query_codes, gallery_codes, relevant, row, columns, start,
              stop, group):
    """`_reorder_tie_group` over gallery items `start:stop`: the members found there take the
    group's next columns; returns the group's state, updated."""
    first_hit, n_hits, top_column, members, relevant_members = group
    for column in range(start, stop):
        if ((row_bits[column] ^ target) & mask) == 0:
            if _is_relevant(query_codes, gallery_codes, relevant, row, column):
                columns[first_hit + n_hits - 1 - relevant_members] = top_column - members
                relevant_members += 1
            members += 1
    return first_hit, n_hits, top_column, members, relevant_members


@_kernel
def _stable_columns(bits, query_codes, gallery_codes, relevant, row, columns):
    """Writes the sorted columns of the relevant items of one row into `columns`, ascending,
    equal scores ordered by gallery index: the row re-sorted with the index in an int64 key."""
    n_columns = bits.shape[1]
    wide = np.empty(n_columns, np.int64)
    for column in range(n_columns):
        # (v, n - 1 - index): the lowest index of equal scores sorts last, i.e. ranks first.
        wide[column] = (np.int64(_order_value(bits[row, column])) << 32) | (n_columns - 1 - column)
    wide.sort()
    hit = 0
    for position in range(n_columns):
        column = n_columns - 1 - (wide[position] & 0xFFFFFFFF)
        if _is_relevant(query_codes, gallery_codes, relevant, row, column):
            columns[hit] = position
            hit += 1
