"""The blob's memory as the firmware sees it: one byte arena per location, numpy strided views per buffer.

A buffer descriptor is (location, offset, dims and byte strides innermost first); tiles, in-place concats and
crops are overlapping views of the same bytes, so every stage reads and writes through such views and the
memory plan is honoured exactly (reference: myriad-blob-format.md §1). Network inputs and outputs each get an
arena of their own (a buffer's offset counts from its I/O buffer's start).
"""

from __future__ import annotations

import numpy as np

from kernelkit.core.errors import KernelkitError

CMX_SLICE_BYTES = 128 * 1024


class Memory:
    """Arenas by location: 'BSS', 'CMX', 'Blob' (the const section, read-only: bytes, or a read-only byte
    array used as it is), ('Input', i), ('Output', i)."""

    def __init__(self, *, bss_size: int, cmx_slices: int, constants,
                 inputs: dict[int, int], outputs: dict[int, int], poison: int | None = None,
                 geometry: dict | None = None):
        from kernelkit.core import limits

        # A header's sizes are what a hostile blob could inflate: each arena is held to the tensor limit.
        for what, size in [("the blob's BSS", bss_size), ("the blob's CMX", cmx_slices * CMX_SLICE_BYTES),
                           *((f"network input {i}", n) for i, n in inputs.items()),
                           *((f"network output {i}", n) for i, n in outputs.items())]:
            limits.TENSOR_BYTES.check(size, what)
        self.arenas: dict = {
            "BSS": np.zeros(max(bss_size, 0), np.uint8),
            "CMX": np.zeros(max(cmx_slices, 1) * CMX_SLICE_BYTES, np.uint8),
            "Blob": constants if isinstance(constants, np.ndarray) and not constants.flags.writeable else
            np.frombuffer(bytes(constants), np.uint8).copy(),
        }
        self.arenas["Blob"].flags.writeable = False
        for index, size in inputs.items():
            self.arenas[("Input", index)] = np.zeros(size, np.uint8)
        for index, size in outputs.items():
            self.arenas[("Output", index)] = np.zeros(size, np.uint8)
        if poison is not None:
            self.poison(poison)
        self._views: dict[int, tuple] = {}
        # Each buffer's shape and strides, once checked against its arena: kept across runs of one program,
        # whose arenas have the same sizes every run (`geometry`, the program's).
        self._geometry = geometry if geometry is not None else {}

    def poison(self, seed: int) -> None:
        """Fill BSS and CMX with random finite fp16 values: a plan read right never reads them back."""
        rng = np.random.default_rng(seed)
        for name in ("BSS", "CMX"):
            arena = self.arenas[name]
            values = rng.uniform(-1000, 1000, arena.size // 2).astype(np.float16)
            arena[:values.size * 2] = values.view(np.uint8)

    def arena(self, buffer) -> np.ndarray:
        key = buffer.location if buffer.location not in ("Input", "Output") else (buffer.location, buffer.io_index)
        if key not in self.arenas:
            raise KernelkitError(f"buffer in location {buffer.location!r} has no memory in this blob",
                                 hint="the blob may be damaged; compile the model again")
        return self.arenas[key]

    def view(self, buffer) -> np.ndarray:
        """The buffer as a numpy view of its arena (blob_reader.Buffer.view), axes in its dims order outermost
        first (NCHW order for 'NCHW')."""
        if not buffer.dims or not buffer.strides:
            raise KernelkitError(f"a {buffer.location} buffer has a dynamic shape (held in an output); the "
                                 "interpreter runs static shapes only",
                                 hint="compile the model with static input shapes (kernelkit patch --input-shape)")
        # A stage reads each buffer several times and the program's buffers live as long as this memory.
        known = self._views.get(id(buffer))
        if known is not None and known[0] is buffer:
            return known[1]
        arena = self.arena(buffer)
        shape = self._geometry.get(id(buffer))
        if shape is not None and shape[0] is buffer and shape[1] == arena.size:
            view = np.ndarray(shape[2], shape[4], arena, buffer.offset, shape[3])
        else:
            view = buffer.view(arena)
            self._geometry[id(buffer)] = (buffer, arena.size, view.shape, view.strides, view.dtype)
        self._views[id(buffer)] = (buffer, view)
        return view


def logical(view: np.ndarray, order: str, letters: str) -> np.ndarray:
    """`view` (axes in `order`) transposed to the axes `letters` (missing letters become size-1 axes)."""
    missing = [letter for letter in letters if letter not in order]
    full = view.reshape(view.shape + (1,) * len(missing))
    full_order = order + "".join(missing)
    return full.transpose([full_order.index(letter) for letter in letters])
