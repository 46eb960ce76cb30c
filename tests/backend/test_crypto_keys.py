"""Node identity: key files on disk, and key derivation checked against published vectors."""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import threading
from pathlib import Path

import pytest

from mpc_backend.crypto import (
    KEY_FILE_NAME,
    SUITE_HYBRID,
    SUITE_X25519,
    CorruptKeyFileError,
    InsecureKeyFileError,
    MissingKeysError,
    NodeKeys,
    UnsupportedSuiteError,
    available_suites,
    default_suite,
    fingerprint_of,
    key_file_path,
    load_keys,
    load_or_create_keys,
    node_id_of,
    verify_signature,
)
from mpc_backend.crypto import sealing as sealing_module

# draft-connolly-cfrg-xwing-kem, Appendix C, test vector 1: seed -> encapsulation key.
XWING_SEED = bytes.fromhex("7f9c2ba4e88f827d616045507605853ed73b8093f6efbc88eb1a6eacfa66ef26")
XWING_PK = bytes.fromhex(
    "e2236b35a8c24b39b10aa1323a96a919a2ced88400633a7b07131713fc14b2b5b19cfc3d"
    "a5fa1a92c49f25513e0fd30d6b1611c9ab9635d7086727a4b7d21d34244e66969cf15b3b"
    "2a785329f61b096b277ea037383479a6b556de7231fe4b7fa9c9ac24c0699a0018a52534"
    "01bacfa905ca816573e56a2d2e067e9b7287533ba13a937dedb31fa44baced4076992361"
    "0034ae31e619a170245199b3c5c39864859fe1b4c9717a07c30495bdfb98a0a002ccf56c"
    "1286cef5041dede3c44cf16bf562c7448518026b3d8b9940680abd38a1575fd27b58da06"
    "3bfac32c39c30869374c05c1aeb1898b6b303cc68be455346ee0af699636224a148ca2ae"
    "a10463111c709f69b69c70ce8538746698c4c60a9aef0030c7924ceec42a5d36816f545e"
    "ae13293460b3acb37ea0e13d70e4aa78686da398a8397c08eaf96882113fe4f7bad4da40"
    "b0501e1c753efe73053c87014e8661c33099afe8bede414a5b1aa27d8392b3e131e9a70c"
    "1055878240cad0f40d5fe3cdf85236ead97e2a97448363b2808caafd516cd25052c5c362"
    "543c2517e4acd0e60ec07163009b6425fc32277acee71c24bab53ed9f29e74c66a0a3564"
    "955998d76b96a9a8b50d1635a4d7a67eb42df5644d330457293a8042f53cc7a69288f17e"
    "d55827e82b28e82665a86a14fbd96645eca8172c044f83bc0d8c0b4c8626985631ca87af"
    "829068f1358963cb333664ca482763ba3b3bb208577f9ba6ac62c25f76592743b64be519"
    "317714cb4102cb7b2f9a25b2b4f0615de31decd9ca55026d6da0b65111b16fe52feed8a4"
    "87e144462a6dba93728f500b6ffc49e515569ef25fed17aff520507368253525860f58be"
    "3be61c964604a6ac814e6935596402a520a4670b3d284318866593d15a4bb01c35e3e587"
    "ee0c67d2880d6f2407fb7a70712b838deb96c5d7bf2b44bcf6038ccbe33fbcf51a54a584"
    "fe90083c91c7a6d43d4fb15f48c60c2fd66e0a8aad4ad64e5c42bb8877c0ebec2b5e387c"
    "8a988fdc23beb9e16c8757781e0a1499c61e138c21f216c29d076979871caa6942bafc09"
    "0544bee99b54b16cb9a9a364d6246d9f42cce53c66b59c45c8f9ae9299a75d15180c3c95"
    "2151a91b7a10772429dc4cbae6fcc622fa8018c63439f890630b9928db6bb7f9438ae406"
    "5ed34d73d486f3f52f90f0807dc88dfdd8c728e954f1ac35c06c000ce41a0582580e3bb5"
    "7b672972890ac5e7988e7850657116f1b57d0809aaedec0bede1ae148148311c6f7e3173"
    "46e5189fb8cd635b986f8c0bdd27641c584b778b3a911a80be1c9692ab8e1bbb12839573"
    "cce19df183b45835bbb55052f9fc66a1678ef2a36dea78411e6c8d60501b4e60592d1369"
    "8a943b509185db912e2ea10be06171236b327c71716094c964a68b03377f513a05bcd99c"
    "1f346583bb052977a10a12adfc758034e5617da4c1276585e5774e1f3b9978b09d0e9c44"
    "d3bc86151c43aad185712717340223ac381d21150a04294e97bb13bbda21b5a182b6da96"
    "9e19a7fd072737fa8e880a53c2428e3d049b7d2197405296ddb361912a7bcf4827ced611"
    "d0c7a7da104dde4322095339f64a61d5bb108ff0bf4d780cae509fb22c256914193ff734"
    "9042581237d522828824ee3bdfd07fb03f1f942d2ea179fe722f06cc03de5b69859edb06"
    "eff389b27dce59844570216223593d4ba32d9abac8cd049040ef6534"
)
# RFC 8032 section 7.1, TEST 1 (empty message).
ED_SECRET = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
ED_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
ED_SIG_EMPTY = bytes.fromhex(
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555"
    "fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
)
# RFC 7748 section 6.1: Alice's X25519 private and public key.
X_SECRET = bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
X_PUBLIC = bytes.fromhex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")


