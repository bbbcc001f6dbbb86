"""The Crypt4GH engine (GA4GH Crypt4GH v1), byte-compatible with the reference `crypt4gh`.

- `keys`: X25519 key parsing in every format the field's tools write (Crypt4GH, OpenSSH
  ed25519, OpenSSL; README "Key formats") and the secret-key files (`c4gh-v1` under any
  label, OpenSSH, PKCS#8).
- `header`: header parsing, building for a recipient, decryption and re-encryption (§3.2).
- `segments`: streaming encryption and decryption of 64 KiB segments (§3.3), on
  `cryptography`'s ChaCha20-Poly1305, several times faster than the reference.
"""

from genomics.c4gh.errors import Crypt4GHError, HeaderError, InvalidKey, SegmentError, typed_errors
from genomics.c4gh.header import (
    MAGIC,
    DecryptedHeader,
    build_header,
    data_encryption_packet,
    decrypt_header,
    edit_list_packet,
    header_size,
    reencrypt_header,
    seal_header,
    split_header,
)
from genomics.c4gh.keys import (
    KIND_LABELS,
    PublicKeyInfo,
    describe_public_key,
    generate_keypair,
    parse_public_key,
    public_key_base64,
    public_key_of,
    public_key_text,
    read_secret_key_file,
    secret_key_file_text,
    write_secret_key_file,
)
from genomics.c4gh.segments import (
    CIPHER_SEGMENT_SIZE,
    SEGMENT_SIZE,
    SegmentDecryptor,
    decrypt_stream,
    encrypt_segments,
    encrypted_size,
    new_data_key,
)

__all__ = [
    "CIPHER_SEGMENT_SIZE",
    "KIND_LABELS",
    "MAGIC",
    "SEGMENT_SIZE",
    "Crypt4GHError",
    "DecryptedHeader",
    "HeaderError",
    "InvalidKey",
    "PublicKeyInfo",
    "SegmentDecryptor",
    "SegmentError",
    "build_header",
    "data_encryption_packet",
    "decrypt_header",
    "decrypt_stream",
    "describe_public_key",
    "edit_list_packet",
    "encrypt_segments",
    "encrypted_size",
    "generate_keypair",
    "header_size",
    "new_data_key",
    "parse_public_key",
    "public_key_base64",
    "public_key_of",
    "public_key_text",
    "read_secret_key_file",
    "reencrypt_header",
    "seal_header",
    "secret_key_file_text",
    "split_header",
    "typed_errors",
    "write_secret_key_file",
]
