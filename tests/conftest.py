import pytest
import torch

import mmseg_fusion  # noqa: F401  (applies compat fixes, registers modules)

# torch's process-wide settings as the session found them. A training run inside a
# test or a module-scoped fixture changes them (mmengine's set_random_seed with
# deterministic=True turns on deterministic algorithms; some fixtures run on one
# thread), and later tests would then compute and compile under other settings: in
# torch 2.13 inductor's backward of DualCrossAttention is wrong under deterministic
# algorithms, and one thread hides an inductor code-generation error.
_SESSION_THREADS = torch.get_num_threads()
_SESSION_DETERMINISTIC = torch.are_deterministic_algorithms_enabled()
_SESSION_WARN_ONLY = torch.is_deterministic_algorithms_warn_only_enabled()


def _restore_torch_settings():
    torch.set_num_threads(_SESSION_THREADS)
    torch.use_deterministic_algorithms(
        _SESSION_DETERMINISTIC, warn_only=_SESSION_WARN_ONLY)


@pytest.fixture(autouse=True)
def _seed_and_torch_settings():
    """Every test starts seeded, with the session's threads and determinism."""
    _restore_torch_settings()
    torch.manual_seed(0)
    yield
    _restore_torch_settings()
