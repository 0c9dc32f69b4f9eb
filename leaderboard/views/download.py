"""A table as shown, with a CSV download of exactly it: the same rows, columns, order and text."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import streamlit as st


def csv_bytes(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


def table_with_download(frame: pd.DataFrame, file_name: str, key: str, pinned: Sequence[str] = ()) -> None:
    """`frame` on the page, its `pinned` columns kept in view when it scrolls sideways, and below it a button that
    downloads it as CSV (it does not rerun the app)."""
    st.dataframe(frame, hide_index=True, width="stretch",
                 column_config={name: st.column_config.Column(pinned=True) for name in pinned})
    st.download_button("Download this table (CSV)", csv_bytes(frame), file_name=file_name, mime="text/csv",
                       key=key, on_click="ignore")
