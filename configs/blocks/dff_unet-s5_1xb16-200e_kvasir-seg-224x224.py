# 2-D DynamicFeatureFusion (D-Net's DFF) as the U-Net's skip fusion on Kvasir-SEG
# (DCA recipe): at each of the four decoder steps, channel attention on the
# concatenation, a 1x1 reduction and a spatial gate from both inputs, as D-Net fuses
# its decoder with the skips.
_base_ = '../dca/unet_unet-s5_1xb16-200e_kvasir-seg-224x224.py'
model = dict(
    decode_head=dict(skip_fusion=dict(type='DynamicFeatureFusion', spatial_dims=2)))
