from .checks import (check_choice, check_feature_map, check_positive_int,
                     check_same_shape)

__all__ = [
    'check_choice', 'check_feature_map', 'check_positive_int', 'check_same_shape'
]
