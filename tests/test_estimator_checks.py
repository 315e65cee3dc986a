"""scikit-learn's estimator checks on Segmenter (numeric arrays; DataFrames with
categorical columns go through the same code after preparation)."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from custseg import Segmenter


@parametrize_with_checks([Segmenter(k=3, n_bootstrap=0, n_init=2),
                          Segmenter(algorithm="hierarchical", k=3, n_bootstrap=0)])
def test_sklearn_compatible(estimator, check):
    check(estimator)
