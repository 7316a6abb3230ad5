"""tools/misc/run_demo.py end to end on a tiny generated set: data, training with a
falling loss, tools/test.py on the saved checkpoint, overlays, refusals."""
import glob
import json
import os.path as osp

import pytest

from tests.scripts import load_script

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
ITERS = 8

run_demo = load_script('tools/misc/run_demo.py')


def train_losses(work_dir):
    """The per-iteration training losses the LocalVisBackend logged."""
    [scalars] = glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))
    with open(scalars) as f:
        records = [json.loads(line) for line in f]
    return [r['loss'] for r in records if 'loss' in r]


@pytest.mark.slow
def test_demo_runs_end_to_end(tmp_path, capsys):
    data_root, work_dir = tmp_path / 'data', tmp_path / 'work'
    argv = [
        '--work-dir',
        str(work_dir), '--data-root',
        str(data_root), '--num-train', '4', '--num-val', '2', '--size', '64',
        '--cfg-options', f'train_cfg.max_iters={ITERS}',
        f'train_cfg.val_interval={ITERS}', f'default_hooks.checkpoint.interval={ITERS}',
        'default_hooks.logger.interval=1', 'param_scheduler.0.start_factor=1.0',
        'train_dataloader.batch_size=2'
    ]
    dice = run_demo.main(argv)

    assert len(glob.glob(str(data_root / 'img_dir' / 'train' / '*.png'))) == 4
    assert osp.isfile(work_dir / f'iter_{ITERS}.pth')
    losses = train_losses(str(work_dir))
    assert len(losses) == ITERS
    assert sum(losses[-2:]) < sum(losses[:2]), losses
    assert 0.0 <= dice <= 1.0
    overlays = glob.glob(
        str(work_dir / run_demo.SHOW_DIR / '**' / '*.png'), recursive=True)
    assert len(overlays) == 2
    assert f'validation Dice {dice:.3f}' in capsys.readouterr().out

    # The work dir now holds a checkpoint: a second run refuses before doing anything.
    with pytest.raises(FileExistsError, match='already holds checkpoints'):
        run_demo.main(argv)


def test_existing_data_is_reused_not_overwritten(tmp_path, capsys):
    data_root = tmp_path / 'data'
    for split in ('train', 'val'):
        for sub in ('img_dir', 'ann_dir'):
            (data_root / sub / split).mkdir(parents=True)
    marker = data_root / 'img_dir' / 'train' / 'mine.png'
    marker.write_bytes(b'not regenerated')
    run_demo.prepare_data(run_demo.parse_args(['--data-root', str(data_root)]))
    assert marker.read_bytes() == b'not regenerated'
    assert 'using the existing data' in capsys.readouterr().out


def test_foreign_data_root_is_refused(tmp_path):
    (tmp_path / 'notes.txt').write_text('unrelated')
    with pytest.raises(FileExistsError, match='never overwritten'):
        run_demo.prepare_data(run_demo.parse_args(['--data-root', str(tmp_path)]))
