from .model_analysis import count_flops, drop_pretrained
from .output_folder import prepare_output_folder
from .run_config import load_run_config, refuse_to_overwrite_checkpoints

__all__ = [
    'count_flops', 'drop_pretrained', 'load_run_config', 'prepare_output_folder',
    'refuse_to_overwrite_checkpoints'
]
