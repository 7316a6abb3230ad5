# U-Net + DCA ("Dual Cross-Attention for Medical Image Segmentation", Ates et al.,
# 2023) on CVC-ClinicDB: the U-Net baseline
# (unet_unet-s5_1xb16-200e_cvc-clinicdb-224x224.py) with its four skip connections
# refined by one dual cross-attention block (../_base_/models/dca_unet.py).
_base_ = [
    '../_base_/models/dca_unet.py', '../_base_/datasets/cvc_clinicdb_224.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_200e_adam.py'
]
# Epoch-based schedule: log by epoch.
log_processor = dict(by_epoch=True)
