import pytest

from mmseg_fusion.utils import prepare_output_folder


def test_refuses_non_empty_folder_and_replaces_only_its_entries_with_force(tmp_path):
    out = tmp_path / 'out'
    prepare_output_folder(str(out), force=False, entries=('img_dir', 'spacing.json'))
    assert out.is_dir()  # an empty or missing folder is fine
    (out / 'img_dir').mkdir()
    (out / 'img_dir' / 'old.png').write_bytes(b'old')
    (out / 'spacing.json').write_text('{}')
    (out / 'notes.txt').write_text('mine')

    entries = ('img_dir', 'spacing.json')
    with pytest.raises(
            FileExistsError,
            match=r'out is not empty; pass --force .*img_dir, spacing.json'):
        prepare_output_folder(str(out), force=False, entries=entries)
    assert (out / 'img_dir' / 'old.png').read_bytes() == b'old'

    prepare_output_folder(str(out), force=True, entries=entries)
    assert not (out / 'img_dir').exists() and not (out / 'spacing.json').exists()
    assert (out / 'notes.txt').read_text() == 'mine'
