"""The row order of every epoch: one function of (seed, epoch) for every batch source.

`EpochOrder` says which rows make each batch of epoch e; the `PyDataset`s of the library
(`PairBatches`, `RowBatches`, `RawPairBatches`, `DeviceBatches`) only gather those rows, as
PyTorch separates a `Sampler` (the order) from its `Dataset` (the gathering).
"""

import dataclasses
import functools

import numpy as np

from keras_cmr.utils.checks import check_positive_int, check_seed


@dataclasses.dataclass(frozen=True)
class EpochOrder:
    """The batches of each epoch, as row indices, drawn from (seed, epoch) alone.

    Epoch e's order is `np.random.default_rng([seed, e]).permutation(num_pairs)` (the pairs
    in order without `shuffle`); global batch b holds order[b * B:(b + 1) * B]. With
    `drop_remainder` a last batch of fewer than B pairs is left out. Process p of P
    (`process_index`, `num_processes`) gets the p-th of P equal slices of each global batch
    (B / P pairs; of a last batch of r pairs, r // P, its last r mod P left out so that every
    process feeds as many, and no last batch at all when r < P).

    Args:
        num_pairs: n, the number of rows.
        batch_size: B, the global batch size, divisible by `num_processes`.
        seed: non-negative integer.
        shuffle: a new order each epoch (else the rows in order).
        drop_remainder: leave out a last batch of fewer than B pairs.
        num_processes, process_index: P and p.
    """

    num_pairs: int
    batch_size: int
    seed: int = 0
    shuffle: bool = True
    drop_remainder: bool = False
    num_processes: int = 1
    process_index: int = 0

    def __post_init__(self):
        check_positive_int(self.num_pairs, "num_pairs")
        check_positive_int(self.batch_size, "batch_size")
        check_seed(self.seed)
        check_positive_int(self.num_processes, "num_processes")
        if not 0 <= self.process_index < self.num_processes:
            raise ValueError(f"process_index must be in [0, {self.num_processes}), got "
                             f"{self.process_index!r}.")
        if self.batch_size % self.num_processes:
            raise ValueError(f"the global batch size ({self.batch_size}) must divide by the "
                             f"number of processes ({self.num_processes}).")

    def __len__(self):
        full, last = divmod(self.num_pairs, self.batch_size)
        if self.drop_remainder:
            return full
        return full + (last >= self.num_processes)

    def permutation(self, epoch):
        """Epoch `epoch`'s order of all rows (every process's)."""
        if not self.shuffle:
            return np.arange(self.num_pairs)
        return np.random.default_rng([self.seed, epoch]).permutation(self.num_pairs)

    @functools.lru_cache(maxsize=4)
    def batches(self, epoch):
        """This process's rows of every batch of epoch `epoch`, a tuple of index arrays (drawn
        once per epoch: every batch of an epoch reads them)."""
        order = self.permutation(epoch)
        rows = []
        for index in range(len(self)):
            batch = order[index * self.batch_size:(index + 1) * self.batch_size]
            share = len(batch) // self.num_processes
            rows.append(batch[self.process_index * share:(self.process_index + 1) * share])
        return tuple(rows)

    def rows(self, epoch, index):
        """This process's rows of batch `index` of epoch `epoch` (IndexError out of range)."""
        batches = self.batches(epoch)
        if not -len(batches) <= index < len(batches):
            raise IndexError(f"batch {index} out of range for {len(batches)} batches")
        return batches[index]

