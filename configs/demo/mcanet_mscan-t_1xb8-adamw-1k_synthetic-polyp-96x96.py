# Demo: MCANet (MSCAN-T, MCAHead) trained from scratch on the synthetic polyp set on a
# CPU in about ten minutes, to a validation Dice above 0.8. No pretrained weights,
# no network. Run the whole loop (data, training, test, overlays) with
#   python tools/misc/run_demo.py
# Differences from the paper's recipe, for a short run from scratch: 96 x 96 crops,
# MCAHead at the stage-1 resolution of the input (image_size=None), no stochastic
# depth, 1000 iterations with lr 1e-3 for the whole model.
_base_ = [
    '../_base_/models/mcanet_mscan.py', '../_base_/datasets/synthetic_polyp.py',
    '../_base_/default_runtime.py'
]
crop_size = (96, 96)
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    backbone=dict(init_cfg=None, drop_path_rate=0.0),
    decode_head=dict(image_size=None))

max_iters = 1000
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.01),
    paramwise_cfg=dict(norm_decay_mult=0.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=50),
    dict(
        type='PolyLR', power=1.0, eta_min=0.0, by_epoch=False, begin=50, end=max_iters),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=250)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=25, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=max_iters),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
env_cfg = dict(cudnn_benchmark=False)
randomness = dict(seed=0)
# Overlays (tools/test.py --show-dir): lighter masks than mmseg's default 0.8, so the
# image stays visible under the painted background.
visualizer = dict(alpha=0.5)
