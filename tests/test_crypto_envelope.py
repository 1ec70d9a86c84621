import pytest

from voicegate import crypto

KEY = bytes(range(32))


def test_ciphertext_round_trips_under_its_key_and_context():
    blob = crypto.encrypt(KEY, b"voice sample", b"owner:1")
    assert crypto.decrypt(KEY, blob, b"owner:1") == b"voice sample"
    assert b"voice sample" not in blob


@pytest.mark.parametrize("position", [0, 5, 20, 40, -1])
def test_tampered_ciphertext_is_refused(position):
    blob = bytearray(crypto.encrypt(KEY, b"voice sample" * 3, b"owner:1"))
    blob[position] ^= 0x01
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(KEY, bytes(blob), b"owner:1")


def test_ciphertext_moved_to_another_context_is_refused():
    blob = crypto.encrypt(KEY, b"voice sample", b"owner:1")
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(KEY, blob, b"owner:2")


def test_truncated_ciphertext_is_refused():
    blob = crypto.encrypt(KEY, b"voice sample", b"owner:1")
    for cut in (0, 10, 31, len(blob) - 1):
        with pytest.raises(crypto.DecryptionError):
            crypto.decrypt(KEY, blob[:cut], b"owner:1")


def test_wrong_key_is_refused():
    blob = crypto.encrypt(KEY, b"voice sample", b"owner:1")
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(bytes(32), blob, b"owner:1")


def test_wrapped_key_is_not_a_valid_blob_and_vice_versa():
    wrapped = crypto.wrap_key(KEY, bytes(32), b"owner:1")
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(KEY, wrapped, b"owner:1")


def test_keys_of_the_wrong_size_are_rejected():
    with pytest.raises(ValueError):
        crypto.encrypt(b"short", b"x", b"")
