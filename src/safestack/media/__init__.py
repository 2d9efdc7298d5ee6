"""Media as the stack sees it: untrusted image bytes decoded once, under limits, or refused.

Everything downstream (image classifiers, hash matching, the gateway's image endpoints) takes a
:class:`DecodedImage` from :func:`decode_image`; nothing else opens an untrusted image.
"""

from safestack.media._decode import (
    DEFAULT_LIMITS,
    DecodedImage,
    ImageLimits,
    decode_image,
    encode_png,
)

__all__ = ["DEFAULT_LIMITS", "DecodedImage", "ImageLimits", "decode_image", "encode_png"]
