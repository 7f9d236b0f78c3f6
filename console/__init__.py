"""The web console: editors, supervisors, billing and auditors in a browser (issue 11)."""
