# SwinUNETR (MONAI's network, feature size 48, wrapped by MONAIBackbone with a
# VolumeLinearHead) on BTCV with D-Net's data path, loss and inference, so it
# compares with dnet_dlk_1xb2-adamw-120k_btcv-96x96x96.py under one protocol. The
# recipe is SwinUNETR's own (Project-MONAI/research-contributions SwinUNETR/BTCV):
# - patch 96 x 96 x 96, foreground-balanced crops, flips, rotate90, intensity scale
#   and shift: utils/data_utils.py;
# - spacing 1.5 x 1.5 x 2.0 mm, RAS, HU [-175, 250] -> [0, 1]: main.py defaults;
# - AdamW lr 1e-4, weight decay 1e-5, warm-up 1,200 iterations + cosine, 120,000
#   iterations (5000 epochs x 24 volumes): main.py defaults;
# - inference 96^3 windows, overlap 0.5, 4 windows per forward: main.py; Gaussian
#   sigma 1/8 (nnU-Net; MONAI's reference blends uniformly);
# - differences: nnU-Net's Dice + CE instead of MONAI's DiceCELoss (see
#   configs/_base_/models/swinunetr.py), from scratch (no self-supervised weights),
#   one crop per volume and 2 volumes per step instead of 4 crops of one volume.
# Batch: 2 patches of 96^3 with gradient checkpointing. Memory: one training step at
# 96^3 and batch 1 grew the CPU process by 3.40 GiB
# (tools/analysis_tools/train_step_memory.py, see configs/dnet/README.md), so batch 2
# is estimated at 7.3 GiB of GPU memory incl. about 1 GiB of CUDA context:
# meant to fit a 24 GB GPU (an estimate from a CPU run, not a GPU measurement).
_base_ = [
    '../_base_/models/swinunetr.py', '../_base_/datasets/btcv_96x96x96.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_120k_adamw_warmup_cosine.py'
]
train_dataloader = dict(batch_size=2)
env_cfg = dict(cudnn_benchmark=True)
randomness = dict(seed=0)
