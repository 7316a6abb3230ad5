# MCANet (MSCAN-T encoder, MCAHead) on Kvasir-SEG (train/val split of the converter),
# with the paper's recipe: AdamW, 80k iterations, batch 8, 224 x 224 crops.
_base_ = [
    '../_base_/models/mcanet_mscan.py', '../_base_/datasets/kvasir_seg.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_80k_adamw.py'
]
crop_size = (224, 224)
data_preprocessor = dict(size=crop_size)
model = dict(data_preprocessor=data_preprocessor)
