# U-Net baseline of the DCA paper ("Dual Cross-Attention for Medical Image
# Segmentation", Ates et al., 2023) on CVC-ClinicDB: k = 0.5 U-Net, 224 x 224, Adam
# 1e-4, Dice loss, 200 epochs at batch 16.
_base_ = [
    '../_base_/models/unet.py', '../_base_/datasets/cvc_clinicdb_224.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_200e_adam.py'
]
# Epoch-based schedule: log by epoch.
log_processor = dict(by_epoch=True)
