# The MONAI SwinUNETR BTCV schedule (Project-MONAI/research-contributions,
# SwinUNETR/BTCV main.py defaults and the released "5000ep" models): AdamW, lr 1e-4,
# weight decay 1e-5 (--optim_lr, --reg_weight), a linear warm-up over 50 epochs then
# cosine decay to 0 (--lrschedule warmup_cosine, LinearWarmupCosineAnnealingLR),
# 5000 epochs of the 24 training volumes at one volume per step = 120,000
# iterations; warm-up 50 x 24 = 1,200 iterations; validation every 100 epochs =
# 2,400 iterations, keeping the checkpoint with the best validation mDice.
# mmengine's LinearLR cannot start at exactly 0 (MONAI's warm-up starts at 0), so it
# starts at 1e-3 x lr. The schedule steps every iteration (MONAI steps per epoch).
max_iters = 120000
warmup_iters = 1200
val_interval = 2400
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
