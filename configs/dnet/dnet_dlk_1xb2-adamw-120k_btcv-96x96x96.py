# D-Net (DNetEncoder + DFF3DHead, full size: widths 48-768, 39.3 M parameters) on BTCV,
# 13 organs, UNETR/SwinUNETR 24/6 split (train 0001-0010 + 0021-0034, validate and
# test on 0035-0040), trained from scratch with the MONAI SwinUNETR BTCV recipe:
# - patch 96 x 96 x 96, foreground-balanced crops (pos 1 : neg 1), flips, rotate90,
#   intensity scale and shift: SwinUNETR/BTCV utils/data_utils.py;
# - spacing 1.5 x 1.5 x 2.0 mm, orientation RAS, HU window [-175, 250] -> [0, 1]:
#   SwinUNETR/BTCV main.py (--space_*, --a_min, --a_max);
# - AdamW lr 1e-4, weight decay 1e-5, linear warm-up 1,200 iterations then cosine
#   to 0, 120,000 iterations (5000 epochs x 24 volumes): SwinUNETR/BTCV main.py
#   (--optim_lr, --reg_weight, --lrschedule warmup_cosine, --warmup_epochs 50,
#   --max_epochs 5000);
# - loss: nnU-Net's Dice + CE with deep supervision (1/2^i, lowest 0): nnU-Net
#   (D-Net's own training recipe is not published, see the model file
#   configs/_base_/models/dnet.py);
# - inference: 96^3 sliding windows, overlap 0.5, Gaussian sigma 1/8, 4 windows per
#   forward: SwinUNETR/BTCV main.py (--infer_overlap, --sw_batch_size) and nnU-Net.
# Batch: 2 patches of 96^3 (MONAI draws 4 crops of one volume per step, an mmseg
# pipeline one crop per volume). Memory: one training step at 96^3 and batch 1 grew
# the CPU process by 7.95 GiB (tools/analysis_tools/train_step_memory.py, see
# configs/dnet/README.md); with the weights, gradients and AdamW state counted once
# and the activations per patch, batch 2 is estimated at 16.6 GiB of GPU memory
# (incl. about 1 GiB of CUDA context), batch 4 at 31.6 GiB: batch 2 is the one meant
# to fit a 24 GB GPU (22.4 GiB). An estimate from a CPU run, not a GPU measurement.
_base_ = [
    '../_base_/models/dnet.py', '../_base_/datasets/btcv_96x96x96.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_120k_adamw_warmup_cosine.py'
]
train_dataloader = dict(batch_size=2)
env_cfg = dict(cudnn_benchmark=True)
randomness = dict(seed=0)
