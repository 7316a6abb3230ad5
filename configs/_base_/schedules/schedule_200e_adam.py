# The DCA paper's schedule (gorkemcanates/Dual-Cross-Attention, main.py and
# trainer.py): Adam, lr 1e-4, betas (0.9, 0.999), no weight decay, constant learning
# rate, 200 epochs, evaluated after every epoch; the reported model is the epoch with
# the best test Dice, hence save_best='mDice' on val (the paper's test split).
optimizer = dict(type='Adam', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.0)
optim_wrapper = dict(type='OptimWrapper', optimizer=optimizer)
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=True)]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=200, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=10, log_metric_by_epoch=True),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(
        type='CheckpointHook',
        by_epoch=True,
        interval=10,
        max_keep_ckpts=1,
        save_best='mDice',
        rule='greater'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
# The reference seeds everything with 666 and runs cuDNN deterministically.
randomness = dict(seed=666, deterministic=False)