def test_hybrid_key_is_the_xwing_seed_of_the_draft() -> None:
    keys = NodeKeys(ED_SECRET, SUITE_HYBRID, XWING_SEED)
    assert len(XWING_PK) == 1216
    assert keys.hpke_public == XWING_PK


def test_x25519_key_matches_rfc7748() -> None:
    assert NodeKeys(ED_SECRET, SUITE_X25519, X_SECRET).hpke_public == X_PUBLIC


def test_signing_matches_rfc8032_and_ids_derive_from_the_public_key() -> None:
    keys = NodeKeys(ED_SECRET, SUITE_X25519, X_SECRET)
    assert keys.signing_public == ED_PUBLIC
    assert keys.sign(b"") == ED_SIG_EMPTY
    verify_signature(ED_PUBLIC, b"", ED_SIG_EMPTY)
    assert keys.node_id == hashlib.sha256(ED_PUBLIC).hexdigest()[:32]
    assert node_id_of(ED_PUBLIC) == keys.node_id


def test_fingerprint_is_readable_and_changes_with_either_key() -> None:
    keys = NodeKeys(ED_SECRET, SUITE_X25519, X_SECRET)
    assert re.fullmatch(r"[A-Z2-7]{4}(-[A-Z2-7]{4}){7}", keys.fingerprint)
    assert fingerprint_of(keys.signing_public, SUITE_X25519, keys.hpke_public) == keys.fingerprint
    other_hpke = NodeKeys(ED_SECRET, SUITE_X25519, bytes(32))
    other_signing = NodeKeys(bytes(32), SUITE_X25519, X_SECRET)
    assert len({keys.fingerprint, other_hpke.fingerprint, other_signing.fingerprint}) == 3


def test_default_suite_prefers_the_hybrid_kem() -> None:
    assert available_suites()[0] == default_suite()
    assert SUITE_X25519 in available_suites()
    if SUITE_HYBRID in available_suites():
        assert default_suite() == SUITE_HYBRID
    assert NodeKeys.generate().hpke_suite == default_suite()


