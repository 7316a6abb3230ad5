from . import (dual_cross_attention, dynamic_feature_fusion, gated_fusion,  # noqa: F401
               hff_block, joint_channel_spatial_attention, multi_feature_extraction,
               multi_scale_cross_axis_attention, multi_scale_selective_fusion,
               osr_attention, safm)
