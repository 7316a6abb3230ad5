"""Any MONAI network as an mmseg backbone, so MONAI's 3-D models train under our
protocol."""
import inspect
from typing import Optional, Tuple

import monai.networks.nets
import torch
import torch.nn as nn
from mmengine.model import BaseModule
from mmseg.registry import MODELS

from ...utils import check_feature_map, check_positive_int


def monai_network_names() -> tuple:
    """The network classes ``monai.networks.nets`` offers, sorted by name."""
    return tuple(
        sorted(name for name, value in vars(monai.networks.nets).items()
               if name[:1].isupper() and inspect.isclass(value)
               and issubclass(value, nn.Module)))


@MODELS.register_module()
class MONAIBackbone(BaseModule):
    """A network of ``monai.networks.nets``, built by class name, as a backbone that
    returns one full-resolution feature map.

    MONAI's segmentation networks (SwinUNETR, UNETR, ...) end in a 1x1x1 output layer.
    ``out_layer`` names that layer; it is replaced by an identity, so the backbone
    returns the features before it and a light head (:class:`VolumeLinearHead`, the
    same 1x1x1 convolution) computes the logits and the losses. The network is then
    the original MONAI architecture, trained, tested and measured by the same
    segmentor, data pipeline and metric as D-Net. Example (MONAI 1.6.1; SwinUNETR has
    no ``img_size`` argument any more)::

        backbone=dict(type='MONAIBackbone', out_layer='out',
                      network=dict(type='SwinUNETR', in_channels=1, out_channels=14,
                                   feature_size=48, use_checkpoint=True))
        decode_head=dict(type='VolumeLinearHead', in_channels=48, num_classes=14)

    The ``out_channels`` the MONAI constructor requires is unused when ``out_layer``
    drops the output layer.

    Args:
        network (dict): ``type`` (a class name in ``monai.networks.nets``) and the
            constructor arguments of that class.
        out_layer (str, optional): dotted name of the submodule to replace by an
            identity ('out' for SwinUNETR and UNETR). None keeps the network whole:
            its output (``network['out_channels']`` channels) is the feature map.
        size_divisor (int, optional): every input side must be divisible by it. None
            derives it for SwinUNETR (``patch_size ** 5``) and UNETR (16, its patch);
            other networks must give it.
        init_cfg (dict | list[dict], optional): mmengine initialization config (MONAI
            networks initialise themselves).

    Attributes:
        out_channels (tuple[int]): channels of the one returned map.
        size_divisor (int): as above.
        input_size (tuple[int] | None): the only input size the network accepts
            (UNETR's ``img_size``: its position embeddings are fixed), else None.

    Shape:
        - Input: (N, C, D, H, W), each side divisible by ``size_divisor`` (and equal to
          ``input_size`` where that is set).
        - Output: a 1-tuple ``((N, out_channels[0], D, H, W), )``.
    """

    def __init__(self,
                 network: dict,
                 out_layer: Optional[str] = None,
                 size_divisor: Optional[int] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        if not isinstance(network, dict) or 'type' not in network:
            raise ValueError("network must be a dict with a 'type' key naming a class "
                             f'of monai.networks.nets, got {network!r}')
        kwargs = dict(network)
        network_type = kwargs.pop('type')
        names = monai_network_names()
        if network_type not in names:
            raise ValueError(f"network['type'] must be a class of monai.networks.nets, "
                             f'one of {names}, got {network_type!r}')
        self.network = getattr(monai.networks.nets, network_type)(**kwargs)
        self.in_channels = kwargs.get('in_channels')

        if out_layer is None:
            if 'out_channels' not in kwargs:
                raise ValueError("network must set 'out_channels' when out_layer is "
                                 f'None, got {network!r}')
            out_channels = kwargs['out_channels']
        else:
            out_channels = self._drop_layer(out_layer)
        self.out_channels = (check_positive_int('out_channels', out_channels), )

        self.input_size = None
        if network_type == 'UNETR':
            img_size = kwargs.get('img_size')
            spatial_dims = kwargs.get('spatial_dims', 3)
            self.input_size = tuple(img_size) if isinstance(
                img_size, (list, tuple)) else (img_size, ) * spatial_dims
        if size_divisor is None:
            if network_type == 'SwinUNETR':
                size_divisor = kwargs.get('patch_size', 2)**5
            elif network_type == 'UNETR':
                size_divisor = 16
            else:
                raise ValueError(f'size_divisor must be given for {network_type} (it '
                                 'is derived for SwinUNETR and UNETR only), got None')
        self.size_divisor = check_positive_int('size_divisor', size_divisor)

    def _drop_layer(self, out_layer: str) -> int:
        """Replace the submodule ``out_layer`` by an identity and return the input
        channels of its first convolution (the channels of the features it took)."""
        parent_name, _, child_name = out_layer.rpartition('.')
        try:
            parent = self.network.get_submodule(
                parent_name) if parent_name else self.network
            layer = getattr(parent, child_name)
        except AttributeError:
            layer = None
        if not isinstance(layer, nn.Module):
            children = [name for name, _ in self.network.named_children()]
            raise ValueError(f'out_layer must name a submodule of the network (its '
                             f'children: {children}), got {out_layer!r}')
        convs = [m for m in layer.modules() if isinstance(m, nn.modules.conv._ConvNd)]
        if not convs:
            raise ValueError(f'out_layer {out_layer!r} holds no convolution whose '
                             'input channels would give the feature channels')
        setattr(parent, child_name, nn.Identity())
        return convs[0].in_channels

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor]:
        check_feature_map('x', x, self.in_channels, ndim=5)
        sizes = tuple(int(s) for s in x.shape[2:])
        if self.input_size is not None and sizes != self.input_size:
            raise ValueError(f'x must have the spatial size {self.input_size} the '
                             f'network was built for, got shape {tuple(x.shape)}')
        if any(s % self.size_divisor for s in sizes):
            raise ValueError(f'x must have every side divisible by size_divisor='
                             f'{self.size_divisor}, got shape {tuple(x.shape)}')
        return (self.network(x), )