def test_first_start_creates_private_files_and_reload_gives_the_same_identity(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "nested" / "data"
    created = load_or_create_keys(data_dir)
    path = data_dir / KEY_FILE_NAME
    assert key_file_path(data_dir) == path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    assert [p.name for p in data_dir.iterdir()] == [KEY_FILE_NAME]  # no temp file left
    record = json.loads(path.read_bytes())
    assert record["hpke_suite"] == created.hpke_suite

    for loaded in (load_keys(data_dir), load_or_create_keys(data_dir)):
        assert loaded.node_id == created.node_id
        assert loaded.hpke_public == created.hpke_public
        assert loaded.fingerprint == created.fingerprint
        assert loaded.sign(b"m") == created.sign(b"m")  # Ed25519 is deterministic


@pytest.mark.parametrize("suite", [SUITE_X25519, SUITE_HYBRID])
def test_requested_suite_is_recorded_in_the_key_file(tmp_path: Path, suite: str) -> None:
    created = load_or_create_keys(tmp_path, hpke_suite=suite)
    assert created.hpke_suite == suite
    assert load_keys(tmp_path).hpke_suite == suite
    assert json.loads((tmp_path / KEY_FILE_NAME).read_bytes())["hpke_suite"] == suite


def test_racing_first_starts_agree_on_one_identity(tmp_path: Path) -> None:
    barrier = threading.Barrier(4)
    results: list[str] = []

    def start() -> None:
        barrier.wait()
        results.append(load_or_create_keys(tmp_path).node_id)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 4
    assert set(results) == {load_keys(tmp_path).node_id}
    assert [p.name for p in tmp_path.iterdir()] == [KEY_FILE_NAME]


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620])
def test_key_file_open_to_other_users_is_refused_with_a_chmod_hint(
    tmp_path: Path, mode: int
) -> None:
    load_or_create_keys(tmp_path)
    path = tmp_path / KEY_FILE_NAME
    os.chmod(path, mode)
    with pytest.raises(InsecureKeyFileError) as err:
        load_keys(tmp_path)
    assert f"(mode {mode:04o})" in str(err.value)
    assert f"run: chmod 600 {path}" in str(err.value)
    with pytest.raises(InsecureKeyFileError):
        load_or_create_keys(tmp_path)  # must not silently make a new identity either
    os.chmod(path, 0o600)
    load_keys(tmp_path)


def test_exact_message_for_a_world_readable_key(tmp_path: Path) -> None:
    load_or_create_keys(tmp_path)
    path = tmp_path / KEY_FILE_NAME
    os.chmod(path, 0o644)
    with pytest.raises(InsecureKeyFileError) as err:
        load_keys(tmp_path)
    assert str(err.value) == (
        f"key file {path} is readable by other users (mode 0644); run: chmod 600 {path}"
    )


def test_missing_identity_tells_the_user_to_run_init(tmp_path: Path) -> None:
    with pytest.raises(MissingKeysError) as err:
        load_keys(tmp_path)
    assert f"no node identity in {tmp_path}" in str(err.value)
    assert f"mpc-backend init --data-dir {tmp_path}" in str(err.value)
    assert not (tmp_path / KEY_FILE_NAME).exists()


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"not json",
        b"[]",
        b'{"format": "something-else/v1"}',
        b'{"format": "hearth-node-identity/v1", "signing_key": "AAAA"}',
        b'{"format": "hearth-node-identity/v1", "signing_key": "AAAA", '
        b'"hpke_suite": "X25519", "hpke_key": "AAAA"}',
        b'{"format": "hearth-node-identity/v1", "signing_key": "'
        + b"A" * 43
        + b'", "hpke_suite": "RSA", "hpke_key": "'
        + b"A" * 43
        + b'"}',
    ],
)
def test_corrupt_key_file_is_reported_not_replaced(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / KEY_FILE_NAME
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, content)
    os.close(fd)
    with pytest.raises(CorruptKeyFileError) as err:
        load_or_create_keys(tmp_path)
    assert str(path) in str(err.value)
    assert "mpc-backend init" in str(err.value)
    assert path.read_bytes() == content


def test_without_ml_kem_new_keys_fall_back_to_x25519(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hybrid_dir = tmp_path / "hybrid"
    load_or_create_keys(hybrid_dir, hpke_suite=SUITE_HYBRID)
    monkeypatch.setattr(sealing_module, "available_suites", lambda: (SUITE_X25519,))

    assert default_suite() == SUITE_X25519
    assert load_or_create_keys(tmp_path / "new").hpke_suite == SUITE_X25519
    with pytest.raises(UnsupportedSuiteError, match="not available here"):
        NodeKeys.generate(SUITE_HYBRID)
    with pytest.raises(CorruptKeyFileError, match=f"{SUITE_HYBRID} is not available"):
        load_keys(hybrid_dir)


def test_without_hpke_at_all_the_error_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sealing_module, "available_suites", lambda: ())
    with pytest.raises(UnsupportedSuiteError, match=r"cryptography >= 47"):
        NodeKeys.generate()


def test_repr_does_not_reveal_secrets(tmp_path: Path) -> None:
    keys = load_or_create_keys(tmp_path)
    record = json.loads((tmp_path / KEY_FILE_NAME).read_bytes())
    text = repr(keys)
    assert keys.node_id in text
    assert record["signing_key"] not in text
    assert record["hpke_key"] not in text
