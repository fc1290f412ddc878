"""gzip decoders, timed in-process on one buffer: the raw cost of decoding.

Each adapter imports its module when it is made (untimed), so only decoding is timed.
"""

from __future__ import annotations

from .base import Adapter


class _Codec(Adapter):
    def __init__(self, spec: dict):
        super().__init__(spec)
        self.decode = self.decoder()

    def decoder(self):
        raise NotImplementedError

    def codec(self, data: bytes, rounds: int) -> int:
        total = 0
        for _ in range(rounds):
            total += len(self.decode(data))
        return total


class Zlib(_Codec):
    def decoder(self):
        import zlib

        return lambda data: zlib.decompress(data, 31)


class Libdeflate(_Codec):
    def decoder(self):
        import deflate

        return deflate.gzip_decompress


class OursCodec(_Codec):
    def decoder(self):
        from cloudfiles_dask import compression

        return lambda data: compression.decompress(data, "gzip")


class OriginalCodec(_Codec):
    def decoder(self):
        from cloudfiles import compression

        return lambda data: compression.decompress(data, "gzip")
