"""Preprocessing the crafted policies share: imputation, one-hot or ordinal codes, scaling."""

from __future__ import annotations

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler


def one_hot(numeric: list[str], categorical: list[str], scale: bool = True) -> ColumnTransformer:
    """Median-imputed (with missing indicators) and scaled numbers; one-hot categories, a
    missing cell its own level, rare levels pooled."""
    number = [SimpleImputer(strategy="median", add_indicator=True)]
    if scale:
        number.append(StandardScaler())
    return ColumnTransformer(
        [
            ("num", make_pipeline(*number), numeric),
            (
                "cat",
                make_pipeline(
                    SimpleImputer(strategy="constant", fill_value="<missing>"),
                    OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=2),
                ),
                categorical,
            ),
        ]
    )


def ordinal(numeric: list[str], categorical: list[str]) -> ColumnTransformer:
    """Categories as codes first (unknown and missing -> NaN), numbers passed through."""
    encoder = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan)
    return ColumnTransformer([("cat", encoder, categorical), ("num", "passthrough", numeric)])


def imputed_ordinal(numeric: list[str], categorical: list[str]) -> ColumnTransformer:
    """For models that take no NaN (forests): codes with -1 for missing, numbers imputed."""
    encoder = make_pipeline(
        SimpleImputer(strategy="constant", fill_value="<missing>"),
        OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1),
    )
    numbers = SimpleImputer(strategy="median", add_indicator=True)
    return ColumnTransformer([("cat", encoder, categorical), ("num", numbers, numeric)])
