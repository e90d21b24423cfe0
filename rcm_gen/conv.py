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
    """A 2D convolution: input (c, h, w), weights (m, c/groups, k, k), stride, padding.

    Output is (m, ho, wo) with ``ho = (h + pad_top + pad_bottom − k) // stride + 1``
    (likewise wo), as ``torch.nn.functional.conv2d`` computes it.  ``padding`` pads every
    side alike; ``pads`` = (top, bottom, left, right) gives each side its own (TFLite's
    ``SAME`` padding is asymmetric when the total is odd) and then ``padding`` must be 0.
    ``groups`` splits the channels into groups convolved separately (``groups = c``:
    depthwise, with ``m / c`` outputs per input channel); a fully connected layer is a 1×1
    convolution of a 1×1 input.
    """

    c: int
    m: int
    h: int
    w: int
    k: int
    stride: int = 1
    padding: int = 0
    groups: int = 1
    pads: tuple[int, int, int, int] | None = None

    def __post_init__(self) -> None:
        for name in ("c", "m", "h", "w", "k", "stride", "groups"):
            _positive(name, getattr(self, name))
        _positive("padding", self.padding, 0)
        if self.pads is not None:
            pads = self.pads
            if isinstance(pads, list):
                pads = tuple(pads)
                object.__setattr__(self, "pads", pads)
            if not isinstance(pads, tuple) or len(pads) != 4:
                raise TypeError(f"Layer pads must be (top, bottom, left, right), not {pads!r}")
            for side, value in zip(("top", "bottom", "left", "right"), pads, strict=True):
                _positive(f"pad_{side}", value, 0)
            if self.padding:
                raise ValueError(f"Layer padding must be 0 when pads are given, not "
                                 f"{self.padding!r}")
        if self.c % self.groups or self.m % self.groups:
            raise ValueError(f"Layer groups must divide the input and output channels "
                             f"({self.c}, {self.m}), not {self.groups!r}")
        if (self.h + self.pad_top + self.pad_bottom < self.k
                or self.w + self.pad_left + self.pad_right < self.k):
            raise ValueError(
                f"Layer kernel must fit the padded input ({self.h + self.pad_top + self.pad_bottom}"
                f"x{self.w + self.pad_left + self.pad_right}), not {self.k}")

    @property
    def pad_top(self) -> int:
        return self.pads[0] if self.pads else self.padding

    @property
    def pad_bottom(self) -> int:
        return self.pads[1] if self.pads else self.padding

    @property
    def pad_left(self) -> int:
        return self.pads[2] if self.pads else self.padding

    @property
    def pad_right(self) -> int:
        return self.pads[3] if self.pads else self.padding

    @property
    def ho(self) -> int:
        return (self.h + self.pad_top + self.pad_bottom - self.k) // self.stride + 1

    @property
    def wo(self) -> int:
        return (self.w + self.pad_left + self.pad_right - self.k) // self.stride + 1

    @property
    def group_in(self) -> int:
        """Input channels of one group."""
        return self.c // self.groups

    @property
    def group_out(self) -> int:
        """Output channels of one group."""
        return self.m // self.groups

    @property
    def macs(self) -> int:
        return self.m * self.ho * self.wo * self.group_in * self.k * self.k

    def to_dict(self) -> dict[str, object]:
        """The fields that differ from their defaults (``c m h w k`` always)."""
        out: dict[str, object] = {f: getattr(self, f) for f in ("c", "m", "h", "w", "k")}
        for name, default in (("stride", 1), ("padding", 0), ("groups", 1), ("pads", None)):
            value = getattr(self, name)
            if value != default:
                out[name] = list(value) if isinstance(value, tuple) else value
        return out

    def __str__(self) -> str:
        pad = (f"pads={list(self.pads)}" if self.pads else f"pad={self.padding}")
        grp = f" groups={self.groups}" if self.groups != 1 else ""
        return (f"{self.c}->{self.m} {self.h}x{self.w} k{self.k} s{self.stride} {pad}{grp}")
