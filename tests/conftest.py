import pytest
import torch

import mmseg_fusion  # noqa: F401  (applies compat fixes, registers modules)


@pytest.fixture(autouse=True)
def _seed_and_threads():
    torch.manual_seed(0)
