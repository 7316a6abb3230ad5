# The SegNeXt / MCANet recipe ("MCANet: Medical Image Segmentation with Multi-Scale
# Cross-Axis Attention", Shao et al., 2023): AdamW lr 6e-5, weight decay 0.01, head
# lr x10, no weight decay on norm layers, linear warm-up over 1500 iterations then
# poly decay (power 1) to 0 at 80k iterations.
# Custom keys take precedence over norm_decay_mult in mmengine, so the norm layers of
# the head keep their decay (as in the upstream configs, where 'head' also wins over
# 'norm'); every norm layer of the backbone gets none.
max_iters = 80000
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=6e-5, betas=(0.9, 0.999), weight_decay=0.01),
    paramwise_cfg=dict(norm_decay_mult=0.0, custom_keys=dict(head=dict(lr_mult=10.0))))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(
        type='PolyLR',
        power=1.0,
        eta_min=0.0,
        by_epoch=False,
        begin=1500,
        end=max_iters),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=8000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=8000),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
