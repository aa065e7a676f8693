"""Ternary digits and the fold, against the plain Python reference, up to 16-bit residuals."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import naive
from triadic import planes

R16 = (1 << 17) - 1  # widest residual triadic makes: YCoCg-R chroma of 16-bit rgb


@settings(deadline=None)  # the first example may compile the kernels (numba JIT)
@given(st.integers(-R16, R16))
def test_digits_match_reference(r):
    k = naive.num_digits(abs(r))
    d = [int(x) for x in planes.to_digits(np.array([r]), k)[:, 0]]
    assert d == naive.digits(r) + [0] * (k - len(naive.digits(r)))
    assert naive.value(d) == r


@settings(deadline=None)
@given(arrays(np.int32, st.tuples(st.integers(1, 5), st.integers(1, 7)), elements=st.integers(-R16, R16)))
def test_digits_round_trip_and_minimal_k(values):
    d = planes.to_digits(values)
    k = d.shape[0]
    assert set(np.unique(d)) <= {-1, 0, 1}
    assert np.array_equal(planes.from_digits(d), values)
    max_abs = int(np.abs(values).max())
    assert max_abs <= (3**k - 1) // 2
    assert k == 0 or max_abs > (3 ** (k - 1) - 1) // 2


@pytest.mark.parametrize("k", range(0, 13))
def test_num_digits_boundaries(k):
    edge = (3**k - 1) // 2
    assert planes.num_digits(edge) == k
    assert planes.num_digits(edge + 1) == k + 1


def test_extremes_of_16_bit():
    values = np.array([-65535, 65535, -R16, R16, 0, 1, -1], dtype=np.int32)
    d = planes.to_digits(values)
    assert d.shape[0] == 12
    assert np.array_equal(planes.from_digits(d), values)


@settings(max_examples=50)
@given(arrays(np.int8, (4, 9), elements=st.sampled_from([-1, 0, 1])))
def test_fold_unfold(d):
    m, s = planes.fold(d)
    assert set(np.unique(m)) <= {0, 1}
    assert np.all(np.abs(s[m == 1]) == 1)
    assert np.array_equal(planes.unfold(m, s), d)


def test_too_few_digits_rejected():
    with pytest.raises(ValueError):
        planes.to_digits(np.array([5]), 1)
