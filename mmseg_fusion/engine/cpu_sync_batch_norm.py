"""Synchronised BatchNorm for distributed runs on CPUs (gloo)."""
import torch
import torch.distributed as dist
import torch.nn as nn


class CPUSyncBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm over the whole batch of all processes, for any backend (gloo too).

    torch's ``nn.SyncBatchNorm`` refuses CPU tensors, and mmcv's ``MMSyncBN`` needs
    mmcv's compiled CUDA ops. This layer computes, in training and with a process
    group of more than one rank, each channel's mean and (biased) variance over the
    samples and voxels of every rank: two differentiable all-reduces of per-channel
    sums (``torch.distributed.nn``), so backward also sums the statistics' gradients
    over the ranks. N processes of B samples then normalise, and compute gradients,
    as one process of N x B samples does with ``nn.BatchNorm``; DDP's averaging of
    the parameter gradients completes the equivalence. Running statistics are
    updated as ``nn.BatchNorm`` updates them (momentum, or the cumulative average
    when ``momentum`` is None; the unbiased variance), identically on every rank. In
    eval mode, or without a process group, it is ``nn.BatchNorm``. Parameters and
    buffers are BatchNorm's, so checkpoints load into either.

    Any rank (1-D, 2-D, 3-D maps): the statistics are per channel, over every other
    axis.

    Args:
        num_features (int): C, the channels.
        eps, momentum, affine, track_running_stats: as ``nn.BatchNorm2d``.
        process_group (optional): the group to synchronise over; None: the default
            group.

    Shape:
        - Input: (N, C, *), the same on every rank except N.
        - Output: the same shape as the input.
    """

    def __init__(self,
                 num_features: int,
                 eps: float = 1e-5,
                 momentum: float = 0.1,
                 affine: bool = True,
                 track_running_stats: bool = True,
                 process_group=None) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats)
        self.process_group = process_group

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f'CPUSyncBatchNorm expects (N, C, *) input, got shape '
                             f'{tuple(x.shape)}')

    def _sync_group(self):
        """The process group to synchronise over, or None when this step is plain
        BatchNorm (eval mode, no group, or a group of one rank)."""
        if not (self.training and dist.is_available() and dist.is_initialized()):
            return None
        group = self.process_group or dist.group.WORLD
        return group if dist.get_world_size(group) > 1 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input_dim(x)
        group = self._sync_group()
        if group is None:
            return super().forward(x)
        # differentiable collectives: backward sums the statistics' gradients too
        from torch.distributed.nn.functional import all_reduce

        # statistics in float32 at least, as torch's SyncBatchNorm keeps them for
        # half-precision inputs (autocast)
        xs = x.to(torch.promote_types(x.dtype, torch.float32))
        axes = [0] + list(range(2, x.dim()))
        shape = (1, -1) + (1, ) * (x.dim() - 2)
        # the channel sums and the voxel count per channel in one all-reduce
        local_count = xs.new_tensor([x.numel() / x.shape[1]])
        sums = all_reduce(torch.cat([xs.sum(axes), local_count]), group=group)
        count = sums[-1]
        mean = sums[:-1] / count
        centred = xs - mean.view(shape)
        var = all_reduce(centred.square().sum(axes), group=group) / count
        if self.track_running_stats:
            self._update_running_stats(mean.detach(), var.detach(), count.item())
        out = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        return out.to(x.dtype)

    @torch.no_grad()
    def _update_running_stats(self, mean: torch.Tensor, var: torch.Tensor,
                              count: float) -> None:
        self.num_batches_tracked.add_(1)
        if self.momentum is None:
            factor = 1.0 / float(self.num_batches_tracked)
        else:
            factor = self.momentum
        unbiased = var * count / max(count - 1, 1)
        self.running_mean.lerp_(mean, factor)
        self.running_var.lerp_(unbiased, factor)

    @classmethod
    def convert(cls, module: nn.Module, batch_norm: bool = False) -> nn.Module:
        """``module`` with each ``nn.SyncBatchNorm`` (and, with ``batch_norm``, each
        ``nn.BatchNormXd``) replaced by a ``CPUSyncBatchNorm`` that shares its
        parameters and buffers; ``module`` itself when nothing is replaced."""
        converts = isinstance(module, nn.SyncBatchNorm) or (batch_norm and isinstance(
            module, nn.modules.batchnorm._BatchNorm) and not isinstance(module, cls))
        if converts:
            converted = cls(module.num_features, module.eps, module.momentum,
                            module.affine, module.track_running_stats)
            if module.affine:
                converted.weight, converted.bias = module.weight, module.bias
            if module.track_running_stats:
                converted.running_mean = module.running_mean
                converted.running_var = module.running_var
                converted.num_batches_tracked = module.num_batches_tracked
            converted.train(module.training)
            return converted
        for name, child in module.named_children():
            module.add_module(name, cls.convert(child, batch_norm))
        return module
