# MCANet (MSCAN-T encoder, MCAHead) on the PraNet benchmark (train: Kvasir-SEG 900
# + CVC-ClinicDB 550; test: its five test sets, each reported by name), with the
# paper's recipe: AdamW, 80k iterations, batch 8, 224 x 224 crops.
_base_ = [
    '../_base_/models/mcanet_mscan.py', '../_base_/datasets/pranet_polyp.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_80k_adamw.py'
]
crop_size = (224, 224)
data_preprocessor = dict(size=crop_size)
model = dict(data_preprocessor=data_preprocessor)
