"""The run report: what every stage did, with its mathematics, figures and tables."""
