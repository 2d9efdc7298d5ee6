from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier

from safestack.classify._heads import Head, HeadBundle
from safestack.errors import ArtifactError


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 8)).astype(np.float32)
    y = np.where(x[:, 0] + 0.5 * x[:, 1] > 0, "yes", "no")
    return x, y


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize(
    "model",
    [
        LogisticRegression(max_iter=500),
        MLPClassifier((16,), max_iter=500, random_state=0),
    ],
)
def test_binary_head_matches_sklearn(data, model) -> None:
    x, y = data
    model.fit(x, y)
    head = Head.from_sklearn(model)
    np.testing.assert_allclose(head.predict_proba(x), model.predict_proba(x)[:, 1], atol=1e-5)
    assert head.classes == ("no", "yes")


def test_multiclass_head_matches_sklearn(data) -> None:
    x, _ = data
    y = np.array(["a", "b", "c"])[np.argmax(x[:, :3], axis=1)]
    model = LogisticRegression(max_iter=500).fit(x, y)
    head = Head.from_sklearn(model)
    np.testing.assert_allclose(head.predict_proba(x), model.predict_proba(x), atol=1e-5)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_bundle_round_trip_and_hash_check(tmp_path, data) -> None:
    x, y = data
    head = Head.from_sklearn(MLPClassifier((4,), max_iter=300, random_state=0).fit(x, y))
    path = tmp_path / "h.npz"
    sha = HeadBundle({"h": head}, {"classifier": "t"}).save(path)
    loaded = HeadBundle.load(path, sha256=sha)
    np.testing.assert_array_equal(loaded.heads["h"].predict_proba(x), head.predict_proba(x))
    assert loaded.meta == {"classifier": "t"}

    data_bytes = bytearray(path.read_bytes())
    data_bytes[len(data_bytes) // 2] ^= 0xFF
    path.write_bytes(bytes(data_bytes))
    with pytest.raises(ArtifactError, match="fails its hash check"):
        HeadBundle.load(path, sha256=sha)
    # Without a pinned hash only structural damage can be seen: that is why the hash is pinned.
    path.write_bytes(bytes(data_bytes[: len(data_bytes) // 2]))
    with pytest.raises(ArtifactError, match="unreadable"):
        HeadBundle.load(path)


def test_missing_and_foreign_files(tmp_path) -> None:
    with pytest.raises(ArtifactError, match="missing"):
        HeadBundle.load(tmp_path / "nope.npz")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip file")
    with pytest.raises(ArtifactError, match="unreadable"):
        HeadBundle.load(junk)
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(ArtifactError):
        HeadBundle.load(tmp_path / "other.npz")
