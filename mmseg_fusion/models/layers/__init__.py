"""The paper blocks: plain nn.Modules registered in ``mmseg.registry.MODELS``, and the
shared parts they are built from (CBAM attentions, channels-first LayerNorm, the
``spatial_dims`` helpers in ``nd_utils``)."""
from .channel_attention import ChannelAttention
from .channels_first_layer_norm import ChannelsFirstLayerNorm
from .dlk_block import DLKBlock
from .dlk_layer import DLKLayer
from .dual_cross_attention import DualCrossAttention
from .dynamic_feature_fusion import DynamicFeatureFusion
from .gated_fusion import GatedFusion
from .hff_block import HFFBlock
from .joint_channel_spatial_attention import JointChannelSpatialAttention
from .multi_feature_extraction import MultiFeatureExtraction
from .multi_scale_cross_axis_attention import MultiScaleCrossAxisAttention
from .multi_scale_selective_fusion import MultiScaleSelectiveFusion
from .osr_attention import OSRAttention
from .safm import SAFM
from .salience_layer import SalienceLayer
from .spatial_attention import SpatialAttention

__all__ = [
    'ChannelAttention', 'ChannelsFirstLayerNorm', 'DLKBlock', 'DLKLayer',
    'DualCrossAttention', 'DynamicFeatureFusion', 'GatedFusion', 'HFFBlock',
    'JointChannelSpatialAttention', 'MultiFeatureExtraction',
    'MultiScaleCrossAxisAttention', 'MultiScaleSelectiveFusion', 'OSRAttention', 'SAFM',
    'SalienceLayer', 'SpatialAttention'
]
