# Plain-skip 3-D U-Net baseline (nnU-Net's form: five stages 32-320, instance norm,
# LeakyReLU, concatenated skips, deep supervision) on BTCV with D-Net's data path and
# recipe, so it compares with dnet_dlk_1xb2-adamw-120k_btcv-96x96x96.py under one
# protocol:
# - patch 96 x 96 x 96, foreground-balanced crops, flips, rotate90, intensity scale
#   and shift; spacing 1.5 x 1.5 x 2.0 mm, RAS, HU [-175, 250] -> [0, 1]: MONAI
#   SwinUNETR/BTCV (utils/data_utils.py, main.py);
# - AdamW lr 1e-4, weight decay 1e-5, warm-up 1,200 + cosine, 120,000 iterations:
#   SwinUNETR/BTCV main.py (5000 epochs x 24 volumes);
# - loss nnU-Net's Dice + CE with deep supervision; inference 96^3 windows, overlap
#   0.5, Gaussian sigma 1/8, 4 windows per forward.
# (nnU-Net itself would train this network with SGD 0.01, poly decay and its own
# preprocessing; here the recipe is D-Net's, which is the point of the baseline.)
# Batch: 2 patches of 96^3. Memory: one training step at 96^3 and batch 1 grew the
# CPU process by 1.95 GiB (tools/analysis_tools/train_step_memory.py, see
# configs/dnet/README.md), so batch 2 is estimated at 4.8 GiB of GPU memory
# incl. about 1 GiB of CUDA context: meant to fit a 24 GB GPU (an estimate from a CPU
# run, not a GPU measurement).
_base_ = [
    '../_base_/models/unet3d.py', '../_base_/datasets/btcv_96x96x96.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_120k_adamw_warmup_cosine.py'
]
train_dataloader = dict(batch_size=2)
env_cfg = dict(cudnn_benchmark=True)
randomness = dict(seed=0)
