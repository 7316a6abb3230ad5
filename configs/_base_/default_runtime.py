# Runtime shared by every config: mmseg's default runtime, plus our package import.
custom_imports = dict(imports=['mmseg_fusion'], allow_failed_imports=False)
default_scope = 'mmseg'
env_cfg = dict(
    cudnn_benchmark=True,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(
    type='SegLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(by_epoch=False)
log_level = 'INFO'
load_from = None
resume = False
tta_model = dict(type='SegTTAModel')
# mmseg-fusion's training hooks (mmseg_fusion/engine/hooks): checkpoints also hold the
# random number generators, so `tools/train.py --resume` continues exactly where the
# run stood (ExactResumeHook); a NaN or infinite loss stops the run, naming the
# iteration (NonFiniteLossHook). A config that sets custom_hooks should keep these.
custom_hooks = [dict(type='ExactResumeHook'), dict(type='NonFiniteLossHook')]
