from .checkpoint_check import check_checkpoint_fits
from .cli import (CheckpointMismatchError, ConfigError, DataNotFoundError,
                  OutputExistsError, PathNotFoundError, PretrainedDownloadError,
                  ToolError, UsageError, run_cli)
from .model_analysis import count_flops, drop_pretrained
from .output_folder import prepare_output_folder
from .run_config import (check_data_folders, load_run_config,
                         refuse_to_overwrite_checkpoints)

__all__ = [
    'CheckpointMismatchError', 'ConfigError', 'DataNotFoundError', 'OutputExistsError',
    'PathNotFoundError', 'PretrainedDownloadError', 'ToolError', 'UsageError',
    'check_checkpoint_fits', 'check_data_folders', 'count_flops', 'drop_pretrained',
    'load_run_config', 'prepare_output_folder', 'refuse_to_overwrite_checkpoints',
    'run_cli'
]
