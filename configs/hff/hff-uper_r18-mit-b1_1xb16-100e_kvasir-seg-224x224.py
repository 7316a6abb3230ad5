# HFF segmentor (HiFuse's hierarchical feature fusion turned into a neck: ResNetV1c-18
# + MiT-B1 branches, HFFNeck, UPerHead) on Kvasir-SEG at 224 x 224 with the DCA
# paper's data pipeline and binary Dice loss, and HiFuse's optimizer and schedule
# (AdamW 1e-4, 1-epoch warm-up, cosine, 100 epochs) at batch 16.
_base_ = [
    '../_base_/models/hff_dual_branch.py', '../_base_/datasets/kvasir_seg_224.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_100e_adamw_cosine.py'
]
# Epoch-based schedule: log by epoch.
log_processor = dict(by_epoch=True)
