# The AMOS schedule: 40,000 iterations as 3D UX-Net trains AMOS (MASILab/3DUX-Net
# main_train.py --max_iter 40000, AdamW lr 1e-4), with the optimiser and warm-up +
# cosine of the MONAI SwinUNETR recipe (AdamW weight decay 1e-5, linear warm-up then
# cosine to 0; configs/_base_/schedules/schedule_120k_adamw_warmup_cosine.py), so the
# D-Net BTCV and AMOS configs differ in their data and length only. 3D UX-Net itself
# keeps lr constant and uses torch's AdamW default weight decay (0.01); its warm-up
# share here is the MONAI recipe's (1 % of the iterations: 400).
# Validation every 4,000 iterations (3D UX-Net validates every 500, which on whole
# AMOS volumes costs more than the training between), keeping the best mDice.
max_iters = 40000
warmup_iters = 400
val_interval = 4000
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=1e-5))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=warmup_iters),
    dict(
        type='CosineAnnealingLR',
        T_max=max_iters - warmup_iters,
        eta_min=0.0,
        by_epoch=False,
        begin=warmup_iters,
        end=max_iters),
]
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=val_interval)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
# No SegVisualizationHook: mmseg's visualizer draws 2-D images; volumes are looked at
# as NIfTI predictions (tools/test.py --out DIR) over the CT in any viewer.
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(
        type='CheckpointHook',
        by_epoch=False,
        interval=val_interval,
        max_keep_ckpts=1,
        save_best='mDice',
        rule='greater'),
    sampler_seed=dict(type='DistSamplerSeedHook'))
