"""The leaderboard app's pages: ranking (table and charts), one generator, the protocol in words."""
