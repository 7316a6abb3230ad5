# Ablation of D-Net's dynamic feature fusion: dnet_dlk_1xb2-adamw-120k_btcv-96x96x96.py
# with every DFF of the decoder replaced by concatenation and a 1x1x1 convolution
# (2C -> C), DFF3DHead(skip_fusion='concat'). Everything else (encoder, decoder
# blocks, data, recipe, batch, schedule, inference) is that config's, so the
# difference of the two runs is what DFF adds. Recipe sources: see that config.
# The patch (96^3), spacing 1.5 x 1.5 x 2.0 mm, HU window, AdamW lr 1e-4, 120,000
# iterations: that config's, with their sources. Memory: one training step at 96^3
# and batch 1 grew the CPU process by 7.07 GiB (DFF: 7.95;
# tools/analysis_tools/train_step_memory.py), so batch 2 is estimated at 14.9 GiB of
# GPU memory incl. about 1 GiB of CUDA context: meant to fit a 24 GB GPU (an
# estimate from a CPU run, not a GPU measurement; see configs/dnet/README.md).
_base_ = ['./dnet_dlk_1xb2-adamw-120k_btcv-96x96x96.py']
model = dict(decode_head=dict(skip_fusion='concat'))
