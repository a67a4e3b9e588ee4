"""Vectorised building blocks: deterministic random streams and Arrow string columns.

The bulk generator produces millions of rows, so strings are never built one Python object at
a time: they are gathered from small dictionaries with ``take``, joined with Arrow compute, or
written byte-by-byte into one buffer (GUIDs, hex ids) and wrapped as an Arrow string array.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

TICKS_PER_SECOND = 10_000_000
# .NET DateTime ticks at the Unix epoch: Exchange puts (ticks >> 16) in a NetworkMessageId.
NET_EPOCH_TICKS = 621_355_968_000_000_000

_HEX_LOWER = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_HEX_UPPER = np.frombuffer(b"0123456789ABCDEF", dtype=np.uint8)


def stable_hash(text: str) -> int:
    """FNV-1a of the UTF-8 text: a string hash that, unlike ``hash``, is the same in every
    process (bundles must be byte-identical across runs)."""
    h = 2166136261
    for ch in text.encode("utf-8"):
        h = ((h ^ ch) * 16777619) & 0xFFFFFFFF
    return h


def rng_for(seed: int, *tags: str | int) -> np.random.Generator:
    """An independent, reproducible random stream for one part of the generator.

    Streams are keyed by names rather than drawn in sequence, so adding a campaign or a flow
    does not shift the randomness of every other part.
    """
    words = [seed & 0xFFFFFFFF, (seed >> 32) & 0xFFFFFFFF]
    for tag in tags:
        words.append(zlib.crc32(tag.encode()) if isinstance(tag, str) else int(tag) & 0xFFFFFFFF)
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(words)))


def _strings_from_matrix(chars: np.ndarray) -> pa.StringArray:
    """Rows of a fixed-width uint8 matrix as an Arrow string array (no Python objects)."""
    n, width = chars.shape
    offsets = np.arange(0, n * width + 1, width, dtype=np.int32)
    data = np.ascontiguousarray(chars).tobytes()
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets.tobytes()), pa.py_buffer(data))


def _hex_matrix(raw: np.ndarray, upper: bool = False) -> np.ndarray:
    table = _HEX_UPPER if upper else _HEX_LOWER
    n, nbytes = raw.shape
    out = np.empty((n, nbytes * 2), dtype=np.uint8)
    out[:, 0::2] = table[raw >> 4]
    out[:, 1::2] = table[raw & 15]
    return out


def hex_strings(rng: np.random.Generator, n: int, nchars: int, upper: bool = False) -> pa.Array:
    """``n`` random hex strings of ``nchars`` characters."""
    raw = rng.integers(0, 256, size=(n, (nchars + 1) // 2), dtype=np.uint8)
    return _strings_from_matrix(_hex_matrix(raw, upper)[:, :nchars])


def guids(rng: np.random.Generator, n: int, ticks: np.ndarray | None = None) -> pa.Array:
    """Random GUID strings. With ``ticks`` (100 ns since the Unix epoch) the last group holds
    the top 48 bits of the .NET ticks, which is how Exchange NetworkMessageIds look
    (``...-08de1c2f4a7b``)."""
    raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    if ticks is not None:
        net = (np.asarray(ticks, dtype=np.int64) + NET_EPOCH_TICKS) >> 16
        for i in range(6):
            raw[:, 15 - i] = ((net >> (8 * i)) & 0xFF).astype(np.uint8)
    hx = _hex_matrix(raw)
    out = np.full((n, 36), ord("-"), dtype=np.uint8)
    out[:, 0:8] = hx[:, 0:8]
    out[:, 9:13] = hx[:, 8:12]
    out[:, 14:18] = hx[:, 12:16]
    out[:, 19:23] = hx[:, 16:20]
    out[:, 24:36] = hx[:, 20:32]
    return _strings_from_matrix(out)


def take(values: pa.Array | Sequence[str], idx: np.ndarray) -> pa.Array:
    """Gather strings by index (``values`` may be a Python list)."""
    arr = values if isinstance(values, pa.Array) else pa.array(list(values), type=pa.string())
    return arr.take(pa.array(np.asarray(idx, dtype=np.int64)))


def const(value: str, n: int) -> pa.Array:
    return take(pa.array([value], type=pa.string()), np.zeros(n, dtype=np.int64))


_EMPTY = pa.scalar("", pa.string())


def join(*parts: pa.Array | str) -> pa.Array:
    """Element-wise concatenation of string arrays and literal strings.

    Literals are passed as Arrow scalars: pyarrow probes plain Python arguments for pandas
    types, which costs a failed import per call when pandas is absent.
    """
    args = [pa.scalar(p, pa.string()) if isinstance(p, str) else p for p in parts]
    return pc.binary_join_element_wise(*args, _EMPTY)


def int_str(values: np.ndarray, width: int = 0) -> pa.Array:
    """Integers as decimal strings, zero-padded to ``width`` when given."""
    s = pc.cast(pa.array(np.asarray(values, dtype=np.int64)), pa.string())
    return pc.utf8_lpad(s, width=width, padding="0") if width else s


def where(mask: np.ndarray, a: pa.Array, b: pa.Array) -> pa.Array:
    return pc.if_else(pa.array(np.asarray(mask, dtype=bool)), a, b)


def iso_timestamps(ticks: np.ndarray, digits: int = 7, whole_mask: np.ndarray | None = None
                   ) -> pa.Array:
    """ISO 8601 UTC text (``2026-11-03T14:05:11.1234567Z``) from 100 ns ticks.

    ``whole_mask`` marks rows written without a fraction, as KQL renders a datetime whose
    fraction is zero; their ticks must already be whole seconds.
    """
    ticks = np.asarray(ticks, dtype=np.int64)
    secs = ticks // TICKS_PER_SECOND
    base = pa.array(np.datetime_as_string(secs.astype("datetime64[s]"), unit="s"))
    if digits == 0:
        return join(base, "Z")
    frac = (ticks % TICKS_PER_SECOND) // (10 ** (7 - digits))
    full = join(base, ".", int_str(frac, digits), "Z")
    if whole_mask is None:
        return full
    return where(whole_mask, join(base, "Z"), full)


def us_datetimes(ticks: np.ndarray) -> pa.Array:
    """``11/3/2026 2:05:11 PM``: how PowerShell's Export-Csv writes a DateTime in en-US."""
    secs = np.asarray(ticks, dtype=np.int64) // TICKS_PER_SECOND
    dt = secs.astype("datetime64[s]")
    days = dt.astype("datetime64[D]")
    months = dt.astype("datetime64[M]")
    years = dt.astype("datetime64[Y]")
    month = (months - years.astype("datetime64[M]")).astype(np.int64) + 1
    day = (days - months.astype("datetime64[D]")).astype(np.int64) + 1
    year = years.astype(np.int64) + 1970
    sod = secs - days.astype(np.int64) * 86400
    hour = sod // 3600
    minute = (sod // 60) % 60
    second = sod % 60
    h12 = np.where(hour % 12 == 0, 12, hour % 12)
    ampm = take(["AM", "PM"], (hour >= 12).astype(np.int64))
    return join(int_str(month), "/", int_str(day), "/", int_str(year), " ", int_str(h12), ":",
                int_str(minute, 2), ":", int_str(second, 2), " ", ampm)


def json_escape(values: pa.Array) -> pa.Array:
    """Escape strings for embedding in a JSON string literal (quotes, backslashes, controls)."""
    if not pc.any(pc.match_substring_regex(values, r'["\\\x00-\x1f]')).as_py():
        return values  # most columns (ids, addresses, IPs) need nothing
    out = pc.replace_substring(values, "\\", "\\\\")
    out = pc.replace_substring(out, '"', '\\"')
    for ch, rep in (("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t"), ("\x1b", "\\u001b")):
        out = pc.replace_substring(out, ch, rep)
    return out


def json_string_or_null(values: pa.Array) -> pa.Array:
    """``"value"`` as a JSON literal, or ``null`` for an empty string."""
    quoted = join('"', json_escape(values), '"')
    empty = pc.equal(values, "")
    return pc.if_else(empty, pa.scalar("null"), quoted)


def coprime_steps(rng: np.random.Generator, n: int, modulus: int) -> np.ndarray:
    """Random steps in ``1..modulus-1`` coprime to ``modulus``: stepping through a pool with
    one of them visits distinct members, so one message never names a recipient twice."""
    if modulus <= 2:
        return np.ones(n, dtype=np.int64)
    cand = np.arange(1, modulus, dtype=np.int64)
    cand = cand[np.gcd(cand, modulus) == 1]
    return cand[rng.integers(0, len(cand), size=n)]


def concat_bytes(values: pa.Array | pa.ChunkedArray) -> bytes:
    """The UTF-8 bytes of all strings back to back, straight from the Arrow buffers."""
    if isinstance(values, pa.ChunkedArray):
        return b"".join(concat_bytes(c) for c in values.chunks)
    if len(values) == 0:
        return b""
    if values.null_count:
        values = pc.fill_null(values, "")
    if values.type == pa.large_string():
        width = np.int64
    else:
        values = values.cast(pa.string())
        width = np.int32
    _, offsets_buf, data = values.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=width)
    lo = int(offsets[values.offset])
    hi = int(offsets[values.offset + len(values)])
    return data.slice(lo, hi - lo).to_pybytes() if data is not None else b""
