from .volume_encoder_decoder import VolumeEncoderDecoder

__all__ = ['VolumeEncoderDecoder']
