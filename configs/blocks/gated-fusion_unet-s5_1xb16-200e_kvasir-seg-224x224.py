# GatedFusion as the U-Net's skip fusion on Kvasir-SEG (DCA recipe): at each of the
# four decoder steps, the upsampled decoder feature and the encoder skip are mixed by
# a learned sigmoid gate, z * decoder + (1 - z) * skip, instead of concatenated.
_base_ = '../dca/unet_unet-s5_1xb16-200e_kvasir-seg-224x224.py'
model = dict(decode_head=dict(skip_fusion=dict(type='GatedFusion')))
