"""A table as shown, with a CSV download of exactly it: the same rows, columns, order and text."""

from __future__ import annotations

import pandas as pd
import streamlit as st


def csv_bytes(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


def table_with_download(frame: pd.DataFrame, file_name: str, key: str) -> None:
    """`frame` on the page and, below it, a button that downloads it as CSV (it does not rerun the app)."""
    st.dataframe(frame, hide_index=True, width="stretch")
    st.download_button("Download this table (CSV)", csv_bytes(frame), file_name=file_name, mime="text/csv",
                       key=key, on_click="ignore")
