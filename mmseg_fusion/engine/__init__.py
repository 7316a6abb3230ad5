"""Training machinery: hooks registered into ``mmseg.registry.HOOKS`` and the runner
for distributed runs without CUDA (with its synchronised BatchNorm) into ``RUNNERS`` on
import, and checkpoint writing that a kill cannot corrupt (applied on import, see
:mod:`.checkpoint_io`)."""
from .checkpoint_io import (ResumeCheckpoint, find_resume_checkpoint,
                            make_checkpoint_saving_atomic, remove_stale_temporary_files)
from .cpu_distributed_runner import CPUDistributedRunner, end_process_group
from .cpu_sync_batch_norm import CPUSyncBatchNorm
from .hooks import (ExactResumeHook, NonFiniteLossError, NonFiniteLossHook,
                    random_states, set_random_states)

make_checkpoint_saving_atomic()

__all__ = [
    'CPUDistributedRunner', 'CPUSyncBatchNorm', 'ExactResumeHook', 'NonFiniteLossError',
    'NonFiniteLossHook', 'ResumeCheckpoint', 'end_process_group',
    'find_resume_checkpoint', 'make_checkpoint_saving_atomic', 'random_states',
    'remove_stale_temporary_files', 'set_random_states'
]
