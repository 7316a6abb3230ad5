# SegNeXt baseline (MSCAN-T encoder, mmseg's LightHamHead) on the PraNet benchmark, with
# the same data, recipe and schedule as
# ../mcanet/mcanet_mscan-t_1xb8-adamw-80k_pranet-polyp-224x224.py.
_base_ = [
    '../_base_/models/segnext_mscan.py', '../_base_/datasets/pranet_polyp.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_80k_adamw.py'
]
crop_size = (224, 224)
data_preprocessor = dict(size=crop_size)
model = dict(data_preprocessor=data_preprocessor)
