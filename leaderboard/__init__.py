"""The leaderboard: builds the table from `submissions/` and serves it with Streamlit (reads results only)."""
