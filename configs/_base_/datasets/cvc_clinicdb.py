# CVC-ClinicDB ("WM-DOVA maps for accurate polyp highlighting in colonoscopy",
# Bernal et al., CMIG 2015): 612 frames of 31 sequences, no official split, with the
# MCANet polyp pipeline of kvasir_seg.py. Make the data with
#   python tools/dataset_converters/cvc_clinicdb.py SRC -o data/cvc_clinicdb
# which writes img_dir/{train,val}/NAME.png, ann_dir/{train,val}/NAME.png (masks
# {0, 1}) and the seeded split in splits/.
_base_ = './kvasir_seg.py'
data_root = 'data/cvc_clinicdb'
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
