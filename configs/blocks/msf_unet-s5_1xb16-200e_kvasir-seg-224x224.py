# MultiScaleSelectiveFusion (SHISRCNet's MSF, two inputs) as the U-Net's skip fusion
# on Kvasir-SEG (DCA recipe): at each of the four decoder steps, per-channel
# selection weights over (decoder feature, encoder skip) replace concatenation.
_base_ = '../dca/unet_unet-s5_1xb16-200e_kvasir-seg-224x224.py'
model = dict(
    decode_head=dict(skip_fusion=dict(type='MultiScaleSelectiveFusion', num_inputs=2)))
