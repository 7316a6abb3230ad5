from .checks import (check_block_cfg, check_choice, check_feature_map,
                     check_positive_int, check_same_shape,
                     check_stage_inputs)

__all__ = [
    'check_block_cfg', 'check_choice', 'check_feature_map', 'check_positive_int',
    'check_same_shape', 'check_stage_inputs'
]
