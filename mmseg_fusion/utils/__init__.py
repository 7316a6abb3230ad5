from .run_config import load_run_config, refuse_to_overwrite_checkpoints

__all__ = ['load_run_config', 'refuse_to_overwrite_checkpoints']
