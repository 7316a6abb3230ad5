# U-Net + DCA ("Dual Cross-Attention for Medical Image Segmentation", Ates et al.,
# 2023) on Kvasir-SEG: the U-Net baseline
# (unet_unet-s5_1xb16-200e_kvasir-seg-224x224.py) with its four skip connections
# refined by one dual cross-attention block (../_base_/models/dca_unet.py: the U-Net
# model plus one neck entry).
_base_ = [
    '../_base_/models/dca_unet.py', '../_base_/datasets/kvasir_seg_224.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_200e_adam.py'
]
# Epoch-based schedule: log by epoch.
log_processor = dict(by_epoch=True)
