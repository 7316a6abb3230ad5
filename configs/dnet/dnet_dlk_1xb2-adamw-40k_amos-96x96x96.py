# D-Net (DNetEncoder + DFF3DHead, full size) on AMOS 2022 CT, 15 organs (16 classes),
# trained on the official training CT cases (10 % held out for validation) and
# tested on the official validation CT cases, from scratch:
# - patch 96 x 96 x 96, foreground-balanced crops (pos 1 : neg 1), intensity shift
#   (0.1, p 0.5), random affine (rotation pi/30, scale 10 %): 3D UX-Net
#   (MASILab/3DUX-Net load_datasets_transforms.py, 'amos');
# - spacing 1.5 x 1.5 x 2.0 mm, orientation RAS, HU window [-125, 275] -> [0, 1]:
#   3D UX-Net (same file);
# - 40,000 iterations: 3D UX-Net main_train.py (--max_iter); AdamW lr 1e-4 (3D
#   UX-Net and MONAI SwinUNETR), weight decay 1e-5 with warm-up + cosine: MONAI
#   SwinUNETR/BTCV main.py (3D UX-Net keeps lr constant, see the schedule file);
# - loss nnU-Net's Dice + CE with deep supervision; inference 96^3 windows, overlap
#   0.5, Gaussian sigma 1/8, 4 windows per forward (as the BTCV config).
# Batch: 2 patches (3D UX-Net: 2 crops of one volume per step). Memory: as the BTCV
# D-Net config (same network and patch; 16 instead of 14 output channels): about
# 16.6 GiB of GPU memory at batch 2, meant to fit a 24 GB GPU (an estimate
# from a CPU run, see configs/dnet/README.md).
_base_ = [
    '../_base_/models/dnet.py', '../_base_/datasets/amos_96x96x96.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_40k_adamw_warmup_cosine.py'
]
num_classes = 16
model = dict(decode_head=dict(num_classes=num_classes))
train_dataloader = dict(batch_size=2)
env_cfg = dict(cudnn_benchmark=True)
randomness = dict(seed=0)
