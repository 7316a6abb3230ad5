# TransUNet's Synapse schedule ("TransUNet: Transformers Make Strong Encoders for
# Medical Image Segmentation", Chen et al., 2021; Beckschen/TransUNet trainer.py):
# SGD, lr 0.01, momentum 0.9, weight decay 1e-4, poly decay lr * (1 - it / max) ** 0.9,
# 150 epochs of the 2211 training slices at batch 24 = 150 * 93 = 13950 iterations,
# evaluated once at the end.
max_iters = 13950
optimizer = dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=1e-4)
optim_wrapper = dict(type='OptimWrapper', optimizer=optimizer)
param_scheduler = [
    dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=max_iters, by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(
        type='CheckpointHook', by_epoch=False, interval=1395, max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
# TransUNet's seed.
randomness = dict(seed=1234, deterministic=False)
