"""The shape of one convolution layer, shared by the driver, the cycle model, the
workloads and the design-space exploration."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ConvShape"]


def _positive(name: str, value: object, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"Layer {name} must be an integer, not {value!r}")
    if value < minimum:
        raise ValueError(f"Layer {name} must be at least {minimum}, not {value!r}")


@dataclass(frozen=True)
class ConvShape:
    """A 2D convolution: input (c, h, w), weights (m, c, k, k), stride, zero padding.

    Output is (m, ho, wo) with ``ho = (h + 2·padding − k) // stride + 1`` (likewise wo),
    as ``torch.nn.functional.conv2d`` computes it.
    """

    c: int
    m: int
    h: int
    w: int
    k: int
    stride: int = 1
    padding: int = 0

    def __post_init__(self) -> None:
        for name in ("c", "m", "h", "w", "k", "stride"):
            _positive(name, getattr(self, name))
        _positive("padding", self.padding, 0)
        if self.h + 2 * self.padding < self.k or self.w + 2 * self.padding < self.k:
            raise ValueError(
                f"Layer kernel must fit the padded input ({self.h + 2 * self.padding}x"
                f"{self.w + 2 * self.padding}), not {self.k}")

    @property
    def ho(self) -> int:
        return (self.h + 2 * self.padding - self.k) // self.stride + 1

    @property
    def wo(self) -> int:
        return (self.w + 2 * self.padding - self.k) // self.stride + 1

    @property
    def macs(self) -> int:
        return self.m * self.ho * self.wo * self.c * self.k * self.k
