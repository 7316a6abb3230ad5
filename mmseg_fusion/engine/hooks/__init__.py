from .exact_resume_hook import ExactResumeHook, random_states, set_random_states
from .nonfinite_loss_hook import NonFiniteLossError, NonFiniteLossHook

__all__ = [
    'ExactResumeHook', 'NonFiniteLossError', 'NonFiniteLossHook', 'random_states',
    'set_random_states'
]
