from .checkpoint_check import check_checkpoint_fits
from .checks import (check_block_cfg, check_bool, check_cfg, check_choice,
                     check_feature_map, check_int, check_int_or_tuple,
                     check_positive_int, check_positive_ints, check_rate,
                     check_same_batch_size, check_same_shape, check_stage_indices,
                     check_stage_inputs)
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
    'build_inference_model', 'check_block_cfg', 'check_bool', 'check_cfg',
    'check_checkpoint_fits', 'check_choice', 'check_data_folders', 'check_feature_map',
    'check_int', 'check_int_or_tuple', 'check_positive_int', 'check_positive_ints',
    'check_rate', 'check_same_batch_size', 'check_same_shape', 'check_stage_indices',
    'check_stage_inputs', 'count_flops', 'drop_pretrained', 'image_channels',
    'input_shape', 'load_run_config', 'prepare_output_folder', 'random_batch',
    'refuse_to_overwrite_checkpoints', 'run_cli'
]
