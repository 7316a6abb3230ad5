"""Gated fusion of two feature maps."""
import torch
import torch.nn as nn
from mmseg.registry import MODELS

from ..utils.checks import check_feature_map, check_positive_int, check_same_shape


@MODELS.register_module()
class GatedFusion(nn.Module):
    """Gated fusion: a per-pixel, per-channel sigmoid gate mixes two feature maps.

    ``z = sigmoid(W1 x1 + W2 x2)``, ``out = z * x1 + (1 - z) * x2``, with W1 and W2
    1x1 convolutions with bias. The seed names no paper; the unit is the gated fusion
    of GMAN ("GMAN: A Graph Multi-Attention Network for Traffic Prediction", Zheng et
    al., AAAI 2020), in the seed's form (bias on both gates, no output layer). The seed
    applies ``nn.Linear`` to channels-last tensors, the same map as a 1x1 convolution on
    (N, C, H, W).

    Args:
        channels (int): C, the channels of both inputs and of the output.

    Shape:
        - x1: (N, C, H, W).
        - x2: (N, C, H, W).
        - Output: (N, C, H, W).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = check_positive_int('channels', channels)
        self.gate_x1 = nn.Conv2d(channels, channels, kernel_size=1)
        self.gate_x2 = nn.Conv2d(channels, channels, kernel_size=1)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        check_feature_map('x1', x1, self.channels)
        check_feature_map('x2', x2, self.channels)
        check_same_shape(('x1', 'x2'), (x1, x2))
        z = torch.sigmoid(self.gate_x1(x1) + self.gate_x2(x2))
        return z * x1 + (1 - z) * x2
