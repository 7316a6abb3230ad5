# U-Net baseline of the DCA paper ("Dual Cross-Attention for Medical Image
# Segmentation", Ates et al., 2023) on Kvasir-SEG: k = 0.5 U-Net, 224 x 224, Adam
# 1e-4, Dice loss, 200 epochs at batch 16. U-Net + DCA is the same config plus one
# neck entry: dca_unet-s5_1xb16-200e_kvasir-seg-224x224.py.
_base_ = [
    '../_base_/models/unet.py', '../_base_/datasets/kvasir_seg_224.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_200e_adam.py'
]
# Epoch-based schedule: log by epoch.
log_processor = dict(by_epoch=True)
