"""The A/B-test readout's statistics, their distributions and its chart."""
