import mmengine.config.config as mmengine_config
import pytest
import torch


@pytest.fixture(autouse=True)
def _fast_tiny_runs(monkeypatch):
    """The tiny runs are faster on one thread than on two shared ones, and without
    yapf formatting the config text mmengine logs and stores in every checkpoint
    (three quarters of a tiny run's time; the text stays valid Python)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.setattr(mmengine_config, 'FormatCode', lambda text, **kwargs:
                        (text, False))
    yield
    torch.set_num_threads(threads)
