from .checkpoint_check import check_checkpoint_fits
from .cli import (CheckpointMismatchError, ConfigError, DataNotFoundError,
                  OutputExistsError, PathNotFoundError, PretrainedDownloadError,
                  ToolError, UsageError, run_cli)
from .model_analysis import (build_inference_model, count_flops, drop_pretrained,
                             image_channels, input_shape, random_batch)
from .output_folder import prepare_output_folder
from .run_config import (check_data_folders, load_run_config,
                         refuse_to_overwrite_checkpoints)

__all__ = [
    'CheckpointMismatchError', 'ConfigError', 'DataNotFoundError', 'OutputExistsError',
    'PathNotFoundError', 'PretrainedDownloadError', 'ToolError', 'UsageError',
    'build_inference_model', 'check_checkpoint_fits', 'check_data_folders',
    'count_flops', 'drop_pretrained', 'image_channels', 'input_shape',
    'load_run_config', 'prepare_output_folder', 'random_batch',
    'refuse_to_overwrite_checkpoints', 'run_cli'
]
