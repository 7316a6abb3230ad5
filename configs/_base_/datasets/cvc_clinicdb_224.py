# CVC-ClinicDB ("WM-DOVA maps for accurate polyp highlighting in colonoscopy", Bernal
# et al., CMIG 2015) at 224 x 224, with the DCA paper's pipeline (kvasir_seg_224.py).
# Make the data with
#   python tools/dataset_converters/cvc_clinicdb.py CVC-ClinicDB \
#       -o data/cvc_clinicdb --val-ratio 0.25 --seed 42
# (val is the DCA paper's test split: it holds out 25 % with sklearn's
# train_test_split(random_state=42) over os.listdir order; the converter's seeded
# split has the same size, not the same files).
_base_ = './kvasir_seg_224.py'
data_root = 'data/cvc_clinicdb'
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
