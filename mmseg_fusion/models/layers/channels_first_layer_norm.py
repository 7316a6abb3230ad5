"""Layer normalisation over the channel axis of a channels-first tensor of any rank."""
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS

from ...utils.checks import check_positive_int


@MODELS.register_module()
class ChannelsFirstLayerNorm(nn.Module):
    """LayerNorm over C of an (N, C, *spatial) tensor, with a per-channel affine.

    As in ConvNeXt ("A ConvNet for the 2020s", Liu et al., 2022) and D-Net ("D-Net:
    Dynamic Large Kernel with Dynamic Feature Fusion for Volumetric Medical Image
    Segmentation", arXiv 2403.10674), which permute to channels-last, apply
    ``nn.LayerNorm(C)`` and permute back. Each position is normalised by the mean and
    the biased variance of its C values::

        y = (x - mean_C(x)) / sqrt(var_C(x) + eps) * weight + bias

    Args:
        channels (int): channels C (the size of axis 1).
        eps (float): added to the variance. Default: 1e-6 (ConvNeXt's and D-Net's).

    Shape:
        - Input: (N, C, *spatial), rank >= 3 (e.g. (N, C, L), (N, C, H, W),
          (N, C, D, H, W)).
        - Output: the same shape as the input.
    """

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.channels = check_positive_int('channels', channels)
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or eps <= 0:
            raise ValueError(f'eps must be a positive float, got {eps!r}')
        self.eps = float(eps)
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dim() < 3:
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError('x must be an (N, C, *spatial) tensor of rank >= 3, got '
                             f'{got}')
        if x.shape[1] != self.channels:
            raise ValueError(f'x must have {self.channels} channels (N, C, *spatial), '
                             f'got shape {tuple(x.shape)}')
        y = F.layer_norm(
            x.movedim(1, -1), (self.channels, ), self.weight, self.bias, self.eps)
        return y.movedim(-1, 1)

    def extra_repr(self) -> str:
        return f'{self.channels}, eps={self.eps}'
